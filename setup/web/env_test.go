package web

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"waxmpp/bridge"
	pt "waxmpp/bridge/prosodytest"
	"waxmpp/bridge/qr"
	"waxmpp/bridge/simwa"
	"waxmpp/bridge/store"
	"waxmpp/setup"
)

// dns answers for the test server's domain as real DNS would.
type dns struct{ port int }

func (d dns) LookupSRV(ctx context.Context, service, proto, name string) (string, []*net.SRV, error) {
	if name == pt.Domain && service == "xmpp-client" {
		return "", []*net.SRV{{Target: "127.0.0.1.", Port: uint16(d.port)}}, nil
	}
	return "", nil, &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
}

func (d dns) LookupHost(ctx context.Context, host string) ([]string, error) {
	if host == pt.Domain {
		return []string{"127.0.0.1"}, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

// service stands in for systemd (the install test runs the real one).
type service struct {
	mu    sync.Mutex
	state string
}

func (s *service) Present() bool                 { return true }
func (s *service) Enable(context.Context) error  { return nil }
func (s *service) Stop(context.Context) error    { return nil }
func (s *service) Status(context.Context) string { return "" }
func (s *service) Restart(context.Context) error {
	s.mu.Lock()
	s.state = "active"
	s.mu.Unlock()
	return nil
}
func (s *service) State(context.Context) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state, nil
}

// env is a machine with the setup page served on loopback.
type env struct {
	t    *testing.T
	srv  *pt.Server
	dir  string
	sock string
	flow *setup.Flow
	web  *Server
	url  string
	code string
	done chan error
}

const testCode = "K7WQ-3MXP-9TRD"

func newEnv(t *testing.T, o pt.Options) *env {
	t.Helper()
	srv := pt.Start(t, o)
	dir := t.TempDir()
	e := &env{t: t, srv: srv, dir: dir, sock: filepath.Join(dir, "sim.sock"), code: testCode, done: make(chan error, 1)}
	cfg := filepath.Join(dir, "config.toml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("[store]\npath = %q\n", filepath.Join(dir, "waxmpp.db"))), 0o640)
	me, _ := user.Current()
	log := slog.New(slog.NewTextHandler(testWriter{t}, nil))
	f, err := setup.New(setup.Options{
		Paths:       setup.Paths{Config: cfg, SetupCode: filepath.Join(dir, "setup-code")},
		Resolver:    dns{srv.C2SPort},
		CAFile:      srv.CAFile,
		Service:     &service{},
		ServiceUser: me.Username,
		DialTimeout: 10 * time.Second, SettleTimeout: 5 * time.Second,
		OpenWhatsApp: func(ctx context.Context, db *store.DB, log *slog.Logger, events chan<- bridge.Event) (setup.WhatsApp, error) {
			return simwa.New(simwa.Config{Socket: e.sock, Events: events, Log: log, Unpaired: true})
		},
		Log: log,
	})
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "setup-code"), []byte(testCode+"\n"), 0o600)
	e.flow = f
	ctx, cancel := context.WithCancel(context.Background())
	w, err := New(ctx, Options{Flow: f, Code: testCode, Listen: "127.0.0.1:0", QR: qr.PNG, Log: log, Linger: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	e.web = w
	e.url = "http://" + w.Addrs()[0] + "/"
	go func() { e.done <- w.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-e.done
		e.done <- nil
		f.Close()
	})
	return e
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// browser starts headless Chromium (Debian's /usr/bin/chromium) with a
// profile of its own; DNS resolves nothing, so it can reach loopback
// addresses only.
func browser(t *testing.T, width, height int, mobile bool) context.Context {
	t.Helper()
	if _, err := os.Stat("/usr/bin/chromium"); err != nil {
		t.Fatalf("Debian's chromium is not installed (apt-get install chromium): the setup page's tests need a real browser and are never skipped")
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath("/usr/bin/chromium"),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-default-browser-check", true),
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(width, height),
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelB := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	t.Cleanup(func() { cancelB(); cancelA() })
	// The browser starts with the first Run, on this context, which has no
	// timeout.
	var err error
	if mobile {
		_, err = chromedp.Run(ctx, chromedp.EmulateViewport(int64(width), int64(height), chromedp.EmulateMobile, chromedp.EmulateScale(2)))
	} else {
		_, err = chromedp.Run(ctx, chromedp.Sleep(0))
	}
	if err != nil {
		t.Fatal(err)
	}
	return ctx
}

// shot keeps a screenshot of the page under testdata, for people to look
// at: the last run's replace the earlier ones. It is not a check: a
// capture that takes longer than 30 s (headless Chromium's full-page
// capture once hung for 19 minutes, until the test binary's timeout, in
// a run beside a QEMU boot) is given up and said, and the flow goes on.
func shot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	b, err := chromedp.Run(sctx, chromedp.FullScreenshot(100))
	if errors.Is(err, context.DeadlineExceeded) {
		t.Logf("screenshot %s not taken: no capture within 30 s", name)
		return
	}
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.MkdirAll("testdata/screenshots", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join("testdata/screenshots", name+".png"), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// run runs chromedp actions with a timeout, failing the test on error.
func run(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	get(t, ctx, what, chromedp.Steps(actions...))
}

// get runs one action that returns a value.
func get[T any](t *testing.T, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(tctx, a)
	if err != nil {
		body, _ := chromedp.Run(ctx, chromedp.Text("body"))
		t.Fatalf("%s: %v\nthe page says:\n%s", what, err, body)
	}
	return v
}

// eval evaluates a JavaScript expression.
func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	return get(t, ctx, expr, chromedp.Evaluate[T](expr))
}

// text is the visible text of sel.
func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	return get(t, ctx, "read "+sel, chromedp.Text(sel))
}

// enterCode takes the browser past the setup code.
func (e *env) enterCode(ctx context.Context) {
	e.t.Helper()
	run(e.t, ctx, "open the page", chromedp.Navigate(e.url), chromedp.WaitVisible("#code"))
	run(e.t, ctx, "enter the code", chromedp.SendKeys("#code", strings.ToLower(strings.ReplaceAll(e.code, "-", " "))),
		chromedp.Submit("#code"), chromedp.WaitVisible("#owner"))
}

// sim connects to the simulated WhatsApp of the current attempt.
func (e *env) sim() *simwa.Client {
	e.t.Helper()
	c, err := simwa.Dial(e.sock, 10*time.Second)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.Close() })
	return c
}

// gone says whether nothing answers at the page's address any more.
func (e *env) gone() bool {
	c := &http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(e.url)
	if err == nil {
		resp.Body.Close()
		return false
	}
	return true
}
