package store

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestSettings(t *testing.T) {
	db := openTest(t)
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	if err := PutSetting(db, "name", "waxmpp"); err != nil {
		t.Fatal(err)
	}
	if err := PutSetting(db, "count", int64(-42)); err != nil {
		t.Fatal(err)
	}
	if err := PutSetting(db, "on", true); err != nil {
		t.Fatal(err)
	}
	if err := PutSetting(db, "since", t0); err != nil {
		t.Fatal(err)
	}
	if err := PutSetting(db, "every", 90*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := PutSetting(db, "blob", []byte{0, 1, 2}); err != nil {
		t.Fatal(err)
	}
	db = reopen(t, db)
	if v, ok, err := GetSetting[string](db, "name"); v != "waxmpp" || !ok || err != nil {
		t.Errorf("name = %q %v %v", v, ok, err)
	}
	if v, ok, err := GetSetting[int64](db, "count"); v != -42 || !ok || err != nil {
		t.Errorf("count = %d %v %v", v, ok, err)
	}
	if v, ok, err := GetSetting[bool](db, "on"); !v || !ok || err != nil {
		t.Errorf("on = %v %v %v", v, ok, err)
	}
	if v, ok, err := GetSetting[time.Time](db, "since"); !v.Equal(t0) || !ok || err != nil {
		t.Errorf("since = %v %v %v", v, ok, err)
	}
	if v, ok, err := GetSetting[time.Duration](db, "every"); v != 90*time.Second || !ok || err != nil {
		t.Errorf("every = %v %v %v", v, ok, err)
	}
	if v, ok, err := GetSetting[[]byte](db, "blob"); !bytes.Equal(v, []byte{0, 1, 2}) || !ok || err != nil {
		t.Errorf("blob = %v %v %v", v, ok, err)
	}
	if _, ok, err := GetSetting[string](db, "unset"); ok || err != nil {
		t.Errorf("unset: ok = %v, err = %v; want false, nil", ok, err)
	}
	if _, _, err := GetSetting[int64](db, "name"); err == nil || !strings.Contains(err.Error(), "holds a string, not a int64") {
		t.Errorf("wrong type: err = %v", err)
	}
	if err := db.DeleteSetting("name"); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := GetSetting[string](db, "name"); ok {
		t.Errorf("deleted setting still there")
	}
	if err := PutSetting(db, "", "x"); err == nil {
		t.Errorf("empty name: no error")
	}
}

func TestRoute(t *testing.T) {
	db := openTest(t)
	if _, ok, err := db.Route(); ok || err != nil {
		t.Errorf("Route on new file = %v %v, want none", ok, err)
	}
	if err := db.SetRoute("nobody"); !errors.Is(err, ErrNotFound) {
		t.Errorf("SetRoute(missing) = %v, want ErrNotFound", err)
	}
	for _, id := range []string{"1@s.whatsapp.net", "2@lid"} {
		if _, err := db.PutChat(Chat{ID: id, Kind: KindDirect, Name: "E"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.SetRoute("2@lid"); err != nil {
		t.Fatal(err)
	}
	if id, ok, err := db.Route(); id != "2@lid" || !ok || err != nil {
		t.Errorf("Route = %s %v %v", id, ok, err)
	}
	// The routed chat is merged into another: the route follows.
	if err := db.AddAlias("1@s.whatsapp.net", "2@lid"); err != nil {
		t.Fatal(err)
	}
	if id, ok, err := db.Route(); id != "1@s.whatsapp.net" || !ok || err != nil {
		t.Errorf("Route after merge = %s %v %v", id, ok, err)
	}
}

func FuzzDecodeSetting(f *testing.F) {
	for _, v := range [][]byte{encodeSetting("x"), encodeSetting(int64(7)), encodeSetting(true), encodeSetting(time.Unix(3, 0)), encodeSetting(time.Second), encodeSetting([]byte("b")), {1, 3, 2}, {}} {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, v []byte) {
		x, err := decodeSetting([]byte("k"), v)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), `settings/"k"`) {
				t.Fatalf("error %v does not name the record", err)
			}
			return
		}
		var again []byte
		switch x := x.(type) {
		case string:
			again = encodeSetting(x)
		case int64:
			again = encodeSetting(x)
		case bool:
			again = encodeSetting(x)
		case time.Time:
			again = encodeSetting(x)
		case time.Duration:
			again = encodeSetting(x)
		case []byte:
			again = encodeSetting(x)
		default:
			t.Fatalf("decoded a %T", x)
		}
		if y, err := decodeSetting(nil, again); err != nil || !equalSetting(x, y) {
			t.Fatalf("round trip: %v, %v; want %v", y, err, x)
		}
	})
}

func equalSetting(a, b any) bool {
	if ab, ok := a.([]byte); ok {
		bb, ok := b.([]byte)
		return ok && bytes.Equal(ab, bb)
	}
	if at, ok := a.(time.Time); ok {
		bt, ok := b.(time.Time)
		return ok && at.Equal(bt)
	}
	return a == b
}

// onDisk opens a copy of db's file as it is on disk now (a crash: what
// was committed, nothing else) and reads setting name.
func onDisk(t *testing.T, db *DB, name string) (string, bool) {
	t.Helper()
	c := crashCopy(t, db)
	v, ok, err := GetSetting[string](c, name)
	if err != nil {
		t.Fatal(err)
	}
	return v, ok
}

// TestPutSettingLater: a lazy setting costs no commit of its own, is
// read at once, goes to disk with the next commit of anything else, is
// superseded by a durable write, and is written by Close.
func TestPutSettingLater(t *testing.T) {
	db := openTest(t)
	c0 := db.group.commits.Load()
	if err := PutSettingLater(db, "cursor", "a1"); err != nil {
		t.Fatal(err)
	}
	if n := db.group.commits.Load() - c0; n != 0 {
		t.Errorf("PutSettingLater committed %d times; want 0", n)
	}
	if v, ok, err := GetSetting[string](db, "cursor"); v != "a1" || !ok || err != nil {
		t.Errorf("GetSetting = %q, %v, %v; want a1", v, ok, err)
	}
	if _, ok := onDisk(t, db, "cursor"); ok {
		t.Error("on disk before any commit")
	}
	if err := PutSetting(db, "other", "x"); err != nil {
		t.Fatal(err)
	}
	if v, _ := onDisk(t, db, "cursor"); v != "a1" {
		t.Errorf("after the next commit the disk has %q; want a1", v)
	}
	// A durable write wins over an older lazy one.
	if err := PutSettingLater(db, "cursor", "a2"); err != nil {
		t.Fatal(err)
	}
	if err := PutSetting(db, "cursor", "a3"); err != nil {
		t.Fatal(err)
	}
	if err := PutSetting(db, "other", "y"); err != nil {
		t.Fatal(err)
	}
	if v, _ := onDisk(t, db, "cursor"); v != "a3" {
		t.Errorf("disk has %q; want the durable a3", v)
	}
	if err := PutSettingLater(db, "cursor", "a4"); err != nil {
		t.Fatal(err)
	}
	path := db.Path()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if v, _, _ := GetSetting[string](db, "cursor"); v != "a4" {
		t.Errorf("after Close the file has %q; want a4", v)
	}
}
