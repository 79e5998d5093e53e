package xmpp

import (
	"bytes"
	"sync"
	"time"
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
//
// Across federation (Prosody 0.12, measured with two servers on loopback):
// while the bot's server cannot connect to the owner's, every message is
// answered remote-server-not-found (type cancel: mod_s2s.lua's bounce_sendq
// says remote-server-timeout, type wait, only when the other side had
// opened a stream), one error per connection attempt, within milliseconds.
// A bounce can come after the owner's presence that released the rest, or
// while the owner stays online and only the link between the servers is
// down: so while the owner is online, what is set aside is also sent again
// after a wait, the ping interval at first, doubling up to heldRetryMax.
// The note travels with the messages (the first item set aside) and is
// made at most once per noteEvery: when they are refused again, the owner
// is not told again.
type bounces struct {
	mu      sync.Mutex
	byID    map[string][]byte // message stanzas written
	ring    []string
	next    int
	held    [][]byte  // records set aside, when there is no Config.Held
	noted   time.Time // when the last note was set aside
	retryAt time.Time // when to send again what is set aside; zero: nothing is due
	backoff time.Duration
	// releasing is held for a whole release: the reader (the owner's
	// presence) and the writer (retryHeld) may both release; each item
	// set aside must go once.
	releasing sync.Mutex
}

const (
	bounceRing   = 2048
	noteEvery    = time.Hour
	heldRetryMax = 30 * time.Minute
)

// messageID is the id of an encoded message stanza, nil if it has none:
// as the regular expression ^<message [^>]*\bid="([^"]+)" reads it (the
// last id="…" that starts inside the start tag), without its
// allocations: the writer reads it from every stanza it writes.
func messageID(stanza []byte) []byte {
	const open = "<message "
	if len(stanza) < len(open) || string(stanza[:len(open)]) != open {
		return nil
	}
	end := len(stanza) // where an attribute may start: before the first '>'
	if i := bytes.IndexByte(stanza[len(open):], '>'); i >= 0 {
		end = len(open) + i
	}
	for p := end - 1; p >= len(open); p-- {
		if !bytes.HasPrefix(stanza[p:], []byte(`id="`)) || wordByte(stanza[p-1]) {
			continue
		}
		v := stanza[p+len(`id="`):]
		if q := bytes.IndexByte(v, '"'); q > 0 {
			return v[:q]
		}
	}
	return nil
}

// wordByte is regexp's \w, which \b tells from the rest.
func wordByte(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_'
}

// remember keeps a message stanza written to the server.
func (b *bounces) remember(stanza []byte) {
	m := messageID(stanza)
	if m == nil {
		return
	}
	id := string(m)
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
	now := timeNow()
	var recs [][]byte
	s.sent.mu.Lock()
	if now.Sub(s.sent.noted) >= noteEvery {
		note, err := EncodeMessage(Message{ID: s.NewID(), To: s.cfg.Owner, Body: "Your server refused messages while you were away (its storage for offline messages was full, or it could not be reached); here they are now."})
		if err == nil {
			s.sent.noted = now
			recs = append(recs, record(now, note))
		}
	}
	recs = append(recs, record(now, stanza))
	if s.sent.retryAt.IsZero() {
		s.sent.backoff = max(s.sent.backoff, s.cfg.PingInterval)
		s.sent.retryAt = now.Add(s.sent.backoff)
	}
	if s.cfg.Held == nil {
		s.sent.held = append(s.sent.held, recs...)
	}
	s.sent.mu.Unlock()
	if s.cfg.Held != nil {
		if _, err := s.cfg.Held.Enqueue(recs...); err != nil {
			s.log.Error("cannot set a refused message aside", "id", m.ID, "err", err)
		}
	}
	s.log.Info("the owner's server refused a message for now; set aside until the owner is online", "id", m.ID, "condition", m.Error.Condition)
}

// ownerBack sends again what was set aside: the owner is online.
func (s *Session) ownerBack() {
	s.sent.mu.Lock()
	s.sent.backoff = 0
	s.sent.mu.Unlock()
	s.release()
}

// retryHeld sends again what was set aside when its wait is over and the
// owner is online (else the owner's next presence does). Called by the
// writer at each keepalive tick.
func (s *Session) retryHeld() {
	s.sent.mu.Lock()
	due := !s.sent.retryAt.IsZero() && !timeNow().Before(s.sent.retryAt)
	s.sent.mu.Unlock()
	s.mu.Lock()
	online := len(s.ownerCaps) > 0
	s.mu.Unlock()
	if !due || !online {
		return
	}
	s.sent.mu.Lock()
	s.sent.backoff = min(2*s.sent.backoff, heldRetryMax)
	s.sent.mu.Unlock()
	s.release()
}

// release sends again, through the outbox, what was set aside (the note
// first, when one was set aside with it). Called when the owner comes
// online, at each login, and by retryHeld.
func (s *Session) release() {
	s.sent.releasing.Lock()
	defer s.sent.releasing.Unlock()
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
	recs = append(recs, s.sent.held...)
	s.sent.held = nil
	s.sent.retryAt = time.Time{}
	s.sent.mu.Unlock()
	if len(recs) == 0 {
		return
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
