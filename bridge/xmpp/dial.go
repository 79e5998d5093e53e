package xmpp

import (
	"context"
	"crypto/tls"
	"encoding/xml"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
	"unsafe"

	goxmpp "github.com/xmppo/go-xmpp"
)

// Resolver looks up SRV records. *net.Resolver satisfies it; tests inject
// their own.
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
// (direct TLS) records, then _xmpp-client (STARTTLS) records, each in
// priority order with weighted random choice among equal priorities; then the
// domain itself on 5222. A record set that is just "." means the service is
// decidedly not offered there.
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
		for _, s := range orderSRV(srvs) {
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

// orderSRV sorts by priority and, within one priority, picks by weight as
// RFC 2782 describes (a zero weight is a small chance, not none).
func orderSRV(in []*net.SRV) []*net.SRV {
	srvs := slices.Clone(in)
	slices.SortStableFunc(srvs, func(a, b *net.SRV) int { return int(a.Priority) - int(b.Priority) })
	var out []*net.SRV
	for i := 0; i < len(srvs); {
		j := i
		for j < len(srvs) && srvs[j].Priority == srvs[i].Priority {
			j++
		}
		group := slices.Clone(srvs[i:j])
		for len(group) > 0 {
			total := 0
			for _, s := range group {
				total += int(s.Weight) + 1
			}
			pick := rand.IntN(total)
			k := 0
			for ; k < len(group)-1; k++ {
				pick -= int(group[k].Weight) + 1
				if pick < 0 {
					break
				}
			}
			out = append(out, group[k])
			group = slices.Delete(group, k, k+1)
		}
		i = j
	}
	return out
}

// ErrAuth means the server refused the bot's login: retrying cannot help
// until the password or account is fixed.
var ErrAuth = errors.New("xmpp: the server refused the login")

// link is one established stream: go-xmpp did TLS, SASL and bind; from then
// on waxmpp reads stanzas from go-xmpp's own decoder and writes to the TLS
// connection itself.
type link struct {
	client *goxmpp.Client
	conn   net.Conn
	dec    *xml.Decoder
	jid    string // full JID bound
}

// dialEndpoint connects and logs in at one endpoint.
//
// go-xmpp runs TLS, SASL and bind without deadlines, so the whole login runs
// in its own goroutine and is abandoned after timeout; the abandoned
// goroutine ends when the peer closes or the kernel times the socket out.
func dialEndpoint(ctx context.Context, ep endpoint, cfg *Config, timeout time.Duration) (*link, error) {
	_, domain, _ := strings.Cut(cfg.JID, "@")
	tc := &tls.Config{RootCAs: cfg.RootCAs, ServerName: domain, MinVersion: tls.VersionTLS12}
	opts := goxmpp.Options{
		Host:        ep.Addr,
		User:        cfg.JID,
		Password:    cfg.Password,
		Resource:    cfg.Resource,
		DialTimeout: timeout,
		TLSConfig:   tc,
		NoTLS:       !ep.DirectTLS,
		StartTLS:    true, // refuse servers without STARTTLS: never authenticate in the clear
		// go-xmpp sends an initial presence with this show right after bind;
		// the session replaces it with one carrying caps at once.
		Status:        "away",
		NoSASLUpgrade: true,
	}
	type result struct {
		c   *goxmpp.Client
		err error
	}
	ch := make(chan result, 1)
	go func() {
		c, err := opts.NewClient()
		ch <- result{c, err}
	}()
	t := time.NewTimer(timeout)
	defer t.Stop()
	var r result
	select {
	case r = <-ch:
	case <-t.C:
		return nil, fmt.Errorf("xmpp: login at %s: no answer within %v", ep.Addr, timeout)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if r.err != nil {
		if strings.Contains(r.err.Error(), "auth failure") || strings.Contains(r.err.Error(), "not-authorized") {
			return nil, fmt.Errorf("%w at %s: %v", ErrAuth, ep.Addr, r.err)
		}
		return nil, fmt.Errorf("xmpp: login at %s: %w", ep.Addr, r.err)
	}
	conn, dec, err := internals(r.c)
	if err != nil {
		return nil, err
	}
	if _, ok := conn.(*tls.Conn); !ok {
		conn.Close()
		return nil, fmt.Errorf("xmpp: login at %s: stream is not encrypted", ep.Addr)
	}
	return &link{client: r.c, conn: conn, dec: dec, jid: r.c.JID()}, nil
}

// internals returns go-xmpp's connection and stream decoder.
//
// go-xmpp v0.3.7's Recv drops the id attribute of inbound messages, which
// corrections, retractions and duplicate suppression need, and it swallows
// pings and IQs it half-understands. Its decoder, though, is a plain
// *xml.Decoder positioned after bind, possibly with the first stanzas
// already buffered, so reading stanzas from that same decoder loses nothing.
// The fields are unexported: this checks their names and types (pinned by
// TestGoXMPPInternals) and refuses to run on a go-xmpp that changed them.
func internals(c *goxmpp.Client) (net.Conn, *xml.Decoder, error) {
	v := reflect.ValueOf(c).Elem()
	fc, fp := v.FieldByName("conn"), v.FieldByName("p")
	if !fc.IsValid() || fc.Type() != reflect.TypeFor[net.Conn]() ||
		!fp.IsValid() || fp.Type() != reflect.TypeFor[*xml.Decoder]() {
		return nil, nil, errors.New("xmpp: this go-xmpp version has no conn/p fields; waxmpp needs v0.3.7")
	}
	conn := *(*net.Conn)(unsafe.Pointer(fc.UnsafeAddr()))
	dec := *(**xml.Decoder)(unsafe.Pointer(fp.UnsafeAddr()))
	if conn == nil || dec == nil {
		return nil, nil, errors.New("xmpp: go-xmpp returned a client without a connection")
	}
	return conn, dec, nil
}
