package xmpp

import (
	"context"
	"fmt"
	"strings"
)

// Archive catch-up (XEP-0313). go-xmpp has no XEP-0198, so the server
// forgets a message once it wrote it to the bot's socket; if waxmpp dies
// before the core has handled it, only the server's archive still has it.
// The core reports each handled owner message (Bot.Handled); the session
// saves its archive id (Cursor) and, on every login, asks the archive for
// the owner's messages after that id. Replays the core already handled are
// dropped by id (by the session while it runs, by the core across
// restarts). A server without an archive (no mod_mam) just has nothing to
// replay.

const mamPage = 100

// fromStart is the cursor of an archive that was empty when waxmpp first
// looked: everything in it is new.
const fromStart = "^"

type mamFin struct {
	Complete string `xml:"complete,attr"`
	Set      struct {
		First string `xml:"first"`
		Last  string `xml:"last"`
	} `xml:"http://jabber.org/protocol/rsm set"`
}

// replayed ends an archive replay: the cursor may move again.
func (s *Session) replayed() {
	s.replaying.Store(false)
	if s.inflight.Load() <= 0 {
		s.saveCursor()
	}
}

// loadCursor reads the archive cursor, "" when there is none.
func (s *Session) loadCursor() (string, error) {
	if s.cfg.Cursor == nil {
		return "", nil
	}
	return s.cfg.Cursor.LoadCursor()
}

// catchUp replays the owner's archived messages after the cursor after.
// With no cursor yet it only records where the archive ends now.
func (s *Session) catchUp(ctx context.Context, after string) error {
	if s.cfg.Cursor == nil {
		return nil
	}
	if after == "" {
		// First run: start from the archive's newest message, or from its
		// beginning when it is empty. This query only finds the position:
		// its result (a message handled live, or before waxmpp) is not
		// replayed (routeMessage drops answers to no replay query).
		last, _, err := s.mamPage(ctx, "mam-pos-"+s.NewID(), "", true)
		if err != nil {
			return err
		}
		if last == "" {
			last = fromStart
		}
		if err := s.cfg.Cursor.SaveCursor(last); err != nil {
			return err
		}
		s.replayed()
		return nil
	}
	qid := "mam-" + s.NewID()
	s.mamQuery.Store(qid)
	defer s.mamQuery.Store("")
	for pages := 0; pages < 1000; pages++ { // 100k messages: a bound, not a plan
		last, complete, err := s.mamPage(ctx, qid, after, false)
		if err != nil {
			if strings.Contains(err.Error(), "item-not-found") {
				// The archive no longer has our cursor (expired): start
				// again from its end rather than replay everything.
				s.log.Warn("archive no longer holds the last handled message; some messages sent while waxmpp was down may be missing", "cursor", after)
				if err := s.cfg.Cursor.SaveCursor(""); err != nil {
					return err
				}
				s.replayed()
				return nil
			}
			return err
		}
		if complete || last == "" {
			s.replayed()
			return nil
		}
		after = last
	}
	return nil
}

// mamPage asks for one page of the owner's messages after the archive id
// after (or, with latest, just the newest one). The results arrive as
// messages before the answer and go through routeMessage.
func (s *Session) mamPage(ctx context.Context, qid, after string, latest bool) (last string, complete bool, err error) {
	var w writer
	w.open("query", NSMAM, "queryid", qid)
	w.open("x", NSDataForms, "type", "submit")
	w.open("field", "", "var", "FORM_TYPE", "type", "hidden")
	w.elem("value", "", NSMAM)
	w.close()
	w.open("field", "", "var", "with")
	w.elem("value", "", s.cfg.Owner)
	w.close()
	w.close()
	w.open("set", NSRSM)
	if latest {
		w.elem("max", "", "1")
		w.empty("before", "")
	} else {
		w.elem("max", "", fmt.Sprint(mamPage))
		if after != fromStart {
			w.elem("after", "", after)
		}
	}
	w.close()
	w.close()
	res, err := s.iq(ctx, IQ{Type: "set", Payload: Inner{w.bytes()}})
	if res != nil && res.Error != nil {
		switch res.Error.Condition {
		case CondServiceUnavailable, CondFeatureNotImplemented:
			s.archive.Store(false) // the server keeps no archive for us
		}
	}
	if err != nil {
		return "", false, fmt.Errorf("xmpp: archive query: %w", err)
	}
	s.archive.Store(true)
	var fin mamFin
	if err := res.Unmarshal(&fin); err != nil {
		return "", false, err
	}
	return fin.Set.Last, fin.Complete == "true", nil
}

// handled saves the archive id of a message the core has dealt with.
//
// Archive ids are opaque, so "everything before this one is handled" is
// known only at quiet moments: the cursor is saved when no replay is
// unfinished and every message delivered so far has been handled. Then
// the last handled message is also the newest delivered one, and all that
// the archive holds before it was delivered and handled. Under constant
// traffic the cursor lags; a crash then replays a little more, which the
// core drops by id.
func (s *Session) handled(archiveID string) {
	s.smHandled()
	n := s.inflight.Add(-1)
	if s.cfg.Cursor == nil {
		return
	}
	s.mu.Lock()
	if archiveID != "" {
		s.lastHandled = archiveID
	}
	s.mu.Unlock()
	if n <= 0 && !s.replaying.Load() {
		s.saveCursor()
	}
}

// saveCursor persists the last handled archive id, if any is new.
func (s *Session) saveCursor() {
	s.mu.Lock()
	id := s.lastHandled
	s.lastHandled = ""
	s.mu.Unlock()
	if id == "" {
		return
	}
	if err := s.cfg.Cursor.SaveCursor(id); err != nil {
		s.log.Error("cannot save the archive cursor", "err", err)
	}
}

// archiveID is the id our own archive gave m: the XEP-0359 stanza-id added
// by the bot's server (by = the bot's bare JID), or the XEP-0313 result id.
func archiveID(m *Inbound, bare string) string {
	if m.Archived != nil {
		return m.Archived.ID
	}
	for _, id := range m.StanzaIDs {
		if bareJID(id.By) == bare {
			return id.ID
		}
	}
	return ""
}
