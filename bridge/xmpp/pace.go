package xmpp

import (
	"context"
	"time"
)

// bucket is a token bucket in bytes. Servers throttle what they read from a
// client by not reading the socket (Prosody's mod_limits, Debian's default
// 10 kB/s with a 2 s burst; ejabberd's c2s shaper, 3,000 B/s with a
// 20,000 B burst as shipped); a client that writes faster fills the
// server's socket buffer, then the TCP window, and then blocks in Write.
// Pacing at the server's rate keeps every write short, so a write deadline
// never fires because of throttling, pings stay quick, and the durable
// queue (not a socket) absorbs bursts. The pacer below finds that rate.
//
// Only the writer goroutine uses it.
type bucket struct {
	rate   float64 // bytes per second
	burst  float64 // capacity in bytes
	tokens float64
	last   time.Time
	now    func() time.Time
}

func newBucket(rate, burst int) *bucket {
	return &bucket{rate: float64(rate), burst: float64(burst), tokens: float64(burst), now: time.Now}
}

// setRate changes the rate from now on.
func (b *bucket) setRate(rate float64) {
	now := b.now()
	if !b.last.IsZero() {
		b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
		b.last = now
	}
	b.rate = rate
}

// take waits until n bytes may be written, then spends them. A stanza larger
// than the burst waits for a full bucket and leaves it in debt, so huge
// stanzas still go out at the average rate. It returns ctx.Err() if ctx ends.
func (b *bucket) take(ctx context.Context, n int) error {
	_, err := b.wait(ctx, n)
	return err
}

// wait is take, also reporting whether it had to wait.
func (b *bucket) wait(ctx context.Context, n int) (bool, error) {
	now := b.now()
	if !b.last.IsZero() {
		b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	}
	b.last = now
	need := min(float64(n), b.burst)
	waited := false
	if b.tokens < need {
		waited = true
		if err := sleep(ctx, time.Duration((need-b.tokens)/b.rate*float64(time.Second))); err != nil {
			return waited, err
		}
		now = b.now()
		b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
		b.last = now
	}
	b.tokens -= float64(n)
	return waited, nil
}

// pacer finds the server's pace from ping round trips, within the
// configured ceiling. A throttling server leaves our bytes, and the ping
// behind them, in its socket buffer: the round trip grows beyond the
// path's own (the shortest seen on the link) by the time the server needs
// to read what we wrote ahead of the ping.
//
// It starts at a rate every server tested takes (startRate, below
// ejabberd's shipped 3,000 B/s) and grows by growFast per answer while
// that queue delay stays short and the pace held the writer back (there
// was more to send). Two answers in a row queued more than queueHigh make
// it back off (one can be a busy moment of the server: Prosody's storage,
// or its throttle reading in bursts), once per round trip: answers to
// pings written before the last back-off, or so soon after it that they
// waited behind what was queued then (its queue delay), do not count.
// (Counting those, with a ping each second of a drain, took the pace to
// its floor in steps under ejabberd's shaper.)
//
// A back-off remembers the rate that queued (peak). Below nearPeak of it
// the pace grows fast again, up to nearPeak of it; from there it grows by
// growSlow for probeSlow quick answers in a row, and after that fast again:
// a queue that one back-off cleared was a moment's, typically a server's
// burst allowance running out (Prosody's mod_limits pausing its reader for
// up to a second once its 2 s allowance is spent) while the pace was far
// below what the server sustains. Growing slowly for the rest of the link
// after any back-off, as it once did, left a Prosody drain at 2,900 B/s
// where the server reads 10,240 and the ceiling was 8,000.
//
// A queue that outlasts a back-off (another back-off before any answer
// came back unqueued) is the server's rate: from then on the pace grows
// slowly past the peak, like TCP after its slow start. Without that, a
// server with a small rate and a large burst allowance (ejabberd's
// shaper) has the pace back off in steps to below its rate while the
// queue drains, then race past it and queue the bot again.
//
// The rate outlives a link: the next link to the same server starts at it.
// Only the writer goroutine uses it.
type pacer struct {
	ceiling float64
	rate    float64
	base    time.Duration // shortest round trip of this link; 0: none yet
	hold    time.Time     // pings written before this do not count
	peak    float64       // the rate at the last back-off; 0: none yet
	near    int           // quick answers in a row at nearPeak of peak or more
	cleared bool          // an answer since the last back-off was not queued
	slow    bool          // a queue outlasted a back-off: slowly past the peak
	queued  int           // answers in a row queued more than queueHigh
}

const (
	startRate = 2000 // B/s
	floorRate = 500  // B/s: never slower than about a message a second
	growFast  = 1.25 // per answer queued less than queueLow, while held back
	growSlow  = 1.05 // the same, near the rate of the last back-off
	nearPeak  = 0.9  // of the rate at the last back-off: where slow growth starts
	probeSlow = 2    // quick answers grown slowly near that rate before fast again
	backOff   = 0.7
	queueLow  = 200 * time.Millisecond
	queueHigh = time.Second
)

func newPacer(ceiling int) *pacer {
	return &pacer{ceiling: float64(ceiling), rate: min(float64(ceiling), startRate)}
}

// newLink forgets the path: a new link may take another.
func (p *pacer) newLink() { p.base, p.hold, p.queued = 0, time.Time{}, 0 }

// observe takes the answer, at now, to a ping written at sent; held tells
// whether the pace held the writer back since the previous answer. It
// returns the rate to pace at.
func (p *pacer) observe(rtt time.Duration, sent time.Time, held bool, now time.Time) float64 {
	if p.base == 0 || rtt < p.base {
		p.base = rtt
	}
	q := rtt - p.base
	if q > queueHigh {
		p.queued++
	} else {
		p.queued = 0
	}
	if !sent.After(p.hold) {
		return p.rate // written before the last back-off: nothing new
	}
	if q <= queueHigh {
		p.cleared = true
	}
	switch {
	case p.queued >= 2:
		if p.peak > 0 && !p.cleared {
			p.slow = true // backing off did not clear the queue
		}
		p.peak = p.rate
		p.rate = max(min(floorRate, p.ceiling), p.rate*backOff)
		// Pings written until the server has read what is queued now
		// still wait behind it.
		p.hold, p.near, p.cleared, p.queued = now.Add(q), 0, false, 0
	case q < queueLow && held:
		g := growFast
		if p.peak > 0 && p.rate >= nearPeak*p.peak {
			p.near++
			if p.slow || p.near <= probeSlow {
				g = growSlow
			}
		}
		r := p.rate * g
		if p.peak > 0 && p.rate < nearPeak*p.peak {
			r = min(r, nearPeak*p.peak) // fast back up to near the peak
		}
		p.rate = min(p.ceiling, r)
	case q >= queueLow && held:
		p.near = 0 // a queue building near the peak: stay slow there
	}
	return p.rate
}

// sleep waits for d or until ctx ends, whichever is first.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
