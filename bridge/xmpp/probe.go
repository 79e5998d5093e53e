package xmpp

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"time"
)

// Reach is what Probe found at a server: where it answered, how TLS
// started, and the certificate it presented (verified for the domain).
type Reach struct {
	Addr      string // host:port that answered
	DirectTLS bool   // XEP-0368 direct TLS; otherwise STARTTLS
	Version   uint16 // TLS version
	NotAfter  time.Time
	Issuer    string
}

// Probe connects to domain's XMPP server as a login would (cfg's Server,
// else SRV, else the domain on 5222), starts TLS and verifies the
// certificate for domain, without logging in: `waxmpp doctor`'s TCP and
// TLS check. It returns the first endpoint that worked, or every
// endpoint's error.
func Probe(ctx context.Context, domain string, cfg RegisterConfig) (*Reach, error) {
	if cfg.Timeout == 0 {
		cfg.Timeout = 15 * time.Second
	}
	if cfg.Resolver == nil {
		cfg.Resolver = net.DefaultResolver
	}
	eps := endpoints(ctx, cfg.Resolver, domain, cfg.Server)
	if len(eps) == 0 {
		return nil, fmt.Errorf("xmpp: %s offers no client service (SRV target \".\")", domain)
	}
	var errs []error
	for _, ep := range eps {
		r, err := probe(ctx, domain, cfg, ep)
		if err == nil {
			return r, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		errs = append(errs, err)
	}
	return nil, errors.Join(errs...)
}

func probe(ctx context.Context, domain string, cfg RegisterConfig, ep endpoint) (*Reach, error) {
	d := net.Dialer{Timeout: cfg.Timeout}
	raw, err := d.DialContext(ctx, "tcp", ep.Addr)
	if err != nil {
		return nil, stageErr(ep.Addr, "connect", err)
	}
	defer raw.Close()
	stop := context.AfterFunc(ctx, func() { raw.Close() })
	defer stop()
	raw.SetDeadline(time.Now().Add(cfg.Timeout))
	if !ep.DirectTLS {
		dec, f, err := openStream(raw, domain)
		if err != nil {
			return nil, stageErr(ep.Addr, "stream", err)
		}
		if f.StartTLS == nil {
			return nil, stageErr(ep.Addr, "tls", errors.New("the server offers no STARTTLS"))
		}
		if _, err := raw.Write([]byte("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")); err != nil {
			return nil, stageErr(ep.Addr, "tls", err)
		}
		if start, err := nextStart(dec); err != nil || start.Name.Local != "proceed" {
			return nil, stageErr(ep.Addr, "tls", fmt.Errorf("STARTTLS refused (%s%v)", start.Name.Local, err))
		}
	}
	tc := tls.Client(raw, &tls.Config{RootCAs: cfg.RootCAs, ServerName: domain, MinVersion: tls.VersionTLS12})
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, stageErr(ep.Addr, "tls", err)
	}
	st := tc.ConnectionState()
	r := &Reach{Addr: ep.Addr, DirectTLS: ep.DirectTLS, Version: st.Version}
	if len(st.PeerCertificates) > 0 {
		leaf := st.PeerCertificates[0]
		r.NotAfter, r.Issuer = leaf.NotAfter, leaf.Issuer.String()
	}
	return r, nil
}

// CertError says whether err is a certificate that did not verify, and
// whether because of the time (expired, or not valid yet: often the
// machine's clock).
func CertError(err error) (bad, time bool) {
	var inv x509.CertificateInvalidError
	if errors.As(err, &inv) {
		return true, inv.Reason == x509.Expired
	}
	var ua x509.UnknownAuthorityError
	var hn x509.HostnameError
	var ve *tls.CertificateVerificationError
	return errors.As(err, &ua) || errors.As(err, &hn) || errors.As(err, &ve), false
}
