package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	pt "waxmpp/bridge/prosodytest"
)

func prosodyConfig(t *testing.T, srv *pt.Server, password string) string {
	dir := t.TempDir()
	doc := fmt.Sprintf(`[xmpp]
jid = %q
password = %q
owner = %q
server = %q
ca_file = %q
ping_interval = "5s"
ping_timeout = "2s"
[store]
path = %q
[log]
level = "debug"
`, srv.JID("bot"), password, srv.JID("owner"), srv.Addr(), srv.CAFile, filepath.Join(dir, "waxmpp.db"))
	path := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestBinaryWithProsody runs the real binary against a real Prosody: the
// bot logs in, asks the owner for a subscription and shows, in its
// presence, that WhatsApp is not linked; SIGTERM stops it cleanly.
func TestBinaryWithProsody(t *testing.T) {
	srv := pt.Start(t, pt.Options{})
	owner := srv.Dial(t, "owner")
	cmd := command(t, nil, "run", "--config", prosodyConfig(t, srv, pt.Password("bot")))
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-exited
		}
	}()
	bot := srv.JID("bot")
	owner.Next(t, 15*time.Second, func(e *pt.Elem) bool {
		return e.XMLName.Local == "presence" && e.Attr("type") == "subscribe" && e.Attr("from") == bot
	})
	owner.Send("<presence to='" + bot + "' type='subscribed'/><presence to='" + bot + "' type='subscribe'/>")
	p := owner.Next(t, 10*time.Second, func(e *pt.Elem) bool {
		return e.XMLName.Local == "presence" && strings.HasPrefix(e.Attr("from"), bot+"/") && e.Child("", "show") != nil
	})
	if p.Child("", "show").Text != "dnd" || !strings.Contains(p.Child("", "status").Text, "not linked") {
		t.Fatalf("bot presence %s, want dnd saying WhatsApp is not linked", p)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		if code := exitStatus(t, err); code != 0 {
			t.Fatalf("exit %d after SIGTERM, want 0; stderr:\n%s", code, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("still running 10s after SIGTERM; stderr:\n%s", stderr.String())
	}
	if strings.Contains(stderr.String(), pt.Password("bot")) {
		t.Fatalf("the password was logged:\n%s", stderr.String())
	}
}

// TestBinaryWrongPassword: a refused login is the owner's to fix, so the
// binary exits 78 (systemd does not restart it) naming xmpp.password.
func TestBinaryWrongPassword(t *testing.T) {
	srv := pt.Start(t, pt.Options{})
	cmd := command(t, nil, "run", "--config", prosodyConfig(t, srv, "wrong-password"))
	out, err := cmd.CombinedOutput()
	if code := exitStatus(t, err); code != 78 {
		t.Fatalf("exit %d, want 78; output:\n%s", code, out)
	}
	if !strings.Contains(string(out), "xmpp.password") {
		t.Fatalf("output does not name xmpp.password:\n%s", out)
	}
}
