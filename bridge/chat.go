package bridge

import (
	"strconv"
	"time"
)

// Chat is a WhatsApp chat as the bridge keeps it (bridge/store persists it).
type Chat struct {
	// ID is the chat's canonical WhatsApp JID. Other JIDs of the same chat
	// (a contact's LID and phone-number JIDs) are aliases.
	ID   string
	Kind ChatKind
	// Name is the group's subject, or the name the owner knows the person
	// by (address book, else push name, else "+number").
	Name string
	// Handle is the short lower-case name the owner types to address the
	// chat (alice, family, alice2). The store assigns it; it is unique and
	// never given to another chat.
	Handle       string
	MutedUntil   time.Time
	LastActivity time.Time
}

func (k ChatKind) String() string {
	switch k {
	case Direct:
		return "direct"
	case Group:
		return "group"
	case Broadcast:
		return "broadcast"
	case StatusChat:
		return "status"
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// MessageKey names a WhatsApp message in the message map.
type MessageKey struct {
	Chat   string // chat JID; an alias of the chat matches too
	Sender string // sender JID; "" for the owner's own messages (matches any sender in lookups)
	ID     string // WhatsApp message id
}

// MsgLink links one WhatsApp message to the XMPP stanza id it was relayed
// with (or, for what the owner wrote, came from), so replies, reactions,
// corrections and receipts translate in both directions.
type MsgLink struct {
	WA     MessageKey
	XMPPID string
	// Excerpt is the start of the message's text, kept so that a quote the
	// owner types ("> …") can be matched to the message.
	Excerpt string
	Time    time.Time
	// RoomID is set for a message in a chat's room: the id the room gave
	// it (XEP-0359 stanza-id by the room), which clients refer to there,
	// or RoomPending until the room's copy came back.
	RoomID string
}

// RoomPending is MsgLink.RoomID of a message sent to a room whose copy
// has not come back yet: it is in the room, under its XMPP id only.
const RoomPending = "-"
