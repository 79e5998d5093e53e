package xmpp

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"waxmpp/bridge"
	pt "waxmpp/bridge/prosodytest"
)

// publishDevices publishes an OMEMO device list on c's own account, as a
// client does (publish-options: the list is open to everyone).
func publishDevices(t *testing.T, c *pt.Client, id, node, payload string) {
	t.Helper()
	c.Send(fmt.Sprintf(`<iq type='set' id='%s'><pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='%s'><item id='current'>%s</item></publish>`+
		`<publish-options><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>http://jabber.org/protocol/pubsub#publish-options</value></field>`+
		`<field var='pubsub#access_model'><value>open</value></field></x></publish-options></pubsub></iq>`, id, node, payload))
	if r := c.Next(t, 10*time.Second, func(e *pt.Elem) bool { return e.Attr("id") == id }); r.Attr("type") != "result" {
		t.Fatalf("publish %s: %s", node, r)
	}
}

// deviceList reads an OMEMO device list of c's own account: the device
// ids, and whether the node exists.
func deviceList(t *testing.T, c *pt.Client, id, node string) ([]string, bool) {
	t.Helper()
	c.Send(fmt.Sprintf(`<iq type='get' id='%s'><pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='%s'/></pubsub></iq>`, id, node))
	r := c.Next(t, 10*time.Second, func(e *pt.Elem) bool { return e.Attr("id") == id })
	if r.Attr("type") == "error" {
		return nil, false
	}
	var ids []string
	items := r.Child(NSPubSub, "pubsub").Child("", "items")
	for _, it := range items.Children {
		for _, l := range it.Children {
			for _, d := range l.Children {
				if d.XMLName.Local == "device" {
					ids = append(ids, d.Attr("id"))
				}
			}
		}
	}
	return ids, true
}

// TestEmptyOMEMO: a stale OMEMO device on the bot's account (left by the
// app that created it) is removed at login, on both servers, so that the
// owner's clients do not encrypt to the bot; a device list that does not
// exist is not created.
func TestEmptyOMEMO(t *testing.T) {
	for _, kind := range pt.Kinds {
		t.Run(string(kind), func(t *testing.T) {
			srv := pt.Start(t, pt.Options{Kind: kind, NoShaper: true})
			other := srv.Dial(t, "bot") // the old app, logged in as the bot
			publishDevices(t, other, "p1", nodeOMEMO, `<list xmlns='eu.siacs.conversations.axolotl'><device id='125970373'/></list>`)
			if ids, ok := deviceList(t, other, "q0", nodeOMEMO); !ok || len(ids) != 1 {
				t.Fatalf("stale list not published: %v %v", ids, ok)
			}
			if _, ok := deviceList(t, other, "q1", nodeOMEMO2); ok {
				t.Fatalf("%s exists before the bot logs in", nodeOMEMO2)
			}
			startSession(t, botConfig(t, srv))
			waitFor(t, 10*time.Second, "an empty device list", func() bool {
				ids, ok := deviceList(t, other, "q2", nodeOMEMO)
				return ok && len(ids) == 0
			})
			if _, ok := deviceList(t, other, "q3", nodeOMEMO2); ok {
				t.Errorf("%s was created", nodeOMEMO2)
			}
			// OMEMO 2's list is emptied the same way.
			publishDevices(t, other, "p2", nodeOMEMO2, `<devices xmlns='urn:xmpp:omemo:2'><device id='31415' label='old phone'/></devices>`)
			startSession(t, func() Config { c := botConfig(t, srv); c.Resource = "second"; return c }())
			waitFor(t, 10*time.Second, "an empty OMEMO 2 device list", func() bool {
				ids, ok := deviceList(t, other, "q4", nodeOMEMO2)
				return ok && len(ids) == 0
			})
		})
	}
}

// TestOwnerClientsAndRoster: the Bot tells the core the owner's roster
// state at login and when the owner subscribes back, and which client the
// owner's resource runs, from its caps and its disco#info identity (as
// profanity 0.13.1 answers it), and when it goes offline.
func TestOwnerClientsAndRoster(t *testing.T) {
	for _, kind := range pt.Kinds {
		t.Run(string(kind), func(t *testing.T) {
			srv := pt.Start(t, pt.Options{Kind: kind, NoShaper: true})
			owner := srv.Dial(t, "owner")
			s := startSession(t, botConfig(t, srv))
			bot := NewBot(s)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- bot.Run(ctx) }()
			t.Cleanup(func() { cancel(); <-done })
			next := func(what string, match func(bridge.OwnerEvent) bool) bridge.OwnerEvent {
				t.Helper()
				deadline := time.After(15 * time.Second)
				for {
					select {
					case ev := <-bot.Owner():
						if match(ev) {
							return ev
						}
					case <-deadline:
						t.Fatalf("no %s", what)
					}
				}
			}
			r := next("roster at login", func(ev bridge.OwnerEvent) bool { _, ok := ev.(*bridge.OwnerRoster); return ok }).(*bridge.OwnerRoster)
			if r.SeesBot || r.Accepted || r.Bot != srv.JID("bot") {
				t.Fatalf("roster at login %+v, want not subscribed either way", r)
			}
			subscribed(t, owner, srv.JID("bot"))
			next("mutual roster", func(ev bridge.OwnerEvent) bool {
				r, ok := ev.(*bridge.OwnerRoster)
				return ok && r.SeesBot && r.Accepted
			})
			// profanity's presence, and its answer to the bot's disco#info.
			const node, ver = "http://profanity-im.github.io", "Sb0R3dtmZsLSf1CuGFGYkmNdm1k="
			owner.Send(`<presence><c xmlns='http://jabber.org/protocol/caps' node='` + node + `' hash='sha-1' ver='` + ver + `'/></presence>`)
			q := owner.Next(t, 10*time.Second, func(e *pt.Elem) bool {
				c := e.Child(NSDiscoInfo, "query")
				return e.XMLName.Local == "iq" && e.Attr("type") == "get" && c != nil && c.Attr("node") == node+"#"+ver &&
					strings.HasPrefix(e.Attr("from"), srv.JID("bot")+"/") // not the server's own (Prosody's PEP asks too)
			})
			owner.Send(`<iq type='result' id='` + q.Attr("id") + `' to='` + q.Attr("from") + `'><query xmlns='http://jabber.org/protocol/disco#info' node='` + node + `#` + ver + `'>` +
				`<identity name='Profanity 0.13.1' category='client' type='console'/><feature var='urn:xmpp:receipts'/><feature var='eu.siacs.conversations.axolotl.devicelist+notify'/></query></iq>`)
			c := next("profanity", func(ev bridge.OwnerEvent) bool { c, ok := ev.(*bridge.OwnerClient); return ok && c.Online }).(*bridge.OwnerClient)
			if c.Resource != "test" || c.Node != node || c.Name != "Profanity 0.13.1" || !strings.HasPrefix(c.Bot, srv.JID("bot")+"/") {
				t.Fatalf("client %+v", c)
			}
			owner.Send(`<presence type='unavailable'/>`)
			next("offline", func(ev bridge.OwnerEvent) bool {
				c, ok := ev.(*bridge.OwnerClient)
				return ok && !c.Online && c.Resource == "test"
			})
		})
	}
}
