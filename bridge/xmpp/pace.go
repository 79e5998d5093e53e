package xmpp

import (
	"context"
	"time"
)

// bucket is a token bucket in bytes. Prosody's mod_limits throttles what it
// reads from a client (Debian's default: 10 kB/s with a 2 s burst) by not
// reading the socket; a client that writes faster fills the TCP window and
// then blocks in Write. Pacing below that rate keeps every write short, so a
// write deadline never fires because of throttling, and the queue (not a
// blocked socket) absorbs bursts.
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

// take waits until n bytes may be written, then spends them. A stanza larger
// than the burst waits for a full bucket and leaves it in debt, so huge
// stanzas still go out at the average rate. It returns ctx.Err() if ctx ends.
func (b *bucket) take(ctx context.Context, n int) error {
	now := b.now()
	if !b.last.IsZero() {
		b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	}
	b.last = now
	need := min(float64(n), b.burst)
	if b.tokens < need {
		if err := sleep(ctx, time.Duration((need-b.tokens)/b.rate*float64(time.Second))); err != nil {
			return err
		}
		now = b.now()
		b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
		b.last = now
	}
	b.tokens -= float64(n)
	return nil
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
