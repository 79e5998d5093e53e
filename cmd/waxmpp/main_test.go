package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"waxmpp/bridge"
	"waxmpp/bridge/config"
	"waxmpp/bridge/simwa"
	"waxmpp/bridge/store"
)

func TestParseFlags(t *testing.T) {
	env := map[string]string{"WAXMPP_CONFIG": "/env/config.toml"}
	tests := []struct {
		name       string
		args       []string
		env        map[string]string
		wantCmd    string
		wantConfig string
		wantCode   int // exitCode of ParseFlags' error
		wantErrIn  string
	}{
		{name: "run default", args: []string{"run"}, wantCmd: "run", wantConfig: DefaultConfigPath},
		{name: "run env", args: []string{"run"}, env: env, wantCmd: "run", wantConfig: "/env/config.toml"},
		{name: "run flag beats env", args: []string{"run", "--config", "/flag.toml"}, env: env, wantCmd: "run", wantConfig: "/flag.toml"},
		{name: "run single dash", args: []string{"run", "-config=/flag.toml"}, wantCmd: "run", wantConfig: "/flag.toml"},
		{name: "run empty config", args: []string{"run", "--config", ""}, wantCode: exitUsage, wantErrIn: "must name a file"},
		{name: "run config without value", args: []string{"run", "--config"}, wantCode: exitUsage, wantErrIn: "needs an argument"},
		{name: "run extra argument", args: []string{"run", "now"}, wantCode: exitUsage, wantErrIn: `unexpected argument "now"`},
		{name: "run unknown flag", args: []string{"run", "--verbose"}, wantCode: exitUsage, wantErrIn: "-verbose"},
		{name: "run help flag", args: []string{"run", "-h"}, wantCode: exitOK},
		{name: "backup", args: []string{"backup", "/tmp/copy.db"}, env: env, wantCmd: "backup", wantConfig: "/env/config.toml"},
		{name: "backup without file", args: []string{"backup"}, wantCode: exitUsage, wantErrIn: "name the file"},
		{name: "backup two files", args: []string{"backup", "a", "b"}, wantCode: exitUsage, wantErrIn: "name the file"},
		{name: "pair", args: []string{"pair", "--phone", "+49 170 1234567"}, wantCmd: "pair", wantConfig: DefaultConfigPath},
		{name: "pair extra argument", args: []string{"pair", "now"}, wantCode: exitUsage, wantErrIn: "unexpected argument"},
		{name: "version", args: []string{"version"}, wantCmd: "version"},
		{name: "version extra argument", args: []string{"version", "x"}, wantCode: exitUsage, wantErrIn: "unexpected argument"},
		{name: "help", args: []string{"help"}, wantCode: exitOK},
		{name: "dash help", args: []string{"--help"}, wantCode: exitOK},
		{name: "help of a command", args: []string{"help", "backup"}, wantCode: exitOK},
		{name: "help of no command", args: []string{"help", "start"}, wantCode: exitUsage, wantErrIn: `help: unknown command "start"`},
		{name: "no command", args: nil, wantCode: exitUsage, wantErrIn: "no command"},
		{name: "unknown command", args: []string{"start"}, wantCode: exitUsage, wantErrIn: `unknown command "start"`},
		{name: "flag before command", args: []string{"--config", "x", "run"}, wantCode: exitUsage, wantErrIn: "unknown command"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := NewMain()
			m.Getenv = func(k string) string { return tt.env[k] }
			err := m.ParseFlags(t.Context(), tt.args)
			if got := exitCode(err); got != tt.wantCode {
				t.Fatalf("ParseFlags(%q) = %v, exit code %d, want %d", tt.args, err, got, tt.wantCode)
			}
			if tt.wantErrIn != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErrIn)) {
				t.Errorf("ParseFlags(%q) = %v, want an error containing %q", tt.args, err, tt.wantErrIn)
			}
			if err != nil {
				return
			}
			if m.Command != tt.wantCmd || m.ConfigPath != tt.wantConfig {
				t.Errorf("ParseFlags(%q): command %q, config %q; want %q, %q", tt.args, m.Command, m.ConfigPath, tt.wantCmd, tt.wantConfig)
			}
		})
	}
}

func TestExitCode(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want int
	}{
		{"nil", nil, 0},
		{"usage", &usageError{"x"}, 2},
		{"help", &helpRequest{cmd: "run"}, 0},
		{"not configured", fmt.Errorf("config x: %w: no jid", config.ErrNotConfigured), 78},
		{"config error", fmt.Errorf("config x: %w", &config.Error{Field: "xmpp.rate", Problem: "low"}), 78},
		{"joined config errors", fmt.Errorf("config x: %w", errors.Join(&config.Error{Field: "a"}, &config.Error{Field: "b"})), 78},
		{"store locked", fmt.Errorf("store: open x: %w", store.ErrLocked), 1},
		{"runtime", errors.New("xmpp: connection refused"), 1},
		{"canceled", context.Canceled, 1},
	}
	for _, tt := range tests {
		if got := exitCode(tt.err); got != tt.want {
			t.Errorf("%s: exitCode(%v) = %d, want %d", tt.name, tt.err, got, tt.want)
		}
	}
}

// syncBuffer is a bytes.Buffer that the program and the test may use at
// once.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

const testPassword = "correct horse battery staple"

// writeConfig writes a valid config into dir, with extra lines appended to
// the [xmpp] table and rest after it, and returns its path.
func writeConfig(t *testing.T, dir, xmppExtra, rest string) string {
	t.Helper()
	if !strings.Contains(xmppExtra, "server") {
		// Never look up example.org: tests talk to loopback only. Port 9
		// (discard) is closed here, so the session just retries.
		xmppExtra = "server = \"127.0.0.1:9\"\n" + xmppExtra
	}
	doc := fmt.Sprintf(`[xmpp]
jid = "bot@example.org"
password = %q
owner = "me@example.org"
%s
[store]
path = %q
%s`, testPassword, xmppExtra, filepath.Join(dir, "state", "waxmpp.db"), rest)
	path := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func noEnv(string) string { return "" }

func TestRunInProcess(t *testing.T) {
	for _, format := range []string{"text", "json"} {
		t.Run(format, func(t *testing.T) {
			dir := t.TempDir()
			cfg := writeConfig(t, dir, "", fmt.Sprintf("[log]\nformat = %q\nlevel = \"debug\"\n", format))
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			var stdout, stderr syncBuffer
			done := make(chan int, 1)
			go func() { done <- run(ctx, []string{"run", "--config", cfg}, &stdout, &stderr, noEnv) }()

			waitFor(t, &stderr, "started")
			fi, err := os.Stat(filepath.Join(dir, "state", "waxmpp.db"))
			if err != nil {
				t.Fatalf("store not opened: %v", err)
			}
			if perm := fi.Mode().Perm(); perm != 0o600 {
				t.Errorf("store file mode %v, want 0600", perm)
			}
			cancel()
			select {
			case code := <-done:
				if code != 0 {
					t.Errorf("exit code %d after cancel, want 0; stderr:\n%s", code, stderr.String())
				}
			case <-time.After(5 * time.Second):
				t.Fatal("run did not return within 5s of cancel")
			}
			logs := stderr.String()
			if strings.Contains(logs, testPassword) {
				t.Errorf("the password was logged:\n%s", logs)
			}
			for _, want := range []string{"config loaded", "started", "stopping", "stopped", "component", "bot@example.org"} {
				if !strings.Contains(logs, want) {
					t.Errorf("logs lack %q:\n%s", want, logs)
				}
			}
			if format == "json" {
				for line := range strings.SplitSeq(strings.TrimSpace(logs), "\n") {
					var rec map[string]any
					if err := json.Unmarshal([]byte(line), &rec); err != nil {
						t.Errorf("log line is not JSON: %q: %v", line, err)
					} else if c := rec["component"]; c != "main" && c != "xmpp" && c != "media" {
						t.Errorf("log line without a component (main, xmpp or media): %q", line)
					}
				}
			}
			if stdout.String() != "" {
				t.Errorf("run wrote to stdout: %q", stdout.String())
			}
		})
	}
}

func TestRunErrors(t *testing.T) {
	tests := []struct {
		name      string
		setup     func(t *testing.T, dir string) string // returns --config
		wantCode  int
		wantInErr []string
	}{
		{
			name:      "missing config",
			setup:     func(t *testing.T, dir string) string { return filepath.Join(dir, "none.toml") },
			wantCode:  78,
			wantInErr: []string{"not configured", "the file does not exist", "see README"},
		},
		{
			name: "no account yet",
			setup: func(t *testing.T, dir string) string {
				p := filepath.Join(dir, "config.toml")
				if err := os.WriteFile(p, []byte("[log]\nlevel = \"debug\"\n"), 0o600); err != nil {
					t.Fatal(err)
				}
				return p
			},
			wantCode:  78,
			wantInErr: []string{"not configured", "xmpp.jid", "see README"},
		},
		{
			name: "invalid config",
			setup: func(t *testing.T, dir string) string {
				return writeConfig(t, dir, "rate = 1\nping_interval = \"1h\"", "")
			},
			wantCode:  78,
			wantInErr: []string{"xmpp.rate (line 6)", "\nwaxmpp: xmpp.ping_interval (line 7)"},
		},
		{
			name: "store locked",
			setup: func(t *testing.T, dir string) string {
				p := writeConfig(t, dir, "", "")
				db, err := store.Open(filepath.Join(dir, "state", "waxmpp.db"), store.Options{})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { db.Close() })
				return p
			},
			wantCode:  1,
			wantInErr: []string{"in use by another process"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.setup(t, t.TempDir())
			var stdout, stderr syncBuffer
			code := run(t.Context(), []string{"run", "--config", cfg}, &stdout, &stderr, noEnv)
			if code != tt.wantCode {
				t.Errorf("exit code %d, want %d; stderr:\n%s", code, tt.wantCode, stderr.String())
			}
			for _, want := range tt.wantInErr {
				if !strings.Contains(stderr.String(), want) {
					t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
				}
			}
			if strings.Contains(stderr.String(), "usage:") {
				t.Errorf("a config error printed the usage:\n%s", stderr.String())
			}
		})
	}
}

func TestRunUsage(t *testing.T) {
	for _, args := range [][]string{nil, {"frobnicate"}, {"run", "-x"}} {
		var stdout, stderr syncBuffer
		if code := run(t.Context(), args, &stdout, &stderr, noEnv); code != 2 {
			t.Errorf("run(%q) = %d, want 2", args, code)
		}
		if !strings.Contains(stderr.String(), "usage: waxmpp <command>") || stdout.String() != "" {
			t.Errorf("run(%q): usage not on stderr alone; stdout %q, stderr %q", args, stdout.String(), stderr.String())
		}
	}
}

func TestExposed(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		mode os.FileMode
		want bool
	}{
		{0o600, false},
		{0o640, false}, // the process's own group: the intended packaging
		{0o644, true},
		{0o604, true},
	}
	for _, tt := range tests {
		p := filepath.Join(dir, "f")
		if err := os.WriteFile(p, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, tt.mode); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := exposed(fi); got != tt.want {
			t.Errorf("exposed(%v) = %v, want %v", tt.mode, got, tt.want)
		}
	}
}

func TestWarnReadable(t *testing.T) {
	dir := t.TempDir()
	cfg := writeConfig(t, dir, "", "")
	if err := os.Chmod(cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"run", "--config", cfg}, &stdout, &stderr, noEnv) }()
	waitFor(t, &stderr, "started")
	cancel()
	<-done
	if !strings.Contains(stderr.String(), "readable by other users") {
		t.Errorf("no warning about a world-readable config holding the password:\n%s", stderr.String())
	}
}

// waitFor waits until out contains s, or fails the test after 5 seconds.
func waitFor(t *testing.T, out fmt.Stringer, s string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(out.String(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q within 5s; output:\n%s", s, out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestRunWhatsAppFails: when the WhatsApp side cannot start, or stops while
// the bridge runs, the daemon exits 1 (so that systemd restarts it) naming
// the cause, instead of running the XMPP side alone and relaying nothing.
func TestRunWhatsAppFails(t *testing.T) {
	tests := []struct {
		name   string
		open   func(ctx context.Context, sock string, db *store.DB, log *slog.Logger, events chan<- bridge.Event) (bridge.WhatsApp, func(context.Context) error, error)
		wantIn string
	}{
		{
			name: "cannot start",
			open: func(context.Context, string, *store.DB, *slog.Logger, chan<- bridge.Event) (bridge.WhatsApp, func(context.Context) error, error) {
				return nil, nil, errors.New("whatsapp: load device: disk on fire")
			},
			wantIn: "waxmpp: whatsapp: load device: disk on fire",
		},
		{
			name:   "fails after start",
			open:   simWhatsApp(errors.New("whatsapp: gone for good")),
			wantIn: "waxmpp: whatsapp: gone for good",
		},
		{
			name:   "stops after start",
			open:   simWhatsApp(nil),
			wantIn: "waxmpp: whatsapp stopped on its own",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old := openWhatsApp
			openWhatsApp = tt.open
			t.Cleanup(func() { openWhatsApp = old })
			cfg := writeConfig(t, t.TempDir(), "", "")
			var stdout, stderr syncBuffer
			done := make(chan int, 1)
			go func() { done <- run(t.Context(), []string{"run", "--config", cfg}, &stdout, &stderr, noEnv) }()
			select {
			case code := <-done:
				if code != 1 {
					t.Errorf("exit code %d, want 1; stderr:\n%s", code, stderr.String())
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("still running 10s after WhatsApp failed; stderr:\n%s", stderr.String())
			}
			if !strings.Contains(stderr.String(), tt.wantIn) {
				t.Errorf("stderr lacks %q:\n%s", tt.wantIn, stderr.String())
			}
		})
	}
}

// simWhatsApp opens the simulated WhatsApp (a real bridge.WhatsApp, usable
// in any build) whose run ends after a moment with err.
func simWhatsApp(err error) func(ctx context.Context, sock string, db *store.DB, log *slog.Logger, events chan<- bridge.Event) (bridge.WhatsApp, func(context.Context) error, error) {
	return func(ctx context.Context, _ string, db *store.DB, log *slog.Logger, events chan<- bridge.Event) (bridge.WhatsApp, func(context.Context) error, error) {
		sim, serr := simwa.New(simwa.Config{Socket: filepath.Join(filepath.Dir(db.Path()), "sim.sock"), Events: events, Log: log})
		if serr != nil {
			return nil, nil, serr
		}
		return sim, func(ctx context.Context) error {
			ctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
			defer cancel()
			sim.Run(ctx)
			return err
		}, nil
	}
}

// TestBackupNoStateFile: with the daemon stopped, a backup of a state file
// that does not exist (a wrong [store] path) is an error naming the path;
// it creates nothing, neither the file nor the copy.
func TestBackupNoStateFile(t *testing.T) {
	dir := t.TempDir()
	cfg := writeConfig(t, dir, "", "") // [store] path = dir/state/waxmpp.db, not there
	statePath := filepath.Join(dir, "state", "waxmpp.db")
	copyPath := filepath.Join(dir, "copy.db")
	var stdout, stderr syncBuffer
	code := run(t.Context(), []string{"backup", "--config", cfg, copyPath}, &stdout, &stderr, noEnv)
	if code != 1 {
		t.Errorf("exit code %d, want 1; stdout %q, stderr:\n%s", code, stdout.String(), stderr.String())
	}
	if !strings.Contains(stderr.String(), "no state file at "+statePath) {
		t.Errorf("stderr does not name the missing %s:\n%s", statePath, stderr.String())
	}
	for _, p := range []string{statePath, filepath.Dir(statePath), copyPath} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("backup created %s (%v)", p, err)
		}
	}

	// And where the file is, the copy is written.
	db, err := store.Open(statePath, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	stdout, stderr = syncBuffer{}, syncBuffer{}
	if code := run(t.Context(), []string{"backup", "--config", cfg, copyPath}, &stdout, &stderr, noEnv); code != 0 {
		t.Fatalf("backup of an existing file: exit %d; stderr:\n%s", code, stderr.String())
	}
	if err := store.Verify(copyPath); err != nil || !strings.Contains(stdout.String(), "wrote "+copyPath) {
		t.Errorf("copy: %v; stdout %q", err, stdout.String())
	}
}

// TestHelp: every command answers --help with its own usage on stdout and
// exit 0; help alone gives the overview.
func TestHelp(t *testing.T) {
	tests := []struct {
		args []string
		want []string
	}{
		{[]string{"help"}, []string{"usage: waxmpp <command>", "  run [--config FILE]", "  backup [--config FILE] FILE"}},
		{[]string{"--help"}, []string{"usage: waxmpp <command>"}},
		{[]string{"-h"}, []string{"usage: waxmpp <command>"}},
		{[]string{"run", "--help"}, []string{"usage: waxmpp run [--config FILE]", "Run the bridge", "-config string", "(default \"/etc/waxmpp/config.toml\")"}},
		{[]string{"pair", "-h"}, []string{"usage: waxmpp pair [--config FILE] [--phone +NUMBER]", "-phone string"}},
		{[]string{"backup", "--help"}, []string{"usage: waxmpp backup [--config FILE] FILE", "-config string"}},
		{[]string{"version", "--help"}, []string{"usage: waxmpp version", "Print the version"}},
		{[]string{"help", "run"}, []string{"usage: waxmpp run [--config FILE]"}},
	}
	for _, tt := range tests {
		var stdout, stderr syncBuffer
		if code := run(t.Context(), tt.args, &stdout, &stderr, noEnv); code != 0 {
			t.Errorf("waxmpp %q: exit %d, want 0; stderr %q", tt.args, code, stderr.String())
		}
		for _, w := range tt.want {
			if !strings.Contains(stdout.String(), w) {
				t.Errorf("waxmpp %q: stdout lacks %q:\n%s", tt.args, w, stdout.String())
			}
		}
		if stderr.String() != "" {
			t.Errorf("waxmpp %q wrote to stderr: %q", tt.args, stderr.String())
		}
	}
}
