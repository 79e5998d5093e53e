package whatsapp

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"waxmpp/bridge"
	"waxmpp/bridge/store"
)

// TestInboxSurvivesRestart: events are on disk before push returns; after
// a restart (a new inbox on the same file), everything not handled comes
// again, in order, and nothing handled and flushed does.
func TestInboxSurvivesRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "waxmpp.db")
	db, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	b := newInbox(db.Queue("whatsapp-in"))
	var evs []bridge.Event
	for i := range 10 {
		evs = append(evs, &bridge.Typing{Chat: "c@s.whatsapp.net", Sender: bridge.UserID(string(rune('a' + i)))})
	}
	if err := b.push(evs...); err != nil {
		t.Fatal(err)
	}
	out := make(chan bridge.Event)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { b.deliver(ctx, out, log); close(done) }()
	for range 4 {
		ev := <-out
		if err := b.handled(ev); err != nil {
			t.Fatal(err)
		}
	}
	<-out // delivered, never handled: the crash comes first
	cancel()
	<-done // deliver flushes what was handled on its way out
	db.Close()

	db, err = store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	b = newInbox(db.Queue("whatsapp-in"))
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	go b.deliver(ctx, out, log)
	for i := 4; i < 10; i++ {
		select {
		case ev := <-out:
			if got := ev.(*bridge.Typing).Sender; got != evs[i].(*bridge.Typing).Sender {
				t.Fatalf("after restart got %s, want %s", got, evs[i].(*bridge.Typing).Sender)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("event %d not delivered again", i)
		}
	}
	select {
	case ev := <-out:
		t.Fatalf("unexpected %+v", ev)
	case <-time.After(200 * time.Millisecond):
	}
}

// countingQueue counts the reads and removals of the queue under it.
type countingQueue struct {
	Queue
	mu          sync.Mutex
	peeks, acks int
}

func (q *countingQueue) Peek(after uint64, n int) ([]bridge.QueueItem, error) {
	q.mu.Lock()
	q.peeks++
	q.mu.Unlock()
	return q.Queue.Peek(after, n)
}

func (q *countingQueue) AckThrough(seq uint64) error {
	q.mu.Lock()
	q.acks++
	q.mu.Unlock()
	return q.Queue.AckThrough(seq)
}

func (q *countingQueue) counts() (int, int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.peeks, q.acks
}

// TestInboxIdleSleeps: an idle inbox with nothing to remove does not wake
// up (it read its queue once a second before, on a Pi that never sleeps);
// a handled event still leaves the disk about a second later, in one
// removal with the others handled meanwhile.
func TestInboxIdleSleeps(t *testing.T) {
	db, err := store.Open(filepath.Join(t.TempDir(), "waxmpp.db"), store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	q := &countingQueue{Queue: db.Queue("whatsapp-in")}
	b := newInbox(q)
	out := make(chan bridge.Event)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go b.deliver(ctx, out, slog.New(slog.DiscardHandler))
	time.Sleep(100 * time.Millisecond)
	p0, _ := q.counts()
	time.Sleep(2500 * time.Millisecond)
	if p, _ := q.counts(); p != p0 {
		t.Errorf("idle for 2.5 s with nothing queued, the inbox read its queue %d times", p-p0)
	}

	if err := b.push(&bridge.Typing{Chat: "c@s.whatsapp.net", Sender: "a"}, &bridge.Typing{Chat: "c@s.whatsapp.net", Sender: "b"}); err != nil {
		t.Fatal(err)
	}
	_, a0 := q.counts()
	for range 2 {
		if err := b.handled(<-out); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if n, _ := q.Len(); n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("handled events were never removed from disk")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The inbox went idle after the second delivery (one removal, of what
	// was handled by then), and one more for the rest a second later.
	if _, a := q.counts(); a-a0 > 2 {
		t.Errorf("%d removals for 2 handled events, want at most 2", a-a0)
	}
	p1, a1 := q.counts()
	time.Sleep(2500 * time.Millisecond)
	if p, a := q.counts(); p != p1 || a != a1 {
		t.Errorf("idle after the removal, the inbox read %d and removed %d times", p-p1, a-a1)
	}
}

// laterCounting is the store's queue, its durable removals counted.
type laterCounting struct {
	*store.Queue
	mu   sync.Mutex
	acks int
}

func (q *laterCounting) AckThrough(seq uint64) error {
	q.mu.Lock()
	q.acks++
	q.mu.Unlock()
	return q.Queue.AckThrough(seq)
}

// onDisk is what a crash now would find in the file's inbox.
func onDisk(t *testing.T, path string) int {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "crash.db")
	if err := os.WriteFile(p, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := store.Open(p, store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	n, err := c.Queue("whatsapp-in").Len()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestInboxRemovalWithNextCommit: with the store's queue a handled event
// costs no commit of its own: it is out of the queue at once, off the
// disk with the next event's push (a crash before brings it back, and the
// core drops it as known), and the inbox does not wake up for it. Once
// ackEvery handled events wait, one removal commits.
func TestInboxRemovalWithNextCommit(t *testing.T) {
	path := filepath.Join(t.TempDir(), "waxmpp.db")
	db, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	q := &laterCounting{Queue: db.Queue("whatsapp-in")}
	b := newInbox(q)
	out := make(chan bridge.Event)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go b.deliver(ctx, out, slog.New(slog.DiscardHandler))
	typing := func(s string) bridge.Event { return &bridge.Typing{Chat: "c@s.whatsapp.net", Sender: bridge.UserID(s)} }
	if err := b.push(typing("a")); err != nil {
		t.Fatal(err)
	}
	if err := b.handled(<-out); err != nil {
		t.Fatal(err)
	}
	if n, _ := q.Len(); n != 0 {
		t.Errorf("the inbox holds %d after the event was handled; want 0", n)
	}
	time.Sleep(1500 * time.Millisecond) // past the second after which the removal used to commit
	if q.acks != 0 || onDisk(t, path) != 1 {
		t.Errorf("%d removals committed, %d events on disk; want none, the handled one (until the next commit)", q.acks, onDisk(t, path))
	}
	if err := b.push(typing("b")); err != nil {
		t.Fatal(err)
	}
	if n := onDisk(t, path); n != 1 {
		t.Errorf("after the next push %d events on disk; want the new one only", n)
	}
	if err := b.handled(<-out); err != nil {
		t.Fatal(err)
	}
	// ackEvery handled without a commit between them: one removal commits.
	var evs []bridge.Event
	for i := range ackEvery {
		evs = append(evs, typing(string(rune('A'+i))))
	}
	if err := b.push(evs...); err != nil {
		t.Fatal(err)
	}
	for range ackEvery {
		if err := b.handled(<-out); err != nil {
			t.Fatal(err)
		}
	}
	q.mu.Lock()
	acks := q.acks
	q.mu.Unlock()
	if acks != 1 || onDisk(t, path) != 0 {
		t.Errorf("%d handled events: %d removals committed, %d on disk; want 1 and 0", ackEvery+1, acks, onDisk(t, path))
	}
}
