package xmpp

import (
	"context"
	"net"
	"strconv"
	"strings"
)

// Resolver looks up SRV records. *net.Resolver satisfies it; tests inject
// their own. Records come back in the order to try them (RFC 2782), as
// net.Resolver.LookupSRV returns them.
type Resolver interface {
	LookupSRV(ctx context.Context, service, proto, name string) (string, []*net.SRV, error)
}

// endpoint is one address to try, and how TLS starts there.
type endpoint struct {
	Addr      string // host:port
	DirectTLS bool   // XEP-0368 xmpps-client; otherwise STARTTLS
}

// endpoints lists where to connect for domain, in the order RFC 6120 §3.2
// and XEP-0368 give: an explicit server wins; otherwise _xmpps-client
// (direct TLS) records, then _xmpp-client (STARTTLS) records, each in the
// resolver's order (net.Resolver.LookupSRV sorts by priority and shuffles
// by weight, as RFC 2782 asks); then the domain itself on 5222. A record
// set that is just "." means the service is decidedly not offered there.
func endpoints(ctx context.Context, r Resolver, domain, explicit string) []endpoint {
	if explicit != "" {
		if rest, ok := strings.CutPrefix(explicit, "tls://"); ok {
			return []endpoint{{Addr: withPort(rest, "5223"), DirectTLS: true}}
		}
		return []endpoint{{Addr: withPort(explicit, "5222")}}
	}
	var eps []endpoint
	disabled := false
	for _, svc := range []struct {
		name   string
		direct bool
	}{{"xmpps-client", true}, {"xmpp-client", false}} {
		_, srvs, err := r.LookupSRV(ctx, svc.name, "tcp", domain)
		if err != nil || len(srvs) == 0 {
			continue
		}
		if len(srvs) == 1 && (srvs[0].Target == "." || srvs[0].Target == "") {
			if !svc.direct {
				disabled = true
			}
			continue
		}
		for _, s := range srvs {
			host := strings.TrimSuffix(s.Target, ".")
			eps = append(eps, endpoint{Addr: net.JoinHostPort(host, strconv.Itoa(int(s.Port))), DirectTLS: svc.direct})
		}
	}
	if len(eps) == 0 && !disabled {
		eps = append(eps, endpoint{Addr: net.JoinHostPort(domain, "5222")})
	}
	return eps
}

func withPort(hostport, port string) string {
	if _, _, err := net.SplitHostPort(hostport); err == nil {
		return hostport
	}
	return net.JoinHostPort(strings.Trim(hostport, "[]"), port)
}
