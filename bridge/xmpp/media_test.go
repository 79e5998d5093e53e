package xmpp

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"waxmpp/bridge"
	pt "waxmpp/bridge/prosodytest"
)

// TestUploadErrors: Prosody's answers for a file over the limit and for a
// used-up daily quota reach the core as bridge's sentinels.
func TestUploadErrors(t *testing.T) {
	srv := pt.Start(t, pt.Options{UploadLimit: 64 << 10}) // daily quota: ten times that
	s := startSession(t, botConfig(t, srv))
	ctx := context.Background()
	if _, err := s.Upload(ctx, "big.bin", "", 65<<10, bytes.NewReader(make([]byte, 65<<10))); !errors.Is(err, bridge.ErrUploadTooLarge) {
		t.Errorf("over the limit: %v, want bridge.ErrUploadTooLarge", err)
	}
	var err error
	for i := 0; i < 20 && err == nil; i++ {
		_, err = s.Upload(ctx, "f.bin", "application/octet-stream", 60<<10, bytes.NewReader(make([]byte, 60<<10)))
	}
	if !errors.Is(err, bridge.ErrUploadQuota) {
		t.Errorf("after the daily quota: %v, want bridge.ErrUploadQuota", err)
	}
}

// TestOwnerClients: the caps nodes of the owner's online clients, as
// Prosody delivers their presence; a client going offline drops out.
func TestOwnerClients(t *testing.T) {
	srv := pt.Start(t, pt.Options{})
	owner := srv.Dial(t, "owner")
	s := startSession(t, botConfig(t, srv))
	subscribed(t, owner, srv.JID("bot"))
	owner.Send("<presence><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='http://monal.im/' ver='abc='/></presence>")
	waitFor(t, 10*time.Second, "the owner's caps", func() bool { return slices.Contains(s.OwnerClients(), "http://monal.im/") })
	owner.Send("<presence type='unavailable'/>")
	waitFor(t, 10*time.Second, "the owner offline", func() bool { return len(s.OwnerClients()) == 0 })
}

// TestOwnerFile: an attachment is a body equal to its OOB URL, or a lone
// aesgcm:// body; a URL inside text, a lone https link, or an OOB with
// other text are text.
func TestOwnerFile(t *testing.T) {
	const u = "https://upload.example.org/share/x/photo.jpg"
	const enc = "aesgcm://upload.example.org/share/y/voice.m4a#" + "00112233445566778899aabb" + "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
	for _, c := range []struct {
		m    Inbound
		file string
	}{
		{Inbound{ID: "1", Body: u, HasBody: true, OOB: &OOB{URL: u}}, u},
		{Inbound{ID: "2", Body: " " + u + "\n", HasBody: true, OOB: &OOB{URL: u}}, u},
		{Inbound{ID: "3", OOB: &OOB{URL: u}}, u},
		{Inbound{ID: "4", Body: enc, HasBody: true}, enc},
		{Inbound{ID: "5", Body: u, HasBody: true}, ""},
		{Inbound{ID: "6", Body: "look: " + u, HasBody: true}, ""},
		{Inbound{ID: "7", Body: "my photo", HasBody: true, OOB: &OOB{URL: u}}, ""},
	} {
		ev := OwnerEvent(&c.m, "", time.Now())
		tx, ok := ev.(*bridge.OwnerText)
		if !ok {
			t.Errorf("%s: %T", c.m.ID, ev)
			continue
		}
		if tx.File != c.file || (c.file != "" && tx.URL != c.file) {
			t.Errorf("%s: File %q URL %q, want File %q", c.m.ID, tx.File, tx.URL, c.file)
		}
	}
}
