package whatsapp

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"testing"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/types"

	"waxmpp/bridge"
	"waxmpp/bridge/store"
)

// TestNewConfiguresWhatsmeow checks the real client's settings the
// adapter's contract depends on. New does not connect.
func TestNewConfiguresWhatsmeow(t *testing.T) {
	db, err := store.Open(filepath.Join(t.TempDir(), "waxmpp.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	a, err := New(context.Background(), testConfig(db, slog.New(slog.NewTextHandler(io.Discard, nil)), make(chan bridge.Event)))
	if err != nil {
		t.Fatal(err)
	}
	c, ok := a.client().(*whatsmeow.Client)
	if !ok {
		t.Fatalf("client is %T", a.client())
	}
	for name, v := range map[string]bool{
		"EnableAutoReconnect":                c.EnableAutoReconnect,
		"InitialAutoReconnect":               c.InitialAutoReconnect,
		"AutomaticMessageRerequestFromPhone": c.AutomaticMessageRerequestFromPhone,
		"UseRetryMessageStore":               c.UseRetryMessageStore,
		"ManualHistorySyncDownload":          c.ManualHistorySyncDownload,
		"EmitAppStateEventsOnFullSync":       c.EmitAppStateEventsOnFullSync,
		"not connected":                      !c.IsConnected(),
	} {
		if !v {
			t.Errorf("%s is false", name)
		}
	}
	if a.paired() {
		t.Error("a fresh state file is paired")
	}
}

// TestOutgoingEventsSurviveRestart: whatsmeow keeps sent messages in the
// device store's event buffer (UseRetryMessageStore) to answer retry
// receipts; with bridge/store they survive a restart.
func TestOutgoingEventsSurviveRestart(t *testing.T) {
	h := newHarness(t, true)
	ctx := context.Background()
	dev := h.a.device()
	if err := dev.EventBuffer.AddOutgoingEvent(ctx, alice, "3EB0OUT", "e2e", []byte("plaintext")); err != nil {
		t.Fatal(err)
	}
	path := h.db.Path()
	h.db.Close()
	db, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	d, err := db.Devices(nil).GetFirstDevice(ctx)
	if err != nil || d.ID == nil {
		t.Fatalf("device after reopen: %v %v", d, err)
	}
	format, b, err := d.EventBuffer.GetOutgoingEvent(ctx, alice, types.EmptyJID, "3EB0OUT")
	if err != nil || format != "e2e" || string(b) != "plaintext" {
		t.Errorf("GetOutgoingEvent = %q %q %v", format, b, err)
	}
}
