package xmpp

import (
	"bytes"
	"fmt"
	"regexp"
	"sync"
)

// Bounces after the ping. A ping result proves the bot's server took a
// stanza, not that it reached the owner: the owner's server may still
// refuse it. ejabberd, as shipped, keeps at most 100 offline messages per
// user and answers the next ones with an error (resource-constraint); a
// federating server that cannot reach the owner's answers
// remote-server-timeout or -not-found. The session keeps the latest
// confirmed messages (a bounded ring, by id); an error from the owner that
// names one of them and says "wait" sets the message aside (Config.Held,
// durable) until the owner is online again, or the next login, and tells
// the owner once, in plain words, then.
type bounces struct {
	mu     sync.Mutex
	byID   map[string][]byte // message stanzas written
	ring   []string
	next   int
	held   [][]byte // set aside, when there is no Config.Held
	counts int      // set aside since the owner was last told
}

const bounceRing = 2048

var idAttr = regexp.MustCompile(`^<message [^>]*\bid="([^"]+)"`)

// remember keeps a message stanza written to the server.
func (b *bounces) remember(stanza []byte) {
	m := idAttr.FindSubmatch(stanza)
	if m == nil {
		return
	}
	id := string(m[1])
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.byID == nil {
		b.byID = make(map[string][]byte, bounceRing)
		b.ring = make([]string, bounceRing)
	}
	delete(b.byID, b.ring[b.next])
	b.ring[b.next] = id
	b.next = (b.next + 1) % bounceRing
	b.byID[id] = bytes.Clone(stanza)
}

// take returns and forgets the stanza with id, nil if unknown.
func (b *bounces) take(id string) []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.byID[id]
	delete(b.byID, id)
	return s
}

// retryable: the owner's server says to wait (RFC 6120 §8.3.2 type wait,
// or the conditions that mean "not now").
func retryable(e *StanzaError) bool {
	if e == nil {
		return false
	}
	switch e.Condition {
	case "resource-constraint", "remote-server-timeout", "remote-server-not-found", "recipient-unavailable":
		return true
	}
	return e.Type == "wait"
}

// bounced handles an error message from the owner: a confirmed message it
// names that may go again later is set aside.
func (s *Session) bounced(m *Inbound) {
	stanza := s.sent.take(m.ID)
	if stanza == nil || !retryable(m.Error) {
		s.log.Warn("the owner's server refused a message", "id", m.ID, "err", m.Error)
		return
	}
	if s.cfg.Held != nil {
		if _, err := s.cfg.Held.Enqueue(record(timeNow(), stanza)); err != nil {
			s.log.Error("cannot set a refused message aside", "id", m.ID, "err", err)
		}
	} else {
		s.sent.mu.Lock()
		s.sent.held = append(s.sent.held, stanza)
		s.sent.mu.Unlock()
	}
	s.sent.mu.Lock()
	s.sent.counts++
	s.sent.mu.Unlock()
	s.log.Info("the owner's server refused a message for now; set aside until the owner is online", "id", m.ID, "condition", m.Error.Condition)
}

// release sends again, through the outbox, what was set aside, after a
// plain-words note. Called when the owner comes online and at each login.
func (s *Session) release() {
	var recs [][]byte
	var heldSeq uint64
	if s.cfg.Held != nil {
		for {
			items, err := s.cfg.Held.Peek(heldSeq, 256)
			if err != nil {
				s.log.Error("cannot read the messages set aside", "err", err)
				return
			}
			if len(items) == 0 {
				break
			}
			for _, it := range items {
				recs = append(recs, it.Data)
				heldSeq = it.Seq
			}
		}
	}
	s.sent.mu.Lock()
	for _, st := range s.sent.held {
		recs = append(recs, record(timeNow(), st))
	}
	s.sent.held = nil
	n := s.sent.counts
	s.sent.counts = 0
	s.sent.mu.Unlock()
	if len(recs) == 0 {
		return
	}
	if n == 0 {
		n = len(recs)
	}
	note, err := EncodeMessage(Message{ID: s.NewID(), To: s.cfg.Owner, Body: fmt.Sprintf(
		"Your server refused %d messages while you were away (its storage for offline messages was full, or it could not be reached); here they are now.", n)})
	if err == nil {
		recs = append([][]byte{record(timeNow(), note)}, recs...)
	}
	if _, err := s.cfg.Outbox.Enqueue(recs...); err != nil {
		s.log.Error("cannot queue the messages set aside", "err", err)
		return
	}
	if s.cfg.Held != nil && heldSeq > 0 {
		if err := s.cfg.Held.AckThrough(heldSeq); err != nil {
			s.log.Error("cannot clear the messages set aside", "err", err)
		}
	}
	select {
	case s.kick <- struct{}{}:
	default:
	}
}
