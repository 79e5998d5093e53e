package main

import (
	"os"
	"path/filepath"
	"testing"

	"waxmpp/bridge/store"
)

// onDiskSetting reads setting name from a copy of the file as it is on
// disk now (what a power cut would leave).
func onDiskSetting(t *testing.T, db *store.DB, name string) string {
	t.Helper()
	raw, err := os.ReadFile(db.Path())
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "crash.db")
	if err := os.WriteFile(p, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := store.Open(p, store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	v, _, err := store.GetSetting[string](c, name)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestRoomCursorsLater: a room's first cursor and its start ("^") are
// written at once; a later cursor costs no commit of its own (it goes with
// the next commit, a crash before that leaves the older one), also after
// a restart that read the cursor from disk; a forgotten room's next cursor
// is a first one again.
func TestRoomCursorsLater(t *testing.T) {
	path := filepath.Join(t.TempDir(), "waxmpp.db")
	db, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rc := newRoomCursors(db)
	const room, name = "r@rooms.example", roomCursorSetting + "r@rooms.example"
	save := func(id string, commits uint64) {
		t.Helper()
		c0 := db.Commits()
		if err := rc.SaveRoomCursor(room, id); err != nil {
			t.Fatal(err)
		}
		if n := db.Commits() - c0; n != commits {
			t.Errorf("saving %q committed %d times; want %d", id, n, commits)
		}
		if got, err := rc.LoadRoomCursor(room); got != id || err != nil {
			t.Errorf("LoadRoomCursor after saving %q = %q, %v", id, got, err)
		}
	}
	if id, err := rc.LoadRoomCursor(room); id != "" || err != nil {
		t.Fatalf("a new room's cursor: %q, %v", id, err)
	}
	save(roomStart, 1)
	save("a1", 0)
	save("a2", 0)
	if v := onDiskSetting(t, db, name); v != roomStart {
		t.Errorf("a crash now leaves %q; want the start", v)
	}
	if err := store.PutSetting(db, "other", "x"); err != nil { // the core's next commit
		t.Fatal(err)
	}
	if v := onDiskSetting(t, db, name); v != "a2" {
		t.Errorf("after the next commit the disk has %q; want a2", v)
	}
	save(roomStart, 1) // the room made again
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	// A restart: the cursor read from the disk is there.
	db, err = store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rc = newRoomCursors(db)
	if id, _ := rc.LoadRoomCursor(room); id != roomStart {
		t.Fatalf("after the restart the cursor is %q", id)
	}
	save("b1", 0)
	// A room with no cursor (made before cursors were kept): its first
	// one is written at once.
	const other = "o@rooms.example"
	c0 := db.Commits()
	if err := rc.SaveRoomCursor(other, "o1"); err != nil {
		t.Fatal(err)
	}
	if n := db.Commits() - c0; n != 1 {
		t.Errorf("a room's first cursor committed %d times; want 1", n)
	}
	// Forgotten, then a cursor again: a first one.
	save("", 1)
	save("c1", 1)
}
