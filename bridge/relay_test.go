package bridge_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"waxmpp/bridge"
	"waxmpp/bridge/store"
)

// describe renders an Outgoing for golden files: the body and the XEPs set.
func describe(m bridge.Outgoing) string {
	var b strings.Builder
	b.WriteString(strings.ReplaceAll(m.Body, "\n", "\n    "))
	var tags []string
	add := func(k, v string) {
		if v != "" {
			tags = append(tags, k+"="+v)
		}
	}
	add("replyTo", m.ReplyTo)
	add("quote", m.Quote)
	add("replace", m.Replace)
	add("retract", m.Retract)
	add("receipt", m.Receipt)
	add("displayed", m.Displayed)
	add("url", m.URL)
	if m.React != nil {
		tags = append(tags, fmt.Sprintf("react=%s%q", m.React.ID, m.React.Emojis))
	}
	if m.Typing {
		tags = append(tags, fmt.Sprintf("typing=%d", m.ChatState))
	}
	if !m.Delay.IsZero() {
		tags = append(tags, "delay="+m.Delay.UTC().Format(time.RFC3339))
	}
	if len(tags) > 0 {
		b.WriteString("   [" + strings.Join(tags, " ") + "]")
	}
	return b.String()
}

// TestRelayGolden relays one of every WhatsApp event to the owner and
// compares what the owner gets with testdata/core/relay.golden.
func TestRelayGolden(t *testing.T) {
	h := newHarness(t)
	h.setup()
	ref := func(chat, sender, id string) bridge.MsgRef {
		return bridge.MsgRef{Chat: bridge.ChatID(chat), Sender: bridge.UserID(sender), ID: id}
	}
	steps := []struct {
		name string
		ev   bridge.Event
	}{
		{"direct text, address-book name", msg(alice, alice, "M1", "Hi *there*, _how_ are you?")},
		{"group text, push name", &bridge.Message{Ref: ref(family, bob, "M2"), Time: t0, Kind: bridge.Text, Text: "hello family"}},
		{"sender with a device part", &bridge.Message{Ref: ref(family, "492222:7@s.whatsapp.net", "M2b"), Time: t0, Kind: bridge.Text, Text: "from my laptop"}},
		{"group text, unknown sender: number", msg(family, "497777@s.whatsapp.net", "M3", "who am I")},
		{"group text, sender with a push name on the message", &bridge.Message{Ref: ref(family, "498888@s.whatsapp.net", "M4"), Time: t0, Kind: bridge.Text, Text: "I'm Dan", PushName: "Dan"}},
		{"owner from the phone, direct", &bridge.Message{Ref: bridge.MsgRef{Chat: alice, Sender: me, ID: "M5", FromMe: true}, Time: t0, Kind: bridge.Text, Text: "sent from my phone"}},
		{"owner from the phone, group", &bridge.Message{Ref: bridge.MsgRef{Chat: family, Sender: me, ID: "M6", FromMe: true}, Time: t0, Kind: bridge.Text, Text: "to the family"}},
		{"reply to a relayed message", &bridge.Message{Ref: ref(alice, alice, "M7"), Time: t0, Kind: bridge.Text, Text: "this one", ReplyTo: &bridge.MsgRef{Chat: alice, Sender: me, ID: "M5", FromMe: true}, QuotedText: "sent from my phone"}},
		{"reply to an unknown message", &bridge.Message{Ref: ref(alice, alice, "M8"), Time: t0, Kind: bridge.Text, Text: "and that", ReplyTo: &bridge.MsgRef{Chat: alice, ID: "OLD"}, QuotedText: "something old"}},
		{"mention", &bridge.Message{Ref: ref(family, bob, "M9"), Time: t0, Kind: bridge.Text, Text: "@491111 look", Mentions: []bridge.UserID{alice}}},
		{"photo with caption", &bridge.Message{Ref: ref(alice, alice, "M10"), Time: t0, Kind: bridge.Image, Text: "sunset", Media: &bridge.Media{MimeType: "image/jpeg"}}},
		{"voice note", &bridge.Message{Ref: ref(alice, alice, "M11"), Time: t0, Kind: bridge.Voice, Media: &bridge.Media{Duration: 75 * time.Second}}},
		{"document", &bridge.Message{Ref: ref(alice, alice, "M12"), Time: t0, Kind: bridge.Document, Media: &bridge.Media{FileName: "plan.pdf"}}},
		{"sticker", &bridge.Message{Ref: ref(alice, alice, "M13"), Time: t0, Kind: bridge.Sticker}},
		{"video, audio", &bridge.Message{Ref: ref(alice, alice, "M14"), Time: t0, Kind: bridge.Video, Text: "look", Media: &bridge.Media{Duration: 5 * time.Second}}},
		{"location", &bridge.Message{Ref: ref(alice, alice, "M15"), Time: t0, Kind: bridge.Location, Location: &bridge.Geo{Lat: 52.5163, Lon: 13.3777, Name: "Brandenburger Tor", Address: "Pariser Platz"}}},
		{"live location", &bridge.Message{Ref: ref(alice, alice, "M16"), Time: t0, Kind: bridge.LiveLocation, Location: &bridge.Geo{Lat: 1.5, Lon: -2.25}}},
		{"contact card", &bridge.Message{Ref: ref(alice, alice, "M17"), Time: t0, Kind: bridge.ContactCard, Contacts: []bridge.Contact{{Name: "Dr. Who", Numbers: []string{"+441234", "+445678"}}}}},
		{"poll", &bridge.Message{Ref: ref(family, bob, "M18"), Time: t0, Kind: bridge.Poll, Poll: &bridge.PollInfo{Question: "Pizza?", Options: []string{"yes", "no"}, Selectable: 2}}},
		{"poll vote", &bridge.PollVote{Poll: ref(family, bob, "M18"), Voter: alice, Options: []string{"yes"}}},
		{"forwarded, view once", &bridge.Message{Ref: ref(alice, alice, "M19"), Time: t0, Kind: bridge.Image, Forwarded: true, ViewOnce: true}},
		{"history message", &bridge.Message{Ref: ref(alice, alice, "M20"), Time: t0.Add(-24 * time.Hour), Kind: bridge.Text, Text: "old news", History: true}},
		{"empty message (an unsupported kind)", &bridge.Message{Ref: ref(alice, alice, "M24"), Time: t0, Kind: bridge.Text}},
		{"view once, kept on the phone", &bridge.Message{Ref: ref(alice, alice, "M25"), Time: t0, Kind: bridge.Text, ViewOnce: true}},
		{"duplicate message: nothing", msg(alice, alice, "M1", "Hi *there*, _how_ are you?")},
		{"edit", &bridge.Edit{Ref: ref(alice, alice, "M1"), Text: "Hi, how are you?"}},
		{"edit of an unknown message", &bridge.Edit{Ref: ref(alice, alice, "GONE"), Text: "fixed"}},
		{"revoke", &bridge.Revoke{Ref: ref(family, bob, "M2"), By: bob}},
		{"revoke by an admin", &bridge.Revoke{Ref: ref(family, "497777@s.whatsapp.net", "M3"), By: bob}},
		{"reaction, direct: XEP-0444", &bridge.Reaction{Target: ref(alice, alice, "M7"), Sender: alice, Emoji: "👍"}},
		{"reaction removed, direct", &bridge.Reaction{Target: ref(alice, alice, "M7"), Sender: alice}},
		{"reaction, group: a note", &bridge.Reaction{Target: ref(family, "498888@s.whatsapp.net", "M4"), Sender: bob, Emoji: "❤️"}},
		{"reaction from the owner's phone: nothing", &bridge.Reaction{Target: ref(alice, alice, "M7"), Sender: me, FromMe: true, Emoji: "😂"}},
		{"typing, direct", &bridge.Typing{Chat: alice, Sender: alice, State: bridge.Composing}},
		{"typing, group: nothing", &bridge.Typing{Chat: family, Sender: bob, State: bridge.Composing}},
		{"missed call", &bridge.Call{From: alice, Kind: bridge.CallMissed}},
		{"incoming video call", &bridge.Call{From: bob, Kind: bridge.CallOffered, Video: true}},
		{"call ended: nothing", &bridge.Call{From: bob, Kind: bridge.CallEnded}},
		{"joined", &bridge.GroupChange{Chat: family, Actor: carol, Kind: bridge.GroupJoined, Users: []bridge.UserID{carol}}},
		{"added", &bridge.GroupChange{Chat: family, Actor: bob, Kind: bridge.GroupJoined, Users: []bridge.UserID{alice, carol}}},
		{"left", &bridge.GroupChange{Chat: family, Actor: carol, Kind: bridge.GroupLeft, Users: []bridge.UserID{carol}}},
		{"removed", &bridge.GroupChange{Chat: family, Actor: bob, Kind: bridge.GroupLeft, Users: []bridge.UserID{carol}}},
		{"promoted", &bridge.GroupChange{Chat: family, Actor: bob, Kind: bridge.GroupPromoted, Users: []bridge.UserID{alice}}},
		{"renamed", &bridge.GroupChange{Chat: family, Actor: alice, Kind: bridge.GroupSubject, Subject: "Family 🏠"}},
		{"message after the rename", &bridge.Message{Ref: ref(family, bob, "M21"), Time: t0, Kind: bridge.Text, Text: "nice name"}},
		{"description", &bridge.GroupChange{Chat: family, Actor: alice, Kind: bridge.GroupDescription, Text: "our group"}},
		{"undecryptable: placeholder", &bridge.Undecryptable{Ref: ref(alice, alice, "M22"), Time: t0}},
		{"the retry: a correction", &bridge.Message{Ref: ref(alice, alice, "M22"), Time: t0, Kind: bridge.Text, Text: "now readable", Retry: true}},
		{"status@broadcast: nothing", msg("status@broadcast", alice, "S1", "my story")},
		{"LID alias, then a message from the LID: same chat", &bridge.Alias{LID: "777@lid", Phone: alice}},
		{"message from the LID", msg("777@lid", "777@lid", "M23", "from my lid")},
	}
	var b strings.Builder
	for _, s := range steps {
		h.send(s.ev)
		h.sync()
		fmt.Fprintf(&b, "## %s\n", s.name)
		for _, m := range h.x.take() {
			b.WriteString("  " + describe(m) + "\n")
		}
		for _, m := range h.x.takeNow() {
			b.WriteString("  (now) " + describe(m) + "\n")
		}
	}
	golden(t, "relay.golden", b.String())

	// Every relayed message carries a derived id and is mapped.
	for _, id := range []string{"M1", "M5", "M7", "M22", "M23"} {
		chat := alice
		if xid := h.relayed(chat, id); !strings.HasPrefix(xid, "wa-") {
			t.Errorf("%s relayed as %q, want a wa- id", id, xid)
		}
	}
	if got := h.cmd("chats", "ali"); got != "  alice — Alice Liddell" {
		t.Errorf("/chats ali = %q; the LID must not make a second chat", got)
	}
}

// TestOwnerActions: what the owner does to relayed messages reaches
// WhatsApp (the feature mapping, owner to WhatsApp).
func TestOwnerActions(t *testing.T) {
	h := newHarness(t)
	h.setup()
	h.send(msg(alice, alice, "A1", "one"), msg(alice, alice, "A2", "two"))
	h.send(&bridge.Message{Ref: bridge.MsgRef{Chat: family, Sender: bob, ID: "F1"}, Time: t0, Kind: bridge.Text, Text: "b1"})
	h.send(&bridge.Message{Ref: bridge.MsgRef{Chat: family, Sender: carol, ID: "F2"}, Time: t0.Add(time.Second), Kind: bridge.Text, Text: "c1", PushName: "Carol"})
	a2, f2 := h.relayed(alice, "A2"), h.relayed(family, "F2")
	h.say("/to alice")
	sent := h.say("first draft")
	h.x.take()
	// Read when answered: writing to Alice marks what she sent as read.
	eq(t, "answered", append(h.wa.take(), h.wa.takeReads()...), []string{`SendText 491111@s.whatsapp.net "first draft"`, "MarkRead 491111@s.whatsapp.net 491111@s.whatsapp.net [A1 A2]"})
	h.send(msg(alice, alice, "A3", "three"), msg(alice, alice, "A4", "four"))
	a4 := h.relayed(alice, "A4")
	h.x.take()

	cases := []struct {
		name string
		m    bridge.OwnerEvent
		wa   []string
		told []string
	}{
		{"react", &bridge.OwnerReaction{Target: a2, Emojis: []string{"👍"}}, []string{"React 491111@s.whatsapp.net 491111@s.whatsapp.net A2 \"👍\""}, nil},
		{"unreact", &bridge.OwnerReaction{Target: a2}, []string{"React 491111@s.whatsapp.net 491111@s.whatsapp.net A2 \"\""}, nil},
		{"react to the unknown", &bridge.OwnerReaction{Target: "nope", Emojis: []string{"👍"}}, nil, []string{"Reaction not sent: I don't know that message."}},
		{"edit", &bridge.OwnerCorrection{Target: sent, Body: "final text"}, []string{"Edit 491111@s.whatsapp.net 3EB0" + "*" + " \"final text\""}, nil},
		{"edit a relayed message", &bridge.OwnerCorrection{Target: a2, Body: "x"}, nil, []string{"Not edited: I don't know that message (only messages you sent through waxmpp can be edited)."}},
		{"retract", &bridge.OwnerRetraction{Target: sent}, []string{"Revoke 491111@s.whatsapp.net 3EB0*"}, nil},
		{"retract unknown", &bridge.OwnerRetraction{Target: "nope"}, nil, []string{"Not deleted: I don't know that message (only messages you sent through waxmpp can be deleted)."}},
		{"displayed, direct", &bridge.OwnerDisplayed{Target: a4}, []string{"MarkRead 491111@s.whatsapp.net 491111@s.whatsapp.net [A3 A4]"}, nil},
		{"displayed again: nothing new", &bridge.OwnerDisplayed{Target: a4}, nil, nil},
		{"displayed, read when answered already", &bridge.OwnerDisplayed{Target: a2}, nil, nil},
		{"displayed, group: per sender", &bridge.OwnerDisplayed{Target: f2}, []string{"MarkRead 120363001@g.us 492222@s.whatsapp.net [F1]", "MarkRead 120363001@g.us 493333@s.whatsapp.net [F2]"}, nil},
		{"typing to the current chat", &bridge.OwnerChatState{State: bridge.Composing}, []string{"SetTyping 491111@s.whatsapp.net 1"}, nil},
		{"received: nothing", &bridge.OwnerReceived{Target: a2}, nil, nil},
	}
	for _, c := range cases {
		h.owner(c.m)
		got := append(h.wa.take(), h.wa.takeReads()...)
		for i := range got {
			// Derived ids vary with the owner's id; compare their shape.
			if i < len(c.wa) && strings.Contains(c.wa[i], "3EB0*") {
				pre, post, _ := strings.Cut(c.wa[i], "3EB0*")
				if strings.HasPrefix(got[i], pre+"3EB0") && strings.HasSuffix(got[i], post) {
					got[i] = c.wa[i]
				}
			}
		}
		eq(t, c.name+": WhatsApp", got, c.wa)
		eq(t, c.name+": owner", h.bodies(), c.told)
	}

	// Edits after the 20-minute window: a clear message.
	sent = h.say("typo")
	h.wa.editErr = bridge.ErrEditWindow
	h.sync()
	h.owner(&bridge.OwnerCorrection{Target: sent, Body: "fixed"})
	eq(t, "edit window", h.bodies(), []string{"Not edited: WhatsApp allows edits for 20 minutes only."})
}

// TestReceipts: WhatsApp's delivered/read for the owner's messages become
// XEP-0184 receipts and XEP-0333 markers on the owner's message ids, once.
func TestReceipts(t *testing.T) {
	h := newHarness(t)
	h.setup()
	h.send(msg(family, bob, "F1", "hi"))
	h.say("/to family")
	id := h.say("hello all")
	h.sync()
	l, err := h.db.MessageByXMPP(id)
	if err != nil {
		t.Fatal(err)
	}
	h.send(
		&bridge.Receipt{Chat: family, By: bob, IDs: []string{l.WA.ID}, Kind: bridge.Delivered},
		&bridge.Receipt{Chat: family, By: carol, IDs: []string{l.WA.ID}, Kind: bridge.Delivered},
		&bridge.Receipt{Chat: family, By: bob, IDs: []string{l.WA.ID, "UNKNOWN"}, Kind: bridge.Read},
		&bridge.Receipt{Chat: family, By: carol, IDs: []string{l.WA.ID}, Kind: bridge.Played},
		&bridge.Receipt{Chat: family, By: bob, IDs: []string{"F1"}, Kind: bridge.Read}, // not the owner's
	)
	h.sync()
	var got []string
	for _, m := range h.x.takeNow() {
		got = append(got, describe(m))
	}
	eq(t, "receipts", got, []string{"   [receipt=" + id + "]", "   [displayed=" + id + "]"})
}

// TestMute: a muted chat is mapped but not relayed, and does not count as
// speaking; /unmute relays it again.
func TestMute(t *testing.T) {
	h := newHarness(t)
	h.setup()
	h.send(msg(alice, alice, "A1", "hi"), msg(family, bob, "F1", "x"))
	h.say("/to alice")
	h.say("/mute family 8h")
	h.bodies()
	h.send(msg(family, bob, "F2", "muted"))
	eq(t, "muted", h.bodies(), nil)
	if xid := h.relayed(family, "F2"); xid != "" {
		t.Errorf("muted message relayed as %q", xid)
	}
	h.say("to alice")
	eq(t, "muted chat did not speak", h.wa.take(), []string{`SendText 491111@s.whatsapp.net "to alice"`})
	h.advance(9 * time.Hour)
	h.send(msg(family, bob, "F3", "after the mute"))
	eq(t, "mute ended", h.bodies(), []string{"*Bob* in *Family*: after the mute"})
	h.say("/mute family")
	h.say("/unmute family")
	h.send(msg(family, bob, "F4", "unmuted"))
	eq(t, "unmuted", h.bodies(), []string{"Muted Family until you /unmute. /unmute family relays it again.", "Relaying Family again.", "*Bob* in *Family*: unmuted"})
}

// TestStatus: WhatsApp's life shows in the bot's presence and is told once.
func TestStatus(t *testing.T) {
	h := newHarness(t)
	steps := []bridge.Status{
		{State: bridge.NotPaired},
		{State: bridge.NotPaired},
		{State: bridge.Connected},
		{State: bridge.Disconnected},
		{State: bridge.Connected},
		{State: bridge.PhoneOffline, PhoneLastSeen: t0.Add(-3 * 24 * time.Hour)},
		{State: bridge.PhoneOffline, PhoneLastSeen: t0.Add(-11 * 24 * time.Hour)},
		{State: bridge.PhoneOffline, PhoneLastSeen: t0.Add(-11 * 24 * time.Hour)},
		{State: bridge.LoggedOut, Reason: "device removed"},
		{State: bridge.StreamReplaced},
		{State: bridge.Outdated},
		{State: bridge.TempBanned, Until: t0.Add(24 * time.Hour).Local()},
		{State: bridge.Banned, Reason: "WhatsApp has banned this account"},
		{State: bridge.Connected},
	}
	var b strings.Builder
	for _, s := range steps {
		h.send(&s)
		h.sync()
		h.x.mu.Lock()
		p := h.x.presence[len(h.x.presence)-1]
		h.x.mu.Unlock()
		fmt.Fprintf(&b, "## state %d: presence %q\n", s.State, p)
		for _, m := range h.x.take() {
			b.WriteString("  " + describe(m) + "\n")
		}
	}
	fmt.Fprintf(&b, "## /status\n%s\n", h.cmd("status", ""))
	// A server that cannot promise everything: /status says what.
	h.x.mu.Lock()
	h.x.caveat = "the bot's server keeps no message archive and offers no stream management: a message you send just as waxmpp restarts or loses its connection can be lost"
	h.x.mu.Unlock()
	fmt.Fprintf(&b, "## /status on a server without archive or stream management\n%s\n", h.cmd("status", ""))
	golden(t, "status.golden", b.String())
}

// TestPairing: /pair starts pairing; QR codes arrive as an uploaded PNG
// link plus the code's text, link codes as text.
func TestPairing(t *testing.T) {
	h := newHarness(t)
	h.say("/pair")
	// The codes come 20 s apart; each is shown once its image is up.
	h.send(&bridge.PairCode{QR: "2@abc,def,ghi", Expires: t0.Add(time.Minute)})
	h.waitSent("2@abc,def,ghi")
	h.send(&bridge.PairCode{QR: "2@jkl,mno,pqr", Expires: t0.Add(80 * time.Second)})
	h.waitSent("2@jkl,mno,pqr")
	h.say("/pair +49 170 1234567")
	h.send(&bridge.PairCode{LinkCode: "ABCD-EFGH", Expires: t0.Add(3 * time.Minute)})
	h.send(&bridge.PairResult{OK: true, ID: me, Name: "Owner"})
	h.send(&bridge.PairResult{Err: "timed out"})
	h.wa.pairErr = bridge.ErrAlreadyPaired
	h.sync()
	h.say("/pair")
	eq(t, "WhatsApp", h.wa.take(), []string{`Pair ""`, `Pair "+491701234567"`})
	var b strings.Builder
	for _, m := range h.x.take() {
		b.WriteString(describe(m) + "\n")
	}
	if h.x.uploads != 2 {
		t.Errorf("uploads = %d, want 2", h.x.uploads)
	}
	golden(t, "pair.golden", b.String())
}

// TestZeroEvents: empty events and owner messages neither panic nor stop
// the core.
func TestZeroEvents(t *testing.T) {
	h := newHarness(t)
	h.send(&bridge.Message{}, &bridge.Edit{}, &bridge.Revoke{}, &bridge.Reaction{}, &bridge.PollVote{}, &bridge.Receipt{},
		&bridge.Typing{}, &bridge.Presence{}, &bridge.Call{}, &bridge.GroupChange{}, &bridge.Undecryptable{}, &bridge.ContactInfo{},
		&bridge.ChatInfo{}, &bridge.Alias{}, &bridge.Status{}, &bridge.PairCode{}, &bridge.PairResult{},
		&bridge.Message{Ref: bridge.MsgRef{Chat: family}, Kind: bridge.Poll}, &bridge.Message{Ref: bridge.MsgRef{Chat: alice}, Kind: bridge.Location},
		&bridge.Message{Ref: bridge.MsgRef{Chat: alice}, Kind: bridge.ContactCard}, &bridge.Message{Ref: bridge.MsgRef{Chat: alice}, Kind: bridge.Image})
	for _, m := range []bridge.OwnerEvent{&bridge.OwnerOther{}, &bridge.OwnerText{}, &bridge.OwnerReaction{}, &bridge.OwnerChatState{}, &bridge.OwnerText{Body: ">"}, &bridge.OwnerText{Body: "> \n"}, &bridge.OwnerText{Body: "/"}, &bridge.OwnerText{Body: "//"},
		&bridge.OwnerText{URL: "https://x.example/a.jpg"}, &bridge.OwnerCorrection{}, &bridge.OwnerRetraction{}, &bridge.OwnerDisplayed{}, &bridge.OwnerReceived{}} {
		h.owner(m)
	}
	if got := h.cmd("help", ""); !strings.HasPrefix(got, "Commands") {
		t.Errorf("core not answering after empty events: %q", got)
	}
}

// TestPairingUploadInBackground: uploading a QR image (up to 30 s on a slow
// server) never stops the core: it goes on answering while the upload
// hangs, shows the code when the upload ends, forgets a code that a newer
// one replaced during its upload, and shows nothing once pairing ended.
func TestPairingUploadInBackground(t *testing.T) {
	h := newHarness(t)
	gate := make(chan struct{})
	h.x.mu.Lock()
	h.x.gate = gate
	h.x.mu.Unlock()
	h.say("/pair")
	h.send(&bridge.PairCode{QR: "2@first", Expires: t0.Add(time.Minute)})
	answered := make(chan string, 1)
	go func() { answered <- h.cmd("status", "") }()
	select {
	case <-answered:
	case <-time.After(5 * time.Second):
		t.Fatal("the core is stuck in the QR upload")
	}
	eq(t, "while uploading", h.bodies(), []string{"Linking: a QR code follows. Scan it with WhatsApp → Settings → Linked devices → Link a device."})
	// A newer code replaces the first one during its upload.
	h.send(&bridge.PairCode{QR: "2@second", Expires: t0.Add(80 * time.Second)})
	close(gate)
	h.waitSent("2@second")
	eq(t, "the newer code only", h.bodies(), []string{
		"https://up.example/waxmpp-pair.png",
		"Scan this QR code with WhatsApp → Settings → Linked devices → Link a device (valid until 10:01:20). Its text, for a QR app: 2@second",
	})
	// Pairing ends while a code uploads: the code is not shown.
	gate = make(chan struct{})
	h.x.mu.Lock()
	h.x.gate = gate
	before := h.x.started
	h.x.mu.Unlock()
	h.send(&bridge.PairCode{QR: "2@third", Expires: t0.Add(100 * time.Second)})
	for end := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		h.x.mu.Lock()
		n := h.x.started
		h.x.mu.Unlock()
		if n > before {
			break
		}
		if time.Now().After(end) {
			t.Fatal("third upload did not start")
		}
	}
	h.send(&bridge.PairResult{OK: true, ID: me, Name: "Owner"})
	close(gate)
	eq(t, "after pairing", h.bodies(), []string{"✅ Linked to WhatsApp as Owner. Chats arrive here as they are active; /help lists the commands."})
	for end := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		h.x.mu.Lock()
		n := h.x.returned
		h.x.mu.Unlock()
		if n == before+1 {
			break
		}
		if time.Now().After(end) {
			t.Fatal("third upload did not return")
		}
	}
	for range 10 { // the loop takes the upload's result among these
		h.sync()
	}
	eq(t, "stale code", h.bodies(), nil)
}

// TestEditWindow: the core keeps WhatsApp's 20-minute edit window itself
// (WhatsApp drops a late edit without a word), counted from when the
// message went to WhatsApp: a message held for 25 minutes can be edited
// right after it was sent.
func TestEditWindow(t *testing.T) {
	h := newHarness(t)
	h.setup()
	h.send(msg(alice, alice, "A1", "hi"))
	h.say("/to alice")
	sent := h.say("typo")
	h.sync()
	h.advance(19 * time.Minute)
	h.owner(&bridge.OwnerCorrection{Target: sent, Body: "fixed"})
	h.bodies()
	eq(t, "within the window", h.wa.take(), []string{`SendText 491111@s.whatsapp.net "typo"`, `Edit 491111@s.whatsapp.net ` + h.waID(sent) + ` "fixed"`})
	h.advance(2 * time.Minute)
	h.owner(&bridge.OwnerCorrection{Target: sent, Body: "fixed again"})
	eq(t, "after the window", h.bodies(), []string{"Not edited: WhatsApp allows edits for 20 minutes only."})
	eq(t, "after the window: WhatsApp", h.wa.take(), nil)

	// Held for 25 minutes, then sent: the window starts at the send.
	h.send(msg(bob, bob, "B1", "yo"))
	held := h.say("held a while")
	h.sync()
	h.advance(25 * time.Minute)
	h.say("2")
	h.sync()
	h.advance(time.Minute)
	h.owner(&bridge.OwnerCorrection{Target: held, Body: "held, fixed"})
	h.bodies()
	eq(t, "held, then edited", h.wa.take(), []string{`SendText 492222@s.whatsapp.net "held a while"`, `Edit 492222@s.whatsapp.net ` + h.waID(held) + ` "held, fixed"`})
}

// TestHistoryAnchor: /history continues before the oldest message of the
// chat the core knows (older history included, across a restart); a chat
// with no known message gets plain words, and WhatsApp is not asked.
func TestHistoryAnchor(t *testing.T) {
	h := newHarness(t)
	h.setup()
	h.send(msg(alice, alice, "A2", "now"))
	h.send(&bridge.Message{Ref: bridge.MsgRef{Chat: alice, Sender: alice, ID: "A1"}, Time: t0.Add(-time.Hour), Kind: bridge.Text, Text: "old", History: true})
	h.send(&bridge.Message{Ref: bridge.MsgRef{Chat: alice, Sender: me, ID: "A3", FromMe: true}, Time: t0.Add(time.Hour), Kind: bridge.Text, Text: "newer"})
	h.send(&bridge.Message{Ref: bridge.MsgRef{Chat: family, Sender: me, ID: "F0", FromMe: true}, Time: t0.Add(-2 * time.Hour), Kind: bridge.Text, Text: "mine", History: true})
	h.restart()
	h.bodies()
	h.say("/history alice 30")
	h.say("/history family")
	h.say("/history work")
	got := h.bodies()
	want := []string{
		"Asked your phone for up to 30 earlier messages of Alice Liddell; they arrive marked as old. The phone must be online.",
		"Asked your phone for up to 20 earlier messages of Family; they arrive marked as old. The phone must be online.",
		"No message of Work has come through waxmpp yet, so there is nothing to ask for history before. Try again after its next message.",
	}
	eq(t, "answers", got, want)
	eq(t, "requests", h.wa.take(), []string{"RequestHistory 491111@s.whatsapp.net 30", "RequestHistory 120363001@g.us 20"})
	wantAnchors := []bridge.HistoryAnchor{
		{Ref: bridge.MsgRef{Chat: alice, ID: "A1"}, Time: t0.Add(-time.Hour)},
		{Ref: bridge.MsgRef{Chat: family, ID: "F0", FromMe: true}, Time: t0.Add(-2 * time.Hour)},
	}
	if fmt.Sprint(h.wa.history) != fmt.Sprint(wantAnchors) {
		t.Errorf("anchors %v, want %v", h.wa.history, wantAnchors)
	}
}

// TestHistoryAnchorOfOlderVersion: the anchors the WhatsApp adapter kept
// before the core decided them ("whatsapp.oldest/<chat>") still serve.
func TestHistoryAnchorOfOlderVersion(t *testing.T) {
	h := newHarness(t)
	h.setup()
	h.offline(func(db *store.DB) {
		if err := db.PutBlob("whatsapp.oldest/"+work, []byte(`{"id":"W0","me":true,"t":"2026-11-20T08:00:00Z"}`)); err != nil {
			t.Fatal(err)
		}
	})
	h.say("/history work 5")
	h.sync()
	want := []bridge.HistoryAnchor{{Ref: bridge.MsgRef{Chat: work, ID: "W0", FromMe: true}, Time: time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)}}
	if fmt.Sprint(h.wa.history) != fmt.Sprint(want) {
		t.Errorf("anchors %v, want %v", h.wa.history, want)
	}
}

// TestNamesThatCannotLie: a push name (anyone chooses their own) that is
// the owner's "You", a header, an address-book contact's name or another
// stranger's is shown with the number; groups of the same subject with
// their handles. The owner's own address-book names stay as they are.
func TestNamesThatCannotLie(t *testing.T) {
	h := newHarness(t)
	h.setup()
	push := func(chat, sender, id, name, text string) *bridge.Message {
		m := msg(chat, sender, id, text)
		m.PushName = name
		return m
	}
	h.send(
		msg(alice, alice, "A1", "hi, it's me"),
		push("495551@s.whatsapp.net", "495551@s.whatsapp.net", "S1", "Alice Liddell", "new number, pay me"),
		push("495552@s.whatsapp.net", "495552@s.whatsapp.net", "S2", "Eve", "one"),
		push("495553@s.whatsapp.net", "495553@s.whatsapp.net", "S3", "Eve\u200b", "two"),
		push("495554@s.whatsapp.net", "495554@s.whatsapp.net", "S4", "You∗ → ∗Alice Liddell", "fake"),
		push(family, "495555@s.whatsapp.net", "F1", "Bob∗ in ∗Work", "in family"),
		&bridge.ChatInfo{Chat: "120363009@g.us", Kind: bridge.Group, Name: "Family"},
		push("120363009@g.us", "495556@s.whatsapp.net", "G1", "Mallory\u202e:olleh", "the other family"),
		// Once the second Eve and the second Family exist, the first
		// ones are told apart too.
		push("495552@s.whatsapp.net", "495552@s.whatsapp.net", "S5", "Eve", "three"),
		push(family, "495555@s.whatsapp.net", "F2", "Bob∗ in ∗Work", "again"),
	)
	eq(t, "headers", h.bodies(), []string{
		"*Alice Liddell*: hi, it's me",
		"*Alice Liddell (+495551)*: new number, pay me",
		"*Eve*: one",
		"*Eve (+495553)*: two",
		"*You Alice Liddell (+495554)*: fake",
		"*Bob in Work (+495555)* in *Family*: in family",
		"*Mallory olleh* in *Family (family2)*: the other family",
		"*Eve (+495552)*: three",
		"*Bob in Work (+495555)* in *Family (family)*: again",
	})
	if got, want := h.cmd("chats", "fam"), "  family — Family (family) (group)\n  family2 — Family (family2) (group)"; got != want {
		t.Errorf("/chats fam = %q, want %q", got, want)
	}
}
