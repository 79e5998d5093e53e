package store

import (
	"context"
	"crypto/sha256"
	"fmt"
	"testing"
	"time"

	wastore "go.mau.fi/whatsmeow/store"
)

// bufferDevice is a saved device on db, and a hash with a buffered
// plaintext.
func bufferDevice(t *testing.T, db *DB, jid string) *wastore.Device {
	t.Helper()
	d := db.Devices(nil).NewDevice()
	j := mustJID(jid)
	d.ID, d.Account = &j, validAccount()
	if err := d.Save(context.Background()); err != nil {
		t.Fatal(err)
	}
	return d
}

func plaintextOf(t *testing.T, d *wastore.Device, h [32]byte) string {
	t.Helper()
	ev, err := d.EventBuffer.GetBufferedEvent(context.Background(), h)
	if err != nil {
		t.Fatal(err)
	}
	if ev == nil {
		return "<none>"
	}
	return string(ev.Plaintext)
}

// TestClearPlaintextLater: ClearBufferedEventPlaintext costs no commit of
// its own; GetBufferedEvent answers it cleared at once; a crash before
// the next commit leaves the plaintext on disk; the next commit of
// anything (a bridge write, a device-store write) writes it, and so does
// Close.
func TestClearPlaintextLater(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	d := bufferDevice(t, db, "491701111111:7@s.whatsapp.net")
	h1, h2 := sha256.Sum256([]byte("one")), sha256.Sum256([]byte("two"))
	for _, h := range [][32]byte{h1, h2} {
		if err := d.EventBuffer.PutBufferedEvent(ctx, h, []byte("plain"), time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	c0 := db.Commits()
	if err := d.EventBuffer.ClearBufferedEventPlaintext(ctx, h1); err != nil {
		t.Fatal(err)
	}
	if n := db.Commits() - c0; n != 0 {
		t.Errorf("the clear committed %d times; want 0", n)
	}
	if p := plaintextOf(t, d, h1); p != "" {
		t.Errorf("read after the clear: %q; want it cleared", p)
	}
	crashDev := func() *wastore.Device {
		devs, err := crashCopy(t, db).Devices(nil).GetAllDevices(ctx)
		if err != nil || len(devs) != 1 {
			t.Fatal(devs, err)
		}
		return devs[0]
	}
	if p := plaintextOf(t, crashDev(), h1); p != "plain" {
		t.Errorf("a crash now finds %q; want the plaintext still there", p)
	}
	if err := PutSetting(db, "other", "x"); err != nil { // any commit
		t.Fatal(err)
	}
	if p := plaintextOf(t, crashDev(), h1); p != "" {
		t.Errorf("after the next commit the disk has %q; want it cleared", p)
	}

	// A device-store write takes it too.
	if err := d.EventBuffer.ClearBufferedEventPlaintext(ctx, h2); err != nil {
		t.Fatal(err)
	}
	if err := d.Sessions.PutSession(ctx, "1:1", []byte("s")); err != nil {
		t.Fatal(err)
	}
	if p := plaintextOf(t, crashDev(), h2); p != "" {
		t.Errorf("after a device-store commit the disk has %q; want it cleared", p)
	}
	if p := plaintextOf(t, d, h2); p != "" {
		t.Errorf("read after it was written: %q", p)
	}
}

// TestClearPlaintextLaterBound: once maxLazyClears wait, a clear commits
// (all of them); Close writes what waits.
func TestClearPlaintextLaterBound(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	d := bufferDevice(t, db, "491701111111:7@s.whatsapp.net")
	var hs [][32]byte
	for i := range maxLazyClears + 2 {
		h := sha256.Sum256(fmt.Appendf(nil, "%d", i))
		hs = append(hs, h)
		if err := d.EventBuffer.PutBufferedEvent(ctx, h, []byte("plain"), time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	c0 := db.Commits()
	for _, h := range hs[:maxLazyClears+1] {
		if err := d.EventBuffer.ClearBufferedEventPlaintext(ctx, h); err != nil {
			t.Fatal(err)
		}
	}
	if n := db.Commits() - c0; n != 1 {
		t.Errorf("%d clears committed %d times; want 1", maxLazyClears+1, n)
	}
	c := crashCopy(t, db)
	cd, _ := c.Devices(nil).GetFirstDevice(ctx)
	for i, h := range hs[:maxLazyClears+1] {
		if p := plaintextOf(t, cd, h); p != "" {
			t.Fatalf("clear %d not on disk after the bound: %q", i, p)
		}
	}
	if err := d.EventBuffer.ClearBufferedEventPlaintext(ctx, hs[maxLazyClears+1]); err != nil {
		t.Fatal(err)
	}
	path := db.Path()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db2, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	d2, _ := db2.Devices(nil).GetFirstDevice(ctx)
	if p := plaintextOf(t, d2, hs[maxLazyClears+1]); p != "" {
		t.Errorf("after Close the last clear is not on disk: %q", p)
	}
}

// TestClearInsideDecryption: inside DoDecryptionTxn a clear is part of
// the transaction, as whatsmeow's SQL store has it; a clear waiting from
// before goes with the decryption's commit, and comes back when the
// decryption fails.
func TestClearInsideDecryption(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	d := bufferDevice(t, db, "491701111111:7@s.whatsapp.net")
	h1, h2 := sha256.Sum256([]byte("one")), sha256.Sum256([]byte("two"))
	for _, h := range [][32]byte{h1, h2} {
		if err := d.EventBuffer.PutBufferedEvent(ctx, h, []byte("plain"), time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.EventBuffer.ClearBufferedEventPlaintext(ctx, h1); err != nil {
		t.Fatal(err)
	}
	failed := fmt.Errorf("bad message")
	if err := d.EventBuffer.DoDecryptionTxn(ctx, func(ctx context.Context) error { return failed }); err != failed {
		t.Fatal(err)
	}
	c := crashCopy(t, db)
	cd, _ := c.Devices(nil).GetFirstDevice(ctx)
	if p := plaintextOf(t, cd, h1); p != "plain" {
		t.Errorf("a failed decryption wrote the waiting clear: %q", p)
	}
	err := d.EventBuffer.DoDecryptionTxn(ctx, func(ctx context.Context) error {
		return d.EventBuffer.ClearBufferedEventPlaintext(ctx, h2)
	})
	if err != nil {
		t.Fatal(err)
	}
	c = crashCopy(t, db)
	cd, _ = c.Devices(nil).GetFirstDevice(ctx)
	for _, h := range [][32]byte{h1, h2} {
		if p := plaintextOf(t, cd, h); p != "" {
			t.Errorf("not on disk after the decryption's commit: %q", p)
		}
	}
}

// TestUnchangedDeviceWritesCommitNothing: a known LID mapping, an
// unchanged push name (whatsmeow stores both for nearly every message)
// and a move of sessions to a LID with nothing to move cost no commit; a
// change does.
func TestUnchangedDeviceWritesCommitNothing(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	d := bufferDevice(t, db, "491701111111:7@s.whatsapp.net")
	lid, pn := mustJID("100000000000009@lid"), mustJID("491709999999@s.whatsapp.net")
	if err := d.LIDs.PutLIDMapping(ctx, lid, pn); err != nil {
		t.Fatal(err)
	}
	if changed, _, err := d.Contacts.PutPushName(ctx, pn, "Alice"); !changed || err != nil {
		t.Fatal(changed, err)
	}
	c0 := db.Commits()
	if err := d.LIDs.PutLIDMapping(ctx, lid, pn); err != nil {
		t.Fatal(err)
	}
	if changed, _, err := d.Contacts.PutPushName(ctx, pn, "Alice"); changed || err != nil {
		t.Fatal(changed, err)
	}
	if n := db.Commits() - c0; n != 0 {
		t.Errorf("unchanged writes committed %d times; want 0", n)
	}
	if changed, old, err := d.Contacts.PutPushName(ctx, pn, "Alice B."); !changed || old != "Alice" || err != nil {
		t.Fatal(changed, old, err)
	}
	if err := d.LIDs.PutLIDMapping(ctx, mustJID("100000000000010@lid"), pn); err != nil {
		t.Fatal(err)
	}
	if n := db.Commits() - c0; n != 2 {
		t.Errorf("two changes committed %d times; want 2", n)
	}
	if got, _ := d.LIDs.GetLIDForPN(ctx, pn); got.User != "100000000000010" {
		t.Errorf("LID for %s = %s", pn, got)
	}

	// The sessions' move to the LID, asked once per sender and run:
	// nothing to move, no commit; a session to move, one.
	c0 = db.Commits()
	if err := d.Sessions.MigratePNToLID(ctx, mustJID("491708888888@s.whatsapp.net"), mustJID("100000000000011@lid")); err != nil {
		t.Fatal(err)
	}
	if n := db.Commits() - c0; n != 0 {
		t.Errorf("a migration with nothing to move committed %d times; want 0", n)
	}
	pn2, lid2 := mustJID("491707777777@s.whatsapp.net"), mustJID("100000000000012@lid")
	addr := pn2.SignalAddress().String()
	if err := d.Sessions.PutSession(ctx, addr, []byte("session")); err != nil {
		t.Fatal(err)
	}
	c0 = db.Commits()
	if err := d.Sessions.MigratePNToLID(ctx, pn2, lid2); err != nil {
		t.Fatal(err)
	}
	if n := db.Commits() - c0; n != 1 {
		t.Errorf("a migration of a session committed %d times; want 1", n)
	}
	if v, err := d.Sessions.GetSession(ctx, lid2.SignalAddress().String()); err != nil || string(v) != "session" {
		t.Errorf("the session under the LID: %q, %v", v, err)
	}
	if ok, err := d.Sessions.HasSession(ctx, addr); ok || err != nil {
		t.Errorf("the session still under the phone number: %v, %v", ok, err)
	}
}
