package bridge

import (
	"context"
	"errors"
)

// This file holds the domain's side of rooms: a chat moved into a group
// chat of its own (XEP-0045) on the bot's server, what the core asks of the
// XMPP side for it, and what the XMPP side tells about rooms.

// Room is a chat's own group chat on the bot's server.
type Room struct {
	JID  string // the room's bare JID; CreateRoom chooses it
	Nick string // the bot's nickname in it
	Name string // its title: the chat's name
}

// Rooms is what the core asks of the XMPP side for rooms (bridge/xmpp's
// Bot). It is optional: without it /room says that rooms are not
// available. Methods may be called from any goroutine; none calls back
// into the core.
type Rooms interface {
	// CreateRoom creates a room on the MUC service of the bot's server:
	// members-only, non-anonymous, persistent, hidden, archived, titled
	// r.Name, the bot in it as r.Nick. The owner is made a member and
	// invited (XEP-0249) with invite as the reason. It returns the room
	// with its JID once it is ready, or ErrNoRooms, a *RoomRefused, or
	// another error (not connected, no answer). It blocks until then, or
	// until ctx ends. The room is joined from then on (as SetRooms).
	CreateRoom(ctx context.Context, r Room, invite string) (Room, error)
	// DestroyRoom destroys a room the bot created, saying reason to
	// whoever is in it, and stops joining it. It blocks until the server
	// answered or ctx ends.
	DestroyRoom(ctx context.Context, jid, reason string) error
	// SetRooms says which rooms the bot is in. After every login the XMPP
	// side joins each without asking for its history, and replays from
	// the room's archive (XEP-0313) what came after the last message the
	// core handled there. It does not block. NewCore calls it before the
	// XMPP side connects.
	SetRooms(rooms []Room)
	// SetRoomPicture sets the picture (avatar) of a room the bot
	// created; nil removes it. ErrNoRoomPictures when the server keeps no
	// room pictures. The XMPP side converts or shrinks p as the server
	// needs; a picture it cannot read is an error. It blocks until the
	// server answered or ctx ends.
	SetRoomPicture(ctx context.Context, jid string, p *Picture) error
}

// ErrNoRoomPictures means the bot's server keeps no pictures for rooms
// (XEP-0054 vCards of rooms): its rooms have none.
var ErrNoRoomPictures = errors.New("xmpp: the server keeps no room pictures")

// ErrNoRooms means the bot's server offers no group chats (no MUC service
// in its disco items).
var ErrNoRooms = errors.New("xmpp: the server offers no group chats (XEP-0045)")

// RoomRefused is CreateRoom's error when the server refused to create the
// room: its error condition and text.
type RoomRefused struct {
	Condition string // e.g. "not-allowed", "forbidden"
	Text      string // the server's words, may be ""
}

func (e *RoomRefused) Error() string {
	if e.Text != "" {
		return "xmpp: the server refused to create the room: " + e.Condition + ": " + e.Text
	}
	return "xmpp: the server refused to create the room: " + e.Condition
}

// RoomEcho is the room's copy of one of the bot's own messages: the room
// tells by it the id it gave the message (OwnerMeta.Archive), which is how
// clients name the message there. OwnerMeta.ID is the bot's own id.
type RoomEcho struct {
	OwnerMeta
}

// RoomStranger is someone other than the owner in a room (OwnerMeta.Room):
// they joined, or something of theirs came. What they say is never relayed.
type RoomStranger struct {
	OwnerMeta
	JID  string // their bare JID, "" when the room hides it
	Nick string
}

// RoomGone says the bot is out of a room for good: it was destroyed, or the
// bot banned or removed from it. Reason is the server's words.
type RoomGone struct {
	OwnerMeta
	Reason string
}

func (*RoomEcho) ownerEvent()     {}
func (*RoomStranger) ownerEvent() {}
func (*RoomGone) ownerEvent()     {}
