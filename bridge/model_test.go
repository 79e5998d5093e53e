package bridge_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"waxmpp/bridge"
)

// TestRouteModel runs random sequences of WhatsApp messages and owner
// messages (plain text, answers, replies, /to, /msg) through the real core
// and store, restarting it now and then, and checks every WhatsApp send
// against a model of the routing rules: nothing is ever sent to a chat the
// model does not name.
func TestRouteModel(t *testing.T) {
	for seed := range uint64(8) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { routeModel(t, seed, 300) })
	}
}

func routeModel(t *testing.T, seed uint64, steps int) {
	rng := rand.New(rand.NewPCG(seed, 42))
	h := newHarness(t)
	h.setup()
	chats := []string{alice, bob, family, work}
	handle := map[string]string{alice: "alice", bob: "bob", family: "family", work: "work"}
	type relayed struct{ chat, id string }
	var (
		rel      []relayed
		current  string
		since    []string // most recent first
		held     []string
		question []string
		n        int
	)
	sendLine := func(chat, text string) string { return fmt.Sprintf("SendText %s %q", chat, text) }
	releaseTo := func(chat string) []string {
		var want []string
		for _, m := range held {
			want = append(want, sendLine(chat, m))
		}
		held, question, current, since = nil, nil, chat, nil
		return want
	}
	for i := range steps {
		n++
		var want []string
		op := rng.IntN(7)
		desc := ""
		switch op {
		case 0: // a message arrives from WhatsApp
			chat := chats[rng.IntN(len(chats))]
			id := fmt.Sprintf("W%d", n)
			sender := chat
			if chat == family || chat == work {
				sender = bob
			}
			h.send(msg(chat, sender, id, fmt.Sprintf("text %d", n)))
			rel = append(rel, relayed{chat, id})
			if chat != current {
				since = slices.DeleteFunc(since, func(c string) bool { return c == chat })
				since = slices.Insert(since, 0, chat)
			}
			desc = "wa " + handle[chat]
		case 1, 2: // plain text, or an answer when asked
			if op == 2 && len(held) > 0 && len(question) > 0 {
				k := rng.IntN(len(question))
				h.say(fmt.Sprint(k + 1))
				want = releaseTo(question[k])
				desc = "answer " + fmt.Sprint(k+1)
				break
			}
			text := fmt.Sprintf("p%d", n)
			h.say(text)
			desc = "plain"
			if len(held) == 0 && current != "" && len(since) == 0 {
				want = []string{sendLine(current, text)}
				break
			}
			var cands []string
			if current != "" {
				cands = append(cands, current)
			}
			for _, c := range since {
				if !slices.Contains(cands, c) {
					cands = append(cands, c)
				}
			}
			held = append(held, text)
			if len(held) == 1 || len(cands) > 0 {
				question = cands
			}
		case 3: // an XEP-0461 reply to a relayed message
			if len(rel) == 0 {
				continue
			}
			r := rel[rng.IntN(len(rel))]
			text := fmt.Sprintf("r%d", n)
			h.owner(&bridge.OwnerText{Body: text, ReplyTo: h.relayed(r.chat, r.id)})
			want = []string{sendLine(r.chat, text) + " reply=" + r.id}
			if r.chat == current {
				since = nil
			}
			desc = "reply " + handle[r.chat]
		case 4: // /to a chat that exists
			if len(rel) == 0 {
				continue
			}
			chat := rel[rng.IntN(len(rel))].chat
			h.say("/to " + handle[chat])
			if len(held) > 0 {
				want = releaseTo(chat)
			} else {
				current, since = chat, nil
			}
			desc = "/to " + handle[chat]
		case 5: // /msg to a chat that exists
			if len(rel) == 0 {
				continue
			}
			chat := rel[rng.IntN(len(rel))].chat
			text := fmt.Sprintf("m%d", n)
			h.say("/msg " + handle[chat] + " " + text)
			want = []string{sendLine(chat, text)}
			if chat == current {
				since = nil
			}
			desc = "/msg " + handle[chat]
		case 6: // a restart: held messages, the question and "spoke since" survive
			h.restart()
			desc = "restart"
		}
		got := h.wa.take()
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("step %d (%s): WhatsApp got %q, want %q\ncurrent %s since %v held %v question %v", i, desc, got, want, current, since, held, question)
		}
		h.x.take()
	}
}
