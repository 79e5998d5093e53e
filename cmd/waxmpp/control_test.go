package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestControlSocketPrivate: the control socket lives in a directory only
// the daemon's user may enter, whatever the umask (0 here) and whatever the
// mode of the state file's directory (0755 here, as a directory the store
// did not create) or of a control directory left from before. As root, it
// also checks that user nobody cannot connect while the daemon's user can.
func TestControlSocketPrivate(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)

	for _, left := range []bool{false, true} {
		t.Run(fmt.Sprintf("control dir left from before: %v", left), func(t *testing.T) {
			// Not t.TempDir: its parent is 0700, which would keep nobody out
			// on its own.
			base, err := os.MkdirTemp("", "waxmpp-ctl-")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.RemoveAll(base) })
			stateDir := filepath.Join(base, "state")
			for _, d := range []string{base, stateDir} {
				if err := os.MkdirAll(d, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(d, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			if left {
				if err := os.Mkdir(filepath.Join(stateDir, "control"), 0o777); err != nil {
					t.Fatal(err)
				}
			}
			_, sock := serveTestControl(t, stateDir)
			dir, err := os.Lstat(filepath.Dir(sock))
			if err != nil {
				t.Fatal(err)
			}
			if !dir.IsDir() || dir.Mode().Perm() != 0o700 || int(dir.Sys().(*syscall.Stat_t).Uid) != os.Geteuid() {
				t.Errorf("the socket's directory %s is %v, uid %d; want a directory 0700 of uid %d",
					filepath.Dir(sock), dir.Mode(), dir.Sys().(*syscall.Stat_t).Uid, os.Geteuid())
			}
			if fi, err := os.Stat(sock); err != nil || fi.Mode().Perm() != 0o600 {
				t.Errorf("control socket: %v, mode %v; want 0600", err, fi.Mode())
			}
			if os.Geteuid() != 0 {
				t.Log("not root: cannot try to connect as another user; modes checked only")
				return
			}
			// The test binary, where user nobody may run it.
			self, err := os.Executable()
			if err != nil {
				t.Fatal(err)
			}
			bin := filepath.Join(base, "dialer")
			copyExecutable(t, self, bin)
			if got := dialAs(t, bin, sock, nil); got != "connected" {
				t.Fatalf("the daemon's own user: %q, want connected (the helper must work for the next check to mean anything)", got)
			}
			nobody := &syscall.Credential{Uid: 65534, Gid: 65534}
			if got := dialAs(t, bin, sock, nobody); !strings.Contains(got, "permission denied") {
				t.Errorf("user nobody dialing %s: %q, want permission denied", sock, got)
			}
		})
	}
}

func copyExecutable(t *testing.T, from, to string) {
	t.Helper()
	src, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
}

// dialAs runs bin as the user cred (nil: this process's) to dial sock and
// returns what it says: "connected" or "dial: ...".
func dialAs(t *testing.T, bin, sock string, cred *syscall.Credential) string {
	t.Helper()
	cmd := exec.Command(bin)
	cmd.Env = []string{"WAXMPP_TEST_DIAL=" + sock}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("dial helper: %v\n%s", err, out.String())
	}
	return strings.TrimSpace(out.String())
}

// dialHelper is the test binary run as a helper process: it dials sock and
// says whether it could.
func dialHelper(sock string) {
	c, err := net.Dial("unix", sock)
	if err != nil {
		fmt.Println("dial:", err)
		return
	}
	c.Close()
	fmt.Println("connected")
}
