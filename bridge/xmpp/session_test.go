package xmpp

import (
	"context"
	"crypto/x509"
	"encoding/xml"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	goxmpp "github.com/xmppo/go-xmpp"

	"waxmpp/bridge"
	pt "waxmpp/bridge/prosodytest"
)

// memQueue is an in-memory Queue with the store's semantics (a second
// implementation of the interface; the store's own tests prove durability).
type memQueue struct {
	mu    sync.Mutex
	next  uint64
	items []bridge.QueueItem
	acked uint64
}

func (q *memQueue) Enqueue(data ...[]byte) ([]uint64, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	var seqs []uint64
	for _, d := range data {
		q.next++
		q.items = append(q.items, bridge.QueueItem{Seq: q.next, Data: d})
		seqs = append(seqs, q.next)
	}
	return seqs, nil
}

func (q *memQueue) Peek(after uint64, n int) ([]bridge.QueueItem, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	var out []bridge.QueueItem
	for _, it := range q.items {
		if it.Seq > after && len(out) < n {
			out = append(out, it)
		}
	}
	return out, nil
}

func (q *memQueue) AckThrough(seq uint64) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	i := 0
	for i < len(q.items) && q.items[i].Seq <= seq {
		i++
	}
	q.items = q.items[i:]
	q.acked = max(q.acked, seq)
	return nil
}

func (q *memQueue) Len() (int, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items), nil
}

func (q *memQueue) Oldest() (bridge.QueueItem, bool, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.items) == 0 {
		return bridge.QueueItem{}, false, nil
	}
	return q.items[0], true, nil
}

// memCursor is an in-memory Cursor.
type memCursor struct {
	mu sync.Mutex
	id string
}

func (m *memCursor) LoadCursor() (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.id, nil
}

func (m *memCursor) SaveCursor(id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.id = id
	return nil
}

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("WAXMPP_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

func roots(t testing.TB, srv *pt.Server) *x509.CertPool {
	pem, err := os.ReadFile(srv.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(pem) {
		t.Fatal("bad CA file")
	}
	return p
}

func botConfig(t testing.TB, srv *pt.Server) Config {
	return Config{
		JID:          srv.JID("bot"),
		Password:     pt.Password("bot"),
		Owner:        srv.JID("owner"),
		Server:       srv.Addr(),
		RootCAs:      roots(t, srv),
		Rate:         1 << 20,
		Burst:        1 << 20,
		PingInterval: 2 * time.Second,
		PingTimeout:  2 * time.Second,
		DialTimeout:  5 * time.Second,
		MinBackoff:   50 * time.Millisecond,
		MaxBackoff:   500 * time.Millisecond,
		Outbox:       &memQueue{},
		Cursor:       &memCursor{},
		Log:          testLogger(t),
	}
}

// startSession runs a Session until the test ends.
func startSession(t testing.TB, cfg Config) *Session {
	t.Helper()
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Run returned %v, want context.Canceled", err)
		}
	})
	waitFor(t, 10*time.Second, "session connected", func() bool { return s.connected.Load() })
	return s
}

// prosodyOnly is for tests that cannot run on ejabberd: see each test.
var prosodyOnly = []pt.Kind{pt.Prosody}

// forServers runs f once for each server kind, as a subtest named after
// it, on a server started with opts. Unless the test is about throttling
// (opts.Limits), ejabberd's shaper is off, as Prosody's mod_limits is.
func forServers(t *testing.T, kinds []pt.Kind, opts pt.Options, f func(t *testing.T, srv *pt.Server)) {
	t.Helper()
	for _, k := range kinds {
		t.Run(string(k), func(t *testing.T) {
			o := opts
			o.Kind = k
			o.NoShaper = !o.Limits
			f(t, pt.Start(t, o))
		})
	}
}

func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestGoXMPPInternals(t *testing.T) {
	forServers(t, pt.Kinds, pt.Options{}, func(t *testing.T, srv *pt.Server) {
		cfg := botConfig(t, srv)
		cfg.defaults()
		l, err := dialEndpoint(context.Background(), endpoint{Addr: srv.Addr()}, &cfg, "SCRAM-SHA-1", 5*time.Second)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		defer l.close()
		if !strings.HasPrefix(l.jid, srv.JID("bot")+"/") {
			t.Fatalf("bound JID %q, want %s/…", l.jid, srv.JID("bot"))
		}
		// The link reads and writes the dialed socket itself: the login
		// relay is handed over and ends (handover.go).
		if !l.direct {
			t.Fatal("the link was not handed over from the login relay")
		}
		// The decoder go-xmpp used is ours now: a ping answer comes through it.
		l.conn.Write([]byte("<iq type='get' id='x1'><ping xmlns='urn:xmpp:ping'/></iq>"))
		for {
			tok, err := l.dec.Token()
			if err != nil {
				t.Fatal(err)
			}
			if se, ok := tok.(xml.StartElement); ok {
				st, err := Decode(l.dec, se)
				if err != nil {
					t.Fatal(err)
				}
				if iq, ok := st.(*InIQ); ok && iq.ID == "x1" {
					if iq.Type != "result" {
						t.Fatalf("ping answer type %q, want result", iq.Type)
					}
					select {
					case <-l.relay.done:
					case <-time.After(5 * time.Second):
						t.Fatal("the login relay's copies did not end after the handover")
					}
					return
				}
			}
		}
	})
}

// TestLoginBounded: a login the server does not answer in time is given
// up, and its socket closed, so that it cannot finish later, bind the same
// resource and make the server replace the live session.
func TestLoginBounded(t *testing.T) {
	forServers(t, pt.Kinds, pt.Options{}, func(t *testing.T, srv *pt.Server) {
		cfg := botConfig(t, srv)
		// The live session must not notice the server's pause on its own.
		cfg.PingInterval, cfg.PingTimeout = 30*time.Second, 30*time.Second
		s := startSession(t, cfg)
		late := botConfig(t, srv)
		late.defaults()
		srv.Freeze()
		t0 := time.Now()
		// SCRAM-SHA-1: what both servers accept (ejabberd 23.01 refuses
		// go-xmpp's -PLUS binding).
		_, err := dialEndpoint(context.Background(), endpoint{Addr: srv.Addr()}, &late, "SCRAM-SHA-1", time.Second)
		took := time.Since(t0)
		srv.Thaw()
		if err == nil {
			t.Fatal("a login at a frozen server succeeded")
		}
		if took > 3*time.Second {
			t.Fatalf("the login gave up after %v, want about its 1s timeout", took)
		}
		// Given the chance, a login left running now binds the live session's
		// resource, and Prosody closes the live stream with <conflict/>.
		time.Sleep(4 * time.Second)
		if n := s.reconnects.Load(); n != 0 || !s.connected.Load() {
			t.Fatalf("the live session reconnected %d times after a login timed out: the late login replaced it", n)
		}
	})
}

// TestNewRefusesOtherGoXMPP: a go-xmpp whose Client lacks the fields the
// session reads stops New with one clear error (not a reconnect loop).
func TestNewRefusesOtherGoXMPP(t *testing.T) {
	defer func(t0 reflect.Type) { goxmppClient = t0 }(goxmppClient)
	goxmppClient = reflect.TypeFor[struct {
		conn    net.Conn
		decoder *xml.Decoder
	}]()
	_, err := New(Config{JID: "bot@example.org", Password: "x", Owner: "owner@example.org", Outbox: &memQueue{}})
	if err == nil || !strings.Contains(err.Error(), "go-xmpp") || !strings.Contains(err.Error(), "field p") {
		t.Fatalf("New with another go-xmpp layout: %v, want an error naming go-xmpp and the field p", err)
	}
	goxmppClient = reflect.TypeFor[goxmpp.Client]()
	if _, err := New(Config{JID: "bot@example.org", Password: "x", Owner: "owner@example.org", Outbox: &memQueue{}}); err != nil {
		t.Fatalf("New with the pinned go-xmpp: %v", err)
	}
}

func TestLoginRefusesWrongCertificate(t *testing.T) {
	forServers(t, pt.Kinds, pt.Options{}, func(t *testing.T, srv *pt.Server) {
		for _, tc := range []struct {
			name  string
			ca    string
			addr  string
			direc bool
		}{
			{"starttls/unrelated CA", pt.OtherCA(t), srv.Addr(), false},
			{"direct tls/unrelated CA", pt.OtherCA(t), srv.TLSAddr(), true},
			{"starttls/system roots", "", srv.Addr(), false},
		} {
			t.Run(tc.name, func(t *testing.T) {
				cfg := botConfig(t, srv)
				cfg.RootCAs = nil
				if tc.ca != "" {
					pem, _ := os.ReadFile(tc.ca)
					cfg.RootCAs = x509.NewCertPool()
					cfg.RootCAs.AppendCertsFromPEM(pem)
				}
				cfg.defaults()
				_, err := dialEndpoint(context.Background(), endpoint{Addr: tc.addr, DirectTLS: tc.direc}, &cfg, "", 5*time.Second)
				if err == nil || !strings.Contains(err.Error(), "certificate") {
					t.Fatalf("dial with the wrong CA: err = %v, want a certificate error", err)
				}
			})
		}
	})
}

func TestLoginWrongPasswordStopsRun(t *testing.T) {
	forServers(t, pt.Kinds, pt.Options{}, func(t *testing.T, srv *pt.Server) {
		cfg := botConfig(t, srv)
		cfg.Password = "wrong"
		logs := &logCounter{}
		cfg.Log = slog.New(logs)
		s, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err = s.Run(ctx)
		var le *LoginError
		if !errors.Is(err, ErrAuth) || !errors.As(err, &le) || le.Condition != "not-authorized" || binding(le.Mechanism) {
			t.Fatalf("Run with a wrong password = %v, want ErrAuth: not-authorized on a mechanism without binding", err)
		}
		if !strings.Contains(err.Error(), "refused the password") {
			t.Errorf("error %q does not say the password was refused", err)
		}
		// Permanent only once the server said it twice: one retry.
		if n := logs.count("disconnected"); n != 1 {
			t.Errorf("Run retried %d times before giving up, want 1", n)
		}
	})
}

// TestLoginStorageFailure: Prosody answers a login it cannot check, its
// account storage failing, with not-authorized, exactly as it answers a
// wrong password (mod_auth_internal_hashed's SCRAM profile returns no
// credentials when the storage read fails, and util/sasl/scram.lua turns
// that into not-authorized; temporary-auth-failure only when hashing
// fails). So one refusal is retried: a storage failure over by then does
// not stop the bridge (exit 78 under systemd); a wrong password, said
// again, does (TestLoginWrongPasswordStopsRun).
func TestLoginStorageFailure(t *testing.T) {
	srv := pt.Start(t, pt.Options{Kind: pt.Prosody})
	acc := filepath.Join(srv.Dir, "data", strings.ReplaceAll(pt.Domain, ".", "%2e"), "accounts", "bot.dat")
	// A directory where the account's file was: Prosody cannot read it.
	if err := os.Rename(acc, acc+".aside"); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(acc, 0o700); err != nil {
		t.Fatal(err)
	}
	cfg := botConfig(t, srv)
	cfg.MinBackoff = 4 * time.Second // time to mend the storage
	logs := &logCounter{}
	cfg.Log = slog.New(logs)
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	waitFor(t, 10*time.Second, "the first login refused", func() bool { return logs.count("disconnected") == 1 })
	if !logs.contains("refused the password") {
		t.Fatalf("the storage failure was not answered as a refused password (Prosody changed?)")
	}
	// The storage mends before the retry.
	if err := os.Remove(acc); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(acc+".aside", acc); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 15*time.Second, "logged in after the storage mended", func() bool {
		select {
		case err := <-done:
			t.Fatalf("Run stopped after one refusal: %v", err)
		default:
		}
		return s.connected.Load()
	})
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v, want context.Canceled", err)
	}
}

// TestLoginChannelBinding: ejabberd 23.01 as shipped offers SCRAM-SHA-1-PLUS
// and refuses the tls-exporter binding go-xmpp sends over TLS 1.3. The
// session tries once more without binding, on a fresh connection, and keeps
// to that for the server: the next login does not try -PLUS again, and the
// fallback is logged once. Prosody 0.12 offers no -PLUS over TLS 1.3: its
// first login is the only one.
func TestLoginChannelBinding(t *testing.T) {
	forServers(t, pt.Kinds, pt.Options{}, func(t *testing.T, srv *pt.Server) {
		logs := &logCounter{}
		cfg := botConfig(t, srv)
		cfg.Log = slog.New(logs)
		s := startSession(t, cfg)
		s.mu.Lock()
		c := s.cur
		s.mu.Unlock()
		c.conn.Close() // the link dies: a second login
		// A state, with room for a loaded machine: the fallback is a
		// second TLS login on ejabberd.
		waitFor(t, 30*time.Second, "reconnected", func() bool { return s.reconnects.Load() >= 1 && s.connected.Load() })
		refused := srv.LogCount("SCRAM-SHA-1-PLUS authentication")
		warned := logs.count("the server refused channel binding")
		want := 0
		if srv.Kind == pt.Ejabberd {
			want = 1
		}
		if refused != want || warned != want {
			t.Fatalf("%s refused -PLUS %d times and the fallback was logged %d times over %d logins, want %d and %d", srv.Kind, refused, warned, 1+s.reconnects.Load(), want, want)
		}
	})
}

// TestLoginForcedMechanism: a mechanism the server does not offer is a
// permanent error naming it; one it offers is used.
func TestLoginForcedMechanism(t *testing.T) {
	forServers(t, pt.Kinds, pt.Options{}, func(t *testing.T, srv *pt.Server) {
		cfg := botConfig(t, srv)
		cfg.Mechanism = "SCRAM-SHA-512"
		s, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Run(ctx); !errors.Is(err, ErrMechanism) || !strings.Contains(err.Error(), "SCRAM-SHA-512") || errors.Is(err, ErrAuth) {
			t.Fatalf("Run forcing an unoffered mechanism = %v, want ErrMechanism naming it", err)
		}
		cfg = botConfig(t, srv)
		cfg.Mechanism = "PLAIN"
		startSession(t, cfg)
	})
}

// logCounter is a slog handler that counts messages.
type logCounter struct {
	mu   sync.Mutex
	msgs []string
}

func (l *logCounter) Enabled(context.Context, slog.Level) bool { return true }
func (l *logCounter) Handle(_ context.Context, r slog.Record) error {
	m := r.Message
	r.Attrs(func(a slog.Attr) bool { m += " " + a.String(); return true })
	l.mu.Lock()
	l.msgs = append(l.msgs, m)
	l.mu.Unlock()
	return nil
}
func (l *logCounter) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logCounter) WithGroup(string) slog.Handler      { return l }

func (l *logCounter) count(prefix string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, m := range l.msgs {
		if strings.HasPrefix(m, prefix) {
			n++
		}
	}
	return n
}

func (l *logCounter) contains(s string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, m := range l.msgs {
		if strings.Contains(m, s) {
			return true
		}
	}
	return false
}

// fakeResolver answers SRV look-ups from a table, in the table's order (the
// order net.Resolver has already sorted); names not in it fail.
type fakeResolver map[string][]*net.SRV

func (f fakeResolver) LookupSRV(_ context.Context, service, proto, name string) (string, []*net.SRV, error) {
	recs, ok := f["_"+service+"._"+proto+"."+name]
	if !ok {
		return "", nil, &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
	}
	return "", recs, nil
}

func TestEndpointsOrder(t *testing.T) {
	r := fakeResolver{
		"_xmpps-client._tcp.example.org": {{Target: "a.example.org.", Port: 443, Priority: 10}, {Target: "b.example.org.", Port: 5223, Priority: 20}},
		"_xmpp-client._tcp.example.org":  {{Target: "c.example.org.", Port: 5222, Priority: 5}},
		"_xmpp-client._tcp.dot.org":      {{Target: ".", Port: 0}},
	}
	ctx := context.Background()
	for _, tc := range []struct {
		domain, explicit string
		want             []endpoint
	}{
		{"example.org", "", []endpoint{{"a.example.org:443", true}, {"b.example.org:5223", true}, {"c.example.org:5222", false}}},
		{"plain.org", "", []endpoint{{"plain.org:5222", false}}},
		{"dot.org", "", nil},
		{"example.org", "xmpp.example.net", []endpoint{{"xmpp.example.net:5222", false}}},
		{"example.org", "tls://xmpp.example.net:443", []endpoint{{"xmpp.example.net:443", true}}},
		{"example.org", "[::1]:5222", []endpoint{{"[::1]:5222", false}}},
	} {
		got := endpoints(ctx, r, tc.domain, tc.explicit)
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("endpoints(%s, %q) = %v, want %v", tc.domain, tc.explicit, got, tc.want)
		}
	}
}

// TestSRVSelection connects through SRV records that point at the test
// server: a dead direct-TLS target first, then the live direct-TLS port.
func TestSRVSelection(t *testing.T) {
	forServers(t, pt.Kinds, pt.Options{}, func(t *testing.T, srv *pt.Server) {
		dead, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		deadPort := dead.Addr().(*net.TCPAddr).Port
		dead.Close()
		for _, tc := range []struct {
			name string
			r    fakeResolver
		}{
			{"xmpps-client after a dead target", fakeResolver{"_xmpps-client._tcp." + pt.Domain: {
				{Target: "127.0.0.1.", Port: uint16(deadPort), Priority: 1},
				{Target: "127.0.0.1.", Port: uint16(srv.TLSPort), Priority: 2},
			}}},
			{"xmpp-client (STARTTLS)", fakeResolver{"_xmpp-client._tcp." + pt.Domain: {
				{Target: "127.0.0.1.", Port: uint16(srv.C2SPort), Priority: 1},
			}}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				cfg := botConfig(t, srv)
				cfg.Server = ""
				cfg.Resolver = tc.r
				s, err := New(cfg)
				if err != nil {
					t.Fatal(err)
				}
				l, err := s.dial(context.Background())
				if err != nil {
					t.Fatalf("dial via SRV: %v", err)
				}
				l.close()
			})
		}
	})
}

// TestConflictBacksOff: a second session on the same resource takes the
// stream over (both servers close the older one with <conflict/>). The
// first waits ConflictBackoff instead of throwing the second out at once,
// counts it, and tells the owner once when it is back. Before, the two
// kicked each other out for ever.
func TestConflictBacksOff(t *testing.T) {
	forServers(t, pt.Kinds, pt.Options{}, func(t *testing.T, srv *pt.Server) {
		owner := srv.Dial(t, "owner")
		cfg := botConfig(t, srv)
		cfg.ConflictBackoff = 4 * time.Second
		a := startSession(t, cfg)
		second := botConfig(t, srv)
		b := startSession(t, second)
		waitFor(t, 10*time.Second, "the first session thrown out", func() bool { return a.conflicts.Load() == 1 })
		time.Sleep(2 * time.Second)
		if n := b.reconnects.Load(); n != 0 || !b.connected.Load() {
			t.Fatalf("the second session was thrown out %d times within 2s: the first came straight back", n)
		}
		// After the backoff the first comes back (and now throws the
		// second out: two instances must not share an account), and tells
		// the owner why it was away.
		notice := owner.Next(t, 15*time.Second, func(e *pt.Elem) bool {
			return e.XMLName.Local == "message" && strings.Contains(e.Body(), "another client logged in")
		})
		if !strings.Contains(notice.Body(), srv.JID("bot")) {
			t.Errorf("notice %q does not name the bot's account", notice.Body())
		}
		if st, _ := a.Stats(); st.Conflicts != 1 {
			t.Errorf("Stats.Conflicts = %d, want 1", st.Conflicts)
		}
	})
}

func TestParseStreamError(t *testing.T) {
	for _, tc := range []struct {
		xml  string
		want StreamError
	}{
		{`<stream:error xmlns:stream='http://etherx.jabber.org/streams'><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/><text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>Replaced by new connection</text></stream:error>`,
			StreamError{Condition: "conflict", Text: "Replaced by new connection"}},
		{`<stream:error xmlns:stream='http://etherx.jabber.org/streams'><see-other-host xmlns='urn:ietf:params:xml:ns:xmpp-streams'>[2001:db8::1]:5222</see-other-host></stream:error>`,
			StreamError{Condition: "see-other-host", Host: "[2001:db8::1]:5222"}},
		{`<stream:error xmlns:stream='http://etherx.jabber.org/streams'><system-shutdown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>`,
			StreamError{Condition: "system-shutdown"}},
		{`<stream:error xmlns:stream='http://etherx.jabber.org/streams'/>`, StreamError{Condition: "undefined-condition"}},
		// Prosody 0.12's answer to a stanza over c2s_stanza_size_limit.
		{`<stream:error xmlns:stream='http://etherx.jabber.org/streams'><policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-streams'/><text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>XML stanza is too big</text><stanza-too-big xmlns='urn:xmpp:errors'/></stream:error>`,
			StreamError{Condition: "policy-violation", Text: "XML stanza is too big", App: "stanza-too-big"}},
	} {
		d := xml.NewDecoder(strings.NewReader(tc.xml))
		tok, _ := d.Token()
		err := parseStreamError(d, tok.(xml.StartElement))
		var se *StreamError
		if !errors.As(err, &se) || *se != tc.want {
			t.Errorf("parse %s = %v, want %+v", tc.xml, err, tc.want)
		}
	}
}

// TestStreamLimits: the stanza limit of XEP-0478 is read from the last
// stream features of the login (the authenticated stream's), and it bounds
// the link's limit, at most defaultStanzaLimit when the owner is on
// another server.
func TestStreamLimits(t *testing.T) {
	tr := &loginTrace{}
	tr.Write([]byte("RECV <stream:features><limits xmlns='urn:xmpp:stream-limits:0'><max-bytes>10000</max-bytes></limits><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms></stream:features>\n"))
	tr.Write([]byte("RECV <success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>\n"))
	tr.Write([]byte("RECV <stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/><limits xmlns='urn:xmpp:stream-limits:0'><max-bytes> 262144 </max-bytes><idle-seconds>840</idle-seconds></limits></stream:features>\n"))
	if got := tr.maxBytes(); got != 262144 {
		t.Fatalf("maxBytes = %d, want 262144 (the authenticated stream's)", got)
	}
	if got := (&loginTrace{}).maxBytes(); got != 0 {
		t.Fatalf("maxBytes without limits = %d, want 0", got)
	}
	for _, c := range []struct {
		owner    string
		maxBytes int
		want     int
	}{
		{"owner@example.org", 0, defaultStanzaLimit},
		{"owner@example.org", 262144, 262144},
		{"owner@example.org", 20000, 20000},
		{"owner@elsewhere.net", 262144, defaultStanzaLimit},
		{"owner@elsewhere.net", 20000, 20000},
	} {
		s, err := New(Config{JID: "bot@example.org", Password: "pw", Owner: c.owner, Outbox: &memQueue{}})
		if err != nil {
			t.Fatal(err)
		}
		if got := s.linkLimit(&link{maxBytes: c.maxBytes}); got != c.want {
			t.Errorf("owner %s, server states %d: limit %d, want %d", c.owner, c.maxBytes, got, c.want)
		}
	}
}
