package xmpp

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// The outbox guard. An item the server will not take (too large for a
// limit it does not state, or anything else it chokes on) closes the
// stream each time it is written, and the outbox, which sends in order,
// would write it again on every link, for ever, with everything queued
// behind it. After a stream error that may have been about what the bot
// wrote (stanzaFault), the next link writes the items that were
// unconfirmed one at a time, each confirmed before the next: if the
// stream dies again with one of them alone unconfirmed, the server
// processed it last, and it is the culprit. A message larger than
// minStanzaLimit is then sent in parts at half its size (the session's
// limit goes down to that for good); anything else is taken out of the
// outbox and the owner is told, in plain words, what could not be
// delivered.

// guard is the writer's memory across links. Only one link's writer uses
// it at a time, then Run (linkEnded), after that writer has ended.
type guard struct {
	// careful: until the outbox is confirmed through this seq, items go
	// one at a time.
	careful uint64
	// culprit is the item to deal with when it comes up, 0 if none.
	culprit uint64
	// The last link's writer, at its end: the items written and not
	// confirmed, and whether it was writing one at a time.
	unconfirmed []uint64
	wasCareful  bool
}

// stanzaFault reports whether a stream error may have been caused by a
// stanza the bot wrote. Conflicts, shutdowns, redirects and timeouts are
// about the stream, not its content.
func stanzaFault(cond string) bool {
	switch cond {
	case "conflict", "see-other-host", "system-shutdown", "reset", "connection-timeout", "host-gone",
		"host-unknown", "remote-connection-failed", "not-authorized":
		return false
	}
	return true
}

// linkEnded takes the end of a link: after a stream error that may be
// about what was written, the unconfirmed items are suspects.
func (g *guard) linkEnded(s *Session, err error) {
	var se *StreamError
	if !errors.As(err, &se) || !stanzaFault(se.Condition) || len(g.unconfirmed) == 0 {
		return
	}
	last := g.unconfirmed[len(g.unconfirmed)-1]
	if g.wasCareful && len(g.unconfirmed) == 1 {
		g.culprit = last
		s.log.Warn("the server closed the stream again right after one queued stanza: setting it aside", "seq", last, "condition", se.Condition, "text", se.Text)
		return
	}
	g.careful = max(g.careful, last)
	s.log.Warn("the server closed the stream after what the bot wrote: the unconfirmed stanzas go one at a time", "through", last, "condition", se.Condition, "text", se.Text)
}

// stanzaLimit is the limit new messages are split for: the last link's,
// or defaultStanzaLimit before the first.
func (s *Session) stanzaLimit() int {
	if n := s.limit.Load(); n > 0 {
		return int(n)
	}
	lim := defaultStanzaLimit
	if low := s.lowered.Load(); low > 0 {
		lim = min(lim, int(low))
	}
	return lim
}

// linkLimit is the stanza limit on link l: what the server states
// (XEP-0478), else defaultStanzaLimit; never above defaultStanzaLimit when
// the owner is on another server (its server-to-server limit is not
// stated), nor above a limit a server taught (lowered).
func (s *Session) linkLimit(l *link) int {
	lim := defaultStanzaLimit
	if l.maxBytes > 0 {
		lim = l.maxBytes
		if _, od, _ := strings.Cut(s.owner, "@"); od != s.domain {
			lim = min(lim, defaultStanzaLimit)
		}
	}
	if low := s.lowered.Load(); low > 0 {
		lim = min(lim, int(low))
	}
	return lim
}

// culprit deals with the item the guard found (see guard): a message
// larger than minStanzaLimit goes on in parts at half the size it was
// written at (down to minStanzaLimit); anything
// else is taken out of the outbox, which it must head (everything before
// it was confirmed one at a time), and the owner is told. It reports
// whether the item was taken out.
func (w *outWriter) culprit(seq uint64, stanza []byte) (bool, error) {
	s := w.s
	s.guard.culprit = 0
	// Half of what it was written at: the stanza itself, or its parts.
	half := max(minStanzaLimit, min(w.limit, len(stanza))/2)
	if len(stanza) > minStanzaLimit && half < min(w.limit, len(stanza)) {
		if _, ok := resplit(stanza, half); ok {
			low := int64(half)
			if cur := s.lowered.Load(); cur == 0 || low < cur {
				s.lowered.Store(low)
			}
			w.limit = min(w.limit, int(low))
			s.limit.Store(int64(w.limit))
			s.log.Warn("the server refuses stanzas this large: sending in smaller parts from now on", "seq", seq, "bytes", len(stanza), "limit", w.limit)
			return false, nil
		}
	}
	if head, ok, err := s.cfg.Outbox.Oldest(); err != nil {
		return false, fmt.Errorf("xmpp: read outbox: %w", err)
	} else if !ok || head.Seq != seq {
		return false, nil // not at the head after all: written again, carefully
	}
	note, err := EncodeMessage(Message{ID: s.NewID(), To: s.cfg.Owner, Body: undeliverable(stanza)})
	if err != nil {
		return false, err
	}
	if _, err := s.cfg.Outbox.Enqueue(record(timeNow(), note)); err != nil {
		return false, fmt.Errorf("xmpp: queue a note: %w", err)
	}
	if err := s.cfg.Outbox.AckThrough(seq); err != nil {
		return false, fmt.Errorf("xmpp: take an item out of the outbox: %w", err)
	}
	s.log.Error("took out of the outbox a stanza the server closed the stream after, twice", "seq", seq, "bytes", len(stanza))
	return true, nil
}

// undeliverable is the owner's note about a stanza taken out of the outbox.
func undeliverable(stanza []byte) string {
	const msg = "waxmpp could not deliver a message to you: your server closed the connection each time it was sent."
	st, err := DecodeBytes(stanza)
	in, ok := st.(*Inbound)
	if err != nil || !ok || !in.HasBody || in.Retract != nil {
		return msg + " It was not a text (a reaction, correction, retraction or receipt)."
	}
	first, _, _ := strings.Cut(strings.TrimSpace(in.Body), "\n")
	if utf8.RuneCountInString(first) > 80 {
		first = string([]rune(first)[:80]) + "…"
	}
	return msg + " It began: " + first + "\nRead it on your phone."
}
