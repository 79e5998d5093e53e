package xmpp

import (
	"encoding/xml"
	"fmt"
	"sync"
	"time"
)

// Stream management (XEP-0198), acknowledgements only.
//
// Without an archive (both servers ship without one), a message the server
// wrote to the bot's socket is gone for the server: if waxmpp dies before
// the core has handled it, it is lost. Where the server offers XEP-0198 the
// session enables it (no resumption: a new link starts afresh) and answers
// the server's <r/> with the count of stanzas it has dealt with: owner
// messages only once the core has durably handled them, everything else at
// once. When a link ends, what it never acknowledged the server treats as
// undelivered: Prosody and ejabberd (resend_on_timeout: if_offline, as
// shipped) store those messages offline and deliver them at the next login;
// the core drops by id any it had handled after all.
//
// The core handles owner messages one at a time in the order Inbound
// delivered them (bridge.XMPP.Handled), so a FIFO of delivered messages
// maps each Handled to its stanza.
//
// An <r/> that finds nothing new to acknowledge (the core still holds the
// owner messages since the last <a/>) is answered once the core has
// handled more, or after ackDefer at the latest. Both servers ask again
// as soon as an <a/> leaves stanzas unacknowledged (ejabberd's
// resend_rack, Prosody's handle_a), so answering at once with the same
// count made one request and answer per stanza or two during an owner's
// burst, each a read, a write and a wake-up on both sides, for nothing:
// on ejabberd 996 answers for 2,000 owner messages. Deferred, a burst
// costs a few per core batch. The count itself is what it was: never
// more than the core has handled.

const nsSM = "urn:xmpp:sm:3"

// ackDefer is the longest an <r/> waits for the core before it is
// answered with the count as it is: far below ejabberd's ack_timeout (60
// s as shipped), after which it closes a stream that never answers.
var ackDefer = 5 * time.Second

// smState is one link's count of the server's stanzas.
type smState struct {
	mu       sync.Mutex
	enabled  bool
	received uint64            // stanzas received since <enabled/>
	pending  map[uint64]bool   // owner messages handed to the core, not yet handled
	answered uint64            // the count of the last <a/> handed to the writer
	owed     bool              // an <r/> waits for its answer (answer)
	timer    *time.Timer       // answers an owed <r/> after ackDefer
	answers  uint64            // <a/>s handed to the writer (tests)
	write    func([]byte) bool // the link's conn.offer
}

// h is what the link can acknowledge: every stanza before the first owner
// message the core has not handled.
func (m *smState) h() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.hLocked()
}

func (m *smState) hLocked() uint64 {
	h := m.received
	for seq := range m.pending {
		h = min(h, seq-1)
	}
	return h
}

// answer answers the server's <r/>: now when the count moved since the
// last answer or nothing waits for the core (or when late), else once the
// core has handled more (smHandled) or ackDefer has passed. m.mu held.
func (m *smState) answer(late bool) {
	h := m.hLocked()
	if !late && h == m.answered && len(m.pending) > 0 {
		if !m.owed { // the first <r/> that waits: the deadline starts
			m.owed = true
			if m.timer == nil {
				m.timer = time.AfterFunc(ackDefer, m.lateAnswer)
			} else {
				m.timer.Reset(ackDefer)
			}
		}
		return
	}
	if m.write == nil || !m.write(smAck(h)) {
		return // the link is stuck: it will be rebuilt
	}
	m.answered, m.owed = h, false
	m.answers++
	if m.timer != nil {
		m.timer.Stop()
	}
}

// lateAnswer answers an <r/> that waited ackDefer.
func (m *smState) lateAnswer() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.owed {
		m.answer(true)
	}
}

// on reports whether the server enabled stream management on the link.
func (m *smState) on() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.enabled
}

// count counts one stanza received and returns its number, 0 when not
// counting. Reader goroutine only.
func (m *smState) count() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.enabled {
		return 0
	}
	m.received++
	return m.received
}

// smEntry is one owner message handed to the core: the link it came on
// and its stanza number there (0: not counted).
type smEntry struct {
	sm  *smState
	seq uint64
}

// delivered records that the stanza seq of link sm went to the core.
func (s *Session) delivered(sm *smState, seq uint64) {
	if seq != 0 {
		sm.mu.Lock()
		sm.pending[seq] = true
		sm.mu.Unlock()
	}
	s.mu.Lock()
	s.smq = append(s.smq, smEntry{sm, seq})
	s.mu.Unlock()
}

// smHandled marks the oldest delivered owner message handled.
func (s *Session) smHandled() {
	s.mu.Lock()
	if len(s.smq) == 0 {
		s.mu.Unlock()
		return
	}
	e := s.smq[0]
	s.smq = s.smq[1:]
	s.mu.Unlock()
	if e.seq != 0 {
		e.sm.mu.Lock()
		delete(e.sm.pending, e.seq)
		if e.sm.owed {
			e.sm.answer(false)
		}
		e.sm.mu.Unlock()
	}
}

// smElement handles a top-level XEP-0198 element of the stream.
func (s *Session) smElement(c *conn, d *xml.Decoder, start xml.StartElement) error {
	if err := d.Skip(); err != nil {
		return fmt.Errorf("xmpp: read: %w", err)
	}
	switch start.Name.Local {
	case "enabled":
		c.sm.mu.Lock()
		c.sm.enabled = true
		c.sm.mu.Unlock()
		s.smOn.Store(true)
	case "failed":
		s.log.Warn("the server refused stream management; messages written into a dying connection may be lost where it keeps no archive")
	case "r":
		c.sm.mu.Lock()
		c.sm.answer(false)
		c.sm.mu.Unlock()
	}
	return nil
}

// smAck is <a h='…'/>: h counts modulo 2^32.
func smAck(h uint64) []byte {
	return fmt.Appendf(nil, "<a xmlns='%s' h='%d'/>", nsSM, uint32(h))
}

// undeliver takes back the last delivered entry: its message never
// reached the core.
func (s *Session) undeliver() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n := len(s.smq); n > 0 {
		s.smq = s.smq[:n-1]
	}
}
