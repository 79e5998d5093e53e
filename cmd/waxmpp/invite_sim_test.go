//go:build simwa

package main

import (
	"flag"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"waxmpp/bridge"
	pt "waxmpp/bridge/prosodytest"
	"waxmpp/bridge/simwa"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/invite")

// TestSimInvite brings friends over through the real binary: /invite sends
// the text of each language (testdata/invite/*.golden) with URIs that parse
// by RFC 5122 and XEP-0147, and a landing link; asked again, the bot asks
// for confirmation; after /moved, /chats marks the friend, their messages
// carry a reminder, and the bot offers once to write to them directly;
// /invites counts, also after a restart and as an XEP-0050 command.
func TestSimInvite(t *testing.T) {
	e := newSimEnv(t, envOptions{})
	e.addressBook() // Alice, Bob, Carol; the Family group
	owner := e.srv.JID("owner")

	invite := func(t *testing.T, chat, cmd string) simwa.Action {
		t.Helper()
		m := e.mark()
		ans := e.command(cmd)
		if !strings.HasPrefix(ans, "Invited ") {
			t.Fatalf("%s answered %q", cmd, ans)
		}
		return e.action(m, wait, "the invitation to "+chat, func(a simwa.Action) bool { return a.Type == "send_text" && a.Chat == chat })
	}

	for _, lang := range bridge.InviteLanguages {
		t.Run(lang, func(t *testing.T) {
			e.tb = t
			e.setInvite("language = \"" + lang + "\"\n")
			// "again": Alice and the family were invited in the language before.
			person := invite(t, alice, "/invite alice again")
			group := invite(t, family, "/invite family again")
			checkInvitation(t, person.Text, owner, "roster")
			checkInvitation(t, group.Text, owner, "roster")
			inviteGolden(t, lang+".golden", "To a person (Alice):\n"+person.Text+"\n\nTo a group (Family):\n"+group.Text+"\n")
		})
	}

	t.Run("language from the locale", func(t *testing.T) {
		e.tb = t
		t.Setenv("LC_ALL", "es_ES.UTF-8")
		e.setInvite("")
		a := invite(t, alice, "/invite alice again")
		if !strings.HasPrefix(a.Text, "¡Hola, Alice!") {
			t.Errorf("with LC_ALL=es_ES.UTF-8 and no [invite] language, the invitation is %q", a.Text)
		}
	})

	t.Run("the owner's own text", func(t *testing.T) {
		e.tb = t
		e.setInvite("text = \"\"\"\nMoin {name}! Schreib mir: {link}\n({uri})\"\"\"\nlink = \"https://xmpp.link/#\"\n")
		a := invite(t, alice, "/invite alice again")
		want := "Moin Alice! Schreib mir: https://xmpp.link/#" + owner + "?roster\n(xmpp:" + owner + "?roster)"
		if a.Text != want {
			t.Errorf("the invitation is %q, want %q", a.Text, want)
		}
		checkInvitation(t, a.Text, owner, "roster")
		if ans := e.command("/invite text"); !strings.Contains(ans, "Moin {name}! Schreib mir: {link}") || !strings.Contains(ans, "[invite] text in the config") {
			t.Errorf("/invite text answered %q", ans)
		}
		e.setInvite("language = \"en\"\n")
	})

	t.Run("a repeat asks first", func(t *testing.T) {
		e.tb = t
		invite(t, bob, "/invite bob")
		m := e.mark()
		ans := e.command("/invite bob")
		if !strings.Contains(ans, "You invited Bob just now") || !strings.Contains(ans, "/invite bob again") {
			t.Errorf("a second /invite bob answered %q, want it to ask for /invite bob again", ans)
		}
		e.noAction(m, time.Second, "a second invitation without confirmation", func(a simwa.Action) bool { return a.Type == "send_text" })
		invite(t, bob, "/invite bob again")
	})

	t.Run("moved", func(t *testing.T) {
		e.tb = t
		for cmd, want := range map[string]string{
			"/moved bob":                   "needs their XMPP address",
			"/moved bob bob at example":    "not an XMPP address",
			"/moved bob bob@exa mple.org":  "not an XMPP address",
			"/moved nobody bob@example.ne": "No chat",
			"/moved bob " + owner:          "your own address",
		} {
			if ans := e.command(cmd); !strings.Contains(ans, want) {
				t.Errorf("%s answered %q, want it to say %q", cmd, ans, want)
			}
		}
		if ans := e.command("/moved bob xmpp:bob@example.net?roster"); !strings.HasPrefix(ans, "Noted: Bob is on XMPP as bob@example.net.") {
			t.Fatalf("/moved answered %q", ans)
		}
		if ans := e.command("/chats"); !strings.Contains(ans, "bob — Bob (on XMPP)") || strings.Contains(ans, "alice — Alice (on XMPP)") {
			t.Errorf("/chats answered %q, want Bob marked (and Alice not)", ans)
		}
		// Bob's new messages carry the reminder, a URI to write to him.
		for i := range 2 {
			m := e.mark()
			text := fmt.Sprintf("still on WhatsApp %d", i)
			e.inject(textMsg(bob, bob, fmt.Sprintf("MV%d", i), text, "Bob"))
			body := e.msg(m, text).Body()
			lines := strings.Split(body, "\n")
			if len(lines) != 2 || lines[0] != "*Bob*: "+text || !strings.HasPrefix(lines[1], "↪ on XMPP: ") {
				t.Fatalf("relayed as %q, want the text and a reminder line", body)
			}
			u, err := bridge.ParseURI(strings.TrimPrefix(lines[1], "↪ on XMPP: "))
			if err != nil || u.JID != "bob@example.net" || u.Query != "message" {
				t.Errorf("the reminder %q: %+v, %v", lines[1], u, err)
			}
		}
		// Alice did not move: no reminder.
		m := e.mark()
		e.inject(textMsg(alice, alice, "MVA", "alice stays", "Alice"))
		if body := e.msg(m, "alice stays").Body(); body != "*Alice*: alice stays" {
			t.Errorf("Alice's message relayed as %q", body)
		}
		// Writing to Bob on WhatsApp: the bot offers, once, to write to him
		// directly.
		m = e.mark()
		e.send("/msg bob see you on XMPP", "")
		e.action(m, wait, "the message to Bob", sendTo(bob, "see you on XMPP"))
		offer := e.msg(m, "Bob is on XMPP").Body()
		if !strings.Contains(offer, "xmpp:bob@example.net?message") || !strings.Contains(offer, "once") {
			t.Errorf("the offer is %q", offer)
		}
		m = e.mark()
		e.send("/msg bob and once more", "")
		e.action(m, wait, "the second message to Bob", sendTo(bob, "and once more"))
		e.command("/status") // the answer comes after anything the /msg said
		for _, s := range e.stanzasSince(m) {
			if strings.Contains(s.Body(), "Bob is on XMPP") {
				t.Errorf("the offer came again: %s", s.Body())
			}
		}
	})

	t.Run("invites", func(t *testing.T) {
		e.tb = t
		want := []string{
			"1 of 2 invited friends are on XMPP.",
			"0 of 1 invited group is on XMPP.",
			"bob — Bob: invited 2 times, last ",
			"; on XMPP as bob@example.net",
			"alice — Alice: invited 6 times, last ",
			"family — Family (group): invited 4 times, last ",
		}
		check := func(t *testing.T, what, ans string) {
			t.Helper()
			for _, w := range want {
				if !strings.Contains(ans, w) {
					t.Errorf("%s answered %q, want it to say %q", what, ans, w)
				}
			}
		}
		check(t, "/invites", e.command("/invites"))
		// Kept in the state file across a restart.
		e.stop()
		e.start()
		e.settle()
		check(t, "/invites after a restart", e.command("/invites"))
		// The same as an XEP-0050 ad-hoc command.
		m := e.mark()
		e.owner.Send(fmt.Sprintf("<iq type='set' to='%s/waxmpp' id='inv-ah1'><command xmlns='http://jabber.org/protocol/commands' node='invites' action='execute'/></iq>", e.bot))
		s := e.stanza(m, wait, "the ad-hoc answer", func(s *pt.Elem) bool { return s.XMLName.Local == "iq" && s.Attr("id") == "inv-ah1" })
		check(t, "the ad-hoc invites command", noteText(s))
	})

	t.Run("ad-hoc invite", func(t *testing.T) {
		e.tb = t
		// Carol wrote in the family only: her own chat starts with /new.
		if ans := e.command("/new +491703333333"); !strings.Contains(ans, "Carol") {
			t.Fatalf("/new +491703333333 answered %q", ans)
		}
		m := e.mark()
		e.owner.Send(fmt.Sprintf("<iq type='set' to='%s/waxmpp' id='inv-ah2'><command xmlns='http://jabber.org/protocol/commands' node='invite' action='execute'/></iq>", e.bot))
		form := e.stanza(m, wait, "the ad-hoc form", func(s *pt.Elem) bool { return s.XMLName.Local == "iq" && s.Attr("id") == "inv-ah2" })
		cmd := form.Child("http://jabber.org/protocol/commands", "command")
		if cmd == nil || cmd.Attr("sessionid") == "" {
			t.Fatalf("the invite command answered %s, want a form", form)
		}
		m = e.mark()
		e.owner.Send(fmt.Sprintf("<iq type='set' to='%s/waxmpp' id='inv-ah3'><command xmlns='http://jabber.org/protocol/commands' node='invite' sessionid='%s'><x xmlns='jabber:x:data' type='submit'><field var='args'><value>carol</value></field></x></command></iq>",
			e.bot, cmd.Attr("sessionid")))
		s := e.stanza(m, wait, "the ad-hoc answer", func(s *pt.Elem) bool { return s.XMLName.Local == "iq" && s.Attr("id") == "inv-ah3" })
		if note := noteText(s); !strings.HasPrefix(note, "Invited Carol") {
			t.Errorf("the ad-hoc invite answered %q", note)
		}
		a := e.action(m, wait, "the invitation to Carol", func(a simwa.Action) bool { return a.Type == "send_text" && a.Chat == carol })
		checkInvitation(t, a.Text, owner, "roster")
	})
}

// setInvite restarts the binary with the [invite] table body given.
func (e *simEnv) setInvite(table string) {
	e.tb.Helper()
	b, err := os.ReadFile(e.conf)
	if err != nil {
		e.tb.Fatal(err)
	}
	doc, _, _ := strings.Cut(string(b), "[invite]\n")
	if err := os.WriteFile(e.conf, []byte(doc+"[invite]\n"+table), 0o600); err != nil {
		e.tb.Fatal(err)
	}
	e.stop()
	e.start()
	e.settle()
}

// settle waits until the restarted binary answers /status: what its outbox
// sends again after a restart (unconfirmed stanzas, with their ids) comes
// before that answer, so the next command's answer is the next message.
func (e *simEnv) settle() {
	e.tb.Helper()
	m := e.mark()
	e.send("/status", "")
	e.msg(m, "waxmpp "+testVersion)
}

var (
	uriRE  = regexp.MustCompile(`xmpp:[^\s()]+`)
	linkRE = regexp.MustCompile(`https://[^\s()]+`)
)

// checkInvitation: the text names the owner's address, as an xmpp: URI
// that parses (RFC 5122, with XEP-0147's query) to it, and as an https
// landing link that carries it.
func checkInvitation(t *testing.T, text, owner, query string) {
	t.Helper()
	uris := uriRE.FindAllString(text, -1)
	if len(uris) == 0 {
		t.Errorf("no xmpp: URI in %q", text)
	}
	for _, s := range uris {
		u, err := bridge.ParseURI(s)
		if err != nil || u.JID != owner || u.Query != query || u.Auth != "" || len(u.Params) != 0 {
			t.Errorf("the URI %q parses as %+v, %v; want %s?%s", s, u, err, owner, query)
		}
	}
	links := linkRE.FindAllString(text, -1)
	if len(links) == 0 {
		t.Errorf("no https link in %q", text)
	}
	for _, s := range links {
		l, err := url.Parse(s)
		if err != nil || l.Scheme != "https" {
			t.Errorf("the link %q: %+v, %v", s, l, err)
			continue
		}
		if l.Fragment != "" {
			if u, err := bridge.ParseURI("xmpp:" + l.EscapedFragment()); err != nil || u.JID != owner || u.Query != query {
				t.Errorf("the link %q names %+v, %v", s, u, err)
			}
		} else if l.Host != "conversations.im" || l.Path != "/i/"+owner {
			t.Errorf("the link %q does not name %s on conversations.im/i/", s, owner)
		}
	}
}

// noteText is the text of an XEP-0050 answer's note.
func noteText(s *pt.Elem) string {
	if c := s.Child("http://jabber.org/protocol/commands", "command"); c != nil {
		if n := c.Child("", "note"); n != nil {
			return n.Text
		}
	}
	return ""
}

// inviteGolden compares got with testdata/invite/name (-update rewrites it).
func inviteGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", "invite", name)
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
