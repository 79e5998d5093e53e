package xmpp

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"waxmpp/bridge"
	pt "waxmpp/bridge/prosodytest"
)

func TestOwnerEventConversion(t *testing.T) {
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	at := func(id string) bridge.OwnerMeta { return bridge.OwnerMeta{ID: id, Time: now, Archive: "arch"} }
	for _, tc := range []struct {
		name string
		xml  string
		want bridge.OwnerEvent
	}{
		{"origin-id wins over id", `<message id='a' type='chat'><body>hi</body><origin-id xmlns='urn:xmpp:sid:0' id='o'/></message>`,
			&bridge.OwnerText{OwnerMeta: at("o"), Body: "hi"}},
		{"reply without its fallback quote", `<message id='a' type='chat'><body>&gt; Alice: hi
yes</body><reply xmlns='urn:xmpp:reply:0' to='b@x' id='wx-1'/><fallback xmlns='urn:xmpp:fallback:0' for='urn:xmpp:reply:0'><body start='0' end='12'/></fallback></message>`,
			&bridge.OwnerText{OwnerMeta: at("a"), Body: "yes", ReplyTo: "wx-1"}},
		{"correction", `<message id='a2'><body>fixed</body><replace xmlns='urn:xmpp:message-correct:0' id='a'/></message>`,
			&bridge.OwnerCorrection{OwnerMeta: at("a2"), Body: "fixed", Target: "a"}},
		{"retraction v1 drops the fallback body", `<message id='r'><retract xmlns='urn:xmpp:message-retract:1' id='a'/><body>retracted</body></message>`,
			&bridge.OwnerRetraction{OwnerMeta: at("r"), Target: "a"}},
		{"retraction as correction to a space", `<message id='r2'><body> </body><replace xmlns='urn:xmpp:message-correct:0' id='a'/></message>`,
			&bridge.OwnerRetraction{OwnerMeta: at("r2"), Target: "a"}},
		{"reaction", `<message id='x'><reactions xmlns='urn:xmpp:reactions:0' id='wx-2'><reaction>👍</reaction></reactions></message>`,
			&bridge.OwnerReaction{OwnerMeta: at("x"), Target: "wx-2", Emojis: []string{"👍"}}},
		{"displayed marker", `<message id='d'><displayed xmlns='urn:xmpp:chat-markers:0' id='wx-3'/></message>`,
			&bridge.OwnerDisplayed{OwnerMeta: at("d"), Target: "wx-3"}},
		{"receipt", `<message id='rc'><received xmlns='urn:xmpp:receipts' id='wx-4'/></message>`,
			&bridge.OwnerReceived{OwnerMeta: at("rc"), Target: "wx-4"}},
		{"composing", `<message id='c'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>`,
			&bridge.OwnerChatState{OwnerMeta: at("c"), State: bridge.Composing}},
		{"paused", `<message id='c'><paused xmlns='http://jabber.org/protocol/chatstates'/></message>`,
			&bridge.OwnerChatState{OwnerMeta: at("c"), State: bridge.Paused}},
		{"a body wins over a chat state", `<message id='c2'><body>hi</body><active xmlns='http://jabber.org/protocol/chatstates'/></message>`,
			&bridge.OwnerText{OwnerMeta: at("c2"), Body: "hi"}},
		{"aesgcm file", `<message id='f'><body>aesgcm://h/x.jpg#00</body></message>`,
			&bridge.OwnerText{OwnerMeta: at("f"), Body: "aesgcm://h/x.jpg#00", URL: "aesgcm://h/x.jpg#00", File: "aesgcm://h/x.jpg#00"}},
		{"oob", `<message id='f'><body>see</body><x xmlns='jabber:x:oob'><url>https://h/y.png</url></x></message>`,
			&bridge.OwnerText{OwnerMeta: at("f"), Body: "see", URL: "https://h/y.png"}},
		{"text with a URL is text", `<message id='f'><body>look https://h/</body></message>`,
			&bridge.OwnerText{OwnerMeta: at("f"), Body: "look https://h/"}},
		{"offline delay keeps its time", `<message id='o'><body>late</body><delay xmlns='urn:xmpp:delay' stamp='2026-11-21T09:00:00Z'/></message>`,
			&bridge.OwnerText{OwnerMeta: bridge.OwnerMeta{ID: "o", Archive: "arch", Time: time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)}, Body: "late"}},
		{"nothing to act on", `<message id='n'><markable xmlns='urn:xmpp:chat-markers:0'/></message>`,
			&bridge.OwnerOther{OwnerMeta: at("n")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, err := DecodeBytes([]byte(tc.xml))
			if err != nil {
				t.Fatal(err)
			}
			got := OwnerEvent(st.(*Inbound), "arch", now)
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got  %#v\nwant %#v", got, tc.want)
			}
		})
	}
}

// TestAdhocCommands: the owner's client lists the bot's commands, runs one
// without arguments and one through its form; the core's answers come back
// as notes.
func TestAdhocCommands(t *testing.T) {
	forServers(t, pt.Kinds, pt.Options{}, func(t *testing.T, srv *pt.Server) {
		owner := srv.Dial(t, "owner")
		s := startSession(t, botConfig(t, srv))
		bot := NewBot(s)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go bot.Run(ctx)
		got := make(chan bridge.Command, 4)
		go func() { // a stand-in core
			for c := range bot.Commands() {
				got <- c
				c.Reply <- "ran " + c.Name + " " + c.Args
			}
		}()
		full := s.cur.jid

		owner.Send("<iq type='get' id='i1' to='" + full + "'><query xmlns='http://jabber.org/protocol/disco#items' node='http://jabber.org/protocol/commands'/></iq>")
		items := owner.Next(t, 5*time.Second, func(e *pt.Elem) bool { return e.Attr("id") == "i1" })
		q := items.Child(NSDiscoItems, "query")
		if q == nil || len(q.Children) != len(adhocCommands) {
			t.Fatalf("command list %s", items)
		}

		owner.Send("<iq type='set' id='c1' to='" + full + "'><command xmlns='http://jabber.org/protocol/commands' node='status' action='execute'/></iq>")
		res := owner.Next(t, 5*time.Second, func(e *pt.Elem) bool { return e.Attr("id") == "c1" })
		cmd := res.Child(NSCommands, "command")
		if cmd == nil || cmd.Attr("status") != "completed" || cmd.Child("", "note") == nil || cmd.Child("", "note").Text != "ran status " {
			t.Fatalf("status answer %s", res)
		}

		owner.Send("<iq type='set' id='c2' to='" + full + "'><command xmlns='http://jabber.org/protocol/commands' node='to' action='execute'/></iq>")
		form := owner.Next(t, 5*time.Second, func(e *pt.Elem) bool { return e.Attr("id") == "c2" }).Child(NSCommands, "command")
		if form == nil || form.Attr("status") != "executing" || form.Child(NSDataForms, "x") == nil {
			t.Fatalf("to: want a form, got %v", form)
		}
		owner.Send(fmt.Sprintf("<iq type='set' id='c3' to='%s'><command xmlns='http://jabber.org/protocol/commands' node='to' sessionid='%s' action='complete'><x xmlns='jabber:x:data' type='submit'><field var='args'><value>alice</value></field></x></command></iq>", full, form.Attr("sessionid")))
		done := owner.Next(t, 5*time.Second, func(e *pt.Elem) bool { return e.Attr("id") == "c3" }).Child(NSCommands, "command")
		if done == nil || done.Attr("status") != "completed" || !strings.Contains(done.Child("", "note").Text, "ran to alice") {
			t.Fatalf("to alice: %v", done)
		}
		if c := <-got; c.Name != "status" {
			t.Fatalf("first command %+v", c)
		}
		if c := <-got; c.Name != "to" || c.Args != "alice" {
			t.Fatalf("second command %+v, want to alice", c)
		}
		// Logout asks first: a boolean field, unticked; submitted so,
		// nothing reaches the core; ticked, the core unlinks.
		logout := func(id, value string) *pt.Elem {
			t.Helper()
			owner.Send("<iq type='set' id='" + id + "a' to='" + full + "'><command xmlns='http://jabber.org/protocol/commands' node='logout' action='execute'/></iq>")
			form := owner.Next(t, 5*time.Second, func(e *pt.Elem) bool { return e.Attr("id") == id+"a" }).Child(NSCommands, "command")
			x := form.Child(NSDataForms, "x")
			if form == nil || form.Attr("status") != "executing" || x == nil {
				t.Fatalf("logout: want a form, got %v", form)
			}
			f := x.Child("", "field")
			if f == nil || f.Attr("var") != "confirm" || f.Attr("type") != "boolean" || f.Child("", "required") == nil || f.Child("", "value") == nil || f.Child("", "value").Text != "0" {
				t.Fatalf("logout form %s, want a required boolean field confirm, unticked", x)
			}
			if in := x.Child("", "instructions"); in == nil || !strings.Contains(in.Text, "Unlink") {
				t.Errorf("logout form %s: the question is missing", x)
			}
			owner.Send(fmt.Sprintf("<iq type='set' id='%sb' to='%s'><command xmlns='http://jabber.org/protocol/commands' node='logout' sessionid='%s' action='complete'><x xmlns='jabber:x:data' type='submit'><field var='confirm'><value>%s</value></field></x></command></iq>", id, full, form.Attr("sessionid"), value))
			done := owner.Next(t, 5*time.Second, func(e *pt.Elem) bool { return e.Attr("id") == id+"b" }).Child(NSCommands, "command")
			if done == nil || done.Attr("status") != "completed" || done.Child("", "note") == nil {
				t.Fatalf("logout answered %v", done)
			}
			return done.Child("", "note")
		}
		if note := logout("l1", "0"); note.Text != notConfirmed {
			t.Errorf("logout unticked: note %q, want %q", note.Text, notConfirmed)
		}
		if note := logout("l2", "false"); note.Text != notConfirmed {
			t.Errorf("logout false: note %q, want %q", note.Text, notConfirmed)
		}
		if note := logout("l3", "1"); note.Text != "ran logout yes" {
			t.Errorf("logout ticked: note %q, want the core's answer", note.Text)
		}
		if c := <-got; c.Name != "logout" || c.Args != "yes" {
			t.Fatalf("third command %+v, want logout yes (an unticked form reached the core)", c)
		}
		if note := logout("l4", "true"); note.Text != "ran logout yes" {
			t.Errorf("logout true: note %q, want the core's answer", note.Text)
		}
		if c := <-got; c.Name != "logout" || c.Args != "yes" {
			t.Fatalf("fourth command %+v, want logout yes", c)
		}
		// Unknown node.
		owner.Send("<iq type='set' id='c4' to='" + full + "'><command xmlns='http://jabber.org/protocol/commands' node='rm-rf' action='execute'/></iq>")
		if r := owner.Next(t, 5*time.Second, func(e *pt.Elem) bool { return e.Attr("id") == "c4" }); r.Attr("type") != "error" {
			t.Fatalf("unknown command answer %s", r)
		}

		// Messages through the Bot port: a reply names the bot as the quoted
		// sender, and the owner's answer comes back converted.
		ids, err := bot.Send(bridge.Outgoing{Body: "*Alice*: hi", Markable: true}, bridge.Outgoing{Body: "ok", ReplyTo: "x1", Quote: "*Alice*: hi"})
		if err != nil || len(ids) != 2 {
			t.Fatal(ids, err)
		}
		m := owner.Next(t, 5*time.Second, func(e *pt.Elem) bool { return e.Attr("id") == ids[1] })
		if r := m.Child(NSReply, "reply"); r == nil || r.Attr("to") != srv.JID("bot") || r.Attr("id") != "x1" {
			t.Fatalf("reply %s", m)
		}
		owner.Send("<message to='" + srv.JID("bot") + "' type='chat' id='o1'><body>answer</body></message>")
		for {
			select {
			case ev := <-bot.Owner():
				switch ev.(type) {
				case *bridge.OwnerRoster, *bridge.OwnerClient:
					continue // what the bot learned of the owner's roster and clients
				}
				if om, ok := ev.(*bridge.OwnerText); !ok || om.ID != "o1" || om.Body != "answer" {
					t.Fatalf("owner message %#v", ev)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("no owner message")
			}
			break
		}
	})
}
