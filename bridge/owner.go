package bridge

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"
)

// This file handles what the owner writes: routing and the feature mapping
// from the owner to WhatsApp (see the package doc).

// ownerEvent handles one owner event. It returns an error only when the
// event could not be dealt with durably (the store failed): the caller
// then does not acknowledge it, and it is handled again later.
//
// Every owner message that can do something (text, correction,
// retraction, reaction) is handled once by its id: a message the server's
// archive replays after a restart finds its id recorded — in the message
// map when it was sent, among the held or pending messages, or recorded
// after handling (recordOwner) — and is dropped. Markers, receipts and
// chat states are not recorded: doing them twice changes nothing.
func (c *Core) ownerEvent(ctx context.Context, ev OwnerEvent) error {
	switch ev.(type) {
	case *RoomEcho, *RoomStranger, *RoomGone:
		return c.roomEvent(ev)
	}
	meta := ev.Meta()
	once := false
	switch e := ev.(type) {
	case *OwnerText:
		once = e.Body != "" || e.URL != ""
	case *OwnerCorrection, *OwnerRetraction, *OwnerReaction, *OwnerEncrypted:
		once = true
	}
	switch ev.(type) {
	case *OwnerText, *OwnerCorrection, *OwnerRetraction, *OwnerReaction, *OwnerEncrypted:
		if meta.Resource != "" {
			c.fit.active = meta.Resource // the client the owner writes from
		}
	}
	if once {
		if done, err := c.handledBefore(meta.ID); err != nil {
			return err
		} else if done {
			c.log.Debug("owner message handled before: dropped", "id", meta.ID)
			return nil
		}
	}
	var err error
	switch e := ev.(type) {
	case *OwnerDisplayed:
		c.ownerDisplayed(ctx, e.Target)
	case *OwnerReceived:
		// The owner's client got a relayed message: nothing to tell WhatsApp.
	case *OwnerRetraction:
		err = c.ownerRetract(ctx, e.Target)
	case *OwnerCorrection:
		err = c.ownerReplace(ctx, e.Target, e.Body)
	case *OwnerReaction:
		c.ownerReact(ctx, e.Target, e.Emojis)
	case *OwnerText:
		if meta.Room != "" {
			err = c.roomOwner(ctx, ev) // in a room there is nothing to route
			break
		}
		body := e.Body
		if body == "" {
			body = e.URL
		}
		d := draft{ID: e.ID, Body: body, Time: e.Time}
		if e.File != "" && c.cfg.Files != nil {
			d.Body, d.File = e.File, e.File // a file: transfer.go sends it
		}
		if d.Body != "" {
			err = c.ownerText(ctx, d, e.ReplyTo)
		}
	case *OwnerChatState:
		if meta.Room != "" {
			err = c.roomOwner(ctx, ev)
			break
		}
		c.ownerTyping(ctx, e.State)
	case *OwnerEncrypted:
		c.ownerEncrypted(e)
	case *OwnerClient:
		err = c.ownerClient(e)
	case *OwnerRoster:
		err = c.ownerRoster(e)
	case *OwnerOther:
	}
	if err != nil || !once {
		return err
	}
	return c.recordOwner(meta.ID)
}

// handledBefore reports whether the owner's message id was handled
// already (see ownerEvent). Ids with relayPrefix are the bot's own and
// never the owner's; an empty id cannot be told apart.
func (c *Core) handledBefore(id string) (bool, error) {
	if id == "" || strings.HasPrefix(id, relayPrefix) {
		return false, nil
	}
	if c.inOwnerBatch(id) {
		return true, nil // sent, and mapped with its batch (batch.go)
	}
	for _, l := range [][]draft{c.route.Held, c.route.Pending} {
		if slices.ContainsFunc(l, func(d draft) bool { return d.ID == id }) {
			return true, nil
		}
	}
	if c.queuedDraft(id) {
		return true, nil // waits behind a file to its chat, or is one
	}
	_, err := c.st.MessageByXMPP(id)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, ErrNotFound):
		return false, nil
	}
	return false, err
}

// recordOwner records that the owner's message id was handled, unless the
// message map has it already (it was sent): a record without a WhatsApp
// id (and without a chat) says "handled, nothing to refer to".
func (c *Core) recordOwner(id string) error {
	if id == "" || strings.HasPrefix(id, relayPrefix) || c.inOwnerBatch(id) {
		return nil
	}
	if _, err := c.st.MessageByXMPP(id); err == nil {
		return nil
	} else if !errors.Is(err, ErrNotFound) {
		return err
	}
	return c.st.PutMessages(MsgLink{XMPPID: id, Time: c.now()})
}

// sent reports whether the owner's message id was sent to WhatsApp.
func (c *Core) sent(id string) (bool, error) {
	if id == "" {
		return false, nil
	}
	if c.inOwnerBatch(id) {
		return true, nil
	}
	l, err := c.st.MessageByXMPP(id)
	switch {
	case err == nil:
		return l.WA.ID != "", nil
	case errors.Is(err, ErrNotFound):
		return false, nil
	}
	return false, err
}

func (c *Core) ownerText(ctx context.Context, m draft, replyTo string) error {
	if len(c.route.Pending) > 0 {
		// The owner is here: try what waits for WhatsApp first.
		if err := c.flushPending(ctx); err != nil {
			return err
		}
	}
	in, err := c.routeIn(m.Body, replyTo)
	if err != nil {
		return err
	}
	out := decide(in)
	if c.log.Enabled(ctx, slog.LevelDebug) { // its arguments cost allocations per message
		c.log.Debug("route", "rule", out.Rule, "action", out.Action.String(), "chat", out.Chat)
	}
	switch out.Action {
	case actReject:
		c.say(out.Problem)
	case actCommand:
		name, args, _ := parseCommand(m.Body)
		c.fit.typed = m.Body[:1]
		c.cmdID = m.ID
		text := c.command(ctx, name, args)
		c.cmdID = ""
		if text != "" {
			c.say(text)
		}
	case actSend:
		m.Body, m.Quote = out.Text, out.Quote
		if err := c.deliver(ctx, out.Chat, m); err != nil {
			return err
		}
		// Typing follows the text: after a /msg or a reply to another
		// chat, the owner is likely writing there.
		c.elsewhere = out.Chat != in.Current
		return c.wrote(out.Chat)
	case actHold:
		m.Body = out.Text
		return c.hold(m, out.Candidates, out.Handles)
	case actAnswer:
		// One answer: where the messages went, and what waits.
		var notes []string
		c.collect = &notes
		text, err := c.release(ctx, out.Chat)
		c.collect = nil
		if err != nil {
			return err
		}
		c.say(strings.Join(append([]string{text}, notes...), "\n"))
	}
	return nil
}

// routeIn gathers what decide needs.
func (c *Core) routeIn(body, replyTo string) (routeIn, error) {
	in := routeIn{Body: body, ReplyTo: replyTo, Since: c.route.Since, Question: c.route.Question, Held: len(c.route.Held) > 0}
	if c.resolveFn == nil {
		c.resolveFn = c.resolveForRoute // a method value is an allocation: once
	}
	in.Resolve = c.resolveFn
	cur, ok, err := c.st.Route()
	if err != nil {
		return routeIn{}, err
	}
	if ok {
		in.Current = ChatID(cur)
	}
	if replyTo != "" {
		in.ToQuestion = slices.Contains(c.route.Asked, replyTo)
		// A relayed message, a note, or the owner's own earlier message:
		// all are mapped to their chat.
		l, err := c.st.MessageByXMPP(replyTo)
		switch {
		case err == nil:
			in.Reply = &l
		case !errors.Is(err, ErrNotFound):
			return routeIn{}, err
		}
	}
	if strings.HasPrefix(body, ">") {
		if in.Recent, err = c.recentRelayed(); err != nil {
			return routeIn{}, err
		}
	}
	return in, nil
}

// quoteWindow is how many relayed lines a "> " quote is matched against,
// gathered from the quoteChats chats that relayed most recently. Only
// lines the owner saw count: a busy muted group fills the message map
// without pushing them out.
const (
	quoteWindow = 200
	quoteChats  = 20
)

// recentRelayed returns the lines recently relayed to the owner, newest
// first.
func (c *Core) recentRelayed() ([]MsgLink, error) {
	chats, err := c.st.Chats() // most recently active first
	if err != nil {
		return nil, err
	}
	var out []MsgLink
	n := 0
	for _, ch := range chats {
		if n == quoteChats {
			break
		}
		if ch.Kind == StatusChat {
			continue
		}
		n++
		r, err := c.st.RecentMessages(ch.ID, quoteWindow)
		if err != nil {
			return nil, err
		}
		for _, l := range r {
			if relayedLine(l) {
				out = append(out, l)
			}
		}
	}
	slices.SortStableFunc(out, func(a, b MsgLink) int { return b.Time.Compare(a.Time) })
	return out[:min(len(out), quoteWindow)], nil
}

// resolveForRoute is resolveChat for decide: the chat, or the chats an
// ambiguous name could mean.
func (c *Core) resolveForRoute(name string) (ChatID, []ChatID) {
	ch, err := c.resolveChat(name)
	var amb ambiguous
	switch {
	case err == nil:
		return ChatID(ch.ID), nil
	case errors.As(err, &amb):
		var ids []ChatID
		for _, a := range amb {
			ids = append(ids, ChatID(a.ID))
		}
		return "", ids
	case !errors.Is(err, ErrNotFound):
		c.log.Error("resolve chat", "err", err)
	}
	return "", nil
}

// notSent is a send WhatsApp did not take: the message is kept pending.
type notSent struct{ err error }

func (e *notSent) Error() string { return "not sent: " + e.err.Error() }
func (e *notSent) Unwrap() error { return e.err }

// send sends the owner's text m to m.Chat (as a reply to m.Quote) and maps
// it. A *notSent error means WhatsApp did not take it; other errors are the
// store's.
func (c *Core) send(ctx context.Context, m draft) error {
	ch, err := c.st.Chat(string(m.Chat))
	if err != nil {
		return err
	}
	wctx, cancel := waCtx(ctx)
	defer cancel()
	opts := SendOptions{}
	if m.ID != "" {
		opts.ID = waSendID(m.ID)
	}
	var ref MsgRef
	if g, ok := parseGeo(m.Body); ok && m.Quote == nil {
		ref, _, err = c.wa.SendLocation(wctx, ChatID(ch.ID), g, opts)
	} else {
		if q := m.Quote; q != nil && q.WA.ID != "" {
			opts.ReplyTo = &MsgRef{Chat: ChatID(q.WA.Chat), Sender: UserID(q.WA.Sender), ID: q.WA.ID, FromMe: q.WA.Sender == ""}
			opts.QuotedText = q.Excerpt
		}
		ref, _, err = c.wa.SendText(wctx, ChatID(ch.ID), m.Body, opts)
	}
	if err != nil {
		return &notSent{err}
	}
	if ref.ID == "" {
		ref.ID = opts.ID
	}
	if ref.ID != "" { // an ad-hoc /msg has no id: nothing to map it by
		// Mapped with the time WhatsApp took it (not when the owner wrote
		// it: a held message goes later), which the edit window counts from.
		l := MsgLink{WA: MessageKey{Chat: ch.ID, ID: ref.ID}, XMPPID: m.ID, Excerpt: excerptOf(m.Body), Time: c.now(), RoomID: m.RoomID}
		if !c.ownerBatched(l) {
			if err := c.st.PutMessages(l); err != nil {
				return err
			}
		}
		c.offerDirect(ch)
	}
	// Read when answered: what the chat sent before counts as read.
	c.markRead(ctx, ChatID(ch.ID), c.now())
	return nil
}

// deliver sends m to chat or, when WhatsApp cannot take it now, keeps it
// pending (on disk), tells the owner, and sends it when WhatsApp can. What
// waits goes first: messages leave in the order the owner wrote them. It
// returns an error only when the store failed.
func (c *Core) deliver(ctx context.Context, chat ChatID, m draft) error {
	m.Chat = chat
	if c.cfg.Files != nil {
		// A file goes by a transfer; what follows it to the same chat
		// waits behind it (transfer.go).
		k := laneKey{Out: true, Chat: c.canonicalChat(chat)}
		if m.File != "" {
			d := m
			return c.startTransfer(k, laneItem{Draft: &d})
		}
		if c.xf.draining != k && len(c.xf.lanes[k]) > 0 {
			// A busy lane: behind keeps a copy (made only then,
			// a heap allocation).
			d := m
			if waits, err := c.behind(k, laneItem{Draft: &d}); waits || err != nil {
				return err
			}
		}
	}
	if len(c.route.Pending) > 0 {
		if err := c.flushPending(ctx); err != nil {
			return err
		}
	}
	var why error
	if len(c.route.Pending) == 0 {
		err := c.send(ctx, m)
		if err == nil {
			return nil
		}
		var ns *notSent // on the heap (errors.As): only for an error
		if !errors.As(err, &ns) {
			return err
		}
		why = ns.err
	}
	c.route.Pending = append(c.route.Pending, m)
	if err := c.saveRoute(); err != nil {
		c.route.Pending = c.route.Pending[:len(c.route.Pending)-1]
		return err
	}
	reason := "the messages before it wait for WhatsApp"
	if why != nil {
		reason = c.waProblem("send to WhatsApp", why)
	}
	c.say("⏳ Not sent yet to " + c.chatNameOf(chat) + ": " + reason + ". It goes when WhatsApp takes it; /cancel drops it.\n> " + short(m.Body, 80))
	return nil
}

// maxTries is how often WhatsApp may refuse a pending message while
// connected before the owner is told it cannot be sent and it is dropped.
const maxTries = 3

// flushPending sends what waits for WhatsApp, in order, until WhatsApp
// refuses one. It returns an error only when the store failed.
func (c *Core) flushPending(ctx context.Context) error {
	n := 0
	for len(c.route.Pending) > 0 {
		m := c.route.Pending[0]
		if done, err := c.sent(m.ID); err != nil {
			return err
		} else if !done {
			err := c.send(ctx, m)
			var ns *notSent
			if errors.As(err, &ns) {
				transient := c.status.State != Connected || errors.Is(err, ErrNotPaired) || errors.Is(err, context.DeadlineExceeded)
				if transient {
					return nil
				}
				c.route.Pending[0].Tries++
				if c.route.Pending[0].Tries < maxTries {
					return c.saveRoute()
				}
				c.say("✗ Not sent to " + c.chatNameOf(m.Chat) + ": " + c.waProblem("send to WhatsApp", ns.err) + ", again and again; it is dropped.\n> " + short(m.Body, 80))
			} else if err != nil {
				return err
			} else {
				n++
			}
		}
		c.route.Pending = c.route.Pending[1:]
		if err := c.saveRoute(); err != nil {
			c.route.Pending = append([]draft{m}, c.route.Pending...)
			return err
		}
	}
	if n > 0 {
		c.say("✅ Sent " + strconv.Itoa(n) + " waiting " + plural(n, "message", "messages") + ".")
	}
	return nil
}

// hold keeps m until the owner says where it goes. The question's numbers
// stay what they were while anything is held: new candidates are added
// after them, so an answer means what the owner saw.
func (c *Core) hold(m draft, cands []ChatID, handles bool) error {
	c.route.Held = append(c.route.Held, m)
	for _, id := range cands {
		id = c.canonicalChat(id)
		if len(c.route.Question) < maxQuestion && !slices.ContainsFunc(c.route.Question, func(q ChatID) bool { return c.canonicalChat(q) == id }) {
			c.route.Question = append(c.route.Question, id)
		}
	}
	c.route.Handles = c.route.Handles || handles
	if err := c.saveRoute(); err != nil {
		c.route.Held = c.route.Held[:len(c.route.Held)-1]
		return err
	}
	c.ask()
	return nil
}

// canonicalChat is the chat id as the store keeps it (a merged LID or
// phone JID resolves to the one chat), or id when it cannot tell.
func (c *Core) canonicalChat(id ChatID) ChatID {
	if ch, err := c.st.Chat(string(id)); err == nil {
		return ChatID(ch.ID)
	}
	return id
}

// maxAsked is how many question ids are kept to recognise replies to them.
const maxAsked = 20

// ask asks where the held messages go, and remembers the question's id so
// that a reply to it is an answer.
func (c *Core) ask() {
	n := len(c.route.Held)
	if n == 0 {
		return
	}
	ids, err := c.x.Send(Outgoing{Body: forms(c.question(), c.bang())})
	if err != nil {
		c.log.Error("ask the owner", "err", err)
		return
	}
	c.route.Asked = append(c.route.Asked, ids...)
	if len(c.route.Asked) > maxAsked {
		c.route.Asked = c.route.Asked[len(c.route.Asked)-maxAsked:]
	}
	if err := c.saveRoute(); err != nil {
		c.log.Error("remember the question", "err", err)
	}
}

// question is the text of the question about the held messages.
func (c *Core) question() string {
	what := ""
	if n := len(c.route.Held); n > 1 {
		what = strconv.Itoa(n) + " held messages: "
	}
	type entry struct {
		n    int
		name string
		ch   Chat
	}
	var shown []entry
	seen := map[string]bool{}
	for i, id := range c.route.Question {
		ch, err := c.st.Chat(string(id))
		if err != nil {
			ch = Chat{ID: string(id)}
		}
		if seen[ch.ID] {
			continue // merged into a chat offered already; its number still names it
		}
		seen[ch.ID] = true
		shown = append(shown, entry{i + 1, c.chatName(ch), ch})
	}
	if len(shown) == 0 {
		return "Not sent yet — " + what + "which chat? Reply to one of its messages, or send /to <chat> (/chats lists them). /cancel drops it."
	}
	var b strings.Builder
	b.WriteString(what + "Send to")
	for _, e := range shown {
		b.WriteString(" " + strconv.Itoa(e.n) + ") " + e.name)
		same := slices.ContainsFunc(shown, func(o entry) bool { return o.n != e.n && strings.EqualFold(o.name, e.name) })
		if (same || c.route.Handles) && e.ch.Handle != "" {
			b.WriteString(" (" + e.ch.Handle + ")")
		}
	}
	b.WriteString("? Answer ")
	switch len(shown) {
	case 1:
		b.WriteString(strconv.Itoa(shown[0].n) + ".")
	case 2:
		b.WriteString(strconv.Itoa(shown[0].n) + " or " + strconv.Itoa(shown[1].n) + ".")
	default:
		b.WriteString(strconv.Itoa(shown[0].n) + " to " + strconv.Itoa(shown[len(shown)-1].n) + ".")
	}
	return b.String()
}

// release sends the held messages to chat, which becomes current, and
// returns what to tell the owner. A message WhatsApp does not take waits
// (deliver tells it). It returns an error only when the store failed.
func (c *Core) release(ctx context.Context, chat ChatID) (string, error) {
	ch, err := c.st.Chat(string(chat))
	if errors.Is(err, ErrNotFound) {
		return "Not sent: that chat is gone. /chats lists the chats.", nil
	} else if err != nil {
		return "", err
	}
	if err := c.st.SetRoute(ch.ID); err != nil {
		return "", err
	}
	c.route.Since = nil
	c.elsewhere = false
	// Each message leaves the held list only after it was sent (and
	// mapped) or set pending: a crash in between finds it held and
	// mapped, and skips it.
	for len(c.route.Held) > 0 {
		m := c.route.Held[0]
		c.route.Held = c.route.Held[1:]
		done, err := c.sent(m.ID)
		if err == nil && !done && !c.queuedDraft(m.ID) {
			m.Quote = c.requote(ch, &m)
			err = c.deliver(ctx, ChatID(ch.ID), m)
		}
		if err == nil {
			err = c.saveRoute()
		}
		if err != nil {
			c.route.Held = append([]draft{m}, c.route.Held...)
			return "", err
		}
	}
	c.route.Question, c.route.Handles = nil, false
	if err := c.saveRoute(); err != nil {
		return "", err
	}
	return "→ " + c.chatName(ch) + " (now the current chat)", nil
}

// requote turns a held message that starts with a "> " quote of a message
// in ch (the chat the owner chose) into a reply to that message, the quote
// removed, as the quote rule would have done had the quote named one chat.
func (c *Core) requote(ch Chat, m *draft) *MsgLink {
	q, rest, ok := splitQuote(m.Body)
	if !ok || strings.TrimSpace(rest) == "" {
		return nil
	}
	recent, err := c.st.RecentMessages(ch.ID, quoteWindow)
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

// ambiguous is resolveChat's error when a name could mean several chats:
// the handle of one and the current name of another, or the name of
// several.
type ambiguous []Chat

func (a ambiguous) Error() string { return "ambiguous chat name" }

// resolveChat finds the chat the owner named: a handle, a JID, a +number,
// or a name. When a handle (a chat keeps its old handles when renamed)
// and a chat's current name disagree, or a name is several chats', it
// returns ambiguous: the owner must say which.
func (c *Core) resolveChat(name string) (Chat, error) {
	name = strings.TrimSpace(strings.TrimPrefix(name, "@"))
	if name == "" {
		return Chat{}, ErrNotFound
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
	byHandle, err := c.st.ChatByHandle(strings.ToLower(name))
	found := err == nil
	if err != nil && !errors.Is(err, ErrNotFound) {
		return Chat{}, err
	}
	chats, err := c.st.Chats()
	if err != nil {
		return Chat{}, err
	}
	var named ambiguous
	for _, ch := range chats {
		if strings.EqualFold(c.chatName(ch), name) && !(found && ch.ID == byHandle.ID) {
			named = append(named, ch)
		}
	}
	switch {
	case found && len(named) == 0:
		return byHandle, nil
	case found:
		return Chat{}, append(ambiguous{byHandle}, named...)
	case len(named) == 1:
		return named[0], nil
	case len(named) > 1:
		return Chat{}, named
	}
	return Chat{}, ErrNotFound
}

// correction is what a correction's body sends: the text as the rules
// would have sent it (a "/msg chat" prefix, a "> " quote and the "//"
// escape removed). problem is set when the correction cannot stand for
// the message in chat (it names another chat, or is a command).
func (c *Core) correction(body string, chat ChatID) (text, problem string) {
	if name, args, ok := parseCommand(body); ok {
		if name != "msg" {
			return "", "a correction cannot be a command; write it anew"
		}
		target, rest, _ := strings.Cut(args, " ")
		got, _ := c.resolveForRoute(target)
		if got == "" || c.canonicalChat(got) != c.canonicalChat(chat) {
			return "", "the correction names another chat than the message; write it anew"
		}
		body = strings.TrimLeft(rest, " ")
	} else if unescaped, ok := unescapeText(body); ok {
		body = unescaped
	} else if _, rest, ok := splitQuote(body); ok {
		body = rest
	}
	return body, ""
}

func (c *Core) ownerReplace(ctx context.Context, target, body string) error {
	for i, h := range c.route.Held {
		if h.ID != target {
			continue
		}
		if strings.TrimSpace(body) == "" {
			return c.ownerRetract(ctx, target) // nothing left to send
		}
		if name, _, ok := parseCommand(body); ok {
			c.say("Not edited: a correction cannot be a command (/" + short(name, 20) + "); the held message stays as it was.")
			return nil
		}
		body, _ = unescapeText(body)
		old := c.route.Held[i].Body
		c.route.Held[i].Body = body
		if err := c.saveRoute(); err != nil {
			c.route.Held[i].Body = old
			return err
		}
		return nil
	}
	l, err := c.st.MessageByXMPP(target)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	if err != nil || l.WA.ID == "" || strings.HasPrefix(l.XMPPID, relayPrefix) {
		c.say("Not edited: I don't know that message (only messages you sent through waxmpp can be edited).")
		return nil
	}
	if strings.TrimSpace(body) == "" {
		return c.ownerRetract(ctx, target)
	}
	text, problem := c.correction(body, ChatID(l.WA.Chat))
	if problem == "" && strings.TrimSpace(text) == "" {
		problem = "nothing is left of the text"
	}
	if problem != "" {
		c.say("Not edited: " + problem + ".")
		return nil
	}
	if c.now().Sub(l.Time) > EditWindow {
		// WhatsApp would ignore the edit without a word.
		c.say("Not edited: " + editWindowText + ".")
		return nil
	}
	wctx, cancel := waCtx(ctx)
	defer cancel()
	err = c.wa.Edit(wctx, MsgRef{Chat: ChatID(l.WA.Chat), ID: l.WA.ID, FromMe: true}, text)
	if err != nil {
		c.say("Not edited: " + c.waProblem("edit", err) + ".")
		return nil
	}
	l.Excerpt = excerptOf(text)
	return c.st.PutMessages(l)
}

func (c *Core) ownerRetract(ctx context.Context, target string) error {
	for _, list := range []*[]draft{&c.route.Held, &c.route.Pending} {
		i := slices.IndexFunc(*list, func(d draft) bool {
			return d.ID == target || d.RoomID != "" && d.RoomID != RoomPending && d.RoomID == target
		})
		if i < 0 {
			continue
		}
		old := *list
		*list = slices.Delete(slices.Clone(old), i, i+1)
		if len(c.route.Held) == 0 {
			c.route.Question, c.route.Handles = nil, false
		}
		if err := c.saveRoute(); err != nil {
			*list = old
			return err
		}
		c.say("Dropped the held message.")
		return nil
	}
	l, err := c.st.MessageByXMPP(target)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	if err != nil || l.WA.ID == "" || strings.HasPrefix(l.XMPPID, relayPrefix) {
		c.say("Not deleted: I don't know that message (only messages you sent through waxmpp can be deleted).")
		return nil
	}
	wctx, cancel := waCtx(ctx)
	defer cancel()
	if err := c.wa.Revoke(wctx, MsgRef{Chat: ChatID(l.WA.Chat), ID: l.WA.ID, FromMe: true}); err != nil {
		c.say("Not deleted: " + c.waProblem("revoke", err) + ".")
	}
	return nil
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
// chat up to the one the owner has seen (XEP-0333 displayed).
func (c *Core) ownerDisplayed(ctx context.Context, id string) {
	// In a room the marker names the room's id for the message.
	l, err := c.st.MessageByXMPP(id)
	if err != nil || l.WA.Chat == "" || !strings.HasPrefix(l.XMPPID, relayPrefix) {
		return
	}
	c.markRead(ctx, ChatID(l.WA.Chat), l.Time)
}

// markRead marks as read, on WhatsApp, the messages chat relayed that
// were sent up to upTo and are not marked yet, per sender (WhatsApp wants
// that in groups). It runs when the owner's client says they were seen
// (a displayed marker) and when the owner writes to the chat: an answer
// means the owner read what came before, whatever markers the client
// sends (profanity sends none). Messages of a muted chat were never
// shown and are not marked.
//
// A chat found with nothing left to mark is not read again until a
// relayed message is mapped (readClean): an owner's burst to one chat
// reads its recent messages once, not for every message.
func (c *Core) markRead(ctx context.Context, chat ChatID, upTo time.Time) {
	if c.readClean[chat] {
		return
	}
	recent, err := c.st.RecentMessages(string(chat), 100)
	if err != nil {
		c.log.Error("recent messages", "err", err)
		return
	}
	clean := true // every relayed message found is marked once this is done
	bySender := map[string][]string{}
	var order []string
	seen := map[MessageKey]bool{}           // a message recorded again (edited, its room's id) counts once
	for i := len(recent) - 1; i >= 0; i-- { // oldest first
		r := recent[i]
		if r.WA.ID == "" || r.WA.Sender == "" || !strings.HasPrefix(r.XMPPID, relayPrefix) || seen[r.WA] || c.marked[string(chat)+"\x00"+r.WA.ID] {
			continue
		}
		if r.Time.After(upTo) {
			clean = false // marked by a later call
			continue
		}
		seen[r.WA] = true
		if _, ok := bySender[r.WA.Sender]; !ok {
			order = append(order, r.WA.Sender)
		}
		bySender[r.WA.Sender] = append(bySender[r.WA.Sender], r.WA.ID)
	}
	for _, s := range order {
		wctx, cancel := waCtx(ctx)
		err := c.wa.MarkRead(wctx, chat, UserID(s), bySender[s], c.now())
		cancel()
		if err != nil {
			c.log.Warn("mark read", "err", err) // marked with the next marker or answer
			clean = false
			continue
		}
		if len(c.marked) > 10000 {
			clear(c.marked)
		}
		for _, id := range bySender[s] {
			c.marked[string(chat)+"\x00"+id] = true
		}
	}
	if clean {
		c.readClean[chat] = true
	}
}

// ownerTyping shows the owner typing in the current chat, when plain text
// would go there and the owner's last text went there too (not a /msg or
// a reply to another chat).
func (c *Core) ownerTyping(ctx context.Context, state TypingState) {
	if len(c.route.Since) > 0 || len(c.route.Held) > 0 || c.elsewhere {
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

// readStore is the store as the core uses it: mapping a relayed message
// empties readClean, so that markRead looks for it.
type readStore struct {
	Store
	c *Core
}

func (s readStore) PutMessages(ms ...MsgLink) error {
	s.c.mappedLinks(ms)
	return s.Store.PutMessages(ms...)
}

// mappedLinks notes links about to be mapped (any way: PutMessages or
// with a batch's stanzas, batch.go).
func (c *Core) mappedLinks(ms []MsgLink) {
	for _, l := range ms {
		if strings.HasPrefix(l.XMPPID, relayPrefix) {
			clear(c.readClean)
			return
		}
	}
}
