package xmpp

import (
	"context"
	"testing"
	"time"
)

// TestBucketRate drives the bucket with a fake clock: after the burst is
// spent, the time it makes a writer wait matches bytes/rate.
func TestBucketRate(t *testing.T) {
	clock := time.Unix(0, 0)
	b := newBucket(1000, 2000)
	b.now = func() time.Time { return clock }
	ctx := context.Background()
	if err := b.take(ctx, 2000); err != nil {
		t.Fatal(err)
	}
	if b.tokens != 0 {
		t.Fatalf("tokens after burst = %v, want 0", b.tokens)
	}
	clock = clock.Add(500 * time.Millisecond)
	if err := b.take(ctx, 500); err != nil {
		t.Fatal(err)
	}
	if b.tokens != 0 {
		t.Fatalf("tokens = %v, want 0 (500 ms at 1000 B/s refills 500 B)", b.tokens)
	}
	// A stanza bigger than the burst leaves the bucket in debt.
	clock = clock.Add(10 * time.Second)
	if err := b.take(ctx, 5000); err != nil {
		t.Fatal(err)
	}
	if b.tokens != -3000 {
		t.Fatalf("tokens = %v, want -3000", b.tokens)
	}
}

func TestBucketWaitsAndCancels(t *testing.T) {
	b := newBucket(1000, 1000)
	ctx := context.Background()
	b.take(ctx, 1000)
	start := time.Now()
	if err := b.take(ctx, 100); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 80*time.Millisecond {
		t.Fatalf("waited %v for 100 B at 1000 B/s, want about 100ms", d)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := b.take(cctx, 1000); err != context.Canceled {
		t.Fatalf("take on cancelled ctx = %v, want context.Canceled", err)
	}
}

// TestPacer: the pace starts low, grows fast while round trips stay short
// and the writer is held back, backs off on the second queued answer in a
// row, once per round trip, ignores a lone slow answer, then grows slowly,
// within the ceiling and the floor.
func TestPacer(t *testing.T) {
	p := newPacer(8000)
	if p.rate != startRate {
		t.Fatalf("start rate %v, want %v", p.rate, startRate)
	}
	t0 := time.Unix(1000, 0)
	ms := time.Millisecond
	step := func(sec float64, rtt time.Duration, held bool) float64 {
		at := t0.Add(time.Duration(sec * float64(time.Second)))
		return p.observe(rtt, at, held, at.Add(rtt))
	}
	// Idle pings (not held back) tell the path's round trip only.
	if r := step(0, 2*ms, false); r != startRate {
		t.Fatalf("rate after an idle ping %v, want %v", r, startRate)
	}
	if r := step(1, 3*ms, true); r != startRate*growFast {
		t.Fatalf("rate after a short round trip %v, want %v", r, startRate*growFast)
	}
	for i := range 10 {
		step(float64(i+2), 3*ms, true)
	}
	if p.rate != 8000 {
		t.Fatalf("rate after quick round trips %v, want the ceiling 8000", p.rate)
	}
	// One slow answer between quick ones is a busy moment: no back-off.
	step(20, 900*ms, true)
	step(21, 3*ms, true)
	if p.rate != 8000 {
		t.Fatalf("rate after one slow answer: %v, want 8000", p.rate)
	}
	// Two in a row: back off, once.
	step(22, 1200*ms, true)
	step(23, 1600*ms, true)
	if p.rate != 8000*backOff {
		t.Fatalf("rate after two queued answers %v, want %v", p.rate, 8000*backOff)
	}
	after := p.rate
	// Answers to pings written before that back-off count for nothing.
	step(24, 2500*ms, true)
	step(24.5, 2500*ms, true)
	if p.rate != after {
		t.Fatalf("rate after late answers to older pings %v, want %v", p.rate, after)
	}
	// Then it grows slowly.
	step(30, 3*ms, true)
	if p.rate != after*growSlow {
		t.Fatalf("rate after a quick round trip %v, want %v", p.rate, after*growSlow)
	}
	// A queue in between changes nothing.
	step(31, 600*ms, true)
	if p.rate != after*growSlow {
		t.Fatalf("rate after a middling round trip %v, want %v", p.rate, after*growSlow)
	}
	for i := range 60 {
		step(40+float64(3*i), 2*time.Second, true)
	}
	if p.rate != floorRate {
		t.Fatalf("rate after a long queue %v, want the floor %v", p.rate, floorRate)
	}
	// A new link starts from the rate learned, with its own path.
	p.newLink()
	if p.base != 0 || p.rate != floorRate {
		t.Fatalf("new link: base %v rate %v", p.base, p.rate)
	}
	if q := newPacer(1000); q.rate != 1000 {
		t.Fatalf("a ceiling below the start rate: %v, want 1000", q.rate)
	}
}
