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

func (c *Core) event(ctx context.Context, ev Event) {
	switch e := ev.(type) {
	case *Message:
		c.message(e)
	case *Undecryptable:
		c.undecryptable(e)
	case *Edit:
		c.edit(e)
	case *Revoke:
		c.revoke(e)
	case *Reaction:
		c.reaction(e)
	case *PollVote:
		c.pollVote(e)
	case *Receipt:
		c.receipt(e)
	case *Typing:
		c.typing(e)
	case *Presence:
		// Contacts' presence is not shown: the bot's presence is the
		// bridge's health light.
	case *Call:
		c.call(e)
	case *GroupChange:
		c.groupChange(e)
	case *ContactInfo:
		c.contactInfo(e)
	case *ChatInfo:
		c.chatInfo(e)
	case *Alias:
		c.alias(e)
	case *Status:
		c.statusEvent(e)
	case *PairCode:
		c.pairCode(ctx, e)
	case *PairResult:
		c.pairResult(e)
	default:
		c.log.Warn("unknown event", "type", fmt.Sprintf("%T", ev))
	}
}

// key is the map key of a WhatsApp message: the owner's own messages are
// keyed without sender (see MessageKey).
func (c *Core) key(r MsgRef) MessageKey {
	k := MessageKey{Chat: string(c.canonical(r.Chat)), ID: r.ID}
	if !r.FromMe {
		k.Sender = string(bareUser(r.Sender))
	}
	return k
}

// lookupWA finds a relayed (or sent) message by its WhatsApp ref.
func (c *Core) lookupWA(r MsgRef) (MsgLink, bool) {
	l, err := c.st.MessageByWA(c.key(r))
	if err != nil {
		if !errors.Is(err, ErrNotFound) {
			c.log.Error("message map", "err", err)
		}
		return MsgLink{}, false
	}
	return l, true
}

func (c *Core) message(m *Message) {
	if chatKindOf(m.Ref.Chat) == StatusChat {
		return
	}
	if m.PushName != "" && !m.Ref.FromMe {
		p := c.personOf(m.Ref.Sender)
		if p.Push != m.PushName {
			p.Push = m.PushName
			c.markDirty()
		}
	}
	ch, err := c.chat(m.Ref.Chat, m.PushName)
	if err != nil {
		c.log.Error("look up chat", "err", err)
		return
	}
	c.noteOldest(ch, m)
	k := c.key(m.Ref)
	k.Chat = ch.ID
	old, dup := c.lookupWA(m.Ref)
	if dup && !(m.Retry && old.XMPPID != "") {
		c.log.Debug("duplicate message dropped", "id", m.Ref.ID)
		return
	}
	text := content(m, c.name)
	body := c.headerFor(ch, m.Ref) + text
	if muted(ch, c.now()) && !dup {
		// Mapped, not relayed: a WhatsApp reply to it still finds it.
		if err := c.st.PutMessages(MsgLink{WA: k, Excerpt: excerptOf(text), Time: m.Time}); err != nil {
			c.log.Error("map muted message", "err", err)
		}
		return
	}
	out := Outgoing{ID: relayID(k), Body: body, Markable: true}
	if dup {
		// The Retry Message for a placeholder: correct it (XEP-0308).
		out = Outgoing{Replace: old.XMPPID, Body: body}
	}
	if m.ReplyTo != nil {
		if q, ok := c.lookupWA(*m.ReplyTo); ok && q.XMPPID != "" {
			out.ReplyTo = q.XMPPID
			out.Quote = q.Excerpt
			if m.QuotedText != "" {
				out.Quote = m.QuotedText
			}
		} else if m.QuotedText != "" {
			out.Body = strings.TrimSuffix(c.headerFor(ch, m.Ref), " ") + "\n> " + strings.ReplaceAll(short(m.QuotedText, 200), "\n", "\n> ") + "\n" + text
		}
	}
	if m.History {
		out.Delay = m.Time
	}
	if _, err := c.x.Send(out); err != nil {
		c.log.Error("relay message", "err", err)
		return
	}
	xid := out.ID
	if dup {
		xid = old.XMPPID
	}
	if err := c.st.PutMessages(MsgLink{WA: k, XMPPID: xid, Excerpt: excerptOf(text), Time: m.Time}); err != nil {
		c.log.Error("map message", "err", err)
	}
	if !m.History {
		if m.Time.After(ch.LastActivity.Add(time.Minute)) {
			if err := c.st.Touch(ch.ID, m.Time); err != nil {
				c.log.Warn("touch chat", "err", err)
			}
		}
		c.spoke(ChatID(ch.ID))
	}
}

// headerFor names the chat and sender of a message in ch.
func (c *Core) headerFor(ch Chat, r MsgRef) string {
	return header(ch.Kind, c.chatName(ch), c.name(r.Sender), r.FromMe)
}

func (c *Core) undecryptable(u *Undecryptable) {
	if chatKindOf(u.Ref.Chat) == StatusChat {
		return
	}
	if _, dup := c.lookupWA(u.Ref); dup {
		return
	}
	ch, err := c.chat(u.Ref.Chat, "")
	if err != nil {
		c.log.Error("look up chat", "err", err)
		return
	}
	if muted(ch, c.now()) {
		return
	}
	k := c.key(u.Ref)
	k.Chat = ch.ID
	out := Outgoing{ID: relayID(k), Body: c.headerFor(ch, u.Ref) + waitingText, Markable: true}
	if _, err := c.x.Send(out); err != nil {
		c.log.Error("relay placeholder", "err", err)
		return
	}
	if err := c.st.PutMessages(MsgLink{WA: k, XMPPID: out.ID, Time: u.Time}); err != nil {
		c.log.Error("map placeholder", "err", err)
	}
	c.spoke(ChatID(ch.ID))
}

func (c *Core) edit(e *Edit) {
	ch, err := c.chat(e.Ref.Chat, "")
	if err != nil || muted(ch, c.now()) {
		return
	}
	l, ok := c.lookupWA(e.Ref)
	body := c.headerFor(ch, e.Ref) + e.Text
	if !ok || !strings.HasPrefix(l.XMPPID, relayPrefix) {
		// Unknown, or the owner's own XMPP message (the bot cannot
		// correct what the owner's client sent): a new line.
		c.sayAbout(ch, Outgoing{ID: c.noteID(), Body: c.headerFor(ch, e.Ref) + "(edited) " + e.Text})
		return
	}
	if _, err := c.x.Send(Outgoing{Replace: l.XMPPID, Body: body}); err != nil {
		c.log.Error("relay edit", "err", err)
		return
	}
	l.Excerpt = excerptOf(e.Text)
	if err := c.st.PutMessages(l); err != nil {
		c.log.Error("map edit", "err", err)
	}
}

func (c *Core) revoke(r *Revoke) {
	ch, err := c.chat(r.Ref.Chat, "")
	if err != nil || muted(ch, c.now()) {
		return
	}
	l, ok := c.lookupWA(r.Ref)
	if !ok || !strings.HasPrefix(l.XMPPID, relayPrefix) {
		return // never relayed (or the owner's own XMPP message): nothing to take back
	}
	who := c.name(r.Ref.Sender)
	if r.Ref.FromMe {
		who = "You"
	}
	what := "a message"
	if r.By != "" && bareUser(r.By) != bareUser(r.Ref.Sender) && !r.Ref.FromMe {
		what = "a message by " + cleanName(who) // an admin deleted it
		who = c.name(r.By)
	}
	fallback := noteHeader(c.chatName(ch)) + cleanName(who) + " deleted " + what
	if _, err := c.x.Send(Outgoing{Retract: l.XMPPID, Body: fallback}); err != nil {
		c.log.Error("relay revoke", "err", err)
	}
}

func (c *Core) reaction(r *Reaction) {
	if r.FromMe {
		return
	}
	ch, err := c.chat(r.Target.Chat, "")
	if err != nil || muted(ch, c.now()) {
		return
	}
	l, ok := c.lookupWA(r.Target)
	if ch.Kind == Direct && ok && l.XMPPID != "" {
		var emojis []string
		if r.Emoji != "" {
			emojis = []string{r.Emoji}
		}
		if _, err := c.x.Send(Outgoing{React: &Reactions{ID: l.XMPPID, Emojis: emojis}}); err != nil {
			c.log.Error("relay reaction", "err", err)
		}
		return
	}
	what := "a message"
	if ok && l.Excerpt != "" {
		what = "\"" + short(l.Excerpt, 60) + "\""
	}
	who := "*" + cleanName(c.name(r.Sender)) + "*"
	if ch.Kind != Direct {
		who += " in *" + cleanName(c.chatName(ch)) + "*"
	}
	var body string
	if r.Emoji == "" {
		body = who + " removed their reaction to " + what
	} else {
		body = who + " reacted " + r.Emoji + " to " + what
	}
	c.sayAbout(ch, Outgoing{ID: c.noteID(), Body: body})
}

func (c *Core) pollVote(v *PollVote) {
	ch, err := c.chat(v.Poll.Chat, "")
	if err != nil || muted(ch, c.now()) {
		return
	}
	what := "a poll"
	if l, ok := c.lookupWA(v.Poll); ok && l.Excerpt != "" {
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
	c.sayAbout(ch, Outgoing{ID: c.noteID(), Body: noteHeader(c.chatName(ch)) + body})
}

func (c *Core) receipt(r *Receipt) {
	for _, id := range r.IDs {
		l, ok := c.lookupWA(MsgRef{Chat: r.Chat, ID: id, FromMe: true})
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
	if chatKindOf(t.Chat) != Direct {
		return
	}
	ch, err := c.st.Chat(string(c.canonical(t.Chat)))
	if err != nil || muted(ch, c.now()) {
		return
	}
	if err := c.x.SendNow(Outgoing{Typing: true, ChatState: t.State}); err != nil {
		c.log.Debug("typing not sent", "err", err)
	}
}

func (c *Core) call(e *Call) {
	chatID := e.Chat
	if chatID == "" {
		chatID = ChatID(bareUser(e.From))
	}
	ch, err := c.chat(chatID, "")
	if err != nil || muted(ch, c.now()) {
		return
	}
	text := callText(e, c.name(e.From))
	if text == "" {
		return
	}
	c.sayAbout(ch, Outgoing{ID: c.noteID(), Body: noteHeader(c.chatName(ch)) + text})
}

func (c *Core) groupChange(g *GroupChange) {
	ch, err := c.chat(g.Chat, "")
	if err != nil {
		c.log.Error("look up chat", "err", err)
		return
	}
	name := c.chatName(ch)
	if g.Kind == GroupSubject && g.Subject != "" && g.Subject != ch.Name {
		ch.Name = g.Subject
		if ch2, err := c.st.PutChat(ch); err != nil {
			c.log.Error("rename chat", "err", err)
		} else {
			c.rehandle(ch2)
		}
	}
	if muted(ch, c.now()) {
		return
	}
	c.sayAbout(ch, Outgoing{ID: c.noteID(), Body: noteHeader(name) + groupText(g, c.name)})
}

func (c *Core) contactInfo(ci *ContactInfo) {
	p := c.personOf(ci.User)
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
		return
	}
	c.markDirty()
	// Rename the chat if there is one; contacts without a chat get none.
	id := c.canonical(ChatID(bareUser(ci.User)))
	if ch, err := c.st.Chat(string(id)); err == nil && ch.Kind == Direct {
		if n := c.name(UserID(ch.ID)); n != ch.Name {
			ch.Name = n
			if ch2, err := c.st.PutChat(ch); err != nil {
				c.log.Error("rename chat", "err", err)
			} else {
				c.rehandle(ch2)
			}
		}
	}
}

func (c *Core) chatInfo(ci *ChatInfo) {
	if ci.Chat == "" || chatKindOf(ci.Chat) == StatusChat {
		return
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
		c.log.Error("look up chat", "err", err)
		return
	}
	if ci.Name == "" || ci.Name == ch.Name || ch.Kind == Direct {
		if ch.Handle != "" {
			return // known, nothing new
		}
	} else {
		ch.Name = ci.Name
	}
	if ch, err = c.st.PutChat(ch); err != nil {
		c.log.Error("put chat", "err", err)
		return
	}
	c.rehandle(ch)
}

func (c *Core) alias(a *Alias) {
	lid, phone := bareUser(a.LID), bareUser(a.Phone)
	if lid == "" || phone == "" {
		return
	}
	pl, pp := c.personOf(lid), c.personOf(phone)
	if pl.Phone != phone || pp.LID != lid {
		pl.Phone, pp.LID = phone, lid
		c.markDirty()
	}
	// One person, one chat: the phone JID is canonical when both exist.
	_, errP := c.st.Chat(string(phone))
	_, errL := c.st.Chat(string(lid))
	switch {
	case errP == nil:
		err := c.st.AddAlias(string(phone), string(lid))
		if err != nil {
			c.log.Error("save alias", "err", err)
		}
	case errL == nil:
		if err := c.st.AddAlias(string(lid), string(phone)); err != nil {
			c.log.Error("save alias", "err", err)
		}
	}
}

// ---- WhatsApp's life ----

func (c *Core) statusEvent(s *Status) {
	prev := c.status
	c.status, c.statusSeen = *s, true
	now := c.now()
	switch s.State {
	case Connected:
		c.x.SetPresence("", "WhatsApp connected")
	case Disconnected:
		c.x.SetPresence("away", "reconnecting to WhatsApp…")
	case PhoneOffline:
		if s.PhoneLastSeen.IsZero() {
			c.x.SetPresence("away", "phone offline")
			break
		}
		days := int(now.Sub(s.PhoneLastSeen) / (24 * time.Hour))
		c.x.SetPresence("away", fmt.Sprintf("phone offline for %d %s", days, plural(days, "day", "days")))
		if days >= 10 && days != c.toldDays {
			c.toldDays = days
			c.say(fmt.Sprintf("⚠️ Your phone has not been online for %d days. WhatsApp unlinks companion devices after about 14 days: open WhatsApp on the phone to keep waxmpp linked.", days))
		}
	case LoggedOut:
		c.x.SetPresence("dnd", "logged out of WhatsApp — send /pair")
	case NotPaired:
		c.x.SetPresence("dnd", "not linked to WhatsApp — send /pair")
	case StreamReplaced:
		c.x.SetPresence("dnd", "another client took over the WhatsApp link")
	case Outdated:
		c.x.SetPresence("dnd", "WhatsApp rejected this version — update waxmpp")
	case TempBanned:
		c.x.SetPresence("dnd", "temporarily banned by WhatsApp until "+s.Until.Local().Format("2 Jan 15:04"))
	}
	if s.State == c.toldState && s.State != TempBanned {
		return
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
			return
		}
		text = "⚠️ WhatsApp has temporarily banned this account until " + s.Until.Local().Format("Mon 2 Jan 15:04") + reason + ". waxmpp waits; sending from the phone does not help."
	case Disconnected, PhoneOffline:
		return // transient; the presence says it
	}
	c.toldState = s.State
	if text != "" {
		c.say(text)
	}
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
