package bridge_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"waxmpp/bridge"
)

// The tests of this file each pin down one way the owner's words could
// reach the wrong chat, run twice, or vanish; each failed before its fix.

// TestUnmatchedQuoteAsks: a "> " quote means "reply to that message"; when
// it matches no relayed message, the message is held and the owner asked,
// never sent to the current chat.
func TestUnmatchedQuoteAsks(t *testing.T) {
	h := newHarness(t)
	h.setup()
	h.send(msg(alice, alice, "A1", "hi"))
	h.say("/to alice")
	h.bodies()
	h.say("> to be or not to be\nthat is it")
	eq(t, "WhatsApp", h.wa.take(), nil)
	eq(t, "asked", h.bodies(), []string{"Send to 1) Alice Liddell? Answer 1."})
	h.say("1")
	eq(t, "answered", h.wa.take(), []string{"SendText 491111@s.whatsapp.net \"> to be or not to be\\nthat is it\""})
}

// TestQuoteWindowCountsRelayedOnly: a busy muted group (mapped, never
// relayed) does not push the relayed messages out of the quote window.
func TestQuoteWindowCountsRelayedOnly(t *testing.T) {
	h := newHarness(t)
	h.setup()
	h.send(msg(alice, alice, "A1", "dinner sunday?"))
	h.send(msg(bob, bob, "B1", "hey"))
	h.say("/to bob")
	h.say("/mute family")
	for i := range 300 {
		h.send(msg(family, bob, fmt.Sprintf("F%d", i), fmt.Sprintf("chatter %d", i)))
	}
	h.bodies()
	h.say("> dinner sunday?\nyes, 7pm")
	eq(t, "WhatsApp", h.wa.take(), []string{`SendText 491111@s.whatsapp.net "yes, 7pm" reply=A1`})
}

// TestQuoteWhatTheOwnerSees: the owner's client quotes the whole line the
// bot sent, header and fallback quotes included; that is what is matched.
func TestQuoteWhatTheOwnerSees(t *testing.T) {
	h := newHarness(t)
	h.setup()
	h.send(msg(bob, bob, "B1", "hey"))
	h.say("/to bob")
	// A reply to a message the bridge never saw: the bot's line carries
	// the quote in its body.
	h.send(&bridge.Message{Ref: bridge.MsgRef{Chat: alice, Sender: alice, ID: "A8"}, Time: t0, Kind: bridge.Text, Text: "and that", ReplyTo: &bridge.MsgRef{Chat: alice, ID: "OLD"}, QuotedText: "something old"})
	// A reply to a relayed message: the XEP-0428 fallback quote comes
	// first in the body that clients without XEP-0461 show.
	h.send(&bridge.Message{Ref: bridge.MsgRef{Chat: alice, Sender: alice, ID: "A9"}, Time: t0, Kind: bridge.Text, Text: "this one", ReplyTo: &bridge.MsgRef{Chat: alice, Sender: alice, ID: "A8"}})
	// A long text cut in the middle of a 4-byte emoji.
	long := strings.Repeat("a", 157) + "😀 and more after it"
	h.send(&bridge.Message{Ref: bridge.MsgRef{Chat: family, Sender: carol, ID: "F1"}, Time: t0, Kind: bridge.Text, Text: long, PushName: "Carol"})
	h.bodies()
	h.say("> *Alice Liddell*:\n> > something old\n> and that\nok!")
	h.say("> > and that\n> *Alice Liddell*: this one\nthat one")
	h.say("> *Carol* in *Family*: " + long + "\nlong indeed")
	eq(t, "WhatsApp", h.wa.take(), []string{
		`SendText 491111@s.whatsapp.net "ok!" reply=A8`,
		`SendText 491111@s.whatsapp.net "that one" reply=A9`,
		`SendText 120363001@g.us "long indeed" reply=F1`,
	})
}

// TestSpokeSurvivesCrash: a crash right after a message was relayed and
// mapped must not forget that its chat spoke.
func TestSpokeSurvivesCrash(t *testing.T) {
	h := newHarness(t)
	h.setup()
	h.send(msg(alice, alice, "A1", "hi"))
	h.say("/to alice")
	h.sync()
	// The routing state cannot be written: the power goes off right
	// after Bob's message was relayed and mapped.
	h.st.set("PutBlob", errCrash)
	h.send(msg(bob, bob, "B1", "are you there?"))
	h.sync()
	h.crash()
	h.bodies()
	h.say("yes")
	eq(t, "WhatsApp", h.wa.take(), nil)
	eq(t, "asked", h.bodies(), []string{"Send to 1) Alice Liddell 2) Bob? Answer 1 or 2."})
}

// TestQuestionNamesTellApart: two chats of the same name are told apart
// by their handles, and a person merged from a LID and a phone number is
// offered once.
func TestQuestionNamesTellApart(t *testing.T) {
	h := newHarness(t)
	alex1, alex2 := "495551@s.whatsapp.net", "495552@s.whatsapp.net"
	h.send(
		&bridge.ContactInfo{User: bridge.UserID(alex1), FullName: "Alex"},
		&bridge.ContactInfo{User: bridge.UserID(alex2), FullName: "Alex"},
		msg(alex1, alex1, "X1", "hi"), msg(alex2, alex2, "X2", "hello"),
		// Alice writes from her LID first, then the phone JID chat
		// appears too; then WhatsApp says they are one.
		msg("777@lid", "777@lid", "L1", "from the lid"),
		&bridge.ContactInfo{User: alice, FullName: "Alice Liddell", FirstName: "Alice"},
		msg(alice, alice, "A1", "from the phone"),
		&bridge.Alias{LID: "777@lid", Phone: alice},
	)
	h.bodies()
	h.say("who?")
	got := h.bodies()
	if len(got) != 1 {
		t.Fatalf("asked %q", got)
	}
	q := got[0]
	if strings.Count(q, "Alice") != 1 {
		t.Errorf("Alice offered twice: %q", q)
	}
	if !strings.Contains(q, "Alex (+495551)") || !strings.Contains(q, "Alex (+495552)") {
		t.Errorf("the two Alexes are not told apart: %q", q)
	}
}

// TestQuestionNumbersStay: a number keeps naming the chat it named when
// the owner saw it, however many messages are held after it, and an
// ambiguous quote adds its chats instead of replacing the question.
func TestQuestionNumbersStay(t *testing.T) {
	h := newHarness(t)
	h.setup()
	h.send(msg(alice, alice, "A1", "hi"))
	h.say("/to alice")
	h.send(msg(bob, bob, "B1", "lunch?"))
	h.bodies()
	h.say("sure")
	eq(t, "first question", h.bodies(), []string{"Send to 1) Alice Liddell 2) Bob? Answer 1 or 2."})
	h.send(msg(family, carol, "F1", "ok"), msg(work, carol, "W1", "ok"))
	h.say("at noon")
	h.say("> ok\nfine")
	got := h.bodies()
	for _, q := range got[2:] {
		if !strings.Contains(q, "1) Alice Liddell 2) Bob") {
			t.Errorf("renumbered: %q", q)
		}
	}
	h.say("2")
	eq(t, "to Bob, as first asked", h.wa.take(), []string{
		`SendText 492222@s.whatsapp.net "sure"`, `SendText 492222@s.whatsapp.net "at noon"`, "SendText 492222@s.whatsapp.net \"> ok\\nfine\"",
	})
}

// TestAnswerForms: answers as clients and people write them: "2.", "2)",
// a quote of the question, an XEP-0461 reply to it.
func TestAnswerForms(t *testing.T) {
	for _, form := range []string{"2.", "2)", " #2 ", "quote", "reply"} {
		t.Run(form, func(t *testing.T) {
			h := newHarness(t)
			h.setup()
			h.send(msg(alice, alice, "A1", "hi"))
			h.say("/to alice")
			h.send(msg(bob, bob, "B1", "lunch?"))
			h.bodies()
			h.say("sure")
			h.sync()
			var question bridge.Outgoing
			for _, m := range h.x.take() {
				if strings.HasPrefix(m.Body, "Send to") {
					question = m
				}
			}
			switch form {
			case "quote":
				h.say("> " + question.Body + "\n2")
			case "reply":
				h.owner(&bridge.OwnerText{Body: "2", ReplyTo: question.ID})
			default:
				h.say(form)
			}
			eq(t, "released", h.wa.take(), []string{`SendText 492222@s.whatsapp.net "sure"`})
			eq(t, "told", h.bodies(), []string{"→ Bob (now the current chat)"})
		})
	}
}

// TestHandleAndNameDisagree: after "Family" was renamed and a new group
// took the name, "family" (the old group's handle, the new group's name)
// is ambiguous: the bot asks.
func TestHandleAndNameDisagree(t *testing.T) {
	h := newHarness(t)
	h.setup()
	h.send(msg(family, bob, "F1", "hi"))
	h.send(&bridge.GroupChange{Chat: family, Actor: bob, Kind: bridge.GroupSubject, Subject: "Old Family"})
	h.send(&bridge.ChatInfo{Chat: "120363003@g.us", Kind: bridge.Group, Name: "Family"})
	h.send(msg("120363003@g.us", carol, "N1", "new group"))
	h.bodies()
	h.say("/msg family hello")
	eq(t, "WhatsApp", h.wa.take(), nil)
	got := h.bodies()
	if len(got) != 1 || !strings.Contains(got[0], "Old Family (family)") || !strings.Contains(got[0], "Family (family2)") {
		t.Fatalf("not asked between both: %q", got)
	}
	h.say("2")
	eq(t, "answered", h.wa.take(), []string{`SendText 120363003@g.us "hello"`})
	if got := h.cmd("to", "family"); !strings.Contains(got, "family2") {
		t.Errorf("/to family = %q, want the choice", got)
	}
}

// TestReplaysRunOnce: the server's archive replays owner messages after a
// restart; none runs again, whatever it was.
func TestReplaysRunOnce(t *testing.T) {
	h := newHarness(t)
	h.setup()
	h.send(msg(alice, alice, "A1", "hi"), msg(bob, bob, "B1", "yo"))
	a1 := h.relayed(alice, "A1")
	h.say("held")
	answer := &bridge.OwnerText{Body: "1"}
	h.owner(answer) // to Bob
	to := &bridge.OwnerText{Body: "/to alice"}
	h.owner(to)
	react := &bridge.OwnerReaction{Target: a1, Emojis: []string{"👍"}}
	h.owner(react)
	sent := h.say("typo")
	fix := &bridge.OwnerCorrection{Target: sent, Body: "fixed"}
	h.owner(fix)
	logout := &bridge.OwnerText{Body: "/logout yes"}
	h.owner(logout)
	h.send(msg(bob, bob, "B2", "?"))
	h.say("held again")
	h.bodies()
	h.wa.take()
	h.restart()
	h.bodies()
	for _, m := range []bridge.OwnerEvent{answer, to, react, fix, logout} {
		h.own <- m // replayed from the archive
	}
	h.sync()
	eq(t, "WhatsApp", h.wa.take(), nil)
	eq(t, "told", h.bodies(), nil)
	if got := h.cmd("status", ""); !strings.Contains(got, "Current chat: Alice Liddell; 1 held message") {
		t.Errorf("status after the replays: %q", got)
	}
}

// TestFailuresNotAcknowledged: what could not be done is not acknowledged
// to its side; it is done when it can be.
func TestFailuresNotAcknowledged(t *testing.T) {
	h := newHarness(t)
	h.setup()
	h.send(msg(alice, alice, "A1", "hi"))
	h.say("/to alice")
	h.bodies()
	// The outbox cannot be written (a full disk).
	h.x.mu.Lock()
	h.x.sendErr = errors.New("xmpp: outbox: no space left on device")
	h.x.mu.Unlock()
	b1 := msg(bob, bob, "B1", "are you there?")
	h.send(b1)
	h.sync()
	for _, ev := range h.wa.box.acked {
		if ev == bridge.Event(b1) {
			t.Fatal("a message that could not be relayed was acknowledged")
		}
	}
	h.x.mu.Lock()
	h.x.sendErr = nil
	h.x.mu.Unlock()
	h.restart()
	eq(t, "relayed after the restart", h.bodies(), []string{"*Bob*: are you there?"})
	if left := h.wa.box.left(); len(left) != 0 {
		t.Errorf("not acknowledged: %v", left)
	}

	// The routing state cannot be saved: the owner's message is not
	// acknowledged either.
	h.st.set("PutBlob", errCrash)
	m := &bridge.OwnerText{Body: "to whom?"}
	h.owner(m)
	h.sync()
	if left := h.x.box.left(); len(left) != 1 || left[0] != bridge.OwnerEvent(m) {
		t.Errorf("owner messages not acknowledged: %v, want the held one", left)
	}
}

// TestSendFailureHolds: a message WhatsApp could not take (not linked,
// reconnecting) is held for its chat and goes when WhatsApp is back.
func TestSendFailureHolds(t *testing.T) {
	h := newHarness(t)
	h.setup()
	h.send(msg(alice, alice, "A1", "hi"))
	h.say("/to alice")
	h.bodies()
	h.wa.sendErr = bridge.ErrNotPaired
	h.sync()
	h.send(&bridge.Status{State: bridge.Disconnected})
	h.say("are you there?")
	got := h.bodies()
	if len(got) != 1 || !strings.Contains(got[0], "goes when") {
		t.Errorf("told %q", got)
	}
	h.wa.sendErr = nil
	h.sync()
	h.restart() // held on disk
	h.send(&bridge.Status{State: bridge.Connected})
	eq(t, "sent when connected", h.wa.take(), []string{`SendText 491111@s.whatsapp.net "are you there?"`})
}

// TestNamesSurviveCrash: a contact's name and a LID↔phone link are not
// acknowledged to WhatsApp before they are saved.
func TestNamesSurviveCrash(t *testing.T) {
	h := newHarness(t)
	h.send(&bridge.ContactInfo{User: "496666@s.whatsapp.net", FullName: "Zoe Zed"})
	h.send(&bridge.Alias{LID: "888@lid", Phone: "496666@s.whatsapp.net"})
	h.sync()
	h.crash()
	if got, want := h.cmd("find", "zoe"), "Zoe Zed: /new +496666"; got != want {
		t.Errorf("/find zoe after a crash = %q, want %q", got, want)
	}
	h.send(msg("888@lid", "888@lid", "Z1", "from my lid"))
	eq(t, "the LID is Zoe", h.bodies(), []string{"*Zoe Zed*: from my lid"})
}

// TestCorrectionsSendText: a correction is routed text like the message it
// corrects: its command, quote and escape are not sent.
func TestCorrectionsSendText(t *testing.T) {
	h := newHarness(t)
	h.setup()
	h.send(msg(alice, alice, "A1", "dinner sunday?"), msg(bob, bob, "B1", "yo"))
	h.say("/to bob")
	viaMsg := h.say("/msg alice hi")
	viaQuote := h.say("> dinner sunday?\nyes")
	escaped := h.say("//shrug")
	h.wa.take()
	h.bodies()
	h.owner(&bridge.OwnerCorrection{Target: viaMsg, Body: "/msg alice hi there"})
	h.owner(&bridge.OwnerCorrection{Target: viaQuote, Body: "> dinner sunday?\nyes, at 7"})
	h.owner(&bridge.OwnerCorrection{Target: escaped, Body: "//shrugs"})
	h.owner(&bridge.OwnerCorrection{Target: viaMsg, Body: "/msg bob hi"})
	h.sync()
	eq(t, "WhatsApp", h.wa.take(), []string{
		`Edit 491111@s.whatsapp.net ` + h.waID(viaMsg) + ` "hi there"`,
		`Edit 491111@s.whatsapp.net ` + h.waID(viaQuote) + ` "yes, at 7"`,
		`Edit 492222@s.whatsapp.net ` + h.waID(escaped) + ` "/shrugs"`,
	})
	got := h.bodies()
	if len(got) != 1 || !strings.HasPrefix(got[0], "Not edited:") {
		t.Errorf("a correction naming another chat: told %q", got)
	}
	// A correction of a held message to nothing but spaces drops it.
	h.send(msg(alice, alice, "A2", "?"))
	held := h.say("held")
	h.owner(&bridge.OwnerCorrection{Target: held, Body: "  "})
	h.say("/to bob")
	eq(t, "nothing sent", h.wa.take(), nil)
}

// TestGroupSenderIdentities: a group member known by LID and phone number
// is one sender: a revoke or edit under the other identity finds the
// relayed message.
func TestGroupSenderIdentities(t *testing.T) {
	h := newHarness(t)
	h.setup()
	h.send(msg(family, "999@lid", "F1", "from the lid"))
	h.send(&bridge.Alias{LID: "999@lid", Phone: carol})
	h.send(msg(family, carol, "F2", "from the phone"))
	f1, f2 := h.relayed(family, "F1"), h.relayed(family, "F2")
	h.bodies()
	h.send(&bridge.Edit{Ref: bridge.MsgRef{Chat: family, Sender: carol, ID: "F1"}, Text: "edited"})
	h.send(&bridge.Revoke{Ref: bridge.MsgRef{Chat: family, Sender: "999@lid", ID: "F2"}, By: "999@lid"})
	h.sync()
	var got []string
	for _, m := range h.x.take() {
		got = append(got, m.Replace+"|"+m.Retract)
	}
	eq(t, "corrected and retracted", got, []string{f1 + "|", "|" + f2})
}

// TestLocationID: a location pin carries a WhatsApp id derived from the
// owner's message, so a resend after a crash is dropped by WhatsApp.
func TestLocationID(t *testing.T) {
	h := newHarness(t)
	h.setup()
	h.send(msg(alice, alice, "A1", "hi"))
	h.say("/to alice")
	h.wa.take()
	h.st.set("PutMessages", errCrash) // sent, then the power goes off
	pin := &bridge.OwnerText{Body: "geo:52.52,13.405"}
	h.owner(pin)
	h.sync()
	h.crash()
	h.sync()
	eq(t, "WhatsApp", h.wa.take(), []string{"SendLocation 491111@s.whatsapp.net 52.52,13.405", "SendLocation 491111@s.whatsapp.net 52.52,13.405"})
	if ids := h.wa.locIDs; len(ids) != 2 || ids[0] != ids[1] || !strings.HasPrefix(ids[0], "3EB0") {
		t.Errorf("the pin and its resend had ids %q, want the same derived id", ids)
	}
}

// TestTypingFollowsTheText: while the owner writes /msg or replies to
// another chat, their typing does not go to the current chat.
func TestTypingFollowsTheText(t *testing.T) {
	h := newHarness(t)
	h.setup()
	h.send(msg(alice, alice, "A1", "hi"), msg(bob, bob, "B1", "yo"))
	b1 := h.relayed(bob, "B1")
	h.say("/to alice")
	h.say("/msg bob one")
	h.owner(&bridge.OwnerChatState{State: bridge.Composing})
	h.owner(&bridge.OwnerText{Body: "two", ReplyTo: b1})
	h.owner(&bridge.OwnerChatState{State: bridge.Composing})
	h.say("to alice")
	h.owner(&bridge.OwnerChatState{State: bridge.Composing})
	h.sync()
	eq(t, "WhatsApp", h.wa.take(), []string{
		`SendText 492222@s.whatsapp.net "one"`,
		`SendText 492222@s.whatsapp.net "two" reply=B1`,
		`SendText 491111@s.whatsapp.net "to alice"`,
		"SetTyping 491111@s.whatsapp.net 1",
	})
}

// TestNewTrunkZero: "+49 (0)170 …", as numbers are often written, is the
// number without the trunk 0.
func TestNewTrunkZero(t *testing.T) {
	h := newHarness(t)
	h.cmd("new", "+49 (0)170 1234567")
	eq(t, "WhatsApp", h.wa.take(), []string{"Lookup +491701234567"})
}
