package bridge_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"waxmpp/bridge"
	"waxmpp/bridge/store"
)

// fakeRooms is the XMPP side's rooms: it records what the core asks.
type fakeRooms struct {
	mu      sync.Mutex
	calls   []string
	set     [][]bridge.Room // every SetRooms
	err     error           // CreateRoom fails with it
	destErr error           // DestroyRoom fails with it
	n       int
	pics    []string // SetRoomPicture calls
	picErr  error    // SetRoomPicture fails with it
}

func (f *fakeRooms) SetRoomPicture(_ context.Context, jid string, p *bridge.Picture) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if p == nil {
		f.pics = append(f.pics, jid+" none")
	} else {
		f.pics = append(f.pics, fmt.Sprintf("%s %s %s %q", jid, p.ID, p.Type, p.Data))
	}
	return f.picErr
}

func (f *fakeRooms) takePics() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.pics
	f.pics = nil
	return c
}

func (f *fakeRooms) CreateRoom(_ context.Context, r bridge.Room, invite string) (bridge.Room, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, fmt.Sprintf("CreateRoom nick=%q name=%q invite=%q", r.Nick, r.Name, invite))
	if f.err != nil {
		return bridge.Room{}, f.err
	}
	f.n++
	r.JID = fmt.Sprintf("room%d@conf.example", f.n)
	return r, nil
}

func (f *fakeRooms) DestroyRoom(_ context.Context, jid, reason string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, fmt.Sprintf("DestroyRoom %s %q", jid, reason))
	return f.destErr
}

func (f *fakeRooms) SetRooms(rs []bridge.Room) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.set = append(f.set, rs)
}

func (f *fakeRooms) take() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.calls
	f.calls = nil
	return c
}

// joined is the rooms of the last SetRooms.
func (f *fakeRooms) joined() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.set) == 0 {
		return nil
	}
	var out []string
	for _, r := range f.set[len(f.set)-1] {
		out = append(out, r.JID+" as "+r.Nick)
	}
	return out
}

func newRoomHarness(t *testing.T, auto bool) (*harness, *fakeRooms) {
	t.Helper()
	fr := &fakeRooms{}
	h := &harness{t: t, path: filepath.Join(t.TempDir(), "w.db"), wa: &fakeWA{lookup: map[string]bridge.UserID{}}, x: &fakeXMPP{}, clock: t0, rooms: fr, roomsAuto: auto}
	h.wa.sync = h.sync
	h.start()
	t.Cleanup(h.stop)
	return h, fr
}

// sent describes what went to the owner since the last call, with where.
func (h *harness) sent() []string {
	h.sync()
	var out []string
	for _, m := range h.x.take() {
		out = append(out, where(m)+describe(m))
	}
	for _, m := range h.x.takeNow() {
		out = append(out, "(now) "+where(m)+describe(m))
	}
	return out
}

func where(m bridge.Outgoing) string {
	if m.Room == "" {
		return "bot: "
	}
	return m.Room + ": "
}

func (h *harness) inRoom(room string, m bridge.OwnerEvent) string {
	ownerMeta(m).Room = room
	return h.owner(m)
}

// TestRoomGolden moves a direct chat and a group into rooms and relays one
// of each event there both ways; testdata/core/rooms.golden is what the
// owner and WhatsApp get.
func TestRoomGolden(t *testing.T) {
	h, fr := newRoomHarness(t, false)
	h.setup()
	h.send(msg(alice, alice, "A0", "before the room"), msg(family, bob, "F0", "before the room too"))
	var b strings.Builder
	step := func(name string, do func()) {
		do()
		fmt.Fprintf(&b, "## %s\n", name)
		for _, s := range h.sent() {
			b.WriteString("  " + strings.ReplaceAll(s, "\n", "\n  ") + "\n")
		}
		for _, c := range fr.take() {
			b.WriteString("  [rooms] " + c + "\n")
		}
		for _, c := range append(h.wa.take(), h.wa.takeReads()...) {
			b.WriteString("  [whatsapp] " + c + "\n")
		}
	}
	ref := func(chat, sender, id string) bridge.MsgRef {
		return bridge.MsgRef{Chat: bridge.ChatID(chat), Sender: bridge.UserID(sender), ID: id}
	}
	ev := func(e bridge.Event) func() { return func() { h.send(e) } }
	echo := func(chat, id, roomID string) {
		h.sync()
		room := "room1@conf.example"
		if chat == family {
			room = "room2@conf.example"
		}
		h.inRoom(room, &bridge.RoomEcho{OwnerMeta: bridge.OwnerMeta{ID: h.relayed(chat, id), Archive: roomID}})
	}
	const ra, rf = "room1@conf.example", "room2@conf.example"
	step("/room alice", func() { h.say("/room alice") })
	step("/room family", func() { h.say("/room family") })
	step("a message: no header in a direct chat's room", ev(msg(alice, alice, "A1", "hello in the room")))
	echo(alice, "A1", "S-A1")
	step("from the phone", ev(&bridge.Message{Ref: bridge.MsgRef{Chat: alice, Sender: me, ID: "A2", FromMe: true}, Time: t0, Kind: bridge.Text, Text: "from my phone"}))
	echo(alice, "A2", "S-A2")
	step("group: the sender named", ev(&bridge.Message{Ref: ref(family, bob, "F1"), Time: t0, Kind: bridge.Text, Text: "hi all"}))
	echo(family, "F1", "S-F1")
	step("group, from the phone", ev(&bridge.Message{Ref: bridge.MsgRef{Chat: family, Sender: me, ID: "F2", FromMe: true}, Time: t0, Kind: bridge.Text, Text: "me too"}))
	step("reply to a message in the room: the room's id", ev(&bridge.Message{Ref: ref(alice, alice, "A3"), Time: t0, Kind: bridge.Text, Text: "yes that", ReplyTo: &bridge.MsgRef{Chat: alice, Sender: alice, ID: "A1"}, QuotedText: "hello in the room"}))
	step("reply to a message of the bot conversation: a quote", ev(&bridge.Message{Ref: ref(alice, alice, "A4"), Time: t0, Kind: bridge.Text, Text: "and that", ReplyTo: &bridge.MsgRef{Chat: alice, Sender: alice, ID: "A0"}}))
	step("group reply, unknown message", ev(&bridge.Message{Ref: ref(family, bob, "F3"), Time: t0, Kind: bridge.Text, Text: "re", ReplyTo: &bridge.MsgRef{Chat: family, ID: "OLD"}, QuotedText: "old words"}))
	step("edit in the room", ev(&bridge.Edit{Ref: ref(alice, alice, "A1"), Text: "hello, edited"}))
	step("edit of a message of the bot conversation: corrected there", ev(&bridge.Edit{Ref: ref(alice, alice, "A0"), Text: "before, edited"}))
	step("edit of an unknown message: a line in the room", ev(&bridge.Edit{Ref: ref(alice, alice, "NOPE"), Text: "fixed"}))
	step("revoke in the room: the room's id", ev(&bridge.Revoke{Ref: ref(family, bob, "F1"), By: bob}))
	step("reaction, direct: XEP-0444 to the room's id", ev(&bridge.Reaction{Target: ref(alice, alice, "A1"), Sender: alice, Emoji: "👍"}))
	step("reaction, before the room's copy came back: the XMPP id", ev(&bridge.Reaction{Target: ref(alice, alice, "A3"), Sender: alice, Emoji: "🎉"}))
	step("reaction, group: a note without the group's name", ev(&bridge.Reaction{Target: ref(family, me, "F2"), Sender: bob, Emoji: "❤️"}))
	step("typing, direct", ev(&bridge.Typing{Chat: alice, Sender: alice, State: bridge.Composing}))
	step("typing, group: in its room too", ev(&bridge.Typing{Chat: family, Sender: bob, State: bridge.Composing}))
	step("missed call", ev(&bridge.Call{From: alice, Kind: bridge.CallMissed}))
	step("joined", ev(&bridge.GroupChange{Chat: family, Actor: carol, Kind: bridge.GroupJoined, Users: []bridge.UserID{carol}}))
	step("poll vote", ev(&bridge.PollVote{Poll: ref(family, bob, "F1"), Voter: alice, Options: []string{"yes"}}))
	step("undecryptable", ev(&bridge.Undecryptable{Ref: ref(alice, alice, "A5"), Time: t0}))
	step("the retry: corrected in the room", ev(&bridge.Message{Ref: ref(alice, alice, "A5"), Time: t0, Kind: bridge.Text, Text: "now readable", Retry: true}))
	step("history: delayed, in the room", ev(&bridge.Message{Ref: ref(alice, alice, "A6"), Time: t0.Add(-time.Hour), Kind: bridge.Text, Text: "old", History: true}))

	// The owner, in the rooms.
	var mine string
	step("owner's marker in the room: read on WhatsApp", func() { h.inRoom(ra, &bridge.OwnerDisplayed{Target: "S-A1"}) })
	step("owner writes in the room: to the chat, no routing", func() {
		mine = h.inRoom(ra, &bridge.OwnerText{OwnerMeta: bridge.OwnerMeta{Archive: "S-O1"}, Body: "hi alice"})
	})
	step("owner replies in the room, by the room's id", func() {
		h.inRoom(ra, &bridge.OwnerText{OwnerMeta: bridge.OwnerMeta{Archive: "S-O2"}, Body: "that one", ReplyTo: "S-A1"})
	})
	step("owner quotes in the room", func() {
		h.inRoom(ra, &bridge.OwnerText{OwnerMeta: bridge.OwnerMeta{Archive: "S-O3"}, Body: "> from my phone\nthis"})
	})
	step("owner in the group's room", func() {
		h.inRoom(rf, &bridge.OwnerText{OwnerMeta: bridge.OwnerMeta{Archive: "S-O4"}, Body: "//slash text"})
	})
	step("owner in the group's room: !! sends !", func() {
		h.inRoom(rf, &bridge.OwnerText{OwnerMeta: bridge.OwnerMeta{Archive: "S-O5"}, Body: "!!bang text"})
	})
	step("owner's encrypted message in the room: not sent, told there", func() {
		h.inRoom(ra, &bridge.OwnerEncrypted{OwnerMeta: bridge.OwnerMeta{Archive: "S-O6", ID: "enc-room"}, Scheme: "OMEMO"})
	})
	step("owner reacts in the room, by the room's id", func() { h.inRoom(ra, &bridge.OwnerReaction{Target: "S-A1", Emojis: []string{"🙂"}}) })
	step("owner types in the room", func() { h.inRoom(ra, &bridge.OwnerChatState{State: bridge.Composing}) })
	step("owner corrects in the room, by the message's id", func() { h.inRoom(ra, &bridge.OwnerCorrection{Target: mine, Body: "hi, alice"}) })
	step("owner retracts in the room, by the room's id", func() { h.inRoom(ra, &bridge.OwnerRetraction{Target: "S-O1"}) })
	step("WhatsApp read the owner's message: a marker in the room", func() {
		h.send(&bridge.Receipt{Chat: alice, By: alice, IDs: []string{waSent(t, h, "S-O2")}, Kind: bridge.Read})
	})
	step("a command in the room: answered there", func() { h.inRoom(ra, &bridge.OwnerText{Body: "/rooms"}) })
	step("a command with ! in the room", func() { h.inRoom(ra, &bridge.OwnerText{Body: "!rooms"}) })
	step("/room in a room", func() { h.inRoom(ra, &bridge.OwnerText{Body: "/room"}) })
	step("the bot conversation: the rooms' chats do not speak there", func() { h.say("/status") })
	step("/room alice again", func() { h.say("/room alice") })
	step("/room off in the room", func() { h.inRoom(ra, &bridge.OwnerText{Body: "/room off"}) })
	step("alice in the bot conversation again", ev(msg(alice, alice, "A7", "back here")))
	step("an edit of a message in the room that is gone: a line", ev(&bridge.Edit{Ref: ref(alice, alice, "A1"), Text: "edited late"}))
	step("written in a room that is not linked any more", func() { h.inRoom(ra, &bridge.OwnerText{Body: "anyone?"}) })
	golden(t, "rooms.golden", b.String())
	eq(t, "rooms joined", fr.joined(), []string{"room2@conf.example as WhatsApp"})
}

// waSent is the WhatsApp id the owner's message (by its room id) went as.
func waSent(t *testing.T, h *harness, roomID string) string {
	t.Helper()
	h.sync()
	l, err := h.db.MessageByXMPP(roomID)
	if err != nil || l.WA.ID == "" {
		t.Fatalf("owner message %s not mapped: %+v %v", roomID, l, err)
	}
	return l.WA.ID
}

// TestRoomSurvivesRestart: the binding is in the state file; after a
// restart the core tells the XMPP side the rooms before anything else,
// relays there, and a replayed owner message is sent once.
func TestRoomSurvivesRestart(t *testing.T) {
	h, fr := newRoomHarness(t, false)
	h.setup()
	h.send(msg(alice, alice, "A1", "hi"))
	h.say("/room alice")
	h.sync()
	id := h.inRoom("room1@conf.example", &bridge.OwnerText{OwnerMeta: bridge.OwnerMeta{ID: "own-r1", Archive: "S1"}, Body: "once"})
	h.sync()
	h.restart()
	eq(t, "rooms after the restart", fr.joined(), []string{"room1@conf.example as Alice Liddell"})
	// The archive replays it: nothing is sent again.
	h.inRoom("room1@conf.example", &bridge.OwnerText{OwnerMeta: bridge.OwnerMeta{ID: id, Archive: "S1"}, Body: "once"})
	h.send(msg(alice, alice, "A2", "after"))
	var sends int
	for _, c := range h.wa.take() {
		if strings.HasPrefix(c, "SendText") {
			sends++
		}
	}
	if sends != 1 {
		t.Errorf("the owner's room message went %d times to WhatsApp, want 1", sends)
	}
	got := h.sent()
	if len(got) == 0 || got[len(got)-1] != "room1@conf.example: after" {
		t.Errorf("after the restart: %q, want the message in the room", got)
	}
}

// TestRoomStrangersAndGone: someone else in a room is reported once, also
// across restarts; a room that is gone moves its chat back, told.
func TestRoomStrangersAndGone(t *testing.T) {
	h, fr := newRoomHarness(t, false)
	h.setup()
	h.send(msg(alice, alice, "A1", "hi"))
	h.say("/room alice")
	h.bodies()
	const r = "room1@conf.example"
	h.inRoom(r, &bridge.RoomStranger{JID: "eve@evil.example", Nick: "eve"})
	h.inRoom(r, &bridge.RoomStranger{JID: "eve@evil.example", Nick: "eve2"})
	h.restart()
	h.inRoom(r, &bridge.RoomStranger{JID: "eve@evil.example", Nick: "eve"})
	eq(t, "strangers", h.bodies(), []string{"⚠️ Someone else is in Alice Liddell's room: eve@evil.example (eve). waxmpp ignores them: nothing they write reaches WhatsApp. Only your XMPP server's admins can let others into it."})
	h.inRoom(r, &bridge.RoomGone{Reason: "destroyed by the admin"})
	eq(t, "gone", h.bodies(), []string{"⚠️ Alice Liddell's room is gone (your XMPP server says: destroyed by the admin). Its messages come to this conversation again; /room alice makes a new one."})
	eq(t, "joined", fr.joined(), nil)
	h.send(msg(alice, alice, "A2", "where am I"))
	eq(t, "relayed", h.bodies(), []string{"*Alice Liddell*: where am I"})
}

// TestRoomRefused: a server without group chats, or one that refuses to
// make the room: one line why, and the chat stays in the bot conversation.
func TestRoomRefused(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{bridge.ErrNoRooms, "Your XMPP server offers no group chats, so Alice Liddell stays in this conversation."},
		{&bridge.RoomRefused{Condition: "not-allowed", Text: "Room creation is restricted"}, "Your XMPP server refused to create a room (it says: Room creation is restricted), so Alice Liddell stays in this conversation."},
		{&bridge.RoomRefused{Condition: "forbidden"}, "Your XMPP server refused to create a room (it says: forbidden), so Alice Liddell stays in this conversation."},
		{errors.New("xmpp: not connected"), "No room for Alice Liddell: the bot could not reach your XMPP server (is it connected? /status says). Alice Liddell stays in this conversation; try again later."},
		{context.DeadlineExceeded, "No room for Alice Liddell: your XMPP server did not answer in time. Alice Liddell stays in this conversation; try again later."},
	} {
		h, fr := newRoomHarness(t, false)
		fr.err = c.err
		h.setup()
		h.send(msg(alice, alice, "A1", "hi"))
		h.bodies()
		h.say("/room alice")
		eq(t, "answer", h.bodies(), []string{c.want})
		h.send(msg(alice, alice, "A2", "still here"))
		eq(t, "relayed", h.bodies(), []string{"*Alice Liddell*: still here"})
		h.stop()
	}
}

// TestRoomsAuto: [rooms] auto gives a chat that speaks its room, with its
// first message in it; a server that makes no rooms is told once.
func TestRoomsAuto(t *testing.T) {
	h, fr := newRoomHarness(t, true)
	h.setup()
	h.send(msg(alice, alice, "A1", "first"))
	got := h.sent()
	if len(got) != 2 || !strings.HasPrefix(got[0], "bot: ✅ Alice Liddell has a room of its own now: xmpp:room1@conf.example?join") || !strings.HasPrefix(got[1], "room1@conf.example: first") {
		t.Errorf("auto room: %q", got)
	}
	h.send(msg(alice, alice, "A2", "second"), &bridge.Message{Ref: bridge.MsgRef{Chat: alice, ID: "H1", Sender: alice}, Time: t0, Kind: bridge.Text, Text: "old", History: true})
	if n := len(fr.take()); n != 1 {
		t.Errorf("%d rooms created, want 1", n)
	}
	// Muted chats and history make no rooms.
	h.say("/mute family")
	h.send(msg(family, bob, "F1", "muted"))
	if c := fr.take(); len(c) != 0 {
		t.Errorf("rooms for a muted chat: %q", c)
	}

	h2, fr2 := newRoomHarness(t, true)
	fr2.err = bridge.ErrNoRooms
	h2.setup()
	h2.send(msg(alice, alice, "A1", "one"), msg(bob, bob, "B1", "two"))
	eq(t, "no rooms", h2.bodies(), []string{
		"Rooms for every chat are on ([rooms] auto), but: Your XMPP server offers no group chats, so Alice Liddell stays in this conversation.",
		"*Alice Liddell*: one", "*Bob*: two"})
	if c := fr2.take(); len(c) != 1 {
		t.Errorf("tried %d times, want once: %q", len(c), c)
	}
}

// TestRoomOffFails: a room that cannot be destroyed (the server is away)
// stays, and its chat with it.
func TestRoomOffFails(t *testing.T) {
	h, fr := newRoomHarness(t, false)
	h.setup()
	h.send(msg(alice, alice, "A1", "hi"))
	h.say("/room alice")
	fr.destErr = errors.New("xmpp: not connected")
	if got := h.cmd("room", "alice off"); !strings.HasPrefix(got, "Could not remove Alice Liddell's room") {
		t.Errorf("/room alice off = %q", got)
	}
	fr.destErr = nil
	if got := h.cmd("room", "Alice Liddell off"); got != "→ Alice Liddell's messages come to this conversation again; its room is gone." {
		t.Errorf("/room Alice Liddell off = %q", got)
	}
	if got := h.cmd("rooms", ""); got != "No chat has a room yet: /room alice gives Alice one." {
		t.Errorf("/rooms = %q", got)
	}
	if got := h.cmd("room", "nobody"); !strings.HasPrefix(got, `No chat "nobody"`) {
		t.Errorf("/room nobody = %q", got)
	}
}

// TestRoomMedia: media of a chat with a room goes to the room (its line
// without the chat's name, then the file's URL), mapped as in the room; a
// file the owner sends in the room goes to its chat.
func TestRoomMedia(t *testing.T) {
	h := newMediaHarness(t, false, "")
	h.stop()
	fr := &fakeRooms{}
	h.rooms = fr
	h.start()
	h.send(text(alice, "A1", "hi"))
	h.waitSent(1)
	h.say("/room alice")
	h.waitSent(2)
	h.send(h.photo("P1", "the beach", testFile(t, "photo.jpg")))
	got := h.waitSent(4)
	line, file := got[2], got[3]
	if line.Room != "room1@conf.example" || file.Room != line.Room || line.Body != "📷 photo: the beach" || file.Body != file.URL || file.URL == "" {
		t.Fatalf("photo in the room:\n%s rooms %q %q", bodies(got[2:]), line.Room, file.Room)
	}
	for _, id := range []string{line.ID, file.ID} {
		if l, err := h.db.MessageByXMPP(id); err != nil || l.RoomID != bridge.RoomPending || l.WA.ID != "P1" {
			t.Errorf("%s mapped as %+v, %v", id, l, err)
		}
	}
	u := h.srv.URL + "/share/photo.jpg"
	h.inRoom("room1@conf.example", &bridge.OwnerText{OwnerMeta: bridge.OwnerMeta{Archive: "S-F"}, Body: u, URL: u, File: u})
	deadline := time.Now().Add(20 * time.Second)
	for {
		h.wm.mu.Lock()
		n := len(h.wm.sent)
		h.wm.mu.Unlock()
		if n == 1 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	h.sync()
	if len(h.wm.sent) != 1 || h.wm.sent[0].chat != alice || h.wm.sent[0].m.Kind != bridge.Image {
		t.Fatalf("the owner's file from the room: %+v", h.wm.sent)
	}
	if l, err := h.db.MessageByXMPP("S-F"); err != nil || l.WA.ID == "" {
		t.Errorf("the owner's file is not mapped by the room's id: %+v %v", l, err)
	}
	h.leftTemp()
}

// TestRoomRename: a room's title follows its chat's name: a group's new
// subject, a person's new name in the address book.
func TestRoomRename(t *testing.T) {
	h, fr := newRoomHarness(t, false)
	h.setup()
	h.send(msg(family, bob, "F1", "hi"), msg(alice, alice, "A1", "hi"))
	h.say("/room family")
	h.say("/room alice")
	h.send(&bridge.GroupChange{Chat: family, Actor: bob, Kind: bridge.GroupSubject, Subject: "Family 🏠", Time: t0})
	h.send(&bridge.ContactInfo{User: alice, FullName: "Alice Pleasance"})
	h.sync()
	fr.mu.Lock()
	last := fr.set[len(fr.set)-1]
	fr.mu.Unlock()
	var names []string
	for _, r := range last {
		names = append(names, r.Name)
	}
	eq(t, "room titles", names, []string{"Family 🏠", "Alice Pleasance"})
	h.restart()
	fr.mu.Lock()
	last = fr.set[len(fr.set)-1]
	fr.mu.Unlock()
	if len(last) != 2 || last[0].Name != "Family 🏠" {
		t.Errorf("after a restart: %+v", last)
	}
}

// TestRoomPicture: a room gets its chat's picture when it is made, and
// follows the chat's changes; a server without room pictures is told in
// the creation's line and in /rooms, and not asked again.
func TestRoomPicture(t *testing.T) {
	h, fr := newRoomHarness(t, false)
	h.setup()
	h.send(msg(alice, alice, "A0", "hi"), msg(family, bob, "F0", "hi all"))
	h.sent()
	h.wa.mu.Lock()
	h.wa.pics = map[bridge.ChatID]*bridge.Picture{alice: {ID: "P1", Type: "image/jpeg", Data: []byte("jpeg1")}}
	h.wa.mu.Unlock()
	setPic := func(chat bridge.ChatID, p *bridge.Picture) {
		h.wa.mu.Lock()
		if p == nil {
			delete(h.wa.pics, chat)
		} else {
			h.wa.pics[chat] = p
		}
		h.wa.mu.Unlock()
	}
	answer := func(body string) string {
		h.say(body)
		return strings.Join(h.sent(), "\n")
	}
	expect := func(what string, want ...string) {
		t.Helper()
		h.sync()
		if got := fr.takePics(); !slices.Equal(got, want) {
			t.Errorf("%s: SetRoomPicture calls %q, want %q", what, got, want)
		}
	}
	if got := answer("/room alice"); !strings.Contains(got, "has a room of its own now") || strings.Contains(got, "picture") {
		t.Errorf("/room alice: %q tells of pictures", got)
	}
	expect("created", `room1@conf.example P1 image/jpeg "jpeg1"`)
	answer("/room family") // no picture: nothing asked
	expect("created without a picture")
	h.send(&bridge.PictureChange{Chat: alice, ID: "P1"})
	expect("the same picture again")
	setPic(alice, &bridge.Picture{ID: "P2", Type: "image/jpeg", Data: []byte("jpeg2")})
	h.send(&bridge.PictureChange{Chat: alice, ID: "P2"})
	expect("changed", `room1@conf.example P2 image/jpeg "jpeg2"`)
	h.restart()
	h.send(&bridge.PictureChange{Chat: alice, ID: "P2"}) // delivered again after the restart
	expect("the same after a restart")
	setPic(alice, nil)
	h.send(&bridge.PictureChange{Chat: alice, Removed: true})
	expect("removed", "room1@conf.example none")
	h.send(&bridge.PictureChange{Chat: alice, Removed: true})
	expect("removed again")
	setPic(family, &bridge.Picture{ID: "G1", Type: "image/png", Data: []byte("png")})
	h.send(&bridge.PictureChange{Chat: family, ID: "G1"})
	expect("the group's", `room2@conf.example G1 image/png "png"`)
	h.wa.mu.Lock()
	h.wa.picErr = errors.New("whatsapp down")
	h.wa.mu.Unlock()
	h.send(&bridge.PictureChange{Chat: family, ID: "G2"})
	expect("not fetched: the room is left as it is")
	h.wa.mu.Lock()
	h.wa.picErr = nil
	h.wa.pics[family] = &bridge.Picture{ID: "G2", Type: "image/png", Data: []byte("png2")}
	h.wa.mu.Unlock()
	// WhatsApp connects (again): what failed is tried again, once.
	h.send(&bridge.Status{State: bridge.Connected})
	expect("WhatsApp connected: the failed one again", `room2@conf.example G2 image/png "png2"`)
	h.send(&bridge.Status{State: bridge.Connected})
	expect("connected again: nothing left to do")
	if got := answer("/rooms"); !strings.Contains(got, "2 rooms") || strings.Contains(got, "picture") {
		t.Errorf("/rooms: %q tells of pictures", got)
	}

	// The server fails to set it: the room is made all the same, and the
	// next change tries again.
	fr.mu.Lock()
	fr.picErr = errors.New("xmpp: room picture: not a JPEG or PNG picture")
	fr.mu.Unlock()
	h.send(msg(carol, carol, "C0", "hello"))
	h.sent()
	setPic(carol, &bridge.Picture{ID: "K1", Type: "image/jpeg", Data: []byte("broken")})
	if got := answer("/room 493333"); !strings.Contains(got, "has a room of its own now") || strings.Contains(got, "picture") {
		t.Errorf("/room carol with a picture the server refused: %q", got)
	}
	expect("refused", `room3@conf.example K1 image/jpeg "broken"`)
	h.send(&bridge.PictureChange{Chat: carol, ID: "K1"})
	expect("tried again", `room3@conf.example K1 image/jpeg "broken"`)

	// A server that keeps no room pictures.
	fr.mu.Lock()
	fr.picErr = bridge.ErrNoRoomPictures
	fr.mu.Unlock()
	h.send(msg(work, bob, "W0", "hello"))
	h.sent()
	setPic(work, &bridge.Picture{ID: "C1", Type: "image/jpeg", Data: []byte("c")})
	if got := answer("/room work"); !strings.Contains(got, "has a room of its own now") || !strings.Contains(got, "does not show pictures of rooms") {
		t.Errorf("/room work on a server without room pictures: %q", got)
	}
	expect("tried once", `room4@conf.example C1 image/jpeg "c"`)
	h.send(&bridge.PictureChange{Chat: work, ID: "C2"})
	expect("not asked again")
	if got := answer("/rooms"); !strings.Contains(got, "does not show pictures of rooms") {
		t.Errorf("/rooms: %q does not tell that rooms show no pictures", got)
	}
}

// TestRoomPictureUpgrade: rooms made by a waxmpp without room pictures get
// their chat's picture once WhatsApp connects.
func TestRoomPictureUpgrade(t *testing.T) {
	h, fr := newRoomHarness(t, false)
	h.setup()
	h.send(msg(alice, alice, "A0", "hi"))
	h.sent()
	h.say("/room alice")
	h.sent()
	h.offline(func(db *store.DB) {
		b, ok, err := db.Blob("core.rooms")
		if err != nil || !ok {
			t.Fatalf("rooms: %v %v", ok, err)
		}
		var list []map[string]any
		if err := json.Unmarshal(b, &list); err != nil {
			t.Fatal(err)
		}
		for _, r := range list {
			delete(r, "pictured") // as an older version wrote it
		}
		b, _ = json.Marshal(list)
		if err := db.PutBlob("core.rooms", b); err != nil {
			t.Fatal(err)
		}
	})
	h.wa.mu.Lock()
	h.wa.pics = map[bridge.ChatID]*bridge.Picture{alice: {ID: "P1", Type: "image/jpeg", Data: []byte("j")}}
	h.wa.mu.Unlock()
	fr.takePics()
	h.send(&bridge.Status{State: bridge.Connected})
	h.sync()
	if got, want := fr.takePics(), []string{`room1@conf.example P1 image/jpeg "j"`}; !slices.Equal(got, want) {
		t.Errorf("after the upgrade: %q, want %q", got, want)
	}
}
