package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	pt "waxmpp/bridge/prosodytest"
	"waxmpp/bridge/store"
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
	for _, kind := range pt.Kinds { // on ejabberd 23.01 the first login fails channel binding: not the password
		t.Run(string(kind), func(t *testing.T) {
			srv := pt.Start(t, pt.Options{Kind: kind, NoShaper: true})
			owner := srv.Dial(t, "owner")
			cfgPath := prosodyConfig(t, srv, pt.Password("bot"))
			cmd, stderr, exited := startBinary(t, nil, "run", "--config", cfgPath)
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
			// A backup while the daemon holds the file goes through its control
			// socket; the copy is a sound state file.
			live := filepath.Join(t.TempDir(), "live.db")
			if out, err := command(t, nil, "backup", "--config", cfgPath, live).CombinedOutput(); err != nil {
				t.Fatalf("backup while running: %v\n%s", err, out)
			}
			checkBackup(t, live)
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
			// And with the daemon stopped, backup reads the file itself.
			offline := filepath.Join(t.TempDir(), "offline.db")
			if out, err := command(t, nil, "backup", "--config", cfgPath, offline).CombinedOutput(); err != nil {
				t.Fatalf("backup while stopped: %v\n%s", err, out)
			}
			checkBackup(t, offline)
		})
	}
}

func checkBackup(t *testing.T, path string) {
	t.Helper()
	if err := store.Verify(path); err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatalf("open backup: %v", err)
	}
	defer db.Close()
	if v, err := db.SchemaVersion(); err != nil || v < 1 {
		t.Fatalf("backup schema version %d, %v", v, err)
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("backup mode %v, want 0600", fi.Mode().Perm())
	}
}

// TestBinaryWrongPassword: a refused login is the owner's to fix, so the
// binary exits 78 (systemd does not restart it) naming xmpp.password.
func TestBinaryWrongPassword(t *testing.T) {
	for _, kind := range pt.Kinds { // on ejabberd 23.01 the first login fails channel binding: not the password
		t.Run(string(kind), func(t *testing.T) {
			srv := pt.Start(t, pt.Options{Kind: kind, NoShaper: true})
			cmd := command(t, nil, "run", "--config", prosodyConfig(t, srv, "wrong-password"))
			out, err := cmd.CombinedOutput()
			if code := exitStatus(t, err); code != 78 {
				t.Fatalf("exit %d, want 78; output:\n%s", code, out)
			}
			if !strings.Contains(string(out), "xmpp.password") {
				t.Fatalf("output does not name xmpp.password:\n%s", out)
			}
		})
	}
}

// TestControlSocketRefusesUnknown: the control socket answers anything but
// "backup" with one line naming what it knows, and the socket is 0600.
func TestControlSocketRefusesUnknown(t *testing.T) {
	db, sock := serveTestControl(t, t.TempDir())
	fi, err := os.Stat(sock)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("control socket: %v, mode %v", err, fi.Mode())
	}
	conn, err := net.Dial("unix", controlPath(db.Path()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.Write([]byte("rm -rf /\n"))
	line, _ := bufio.NewReader(conn).ReadString('\n')
	if !strings.Contains(line, "known: backup") {
		t.Fatalf("answer %q", line)
	}
}
