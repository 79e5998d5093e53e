package bridge

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// This file relays WhatsApp's events to the owner (the feature mapping from
// WhatsApp to the owner) and tells the owner about WhatsApp's life.

const waitingText = "⏳ waiting for this message…"

// event handles one WhatsApp event. It returns an error when the event
// could not be dealt with durably (the store or the outbox failed): the
// caller then does not acknowledge it and tries again. An event that is
// deliberately not relayed (muted, a duplicate, unknown) is no error.
func (c *Core) event(ctx context.Context, ev Event) error {
	if bad := badEvent(ev); bad != "" {
		// Bad input is dropped, never retried: it would block
		// everything behind it.
		c.log.Warn("WhatsApp event dropped", "event", fmt.Sprintf("%T", ev), "problem", bad)
		return nil
	}
	// A lane's messages are not batched: what waitInLane relays from
	// its lane leaves the lane on disk at once (batch.go).
	var cur Event
	if c.batch != nil {
		cur, c.batch.cur = c.batch.cur, nil
	}
	if waits, err := c.waitInLane(ev); waits || err != nil {
		return err // behind its chat's transfer (transfer.go)
	}
	if c.batch != nil {
		c.batch.cur = cur
	}
	switch e := ev.(type) {
	case *Message:
		return c.message(ctx, e)
	case *Undecryptable:
		return c.undecryptable(e)
	case *Edit:
		return c.edit(e)
	case *Revoke:
		return c.revoke(e)
	case *Reaction:
		return c.reaction(e)
	case *PollVote:
		return c.pollVote(e)
	case *Receipt:
		c.receipt(e)
	case *Typing:
		c.typing(e)
	case *Presence:
		// Contacts' presence is not shown: the bot's presence is the
		// bridge's health light.
	case *Call:
		return c.call(e)
	case *GroupChange:
		return c.groupChange(e)
	case *ContactInfo:
		return c.contactInfo(e)
	case *ChatInfo:
		return c.chatInfo(e)
	case *PictureChange:
		c.pictureChange(ctx, e) // rooms.go
	case *Alias:
		return c.alias(e)
	case *Status:
		return c.statusEvent(ctx, e)
	case *PairCode:
		c.pairCode(ctx, e)
	case *PairResult:
		c.pairResult(e)
	case *MediaRetry:
		return c.mediaAnswer(e)
	default:
		c.log.Warn("unknown event", "type", fmt.Sprintf("%T", ev))
	}
	return nil
}

// badEvent says what makes ev unusable (a message without a chat, ids
// with NUL bytes, which the store refuses), or "".
func badEvent(ev Event) string {
	var buf [8]string // the ids of the usual event, without an allocation
	ids := buf[:0]
	need := func(chat ChatID, more ...string) {
		if chat == "" {
			ids = append(ids, "\x00")
		}
		ids = append(append(ids, string(chat)), more...)
	}
	ref := func(r MsgRef) { need(r.Chat, r.ID, string(r.Sender)) }
	switch e := ev.(type) {
	case *Message:
		ref(e.Ref)
		if e.ReplyTo != nil {
			ids = append(ids, string(e.ReplyTo.Chat), e.ReplyTo.ID, string(e.ReplyTo.Sender))
		}
	case *Undecryptable:
		ref(e.Ref)
	case *Edit:
		ref(e.Ref)
	case *Revoke:
		ref(e.Ref)
	case *Reaction:
		ref(e.Target)
	case *PollVote:
		ref(e.Poll)
	case *Call:
		if e.Chat == "" {
			need(ChatID(e.From))
		} else {
			need(e.Chat)
		}
	case *GroupChange:
		need(e.Chat, string(e.Actor))
	case *ContactInfo:
		ids = append(ids, string(e.User))
	case *ChatInfo:
		ids = append(ids, string(e.Chat))
	case *PictureChange:
		ids = append(ids, string(e.Chat), e.ID)
	case *Alias:
		ids = append(ids, string(e.LID), string(e.Phone))
	}
	for _, id := range ids {
		if strings.ContainsRune(id, 0) {
			return "no chat, or an id with a NUL byte"
		}
	}
	return ""
}

// key is the map key of a WhatsApp message: the owner's own messages are
// keyed without sender (see MessageKey); a sender known under a LID and a
// phone number is keyed by the phone number (canonicalUser).
func (c *Core) key(r MsgRef) MessageKey {
	k := MessageKey{Chat: string(c.canonical(r.Chat)), ID: r.ID}
	if !r.FromMe {
		k.Sender = string(c.canonicalUser(r.Sender))
	}
	return k
}

// lookupWA finds a relayed (or sent) message by its WhatsApp ref. The
// sender may have been mapped under its other identity (before WhatsApp
// said that its LID and phone number are one person): that matches too.
func (c *Core) lookupWA(r MsgRef) (MsgLink, bool, error) {
	k := c.key(r)
	l, err := c.st.MessageByWA(k)
	if errors.Is(err, ErrNotFound) && k.Sender != "" {
		if o := c.other(UserID(k.Sender)); o != "" {
			k.Sender = string(o)
			l, err = c.st.MessageByWA(k)
		}
	}
	switch {
	case err == nil:
		return l, true, nil
	case errors.Is(err, ErrNotFound):
		return MsgLink{}, false, nil
	}
	return MsgLink{}, false, err
}

func (c *Core) message(ctx context.Context, m *Message) error {
	if chatKindOf(m.Ref.Chat) == StatusChat {
		return nil
	}
	if m.PushName != "" && !m.Ref.FromMe {
		p := c.personOf(c.canonicalUser(m.Ref.Sender))
		if p.Push != m.PushName {
			p.Push = m.PushName
			c.markDirty()
			c.indexPerson(m.Ref.Sender)
		}
	}
	ch, err := c.chat(m.Ref.Chat, m.PushName)
	if err != nil {
		return err
	}
	c.noteOldest(ch, m)
	k := c.key(m.Ref)
	k.Chat = ch.ID
	old, dup, err := c.lookupWA(m.Ref)
	if err != nil {
		return err
	}
	if dup && !(m.Retry && old.XMPPID != "") {
		c.log.Debug("duplicate message dropped", "id", m.Ref.ID)
		return nil
	}
	if !m.History && !muted(ch, c.now()) {
		c.autoRoom(ctx, ch) // [rooms] auto: a chat that speaks gets its room
	}
	// Where it goes: the chat's room, if it has one; a placeholder is
	// corrected where it is.
	room := c.roomOf(ChatID(ch.ID))
	if dup {
		var gone bool
		if room, gone = c.linkRoom(ch, old); gone {
			dup, room = false, c.roomOf(ChatID(ch.ID)) // its room is gone: a new message
		}
	}
	text := content(m, c.name)
	if m.ViewOnce && isMedia(m.Kind) && c.cfg.Files != nil {
		text = viewOnceText(m)
	}
	header := c.headerIn(room, ch, m.Ref)
	body := header + text
	if muted(ch, c.now()) && !dup {
		// Mapped, not relayed: a WhatsApp reply to it still finds it.
		return c.st.PutMessages(MsgLink{WA: k, Excerpt: excerptOf(text), Time: m.Time})
	}
	if c.transferable(m) {
		// Relayed when the file is on the owner's server (transfer.go).
		return c.startTransfer(laneKey{Chat: ChatID(ch.ID)}, laneItem{Msg: m})
	}
	out := Outgoing{ID: relayID(k), Body: body, Markable: true, Room: room}
	if dup {
		// The Retry Message for a placeholder: correct it (XEP-0308).
		out = Outgoing{Replace: old.XMPPID, Body: body, Room: room}
	}
	if m.ReplyTo != nil {
		q, ok, err := c.lookupWA(*m.ReplyTo)
		if err != nil {
			return err
		}
		qroom, qgone := c.linkRoom(ch, q)
		if ok && q.XMPPID != "" && qroom == room && !qgone {
			out.ReplyTo = refIn(room, q)
			out.Quote = q.Excerpt
			if m.QuotedText != "" {
				out.Quote = m.QuotedText
			}
		} else if quoted := cmpOr(m.QuotedText, q.Excerpt); quoted != "" && (m.QuotedText != "" || ok) {
			lead := strings.TrimSuffix(header, " ")
			if lead != "" {
				lead += "\n"
			}
			out.Body = lead + "> " + strings.ReplaceAll(short(quoted, 200), "\n", "\n> ") + "\n" + text
		}
	}
	if !m.History && !m.Ref.FromMe {
		out.Body += c.reminder(ch) // the chat moved to XMPP
	}
	if m.History {
		out.Delay = m.Time
	} else if err := c.spoke(ChatID(ch.ID)); err != nil {
		return err
	}
	link := MsgLink{WA: k, XMPPID: out.ID, Excerpt: excerptOf(text), Time: m.Time}
	if room != "" {
		link.RoomID = RoomPending // until the room's copy tells its id
	}
	if dup {
		link.XMPPID, link.RoomID = old.XMPPID, old.RoomID
	}
	touch := !m.History && m.Time.After(ch.LastActivity.Add(time.Minute))
	if !dup && c.batched(m, out, link, touch) {
		return nil // written with its batch (batch.go)
	}
	if _, err := c.x.Send(out); err != nil {
		return err
	}
	if err := c.st.PutMessages(link); err != nil {
		return err
	}
	if touch {
		// Only orders /chats and the quote window: a failure is no loss.
		if err := c.st.Touch(ch.ID, m.Time); err != nil {
			c.log.Warn("touch chat", "err", err)
		}
	}
	return nil
}

// headerFor names the chat and sender of a message in ch.
func (c *Core) headerFor(ch Chat, r MsgRef) string {
	return c.hdr(ch.Kind, c.chatName(ch), c.name(r.Sender), r.FromMe)
}

func (c *Core) undecryptable(u *Undecryptable) error {
	if chatKindOf(u.Ref.Chat) == StatusChat {
		return nil
	}
	if _, dup, err := c.lookupWA(u.Ref); err != nil || dup {
		return err
	}
	ch, err := c.chat(u.Ref.Chat, "")
	if err != nil {
		return err
	}
	if muted(ch, c.now()) {
		return nil
	}
	k := c.key(u.Ref)
	k.Chat = ch.ID
	if err := c.spoke(ChatID(ch.ID)); err != nil {
		return err
	}
	room := c.roomOf(ChatID(ch.ID))
	out := Outgoing{ID: relayID(k), Body: c.headerIn(room, ch, u.Ref) + waitingText, Markable: true, Room: room}
	if _, err := c.x.Send(out); err != nil {
		return err
	}
	link := MsgLink{WA: k, XMPPID: out.ID, Time: u.Time}
	if room != "" {
		link.RoomID = RoomPending
	}
	return c.st.PutMessages(link)
}

func (c *Core) edit(e *Edit) error {
	ch, err := c.chat(e.Ref.Chat, "")
	if err != nil || muted(ch, c.now()) {
		return err
	}
	l, ok, err := c.lookupWA(e.Ref)
	if err != nil {
		return err
	}
	room, gone := c.linkRoom(ch, l)
	if !ok || !strings.HasPrefix(l.XMPPID, relayPrefix) || gone {
		// Unknown, the owner's own XMPP message (the bot cannot correct
		// what the owner's client sent), or in a room that is gone: a
		// new line.
		return c.sayAbout(ch, Outgoing{ID: noteID("edit", ch.ID, e.Ref.ID, e.Text), Body: c.headerIn(c.roomOf(ChatID(ch.ID)), ch, e.Ref) + "(edited) " + e.Text})
	}
	body := c.headerIn(room, ch, e.Ref) + e.Text
	if _, err := c.x.Send(Outgoing{Replace: l.XMPPID, Body: body, Room: room}); err != nil {
		return err
	}
	l.Excerpt = excerptOf(e.Text)
	return c.st.PutMessages(l)
}

func (c *Core) revoke(r *Revoke) error {
	ch, err := c.chat(r.Ref.Chat, "")
	if err != nil || muted(ch, c.now()) {
		return err
	}
	l, ok, err := c.lookupWA(r.Ref)
	if err != nil || !ok || !strings.HasPrefix(l.XMPPID, relayPrefix) {
		return err // never relayed (or the owner's own XMPP message): nothing to take back
	}
	room, gone := c.linkRoom(ch, l)
	if gone {
		return nil // it was in a room that is gone with it
	}
	who := c.name(r.Ref.Sender)
	if r.Ref.FromMe {
		who = "You"
	}
	what := "a message"
	if r.By != "" && c.canonicalUser(r.By) != c.canonicalUser(r.Ref.Sender) && !r.Ref.FromMe {
		what = "a message by " + cleanName(who) // an admin deleted it
		who = c.name(r.By)
	}
	fallback := c.noteIn(room, ch) + cleanName(who) + " deleted " + what
	_, err = c.x.Send(Outgoing{Retract: refIn(room, l), Body: fallback, Room: room})
	return err
}

func (c *Core) reaction(r *Reaction) error {
	if r.FromMe {
		return nil
	}
	ch, err := c.chat(r.Target.Chat, "")
	if err != nil || muted(ch, c.now()) {
		return err
	}
	l, ok, err := c.lookupWA(r.Target)
	if err != nil {
		return err
	}
	lroom, gone := c.linkRoom(ch, l)
	if ch.Kind == Direct && ok && l.XMPPID != "" && !gone {
		var emojis []string
		if r.Emoji != "" {
			emojis = []string{r.Emoji}
		}
		_, err := c.x.Send(Outgoing{React: &Reactions{ID: refIn(lroom, l), Emojis: emojis}, Room: lroom})
		return err
	}
	what := "a message"
	if ok && l.Excerpt != "" {
		what = "\"" + short(l.Excerpt, 60) + "\""
	}
	who := c.strong(cleanName(c.name(r.Sender)))
	if ch.Kind != Direct && c.roomOf(ChatID(ch.ID)) == "" {
		who += " in " + c.strong(cleanName(c.chatName(ch)))
	}
	var body string
	if r.Emoji == "" {
		body = who + " removed their reaction to " + what
	} else {
		body = who + " reacted " + r.Emoji + " to " + what
	}
	id := noteID("reaction", ch.ID, r.Target.ID, string(c.canonicalUser(r.Sender)), r.Emoji, r.Time.String())
	return c.sayAbout(ch, Outgoing{ID: id, Body: body})
}

func (c *Core) pollVote(v *PollVote) error {
	ch, err := c.chat(v.Poll.Chat, "")
	if err != nil || muted(ch, c.now()) {
		return err
	}
	what := "a poll"
	l, ok, err := c.lookupWA(v.Poll)
	if err != nil {
		return err
	}
	if ok && l.Excerpt != "" {
		q, _, _ := strings.Cut(strings.TrimPrefix(l.Excerpt, "📊 "), "\n")
		what = "\"" + short(q, 60) + "\""
	}
	who := c.name(v.Voter)
	var body string
	if len(v.Options) == 0 {
		body = who + " withdrew their vote in " + what
	} else {
		body = who + " voted \"" + strings.Join(v.Options, "\", \"") + "\" in " + what
	}
	id := noteID("vote", ch.ID, v.Poll.ID, string(c.canonicalUser(v.Voter)), strings.Join(v.Options, "\x00"), v.Time.String())
	return c.sayAbout(ch, Outgoing{ID: id, Body: c.noteIn(c.roomOf(ChatID(ch.ID)), ch) + body})
}

func (c *Core) receipt(r *Receipt) {
	for _, id := range r.IDs {
		l, ok, err := c.lookupWA(MsgRef{Chat: r.Chat, ID: id, FromMe: true})
		if err != nil {
			c.log.Warn("receipt: message map", "err", err) // worthless later: not retried
			continue
		}
		if !ok || l.XMPPID == "" || strings.HasPrefix(l.XMPPID, relayPrefix) {
			continue // not a message the owner wrote through the bridge
		}
		kind := r.Kind
		if kind == Played {
			kind = Read
		}
		if c.receipted[l.XMPPID] >= kind {
			continue
		}
		out := Outgoing{Receipt: l.XMPPID}
		if kind == Read {
			out = Outgoing{Displayed: l.XMPPID}
		}
		if ch, err := c.st.Chat(string(c.canonical(r.Chat))); err == nil && l.RoomID != "" {
			// Written in the chat's room: markers name it by the room's
			// id there; receipts (XEP-0184) are not for rooms.
			room, gone := c.linkRoom(ch, l)
			if gone || kind != Read {
				continue
			}
			out = Outgoing{Displayed: refIn(room, l), Room: room}
		}
		if err := c.x.SendNow(out); err != nil {
			c.log.Debug("receipt not sent", "err", err)
			continue
		}
		if len(c.receipted) > 10000 {
			clear(c.receipted)
		}
		c.receipted[l.XMPPID] = kind
	}
}

func (c *Core) typing(t *Typing) {
	ch, err := c.st.Chat(string(c.canonical(t.Chat)))
	if err != nil || muted(ch, c.now()) {
		return
	}
	// In the bot conversation only a direct chat's typing says who; a
	// room is the chat's own.
	room := c.roomOf(ChatID(ch.ID))
	if room == "" && ch.Kind != Direct {
		return
	}
	if err := c.x.SendNow(Outgoing{Typing: true, ChatState: t.State, Room: room}); err != nil {
		c.log.Debug("typing not sent", "err", err)
	}
}

func (c *Core) call(e *Call) error {
	chatID := e.Chat
	if chatID == "" {
		chatID = ChatID(bareUser(e.From))
	}
	ch, err := c.chat(chatID, "")
	if err != nil || muted(ch, c.now()) {
		return err
	}
	text := callText(e, c.name(e.From))
	if text == "" {
		return nil
	}
	id := noteID("call", ch.ID, e.ID, strconv.Itoa(int(e.Kind)), e.Time.String())
	return c.sayAbout(ch, Outgoing{ID: id, Body: c.noteIn(c.roomOf(ChatID(ch.ID)), ch) + text})
}

func (c *Core) groupChange(g *GroupChange) error {
	ch, err := c.chat(g.Chat, "")
	if err != nil {
		return err
	}
	name := c.chatName(ch)
	if g.Kind == GroupSubject && g.Subject != "" && g.Subject != ch.Name {
		ch.Name = g.Subject
		ch2, err := c.st.PutChat(ch)
		if err != nil {
			return err
		}
		c.indexChat(ch2)
		c.rehandle(ch2)
		if err := c.renameRoom(ch2); err != nil {
			return err
		}
	}
	if muted(ch, c.now()) {
		return nil
	}
	users := make([]string, len(g.Users))
	for i, u := range g.Users {
		users[i] = string(u)
	}
	id := noteID("group", ch.ID, strconv.Itoa(int(g.Kind)), string(g.Actor), strings.Join(users, ","), g.Subject, g.Text, g.Time.String())
	head := c.noteHdr(name)
	if c.roomOf(ChatID(ch.ID)) != "" {
		head = ""
	}
	return c.sayAbout(ch, Outgoing{ID: id, Body: head + groupText(g, c.name)})
}

func (c *Core) contactInfo(ci *ContactInfo) error {
	p := c.personOf(c.canonicalUser(ci.User))
	changed := false
	set := func(dst *string, v string) {
		if v != "" && *dst != v {
			*dst = v
			changed = true
		}
	}
	set(&p.Full, ci.FullName)
	set(&p.First, ci.FirstName)
	set(&p.Push, ci.PushName)
	set(&p.Business, ci.BusinessName)
	if !changed {
		return nil
	}
	c.markDirty()
	c.indexPerson(ci.User)
	// Rename the chat if there is one; contacts without a chat get none.
	id := c.canonical(ChatID(bareUser(ci.User)))
	ch, err := c.st.Chat(string(id))
	if errors.Is(err, ErrNotFound) {
		return nil
	} else if err != nil {
		return err
	}
	if n := c.name(UserID(ch.ID)); ch.Kind == Direct && n != ch.Name {
		ch.Name = n
		ch2, err := c.st.PutChat(ch)
		if err != nil {
			return err
		}
		c.rehandle(ch2)
		return c.renameRoom(ch2)
	}
	return nil
}

func (c *Core) chatInfo(ci *ChatInfo) error {
	if ci.Chat == "" || chatKindOf(ci.Chat) == StatusChat {
		return nil
	}
	id := c.canonical(ci.Chat)
	ch, err := c.st.Chat(string(id))
	if errors.Is(err, ErrNotFound) {
		ch = Chat{ID: string(id), Kind: chatKindOf(id)}
		if ci.Kind != 0 {
			ch.Kind = ci.Kind
		}
		if ch.Kind == Direct {
			ch.Name = c.name(UserID(id))
		}
	} else if err != nil {
		return err
	}
	if ci.Name == "" || ci.Name == ch.Name || ch.Kind == Direct {
		if ch.Handle != "" {
			return nil // known, nothing new
		}
	} else {
		ch.Name = ci.Name
	}
	if ch, err = c.st.PutChat(ch); err != nil {
		return err
	}
	c.indexChat(ch)
	c.rehandle(ch)
	return nil
}

func (c *Core) alias(a *Alias) error {
	lid, phone := bareUser(a.LID), bareUser(a.Phone)
	if lid == "" || phone == "" {
		return nil
	}
	pl, pp := c.personOf(lid), c.personOf(phone)
	if pl.Phone != phone || pp.LID != lid {
		pl.Phone, pp.LID = phone, lid
		c.markDirty()
		c.indexPerson(phone)
	}
	// One person, one chat: the phone JID is canonical when both exist.
	_, errP := c.st.Chat(string(phone))
	_, errL := c.st.Chat(string(lid))
	switch {
	case errP == nil:
		return c.st.AddAlias(string(phone), string(lid))
	case errL == nil:
		return c.st.AddAlias(string(lid), string(phone))
	case !errors.Is(errP, ErrNotFound):
		return errP
	case !errors.Is(errL, ErrNotFound):
		return errL
	}
	return nil
}

// ---- WhatsApp's life ----

func (c *Core) statusEvent(ctx context.Context, s *Status) error {
	defer func() {
		if s.State == Connected && len(c.route.Pending) > 0 {
			if err := c.flushPending(ctx); err != nil {
				c.log.Error("send waiting messages", "err", err) // tried again at the next message
			}
		}
	}()
	prev := c.status
	c.status, c.statusSeen = *s, true
	now := c.now()
	switch s.State {
	case Connected:
		c.setPresence("", "WhatsApp connected")
		c.refreshPictures(ctx) // rooms.go
	case Disconnected:
		c.setPresence("away", "reconnecting to WhatsApp…")
	case PhoneOffline:
		if s.PhoneLastSeen.IsZero() {
			c.setPresence("away", "phone offline")
			break
		}
		days := int(now.Sub(s.PhoneLastSeen) / (24 * time.Hour))
		c.setPresence("away", fmt.Sprintf("phone offline for %d %s", days, plural(days, "day", "days")))
		if days >= 10 && days != c.toldDays {
			c.toldDays = days
			c.say(fmt.Sprintf("⚠️ Your phone has not been online for %d days. WhatsApp unlinks companion devices after about 14 days: open WhatsApp on the phone to keep waxmpp linked.", days))
		}
	case LoggedOut:
		c.setPresence("dnd", "logged out of WhatsApp — send /pair")
	case NotPaired:
		c.setPresence("dnd", "not linked to WhatsApp — send /pair")
	case StreamReplaced:
		c.setPresence("dnd", "another client took over the WhatsApp link")
	case Outdated:
		c.setPresence("dnd", "WhatsApp rejected this version — update waxmpp")
	case TempBanned:
		c.setPresence("dnd", "temporarily banned by WhatsApp until "+s.Until.Local().Format("2 Jan 15:04"))
	case Banned:
		c.setPresence("dnd", "banned by WhatsApp")
	}
	if s.State == c.toldState && s.State != TempBanned {
		return nil
	}
	reason := ""
	if s.Reason != "" {
		reason = " (WhatsApp says: " + s.Reason + ")"
	}
	var text string
	switch s.State {
	case Connected:
		if c.toldState != 0 && c.toldState != Connected {
			text = "✅ WhatsApp is connected again."
		}
	case LoggedOut:
		text = "⚠️ WhatsApp logged waxmpp out" + reason + ". Nothing is relayed until you link again: send /pair (QR code) or /pair +number (a code to type on the phone)."
	case NotPaired:
		text = "waxmpp is not linked to WhatsApp yet. Send /pair to get a QR code, or /pair +number for a code to type on the phone."
	case StreamReplaced:
		text = "⚠️ Another client took over this WhatsApp link" + reason + " — is a second waxmpp running with a copy of the data? Stop it, then restart waxmpp."
	case Outdated:
		text = "⚠️ WhatsApp rejected this version of waxmpp" + reason + ". Update waxmpp (sudo apt upgrade) and restart it."
	case TempBanned:
		if prev.State == TempBanned && prev.Until.Equal(s.Until) {
			return nil
		}
		text = "⚠️ WhatsApp has temporarily banned this account until " + s.Until.Local().Format("Mon 2 Jan 15:04") + reason + ". waxmpp waits; sending from the phone does not help."
	case Banned:
		text = "⛔ WhatsApp has banned this WhatsApp account. Nothing is relayed. Open WhatsApp on your phone: it says why and how to ask for a review. Once WhatsApp works on the phone again, send /pair."
	case Disconnected, PhoneOffline:
		return nil // transient; the presence says it
	}
	c.toldState = s.State
	if text != "" {
		c.say(text)
	}
	return nil
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func (c *Core) pairCode(ctx context.Context, p *PairCode) {
	until := ""
	if !p.Expires.IsZero() {
		until = " (valid until " + p.Expires.Local().Format("15:04:05") + ")"
	}
	if p.LinkCode != "" {
		c.say("On your phone: WhatsApp → Settings → Linked devices → Link a device → Link with phone number instead, and enter this code" + until + ":")
		c.say(p.LinkCode)
		return
	}
	if p.QR == "" {
		return
	}
	c.stopQR()
	if c.cfg.QR == nil {
		c.showQR(qrUpload{code: *p})
		return
	}
	// Rendering is quick; the upload is not (up to waTimeout on a slow
	// server): it runs on its own goroutine, and its result comes back
	// through the loop (qrDone), which meanwhile goes on relaying.
	png, err := c.cfg.QR(p.QR)
	if err != nil {
		c.log.Warn("QR image not rendered; sending its text", "err", err)
		c.showQR(qrUpload{code: *p})
		return
	}
	c.qrSeq++
	u := qrUpload{seq: c.qrSeq, code: *p}
	uctx, cancel := context.WithTimeout(ctx, waTimeout)
	c.qrCancel = cancel
	c.bg.Go(func() {
		defer cancel()
		u.url, u.err = c.x.Upload(uctx, "waxmpp-pair.png", "image/png", int64(len(png)), bytes.NewReader(png))
		select {
		case c.qrDone <- u:
		case <-ctx.Done():
		}
	})
}

// qrUpload is a pairing QR code and, once its upload ended, the image's
// URL or why there is none.
type qrUpload struct {
	seq  int // c.qrSeq when the upload started; 0 for no upload
	code PairCode
	url  string
	err  error
}

// qrUploaded shows a QR code whose upload ended, unless a newer code or
// the end of the pairing made it stale.
func (c *Core) qrUploaded(u qrUpload) {
	if u.seq != c.qrSeq {
		return
	}
	c.qrCancel = nil
	c.showQR(u)
}

// stopQR forgets a QR upload under way: its code is stale.
func (c *Core) stopQR() {
	if c.qrCancel != nil {
		c.qrCancel()
		c.qrCancel = nil
	}
	c.qrSeq++
}

// showQR tells the owner a QR code: the uploaded image's link, if any,
// then its text (which a QR app can also turn into a code).
func (c *Core) showQR(u qrUpload) {
	p := u.code
	until := ""
	if !p.Expires.IsZero() {
		until = " (valid until " + p.Expires.Local().Format("15:04:05") + ")"
	}
	if u.err != nil {
		c.log.Warn("QR image not uploaded; sending its text", "err", u.err)
	}
	if u.url != "" {
		if _, err := c.x.Send(Outgoing{Body: u.url, URL: u.url}); err != nil {
			c.log.Error("send QR", "err", err)
		}
	}
	c.qrShown++
	if c.qrShown == 1 {
		c.say("Scan this QR code with WhatsApp → Settings → Linked devices → Link a device" + until + ". Its text, for a QR app: " + p.QR)
		return
	}
	// WhatsApp rotates the code every 20 seconds or so: say less.
	c.say("New QR code" + until + "; the previous one expired. Its text: " + p.QR)
}

func (c *Core) pairResult(r *PairResult) {
	c.stopQR()
	c.qrShown = 0
	if !r.OK {
		msg := "Linking failed"
		if r.Err != "" {
			msg += ": " + r.Err
		}
		c.say(msg + ". Send /pair to try again.")
		return
	}
	who := r.Name
	if who == "" {
		who = c.name(r.ID)
	}
	c.say("✅ Linked to WhatsApp as " + who + ". Chats arrive here as they are active; /help lists the commands.")
}

// days is a helper for /status.
func ago(now, t time.Time) string {
	if t.IsZero() {
		return "unknown"
	}
	d := now.Sub(t)
	switch {
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return strconv.Itoa(int(d.Minutes())) + " min ago"
	case d < 48*time.Hour:
		return strconv.Itoa(int(d.Hours())) + " h ago"
	}
	return strconv.Itoa(int(d.Hours()/24)) + " days ago"
}
