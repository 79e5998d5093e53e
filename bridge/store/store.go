// Package store keeps all of waxmpp's state in one go.etcd.io/bbolt file:
// whatsmeow's device store and the bridge's own state (chats, message maps,
// durable queues, settings).
//
// One file means one thing to back up and one fsync per transaction. bbolt
// needs no cgo, so the binary cross-builds for every Raspberry Pi.
package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

// DB is the open state file. It is safe for concurrent use.
type DB struct {
	bolt *bolt.DB
	path string
}

// Options tune how the file is opened. The zero value is what the daemon uses.
type Options struct {
	// Timeout is how long Open waits for the file lock held by another
	// process (a second waxmpp on the same file). Zero means 5 seconds.
	Timeout time.Duration
	// NoSync turns off fsync. Only benchmarks comparing costs may set it.
	NoSync bool
}

// ErrLocked is returned by Open when another process holds the file.
var ErrLocked = errors.New("store: file is in use by another process")

// Open opens (creating if needed) the state file at path with mode 0600: it
// holds pairing keys and must never be world-readable.
func Open(path string, opts Options) (*DB, error) {
	if opts.Timeout == 0 {
		opts.Timeout = 5 * time.Second
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	b, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: opts.Timeout, NoSync: opts.NoSync})
	if errors.Is(err, bolt.ErrTimeout) {
		return nil, fmt.Errorf("store: open %s: %w", path, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	return &DB{bolt: b, path: path}, nil
}

// Path is the file's path.
func (db *DB) Path() string { return db.path }

// Close closes the file. Pending batched writes are flushed first.
func (db *DB) Close() error {
	if err := db.bolt.Close(); err != nil {
		return fmt.Errorf("store: close %s: %w", db.path, err)
	}
	return nil
}
