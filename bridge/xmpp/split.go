package xmpp

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Outbound size. A server closes the stream when a client sends a stanza
// over its limit (Prosody 0.12: policy-violation "stanza-too-big" over
// c2s_stanza_size_limit, 256 KiB; ejabberd: max_stanza_size, 262,144 B in
// Debian's file but 65,536 B in its documentation's examples and in many
// deployments, 131,072 B for server-to-server). Written again on the next
// link, such a stanza would close that one too, for ever, with everything
// queued behind it. So the session keeps every stanza under a limit: the
// server's own where it states one (XEP-0478 stream limits, after login),
// else defaultStanzaLimit; when the owner is on another server, whose
// server-to-server limit nobody states, never above defaultStanzaLimit.
// A message over the limit is split into parts (splitMessage), on line
// boundaries where it can be, each marked "(i/n)" on a line of its own.

// defaultStanzaLimit is below every limit above, with room to spare.
const defaultStanzaLimit = 64000

// minStanzaLimit is the smallest limit the session goes down to when a
// server keeps closing the stream after a stanza (see guard): below
// Prosody's smallest setting (10,000 B), above any message of ordinary
// length.
const minStanzaLimit = 8000

// nsStreamLimits is XEP-0478's stream feature.
const nsStreamLimits = "urn:xmpp:stream-limits:0"

// maxParts bounds the parts of one message: the core's longest texts
// (WhatsApp's 65,536 characters, escaped) fit in far fewer.
const maxParts = 99

// escapedLen is how many bytes r takes once escaped by the writer
// (xml.EscapeText).
func escapedLen(r rune) int {
	switch r {
	case '"', '\'', '&', '\t', '\n', '\r':
		return 5
	case '<', '>':
		return 4
	}
	return utf8.RuneLen(r)
}

// escapedSize is the escaped size of s.
func escapedSize(s string) int {
	n := 0
	for _, r := range s {
		n += escapedLen(r)
	}
	return n
}

// errTooLarge means a message cannot be made to fit the limit.
var errTooLarge = errors.New("xmpp: message larger than the server takes and cannot be split")

// splitMessage returns m as messages whose stanzas each fit in limit
// bytes: m itself when it fits. Only a message with a body can be split;
// the first part keeps everything but the body's rest (the reply and its
// quote, a correction's reference, the receipt request, the URL); the
// others carry the rest of the text, with the ids m.ID-2, m.ID-3 …, so
// that writing them again after a reconnect sends the same stanzas. A
// reply's quote, which is only context, is shortened to a quarter of the
// limit. It fails with errTooLarge when m cannot fit.
func splitMessage(m Message, limit int) ([]Message, error) {
	b, err := EncodeMessage(m)
	if err != nil {
		return nil, err
	}
	if len(b) <= limit {
		return []Message{m}, nil
	}
	body := Clean(m.Body)
	if body == "" || m.Retract != "" || m.Reactions != nil {
		return nil, fmt.Errorf("%w (%d bytes, limit %d)", errTooLarge, len(b), limit)
	}
	if m.Reply != nil && escapedSize(m.Quote) > limit/4 {
		m.Quote = cutEscaped(Clean(m.Quote), limit/4-8) + "…"
	}
	first := m
	first.Body = "x"
	rest := Message{ID: m.ID + "-99", To: m.To, Type: m.Type, Body: "x", Delay: m.Delay}
	// What a part takes beyond its text: the stanza itself, the "(i/n)"
	// line, a preformatted block closed and opened again around a cut.
	const marks = len("&#xA;(99/99)") + 2*len("&#xA;```")
	over1, err := encodedLen(first)
	if err != nil {
		return nil, err
	}
	overN, err := encodedLen(rest)
	if err != nil {
		return nil, err
	}
	budget1, budgetN := limit-over1+1-marks, limit-overN+1-marks
	if budget1 < limit/2 || budgetN < limit/2 {
		return nil, fmt.Errorf("%w (limit %d)", errTooLarge, limit)
	}
	texts := splitText(body, budget1, budgetN)
	if len(texts) > maxParts {
		return nil, fmt.Errorf("%w (%d parts at limit %d)", errTooLarge, len(texts), limit)
	}
	parts := make([]Message, len(texts))
	for i, t := range texts {
		t += fmt.Sprintf("\n(%d/%d)", i+1, len(texts))
		if i == 0 {
			parts[i] = m
			parts[i].Body = t
			continue
		}
		parts[i] = Message{ID: fmt.Sprintf("%s-%d", m.ID, i+1), To: m.To, Type: m.Type, Body: t, Delay: m.Delay}
	}
	for _, p := range parts {
		if n, err := encodedLen(p); err != nil || n > limit {
			return nil, fmt.Errorf("%w: part %s is %d bytes, limit %d", errTooLarge, p.ID, n, limit)
		}
	}
	return parts, nil
}

func encodedLen(m Message) (int, error) {
	b, err := EncodeMessage(m)
	return len(b), err
}

// splitText cuts text into pieces of at most budget1 escaped bytes for the
// first and budgetN for the others. It cuts at the last line break that
// leaves a piece at least half full (the break itself is dropped), else at
// the last space, else between characters, never inside a character's
// combining marks, variation selectors or joiners. XEP-0393 styling stays
// readable: spans never cross a line, quotes are per line, and a
// preformatted block cut in two is closed at the end of one piece and
// opened again at the start of the next.
func splitText(text string, budget1, budgetN int) []string {
	var out []string
	pre := false // inside a preformatted block at the start of text
	for text != "" && len(out) <= maxParts {
		budget := budgetN
		if len(out) == 0 {
			budget = budget1
		}
		head := ""
		if pre {
			head = "```\n"
		}
		if escapedSize(text)+escapedSize(head) <= budget {
			out = append(out, head+text)
			break
		}
		cut, skip := cutPoint(text, budget-escapedSize(head))
		piece := text[:cut]
		endPre := preAfter(piece, pre)
		text = text[cut+skip:]
		if endPre {
			piece += "\n```"
		}
		out = append(out, head+piece)
		pre = endPre
	}
	return out
}

// cutPoint is where to cut text so that text[:cut] takes at most budget
// escaped bytes; skip is the width of the separator dropped there.
func cutPoint(text string, budget int) (cut, skip int) {
	size, end := 0, 0
	lastNL, lastSpace := -1, -1
	for i, r := range text {
		n := escapedLen(r)
		if size+n > budget {
			break
		}
		size += n
		end = i + utf8.RuneLen(r)
		switch r {
		case '\n':
			lastNL = i
		case ' ', '\t':
			lastSpace = i
		}
	}
	half := end / 2
	switch {
	case lastNL >= half && lastNL > 0:
		return lastNL, 1
	case lastSpace >= half && lastSpace > 0:
		return lastSpace, 1
	}
	// Between characters: step back while the next one belongs to the
	// one before (a combining mark, a variation selector, a skin tone, a
	// joiner or what a joiner joins), up to a cluster's length.
	at := end
	for back := 0; at > 0 && back < 32; back++ {
		r, _ := utf8.DecodeRuneInString(text[at:])
		p, n := utf8.DecodeLastRuneInString(text[:at])
		if !clings(r) && p != '\u200d' {
			return at, 0
		}
		at -= n
	}
	if end == 0 { // not even one character fits: cut after it anyway
		_, end = utf8.DecodeRuneInString(text)
	}
	return end, 0 // no boundary near: cut the cluster
}

// clings reports whether r is shown together with the character before it.
func clings(r rune) bool {
	return unicode.In(r, unicode.Mn, unicode.Me, unicode.Mc) || r == '\u200d' ||
		r >= 0xfe00 && r <= 0xfe0f || r >= 0x1f3fb && r <= 0x1f3ff || r >= 0xe0020 && r <= 0xe007f
}

// preAfter reports whether a preformatted block (XEP-0393 §6.2.1: a line
// beginning with ``` opens one, a line of just ``` closes it) is open at
// the end of text, given whether one was open at its start.
func preAfter(text string, pre bool) bool {
	for line := range strings.SplitSeq(text, "\n") {
		switch {
		case !pre && strings.HasPrefix(line, "```"):
			pre = true
		case pre && strings.TrimRight(line, " \t") == "```":
			pre = false
		}
	}
	return pre
}

// cutEscaped returns the longest prefix of s, on a character boundary,
// that takes at most n escaped bytes.
func cutEscaped(s string, n int) string {
	size := 0
	for i, r := range s {
		if size += escapedLen(r); size > n {
			return s[:i]
		}
	}
	return s
}

// resplit splits a stanza the outbox already holds (written by
// EncodeMessage) so that its parts fit in limit: for an item queued
// before the session knew the server's limit, or one the server keeps
// closing the stream after. It decodes our own stanza back into a
// Message; ok is false when it cannot be split.
func resplit(stanza []byte, limit int) (parts [][]byte, ok bool) {
	st, err := DecodeBytes(stanza)
	if err != nil {
		return nil, false
	}
	in, isMsg := st.(*Inbound)
	if !isMsg || !in.HasBody || in.Retract != nil || in.Reactions != nil {
		return nil, false
	}
	m := Message{ID: in.ID, To: in.To, Type: in.Type, Body: in.Body, Replace: in.Replace, Receipt: in.Received,
		Markable: in.Markable, ChatState: in.ChatState, OOB: in.OOB}
	if in.Marker != nil && in.Marker.Kind == "displayed" {
		m.Displayed = in.Marker.ID
	}
	if in.Delay != nil {
		m.Delay = &Delay{Stamp: in.Delay.Stamp, From: in.Delay.From, Reason: in.Delay.Reason}
	}
	if in.Reply != nil {
		m.Reply = &Reply{To: in.Reply.To, ID: in.Reply.ID}
		m.Body = in.BodyWithoutFallback(NSReply)
		if q, found := strings.CutSuffix(strings.TrimSuffix(in.Body, m.Body), "\n"); found {
			var lines []string
			for line := range strings.SplitSeq(q, "\n") {
				lines = append(lines, strings.TrimPrefix(strings.TrimPrefix(line, ">"), " "))
			}
			m.Quote = strings.Join(lines, "\n")
		}
	}
	ms, err := splitMessage(m, limit)
	if err != nil || len(ms) < 2 {
		return nil, false
	}
	for _, p := range ms {
		b, err := EncodeMessage(p)
		if err != nil {
			return nil, false
		}
		parts = append(parts, b)
	}
	return parts, true
}
