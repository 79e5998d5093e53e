//go:build simwa

package main

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"waxmpp/bridge"
	pt "waxmpp/bridge/prosodytest"
	"waxmpp/bridge/simwa"
)

// These tests run whole conversations against the real binary (see
// simenv_test.go): WhatsApp is the simulator, the owner a raw XMPP client
// on a real Prosody. They follow the rules in package bridge's doc (go doc
// waxmpp/bridge): routing, feature mapping, commands, and "nothing lost,
// nothing twice".

const (
	nsReply     = "urn:xmpp:reply:0"
	nsReplace   = "urn:xmpp:message-correct:0"
	nsRetract   = "urn:xmpp:message-retract:1"
	nsReactions = "urn:xmpp:reactions:0"
	nsReceipts  = "urn:xmpp:receipts"
	nsMarkers   = "urn:xmpp:chat-markers:0"
	nsChatState = "http://jabber.org/protocol/chatstates"
)

const wait = 15 * time.Second

// TestSimRouting covers every routing rule ("Routing what the owner writes"
// in package bridge's doc).
func TestSimRouting(t *testing.T) {
	e := newSimEnv(t, envOptions{})
	e.addressBook()

	t.Run("reply XEP-0461", func(t *testing.T) {
		e.tb = t
		id := e.relayed(textMsg(alice, alice, "RA1", "are you there?", "Alice"), "Alice", "are you there?")
		m := e.mark()
		e.send("yes I am", fmt.Sprintf("<reply xmlns='%s' to='%s' id='%s'/>", nsReply, e.bot, id))
		a := e.action(m, wait, "reply to Alice", sendTo(alice, "yes I am"))
		if a.ReplyTo == nil || a.ReplyTo.ID != "RA1" {
			t.Errorf("sent %+v, want a reply to RA1", a)
		}
	})

	t.Run("quote", func(t *testing.T) {
		e.tb = t
		e.relayed(textMsg(bob, bob, "RB1", "how was the concert", "Bob"), "Bob", "how was the concert")
		m := e.mark()
		e.send("> how was the concert\nloud and great", "")
		a := e.action(m, wait, "quote reply to Bob", sendTo(bob, "loud and great"))
		if a.ReplyTo == nil || a.ReplyTo.ID != "RB1" {
			t.Errorf("sent %+v, want a reply to RB1", a)
		}
	})

	t.Run("/msg", func(t *testing.T) {
		e.tb = t
		m := e.mark()
		e.send("/msg alice via msg", "")
		e.action(m, wait, "/msg to Alice", sendTo(alice, "via msg"))
	})

	t.Run("/to then plain text", func(t *testing.T) {
		e.tb = t
		if ans := e.command("/to bob"); !strings.Contains(ans, "Bob") {
			t.Errorf("/to bob answered %q, want it to name Bob", ans)
		}
		m := e.mark()
		e.send("plain to bob", "")
		e.action(m, wait, "plain text to Bob", sendTo(bob, "plain to bob"))
	})

	t.Run("hold and ask, release by answer", func(t *testing.T) {
		e.tb = t
		e.command("/to bob")
		m := e.mark()
		e.send("to bob first", "")
		e.action(m, wait, "to Bob", sendTo(bob, "to bob first"))
		e.relayed(textMsg(alice, alice, "RA2", "interrupting", "Alice"), "interrupting")
		m = e.mark()
		e.send("who gets this", "")
		q := e.msg(m, "1)", "2)").Body()
		e.noAction(m, time.Second, "a held message was sent", func(a simwa.Action) bool { return a.Type == "send_text" })
		m = e.mark()
		e.send(choice(t, q, "Alice"), "")
		e.action(m, wait, "the held message to Alice", sendTo(alice, "who gets this"))
		// The answer made Alice current.
		m = e.mark()
		e.send("alice again", "")
		e.action(m, wait, "plain text to Alice", sendTo(alice, "alice again"))
	})

	t.Run("held message survives a restart", func(t *testing.T) {
		e.tb = t
		e.command("/to alice")
		m := e.mark()
		e.send("hello alice", "")
		e.action(m, wait, "to Alice", sendTo(alice, "hello alice"))
		e.relayed(textMsg(bob, bob, "RB2", "me too", "Bob"), "me too")
		m = e.mark()
		e.send("held over a crash", "")
		q := e.msg(m, "1)", "2)").Body()
		e.kill()
		e.start()
		m = e.mark()
		e.send(choice(t, q, "Bob"), "")
		e.action(m, wait, "the held message to Bob after the restart", sendTo(bob, "held over a crash"))
		e.noAction(mark{}, 500*time.Millisecond, "the held message was sent twice", func(a simwa.Action) bool {
			return a.Type == "send_text" && a.Text == "held over a crash" && a.Chat != bob
		})
	})
}

// TestSimCommands covers every command (the "Commands" section of package
// bridge's doc), with bad input.
func TestSimCommands(t *testing.T) {
	e := newSimEnv(t, envOptions{})
	e.addressBook()
	e.relayed(textMsg(alice, alice, "CA1", "hi from alice", "Alice"), "hi from alice")
	e.relayed(textMsg(family, bob, "CF1", "hi family", "Bob"), "Family", "hi family")

	noSend := func(t *testing.T, m mark) {
		t.Helper()
		e.noAction(m, 300*time.Millisecond, "a command was sent as text", func(a simwa.Action) bool { return a.Type == "send_text" })
	}
	tests := []struct {
		cmd    string
		wantIn []string // case-insensitive
	}{
		{"/help", []string{"/msg", "/to", "/chats"}},
		{"/chats", []string{"alice", "family"}},
		{"/chats fam", []string{"family"}},
		{"/to", []string{"/to"}},
		{"/to nobody-like-this", []string{"nobody-like-this"}},
		{"/msg alice", []string{"/msg"}},
		{"/msg", []string{"/msg"}},
		{"/new", []string{"/new"}},
		{"/new notanumber", []string{"number"}},
		{"/find ali", []string{"alice"}},
		{"/find", []string{"/find"}},
		{"/history", []string{"/history"}},
		{"/history alice x", []string{"/history"}},
		{"/mute", []string{"/mute"}},
		{"/mute alice forever-ish", []string{"/mute"}},
		{"/unmute", []string{"/unmute"}},
		{"/status", []string{"whatsapp"}},
		{"/pair", []string{"linked"}},
		{"/logout", []string{"/logout yes"}},
		{"/room", []string{"/room"}},
		{"/bogus", []string{"/help"}},
	}
	for _, tt := range tests {
		t.Run(tt.cmd, func(t *testing.T) {
			e.tb = t
			m := e.mark()
			ans := e.command(tt.cmd)
			for _, w := range tt.wantIn {
				if !strings.Contains(strings.ToLower(ans), strings.ToLower(w)) {
					t.Errorf("%s answered %q, want it to mention %q", tt.cmd, ans, w)
				}
			}
			noSend(t, m)
		})
	}

	t.Run("/new looks the number up", func(t *testing.T) {
		e.tb = t
		m := e.mark()
		ans := e.command("/new +49 170 5555555")
		a := e.action(m, wait, "lookup", func(a simwa.Action) bool { return a.Type == "lookup" })
		if !strings.Contains(a.Phone, "491705555555") {
			t.Errorf("looked up %q, want +491705555555", a.Phone)
		}
		if strings.Contains(strings.ToLower(ans), "not on whatsapp") {
			t.Errorf("/new answered %q for a number on WhatsApp", ans)
		}
		m = e.mark()
		e.send("first words", "")
		e.action(m, wait, "plain text to the new chat", sendTo("491705555555@s.whatsapp.net", "first words"))

		f := false
		e.script(simwa.Rule{Action: "lookup", Phone: "+491706666666", Found: &f})
		if ans := e.command("/new +491706666666"); !strings.Contains(strings.ToLower(ans), "not on whatsapp") {
			t.Errorf("/new of a number not on WhatsApp answered %q", ans)
		}
	})

	t.Run("/history asks the phone", func(t *testing.T) {
		e.tb = t
		m := e.mark()
		e.command("/history alice 5")
		a := e.action(m, wait, "request_history", func(a simwa.Action) bool { return a.Type == "request_history" })
		if a.Chat != alice || a.N != 5 {
			t.Errorf("history request %+v, want alice, 5", a)
		}
		m = e.mark()
		old := textMsg(alice, alice, "CAH0", "an old message", "Alice")
		old.History, old.Time = true, time.Now().Add(-48*time.Hour)
		e.inject(old)
		s := e.msg(m, "an old message")
		if s.Child("urn:xmpp:delay", "delay") == nil {
			t.Errorf("a history message came without XEP-0203 delay: %s", s)
		}
	})

	t.Run("/mute and /unmute", func(t *testing.T) {
		e.tb = t
		e.command("/mute alice 1h")
		m := e.mark()
		e.inject(textMsg(alice, alice, "CAM1", "muted words", "Alice"))
		e.inject(textMsg(bob, bob, "CBM1", "bob is not muted", "Bob"))
		e.msg(m, "bob is not muted")
		for _, s := range e.stanzasSince(m) {
			if strings.Contains(s.Body(), "muted words") {
				t.Errorf("a muted chat was relayed: %s", s)
			}
		}
		e.command("/unmute alice")
		m = e.mark()
		e.inject(textMsg(alice, alice, "CAM2", "unmuted words", "Alice"))
		e.msg(m, "unmuted words")
	})

	t.Run("/logout yes then /pair", func(t *testing.T) {
		e.tb = t
		m := e.mark()
		e.send("/logout yes", "")
		e.action(m, wait, "logout", func(a simwa.Action) bool { return a.Type == "logout" && a.Error == "" })
		e.msg(m, "/pair") // logged out: tells what to do
		m = e.mark()
		e.send("/pair", "")
		e.action(m, wait, "pair", func(a simwa.Action) bool { return a.Type == "pair" && a.Error == "" })
		e.stanza(m, wait, "a QR code", func(s *pt.Elem) bool { return e.fromBot(s) && strings.Contains(s.Body(), "2@simwa,") })
		m = e.mark()
		e.inject(&bridge.PairResult{OK: true, ID: "491700000000@s.whatsapp.net", Name: "Me"}, &bridge.Status{State: bridge.Connected})
		e.reply(m)
		m = e.mark()
		e.send("/msg alice linked again", "")
		e.action(m, wait, "a send after pairing", sendTo(alice, "linked again"))
	})

	t.Run("/pair by link code", func(t *testing.T) {
		e.tb = t
		m := e.mark()
		e.send("/logout yes", "")
		e.action(m, wait, "logout", func(a simwa.Action) bool { return a.Type == "logout" && a.Error == "" })
		m = e.mark()
		e.send("/pair +49 170 0000000", "")
		a := e.action(m, wait, "pair with a number", func(a simwa.Action) bool { return a.Type == "pair" })
		if a.Error != "" || !strings.Contains(strings.ReplaceAll(a.Phone, " ", ""), "491700000000") {
			t.Errorf("pair %+v, want the number +491700000000", a)
		}
		e.msg(m, "SIMW-A123")
		e.inject(&bridge.PairResult{OK: true, ID: "491700000000@s.whatsapp.net", Name: "Me"}, &bridge.Status{State: bridge.Connected})
		m = e.mark()
		e.send("/msg alice linked by code", "")
		e.action(m, wait, "a send after pairing", sendTo(alice, "linked by code"))
	})

	t.Run("ad-hoc command", func(t *testing.T) {
		e.tb = t
		m := e.mark()
		e.owner.Send(fmt.Sprintf("<iq type='set' to='%s/waxmpp' id='ah1'><command xmlns='http://jabber.org/protocol/commands' node='status' action='execute'/></iq>", e.bot))
		s := e.stanza(m, wait, "ad-hoc answer", func(s *pt.Elem) bool { return s.XMLName.Local == "iq" && s.Attr("id") == "ah1" })
		if s.Attr("type") != "result" || !strings.Contains(strings.ToLower(s.String()), "whatsapp") {
			t.Errorf("ad-hoc status answered %s", s)
		}
	})
}

func (e *simEnv) stanzasSince(m mark) []*pt.Elem {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]*pt.Elem(nil), e.stanzas[m.stanzas:]...)
}

// TestSimFeatures covers every non-media row of the feature mapping (the
// "Feature mapping" section of package bridge's doc), both ways.
func TestSimFeatures(t *testing.T) {
	e := newSimEnv(t, envOptions{})
	e.addressBook()
	a1 := e.relayed(textMsg(alice, alice, "FA1", "first from alice", "Alice"), "*Alice*", "first from alice")

	// The owner's message to Alice, and its WhatsApp id.
	e.command("/to alice")
	m := e.mark()
	own1 := e.send("owner's words", "")
	sent1 := e.action(m, wait, "owner text", sendTo(alice, "owner's words"))
	mine := bridge.MsgRef{Chat: alice, ID: sent1.ID, FromMe: true}

	t.Run("text formatting both ways", func(t *testing.T) {
		e.tb = t
		e.relayed(textMsg(alice, alice, "FA2", "*bold* _it_ ~st~ ```mono```", "Alice"), "*bold* _it_ ~st~ ```mono```")
		m := e.mark()
		e.send("*bold* _it_", "")
		e.action(m, wait, "formatted text", sendTo(alice, "*bold* _it_"))
	})

	t.Run("reply inbound", func(t *testing.T) {
		e.tb = t
		m := e.mark()
		r := textMsg(alice, alice, "FA3", "answering you", "Alice")
		r.ReplyTo, r.QuotedText = &mine, "owner's words"
		e.inject(r)
		s := e.msg(m, "answering you")
		if c := s.Child(nsReply, "reply"); c == nil || c.Attr("id") != own1 {
			t.Errorf("reply relayed as %s, want <reply id=%q>", s, own1)
		}
		m = e.mark()
		r = textMsg(alice, alice, "FA4", "about my first", "Alice")
		r.ReplyTo = &bridge.MsgRef{Chat: alice, Sender: alice, ID: "FA1"}
		e.inject(r)
		if c := e.msg(m, "about my first").Child(nsReply, "reply"); c == nil || c.Attr("id") != a1 {
			t.Errorf("reply to Alice's own message: want <reply id=%q>", a1)
		}
	})

	t.Run("edit inbound", func(t *testing.T) {
		e.tb = t
		m := e.mark()
		e.inject(&bridge.Edit{Ref: bridge.MsgRef{Chat: alice, Sender: alice, ID: "FA1"}, Text: "first from alice, edited", Time: time.Now()})
		s := e.child(m, nsReplace, "replace", "id", a1)
		if !strings.Contains(s.Body(), "first from alice, edited") {
			t.Errorf("edit relayed as %s", s)
		}
	})

	t.Run("edit outbound", func(t *testing.T) {
		e.tb = t
		m := e.mark()
		e.send("owner's words, corrected", fmt.Sprintf("<replace xmlns='%s' id='%s'/>", nsReplace, own1))
		a := e.action(m, wait, "edit", func(a simwa.Action) bool { return a.Type == "edit" })
		if a.Target == nil || a.Target.ID != sent1.ID || a.Text != "owner's words, corrected" {
			t.Errorf("edit %+v, want target %s", a, sent1.ID)
		}
	})

	t.Run("edit window passed", func(t *testing.T) {
		e.tb = t
		e.script(simwa.Rule{Action: "edit", Error: "edit_window", Times: 1})
		m := e.mark()
		e.send("too late", fmt.Sprintf("<replace xmlns='%s' id='%s'/>", nsReplace, own1))
		e.action(m, wait, "edit refused", func(a simwa.Action) bool { return a.Type == "edit" && a.Error == "edit_window" })
		if ans := e.reply(m); !strings.Contains(ans, "20") {
			t.Errorf("the edit window error said %q, want it to name the 20-minute window", ans)
		}
	})

	t.Run("delete inbound", func(t *testing.T) {
		e.tb = t
		id := e.relayed(textMsg(alice, alice, "FA5", "regrettable", "Alice"), "regrettable")
		m := e.mark()
		e.inject(&bridge.Revoke{Ref: bridge.MsgRef{Chat: alice, Sender: alice, ID: "FA5"}, By: alice, Time: time.Now()})
		s := e.child(m, nsRetract, "retract", "id", id)
		if s.Body() == "" {
			t.Errorf("retraction without a fallback body: %s", s)
		}
	})

	t.Run("delete outbound, all three forms", func(t *testing.T) {
		e.tb = t
		forms := []struct {
			name  string
			extra func(id string) (body, extra string)
		}{
			{"retract v1", func(id string) (string, string) {
				return "", fmt.Sprintf("<retract xmlns='%s' id='%s'/><fallback xmlns='urn:xmpp:fallback:0' for='%s'/>", nsRetract, id, nsRetract)
			}},
			{"retract v0 fastening", func(id string) (string, string) {
				return "", fmt.Sprintf("<apply-to xmlns='urn:xmpp:fasten:0' id='%s'><retract xmlns='urn:xmpp:message-retract:0'/></apply-to>", id)
			}},
			{"correction to a space", func(id string) (string, string) {
				return " ", fmt.Sprintf("<replace xmlns='%s' id='%s'/>", nsReplace, id)
			}},
		}
		for _, f := range forms {
			m := e.mark()
			id := e.send("to be deleted by "+f.name, "")
			s := e.action(m, wait, "send", sendTo(alice, "to be deleted by "+f.name))
			m = e.mark()
			body, extra := f.extra(id)
			e.send(body, extra)
			a := e.action(m, wait, "revoke by "+f.name, func(a simwa.Action) bool { return a.Type == "revoke" })
			if a.Target == nil || a.Target.ID != s.ID || a.Target.Chat != alice {
				t.Errorf("%s: revoked %+v, want %s", f.name, a.Target, s.ID)
			}
		}
	})

	t.Run("reactions", func(t *testing.T) {
		e.tb = t
		m := e.mark()
		e.inject(&bridge.Reaction{Target: mine, Sender: alice, Emoji: "👍", Time: time.Now()})
		s := e.child(m, nsReactions, "reactions", "id", own1)
		if r := s.Child(nsReactions, "reactions"); r.Child("", "reaction") == nil || r.Child("", "reaction").Text != "👍" {
			t.Errorf("reaction relayed as %s", s)
		}
		// In a group, a text note, so that no reactor is lost.
		g := e.relayed(textMsg(family, carol, "FG1", "cake tonight", "Carol"), "cake tonight")
		_ = g
		m = e.mark()
		e.inject(&bridge.Reaction{Target: bridge.MsgRef{Chat: family, Sender: carol, ID: "FG1"}, Sender: bob, Emoji: "🎂", Time: time.Now()})
		e.msg(m, "🎂", "Bob")
		// Outbound.
		m = e.mark()
		e.send("", fmt.Sprintf("<reactions xmlns='%s' id='%s'><reaction>❤️</reaction></reactions>", nsReactions, a1))
		a := e.action(m, wait, "react", func(a simwa.Action) bool { return a.Type == "react" })
		if a.Target == nil || a.Target.ID != "FA1" || a.Emoji != "❤️" {
			t.Errorf("react %+v, want ❤️ on FA1", a)
		}
		m = e.mark()
		e.send("", fmt.Sprintf("<reactions xmlns='%s' id='%s'/>", nsReactions, a1))
		if a := e.action(m, wait, "reaction removed", func(a simwa.Action) bool { return a.Type == "react" }); a.Emoji != "" {
			t.Errorf("removing the reaction sent %+v", a)
		}
	})

	t.Run("receipts inbound", func(t *testing.T) {
		e.tb = t
		m := e.mark()
		e.inject(&bridge.Receipt{Chat: alice, By: alice, IDs: []string{sent1.ID}, Kind: bridge.Delivered, Time: time.Now()})
		e.child(m, nsReceipts, "received", "id", own1)
		m = e.mark()
		e.inject(&bridge.Receipt{Chat: alice, By: alice, IDs: []string{sent1.ID}, Kind: bridge.Read, Time: time.Now()})
		e.child(m, nsMarkers, "displayed", "id", own1)
	})

	t.Run("read markers per sender in groups", func(t *testing.T) {
		e.tb = t
		e.relayed(textMsg(family, alice, "FG2", "from alice in family", "Alice"), "from alice in family")
		g3 := e.relayed(textMsg(family, bob, "FG3", "from bob in family", "Bob"), "from bob in family")
		m := e.mark()
		e.send("", fmt.Sprintf("<displayed xmlns='%s' id='%s'/>", nsMarkers, g3))
		bySender := map[string][]string{}
		e.waitLogs(wait, func(as []simwa.Action, _ []*pt.Elem) bool {
			clear(bySender)
			for _, a := range as[m.actions:] {
				if a.Type == "mark_read" && a.Chat == family {
					bySender[a.Sender] = append(bySender[a.Sender], a.IDs...)
				}
			}
			return len(bySender[alice]) > 0 && len(bySender[bob]) > 0
		})
		if !contains(bySender[alice], "FG2") || !contains(bySender[bob], "FG3") {
			t.Errorf("marked read %v, want FG2 for Alice and FG3 for Bob, one call per sender; actions: %s", bySender, e.describeActions(m))
		}
		// FA1 was marked read when the owner wrote to Alice (read when
		// answered); a marker for a later message marks that one.
		a5 := e.relayed(textMsg(alice, alice, "FAR1", "not answered yet", "Alice"), "not answered yet")
		m = e.mark()
		e.send("", fmt.Sprintf("<displayed xmlns='%s' id='%s'/>", nsMarkers, a5))
		e.action(m, wait, "mark_read in a direct chat", func(a simwa.Action) bool {
			return a.Type == "mark_read" && a.Chat == alice && contains(a.IDs, "FAR1")
		})
	})

	t.Run("typing", func(t *testing.T) {
		e.tb = t
		m := e.mark()
		e.inject(&bridge.Typing{Chat: alice, Sender: alice, State: bridge.Composing})
		e.child(m, nsChatState, "composing", "", "")
		e.command("/to alice")
		m = e.mark()
		e.send("", fmt.Sprintf("<composing xmlns='%s'/>", nsChatState))
		e.action(m, wait, "set_typing", func(a simwa.Action) bool {
			return a.Type == "set_typing" && a.Chat == alice && a.State == "composing"
		})
	})

	t.Run("location", func(t *testing.T) {
		e.tb = t
		m := e.mark()
		e.injectJSON(`{"type":"message","chat":"` + alice + `","id":"FL1","kind":"location","location":{"lat":52.52,"lon":13.405,"name":"Alexanderplatz"}}`)
		e.msg(m, "geo:52.52,13.405", "Alexanderplatz")
		e.command("/to alice")
		m = e.mark()
		e.send("geo:48.8584,2.2945", "")
		a := e.action(m, wait, "send_location", func(a simwa.Action) bool { return a.Type == "send_location" })
		if a.Chat != alice || a.Location == nil || a.Location.Lat != 48.8584 || a.Location.Lon != 2.2945 {
			t.Errorf("location %+v", a)
		}
	})

	t.Run("contact card", func(t *testing.T) {
		e.tb = t
		m := e.mark()
		e.injectJSON(`{"type":"message","chat":"` + alice + `","id":"FC1","kind":"contact_card","contacts":[{"name":"Dora Dentist","numbers":["+4930123456"]}]}`)
		e.msg(m, "Dora Dentist", "+4930123456")
	})

	t.Run("poll and vote", func(t *testing.T) {
		e.tb = t
		m := e.mark()
		e.injectJSON(`{"type":"message","chat":"` + family + `","sender":"` + carol + `","id":"FP1","kind":"poll","poll":{"question":"Which day?","options":["Saturday","Sunday"]}}`)
		e.msg(m, "Which day?", "Saturday", "Sunday")
		m = e.mark()
		e.injectJSON(`{"type":"poll_vote","target":{"chat":"` + family + `","sender":"` + carol + `","id":"FP1"},"sender":"` + bob + `","options":["Sunday"]}`)
		e.msg(m, "Bob", "Sunday")
	})

	t.Run("call", func(t *testing.T) {
		e.tb = t
		m := e.mark()
		e.injectJSON(`{"type":"call","chat":"` + bob + `","id":"CALL1","kind":"missed"}`)
		s := e.msg(m, "Bob")
		if !strings.Contains(strings.ToLower(s.Body()), "missed") {
			t.Errorf("a missed call was told as %q", s.Body())
		}
	})

	t.Run("group events", func(t *testing.T) {
		e.tb = t
		m := e.mark()
		e.injectJSON(`{"type":"group_change","chat":"` + family + `","sender":"` + alice + `","kind":"joined","users":["` + carol + `"]}`)
		s := e.msg(m, "Carol")
		if !strings.Contains(strings.ToLower(s.Body()), "join") && !strings.Contains(strings.ToLower(s.Body()), "add") {
			t.Errorf("a join was told as %q", s.Body())
		}
		m = e.mark()
		e.injectJSON(`{"type":"group_change","chat":"` + family + `","sender":"` + bob + `","kind":"subject","subject":"Family 2.0"}`)
		e.msg(m, "Family 2.0")
	})

	t.Run("life events", func(t *testing.T) {
		e.tb = t
		presence := func(m mark, show string) {
			t.Helper()
			e.stanza(m, wait, "bot presence "+show, func(s *pt.Elem) bool {
				if s.XMLName.Local != "presence" || !strings.HasPrefix(s.Attr("from"), e.bot+"/") || s.Attr("type") != "" {
					return false
				}
				got := ""
				if c := s.Child("", "show"); c != nil {
					got = c.Text
				}
				return got == show
			})
		}
		m := e.mark()
		e.inject(&bridge.Status{State: bridge.Disconnected, Reason: "network"})
		presence(m, "away")
		m = e.mark()
		e.inject(&bridge.Status{State: bridge.Connected})
		presence(m, "")
		m = e.mark()
		e.inject(&bridge.Status{State: bridge.TempBanned, Until: time.Now().Add(24 * time.Hour)})
		if s := e.reply(m); !strings.Contains(strings.ToLower(s), "ban") {
			t.Errorf("a temporary ban was told as %q", s)
		}
		m = e.mark()
		e.inject(&bridge.Status{State: bridge.Connected})
		presence(m, "")
	})

	t.Run("alias: a LID is the same person", func(t *testing.T) {
		e.tb = t
		e.inject(&bridge.Alias{LID: "98765432101234@lid", Phone: alice})
		m := e.mark()
		e.inject(textMsg("98765432101234@lid", "98765432101234@lid", "FLID1", "from my lid", ""))
		e.msg(m, "*Alice*", "from my lid")
	})

	t.Run("undecryptable then retry", func(t *testing.T) {
		e.tb = t
		m := e.mark()
		ref := bridge.MsgRef{Chat: alice, Sender: alice, ID: "FU1"}
		e.inject(&bridge.Undecryptable{Ref: ref, Time: time.Now()})
		ph := e.stanza(m, wait, "placeholder", func(s *pt.Elem) bool { return e.fromBot(s) && s.Child("", "body") != nil })
		m = e.mark()
		e.inject(&bridge.Message{Ref: ref, Kind: bridge.Text, Text: "decrypted at last", Retry: true, Time: time.Now()})
		s := e.child(m, nsReplace, "replace", "id", ph.Attr("id"))
		if !strings.Contains(s.Body(), "decrypted at last") {
			t.Errorf("retry relayed as %s", s)
		}
	})
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// TestSimStranger: someone else writing to the bot reaches neither
// WhatsApp nor the owner.
func TestSimStranger(t *testing.T) {
	e := newSimEnv(t, envOptions{})
	e.addressBook()
	e.command("/to alice")
	stranger := e.srv.Dial(t, "stranger")
	m := e.mark()
	stranger.Send(fmt.Sprintf("<message to='%s' type='chat' id='s1'><body>/msg alice send money</body></message>", e.bot))
	stranger.Send(fmt.Sprintf("<message to='%s/waxmpp' type='chat' id='s2'><body>plain from a stranger</body></message>", e.bot))
	e.noAction(m, 2*time.Second, "a stranger's message", func(a simwa.Action) bool { return true })
	for _, s := range e.stanzasSince(m) {
		if strings.Contains(s.Body(), "money") || strings.Contains(s.Body(), "stranger") {
			t.Errorf("the owner got %s", s)
		}
	}
	// The bridge still serves the owner.
	e.send("still me", "")
	e.action(m, wait, "the owner's message", sendTo(alice, "still me"))
}

// TestSimRestart: a clean restart mid-conversation loses and doubles
// nothing, in either direction.
func TestSimRestart(t *testing.T) {
	e := newSimEnv(t, envOptions{})
	e.addressBook()
	e.command("/to alice")
	m := e.mark()
	const n = 30
	var injected []*bridge.Message
	for i := range n {
		msg := textMsg(alice, alice, fmt.Sprintf("RS%d", i), fmt.Sprintf("in #%d", i), "Alice")
		injected = append(injected, msg)
		e.inject(msg)
		e.send(fmt.Sprintf("out #%d", i), "")
		if i == n/2 {
			e.stop()
			e.start()
			// WhatsApp delivers again what the device never acknowledged.
			if evs := e.unacked(injected); len(evs) > 0 {
				e.inject(evs...)
			}
		}
	}
	in, out := map[string]int{}, map[string]int{}
	ok := e.waitLogs(30*time.Second, func(as []simwa.Action, ss []*pt.Elem) bool {
		clear(in)
		clear(out)
		for _, s := range ss[m.stanzas:] {
			if e.fromBot(s) && strings.Contains(s.Body(), "in #") {
				in[s.Attr("id")]++
			}
		}
		for _, a := range as[m.actions:] {
			if a.Type == "send_text" && strings.HasPrefix(a.Text, "out #") {
				out[a.Text]++
			}
		}
		return len(in) >= n && len(out) >= n
	})
	if !ok {
		t.Fatalf("after the restart: %d of %d relayed to the owner, %d of %d sent to WhatsApp; owner got: %s\nWhatsApp got: %s", len(in), n, len(out), n, e.describeStanzas(m), e.describeActions(m))
	}
	time.Sleep(time.Second)
	for i := range n {
		if c := out[fmt.Sprintf("out #%d", i)]; c != 1 {
			t.Errorf("out #%d sent %d times", i, c)
		}
	}
	if len(in) != n {
		t.Errorf("the owner got %d distinct messages, want %d", len(in), n)
	}
}

var numRE = regexp.MustCompile(`#(\d+) `)

// TestSimBurstWithKills sends 2,000 messages each way while the binary is
// SIGKILLed and restarted three times. Everything arrives; duplicates are
// at most one per kill (resends to WhatsApp under the same id: a batch).
//
// The test plays WhatsApp as it behaves: after each restart it delivers
// again every message the bridge never acknowledged (bridge.WhatsApp's
// Handled, pushed by the simulator), and the core must drop what it
// already has. A message the bridge acknowledged and never relayed is lost.
// The owner's client resends nothing (the bot replays the server's archive
// after a crash); as a last resort it resends, with the same id, what never
// reached WhatsApp, and each such message is reported as lost.
func TestSimBurstWithKills(t *testing.T) {
	// The default ping tolerance: a Prosody loaded by the burst may take
	// more than the 3s other tests allow.
	e := newSimEnv(t, envOptions{pingInterval: time.Minute, pingTimeout: 20 * time.Second})
	e.addressBook()
	e.command("/to alice")
	m := e.mark()
	const n, kills = 2000, 3
	body := strings.Repeat("x", 60)
	injected := make([]*bridge.Message, n)
	for i := range n {
		injected[i] = textMsg(alice, alice, fmt.Sprintf("BURST%d", i), fmt.Sprintf("#%d %s", i, body), "Alice")
	}
	ownerID := func(i int) string { return fmt.Sprintf("burst-out-%d", i) }

	// Count what arrived: owner side by WhatsApp message (its number) and
	// XMPP id; WhatsApp side by owner message.
	counts := func() (inIDs map[int]map[string]int, outSends map[int]int, outIDs map[int]map[string]bool) {
		inIDs, outSends, outIDs = map[int]map[string]int{}, map[int]int{}, map[int]map[string]bool{}
		e.mu.Lock()
		defer e.mu.Unlock()
		for _, s := range e.stanzas[m.stanzas:] {
			// An error from the bot's address is the server bouncing one
			// of the owner's own messages (ejabberd: the bot's offline
			// queue is full while it is down), which carries the owner's
			// text back: no relayed message.
			if !e.fromBot(s) || s.Attr("type") == "error" || !strings.Contains(s.Body(), body) {
				continue
			}
			if i, ok := number(s.Body(), n); ok {
				if inIDs[i] == nil {
					inIDs[i] = map[string]int{}
				}
				inIDs[i][s.Attr("id")]++
			}
		}
		for _, a := range e.actions[m.actions:] {
			if a.Type != "send_text" || !strings.HasSuffix(a.Text, body) || a.Error != "" {
				continue
			}
			if i, ok := number(a.Text, n); ok {
				outSends[i]++
				if outIDs[i] == nil {
					outIDs[i] = map[string]bool{}
				}
				outIDs[i][a.ID] = true
			}
		}
		return
	}

	start := time.Now()
	killAt := map[int]bool{n / 4: true, n / 2: true, 3 * n / 4: true}
	var redelivered int
	const batch = 20
	for i := 0; i < n; i += batch {
		var evs []bridge.Event
		for j := i; j < i+batch; j++ {
			evs = append(evs, injected[j])
			e.sendID(ownerID(j), fmt.Sprintf("#%d %s", j, body), "")
		}
		if err := e.sim.Inject(evs...); err != nil {
			t.Fatalf("inject at %d: %v", i, err)
		}
		if killAt[i] {
			e.kill()
			e.start()
			evs := e.unacked(injected[:i+batch])
			redelivered += len(evs)
			if err := e.sim.Inject(evs...); err != nil {
				t.Fatal(err)
			}
		}
	}
	sentAt := time.Since(start)

	// Wait until the last start's archive replay is over (a page of it can
	// take seconds on a loaded machine, during which neither log grows),
	// then until quiet; then, up to three times, the last resort.
	replayDone(e, 3*time.Minute)
	var lostIn, lostOut, missIn, missOut []int
	resent := 0
	for round := 0; ; round++ {
		quiet(e, 3*time.Second)
		inIDs, outSends, _ := counts()
		missIn, missOut = missIn[:0], missOut[:0]
		for i := range n {
			if len(inIDs[i]) == 0 {
				missIn = append(missIn, i)
			}
			if outSends[i] == 0 {
				missOut = append(missOut, i)
			}
		}
		if round == 0 {
			e.mu.Lock()
			for _, i := range missIn {
				if e.acked[injected[i].Ref.ID] > 0 {
					lostIn = append(lostIn, i)
				}
			}
			e.mu.Unlock()
			lostOut = append(lostOut, missOut...)
		}
		if len(missIn) == 0 && len(missOut) == 0 || round == 3 {
			break
		}
		var evs []bridge.Event
		for _, i := range missIn {
			evs = append(evs, injected[i])
		}
		if len(evs) > 0 {
			redelivered += len(evs)
			if err := e.sim.Inject(evs...); err != nil {
				t.Fatal(err)
			}
		}
		for _, i := range missOut {
			resent++
			e.sendID(ownerID(i), fmt.Sprintf("#%d %s", i, body), "")
		}
	}
	inIDs, outSends, outIDs := counts()
	var dupIn, sameIDIn, dupOut, dupOutIDs, acked int
	for i := range n {
		dupIn += max(len(inIDs[i])-1, 0)
		for _, c := range inIDs[i] {
			sameIDIn += c - 1
		}
		dupOut += max(outSends[i]-1, 0)
		dupOutIDs += max(len(outIDs[i])-1, 0)
	}
	e.mu.Lock()
	for _, msg := range injected {
		if e.acked[msg.Ref.ID] > 0 {
			acked++
		}
	}
	e.mu.Unlock()
	t.Logf("%d each way with %d kills in %v (sending took %v): redelivered %d unacknowledged messages, owner resent %d; owner got %d duplicates under a new id and %d under the same id (clients drop those); WhatsApp got %d resends (%d under a new id); the core acknowledged %d of %d",
		n, kills, time.Since(start).Round(time.Millisecond), sentAt.Round(time.Millisecond), redelivered, resent, dupIn, sameIDIn, dupOut, dupOutIDs, acked, n)
	if len(missIn) > 0 || len(missOut) > 0 {
		t.Errorf("lost for good (after redelivery and resending with the same id): %d to the owner %v…, %d to WhatsApp %v…", len(missIn), head(missIn), len(missOut), head(missOut))
	}
	if len(lostIn) > 0 {
		t.Errorf("%d WhatsApp messages the bridge had acknowledged were not relayed (%v…)", len(lostIn), head(lostIn))
	}
	if len(lostOut) > 0 {
		t.Errorf("%d owner messages never reached WhatsApp until the owner's client resent them (%v…)", len(lostOut), head(lostOut))
	}
	if acked < n {
		t.Errorf("the core acknowledged %d of %d WhatsApp messages (bridge.WhatsApp.Handled); the rest would be delivered again at every start", acked, n)
	}
	if dupIn > kills {
		t.Errorf("the owner got %d duplicate messages (distinct ids), want at most %d (one per kill)", dupIn, kills)
	}
	if dupOutIDs > kills {
		t.Errorf("WhatsApp got %d duplicate messages (distinct ids), want at most %d (one per kill)", dupOutIDs, kills)
	}
	// The core sends a burst of the owner's texts before it maps them in
	// one write (bridge/batch.go): a kill in between resends what it had
	// sent of that batch, with the same ids, which WhatsApp's recipients
	// drop. At most a batch per kill; a restart that sent everything
	// again would be far more.
	if dupOut > kills*maxOwnerBatch {
		t.Errorf("WhatsApp got %d resends, want at most %d (a batch of %d per kill)", dupOut, kills*maxOwnerBatch, maxOwnerBatch)
	}
}

// maxOwnerBatch is the most owner messages the core sends before it
// writes their map entries (bridge's maxBatch).
const maxOwnerBatch = 100

func head(s []int) []int { return s[:min(len(s), 10)] }

// replayDone waits up to d until the binary's log since its last start
// says that the XMPP side's archive replay is over (done, failed, or no
// archive to replay).
func replayDone(e *simEnv, d time.Duration) {
	e.tb.Helper()
	deadline := time.Now().Add(d)
	for {
		log := e.stderr.String()
		if i := strings.LastIndex(log, "=== start "); i >= 0 {
			log = log[i:]
		}
		for _, s := range []string{"archive replay done", "archive catch-up failed", "the server keeps no archive"} {
			if strings.Contains(log, s) {
				return
			}
		}
		if time.Now().After(deadline) {
			e.tb.Fatalf("the archive replay did not end within %v", d)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// quiet waits until neither log has grown for d.
func quiet(e *simEnv, d time.Duration) {
	for {
		before := e.mark()
		time.Sleep(d)
		if e.mark() == before {
			return
		}
	}
}
