package xmpp

import (
	"fmt"
	"testing"
	"time"

	pt "waxmpp/bridge/prosodytest"
)

// smCounts is the current link's acknowledgement state: <a/>s handed to
// the writer, the last one's count, and the stanzas received.
func smCounts(s *Session) (answers, answered, received uint64) {
	s.mu.Lock()
	c := s.cur
	s.mu.Unlock()
	if c == nil {
		return 0, 0, 0
	}
	c.sm.mu.Lock()
	defer c.sm.mu.Unlock()
	return c.sm.answers, c.sm.answered, c.sm.received
}

// TestAckWaitsForTheCore: on both servers, while the owner writes 200
// messages that the core has not handled, the bot does not answer each
// of the server's <r/> with the same count again (before, ejabberd and
// the bot exchanged one request and answer per stanza or two); once the
// core has handled them, one answer acknowledges all of them. And an <r/>
// the core never catches up with is answered after ackDefer with the
// count as it is, so that the server does not time the stream out.
func TestAckWaitsForTheCore(t *testing.T) {
	old := ackDefer
	ackDefer = 700 * time.Millisecond
	t.Cleanup(func() { ackDefer = old })
	forServers(t, pt.Kinds, pt.Options{}, func(t *testing.T, srv *pt.Server) {
		owner := srv.Dial(t, "owner")
		s := startSession(t, botConfig(t, srv))
		waitFor(t, 10*time.Second, "stream management on", func() bool { return s.smOn.Load() })
		time.Sleep(500 * time.Millisecond) // the login's own stanzas settle
		a0, h0, _ := smCounts(s)

		const n = 200
		t0 := time.Now()
		for i := range n {
			owner.Send(fmt.Sprintf("<message to='%s' type='chat' id='k%d'><body>k%d</body></message>", srv.JID("bot"), i, i))
		}
		for i := range n {
			select {
			case <-s.Inbound():
			case <-time.After(10 * time.Second):
				t.Fatalf("owner message %d of %d not delivered", i, n)
			}
		}
		// The servers asked while the messages came; nothing was
		// handled, so nothing new could be acknowledged.
		time.Sleep(200 * time.Millisecond)
		a1, h1, _ := smCounts(s)
		// At most one answer, and one more per ackDefer that went by
		// (a loaded machine can take longer than ackDefer to read them).
		most := 1 + uint64(time.Since(t0)/ackDefer)
		if a1-a0 > most || h1 > h0+1 {
			t.Errorf("while the core held %d messages for %v the bot answered %d times (last count %d, at the start %d); want at most %d, with no owner message counted",
				n, time.Since(t0).Round(time.Millisecond), a1-a0, h1, h0, most)
		}
		// Never handled: the answer comes after ackDefer, with the
		// count as it was.
		waitFor(t, 5*time.Second, "the late answer", func() bool { a, _, _ := smCounts(s); return a > a1 })
		if _, h, _ := smCounts(s); h > h0+1 {
			t.Errorf("the late answer counts %d, more than the core handled (%d before the owner's messages)", h, h0)
		}
		// Handled: the next request is answered with every stanza.
		for range n {
			s.handled()
		}
		owner.Send(fmt.Sprintf("<message to='%s' type='chat' id='last'><body>last</body></message>", srv.JID("bot")))
		select {
		case <-s.Inbound():
			s.handled()
		case <-time.After(10 * time.Second):
			t.Fatal("the last owner message not delivered")
		}
		waitFor(t, 10*time.Second, "every stanza acknowledged", func() bool { _, h, r := smCounts(s); return h == r && h >= h0+n+1 })
		a2, _, _ := smCounts(s)
		t.Logf("%d answers for %d owner messages (one late)", a2-a0, n+1)
	})
}
