package bridge

import (
	"strconv"
	"strings"
	"unicode"
)

// This file holds the routing decision (the package doc's "Routing what the
// owner writes") as a pure function, so that it can be tested and fuzzed
// without a store or a network: the core gathers the facts (routeIn),
// decide says what to do (routeOut), and the core does it.

// maxCandidates is how many chats a "Send to 1) … 2) …?" question offers.
const maxCandidates = 5

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
	// relayed message it names (nil when the id is unknown).
	ReplyTo string
	Reply   *MsgLink
	// Recent are recently relayed messages (all chats), newest first,
	// whose excerpts a "> " quote is matched against.
	Recent []MsgLink
	// Current is the current chat ("" none); Since the other chats that
	// relayed a message since the owner last wrote to it, most recent first.
	Current ChatID
	Since   []ChatID
	// Question holds the candidates of the pending question while
	// messages are held (nil: nothing held).
	Question []ChatID
	// Held is true while messages are held (Question may be empty when
	// there was nothing to choose from).
	Held bool
	// Resolve names a chat by handle (or the other forms resolveChat
	// accepts).
	Resolve func(name string) (ChatID, bool)
}

// routeOut is decide's answer.
type routeOut struct {
	Action     routeAction
	Chat       ChatID
	Text       string
	Quote      *MsgLink // send as a WhatsApp reply to this message
	Candidates []ChatID // for actHold: what to offer, in order
	Problem    string   // for actReject: one line for the owner
	Rule       string   // which rule decided, for logs and tests
}

// decide applies the routing rules in order: XEP-0461 reply, "> " quote, /msg,
// the answer to a pending question, then plain text to the current chat
// only when no other chat spoke since the owner last wrote to it. It never
// guesses: when in doubt it holds. A command (a body starting with one "/")
// is a command even when sent as a reply.
func decide(in routeIn) routeOut {
	body := in.Body
	// Commands first, even in a reply or with a quote-less body: "/mute"
	// typed as a reply must not reach the chat as text. /msg is rule 3.
	if name, args, ok := parseCommand(body); ok {
		if name != "msg" {
			return routeOut{Action: actCommand, Rule: "command"}
		}
		target, text, _ := strings.Cut(args, " ")
		text = strings.TrimLeft(text, " ")
		if target == "" || strings.TrimSpace(text) == "" {
			return routeOut{Action: actReject, Rule: "msg", Problem: "/msg needs a chat and a text: /msg alice see you at 8 (/chats lists the chats)."}
		}
		chat, ok := in.resolve(target)
		if !ok {
			return routeOut{Action: actReject, Rule: "msg", Problem: "Not sent: no chat " + strconv.Quote(target) + ". /chats lists them, /find <name> searches, /new <+number> starts one."}
		}
		return routeOut{Action: actSend, Rule: "msg", Chat: chat, Text: text}
	}
	if strings.HasPrefix(body, "//") {
		body = body[1:] // "//x" sends "/x"
	}
	// 1. An XEP-0461 reply names its chat.
	if in.ReplyTo != "" {
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
	// 2. A "> " quote of a recently relayed message.
	if quote, rest, ok := splitQuote(body); ok {
		chats, match := matchQuote(quote, in.Recent)
		switch {
		case len(chats) == 1:
			if strings.TrimSpace(rest) == "" {
				return routeOut{Action: actReject, Rule: "quote", Problem: "Not sent: there is nothing after the quote. Write your answer below the quoted line."}
			}
			return routeOut{Action: actSend, Rule: "quote", Chat: chats[0], Text: rest, Quote: match}
		case len(chats) > 1:
			// The same words were said in several chats: ask.
			if strings.TrimSpace(rest) == "" {
				return routeOut{Action: actReject, Rule: "quote", Problem: "Not sent: there is nothing after the quote. Write your answer below the quoted line."}
			}
			return routeOut{Action: actHold, Rule: "quote", Text: body, Candidates: chats[:min(len(chats), maxCandidates)]}
		}
		// No match: the quote is just text.
	}
	// The answer to a pending question.
	if in.Held {
		a := strings.TrimSpace(body)
		if n, err := strconv.Atoi(a); err == nil && isDigits(a) {
			if n >= 1 && n <= len(in.Question) {
				return routeOut{Action: actAnswer, Rule: "answer", Chat: in.Question[n-1]}
			}
			if len(in.Question) > 0 {
				return routeOut{Action: actReject, Rule: "answer", Problem: "Answer a number from 1 to " + strconv.Itoa(len(in.Question)) + ", or a chat's handle; /cancel drops the held message."}
			}
		}
		if a != "" && !strings.ContainsAny(a, " \n\t") {
			if chat, ok := in.resolve(strings.TrimPrefix(a, "@")); ok {
				return routeOut{Action: actAnswer, Rule: "answer", Chat: chat}
			}
		}
	}
	if strings.TrimSpace(body) == "" {
		return routeOut{Action: actReject, Rule: "plain", Problem: "Not sent: the message is empty."}
	}
	// 4. Plain text: the current chat, only if nobody else spoke since.
	if !in.Held && in.Current != "" && len(in.Since) == 0 {
		return routeOut{Action: actSend, Rule: "current", Chat: in.Current, Text: body}
	}
	var cands []ChatID
	add := func(c ChatID) {
		if c == "" || len(cands) == maxCandidates {
			return
		}
		for _, o := range cands {
			if o == c {
				return
			}
		}
		cands = append(cands, c)
	}
	add(in.Current)
	for _, c := range in.Since {
		add(c)
	}
	return routeOut{Action: actHold, Rule: "plain", Text: body, Candidates: cands}
}

func (in routeIn) resolve(name string) (ChatID, bool) {
	if in.Resolve == nil || name == "" {
		return "", false
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
// newest matching message.
func matchQuote(quote string, recent []MsgLink) ([]ChatID, *MsgLink) {
	q := normQuote(stripHeader(quote))
	if q == "" {
		return nil, nil
	}
	var chats []ChatID
	var first *MsgLink
	for i := range recent {
		m := &recent[i]
		if m.WA.Chat == "" || m.XMPPID == "" || !strings.HasPrefix(m.XMPPID, relayPrefix) {
			continue // only what the bot relayed can be quoted
		}
		e := normQuote(m.Excerpt)
		if e == "" || !quoteMatches(q, e) {
			continue
		}
		if first == nil {
			first = m
		}
		c := ChatID(m.WA.Chat)
		seen := false
		for _, o := range chats {
			seen = seen || o == c
		}
		if !seen {
			chats = append(chats, c)
		}
	}
	return chats, first
}

// quoteMatches reports whether quote q (normalized) quotes excerpt e
// (normalized): the whole text, a start of at least 8 characters (clients
// shorten long quotes), or the whole excerpt when the excerpt was cut.
func quoteMatches(q, e string) bool {
	if q == e {
		return true
	}
	if len([]rune(q)) >= 8 && strings.HasPrefix(e, q) {
		return true
	}
	return len(e) >= maxExcerptMatch && strings.HasPrefix(q, e)
}

// maxExcerptMatch is a little under the store's excerpt size (160 bytes,
// cut on a character boundary): an excerpt this long may be cut.
const maxExcerptMatch = 150

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
