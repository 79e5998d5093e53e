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
// row, once per round trip, ignores a lone slow answer, then grows fast
// back to near the rate that queued, slowly there, and fast again past it,
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
	// Answers to pings written before that back-off (at 24.6 s) count for
	// nothing.
	step(24, 2500*ms, true)
	step(24.5, 2500*ms, true)
	// And so do those written after it but before the server could have
	// read what was queued then (1.6 s).
	step(25, 2500*ms, true)
	step(25.5, 2500*ms, true)
	if p.rate != after {
		t.Fatalf("rate after late answers to older pings %v, want %v", p.rate, after)
	}
	// Then it grows fast again, up to near the rate that queued.
	step(30, 3*ms, true)
	if p.rate != after*growFast {
		t.Fatalf("rate after a quick round trip %v, want %v", p.rate, after*growFast)
	}
	step(31, 3*ms, true)
	near := nearPeak * 8000
	if p.rate != near {
		t.Fatalf("rate after two quick round trips %v, want %v (near the peak)", p.rate, near)
	}
	// There slowly, probeSlow answers in a row; a queue in between
	// changes the rate not but starts them over.
	step(32, 3*ms, true)
	if p.rate != near*growSlow {
		t.Fatalf("rate near the peak %v, want %v", p.rate, near*growSlow)
	}
	step(33, 600*ms, true)
	if p.rate != near*growSlow {
		t.Fatalf("rate after a middling round trip %v, want %v", p.rate, near*growSlow)
	}
	r := p.rate
	for i := range probeSlow {
		step(34+float64(i), 3*ms, true)
		r = min(8000, r*growSlow)
	}
	if p.rate != r {
		t.Fatalf("rate after %d quick answers near the peak %v, want %v", probeSlow, p.rate, r)
	}
	// Then fast: the peak was a moment's.
	step(37, 3*ms, true)
	if want := min(8000, r*growFast); p.rate != want {
		t.Fatalf("rate past the peak %v, want %v", p.rate, want)
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

// TestPacerRecoversFromEarlyBackOff: a back-off early in a burst (Prosody's
// mod_limits pausing its reader once its burst allowance is spent, while
// the pace is far below its 10,240 B/s) does not keep the pace low: within
// a dozen quick answers it is back near the ceiling. Growing by growSlow
// after any back-off, it was still under 3,000 B/s after them.
func TestPacerRecoversFromEarlyBackOff(t *testing.T) {
	p := newPacer(8000)
	ms := time.Millisecond
	at := time.Unix(1000, 0)
	answer := func(rtt time.Duration) {
		p.observe(rtt, at, true, at.Add(rtt))
		at = at.Add(time.Second + rtt)
	}
	answer(50 * ms)
	answer(1300 * ms)
	answer(1400 * ms)
	if p.rate >= startRate {
		t.Fatalf("no back-off: rate %v", p.rate)
	}
	for i := range 12 {
		answer(60 * ms)
		if p.rate >= 0.9*8000 {
			t.Logf("back to %.0f B/s after %d quick answers", p.rate, i+1)
			return
		}
	}
	t.Fatalf("rate %.0f B/s after 12 quick answers, want at least %.0f", p.rate, 0.9*8000)
}

// TestPacerUnderPersistentThrottle simulates, in 10 ms steps, a server
// that reads 3,000 B/s after a 20,000 B burst (ejabberd's shaper as
// shipped) and a writer that keeps a window of unconfirmed bytes and pings
// every second and each half window, as the writer does. Probing past
// each peak must not take the pace above the server's rate on average,
// nor make any ping wait longer than 5 s.
func TestPacerUnderPersistentThrottle(t *testing.T) {
	const (
		serverRate  = 3000.0
		serverBurst = 20000.0
		path        = 20 * time.Millisecond
		dt          = 10 * time.Millisecond
	)
	type simPing struct {
		pos  float64 // bytes written before it
		sent time.Time
	}
	p := newPacer(8000)
	tokens := serverBurst
	var written, read, acked float64
	var pings []simPing
	var lastPing time.Time
	var lastPingPos float64
	var worst time.Duration
	var sum float64
	var samples int
	t0 := time.Unix(1000, 0)
	for i := range 18000 { // 3 minutes
		now := t0.Add(time.Duration(i) * dt)
		window := max(minWindow, p.rate)
		// The writer: at its pace, within the window.
		written += max(0, min(p.rate*dt.Seconds(), window-(written-acked)))
		if len(pings) < maxPings && (now.Sub(lastPing) >= confirmEvery || written-lastPingPos >= window/2) {
			pings = append(pings, simPing{written, now})
			lastPing, lastPingPos = now, written
		}
		// The server: reads from its burst allowance, refilled at its rate.
		got := min(written-read, tokens)
		read += got
		tokens = min(serverBurst, tokens-got+serverRate*dt.Seconds())
		// Answers, in order, a path's round trip after the server read
		// up to the ping.
		for len(pings) > 0 && pings[0].pos <= read && now.Sub(pings[0].sent) >= path {
			rtt := now.Sub(pings[0].sent)
			worst = max(worst, rtt)
			p.observe(rtt, pings[0].sent, true, now)
			acked = pings[0].pos
			pings = pings[1:]
		}
		if i >= 6000 { // after the first minute
			sum += p.rate
			samples++
		}
	}
	mean := sum / float64(samples)
	t.Logf("pace %.0f B/s on average over the last 2 minutes (server %.0f), worst ping %v", mean, serverRate, worst)
	if mean > 1.1*serverRate {
		t.Errorf("pace %.0f B/s on average, above the server's %.0f B/s", mean, serverRate)
	}
	if mean < 0.5*serverRate {
		t.Errorf("pace %.0f B/s on average, far below the server's %.0f B/s", mean, serverRate)
	}
	if worst > 5*time.Second {
		t.Errorf("a ping took %v", worst)
	}
}
