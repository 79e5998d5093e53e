package bridge_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"waxmpp/bridge"
)

// TestRouteModel runs random sequences of what WhatsApp and the owner do
// through the real core and store, and checks every WhatsApp send against
// a model of the routing rules: nothing is ever sent to a chat the model
// does not name, nothing is sent that the model does not expect, and
// nothing the owner wrote is run twice.
//
// The sequences include messages from every chat (and from a contact's
// LID before WhatsApp says it is their phone number's chat), plain text,
// answers in the forms clients write them (a number, "2.", a quote of the
// question, a reply to it), XEP-0461 replies, "> " quotes of relayed
// messages and of nothing relayed, /to and /msg (also with a handle that a
// renamed group kept while a new group took its name), mutes, merges,
// restarts, crashes right after a message was relayed, and the server's
// archive replaying what the owner wrote.
func TestRouteModel(t *testing.T) {
	for seed := range uint64(12) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { routeModel(t, seed, 300) })
	}
}

const (
	lidAlice = "777@lid"
	family2  = "120363003@g.us"
)

// model is what the routing rules say the core's state is.
type model struct {
	current  string
	since    []string // raw chat ids, most recent first
	held     []string // texts
	question []string // numbered candidates, raw ids
	muted    map[string]bool
	merged   bool // lidAlice is alice
	renamed  bool // family is "Old Family"; family2 is "Family"
}

func (m *model) canon(c string) string {
	if c == lidAlice && m.merged {
		return alice
	}
	return c
}

func (m *model) spoke(c string) {
	c = m.canon(c)
	if m.canon(m.current) == c || len(m.since) > 0 && m.since[0] == c {
		return
	}
	m.since = slices.DeleteFunc(m.since, func(s string) bool { return s == c })
	m.since = slices.Insert(m.since, 0, c)
	if len(m.since) > 20 {
		m.since = m.since[:20]
	}
}

func (m *model) wrote(c string) {
	if m.canon(m.current) == m.canon(c) {
		m.since = nil
	}
}

// hold holds text with candidates cands (already capped as decide caps).
func (m *model) hold(text string, cands []string) {
	m.held = append(m.held, text)
	for _, c := range cands {
		c = m.canon(c)
		if len(m.question) < 9 && !slices.ContainsFunc(m.question, func(q string) bool { return m.canon(q) == c }) {
			m.question = append(m.question, c)
		}
	}
}

func (m *model) plainCandidates() []string {
	var cands []string
	add := func(c string) {
		if c != "" && len(cands) < 5 && !slices.Contains(cands, c) {
			cands = append(cands, c)
		}
	}
	add(m.current)
	for _, c := range m.since {
		add(c)
	}
	return cands
}

func (m *model) release(chat string, send func(chat, text string) string) []string {
	chat = m.canon(chat)
	var want []string
	for _, t := range m.held {
		want = append(want, send(chat, t))
	}
	m.held, m.question, m.current, m.since = nil, nil, chat, nil
	return want
}

func routeModel(t *testing.T, seed uint64, steps int) {
	rng := rand.New(rand.NewPCG(seed, 42))
	h := newHarness(t)
	h.setup()
	h.send(&bridge.ContactInfo{User: carol, PushName: "Carol"})
	m := &model{muted: map[string]bool{}}
	// bursts counts each chat's busy bursts: a message is quotable while
	// its chat's own latest records (quoteWindow) still hold it, which
	// no burst since guarantees.
	type relayed struct {
		chat, id, text string
		bursts         int
	}
	bursts := map[string]int{}
	var (
		rel      []relayed
		past     []bridge.OwnerEvent // what the owner wrote, for replays
		n        int
		question bridge.Outgoing                             // the last question the bot asked
		exists   = map[string]bool{family: true, work: true} // chats the store has
	)
	handle := func(c string) string {
		switch c {
		case alice:
			return "alice"
		case bob:
			return "bob"
		case family:
			if m.renamed {
				return "" // ambiguous now: see the rename op
			}
			return "family"
		case work:
			return "work"
		case family2:
			return "family2"
		}
		return ""
	}
	sendLine := func(chat, text string) string { return fmt.Sprintf("SendText %s %q", chat, text) }
	owner := func(ev bridge.OwnerEvent) {
		h.owner(ev)
		past = append(past, ev)
	}
	say := func(body string) { owner(&bridge.OwnerText{Body: body}) }
	chats := func() []string {
		cs := []string{alice, bob, family, work, lidAlice}
		if m.renamed {
			cs = append(cs, family2)
		}
		return cs
	}
	for i := range steps {
		n++
		var want []string
		desc := ""
		switch op := rng.IntN(17); op {
		case 0, 1, 2: // a message arrives from WhatsApp
			chat := chats()[rng.IntN(len(chats()))]
			sender := chat
			if strings.HasSuffix(chat, "@g.us") {
				sender = []string{bob, carol}[rng.IntN(2)]
			}
			id, text := fmt.Sprintf("W%d", n), fmt.Sprintf("text %d", n)
			h.send(&bridge.Message{Ref: bridge.MsgRef{Chat: bridge.ChatID(chat), Sender: bridge.UserID(sender), ID: id}, Time: t0.Add(time.Duration(n) * time.Second), Kind: bridge.Text, Text: text})
			exists[chat] = true
			if !m.muted[m.canon(chat)] {
				rel = append(rel, relayed{chat, id, text, bursts[m.canon(chat)]})
				m.spoke(chat)
			}
			desc = "wa " + chat
		case 3, 4: // plain text
			text := fmt.Sprintf("p%d", n)
			say(text)
			desc = "plain"
			if len(m.held) == 0 && m.current != "" && len(m.since) == 0 {
				want = []string{sendLine(m.canon(m.current), text)}
				break
			}
			m.hold(text, m.plainCandidates())
		case 5: // an answer, in one of the forms clients write it
			if len(m.held) == 0 || len(m.question) == 0 {
				continue
			}
			k := rng.IntN(len(m.question)) + 1
			switch f := rng.IntN(5); f {
			case 0, 1:
				say(fmt.Sprintf([]string{"%d", "%d.", "%d)", "#%d", "(%d)"}[rng.IntN(5)], k))
			case 2:
				say("> " + strings.ReplaceAll(question.Body, "\n", "\n> ") + "\n" + fmt.Sprint(k))
			default:
				owner(&bridge.OwnerText{Body: fmt.Sprint(k), ReplyTo: question.ID})
			}
			want = m.release(m.question[k-1], sendLine)
			desc = fmt.Sprint("answer ", k)
		case 6: // an XEP-0461 reply to a relayed message
			if len(rel) == 0 {
				continue
			}
			r := rel[rng.IntN(len(rel))]
			text := fmt.Sprintf("r%d", n)
			owner(&bridge.OwnerText{Body: text, ReplyTo: h.relayed(r.chat, r.id)})
			want = []string{sendLine(m.canon(r.chat), text) + " reply=" + r.id}
			m.wrote(r.chat)
			desc = "reply " + r.chat
		case 7: // a "> " quote of one of the last 150 relayed messages
			if len(rel) == 0 {
				continue
			}
			r := rel[max(0, len(rel)-1-rng.IntN(min(len(rel), 150)))]
			if bursts[m.canon(r.chat)] != r.bursts {
				continue
			}
			text := fmt.Sprintf("q%d", n)
			say("> " + r.text + "\n" + text)
			want = []string{sendLine(m.canon(r.chat), text) + " reply=" + r.id}
			m.wrote(r.chat)
			desc = "quote " + r.chat
		case 8: // a quote of something never relayed: held, asked
			text := fmt.Sprintf("> never said %d\nu%d", n, n)
			say(text)
			m.hold(text, m.plainCandidates())
			desc = "unmatched quote"
		case 9: // /to a chat
			chat := chats()[rng.IntN(len(chats()))]
			hd := handle(m.canon(chat))
			if !exists[chat] {
				continue
			}
			if hd == "" {
				if chat != family {
					continue
				}
				hd = "Old Family" // its whole name; "family" is ambiguous
			}
			say("/to " + hd)
			if len(m.held) > 0 {
				want = m.release(chat, sendLine)
			} else {
				m.current, m.since = m.canon(chat), nil
			}
			desc = "/to " + hd
		case 10: // /msg to a chat
			chat := chats()[rng.IntN(len(chats()))]
			text := fmt.Sprintf("m%d", n)
			if chat == family && m.renamed {
				// "family" is the old group's handle and the new group's
				// name: the bot asks.
				say("/msg family " + text)
				m.hold(text, []string{family, family2})
				desc = "/msg family (ambiguous)"
				break
			}
			hd := handle(m.canon(chat))
			if hd == "" || !exists[chat] {
				continue
			}
			say("/msg " + hd + " " + text)
			want = []string{sendLine(m.canon(chat), text)}
			m.wrote(chat)
			desc = "/msg " + hd
		case 11: // mute or unmute a chat
			chat := []string{alice, bob, family, work}[rng.IntN(4)]
			hd := handle(chat)
			if hd == "" || !exists[chat] {
				continue // the renamed family: /mute takes no whole names
			}
			if m.muted[chat] {
				say("/unmute " + hd)
				delete(m.muted, chat)
			} else {
				say("/mute " + hd)
				m.muted[chat] = true
				m.since = slices.DeleteFunc(m.since, func(s string) bool { return m.canon(s) == chat })
			}
			desc = "mute " + hd
		case 12: // WhatsApp says alice's LID is her phone number: one chat
			if m.merged || !exists[lidAlice] || !exists[alice] {
				continue
			}
			h.send(&bridge.Alias{LID: lidAlice, Phone: alice})
			m.merged = true
			desc = "merge"
		case 13: // family is renamed; a new group takes its name
			if m.renamed {
				continue
			}
			h.send(&bridge.GroupChange{Chat: family, Actor: bob, Kind: bridge.GroupSubject, Subject: "Old Family", Time: t0.Add(time.Duration(n) * time.Second)})
			h.send(&bridge.ChatInfo{Chat: family2, Kind: bridge.Group, Name: "Family"})
			exists[family2] = true
			if !m.muted[family] {
				m.spoke(family) // the rename is told, in family's name
			}
			m.renamed = true
			desc = "rename"
		case 14: // the archive replays something the owner wrote
			if len(past) == 0 {
				continue
			}
			ev := past[rng.IntN(len(past))]
			h.own <- ev
			desc = fmt.Sprintf("replay %T %s", ev, ownerMeta(ev).ID)
		case 16: // a busy muted group: many messages the owner never sees
			var chat string
			for _, c := range []string{family, work} {
				if m.muted[c] {
					chat = c
				}
			}
			if chat == "" {
				continue
			}
			for k := range 60 {
				h.send(&bridge.Message{Ref: bridge.MsgRef{Chat: bridge.ChatID(chat), Sender: bob, ID: fmt.Sprintf("B%d.%d", n, k)}, Time: t0.Add(time.Duration(n) * time.Second), Kind: bridge.Text, Text: fmt.Sprintf("busy %d.%d", n, k)})
			}
			bursts[chat]++
			desc = "busy " + chat
		case 15: // a restart, or a crash right after a message was relayed
			if rng.IntN(2) == 0 {
				h.restart()
				desc = "restart"
				break
			}
			chat := []string{alice, bob, work}[rng.IntN(3)]
			if m.muted[chat] {
				continue
			}
			id, text := fmt.Sprintf("W%d", n), fmt.Sprintf("text %d", n)
			h.st.set("PutBlob", errCrash)
			h.send(&bridge.Message{Ref: bridge.MsgRef{Chat: bridge.ChatID(chat), Sender: bridge.UserID(chat), ID: id}, Time: t0.Add(time.Duration(n) * time.Second), Kind: bridge.Text, Text: text})
			h.sync()
			h.crash()
			rel = append(rel, relayed{chat, id, text, bursts[chat]})
			exists[chat] = true
			m.spoke(chat)
			desc = "crash after " + chat
		}
		got := h.wa.take()
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("step %d (%s): WhatsApp got %q, want %q\ncurrent %s since %v held %v question %v", i, desc, got, want, m.current, m.since, m.held, m.question)
		}
		for _, o := range h.x.take() {
			if strings.Contains(o.Body, "Send to 1)") || strings.Contains(o.Body, "Not sent yet — ") {
				question = o
			}
		}
	}
}
