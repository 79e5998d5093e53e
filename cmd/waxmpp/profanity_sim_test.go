//go:build simwa

package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	pt "waxmpp/bridge/prosodytest"
)

// profanity is a real owner client in the test: Debian's profanity (a
// terminal XMPP client), typed into through tmux, its screen read back.
type profanity struct {
	tb   testing.TB
	sock string // tmux's server socket (-S), private to the test
	home string
}

// startProfanity starts profanity in a tmux session of its own, as user
// on srv, and logs in. profanity and tmux are Debian packages the tests
// need (.ci/run installs them): a missing one fails the test.
func startProfanity(tb testing.TB, srv *pt.Server, user string) *profanity {
	tb.Helper()
	for _, bin := range []string{"profanity", "tmux"} {
		if _, err := exec.LookPath(bin); err != nil {
			tb.Fatalf("%s is not installed (apt-get install %s): the client tests drive a real profanity", bin, bin)
		}
	}
	dir, err := os.MkdirTemp("", "wxp")
	if err != nil {
		tb.Fatal(err)
	}
	p := &profanity{tb: tb, sock: filepath.Join(dir, "tmux"), home: filepath.Join(dir, "home")}
	tb.Cleanup(func() {
		exec.Command("tmux", "-S", p.sock, "kill-server").Run()
		if !tb.Failed() {
			os.RemoveAll(dir)
		}
	})
	env := "env HOME=" + p.home + " XDG_CONFIG_HOME=" + p.home + "/.config XDG_DATA_HOME=" + p.home + "/.local/share TERM=xterm-256color"
	if out, err := exec.Command("tmux", "-S", p.sock, "new-session", "-d", "-s", "p", "-x", "250", "-y", "60", env+" profanity -l DEBUG").CombinedOutput(); err != nil {
		tb.Fatalf("tmux: %v\n%s", err, out)
	}
	p.wait(20*time.Second, "Type '/help'")
	_, port, _ := strings.Cut(srv.Addr(), ":")
	p.line("/connect " + user + "@" + pt.Domain + " server 127.0.0.1 port " + port + " tls trust")
	p.wait(10*time.Second, "password")
	p.line(pt.Password(user))
	p.wait(20*time.Second, "logged in successfully")
	return p
}

// line types text and Enter, as the owner does.
func (p *profanity) line(text string) {
	p.tb.Helper()
	if out, err := exec.Command("tmux", "-S", p.sock, "send-keys", "-t", "p", "-l", text).CombinedOutput(); err != nil {
		p.tb.Fatalf("tmux send-keys: %v\n%s", err, out)
	}
	if out, err := exec.Command("tmux", "-S", p.sock, "send-keys", "-t", "p", "Enter").CombinedOutput(); err != nil {
		p.tb.Fatalf("tmux send-keys: %v\n%s", err, out)
	}
}

// screen is what the terminal shows (the current window, with its
// scrollback), lines joined where profanity wrapped them.
func (p *profanity) screen() string {
	out, err := exec.Command("tmux", "-S", p.sock, "capture-pane", "-p", "-J", "-t", "p", "-S", "-1000").Output()
	if err != nil {
		p.tb.Fatalf("tmux capture-pane: %v", err)
	}
	return string(out)
}

// wait waits until the screen shows want, and returns the screen.
func (p *profanity) wait(d time.Duration, want string) string {
	p.tb.Helper()
	deadline := time.Now().Add(d)
	for {
		s := p.screen()
		if strings.Contains(s, want) {
			return s
		}
		if time.Now().After(deadline) {
			p.tb.Fatalf("profanity does not show %q within %v; it shows:\n%s", want, d, tail(s, 40))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

var fingerprintRE = regexp.MustCompile(`OMEMO fingerprint: ([0-9a-f-]{40,})`)

// omemoTrust trusts the first OMEMO fingerprint profanity shows for jid.
func (p *profanity) omemoTrust(jid string) {
	p.tb.Helper()
	// profanity knows the fingerprint once it has fetched the device list
	// and the bundle, in its own time: ask until it shows one.
	var m []string
	for deadline := time.Now().Add(30 * time.Second); m == nil; {
		p.line("/omemo fingerprint " + jid)
		time.Sleep(time.Second)
		m = fingerprintRE.FindStringSubmatch(p.screen())
		if m == nil && time.Now().After(deadline) {
			p.tb.Fatalf("no fingerprint of %s shown:\n%s", jid, tail(p.screen(), 20))
		}
	}
	p.line("/omemo trust " + strings.ReplaceAll(m[1], "-", ""))
	p.wait(10*time.Second, "(trusted)")
	// Trusting fetches the device's bundle again and builds the session
	// when it comes; a line typed before that is dropped ("cannot
	// encrypt key ... code: -1000" in its log, nothing sent). Its debug
	// log says when the session is there.
	p.waitLog(0, wait, "create session with "+jid)
}

// logPath is profanity's own log (it runs with -l DEBUG).
func (p *profanity) logPath() string {
	return filepath.Join(p.home, ".local", "share", "profanity", "logs", "profanity.log")
}

// logSize is how much profanity has logged so far: waitLog after it looks
// only at what comes later.
func (p *profanity) logSize() int {
	b, _ := os.ReadFile(p.logPath()) // absent until profanity writes it
	return len(b)
}

// waitLog waits until a line of profanity's log, after its first from
// bytes, contains every one of want.
func (p *profanity) waitLog(from int, d time.Duration, want ...string) {
	p.tb.Helper()
	deadline := time.Now().Add(d)
	for {
		b, _ := os.ReadFile(p.logPath())
		if from <= len(b) {
			for _, l := range strings.Split(string(b[from:]), "\n") {
				if containsAll(l, want) {
					return
				}
			}
		}
		if time.Now().After(deadline) {
			p.tb.Fatalf("profanity's log (%s) has no line with %q within %v", p.logPath(), want, d)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func containsAll(s string, parts []string) bool {
	for _, w := range parts {
		if !strings.Contains(s, w) {
			return false
		}
	}
	return true
}
