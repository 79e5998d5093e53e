//go:build simwa

package main

import (
	"bufio"
	"cmp"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"waxmpp/bridge"
)

// The benchmarks' view into the running binary: its control socket's
// stage timings and allocation counters (stages.go), and the test
// process's own allocations (the direct clients run here).

// stageOrder is the pipeline's order, for the tables; a stage not named
// here goes last.
var stageOrder = []string{
	"whatsapp inbox write", "core: WhatsApp events", "core: owner messages", "store commit",
	"xmpp outbox commit", "xmpp window wait", "xmpp pace wait", "xmpp ping round trip", "xmpp socket write", "xmpp owner → core", "whatsapp send", "whatsapp send (simulated)",
}

// control is the binary's control socket.
func (e *simEnv) control() string { return controlPath(filepath.Join(e.dir, "waxmpp.db")) }

// stagesFrom zeroes the binary's stage timings and returns its counters
// as they are now, and saves the binary's allocation profile as
// NAME-0.pb.gz (phase saves NAME-1.pb.gz), in $WAXMPP_BENCH_PROFILE or a
// temporary directory: go tool pprof -base NAME-0.pb.gz NAME-1.pb.gz is
// where the phase allocated (phase.topAllocs).
func (e *simEnv) stagesFrom(name string) phaseStart {
	e.tb.Helper()
	e.saveAllocs(name + "-0")
	controlStages(e.tb, e.control(), "on")
	return phaseStart{readStages(e.tb, e.control()), name}
}

// phaseStart is the binary's counters at the start of a phase.
type phaseStart struct {
	stageReport
	name string
}

func (e *simEnv) saveAllocs(name string) {
	e.tb.Helper()
	if e.profiles == "" {
		e.profiles = cmp.Or(os.Getenv("WAXMPP_BENCH_PROFILE"), e.tb.TempDir())
	}
	conn, err := net.DialTimeout("unix", e.control(), 5*time.Second)
	if err != nil {
		e.tb.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(time.Minute))
	fmt.Fprintf(conn, "stages allocs\n")
	r := bufio.NewReader(conn)
	if line, err := r.ReadString('\n'); line != "ok\n" {
		e.tb.Fatalf("stages allocs: %q %v", line, err)
	}
	f, err := os.Create(filepath.Join(e.profiles, name+".pb.gz"))
	if err != nil {
		e.tb.Fatal(err)
	}
	defer f.Close()
	if _, err := io.Copy(f, r); err != nil {
		e.tb.Fatalf("stages allocs: %v", err)
	}
}

// phase is what one run of messages cost the binary: its stage timings
// (since stagesFrom) and allocations.
type phase struct {
	n                 int
	stages            []bridge.StageStats
	allocs, allocsB   float64 // per message
	commits, outboxes float64 // store commits and outbox commits per message
	profiles          string  // the allocation profiles' path, without -0.pb.gz
}

// topAllocs is where the phase allocated most (objects; pprof's top,
// cumulative, of the profiles' difference, without the goroutines'
// roots), or why it cannot say. The binary samples an allocation every
// 16 KiB (simEnv.start: GODEBUG=memprofilerate), not every 512 KiB, so
// that a few hundred messages are enough.
func (p phase) topAllocs(lines int) string {
	out, err := exec.Command("go", "tool", "pprof", "-sample_index=alloc_objects", "-top", "-cum",
		fmt.Sprintf("-nodecount=%d", lines), "-hide=^(runtime|main|golang\\.org/x/sync)",
		"-base", p.profiles+"-0.pb.gz", p.profiles+"-1.pb.gz").CombinedOutput()
	if err != nil {
		return fmt.Sprintf("go tool pprof: %v\n%s", err, out)
	}
	return string(out)
}

// inuse is what holds the heap of profile NAME.pb.gz (saveAllocs): its
// live memory as of the last collection (pprof's top, cumulative), or
// why it cannot say.
func (e *simEnv) inuse(name string, lines int) string {
	out, err := exec.Command("go", "tool", "pprof", "-sample_index=inuse_space", "-top", "-cum",
		fmt.Sprintf("-nodecount=%d", lines), "-hide=^(runtime|main|golang\\.org/x/sync)",
		filepath.Join(e.profiles, name+".pb.gz")).CombinedOutput()
	if err != nil {
		return fmt.Sprintf("go tool pprof: %v\n%s", err, out)
	}
	return string(out)
}

func (e *simEnv) phase(r0 phaseStart, n int) phase {
	e.tb.Helper()
	r1 := readStages(e.tb, e.control())
	e.saveAllocs(r0.name + "-1")
	p := phase{n: n, stages: r1.Stages, profiles: filepath.Join(e.profiles, r0.name),
		allocs:   float64(r1.Allocs-r0.Allocs) / float64(n),
		allocsB:  float64(r1.AllocBytes-r0.AllocBytes) / float64(n),
		commits:  float64(stageByName(r1, "store commit").Count) / float64(n),
		outboxes: float64(stageByName(r1, "xmpp outbox commit").Count) / float64(n),
	}
	slices.SortStableFunc(p.stages, func(a, b bridge.StageStats) int { return stageRank(a.Name) - stageRank(b.Name) })
	return p
}

func stageRank(name string) int {
	if i := slices.Index(stageOrder, name); i >= 0 {
		return i
	}
	return len(stageOrder)
}

// table is the phase's stages, one line each: observations, percentiles,
// maximum and the total time spent there.
func (p phase) table(title string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s, %d messages: where the time goes\n", title, p.n)
	fmt.Fprintf(&b, "  %-26s %7s %9s %9s %9s %9s %9s\n", "stage", "count", "p50", "p90", "p99", "max", "total")
	for _, s := range p.stages {
		if s.Count == 0 {
			fmt.Fprintf(&b, "  %-26s %7d\n", s.Name, 0)
			continue
		}
		fmt.Fprintf(&b, "  %-26s %7d %9s %9s %9s %9s %9s\n", s.Name, s.Count,
			dur(s.Quantile(0.5)), dur(s.Quantile(0.9)), dur(s.Quantile(0.99)), dur(s.Max), dur(s.Sum))
	}
	fmt.Fprintf(&b, "  per message: %.2f store commits, %.2f outbox commits, %.0f allocations (%.0f B)",
		p.commits, p.outboxes, p.allocs, p.allocsB)
	return b.String()
}

// benchPrint writes s to the benchmark's output: its log keeps only ten
// lines (testing.B trims it).
func benchPrint(s string) { fmt.Println(s) }

func dur(d time.Duration) string {
	switch {
	case d >= time.Second:
		return fmt.Sprintf("%.2fs", d.Seconds())
	case d >= time.Millisecond:
		return fmt.Sprintf("%.2fms", float64(d.Microseconds())/1000)
	default:
		return fmt.Sprintf("%.1fµs", float64(d.Nanoseconds())/1000)
	}
}

// directAllocs is the test process's allocations, per message, while
// run relays n messages from one direct client to the other (both run
// here: the sender's encoding and write, the receiver's read and
// decoding, and the benchmark's bookkeeping of each message).
func directAllocs(n int, run func()) (objects, bytes float64) {
	o0, b0 := readAllocs()
	run()
	o1, b1 := readAllocs()
	return float64(o1-o0) / float64(n), float64(b1-b0) / float64(n)
}
