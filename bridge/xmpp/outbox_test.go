package xmpp

import (
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// countingQueue counts the outbox's removals (one commit each).
type countingQueue struct {
	memQueue
	acks []uint64
}

func (q *countingQueue) AckThrough(seq uint64) error {
	q.mu.Lock()
	q.acks = append(q.acks, seq)
	q.mu.Unlock()
	return q.memQueue.AckThrough(seq)
}

// TestOutboxRemovesOnce: answers to pings written during a burst remove
// what they confirm with one removal, at the last answer; a lone answer
// removes at once; what a link leaves confirmed is removed when it ends.
func TestOutboxRemovesOnce(t *testing.T) {
	q := &countingQueue{}
	s, err := New(Config{JID: "bot@example.org", Password: "pw", Owner: "owner@example.org", Outbox: q})
	if err != nil {
		t.Fatal(err)
	}
	for range 30 {
		q.Enqueue([]byte("12345678<message/>"))
	}
	w := &outWriter{s: s, pace: newBucket(1e6, 1e6), pings: map[string]ping{}}
	at := time.Now()
	// Three pings, written after items 10, 20 and 30.
	for i, seq := range []uint64{10, 20, 30} {
		w.written = seq
		w.pings[string(rune('a'+i))] = ping{seq: seq, at: at.Add(time.Duration(i) * time.Millisecond)}
	}
	for _, id := range []string{"a", "b"} {
		if err := w.pong(id); err != nil {
			t.Fatal(err)
		}
	}
	if len(q.acks) != 0 {
		t.Errorf("removed through %v while a later ping was out; want nothing yet", q.acks)
	}
	if err := w.pong("c"); err != nil {
		t.Fatal(err)
	}
	if want := []uint64{30}; len(q.acks) != 1 || q.acks[0] != 30 {
		t.Errorf("removals %v, want %v", q.acks, want)
	}
	// A lone item: removed at its answer.
	q.Enqueue([]byte("12345678<message/>"))
	w.written = 31
	w.pings["d"] = ping{seq: 31, at: time.Now()}
	if err := w.pong("d"); err != nil {
		t.Fatal(err)
	}
	if n := len(q.acks); n != 2 || q.acks[1] != 31 {
		t.Errorf("removals %v, want 30 then 31", q.acks)
	}
	// Confirmed, a later ping out, and the link ends.
	q.Enqueue([]byte("12345678<message/>"), []byte("12345678<message/>"))
	w.written = 32
	w.pings["e"] = ping{seq: 32, at: time.Now()}
	w.written = 33
	w.pings["f"] = ping{seq: 33, at: time.Now().Add(time.Millisecond)}
	if err := w.pong("e"); err != nil {
		t.Fatal(err)
	}
	if len(q.acks) != 2 {
		t.Errorf("removals %v before the link ended, want 30, 31", q.acks)
	}
	if err := w.remove(true); err != nil {
		t.Fatal(err)
	}
	if n := len(q.acks); n != 3 || q.acks[2] != 32 {
		t.Errorf("removals %v, want 30, 31, 32", q.acks)
	}
	if n, _ := q.Len(); n != 1 {
		t.Errorf("the outbox holds %d, want the one item not confirmed", n)
	}
	// The window is full, no ping is out and the outbox holds more: the
	// answer's removal waits for the writer to be done.
	w.pings = map[string]ping{"g": {seq: 33, at: time.Now()}}
	w.backlog = true
	if err := w.pong("g"); err != nil {
		t.Fatal(err)
	}
	if len(q.acks) != 3 {
		t.Errorf("removals %v while the outbox held more, want 30, 31, 32", q.acks)
	}
	w.backlog = false
	w.pings = map[string]ping{"h": {seq: 33, at: time.Now()}}
	if err := w.pong("h"); err != nil {
		t.Fatal(err)
	}
	if n := len(q.acks); n != 4 || q.acks[3] != 33 {
		t.Errorf("removals %v, want 30, 31, 32, 33", q.acks)
	}
}

// TestWriterPipelines: during a burst the writer pings once half a
// window is written and goes on writing the second half while that ping
// is unanswered; the answer opens the window again before it is full.
// (It used to ping only once the window was full, then wait a round trip
// with nothing to write: the server sat idle for a round trip a window.)
// Nothing is removed from the outbox before an answer confirms it.
func TestWriterPipelines(t *testing.T) {
	q := &countingQueue{}
	s, err := New(Config{JID: "bot@example.org", Password: "pw", Owner: "owner@example.org", Outbox: q})
	if err != nil {
		t.Fatal(err)
	}
	item := "12345678<message to='owner@example.org' id='x'><body>" + strings.Repeat("x", 280) + "</body></message>"
	for range 100 {
		q.Enqueue([]byte(item))
	}
	ours, theirs := net.Pipe()
	defer ours.Close()
	defer theirs.Close()
	go io.Copy(io.Discard, theirs) // the server
	c := &conn{link: &link{conn: ours}, ctrl: make(chan []byte, 8), pongs: make(chan string, 8), gate: make(chan struct{})}
	c.openGate()
	w := &outWriter{s: s, c: c, pace: newBucket(1e9, 1e9), pings: map[string]ping{}, limit: 1 << 20}
	ctx := t.Context()
	// Write until the writer has nothing it may write without an answer.
	writeAll := func() {
		for {
			did, err := w.drain(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if !did {
				return
			}
		}
	}
	writeAll()
	window := int(w.window())
	if w.bytes-w.ackedBytes < uint64(window) {
		t.Fatalf("%d bytes written unconfirmed, want a full window (%d)", w.bytes-w.ackedBytes, window)
	}
	if n := len(w.pings); n < 2 {
		t.Fatalf("%d pings out over a full window, want one each half window", n)
	}
	var first ping
	for _, p := range w.pings {
		if first.at.IsZero() || p.at.Before(first.at) {
			first = p
		}
	}
	if first.bytes > uint64(window)/2+uint64(len(item)) {
		t.Errorf("the first ping went after %d bytes, want about half the window (%d)", first.bytes, window/2)
	}
	if first.seq >= w.written {
		t.Errorf("nothing written after the first ping (seq %d, written %d)", first.seq, w.written)
	}
	if len(q.acks) != 0 {
		t.Errorf("removed %v before any answer", q.acks)
	}
	// The answer to the first ping opens the window before the second's.
	var firstID string
	for id, p := range w.pings {
		if p.at.Equal(first.at) {
			firstID = id
		}
	}
	written := w.written
	if err := w.pong(firstID); err != nil {
		t.Fatal(err)
	}
	writeAll()
	if w.written <= written {
		t.Errorf("nothing written after the first answer (written %d)", w.written)
	}
	if w.confirmed != first.seq {
		t.Errorf("confirmed through %d, want %d", w.confirmed, first.seq)
	}
	if err := w.remove(true); err != nil {
		t.Fatal(err)
	}
	if len(q.acks) != 1 || q.acks[0] != first.seq {
		t.Errorf("removals %v, want through %d only", q.acks, first.seq)
	}
}

// laterQueue is a countingQueue whose removals may wait for a commit
// (LaterQueue, as bridge/store's): later lists them, commit writes them.
type laterQueue struct {
	countingQueue
	later   []uint64
	removed uint64
}

func (q *laterQueue) AckThroughLater(seq uint64) {
	q.mu.Lock()
	q.later = append(q.later, seq)
	q.mu.Unlock()
	q.memQueue.AckThrough(seq)
}

func (q *laterQueue) Removed() uint64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.removed
}

// commit is another call's commit: it writes what waits.
func (q *laterQueue) commit() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.removed = q.acked
}

// TestOutboxRemovesLater: a lone message's confirmed stanza leaves the
// outbox with the store's next commit, not one of its own (one commit per
// relayed message); so do the next ones once a commit took the earlier.
// Without a commit in between, removals wait only up to maxLazy bytes
// (what recallCopies reads back after a crash); beyond, one commits.
func TestOutboxRemovesLater(t *testing.T) {
	q := &laterQueue{}
	s, err := New(Config{JID: "bot@example.org", Password: "pw", Owner: "owner@example.org", Outbox: q})
	if err != nil {
		t.Fatal(err)
	}
	w := &outWriter{s: s, pace: newBucket(1e6, 1e6), pings: map[string]ping{}}
	const stanza = 600
	lone := func(id string) {
		t.Helper()
		seqs, _ := q.Enqueue([]byte("12345678<message/>"))
		w.written, w.bytes = seqs[0], w.bytes+stanza
		w.pings[id] = ping{seq: w.written, bytes: w.bytes, at: time.Now()}
		if err := w.pong(id); err != nil {
			t.Fatal(err)
		}
	}
	lone("a")
	if len(q.acks) != 0 || len(q.later) != 1 || q.later[0] != 1 {
		t.Errorf("a lone message: removals %v, later %v; want none, [1]", q.acks, q.later)
	}
	if n, _ := q.Len(); n != 0 {
		t.Errorf("the outbox holds %d; want nothing", n)
	}
	// The next message's commit writes the removal; its own waits too.
	q.commit()
	for i := range 20 {
		lone(string(rune('b' + i)))
		q.commit()
	}
	if len(q.acks) != 0 || len(q.later) != 21 {
		t.Errorf("lone messages with commits between: removals %v, %d later; want none, 21", q.acks, len(q.later))
	}
	// No commit between them: up to maxLazy bytes wait, the next commits.
	n := int(maxLazy / stanza)
	for i := range n + 1 {
		lone(string(rune('A' + i)))
	}
	if len(q.acks) != 1 || q.acks[0] != uint64(21+n+1) {
		t.Errorf("%d removals of %d B without a commit: committed %v; want one, the last (%d)", n+1, stanza, q.acks, 21+n+1)
	}
	// A burst's removal (more than maxLazy at once) commits.
	var seqs []uint64
	for range 30 {
		seqs, _ = q.Enqueue([]byte("12345678<message/>"))
	}
	w.written, w.bytes = seqs[0], w.bytes+30*stanza
	w.pings["z"] = ping{seq: w.written, bytes: w.bytes, at: time.Now()}
	if err := w.pong("z"); err != nil {
		t.Fatal(err)
	}
	if len(q.acks) != 2 || q.acks[1] != seqs[0] {
		t.Errorf("a burst's removal: committed %v; want it (%d) too", q.acks, seqs[0])
	}
}
