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
// the control socket): they hardly depend on the machine's load. The
// binary logs at the shipped level (info).
//
// The goal (issue 13) is a ratio of 1. Measured (300 messages each way),
// WhatsApp → owner: 43–48 allocations per message, ratio 0.56–0.63 on
// Prosody (direct clients 76), 48–52, ratio 0.47–0.51 on ejabberd (101);
// it was 317–322 (4.2 and 3.2) before the store's read cache and the
// names' and the stanza writer's allocation-free paths. Owner →
// WhatsApp: 97–100, ratio 1.27–1.31 on Prosody, was 234–241 (3.1);
// 193–216, ratio 1.90–2.13 on ejabberd, was 360 (3.6). On ejabberd each
// owner message is a batch of its own and costs a store commit (~85
// allocations in bbolt); on Prosody some 15 share one. What is left each
// way is mostly encoding/xml's decoding of a received stanza (~40),
// bbolt's transactions and the simulator's own work, which the direct
// clients do not have. The bounds are about 1.4 times the worst server's:
// they catch the next regression (the core's read of a chat's 100 latest
// messages for every owner message made it 13.7, before readClean). A
// failure shows where the binary allocated.
func TestSimAllocs(t *testing.T) {
	const n = 300
	bounds := map[string]float64{"in": 1, "out": 3}
	e := newSimEnv(t, envOptions{pingInterval: time.Minute, pingTimeout: 20 * time.Second, logLevel: "info"})
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
		t.Logf("%s: bridge %.0f allocations (%.0f B) per message, direct clients %.0f (%.0f B): ratio %.2f (bytes %.2f); %.2f store commits, %.2f outbox commits per message",
			c.name, c.p.allocs, c.p.allocsB, direct, directB, ratio, c.p.allocsB/directB, c.p.commits, c.p.outboxes)
		if ratio > bounds[c.name] {
			t.Errorf("%s: the bridge allocates %.1f times what the direct clients do per message, bound %.1f\n%s\nwhere it allocated:\n%s",
				c.name, ratio, bounds[c.name], c.p.table(c.name), c.p.topAllocs(30))
		}
	}
}
