//go:build simwa

package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"waxmpp/bridge"
	pt "waxmpp/bridge/prosodytest"
	"waxmpp/bridge/simwa"
)

// screen is a program running on a pseudo-terminal, read and typed into
// as a person would.
type screen struct {
	t    *testing.T
	cmd  *exec.Cmd
	ptm  *os.File
	mu   sync.Mutex
	out  bytes.Buffer // everything shown, escapes removed
	pos  int          // where the next expect starts
	done chan error
}

var ansi = regexp.MustCompile(`\x1b\[[0-9;?]*[A-Za-z]`)

// openPTY opens a pseudo-terminal pair (posix_openpt, unlockpt, ptsname).
func openPTY(t *testing.T) (ptm, pts *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	unix.IoctlSetWinsize(int(s.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 60, Col: 120})
	return m, s
}

// startScreen runs bin with args on a new terminal, in a session of its
// own (the terminal is its controlling one: Ctrl-C reaches it).
func startScreen(t *testing.T, bin string, args ...string) *screen {
	t.Helper()
	ptm, pts := openPTY(t)
	cmd := exec.Command(bin, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = pts, pts, pts
	cmd.Env = append(os.Environ(), "TERM=xterm")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pts.Close()
	s := &screen{t: t, cmd: cmd, ptm: ptm, done: make(chan error, 1)}
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := ptm.Read(buf)
			if n > 0 {
				s.mu.Lock()
				s.out.Write(ansi.ReplaceAll(buf[:n], nil))
				s.mu.Unlock()
			}
			if err != nil {
				return
			}
		}
	}()
	go func() { s.done <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		select {
		case <-s.done:
		case <-time.After(5 * time.Second):
		}
		ptm.Close()
		if t.Failed() {
			t.Logf("the screen:\n%s", s.all())
		}
	})
	return s
}

func (s *screen) all() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.out.String()
}

// expect waits until the screen shows what re matches after what was
// already read, and returns the match (and its groups).
func (s *screen) expect(re string, timeout time.Duration) []string {
	s.t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.Now().Add(timeout)
	for {
		s.mu.Lock()
		rest := s.out.String()[s.pos:]
		if loc := rx.FindStringSubmatchIndex(rest); loc != nil {
			m := rx.FindStringSubmatch(rest)
			s.pos += loc[1]
			s.mu.Unlock()
			return m
		}
		s.mu.Unlock()
		if time.Now().After(deadline) {
			s.t.Fatalf("the screen never showed %q; after the last match it shows:\n%s", re, rest)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// typeLine types a line and Enter.
func (s *screen) typeLine(text string) {
	s.t.Helper()
	if _, err := s.ptm.Write([]byte(text + "\r")); err != nil {
		s.t.Fatal(err)
	}
}

// wait waits for the program to end and returns its exit code.
func (s *screen) wait(timeout time.Duration) int {
	s.t.Helper()
	select {
	case err := <-s.done:
		s.done <- err
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode()
		}
		if err != nil {
			s.t.Fatal(err)
		}
		return 0
	case <-time.After(timeout):
		s.t.Fatalf("the program did not end within %v", timeout)
		return -1
	}
}

// termEnv is a machine for setup's terminal tests: a server, a config dir
// with the state file's place, the simulated WhatsApp's socket.
type termEnv struct {
	srv            *pt.Server
	dir, cfg, sock string
	args           []string
	credential     string
}

func newTermEnv(t *testing.T, o pt.Options) *termEnv {
	srv := pt.Start(t, o)
	dir := t.TempDir()
	e := &termEnv{srv: srv, dir: dir, cfg: filepath.Join(dir, "config.toml"), sock: filepath.Join(dir, "sim.sock")}
	e.credential = filepath.Join(dir, "password")
	if err := os.WriteFile(e.cfg, []byte(fmt.Sprintf("[store]\npath = %q\n", filepath.Join(dir, "state", "waxmpp.db"))), 0o640); err != nil {
		t.Fatal(err)
	}
	os.Mkdir(filepath.Join(dir, "state"), 0o700)
	e.args = []string{"setup", "--config", e.cfg, "--server", srv.Addr(), "--ca-file", srv.CAFile, "--simulator", e.sock}
	return e
}

// playPhone links the simulated WhatsApp: it waits for the first code,
// rotates it once and scans the second.
func playPhone(t *testing.T, s *screen, sock string) {
	t.Helper()
	s.expect(`Code 1, valid for \d+s`, 30*time.Second)
	c, err := simwa.Dial(sock, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Inject(&bridge.PairCode{QR: "2@rotated", Expires: time.Now().Add(20 * time.Second)}); err != nil {
		t.Fatal(err)
	}
	s.expect(`Code 2, valid for (1\d|20)s`, 10*time.Second)
	if err := c.Inject(&bridge.PairResult{OK: true, ID: "491701234567@s.whatsapp.net", Name: "Alice"}, &bridge.Status{State: bridge.Connected}); err != nil {
		t.Fatal(err)
	}
}

// TestSetupTerminal: a person sets waxmpp up in a terminal with a bot
// account they have: a wrong address, a wrong password (not echoed), the
// owner accepting in their app, a QR code that rotates and is scanned.
func TestSetupTerminal(t *testing.T) {
	e := newTermEnv(t, pt.Options{})
	owner := e.srv.Dial(t, "owner")
	s := startScreen(t, simBinary(t), e.args...)
	s.expect(`Your address, such as me@example.org: `, 20*time.Second)
	s.typeLine("me")
	s.expect(`That is not an XMPP address`, 10*time.Second)
	s.expect(`Your address, such as me@example.org: `, 10*time.Second)
	s.typeLine("owner@" + pt.Domain)
	s.expect(`3\) I have an account for the bot`, 10*time.Second)
	s.expect(`Choose \[1\]: `, 5*time.Second)
	s.typeLine("3")
	s.expect(`The bot account's address: `, 5*time.Second)
	s.typeLine("bot@" + pt.Domain)
	s.expect(`Its password \(not shown\): `, 5*time.Second)
	s.typeLine("wrong-secret-password")
	s.expect(`refused the password for bot@`, 20*time.Second)
	s.expect(`Choose \[1\]: `, 5*time.Second)
	s.typeLine("3")
	s.expect(`The bot account's address: `, 5*time.Second)
	s.typeLine("bot@" + pt.Domain)
	s.expect(`Its password \(not shown\): `, 5*time.Second)
	s.typeLine(pt.Password("bot"))
	s.expect(`accept the request from bot@`+pt.Domain, 20*time.Second)
	owner.Next(t, 20*time.Second, func(el *pt.Elem) bool { return el.Attr("type") == "subscribe" })
	owner.Send("<presence to='bot@" + pt.Domain + "' type='subscribed'/>")
	s.expect(`4\. Link WhatsApp`, 20*time.Second)
	s.expect(`Choose \[1\]: `, 5*time.Second)
	s.typeLine("1")
	playPhone(t, s, e.sock)
	s.expect(`Done\. waxmpp is set up`, 30*time.Second)
	s.expect(`WhatsApp: +\+491701234567 \(Alice\)`, 5*time.Second)
	s.expect(`(?i)write /help to bot@`+pt.Domain+` in your XMPP app\.`, 5*time.Second)
	if code := s.wait(10 * time.Second); code != 0 {
		t.Fatalf("exit %d", code)
	}
	if all := s.all(); strings.Contains(all, "wrong-secret-password") || strings.Contains(all, pt.Password("bot")) {
		t.Errorf("a password was shown on the screen")
	}
	cfg, _ := os.ReadFile(e.cfg)
	pw, _ := os.ReadFile(e.credential)
	if !strings.Contains(string(cfg), "jid = 'bot@"+pt.Domain+"'") || strings.TrimSpace(string(pw)) != pt.Password("bot") {
		t.Fatalf("config:\n%s\ncredential %q", cfg, pw)
	}
}

// TestSetupTerminalRegister: a new bot account on a server that asks for
// an email address; the person skips waiting for the subscription (Enter)
// and links WhatsApp later.
func TestSetupTerminalRegister(t *testing.T) {
	e := newTermEnv(t, pt.Options{Registration: pt.RegisterFields})
	s := startScreen(t, simBinary(t), e.args...)
	s.expect(`Your address, such as me@example.org: `, 20*time.Second)
	s.typeLine("Owner@" + pt.Domain)
	s.expect(`1\) Create a new account owner\.whatsapp@`+pt.Domain, 10*time.Second)
	s.expect(`Choose \[1\]: `, 5*time.Second)
	s.typeLine("")
	s.expect(`asks for more to create the account`, 20*time.Second)
	s.expect(`Email \(required\): `, 5*time.Second)
	s.typeLine("")
	s.expect(`Fill in “Email”`, 10*time.Second)
	s.expect(`Email \(required\): `, 5*time.Second)
	s.typeLine("owner@example.org")
	s.expect(`Full Name: `, 5*time.Second)
	s.typeLine("")
	s.expect(`press Enter to skip`, 20*time.Second)
	s.typeLine("")
	s.expect(`Choose \[1\]: `, 10*time.Second)
	s.typeLine("3")
	s.expect(`(?i)write /pair to owner\.whatsapp@`+pt.Domain, 20*time.Second)
	if code := s.wait(10 * time.Second); code != 0 {
		t.Fatalf("exit %d", code)
	}
	// The generated password was never shown, and it works.
	pw, _ := os.ReadFile(e.credential)
	password := strings.TrimSpace(string(pw))
	if len(password) != 24 || strings.Contains(s.all(), password) {
		t.Fatalf("generated password: %d characters, shown: %v", len(password), strings.Contains(s.all(), password))
	}
	c, err := pt.DialClient(e.srv.Addr(), e.srv.TLSConfig(), "owner.whatsapp@"+pt.Domain, password)
	if err != nil {
		t.Fatalf("the new account does not log in: %v", err)
	}
	c.Close()
}

// TestSetupTerminalCtrlC: on a configured system, the person starts
// changing the owner and presses Ctrl-C while the bot waits: the config
// and the password stay as they were, byte for byte.
func TestSetupTerminalCtrlC(t *testing.T) {
	e := newTermEnv(t, pt.Options{})
	// Configured by a script: flags, no terminal.
	pwFile := filepath.Join(e.dir, "pw")
	os.WriteFile(pwFile, []byte(pt.Password("bot")+"\n"), 0o600)
	cmd := exec.Command(simBinary(t), append(e.args, "--owner", "owner@"+pt.Domain, "--jid", "bot@"+pt.Domain, "--password-file", pwFile)...)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "write /pair to bot@"+pt.Domain) {
		t.Fatalf("non-interactive setup: %v\n%s", err, out)
	}
	before, _ := os.ReadFile(e.cfg)
	beforePW, _ := os.ReadFile(e.credential)

	s := startScreen(t, simBinary(t), e.args...)
	s.expect(`waxmpp is set up:`, 20*time.Second)
	s.expect(`your address: +owner@`+pt.Domain, 5*time.Second)
	s.expect(`Choose \[4\]: `, 5*time.Second)
	s.typeLine("1")
	s.expect(`Your address, such as me@example.org \[owner@`+pt.Domain+`\]: `, 5*time.Second)
	s.typeLine("stranger@" + pt.Domain)
	s.expect(`press Enter to skip`, 20*time.Second)
	s.ptm.Write([]byte{3}) // Ctrl-C
	s.expect(`setup stopped; nothing was changed`, 10*time.Second)
	if code := s.wait(10 * time.Second); code == 0 {
		t.Errorf("exit 0 after Ctrl-C")
	}
	after, _ := os.ReadFile(e.cfg)
	afterPW, _ := os.ReadFile(e.credential)
	if !bytes.Equal(before, after) || !bytes.Equal(beforePW, afterPW) {
		t.Fatalf("Ctrl-C changed the config:\n%s\n---\n%s", before, after)
	}
}

// TestSetupTerminalCaptcha: in a terminal the CAPTCHA is a web address;
// the person opens it, reads the picture and types the text.
func TestSetupTerminalCaptcha(t *testing.T) {
	e := newTermEnv(t, pt.Options{Kind: pt.Ejabberd, Registration: pt.RegisterCaptcha, NoShaper: true})
	s := startScreen(t, simBinary(t), e.args...)
	s.expect(`Your address, such as me@example.org: `, 20*time.Second)
	s.typeLine("owner@" + pt.Domain)
	s.expect(`Choose \[1\]: `, 10*time.Second)
	s.typeLine("1")
	url := s.expect(`(https://127\.0\.0\.1:\d+/captcha/\S+)`, 20*time.Second)[1]
	// The person opens the page: it shows the picture.
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: e.srv.TLSConfig()}, Timeout: 10 * time.Second}
	resp, err := hc.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.HasPrefix(body, []byte("\x89PNG")) {
		t.Fatalf("%s: %s, not a picture", url, resp.Status)
	}
	answers := e.srv.CaptchaAnswers()
	s.expect(`Enter the text you see \(required\): `, 5*time.Second)
	s.typeLine(answers[len(answers)-1])
	s.expect(`press Enter to skip`, 30*time.Second)
	s.typeLine("")
	s.expect(`Choose \[1\]: `, 10*time.Second)
	s.typeLine("3")
	s.expect(`(?i)write /pair to owner\.whatsapp@`+pt.Domain, 30*time.Second)
	if code := s.wait(10 * time.Second); code != 0 {
		t.Fatalf("exit %d", code)
	}
}

// TestSetupScript: no terminal, every answer a flag: --register creates
// the bot account on the owner's server; WhatsApp is left for /pair.
func TestSetupScript(t *testing.T) {
	e := newTermEnv(t, pt.Options{Registration: pt.RegisterOpen})
	out, err := exec.Command(simBinary(t), append(e.args, "--owner", "owner@"+pt.Domain, "--register")...).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "write /pair to owner.whatsapp@"+pt.Domain) {
		t.Fatalf("setup --register: %v\n%s", err, out)
	}
	cfg, _ := os.ReadFile(e.cfg)
	if !strings.Contains(string(cfg), "jid = 'owner.whatsapp@"+pt.Domain+"'") {
		t.Fatalf("config:\n%s", cfg)
	}
	// A question no flag answers, and nobody to ask: it says which flag.
	f := newTermEnv(t, pt.Options{})
	out, err = exec.Command(simBinary(t), f.args...).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "give it as a flag") {
		t.Fatalf("setup without a terminal or flags: %v\n%s", err, out)
	}
}
