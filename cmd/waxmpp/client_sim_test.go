//go:build simwa

package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"waxmpp/bridge"
	pt "waxmpp/bridge/prosodytest"
	"waxmpp/bridge/simwa"
)

// TestSimProfanity runs the real binary with a real profanity 0.13 as
// the owner (driven through tmux), as a new user would: accepting the
// bot's request, typing commands, answering a WhatsApp message, trying
// OTR and ad-hoc commands. The test's own client is the owner too (a
// second resource), to read exactly what the bot sent.
func TestSimProfanity(t *testing.T) {
	e := newSimEnv(t, envOptions{noSubscribe: true})
	p := startProfanity(t, e.srv, "owner")
	bot := e.bot

	// The bot's subscription request reaches profanity; accepting it
	// gives the bot the owner's presence, not the owner the bot's.
	p.wait(wait, "Received authorization request from "+bot)
	m := e.mark()
	p.line("/sub allow " + bot)
	// profanity's caps name it: the bot says how to write commands
	// there, and asks to be added back, in profanity's words.
	e.msg(m, "You are writing from Profanity", "!help")
	ask := e.msg(m, "Please add me to your contacts", "whether WhatsApp is connected").Body()
	if !strings.Contains(ask, "/sub request "+bot) {
		t.Errorf("the request to be added back does not say how in profanity: %q", ask)
	}
	p.line("/msg " + bot)
	p.wait(wait, "You are writing from Profanity")
	p.line("/sub request " + bot)
	// The owner sees the bot's presence now: the health light.
	e.stanza(m, wait, "the bot's presence", func(s *pt.Elem) bool {
		return s.XMLName.Local == "presence" && strings.HasPrefix(s.Attr("from"), bot+"/") && s.Attr("type") == ""
	})
	// The server may send the bot's presence before the roster push that
	// tells profanity the subscription is mutual (ejabberd does).
	p.waitLog(0, wait, "RECV", "jabber:iq:roster", `jid="`+bot+`"`, `subscription="both"`)
	p.line("/sub show " + bot)
	p.wait(wait, bot+" subscription status: both")

	// "/help" is profanity's; "!help" is the bot's, in profanity's forms.
	m = e.mark()
	p.line("/help")
	e.noStanza(m, 2*time.Second, "an answer to /help, which profanity keeps", func(s *pt.Elem) bool { return e.fromBot(s) && s.Body() != "" })
	p.line("!help")
	help := e.msg(m, "!chats [filter]").Body()
	for _, want := range []string{"in Profanity start them with !", "!to <chat>", "///text sends \"/text\"", "/cmd list " + bot + "/"} {
		if !strings.Contains(help, want) {
			t.Errorf("help for profanity lacks %q:\n%s", want, help)
		}
	}
	p.wait(wait, "!msg <chat> <text>")

	// Relayed lines are plain (profanity shows XEP-0393 markers as typed).
	m = e.mark()
	e.inject(textMsg(alice, alice, "PA1", "are you coming tonight?", "Alice"))
	if got := e.msg(m, "are you coming tonight?").Body(); got != "Alice: are you coming tonight?" {
		t.Errorf("relayed to profanity as %q, want the plain header", got)
	}
	p.wait(wait, "Alice: are you coming tonight?")
	// profanity sends a receipt, but no displayed marker: nothing is
	// marked read until the owner answers.
	e.noAction(m, 2*time.Second, "mark_read without an answer", func(a simwa.Action) bool { return a.Type == "mark_read" })

	// Read when answered.
	m = e.mark()
	p.line("!to alice")
	e.msg(m, "plain messages go there now")
	m = e.mark()
	p.line("yes, at 8")
	e.action(m, wait, "the answer", sendTo(alice, "yes, at 8"))
	e.action(m, wait, "mark_read of what Alice sent", func(a simwa.Action) bool {
		return a.Type == "mark_read" && a.Chat == alice && contains(a.IDs, "PA1")
	})
	// "!!" sends a text that starts with "!"; a "!word" is a command and
	// never reaches WhatsApp.
	m = e.mark()
	p.line("!!important")
	e.action(m, wait, "the escaped text", sendTo(alice, "!important"))
	m = e.mark()
	p.line("!important")
	e.msg(m, "Unknown command !important", "!!important")
	e.noAction(m, time.Second, "a command sent as text", func(a simwa.Action) bool { return a.Type == "send_text" })

	// In a group, an answer marks read what each sender wrote before (one
	// call per sender, as WhatsApp wants); "!msg" is the bot's, not
	// profanity's /msg.
	e.inject(&bridge.ChatInfo{Chat: family, Kind: bridge.Group, Name: "Family"})
	m = e.mark()
	e.inject(textMsg(family, bob, "PF1", "dinner at 7?", "Bob"), textMsg(family, alice, "PF2", "I'll bring cake", "Alice"))
	e.msg(m, "Alice → Family: I'll bring cake")
	p.wait(wait, "Alice → Family: I'll bring cake")
	e.noAction(m, time.Second, "mark_read without an answer", func(a simwa.Action) bool { return a.Type == "mark_read" })
	m = e.mark()
	p.line("!msg family sounds good")
	e.action(m, wait, "the answer to the group", sendTo(family, "sounds good"))
	for _, w := range []struct{ sender, id string }{{bob, "PF1"}, {alice, "PF2"}} {
		e.action(m, wait, "mark_read of "+w.id, func(a simwa.Action) bool {
			return a.Type == "mark_read" && a.Chat == family && a.Sender == w.sender && contains(a.IDs, w.id)
		})
	}

	// OTR: profanity's query is never relayed; the bot says how to stop.
	p.line("/otr gen")
	p.line("/win 1")
	p.wait(2*time.Minute, "Private key generation complete")
	p.line("/win 2")
	m = e.mark()
	p.line("/otr start")
	e.msg(m, "Not sent", "(OTR)", "/otr end")
	e.noAction(m, time.Second, "an OTR query sent to WhatsApp", func(a simwa.Action) bool { return a.Type == "send_text" })
	p.line("/otr end")

	// Ad-hoc commands, as profanity lists and runs them.
	full := bot + "/waxmpp"
	p.line("/cmd list " + full)
	p.line("/win 1") // profanity shows them in its console
	p.wait(wait, "Ad hoc commands:")
	p.wait(wait, "!   history")
	p.line("/cmd exec status " + full)
	p.wait(wait, "waxmpp "+testVersion)
	// The console also showed the health light, once subscribed.
	p.wait(wait, "++ "+bot+" (waxmpp) is online, \"WhatsApp connected\"")
}

// noStanza checks that the owner receives nothing match accepts within d
// after m.
func (e *simEnv) noStanza(m mark, d time.Duration, what string, match func(*pt.Elem) bool) {
	e.tb.Helper()
	var got *pt.Elem
	if e.waitLogs(d, func(_ []simwa.Action, ss []*pt.Elem) bool {
		for _, s := range ss[m.stanzas:] {
			if match(s) {
				got = s
				return true
			}
		}
		return false
	}) {
		e.tb.Fatalf("unexpected %s: %s", what, got)
	}
}

// TestSimProfanityOMEMO: an OMEMO device left on the bot's account (here
// by profanity logged in as the bot, as the app used to create the account
// would) makes the owner's profanity encrypt to the bot; that message is
// never relayed, and the owner is told how to stop. At its next login the
// bot empties its device list, and profanity no longer encrypts to it.
func TestSimProfanityOMEMO(t *testing.T) {
	e := newSimEnv(t, envOptions{})
	e.addressBook()
	e.command("/to alice")
	bot := e.bot

	// profanity 0.13 adds its device only to a list that exists (it reads
	// item-not-found as a failure): the old app's list, empty at first.
	old := e.srv.Dial(t, "bot")
	publishList(t, old, "l1", "")
	pb := startProfanity(t, e.srv, "bot")
	pb.line("/omemo gen")
	pb.wait(wait, "Your Device ID is")
	waitDevices(t, old, func(ids []string) bool { return len(ids) == 1 })
	pb.line("/quit")

	p := startProfanity(t, e.srv, "owner")
	p.line("/omemo gen")
	p.wait(wait, "Your Device ID is")
	p.line("/msg " + bot)
	p.line("/omemo start")
	p.omemoTrust(bot)
	m := e.mark()
	p.line("meet me at the station")
	p.wait(wait, "me: meet me at the station")
	told := e.msg(m, "Not sent", "(OMEMO)").Body()
	if !strings.Contains(told, "/omemo end") {
		t.Errorf("the owner is not told how to stop OMEMO in profanity: %q", told)
	}
	e.noAction(m, 2*time.Second, "the OMEMO fallback sent to WhatsApp", func(a simwa.Action) bool { return a.Type == "send_text" })

	// The bot's next login empties the list; profanity learns it (PEP):
	// a line typed before that would still be encrypted.
	logged := p.logSize()
	e.stop()
	e.start()
	waitDevices(t, old, func(ids []string) bool { return len(ids) == 0 })
	p.waitLog(logged, wait, "RECV", `from="`+bot+`"`, "devicelist", `<list xmlns="eu.siacs.conversations.axolotl"/>`)
	m = e.mark()
	p.line("and now?")
	p.wait(wait, "Can't find a OMEMO device id for "+bot)
	e.noAction(m, 2*time.Second, "anything sent to WhatsApp", func(a simwa.Action) bool { return a.Type == "send_text" })
	p.line("/omemo end")
	p.line("plain again")
	e.action(m, wait, "the plain text", sendTo(alice, "plain again"))
}

// publishList publishes c's own OMEMO device list (open to all, as
// clients publish it) with the devices in devices (XML).
func publishList(t *testing.T, c *pt.Client, id, devices string) {
	t.Helper()
	c.Send(`<iq type='set' id='` + id + `'><pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='eu.siacs.conversations.axolotl.devicelist'><item id='current'><list xmlns='eu.siacs.conversations.axolotl'>` + devices + `</list></item></publish>` +
		`<publish-options><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>http://jabber.org/protocol/pubsub#publish-options</value></field>` +
		`<field var='pubsub#access_model'><value>open</value></field></x></publish-options></pubsub></iq>`)
	if r := c.Next(t, wait, func(s *pt.Elem) bool { return s.Attr("id") == id }); r.Attr("type") != "result" {
		t.Fatalf("publish the device list: %s", r)
	}
}

// waitDevices waits until c's own OMEMO device list satisfies ok.
func waitDevices(t *testing.T, c *pt.Client, ok func(ids []string) bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for n := 0; ; n++ {
		id := fmt.Sprintf("dl%d", n)
		c.Send(`<iq type='get' id='` + id + `'><pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='eu.siacs.conversations.axolotl.devicelist'/></pubsub></iq>`)
		r := c.Next(t, wait, func(s *pt.Elem) bool { return s.Attr("id") == id })
		var ids []string
		if ps := r.Child("", "pubsub"); ps != nil && ps.Child("", "items") != nil {
			for _, it := range ps.Child("", "items").Children {
				for _, l := range it.Children {
					for _, d := range l.Children {
						ids = append(ids, d.Attr("id"))
					}
				}
			}
		}
		if ok(ids) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the bot's device list is %v (%s)", ids, r)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// announce makes the test's owner client present itself as another
// client: its XEP-0115 caps in a presence, and its identity when the bot
// asks (XEP-0030), as that client answers.
func (e *simEnv) announce(node, ver, name string) {
	e.tb.Helper()
	m := e.mark()
	e.owner.Send(`<presence><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='` + node + `' ver='` + ver + `'/></presence>`)
	q := e.stanza(m, wait, "the bot's disco#info request", func(s *pt.Elem) bool {
		c := s.Child("http://jabber.org/protocol/disco#info", "query")
		return s.XMLName.Local == "iq" && s.Attr("type") == "get" && c != nil && c.Attr("node") == node+"#"+ver && strings.HasPrefix(s.Attr("from"), e.bot+"/")
	})
	e.owner.Send(`<iq type='result' id='` + q.Attr("id") + `' to='` + q.Attr("from") + `'><query xmlns='http://jabber.org/protocol/disco#info' node='` + node + `#` + ver + `'>` +
		`<identity category='client' type='pc' name='` + name + `'/><feature var='urn:xmpp:receipts'/></query></iq>`)
}

// OMEMO as Conversations sends it (legacy namespace, EME hint, its
// fallback body), and the other encrypted forms.
const (
	omemoConversations = `<encrypted xmlns='eu.siacs.conversations.axolotl'><header sid='1917338022'><key rid='125970373'>MwohBQsDaJy7ifrZ</key><iv>nrn3Lh9Rmv2VnB3m</iv></header><payload>8jw9zKqa</payload></encrypted>` +
		`<request xmlns='urn:xmpp:receipts'/><markable xmlns='urn:xmpp:chat-markers:0'/><encryption xmlns='urn:xmpp:eme:0' name='OMEMO' namespace='eu.siacs.conversations.axolotl'/><store xmlns='urn:xmpp:hints'/>`
	fallbackConversations = "I sent you an OMEMO encrypted message but your client doesn’t seem to support that. Find more information on https://conversations.im/omemo"
	omemo2                = `<encrypted xmlns='urn:xmpp:omemo:2'><header sid='27183'><keys jid='bot@waxmpp.test'><key rid='31415' kex='true'>AA==</key></keys></header><payload>AA==</payload></encrypted><encryption xmlns='urn:xmpp:eme:0' namespace='urn:xmpp:omemo:2'/>`
	openPGP               = `<openpgp xmlns='urn:xmpp:openpgp:0'>BASE64_OPENPGP_MESSAGE</openpgp><encryption xmlns='urn:xmpp:eme:0' namespace='urn:xmpp:openpgp:0'/>`
	legacyPGP             = `<x xmlns='jabber:x:encrypted'>qANQR1DBwU4DX7jmYZnncmUQB/9KuKBddzQH+tZ1ZywKK0yHKnq57kWq+RFtQdCJ</x>`
)

// TestSimOtherClients: the owner's client as Conversations, Gajim, Dino,
// poezio and Monal present themselves (caps node, identity): commands,
// hints and rendering follow, and their encrypted messages (OMEMO in both
// namespaces, OpenPGP for XMPP, legacy PGP, OTR) never reach WhatsApp.
func TestSimOtherClients(t *testing.T) {
	e := newSimEnv(t, envOptions{})
	e.addressBook()
	e.command("/to alice")
	noText := func(m mark, what string) {
		t.Helper()
		e.noAction(m, 500*time.Millisecond, what, func(a simwa.Action) bool { return a.Type == "send_text" })
	}
	for _, c := range []struct {
		node, name   string
		client       string // the name the bot gives it
		prefix       string // how commands are typed there
		plain        bool
		cryptoWords  string
		slashNoteToo bool
	}{
		{"http://conversations.im", "Conversations", "Conversations", "/", false, "choose Unencrypted", false},
		{"https://gajim.org", "Gajim", "Gajim", "!", false, "choose Disabled", true},
		{"https://dino.im", "Dino", "Dino", "/", false, "choose Unencrypted", false},
		{"https://poez.io", "Poezio", "poezio", "!", true, "/omemo", true},
		{"http://monal.im/", "Monal", "Monal", "/", false, "switch encryption off", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			e.tb = t
			m := e.mark()
			e.announce(c.node, "ver-"+c.name, c.name)
			if c.slashNoteToo {
				e.msg(m, "which takes a line starting with / as its own command", "!help")
			}
			// The bot learns the client when its identity comes back, in
			// its own time (the answer and the owner's next message reach
			// the core in either order): the help's first line tells
			// which client it was written for.
			head := "Commands — start them with / (or !)"
			if c.prefix == "!" {
				head = "Commands — in " + c.client + " start them with !"
			}
			var help string
			for deadline := time.Now().Add(wait); ; {
				help = e.command(c.prefix + "help")
				if strings.HasPrefix(help, head) || time.Now().After(deadline) {
					break
				}
			}
			if !strings.HasPrefix(help, head) || !strings.Contains(help, c.prefix+"to <chat>") || !strings.Contains(help, c.prefix+"chats [filter]") {
				t.Fatalf("help in %s:\n%s", c.name, help)
			}
			m = e.mark()
			e.send(fallbackConversations, omemoConversations)
			if told := e.msg(m, "Not sent", "(OMEMO)").Body(); !strings.Contains(told, c.cryptoWords) {
				t.Errorf("%s: told %q, want %q", c.name, told, c.cryptoWords)
			}
			noText(m, "an OMEMO fallback body sent")
			m = e.mark()
			e.inject(textMsg(alice, alice, "OC-"+c.name, "hi "+c.name, "Alice"))
			want := "*Alice*: hi " + c.name
			if c.plain {
				want = "Alice: hi " + c.name
			}
			if got := e.msg(m, "hi "+c.name).Body(); got != want {
				t.Errorf("relayed to %s as %q, want %q", c.name, got, want)
			}
		})
	}
	t.Run("other encryptions", func(t *testing.T) {
		e.tb = t
		for _, x := range []struct{ body, extra, scheme string }{
			{"This message is encrypted with OMEMO 2.", omemo2, "(OMEMO)"},
			{"This message is encrypted using OpenPGP for XMPP.", openPGP, "(OpenPGP)"},
			{"This message is encrypted.", legacyPGP, "(PGP)"},
			{"?OTR:AAMDJ+MVmSfjFZcAAAAAAQAAAAIAAADA1g5IjD1ZGLDVQEyCgCyn9hbrL3KAbGDdzE2ZkMyTKl7XfkSxh8YJnudstiB74i4BzT0W2haClg6dMary.", "", "(OTR)"},
		} {
			m := e.mark()
			e.send(x.body, x.extra)
			e.msg(m, "Not sent", x.scheme)
			noText(m, x.scheme+" sent")
		}
		// An OMEMO key exchange has nothing to read or tell.
		m := e.mark()
		e.send("", `<encrypted xmlns='eu.siacs.conversations.axolotl'><header sid='5'><key prekey='true' rid='125970373'>AA==</key><iv>AA==</iv></header></encrypted>`)
		e.noStanza(m, time.Second, "an answer to a key exchange", func(s *pt.Elem) bool { return e.fromBot(s) && s.Body() != "" })
		m = e.mark()
		e.send("plain words", "")
		e.action(m, wait, "plain text still goes", sendTo(alice, "plain words"))
	})
}
