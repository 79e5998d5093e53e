package store

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"waxmpp/bridge"
)

func openTest(t testing.TB) *DB {
	t.Helper()
	db, err := Open(filepath.Join(t.TempDir(), "waxmpp.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func reopen(t testing.TB, db *DB) *DB {
	t.Helper()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db2, err := Open(db.Path(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db2.Close() })
	return db2
}

func seqsOf(items []Item) []uint64 {
	var s []uint64
	for _, it := range items {
		s = append(s, it.Seq)
	}
	return s
}

func TestQueueFIFO(t *testing.T) {
	db := openTest(t)
	q := db.Queue("out")
	if items, err := q.Peek(0, 10); err != nil || len(items) != 0 {
		t.Fatalf("Peek on new queue = %v, %v; want nothing", items, err)
	}
	seqs, err := q.Enqueue([]byte("a"), []byte("b"), nil, []byte("d"))
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(seqs) != "[1 2 3 4]" {
		t.Fatalf("seqs = %v, want [1 2 3 4]", seqs)
	}
	tests := []struct {
		after uint64
		n     int
		want  string
	}{
		{0, 10, "[{1 a} {2 b} {3 } {4 d}]"},
		{0, 2, "[{1 a} {2 b}]"},
		{2, 1, "[{3 }]"},
		{4, 10, "[]"},
		{math.MaxUint64, 10, "[]"},
		{0, 0, "[]"},
	}
	for _, tt := range tests {
		items, err := q.Peek(tt.after, tt.n)
		if err != nil {
			t.Fatal(err)
		}
		if got := itemsString(items); got != tt.want {
			t.Errorf("Peek(%d, %d) = %s, want %s", tt.after, tt.n, got, tt.want)
		}
	}
	if err := q.AckThrough(1); err != nil {
		t.Fatal(err)
	}
	items, _ := q.Peek(0, 10)
	if got := fmt.Sprint(seqsOf(items)); got != "[2 3 4]" {
		t.Errorf("after AckThrough(1): seqs %s, want [2 3 4]", got)
	}
	if n, err := q.Len(); n != 3 || err != nil {
		t.Errorf("Len = %d, %v; want 3", n, err)
	}
	if it, ok, err := q.Oldest(); !ok || err != nil || it.Seq != 2 || string(it.Data) != "b" {
		t.Errorf("Oldest = %v %v %v, want {2 b} true", it, ok, err)
	}
	if err := q.AckThrough(100); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := q.Oldest(); ok {
		t.Errorf("Oldest of empty queue: ok = true")
	}
	// Seqs are never reused, even after the queue empties and the file is reopened.
	db = reopen(t, db)
	q = db.Queue("out")
	seqs, err = q.Enqueue([]byte("e"))
	if err != nil {
		t.Fatal(err)
	}
	if seqs[0] != 5 {
		t.Errorf("seq after reopen = %d, want 5", seqs[0])
	}
	// Queues are independent.
	if seqs, _ := db.Queue("other").Enqueue([]byte("x")); seqs[0] != 1 {
		t.Errorf("first seq of another queue = %d, want 1", seqs[0])
	}
	if _, err := db.Queue("").Enqueue([]byte("x")); err == nil {
		t.Errorf("Enqueue on unnamed queue: no error")
	}
}

func TestQueuePeekCopies(t *testing.T) {
	db := openTest(t)
	q := db.Queue("q")
	buf := []byte("hello")
	if _, err := q.Enqueue(buf); err != nil {
		t.Fatal(err)
	}
	buf[0] = 'j' // the caller may reuse its buffer once Enqueue returned
	items, _ := q.Peek(0, 1)
	if got := string(items[0].Data); got != "hello" {
		t.Errorf("Data = %q, want hello", got)
	}
}

// TestQueueConcurrent enqueues from many goroutines: every item is there
// once, each goroutine's items are in its order, and commits were shared.
func TestQueueConcurrent(t *testing.T) {
	db := openTest(t)
	q := db.Queue("q")
	const writers, each = 32, 20
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var last uint64
			for i := range each {
				seqs, err := q.Enqueue([]byte(fmt.Sprintf("%d/%d", w, i)))
				if err != nil {
					errs <- err
					return
				}
				if seqs[0] <= last {
					errs <- fmt.Errorf("writer %d: seq %d after %d", w, seqs[0], last)
					return
				}
				last = seqs[0]
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	items, err := q.Peek(0, writers*each+1)
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != writers*each {
		t.Fatalf("%d items, want %d", len(items), writers*each)
	}
	next := make([]int, writers)
	for i, it := range items {
		if it.Seq != uint64(i+1) {
			t.Fatalf("item %d has seq %d, want %d", i, it.Seq, i+1)
		}
		var w, n int
		fmt.Sscanf(string(it.Data), "%d/%d", &w, &n)
		if n != next[w] {
			t.Fatalf("writer %d: item %d where %d was expected", w, n, next[w])
		}
		next[w]++
	}
	if tx := db.group.commits.Load(); tx >= writers*each {
		t.Errorf("%d write commits for %d concurrent enqueues; want them grouped", tx, writers*each)
	}
}

// TestGroupFailureIsolated: a failing call in a group does not fail others.
func TestGroupFailureIsolated(t *testing.T) {
	db := openTest(t)
	good := db.Queue("good")
	var wg sync.WaitGroup
	bad := make(chan error, 50)
	for i := range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i%2 == 0 {
				_, err := db.Queue("").Enqueue([]byte("x"))
				bad <- err
				return
			}
			if _, err := good.Enqueue([]byte("x")); err != nil {
				t.Errorf("good enqueue failed: %v", err)
			}
		}()
	}
	wg.Wait()
	close(bad)
	for err := range bad {
		if err == nil {
			t.Errorf("bad enqueue: no error")
		}
	}
	if n, _ := good.Len(); n != 50 {
		t.Errorf("good queue has %d items, want 50", n)
	}
}

func TestQueueAfterClose(t *testing.T) {
	db := openTest(t)
	db.Close()
	if _, err := db.Queue("q").Enqueue([]byte("x")); err == nil {
		t.Errorf("Enqueue after Close: no error")
	}
}

func itemsString(items []Item) string {
	s := "["
	for i, it := range items {
		if i > 0 {
			s += " "
		}
		s += fmt.Sprintf("{%d %s}", it.Seq, it.Data)
	}
	return s + "]"
}

// TestEnqueueWith: the items, the map entries and the chats' activity of
// a record are written in one commit, and the entries are found at once;
// a record that cannot be written leaves the queue as it was.
func TestEnqueueWith(t *testing.T) {
	db := openTest(t)
	if _, err := db.PutChat(bridge.Chat{ID: "a@s.whatsapp.net", Kind: bridge.Direct}); err != nil {
		t.Fatal(err)
	}
	q := db.Queue("out")
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	r := bridge.Record{
		Links: []bridge.MsgLink{
			{WA: bridge.MessageKey{Chat: "a@s.whatsapp.net", ID: "W1"}, XMPPID: "x1", Time: at},
			{WA: bridge.MessageKey{Chat: "a@s.whatsapp.net", ID: "W2"}, XMPPID: "x2", Time: at},
		},
		Touch: map[string]time.Time{"a@s.whatsapp.net": at, "gone@s.whatsapp.net": at},
	}
	c0 := db.group.commits.Load()
	seqs, err := q.EnqueueWith(r, []byte("s1"), []byte("s2"))
	if err != nil {
		t.Fatal(err)
	}
	if n := db.group.commits.Load() - c0; n != 1 || len(seqs) != 2 {
		t.Errorf("EnqueueWith: %d commits, %d items; want 1 commit, 2 items", n, len(seqs))
	}
	for _, id := range []string{"x1", "x2"} {
		if l, err := db.MessageByXMPP(id); err != nil || l.WA.ID != "W"+id[1:] {
			t.Errorf("MessageByXMPP(%s) = %+v, %v", id, l, err)
		}
	}
	if c, err := db.Chat("a@s.whatsapp.net"); err != nil || !c.LastActivity.Equal(at) {
		t.Errorf("chat's activity = %v, %v; want %v", c.LastActivity, err, at)
	}
	bad := bridge.Record{Links: []bridge.MsgLink{{XMPPID: "x\x003"}}}
	if _, err := q.EnqueueWith(bad, []byte("s3")); err == nil {
		t.Error("a map entry with a NUL was written")
	}
	if n, err := q.Len(); err != nil || n != 2 {
		t.Errorf("queue holds %d, %v after a failed EnqueueWith; want 2", n, err)
	}
}

// crashCopy opens a copy of db's file as it is on disk now (a crash:
// what was committed, nothing else).
func crashCopy(t *testing.T, db *DB) *DB {
	t.Helper()
	raw, err := os.ReadFile(db.Path())
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "crash.db")
	if err := os.WriteFile(p, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Open(p, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestAckThroughLater: a lazy removal costs no commit of its own, takes
// the items out of Peek, Len and Oldest at once, reaches the disk with
// the next commit of anything else (Removed says so), comes undone in a
// crash before that, and is written by Close.
func TestAckThroughLater(t *testing.T) {
	db := openTest(t)
	q := db.Queue("out")
	if _, err := q.Enqueue([]byte("a"), []byte("b"), []byte("c")); err != nil {
		t.Fatal(err)
	}
	c0 := db.group.commits.Load()
	q.AckThroughLater(2)
	if n := db.group.commits.Load() - c0; n != 0 {
		t.Errorf("AckThroughLater committed %d times; want 0", n)
	}
	if items, err := q.Peek(0, 10); err != nil || itemsString(items) != "[{3 c}]" {
		t.Errorf("Peek = %s, %v; want 3:c", itemsString(items), err)
	}
	if n, err := q.Len(); n != 1 || err != nil {
		t.Errorf("Len = %d, %v; want 1", n, err)
	}
	if it, ok, err := q.Oldest(); it.Seq != 3 || !ok || err != nil {
		t.Errorf("Oldest = %d, %v, %v; want 3", it.Seq, ok, err)
	}
	if r := q.Removed(); r != 0 {
		t.Errorf("Removed = %d before a commit; want 0", r)
	}
	if items, _ := crashCopy(t, db).Queue("out").Peek(0, 10); itemsString(items) != "[{1 a} {2 b} {3 c}]" {
		t.Errorf("a crash now finds %s; want all three back", itemsString(items))
	}
	// The next commit, of another queue, writes it.
	if _, err := db.Queue("other").Enqueue([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if r := q.Removed(); r != 2 {
		t.Errorf("Removed = %d after a commit; want 2", r)
	}
	if items, _ := crashCopy(t, db).Queue("out").Peek(0, 10); itemsString(items) != "[{3 c}]" {
		t.Errorf("after the next commit a crash finds %s; want 3:c", itemsString(items))
	}
	// Close writes what waits.
	q.AckThroughLater(3)
	db = reopen(t, db)
	if items, _ := db.Queue("out").Peek(0, 10); len(items) != 0 {
		t.Errorf("after Close the file has %s; want nothing", itemsString(items))
	}
}

// TestAckThroughLaterFailedCommit: a commit that fails gives its lazy
// removals back to the next one.
func TestAckThroughLaterFailedCommit(t *testing.T) {
	db := openTest(t)
	q := db.Queue("out")
	if _, err := q.Enqueue([]byte("a"), []byte("b")); err != nil {
		t.Fatal(err)
	}
	q.AckThroughLater(1)
	boom := fmt.Errorf("boom")
	if err := db.write(func(*bolt.Tx) error { return boom }); err != boom {
		t.Fatalf("write = %v; want boom", err)
	}
	if r := q.Removed(); r != 0 {
		t.Errorf("Removed = %d after a failed commit; want 0", r)
	}
	if err := PutSetting(db, "x", "y"); err != nil {
		t.Fatal(err)
	}
	if items, _ := crashCopy(t, db).Queue("out").Peek(0, 10); itemsString(items) != "[{2 b}]" {
		t.Errorf("after the next commit a crash finds %s; want 2:b", itemsString(items))
	}
}

// TestFileGrowsInSmallSteps: past 4 MiB the state file grows by 4 MiB at
// a time, not by bbolt's 16 (an outbox of 20 MB of stanzas left a 32 MiB
// file behind).
func TestFileGrowsInSmallSteps(t *testing.T) {
	path := filepath.Join(t.TempDir(), "w.db")
	db, err := Open(path, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	q := db.Queue("xmpp-out")
	item := make([]byte, 120)
	batch := make([][]byte, 1000)
	for i := range batch {
		batch[i] = item
	}
	const total = 20 << 20
	for n := 0; n < total; n += len(batch) * len(item) {
		if _, err := q.Enqueue(batch...); err != nil {
			t.Fatal(err)
		}
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	// The pages written so far (the high-water mark): the data.
	var used int64
	db.bolt.View(func(tx *bolt.Tx) error { used = tx.Size(); return nil })
	t.Logf("file %.1f MiB, pages up to %.1f MiB", float64(fi.Size())/(1<<20), float64(used)/(1<<20))
	if used < total || fi.Size() > used+4<<20+int64(os.Getpagesize()) {
		t.Fatalf("file %d bytes for %d in pages", fi.Size(), used)
	}
}
