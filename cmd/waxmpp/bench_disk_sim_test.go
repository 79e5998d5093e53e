//go:build simwa

package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"waxmpp/bridge"
)

// BenchmarkSimDiskWrites measures what relaying costs the disk (an SD
// card wears with every write): the bytes the binary writes
// (/proc/PID/io write_bytes) from a message's arrival until everything it
// caused is done (the outbox confirmed by a ping, the map, the chat's
// activity), per message, for a lone message and in bursts of 100, each
// way. Goal (issue 13): a lone message ≤ 24 KB, in bursts ≤ 1.5 KB.
func BenchmarkSimDiskWrites(b *testing.B) {
	const ping = 5 * time.Second // the shortest the config allows
	for range b.N {
		e := newSimEnv(b, envOptions{pingInterval: ping, pingTimeout: 4 * time.Second})
		e.addressBook()
		e.command("/to alice")
		pid := e.cmd.Process.Pid
		body := strings.Repeat("lorem ipsum ", 8)
		// settle waits until nothing was written for two ping intervals
		// and returns the bytes written so far.
		settle := func() int64 {
			deadline := time.Now().Add(3 * time.Minute)
			last, since := procWrites(b, pid), time.Now()
			for time.Since(since) < 2*ping {
				if time.Now().After(deadline) {
					b.Fatalf("the bridge kept writing for 3 minutes")
				}
				time.Sleep(500 * time.Millisecond)
				if w := procWrites(b, pid); w != last {
					last, since = w, time.Now()
				}
			}
			return last
		}
		seq := 0
		in := func(n int) float64 {
			w0 := settle()
			m := e.mark()
			sent := make([]time.Time, n)
			var evs []bridge.Event
			for i := range n {
				sent[i] = time.Now()
				evs = append(evs, textMsg(alice, alice, fmt.Sprintf("DISK%d", seq), fmt.Sprintf("#%d %s", i, body), "Alice"))
				seq++
			}
			e.inject(evs...) // one control request: a burst
			e.ownerRun(m, n, sent[0], sent, "*Alice*")
			return float64(settle()-w0) / float64(n)
		}
		out := func(n int) float64 {
			w0 := settle()
			m := e.mark()
			sent := make([]time.Time, n)
			for i := range n {
				sent[i] = time.Now()
				e.sendID(fmt.Sprintf("disk-out-%d", seq), fmt.Sprintf("#%d %s", i, body), "")
				seq++
			}
			e.waRun(m, n, sent[0], sent)
			return float64(settle()-w0) / float64(n)
		}
		var loneIn, loneOut float64
		const lone = 3
		for range lone {
			loneIn += in(1) / lone
			loneOut += out(1) / lone
		}
		burstIn, burstOut := in(100), out(100)
		b.Logf("disk per message: lone in %.0f B, lone out %.0f B, in bursts of 100: in %.0f B, out %.0f B", loneIn, loneOut, burstIn, burstOut)
		b.ReportMetric(loneIn, "lone-in-diskB/msg")
		b.ReportMetric(loneOut, "lone-out-diskB/msg")
		b.ReportMetric(burstIn, "burst100-in-diskB/msg")
		b.ReportMetric(burstOut, "burst100-out-diskB/msg")
	}
}
