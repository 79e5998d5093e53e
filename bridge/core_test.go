package bridge_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"waxmpp/bridge"
	"waxmpp/bridge/qr"
	"waxmpp/bridge/store"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/core")

const (
	alice  = "491111@s.whatsapp.net"
	bob    = "492222@s.whatsapp.net"
	carol  = "493333@s.whatsapp.net"
	family = "120363001@g.us"
	work   = "120363002@g.us"
	me     = "490000@s.whatsapp.net"
)

func TestMain(m *testing.M) {
	flag.Parse()
	time.Local = time.UTC // golden files show times
	os.Exit(m.Run())
}

// *store.DB is the core's Store.
var _ bridge.Store = (*store.DB)(nil)

var t0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

// fakeWA records what the core asks of WhatsApp.
type fakeWA struct {
	sync    func() // waits until the core handled what it was given
	mu      sync.Mutex
	calls   []string
	reads   []string // MarkRead calls, apart: writing to a chat marks it read
	n       int
	sendErr error
	editErr error
	lookup  map[string]bridge.UserID
	pairErr error
	history []bridge.HistoryAnchor            // the anchors of history requests
	box     inbox[bridge.Event]               // delivered events, until Handled
	locIDs  []string                          // the ids locations were sent with
	media   *fakeMedia                        // media_test.go; nil: no media
	textIDs []string                          // the ids texts were sent with
	pics    map[bridge.ChatID]*bridge.Picture // ChatPicture's answers (rooms_test.go)
	picErr  error
}

func (f *fakeWA) log(format string, a ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, fmt.Sprintf(format, a...))
}

func (f *fakeWA) take() []string {
	f.sync()
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.calls
	f.calls = nil
	return c
}

func (f *fakeWA) SendText(_ context.Context, chat bridge.ChatID, text string, o bridge.SendOptions) (bridge.MsgRef, time.Time, error) {
	if f.sendErr != nil {
		return bridge.MsgRef{}, time.Time{}, f.sendErr
	}
	reply := ""
	if o.ReplyTo != nil {
		reply = " reply=" + o.ReplyTo.ID
	}
	f.log("SendText %s %q%s", chat, text, reply)
	f.mu.Lock()
	f.textIDs = append(f.textIDs, o.ID)
	f.mu.Unlock()
	id := o.ID
	if id == "" {
		f.mu.Lock()
		f.n++
		id = fmt.Sprintf("SENT%d", f.n)
		f.mu.Unlock()
	}
	return bridge.MsgRef{Chat: chat, Sender: me, ID: id, FromMe: true}, t0, nil
}

func (f *fakeWA) SendLocation(_ context.Context, chat bridge.ChatID, g bridge.Geo, o bridge.SendOptions) (bridge.MsgRef, time.Time, error) {
	f.log("SendLocation %s %v,%v", chat, g.Lat, g.Lon)
	f.mu.Lock()
	f.locIDs = append(f.locIDs, o.ID)
	f.mu.Unlock()
	id := o.ID
	if id == "" {
		id = "LOC1"
	}
	return bridge.MsgRef{Chat: chat, Sender: me, ID: id, FromMe: true}, t0, nil
}

func (f *fakeWA) Edit(_ context.Context, ref bridge.MsgRef, text string) error {
	if f.editErr != nil {
		return f.editErr
	}
	f.log("Edit %s %s %q", ref.Chat, ref.ID, text)
	return nil
}

func (f *fakeWA) Revoke(_ context.Context, ref bridge.MsgRef) error {
	f.log("Revoke %s %s", ref.Chat, ref.ID)
	return nil
}

func (f *fakeWA) React(_ context.Context, t bridge.MsgRef, emoji string) error {
	f.log("React %s %s %s %q", t.Chat, t.Sender, t.ID, emoji)
	return nil
}

func (f *fakeWA) MarkRead(_ context.Context, chat bridge.ChatID, sender bridge.UserID, ids []string, _ time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads = append(f.reads, fmt.Sprintf("MarkRead %s %s %v", chat, sender, ids))
	return nil
}

// takeReads returns the MarkRead calls since the last call.
func (f *fakeWA) takeReads() []string {
	f.sync()
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.reads
	f.reads = nil
	return r
}

func (f *fakeWA) SetTyping(_ context.Context, chat bridge.ChatID, s bridge.TypingState) error {
	f.log("SetTyping %s %d", chat, s)
	return nil
}

func (f *fakeWA) SetOnline(context.Context, bool) error { return nil }

func (f *fakeWA) Pair(_ context.Context, phone string) error {
	if f.pairErr != nil {
		return f.pairErr
	}
	f.log("Pair %q", phone)
	return nil
}

func (f *fakeWA) Logout(context.Context) error { f.log("Logout"); return nil }

func (f *fakeWA) Lookup(_ context.Context, phone string) (bridge.UserID, bool, error) {
	f.log("Lookup %s", phone)
	id, ok := f.lookup[phone]
	return id, ok, nil
}

// ChatPicture answers from pics; its calls are not logged (rooms ask it).
func (f *fakeWA) ChatPicture(_ context.Context, chat bridge.ChatID) (*bridge.Picture, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.pics[chat], f.picErr
}

func (f *fakeWA) RequestHistory(_ context.Context, before bridge.HistoryAnchor, n int) error {
	f.log("RequestHistory %s %d", before.Ref.Chat, n)
	f.mu.Lock()
	f.history = append(f.history, before)
	f.mu.Unlock()
	return nil
}

func (f *fakeWA) Handled(ev bridge.Event) { f.box.handled(ev) }

// fakeXMPP records what the core sends the owner.
type fakeXMPP struct {
	mu       sync.Mutex
	sent     []bridge.Outgoing
	now      []bridge.Outgoing
	presence []string
	uploads  int
	n        int
	// gate, when set, holds every upload until it is closed (a slow
	// server); started counts uploads that began.
	gate     chan struct{}
	started  int
	returned int
	box      inbox[bridge.OwnerEvent] // delivered owner events, until Handled
	sendErr  error                    // Send fails with it (a full disk)
	files    *fakeUploads             // media_test.go; nil: QR codes only
	caveat   string                   // Stats' Caveat
}

func (f *fakeXMPP) Send(ms ...bridge.Outgoing) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.sendErr != nil {
		return nil, f.sendErr
	}
	var ids []string
	for _, m := range ms {
		if m.ID == "" {
			f.n++
			m.ID = fmt.Sprintf("bot%d", f.n)
		}
		f.sent = append(f.sent, m)
		ids = append(ids, m.ID)
	}
	return ids, nil
}

func (f *fakeXMPP) SendNow(m bridge.Outgoing) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = append(f.now, m)
	return nil
}

func (f *fakeXMPP) SetPresence(show, status string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.presence = append(f.presence, show+"|"+status)
}

func (f *fakeXMPP) Upload(ctx context.Context, name, ct string, size int64, r io.Reader) (string, error) {
	if f.files != nil {
		return f.files.upload(ctx, name, ct, size, r)
	}
	f.mu.Lock()
	f.started++
	gate := f.gate
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.returned++
		f.mu.Unlock()
	}()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
	b, _ := io.ReadAll(r)
	if int64(len(b)) != size || !strings.HasPrefix(string(b), "\x89PNG") {
		return "", errors.New("bad upload")
	}
	f.mu.Lock()
	f.uploads++
	f.mu.Unlock()
	return "https://up.example/" + name, nil
}

func (f *fakeXMPP) Handled(m bridge.OwnerEvent) { f.box.handled(m) }

func (f *fakeXMPP) Stats() (bridge.XMPPStats, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return bridge.XMPPStats{Connected: true, Queued: 2, Unconfirmed: 1, Lag: 3 * time.Second, Reconnects: 4, Caveat: f.caveat}, nil
}

func (f *fakeXMPP) take() []bridge.Outgoing {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.sent
	f.sent = nil
	return s
}

func (f *fakeXMPP) takeNow() []bridge.Outgoing {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.now
	f.now = nil
	return s
}

// harness runs a Core on a real store in a temp dir. Its channels are
// unbuffered, so when a send returns the core has taken the item, and a
// command's answer means everything before it was handled.
type harness struct {
	t      *testing.T
	path   string
	db     *store.DB
	st     *faultStore // the core's store: db, with failures on demand
	log    logBuffer   // the core's log
	wa     *fakeWA
	x      *fakeXMPP
	ev     chan bridge.Event
	own    chan bridge.OwnerEvent
	cmds   chan bridge.Command
	cancel context.CancelFunc
	done   chan error
	mu     sync.Mutex
	clock  time.Time
	seq    int
	files  bridge.Files // media_test.go
	aac    string       // CoreConfig.VoiceAAC
	// rooms and roomsAuto go to the core's config (rooms_test.go).
	rooms     bridge.Rooms
	roomsAuto bool
	doctor    bridge.Doctor       // CoreConfig.Doctor (findings_test.go)
	invite    bridge.InviteConfig // what /invite sends
	idle      func()              // CoreConfig.Idle
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	return newHarnessWith(t, nil)
}

// newHarnessWith is newHarness with some fields set before the core starts.
func newHarnessWith(t *testing.T, set func(*harness)) *harness {
	t.Helper()
	h := &harness{t: t, path: filepath.Join(t.TempDir(), "w.db"), wa: &fakeWA{lookup: map[string]bridge.UserID{"+493333": carol}}, x: &fakeXMPP{}, clock: t0,
		invite: bridge.InviteConfig{Address: "me@example.org"}}
	if set != nil {
		set(h)
	}
	h.wa.sync = h.sync
	h.start()
	t.Cleanup(h.stop)
	return h
}

func (h *harness) now() time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.clock
}

func (h *harness) advance(d time.Duration) {
	h.mu.Lock()
	h.clock = h.clock.Add(d)
	h.mu.Unlock()
}

func (h *harness) start() {
	h.t.Helper()
	db, err := store.Open(h.path, store.Options{NoSync: true})
	if err != nil {
		h.t.Fatal(err)
	}
	h.db = db
	h.st = &faultStore{DB: db}
	h.ev = make(chan bridge.Event)
	h.own = make(chan bridge.OwnerEvent)
	h.cmds = make(chan bridge.Command)
	core, err := bridge.NewCore(bridge.CoreConfig{
		WhatsApp: h.wa, XMPP: h.x, Store: h.st, Events: h.ev, Owner: h.own, Commands: h.cmds, Rooms: h.rooms, RoomsAuto: h.roomsAuto,
		Files: h.files, VoiceAAC: h.aac, Doctor: h.doctor, Idle: h.idle,
		Version: "1.2.3", Now: h.now, QR: qr.PNG, Invite: h.invite, Log: slog.New(slog.NewTextHandler(&h.log, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		h.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	h.done = make(chan error, 1)
	go func() { h.done <- core.Run(ctx) }()
}

func (h *harness) stop() {
	if h.cancel == nil {
		return
	}
	h.cancel()
	if err := <-h.done; !errors.Is(err, context.Canceled) {
		h.t.Errorf("Run = %v, want context.Canceled", err)
	}
	h.cancel = nil
	if err := h.db.Close(); err != nil {
		h.t.Error(err)
	}
}

// restart stops the core, closes and reopens the store, and starts again.
// As the adapters do, WhatsApp then delivers again the events the core did
// not acknowledge, and the XMPP side replays the owner's messages it did
// not acknowledge (from the server's archive).
func (h *harness) restart() {
	h.stop()
	h.start()
	h.redeliver()
}

// crash stops the core as a power loss would: nothing it writes while
// stopping reaches the disk. Then it starts again, as restart does.
func (h *harness) crash() {
	for _, m := range writes {
		h.st.set(m, errCrash)
	}
	h.stop()
	h.start()
	h.redeliver()
}

func (h *harness) redeliver() {
	for _, ev := range h.wa.box.left() {
		h.ev <- ev
	}
	for _, m := range h.x.box.left() {
		h.own <- m
	}
}

// offline stops the core, lets fn change the store as if another version
// had written it, and starts the core again.
func (h *harness) offline(fn func(db *store.DB)) {
	h.t.Helper()
	h.stop()
	db, err := store.Open(h.path, store.Options{NoSync: true})
	if err != nil {
		h.t.Fatal(err)
	}
	fn(db)
	if err := db.Close(); err != nil {
		h.t.Fatal(err)
	}
	h.start()
}

func (h *harness) send(evs ...bridge.Event) {
	for _, e := range evs {
		h.wa.box.delivered(e)
		h.ev <- e
	}
}

// owner sends the owner's message; an empty ID gets a fresh one.
func (h *harness) owner(m bridge.OwnerEvent) string {
	meta := ownerMeta(m)
	if meta.ID == "" {
		h.seq++
		meta.ID = fmt.Sprintf("own%d", h.seq)
	}
	if meta.Time.IsZero() {
		meta.Time = h.now() // as the XMPP side stamps it on arrival
	}
	h.x.box.delivered(m)
	h.own <- m
	return meta.ID
}

// ownerMeta is the OwnerMeta inside an owner event, to fill in.
func ownerMeta(m bridge.OwnerEvent) *bridge.OwnerMeta {
	switch e := m.(type) {
	case *bridge.OwnerText:
		return &e.OwnerMeta
	case *bridge.OwnerCorrection:
		return &e.OwnerMeta
	case *bridge.OwnerRetraction:
		return &e.OwnerMeta
	case *bridge.OwnerReaction:
		return &e.OwnerMeta
	case *bridge.OwnerDisplayed:
		return &e.OwnerMeta
	case *bridge.OwnerReceived:
		return &e.OwnerMeta
	case *bridge.OwnerChatState:
		return &e.OwnerMeta
	case *bridge.OwnerOther:
		return &e.OwnerMeta
	case *bridge.RoomEcho:
		return &e.OwnerMeta
	case *bridge.RoomStranger:
		return &e.OwnerMeta
	case *bridge.RoomGone:
		return &e.OwnerMeta
	case *bridge.OwnerEncrypted:
		return &e.OwnerMeta
	case *bridge.OwnerClient:
		return &e.OwnerMeta
	case *bridge.OwnerRoster:
		return &e.OwnerMeta
	}
	panic(fmt.Sprintf("owner event %T", m))
}

func (h *harness) say(body string) string { return h.owner(&bridge.OwnerText{Body: body}) }

// cmd runs an ad-hoc command and returns its answer; it also syncs.
func (h *harness) cmd(name, args string) string {
	reply := make(chan string, 1)
	h.cmds <- bridge.Command{Name: name, Args: args, Reply: reply}
	return <-reply
}

func (h *harness) sync() { h.cmd("help", "") }

// waitSent waits until the owner was sent a body containing want (work the
// core does in the background reports back in its own time).
func (h *harness) waitSent(want string) {
	h.t.Helper()
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(time.Millisecond) {
		h.x.mu.Lock()
		found := slices.ContainsFunc(h.x.sent, func(m bridge.Outgoing) bool { return strings.Contains(m.Body, want) })
		h.x.mu.Unlock()
		if found {
			return
		}
	}
	h.t.Fatalf("nothing with %q was sent to the owner", want)
}

// bodies returns the bodies sent to the owner since the last call.
func (h *harness) bodies() []string {
	h.sync()
	var out []string
	for _, m := range h.x.take() {
		out = append(out, m.Body)
	}
	return out
}

func msg(chat, sender, id, text string) *bridge.Message {
	return &bridge.Message{Ref: bridge.MsgRef{Chat: bridge.ChatID(chat), Sender: bridge.UserID(sender), ID: id}, Time: t0, Kind: bridge.Text, Text: text}
}

// setup gives the harness three known people and two groups.
func (h *harness) setup() {
	h.send(
		&bridge.ContactInfo{User: alice, FullName: "Alice Liddell", FirstName: "Alice"},
		&bridge.ContactInfo{User: bob, PushName: "Bob"},
		&bridge.ChatInfo{Chat: family, Kind: bridge.Group, Name: "Family"},
		&bridge.ChatInfo{Chat: work, Kind: bridge.Group, Name: "Work"},
	)
}

// relayed finds the XMPP id the bot relayed a WhatsApp message with.
func (h *harness) relayed(chat, id string) string {
	h.t.Helper()
	h.sync()
	l, err := h.db.MessageByWA(bridge.MessageKey{Chat: chat, ID: id})
	if err != nil {
		h.t.Fatalf("message %s/%s not mapped: %v", chat, id, err)
	}
	return l.XMPPID
}

func eq(t *testing.T, what string, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("%s:\ngot  %q\nwant %q", what, got, want)
	}
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", "core", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from the golden file (run with -update to accept):\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}
