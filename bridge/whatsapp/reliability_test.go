//lint:file-ignore SA1019 the tests feed nodes to whatsmeow's own handlers, as its socket would (DangerousInternals)

package whatsapp

import (
	"bytes"
	"compress/zlib"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/proto/waCommon"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/proto/waHistorySync"
	"go.mau.fi/whatsmeow/proto/waWeb"
	wastore "go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	"google.golang.org/protobuf/proto"

	"waxmpp/bridge"
	"waxmpp/bridge/store"
)

var ownDev = types.NewADJID(own.User, 0, 7) // the linked device

func plain(s string) *waE2E.Message { return &waE2E.Message{Conversation: proto.String(s)} }

// compressed is hs as the phone uploads it (zlib).
func compressed(t testing.TB, hs *waHistorySync.HistorySync) []byte {
	t.Helper()
	raw, err := proto.Marshal(hs)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	z := zlib.NewWriter(&buf)
	z.Write(raw)
	z.Close()
	return buf.Bytes()
}

// historyNotice is a history-sync notification with an inline payload, the
// peer message the phone sends.
func historyNotice(t testing.TB, typ waE2E.HistorySyncType, hs *waHistorySync.HistorySync) *waE2E.Message {
	return &waE2E.Message{ProtocolMessage: &waE2E.ProtocolMessage{
		Type: waE2E.ProtocolMessage_HISTORY_SYNC_NOTIFICATION.Enum(),
		HistorySyncNotification: &waE2E.HistorySyncNotification{SyncType: typ.Enum(),
			InitialHistBootstrapInlinePayload: compressed(t, hs)},
	}}
}

// forged is the history a contact would like the owner to believe: a
// message, another name for Bob, and Bob's number on the sender's LID.
func forged(lid types.JID) *waHistorySync.HistorySync {
	return &waHistorySync.HistorySync{
		SyncType: waHistorySync.HistorySync_ON_DEMAND.Enum(),
		Conversations: []*waHistorySync.Conversation{{ID: proto.String(bob.String()),
			Messages: []*waHistorySync.HistorySyncMsg{{Message: &waWeb.WebMessageInfo{
				Key:              &waCommon.MessageKey{RemoteJID: proto.String(bob.String()), ID: proto.String("FAKE1")},
				Message:          plain("send the money to my new number"),
				MessageTimestamp: proto.Uint64(uint64(t0.Unix())),
			}}}}},
		Pushnames:                []*waHistorySync.Pushname{{ID: proto.String(bob.String()), Pushname: proto.String("Mallory")}},
		PhoneNumberToLidMappings: []*waHistorySync.PhoneNumberToLIDMapping{{PnJID: proto.String(bob.String()), LidJID: proto.String(lid.String())}},
	}
}

// TestHistoryOnlyFromOwnPhone: a history sync is a peer message anyone
// can send. One from a contact or from another of the owner's companion
// devices changes nothing; the phone's is taken; and a later mapping
// from the phone that contradicts a known one does not replace it.
// Everything goes through whatsmeow: Signal encryption by the sender,
// decryption and dispatch by the linked device's client.
func TestHistoryOnlyFromOwnPhone(t *testing.T) {
	var dev *wastore.Device
	h := newRealHarness(t, "", func(db *store.DB) { dev = ownDevice(t, db, "Owner") })
	h.run()
	ctx := context.Background()
	mallory := types.NewJID("100000000000666", types.HiddenUserServer)

	for i, from := range []types.JID{alice, types.NewADJID(own.User, 0, 3)} {
		p := newPeer(t, from)
		n := p.message(t, ownDev, bundle(t, dev), fmt.Sprintf("FORGED%d", i), t0, historyNotice(t, waE2E.HistorySyncType_ON_DEMAND, forged(mallory)), nil)
		h.feed(n)
	}
	if n, _ := h.a.hist.q.Len(); n != 0 {
		t.Errorf("%d forged history syncs queued", n)
	}

	phone := newPeer(t, own)
	real := &waHistorySync.HistorySync{
		SyncType:                 waHistorySync.HistorySync_INITIAL_BOOTSTRAP.Enum(),
		Pushnames:                []*waHistorySync.Pushname{{ID: proto.String(alice.String()), Pushname: proto.String("Ali")}},
		PhoneNumberToLidMappings: []*waHistorySync.PhoneNumberToLIDMapping{{PnJID: proto.String(bob.String()), LidJID: proto.String(bobLID.String())}},
	}
	h.feed(phone.message(t, ownDev, bundle(t, dev), "HS1", t0, historyNotice(t, waE2E.HistorySyncType_INITIAL_BOOTSTRAP, real), waBinary.Attrs{"category": "peer"}))
	var got []string
	for len(got) < 2 {
		switch e := h.next().(type) {
		case *bridge.ContactInfo:
			got = append(got, "name "+e.PushName)
		case *bridge.Alias:
			got = append(got, "alias "+string(e.Phone)+" "+string(e.LID))
		case *bridge.Message:
			t.Fatalf("history relayed: %+v", e)
		}
	}
	want := []string{"name Ali", "alias " + bob.String() + " " + bobLID.String()}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("got %q, want %q", got, want)
	}
	waitFor(t, "the phone's receipt", func() bool {
		c := h.client()
		c.mu.Lock()
		defer c.mu.Unlock()
		return len(c.receipts) == 1 && c.receipts[0] == "hist_sync HS1"
	})

	// A later sync from the phone itself maps Bob's number elsewhere: the
	// known mapping stays and the core hears nothing of it.
	h.feed(phone.message(t, ownDev, nil, "HS2", t0, historyNotice(t, waE2E.HistorySyncType_RECENT, &waHistorySync.HistorySync{
		SyncType:                 waHistorySync.HistorySync_RECENT.Enum(),
		PhoneNumberToLidMappings: []*waHistorySync.PhoneNumberToLIDMapping{{PnJID: proto.String(bob.String()), LidJID: proto.String(mallory.String())}},
		Pushnames:                []*waHistorySync.Pushname{{ID: proto.String(alice.String()), Pushname: proto.String("Alice")}},
	}), nil))
	if ci, ok := h.next().(*bridge.ContactInfo); !ok || ci.PushName != "Alice" {
		t.Fatalf("got %+v", ci)
	}
	waitFor(t, "the second sync processed", func() bool { n, _ := h.a.hist.q.Len(); return n == 0 })
	select {
	case e := <-h.events:
		t.Errorf("unexpected %T %+v", e, e)
	case <-time.After(100 * time.Millisecond):
	}
	if l, err := dev.LIDs.GetLIDForPN(ctx, bob); err != nil || l != bobLID {
		t.Errorf("Bob's LID is %v (%v), want %v", l, err, bobLID)
	}
	if p, _ := dev.LIDs.GetPNForLID(ctx, mallory); !p.IsEmpty() {
		t.Errorf("the forged LID maps to %v", p)
	}
	if c, _ := dev.Contacts.GetContact(ctx, bob); c.PushName == "Mallory" {
		t.Error("the forged push name was stored")
	}
}

// TestFailedInboxWriteRedelivered: the handler cannot queue a message
// (the disk fails), so whatsmeow does not acknowledge it; when WhatsApp
// delivers the same ciphertext again, whatsmeow decrypts it from its event
// buffer (the Signal session has moved on) and the message reaches the
// core.
func TestFailedInboxWriteRedelivered(t *testing.T) {
	var dev *wastore.Device
	h := newRealHarness(t, "", func(db *store.DB) { dev = ownDevice(t, db, "Owner") })
	h.run()
	p := newPeer(t, alice)
	first := p.message(t, ownDev, bundle(t, dev), "M1", t0, plain("hello"), nil)
	second := p.message(t, ownDev, nil, "M2", t0.Add(time.Second), plain("are you there?"), nil)
	h.inbox.mu.Lock()
	h.inbox.fail = 1
	h.inbox.mu.Unlock()
	h.feed(first)
	if n := h.a.Pending(); n != 0 {
		t.Fatalf("%d events queued after a failed write", n)
	}
	h.feed(first) // delivered again: WhatsApp had no ack
	h.feed(second)
	for _, want := range []string{"hello", "are you there?"} {
		m, ok := h.nextMessage(5 * time.Second)
		if !ok {
			t.Fatalf("%q never reached the core", want)
		}
		if m.Text != want {
			t.Errorf("got %q, want %q", m.Text, want)
		}
	}
}

// TestHistoryFailureIsNotTheLiveMessages: a history batch that cannot be
// queued while a live message is being handled does not make whatsmeow
// withhold the live message's acknowledgement.
func TestHistoryFailureIsNotTheLiveMessages(t *testing.T) {
	h := newRealHarness(t, "", func(db *store.DB) { ownDevice(t, db, "Owner") })
	h.run()
	var histErr error
	hooked := false
	h.inbox.mu.Lock()
	h.inbox.before = func(data [][]byte) {
		h.inbox.mu.Lock()
		if hooked {
			h.inbox.mu.Unlock()
			return
		}
		hooked = true
		h.inbox.fail = 1 // the history batch's write fails
		h.inbox.mu.Unlock()
		done := make(chan struct{})
		go func() {
			histErr = h.a.emit(&bridge.ContactInfo{User: bridge.UserID(bob.String()), PushName: "Bob"})
			close(done)
		}()
		<-done
	}
	h.inbox.mu.Unlock()
	evt := (&events.Message{Info: dmInfo("LIVE1", alice, false), RawMessage: plain("live")}).UnwrapRaw()
	failed := h.client().DangerousInternals().DispatchEvent(evt)
	if histErr == nil {
		t.Fatal("the history batch did not fail")
	}
	if failed {
		t.Error("the live message's handler reported failure for the history batch's write")
	}
	if m, ok := h.nextMessage(5 * time.Second); !ok || m.Text != "live" {
		t.Errorf("got %+v", m)
	}
}

// TestCrashAfterDecryption: the process dies between decrypting a message
// (the Signal session is committed) and queuing it; after a restart the
// server delivers it again and it reaches the core. The crash is a real
// exit of a child process holding the state file.
func TestCrashAfterDecryption(t *testing.T) {
	if spec := os.Getenv("WAXMPP_CRASH_CHILD"); spec != "" {
		crashChild(t, spec)
		return
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "waxmpp.db")
	db, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	dev := ownDevice(t, db, "Owner")
	b := bundle(t, dev)
	db.Close()
	p := newPeer(t, alice)
	raw, err := waBinary.Marshal(p.message(t, ownDev, b, "CRASH1", t0, plain("before the crash"), nil))
	if err != nil {
		t.Fatal(err)
	}
	nodeFile := filepath.Join(dir, "node.bin")
	if err := os.WriteFile(nodeFile, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashAfterDecryption$")
	cmd.Env = append(os.Environ(), "WAXMPP_CRASH_CHILD="+path+","+nodeFile)
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 3 {
		t.Fatalf("child did not crash where it should: %v\n%s", err, out)
	}

	h := newRealHarness(t, path, nil)
	h.run()
	h.feedRaw(raw) // the server delivers the unacknowledged message again
	m, ok := h.nextMessage(5 * time.Second)
	if !ok {
		t.Fatal("the message decrypted before the crash never reached the core")
	}
	if m.Text != "before the crash" || m.Ref.ID != "CRASH1" {
		t.Errorf("got %+v", m)
	}
}

// crashChild is TestCrashAfterDecryption's child: it handles the node and
// dies in the inbox write, after whatsmeow committed the decryption.
func crashChild(t *testing.T, spec string) {
	path, nodeFile, _ := strings.Cut(spec, ",")
	raw, err := os.ReadFile(nodeFile)
	if err != nil {
		t.Fatal(err)
	}
	h := newRealHarness(t, path, nil)
	h.inbox.before = func([][]byte) { os.Exit(3) } // power cut
	h.run()
	h.feedRaw(raw)
	t.Fatal("the handler never wrote to the inbox")
}
