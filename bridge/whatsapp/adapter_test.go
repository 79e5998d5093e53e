package whatsapp

import (
	"bytes"
	"compress/zlib"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waAdv"
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

// fakeClient stands in for *whatsmeow.Client: it records what the adapter
// asks and lets the test play WhatsApp's events through the handler.
type fakeClient struct {
	fakeDecrypter
	dev *wastore.Device

	mu         sync.Mutex
	handler    whatsmeow.EventHandlerWithSuccessStatus
	connected  bool
	connects   int
	qr         chan whatsmeow.QRChannelItem
	pairPhone  []string
	pairErr    error
	sent       []sentMsg
	peer       []*waE2E.Message
	presence   []types.Presence
	read       []string
	logouts    int
	disconnect int
	uploads    []uploaded // UploadReader calls (media_test.go)
	retries    []types.MessageInfo
	receipts   []string // protocol receipts: type id
	deleted    []string // history blobs deleted: direct path
	downloads  int      // running now
	maxDL      int      // most at once
	dlGate     chan struct{}
	dlCalls    int
	passkeys   []*types.WebAuthnResponse
	blobs      map[string][]byte       // history blobs by direct path
	onLogout   func()                  // runs inside Logout (whatsmeow may report the logout meanwhile)
	pictures   map[types.JID]picAnswer // GetProfilePictureInfo's answers (picture_test.go)
}

type picAnswer struct {
	info *types.ProfilePictureInfo
	err  error
}

type sentMsg struct {
	to  types.JID
	msg *waE2E.Message
	id  types.MessageID
}

func (f *fakeClient) Connect() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.connected = true
	f.connects++
	return nil
}
func (f *fakeClient) Disconnect() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.connected = false
	f.disconnect++
}
func (f *fakeClient) IsConnected() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.connected
}
func (f *fakeClient) IsLoggedIn() bool { return f.IsConnected() && f.dev.ID != nil }
func (f *fakeClient) SendProtocolMessageReceipt(ctx context.Context, id types.MessageID, typ types.ReceiptType) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.receipts = append(f.receipts, string(typ)+" "+id)
	return nil
}
func (f *fakeClient) DeleteMedia(ctx context.Context, mt whatsmeow.MediaType, path string, enc []byte, handle string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.deleted = append(f.deleted, path)
	return nil
}
func (f *fakeClient) SendPasskeyResponse(ctx context.Context, r *types.WebAuthnResponse) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.passkeys = append(f.passkeys, r)
	return nil
}
func (f *fakeClient) Logout(ctx context.Context) error {
	f.mu.Lock()
	f.logouts++
	hook := f.onLogout
	f.mu.Unlock()
	if hook != nil {
		hook()
	}
	return nil
}
func (f *fakeClient) AddEventHandlerWithSuccessStatus(h whatsmeow.EventHandlerWithSuccessStatus) uint32 {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.handler = h
	return 1
}

// dispatch plays one event as whatsmeow would and returns what the
// handler reported (true: whatsmeow acknowledges the message).
func (f *fakeClient) dispatch(evt any) bool {
	f.mu.Lock()
	h := f.handler
	f.mu.Unlock()
	return h(evt)
}

func (f *fakeClient) SendMessage(ctx context.Context, to types.JID, m *waE2E.Message, extra ...whatsmeow.SendRequestExtra) (whatsmeow.SendResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	id := types.MessageID(fmt.Sprintf("3EB0SENT%02d", len(f.sent)))
	if len(extra) > 0 && extra[0].ID != "" {
		id = extra[0].ID
	}
	f.sent = append(f.sent, sentMsg{to, m, id})
	return whatsmeow.SendResponse{ID: id, Timestamp: t0}, nil
}
func (f *fakeClient) SendPeerMessage(ctx context.Context, m *waE2E.Message) (whatsmeow.SendResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.peer = append(f.peer, m)
	return whatsmeow.SendResponse{ID: "PEER", Timestamp: t0}, nil
}
func (f *fakeClient) BuildEdit(chat types.JID, id types.MessageID, c *waE2E.Message) *waE2E.Message {
	return &waE2E.Message{ProtocolMessage: &waE2E.ProtocolMessage{Type: waE2E.ProtocolMessage_MESSAGE_EDIT.Enum(),
		Key: &waCommon.MessageKey{RemoteJID: proto.String(chat.String()), FromMe: proto.Bool(true), ID: proto.String(id)}, EditedMessage: c}}
}
func (f *fakeClient) BuildRevoke(chat, sender types.JID, id types.MessageID) *waE2E.Message {
	return &waE2E.Message{ProtocolMessage: &waE2E.ProtocolMessage{Type: waE2E.ProtocolMessage_REVOKE.Enum(),
		Key: &waCommon.MessageKey{RemoteJID: proto.String(chat.String()), FromMe: proto.Bool(sender.IsEmpty()), ID: proto.String(id), Participant: nonEmpty(sender)}}}
}
func (f *fakeClient) BuildReaction(chat, sender types.JID, id types.MessageID, r string) *waE2E.Message {
	return &waE2E.Message{ReactionMessage: &waE2E.ReactionMessage{Text: proto.String(r),
		Key: &waCommon.MessageKey{RemoteJID: proto.String(chat.String()), FromMe: proto.Bool(sender.IsEmpty()), ID: proto.String(id), Participant: nonEmpty(sender)}}}
}
func nonEmpty(j types.JID) *string {
	if j.IsEmpty() {
		return nil
	}
	return proto.String(j.String())
}
func (f *fakeClient) BuildHistorySyncRequest(last *types.MessageInfo, count int) *waE2E.Message {
	return (&whatsmeow.Client{}).BuildHistorySyncRequest(last, count)
}
func (f *fakeClient) MarkRead(ctx context.Context, ids []types.MessageID, ts time.Time, chat, sender types.JID, extra ...types.ReceiptType) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.read = append(f.read, fmt.Sprintf("%s %s %s", chat, sender, strings.Join(ids, ",")))
	return nil
}
func (f *fakeClient) SendChatPresence(ctx context.Context, jid types.JID, s types.ChatPresence, m types.ChatPresenceMedia) error {
	return nil
}
func (f *fakeClient) SendPresence(ctx context.Context, p types.Presence) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.presence = append(f.presence, p)
	return nil
}
func (f *fakeClient) IsOnWhatsApp(ctx context.Context, phones []string) ([]types.IsOnWhatsAppResponse, error) {
	var out []types.IsOnWhatsAppResponse
	for _, p := range phones {
		out = append(out, types.IsOnWhatsAppResponse{Query: p, JID: types.NewJID(strings.TrimPrefix(p, "+"), types.DefaultUserServer), IsIn: p != "+4915100000000"})
	}
	return out, nil
}
func (f *fakeClient) GetJoinedGroups(ctx context.Context) ([]*types.GroupInfo, error) {
	return []*types.GroupInfo{{JID: group, GroupName: types.GroupName{Name: "Family"},
		Participants: []types.GroupParticipant{{JID: bobLID, LID: bobLID, PhoneNumber: bob}}}}, nil
}
func (f *fakeClient) GetProfilePictureInfo(ctx context.Context, jid types.JID, params *whatsmeow.GetProfilePictureParams) (*types.ProfilePictureInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	a, ok := f.pictures[jid]
	if !ok {
		return nil, whatsmeow.ErrProfilePictureNotSet
	}
	return a.info, a.err
}
func (f *fakeClient) GetQRChannel(ctx context.Context) (<-chan whatsmeow.QRChannelItem, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.qr = make(chan whatsmeow.QRChannelItem, 8)
	return f.qr, nil
}
func (f *fakeClient) qrChan() chan whatsmeow.QRChannelItem {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.qr
}
func (f *fakeClient) PairPhone(ctx context.Context, phone string, push bool, ct whatsmeow.PairClientType, name string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pairPhone = append(f.pairPhone, phone)
	return "ABCD-EFGH", f.pairErr
}
func (f *fakeClient) SendPasskeyConfirmation(ctx context.Context) error { return nil }
func (f *fakeClient) DownloadMediaWithPathToFile(ctx context.Context, p string, enc, sha, key []byte, mt whatsmeow.MediaType, mms string, noHash bool, file whatsmeow.File) error {
	if p == "/fail" {
		return errors.New("404")
	}
	f.mu.Lock()
	f.dlCalls++
	up := f.connected
	f.mu.Unlock()
	if !up {
		return errors.New("no media connection: not logged in") // as whatsmeow without a socket
	}
	if err := f.expiredDownload(p); err != nil {
		return err
	}
	f.mu.Lock()
	f.downloads++
	f.maxDL = max(f.maxDL, f.downloads)
	gate := f.dlGate
	f.mu.Unlock()
	defer func() { f.mu.Lock(); f.downloads--; f.mu.Unlock() }()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if b, ok := f.blobs[p]; ok {
		_, err := file.Write(b)
		return err
	}
	_, err := file.Write([]byte(string(mt) + " " + p))
	return err
}
func (f *fakeClient) ParseWebMessage(chat types.JID, wm *waWeb.WebMessageInfo) (*events.Message, error) {
	if chat.IsEmpty() {
		chat, _ = types.ParseJID(wm.GetKey().GetRemoteJID())
	}
	sender := chat
	if p := wm.GetKey().GetParticipant(); p != "" {
		sender, _ = types.ParseJID(p)
	}
	if wm.GetKey().GetFromMe() {
		sender = own
	}
	return &events.Message{Info: types.MessageInfo{
		MessageSource: types.MessageSource{Chat: chat, Sender: sender, IsFromMe: wm.GetKey().GetFromMe(), IsGroup: chat.Server == types.GroupServer},
		ID:            wm.GetKey().GetID(), Timestamp: time.Unix(int64(wm.GetMessageTimestamp()), 0).UTC(),
	}, Message: wm.GetMessage()}, nil
}

// testConfig wires the adapter to db as cmd/waxmpp does.
func testConfig(db *store.DB, log *slog.Logger, events chan bridge.Event) Config {
	return Config{
		Devices:  db.Devices(Logger(log)),
		Inbox:    db.Queue("whatsapp-in"),
		History:  db.Queue("whatsapp-history"),
		Settings: db,
		TempDir:  filepath.Dir(db.Path()),
		Log:      log,
		Events:   events,
	}
}

// harness is an adapter on a temporary state file with fake clients.
type harness struct {
	t       *testing.T
	a       *Adapter
	db      *store.DB
	hist    *faultQueue       // the adapter's history queue
	blobs   map[string][]byte // history blobs new fake clients serve
	events  chan bridge.Event
	mu      sync.Mutex
	clients []*fakeClient
	cancel  context.CancelFunc
	done    chan error
	now     time.Time
}

func newHarness(t *testing.T, paired bool) *harness {
	t.Helper()
	db, err := store.Open(filepath.Join(t.TempDir(), "waxmpp.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ctx := context.Background()
	if paired {
		devs := db.Devices(nil)
		d := devs.NewDevice()
		id := types.NewADJID(own.User, 0, 7)
		d.ID = &id
		d.PushName = "Owner"
		d.Account = &waAdv.ADVSignedDeviceIdentity{Details: []byte{1}, AccountSignatureKey: make([]byte, 32),
			AccountSignature: make([]byte, 64), DeviceSignature: make([]byte, 64)}
		if err := devs.PutDevice(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	h := &harness{t: t, db: db, events: make(chan bridge.Event), now: t0}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg := testConfig(db, log, h.events)
	h.hist = &faultQueue{Queue: cfg.History}
	cfg.History = h.hist
	h.a, err = newAdapter(ctx, cfg, func(d *wastore.Device) client {
		h.mu.Lock()
		f := &fakeClient{dev: d, blobs: h.blobs}
		h.clients = append(h.clients, f)
		h.mu.Unlock()
		return f
	}, func(context.Context) (*wastore.WAVersionContainer, error) { return nil, errors.New("offline") })
	if err != nil {
		t.Fatal(err)
	}
	h.a.now = func() time.Time { h.mu.Lock(); defer h.mu.Unlock(); return h.now }
	return h
}

func (h *harness) setNow(t time.Time) {
	h.mu.Lock()
	h.now = t
	h.mu.Unlock()
}

func (h *harness) run() {
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	h.done = make(chan error, 1)
	go func() { h.done <- h.a.Run(ctx) }()
	h.t.Cleanup(h.stop)
	if h.a.paired() {
		// whatsmeow dispatches events only once connected, inside Run.
		waitFor(h.t, "connect", h.client().IsConnected)
	}
}

func (h *harness) stop() {
	if h.cancel == nil {
		return
	}
	h.cancel()
	select {
	case err := <-h.done:
		if err != nil {
			h.t.Errorf("Run: %v", err)
		}
	case <-time.After(5 * time.Second):
		h.t.Error("Run did not return")
	}
	h.cancel = nil
}

func (h *harness) client() *fakeClient {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.clients[len(h.clients)-1]
}

func (h *harness) next() bridge.Event {
	h.t.Helper()
	select {
	case e := <-h.events:
		h.a.Handled(e) // as the core does once it has dealt with e
		return e
	case <-time.After(5 * time.Second):
		h.t.Fatal("no event")
		return nil
	}
}

func (h *harness) none() {
	h.t.Helper()
	select {
	case e := <-h.events:
		h.t.Fatalf("unexpected event %T %+v", e, e)
	case <-time.After(50 * time.Millisecond):
	}
}

func (h *harness) status(want bridge.ConnState) *bridge.Status {
	h.t.Helper()
	e := h.next()
	s, ok := e.(*bridge.Status)
	if !ok || s.State != want {
		h.t.Fatalf("got %T %+v, want Status %d", e, e, want)
	}
	return s
}

func waitFor(t *testing.T, what string, f func() bool) {
	t.Helper()
	for i := 0; i < 500; i++ {
		if f() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

// TestPairBeforeRun: setup and waxmpp pair start Run on a goroutine and
// call Pair at once; Pair waits for Run instead of failing with "not
// running" (make image-test found the setup page failing so under QEMU).
func TestPairBeforeRun(t *testing.T) {
	h := newHarness(t, false)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := h.a.Pair(ctx, ""); !errors.Is(err, context.Canceled) {
		t.Fatalf("Pair before Run with an ended context: got %v, want it to have waited for Run until the context ended", err)
	}
	errc := make(chan error, 1)
	go func() { errc <- h.a.Pair(context.Background(), "") }()
	h.run()
	if err := <-errc; err != nil {
		t.Fatalf("Pair called as Run starts: %v", err)
	}
}

func TestPairQR(t *testing.T) {
	h := newHarness(t, false)
	h.run()
	h.status(bridge.NotPaired)
	if err := h.a.Pair(context.Background(), ""); err != nil {
		t.Fatal(err)
	}
	if err := h.a.Pair(context.Background(), ""); err == nil {
		t.Error("a second Pair during pairing: got nil error")
	}
	c := h.client()
	if !c.IsConnected() {
		t.Fatal("Pair did not connect")
	}
	qr := c.qrChan()
	qr <- whatsmeow.QRChannelItem{Event: whatsmeow.QRChannelEventCode, Code: "2@abc", Timeout: 60 * time.Second}
	if pc, ok := h.next().(*bridge.PairCode); !ok || pc.QR != "2@abc" || !pc.Expires.Equal(t0.Add(time.Minute)) {
		t.Fatalf("got %+v", pc)
	}
	qr <- whatsmeow.QRChannelItem{Event: whatsmeow.QRChannelEventCode, Code: "2@def", Timeout: 20 * time.Second}
	if pc := h.next().(*bridge.PairCode); pc.QR != "2@def" {
		t.Fatalf("got %+v", pc)
	}
	// whatsmeow stores the new identity, then reports success.
	id := types.NewADJID(own.User, 0, 9)
	c.dev.ID, c.dev.LID = &id, types.NewADJID(ownLID.User, 0, 9)
	c.dev.LID.Server = types.HiddenUserServer
	c.dispatch(&events.PairSuccess{ID: id, BusinessName: "", Platform: "android"})
	qr <- whatsmeow.QRChannelSuccess
	close(qr)
	r, ok := h.next().(*bridge.PairResult)
	if !ok || !r.OK || r.ID != bridge.UserID(own.String()) {
		t.Fatalf("got %+v", r)
	}
	c.dispatch(&events.Connected{})
	h.status(bridge.Connected)
	// The owner's own two identities, then every group's name.
	if a, ok := h.next().(*bridge.Alias); !ok || a.Phone != bridge.UserID(own.String()) {
		t.Fatalf("got %+v", a)
	}
	if ci, ok := h.next().(*bridge.ChatInfo); !ok || ci.Name != "Family" {
		t.Fatalf("got %+v", ci)
	}
	if a, ok := h.next().(*bridge.Alias); !ok || a.LID != bridge.UserID(bobLID.String()) {
		t.Fatalf("got %+v", a)
	}
	c.dispatch(&events.Connected{}) // a reconnect: groups are not fetched again
	h.status(bridge.Connected)
	h.none()
	waitFor(t, "unavailable presence", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return len(c.presence) == 2 && c.presence[0] == types.PresenceUnavailable
	})
	if err := h.a.Pair(context.Background(), ""); !errors.Is(err, bridge.ErrAlreadyPaired) {
		t.Errorf("Pair when paired: got %v, want ErrAlreadyPaired", err)
	}
}

func TestPairPhone(t *testing.T) {
	h := newHarness(t, false)
	h.run()
	h.status(bridge.NotPaired)
	for _, bad := range []string{"0170 1234567", "+49abc", "123", "+1234567890123456"} {
		if err := h.a.Pair(context.Background(), bad); !errors.Is(err, ErrBadNumber) {
			t.Errorf("Pair(%q): got %v, want ErrBadNumber", bad, err)
		}
	}
	if err := h.a.Pair(context.Background(), "+49 (170) 123-4567"); err != nil {
		t.Fatal(err)
	}
	c := h.client()
	qr := c.qrChan()
	qr <- whatsmeow.QRChannelItem{Event: whatsmeow.QRChannelEventCode, Code: "2@abc", Timeout: time.Minute}
	qr <- whatsmeow.QRChannelItem{Event: whatsmeow.QRChannelEventCode, Code: "2@def", Timeout: time.Minute}
	pc, ok := h.next().(*bridge.PairCode)
	if !ok || pc.LinkCode != "ABCD-EFGH" || pc.QR != "" || !pc.Expires.Equal(t0.Add(linkCodeValid)) {
		t.Fatalf("got %+v", pc)
	}
	qr <- whatsmeow.QRChannelTimeout
	r := h.next().(*bridge.PairResult)
	if r.OK || !strings.Contains(r.Err, "link code was not entered in time") {
		t.Fatalf("got %+v", r)
	}
	c.mu.Lock()
	got := strings.Join(c.pairPhone, " ")
	c.mu.Unlock()
	if got != "491701234567" {
		t.Errorf("PairPhone got %q, want one call with 491701234567", got)
	}
	// The attempt is over: a new one may start.
	waitFor(t, "pairing to end", func() bool { h.a.mu.Lock(); defer h.a.mu.Unlock(); return h.a.pairing == nil })
	if err := h.a.Pair(context.Background(), "+491701234567"); err != nil {
		t.Fatal(err)
	}
}

func TestPairPasskey(t *testing.T) {
	h := newHarness(t, false)
	h.run()
	h.status(bridge.NotPaired)
	if err := h.a.Pair(context.Background(), ""); err != nil {
		t.Fatal(err)
	}
	h.client().qrChan() <- whatsmeow.QRChannelItem{Event: whatsmeow.QRChannelEventPasskeyRequest, PasskeyRequest: &events.PairPasskeyRequest{}}
	r := h.next().(*bridge.PairResult)
	if r.OK || !strings.Contains(r.Err, "passkey") {
		t.Fatalf("got %+v", r)
	}
}

// TestLifeEvents plays whatsmeow's life events to a linked adapter and
// checks what the owner is told.
func TestLifeEvents(t *testing.T) {
	cases := []struct {
		evt    any
		state  bridge.ConnState
		reason string
	}{
		{&events.Disconnected{}, bridge.Disconnected, "connection lost"},
		{&events.KeepAliveTimeout{ErrorCount: 3}, bridge.Disconnected, "3 keep-alive"},
		{&events.KeepAliveRestored{}, bridge.Connected, "again"},
		{&events.StreamReplaced{}, bridge.StreamReplaced, "replaced"},
		{&events.ClientOutdated{}, bridge.Outdated, "outdated"},
		{&events.ConnectFailure{Reason: events.ConnectFailureServiceUnavailable, Message: "busy"}, bridge.Disconnected, "refused"},
		{&events.TemporaryBan{Code: events.TempBanSentToTooManyPeople, Expire: 36 * time.Hour}, bridge.TempBanned, "you sent too many messages to people who don't have you in their address books"},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%T", tc.evt), func(t *testing.T) {
			h := newHarness(t, true)
			h.run()
			waitFor(t, "connect", h.client().IsConnected)
			h.client().dispatch(tc.evt)
			s := h.status(tc.state)
			if !strings.Contains(s.Reason, tc.reason) {
				t.Errorf("reason %q lacks %q", s.Reason, tc.reason)
			}
			if tc.state == bridge.TempBanned && !s.Until.Equal(t0.Add(36*time.Hour)) {
				t.Errorf("until %v", s.Until)
			}
		})
	}
}

func TestBanReconnects(t *testing.T) {
	h := newHarness(t, true)
	h.run()
	c := h.client()
	c.Disconnect() // whatsmeow drops the connection on a ban
	c.dispatch(&events.TemporaryBan{Code: events.TempBanBlockedByUsers, Expire: -time.Minute + 20*time.Millisecond})
	h.status(bridge.TempBanned)
	waitFor(t, "reconnect after the ban", func() bool { c.mu.Lock(); defer c.mu.Unlock(); return c.connects == 2 && c.connected })
}

func TestOutdatedRefetchesVersion(t *testing.T) {
	orig := wastore.GetWAVersion()
	t.Cleanup(func() { wastore.SetWAVersion(orig) })
	h := newHarness(t, true)
	newer := wastore.WAVersionContainer{orig[0], orig[1] + 2, 1}
	fetches := 0
	h.a.fetchVersion = func(context.Context) (*wastore.WAVersionContainer, error) {
		h.mu.Lock()
		defer h.mu.Unlock()
		fetches++
		if fetches == 1 {
			return nil, errors.New("offline at start-up")
		}
		return &newer, nil
	}
	h.run()
	c := h.client()
	c.Disconnect()
	c.dispatch(&events.ClientOutdated{})
	h.status(bridge.Outdated)
	waitFor(t, "reconnect with the new version", func() bool { c.mu.Lock(); defer c.mu.Unlock(); return c.connects == 2 && c.connected })
	if wastore.GetWAVersion() != newer {
		t.Errorf("version %v", wastore.GetWAVersion())
	}
}

func TestLogoutMidSession(t *testing.T) {
	h := newHarness(t, true)
	h.run()
	waitFor(t, "connect", h.client().IsConnected)
	old := h.client()
	old.dispatch(&events.Connected{})
	h.status(bridge.Connected)
	h.next() // the group list: ChatInfo
	h.next() // and its member's Alias
	old.dispatch(&events.LoggedOut{Reason: events.ConnectFailureLoggedOut})
	s := h.status(bridge.LoggedOut)
	if s.Reason != "the device was removed from Linked devices on the phone" {
		t.Errorf("reason %q", s.Reason)
	}
	if h.client() == old {
		t.Fatal("no fresh client after logout")
	}
	if _, _, err := h.a.SendText(context.Background(), bridge.ChatID(alice.String()), "hi", bridge.SendOptions{}); !errors.Is(err, bridge.ErrNotPaired) {
		t.Errorf("SendText after logout: %v, want ErrNotPaired", err)
	}
	// Late events of the old client are ignored.
	old.dispatch(&events.Connected{})
	h.none()
	// Pairing works again.
	if err := h.a.Pair(context.Background(), ""); err != nil {
		t.Fatalf("Pair after logout: %v", err)
	}
	waitFor(t, "old client disconnected", func() bool { old.mu.Lock(); defer old.mu.Unlock(); return old.disconnect > 0 })
}

func TestLogoutCommand(t *testing.T) {
	h := newHarness(t, true)
	h.run()
	c := h.client()
	if err := h.a.Logout(context.Background()); err != nil {
		t.Fatal(err)
	}
	h.status(bridge.LoggedOut)
	if c.logouts != 1 {
		t.Errorf("logouts %d", c.logouts)
	}
	if err := h.a.Logout(context.Background()); !errors.Is(err, bridge.ErrNotPaired) {
		t.Errorf("second Logout: %v", err)
	}
}

func TestPhoneOffline13Days(t *testing.T) {
	h := newHarness(t, true)
	h.run()
	c := h.client()
	ctx := context.Background()
	// The phone sends a message at t0.
	c.dispatch(msg(t, "text", types.MessageInfo{MessageSource: types.MessageSource{Chat: alice, Sender: types.NewADJID(own.User, 0, 0), IsFromMe: true}, ID: "P1", Timestamp: t0}))
	if m := h.next().(*bridge.Message); !m.Ref.FromMe {
		t.Fatalf("got %+v", m)
	}
	day := 24 * time.Hour
	peers := func() int { c.mu.Lock(); defer c.mu.Unlock(); return len(c.peer) }
	for d := 1; d <= 13; d++ {
		h.setNow(t0.Add(time.Duration(d)*day + time.Hour))
		h.a.checkPhone(ctx)
		switch {
		case d < 10 && peers() != 0:
			t.Fatalf("day %d: phone asked too early", d)
		case d >= 10 && peers() != d-9:
			t.Fatalf("day %d: %d wake-ups, want %d", d, peers(), d-9)
		}
		if d >= 12 {
			s := h.status(bridge.PhoneOffline)
			if !s.PhoneLastSeen.Equal(t0) || s.Reason != fmt.Sprintf("phone not online for %d days", d) {
				t.Errorf("got %+v", s)
			}
		} else {
			h.none()
		}
		h.a.checkPhone(ctx) // an hour later: nothing new
		h.none()
	}
	if got := c.peer[0].GetProtocolMessage().GetPeerDataOperationRequestMessage(); got == nil {
		t.Errorf("wake-up is not a peer request: %v", c.peer[0])
	}
	// The last-seen time survives a restart.
	if v, ok := h.a.timeSetting(settingPhoneSeen); !ok || !v.Equal(t0) {
		t.Errorf("stored last seen %v %v", v, ok)
	}
	// The phone reads a message: it is back.
	c.dispatch(&events.Receipt{MessageSource: types.MessageSource{Chat: alice, Sender: types.NewADJID(own.User, 0, 0), IsFromMe: true},
		MessageIDs: []string{"X"}, Type: types.ReceiptTypeReadSelf, Timestamp: t0.Add(13 * day)})
	if s := h.status(bridge.Connected); s.Reason != "phone online again" {
		t.Errorf("got %+v", s)
	}
}

// TestLIDSwitch follows a conversation whose ids switch from phone number
// to LID half-way: the core is told once that both are one person, and the
// LID store resolves either.
func TestLIDSwitch(t *testing.T) {
	h := newHarness(t, true)
	h.run()
	c := h.client()
	c.dispatch(msg(t, "text", types.MessageInfo{MessageSource: types.MessageSource{Chat: bob, Sender: bob}, ID: "M1", Timestamp: t0}))
	if m := h.next().(*bridge.Message); m.Ref.Chat != bridge.ChatID(bob.String()) {
		t.Fatalf("got %+v", m.Ref)
	}
	for i, id := range []string{"M2", "M3"} {
		c.dispatch(msg(t, "text", types.MessageInfo{MessageSource: types.MessageSource{Chat: bobLID, Sender: bobLID, SenderAlt: bob, AddressingMode: types.AddressingModeLID}, ID: id, Timestamp: t0}))
		if i == 0 {
			a, ok := h.next().(*bridge.Alias)
			if !ok || a.LID != bridge.UserID(bobLID.String()) || a.Phone != bridge.UserID(bob.String()) {
				t.Fatalf("got %+v", a)
			}
		}
		if m := h.next().(*bridge.Message); m.Ref.Chat != bridge.ChatID(bobLID.String()) || m.Ref.ID != id {
			t.Fatalf("got %+v", m.Ref)
		}
	}
	ctx := context.Background()
	for _, id := range []bridge.UserID{bridge.UserID(bob.String()), bridge.UserID(bobLID.String())} {
		lid, pn, err := h.a.Resolve(ctx, id)
		if err != nil || lid != bridge.UserID(bobLID.String()) || pn != bridge.UserID(bob.String()) {
			t.Errorf("Resolve(%s) = %s, %s, %v", id, lid, pn, err)
		}
	}
}

// TestHandlerNeverBlocks: with nobody reading the core's channel, the
// handler still returns after one durable write, and every event arrives
// later, in order; each leaves the inbox when handled.
func TestHandlerNeverBlocks(t *testing.T) {
	h := newHarness(t, true)
	h.run()
	c := h.client()
	const n = 2000
	// Blocked, not slow: each call returns after its own durable write
	// (speed is the benchmarks' business); a call that makes no progress
	// for 30 s waits for a reader that never comes.
	var done atomic.Int64
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		for i := range n {
			c.dispatch(&events.Presence{From: alice, Unavailable: i%2 == 0})
			done.Add(1)
		}
	}()
	for last, at := int64(-1), time.Now(); ; {
		select {
		case <-finished:
		case <-time.After(100 * time.Millisecond):
			if d := done.Load(); d != last {
				last, at = d, time.Now()
			} else if time.Since(at) > 30*time.Second {
				t.Fatalf("the handler blocked after %d of %d events with nobody reading", d, n)
			}
			continue
		}
		break
	}
	if p := h.a.Pending(); p != n {
		t.Errorf("Pending = %d, want %d", p, n)
	}
	for i := range n {
		p := h.next().(*bridge.Presence)
		if p.Online != (i%2 == 1) {
			t.Fatalf("event %d out of order", i)
		}
	}
	waitFor(t, "Pending to reach 0", func() bool { return h.a.Pending() == 0 })
}

func TestRetryAfterUndecryptable(t *testing.T) {
	h := newHarness(t, true)
	h.run()
	c := h.client()
	info := dmInfo("U1", alice, false)
	c.dispatch(&events.UndecryptableMessage{Info: info})
	if u := h.next().(*bridge.Undecryptable); u.Ref.ID != "U1" {
		t.Fatalf("got %+v", u)
	}
	c.dispatch(msg(t, "text", info))
	if m := h.next().(*bridge.Message); !m.Retry || m.Ref.ID != "U1" {
		t.Fatalf("got %+v", m)
	}
	c.dispatch(msg(t, "text", dmInfo("U2", alice, false)))
	if m := h.next().(*bridge.Message); m.Retry {
		t.Fatalf("a plain message marked Retry")
	}
}

func TestSends(t *testing.T) {
	h := newHarness(t, true)
	h.run()
	c := h.client()
	ctx := context.Background()
	chat := bridge.ChatID(group.String())
	ref, at, err := h.a.SendText(ctx, chat, "yes", bridge.SendOptions{
		ReplyTo:    &bridge.MsgRef{Chat: chat, Sender: bridge.UserID(bob.String()), ID: "Q1"},
		QuotedText: "lunch?", Mentions: []bridge.UserID{bridge.UserID(bob.String())}, ID: "3EB0FIXED",
	})
	if err != nil || ref.ID != "3EB0FIXED" || !ref.FromMe || ref.Sender != bridge.UserID(own.String()) || !at.Equal(t0) {
		t.Fatalf("SendText = %+v %v %v", ref, at, err)
	}
	ci := c.sent[0].msg.GetExtendedTextMessage().GetContextInfo()
	if ci.GetStanzaID() != "Q1" || ci.GetParticipant() != bob.String() || ci.GetQuotedMessage().GetConversation() != "lunch?" || ci.GetMentionedJID()[0] != bob.String() {
		t.Errorf("context %v", ci)
	}
	// Edits go out as whatsmeow builds them; the 20-minute window is the
	// core's (bridge's TestEditWindow).
	if err := h.a.Edit(ctx, bridge.MsgRef{Chat: chat, ID: "NEW", FromMe: true}, "fixed"); err != nil {
		t.Errorf("edit: %v", err)
	}
	if err := h.a.Revoke(ctx, bridge.MsgRef{Chat: chat, ID: "NEW", FromMe: true}); err != nil {
		t.Error(err)
	}
	if err := h.a.React(ctx, bridge.MsgRef{Chat: chat, Sender: bridge.UserID(bob.String()), ID: "Q1"}, "👍"); err != nil {
		t.Error(err)
	}
	if _, _, err := h.a.SendLocation(ctx, chat, bridge.Geo{Lat: 1.5, Lon: 2.5, Name: "here"}, bridge.SendOptions{}); err != nil {
		t.Error(err)
	}
	if err := h.a.MarkRead(ctx, chat, bridge.UserID(bob.String()), []string{"A", "B"}, t0); err != nil {
		t.Error(err)
	}
	got := []string{}
	for _, s := range c.sent[1:] {
		m := s.msg
		switch {
		case m.GetProtocolMessage().GetType() == waE2E.ProtocolMessage_MESSAGE_EDIT:
			got = append(got, "edit "+m.GetProtocolMessage().GetKey().GetID()+" "+m.GetProtocolMessage().GetEditedMessage().GetConversation())
		case m.GetProtocolMessage() != nil:
			got = append(got, "revoke "+m.GetProtocolMessage().GetKey().GetID())
		case m.GetReactionMessage() != nil:
			got = append(got, "react "+m.GetReactionMessage().GetKey().GetParticipant()+" "+m.GetReactionMessage().GetText())
		case m.GetLocationMessage() != nil:
			got = append(got, fmt.Sprintf("location %v,%v %s", m.GetLocationMessage().GetDegreesLatitude(), m.GetLocationMessage().GetDegreesLongitude(), m.GetLocationMessage().GetName()))
		}
	}
	want := []string{"edit NEW fixed", "revoke NEW", "react " + bob.String() + " 👍", "location 1.5,2.5 here"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("sent\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if c.read[0] != group.String()+" "+bob.String()+" A,B" {
		t.Errorf("read %v", c.read)
	}
	if id, ok, err := h.a.Lookup(ctx, "+49 170 9999999"); err != nil || !ok || id != bridge.UserID(alice.String()) {
		t.Errorf("Lookup = %v %v %v", id, ok, err)
	}
	if _, ok, err := h.a.Lookup(ctx, "+4915100000000"); err != nil || ok {
		t.Errorf("Lookup of a number not on WhatsApp = %v %v", ok, err)
	}
	dl := filepath.Join(t.TempDir(), "dl")
	if n, err := h.a.Download(ctx, &bridge.Media{Handle: `{"t":"image","p":"/v/x","k":"AA=="}`}, dl); err != nil || n != 24 {
		t.Fatal(n, err)
	}
	if b, _ := os.ReadFile(dl); string(b) != "WhatsApp Image Keys /v/x" {
		t.Errorf("download %q", b)
	}
	if _, err := h.a.Download(ctx, &bridge.Media{Handle: `{"t":"video","p":"/fail"}`}, dl); err == nil {
		t.Error("failed download: no error")
	}
	// No temporary file is left behind.
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(h.db.Path()), ".waxmpp-*")); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
	if _, err := h.a.Download(ctx, &bridge.Media{Handle: `{"t":"image","p":"http://evil"}`}, dl); err == nil {
		t.Error("download with a bad handle: no error")
	}
}

// TestRequestHistory: the request the phone gets names the anchor the
// core chose (the core keeps each chat's oldest message).
func TestRequestHistory(t *testing.T) {
	h := newHarness(t, true)
	h.run()
	c := h.client()
	ctx := context.Background()
	chat := bridge.ChatID(alice.String())
	if err := h.a.RequestHistory(ctx, bridge.HistoryAnchor{Ref: bridge.MsgRef{Chat: chat}}, 20); !errors.Is(err, bridge.ErrNotFound) {
		t.Errorf("no anchor: %v", err)
	}
	before := bridge.HistoryAnchor{Ref: bridge.MsgRef{Chat: chat, ID: "H1"}, Time: t0.Add(-time.Hour)}
	if err := h.a.RequestHistory(ctx, before, 20); err != nil {
		t.Fatal(err)
	}
	r := c.peer[0].GetProtocolMessage().GetPeerDataOperationRequestMessage().GetHistorySyncOnDemandRequest()
	if r.GetOldestMsgID() != "H1" || r.GetOnDemandMsgCount() != 20 || r.GetChatJID() != alice.String() || r.GetOldestMsgTimestampMS() != t0.Add(-time.Hour).Unix() || r.GetOldestMsgFromMe() {
		t.Errorf("request %v", r)
	}
}

// historyBlob builds a compressed history sync as the phone sends it.
func historyBlob(t testing.TB, typ waHistorySync.HistorySync_HistorySyncType) []byte {
	hs := &waHistorySync.HistorySync{
		SyncType: typ.Enum(),
		Conversations: []*waHistorySync.Conversation{{
			ID:   proto.String(group.String()),
			Name: proto.String("Family"),
			Messages: []*waHistorySync.HistorySyncMsg{{Message: &waWeb.WebMessageInfo{
				Key:              &waCommon.MessageKey{RemoteJID: proto.String(group.String()), ID: proto.String("OLD1"), Participant: proto.String(bob.String())},
				Message:          &waE2E.Message{Conversation: proto.String("from last year")},
				MessageTimestamp: proto.Uint64(uint64(t0.Add(-365 * 24 * time.Hour).Unix())),
			}}},
		}},
		Pushnames:                []*waHistorySync.Pushname{{ID: proto.String(alice.String()), Pushname: proto.String("Ali")}},
		PhoneNumberToLidMappings: []*waHistorySync.PhoneNumberToLIDMapping{{PnJID: proto.String(bob.String()), LidJID: proto.String(bobLID.String())}},
	}
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

func TestHistorySync(t *testing.T) {
	for _, tc := range []struct {
		typ   waE2E.HistorySyncType
		htyp  waHistorySync.HistorySync_HistorySyncType
		relay bool
	}{
		{waE2E.HistorySyncType_INITIAL_BOOTSTRAP, waHistorySync.HistorySync_INITIAL_BOOTSTRAP, false},
		{waE2E.HistorySyncType_ON_DEMAND, waHistorySync.HistorySync_ON_DEMAND, true},
	} {
		t.Run(tc.typ.String(), func(t *testing.T) {
			h := newHarness(t, true)
			h.run()
			c := h.client()
			c.dispatch(&events.Message{Info: dmInfo("HS", own, true), Message: &waE2E.Message{ProtocolMessage: &waE2E.ProtocolMessage{
				Type: waE2E.ProtocolMessage_HISTORY_SYNC_NOTIFICATION.Enum(),
				HistorySyncNotification: &waE2E.HistorySyncNotification{SyncType: tc.typ.Enum(),
					InitialHistBootstrapInlinePayload: historyBlob(t, tc.htyp)},
			}}})
			var got []string
			want := 3
			if tc.relay {
				want = 4
			}
			for range want {
				switch e := h.next().(type) {
				case *bridge.Message:
					if !e.History || e.Text != "from last year" || e.Ref.Sender != bridge.UserID(bob.String()) {
						t.Errorf("history message %+v", e)
					}
					got = append(got, "message")
				case *bridge.ChatInfo:
					got = append(got, "chat "+e.Name)
				case *bridge.ContactInfo:
					got = append(got, "push "+e.PushName)
				case *bridge.Alias:
					got = append(got, "alias")
				default:
					t.Errorf("unexpected %T", e)
				}
			}
			h.none()
			g := strings.Join(got, ",")
			if tc.relay && g != "message,chat Family,push Ali,alias" || !tc.relay && g != "chat Family,push Ali,alias" {
				t.Errorf("got %s", g)
			}
		})
	}
}

func TestWebVersion(t *testing.T) {
	orig := wastore.GetWAVersion()
	t.Cleanup(func() { wastore.SetWAVersion(orig) })
	db, err := store.Open(filepath.Join(t.TempDir(), "waxmpp.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	newer := wastore.WAVersionContainer{orig[0], orig[1] + 1, 7}
	mk := func(d *wastore.Device) client { return &fakeClient{dev: d} }
	a, err := newAdapter(context.Background(), testConfig(db, log, nil), mk, func(context.Context) (*wastore.WAVersionContainer, error) { return &newer, nil })
	if err != nil {
		t.Fatal(err)
	}
	a.updateVersion(context.Background())
	if s, _, _ := db.Blob(settingVersion); string(s) != newer.String() || wastore.GetWAVersion() != newer {
		t.Fatalf("cached %q, in use %v", s, wastore.GetWAVersion())
	}
	// Offline at the next start: the cached version is used.
	wastore.SetWAVersion(orig)
	a.fetchVersion = func(context.Context) (*wastore.WAVersionContainer, error) { return nil, errors.New("no network") }
	a.updateVersion(context.Background())
	if wastore.GetWAVersion() != newer {
		t.Errorf("offline start uses %v, want cached %v", wastore.GetWAVersion(), newer)
	}
}

func TestNormalizePhoneForms(t *testing.T) {
	for in, want := range map[string]string{
		"+491701234567": "491701234567", "491701234567": "491701234567", "0049 170 1234567": "491701234567",
		"+1 (555) 010-0001": "15550100001", "0170 1234567": "", "+49 170 abc": "", "+1": "",
	} {
		got, err := NormalizePhone(in)
		if got != want || (want == "") != (err != nil) {
			t.Errorf("NormalizePhone(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

// TestPhoneOfflineAtStart: waxmpp was itself down while the phone stayed
// offline; the owner is told at start-up, not an hour later.
func TestPhoneOfflineAtStart(t *testing.T) {
	h := newHarness(t, true)
	if err := h.a.putTime(settingPhoneSeen, t0.Add(-13*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	// Reload, as a restart would.
	a, err := newAdapter(context.Background(), testConfig(h.db, slog.New(slog.NewTextHandler(io.Discard, nil)), h.events), h.a.newClient, h.a.fetchVersion)
	if err != nil {
		t.Fatal(err)
	}
	a.now = h.a.now
	h.a = a
	h.run()
	h.status(bridge.PhoneOffline)
	if c := h.client(); len(c.peer) != 1 {
		t.Errorf("%d wake-up requests, want 1", len(c.peer))
	}
}
