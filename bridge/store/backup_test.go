package store

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// TestBackupWhileWriting takes backups while writers keep enqueueing: each
// backup opens, passes bbolt's consistency check, and holds a prefix of the
// queue without gaps.
func TestBackupWhileWriting(t *testing.T) {
	db := openTest(t)
	if _, err := db.PutChat(Chat{ID: "a@s.whatsapp.net", Kind: KindDirect, Name: "A"}); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := db.Queue("q").Enqueue(bytes.Repeat([]byte{byte(w)}, 300)); err != nil {
					t.Error(err)
					return
				}
				if err := db.PutMessages(Message{XMPPID: fmt.Sprint(w, "-", i), Time: time.Now()}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	dir := t.TempDir()
	for i := range 5 {
		time.Sleep(20 * time.Millisecond)
		path := filepath.Join(dir, fmt.Sprint("backup", i, ".db"))
		n, err := db.BackupFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi, err := os.Stat(path); err != nil || fi.Size() != n || fi.Mode().Perm() != 0o600 {
			t.Fatalf("backup file: %v, %v; want %d bytes, mode 0600", fi, err, n)
		}
		checkBackup(t, path)
	}
	close(stop)
	wg.Wait()
	var buf bytes.Buffer
	n, err := db.Backup(&buf)
	if err != nil || n != int64(buf.Len()) {
		t.Fatalf("Backup = %d, %v; buffer has %d", n, err, buf.Len())
	}
}

func checkBackup(t *testing.T, path string) {
	t.Helper()
	b, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	err = b.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			return err
		}
		return nil
	})
	b.Close()
	if err != nil {
		t.Fatalf("backup %s: %v", path, err)
	}
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Chat("a@s.whatsapp.net"); err != nil {
		t.Errorf("backup %s: %v", path, err)
	}
	items, err := db.Queue("q").Peek(0, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	for i, it := range items {
		if it.Seq != uint64(i+1) {
			t.Fatalf("backup %s: item %d has seq %d: a gap", path, i, it.Seq)
		}
	}
	if err := checkInvariants(db); err != nil {
		t.Errorf("backup %s: %v", path, err)
	}
}

func TestBackupFileError(t *testing.T) {
	db := openTest(t)
	if _, err := db.BackupFile(filepath.Join(t.TempDir(), "missing", "b.db")); err == nil {
		t.Errorf("backup into a missing directory: no error")
	}
}
