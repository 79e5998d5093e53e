package store

import (
	"fmt"
	"math"

	"waxmpp/bridge"

	bolt "go.etcd.io/bbolt"
)

// Queue is a durable FIFO with at-least-once delivery: an item stays until it
// is acknowledged, across crashes and restarts. Items are keyed by a sequence
// number that only grows, even across restarts and after the queue empties.
//
// Backpressure is the caller's: the queue itself never refuses an item; use
// Len and Oldest to notice a consumer that stopped.
type Queue struct {
	db   *DB
	name []byte
}

// Item is one queued value.
// It is the domain's QueueItem, so adapters can consume a Queue through an
// interface of their own without importing this package.
type Item = bridge.QueueItem

// Queue returns a handle on the named queue. It is cheap; the queue's bucket
// is created by the first Enqueue.
func (db *DB) Queue(name string) *Queue {
	return &Queue{db: db, name: []byte(name)}
}

// bucket returns the queue's bucket, nil if it does not exist and !create.
func (q *Queue) bucket(tx *bolt.Tx, create bool) (*bolt.Bucket, error) {
	if len(q.name) == 0 {
		return nil, fmt.Errorf("store: queue has no name")
	}
	qs := tx.Bucket(bucketQueues)
	if qs == nil {
		return nil, fmt.Errorf("store: bucket %s missing", bucketQueues)
	}
	if !create {
		return qs.Bucket(q.name), nil
	}
	b, err := qs.CreateBucketIfNotExists(q.name)
	if err != nil {
		return nil, fmt.Errorf("store: queue %s: %w", q.name, err)
	}
	return b, nil
}

// Enqueue appends data as items, in order, in one transaction. When it
// returns without error the items are on disk (fsynced). The returned
// sequence numbers are strictly increasing and never reused. The queue keeps
// data's slices until Enqueue returns; the caller must not modify them
// meanwhile.
func (q *Queue) Enqueue(data ...[]byte) ([]uint64, error) {
	return q.EnqueueWith(bridge.Record{}, data...)
}

// EnqueueWith is Enqueue that also writes r, in the same transaction:
// the relayed messages' map entries (as PutMessages) and their chats'
// new activity (as Touch; a chat that is gone is skipped). One commit
// makes the messages and what the core records of them durable together,
// or neither. r's entries are in the message map's index once it returns.
func (q *Queue) EnqueueWith(r bridge.Record, data ...[]byte) ([]uint64, error) {
	if len(data) == 0 {
		if len(r.Links) == 0 && len(r.Touch) == 0 {
			return nil, nil
		}
		return nil, fmt.Errorf("store: enqueue %s: a record without items", q.name)
	}
	var msgs *pendingMessages
	if len(r.Links) > 0 {
		var err error
		if msgs, err = q.db.prepareMessages(r.Links); err != nil {
			return nil, fmt.Errorf("store: enqueue %s: %w", q.name, err)
		}
	}
	seqs := make([]uint64, 0, len(data))
	err := q.db.write(func(tx *bolt.Tx) error {
		seqs = seqs[:0] // the group committer may run this again
		if msgs != nil {
			if err := msgs.put(tx); err != nil {
				return err
			}
		}
		if len(r.Touch) > 0 {
			q.db.cache.changed(tx)
		}
		for id, t := range r.Touch {
			if _, err := touch(tx, id, t); err != nil {
				return err
			}
		}
		b, err := q.bucket(tx, true)
		if err != nil {
			return err
		}
		b.FillPercent = 0.9 // appends only: pack pages full
		for _, d := range data {
			seq, err := b.NextSequence()
			if err != nil {
				return err
			}
			if d == nil {
				d = []byte{}
			}
			if err := b.Put(seqKey(seq), d); err != nil {
				return err
			}
			seqs = append(seqs, seq)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: enqueue %s: %w", q.name, err)
	}
	if msgs != nil {
		msgs.indexed()
	}
	return seqs, nil
}

// Peek returns up to n of the oldest items with Seq > after, in order. The
// items' Data are copies the caller may keep.
func (q *Queue) Peek(after uint64, n int) ([]Item, error) {
	after = max(after, q.db.lazy.floor(string(q.name))) // removed, maybe not yet on disk
	if n <= 0 || after == math.MaxUint64 {
		return nil, nil
	}
	var items []Item
	err := q.db.bolt.View(func(tx *bolt.Tx) error {
		b, err := q.bucket(tx, false)
		if b == nil || err != nil {
			return err
		}
		c := b.Cursor()
		for k, v := c.Seek(seqKey(after + 1)); k != nil && len(items) < n; k, v = c.Next() {
			seq, ok := keySeq(k)
			if !ok {
				return corrupt(q.path(), k, "queue key is not a sequence number")
			}
			items = append(items, Item{Seq: seq, Data: append([]byte{}, v...)})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: peek %s: %w", q.name, err)
	}
	return items, nil
}

// AckThrough removes every item with Seq <= seq, on disk when it
// returns.
func (q *Queue) AckThrough(seq uint64) error {
	err := q.db.write(func(tx *bolt.Tx) error { return removeThrough(tx, q.name, seq) })
	if err != nil {
		return fmt.Errorf("store: ack %s through %d: %w", q.name, seq, err)
	}
	q.db.lazy.written(string(q.name), seq)
	return nil
}

// AckThroughLater removes every item with Seq <= seq at once for Peek,
// Len and Oldest, and on disk with the next commit of any call (or with
// Close): a removal costs no commit of its own. A crash before that
// brings the items back: for queues whose consumer does not mind
// handling an item twice (the XMPP outbox sends it again with its id,
// the WhatsApp inbox's events are dropped by the core as known).
func (q *Queue) AckThroughLater(seq uint64) {
	if seq > q.db.lazy.onDisk(string(q.name)) {
		q.db.lazy.ack(string(q.name), seq)
	}
}

// Removed is the highest seq whose removal (AckThrough, or
// AckThroughLater's once a commit took it) is on disk, since Open.
func (q *Queue) Removed() uint64 { return q.db.lazy.onDisk(string(q.name)) }

// removeThrough deletes queue's items with Seq <= seq.
func removeThrough(tx *bolt.Tx, queue []byte, seq uint64) error {
	qs := tx.Bucket(bucketQueues)
	if qs == nil {
		return fmt.Errorf("store: bucket %s missing", bucketQueues)
	}
	b := qs.Bucket(queue)
	if b == nil {
		return nil
	}
	var keys [][]byte
	c := b.Cursor()
	end := seqKey(seq)
	for k, _ := c.First(); k != nil && string(k) <= string(end); k, _ = c.Next() {
		keys = append(keys, k)
	}
	for _, k := range keys {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// Len is the number of items in the queue. It reads the whole queue's pages,
// so it is for status reports, not for every message.
func (q *Queue) Len() (int, error) {
	var n int
	floor := seqKey(q.db.lazy.floor(string(q.name)))
	err := q.db.bolt.View(func(tx *bolt.Tx) error {
		b, err := q.bucket(tx, false)
		if b == nil || err != nil {
			return err
		}
		n = b.Stats().KeyN
		// Removed by AckThroughLater and not yet on disk: not counted.
		c := b.Cursor()
		for k, _ := c.First(); k != nil && string(k) <= string(floor); k, _ = c.Next() {
			n--
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("store: len %s: %w", q.name, err)
	}
	return n, nil
}

// Oldest returns the oldest item, for reporting how far a consumer lags.
func (q *Queue) Oldest() (Item, bool, error) {
	items, err := q.Peek(0, 1)
	if err != nil || len(items) == 0 {
		return Item{}, false, err
	}
	return items[0], true, nil
}

func (q *Queue) path() []byte {
	return append(append(append([]byte{}, bucketQueues...), '/'), q.name...)
}
