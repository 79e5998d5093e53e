//lint:file-ignore SA1019 the tests feed events to whatsmeow's own handlers, as its socket would (DangerousInternals)

package whatsapp

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/appstate"
	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/proto/waCommon"
	"go.mau.fi/whatsmeow/proto/waCompanionReg"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/proto/waHistorySync"
	"go.mau.fi/whatsmeow/proto/waServerSync"
	"go.mau.fi/whatsmeow/proto/waSyncAction"
	"go.mau.fi/whatsmeow/proto/waWeb"
	wastore "go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	"google.golang.org/protobuf/proto"

	"waxmpp/bridge"
	"waxmpp/bridge/store"
)

var (
	aliceLID = types.NewJID("100000000000009", types.HiddenUserServer)
	carol    = types.NewJID("491703333333", types.DefaultUserServer)
	carolLID = types.NewJID("100000000000003", types.HiddenUserServer)
)

// fromPhone is a peer message from the owner's phone, as whatsmeow
// dispatches it.
func fromPhone(id string, m *waE2E.Message) *events.Message {
	e := &events.Message{Info: types.MessageInfo{
		MessageSource: types.MessageSource{Chat: own, Sender: own, IsFromMe: true},
		ID:            id, Timestamp: t0, Category: "peer",
	}, RawMessage: m}
	return e.UnwrapRaw()
}

// waitHistory waits until n history notifications were processed.
func waitHistory(t *testing.T, a *Adapter, n int) {
	t.Helper()
	waitFor(t, "history processed", func() bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		return a.sync.done >= n
	})
}

// richHistory is an initial sync holding everything whatsmeow stores from
// one: privacy tokens of a phone-number and a LID chat, message secrets
// of the owner's, a peer's and group members' messages, mappings (one
// number still on the legacy c.us server), the NCT salt, the chat
// database's LID migration time and the companion meta nonce.
func richHistory() (*waHistorySync.HistorySync, *waHistorySync.HistorySync) {
	wm := func(chat types.JID, id string, fromMe bool, participant, msgParticipant string, secret string) *waHistorySync.HistorySyncMsg {
		k := &waCommon.MessageKey{RemoteJID: proto.String(chat.String()), ID: proto.String(id), FromMe: proto.Bool(fromMe)}
		if participant != "" {
			k.Participant = proto.String(participant)
		}
		m := &waWeb.WebMessageInfo{Key: k, Message: plain("old " + id), MessageTimestamp: proto.Uint64(uint64(t0.Unix())), MessageSecret: []byte(secret)}
		if msgParticipant != "" {
			m.Participant = proto.String(msgParticipant)
		}
		return &waHistorySync.HistorySyncMsg{Message: m}
	}
	hs := &waHistorySync.HistorySync{
		SyncType: waHistorySync.HistorySync_INITIAL_BOOTSTRAP.Enum(),
		Conversations: []*waHistorySync.Conversation{
			{ID: proto.String(alice.String()), TcToken: []byte("token-alice"), TcTokenTimestamp: proto.Uint64(1790000000), TcTokenSenderTimestamp: proto.Uint64(1790000100),
				Messages: []*waHistorySync.HistorySyncMsg{wm(alice, "S1", true, "", "", "secret-1-................"), wm(alice, "S2", false, "", "", "secret-2-................")}},
			{ID: proto.String(bobLID.String()), TcToken: []byte("token-bob"), TcTokenTimestamp: proto.Uint64(1790000200),
				Messages: []*waHistorySync.HistorySyncMsg{wm(bobLID, "S3", false, "", "", "secret-3-................")}},
			{ID: proto.String(group.String()), Name: proto.String("Family"),
				Messages: []*waHistorySync.HistorySyncMsg{
					wm(group, "S4", false, bob.String(), "", "secret-4-................"),
					wm(group, "S5", false, "", carolLID.String(), "secret-5-................"),
					wm(group, "S6", true, "", "", "secret-6-................")}},
		},
		PhoneNumberToLidMappings: []*waHistorySync.PhoneNumberToLIDMapping{
			{PnJID: proto.String(alice.String()), LidJID: proto.String(aliceLID.String())},
			{PnJID: proto.String(carol.User + "@c.us"), LidJID: proto.String(carolLID.String())},
		},
		NctSalt:            []byte("nct-salt"),
		GlobalSettings:     &waHistorySync.GlobalSettings{ChatDbLidMigrationTimestamp: proto.Int64(1780000000)},
		CompanionMetaNonce: proto.String("nonce-1"),
	}
	names := &waHistorySync.HistorySync{
		SyncType: waHistorySync.HistorySync_PUSH_NAME.Enum(),
		Pushnames: []*waHistorySync.Pushname{{ID: proto.String(alice.String()), Pushname: proto.String("Ali")},
			{ID: proto.String(bob.String()), Pushname: proto.String("Bobby")}, {ID: proto.String(carol.String()), Pushname: proto.String("-")}},
	}
	return hs, names
}

// TestHistoryStoresWhatWhatsmeowStores: the same history blobs, read by
// whatsmeow's own DownloadHistorySync into one state file and streamed by
// the adapter into another, leave the same message secrets, privacy
// tokens, NCT salt, push names, LID mappings, LID migration time and
// companion meta nonce.
func TestHistoryStoresWhatWhatsmeowStores(t *testing.T) {
	ctx := context.Background()
	hs, names := richHistory()
	notices := []*waE2E.Message{historyNotice(t, waE2E.HistorySyncType_INITIAL_BOOTSTRAP, hs), historyNotice(t, waE2E.HistorySyncType_PUSH_NAME, names)}

	wdb, err := store.Open(filepath.Join(t.TempDir(), "whatsmeow.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer wdb.Close()
	wcli := whatsmeow.NewClient(ownDevice(t, wdb, "Owner"), nil)
	for _, n := range notices {
		if _, err := wcli.DownloadHistorySync(ctx, n.GetProtocolMessage().GetHistorySyncNotification(), true); err != nil {
			t.Fatal(err)
		}
	}

	h := newRealHarness(t, "", func(db *store.DB) { ownDevice(t, db, "Owner") })
	h.run()
	for i, n := range notices {
		h.client().DangerousInternals().DispatchEvent(fromPhone("HS"+string(rune('A'+i)), n))
	}
	waitHistory(t, h.a, 2)

	wdev, err := wdb.Devices(nil).GetFirstDevice(ctx)
	if err != nil {
		t.Fatal(err)
	}
	odev, err := h.db.Devices(nil).GetFirstDevice(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []struct {
		chat, sender types.JID
		id           string
	}{{alice, own, "S1"}, {alice, alice, "S2"}, {bobLID, bobLID, "S3"}, {group, bob, "S4"}, {group, carolLID, "S5"}, {group, own, "S6"}} {
		want, _, err1 := wdev.MsgSecrets.GetMessageSecret(ctx, k.chat, k.sender, types.MessageID(k.id))
		got, _, err2 := odev.MsgSecrets.GetMessageSecret(ctx, k.chat, k.sender, types.MessageID(k.id))
		if err1 != nil || err2 != nil || want == nil || !bytes.Equal(got, want) {
			t.Errorf("secret of %s: got %q (%v), whatsmeow %q (%v)", k.id, got, err2, want, err1)
		}
	}
	for _, u := range []types.JID{alice, aliceLID, bobLID} {
		want, err1 := wdev.PrivacyTokens.GetPrivacyToken(ctx, u)
		got, err2 := odev.PrivacyTokens.GetPrivacyToken(ctx, u)
		if err1 != nil || err2 != nil || want == nil || got == nil || !bytes.Equal(got.Token, want.Token) ||
			!got.Timestamp.Equal(want.Timestamp) || !got.SenderTimestamp.Equal(want.SenderTimestamp) {
			t.Errorf("privacy token of %s: got %+v (%v), whatsmeow %+v (%v)", u, got, err2, want, err1)
		}
	}
	ws, _ := wdev.NCTSalt.GetNCTSalt(ctx)
	if gs, _ := odev.NCTSalt.GetNCTSalt(ctx); ws == nil || !bytes.Equal(gs, ws) {
		t.Errorf("NCT salt %q, whatsmeow %q", gs, ws)
	}
	for _, pn := range []types.JID{alice, carol} {
		wl, _ := wdev.LIDs.GetLIDForPN(ctx, pn)
		if gl, _ := odev.LIDs.GetLIDForPN(ctx, pn); wl.IsEmpty() || gl != wl {
			t.Errorf("LID of %s: %v, whatsmeow %v", pn, gl, wl)
		}
	}
	for _, u := range []types.JID{alice, bob, carol} {
		wc, _ := wdev.Contacts.GetContact(ctx, u)
		if gc, _ := odev.Contacts.GetContact(ctx, u); gc.PushName != wc.PushName {
			t.Errorf("push name of %s: %q, whatsmeow %q", u, gc.PushName, wc.PushName)
		}
	}
	if odev.LIDMigrationTimestamp != wdev.LIDMigrationTimestamp || wdev.LIDMigrationTimestamp == 0 ||
		odev.CompanionMetaNonce != wdev.CompanionMetaNonce || wdev.CompanionMetaNonce == "" {
		t.Errorf("device: migration %d nonce %q, whatsmeow %d %q", odev.LIDMigrationTimestamp, odev.CompanionMetaNonce,
			wdev.LIDMigrationTimestamp, wdev.CompanionMetaNonce)
	}
}

// TestHistoryQueuedBeforeReceipt: the phone's notifications are on disk
// before the phone gets its receipt, downloaded one at a time, deleted
// from WhatsApp's servers when processed, and a notification waxmpp had
// not processed when it stopped is processed at the next start.
func TestHistoryQueuedBeforeReceipt(t *testing.T) {
	h := newHarness(t, true)
	h.run()
	c := h.client()
	c.mu.Lock()
	c.dlGate = make(chan struct{})
	c.blobs = map[string][]byte{
		"/h1": historyBlob(t, waHistorySync.HistorySync_RECENT),
		"/h2": historyBlob(t, waHistorySync.HistorySync_RECENT),
	}
	c.mu.Unlock()
	notice := func(path string) *waE2E.Message {
		return &waE2E.Message{ProtocolMessage: &waE2E.ProtocolMessage{Type: waE2E.ProtocolMessage_HISTORY_SYNC_NOTIFICATION.Enum(),
			HistorySyncNotification: &waE2E.HistorySyncNotification{SyncType: waE2E.HistorySyncType_RECENT.Enum(), DirectPath: proto.String(path)}}}
	}
	// A disk that fails: no receipt, and whatsmeow is told to keep it.
	h.hist.mu.Lock()
	h.hist.fail = 1
	h.hist.mu.Unlock()
	if c.dispatch(fromPhone("N0", notice("/h1"))) {
		t.Error("a notification not on disk was acknowledged")
	}
	for _, id := range []string{"N1", "N2"} {
		if !c.dispatch(fromPhone(id, notice("/h"+id[1:]))) {
			t.Fatalf("%s: handler failed", id)
		}
	}
	waitFor(t, "receipts", func() bool { c.mu.Lock(); defer c.mu.Unlock(); return len(c.receipts) == 2 })
	c.mu.Lock()
	// Each receipt goes on its own goroutine (historyNotification): in
	// either order.
	if got := slices.Sorted(slices.Values(c.receipts)); strings.Join(got, ",") != "hist_sync N1,hist_sync N2" {
		t.Errorf("receipts %q", c.receipts)
	}
	c.mu.Unlock()
	if n, _ := h.a.hist.q.Len(); n != 2 {
		t.Errorf("%d notifications on disk, want 2", n)
	}
	waitFor(t, "a download", func() bool { c.mu.Lock(); defer c.mu.Unlock(); return c.downloads == 1 })
	time.Sleep(50 * time.Millisecond)
	c.mu.Lock()
	if c.maxDL != 1 {
		t.Errorf("%d downloads at once, want 1", c.maxDL)
	}
	c.mu.Unlock()

	// Stopped while the first is downloading: both are still on disk.
	h.stop()
	if n, _ := h.a.hist.q.Len(); n != 2 {
		t.Fatalf("%d notifications on disk after stop, want 2", n)
	}
	h.blobs = c.blobs // the next client serves them from the start
	a, err := newAdapter(context.Background(), testConfig(h.db, h.a.log, h.events), h.a.newClient, h.a.fetchVersion)
	if err != nil {
		t.Fatal(err)
	}
	h.a = a
	h.run()
	c2 := h.client()
	waitHistory(t, h.a, 2)
	c2.mu.Lock()
	if strings.Join(c2.deleted, ",") != "/h1,/h2" || c2.maxDL != 1 {
		t.Errorf("deleted %q, %d downloads at once", c2.deleted, c2.maxDL)
	}
	c2.mu.Unlock()
	if n, _ := h.a.hist.q.Len(); n != 0 {
		t.Errorf("%d notifications left", n)
	}
}

// TestInitialSync: after pairing, InitialSync returns only once the
// offline messages, the critical app state and the history have arrived
// (events as whatsmeow dispatches them).
func TestInitialSync(t *testing.T) {
	h := newHarness(t, true)
	h.a.historyIdle = 100 * time.Millisecond
	h.run()
	c := h.client()
	var lines []string
	done := make(chan error, 1)
	go func() {
		done <- h.a.InitialSync(context.Background(), func(s string) { lines = append(lines, s) })
	}()
	steps := []any{
		&events.OfflineSyncCompleted{Count: 3},
		&events.AppStateSyncComplete{Name: appstate.WAPatchCriticalBlock},
		fromPhone("HS1", &waE2E.Message{ProtocolMessage: &waE2E.ProtocolMessage{Type: waE2E.ProtocolMessage_HISTORY_SYNC_NOTIFICATION.Enum(),
			HistorySyncNotification: &waE2E.HistorySyncNotification{SyncType: waE2E.HistorySyncType_INITIAL_BOOTSTRAP.Enum(),
				InitialHistBootstrapInlinePayload: historyBlob(t, waHistorySync.HistorySync_INITIAL_BOOTSTRAP)}}}),
		&events.AppStateSyncComplete{Name: appstate.WAPatchCriticalUnblockLow},
	}
	for _, s := range steps {
		select {
		case err := <-done:
			t.Fatalf("InitialSync returned (%v) before %T", err, s)
		case <-time.After(200 * time.Millisecond):
		}
		c.dispatch(s)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("InitialSync did not return")
	}
	if got := strings.Join(lines, "\n"); !strings.Contains(got, "address book: received") || !strings.Contains(got, "1 part(s)") {
		t.Errorf("progress:\n%s", got)
	}
}

// TestPresenceAfterPushName: right after pairing the push name is
// unknown, and whatsmeow refuses presence without it; when the app-state
// sync brings it (whatsmeow builds the event from the critical_block
// mutation), presence goes out, so others see the owner's name.
func TestPresenceAfterPushName(t *testing.T) {
	h := newRealHarness(t, "", func(db *store.DB) { ownDevice(t, db, "") })
	h.run()
	c := h.client()
	c.login()
	waitFor(t, "presence at connect", func() bool { c.mu.Lock(); defer c.mu.Unlock(); return len(c.presence) > 0 })
	if n := c.sentPresence(); n != 0 {
		t.Fatalf("presence sent without a push name: %d", n)
	}
	evt := c.DangerousInternals().DispatchAppState(context.Background(), appstate.WAPatchCriticalBlock, appstate.Mutation{
		Operation: waServerSync.SyncdMutation_SET, Index: []string{appstate.IndexSettingPushName},
		Action: &waSyncAction.SyncActionValue{PushNameSetting: &waSyncAction.PushNameSetting{Name: proto.String("Owner")}},
	}, true)
	if _, ok := evt.(*events.PushNameSetting); !ok {
		t.Fatalf("whatsmeow built %T", evt)
	}
	c.DangerousInternals().DispatchEvent(evt)
	waitFor(t, "presence with the push name", func() bool { return c.sentPresence() == 1 })
}

// TestViewOnceUnavailable: WhatsApp sends companions a view-once message
// as <unavailable type="view_once"/>; the owner is told what it is, not
// "waiting for this message" forever.
func TestViewOnceUnavailable(t *testing.T) {
	h := newRealHarness(t, "", func(db *store.DB) { ownDevice(t, db, "Owner") })
	h.run()
	h.feed(waBinary.Node{Tag: "message", Attrs: waBinary.Attrs{"from": alice, "id": "VO1", "t": "1790000000", "type": "media"},
		Content: []waBinary.Node{{Tag: "unavailable", Attrs: waBinary.Attrs{"type": "view_once"}}}})
	switch e := h.next().(type) {
	case *bridge.Message:
		if !e.ViewOnce || e.Ref.ID != "VO1" || e.Text != "" {
			t.Errorf("got %+v", e)
		}
	default:
		t.Errorf("got %T %+v, want a view-once Message", e, e)
	}
}

// TestLogoutReasons: whatsmeow's connect failures 401, 403 (LOCKED) and
// 406 (BANNED) become LoggedOut events; the owner is told each as it is,
// and a ban is not a logout that /pair can undo.
func TestLogoutReasons(t *testing.T) {
	for _, tc := range []struct {
		reason string
		state  bridge.ConnState
		words  string
	}{
		{"401", bridge.LoggedOut, "removed from Linked devices"},
		{"403", bridge.LoggedOut, "locked"},
		{"406", bridge.Banned, "banned"},
	} {
		t.Run(tc.reason, func(t *testing.T) {
			h := newRealHarness(t, "", func(db *store.DB) { ownDevice(t, db, "Owner") })
			h.run()
			h.client().DangerousInternals().HandleConnectFailure(context.Background(), &waBinary.Node{Tag: "failure", Attrs: waBinary.Attrs{"reason": tc.reason}})
			for {
				s, ok := h.next().(*bridge.Status)
				if !ok || s.State == bridge.NotPaired {
					continue
				}
				if s.State != tc.state || !strings.Contains(s.Reason, tc.words) || strings.Contains(s.Reason, "reinstalled") {
					t.Errorf("got %+v, want state %d with %q", s, tc.state, tc.words)
				}
				return
			}
		})
	}
}

// TestClientOutdatedIsItsOwnEvent: whatsmeow turns a 405 connect failure
// into ClientOutdated, never into a ConnectFailure (the adapter's branch
// for the latter was dead).
func TestClientOutdatedIsItsOwnEvent(t *testing.T) {
	h := newRealHarness(t, "", func(db *store.DB) { ownDevice(t, db, "Owner") })
	h.run()
	got := make(chan string, 4)
	h.client().AddEventHandler(func(evt any) {
		switch evt.(type) {
		case *events.ClientOutdated, *events.ConnectFailure:
			got <- fmt.Sprintf("%T", evt)
		}
	})
	h.client().DangerousInternals().HandleConnectFailure(context.Background(), &waBinary.Node{Tag: "failure", Attrs: waBinary.Attrs{"reason": "405"}})
	if s, ok := h.next().(*bridge.Status); !ok || s.State != bridge.Outdated {
		t.Fatalf("got %+v", s)
	}
	if e := <-got; e != "*events.ClientOutdated" {
		t.Errorf("whatsmeow dispatched %s", e)
	}
	select {
	case e := <-got:
		t.Errorf("and %s", e)
	case <-time.After(50 * time.Millisecond):
	}
}

// TestEncryptedReaction: a reaction encrypted by whatsmeow's own
// EncryptReaction (which leaves the key out of the ciphertext), decrypted
// by the linked device's whatsmeow, targets the message named by the
// encrypted message's target key.
func TestEncryptedReaction(t *testing.T) {
	ctx := context.Background()
	secret := []byte("root-message-secret-32-bytes-...")
	h := newRealHarness(t, "", func(db *store.DB) {
		d := ownDevice(t, db, "Owner")
		if err := d.MsgSecrets.PutMessageSecret(ctx, group, alice, "ROOT", secret); err != nil {
			t.Fatal(err)
		}
	})
	h.run()
	reactor := newPeer(t, types.NewJID(bob.User, types.DefaultUserServer))
	reactor.cli.Store.LID = bobLID
	if err := reactor.cli.Store.MsgSecrets.PutMessageSecret(ctx, group, alice, "ROOT", secret); err != nil {
		t.Fatal(err)
	}
	root := &types.MessageInfo{MessageSource: types.MessageSource{Chat: group, Sender: alice, IsGroup: true}, ID: "ROOT"}
	key := &waCommon.MessageKey{RemoteJID: proto.String(group.String()), Participant: proto.String(alice.String()), ID: proto.String("ROOT")}
	enc, err := reactor.cli.EncryptReaction(ctx, root, &waE2E.ReactionMessage{Key: key, Text: proto.String("🔥"), SenderTimestampMS: proto.Int64(t0.UnixMilli())})
	if err != nil {
		t.Fatal(err)
	}
	evt := (&events.Message{Info: types.MessageInfo{MessageSource: types.MessageSource{Chat: group, Sender: bobLID, IsGroup: true},
		ID: "R1", Timestamp: t0}, RawMessage: &waE2E.Message{EncReactionMessage: enc}}).UnwrapRaw()
	h.client().DangerousInternals().DispatchEvent(evt)
	r, ok := h.next().(*bridge.Reaction)
	if !ok || r.Target.ID != "ROOT" || r.Target.Chat != bridge.ChatID(group.String()) || r.Target.Sender != bridge.UserID(alice.String()) || r.Emoji != "🔥" {
		t.Errorf("got %+v", r)
	}
}

// TestPhoneWakeOnlyWhenLoggedIn: the phone has been away 11 days. At
// start-up the connection is not logged in yet, so no wake-up can be sent
// and none is counted as sent; once whatsmeow is logged in (Connected),
// the wake-up goes out.
func TestPhoneWakeOnlyWhenLoggedIn(t *testing.T) {
	h := newRealHarness(t, "", func(db *store.DB) {
		ownDevice(t, db, "Owner")
		b, _ := t0.Add(-11 * 24 * time.Hour).MarshalText()
		if err := db.PutBlob(settingPhoneSeen, b); err != nil {
			t.Fatal(err)
		}
	})
	h.a.now = func() time.Time { return t0 }
	h.run()
	c := h.client()
	waitFor(t, "connect", c.IsConnected)
	time.Sleep(50 * time.Millisecond)
	if n := c.peers(); n != 0 {
		t.Fatalf("%d wake-ups before login", n)
	}
	c.login()
	waitFor(t, "wake-up after login", func() bool { return c.peers() == 1 })
}

// TestGroupsFetchedAfterRepair: after a logout and a new link, the new
// account's groups are fetched at its first connect.
func TestGroupsFetchedAfterRepair(t *testing.T) {
	h := newHarness(t, true)
	h.run()
	old := h.client()
	old.dispatch(&events.Connected{})
	h.status(bridge.Connected)
	h.next() // the group
	h.next() // its member
	old.dispatch(&events.LoggedOut{Reason: events.ConnectFailureLoggedOut})
	h.status(bridge.LoggedOut)
	// Linked again: whatsmeow stores the new identity in the same device.
	c := h.client()
	id := types.NewADJID(own.User, 0, 9)
	c.dev.ID = &id
	c.dispatch(&events.Connected{})
	h.status(bridge.Connected)
	if ci, ok := h.next().(*bridge.ChatInfo); !ok || ci.Name != "Family" {
		t.Errorf("got %+v, want the groups of the new link", ci)
	}
}

// TestLogoutOnce: /logout while whatsmeow also reports the logout (the
// server's stream error can arrive during the request) is told once and
// makes one fresh device.
func TestLogoutOnce(t *testing.T) {
	h := newHarness(t, true)
	h.run()
	c := h.client()
	c.onLogout = func() { c.dispatch(&events.LoggedOut{Reason: events.ConnectFailureLoggedOut}) }
	if err := h.a.Logout(context.Background()); err != nil {
		t.Fatal(err)
	}
	h.status(bridge.LoggedOut)
	h.none()
	h.mu.Lock()
	n := len(h.clients)
	h.mu.Unlock()
	if n != 2 {
		t.Errorf("%d clients, want the old and one fresh", n)
	}
}

// TestLinkCodeRateLimited: WhatsApp's 429 for a link-code request (as
// whatsmeow returns it) is told as what it is, not as a wrong number.
func TestLinkCodeRateLimited(t *testing.T) {
	h := newHarness(t, false)
	h.run()
	h.status(bridge.NotPaired)
	c := h.client()
	c.pairErr = &whatsmeow.IQError{Code: 429, Text: "rate-overlimit"}
	if err := h.a.Pair(context.Background(), "+491701234567"); err != nil {
		t.Fatal(err)
	}
	c.qrChan() <- whatsmeow.QRChannelItem{Event: whatsmeow.QRChannelEventCode, Code: "2@abc", Timeout: time.Minute}
	r := h.next().(*bridge.PairResult)
	if r.OK || !strings.Contains(r.Err, "too many") || strings.Contains(r.Err, "phone's own") {
		t.Errorf("got %+v", r)
	}
}

// TestPairOffline: pairing without a network: whatsmeow's Connect fails
// into a Disconnected event and its QR channel reports a timeout before
// any code; the owner is told that WhatsApp could not be reached.
func TestPairOffline(t *testing.T) {
	h := newRealHarness(t, "", nil)
	h.offline = true
	h.mu.Lock()
	h.clients[0].offline = true
	h.mu.Unlock()
	h.run()
	if s, ok := h.next().(*bridge.Status); !ok || s.State != bridge.NotPaired {
		t.Fatalf("got %+v", s)
	}
	if err := h.a.Pair(context.Background(), ""); err != nil {
		t.Fatal(err)
	}
	for {
		switch e := h.next().(type) {
		case *bridge.PairResult:
			if e.OK || !strings.Contains(e.Err, "could not reach WhatsApp") {
				t.Errorf("got %+v", e)
			}
			return
		case *bridge.PairCode:
			t.Fatalf("a code while offline: %+v", e)
		}
	}
}

// TestPasskey: WhatsApp asks for the account's passkey (whatsmeow's
// PairPasskeyRequest, through its own QR channel). Without a browser the
// attempt ends with advice that fits how the owner was linking; with one
// (Config.Passkeys) the request goes out and the answer back to WhatsApp.
func TestPasskey(t *testing.T) {
	req := &events.PairPasskeyRequest{PublicKey: &types.WebAuthnPublicKey{Challenge: []byte("challenge"), Timeout: 60000,
		RelyingPartID: "whatsapp.com", UserVerification: "required"}}
	start := func(t *testing.T, passkeys bool) (*realHarness, *realClient) {
		h := newRealHarness(t, "", nil)
		h.a.passkeys = passkeys
		h.run()
		h.next() // NotPaired
		if err := h.a.Pair(context.Background(), ""); err != nil {
			t.Fatal(err)
		}
		c := h.client()
		c.DangerousInternals().DispatchEvent(&events.QR{Codes: []string{"2@a", "2@b"}})
		if pc, ok := h.next().(*bridge.PairCode); !ok || pc.QR != "2@a" {
			t.Fatalf("got %+v", pc)
		}
		c.DangerousInternals().DispatchEvent(req) // after the QR code was scanned
		return h, c
	}
	t.Run("no browser", func(t *testing.T) {
		h, _ := start(t, false)
		r, ok := h.next().(*bridge.PairResult)
		if !ok || r.OK || !strings.Contains(r.Err, "passkey") || strings.Contains(r.Err, "setup page") ||
			!strings.Contains(r.Err, "code instead") || strings.Contains(r.Err, "QR code instead") {
			t.Errorf("got %+v", r)
		}
	})
	t.Run("browser", func(t *testing.T) {
		h, c := start(t, true)
		pc, ok := h.next().(*bridge.PairCode)
		if !ok || !strings.Contains(pc.Passkey, `"rpId":"whatsapp.com"`) || !strings.Contains(pc.Passkey, `"challenge":"Y2hhbGxlbmdl"`) {
			t.Fatalf("got %+v", pc)
		}
		answer, _ := json.Marshal(map[string]any{"id": "cred", "rawId": "Y3JlZA", "type": "public-key",
			"response": map[string]any{"clientDataJSON": "e30", "authenticatorData": "AAAA", "signature": "c2ln"}})
		if err := h.a.AnswerPasskey(context.Background(), answer); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the passkey sent to WhatsApp", func() bool {
			c.mu.Lock()
			defer c.mu.Unlock()
			return len(c.passkeys) == 1 && string(c.passkeys[0].Response.Signature) == "sig"
		})
		if err := h.a.AnswerPasskey(context.Background(), answer); err == nil {
			t.Error("a second answer was taken")
		}
	})
}

// TestNewDeviceProps: the phone lists the device as waxmpp on a computer,
// and the device asks for a bounded history.
func TestNewDeviceProps(t *testing.T) {
	db, err := store.Open(filepath.Join(t.TempDir(), "waxmpp.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := New(context.Background(), testConfig(db, slog.New(slog.NewTextHandler(io.Discard, nil)), make(chan bridge.Event))); err != nil {
		t.Fatal(err)
	}
	p := wastore.DeviceProps
	hc := p.GetHistorySyncConfig()
	if p.GetOs() != "waxmpp" || p.GetPlatformType() != waCompanionReg.DeviceProps_DESKTOP || p.GetRequireFullSync() ||
		hc.GetStorageQuotaMb() != historyQuotaMB || hc.GetFullSyncDaysLimit() != historyDays || hc.GetRecentSyncDaysLimit() != historyDays ||
		hc.GetInitialSyncMaxMessagesPerChat() != historyPerChat {
		t.Errorf("device props %v", p)
	}
}

// TestHistoryWaitsForLogin: a queued blob is downloaded only once logged
// in (after a restart the queue may hold some before the connection is
// up); waiting for the login uses up none of its attempts.
func TestHistoryWaitsForLogin(t *testing.T) {
	h := newHarness(t, true)
	h.blobs = map[string][]byte{"/h1": historyBlob(t, waHistorySync.HistorySync_RECENT)}
	h.run()
	c := h.client()
	c.mu.Lock()
	c.blobs = h.blobs
	c.mu.Unlock()
	c.Disconnect()
	c.dispatch(fromPhone("N1", &waE2E.Message{ProtocolMessage: &waE2E.ProtocolMessage{Type: waE2E.ProtocolMessage_HISTORY_SYNC_NOTIFICATION.Enum(),
		HistorySyncNotification: &waE2E.HistorySyncNotification{SyncType: waE2E.HistorySyncType_RECENT.Enum(), DirectPath: proto.String("/h1")}}}))
	time.Sleep(3 * historyLoginPoll)
	c.mu.Lock()
	calls := c.dlCalls
	c.mu.Unlock()
	if calls != 0 {
		t.Errorf("%d downloads tried before login", calls)
	}
	if err := c.Connect(); err != nil {
		t.Fatal(err)
	}
	waitHistory(t, h.a, 1)
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.deleted) != 1 {
		t.Errorf("the blob was not processed: deleted %q", c.deleted)
	}
}
