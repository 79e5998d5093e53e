package store

import (
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func TestInvites(t *testing.T) {
	db := openTest(t)
	t0 := time.Date(2026, 5, 3, 12, 0, 0, 0, time.UTC)
	for _, c := range []Chat{
		{ID: "491701@s.whatsapp.net", Kind: KindDirect, Name: "Alice"},
		{ID: "1203@g.us", Kind: KindGroup, Name: "Family"},
	} {
		if _, err := db.PutChat(c); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.AddAlias("491701@s.whatsapp.net", "5511@lid"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Invite("491701@s.whatsapp.net"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Invite of a chat never invited: %v, want ErrNotFound", err)
	}
	// Saved under an alias: kept under the chat's id, times in order.
	in := Invite{Chat: "5511@lid", Sent: []time.Time{t0.Add(time.Hour), t0}}
	if err := db.PutInvite(in); err != nil {
		t.Fatal(err)
	}
	want := Invite{Chat: "491701@s.whatsapp.net", Sent: []time.Time{t0, t0.Add(time.Hour)}}
	for _, id := range []string{"491701@s.whatsapp.net", "5511@lid"} {
		got, err := db.Invite(id)
		if err != nil || !sameInvite(got, want) {
			t.Errorf("Invite(%s) = %+v, %v; want %+v", id, got, err, want)
		}
	}
	moved := Invite{Chat: "1203@g.us", Address: "family@muc.example.org", Moved: t0, Offered: true}
	if err := db.PutInvite(moved); err != nil {
		t.Fatal(err)
	}
	db = reopen(t, db)
	all, err := db.Invites()
	if err != nil || len(all) != 2 || !sameInvite(all[0], moved) || !sameInvite(all[1], want) {
		t.Errorf("Invites = %+v, %v", all, err)
	}
	// A record with nothing left goes.
	if err := db.PutInvite(Invite{Chat: "1203@g.us"}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Invite("1203@g.us"); !errors.Is(err, ErrNotFound) {
		t.Errorf("emptied record: %v, want ErrNotFound", err)
	}
	// At most maxInviteTimes, the latest.
	many := Invite{Chat: "1203@g.us"}
	for i := range maxInviteTimes + 5 {
		many.Sent = append(many.Sent, t0.Add(time.Duration(i)*time.Minute))
	}
	if err := db.PutInvite(many); err != nil {
		t.Fatal(err)
	}
	got, _ := db.Invite("1203@g.us")
	if len(got.Sent) != maxInviteTimes || !got.Sent[0].Equal(t0.Add(5*time.Minute)) {
		t.Errorf("kept %d times from %v, want %d from %v", len(got.Sent), got.Sent[0], maxInviteTimes, t0.Add(5*time.Minute))
	}
	if err := db.PutInvite(Invite{}); err == nil {
		t.Error("PutInvite without a chat: no error")
	}
	if err := checkInvites(db); err != nil {
		t.Error(err)
	}
}

// TestInviteMerge: when a chat merges into another (its LID turns out to be
// the person's phone number), its invitations and move go along.
func TestInviteMerge(t *testing.T) {
	db := openTest(t)
	t0 := time.Date(2026, 5, 3, 12, 0, 0, 0, time.UTC)
	for _, c := range []Chat{
		{ID: "491701@s.whatsapp.net", Kind: KindDirect, Name: "Alice"},
		{ID: "5511@lid", Kind: KindDirect, Name: "Alice L"},
		{ID: "491702@s.whatsapp.net", Kind: KindDirect, Name: "Bob"},
		{ID: "5522@lid", Kind: KindDirect, Name: "Bob L"},
	} {
		if _, err := db.PutChat(c); err != nil {
			t.Fatal(err)
		}
	}
	puts := []Invite{
		{Chat: "491701@s.whatsapp.net", Sent: []time.Time{t0.Add(2 * time.Hour)}},
		{Chat: "5511@lid", Sent: []time.Time{t0}, Address: "alice@example.org", Moved: t0.Add(time.Hour), Offered: true},
		{Chat: "491702@s.whatsapp.net", Address: "bob@example.org", Moved: t0},
		{Chat: "5522@lid", Address: "bob@old.example", Moved: t0, Sent: []time.Time{t0}},
	}
	for _, inv := range puts {
		if err := db.PutInvite(inv); err != nil {
			t.Fatal(err)
		}
	}
	for _, a := range [][2]string{{"491701@s.whatsapp.net", "5511@lid"}, {"491702@s.whatsapp.net", "5522@lid"}} {
		if err := db.AddAlias(a[0], a[1]); err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range []struct {
		id   string
		want Invite
	}{
		{"5511@lid", Invite{Chat: "491701@s.whatsapp.net", Sent: []time.Time{t0, t0.Add(2 * time.Hour)}, Address: "alice@example.org", Moved: t0.Add(time.Hour), Offered: true}},
		// The chat merged into keeps its own address.
		{"491702@s.whatsapp.net", Invite{Chat: "491702@s.whatsapp.net", Sent: []time.Time{t0}, Address: "bob@example.org", Moved: t0}},
	} {
		got, err := db.Invite(tt.id)
		if err != nil || !sameInvite(got, tt.want) {
			t.Errorf("after the merge, Invite(%s) = %+v, %v; want %+v", tt.id, got, err, tt.want)
		}
	}
	if all, _ := db.Invites(); len(all) != 2 {
		t.Errorf("%d records after two merges, want 2: %+v", len(all), all)
	}
	if err := checkInvites(db); err != nil {
		t.Error(err)
	}
}

// TestMigrateV4 opens a file of schema 4 (the last without invitations):
// it gains the invites bucket and keeps what it held.
func TestMigrateV4(t *testing.T) {
	path := filepath.Join(t.TempDir(), "w.db")
	b, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = b.Update(func(tx *bolt.Tx) error {
		if err := migrate(tx, migrations[:4]); err != nil {
			return err
		}
		c := Chat{Kind: KindDirect, Name: "Alice", Handle: "alice"}
		if err := tx.Bucket(bucketChats).Put([]byte("491701@s.whatsapp.net"), encodeChat(c)); err != nil {
			return err
		}
		return tx.Bucket(bucketHandles).Put([]byte("alice"), []byte("491701@s.whatsapp.net"))
	})
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if v, _ := db.SchemaVersion(); v != SchemaVersion || SchemaVersion < 5 {
		t.Errorf("schema %d after Open, want %d", v, SchemaVersion)
	}
	if c, err := db.ChatByHandle("alice"); err != nil || c.Name != "Alice" {
		t.Errorf("ChatByHandle after migration = %+v, %v", c, err)
	}
	if all, err := db.Invites(); err != nil || len(all) != 0 {
		t.Errorf("Invites after migration = %v, %v; want none", all, err)
	}
	if err := db.PutInvite(Invite{Chat: "491701@s.whatsapp.net", Sent: []time.Time{time.Now()}}); err != nil {
		t.Errorf("PutInvite after migration: %v", err)
	}
}

func TestCorruptInvite(t *testing.T) {
	db := openTest(t)
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketInvites).Put([]byte("a@s.whatsapp.net"), []byte{1, 3, 2})
	})
	if err != nil {
		t.Fatal(err)
	}
	for name, call := range map[string]func() error{
		"Invite":  func() error { _, err := db.Invite("a@s.whatsapp.net"); return err },
		"Invites": func() error { _, err := db.Invites(); return err },
	} {
		if err := call(); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), `invites/"a@s.whatsapp.net"`) {
			t.Errorf("%s: %v; want ErrCorrupt naming the record", name, err)
		}
	}
}

func FuzzDecodeInvite(f *testing.F) {
	f.Add(encodeInvite(Invite{Sent: []time.Time{time.Unix(1, 2)}, Address: "a@b", Moved: time.Unix(3, 0), Offered: true}))
	f.Add([]byte{1, 0x7f})
	f.Add([]byte{1, 1, 0, 0, 0, 2})
	f.Fuzz(func(t *testing.T, v []byte) {
		inv, err := decodeInvite([]byte("k"), v)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		again, err := decodeInvite([]byte("k"), encodeInvite(inv))
		if err != nil || !sameInvite(again, inv) {
			t.Fatalf("round trip: %+v, %v; want %+v", again, err, inv)
		}
	})
}

// checkInvites: every record decodes and is keyed by a chat's own id.
func checkInvites(db *DB) error {
	return db.bolt.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketInvites).ForEach(func(k, v []byte) error {
			if _, err := decodeInvite(k, v); err != nil {
				return err
			}
			if tx.Bucket(bucketChats).Get(k) == nil {
				return fmt.Errorf("invite record %q is not a chat's own id", k)
			}
			return nil
		})
	})
}

func sameInvite(a, b Invite) bool {
	norm := func(i Invite) Invite {
		var ts []time.Time
		for _, t := range i.Sent {
			ts = append(ts, t.UTC())
		}
		i.Sent, i.Moved = ts, i.Moved.UTC()
		return i
	}
	return reflect.DeepEqual(norm(a), norm(b))
}
