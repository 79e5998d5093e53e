package store

import (
	"context"
	"errors"
	"path/filepath"
	"reflect"
	"testing"

	bolt "go.etcd.io/bbolt"
	"go.mau.fi/whatsmeow/proto/waAdv"
	wastore "go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"
)

// decoders lists every record decoder, for the fuzz target and the
// corrupt-record test.
var decoders = map[string]func(k, v []byte) error{
	"device":        func(k, v []byte) error { _, err := decodeDevice(k, v); return err },
	"blob":          func(k, v []byte) error { _, err := decodeBlob(bktSession, k, v); return err },
	"fixed":         func(k, v []byte) error { _, err := decodeFixedBlob(bktASMAC, k, v, 32); return err },
	"prekey":        func(k, v []byte) error { _, err := decodePreKey(k, v); return err },
	"synckey":       func(k, v []byte) error { _, err := decodeSyncKey(k, v); return err },
	"version":       func(k, v []byte) error { _, err := decodeVersion(k, v); return err },
	"contact":       func(k, v []byte) error { _, err := decodeContact(k, v); return err },
	"chatsettings":  func(k, v []byte) error { _, err := decodeChatSettings(k, v); return err },
	"privacytoken":  func(k, v []byte) error { _, err := decodePrivacyToken(k, v); return err },
	"bufferedevent": func(k, v []byte) error { _, err := decodeBufferedEvent(k, v); return err },
	"outgoing":      func(k, v []byte) error { _, err := decodeOutgoing(k, v); return err },
}

func FuzzDeviceRecord(f *testing.F) {
	f.Add([]byte{0, 0, 0, 1}, (&deviceRecord{jid: "1:1@s.whatsapp.net", advKey: []byte{1}}).encode())
	f.Add([]byte{0, 0, 0, 1}, preKeyRecord{uploaded: true}.encode())
	f.Add([]byte("x"), contactRecord{first: "a", push: "b"}.encode())
	f.Add([]byte("x"), privacyTokenRecord{token: []byte{1}, hasSenderTS: true}.encode())
	f.Add([]byte("x"), encodeBlob(nil))
	f.Add([]byte("x"), []byte{1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, k, v []byte) {
		for name, dec := range decoders {
			err := dec(k, v)
			var ce *CorruptError
			if err != nil && !errors.As(err, &ce) {
				t.Errorf("%s: error %v is not a CorruptError", name, err)
			}
		}
		splitLP(v)
	})
}

// TestDeviceRecordRoundTrip checks that every record decodes to what was
// encoded, and that every shorter or longer version is an error.
func TestDeviceRecordRoundTrip(t *testing.T) {
	recs := []struct {
		enc []byte
		dec func(v []byte) (any, error)
		val any
	}{
		{(&deviceRecord{seq: 7, jid: "j", lid: "l@lid", registrationID: 9, advKey: []byte{1}, advDetails: []byte{2}, platform: "p", lidMigrationTS: -3}).encode(),
			func(v []byte) (any, error) { return decodeDevice([]byte("j"), v) },
			&deviceRecord{seq: 7, jid: "j", lid: "l@lid", registrationID: 9, advKey: []byte{1}, advDetails: []byte{2}, platform: "p", lidMigrationTS: -3}},
		{preKeyRecord{uploaded: true, priv: [32]byte{5}}.encode(),
			func(v []byte) (any, error) { return decodePreKey([]byte{0, 0, 0, 1}, v) },
			preKeyRecord{uploaded: true, priv: [32]byte{5}}},
		{privacyTokenRecord{token: []byte{1}, timestamp: 5, hasSenderTS: true, senderTimestamp: -1}.encode(),
			func(v []byte) (any, error) { return decodePrivacyToken([]byte("k"), v) },
			privacyTokenRecord{token: []byte{1}, timestamp: 5, hasSenderTS: true, senderTimestamp: -1}},
		{bufferedEventRecord{serverTS: 1, insertTSMS: 2}.encode(),
			func(v []byte) (any, error) { return decodeBufferedEvent([]byte("k"), v) },
			bufferedEventRecord{serverTS: 1, insertTSMS: 2}},
	}
	for i, r := range recs {
		got, err := r.dec(r.enc)
		if err != nil || !reflect.DeepEqual(got, r.val) {
			t.Errorf("%d: got %+v, %v; want %+v", i, got, err, r.val)
		}
		for n := range len(r.enc) {
			if _, err := r.dec(r.enc[:n]); err == nil {
				t.Errorf("%d: truncated to %d bytes: no error", i, n)
			}
		}
		if _, err := r.dec(append(r.enc, 0)); err == nil {
			t.Errorf("%d: trailing byte: no error", i)
		}
		bad := append([]byte{recordVersion + 1}, r.enc[1:]...)
		if _, err := r.dec(bad); err == nil {
			t.Errorf("%d: unknown version: no error", i)
		}
	}
}

// TestDeviceCorruptRecord breaks a stored record and checks that the store
// call fails with an error naming bucket and key instead of panicking.
func TestDeviceCorruptRecord(t *testing.T) {
	ctx := context.Background()
	db, err := Open(filepath.Join(t.TempDir(), "x.db"), Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	p := &peer{t: t, db: db, jid: mustJID("491701111111:2@s.whatsapp.net")}
	dev := db.Devices(nil).NewDevice()
	dev.ID = &p.jid
	dev.Account = validAccount()
	if err := dev.Save(ctx); err != nil {
		t.Fatal(err)
	}
	contact := types.JID{User: "491511111111", Server: types.DefaultUserServer}
	if _, _, err := dev.Contacts.PutPushName(ctx, contact, "Ann"); err != nil {
		t.Fatal(err)
	}
	if err := dev.Sessions.PutSession(ctx, "491511111111:0", []byte("s")); err != nil {
		t.Fatal(err)
	}
	corrupt := func(table []byte, key []byte) {
		err := db.bolt.Update(func(tx *bolt.Tx) error {
			b := tx.Bucket(table)
			if sub := b.Bucket([]byte(p.jid.String())); sub != nil && string(table) != string(bktDevice) {
				b = sub
			}
			v := b.Get(key)
			return b.Put(key, v[:len(v)-1])
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	corrupt(bktContact, []byte(contact.String()))
	corrupt(bktSession, []byte("491511111111:0"))
	checks := map[string]func() error{
		"GetContact":  func() error { _, err := dev.Contacts.GetContact(ctx, contact); return err },
		"PutPushName": func() error { _, _, err := dev.Contacts.PutPushName(ctx, contact, "Bob"); return err },
		"GetAll":      func() error { _, err := dev.Contacts.GetAllContacts(ctx); return err },
		"GetSession":  func() error { _, err := dev.Sessions.GetSession(ctx, "491511111111:0"); return err },
	}
	for name, f := range checks {
		err := f()
		var ce *CorruptError
		if !errors.As(err, &ce) || ce.Bucket == "" || len(ce.Key) == 0 {
			t.Errorf("%s: got %v, want a CorruptError naming bucket and key", name, err)
		}
	}
	corrupt(bktDevice, []byte(p.jid.String()))
	if _, err := db.Devices(nil).GetDevice(ctx, p.jid); err == nil {
		t.Error("GetDevice of a corrupt device: no error")
	}
}

// TestDeviceDeleteCascades checks what deleting a device removes: every
// per-device table but privacy tokens, which sqlstore keeps (no foreign
// key), and never another device's rows or the global LID map.
func TestDeviceDeleteCascades(t *testing.T) {
	ctx := context.Background()
	db, err := Open(filepath.Join(t.TempDir(), "x.db"), Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	c := db.Devices(nil)
	var devs []*wastore.Device
	for _, j := range []string{"491701111111:2@s.whatsapp.net", "491702222222:3@s.whatsapp.net"} {
		d := c.NewDevice()
		jid := mustJID(j)
		d.ID, d.Account = &jid, validAccount()
		if err := d.Save(ctx); err != nil {
			t.Fatal(err)
		}
		if err := d.Sessions.PutSession(ctx, "1:1", []byte("s")); err != nil {
			t.Fatal(err)
		}
		if err := d.NCTSalt.PutNCTSalt(ctx, []byte("salt")); err != nil {
			t.Fatal(err)
		}
		if err := d.PrivacyTokens.PutPrivacyTokens(ctx, wastore.PrivacyToken{User: mustJID("1@s.whatsapp.net"), Token: []byte("t")}); err != nil {
			t.Fatal(err)
		}
		devs = append(devs, d)
	}
	if err := devs[0].LIDs.PutLIDMapping(ctx, mustJID("100000000000001@lid"), mustJID("491511111111@s.whatsapp.net")); err != nil {
		t.Fatal(err)
	}
	gone := devs[0].Sessions.(*deviceStore) // the store survives Delete's swap to NoopStore
	if err := devs[0].Delete(ctx); err != nil {
		t.Fatal(err)
	}
	if s, _ := gone.GetSession(ctx, "1:1"); s != nil {
		t.Error("session of deleted device survived")
	}
	if s, _ := gone.GetNCTSalt(ctx); s != nil {
		t.Error("salt of deleted device survived")
	}
	if tok, _ := gone.GetPrivacyToken(ctx, mustJID("1@s.whatsapp.net")); tok == nil {
		t.Error("privacy token deleted with the device; sqlstore keeps it")
	}
	if err := gone.PutSession(ctx, "1:1", []byte("s")); !errors.Is(err, errNoDevice) {
		t.Errorf("write for deleted device: %v, want foreign-key error", err)
	}
	if s, _ := devs[1].Sessions.GetSession(ctx, "1:1"); s == nil {
		t.Error("other device's session deleted")
	}
	if l, _ := devs[1].LIDs.GetLIDForPN(ctx, mustJID("491511111111@s.whatsapp.net")); l.IsEmpty() {
		t.Error("LID map deleted with a device")
	}
	if all, _ := c.GetAllDevices(ctx); len(all) != 1 || all[0].ID.String() != devs[1].ID.String() {
		t.Errorf("devices after delete: %v", all)
	}
}

func validAccount() *waAdv.ADVSignedDeviceIdentity {
	return &waAdv.ADVSignedDeviceIdentity{Details: []byte("d"), AccountSignature: make([]byte, 64), AccountSignatureKey: make([]byte, 32), DeviceSignature: make([]byte, 64)}
}
