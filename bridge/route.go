package bridge

import (
	"slices"
	"strconv"
	"strings"
	"unicode"
)

// This file holds the routing decision (the package doc's "Routing what the
// owner writes") as a pure function, so that it can be tested and fuzzed
// without a store or a network: the core gathers the facts (routeIn),
// decide says what to do (routeOut), and the core does it.

// maxCandidates is how many chats one hold adds to a "Send to 1) … 2) …?"
// question; maxQuestion is how many a question offers in all.
const (
	maxCandidates = 5
	maxQuestion   = 9
)

// routeAction is what decide tells the core to do with an owner's message.
type routeAction int

const (
	actSend    routeAction = iota + 1 // send Text to Chat (as a reply to Quote if set)
	actHold                           // hold the message and ask (Candidates; none: say how to pick)
	actAnswer                         // the message answers the question: release the held messages to Chat
	actCommand                        // a command other than /msg: the command layer handles it
	actReject                         // tell the owner Problem; nothing is sent or held
)

func (a routeAction) String() string {
	return [...]string{"?", "send", "hold", "answer", "command", "reject"}[max(0, min(int(a), 5))]
}

// routeIn is what the core knows when the owner writes a message.
type routeIn struct {
	Body string
	// ReplyTo is the XEP-0461 id the owner replied to, and Reply the
	// relayed message it names (nil when the id is unknown). ToQuestion
	// is set when ReplyTo is one of the bot's "Send to…?" questions.
	ReplyTo    string
	Reply      *MsgLink
	ToQuestion bool
	// Recent are recently relayed messages (all chats), newest first,
	// whose excerpts a "> " quote is matched against.
	Recent []MsgLink
	// Current is the current chat ("" none); Since the other chats that
	// relayed a message since the owner last wrote to it, most recent first.
	Current ChatID
	Since   []ChatID
	// Question holds the numbered candidates of the pending question
	// while messages are held: number n names Question[n-1].
	Question []ChatID
	// Held is true while messages are held (Question may be empty when
	// there was nothing to choose from).
	Held bool
	// Resolve names a chat by handle (or the other forms resolveChat
	// accepts): the chat, or the chats the name could mean when it is
	// ambiguous (a handle of one, the name of another), or neither.
	Resolve func(name string) (ChatID, []ChatID)
}

// routeOut is decide's answer.
type routeOut struct {
	Action     routeAction
	Chat       ChatID
	Text       string
	Quote      *MsgLink // send as a WhatsApp reply to this message
	Candidates []ChatID // for actHold: what to offer, in order
	Handles    bool     // for actHold: the candidates were named ambiguously; show their handles
	Problem    string   // for actReject: one line for the owner
	Rule       string   // which rule decided, for logs and tests
}

const (
	problemNothingAfterQuote = "Not sent: there is nothing after the quote. Write your answer below the quoted line."
	problemNothingHeld       = "Nothing is held: that question was answered already."
)

// decide applies the routing rules in order: a command, an XEP-0461
// reply, a "> " quote, the answer to a pending question, then plain text
// to the current chat only when no other chat spoke since the owner last
// wrote to it. It never guesses: when in doubt it holds. A command (a body
// starting with one "/") is a command even when sent as a reply.
func decide(in routeIn) routeOut {
	body := in.Body
	// Commands first, even in a reply or with a quote-less body: "/mute"
	// typed as a reply must not reach the chat as text. /msg is a rule.
	if name, args, ok := parseCommand(body); ok {
		if name != "msg" {
			return routeOut{Action: actCommand, Rule: "command"}
		}
		target, text, _ := strings.Cut(args, " ")
		text = strings.TrimLeft(text, " ")
		if target == "" || strings.TrimSpace(text) == "" {
			return routeOut{Action: actReject, Rule: "msg", Problem: "/msg needs a chat and a text: /msg alice see you at 8 (/chats lists the chats)."}
		}
		chat, maybe := in.resolve(target)
		switch {
		case chat != "":
			return routeOut{Action: actSend, Rule: "msg", Chat: chat, Text: text}
		case len(maybe) > 0:
			// A handle of one chat and the name of another: ask.
			return routeOut{Action: actHold, Rule: "msg", Text: text, Candidates: maybe[:min(len(maybe), maxCandidates)], Handles: true}
		}
		return routeOut{Action: actReject, Rule: "msg", Problem: "Not sent: no chat " + strconv.Quote(target) + ". /chats lists them, /find <name> searches, /new <+number> starts one."}
	}
	body, _ = unescapeText(body) // "//x" sends "/x", "!!x" sends "!x"
	// 1. An XEP-0461 reply names its chat; a reply to the bot's question
	// answers it.
	if in.ReplyTo != "" {
		if in.ToQuestion {
			return answer(in, body, "reply")
		}
		if in.Reply == nil || in.Reply.WA.Chat == "" {
			return routeOut{Action: actReject, Rule: "reply", Problem: "Not sent: I don't know which chat the message you replied to belongs to. Use /msg <chat> <text>."}
		}
		if strings.TrimSpace(body) == "" {
			return routeOut{Action: actReject, Rule: "reply", Problem: "Not sent: the reply is empty."}
		}
		var q *MsgLink
		if in.Reply.WA.ID != "" {
			q = in.Reply
		}
		return routeOut{Action: actSend, Rule: "reply", Chat: ChatID(in.Reply.WA.Chat), Text: body, Quote: q}
	}
	// 2. A "> " quote of a recently relayed message, or of the question.
	if quote, rest, ok := splitQuote(body); ok {
		if isQuestion(quote) {
			return answer(in, rest, "quote")
		}
		chats, match := matchQuote(quote, in.Recent)
		if len(chats) > 0 && strings.TrimSpace(rest) == "" {
			return routeOut{Action: actReject, Rule: "quote", Problem: problemNothingAfterQuote}
		}
		switch {
		case len(chats) == 1:
			return routeOut{Action: actSend, Rule: "quote", Chat: chats[0], Text: rest, Quote: match}
		case len(chats) > 1:
			// The same words were said in several chats: ask.
			return routeOut{Action: actHold, Rule: "quote", Text: body, Candidates: chats[:min(len(chats), maxCandidates)]}
		}
		// The quote matches nothing relayed: it still means "that
		// message", which is unknown. Ask, as for plain text that
		// cannot go to the current chat.
		return routeOut{Action: actHold, Rule: "quote", Text: body, Candidates: plainCandidates(in)}
	}
	// The answer to a pending question.
	if in.Held {
		if out, ok := tryAnswer(in, body); ok {
			return out
		}
	}
	if strings.TrimSpace(body) == "" {
		return routeOut{Action: actReject, Rule: "plain", Problem: "Not sent: the message is empty."}
	}
	// 4. Plain text: the current chat, only if nobody else spoke since.
	if !in.Held && in.Current != "" && len(in.Since) == 0 {
		return routeOut{Action: actSend, Rule: "current", Chat: in.Current, Text: body}
	}
	return routeOut{Action: actHold, Rule: "plain", Text: body, Candidates: plainCandidates(in)}
}

// plainCandidates are the chats a held plain message may be for: the
// current chat, then those that spoke since, most recent first.
func plainCandidates(in routeIn) []ChatID {
	var cands []ChatID
	add := func(c ChatID) {
		if c != "" && len(cands) < maxCandidates && !slices.Contains(cands, c) {
			cands = append(cands, c)
		}
	}
	add(in.Current)
	for _, c := range in.Since {
		add(c)
	}
	return cands
}

// answer treats text as the owner's answer to the question (they replied
// to it or quoted it): it must be one.
func answer(in routeIn, text, rule string) routeOut {
	if !in.Held {
		return routeOut{Action: actReject, Rule: rule, Problem: problemNothingHeld}
	}
	if out, ok := tryAnswer(in, text); ok {
		return out
	}
	return routeOut{Action: actReject, Rule: rule, Problem: answerProblem(in)}
}

// tryAnswer reads body as the answer to the pending question: a number
// the question offered, or a chat's handle. ok is false when body is no
// answer at all (then it is text, held like the rest).
func tryAnswer(in routeIn, body string) (routeOut, bool) {
	a := strings.TrimSpace(body)
	if n, ok := parseAnswer(a); ok {
		if n >= 1 && n <= len(in.Question) {
			return routeOut{Action: actAnswer, Rule: "answer", Chat: in.Question[n-1]}, true
		}
		if len(in.Question) > 0 {
			return routeOut{Action: actReject, Rule: "answer", Problem: answerProblem(in)}, true
		}
	}
	if a != "" && !strings.ContainsAny(a, " \n\t") {
		chat, maybe := in.resolve(strings.TrimPrefix(a, "@"))
		if chat != "" {
			return routeOut{Action: actAnswer, Rule: "answer", Chat: chat}, true
		}
		if len(maybe) > 0 {
			return routeOut{Action: actReject, Rule: "answer", Problem: strconv.Quote(a) + " names more than one chat. Answer with the question's number, or a handle from /chats."}, true
		}
	}
	return routeOut{}, false
}

func answerProblem(in routeIn) string {
	if len(in.Question) == 0 {
		return "Answer with a chat's handle (/chats lists them); /cancel drops the held messages."
	}
	return "Answer a number from 1 to " + strconv.Itoa(len(in.Question)) + ", or a chat's handle; /cancel drops the held message."
}

// parseAnswer reads a question's number as people and clients write it:
// "2", "2.", "2)", "(2)", "#2", the keycap emoji "2️⃣".
func parseAnswer(s string) (int, bool) {
	s = strings.TrimSpace(s)
	s = strings.TrimSuffix(s, "\u20e3") // keycap
	s = strings.TrimSuffix(s, "\ufe0f")
	s = strings.TrimPrefix(s, "#")
	if strings.HasPrefix(s, "(") {
		s = strings.TrimSuffix(s[1:], ")")
	}
	s = strings.TrimSuffix(strings.TrimSuffix(s, "."), ")")
	s = strings.TrimSpace(s)
	if !isDigits(s) {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	return n, err == nil
}

// isQuestion reports whether a quote is of one of the bot's "which chat?"
// questions (Monal and Siskin answer by quoting).
func isQuestion(quote string) bool {
	q := normQuote(quote)
	if i := strings.Index(q, " held messages: "); i > 0 && isDigits(q[:i]) {
		q = q[i+len(" held messages: "):]
	}
	return strings.HasPrefix(q, "Send to 1) ") || strings.HasPrefix(q, "Not sent yet — ")
}

func (in routeIn) resolve(name string) (ChatID, []ChatID) {
	if in.Resolve == nil || name == "" {
		return "", nil
	}
	return in.Resolve(name)
}

func isDigits(s string) bool {
	if s == "" || len(s) > 3 {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// splitQuote splits a body that starts with "> " quote lines (XEP-0393
// block quotes, as Conversations, Siskin and Monal write replies) into the
// quoted text and the rest.
func splitQuote(body string) (quote, rest string, ok bool) {
	if !strings.HasPrefix(body, ">") {
		return "", "", false
	}
	lines := strings.Split(body, "\n")
	var q []string
	i := 0
	for ; i < len(lines); i++ {
		l := lines[i]
		if !strings.HasPrefix(l, ">") {
			break
		}
		l = strings.TrimPrefix(l, ">")
		l = strings.TrimPrefix(l, " ")
		q = append(q, l)
	}
	quote = strings.Join(q, "\n")
	if strings.TrimSpace(quote) == "" {
		return "", "", false
	}
	rest = strings.Join(lines[i:], "\n")
	rest = strings.TrimLeft(rest, "\n")
	return quote, strings.TrimRight(rest, "\n "), true
}

// matchQuote finds the relayed messages whose text the quote is (the start
// of). It returns the distinct chats that match, most recent first, and the
// newest matching message. Both sides are compared as the owner reads them:
// without the bot's header (styled or plain), without nested quote lines (a relayed reply
// carries the quoted message's text), and with XEP-0393 markers and
// whitespace folded.
func matchQuote(quote string, recent []MsgLink) ([]ChatID, *MsgLink) {
	q := normQuote(stripHeader(dropQuoteLines(dropReminder(quote))))
	// Lines may have been relayed with a plain header ("Alice: hello"):
	// the quote matches with that removed too.
	qp := normQuote(stripPlainHeader(dropQuoteLines(dropReminder(quote))))
	if q == "" && qp == "" {
		return nil, nil
	}
	var chats []ChatID
	var first *MsgLink
	for i := range recent {
		m := &recent[i]
		if !relayedLine(*m) {
			continue // only what the bot relayed can be quoted
		}
		e := normQuote(dropQuoteLines(m.Excerpt))
		cut := len(m.Excerpt) >= maxExcerptMatch
		if e == "" || !(q != "" && quoteMatches(q, e, cut) || qp != "" && qp != q && quoteMatches(qp, e, cut)) {
			continue
		}
		if first == nil {
			first = m
		}
		if c := ChatID(m.WA.Chat); !slices.Contains(chats, c) {
			chats = append(chats, c)
		}
	}
	return chats, first
}

// relayedLine reports whether l is a line the bot relayed (a message or a
// note about a chat): the map also holds what the owner wrote, and muted
// messages that were never shown.
func relayedLine(l MsgLink) bool {
	return l.WA.Chat != "" && strings.HasPrefix(l.XMPPID, relayPrefix)
}

// quoteMatches reports whether quote q (normalized) quotes excerpt e
// (normalized): the whole text, a start of at least 8 characters (clients
// shorten long quotes), or, when the excerpt was cut, a text that starts
// with it.
func quoteMatches(q, e string, cut bool) bool {
	if q == e {
		return true
	}
	if len([]rune(q)) >= 8 && strings.HasPrefix(e, q) {
		return true
	}
	return cut && strings.HasPrefix(q, e)
}

// maxExcerptMatch is a little under the excerpt size (160 bytes, cut on a
// character boundary): an excerpt this long may be cut.
const maxExcerptMatch = 150

// dropQuoteLines removes the lines that are themselves quotes ("> …"):
// the bot puts the quoted text before a reply, and clients nest it when
// they quote that reply.
func dropQuoteLines(s string) string {
	if !strings.Contains(s, ">") {
		return s
	}
	lines := strings.Split(s, "\n")
	out := lines[:0]
	for _, l := range lines {
		if !strings.HasPrefix(strings.TrimLeft(l, " "), ">") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// normQuote folds the differences clients make when quoting: whitespace
// runs, a trailing ellipsis, XEP-0393 markers.
func normQuote(s string) string {
	s = strings.TrimSpace(s)
	s = strings.TrimSuffix(s, "…")
	s = strings.TrimSuffix(s, "...")
	s = strings.Map(func(r rune) rune {
		switch r {
		case '*', '_', '~', '`':
			return -1
		}
		if unicode.IsSpace(r) {
			return ' '
		}
		return r
	}, s)
	return strings.Join(strings.Fields(s), " ")
}

// stripHeader removes the first line's "*Alice*: ", "*Bob* in *Family*: "
// or "*You* → *Alice*: " that the bot put before the text, which clients
// quote along with it.
func stripHeader(s string) string {
	s = strings.TrimLeft(s, "\n")
	if !strings.HasPrefix(s, "*") {
		return s
	}
	line, _, _ := strings.Cut(s, "\n")
	i := strings.Index(line, "*: ")
	if i < 0 {
		if strings.HasSuffix(line, "*:") {
			return strings.TrimLeft(s[len(line):], "\n")
		}
		return s
	}
	return s[i+3:]
}
