package store

import (
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Check walks the open file's page structure (bbolt's consistency check)
// in a read-only transaction, so writers go on: `waxmpp doctor` and
// /status call it on the running bridge's file.
//
// A damaged file can make bbolt panic while it walks the pages; Check
// returns that as an error instead.
func (db *DB) Check() (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("store: check %s: the file is damaged (%v)", db.path, p)
		}
	}()
	return db.bolt.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			return fmt.Errorf("store: check %s: %w", db.path, err)
		}
		return nil
	})
}
