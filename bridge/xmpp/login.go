package xmpp

import (
	"context"
	"crypto/tls"
	"encoding/xml"
	"errors"
	"fmt"
	"net"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	goxmpp "github.com/xmppo/go-xmpp"
)

// ErrAuth means the server refused the bot's password (SASL not-authorized
// on a mechanism without channel binding, twice in a row): retrying cannot
// help until the password is fixed.
var ErrAuth = errors.New("xmpp: the server refused the login")

// link is one established stream: go-xmpp did TLS, SASL and bind; from then
// on waxmpp reads stanzas from go-xmpp's own decoder and writes to its TLS
// connection itself.
type link struct {
	conn  net.Conn     // go-xmpp's TLS connection (over the dialed socket once direct)
	dec   *xml.Decoder // go-xmpp's decoder, positioned after bind
	jid   string       // full JID bound
	relay *relay
	// preApproval: the server offers subscription pre-approval (RFC 6121
	// §3.4, stream feature urn:xmpp:features:pre-approval).
	preApproval bool
	smOffered   bool // XEP-0198 is offered
	// maxBytes is the stanza limit the server states (XEP-0478), 0 if
	// none.
	maxBytes int
	// direct: the TLS connection reads and writes the dialed socket
	// itself, the relay taken out (handover.go).
	direct bool
}

// close ends the stream's sockets and waits for the relay to stop.
func (l *link) close() {
	l.conn.Close()
	l.relay.stop()
}

// dialEndpoint connects and logs in at one endpoint, within timeout.
//
// go-xmpp dials its server itself and runs TLS, SASL and bind without
// deadlines, so waxmpp dials the endpoint (the socket it can close) and
// hands go-xmpp a one-connection loopback relay to it. When the login does
// not finish in time, or ctx ends, the relay and the socket are closed:
// go-xmpp's login fails at once and is waited for, so no login can finish
// late, bind the same resource and replace the live session.
//
// mech forces a SASL mechanism; "" lets go-xmpp choose (the strongest
// offered, channel binding first). A failure is a *LoginError.
func dialEndpoint(ctx context.Context, ep endpoint, cfg *Config, mech string, timeout time.Duration) (*link, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var d net.Dialer
	raw, err := d.DialContext(ctx, "tcp", ep.Addr)
	if err != nil {
		if ctx.Err() != nil && errors.Is(err, context.DeadlineExceeded) {
			return nil, &LoginError{Addr: ep.Addr, Stage: "connect", Err: fmt.Errorf("no answer within %v", timeout)}
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, dialError(ep.Addr, err)
	}
	r, err := newRelay(raw, cfg.WriteTimeout)
	if err != nil {
		raw.Close()
		return nil, fmt.Errorf("xmpp: login at %s: %w", ep.Addr, err)
	}
	_, domain, _ := strings.Cut(cfg.JID, "@")
	trace := &loginTrace{}
	defer trace.finish()
	opts := goxmpp.Options{
		Host:        r.addr(),
		User:        cfg.JID,
		Password:    cfg.Password,
		Resource:    cfg.Resource,
		DialTimeout: timeout,
		// The certificate is verified for the JID's domain, whatever
		// address the relay has.
		TLSConfig: &tls.Config{RootCAs: cfg.RootCAs, ServerName: domain, MinVersion: tls.VersionTLS12},
		NoTLS:     !ep.DirectTLS,
		StartTLS:  true, // refuse servers without STARTTLS: never authenticate in the clear
		// go-xmpp sends an initial presence with this show right after bind;
		// the session replaces it with one carrying caps at once.
		Status:        "away",
		NoSASLUpgrade: true,
		Mechanism:     mech,
		// Where a server offers SASL2 and Bind 2 (XEP-0386), go-xmpp binds
		// with this as the resource's tag instead of Resource.
		UserAgentSW: cfg.Resource,
		Debug:       true,
		DebugWriter: trace,
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
	var res result
	select {
	case res = <-ch:
	case <-ctx.Done():
		r.stop() // go-xmpp's reads and writes fail now
		res = <-ch
		if res.c != nil {
			closeClient(res.c)
		}
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return nil, &LoginError{Addr: ep.Addr, Mechanism: trace.mechanism(), Err: fmt.Errorf("not done within %v", timeout)}
		}
		return nil, ctx.Err()
	}
	if res.err != nil {
		r.stop()
		e := loginError(ep.Addr, res.err, trace)
		e.offered = trace.offered()
		if errors.Is(e.Err, ErrMechanism) {
			if mech == "" {
				e.Err = fmt.Errorf("the server offers no SASL mechanism waxmpp has (it offers %v)", e.offered)
			} else {
				e.Mechanism = mech
			}
		}
		return nil, e
	}
	conn, dec, err := internals(res.c)
	if err != nil {
		r.stop()
		return nil, err
	}
	l := &link{conn: conn, dec: dec, jid: res.c.JID(), relay: r, preApproval: trace.offers("urn:xmpp:features:pre-approval"),
		smOffered: trace.offers(nsSM), maxBytes: trace.maxBytes()}
	tc, ok := conn.(*tls.Conn)
	if !ok {
		l.close()
		return nil, fmt.Errorf("xmpp: login at %s: stream is not encrypted", ep.Addr)
	}
	l.direct = r.handover(tc) // handover.go
	return l, nil
}

// closeClient closes the socket of a client nobody will use.
func closeClient(c *goxmpp.Client) {
	if conn, _, err := internals(c); err == nil {
		conn.Close()
	}
}

// relay splices go-xmpp's connection to the loopback listener with the
// socket waxmpp dialed, during the login; then handover takes it out.
//
// The listener is on 127.0.0.1 and accepts one connection; a local process
// that connected first would see only TLS records (go-xmpp verifies the
// server's certificate end to end) and at most make this login fail.
type relay struct {
	ln     net.Listener
	raw    net.Conn
	once   sync.Once
	done   chan struct{} // closed when both directions have stopped
	mu     sync.Mutex
	local  net.Conn // the accepted end, nil until accepted
	closed bool
	// handing: handover is taking the relay out (handover.go); the
	// copies then end without closing anything, and tell how on in
	// (socket to loopback) and out (loopback to socket).
	handing atomic.Bool
	in, out chan error
}

func newRelay(raw net.Conn, writeTimeout time.Duration) (*relay, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &relay{ln: ln, raw: raw, done: make(chan struct{}), in: make(chan error, 1), out: make(chan error, 1)}
	go r.run(writeTimeout)
	return r, nil
}

func (r *relay) addr() string { return r.ln.Addr().String() }

// run accepts go-xmpp's connection and copies both ways until either side
// ends; then it closes both.
func (r *relay) run(writeTimeout time.Duration) {
	defer close(r.done)
	local, err := r.ln.Accept()
	r.ln.Close()
	if err != nil {
		r.raw.Close()
		return
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		local.Close()
		r.raw.Close()
		return
	}
	r.local = local
	r.mu.Unlock()
	var wg sync.WaitGroup
	end := func(ch chan error, err error) {
		ch <- err
		if !r.handing.Load() {
			r.close()
		}
	}
	wg.Go(func() { end(r.out, copyConn(r.raw, local, writeTimeout)) })
	wg.Go(func() { end(r.in, copyConn(local, r.raw, writeTimeout)) })
	wg.Wait()
}

// copyConn copies src to dst, each write with a deadline, until either
// fails; it returns the error (a read's as it is).
func copyConn(dst, src net.Conn, writeTimeout time.Duration) error {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			dst.SetWriteDeadline(time.Now().Add(writeTimeout))
			if _, werr := dst.Write(buf[:n]); werr != nil {
				// Not wrapped: a write that timed out is a failure,
				// where a read that did is how handover stops a copy.
				return errors.New("relay write: " + werr.Error())
			}
		}
		if err != nil {
			return err
		}
	}
}

// stop closes the relay and waits until it has stopped.
func (r *relay) stop() {
	r.close()
	<-r.done
}

// close closes the listener and both sockets; it does not wait.
func (r *relay) close() {
	r.once.Do(func() {
		r.mu.Lock()
		r.closed = true
		if r.local != nil {
			r.local.Close()
		}
		r.mu.Unlock()
		r.ln.Close()
		r.raw.Close()
	})
}

// goxmppClient is the type whose unexported fields internals reads; a test
// replaces it to prove that a mismatch stops New.
var goxmppClient = reflect.TypeFor[goxmpp.Client]()

// checkGoXMPP checks that t has the fields internals reads, with their
// types. New calls it, so that a go-xmpp with another layout (a version
// bump) fails at start-up with one clear error instead of every login.
func checkGoXMPP(t reflect.Type) error {
	for _, f := range []struct {
		name string
		typ  reflect.Type
	}{{"conn", reflect.TypeFor[net.Conn]()}, {"p", reflect.TypeFor[*xml.Decoder]()}} {
		sf, ok := t.FieldByName(f.name)
		if !ok || sf.Type != f.typ {
			return fmt.Errorf("xmpp: go-xmpp's Client has no field %s of type %v: this build uses a go-xmpp other than the v0.3.7 waxmpp reads the stream of; build with the go.mod's version", f.name, f.typ)
		}
	}
	return nil
}

// internals returns go-xmpp's connection and stream decoder.
//
// go-xmpp v0.3.7's Recv drops the id attribute of inbound messages, which
// corrections, retractions and duplicate suppression need, and it swallows
// pings and IQs it half-understands. Its decoder, though, is a plain
// *xml.Decoder positioned after bind, possibly with the first stanzas
// already buffered, so reading stanzas from that same decoder loses nothing.
// The fields are unexported; New has checked their names and types
// (checkGoXMPP).
func internals(c *goxmpp.Client) (net.Conn, *xml.Decoder, error) {
	v := reflect.ValueOf(c).Elem()
	fc, fp := v.FieldByName("conn"), v.FieldByName("p")
	if !fc.IsValid() || fc.Type() != reflect.TypeFor[net.Conn]() ||
		!fp.IsValid() || fp.Type() != reflect.TypeFor[*xml.Decoder]() {
		return nil, nil, checkGoXMPP(v.Type()) // unreachable after New's check
	}
	conn := *(*net.Conn)(unsafe.Pointer(fc.UnsafeAddr()))
	dec := *(**xml.Decoder)(unsafe.Pointer(fp.UnsafeAddr()))
	if conn == nil || dec == nil {
		return nil, nil, errors.New("xmpp: go-xmpp returned a client without a connection")
	}
	return conn, dec, nil
}
