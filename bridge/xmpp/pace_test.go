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
