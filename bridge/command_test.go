package bridge_test

import (
	"strings"
	"testing"
	"time"

	"waxmpp/bridge"
)

// TestCommandsGolden runs every command, with good and bad arguments, in the
// bot conversation, and compares the answers (and what reached WhatsApp)
// with testdata/core/commands.golden.
func TestCommandsGolden(t *testing.T) {
	h := newHarness(t)
	h.setup()
	h.send(
		msg(alice, alice, "A1", "hi"),
		&bridge.Message{Ref: bridge.MsgRef{Chat: family, Sender: bob, ID: "F1"}, Time: t0.Add(time.Minute), Kind: bridge.Text, Text: "x"},
		&bridge.ContactInfo{User: "495555@s.whatsapp.net", FullName: "Alicia Keys"},
		&bridge.Status{State: bridge.Connected, PhoneLastSeen: t0.Add(-2 * time.Hour)},
	)
	h.bodies()
	lines := []string{
		"/help",
		"/HELP",
		"/chats",
		"/chats fam",
		"/chats zzz",
		"/to",
		"/to nobody",
		"/to alice bob",
		"/to ALICE",
		"/msg",
		"/msg alice",
		"/msg family hello group",
		"/new",
		"/new 4912345",
		"/new +49 12",
		"/new +499999999",
		"/new +493333",
		"/find",
		"/find ali",
		"/find nobody",
		"/history",
		"/history alice",
		"/history family 50",
		"/history family 0",
		"/history family many",
		"/history nobody",
		"/mute",
		"/mute family 8h",
		"/mute family 2d",
		"/mute family 1w",
		"/mute family soon",
		"/mute family",
		"/unmute family",
		"/unmute family",
		"/unmute a b",
		"/unmute",
		"/status",
		"/pair +12",
		"/logout",
		"/logout yes",
		"/cancel",
		"/room family",
		"/",
		"/frobnicate now",
		"/etc/hosts is broken",
	}
	var b strings.Builder
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
	// The same commands as XEP-0050 ad-hoc commands.
	for _, c := range [][2]string{{"status", ""}, {"msg", "alice via adhoc"}, {"to", "family"}, {"nope", ""}} {
		b.WriteString("adhoc " + c[0] + " " + c[1] + "\n  " + strings.ReplaceAll(h.cmd(c[0], c[1]), "\n", "\n  ") + "\n")
		for _, s := range h.wa.take() {
			b.WriteString("  [whatsapp] " + s + "\n")
		}
	}
	golden(t, "commands.golden", b.String())
}

// TestNamesSurviveRestart: the address book the core learned is saved, so
// /find knows a contact without a chat after a restart.
func TestNamesSurviveRestart(t *testing.T) {
	h := newHarness(t)
	h.send(&bridge.ContactInfo{User: "496666@s.whatsapp.net", FullName: "Zoe Zed"})
	h.restart()
	if got, want := h.cmd("find", "zoe"), "Zoe Zed: /new +496666"; got != want {
		t.Errorf("/find zoe after restart = %q, want %q", got, want)
	}
}

// TestRehandle: a chat first seen without a name gets a better handle when
// its name arrives; the first handle keeps working.
func TestRehandle(t *testing.T) {
	h := newHarness(t)
	h.send(msg("120363009@g.us", bob, "G1", "hi"))
	h.cmd("new", "+493333")
	h.send(
		&bridge.ChatInfo{Chat: "120363009@g.us", Kind: bridge.Group, Name: "Book Club"},
		&bridge.ContactInfo{User: carol, FullName: "Carol Ann", FirstName: "Carol"},
	)
	if got, want := h.cmd("chats", ""), "  bookclub — Book Club (group)\n→ carol — Carol Ann"; got != want {
		t.Errorf("/chats = %q, want %q", got, want)
	}
	for _, old := range []string{"group", "n493333"} {
		if got := h.cmd("msg", old+" still works"); !strings.HasPrefix(got, "Sent to") {
			t.Errorf("/msg %s: %q", old, got)
		}
	}
}
