package setup

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"waxmpp/bridge"
	pt "waxmpp/bridge/prosodytest"
	"waxmpp/bridge/simwa"
	"waxmpp/bridge/store"
)

// fakeDNS answers for the test servers' domain as real DNS would for a
// real one: an _xmpp-client SRV record pointing at the server's port, and
// an address. Every other name does not exist.
type fakeDNS struct {
	domains map[string]int // domain → STARTTLS port
}

func (d fakeDNS) LookupSRV(ctx context.Context, service, proto, name string) (string, []*net.SRV, error) {
	if p, ok := d.domains[name]; ok && service == "xmpp-client" {
		return "", []*net.SRV{{Target: "127.0.0.1.", Port: uint16(p), Priority: 0, Weight: 1}}, nil
	}
	return "", nil, &net.DNSError{Err: "no such host", Name: "_" + service + "._" + proto + "." + name, IsNotFound: true}
}

func (d fakeDNS) LookupHost(ctx context.Context, host string) ([]string, error) {
	if _, ok := d.domains[host]; ok {
		return []string{"127.0.0.1"}, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

// fakeService stands in for systemd in the flow's own tests (the install
// test runs the real one).
type fakeService struct {
	mu     sync.Mutex
	calls  []string
	state  string
	failOn string
}

func (s *fakeService) Present() bool { return true }
func (s *fakeService) do(c string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, c)
	if c == s.failOn {
		s.state = "failed"
		return fmt.Errorf("%s failed", c)
	}
	switch c {
	case "restart":
		s.state = "active"
	case "stop":
		s.state = "inactive"
	}
	return nil
}
func (s *fakeService) Enable(context.Context) error  { return s.do("enable") }
func (s *fakeService) Restart(context.Context) error { return s.do("restart") }
func (s *fakeService) Stop(context.Context) error    { return s.do("stop") }
func (s *fakeService) State(context.Context) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state == "" {
		return "inactive", nil
	}
	return s.state, nil
}
func (s *fakeService) Status(context.Context) string { return "waxmpp.service: " + s.state }
func (s *fakeService) Calls() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.calls, ",")
}

// env is one test's machine: an XMPP server, DNS for it, the simulated
// WhatsApp, and a root file system in a temp dir.
type env struct {
	t     *testing.T
	srv   *pt.Server
	dir   string
	paths Paths
	svc   *fakeService
	sock  string
	opts  Options
}

func newEnv(t *testing.T, o pt.Options) *env {
	t.Helper()
	srv := pt.Start(t, o)
	dir := t.TempDir()
	e := &env{t: t, srv: srv, dir: dir, svc: &fakeService{},
		paths: Paths{
			Config:     filepath.Join(dir, "etc/waxmpp/config.toml"),
			Credential: filepath.Join(dir, "etc/credstore/waxmpp.password"),
			SetupCode:  filepath.Join(dir, "var/lib/waxmpp/setup-code"),
		},
		sock: filepath.Join(dir, "sim.sock"),
	}
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	e.opts = Options{
		Paths:         e.paths,
		Resolver:      fakeDNS{domains: map[string]int{pt.Domain: srv.C2SPort}},
		CAFile:        srv.CAFile,
		Service:       e.svc,
		ServiceUser:   me.Username,
		DialTimeout:   10 * time.Second,
		SettleTimeout: 5 * time.Second,
		OpenWhatsApp: func(ctx context.Context, db *store.DB, log *slog.Logger, events chan<- bridge.Event) (WhatsApp, error) {
			return simwa.New(simwa.Config{Socket: e.sock, Events: events, Log: log, Unpaired: true})
		},
		Log: slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	return e
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// flow starts a flow on the env; it is closed when the test ends.
func (e *env) flow() *Flow {
	e.t.Helper()
	f, err := New(e.opts)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { f.Close() })
	return f
}

// storePath puts the state file in the test's dir: a config naming it
// exists before setup (the defaults point at /var/lib/waxmpp).
func (e *env) storeConfig() {
	e.t.Helper()
	os.MkdirAll(filepath.Dir(e.paths.Config), 0o750)
	db := filepath.Join(e.dir, "var/lib/waxmpp/waxmpp.db")
	os.MkdirAll(filepath.Dir(db), 0o700)
	if err := os.WriteFile(e.paths.Config, []byte(fmt.Sprintf("[store]\npath = %q\n", db)), 0o640); err != nil {
		e.t.Fatal(err)
	}
}

// waitFor waits until cond holds for the flow's state.
func waitFor(t *testing.T, f *Flow, what string, cond func(State) bool) State {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		ch := f.Changed()
		s := f.State()
		if cond(s) {
			return s
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("%s: not within 30s; state %+v", what, s)
		}
	}
}

// accept plays the owner's app: it accepts the bot's request.
func accept(t *testing.T, owner *pt.Client, bot string) {
	t.Helper()
	owner.Next(t, 20*time.Second, func(e *pt.Elem) bool {
		return e.XMLName.Local == "presence" && e.Attr("type") == "subscribe" && strings.HasPrefix(e.Attr("from"), bot)
	})
	owner.Send("<presence to='" + bot + "' type='subscribed'/>")
}

// sim connects to the simulated WhatsApp once the flow started linking.
func (e *env) sim() *simwa.Client {
	e.t.Helper()
	c, err := simwa.Dial(e.sock, 10*time.Second)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.Close() })
	return c
}

// link plays the phone: a second QR code, then the scan.
func (e *env) link(f *Flow) {
	e.t.Helper()
	waitFor(e.t, f, "the first QR code", func(s State) bool { return s.Pair != nil && s.Pair.N == 1 })
	c := e.sim()
	if err := c.Inject(&bridge.PairCode{QR: "2@second-code", Expires: time.Now().Add(20 * time.Second)}); err != nil {
		e.t.Fatal(err)
	}
	waitFor(e.t, f, "the rotated QR code", func(s State) bool { return s.Pair != nil && s.Pair.N == 2 && s.Pair.QR == "2@second-code" })
	if err := c.Inject(&bridge.PairResult{OK: true, ID: "491701234567@s.whatsapp.net", Name: "Alice"},
		&bridge.Status{State: bridge.Connected}); err != nil {
		e.t.Fatal(err)
	}
}

func mode(t *testing.T, p string) string {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm().String()
}
