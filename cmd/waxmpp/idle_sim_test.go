//go:build simwa

package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestSimIdle: an idle bridge writes nothing to its disk and wakes up no
// more often than its keepalive needs (a Pi's SD card wears with every
// write, and every wake-up costs a battery or a UPS power). Once the
// messages of a conversation are settled (the outbox confirmed by a ping,
// the names saved), the binary is watched over several ping intervals:
// its own disk writes (/proc/PID/io write_bytes) must be none, and its
// threads' context switches (each a wake-up of a thread) are counted
// second by second against a program that runs only the keepalive's
// timers. Here three intervals of a 10 s ping; BenchmarkSimIdle (make
// bench) holds the same over 10 minutes with the shipped 60 s ping.
func TestSimIdle(t *testing.T) { idleCheck(t, 10*time.Second, 30*time.Second) }

// BenchmarkSimIdle is TestSimIdle over 10 idle minutes with the shipped
// ping interval (xmpp.ping_interval 60 s, ping_timeout 20 s).
func BenchmarkSimIdle(b *testing.B) {
	for range b.N {
		idleCheck(b, time.Minute, 10*time.Minute)
	}
}

// idleCheck is TestSimIdle with a ping every ping, watched for window.
func idleCheck(t testing.TB, ping, window time.Duration) {
	e := newSimEnv(t, envOptions{pingInterval: ping, pingTimeout: min(ping/2, 20*time.Second)})
	e.addressBook()
	e.command("/to alice")
	m := e.mark()
	e.send("see you", "")
	e.action(m, 30*time.Second, "the owner's message", sendTo(alice, "see you"))
	pid := e.cmd.Process.Pid

	// Settled: nothing written over two ping intervals (a ping result
	// confirms the outbox, which is a write).
	deadline := time.Now().Add(3*time.Minute + 2*ping)
	last, since := procWrites(t, pid), time.Now()
	for time.Since(since) < 2*ping {
		if time.Now().After(deadline) {
			t.Fatalf("the bridge kept writing for 3 minutes after the last message")
		}
		time.Sleep(time.Second)
		if w := procWrites(t, pid); w != last {
			last, since = w, time.Now()
		}
	}

	// Beside it, in the same window, a Go program that does only what
	// the keepalive needs (a timer for the ping, one for systemd's
	// health round every 5 s): how often the Go runtime and this
	// machine's load wake a process that has to keep a connection
	// alive. The bridge is measured against it, second by second.
	base := keepaliveProcess(t, ping)
	w0 := procWrites(t, pid)
	var bridgeSecs, baseSecs []int64
	s, b := wakeups(t, pid), wakeups(t, base)
	for range int(window / time.Second) {
		time.Sleep(time.Second)
		s1, b1 := wakeups(t, pid), wakeups(t, base)
		bridgeSecs, baseSecs = append(bridgeSecs, s1-s), append(baseSecs, b1-b)
		s, b = s1, b1
	}
	w1 := procWrites(t, pid)
	wakes, busy := sumBusy(bridgeSecs)
	baseWakes, baseBusy := sumBusy(baseSecs)
	t.Logf("idle for %v (ping every %v): %d bytes written, %d wake-ups (%.2f/s) in %d of %d seconds; a process with the keepalive's timers alone: %d (%.2f/s) in %d seconds",
		window, ping, w1-w0, wakes, float64(wakes)/window.Seconds(), busy, len(bridgeSecs), baseWakes, float64(baseWakes)/window.Seconds(), baseBusy)
	if b, ok := t.(*testing.B); ok {
		b.ReportMetric(float64(w1-w0), "idle-bytes-written")
		b.ReportMetric(float64(wakes)/window.Seconds(), "wakeups/s")
		b.ReportMetric(float64(busy), "awake-s")
		b.ReportMetric(float64(baseWakes)/window.Seconds(), "keepalive-wakeups/s")
		b.ReportMetric(float64(baseBusy), "keepalive-awake-s")
	}
	t.Logf("the bridge's wake-ups second by second: %v", bridgeSecs)
	t.Logf("the keepalive program's: %v", baseSecs)
	if w1 != w0 {
		t.Errorf("idle for %v, the bridge wrote %d bytes to disk", window, w1-w0)
	}
	// What wakes an idle bridge: the ping, the outbox writer's check of
	// it, the health round every 5 s (about one event every 2.5 s, in 12
	// or 13 seconds of 30 here). How many thread switches one event costs
	// depends on the machine's load (the same idle bridge: 73 to 80 in
	// 30 s on a quiet machine, 190 in a loaded CI run, the keepalive
	// program 76 in both), so what is held is how often it wakes: in how
	// many of the window's seconds. A tick of once a second wakes it in
	// every second (and cost 8 switches a second more when the core's
	// tick ran idle). Allowed: one second in three more than the
	// keepalive program's; and, against a runaway, at most 6 switches a
	// second more than it.
	if limit := baseBusy + len(bridgeSecs)/3; busy > limit {
		t.Errorf("idle for %v with a ping every %v, the bridge woke in %d of %d seconds; want at most %d (the keepalive's timers alone: %d)", window, ping, busy, len(bridgeSecs), limit, baseBusy)
	}
	if limit := baseWakes + int64(6*window.Seconds()); wakes > limit {
		t.Errorf("idle for %v with a ping every %v, the bridge woke %d times; want at most %d (the keepalive's timers alone: %d, plus 6/s)", window, ping, wakes, limit, baseWakes)
	}
}

// sumBusy is the sum of per-second wake-up counts and how many seconds had
// any.
func sumBusy(secs []int64) (sum int64, busy int) {
	for _, n := range secs {
		sum += n
		if n > 0 {
			busy++
		}
	}
	return sum, busy
}

// keepaliveProcess builds and starts a Go program that only runs the
// timers a keepalive needs (every ping, and every 5 s), and returns its
// pid; it is killed when the test ends.
func keepaliveProcess(t testing.TB, ping time.Duration) int {
	t.Helper()
	dir := t.TempDir()
	src := `package main

import (
	"os"
	"time"
)

func main() {
	ping, health := time.NewTicker(` + strconv.FormatInt(int64(ping), 10) + `), time.NewTicker(5 * time.Second)
	for {
		select {
		case <-ping.C:
			os.Stdout.WriteString(".")
		case <-health.C:
		}
	}
}
`
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module keepalive\n\ngo 1.22\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	gotool, err := exec.LookPath("go")
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "keepalive")
	build := exec.Command(gotool, "build", "-o", bin, ".")
	build.Dir = dir
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the keepalive program: %v\n%s", err, out)
	}
	cmd := exec.Command(bin)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	time.Sleep(time.Second) // past its start-up
	return cmd.Process.Pid
}

// procWrites is what the process pid caused to be written to disk
// (/proc/PID/io write_bytes).
func procWrites(tb testing.TB, pid int) int64 {
	tb.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		tb.Fatal(err)
	}
	for line := range strings.SplitSeq(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, "write_bytes: "); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				tb.Fatal(err)
			}
			return n
		}
	}
	tb.Fatalf("no write_bytes in /proc/%d/io", pid)
	return 0
}

// wakeups is the sum of the voluntary context switches of pid's threads:
// each is a thread going to sleep, so it counts the wake-ups. The
// involuntary ones (a running thread put aside for another process) count
// the machine's load, not the bridge's wake-ups.
func wakeups(tb testing.TB, pid int) int64 {
	tb.Helper()
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/status", pid))
	if err != nil || len(tasks) == 0 {
		tb.Fatalf("threads of %d: %v", pid, err)
	}
	var n int64
	for _, p := range tasks {
		raw, err := os.ReadFile(p)
		if err != nil {
			continue // the thread ended
		}
		for line := range strings.SplitSeq(string(raw), "\n") {
			if v, ok := strings.CutPrefix(line, "voluntary_ctxt_switches:"); ok {
				c, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
				if err != nil {
					tb.Fatal(err)
				}
				n += c
			}
		}
	}
	return n
}
