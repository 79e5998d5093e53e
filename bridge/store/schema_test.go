package store

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

// writeV1 writes a file in the version 1 layout with raw bbolt, as the first
// release did: no handles index, no message map.
func writeV1(path string) error {
	b, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		return err
	}
	defer b.Close()
	return b.Update(func(tx *bolt.Tx) error {
		put := func(bucket, k string, v []byte) error {
			bk, err := tx.CreateBucketIfNotExists([]byte(bucket))
			if err != nil {
				return err
			}
			return bk.Put([]byte(k), v)
		}
		t0 := time.Date(2025, 12, 24, 18, 0, 0, 0, time.UTC)
		steps := []error{
			put("meta", "schema", []byte{1}),
			put("chats", "491701@s.whatsapp.net", encodeChat(Chat{Kind: KindDirect, Name: "Alice", Handle: "alice", LastActivity: t0})),
			put("chats", "1203@g.us", encodeChat(Chat{Kind: KindGroup, Name: "Family", Handle: "family", LastActivity: t0.Add(time.Hour)})),
			put("chats", "491702@s.whatsapp.net", encodeChat(Chat{Kind: KindDirect, Name: "Alice B", Handle: "alice2"})),
			put("aliases", "5511@lid", []byte("491701@s.whatsapp.net")),
			put("settings", "route", encodeSetting("1203@g.us")),
		}
		for _, err := range steps {
			if err != nil {
				return err
			}
		}
		for _, name := range []string{"seen", "queues"} {
			if _, err := tx.CreateBucketIfNotExists([]byte(name)); err != nil {
				return err
			}
		}
		q, err := tx.Bucket([]byte("queues")).CreateBucket([]byte("xmpp-out"))
		if err != nil {
			return err
		}
		for i := 1; i <= 3; i++ {
			seq, _ := q.NextSequence()
			if err := q.Put(seqKey(seq), fmt.Appendf(nil, "<message id='m%d'/>", i)); err != nil {
				return err
			}
		}
		if err := q.Delete(seqKey(1)); err != nil { // acked
			return err
		}
		wa, err := tx.Bucket([]byte("seen")).CreateBucket([]byte("wa"))
		if err != nil {
			return err
		}
		return wa.Put([]byte("3EB0AA"), seqKey(uint64(t0.UnixNano())))
	})
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	src, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestMigrateV1 opens testdata/v1.db, a file in the first layout (regenerate
// with -update), and checks it is upgraded and reads correctly.
func TestMigrateV1(t *testing.T) {
	golden := filepath.Join("testdata", "v1.db")
	if *update {
		os.Remove(golden)
		if err := writeV1(golden); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(t.TempDir(), "w.db")
	copyFile(t, golden, path)
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if v, err := db.SchemaVersion(); v != SchemaVersion || err != nil {
		t.Errorf("SchemaVersion = %d, %v; want %d", v, err, SchemaVersion)
	}
	for _, tt := range []struct{ handle, id string }{
		{"alice", "491701@s.whatsapp.net"},
		{"family", "1203@g.us"},
		{"alice2", "491702@s.whatsapp.net"},
	} {
		c, err := db.ChatByHandle(tt.handle)
		if err != nil || c.ID != tt.id {
			t.Errorf("ChatByHandle(%s) = %s, %v; want %s", tt.handle, c.ID, err, tt.id)
		}
	}
	if c, _ := db.PutChat(Chat{ID: "new@s.whatsapp.net", Kind: KindDirect, Name: "Alice"}); c.Handle != "alice3" {
		t.Errorf("new Alice got handle %q, want alice3: migrated handles must be reserved", c.Handle)
	}
	if c, err := db.Chat("5511@lid"); err != nil || c.Name != "Alice" {
		t.Errorf("Chat(alias) = %+v, %v", c, err)
	}
	if id, _, _ := db.Route(); id != "1203@g.us" {
		t.Errorf("Route = %q", id)
	}
	q := db.Queue("xmpp-out")
	items, _ := q.Peek(0, 10)
	if got := itemsString(items); got != "[{2 <message id='m2'/>} {3 <message id='m3'/>}]" {
		t.Errorf("queue = %s", got)
	}
	if seqs, _ := q.Enqueue([]byte("x")); len(seqs) != 1 || seqs[0] != 4 {
		t.Errorf("next seq = %v, want 4", seqs)
	}
	db.bolt.View(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketSeen) != nil {
			t.Errorf("the seen bucket is still there after migration to %d", SchemaVersion)
		}
		return nil
	})
	if err := db.PutMessages(Message{XMPPID: "after"}); err != nil {
		t.Errorf("message map after migration: %v", err)
	}
	if err := checkInvariants(db); err != nil {
		t.Error(err)
	}
}

func TestMigrations(t *testing.T) {
	var ran []string
	migs := []func(tx *bolt.Tx) error{
		func(*bolt.Tx) error { ran = append(ran, "0→1"); return nil },
		func(*bolt.Tx) error { ran = append(ran, "1→2"); return nil },
		func(*bolt.Tx) error { ran = append(ran, "2→3"); return errors.New("boom") },
	}
	path := filepath.Join(t.TempDir(), "m.db")
	b, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	version := func() uint64 {
		var v uint64
		b.View(func(tx *bolt.Tx) error { v, err = schemaVersion(tx); return err })
		return v
	}
	if err := b.Update(func(tx *bolt.Tx) error { return migrate(tx, migs[:2]) }); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(ran, " "); got != "0→1 1→2" || version() != 2 {
		t.Errorf("ran %q, version %d; want 0→1 1→2, 2", got, version())
	}
	ran = nil
	err = b.Update(func(tx *bolt.Tx) error { return migrate(tx, migs) })
	if err == nil || !strings.Contains(err.Error(), "migrate schema 2 to 3: boom") {
		t.Errorf("failing migration: err = %v", err)
	}
	if got := strings.Join(ran, " "); got != "2→3" || version() != 2 {
		t.Errorf("ran %q, version %d; want 2→3 and version still 2", got, version())
	}
	err = b.Update(func(tx *bolt.Tx) error { return migrate(tx, migs[:1]) })
	if !errors.Is(err, ErrTooNew) {
		t.Errorf("older code on a newer file: err = %v, want ErrTooNew", err)
	}
}

func TestOpenTooNew(t *testing.T) {
	path := filepath.Join(t.TempDir(), "w.db")
	b, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	b.Update(func(tx *bolt.Tx) error {
		m, _ := tx.CreateBucket(bucketMeta)
		return m.Put(keySchema, []byte{99})
	})
	b.Close()
	if _, err := Open(path, Options{}); !errors.Is(err, ErrTooNew) {
		t.Errorf("Open = %v, want ErrTooNew", err)
	}
}

func TestOpenLocked(t *testing.T) {
	db := openTest(t)
	if _, err := Open(db.Path(), Options{Timeout: 50 * time.Millisecond}); !errors.Is(err, ErrLocked) {
		t.Errorf("second Open = %v, want ErrLocked", err)
	}
	fi, err := os.Stat(db.Path())
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("file mode %v, %v; want 0600", fi.Mode().Perm(), err)
	}
}

// TestCorruptRecordsAreErrors plants damaged records and checks every reader
// returns an error naming bucket and key instead of panicking.
func TestCorruptRecordsAreErrors(t *testing.T) {
	db := openTest(t)
	if _, err := db.PutChat(Chat{ID: "a", Kind: KindDirect, Name: "A"}); err != nil {
		t.Fatal(err)
	}
	if err := db.PutMessages(Message{WA: MessageKey{Chat: "a", Sender: "a", ID: "W"}, XMPPID: "X"}); err != nil {
		t.Fatal(err)
	}
	if err := PutSetting(db, "s", "v"); err != nil {
		t.Fatal(err)
	}
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		tx.Bucket(bucketChats).Put([]byte("a"), []byte{1, 1, 5, 'A'})
		tx.Bucket(bucketSettings).Put([]byte("s"), []byte{1, 1, 9})
		return tx.Bucket(bucketMsgmap).Put(msgKey(1), []byte{3, 0, 200})
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		call func() error
		want string
	}{
		{"Chat", func() error { _, err := db.Chat("a"); return err }, `chats/"a"`},
		{"Chats", func() error { _, err := db.Chats(); return err }, `chats/"a"`},
		{"ChatByHandle", func() error { _, err := db.ChatByHandle("a"); return err }, `chats/"a"`},
		{"PutChat", func() error { _, err := db.PutChat(Chat{ID: "a", Kind: KindDirect}); return err }, `chats/"a"`},
		{"GetSetting", func() error { _, _, err := GetSetting[string](db, "s"); return err }, `settings/"s"`},
		{"MessageByXMPP", func() error { _, err := db.MessageByXMPP("X"); return err }, `msgmap/"\x00\x00\x00\x00\x00\x00\x00\x01"`},
		{"MessageByWA", func() error { _, err := db.MessageByWA(MessageKey{Chat: "a", Sender: "a", ID: "W"}); return err }, `msgmap/"\x00\x00\x00\x00\x00\x00\x00\x01"`},
		{"RecentMessages", func() error { _, err := db.RecentMessages("", 5); return err }, `msgmap/"\x00\x00\x00\x00\x00\x00\x00\x01"`},
		{"PruneMessages", func() error { _, err := db.PruneMessages(time.Now()); return err }, `msgmap/"\x00\x00\x00\x00\x00\x00\x00\x01"`},
	}
	for _, tt := range tests {
		err := tt.call()
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v; want ErrCorrupt naming %s", tt.name, err, tt.want)
		}
	}
}

func FuzzSchemaVersion(f *testing.F) {
	f.Add([]byte{2})
	f.Add([]byte{0x80})
	f.Fuzz(func(t *testing.T, v []byte) {
		path := filepath.Join(t.TempDir(), "f.db")
		b, err := bolt.Open(path, 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		err = b.Update(func(tx *bolt.Tx) error {
			m, _ := tx.CreateBucket(bucketMeta)
			if len(v) > 0 {
				m.Put(keySchema, v)
			}
			_, err := schemaVersion(tx)
			return err
		})
		if err != nil && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("err = %v", err)
		}
	})
}

// TestOpenReadOnly: a read-only open never creates a file (nor its
// directory) and never migrates one: the file stays as it was, byte for
// byte, and writes fail.
func TestOpenReadOnly(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "no", "such.db")
	if _, err := Open(missing, Options{ReadOnly: true}); !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), missing) {
		t.Errorf("read-only Open of a missing file = %v, want an fs.ErrNotExist naming %s", err, missing)
	}
	if _, err := os.Stat(filepath.Dir(missing)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("read-only Open created %s (%v)", filepath.Dir(missing), err)
	}

	path := filepath.Join(dir, "v1.db")
	copyFile(t, filepath.Join("testdata", "v1.db"), path)
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	db, err := Open(path, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if v, err := db.SchemaVersion(); v != 1 || err != nil {
		t.Errorf("read-only SchemaVersion = %d, %v; want 1, not migrated", v, err)
	}
	if err := PutSetting(db, "x", "y"); err == nil {
		t.Error("a write to a read-only file succeeded")
	}
	var b bytes.Buffer
	if _, err := db.Backup(&b); err != nil {
		t.Errorf("Backup of a read-only file: %v", err)
	}
	// Readers share the file; a writer cannot have it meanwhile.
	db2, err := Open(path, Options{ReadOnly: true, Timeout: 100 * time.Millisecond})
	if err != nil {
		t.Errorf("second read-only Open: %v", err)
	} else {
		db2.Close()
	}
	if _, err := Open(path, Options{Timeout: 100 * time.Millisecond}); !errors.Is(err, ErrLocked) {
		t.Errorf("read-write Open while read-only: %v, want ErrLocked", err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Error("the file changed under a read-only open")
	}
	copyPath := filepath.Join(dir, "copy.db")
	if err := os.WriteFile(copyPath, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Verify(copyPath); err != nil {
		t.Errorf("backup of the read-only file: %v", err)
	}
}
