//go:build installtest

package installtest

// TestSetup is the setup issue's "done when": a fresh Debian with the
// package installed and only an XMPP account (the owner's, on a server that
// lets apps create accounts) reaches a working bridge with `waxmpp setup`
// alone, first through the web page (waxmpp-setup.service, driven in
// Chromium), then, after a purge, in a terminal. The package is a test
// build (-tags simwa) so that the simulated WhatsApp can play the phone;
// everything else is the real package on a booted systemd, and the bot's
// server is found the way a real one is: an SRV record, from a DNS server
// this test runs on the machine's 127.0.0.1:53, and a certificate the
// machine trusts like any public CA's.

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"golang.org/x/net/dns/dnsmessage"
	"golang.org/x/sys/unix"

	"waxmpp/bridge"
	"waxmpp/bridge/prosodytest"
	"waxmpp/bridge/simwa"
)

var (
	setupRootfs = flag.String("setup-rootfs", "", "a second bookworm rootfs, for TestSetup")
	repo3Flag   = flag.String("repo3", "", "the signed repository with the test build (-tags simwa) of the package")
)

// Where the simulated WhatsApp's control sockets are, inside the machine:
// setup's (the page's, or the terminal's), and the service's.
const (
	simDir     = "/var/lib/waxmpp-sim"
	setupSock  = simDir + "/setup.sock"
	bridgeSock = "/var/lib/waxmpp/sim.sock"
)

func TestSetup(t *testing.T) {
	if *setupRootfs == "" || *repo3Flag == "" {
		t.Fatal("run.sh gives -setup-rootfs and -repo3 (make test-install)")
	}
	xmpp := prosodytest.Start(t, prosodytest.Options{Registration: prosodytest.RegisterOpen})
	startDNS(t, xmpp.C2SPort)
	serveDir := t.TempDir()
	serve(t, serveDir, *repo3Flag)
	start := time.Now()
	m := boot(t, *setupRootfs, serveDir)
	t.Logf("TIMING %-28s %6.1fs", "boot", time.Since(start).Seconds())
	ca, err := os.ReadFile(xmpp.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	// The machine: its DNS is the test's; it trusts the test CA as it
	// would Let's Encrypt; its only apt source is the test repository.
	os.WriteFile(filepath.Join(m.root, "usr/local/share/ca-certificates/waxmpp-test.crt"), ca, 0o644)
	m.must("rm -f /etc/resolv.conf; echo 'nameserver 127.0.0.1' > /etc/resolv.conf; update-ca-certificates >/dev/null")
	m.must("rm -f /etc/apt/sources.list /etc/apt/sources.list.d/*; cp " + *aptPath + "/waxmpp-archive-keyring.gpg /usr/share/keyrings/ && cp " + *aptPath + "/waxmpp.sources /etc/apt/sources.list.d/ && apt-get update -qq")
	// The test build's service gets the simulated WhatsApp (which starts
	// linked), and the page's setup its own.
	m.must("mkdir -p -m 0700 " + simDir + " /etc/systemd/system/waxmpp.service.d /etc/systemd/system/waxmpp-setup.service.d")
	m.must(`printf '[Service]\nExecStart=\nExecStart=/usr/bin/waxmpp run --config /etc/waxmpp/config.toml --simulator ` + bridgeSock + `\n' > /etc/systemd/system/waxmpp.service.d/simulator.conf`)
	m.must(`printf '[Service]\nExecStart=\nExecStart=/usr/bin/waxmpp setup --web --listen :80 --code-file /var/lib/waxmpp/setup-code --simulator ` + setupSock + `\n' > /etc/systemd/system/waxmpp-setup.service.d/simulator.conf`)

	step(t, "web setup", func(t *testing.T) {
		m.t = t
		m.must("apt-get install -y -qq waxmpp && systemctl daemon-reload")
		// What the SD image's first boot leaves: a setup code.
		m.must("install -d -m 0700 -o waxmpp -g waxmpp /var/lib/waxmpp && echo 'TEST-CODE-1234' > /var/lib/waxmpp/setup-code && chown waxmpp:waxmpp /var/lib/waxmpp/setup-code && chmod 600 /var/lib/waxmpp/setup-code")
		m.must("systemctl start waxmpp-setup")
		if s := m.unit("waxmpp-setup", "ActiveState"); s != "active" {
			t.Fatalf("waxmpp-setup.service: %s", s)
		}
		waitHTTP(t, "http://127.0.0.1/")
		webSetup(t, m, xmpp)
		m.waitUnit("the setup page closed", 30*time.Second, func() bool { return m.unit("waxmpp-setup", "ActiveState") == "inactive" })
		if r := m.unit("waxmpp-setup", "Result"); r != "success" {
			t.Errorf("waxmpp-setup.service ended with %s", r)
		}
		if _, err := http.Get("http://127.0.0.1/"); err == nil {
			t.Errorf("the setup page still answers")
		}
		// Closed for good: it does not start again.
		m.must("systemctl start waxmpp-setup")
		if s := m.unit("waxmpp-setup", "ConditionResult"); s != "no" {
			t.Errorf("waxmpp-setup.service started again (ConditionResult %s)", s)
		}
		m.must("test ! -e /var/lib/waxmpp/setup-code")
		checkWorking(t, m, xmpp, "web.bot@"+prosodytest.Domain)
	})

	step(t, "purge", func(t *testing.T) {
		m.t = t
		m.must("apt-get purge -y -qq waxmpp && rm -rf " + simDir + "/*")
		m.must("test ! -e /etc/waxmpp && test ! -e /var/lib/waxmpp && test ! -e /etc/credstore/waxmpp.password")
	})

	step(t, "terminal setup", func(t *testing.T) {
		m.t = t
		m.must("apt-get install -y -qq waxmpp")
		s := m.screen(t, "waxmpp", "setup", "--simulator", setupSock)
		owner := xmpp.Dial(t, "owner")
		s.expect(`Your address, such as me@example.org: `, 30*time.Second)
		s.typeLine("owner@" + prosodytest.Domain)
		s.expect(`1\) Create a new account owner\.whatsapp@`+regexp.QuoteMeta(prosodytest.Domain), 20*time.Second)
		s.expect(`Choose \[1\]: `, 5*time.Second)
		s.typeLine("")
		s.expect(`accept the request from owner\.whatsapp@`, 30*time.Second)
		accept(t, owner, "owner.whatsapp@"+prosodytest.Domain)
		s.expect(`4\. Link WhatsApp`, 30*time.Second)
		s.expect(`Choose \[1\]: `, 5*time.Second)
		s.typeLine("1")
		s.expect(`Code 1, valid for \d+s`, 30*time.Second)
		phone(t, m)
		s.expect(`Done\. waxmpp is set up`, 90*time.Second)
		s.expect(`service: +active`, 5*time.Second)
		s.expect(`Write /help to owner\.whatsapp@`+regexp.QuoteMeta(prosodytest.Domain)+` in your XMPP app\.`, 5*time.Second)
		if code := s.wait(20 * time.Second); code != 0 {
			t.Fatalf("waxmpp setup exited %d", code)
		}
		checkWorking(t, m, xmpp, "owner.whatsapp@"+prosodytest.Domain)
		// doctor agrees, but for WhatsApp: the simulated phone linked the
		// simulator, which keeps no device in the state file. (The clock
		// of a test machine may be unsynchronised: a warning.)
		out, _ := m.sh("waxmpp doctor --json 2>/dev/null")
		var res struct {
			Findings []struct{ Check, Status, Message string }
		}
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			t.Fatalf("waxmpp doctor --json: %v\n%s", err, out)
		}
		checks := map[string]bool{}
		for _, f := range res.Findings {
			checks[f.Check] = true
		}
		for _, c := range []string{"clock", "config", "dns", "tls", "login", "subscription", "server", "whatsapp", "state", "service", "ffmpeg"} {
			if !checks[c] {
				t.Errorf("waxmpp doctor --json has no %q check:\n%s", c, out)
			}
		}
		for _, f := range res.Findings {
			if f.Status == "problem" && f.Check != "whatsapp" {
				t.Errorf("doctor: %s: %s", f.Check, f.Message)
			}
		}
		t.Logf("waxmpp doctor:\n%s", m.must("waxmpp doctor || true"))
	})
}

// checkWorking: the service runs as set up, the files are as setup must
// write them, and the bot answers the owner with WhatsApp connected.
func checkWorking(t *testing.T, m *machine, xmpp *prosodytest.Server, bot string) {
	t.Helper()
	if s := m.unit("waxmpp", "ActiveState") + "/" + m.unit("waxmpp", "UnitFileState"); s != "active/enabled" {
		t.Fatalf("waxmpp.service %s after setup", s)
	}
	for path, want := range map[string]string{
		"/etc/waxmpp/config.toml":        "root:waxmpp 640",
		"/etc/credstore/waxmpp.password": "root:root 600",
		"/var/lib/waxmpp/waxmpp.db":      "waxmpp:waxmpp 600",
	} {
		if got := strings.TrimSpace(m.must("stat -c '%U:%G %a' " + path)); got != want {
			t.Errorf("%s is %s, want %s", path, got, want)
		}
	}
	cfg := m.must("cat /etc/waxmpp/config.toml")
	if !strings.Contains(cfg, "jid = '"+bot+"'") || strings.Contains(cfg, "password") && strings.Contains(cfg, "password =") {
		t.Errorf("config:\n%s", cfg)
	}
	owner := xmpp.Dial(t, "owner")
	m.waitUnit("WhatsApp connected", 60*time.Second, func() bool { return strings.Contains(m.unit("waxmpp", "StatusText"), "WhatsApp connected") })
	owner.Send(fmt.Sprintf("<message to='%s' type='chat' id='st-%d'><body>/status</body></message>", bot, time.Now().UnixNano()))
	e := owner.Next(t, 30*time.Second, func(e *prosodytest.Elem) bool {
		return prosodytest.Messages(e) && strings.Contains(e.Body(), "\nWhatsApp: ")
	})
	if !strings.Contains(e.Body(), "WhatsApp: connected") {
		t.Errorf("/status:\n%s", e.Body())
	}
	// A WhatsApp message reaches the owner.
	c, err := simwa.Dial(filepath.Join(m.root, bridgeSock), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Inject(&bridge.Message{Ref: bridge.MsgRef{Chat: "491701111111@s.whatsapp.net", Sender: "491701111111@s.whatsapp.net", ID: fmt.Sprint("M", time.Now().UnixNano())},
		Time: time.Now(), Kind: bridge.Text, Text: "hello through setup", PushName: "Alice"}); err != nil {
		t.Fatal(err)
	}
	owner.Next(t, 30*time.Second, func(e *prosodytest.Elem) bool {
		return prosodytest.Messages(e) && strings.Contains(e.Body(), "hello through setup")
	})
}

// unit reads a property of a unit.
func (m *machine) unit(unit, prop string) string {
	m.t.Helper()
	return strings.TrimSpace(m.must("systemctl show -p " + prop + " --value " + unit + ".service"))
}

// accept plays the owner's app accepting the bot.
func accept(t *testing.T, owner *prosodytest.Client, bot string) {
	t.Helper()
	owner.Next(t, 30*time.Second, func(e *prosodytest.Elem) bool {
		return e.XMLName.Local == "presence" && e.Attr("type") == "subscribe" && strings.HasPrefix(e.Attr("from"), bot)
	})
	owner.Send("<presence to='" + bot + "' type='subscribed'/>")
}

// phone plays the phone on setup's simulated WhatsApp: a second QR code,
// then the scan.
func phone(t *testing.T, m *machine) {
	t.Helper()
	c, err := simwa.Dial(filepath.Join(m.root, setupSock), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Inject(&bridge.PairCode{QR: "2@rotated", Expires: time.Now().Add(20 * time.Second)}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	// The link is done with the result: setup then closes its WhatsApp
	// side, the simulator with it, and may do so before the simulator
	// has handed over the status after it or answered (EOF: the step
	// failed so once). The page's last words are what count: webSetup
	// waits for them.
	err = c.Inject(&bridge.PairResult{OK: true, ID: "491701234567@s.whatsapp.net", Name: "Owner"}, &bridge.Status{State: bridge.Connected})
	if errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) {
		t.Logf("the simulator closed on the link's result: %v", err)
	} else if err != nil {
		t.Fatal(err)
	}
}

// webSetup walks the page in Chromium.
func webSetup(t *testing.T, m *machine, xmpp *prosodytest.Server) {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath("/usr/bin/chromium"),
		chromedp.Flag("headless", true), chromedp.Flag("no-sandbox", true), chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true), chromedp.Flag("no-first-run", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1000, 900),
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelA()
	ctx, cancelB := chromedp.NewContext(actx)
	defer cancelB()
	if _, err := chromedp.Run(ctx, chromedp.Sleep(0)); err != nil {
		t.Fatalf("chromium: %v", err)
	}
	run := func(what string, acts ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		tctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		if _, err := chromedp.Run(tctx, chromedp.Steps(acts...)); err != nil {
			body, _ := chromedp.Run(ctx, chromedp.Text("body"))
			t.Fatalf("%s: %v\nthe page says:\n%s", what, err, body)
		}
	}
	owner := xmpp.Dial(t, "owner")
	run("the code", chromedp.Navigate("http://127.0.0.1/"), chromedp.WaitVisible("#code"),
		chromedp.SendKeys("#code", "test code 1234"), chromedp.Submit("#code"), chromedp.WaitVisible("#owner-addr"))
	run("the owner", chromedp.SendKeys("#owner-addr", "owner@"+prosodytest.Domain), chromedp.Submit("#owner-addr"), chromedp.WaitVisible("#bot-name"))
	run("a new bot", chromedp.SetValue("#bot-name", "web.bot"), chromedp.Submit("#bot-name"), chromedp.WaitVisible("#subscribe"))
	accept(t, owner, "web.bot@"+prosodytest.Domain)
	run("the QR code", chromedp.WaitVisible("#show-qr"), chromedp.Click("#show-qr"), chromedp.WaitVisible("#qr"))
	phone(t, m)
	run("done", chromedp.WaitVisible("#next"))
	next, _ := chromedp.Run(ctx, chromedp.Text("#next"))
	if !strings.Contains(next, "/help to web.bot@"+prosodytest.Domain) {
		t.Errorf("the page's last words: %q", next)
	}
}

func waitHTTP(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing answers at %s: %v", url, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// startDNS answers DNS on 127.0.0.1:53 (UDP and TCP) for the test domain
// as a real zone would: an _xmpp-client._tcp SRV record pointing at the
// server's port, and its address. Other names do not exist.
func startDNS(t *testing.T, port int) {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:53")
	if err != nil {
		t.Fatalf("DNS server: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:53")
	if err != nil {
		t.Fatalf("DNS server: %v", err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { pc.Close(); ln.Close(); wg.Wait() })
	wg.Go(func() {
		buf := make([]byte, 1500)
		for {
			n, addr, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if out := answerDNS(buf[:n], port); out != nil {
				pc.WriteTo(out, addr)
			}
		}
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				var l [2]byte
				if _, err := c.Read(l[:]); err != nil {
					return
				}
				msg := make([]byte, int(l[0])<<8|int(l[1]))
				if _, err := ioReadFull(c, msg); err != nil {
					return
				}
				if out := answerDNS(msg, port); out != nil {
					c.Write(append([]byte{byte(len(out) >> 8), byte(len(out))}, out...))
				}
			}()
		}
	})
}

func ioReadFull(c net.Conn, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		k, err := c.Read(b[n:])
		n += k
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

func answerDNS(req []byte, port int) []byte {
	var p dnsmessage.Parser
	h, err := p.Start(req)
	if err != nil {
		return nil
	}
	q, err := p.Question()
	if err != nil {
		return nil
	}
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RCode: dnsmessage.RCodeSuccess})
	b.EnableCompression()
	b.StartQuestions()
	b.Question(q)
	b.StartAnswers()
	name := strings.ToLower(q.Name.String())
	domain := prosodytest.Domain + "."
	rh := dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 60}
	switch {
	case q.Type == dnsmessage.TypeSRV && name == "_xmpp-client._tcp."+domain:
		b.SRVResource(rh, dnsmessage.SRVResource{Priority: 0, Weight: 1, Port: uint16(port), Target: dnsmessage.MustNewName("xmpp." + domain)})
	case q.Type == dnsmessage.TypeA && (name == domain || name == "xmpp."+domain):
		b.AResource(rh, dnsmessage.AResource{A: [4]byte{127, 0, 0, 1}})
	case name == domain || name == "xmpp."+domain || name == "_xmpp-client._tcp."+domain:
		// the name exists, without records of this type
	default:
		b = dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RCode: dnsmessage.RCodeNameError})
		b.StartQuestions()
		b.Question(q)
	}
	out, err := b.Finish()
	if err != nil {
		return nil
	}
	return out
}

// screen is a program running in the machine on a pseudo-terminal of the
// test's, read and typed into as a person would.
type screen struct {
	t    *testing.T
	ptm  *os.File
	mu   sync.Mutex
	out  strings.Builder
	pos  int
	done chan int
}

var ansi = regexp.MustCompile(`\x1b\[[0-9;?]*[A-Za-z]`)

func (m *machine) screen(t *testing.T, args ...string) *screen {
	t.Helper()
	ptm, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.IoctlSetPointerInt(int(ptm.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(ptm.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	pts, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	unix.IoctlSetWinsize(int(pts.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 60, Col: 120})
	cmd := exec.Command("nsenter", append([]string{"-t", strconv.Itoa(m.leader), "-a",
		"/usr/bin/env", "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8", "TERM=xterm"}, args...)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = pts, pts, pts
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pts.Close()
	s := &screen{t: t, ptm: ptm, done: make(chan int, 1)}
	go func() {
		buf := make([]byte, 4096)
		for {
			k, err := ptm.Read(buf)
			if k > 0 {
				s.mu.Lock()
				s.out.Write(ansi.ReplaceAll(buf[:k], nil))
				s.mu.Unlock()
			}
			if err != nil {
				return
			}
		}
	}()
	go func() {
		cmd.Wait()
		s.done <- cmd.ProcessState.ExitCode()
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		ptm.Close()
		if t.Failed() {
			s.mu.Lock()
			t.Logf("the screen:\n%s", s.out.String())
			s.mu.Unlock()
		}
	})
	return s
}

func (s *screen) expect(re string, timeout time.Duration) {
	s.t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.Now().Add(timeout)
	for {
		s.mu.Lock()
		rest := s.out.String()[s.pos:]
		if loc := rx.FindStringIndex(rest); loc != nil {
			s.pos += loc[1]
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
		if time.Now().After(deadline) {
			s.t.Fatalf("the screen never showed %q; it shows:\n%s", re, rest)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *screen) typeLine(text string) {
	s.t.Helper()
	if _, err := s.ptm.Write([]byte(text + "\r")); err != nil {
		s.t.Fatal(err)
	}
}

func (s *screen) wait(timeout time.Duration) int {
	s.t.Helper()
	select {
	case code := <-s.done:
		return code
	case <-time.After(timeout):
		s.t.Fatalf("the program did not end within %v", timeout)
		return -1
	}
}
