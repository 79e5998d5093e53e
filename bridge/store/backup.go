package store

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Backup writes a consistent copy of the whole file (device store included)
// to w while the daemon keeps running: it reads one read-only transaction's
// snapshot, so writers are not blocked. It returns the bytes written.
func (db *DB) Backup(w io.Writer) (int64, error) {
	var n int64
	err := db.bolt.View(func(tx *bolt.Tx) error {
		var err error
		n, err = tx.WriteTo(w)
		return err
	})
	if err != nil {
		return n, fmt.Errorf("store: backup %s: %w", db.path, err)
	}
	return n, nil
}

// BackupFile writes a backup to path, mode 0600 (it holds the pairing keys).
// It writes to a temporary file in the same directory, fsyncs it and renames
// it into place, so path is never a half-written copy.
func (db *DB) BackupFile(path string) (int64, error) {
	return writeAtomic(path, db.Backup)
}

// ReceiveBackup writes a backup that another process streams from its
// Backup (waxmpp backup while the daemon holds the file) to path, like
// BackupFile, then checks that the copy is a sound state file.
func ReceiveBackup(path string, r io.Reader) (int64, error) {
	n, err := writeAtomic(path, func(w io.Writer) (int64, error) { return io.Copy(w, r) })
	if err != nil {
		return n, err
	}
	if err := Verify(path); err != nil {
		os.Remove(path)
		return 0, err
	}
	return n, nil
}

// Verify opens the state file at path read-only and checks bbolt's page
// structure.
func Verify(path string) error {
	b, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return fmt.Errorf("store: verify %s: %w", path, err)
	}
	defer b.Close()
	return b.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			return fmt.Errorf("store: verify %s: %w", path, err)
		}
		return nil
	})
}

// writeAtomic writes path through a temp file beside it: fsync, rename,
// fsync of the directory. path is never seen half-written.
func writeAtomic(path string, write func(io.Writer) (int64, error)) (int64, error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return 0, fmt.Errorf("store: backup to %s: %w", path, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // after a successful rename this fails harmlessly
	n, err := write(f)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err == nil {
		err = syncDir(filepath.Dir(path))
	}
	if err != nil {
		return 0, fmt.Errorf("store: backup to %s: %w", path, err)
	}
	return n, nil
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
