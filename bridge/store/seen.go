package store

import (
	"encoding/binary"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Seen records id under kind (for example "wa" for WhatsApp message ids,
// "xmpp" for stanza ids) and reports whether it was already recorded. Check
// and record are one atomic, durable step: of two concurrent calls with the
// same id, exactly one gets dup == false.
func (db *DB) Seen(kind, id string, now time.Time) (dup bool, err error) {
	if kind == "" || id == "" {
		return false, fmt.Errorf("store: seen: empty kind or id")
	}
	err = db.write(func(tx *bolt.Tx) error {
		dup = false // the group committer may run this again
		b, err := tx.Bucket(bucketSeen).CreateBucketIfNotExists([]byte(kind))
		if err != nil {
			return err
		}
		if b.Get([]byte(id)) != nil {
			dup = true
			return nil
		}
		return b.Put([]byte(id), binary.BigEndian.AppendUint64(nil, uint64(timeNanos(now))))
	})
	if err != nil {
		return false, fmt.Errorf("store: seen %s %s: %w", kind, id, err)
	}
	return dup, nil
}

// PruneSeen forgets ids recorded before olderThan and returns how many.
func (db *DB) PruneSeen(olderThan time.Time) (int, error) {
	cut := timeNanos(olderThan)
	var n int
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		n = 0
		seen := tx.Bucket(bucketSeen)
		return seen.ForEachBucket(func(kind []byte) error {
			b := seen.Bucket(kind)
			var old [][]byte
			err := b.ForEach(func(k, v []byte) error {
				t, err := decodeSeen(kind, k, v)
				if err != nil {
					return err
				}
				if t < cut {
					old = append(old, k)
				}
				return nil
			})
			if err != nil {
				return err
			}
			for _, k := range old {
				if err := b.Delete(k); err != nil {
					return err
				}
			}
			n += len(old)
			return nil
		})
	})
	if err != nil {
		return 0, fmt.Errorf("store: prune seen: %w", err)
	}
	return n, nil
}

func decodeSeen(kind, k, v []byte) (int64, error) {
	if len(v) != 8 {
		return 0, corrupt(append(append(append([]byte{}, bucketSeen...), '/'), kind...), k, "seen time is not 8 bytes")
	}
	return int64(binary.BigEndian.Uint64(v)), nil
}
