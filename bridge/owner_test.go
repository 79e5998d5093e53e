package bridge_test

import (
	"errors"
	"strings"
	"testing"

	"waxmpp/bridge"
	"waxmpp/bridge/store"
)

// TestRouting drives the routing rules end to end: each step is what the owner or
// WhatsApp does, then what reached WhatsApp and what the owner was told.
func TestRouting(t *testing.T) {
	h := newHarness(t)
	h.setup()

	// Nothing relayed yet, no current chat: hold and say how to choose.
	h.say("hello?")
	eq(t, "no chat", h.bodies(), []string{"Not sent yet — which chat? Reply to one of its messages, or send /to <chat> (/chats lists them). /cancel drops it."})
	eq(t, "no chat: WhatsApp", h.wa.take(), nil)
	// /to releases it there and sets the current chat.
	h.send(msg(alice, alice, "A1", "hi, are you there?"))
	h.say("/to alice")
	eq(t, "/to releases", h.wa.take(), []string{`SendText 491111@s.whatsapp.net "hello?"`})
	eq(t, "/to releases: owner", h.bodies(), []string{"*Alice Liddell*: hi, are you there?", "→ Alice Liddell (now the current chat)"})

	// Rule 4: the current chat, nobody else spoke.
	h.say("yes")
	eq(t, "plain to current", h.wa.take(), []string{`SendText 491111@s.whatsapp.net "yes"`})

	// Alice again: still only the current chat spoke.
	h.send(msg(alice, alice, "A2", "great"))
	h.say("indeed")
	eq(t, "current spoke", h.wa.take(), []string{`SendText 491111@s.whatsapp.net "indeed"`})

	// Bob speaks: plain text is held and the owner is asked.
	h.send(msg(bob, bob, "B1", "lunch?"))
	h.bodies()
	h.say("sure")
	eq(t, "held", h.wa.take(), nil)
	eq(t, "ask", h.bodies(), []string{"Send to 1) Alice Liddell 2) Bob? Answer 1 or 2."})
	// A further plain message is held too, in order.
	h.say("at noon")
	eq(t, "held 2", h.bodies(), []string{"2 held messages: Send to 1) Alice Liddell 2) Bob? Answer 1 or 2."})
	// A bad answer is refused; nothing sent.
	h.say("3")
	eq(t, "bad answer", h.bodies(), []string{"Answer a number from 1 to 2, or a chat's handle; /cancel drops the held message."})
	eq(t, "bad answer: WhatsApp", h.wa.take(), nil)
	// The answer releases both to Bob, in order; Bob becomes current.
	h.say("2")
	eq(t, "answer", h.wa.take(), []string{`SendText 492222@s.whatsapp.net "sure"`, `SendText 492222@s.whatsapp.net "at noon"`})
	eq(t, "answer: owner", h.bodies(), []string{"→ Bob (now the current chat)"})
	h.say("see you")
	eq(t, "after answer", h.wa.take(), []string{`SendText 492222@s.whatsapp.net "see you"`})

	// Rule 1: an XEP-0461 reply goes to that chat, as a WhatsApp reply,
	// even though Bob is current; the current chat stays Bob.
	h.send(&bridge.Message{Ref: bridge.MsgRef{Chat: family, Sender: carol, ID: "F1"}, Time: t0, Kind: bridge.Text, Text: "dinner sunday?", PushName: "Carol"})
	fid := h.relayed(family, "F1")
	h.owner(&bridge.OwnerText{Body: "count me in", ReplyTo: fid})
	eq(t, "reply", h.wa.take(), []string{`SendText 120363001@g.us "count me in" reply=F1`})
	// Family spoke since the owner wrote to Bob: plain text asks.
	h.say("and you bob?")
	eq(t, "after reply", h.bodies(), []string{"*Carol* in *Family*: dinner sunday?", "Send to 1) Bob 2) Family? Answer 1 or 2."})
	// The answer may be a handle.
	h.say("bob")
	eq(t, "handle answer", h.wa.take(), []string{`SendText 492222@s.whatsapp.net "and you bob?"`})
	h.bodies()

	// A reply to the owner's own earlier message goes to its chat.
	h.owner(&bridge.OwnerText{Body: "also", ReplyTo: "own1"})
	eq(t, "reply to own", h.wa.take(), []string{`SendText 491111@s.whatsapp.net "also" reply=` + h.waID("own1")})
	// A reply to something not in the map is refused, never routed.
	h.owner(&bridge.OwnerText{Body: "hm", ReplyTo: "bot-command-answer"})
	eq(t, "unknown reply", h.bodies(), []string{"Not sent: I don't know which chat the message you replied to belongs to. Use /msg <chat> <text>."})
	eq(t, "unknown reply: WhatsApp", h.wa.take(), nil)

	// Rule 2: a "> " quote of a relayed message, header included as
	// clients quote it; the quote is removed and it is a WhatsApp reply.
	h.owner(&bridge.OwnerText{Body: "> *Carol* in *Family*: dinner sunday?\nyes, 7pm"})
	eq(t, "quote", h.wa.take(), []string{`SendText 120363001@g.us "yes, 7pm" reply=F1`})
	// A quote matching nothing still means "that message": held and
	// asked, even though nobody else spoke; the answer sends it as it is.
	h.bodies()
	h.say("> to be or not to be\nthat is it")
	eq(t, "unmatched quote", h.wa.take(), nil)
	eq(t, "unmatched quote: asked", h.bodies(), []string{"Send to 1) Bob? Answer 1."})
	h.say("1")
	eq(t, "unmatched quote answered", h.wa.take(), []string{"SendText 492222@s.whatsapp.net \"> to be or not to be\\nthat is it\""})
	// The same words in two chats: hold and ask between them.
	h.send(msg(alice, alice, "A3", "ok"), msg(work, carol, "W1", "ok"))
	h.bodies()
	h.say("> ok\nfine")
	eq(t, "ambiguous quote", h.bodies(), []string{"Send to 1) Work 2) Alice Liddell? Answer 1 or 2."})
	h.say("1")
	eq(t, "ambiguous quote answered", h.wa.take(), []string{`SendText 120363002@g.us "fine" reply=W1`})
	h.bodies()

	// Rule 3: /msg sends once; the current chat stays.
	h.say("/msg alice one-off")
	eq(t, "/msg", h.wa.take(), []string{`SendText 491111@s.whatsapp.net "one-off"`})
	h.say("/MSG nobody hi")
	eq(t, "/msg unknown", h.bodies(), []string{`Not sent: no chat "nobody". /chats lists them, /find <name> searches, /new <+number> starts one.`})
	h.say("still work")
	eq(t, "after /msg", h.wa.take(), []string{`SendText 120363002@g.us "still work"`})

	// "//" escapes a slash; /cancel drops held messages.
	h.say("//shrug")
	eq(t, "escape", h.wa.take(), []string{`SendText 120363002@g.us "/shrug"`})
	h.send(msg(bob, bob, "B2", "?"))
	h.say("held")
	h.say("/cancel")
	eq(t, "cancel", h.bodies(), []string{"*Bob*: ?", "Send to 1) Work 2) Bob? Answer 1 or 2.", "Dropped 1 held message."})
	eq(t, "cancel: WhatsApp", h.wa.take(), nil)

	// geo: URI → a location pin.
	h.say("/to work")
	h.say("geo:52.52,13.405")
	eq(t, "geo", h.wa.take(), []string{"SendLocation 120363002@g.us 52.52,13.405"})
}

// waID is the WhatsApp id the owner's message was sent with.
func (h *harness) waID(ownerID string) string {
	h.t.Helper()
	l, err := h.db.MessageByXMPP(ownerID)
	if err != nil {
		h.t.Fatal(err)
	}
	return l.WA.ID
}

// TestHeldSurvivesRestart: a held message and the "spoke since" set are in
// the store; after a restart the bot asks again and the answer sends it.
func TestHeldSurvivesRestart(t *testing.T) {
	h := newHarness(t)
	h.setup()
	h.send(msg(alice, alice, "A1", "hi"))
	h.say("/to alice")
	h.send(msg(bob, bob, "B1", "hey"))
	id := h.say("who gets this?")
	h.bodies()
	h.restart()
	eq(t, "asked again", h.bodies(), []string{"Send to 1) Alice Liddell 2) Bob? Answer 1 or 2."})
	// The XMPP side redelivers the message: not held twice.
	h.owner(&bridge.OwnerText{OwnerMeta: bridge.OwnerMeta{ID: id}, Body: "who gets this?"})
	h.say("2")
	eq(t, "released once", h.wa.take(), []string{`SendText 492222@s.whatsapp.net "who gets this?"`})
	// Bob is current now, and nobody spoke since: plain text goes there.
	h.restart()
	h.say("and this")
	eq(t, "after restart", h.wa.take(), []string{`SendText 492222@s.whatsapp.net "and this"`})
	// "Spoke since" survives a restart too.
	h.send(msg(alice, alice, "A2", "?"))
	h.restart()
	h.say("careful")
	eq(t, "since survives", h.wa.take(), nil)
}

// TestOwnerDuplicates: an owner message id already sent is not sent again,
// and the WhatsApp id is derived from it (a resend after a crash is
// dropped by WhatsApp).
func TestOwnerDuplicates(t *testing.T) {
	h := newHarness(t)
	h.setup()
	h.send(msg(alice, alice, "A1", "hi"))
	h.say("/to alice")
	h.owner(&bridge.OwnerText{OwnerMeta: bridge.OwnerMeta{ID: "dup-1"}, Body: "once"})
	h.owner(&bridge.OwnerText{OwnerMeta: bridge.OwnerMeta{ID: "dup-1"}, Body: "once"})
	eq(t, "sent once", h.wa.take(), []string{`SendText 491111@s.whatsapp.net "once"`})
	h.sync()
	l, err := h.db.MessageByXMPP("dup-1")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(l.WA.ID, "3EB0") || len(l.WA.ID) != 22 || l.WA.Chat != alice {
		t.Errorf("owner message mapped as %+v, want a derived 3EB0… id in %s", l.WA, alice)
	}
}

// TestSendFailureKeepsHeld: a held message that WhatsApp refuses stays held.
func TestSendFailureKeepsHeld(t *testing.T) {
	h := newHarness(t)
	h.setup()
	h.send(msg(alice, alice, "A1", "hi"), msg(bob, bob, "B1", "yo"))
	h.say("to whom")
	h.wa.sendErr = bridge.ErrNotPaired
	h.sync()
	h.say("1")
	got := h.bodies()
	if len(got) < 1 || !strings.Contains(got[len(got)-1], "not linked to WhatsApp") {
		t.Errorf("failure not told: %q", got)
	}
	h.wa.sendErr = nil
	h.sync()
	h.say("/to bob")
	eq(t, "sent later", h.wa.take(), []string{`SendText 492222@s.whatsapp.net "to whom"`})
}

// TestHeldCorrected: correcting a held message changes what is sent;
// retracting it drops it.
func TestHeldCorrected(t *testing.T) {
	h := newHarness(t)
	h.setup()
	h.send(msg(alice, alice, "A1", "hi"), msg(bob, bob, "B1", "yo"))
	h.bodies()
	first := h.say("teh text")
	second := h.say("oops")
	h.owner(&bridge.OwnerCorrection{Target: first, Body: "the text"})
	h.owner(&bridge.OwnerRetraction{Target: second})
	eq(t, "told", h.bodies(), []string{
		"Send to 1) Bob 2) Alice Liddell? Answer 1 or 2.",
		"2 held messages: Send to 1) Bob 2) Alice Liddell? Answer 1 or 2.",
		"Dropped the held message.",
	})
	h.say("2")
	eq(t, "sent", h.wa.take(), []string{`SendText 491111@s.whatsapp.net "the text"`})
}

// routeV1 is the routing state as versions with one OwnerMessage struct
// saved it (json.Marshal of their routeState): two held messages, the
// question, and who spoke since.
const routeV1 = `{"since":["492222@s.whatsapp.net"],"held":[` +
	`{"ID":"own7","Body":"who gets this?","ReplyTo":"","Replace":"","Retract":"","React":null,"Displayed":"","Received":"","Typing":false,"ChatState":0,"URL":"","Time":"2026-11-22T10:00:00Z","Archive":""},` +
	`{"ID":"own8","Body":"and this","ReplyTo":"","Replace":"","Retract":"","React":null,"Displayed":"","Received":"","Typing":false,"ChatState":0,"URL":"","Time":"2026-11-22T10:01:00Z","Archive":"arch8"}],` +
	`"question":["491111@s.whatsapp.net","492222@s.whatsapp.net"]}`

// TestRouteStateFromOlderVersion: held messages saved by an older version
// load: the question is asked again, a redelivered one is not held twice,
// a correction still finds its held message, and the answer sends them.
func TestRouteStateFromOlderVersion(t *testing.T) {
	h := newHarness(t)
	h.setup()
	h.send(msg(alice, alice, "A1", "hi"), msg(bob, bob, "B1", "yo"))
	h.say("/to alice")
	h.bodies()
	h.offline(func(db *store.DB) {
		if err := db.PutBlob("core.route", []byte(routeV1)); err != nil {
			t.Fatal(err)
		}
	})
	eq(t, "asked again", h.bodies(), []string{"2 held messages: Send to 1) Alice Liddell 2) Bob? Answer 1 or 2."})
	h.owner(&bridge.OwnerText{OwnerMeta: bridge.OwnerMeta{ID: "own7"}, Body: "who gets this?"})
	h.owner(&bridge.OwnerCorrection{Target: "own8", Body: "and this, corrected"})
	eq(t, "nothing new", h.bodies(), nil)
	h.say("2")
	eq(t, "released", h.wa.take(), []string{`SendText 492222@s.whatsapp.net "who gets this?"`, `SendText 492222@s.whatsapp.net "and this, corrected"`})
	if got := h.waID("own7"); got == "" {
		t.Error("own7 not mapped")
	}
}

// TestPlainWords: what fails inside (the store, WhatsApp) reaches the owner
// in plain words; the internal error text goes to the log only.
func TestPlainWords(t *testing.T) {
	h := newHarness(t)
	h.setup()
	h.send(msg(alice, alice, "A1", "hi"))
	h.bodies()
	diskErr := errors.New("store: set route to 491111@s.whatsapp.net: bbolt: write /var/lib/waxmpp/waxmpp.db: no space left on device")
	h.st.set("SetRoute", diskErr)
	h.say("/to alice")
	h.sync()
	h.st.set("SetRoute", nil)
	h.st.set("Chats", diskErr)
	h.say("/chats")
	h.sync()
	h.st.set("Chats", nil)
	h.say("/to alice")
	h.wa.mu.Lock()
	h.wa.sendErr = errors.New("whatsapp: send to 491111@s.whatsapp.net: server returned error 479")
	h.wa.mu.Unlock()
	h.say("hello")
	got := h.bodies()
	eq(t, "told", got, []string{
		"Could not set the chat: waxmpp could not read or write its data (its log says why; is the disk full?)",
		"Could not read the chats: waxmpp could not read or write its data (its log says why; is the disk full?)",
		"→ Alice Liddell (alice): plain messages go there now.",
		"⏳ Not sent yet to Alice Liddell: WhatsApp refused (waxmpp's log says why). It goes when WhatsApp takes it; /cancel drops it.\n> hello",
	})
	for _, b := range got {
		for _, internal := range []string{"store:", "bbolt", "491111@", "whatsapp:", "479"} {
			if strings.Contains(b, internal) {
				t.Errorf("the owner reads %q (internal %q)", b, internal)
			}
		}
	}
	log := h.log.String()
	for _, want := range []string{"no space left on device", "server returned error 479"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
}
