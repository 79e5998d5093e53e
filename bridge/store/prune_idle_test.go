package store

import (
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// TestPruneIdleWritesNothing: the daily prune of a bridge with nothing old
// commits no transaction (bbolt's commit writes and syncs the meta page
// even when nothing changed); with something old it does.
func TestPruneIdleWritesNothing(t *testing.T) {
	db := openTest(t)
	txid := func() int {
		var id int
		db.bolt.View(func(tx *bolt.Tx) error { id = tx.ID(); return nil })
		return id
	}
	now := time.Now()
	if err := db.PutMessages(Message{WA: MessageKey{Chat: "c", Sender: "s", ID: "w1"}, XMPPID: "x1", Time: now}); err != nil {
		t.Fatal(err)
	}
	before := txid()
	if n, err := db.PruneMessages(now); err != nil || n != 0 {
		t.Fatalf("PruneMessages with nothing old = %d, %v", n, err)
	}
	if after := txid(); after != before {
		t.Errorf("a prune that found nothing committed: txid %d → %d", before, after)
	}
	if n, err := db.PruneMessages(now.Add(db.opts.MessageMaxAge + time.Hour)); err != nil || n != 1 {
		t.Fatalf("PruneMessages with one old = %d, %v", n, err)
	}
	if after := txid(); after == before {
		t.Errorf("a prune that deleted committed nothing")
	}
}
