package store

import (
	"fmt"
	"time"
)

// v5Messages are the messages in testdata/v5.db (see TestMigrateV5), in
// the order they were recorded.
func v5Messages() []Message {
	t0 := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	alice, lid, group := "4917012345678@s.whatsapp.net", "99887766@lid", "120363012345678901@g.us"
	var ms []Message
	for i := range 20 {
		m := Message{
			WA:      MessageKey{Chat: alice, Sender: alice, ID: fmt.Sprintf("3EB0%016X", 0xA11CE00+i)},
			XMPPID:  fmt.Sprintf("wa-%020x", 0xFEED00+i),
			Excerpt: fmt.Sprintf("message %d from alice", i),
			Time:    t0.Add(time.Duration(i) * time.Minute),
		}
		switch i % 5 {
		case 1: // in the group, from alice under her LID
			m.WA.Chat, m.WA.Sender = group, lid
		case 2: // the owner's own, written in XMPP (a client's random id)
			m.WA.Sender = ""
			m.XMPPID = fmt.Sprintf("8b7a%04d-1c2d-4e5f-a6b7-c8d9e0f1a2b3", i)
		case 3: // in the group's room
			m.WA.Chat, m.WA.Sender = group, alice
			m.RoomID = fmt.Sprintf("room-stanza-%d", i)
			if i == 13 {
				m.RoomID = "-" // its copy had not come back
			}
		case 4: // a note about the chat: no WhatsApp id
			m.WA = MessageKey{Chat: alice}
			m.Excerpt = "Alice reacted 👍"
		}
		ms = append(ms, m)
	}
	// The same WhatsApp id again, in another chat, and a message with a
	// WhatsApp id only, under the LID.
	ms = append(ms,
		Message{WA: MessageKey{Chat: group, Sender: alice, ID: ms[0].WA.ID}, XMPPID: "wa-00000000000000000dup", Excerpt: "same id, other chat", Time: t0.Add(time.Hour)},
		Message{WA: MessageKey{Chat: lid, Sender: lid, ID: "ABCDEF0123"}, Excerpt: "under the lid", Time: t0.Add(2 * time.Hour)},
	)
	return ms
}
