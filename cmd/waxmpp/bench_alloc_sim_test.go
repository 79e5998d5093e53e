//go:build simwa

package main

import (
	"strings"
	"testing"
	"time"
)

// TestSimAllocs checks the heap allocations per relayed message of the
// whole binary, each way, against the direct clients' of the same run:
// an owner client writing to another account and that one reading, in
// this process (directAllocs). Allocations are counts (MemStats, through
// the control socket): they hardly depend on the machine's load.
//
// The goal (issue 13) is a ratio of 1. Measured on Prosody without the
// race detector: WhatsApp → owner ~4.4, owner → WhatsApp ~16 (with it,
// as make test runs: ~3.5 and ~13; on ejabberd ~2.9 and ~11), where
// reading the chat's 100 latest map records for every owner message
// (Core.markRead) is ~70% of it (the allocation profiles' difference,
// which a failure shows). The bounds are about 1.5 times that: they
// catch the next regression, and come down as the hot path improves.
func TestSimAllocs(t *testing.T) {
	const n = 300
	bounds := map[string]float64{"in": 6.5, "out": 25}
	e := newSimEnv(t, envOptions{pingInterval: time.Minute, pingTimeout: 20 * time.Second})
	e.addressBook()
	e.command("/to alice")
	body := strings.Repeat("lorem ipsum ", 8)
	stranger := e.srv.Dial(t, "stranger")
	e.directOut(stranger, 10, body) // past the first messages' one-time costs
	direct, directB := directAllocs(n, func() { e.directOut(stranger, n, body) })
	_, in := e.bridgeIn(n, body, "ALLOC")
	_, out := e.bridgeOut(n, body, "alloc-out-")
	controlStages(t, e.control(), "off")
	for _, c := range []struct {
		name string
		p    phase
	}{{"in", in}, {"out", out}} {
		ratio := c.p.allocs / direct
		t.Logf("%s: bridge %.0f allocations (%.0f B) per message, direct clients %.0f (%.0f B): ratio %.2f (bytes %.2f)",
			c.name, c.p.allocs, c.p.allocsB, direct, directB, ratio, c.p.allocsB/directB)
		if ratio > bounds[c.name] {
			t.Errorf("%s: the bridge allocates %.1f times what the direct clients do per message, bound %.1f\n%s\nwhere it allocated:\n%s",
				c.name, ratio, bounds[c.name], c.p.table(c.name), c.p.topAllocs(30))
		}
	}
}
