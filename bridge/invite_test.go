package bridge_test

import (
	"strings"
	"testing"
	"time"

	"waxmpp/bridge"
)

// TestInviteGolden runs /invite, /moved and /invites with good and bad
// arguments in the bot conversation, with what follows a move (the mark in
// /chats, the reminder on relayed messages, the offer when the owner writes
// there), and compares the transcript — answers, what reached WhatsApp —
// with testdata/core/invite.golden.
func TestInviteGolden(t *testing.T) {
	h := newHarness(t)
	h.setup()
	h.send(
		msg(alice, alice, "A1", "hi"),
		&bridge.Message{Ref: bridge.MsgRef{Chat: family, Sender: bob, ID: "F1"}, Time: t0.Add(time.Minute), Kind: bridge.Text, Text: "x"},
		msg(bob, bob, "B1", "yo"),
		&bridge.Message{Ref: bridge.MsgRef{Chat: "499999@s.whatsapp.net", Sender: "499999@s.whatsapp.net", ID: "N1"}, Time: t0, Kind: bridge.Text, Text: "who am I"},
		&bridge.Status{State: bridge.Connected},
	)
	h.bodies()
	var b strings.Builder
	run := func(lines ...string) {
		for _, l := range lines {
			h.say(l)
			b.WriteString("> " + l + "\n")
			for _, s := range h.bodies() {
				b.WriteString("  " + strings.ReplaceAll(s, "\n", "\n  ") + "\n")
			}
			for _, c := range h.wa.take() {
				b.WriteString("  [whatsapp] " + c + "\n")
			}
		}
	}
	relay := func(m *bridge.Message) {
		h.send(m)
		b.WriteString("[relayed] " + m.Text + "\n")
		for _, s := range h.bodies() {
			b.WriteString("  " + strings.ReplaceAll(s, "\n", "\n  ") + "\n")
		}
	}
	run(
		"/invite",
		"/invite nobody",
		"/invite again",
		"/invite alice",
		"/invite alice",
		"/invite ALICE again",
		"/invite family",
		"/invite n499999",
		"/invites",
		"/invite text",
		"/moved",
		"/moved alice",
		"/moved alice notanaddress",
		"/moved alice a@b@c",
		"/moved alice alice@exa_mple.org",
		"/moved alice me@example.org",
		"/moved nobody alice@example.net",
		"/moved nobody at all",
		"/moved alice xmpp:alice@example.net?roster",
		"/moved alice alice@example.net",
		"/moved alice",
		"/moved bob bob@example.net",
		"/chats",
		"/invite alice",
	)
	relay(msg(alice, alice, "A2", "still on WhatsApp"))
	// A quote of the relayed message, reminder and all, still finds it.
	run("> *Alice*: still on WhatsApp\n> ↪ on XMPP: xmpp:alice@example.net?message\nok, see you there")
	run("/msg alice one more here", "/msg alice and another")
	h.advance(31 * 24 * time.Hour)
	run("/invite family", "/invites", "/moved bob forget", "/moved bob forget", "/invites")
	// The same commands as XEP-0050 ad-hoc commands.
	for _, c := range [][2]string{{"invite", "bob again"}, {"invite", ""}, {"moved", "family family@muc.example.org"}, {"invites", ""}} {
		b.WriteString("adhoc " + c[0] + " " + c[1] + "\n  " + strings.ReplaceAll(h.cmd(c[0], c[1]), "\n", "\n  ") + "\n")
		for _, s := range h.wa.take() {
			b.WriteString("  [whatsapp] " + s + "\n")
		}
	}
	relay(&bridge.Message{Ref: bridge.MsgRef{Chat: family, Sender: bob, ID: "F2"}, Time: t0.Add(32 * 24 * time.Hour), Kind: bridge.Text, Text: "the group speaks"})
	golden(t, "invite.golden", b.String())
}

// TestInviteLanguages: the built-in invitation in each language, to a
// person and to a group, and the owner's own templates, as WhatsApp gets
// them (testdata/core/invite-texts.golden).
func TestInviteLanguages(t *testing.T) {
	h := newHarness(t)
	h.setup()
	h.send(msg(alice, alice, "A1", "hi"), msg(family, bob, "F1", "x"), &bridge.Status{State: bridge.Connected})
	var b strings.Builder
	for _, cfg := range []bridge.InviteConfig{
		{Lang: "en"}, {Lang: "de"}, {Lang: "fr"}, {Lang: "es"}, {Lang: "it"},
		{Lang: "de", Text: "Moin {name}, hier: {link}", GroupText: "Moin zusammen: {uri}", Link: "https://xmpp.link/#"},
	} {
		cfg.Address = "me@example.org"
		h.stop()
		h.invite = cfg
		h.start()
		for _, chat := range []string{"alice", "family"} {
			h.say("/invite " + chat + " again")
			h.bodies()
			b.WriteString("== " + cfg.Lang + " " + chat + "\n")
			for _, c := range h.wa.take() {
				b.WriteString(c + "\n")
			}
		}
	}
	golden(t, "invite-texts.golden", b.String())
}

// TestInviteOnce: an invitation is sent once. When the power goes off
// after WhatsApp took it and before anything was recorded, the server's
// archive replays the command and it is sent again with the same WhatsApp
// id (derived from the owner's message), which recipients drop; once it
// was recorded, a replay sends nothing.
func TestInviteOnce(t *testing.T) {
	h := newHarness(t)
	h.setup()
	h.send(msg(alice, alice, "A1", "hi"), &bridge.Status{State: bridge.Connected})
	h.bodies()
	h.wa.take()
	h.st.set("PutInvite", errCrash)
	h.st.set("PutMessages", errCrash)
	h.owner(&bridge.OwnerText{OwnerMeta: bridge.OwnerMeta{ID: "inv1"}, Body: "/invite alice"})
	h.sync()
	h.crash()
	h.bodies()
	got := h.wa.take()
	if len(got) != 2 || got[0] != got[1] || !strings.HasPrefix(got[0], "SendText "+alice) {
		t.Fatalf("WhatsApp got %q, want the invitation and its resend", got)
	}
	if ids := h.wa.textIDs; len(ids) != 2 || ids[0] != ids[1] || !strings.HasPrefix(ids[0], "3EB0") {
		t.Errorf("the invitation and its resend had ids %q, want the same derived id", ids)
	}
	if got := h.cmd("invites", ""); !strings.Contains(got, "0 of 1 invited friend is on XMPP") {
		t.Errorf("/invites = %q", got)
	}
	// The archive replays it once more: it was recorded, nothing is sent.
	h.own <- &bridge.OwnerText{OwnerMeta: bridge.OwnerMeta{ID: "inv1", Time: h.now()}, Body: "/invite alice"}
	h.sync()
	if got := h.wa.take(); len(got) != 0 {
		t.Errorf("a replay of the recorded invitation sent %q", got)
	}
}

// The faultStore's invitation methods (fault_test.go has the others).

func (f *faultStore) Invite(chat string) (bridge.Invite, error) {
	if err := f.err("Invite"); err != nil {
		return bridge.Invite{}, err
	}
	return f.DB.Invite(chat)
}

func (f *faultStore) PutInvite(inv bridge.Invite) error {
	if err := f.err("PutInvite"); err != nil {
		return err
	}
	return f.DB.PutInvite(inv)
}

func (f *faultStore) Invites() ([]bridge.Invite, error) {
	if err := f.err("Invites"); err != nil {
		return nil, err
	}
	return f.DB.Invites()
}

// TestInviteRoom: a group that has its own room (/room) is invited to the
// room (?join, the room link); a person with a room is still invited to
// the owner's address.
func TestInviteRoom(t *testing.T) {
	h, fr := newRoomHarness(t, false)
	h.stop()
	h.invite = bridge.InviteConfig{Address: "me@example.org"}
	h.start()
	h.setup()
	h.send(msg(alice, alice, "A1", "hi"), msg(family, bob, "F1", "x"), &bridge.Status{State: bridge.Connected})
	h.say("/room family")
	h.say("/room alice")
	h.sent()
	fr.take()
	h.wa.take()
	h.say("/invite family")
	h.say("/invite alice")
	got := h.wa.take()
	want := []string{
		`SendText 120363001@g.us "Hi all! This group is on XMPP too, a free chat network where anyone can write to anyone, like email.\n\nJoin with one tap: https://conversations.im/j/room1@conf.example\nIn an XMPP app: xmpp:room1@conf.example?join\n\nNo app yet? Conversations or Quicksy on Android, Monal or Siskin on iPhone, Dino or Gajim on a computer."`,
		`SendText 491111@s.whatsapp.net "Hi Alice! I'm on XMPP now, a free chat network where anyone can write to anyone, like email. You can reach me at me@example.org.\n\nAdd me with one tap: https://conversations.im/i/me@example.org\nIn an XMPP app: xmpp:me@example.org?roster\n\nNo app yet? Conversations or Quicksy on Android, Monal or Siskin on iPhone, Dino or Gajim on a computer."`,
	}
	eq(t, "the invitations", got, want)
}

// TestInviteReminderMedia: a photo from a friend who moved carries the
// reminder on its line (the one naming chat and sender), not on the URL.
func TestInviteReminderMedia(t *testing.T) {
	h := newMediaHarness(t, false, "")
	h.send(text(alice, "T0", "hi"))
	h.waitSent(1)
	if got := h.cmd("moved", "alice alice@example.net"); !strings.HasPrefix(got, "Noted: ") {
		t.Fatalf("/moved answered %q", got)
	}
	h.send(h.photo("P1", "the beach", testFile(t, "photo.jpg")))
	got := h.waitSent(3)
	if want := "*Alice*: 📷 photo: the beach\n↪ on XMPP: xmpp:alice@example.net?message"; got[1].Body != want {
		t.Errorf("the photo's line is %q, want %q", got[1].Body, want)
	}
	if got[2].Body != got[2].URL {
		t.Errorf("the file message is %q (url %q): the URL alone", got[2].Body, got[2].URL)
	}
}
