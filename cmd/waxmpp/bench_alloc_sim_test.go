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
// The goal (issue 13) is a ratio of 1. Measured (300 messages each way):
// WhatsApp → owner 4.2 on Prosody (4.1 with the race detector, as make
// test runs; 3.2 on ejabberd), owner → WhatsApp 3.1 (3.0; 3.4). The
// bounds are about 1.5 times that: they catch the next regression (the
// core's read of a chat's 100 latest messages for every owner message
// made it 13.7, before readClean), and come down as the hot path
// improves. A failure shows where the binary allocated.
func TestSimAllocs(t *testing.T) {
	const n = 300
	bounds := map[string]float64{"in": 6.5, "out": 5}
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
