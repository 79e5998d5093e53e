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

// This file holds the owner's commands (see the package doc), typed in the bot
// conversation ("/to alice") or run as XEP-0050 ad-hoc commands.

// parseCommand splits "/Name args" or "!Name args" into the lower-cased
// name and the trimmed arguments. ok is false for anything that is not a
// command, including the escapes "//text" (which sends "/text") and
// "!!text" (which sends "!text"). "!" starts a command only before a
// letter: "!!!" and "! wow" are text.
func parseCommand(body string) (name, args string, ok bool) {
	switch {
	case strings.HasPrefix(body, "/") && !strings.HasPrefix(body, "//"):
	case len(body) > 1 && body[0] == '!' && asciiLetter(body[1]):
	default:
		return "", "", false
	}
	rest := body[1:]
	i := strings.IndexFunc(rest, unicode.IsSpace)
	if i < 0 {
		i = len(rest)
	}
	name = strings.ToLower(rest[:i])
	args = strings.TrimSpace(rest[i:])
	return name, args, true
}

// command runs one command, typed in the chat or as an XEP-0050 ad-hoc
// command, and returns its answer.
func (c *Core) command(ctx context.Context, name, args string) string {
	name = strings.ToLower(strings.TrimLeft(strings.TrimSpace(name), "/!"))
	args = strings.TrimSpace(args)
	switch name {
	case "help", "?":
		return c.help()
	case "chats":
		return c.cmdChats(args)
	case "to":
		return c.cmdTo(ctx, args)
	case "msg":
		return c.cmdMsg(ctx, args)
	case "new":
		return c.cmdNew(ctx, args)
	case "find":
		return c.cmdFind(args)
	case "history":
		return c.cmdHistory(ctx, args)
	case "mute":
		return c.cmdMute(args)
	case "unmute":
		return c.cmdUnmute(args)
	case "status":
		return c.cmdStatus()
	case "pair":
		return c.cmdPair(ctx, args)
	case "logout":
		return c.cmdLogout(ctx, args)
	case "cancel":
		return c.cmdCancel()
	case "invite":
		return c.cmdInvite(ctx, args)
	case "moved":
		return c.cmdMoved(args)
	case "invites":
		return c.cmdInvites()
	case "room":
		return c.cmdRoom(ctx, args)
	case "rooms":
		return c.cmdRooms()
	case "":
		return "A lone / is not a command. /help lists the commands."
	}
	return c.unknownCommand(short(name, 30))
}

// chatArg resolves a command's chat argument, or says what is wrong.
func (c *Core) chatArg(cmd, arg string) (Chat, string) {
	if arg == "" {
		return Chat{}, "/" + cmd + " needs a chat: /" + cmd + " alice (/chats lists the handles)."
	}
	ch, err := c.resolveChat(arg)
	if errors.Is(err, ErrNotFound) {
		return Chat{}, "No chat " + strconv.Quote(arg) + ". /chats lists them, /find <name> searches, /new <+number> starts one."
	}
	var amb ambiguous
	if errors.As(err, &amb) {
		var names []string
		for _, a := range amb {
			names = append(names, c.chatName(a)+" ("+a.Handle+")")
		}
		return Chat{}, strconv.Quote(arg) + " could be " + strings.Join(names, " or ") + ". Name it by the handle in brackets, or by its whole name."
	}
	if err != nil {
		return Chat{}, "Could not look up " + strconv.Quote(arg) + ": " + c.storeProblem("resolve chat", err)
	}
	return ch, ""
}

func (c *Core) currentChat() (ChatID, bool) {
	cur, ok, err := c.st.Route()
	if err != nil || !ok {
		return "", false
	}
	return ChatID(cur), true
}

func (c *Core) cmdChats(filter string) string {
	chats, err := c.st.Chats()
	if err != nil {
		return "Could not read the chats: " + c.storeProblem("list chats", err)
	}
	cur, _ := c.currentChat()
	now := c.now()
	onXMPP := map[string]bool{}
	if invs, err := c.st.Invites(); err != nil {
		c.log.Warn("list invitations", "err", err)
	} else {
		for _, inv := range invs {
			onXMPP[inv.Chat] = inv.Address != ""
		}
	}
	f := strings.ToLower(filter)
	var lines []string
	total := 0
	for _, ch := range chats {
		if ch.Kind == StatusChat {
			continue
		}
		name := c.chatName(ch)
		if f != "" && !strings.Contains(strings.ToLower(name), f) && !strings.Contains(ch.Handle, f) {
			continue
		}
		total++
		if len(lines) == 30 {
			continue
		}
		mark := "  "
		if ChatID(ch.ID) == cur {
			mark = "→ "
		}
		l := mark + ch.Handle + " — " + name
		if ch.Kind == Group {
			l += " (group)"
		}
		if muted(ch, now) {
			l += " (muted " + formatUntil(ch.MutedUntil, now) + ")"
		}
		if onXMPP[ch.ID] {
			l += " (on XMPP)"
		}
		lines = append(lines, l)
	}
	if total == 0 {
		if f != "" {
			return "No chat matches " + strconv.Quote(filter) + ". /find <name> searches contacts too."
		}
		return "No chats yet. They appear as messages arrive; /new <+number> starts one."
	}
	out := strings.Join(lines, "\n")
	if total > len(lines) {
		out += fmt.Sprintf("\n… and %d more: /chats <filter> narrows the list.", total-len(lines))
	}
	return out
}

func (c *Core) cmdTo(ctx context.Context, args string) string {
	if strings.ContainsAny(args, " \t\n") {
		// A chat's whole name ("Old Family") is fine; anything else is
		// a text meant for /msg.
		if _, err := c.resolveChat(args); err != nil {
			return "/to takes one chat: /to alice. To send a text once, use /msg alice <text>."
		}
	}
	ch, problem := c.chatArg("to", args)
	if problem != "" {
		return problem
	}
	if len(c.route.Held) > 0 {
		return c.releaseTold(ctx, ChatID(ch.ID))
	}
	return c.setCurrent(ch)
}

// setCurrent makes ch the current chat and returns what to tell the owner.
func (c *Core) setCurrent(ch Chat) string {
	if err := c.st.SetRoute(ch.ID); err != nil {
		return "Could not set the chat: " + c.storeProblem("set current chat", err)
	}
	c.elsewhere = false
	if len(c.route.Since) > 0 {
		c.route.Since = nil
		if err := c.saveRoute(); err != nil {
			return "Could not set the chat: " + c.storeProblem("save routing state", err)
		}
	}
	return "→ " + c.chatName(ch) + " (" + ch.Handle + "): plain messages go there now."
}

// releaseTold releases the held messages to chat for a command, and
// returns everything to tell the owner (what waits for WhatsApp too), in
// one answer.
func (c *Core) releaseTold(ctx context.Context, chat ChatID) string {
	var notes []string
	c.collect = &notes
	text, err := c.release(ctx, chat)
	c.collect = nil
	if err != nil {
		text = "Not sent yet: " + c.storeProblem("release held messages", err) + " They stay held."
	}
	return strings.Join(append([]string{text}, notes...), "\n")
}

// cmdMsg serves /msg as an ad-hoc command (in the chat, decide routes it).
func (c *Core) cmdMsg(ctx context.Context, args string) string {
	out := decide(routeIn{Body: "/msg " + args, Resolve: c.resolveForRoute})
	switch out.Action {
	case actSend:
	case actHold: // the chat's name is ambiguous
		target, _, _ := strings.Cut(args, " ")
		_, problem := c.chatArg("msg", target)
		return "Not sent: " + problem
	default:
		return out.Problem
	}
	var notes []string
	c.collect = &notes
	err := c.deliver(ctx, out.Chat, draft{Body: out.Text, Time: c.now()})
	if err == nil {
		err = c.wrote(out.Chat)
	}
	c.collect = nil
	if err != nil {
		return "Not sent: " + c.storeProblem("send", err)
	}
	if len(notes) > 0 {
		return strings.Join(notes, "\n")
	}
	return "Sent to " + c.chatNameOf(out.Chat) + "."
}

// normNumber reads "+49 170 123-4567" as "491701234567", and "+49 (0)170
// …" (the trunk 0 in brackets, as numbers are often written) without it.
func normNumber(s string) (string, bool) {
	s = strings.TrimSpace(s)
	if !strings.HasPrefix(s, "+") {
		return "", false
	}
	s = strings.ReplaceAll(s, "(0)", "")
	var b strings.Builder
	for _, r := range s[1:] {
		switch {
		case r >= '0' && r <= '9':
			b.WriteRune(r)
		case r == ' ' || r == '-' || r == '(' || r == ')' || r == '.':
		default:
			return "", false
		}
	}
	n := b.String()
	return n, len(n) >= 6 && len(n) <= 15
}

func (c *Core) cmdNew(ctx context.Context, args string) string {
	num, ok := normNumber(args)
	if !ok {
		return "/new needs a phone number with country code: /new +491701234567."
	}
	wctx, cancel := waCtx(ctx)
	defer cancel()
	id, on, err := c.wa.Lookup(wctx, "+"+num)
	if err != nil {
		return "Could not look up +" + num + ": " + c.waProblem("look up number", err) + "."
	}
	if !on {
		return "+" + num + " is not on WhatsApp."
	}
	ch, err := c.chat(ChatID(bareUser(id)), "")
	if err != nil {
		return "Could not start the chat: " + c.storeProblem("start chat", err)
	}
	if len(c.route.Held) > 0 {
		return "Chat " + c.chatName(ch) + " (" + ch.Handle + ") is ready. Held messages still wait for your answer; /to " + ch.Handle + " sends them there."
	}
	return c.setCurrent(ch)
}

func (c *Core) cmdFind(args string) string {
	if args == "" {
		return "/find needs part of a name: /find ali."
	}
	q := strings.ToLower(args)
	chats, err := c.st.Chats()
	if err != nil {
		return "Could not read the chats: " + c.storeProblem("list chats", err)
	}
	var lines []string
	inChat := map[string]bool{}
	for _, ch := range chats {
		inChat[ch.ID] = true
		if ch.Kind == StatusChat {
			continue
		}
		name := c.chatName(ch)
		if strings.Contains(strings.ToLower(name), q) || strings.Contains(ch.Handle, q) {
			lines = append(lines, ch.Handle+" — "+name)
		}
	}
	var contacts []string
	listed := map[string]bool{} // a person known by LID and number is one
	for u, p := range c.people {
		if inChat[string(u)] || (p.Phone != "" && inChat[string(p.Phone)]) {
			continue
		}
		n := c.name(u)
		ph := phoneOf(u)
		if ph == "" {
			ph = phoneOf(p.Phone)
		}
		if ph == "" || listed[ph] || !strings.Contains(strings.ToLower(n), q) {
			continue
		}
		listed[ph] = true
		contacts = append(contacts, n+": /new "+ph)
	}
	sortStrings(contacts)
	lines = append(lines, contacts...)
	if len(lines) == 0 {
		return "Nothing matches " + strconv.Quote(args) + ". /new <+number> starts a chat with a number."
	}
	if len(lines) > 20 {
		lines = append(lines[:20], fmt.Sprintf("… and %d more.", len(lines)-20))
	}
	return strings.Join(lines, "\n")
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

func (c *Core) cmdHistory(ctx context.Context, args string) string {
	fields := strings.Fields(args)
	if len(fields) == 0 || len(fields) > 2 {
		return "/history needs a chat and, optionally, how many messages: /history alice 50."
	}
	n := 20
	if len(fields) == 2 {
		v, err := strconv.Atoi(fields[1])
		if err != nil || v < 1 || v > 200 {
			return "/history: " + strconv.Quote(fields[1]) + " is not a count from 1 to 200: /history alice 50."
		}
		n = v
	}
	ch, problem := c.chatArg("history", fields[0])
	if problem != "" {
		return problem
	}
	before, ok := c.anchorOf(ch)
	if !ok {
		return "No message of " + c.chatName(ch) + " has come through waxmpp yet, so there is nothing to ask for history before. Try again after its next message."
	}
	wctx, cancel := waCtx(ctx)
	defer cancel()
	if err := c.wa.RequestHistory(wctx, before, n); err != nil {
		return "Could not ask for history: " + c.waProblem("request history", err) + "."
	}
	return fmt.Sprintf("Asked your phone for up to %d earlier messages of %s; they arrive marked as old. The phone must be online.", n, c.chatName(ch))
}

// parseMuteDuration reads "8h", "30m", "2d", "1w", or Go durations.
func parseMuteDuration(s string) (time.Duration, bool) {
	s = strings.ToLower(strings.TrimSpace(s))
	if len(s) >= 2 {
		unit := s[len(s)-1]
		if n, err := strconv.Atoi(s[:len(s)-1]); err == nil && n > 0 && n <= 3650 {
			switch unit {
			case 'd':
				return time.Duration(n) * 24 * time.Hour, true
			case 'w':
				if n <= 520 {
					return time.Duration(n) * 7 * 24 * time.Hour, true
				}
			}
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < time.Minute || d > 10*365*24*time.Hour {
		return 0, false
	}
	return d, true
}

// forever is the mute end of "/mute chat" without a duration: far enough,
// and still within the store's time encoding (nanoseconds since 1970).
var forever = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)

func (c *Core) cmdMute(args string) string {
	fields := strings.Fields(args)
	if len(fields) == 0 || len(fields) > 2 {
		return "/mute needs a chat and, optionally, how long: /mute family 8h (or 30m, 2d, 1w)."
	}
	until := forever
	if len(fields) == 2 {
		d, ok := parseMuteDuration(fields[1])
		if !ok {
			return "/mute: " + strconv.Quote(fields[1]) + " is not a duration: use 30m, 8h, 2d or 1w, or nothing for until /unmute."
		}
		until = c.now().Add(d)
	}
	ch, problem := c.chatArg("mute", fields[0])
	if problem != "" {
		return problem
	}
	ch.MutedUntil = until
	if _, err := c.st.PutChat(ch); err != nil {
		return "Could not mute: " + c.storeProblem("mute", err)
	}
	// A muted chat does not count as having spoken.
	if i := slices.IndexFunc(c.route.Since, func(id ChatID) bool { return c.canonicalChat(id) == ChatID(ch.ID) }); i >= 0 {
		c.route.Since = slices.Delete(slices.Clone(c.route.Since), i, i+1)
		if err := c.saveRoute(); err != nil {
			return "Muted, but: " + c.storeProblem("save routing state", err)
		}
	}
	return "Muted " + c.chatName(ch) + " " + formatUntil(until, c.now()) + ". /unmute " + ch.Handle + " relays it again."
}

func (c *Core) cmdUnmute(args string) string {
	if strings.ContainsAny(args, " \t\n") {
		return "/unmute takes one chat: /unmute family."
	}
	var ch Chat
	if args == "" {
		cur, ok := c.currentChat()
		if !ok {
			return "/unmute needs a chat: /unmute family."
		}
		var err error
		if ch, err = c.st.Chat(string(cur)); err != nil {
			return "/unmute needs a chat: /unmute family."
		}
	} else {
		var problem string
		if ch, problem = c.chatArg("unmute", args); problem != "" {
			return problem
		}
	}
	if !muted(ch, c.now()) {
		return c.chatName(ch) + " is not muted."
	}
	ch.MutedUntil = time.Time{}
	if _, err := c.st.PutChat(ch); err != nil {
		return "Could not unmute: " + c.storeProblem("unmute", err)
	}
	return "Relaying " + c.chatName(ch) + " again."
}

func (c *Core) cmdStatus() string {
	now := c.now()
	var b strings.Builder
	v := c.cfg.Version
	if v == "" {
		v = "(unknown version)"
	}
	b.WriteString("waxmpp " + v + "\n")
	b.WriteString("WhatsApp: ")
	if !c.statusSeen {
		b.WriteString("starting")
	} else {
		s := c.status
		switch s.State {
		case Connected:
			b.WriteString("connected")
		case Disconnected:
			b.WriteString("reconnecting")
		case LoggedOut:
			b.WriteString("logged out — send /pair")
		case NotPaired:
			b.WriteString("not linked — send /pair")
		case StreamReplaced:
			b.WriteString("taken over by another client")
		case Outdated:
			b.WriteString("this version was rejected — update waxmpp")
		case TempBanned:
			b.WriteString("temporarily banned until " + s.Until.Local().Format("Mon 2 Jan 15:04"))
		case PhoneOffline:
			b.WriteString("connected, phone offline")
		case Banned:
			b.WriteString("banned by WhatsApp")
		default:
			b.WriteString("state " + strconv.Itoa(int(s.State)))
		}
		if s.Reason != "" {
			b.WriteString(" (" + s.Reason + ")")
		}
		if !s.PhoneLastSeen.IsZero() {
			b.WriteString("; phone last seen " + ago(now, s.PhoneLastSeen))
		}
	}
	if n := len(c.cfg.Events); n > 0 {
		fmt.Fprintf(&b, "; %d %s waiting to be relayed", n, plural(n, "event", "events"))
	}
	b.WriteString("\nXMPP: ")
	if st, err := c.x.Stats(); err != nil {
		c.log.Warn("xmpp stats", "err", err)
		b.WriteString("unknown (see the log)")
	} else {
		if st.Connected {
			b.WriteString("connected")
		} else {
			b.WriteString("reconnecting")
		}
		fmt.Fprintf(&b, "; %d queued, %d awaiting confirmation", st.Queued, st.Unconfirmed)
		if st.Lag > 0 {
			b.WriteString(", oldest waiting " + st.Lag.Round(time.Second).String())
		}
		fmt.Fprintf(&b, "; %d reconnects", st.Reconnects)
		if st.Dropped > 0 {
			fmt.Fprintf(&b, ", %d dropped chat states", st.Dropped)
		}
		if st.Caveat != "" {
			// What the bot's server cannot promise (the XMPP side says).
			b.WriteString("\nNote: " + strings.ToUpper(st.Caveat[:1]) + st.Caveat[1:] + ".")
		}
	}
	if m := c.mediaStatus(); m != "" {
		b.WriteString("\n" + m)
	}
	b.WriteString("\nCurrent chat: ")
	if cur, ok := c.currentChat(); ok {
		b.WriteString(c.chatNameOf(cur))
	} else {
		b.WriteString("none (/to <chat>)")
	}
	if n := len(c.route.Held); n > 0 {
		fmt.Fprintf(&b, "; %d held %s waiting for your answer", n, plural(n, "message", "messages"))
	}
	if n := len(c.route.Pending); n > 0 {
		fmt.Fprintf(&b, "; %d %s waiting for WhatsApp", n, plural(n, "message", "messages"))
	}
	if c.stuckEvent != nil || c.stuckOwner != nil {
		b.WriteString("\nPaused: waxmpp cannot save what it relays (its disk is full or failing?); it goes on when it can.")
	}
	if d := doctorStatus(c.cfg.Doctor); d != "" {
		b.WriteString("\n" + d)
	}
	return b.String()
}

func (c *Core) cmdPair(ctx context.Context, args string) string {
	phone := ""
	if args != "" {
		num, ok := normNumber(args)
		if !ok {
			return "/pair takes nothing (QR code) or your phone number with country code: /pair +491701234567."
		}
		phone = "+" + num
	}
	// Pair only starts the pairing (the steps come as events); it gets the
	// core's context, not a short timeout, so that the pairing outlives it.
	c.stopQR()
	c.qrShown = 0
	err := c.wa.Pair(ctx, phone)
	switch {
	case errors.Is(err, ErrAlreadyPaired):
		return "WhatsApp is already linked. /logout first to link another phone."
	case err != nil:
		return "Could not start linking: " + c.waProblem("pair", err) + "."
	}
	if phone != "" {
		return "Linking to " + phone + ": a code to enter on the phone follows."
	}
	return "Linking: a QR code follows. Scan it with WhatsApp → Settings → Linked devices → Link a device."
}

func (c *Core) cmdLogout(ctx context.Context, args string) string {
	if strings.ToLower(args) != "yes" {
		return "This unlinks waxmpp from your WhatsApp; nothing is relayed until you /pair again. Send /logout yes to do it."
	}
	wctx, cancel := waCtx(ctx)
	defer cancel()
	if err := c.wa.Logout(wctx); err != nil {
		return "Could not log out: " + c.waProblem("logout", err) + "."
	}
	return "Logged out of WhatsApp. /pair links again."
}

func (c *Core) cmdCancel() string {
	n := len(c.route.Held) + len(c.route.Pending)
	if n == 0 {
		return "Nothing is held."
	}
	old := c.route
	c.route.Held, c.route.Question, c.route.Handles, c.route.Pending = nil, nil, false, nil
	if err := c.saveRoute(); err != nil {
		c.route = old
		return "Nothing dropped: " + c.storeProblem("save routing state", err)
	}
	return fmt.Sprintf("Dropped %d held %s.", n, plural(n, "message", "messages"))
}
