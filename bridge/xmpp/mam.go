package xmpp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Archive catch-up (XEP-0313). A message the server has written to the
// bot's socket is gone for it unless it keeps it some other way; if
// waxmpp dies before the core has handled it, the server's archive may
// still have it. The session keeps a cursor (Cursor): the archive id of a
// position up to which everything the owner wrote has been handled, and
// the archive's time there; every login replays the owner's messages
// after it.
//
// Archive ids are opaque: "everything up to here is handled" is known by
// counting. The session numbers the owner messages it hands to the core
// (delivered) and counts those the core reports handled, in the same
// order. A position becomes a candidate for the cursor together with the
// count of messages delivered when it became known; once the core has
// handled that many, the candidate is the cursor. The candidates are:
//
//   - a replayed message: the server sends a replay's results in archive
//     order, and the messages before one in the archive were replayed
//     before it or came live earlier;
//   - the archive's last item after a complete replay (the last page's
//     RSM last), counted when its answer came: the server wrote every
//     message it had archived before that answer (both servers archive a
//     message as they deliver it);
//   - a live message that came after the replay completed, by its
//     XEP-0359 stanza-id;
//   - where live messages carry no stanza-id (Openfire), the archive's
//     last item, asked for once the core has handled everything delivered
//     (a quiet moment, at most every archiveSync), so that the next replay
//     does not return all the link's traffic again (keepCursor).
//
// A live message that came during the replay is no candidate: older
// messages may still be on their way in the replay. So the cursor only
// moves forwards. It is saved at once when nothing else is in flight, else
// at most every cursorEvery (each save is a commit; keepCursor saves what
// waited).
//
// When the archive no longer has the cursor's item (Prosody expires
// messages after archive_expires_after, a week by default, and answers
// item-not-found), the replay asks by time instead: from the archive's
// time at the cursor (the server's own stamp where it is known, else the
// bot's clock an hour back). Pages go on until the archive says the
// replay is complete, a page brings nothing new, or the replay reached
// the first message this link got live as the server routed it, not from
// its offline storage (all that follows came live too);
// a failed page is asked for again, with backoff, for as long as the link
// lives. Replays the core already handled are dropped by id (by the
// session while it runs, by the core across restarts). A server without
// an archive just has nothing to replay.

// mamPage is how many results a replay asks for per page.
var mamPage = 100

// cursorEvery is how often, at most, the cursor is saved while messages
// keep coming.
const cursorEvery = time.Second

// archiveSync is how often, at most, the archive's last item is asked for
// on a server that puts no stanza-id on live messages.
var archiveSync = time.Minute

// localSlack is how far back a cursor time from the bot's own clock is put:
// the server's clock may differ, and asking from too early only replays
// what the core drops by id.
const localSlack = time.Hour

// fromStart is the cursor of an archive that was empty when waxmpp first
// looked: everything in it is new.
const fromStart = "^"

// cursorPos is a position in the archive: an archive id and the archive's
// time there (zero if unknown). It is saved as JSON; a bare id is read as
// a position without time (as earlier versions saved it).
type cursorPos struct {
	ID   string    `json:"id"`
	Time time.Time `json:"time,omitzero"`
}

func (p cursorPos) encode() string {
	b, _ := json.Marshal(p)
	return string(b)
}

func decodeCursor(s string) cursorPos {
	var p cursorPos
	if strings.HasPrefix(s, "{") && json.Unmarshal([]byte(s), &p) == nil {
		return p
	}
	return cursorPos{ID: s}
}

// candidate is a position that becomes the cursor once the core has
// handled need messages.
type candidate struct {
	pos  cursorPos
	need uint64
}

type mamFin struct {
	Complete string `xml:"complete,attr"`
	Set      struct {
		First string `xml:"first"`
		Last  string `xml:"last"`
	} `xml:"http://jabber.org/protocol/rsm set"`
}

// loadCursor reads the archive cursor; a zero position when there is none.
func (s *Session) loadCursor() (cursorPos, error) {
	if s.cfg.Cursor == nil {
		return cursorPos{}, nil
	}
	v, err := s.cfg.Cursor.LoadCursor()
	if err != nil || v == "" {
		return cursorPos{}, err
	}
	return decodeCursor(v), nil
}

// replayed ends an archive replay: live messages are candidates again.
func (s *Session) replayed() {
	s.replaying.Store(false)
	s.advance()
}

// mamQuery is what one page asks for.
type mamQuery struct {
	after  string    // RSM after: results after this archive id
	start  time.Time // results from this time (XEP-0313 start)
	latest bool      // just the archive's last item
}

// errNoArchive: the server keeps no archive for the bot.
var errNoArchive = errors.New("xmpp: the server keeps no archive")

// catchUp replays the owner's archived messages after the cursor from.
// With no cursor yet it only records where the archive ends now.
func (s *Session) catchUp(ctx context.Context, from cursorPos) error {
	if s.cfg.Cursor == nil {
		return nil
	}
	if from.ID == "" {
		// First run: start from the archive's newest message, or from
		// its beginning when it is empty. Its result (a message handled
		// live, or before waxmpp) is not replayed (routeMessage drops
		// answers to no replay query).
		pos, err := s.archiveEnd(ctx)
		if err != nil {
			return err
		}
		if pos.ID == "" {
			pos.ID = fromStart
		}
		s.saveCursor(pos)
		s.replayed()
		s.log.Debug("archive replay done", "pages", 0, "first", true)
		return nil
	}
	qid := "mam-" + s.NewID()
	s.mamQuery.Store(qid)
	defer s.mamQuery.Store("")
	q := mamQuery{after: from.ID}
	if q.after == fromStart {
		q.after = ""
	}
	byTime := false
	retry := time.Second
	for pages := 1; ; pages++ {
		s.replayPages.Add(1)
		last, complete, err := s.mamPage(ctx, qid, q)
		switch {
		case errors.Is(err, errNoArchive):
			return err
		case err != nil && strings.Contains(err.Error(), "item-not-found") && !byTime:
			// The archive no longer has the cursor's item (expired): ask
			// by time.
			if from.Time.IsZero() {
				s.log.Warn("the archive no longer holds the last handled message and its time is not known (saved by an older waxmpp); messages sent while waxmpp was down may be missing", "cursor", from.ID)
				pos, err := s.archiveEnd(ctx)
				if err != nil {
					return err
				}
				s.saveCursor(pos)
				s.replayed()
				s.log.Debug("archive replay done", "pages", pages, "expired", true)
				return nil
			}
			s.log.Info("the archive no longer holds the last handled message: replaying from its time", "cursor", from.ID, "from", from.Time)
			q, byTime = mamQuery{start: from.Time}, true
			continue
		case err != nil:
			if ctx.Err() != nil {
				return ctx.Err()
			}
			// Asked again, from the same page: the cursor stays where
			// the replay has got to, live messages do not move it.
			s.log.Warn("archive replay failed; asking again", "err", err, "retry_in", retry)
			if err := sleep(ctx, retry); err != nil {
				return err
			}
			retry = min(2*retry, time.Minute)
			continue
		}
		retry = time.Second
		caughtUp := s.caughtUp.Load()
		if complete || last == "" || caughtUp || last == q.after {
			if last == "" && byTime {
				// Nothing since: the archive's end is the new cursor.
				pos, err := s.archiveEnd(ctx)
				if err != nil {
					return err
				}
				if pos.ID != "" {
					s.addCandidate(pos, s.deliveredN.Load())
				}
			} else if last != "" {
				s.addCandidate(cursorPos{ID: last, Time: s.resultTime(last)}, s.deliveredN.Load())
			}
			s.log.Debug("archive replay done", "pages", pages, "caught_up", caughtUp && !complete)
			s.replayed()
			return nil
		}
		q.after = last
	}
}

// archiveAlways asks the server, once per Session, to archive all of the
// bot's messages (XEP-0313 preferences, default "always"): ejabberd's
// mod_mam archives by default only for users who asked ("default: never"
// is its module default). A server without an archive refuses; that is
// known from the replay.
func (s *Session) archiveAlways(ctx context.Context) {
	if s.cfg.Cursor == nil || s.prefsSet.Load() {
		return
	}
	var w writer
	w.open("prefs", NSMAM, "default", "always")
	w.empty("always", "")
	w.empty("never", "")
	w.close()
	if _, err := s.iq(ctx, IQ{Type: "set", Payload: Inner{w.bytes()}}); err != nil {
		s.log.Debug("archive preferences not set", "err", err)
		return
	}
	s.prefsSet.Store(true)
}

// archiveEnd asks for the archive's last item (none: a zero position).
func (s *Session) archiveEnd(ctx context.Context) (cursorPos, error) {
	qid := "mam-pos-" + s.NewID()
	s.mamPos.Store(qid)
	defer s.mamPos.Store("")
	last, _, err := s.mamPage(ctx, qid, mamQuery{latest: true})
	if err != nil || last == "" {
		return cursorPos{}, err
	}
	return cursorPos{ID: last, Time: s.resultTime(last)}, nil
}

// resultTime is the archive's time of the result id of the query running,
// as the server stamped it, or the bot's clock localSlack back.
func (s *Session) resultTime(id string) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lastResult.ID == id && !s.lastResult.Time.IsZero() {
		return s.lastResult.Time
	}
	return timeNow().Add(-localSlack)
}

// mamPage asks for one page of the owner's messages (or, with latest,
// just the newest one). The results arrive as messages before the answer
// and go through routeMessage.
func (s *Session) mamPage(ctx context.Context, qid string, q mamQuery) (last string, complete bool, err error) {
	var w writer
	w.open("query", NSMAM, "queryid", qid)
	w.open("x", NSDataForms, "type", "submit")
	w.open("field", "", "var", "FORM_TYPE", "type", "hidden")
	w.elem("value", "", NSMAM)
	w.close()
	w.open("field", "", "var", "with")
	w.elem("value", "", s.cfg.Owner)
	w.close()
	if !q.start.IsZero() {
		w.open("field", "", "var", "start")
		w.elem("value", "", q.start.UTC().Format(time.RFC3339Nano))
		w.close()
	}
	w.close()
	w.open("set", NSRSM)
	if q.latest {
		w.elem("max", "", "1")
		w.empty("before", "")
	} else {
		w.elem("max", "", fmt.Sprint(mamPage))
		if q.after != "" {
			w.elem("after", "", q.after)
		}
	}
	w.close()
	w.close()
	res, err := s.iq(ctx, IQ{Type: "set", Payload: Inner{w.bytes()}})
	if res != nil && res.Error != nil {
		switch res.Error.Condition {
		case CondServiceUnavailable, CondFeatureNotImplemented:
			s.archive.Store(false)
			return "", false, fmt.Errorf("%w: %w", errNoArchive, err)
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

// noteResult records a result of our own query as it is routed (reader
// goroutine): its archive id and the server's stamp, for the cursor's
// time.
func (s *Session) noteResult(m *Inbound) {
	p := cursorPos{ID: m.Archived.ID}
	if m.Delay != nil {
		p.Time = m.Delay.Stamp
	}
	s.mu.Lock()
	s.lastResult = p
	s.mu.Unlock()
}

// number numbers an owner message handed to the core and records the
// candidate it makes, if any (reader goroutine, in order). It returns the
// number, for unnumber.
func (s *Session) number(m *Inbound) uint64 {
	s.inflight.Add(1)
	k := s.deliveredN.Add(1)
	switch id := archiveID(m, s.bare); {
	case m.Archived != nil:
		s.addCandidate(cursorPos{ID: id, Time: s.resultTime(id)}, k)
	case s.replaying.Load():
		// Live during the replay: no candidate (see above). The replay
		// has caught up once it returns the first of these that the
		// server routed now: not one it had stored (a delay stamp), which
		// may be older than messages only the archive has (ejabberd
		// stores part of what a dying link never acknowledged offline,
		// and delivers it at the next login).
		if s.liveFirst == "" && m.Delay == nil {
			s.liveFirst = id
		}
	case id != "":
		s.addCandidate(cursorPos{ID: id, Time: timeNow().Add(-localSlack)}, k)
	default:
		s.syncWanted.Store(true) // no stanza-id: ask the archive later
		s.kickCursor()
	}
	return k
}

// unnumber takes back delivery number k: its message never reached the
// core.
func (s *Session) unnumber(k uint64) {
	s.inflight.Add(-1)
	s.deliveredN.Add(^uint64(0))
	s.mu.Lock()
	if n := len(s.cands); n > 0 && s.cands[n-1].need == k {
		s.cands = s.cands[:n-1]
	}
	s.mu.Unlock()
}

// addCandidate records that pos becomes the cursor once need messages are
// handled.
func (s *Session) addCandidate(pos cursorPos, need uint64) {
	if s.cfg.Cursor == nil || pos.ID == "" {
		return
	}
	s.mu.Lock()
	s.cands = append(s.cands, candidate{pos, need})
	s.mu.Unlock()
	if need <= s.handledN.Load() {
		s.advance() // not on the reader's behalf: it never has a due one
	}
}

// handled records that the core has dealt with the oldest message
// delivered and not yet reported.
func (s *Session) handled() {
	s.smHandled()
	s.inflight.Add(-1)
	s.handledN.Add(1)
	s.advance()
}

// advance makes the latest due candidate the cursor: saved at once when
// nothing else is in flight, else at most every cursorEvery.
func (s *Session) advance() {
	if s.cfg.Cursor == nil {
		return
	}
	done := s.handledN.Load()
	s.mu.Lock()
	i := 0
	for i < len(s.cands) && s.cands[i].need <= done {
		p := s.cands[i].pos
		s.next = &p
		i++
	}
	s.cands = s.cands[i:]
	next := s.next
	due := next != nil && (done >= s.deliveredN.Load() || time.Since(s.cursorSaved) >= cursorEvery)
	if due {
		s.next = nil
	}
	s.mu.Unlock()
	if due {
		s.saveCursor(*next)
	} else if next != nil {
		s.kickCursor() // keepCursor saves it a little later
	}
}

// kickCursor wakes keepCursor (never blocks).
func (s *Session) kickCursor() {
	select {
	case s.cursorKick <- struct{}{}:
	default:
	}
}

// saveCursor persists pos; its time never goes back (a later position is
// no earlier in the archive).
func (s *Session) saveCursor(pos cursorPos) {
	s.mu.Lock()
	if pos.Time.Before(s.saved.Time) {
		pos.Time = s.saved.Time
	}
	s.saved = pos
	s.cursorSaved = time.Now()
	s.mu.Unlock()
	if err := s.cfg.Cursor.SaveCursor(pos.encode()); err != nil {
		s.log.Error("cannot save the archive cursor", "err", err)
	}
}

// keepCursor runs for a link after its replay: it saves a due cursor the
// rate limit held back (cursorEvery later), and where live messages came
// without a stanza-id it asks for the archive's last item once the core
// has handled everything delivered, at most every archiveSync. It sleeps
// until there is such work (advance or number kick it): an idle bridge
// does not wake for it.
func (s *Session) keepCursor(ctx context.Context) {
	var synced time.Time
	for {
		select {
		case <-s.cursorKick:
		case <-ctx.Done():
			return
		}
		if err := sleep(ctx, cursorEvery); err != nil {
			return
		}
		s.advance()
		if !s.syncWanted.Load() {
			continue
		}
		if time.Since(synced) < archiveSync || s.handledN.Load() < s.deliveredN.Load() {
			s.kickCursor() // not yet: look again
			continue
		}
		s.syncWanted.Store(false)
		synced = time.Now()
		pos, err := s.archiveEnd(ctx)
		if err != nil {
			s.log.Debug("archive position", "err", err)
			continue
		}
		s.addCandidate(pos, s.deliveredN.Load())
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
