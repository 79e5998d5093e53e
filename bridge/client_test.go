package bridge_test

import (
	"strings"
	"testing"
	"time"

	"waxmpp/bridge"
)

// ownerClients are the clients the golden shows, as their XMPP side
// reports them: caps node and identity name.
var ownerClients = []struct{ node, name string }{
	{"", ""}, // unknown: no caps, no identity
	{"http://profanity-im.github.io", "Profanity 0.13.1"},
	{"https://gajim.org", "Gajim"},
	{"https://poez.io", "Poezio"},
	{"https://dino.im", "Dino"},
	{"http://conversations.im", "Conversations"},
	{"http://monal.im/", "Monal"},
}

// TestClientsGolden: for each client, what the bot says when the owner
// comes online with it, /help and an unknown command typed there, the
// request to be added back, the answer to an encrypted message, and a
// relayed line (plain where the client shows XEP-0393 markers as typed):
// testdata/core/clients.golden.
func TestClientsGolden(t *testing.T) {
	var b strings.Builder
	for _, c := range ownerClients {
		h := newHarness(t)
		h.setup()
		const res = "laptop"
		meta := bridge.OwnerMeta{Resource: res}
		name := c.name
		if name == "" {
			name = "(unknown client)"
		}
		b.WriteString("# " + name + " " + c.node + "\n")
		h.owner(&bridge.OwnerClient{OwnerMeta: meta, Online: true, Node: c.node, Name: c.name, Bot: "bot@example.org/waxmpp"})
		h.owner(&bridge.OwnerRoster{Bot: "bot@example.org", Accepted: true})
		for _, s := range h.bodies() {
			b.WriteString("  " + strings.ReplaceAll(s, "\n", "\n  ") + "\n")
		}
		p := "/"
		if strings.Contains(h.cmd("help", ""), "!chats") {
			p = "!"
		}
		for _, body := range []string{p + "help", p + "frobnicate", p + "to nobody", "//x"} {
			b.WriteString("> " + body + "\n")
			h.owner(&bridge.OwnerText{OwnerMeta: meta, Body: body})
			for _, s := range h.bodies() {
				b.WriteString("  " + strings.ReplaceAll(s, "\n", "\n  ") + "\n")
			}
		}
		for _, scheme := range []string{"OMEMO", "OTR"} {
			b.WriteString("> (" + scheme + " encrypted)\n")
			h.owner(&bridge.OwnerEncrypted{OwnerMeta: meta, Scheme: scheme})
			for _, s := range h.bodies() {
				b.WriteString("  " + s + "\n")
			}
		}
		h.send(msg(alice, alice, "A1", "hi *there*"), msg(family, bob, "F1", "hello all"),
			&bridge.Message{Ref: bridge.MsgRef{Chat: alice, Sender: me, ID: "A2", FromMe: true}, Time: t0, Kind: bridge.Text, Text: "from my phone"},
			&bridge.GroupChange{Chat: family, Actor: bob, Kind: bridge.GroupJoined, Users: []bridge.UserID{bob}, Time: t0})
		for _, s := range h.bodies() {
			b.WriteString("  [relayed] " + s + "\n")
		}
		eq(t, name+": nothing to WhatsApp", h.wa.take(), nil)
		h.stop()
	}
	golden(t, "clients.golden", b.String())
}

// TestSlashNoteOnce: the owner is told once how to write commands in a
// client that takes "/" for itself, even after a restart.
func TestSlashNoteOnce(t *testing.T) {
	h := newHarness(t)
	prof := &bridge.OwnerClient{OwnerMeta: bridge.OwnerMeta{Resource: "p"}, Online: true, Node: "http://profanity-im.github.io"}
	h.owner(prof)
	if got := h.bodies(); len(got) != 1 || !strings.Contains(got[0], "with ! instead") {
		t.Fatalf("first time in Profanity: %q", got)
	}
	h.owner(&bridge.OwnerClient{OwnerMeta: bridge.OwnerMeta{Resource: "p"}})
	h.owner(prof)
	h.restart()
	h.owner(prof)
	eq(t, "told once", h.bodies(), nil)
}

// TestBangCommands: "!" starts every command, in any client; what the bot
// takes as a command never reaches WhatsApp.
func TestBangCommands(t *testing.T) {
	h := newHarness(t)
	h.setup()
	h.send(msg(alice, alice, "A1", "hi"))
	h.bodies()
	h.say("!to alice")
	eq(t, "!to", h.bodies(), []string{"→ Alice Liddell (alice): plain messages go there now."})
	h.say("!!wow")
	h.say("!msg alice once")
	h.say("!important meeting")
	eq(t, "to WhatsApp", h.wa.take(), []string{`SendText 491111@s.whatsapp.net "!wow"`, `SendText 491111@s.whatsapp.net "once"`})
	eq(t, "unknown", h.bodies(), []string{"Unknown command !important. /help lists the commands; to send text starting with !, write !!important."})
	sent := h.say("draft")
	h.wa.take()
	h.owner(&bridge.OwnerCorrection{Target: sent, Body: "!help"})
	eq(t, "correction to a command", h.bodies(), []string{"Not edited: a correction cannot be a command; write it anew."})
	eq(t, "correction: WhatsApp", h.wa.take(), nil)
	h.owner(&bridge.OwnerCorrection{Target: sent, Body: "!!draft"})
	if got := h.wa.take(); len(got) != 1 || !strings.HasSuffix(got[0], `"!draft"`) {
		t.Errorf("correction to !!draft: %q", got)
	}
}

// TestReadWhenAnswered: writing to a chat marks what it sent before as
// read on WhatsApp, per sender in groups, without any marker from the
// client; what came after is not, and displayed markers still work.
func TestReadWhenAnswered(t *testing.T) {
	h := newHarness(t)
	h.setup()
	h.send(msg(family, bob, "F1", "one"), msg(family, carol, "F2", "two"), msg(family, bob, "F3", "three"), msg(alice, alice, "A1", "hi"))
	h.say("/to family")
	h.wa.take()
	eq(t, "/to marks nothing", h.wa.takeReads(), nil)
	h.say("hello all")
	eq(t, "answered", h.wa.takeReads(), []string{
		"MarkRead 120363001@g.us 492222@s.whatsapp.net [F1 F3]",
		"MarkRead 120363001@g.us 493333@s.whatsapp.net [F2]",
	})
	h.say("again")
	eq(t, "nothing new", h.wa.takeReads(), nil)
	h.advance(time.Minute)
	f4 := &bridge.Message{Ref: bridge.MsgRef{Chat: family, Sender: carol, ID: "F4"}, Time: h.now(), Kind: bridge.Text, Text: "four"}
	h.send(f4)
	h.bodies()
	eq(t, "a new message is not read yet", h.wa.takeReads(), nil)
	h.owner(&bridge.OwnerDisplayed{Target: h.relayed(family, "F4")})
	eq(t, "displayed", h.wa.takeReads(), []string{"MarkRead 120363001@g.us 493333@s.whatsapp.net [F4]"})
	// A reply to Alice's message marks Alice's chat, not the current one.
	h.owner(&bridge.OwnerText{Body: "sure", ReplyTo: h.relayed(alice, "A1")})
	eq(t, "reply", h.wa.takeReads(), []string{"MarkRead 491111@s.whatsapp.net 491111@s.whatsapp.net [A1]"})
	// A chat found all read is looked at again once something new came.
	h.say("/to family")
	h.say("nothing to mark")
	eq(t, "all read", h.wa.takeReads(), nil)
	h.advance(time.Minute)
	h.send(&bridge.Message{Ref: bridge.MsgRef{Chat: family, Sender: bob, ID: "F5"}, Time: h.now(), Kind: bridge.Text, Text: "five"})
	h.bodies()
	h.advance(time.Second)
	h.say("answered again")
	eq(t, "answered after a new message", h.wa.takeReads(), []string{"MarkRead 120363001@g.us 492222@s.whatsapp.net [F5]"})
}

// TestRosterAsksOnce: the owner who does not see the bot's presence is
// asked once to add the bot; asked again only after having done it and
// undone it.
func TestRosterAsksOnce(t *testing.T) {
	h := newHarness(t)
	h.owner(&bridge.OwnerRoster{Bot: "bot@example.org", Accepted: true})
	eq(t, "no client known yet: not yet", h.bodies(), nil)
	h.owner(&bridge.OwnerClient{OwnerMeta: bridge.OwnerMeta{Resource: "r"}, Online: true})
	got := h.bodies()
	if len(got) != 1 || !strings.Contains(got[0], "whether WhatsApp is connected") || !strings.Contains(got[0], "bot@example.org") {
		t.Fatalf("asked: %q", got)
	}
	h.owner(&bridge.OwnerRoster{Bot: "bot@example.org", Accepted: true})
	h.restart()
	h.owner(&bridge.OwnerRoster{Bot: "bot@example.org", Accepted: true})
	h.owner(&bridge.OwnerClient{OwnerMeta: bridge.OwnerMeta{Resource: "r"}, Online: true})
	eq(t, "once", h.bodies(), nil)
	h.owner(&bridge.OwnerRoster{Bot: "bot@example.org", Accepted: true, SeesBot: true})
	eq(t, "added", h.bodies(), nil)
	h.owner(&bridge.OwnerRoster{Bot: "bot@example.org"})
	if got := h.bodies(); len(got) != 1 || !strings.Contains(got[0], "Accept my contact request") {
		t.Errorf("asked again: %q", got)
	}
}

// TestEncryptedNeverRelayed: an encrypted message is not sent, not held,
// and told once even when the archive replays it.
func TestEncryptedNeverRelayed(t *testing.T) {
	h := newHarness(t)
	h.setup()
	h.send(msg(alice, alice, "A1", "hi"))
	h.say("/to alice")
	h.bodies()
	h.wa.take()
	m := &bridge.OwnerEncrypted{OwnerMeta: bridge.OwnerMeta{ID: "enc1"}, Scheme: "OMEMO"}
	h.owner(m)
	h.owner(&bridge.OwnerEncrypted{OwnerMeta: bridge.OwnerMeta{ID: "enc1"}, Scheme: "OMEMO"})
	got := h.bodies()
	if len(got) != 1 || !strings.Contains(got[0], "Not sent") || !strings.Contains(got[0], "OMEMO") {
		t.Errorf("told: %q", got)
	}
	eq(t, "WhatsApp", h.wa.take(), nil)
	h.say("plain now")
	eq(t, "plain text goes", h.wa.take(), []string{`SendText 491111@s.whatsapp.net "plain now"`})
}

// TestPlainFollowsClients: relayed lines are plain while a client that
// shows XEP-0393 markers as typed is online, styled again after; the
// decision survives a restart until clients are known again.
func TestPlainFollowsClients(t *testing.T) {
	h := newHarness(t)
	h.setup()
	h.owner(&bridge.OwnerClient{OwnerMeta: bridge.OwnerMeta{Resource: "phone"}, Online: true, Node: "http://conversations.im"})
	h.send(msg(alice, alice, "A1", "one"))
	eq(t, "styled", h.bodies(), []string{"*Alice Liddell*: one"})
	h.owner(&bridge.OwnerClient{OwnerMeta: bridge.OwnerMeta{Resource: "desk"}, Online: true, Node: "http://profanity-im.github.io"})
	h.bodies()
	h.send(msg(alice, alice, "A2", "two"))
	eq(t, "plain", h.bodies(), []string{"Alice Liddell: two"})
	h.restart()
	h.send(msg(alice, alice, "A3", "three"))
	eq(t, "plain after restart", h.bodies(), []string{"Alice Liddell: three"})
	h.owner(&bridge.OwnerClient{OwnerMeta: bridge.OwnerMeta{Resource: "phone"}, Online: true, Node: "http://conversations.im"})
	h.send(msg(alice, alice, "A4", "four"))
	eq(t, "styled again", h.bodies(), []string{"*Alice Liddell*: four"})
	// A quote of a plain line routes as a quote of the styled one.
	h.owner(&bridge.OwnerText{Body: "> Alice Liddell: two\nyes"})
	if got := h.wa.take(); len(got) != 1 || !strings.Contains(got[0], `"yes" reply=A2`) {
		t.Errorf("quote of a plain line: %q", got)
	}
}

// TestPresenceStatusForms: the bot's status, which tells what to do, is
// written for the owner's client too, and again when the client changes.
func TestPresenceStatusForms(t *testing.T) {
	h := newHarness(t)
	h.send(&bridge.Status{State: bridge.NotPaired})
	h.owner(&bridge.OwnerClient{OwnerMeta: bridge.OwnerMeta{Resource: "p"}, Online: true, Node: "http://profanity-im.github.io"})
	h.owner(&bridge.OwnerClient{OwnerMeta: bridge.OwnerMeta{Resource: "p"}})
	h.sync()
	h.x.mu.Lock()
	got := h.x.presence
	h.x.mu.Unlock()
	eq(t, "presence", got, []string{
		"dnd|not linked to WhatsApp — send /pair",
		"dnd|not linked to WhatsApp — send !pair",
		"dnd|not linked to WhatsApp — send /pair",
	})
}
