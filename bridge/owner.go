package bridge

import (
	"context"
	"errors"
	"strconv"
	"strings"
)

// This file handles what the owner writes: routing and the feature mapping
// from the owner to WhatsApp (see the package doc).

func (c *Core) ownerEvent(ctx context.Context, ev OwnerEvent) {
	switch e := ev.(type) {
	case *OwnerDisplayed:
		c.ownerDisplayed(ctx, e.Target)
	case *OwnerReceived:
		// The owner's client got a relayed message: nothing to tell WhatsApp.
	case *OwnerRetraction:
		c.ownerRetract(ctx, e.Target)
	case *OwnerCorrection:
		c.ownerReplace(ctx, e.Target, e.Body)
	case *OwnerReaction:
		c.ownerReact(ctx, e.Target, e.Emojis)
	case *OwnerText:
		body := e.Body
		if body == "" {
			body = e.URL
		}
		if body != "" {
			c.ownerText(ctx, draft{ID: e.ID, Body: body, Time: e.Time}, e.ReplyTo)
		}
	case *OwnerChatState:
		c.ownerTyping(ctx, e.State)
	case *OwnerOther:
	}
}

// handled reports whether the owner's message id was already sent to
// WhatsApp (or is held): a redelivery must not send it twice.
func (c *Core) handled(id string) bool {
	if id == "" {
		return false
	}
	for _, h := range c.route.Held {
		if h.ID == id {
			return true
		}
	}
	return c.sentAlready(id)
}

// sentAlready reports whether the owner's message id is in the map: it was
// sent to WhatsApp.
func (c *Core) sentAlready(id string) bool {
	if id == "" {
		return false
	}
	l, err := c.st.MessageByXMPP(id)
	if err != nil {
		if !errors.Is(err, ErrNotFound) {
			c.log.Error("message map", "err", err)
		}
		return false
	}
	return l.WA.ID != "" && !strings.HasPrefix(id, relayPrefix)
}

func (c *Core) ownerText(ctx context.Context, m draft, replyTo string) {
	if c.handled(m.ID) {
		c.log.Debug("duplicate owner message dropped", "id", m.ID)
		return
	}
	in := c.routeIn(m.Body, replyTo)
	out := decide(in)
	c.log.Debug("route", "rule", out.Rule, "action", out.Action.String(), "chat", out.Chat)
	switch out.Action {
	case actReject:
		c.say(out.Problem)
	case actCommand:
		name, args, _ := parseCommand(m.Body)
		if text := c.command(ctx, name, args); text != "" {
			c.say(text)
		}
	case actSend:
		m.Body = out.Text
		if ok := c.send(ctx, ChatID(out.Chat), m, out.Quote); ok {
			c.wrote(out.Chat)
		}
	case actHold:
		m.Body = out.Text
		c.hold(m, out.Candidates)
	case actAnswer:
		if text := c.release(ctx, out.Chat); text != "" {
			c.say(text)
		}
	}
}

// routeIn gathers what decide needs.
func (c *Core) routeIn(body, replyTo string) routeIn {
	in := routeIn{Body: body, ReplyTo: replyTo, Since: c.route.Since, Question: c.route.Question, Held: len(c.route.Held) > 0}
	in.Resolve = func(name string) (ChatID, bool) {
		ch, err := c.resolveChat(name)
		return ChatID(ch.ID), err == nil
	}
	if cur, ok, err := c.st.Route(); err == nil && ok {
		in.Current = ChatID(cur)
	}
	if replyTo != "" {
		// A relayed message, a note, or the owner's own earlier message:
		// all are mapped to their chat.
		if l, err := c.st.MessageByXMPP(replyTo); err == nil {
			in.Reply = &l
		}
	}
	if strings.HasPrefix(body, ">") {
		if r, err := c.st.RecentMessages("", recentQuotes); err == nil {
			in.Recent = r
		}
	}
	return in
}

// send sends the owner's text to chat (as a reply to quote), maps it, and
// tells the owner when it failed. It reports success.
func (c *Core) send(ctx context.Context, chat ChatID, m draft, quote *MsgLink) bool {
	ch, err := c.st.Chat(string(chat))
	if err != nil {
		c.say("Not sent: " + c.storeProblem("look up chat", err))
		return false
	}
	wctx, cancel := waCtx(ctx)
	defer cancel()
	var ref MsgRef
	if g, ok := parseGeo(m.Body); ok && quote == nil {
		ref, _, err = c.wa.SendLocation(wctx, ChatID(ch.ID), g)
	} else {
		opts := SendOptions{ID: waSendID(m.ID)}
		if m.ID == "" {
			opts.ID = ""
		}
		if quote != nil && quote.WA.ID != "" {
			q := MsgRef{Chat: ChatID(quote.WA.Chat), Sender: UserID(quote.WA.Sender), ID: quote.WA.ID, FromMe: quote.WA.Sender == ""}
			opts.ReplyTo = &q
			opts.QuotedText = quote.Excerpt
		}
		ref, _, err = c.wa.SendText(wctx, ChatID(ch.ID), m.Body, opts)
	}
	if err != nil {
		c.log.Warn("send to WhatsApp", "err", err)
		c.say("⚠️ Not sent to " + c.chatName(ch) + ": " + c.waProblem("send to WhatsApp", err) + "\n> " + short(m.Body, 80))
		return false
	}
	if ref.ID == "" {
		ref.ID = waSendID(m.ID)
	}
	// Mapped with the time WhatsApp took it (not when the owner wrote it:
	// a held message goes later), which the edit window counts from.
	if err := c.st.PutMessages(MsgLink{WA: MessageKey{Chat: ch.ID, ID: ref.ID}, XMPPID: m.ID, Excerpt: excerptOf(m.Body), Time: c.now()}); err != nil {
		c.log.Error("map owner message", "err", err)
	}
	return true
}

// waProblem says a WhatsApp error in plain words. An error it has no
// words for goes to the log (as what failed: op) and the owner reads that
// WhatsApp refused.
func (c *Core) waProblem(op string, err error) string {
	switch {
	case errors.Is(err, ErrNotPaired):
		return "waxmpp is not linked to WhatsApp; send /pair"
	case errors.Is(err, context.DeadlineExceeded):
		return "WhatsApp did not answer in time; try again"
	case errors.Is(err, ErrEditWindow):
		return editWindowText
	case errors.Is(err, ErrNotFound):
		return "WhatsApp does not know that message or chat"
	}
	c.log.Warn(op, "err", err)
	return "WhatsApp refused (waxmpp's log says why)"
}

const editWindowText = "WhatsApp allows edits for 20 minutes only"

// storeProblem logs a failure to read or write the state file (as what
// failed: op) and says it in plain words. It happens when the SD card is
// full or failing.
func (c *Core) storeProblem(op string, err error) string {
	c.log.Error(op, "err", err)
	return "waxmpp could not read or write its data (its log says why; is the disk full?)"
}

// hold keeps m until the owner says where it goes.
func (c *Core) hold(m draft, cands []ChatID) {
	c.route.Held = append(c.route.Held, m)
	if len(c.route.Held) == 1 || len(cands) > 0 {
		c.route.Question = cands
	}
	c.saveRoute()
	c.ask()
}

// ask asks where the held messages go.
func (c *Core) ask() {
	n := len(c.route.Held)
	if n == 0 {
		return
	}
	what := ""
	if n > 1 {
		what = strconv.Itoa(n) + " held messages: "
	}
	q := c.route.Question
	if len(q) == 0 {
		c.say("Not sent yet — " + what + "which chat? Reply to one of its messages, or send /to <chat> (/chats lists them). /cancel drops it.")
		return
	}
	var b strings.Builder
	b.WriteString(what + "Send to")
	for i, ch := range q {
		b.WriteString(" " + strconv.Itoa(i+1) + ") " + c.chatNameOf(ch))
	}
	b.WriteString("? Answer ")
	switch len(q) {
	case 1:
		b.WriteString("1.")
	case 2:
		b.WriteString("1 or 2.")
	default:
		b.WriteString("1 to " + strconv.Itoa(len(q)) + ".")
	}
	c.say(b.String())
}

// release sends the held messages to chat, which becomes current, and
// returns what to tell the owner. (A failed send was told by send.)
func (c *Core) release(ctx context.Context, chat ChatID) string {
	ch, err := c.st.Chat(string(chat))
	if err != nil {
		return "Not sent: " + c.storeProblem("look up chat", err)
	}
	if err := c.st.SetRoute(ch.ID); err != nil {
		return "Not sent: " + c.storeProblem("set current chat", err)
	}
	c.route.Since = nil
	// Each message leaves the held list only after it was sent (and
	// mapped): a crash in between finds it held and mapped, and skips it.
	for len(c.route.Held) > 0 {
		m := c.route.Held[0]
		c.route.Held = c.route.Held[1:]
		quote := c.requote(ch, &m)
		if !c.sentAlready(m.ID) && !c.send(ctx, ChatID(ch.ID), m, quote) {
			// Keep it and the rest held: never lost.
			c.route.Held = append([]draft{m}, c.route.Held...)
			c.saveRoute()
			return ""
		}
		c.saveRoute()
	}
	c.route.Question = nil
	c.saveRoute()
	return "→ " + c.chatName(ch) + " (now the current chat)"
}

// requote turns a held message that starts with a "> " quote of a message
// in ch (the chat the owner chose) into a reply to that message, the quote
// removed, as rule 2 would have done had the quote named one chat.
func (c *Core) requote(ch Chat, m *draft) *MsgLink {
	q, rest, ok := splitQuote(m.Body)
	if !ok || strings.TrimSpace(rest) == "" {
		return nil
	}
	recent, err := c.st.RecentMessages(ch.ID, recentQuotes)
	if err != nil {
		return nil
	}
	chats, match := matchQuote(q, recent)
	if len(chats) != 1 || match == nil {
		return nil
	}
	m.Body = rest
	return match
}

// resolveChat finds the chat the owner named: a handle, a JID, a +number,
// or a unique name.
func (c *Core) resolveChat(name string) (Chat, error) {
	name = strings.TrimSpace(strings.TrimPrefix(name, "@"))
	if name == "" {
		return Chat{}, ErrNotFound
	}
	if ch, err := c.st.ChatByHandle(strings.ToLower(name)); err == nil {
		return ch, nil
	}
	if strings.Contains(name, "@") {
		if ch, err := c.st.Chat(string(c.canonical(ChatID(name)))); err == nil {
			return ch, nil
		}
		return Chat{}, ErrNotFound
	}
	if num := strings.TrimPrefix(name, "+"); isNumber(num) && len(num) >= 6 {
		if ch, err := c.st.Chat(num + "@s.whatsapp.net"); err == nil {
			return ch, nil
		}
		return Chat{}, ErrNotFound
	}
	chats, err := c.st.Chats()
	if err != nil {
		return Chat{}, err
	}
	var found []Chat
	for _, ch := range chats {
		if strings.EqualFold(c.chatName(ch), name) {
			found = append(found, ch)
		}
	}
	if len(found) == 1 {
		return found[0], nil
	}
	return Chat{}, ErrNotFound
}

func (c *Core) ownerReplace(ctx context.Context, target, body string) {
	for i, h := range c.route.Held {
		if h.ID == target {
			c.route.Held[i].Body = body
			c.saveRoute()
			return
		}
	}
	l, err := c.st.MessageByXMPP(target)
	if err != nil || l.WA.ID == "" || strings.HasPrefix(target, relayPrefix) {
		c.say("Not edited: I don't know that message (only messages you sent through waxmpp can be edited).")
		return
	}
	if strings.TrimSpace(body) == "" {
		c.ownerRetract(ctx, target)
		return
	}
	if c.now().Sub(l.Time) > EditWindow {
		// WhatsApp would ignore the edit without a word.
		c.say("Not edited: " + editWindowText + ".")
		return
	}
	wctx, cancel := waCtx(ctx)
	defer cancel()
	err = c.wa.Edit(wctx, MsgRef{Chat: ChatID(l.WA.Chat), ID: l.WA.ID, FromMe: true}, body)
	if err != nil {
		c.say("Not edited: " + c.waProblem("edit", err) + ".")
		return
	}
	l.Excerpt = excerptOf(body)
	if err := c.st.PutMessages(l); err != nil {
		c.log.Error("map edit", "err", err)
	}
}

func (c *Core) ownerRetract(ctx context.Context, target string) {
	for i, h := range c.route.Held {
		if h.ID == target {
			c.route.Held = append(c.route.Held[:i:i], c.route.Held[i+1:]...)
			if len(c.route.Held) == 0 {
				c.route.Question = nil
			}
			c.saveRoute()
			c.say("Dropped the held message.")
			return
		}
	}
	l, err := c.st.MessageByXMPP(target)
	if err != nil || l.WA.ID == "" || strings.HasPrefix(target, relayPrefix) {
		c.say("Not deleted: I don't know that message (only messages you sent through waxmpp can be deleted).")
		return
	}
	wctx, cancel := waCtx(ctx)
	defer cancel()
	if err := c.wa.Revoke(wctx, MsgRef{Chat: ChatID(l.WA.Chat), ID: l.WA.ID, FromMe: true}); err != nil {
		c.say("Not deleted: " + c.waProblem("revoke", err) + ".")
	}
}

func (c *Core) ownerReact(ctx context.Context, target string, emojis []string) {
	l, err := c.st.MessageByXMPP(target)
	if err != nil || l.WA.ID == "" {
		c.say("Reaction not sent: I don't know that message.")
		return
	}
	emoji := ""
	if n := len(emojis); n > 0 {
		emoji = emojis[n-1] // WhatsApp keeps one reaction per person
	}
	ref := MsgRef{Chat: ChatID(l.WA.Chat), Sender: UserID(l.WA.Sender), ID: l.WA.ID, FromMe: l.WA.Sender == ""}
	wctx, cancel := waCtx(ctx)
	defer cancel()
	if err := c.wa.React(wctx, ref, emoji); err != nil {
		c.say("Reaction not sent: " + c.waProblem("react", err) + ".")
	}
}

// ownerDisplayed marks as read, on WhatsApp, the relayed messages of the
// chat up to the one the owner has seen (per sender: WhatsApp wants that
// in groups).
func (c *Core) ownerDisplayed(ctx context.Context, id string) {
	if !strings.HasPrefix(id, relayPrefix) {
		return
	}
	l, err := c.st.MessageByXMPP(id)
	if err != nil || l.WA.Chat == "" {
		return
	}
	chat := ChatID(l.WA.Chat)
	since := c.lastRead[chat]
	if !l.Time.After(since) {
		return
	}
	recent, err := c.st.RecentMessages(l.WA.Chat, 100)
	if err != nil {
		c.log.Error("recent messages", "err", err)
		return
	}
	bySender := map[string][]string{}
	var order []string
	for i := len(recent) - 1; i >= 0; i-- {
		r := recent[i]
		if r.WA.ID == "" || r.WA.Sender == "" || !strings.HasPrefix(r.XMPPID, relayPrefix) || r.Time.After(l.Time) || !r.Time.After(since) {
			continue
		}
		if _, ok := bySender[r.WA.Sender]; !ok {
			order = append(order, r.WA.Sender)
		}
		bySender[r.WA.Sender] = append(bySender[r.WA.Sender], r.WA.ID)
	}
	c.lastRead[chat] = l.Time
	for _, s := range order {
		wctx, cancel := waCtx(ctx)
		err := c.wa.MarkRead(wctx, chat, UserID(s), bySender[s], c.now())
		cancel()
		if err != nil {
			c.log.Warn("mark read", "err", err)
		}
	}
}

// ownerTyping shows the owner typing in the current chat, when plain text
// would go there.
func (c *Core) ownerTyping(ctx context.Context, state TypingState) {
	if len(c.route.Since) > 0 || len(c.route.Held) > 0 {
		return
	}
	cur, ok, err := c.st.Route()
	if err != nil || !ok {
		return
	}
	wctx, cancel := waCtx(ctx)
	defer cancel()
	if err := c.wa.SetTyping(wctx, ChatID(cur), state); err != nil {
		c.log.Debug("typing", "err", err)
	}
}
