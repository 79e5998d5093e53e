package main

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// These tests build the real binary, as packaging does, and run it as a
// process: signals, exit statuses and sd_notify are what systemd sees.

const testVersion = "1.2.3-e2e"

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

func TestMain(m *testing.M) {
	if sock := os.Getenv("WAXMPP_TEST_DIAL"); sock != "" {
		dialHelper(sock) // TestControlSocketPrivate, as another user
		return
	}
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

// binary builds waxmpp once per test run and returns its path.
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		// go test puts its own GOROOT/bin first in PATH.
		gotool, err := exec.LookPath("go")
		if err != nil {
			buildErr = err
			return
		}
		dir, err := os.MkdirTemp("", "waxmpp-e2e-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "waxmpp")
		cmd := exec.Command(gotool, "build", "-o", binPath, "-ldflags", "-X main.version="+testVersion, ".")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// command prepares the binary with a clean environment plus env.
func command(t *testing.T, env []string, args ...string) *exec.Cmd {
	cmd := exec.Command(binary(t), args...)
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "NOTIFY_SOCKET", "WAXMPP_CONFIG", "JOURNAL_STREAM", "LISTEN_FDS":
			continue
		}
		cmd.Env = append(cmd.Env, kv)
	}
	cmd.Env = append(cmd.Env, env...)
	return cmd
}

func exitStatus(t *testing.T, err error) int {
	t.Helper()
	if err == nil {
		return 0
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("running waxmpp: %v", err)
	}
	return ee.ExitCode()
}

func TestBinaryVersion(t *testing.T) {
	var stdout, stderr bytes.Buffer
	cmd := command(t, nil, "version")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if code := exitStatus(t, cmd.Run()); code != 0 {
		t.Fatalf("waxmpp version: exit %d, stderr %q", code, stderr.String())
	}
	want := fmt.Sprintf("waxmpp %s %s %s/%s\n", testVersion, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	if stdout.String() != want {
		t.Errorf("waxmpp version printed %q, want %q", stdout.String(), want)
	}
}

func TestBinaryConfigErrors(t *testing.T) {
	tests := []struct {
		name   string
		config func(t *testing.T, dir string) string
		env    bool // pass the path in $WAXMPP_CONFIG instead of --config
		wantIn []string
	}{
		{
			name:   "missing config",
			config: func(t *testing.T, dir string) string { return filepath.Join(dir, "config.toml") },
			wantIn: []string{"waxmpp is not configured", "waxmpp: run sudo waxmpp setup (or write ", "config.toml by hand; see README)"},
		},
		{
			name:   "missing config via environment",
			config: func(t *testing.T, dir string) string { return filepath.Join(dir, "env.toml") },
			env:    true,
			wantIn: []string{"env.toml: waxmpp is not configured"},
		},
		{
			name:   "invalid config",
			config: func(t *testing.T, dir string) string { return writeConfig(t, dir, `server = "nohost"`, "") },
			wantIn: []string{`xmpp.server (line 5): "nohost" is not host:port`},
		},
		{
			name: "unknown key",
			config: func(t *testing.T, dir string) string {
				return writeConfig(t, dir, "", "[log]\nlevle = \"debug\"\n")
			},
			wantIn: []string{"log.levle (line 10): unknown key; did you mean log.level?"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := tt.config(t, t.TempDir())
			var cmd *exec.Cmd
			if tt.env {
				cmd = command(t, []string{"WAXMPP_CONFIG=" + path}, "run")
			} else {
				cmd = command(t, nil, "run", "--config", path)
			}
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if code := exitStatus(t, cmd.Run()); code != 78 {
				t.Errorf("exit %d, want 78 (EX_CONFIG); stderr:\n%s", code, stderr.String())
			}
			for _, want := range tt.wantIn {
				if !strings.Contains(stderr.String(), want) {
					t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
				}
			}
		})
	}
}

func TestBinaryUsage(t *testing.T) {
	for _, args := range [][]string{{"bogus"}, {}} {
		var stdout, stderr bytes.Buffer
		cmd := command(t, nil, args...)
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if code := exitStatus(t, cmd.Run()); code != 2 {
			t.Errorf("waxmpp %q: exit %d, want 2", args, code)
		}
		if !strings.Contains(stderr.String(), "usage:") || stdout.Len() != 0 {
			t.Errorf("waxmpp %q: want usage on stderr only; stdout %q, stderr %q", args, stdout.String(), stderr.String())
		}
	}
}

// TestBinaryRun starts the daemon as systemd would (Type=notify), waits
// for READY=1, stops it with SIGTERM and expects STOPPING=1 and exit 0
// within 5 seconds.
func TestBinaryRun(t *testing.T) {
	dir := t.TempDir()
	cfg := writeConfig(t, dir, "", "")

	sock := filepath.Join(dir, "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	notes := make(chan string, 10)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				close(notes)
				return
			}
			notes <- string(buf[:n])
		}
	}()

	cmd, stderr, exited := startBinary(t, []string{"NOTIFY_SOCKET=" + sock}, "run", "--config", cfg)

	expectNote(t, notes, "READY=1", stderr)
	// stderr reaches the buffer through a pipe, so it may lag the note.
	waitFor(t, stderr, "msg=started")
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if code := exitStatus(t, err); code != 0 {
			t.Errorf("exit %d after SIGTERM, want 0; stderr:\n%s", code, stderr.String())
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("still running 5s after SIGTERM; stderr:\n%s", stderr.String())
	}
	expectNote(t, notes, "STOPPING=1", stderr)
	if strings.Contains(stderr.String(), testPassword) {
		t.Errorf("the password was logged:\n%s", stderr.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "state", "waxmpp.db")); err != nil {
		t.Errorf("no state file: %v", err)
	}
}

// startBinary starts the built binary with args; stderr is captured. A
// process still running when the test ends is killed.
func startBinary(t *testing.T, env []string, args ...string) (*exec.Cmd, *syncBuffer, <-chan error) {
	t.Helper()
	cmd := command(t, env, args...)
	stderr := new(syncBuffer)
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-exited
		}
	})
	return cmd, stderr, exited
}

// expectNote waits for a note with the line want; notes with STATUS= and
// WATCHDOG=1 lines only come between (service.go).
func expectNote(t *testing.T, notes <-chan string, want string, stderr fmt.Stringer) {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case got, ok := <-notes:
			if !ok {
				t.Fatalf("notify socket closed before %q", want)
			}
			other := false
			for l := range strings.SplitSeq(got, "\n") {
				if l == want {
					return
				}
				other = other || !(strings.HasPrefix(l, "STATUS=") || l == "WATCHDOG=1")
			}
			if other {
				t.Fatalf("sd_notify %q, want %q", got, want)
			}
		case <-timeout:
			t.Fatalf("no sd_notify %q within 5s; stderr:\n%s", want, stderr.String())
		}
	}
}
