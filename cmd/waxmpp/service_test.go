package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"waxmpp/bridge"
	"waxmpp/bridge/config"
	"waxmpp/bridge/xmpp"
)

// notes collects what supervise sends systemd.
type notes struct {
	mu  sync.Mutex
	all []string
}

func (n *notes) add(s string) {
	n.mu.Lock()
	n.all = append(n.all, s)
	n.mu.Unlock()
}

func (n *notes) take() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	s := n.all
	n.all = nil
	return s
}

// fakeLoop answers Health like the core's loop, unless stuck.
type fakeLoop struct {
	mu    sync.Mutex
	stuck bool
	h     bridge.Health
}

func (f *fakeLoop) health(ctx context.Context) (bridge.Health, error) {
	f.mu.Lock()
	stuck, h := f.stuck, f.h
	f.mu.Unlock()
	if stuck {
		<-ctx.Done()
		return bridge.Health{}, ctx.Err()
	}
	return h, nil
}

func (f *fakeLoop) set(stuck bool, h bridge.Health) {
	f.mu.Lock()
	f.stuck, f.h = stuck, h
	f.mu.Unlock()
}

func count(ns []string, line string) int {
	n := 0
	for _, s := range ns {
		for l := range strings.SplitSeq(s, "\n") {
			if l == line {
				n++
			}
		}
	}
	return n
}

// TestSupervise: READY=1 once, WATCHDOG=1 only while the loop answers,
// STATUS= when the health changes, and a stuck loop said in STATUS=.
func TestSupervise(t *testing.T) {
	const watchdog = 300 * time.Millisecond // a round every 100ms
	loop := &fakeLoop{h: bridge.Health{WhatsApp: bridge.Connected, XMPP: bridge.XMPPStats{Connected: true}}}
	var n notes
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		supervise(ctx, loop.health, watchdog, n.add, slog.New(slog.DiscardHandler))
		close(done)
	}()
	defer func() { cancel(); <-done }()

	time.Sleep(550 * time.Millisecond)
	got := n.take()
	if len(got) == 0 || got[0] != "READY=1\nWATCHDOG=1\nSTATUS=WhatsApp connected · XMPP connected · 0 queued" {
		t.Fatalf("first note %q, want READY=1, WATCHDOG=1 and the status together", got)
	}
	if r := count(got, "READY=1"); r != 1 {
		t.Errorf("READY=1 sent %d times, want once: %q", r, got)
	}
	if w := count(got, "WATCHDOG=1"); w < 4 {
		t.Errorf("WATCHDOG=1 sent %d times in 550ms with a round every 100ms: %q", w, got)
	}
	if s := len(got) - count(got, "WATCHDOG=1"); s != 0 {
		t.Errorf("unchanged health sent again: %q", got)
	}

	loop.set(true, bridge.Health{})
	time.Sleep(150 * time.Millisecond) // the round in flight may still answer
	n.take()
	time.Sleep(600 * time.Millisecond)
	got = n.take()
	if w := count(got, "WATCHDOG=1"); w != 0 {
		t.Errorf("WATCHDOG=1 sent while the loop was stuck: %q", got)
	}
	stuckNote := false
	for _, s := range got {
		stuckNote = stuckNote || strings.HasPrefix(s, "STATUS=the core has not answered for ")
	}
	if !stuckNote {
		t.Errorf("no STATUS= telling the loop is stuck: %q", got)
	}

	loop.set(false, bridge.Health{WhatsApp: bridge.NotPaired, XMPP: bridge.XMPPStats{Connected: true, Queued: 3}})
	time.Sleep(350 * time.Millisecond)
	got = n.take()
	if count(got, "WATCHDOG=1") == 0 || count(got, "STATUS=WhatsApp not linked: send /pair · XMPP connected · 3 queued") != 1 {
		t.Errorf("after the loop answered again: %q", got)
	}
	if count(got, "READY=1") != 0 {
		t.Errorf("READY=1 sent again: %q", got)
	}
}

// TestSuperviseStartsStuck: a loop that never answers is never READY.
func TestSuperviseStartsStuck(t *testing.T) {
	loop := &fakeLoop{stuck: true}
	var n notes
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	supervise(ctx, loop.health, 300*time.Millisecond, n.add, slog.New(slog.DiscardHandler))
	got := n.take()
	if count(got, "READY=1")+count(got, "WATCHDOG=1") != 0 || count(got, "STATUS=starting") != 1 {
		t.Errorf("notes of a loop that never answered: %q", got)
	}
}

func TestWatchdogInterval(t *testing.T) {
	pid := fmt.Sprint(os.Getpid())
	for _, tt := range []struct {
		usec, pid string
		want      time.Duration
	}{
		{"60000000", "", time.Minute},
		{"60000000", pid, time.Minute},
		{"60000000", "1", 0}, // meant for another process
		{"", "", 0},
		{"-5", "", 0},
		{"junk", "", 0},
	} {
		env := map[string]string{"WATCHDOG_USEC": tt.usec, "WATCHDOG_PID": tt.pid}
		if got := watchdogInterval(func(k string) string { return env[k] }); got != tt.want {
			t.Errorf("WATCHDOG_USEC=%q WATCHDOG_PID=%q: %v, want %v", tt.usec, tt.pid, got, tt.want)
		}
	}
}

func TestStopStatus(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want string
	}{
		{nil, "stopped"},
		{fmt.Errorf("config /etc/waxmpp/config.toml: %w: the file does not exist", config.ErrNotConfigured), "not configured: run sudo waxmpp setup"},
		{&config.Error{Field: "xmpp.password", Problem: "refused", Err: xmpp.ErrAuth}, "the XMPP server refused the bot's password: run sudo waxmpp setup"},
		{fmt.Errorf("config c: %w", &config.Error{Field: "xmpp.rate", Line: 4, Problem: "1 is out of range"}), "invalid config: xmpp.rate (line 4): 1 is out of range (journalctl -u waxmpp)"},
		{errors.New("store: disk on fire\nmore"), "failed: store: disk on fire"},
	} {
		if got := stopStatus(tt.err); got != tt.want {
			t.Errorf("stopStatus(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}

// journalFile is a file standing in for the journal's stream, and the
// $JOURNAL_STREAM that names it.
func journalFile(t *testing.T) (*os.File, string) {
	t.Helper()
	f, err := os.Create(filepath.Join(t.TempDir(), "journal"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	return f, fmt.Sprintf("%d:%d", st.Dev, st.Ino)
}

func TestIsJournal(t *testing.T) {
	f, stream := journalFile(t)
	other, _ := journalFile(t)
	for _, tt := range []struct {
		name   string
		w      any
		stream string
		want   bool
	}{
		{"the stream", f, stream, true},
		{"no variable", f, "", false},
		{"inherited, stderr elsewhere", other, stream, false},
		{"garbage", f, "x:y", false},
		{"not a file", &bytes.Buffer{}, stream, false},
	} {
		w, _ := tt.w.(interface{ Write([]byte) (int, error) })
		if got := isJournal(w, tt.stream); got != tt.want {
			t.Errorf("%s: isJournal = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestJournalLogger: under the journal each line starts with its level's
// priority and carries no time of its own; elsewhere lines keep the time.
func TestJournalLogger(t *testing.T) {
	for _, format := range []string{"text", "json"} {
		t.Run(format, func(t *testing.T) {
			var buf bytes.Buffer
			log := newLogger(&buf, config.Log{Level: "debug", Format: format}, true).With("component", "x")
			log.Debug("d")
			log.Info("i", "k", "v")
			log.Warn("w")
			log.WithGroup("g").Error("e", "k", 1)
			log.Log(context.Background(), slog.LevelInfo+2, "between")
			lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
			want := []string{"<7>", "<6>", "<4>", "<3>", "<6>"}
			if len(lines) != len(want) {
				t.Fatalf("%d lines, want %d:\n%s", len(lines), len(want), buf.String())
			}
			for i, l := range lines {
				if !strings.HasPrefix(l, want[i]) || strings.HasPrefix(l[len(want[i]):], "<") {
					t.Errorf("line %d %q: want prefix %s", i, l, want[i])
				}
				if strings.Contains(l, "time") {
					t.Errorf("line %d has a time of its own: %q", i, l)
				}
				if !strings.Contains(l, "component") {
					t.Errorf("line %d lost its attributes: %q", i, l)
				}
			}
			buf.Reset()
			newLogger(&buf, config.Log{Level: "info", Format: format}, false).Info("i")
			if s := buf.String(); strings.HasPrefix(s, "<") || !strings.Contains(s, "time") {
				t.Errorf("outside the journal: %q, want a time and no priority", s)
			}
		})
	}
}

// TestBinaryJournal runs the binary with stderr as the journal's stream
// would be: every line has a priority prefix and no time.
func TestBinaryJournal(t *testing.T) {
	dir := t.TempDir()
	cfg := writeConfig(t, dir, "", "")
	f, stream := journalFile(t)
	cmd := command(t, []string{"JOURNAL_STREAM=" + stream}, "run", "--config", cfg)
	cmd.Stderr = f
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(f.Name())
		if bytes.Contains(b, []byte("msg=started")) || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if code := exitStatus(t, cmd.Wait()); code != 0 {
		t.Errorf("exit %d after SIGTERM", code)
	}
	b, _ := os.ReadFile(f.Name())
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if len(lines) < 3 || !strings.Contains(string(b), "msg=started") {
		t.Fatalf("journal lines:\n%s", b)
	}
	for _, l := range lines {
		if len(l) < 3 || l[0] != '<' || l[2] != '>' || strings.Contains(l, "time=") {
			t.Errorf("journal line %q: want <N> and no time", l)
		}
	}

	// A config error under the journal is logged at priority err.
	f2, stream2 := journalFile(t)
	cmd = command(t, []string{"JOURNAL_STREAM=" + stream2}, "run", "--config", filepath.Join(dir, "missing.toml"))
	cmd.Stderr = f2
	if code := exitStatus(t, cmd.Run()); code != 78 {
		t.Errorf("missing config: exit %d, want 78", code)
	}
	b, _ = os.ReadFile(f2.Name())
	if !strings.HasPrefix(string(b), "<3>waxmpp: config ") {
		t.Errorf("config error in the journal: %q, want <3>waxmpp: config …", b)
	}
}

// TestBinaryNotify: Type=notify as systemd sees it: STATUS=starting, then
// READY=1 with the health, WATCHDOG=1 while the core answers, STOPPING=1
// and the reason on exit; a missing config says what to do.
var queuedHealth = regexp.MustCompile(`XMPP connecting · [0-9]+ queued`)

func TestBinaryNotify(t *testing.T) {
	dir := t.TempDir()
	cfg := writeConfig(t, dir, "", "")
	sock := filepath.Join(dir, "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	got := make(chan string, 100)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			got <- string(buf[:n])
		}
	}()
	next := func() string {
		select {
		case s := <-got:
			return s
		case <-time.After(10 * time.Second):
			t.Fatal("no sd_notify within 10s")
			return ""
		}
	}

	// WATCHDOG_USEC=1.5s: a round every 0.5s.
	cmd, stderr, exited := startBinary(t, []string{"NOTIFY_SOCKET=" + sock, "WATCHDOG_USEC=1500000"}, "run", "--config", cfg)
	if s := next(); s != "STATUS=starting" {
		t.Fatalf("first note %q, want STATUS=starting", s)
	}
	// The health line; what is queued for the owner by then (the note
	// that WhatsApp is not linked) depends on the moment.
	if s := next(); !strings.HasPrefix(s, "READY=1\nWATCHDOG=1\nSTATUS=WhatsApp ") || !queuedHealth.MatchString(s) {
		t.Fatalf("second note %q, want READY=1, WATCHDOG=1 and the health", s)
	}
	start := time.Now()
	for i := 0; i < 3; i++ {
		if s := next(); !strings.Contains(s, "WATCHDOG=1") {
			t.Errorf("note %q while running, want WATCHDOG=1", s)
		}
	}
	// systemd kills a unit that lets WatchdogSec pass without a note: on
	// average the rounds must come well within it (a round every third of
	// it; a loaded machine may delay one).
	if d := time.Since(start); d > 3*1500*time.Millisecond {
		t.Errorf("3 watchdog rounds took %v, want about 1.5s and at most 4.5s (3 × WatchdogSec)", d)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if code := exitStatus(t, <-exited); code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", code, stderr)
	}
	var rest []string
	for len(got) > 0 {
		rest = append(rest, <-got)
	}
	if count(rest, "STOPPING=1") != 1 || rest[len(rest)-1] != "STATUS=stopped" {
		t.Errorf("notes at the stop %q, want STOPPING=1 and STATUS=stopped last", rest)
	}

	cmd = command(t, []string{"NOTIFY_SOCKET=" + sock}, "run", "--config", filepath.Join(dir, "missing.toml"))
	if code := exitStatus(t, cmd.Run()); code != 78 {
		t.Errorf("missing config: exit %d, want 78", code)
	}
	next() // STATUS=starting
	if s := next(); s != "STATUS=not configured: run sudo waxmpp setup" {
		t.Errorf("missing config: note %q, want the next step", s)
	}
}
