package bridge

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// This file brings friends over (see "Bringing friends over" in the package
// doc): /invite sends a WhatsApp chat the owner's XMPP address, /moved
// records who came over, /invites tells how it goes; a chat that moved is
// marked in /chats, its messages carry a reminder, and the bot offers once
// to write there directly.

// Invite is what the bridge knows of bringing one chat over to XMPP.
type Invite struct {
	Chat string // the chat's id
	// Sent are the times it was invited, oldest first (the latest
	// maxInvites).
	Sent []time.Time
	// Address is the chat's XMPP address since /moved (a person's JID, or
	// a group's room); "" while it has not moved.
	Address string
	Moved   time.Time
	// Offered is set once the bot offered to write to Address directly.
	Offered bool
}

// Last is when the chat was last invited; zero if never.
func (i Invite) Last() time.Time {
	if len(i.Sent) == 0 {
		return time.Time{}
	}
	return i.Sent[len(i.Sent)-1]
}

// InviteStore keeps the invitations (bridge/store's invites bucket).
// Methods block on disk; the core calls them from its goroutine.
type InviteStore interface {
	// Invite returns the record of chat (which may be an alias), or
	// ErrNotFound when there is none.
	Invite(chat string) (Invite, error)
	// PutInvite saves inv under its chat's canonical id. A record with
	// neither invitations nor an address is removed.
	PutInvite(inv Invite) error
	// Invites returns every record.
	Invites() ([]Invite, error)
}

// InviteConfig is what /invite sends (the config's [invite] table and the
// owner's address). The zero value is usable but has no address to send.
type InviteConfig struct {
	// Address is the owner's bare JID (xmpp.owner): what friends add.
	Address string
	// Lang is the language of the built-in texts, one of InviteLanguages
	// ("" or another: English).
	Lang string
	// Text, GroupText and RoomText are the owner's own templates (see
	// invitetext.go) for a person, a group, and a group with its room;
	// "" means the built-in one in Lang.
	Text, GroupText, RoomText string
	// Link and RoomLink are the landing pages' bases; "" means
	// DefaultInviteLink and DefaultRoomLink.
	Link, RoomLink string
}

// maxInvites is how many invitation times a record keeps.
const maxInvites = 20

// inviteAgain is how long after an invitation the bot asks before sending
// another to the same chat.
const inviteAgain = 30 * 24 * time.Hour

// reminderPrefix starts the line that relayed messages of a chat that
// moved end with; matchQuote leaves it out (the owner's client quotes it
// along).
const reminderPrefix = "↪ on XMPP: "

// inviteSetup checks cfg's templates and fills in its defaults.
func inviteSetup(cfg InviteConfig) (InviteConfig, [3]inviteText, error) {
	if !slices.Contains(InviteLanguages, cfg.Lang) {
		cfg.Lang = "en"
	}
	if cfg.Link == "" {
		cfg.Link = DefaultInviteLink
	}
	if cfg.RoomLink == "" {
		cfg.RoomLink = DefaultRoomLink
	}
	var texts [3]inviteText
	for k, own := range cfg.texts() {
		var err error
		if texts[k], err = parseInviteText(cmpOr(own, builtinInvite(cfg.Lang, inviteKind(k)))); err != nil {
			return cfg, texts, fmt.Errorf("bridge: core: invitation %s %w", textKeys[k], err)
		}
	}
	return cfg, texts, nil
}

// texts are the owner's own templates, by inviteKind.
func (cfg InviteConfig) texts() [3]string { return [3]string{cfg.Text, cfg.GroupText, cfg.RoomText} }

// textKeys name the config's keys of the templates, by inviteKind.
var textKeys = [3]string{"text", "group_text", "room_text"}

// invitation is what /invite sends to ch: the text, and the URI in it.
func (c *Core) invitation(ch Chat) (string, XMPPURI) {
	kind, base := toPerson, c.cfg.Invite.Link
	u := XMPPURI{JID: c.cfg.Invite.Address, Query: "roster"}
	name := ""
	if ch.Kind == Direct {
		name = c.greetName(UserID(ch.ID))
	} else if room := c.roomOf(ChatID(ch.ID)); room != "" {
		// The group's own room (/room): its address, to join.
		kind, base = toRoom, c.cfg.Invite.RoomLink
		u = XMPPURI{JID: room, Query: "join"}
	} else {
		kind = toGroup
	}
	return renderInvite(c.invites[kind], base, u, name), u
}

// renderInvite fills template t in for an invitation to u, greeting name,
// with a landing link on base.
func renderInvite(t inviteText, base string, u XMPPURI, name string) string {
	return t.render(map[string]string{
		"name":    name,
		"address": u.JID,
		"uri":     u.String(),
		"link":    landingLink(base, u),
	})
}

// greetName is the first name an invitation greets u by: from the owner's
// address book, else the name u chose; "" when only a number is known.
func (c *Core) greetName(u UserID) string {
	for _, id := range []UserID{u, c.other(u)} {
		if p := c.people[id]; p != nil && id != "" && safeName(p.First) != "" {
			return safeName(p.First)
		}
	}
	n, _ := c.baseName(u)
	if f := strings.Fields(safeName(n)); len(f) > 0 {
		return f[0]
	}
	return ""
}

// invite returns the record of ch; a chat never invited has an empty one.
func (c *Core) invite(ch Chat) (Invite, error) {
	inv, err := c.st.Invite(ch.ID)
	if errors.Is(err, ErrNotFound) {
		return Invite{Chat: ch.ID}, nil
	}
	inv.Chat = ch.ID
	return inv, err
}

func (c *Core) cmdInvite(ctx context.Context, args string) string {
	if strings.EqualFold(args, "text") {
		return c.cmdInviteText()
	}
	again := false
	if i := strings.LastIndexFunc(args, unicode.IsSpace); i >= 0 && strings.EqualFold(args[i+1:], "again") {
		args, again = strings.TrimSpace(args[:i]), true
	}
	if args == "" {
		return "/invite needs a chat: /invite alice (/chats lists the handles; /invite text shows the message)."
	}
	ch, problem := c.chatArg("invite", args)
	if problem != "" {
		return problem
	}
	if ch.Kind != Direct && ch.Kind != Group {
		return c.chatName(ch) + " is not a person or a group: only they can be invited."
	}
	if c.cfg.Invite.Address == "" {
		return "No invitation sent: waxmpp does not know your XMPP address (xmpp.owner in the config)."
	}
	inv, err := c.invite(ch)
	if err != nil {
		return "Not sent: " + c.storeProblem("read invitation", err)
	}
	name, now := c.chatName(ch), c.now()
	switch {
	case again:
	case inv.Address != "":
		return name + " is on XMPP already, as " + inv.Address + ": write to them there, " + directURI(ch, inv.Address) + ". /invite " + ch.Handle + " again sends the invitation all the same."
	case !inv.Last().IsZero() && now.Sub(inv.Last()) < inviteAgain:
		return "You invited " + name + " " + ago(now, inv.Last()) + " (" + day(inv.Last()) + "). To send the invitation once more, /invite " + ch.Handle + " again."
	}
	text, u := c.invitation(ch)
	if len(c.route.Pending) > 0 {
		if err := c.flushPending(ctx); err != nil {
			return "Not sent: " + c.storeProblem("send waiting messages", err)
		}
		if n := len(c.route.Pending); n > 0 {
			return fmt.Sprintf("Not sent: %d %s still %s for WhatsApp to take %s; the invitation would overtake %s. Try again once %s gone.",
				n, plural(n, "message", "messages"), plural(n, "waits", "wait"), plural(n, "it", "them"), plural(n, "it", "them"), plural(n, "it has", "they have"))
		}
	}
	opts := SendOptions{}
	if c.cmdID != "" {
		opts.ID = waSendID(c.cmdID)
	}
	wctx, cancel := waCtx(ctx)
	defer cancel()
	ref, _, err := c.wa.SendText(wctx, ChatID(ch.ID), text, opts)
	if err != nil {
		return "Not sent: " + c.waProblem("send invitation", err) + "."
	}
	if ref.ID == "" {
		ref.ID = opts.ID
	}
	inv.Sent = append(inv.Sent, now)
	if len(inv.Sent) > maxInvites {
		inv.Sent = inv.Sent[len(inv.Sent)-maxInvites:]
	}
	err = c.st.PutInvite(inv)
	if err == nil && ref.ID != "" {
		// Mapped like any message the owner sent: the phone's echo of it
		// is not relayed, and a reply to it finds it.
		err = c.st.PutMessages(MsgLink{WA: MessageKey{Chat: ch.ID, ID: ref.ID}, XMPPID: c.cmdID, Excerpt: excerptOf(text), Time: now})
	}
	if err != nil {
		return "Sent the invitation to " + name + ", but: " + c.storeProblem("record invitation", err)
	}
	what := "your XMPP address (" + u.JID + ")"
	if u.Query == "join" {
		what = "the address of its room (" + u.JID + ")"
	}
	return "Invited " + name + ": sent " + what + ", a link that opens it, and where to get an app. Once they are there: /moved " + ch.Handle + " <their address>."
}

// day writes a date as /invites shows it: "3 May 2026".
func day(t time.Time) string { return t.Local().Format("2 Jan 2006") }

// directURI is the xmpp: URI that opens a conversation with address: a
// chat with a person (?message), a room for a group (?join).
func directURI(ch Chat, address string) string {
	q := "message"
	if ch.Kind == Group {
		q = "join"
	}
	return XMPPURI{JID: address, Query: q}.String()
}

func (c *Core) cmdInviteText() string {
	cfg := c.cfg.Invite
	var b strings.Builder
	for k, own := range cfg.texts() {
		b.WriteString([3]string{"To a person", "To a group", "To a group that has its own room"}[k])
		if own != "" {
			b.WriteString(" ([invite] " + textKeys[k] + " in the config):\n\n" + own)
		} else {
			b.WriteString(", in " + languageNames[cfg.Lang] + " (built in; [invite] " + textKeys[k] + " in the config replaces it):\n\n" + builtinInvite(cfg.Lang, inviteKind(k)))
		}
		b.WriteString("\n\n")
	}
	b.WriteString("{name} is the person's first name (empty in a group), {address} your address (" + cfg.Address + ") or the room's, {uri} its xmpp: link, {link} the web page that opens it (" + cfg.Link + "). /invite <chat> sends it.")
	return b.String()
}

// parseAddress reads the address /moved records: a bare JID, or an xmpp:
// URI naming one (the owner may paste what the friend sent). A resource
// is dropped. problem says what is wrong, in words.
func parseAddress(s string) (string, string) {
	jid := s
	if len(s) > 5 && strings.EqualFold(s[:5], "xmpp:") {
		u, err := ParseURI(s)
		if err != nil {
			return "", "it is not an xmpp: link (" + err.Error() + ")"
		}
		jid = u.JID
	}
	jid, _, _ = strings.Cut(jid, "/")
	node, domain, ok := strings.Cut(jid, "@")
	switch {
	case !ok:
		return "", "it has no @"
	case node == "" || domain == "":
		return "", "it needs a name before the @ and a domain after it"
	case len(node) > 1023 || len(domain) > 1023:
		return "", "it is too long"
	case strings.ContainsAny(node, "\"&'/:<>@"):
		return "", "the part before the @ has a character XMPP addresses may not have"
	case strings.ContainsFunc(jid, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) || r == 0xFFFD }):
		return "", "it has spaces or control characters"
	}
	for label := range strings.SplitSeq(domain, ".") {
		if label == "" || strings.HasPrefix(label, "-") || strings.HasSuffix(label, "-") ||
			strings.ContainsFunc(label, func(r rune) bool {
				return r != '-' && !unicode.IsLetter(r) && !unicode.IsDigit(r) && !unicode.IsMark(r)
			}) {
			return "", "its domain " + strconv.Quote(short(domain, 40)) + " is not a host name"
		}
	}
	return node + "@" + strings.ToLower(domain), ""
}

func (c *Core) cmdMoved(args string) string {
	const usage = "/moved needs a chat and their XMPP address: /moved alice alice@example.org (/moved alice forget undoes it)."
	if args == "" {
		return usage
	}
	i := strings.LastIndexFunc(args, unicode.IsSpace)
	if _, err := c.resolveChat(args); i < 0 || err == nil {
		// Only a chat ("alice", or a whole name "Old Family"): what is
		// recorded.
		ch, problem := c.chatArg("moved", args)
		if problem != "" {
			return usage
		}
		inv, err := c.invite(ch)
		if err != nil {
			return "Could not look it up: " + c.storeProblem("read invitation", err)
		}
		if inv.Address == "" {
			return "/moved " + ch.Handle + " needs their XMPP address too: /moved " + ch.Handle + " alice@example.org."
		}
		return c.chatName(ch) + " is on XMPP as " + inv.Address + " (since " + day(inv.Moved) + "). /moved " + ch.Handle + " forget undoes it."
	}
	target, last := strings.TrimSpace(args[:i]), args[i+1:]
	forget := strings.EqualFold(last, "forget")
	addr, why := parseAddress(last)
	if !forget && why != "" {
		return "/moved: " + strconv.Quote(short(last, 60)) + " is not an XMPP address: " + why + ". Write it like alice@example.org."
	}
	ch, problem := c.chatArg("moved", target)
	if problem != "" {
		return problem
	}
	if ch.Kind != Direct && ch.Kind != Group {
		return c.chatName(ch) + " is not a person or a group."
	}
	inv, err := c.invite(ch)
	if err != nil {
		return "Not recorded: " + c.storeProblem("read invitation", err)
	}
	name := c.chatName(ch)
	if forget {
		if inv.Address == "" {
			return name + " was not recorded as on XMPP."
		}
		inv.Address, inv.Moved, inv.Offered = "", time.Time{}, false
		if err := c.st.PutInvite(inv); err != nil {
			return "Not forgotten: " + c.storeProblem("save invitation", err)
		}
		return "Forgot that " + name + " is on XMPP: no more reminders."
	}
	if strings.EqualFold(addr, c.cfg.Invite.Address) {
		return "/moved: " + addr + " is your own address. Give theirs: /moved " + ch.Handle + " alice@example.org."
	}
	if inv.Address == addr {
		return name + " is recorded as on XMPP as " + addr + " already."
	}
	inv.Address, inv.Moved, inv.Offered = addr, c.now(), false
	if err := c.st.PutInvite(inv); err != nil {
		return "Not recorded: " + c.storeProblem("save invitation", err)
	}
	return "Noted: " + name + " is on XMPP as " + addr + ". /chats marks them, their WhatsApp messages carry a reminder, and the next time you write to them here I offer " + directURI(ch, addr) + "."
}

func (c *Core) cmdInvites() string {
	all, err := c.st.Invites()
	if err != nil {
		return "Could not read the invitations: " + c.storeProblem("list invitations", err)
	}
	type row struct {
		ch  Chat
		inv Invite
	}
	var invited, uninvited []row
	friends, moved, groups, groupsMoved := 0, 0, 0, 0
	for _, inv := range all {
		ch, err := c.st.Chat(inv.Chat)
		if errors.Is(err, ErrNotFound) {
			continue
		} else if err != nil {
			return "Could not read the invitations: " + c.storeProblem("list invitations", err)
		}
		r := row{ch, inv}
		if len(inv.Sent) == 0 {
			uninvited = append(uninvited, r)
			continue
		}
		invited = append(invited, r)
		if ch.Kind == Group {
			groups++
			if inv.Address != "" {
				groupsMoved++
			}
		} else {
			friends++
			if inv.Address != "" {
				moved++
			}
		}
	}
	if len(invited)+len(uninvited) == 0 {
		return "Nobody invited yet. /invite <chat> sends a friend your XMPP address and where to get an app."
	}
	slices.SortStableFunc(invited, func(a, b row) int { return b.inv.Last().Compare(a.inv.Last()) })
	slices.SortStableFunc(uninvited, func(a, b row) int { return b.inv.Moved.Compare(a.inv.Moved) })
	var lines []string
	if friends > 0 {
		lines = append(lines, fmt.Sprintf("%d of %d invited %s on XMPP.", moved, friends, plural(friends, "friend is", "friends are")))
	}
	if groups > 0 {
		lines = append(lines, fmt.Sprintf("%d of %d invited %s on XMPP.", groupsMoved, groups, plural(groups, "group is", "groups are")))
	}
	shown := 0
	line := func(r row) string {
		l := "  " + r.ch.Handle + " — " + c.chatName(r.ch)
		if r.ch.Kind == Group {
			l += " (group)"
		}
		if n := len(r.inv.Sent); n == 1 {
			l += ": invited " + day(r.inv.Last())
		} else if n > 1 {
			l += ": invited " + strconv.Itoa(n) + " times, last " + day(r.inv.Last())
		}
		if r.inv.Address != "" {
			sep := "; "
			if len(r.inv.Sent) == 0 {
				sep = ": "
			}
			l += sep + "on XMPP as " + r.inv.Address
		}
		return l
	}
	for _, r := range invited {
		if shown < 30 {
			lines = append(lines, line(r))
		}
		shown++
	}
	if len(uninvited) > 0 {
		lines = append(lines, "On XMPP without an invitation:")
		for _, r := range uninvited {
			if shown < 30 {
				lines = append(lines, line(r))
			}
			shown++
		}
	}
	if shown > 30 {
		lines = append(lines, fmt.Sprintf("… and %d more.", shown-30))
	}
	return strings.Join(lines, "\n")
}

// movedTo is the address ch moved to, "" if none (or it cannot be read:
// a reminder is not worth failing a relay for).
func (c *Core) movedTo(ch Chat) string {
	inv, err := c.st.Invite(ch.ID)
	if err != nil {
		if !errors.Is(err, ErrNotFound) {
			c.log.Warn("read invitation", "err", err)
		}
		return ""
	}
	return inv.Address
}

// reminder is the line a relayed message of ch ends with when ch moved.
func (c *Core) reminder(ch Chat) string {
	if addr := c.movedTo(ch); addr != "" {
		return "\n" + reminderPrefix + directURI(ch, addr)
	}
	return ""
}

// dropReminder removes the reminder line from a quote of a relayed message.
func dropReminder(s string) string {
	lines := strings.Split(s, "\n")
	out := lines[:0]
	for _, l := range lines {
		if !strings.HasPrefix(strings.TrimSpace(l), reminderPrefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// offerDirect tells the owner, once, who writes to a chat that moved that
// they could write there directly.
func (c *Core) offerDirect(ch Chat) {
	inv, err := c.st.Invite(ch.ID)
	if err != nil || inv.Address == "" || inv.Offered {
		if err != nil && !errors.Is(err, ErrNotFound) {
			c.log.Warn("read invitation", "err", err)
		}
		return
	}
	inv.Chat, inv.Offered = ch.ID, true
	if err := c.st.PutInvite(inv); err != nil {
		c.log.Warn("save invitation", "err", err)
		return
	}
	c.say(c.chatName(ch) + " is on XMPP: write to them there directly, " + directURI(ch, inv.Address) + " (I say this once).")
}
