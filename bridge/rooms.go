package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// This file moves chats into rooms of their own (see "Rooms" in the
// package doc): the room ↔ chat binding, /room, /rooms, [rooms] auto, and
// what the XMPP side tells about rooms.

// roomBinding is one chat's room, persisted in "core.rooms".
type roomBinding struct {
	Chat  ChatID    `json:"chat"`
	JID   string    `json:"jid"`
	Nick  string    `json:"nick"`
	Name  string    `json:"name,omitempty"`
	Since time.Time `json:"since"`
	// Strangers are those the owner was told about (bare JIDs, or nicks
	// when the room hid the JID): each is reported once.
	Strangers []string `json:"strangers,omitempty"`
	// Picture is the id of the chat's WhatsApp picture the room shows,
	// "" for none; Pictured is set while that is the chat's picture as
	// last known (false for a room made before rooms had pictures, or
	// whose picture could not be fetched or set: tried again when
	// WhatsApp connects); NoPicture is set once the server said it keeps
	// no room pictures (the room is not asked again).
	Picture   string `json:"picture,omitempty"`
	Pictured  bool   `json:"pictured,omitempty"`
	NoPicture bool   `json:"no_picture,omitempty"`
}

const settingRooms = "core.rooms"

// roomTimeout bounds creating or destroying a room: a few round trips to
// the bot's server.
const roomTimeout = 20 * time.Second

// autoRetry is how long [rooms] auto waits after a room could not be made
// for a reason that may pass (not connected, no answer).
const autoRetry = time.Minute

// roomsWord is how the bot names itself in a room, where its nickname is
// the chat's: its own lines there start with it.
const roomsWord = "*waxmpp*: "

// loadRooms reads the bindings saved by saveRooms.
func (c *Core) loadRooms() error {
	b, ok, err := c.st.Blob(settingRooms)
	if err != nil || !ok {
		return err
	}
	var list []*roomBinding
	if err := json.Unmarshal(b, &list); err != nil {
		// Refusing to start would not bring the rooms back either; the
		// chats' messages come to the bot conversation again.
		c.log.Error("rooms unreadable; chats go to the bot conversation", "err", err)
		return nil
	}
	for _, r := range list {
		if r.Chat != "" && r.JID != "" {
			c.rooms[r.Chat] = r
			c.roomChat[r.JID] = r.Chat
		}
	}
	return nil
}

// saveRooms saves the bindings; on success it tells the XMPP side which
// rooms to be in.
func (c *Core) saveRooms() error {
	list := c.roomList()
	b, err := json.Marshal(list)
	if err == nil {
		err = c.st.PutBlob(settingRooms, b)
	}
	if err != nil {
		return fmt.Errorf("save rooms: %w", err)
	}
	c.tellRooms()
	return nil
}

// roomList is the bindings, in the order they were made.
func (c *Core) roomList() []*roomBinding {
	list := make([]*roomBinding, 0, len(c.rooms))
	for _, r := range c.rooms {
		list = append(list, r)
	}
	slices.SortFunc(list, func(a, b *roomBinding) int {
		if n := a.Since.Compare(b.Since); n != 0 {
			return n
		}
		return strings.Compare(a.JID, b.JID)
	})
	return list
}

// tellRooms tells the XMPP side which rooms the bot is in.
func (c *Core) tellRooms() {
	if c.cfg.Rooms == nil {
		return
	}
	var rs []Room
	for _, r := range c.roomList() {
		rs = append(rs, Room{JID: r.JID, Nick: r.Nick, Name: r.Name})
	}
	c.cfg.Rooms.SetRooms(rs)
}

// roomOf is the room of chat id, "" when it has none.
func (c *Core) roomOf(id ChatID) string {
	if r := c.rooms[id]; r != nil {
		return r.JID
	}
	if r := c.rooms[c.canonicalChat(id)]; r != nil {
		return r.JID
	}
	return ""
}

// linkRoom is where a message mapped as l is, in chat ch: its room, or ""
// for the bot conversation. gone is set when it was in a room the chat no
// longer has (references to it would reach nobody).
func (c *Core) linkRoom(ch Chat, l MsgLink) (room string, gone bool) {
	if l.RoomID == "" {
		return "", false
	}
	room = c.roomOf(ChatID(ch.ID))
	return room, room == ""
}

// refIn is the id that names the message l in room (XEP-0461 replies,
// XEP-0444 reactions, XEP-0424 retractions and XEP-0333 markers use the
// room's id there), or its XMPP id outside rooms. Corrections (XEP-0308)
// always use the XMPP id.
func refIn(room string, l MsgLink) string {
	if room != "" && l.RoomID != "" && l.RoomID != RoomPending {
		return l.RoomID
	}
	return l.XMPPID
}

// roomHeader names the sender of a line in a chat's room, where the room
// itself names the chat: "*Bob*: " in a group, nothing in a direct chat
// (its room speaks as the person), "*You*: " for what the owner wrote on
// the phone.
func roomHeader(kind ChatKind, sender string, fromMe bool) string {
	switch {
	case fromMe:
		return "*You*: "
	case kind == Group || kind == Broadcast:
		if sender = cleanName(sender); sender == "" {
			sender = "?"
		}
		return "*" + sender + "*: "
	}
	return ""
}

// headerIn is the header of a message of r in ch as shown in room (""
// for the bot conversation).
func (c *Core) headerIn(room string, ch Chat, r MsgRef) string {
	if room == "" {
		return c.headerFor(ch, r)
	}
	h := roomHeader(ch.Kind, c.name(r.Sender), r.FromMe)
	if c.plain() {
		h = strings.ReplaceAll(h, "*", "") // names hold none (cleanName)
	}
	return h
}

// noteIn is the prefix of a note about ch shown in room: the chat's name
// in the bot conversation, nothing in the chat's own room.
func (c *Core) noteIn(room string, ch Chat) string {
	if room != "" {
		return ""
	}
	return c.noteHdr(c.chatName(ch))
}

// renameRoom gives ch's room, if it has one, the chat's name now as its
// title (the XMPP side sets it when told: SetRooms).
func (c *Core) renameRoom(ch Chat) error {
	r := c.rooms[ChatID(ch.ID)]
	if r == nil {
		return nil
	}
	name := c.chatName(ch)
	if name == r.Name {
		return nil
	}
	old := r.Name
	r.Name = name
	if err := c.saveRooms(); err != nil {
		r.Name = old
		return err
	}
	return nil
}

// roomable reports whether ch may have a room: people and groups.
func roomable(ch Chat) bool { return ch.Kind == Direct || ch.Kind == Group }

// roomNick is the bot's nickname in ch's room: the person, in a direct
// chat (the room speaks as them); "WhatsApp" in a group, whose lines name
// their senders.
func (c *Core) roomNick(ch Chat) string {
	if ch.Kind == Direct {
		if n := cleanName(c.chatName(ch)); n != "" {
			return n
		}
	}
	return "WhatsApp"
}

// createRoom makes ch a room and binds it. It returns what to tell the
// owner, and why the chat has no room (nil: it has one now).
func (c *Core) createRoom(ctx context.Context, ch Chat) (string, error) {
	name := c.chatName(ch)
	invite := "Your WhatsApp chat with " + cleanName(name)
	if ch.Kind == Group {
		invite = "Your WhatsApp group " + cleanName(name)
	}
	rctx, cancel := context.WithTimeout(ctx, roomTimeout)
	defer cancel()
	r, err := c.cfg.Rooms.CreateRoom(rctx, Room{Nick: c.roomNick(ch), Name: name}, invite)
	if err != nil {
		return c.roomProblem(ch, err), err
	}
	b := &roomBinding{Chat: ChatID(ch.ID), JID: r.JID, Nick: r.Nick, Name: r.Name, Since: c.now()}
	c.rooms[b.Chat] = b
	c.roomChat[b.JID] = b.Chat
	if err := c.saveRooms(); err != nil {
		delete(c.rooms, b.Chat)
		delete(c.roomChat, b.JID)
		c.tellRooms()
		dctx, cancel := context.WithTimeout(ctx, roomTimeout)
		defer cancel()
		if derr := c.cfg.Rooms.DestroyRoom(dctx, r.JID, "waxmpp could not save the room"); derr != nil {
			c.log.Warn("destroy unsaved room", "room", r.JID, "err", derr)
		}
		return "No room for " + name + ": " + c.storeProblem("save rooms", err) + " " + name + " stays in this conversation.", err
	}
	// A room is a conversation of its own: the chat does not speak in
	// the bot conversation any more.
	if i := slices.IndexFunc(c.route.Since, func(id ChatID) bool { return c.canonicalChat(id) == b.Chat }); i >= 0 {
		c.route.Since = slices.Delete(slices.Clone(c.route.Since), i, i+1)
		if err := c.saveRoute(); err != nil {
			c.log.Error("save routing state", "err", err)
		}
	}
	note := ""
	if c.roomPicture(ctx, b, false) {
		note = " " + noPicturesLine
	}
	return "✅ " + name + " has a room of its own now: xmpp:" + r.JID + "?join — accept the invitation in your client. Everything of " + name + "'s goes there, and what you write there goes to " + name + ". /room " + ch.Handle + " off moves it back here." + note, nil
}

// noPicturesLine tells the owner that rooms show no pictures.
const noPicturesLine = "(Your XMPP server does not show pictures of rooms, so the room has none.)"

// pictureTimeout bounds fetching a chat's picture from WhatsApp and
// setting it on its room: the core waits for both.
const pictureTimeout = 30 * time.Second

// roomPicture gives r's room the chat's WhatsApp picture now, or removes
// the room's (removed: the chat's was removed, nothing to fetch). It
// reports whether the server turned out to keep no room pictures while the
// chat has one: the owner is told so. A picture that cannot be fetched or
// set is logged and leaves the room as it is, to be tried again
// (refreshPictures).
func (c *Core) roomPicture(ctx context.Context, r *roomBinding, removed bool) (none bool) {
	if r.NoPicture || c.cfg.Rooms == nil {
		return false
	}
	pctx, cancel := context.WithTimeout(ctx, pictureTimeout)
	defer cancel()
	was := *r
	defer func() {
		if r.Pictured != was.Pictured || r.Picture != was.Picture || r.NoPicture != was.NoPicture {
			if err := c.saveRooms(); err != nil {
				c.log.Error("save rooms", "err", err) // asked again at worst
			}
		}
	}()
	var p *Picture
	if !removed {
		var err error
		if p, err = c.wa.ChatPicture(pctx, r.Chat); err != nil {
			c.log.Warn("cannot fetch a chat's picture for its room", "room", r.JID, "err", err)
			r.Pictured = false
			return false
		}
	}
	if p == nil && r.Picture == "" || p != nil && p.ID != "" && p.ID == r.Picture {
		r.Pictured = true // shown already (an event delivered again), or none
		return false
	}
	err := c.cfg.Rooms.SetRoomPicture(pctx, r.JID, p)
	switch {
	case errors.Is(err, ErrNoRoomPictures):
		if !slices.ContainsFunc(c.roomList(), func(o *roomBinding) bool { return o.NoPicture }) {
			c.log.Info("the XMPP server keeps no room pictures: rooms get none", "room", r.JID)
		}
		r.NoPicture = true
		return p != nil
	case err != nil:
		c.log.Warn("cannot set a room's picture", "room", r.JID, "err", err)
		r.Pictured = false
		return false
	}
	r.Picture, r.Pictured = "", true
	if p != nil {
		r.Picture = cmpOr(p.ID, "?")
	}
	return false
}

// refreshPictures gives the rooms whose picture is not known to be the
// chat's (made before rooms had pictures, or it failed) the chat's
// picture. It runs when WhatsApp connects, if the XMPP side is connected.
func (c *Core) refreshPictures(ctx context.Context) {
	if c.cfg.Rooms == nil || len(c.rooms) == 0 {
		return
	}
	if st, err := c.x.Stats(); err != nil || !st.Connected {
		return
	}
	for _, r := range c.roomList() {
		if !r.Pictured && !r.NoPicture && ctx.Err() == nil {
			c.roomPicture(ctx, r, false)
		}
	}
}

// pictureChange keeps the picture of a chat's room as the chat's.
func (c *Core) pictureChange(ctx context.Context, e *PictureChange) {
	r := c.rooms[c.canonicalChat(e.Chat)]
	if r == nil {
		r = c.rooms[e.Chat]
	}
	if r == nil || (!e.Removed && e.ID != "" && e.ID == r.Picture) {
		return
	}
	c.roomPicture(ctx, r, e.Removed)
}

// roomProblem says in one line why ch got no room.
func (c *Core) roomProblem(ch Chat, err error) string {
	name := c.chatName(ch)
	var refused *RoomRefused
	switch {
	case errors.Is(err, ErrNoRooms):
		return "Your XMPP server offers no group chats, so " + name + " stays in this conversation."
	case errors.As(err, &refused):
		why := refused.Text
		if why == "" {
			why = refused.Condition
		}
		return "Your XMPP server refused to create a room (it says: " + why + "), so " + name + " stays in this conversation."
	case errors.Is(err, context.DeadlineExceeded):
		c.log.Warn("create room", "err", err)
		return "No room for " + name + ": your XMPP server did not answer in time. " + name + " stays in this conversation; try again later."
	}
	c.log.Warn("create room", "err", err)
	return "No room for " + name + ": the bot could not reach your XMPP server (is it connected? /status says). " + name + " stays in this conversation; try again later."
}

// autoRoom gives ch a room when [rooms] auto is on and it has none. When
// rooms cannot be made on this server at all, the owner is told once and
// auto stops until a restart; when it may pass, it waits autoRetry.
func (c *Core) autoRoom(ctx context.Context, ch Chat) {
	if !c.cfg.RoomsAuto || c.cfg.Rooms == nil || c.autoOff || !roomable(ch) || c.roomOf(ChatID(ch.ID)) != "" || c.now().Before(c.autoAt) {
		return
	}
	text, err := c.createRoom(ctx, ch)
	if err == nil {
		c.say(text)
		return
	}
	var refused *RoomRefused
	if errors.Is(err, ErrNoRooms) || errors.As(err, &refused) {
		c.autoOff = true
		c.say("Rooms for every chat are on ([rooms] auto), but: " + text)
		return
	}
	c.autoAt = c.now().Add(autoRetry)
}

// ---- commands ----

func (c *Core) cmdRoom(ctx context.Context, args string) string {
	if c.cfg.Rooms == nil {
		return "Rooms are not available in this waxmpp: chats stay in this conversation."
	}
	arg, off := strings.TrimSpace(args), false
	if strings.EqualFold(arg, "off") {
		arg, off = "", true
	} else if i := strings.LastIndexAny(arg, " \t"); i >= 0 && strings.EqualFold(arg[i+1:], "off") {
		arg, off = strings.TrimSpace(arg[:i]), true
	}
	if arg == "" {
		if chat, ok := c.roomChat[c.answerRoom]; ok && c.answerRoom != "" {
			ch, err := c.st.Chat(string(chat))
			if err != nil {
				return "Could not read the chat: " + c.storeProblem("read chat", err)
			}
			if off {
				return c.roomOff(ctx, ch)
			}
			return "This is " + c.chatName(ch) + "'s room: what you write here goes to " + c.chatName(ch) + ". /room off moves it back to the bot conversation."
		}
		return "/room needs a chat: /room alice gives Alice a room of its own, /room alice off moves it back (/rooms lists the rooms)."
	}
	ch, problem := c.chatArg("room", arg)
	if problem != "" {
		return problem
	}
	if off {
		return c.roomOff(ctx, ch)
	}
	if r := c.rooms[ChatID(ch.ID)]; r != nil {
		return c.chatName(ch) + " has its room already: xmpp:" + r.JID + "?join"
	}
	if !roomable(ch) {
		return c.chatName(ch) + " is a " + ch.Kind.String() + " list, which gets no room: only people and groups do."
	}
	text, _ := c.createRoom(ctx, ch)
	return text
}

// roomOff destroys ch's room and moves the chat back to the bot
// conversation.
func (c *Core) roomOff(ctx context.Context, ch Chat) string {
	name := c.chatName(ch)
	r := c.rooms[ChatID(ch.ID)]
	if r == nil {
		return name + " has no room: its messages come to this conversation."
	}
	dctx, cancel := context.WithTimeout(ctx, roomTimeout)
	defer cancel()
	if err := c.cfg.Rooms.DestroyRoom(dctx, r.JID, name+"'s messages go to the bot conversation again."); err != nil {
		c.log.Warn("destroy room", "room", r.JID, "err", err)
		return "Could not remove " + name + "'s room: the bot could not reach your XMPP server (/status says). It stays as it is; try again later."
	}
	old := *r
	delete(c.rooms, r.Chat)
	delete(c.roomChat, r.JID)
	if c.answerRoom == r.JID {
		c.answerRoom = "" // asked there: the answer comes to the bot conversation
	}
	if err := c.saveRooms(); err != nil {
		c.rooms[old.Chat] = &old
		c.roomChat[old.JID] = old.Chat
		return "The room is gone, but: " + c.storeProblem("save rooms", err)
	}
	return "→ " + name + "'s messages come to this conversation again; its room is gone."
}

func (c *Core) cmdRooms() string {
	if c.cfg.Rooms == nil {
		return "Rooms are not available in this waxmpp: chats stay in this conversation."
	}
	list := c.roomList()
	if len(list) == 0 {
		auto := ""
		if c.cfg.RoomsAuto {
			auto = " [rooms] auto gives each chat one when it next speaks."
		}
		return "No chat has a room yet: /room alice gives Alice one." + auto
	}
	lines := make([]string, 0, len(list)+1)
	for _, r := range list {
		name, handle := string(r.Chat), ""
		if ch, err := c.st.Chat(string(r.Chat)); err == nil {
			name, handle = c.chatName(ch), ch.Handle
		}
		lines = append(lines, handle+" — "+name+": xmpp:"+r.JID+"?join")
	}
	last := strconv.Itoa(len(list)) + " " + plural(len(list), "room", "rooms") + "; /room <chat> off moves a chat back here."
	if slices.ContainsFunc(list, func(r *roomBinding) bool { return r.NoPicture }) {
		last += " Your XMPP server does not show pictures of rooms, so they have none."
	}
	lines = append(lines, last)
	return strings.Join(lines, "\n")
}

// ---- what the XMPP side tells ----

// laterLinks is a Store whose map entries may wait for its next commit
// (bridge/store): every lookup finds them at once, they go to disk with
// the next commit of any write, and a crash before that loses them. A
// room's id for the bot's own message goes so: the room's cursor saved
// after the echo goes with the same commit or a later one, so after a
// crash the room's archive is read from before the echo, which tells the
// id again.
type laterLinks interface {
	PutMessagesLater(ms ...MsgLink) error
}

// roomEvent handles the events about rooms. It returns an error only when
// the store failed.
func (c *Core) roomEvent(ev OwnerEvent) error {
	switch e := ev.(type) {
	case *RoomEcho:
		// The room's id for the bot's own message: replies, reactions
		// and markers there name it so.
		if e.ID == "" || e.Archive == "" || !strings.HasPrefix(e.ID, relayPrefix) {
			return nil
		}
		l, err := c.st.MessageByXMPP(e.ID)
		if errors.Is(err, ErrNotFound) {
			return nil
		} else if err != nil {
			return err
		}
		if l.RoomID == e.Archive {
			return nil
		}
		l.RoomID = e.Archive
		if ls, ok := c.cfg.Store.(laterLinks); ok {
			c.mappedLinks([]MsgLink{l})
			return ls.PutMessagesLater(l)
		}
		return c.st.PutMessages(l)
	case *RoomStranger:
		chat, ok := c.roomChat[e.Room]
		if !ok {
			return nil
		}
		r := c.rooms[chat]
		who := e.JID
		if who == "" {
			who = e.Nick
		}
		if who == "" || slices.Contains(r.Strangers, who) {
			return nil
		}
		r.Strangers = append(r.Strangers, who)
		if err := c.saveRooms(); err != nil {
			r.Strangers = r.Strangers[:len(r.Strangers)-1]
			return err
		}
		name := string(chat)
		if ch, err := c.st.Chat(string(chat)); err == nil {
			name = c.chatName(ch)
		}
		shown := who
		if e.JID != "" && e.Nick != "" {
			shown = e.JID + " (" + short(e.Nick, 30) + ")"
		}
		c.say("⚠️ Someone else is in " + name + "'s room: " + short(shown, 80) + ". waxmpp ignores them: nothing they write reaches WhatsApp. Only your XMPP server's admins can let others into it.")
	case *RoomGone:
		chat, ok := c.roomChat[e.Room]
		if !ok {
			return nil
		}
		old := *c.rooms[chat]
		delete(c.rooms, chat)
		delete(c.roomChat, e.Room)
		if err := c.saveRooms(); err != nil {
			c.rooms[chat] = &old
			c.roomChat[e.Room] = chat
			return err
		}
		name, handle := string(chat), string(chat)
		if ch, err := c.st.Chat(string(chat)); err == nil {
			name, handle = c.chatName(ch), ch.Handle
		}
		why := ""
		if e.Reason != "" {
			why = " (your XMPP server says: " + short(e.Reason, 100) + ")"
		}
		c.say("⚠️ " + name + "'s room is gone" + why + ". Its messages come to this conversation again; /room " + handle + " makes a new one.")
	}
	return nil
}

// roomOwner handles what the owner did in a room: there is nothing to
// route, everything is about the room's chat. A command is a command
// there too, answered in the room. It returns an error only when the
// store failed.
func (c *Core) roomOwner(ctx context.Context, ev OwnerEvent) error {
	meta := ev.Meta()
	chat, ok := c.roomChat[meta.Room]
	if !ok {
		if t, isText := ev.(*OwnerText); isText && (t.Body != "" || t.URL != "") {
			c.say("Not sent: the room " + meta.Room + " is not linked to a WhatsApp chat any more. /rooms lists the rooms.")
		}
		return nil
	}
	ch, err := c.st.Chat(string(chat))
	if err != nil {
		return err
	}
	switch e := ev.(type) {
	case *OwnerText:
		body := e.Body
		if body == "" {
			body = e.URL
		}
		if body == "" {
			return nil
		}
		m := draft{ID: e.ID, Body: body, Time: e.Time, RoomID: cmpOr(e.Archive, RoomPending)}
		if e.File != "" && c.cfg.Files != nil {
			m.Body, m.File = e.File, e.File // a file: transfer.go sends it
			return c.deliver(ctx, ChatID(ch.ID), m)
		}
		if _, _, isCmd := parseCommand(body); isCmd {
			return c.ownerText(ctx, m, "")
		}
		m.Body, _ = unescapeText(m.Body) // "//x" sends "/x", "!!x" sends "!x"
		if e.ReplyTo != "" {
			l, err := c.st.MessageByXMPP(e.ReplyTo)
			switch {
			case err == nil && l.WA.ID != "" && c.canonicalChat(ChatID(l.WA.Chat)) == ChatID(ch.ID):
				m.Quote = &l
			case err != nil && !errors.Is(err, ErrNotFound):
				return err
			}
		} else {
			m.Quote = c.requote(ch, &m)
		}
		if strings.TrimSpace(m.Body) == "" {
			c.say("Not sent: the message is empty.")
			return nil
		}
		return c.deliver(ctx, ChatID(ch.ID), m)
	case *OwnerChatState:
		wctx, cancel := waCtx(ctx)
		defer cancel()
		if err := c.wa.SetTyping(wctx, ChatID(ch.ID), e.State); err != nil {
			c.log.Debug("typing", "err", err)
		}
	}
	return nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
