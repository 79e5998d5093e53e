//go:build simwa

package main

import (
	"fmt"
	"os"
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
// against the pings in the window.
func TestSimIdle(t *testing.T) {
	const ping = 10 * time.Second
	e := newSimEnv(t, envOptions{pingInterval: ping, pingTimeout: 5 * time.Second})
	e.addressBook()
	e.command("/to alice")
	m := e.mark()
	e.send("see you", "")
	e.action(m, 30*time.Second, "the owner's message", sendTo(alice, "see you"))
	pid := e.cmd.Process.Pid

	// Settled: nothing written over two ping intervals (a ping result
	// confirms the outbox, which is a write).
	deadline := time.Now().Add(3 * time.Minute)
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

	const window = 3 * ping
	w0, s0 := procWrites(t, pid), wakeups(t, pid)
	time.Sleep(window)
	w1, s1 := procWrites(t, pid), wakeups(t, pid)
	wakes := s1 - s0
	t.Logf("idle for %v (ping every %v): %d bytes written, %d wake-ups (%.2f/s)", window, ping, w1-w0, wakes, float64(wakes)/window.Seconds())
	if w1 != w0 {
		t.Errorf("idle for %v, the bridge wrote %d bytes to disk", window, w1-w0)
	}
	// The keepalive, the outbox writer's check of it, the health round
	// for systemd (every 5 s) and the Go runtime's own (its garbage
	// collector runs at least every two minutes) came to under 3 a
	// second here; the core's tick of once a second, when it ran idle,
	// cost 8 more (10.6/s).
	if limit := int64(4 * window.Seconds()); wakes > limit {
		t.Errorf("idle for %v with a ping every %v, the bridge woke %d times; want at most %d (4/s)", window, ping, wakes, limit)
	}
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

// wakeups is the sum of the context switches of pid's threads: each is a
// thread going to sleep or being put aside, so it counts the wake-ups.
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
			for _, f := range []string{"voluntary_ctxt_switches:", "nonvoluntary_ctxt_switches:"} {
				if v, ok := strings.CutPrefix(line, f); ok {
					c, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
					if err != nil {
						tb.Fatal(err)
					}
					n += c
				}
			}
		}
	}
	return n
}
