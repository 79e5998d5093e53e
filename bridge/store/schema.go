package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// The bridge's top-level buckets. whatsmeow's device store uses buckets
// prefixed "wa_" (device*.go); nothing here may start with that prefix.
var (
	bucketMeta     = []byte("meta")     // "schema" → uvarint version
	bucketQueues   = []byte("queues")   // queue name → bucket of seq → data
	bucketSeen     = []byte("seen")     // until version 3: kind → bucket of id → 8-byte unix nanos
	bucketChats    = []byte("chats")    // chat id → chat record
	bucketAliases  = []byte("aliases")  // alias id → chat id
	bucketHandles  = []byte("handles")  // handle → chat id (never deleted: handles are not reused)
	bucketMessages = []byte("messages") // schema 2 to 5: generation → bucket (see migrateMsgmap)
	bucketSettings = []byte("settings") // name → setting record
	// bucketInvites (invites.go, from version 5): chat id → invite record
	// bucketMsgmap (msgmap.go, from version 6): seq → message record
)

var keySchema = []byte("schema")

// SchemaVersion is the layout this code reads and writes.
var SchemaVersion = len(migrations)

// A migration takes the file from version i to i+1, where i is its index in
// migrations. Version 0 is an empty file. Migrations run in Open's single
// transaction: a crash mid-upgrade leaves the old version.
//
// Never edit a migration that has shipped; append a new one.
var migrations = []func(tx *bolt.Tx) error{
	// 0 → 1: the first layout.
	func(tx *bolt.Tx) error {
		return createBuckets(tx, bucketMeta, bucketQueues, bucketSeen, bucketChats, bucketAliases, bucketSettings)
	},
	// 1 → 2: handles get their own index, so a handle is unique and never
	// given to another chat even after its chat is renamed; the message map
	// moves to size-bounded generations (msgmap.go). Version 1 kept the
	// handle only in the chat record and had no message map.
	migrateHandles,
	// 2 → 3: the "seen" dedupe set goes: nothing recorded ids in it, and
	// duplicates are found through the message map (msgmap.go).
	func(tx *bolt.Tx) error {
		if err := tx.DeleteBucket(bucketSeen); err != nil && !errors.Is(err, bolterrors.ErrBucketNotFound) {
			return err
		}
		return nil
	},
	// 3 → 4: message records may carry a room id (record version 2,
	// msgmap.go). Nothing to convert; the version tells an older waxmpp,
	// which cannot read those records, that the file is newer.
	func(*bolt.Tx) error { return nil },
	// 4 → 5: invitations and moves to XMPP (/invite, /moved) get a bucket
	// of their own (invites.go).
	func(tx *bolt.Tx) error { return createBuckets(tx, bucketInvites) },
	// 5 → 6: the message map becomes one bucket of compact records
	// (msgmap.go, msgrecord.go), its ids indexed in memory.
	migrateMsgmap,
}

// migrateMsgmap moves the message map's records out of the generations
// of schema 2 to 5 into bucketMsgmap under the same seqs, in version 3,
// and drops the generations with their on-disk indexes. In the
// generations, "messages" → 8-byte generation → 'm' seq → record (the
// other keys of a generation were its indexes); the root's sequence
// numbered the records. A record that does not decode is kept as it was
// (its reads report it, as before).
func migrateMsgmap(tx *bolt.Tx) error {
	dst, err := tx.CreateBucketIfNotExists(bucketMsgmap)
	if err != nil {
		return err
	}
	dst.FillPercent = 0.95
	old := tx.Bucket(bucketMessages)
	if old == nil {
		return nil
	}
	if err := dst.SetSequence(old.Sequence()); err != nil {
		return err
	}
	err = old.ForEachBucket(func(name []byte) error {
		c := old.Bucket(name).Cursor()
		for k, v := c.Seek([]byte{'m'}); k != nil && k[0] == 'm'; k, v = c.Next() {
			if _, ok := keySeq(k[1:]); !ok {
				continue // not a record's key: nothing to keep
			}
			rec := v
			if m, err := decodeMessage(bucketMessages, k, v); err == nil {
				rec = encodeMessage(m)
			}
			if err := dst.Put(k[1:], rec); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	return tx.DeleteBucket(bucketMessages)
}

// ErrTooNew is returned by Open for a file written by a newer waxmpp.
var ErrTooNew = errors.New("store: file was written by a newer version of waxmpp")

func migrate(tx *bolt.Tx, migs []func(tx *bolt.Tx) error) error {
	v, err := schemaVersion(tx)
	if err != nil {
		return err
	}
	if v > uint64(len(migs)) {
		return fmt.Errorf("%w (schema %d, this build knows up to %d)", ErrTooNew, v, len(migs))
	}
	for ; v < uint64(len(migs)); v++ {
		if err := migs[v](tx); err != nil {
			return fmt.Errorf("store: migrate schema %d to %d: %w", v, v+1, err)
		}
		meta, err := tx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return err
		}
		if err := meta.Put(keySchema, binary.AppendUvarint(nil, v+1)); err != nil {
			return err
		}
	}
	return nil
}

// schemaVersion reads the version; a file without the meta bucket is 0.
func schemaVersion(tx *bolt.Tx) (uint64, error) {
	meta := tx.Bucket(bucketMeta)
	if meta == nil {
		return 0, nil
	}
	raw := meta.Get(keySchema)
	if raw == nil {
		return 0, nil
	}
	v, n := binary.Uvarint(raw)
	if n != len(raw) {
		return 0, corrupt(bucketMeta, keySchema, "bad version")
	}
	return v, nil
}

// SchemaVersion returns the file's schema version.
func (db *DB) SchemaVersion() (int, error) {
	var v uint64
	err := db.bolt.View(func(tx *bolt.Tx) error {
		var err error
		v, err = schemaVersion(tx)
		return err
	})
	return int(v), err
}

func createBuckets(tx *bolt.Tx, names ...[]byte) error {
	for _, n := range names {
		if _, err := tx.CreateBucketIfNotExists(n); err != nil {
			return fmt.Errorf("create bucket %s: %w", n, err)
		}
	}
	return nil
}

func migrateHandles(tx *bolt.Tx) error {
	if err := createBuckets(tx, bucketHandles, bucketMessages); err != nil {
		return err
	}
	handles := tx.Bucket(bucketHandles)
	return tx.Bucket(bucketChats).ForEach(func(k, v []byte) error {
		c, err := decodeChat(bucketChats, k, v)
		if err != nil {
			return err
		}
		if c.Handle == "" {
			return nil
		}
		if other := handles.Get([]byte(c.Handle)); other != nil {
			return fmt.Errorf("handle %q held by %s and %s", c.Handle, other, k)
		}
		return handles.Put([]byte(c.Handle), k)
	})
}

// corrupt builds the error for a record that does not decode.
func corrupt(bucket, key []byte, why string) error {
	return fmt.Errorf("store: %s/%q: %w: %s", bucket, key, ErrCorrupt, why)
}

// Records are encoded as a version byte followed by fields: uvarint-length
// prefixed byte strings and varints. A decoder reads the fields its version
// has; a newer version may append fields, which older code ignores.

type enc struct{ b []byte }

func (e *enc) bytes(p []byte) {
	e.b = binary.AppendUvarint(e.b, uint64(len(p)))
	e.b = append(e.b, p...)
}
func (e *enc) str(s string)     { e.b = binary.AppendUvarint(e.b, uint64(len(s))); e.b = append(e.b, s...) }
func (e *enc) uint(v uint64)    { e.b = binary.AppendUvarint(e.b, v) }
func (e *enc) int(v int64)      { e.b = binary.AppendVarint(e.b, v) }
func (e *enc) time(t time.Time) { e.int(timeNanos(t)) }

// timeNanos is t as unix nanoseconds; the zero time is 0.
func timeNanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func nanosTime(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// dec reads fields; the first failure sticks and later reads return zeros.
type dec struct {
	b   []byte
	err string
}

func (d *dec) fail(why string) {
	if d.err == "" {
		d.err = why
	}
	d.b = nil
}

func (d *dec) uint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("truncated number")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *dec) int() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail("truncated number")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *dec) bytes() []byte {
	n := d.uint()
	if d.err != "" {
		return nil
	}
	if n > uint64(len(d.b)) {
		d.fail("truncated field")
		return nil
	}
	p := d.b[:n:n]
	d.b = d.b[n:]
	return p
}

func (d *dec) str() string     { return string(d.bytes()) }
func (d *dec) time() time.Time { return nanosTime(d.int()) }
func (d *dec) byte1() byte {
	if len(d.b) == 0 {
		d.fail("truncated")
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

// seqKey is a big-endian key, so cursor order is numeric order.
func seqKey(seq uint64) []byte { return binary.BigEndian.AppendUint64(nil, seq) }

func keySeq(k []byte) (uint64, bool) {
	if len(k) != 8 {
		return 0, false
	}
	return binary.BigEndian.Uint64(k), true
}
