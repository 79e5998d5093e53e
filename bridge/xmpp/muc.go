package xmpp

// Rooms (XEP-0045): the bot creates a group chat of its own for a chat the
// owner moved there, joins every such room after each login (without its
// history, before the outbox sends anything to one), replays the room's
// archive (XEP-0313 on the room) from where the core last handled a
// message there, keeps each room private to the owner, and tells the owner's
// messages in a room from everyone else's. See the package doc.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"waxmpp/bridge"
)

// RoomCursors keeps the archive cursor of each room (as Cursor does for
// the bot's own archive): the archive id of the last message there the
// core has handled. A room's first cursor (and "^", its start) must be on
// disk when SaveRoomCursor returns; a later one may follow with the
// store's next commit (a crash then replays a little more of the room's
// archive, and the core drops by id what it had handled).
type RoomCursors interface {
	LoadRoomCursor(room string) (string, error)
	// SaveRoomCursor saves id; "" forgets the room.
	SaveRoomCursor(room, id string) error
}

// mucState is the session's rooms, guarded by its mutex.
type mucState struct {
	mu      sync.Mutex
	service string    // the MUC service found by disco, "" not yet
	noneAt  time.Time // when disco found none: asked again after an hour
	rooms   map[string]*mucRoom
	told    map[string]bool // strangers told this run: room + "\x00" + who
	// echoes are the rooms' ids of the bot's latest messages (room +
	// "\x00" + its id → the room's id), from their copies, until the core
	// has them on record (bridge.RoomEcho): what the core sends meanwhile
	// names them so too. Bounded: the oldest go first.
	echoes    map[string]string
	echoOrder []string
	// written is what the writer wrote to rooms on this link (room +
	// "\x00" + id): a record under an id written already is a copy (the
	// core queued a message again after a crash) and is not written again.
	written map[string]bool
	// fixups are stanzas that named one of the bot's messages by its own
	// id, its room's copy not back yet (a deletion right after the
	// message): sent again, naming the room's id, when the copy comes.
	// Bounded: the oldest go first.
	fixups     map[string][]fixup
	fixupOrder []string
	linkCtx    context.Context // the current link's, for work started by SetRooms
	link       *conn
}

// mucRoom is one room the bot is in (or joins at the next login).
type mucRoom struct {
	bridge.Room
	nick      string            // the nick it holds on this link, "" while out
	joining   chan joinResult   // a join in flight (its answer), nil if none
	tryNick   string            // the nick that join asks for
	leaving   bool              // the bot leaves or destroys it: its going is no news
	gone      bool              // told gone: not joined again
	occupants map[string]string // nick → bare real JID ("" if the room hides it)
	mamQuery  string            // the id of the archive query running, "" if none
	// copies is the id of recallCopies' query, "" if none; wanted the
	// ids it looks for; older is set once it met a copy of a message
	// sent before them.
	copies    string
	wanted    map[string]bool
	older     bool
	replaying bool   // until its archive replay on this link completed
	handled   string // archive id of the last handled message, not yet saved
	checking  bool   // a lockdown check runs
	recheck   bool   // another was asked for meanwhile: it runs next
	// bounced are messages the room refused because the bot was not in
	// it (put out, or not yet back after a lost link): they go again,
	// through the outbox, once it is in; tries counts how often each id
	// went back (at most roomResends).
	bounced  [][]byte
	tries    map[string]int
	rejoined bool // a join for them was asked for
}

// roomResends is how often a message a room bounced for the bot's absence
// goes again.
const roomResends = 3

// joinResult is how a join ended: the nick held and whether the room was
// made by it (status 201), or the error the room answered.
type joinResult struct {
	nick    string
	created bool
	err     *StanzaError
	out     bool // put out while the join was in flight: join again
}

// errJoinTimeout: the room did not answer a join.
var errJoinTimeout = errors.New("xmpp: the room did not answer the join")

// errPutOut: the room put the bot out at each try of a join.
var errPutOut = errors.New("xmpp: the room put the bot out while it joined")

// roomOf returns the room bare JID names, nil if it is none of the bot's.
// Called with s.muc.mu held.
func (s *Session) roomOf(jid string) *mucRoom {
	if s.muc.rooms == nil {
		return nil
	}
	return s.muc.rooms[bareJID(jid)]
}

// isRoom reports whether jid (any form) is one of the bot's rooms.
func (s *Session) isRoom(jid string) bool {
	s.muc.mu.Lock()
	defer s.muc.mu.Unlock()
	return s.roomOf(jid) != nil
}

// spec is r's name and nick, read under the lock (SetRooms changes them).
func (s *Session) spec(r *mucRoom) bridge.Room {
	s.muc.mu.Lock()
	defer s.muc.mu.Unlock()
	return r.Room
}

// resourcePart is the part after the slash: an occupant's nick.
func resourcePart(jid string) string {
	_, r, _ := strings.Cut(jid, "/")
	return r
}

// SetRooms sets the rooms the bot is in (bridge.Rooms). Rooms new to the
// list are joined at once when connected, and after every login; rooms no
// longer in it are left.
func (s *Session) SetRooms(rooms []bridge.Room) {
	s.muc.mu.Lock()
	if s.muc.rooms == nil {
		s.muc.rooms = map[string]*mucRoom{}
	}
	keep := map[string]*mucRoom{}
	var added []*mucRoom
	for _, r := range rooms {
		jid := bareJID(r.JID)
		if jid == "" || r.Nick == "" {
			continue
		}
		r.JID = jid
		if old := s.muc.rooms[jid]; old != nil {
			// Its JID is the key and never changes; Name and Nick are
			// read under the lock (spec).
			rename := old.Name != r.Name
			old.Name, old.Nick = r.Name, r.Nick
			keep[jid] = old
			if rename && old.nick != "" {
				added = append(added, old) // checked again: its title changed
			}
			continue
		}
		m := &mucRoom{Room: r, occupants: map[string]string{}}
		keep[jid] = m
		added = append(added, m)
	}
	var left []*mucRoom
	for jid, r := range s.muc.rooms {
		if keep[jid] == nil && r.joining == nil {
			left = append(left, r)
		} else if keep[jid] == nil {
			keep[jid] = r // being created: CreateRoom's caller adds it next
		}
	}
	s.muc.rooms = keep
	c, ctx := s.muc.link, s.muc.linkCtx
	s.muc.mu.Unlock()
	if c == nil {
		return
	}
	for _, r := range left {
		if r.nick != "" {
			s.control(leavePresence(r.JID, r.nick))
		}
	}
	for _, r := range added {
		go func() {
			s.muc.mu.Lock()
			joined := r.nick != ""
			s.muc.mu.Unlock()
			if joined {
				s.lockdown(ctx, r)
				return
			}
			s.enterRoom(ctx, c, r)
		}()
	}
}

// setupRooms runs at each login, before the outbox may send anything: it
// joins every room, then opens the link's gate. What came to a room while
// the bot was out is replayed later (catchUpRooms), from the cursors read
// here, before the joins.
func (s *Session) setupRooms(ctx context.Context, c *conn) map[string]string {
	s.muc.mu.Lock()
	s.muc.link, s.muc.linkCtx = c, ctx
	s.muc.written = map[string]bool{} // a new link: anything may need writing again
	var rooms []*mucRoom
	for _, r := range s.muc.rooms {
		if !r.gone {
			r.nick, r.replaying, r.mamQuery = "", true, ""
			clear(r.occupants)
			rooms = append(rooms, r)
		}
	}
	s.muc.mu.Unlock()
	defer c.openGate()
	from := map[string]string{}
	for _, r := range rooms {
		cur, err := s.loadRoomCursor(r.JID)
		if err != nil {
			s.log.Error("cannot read a room's archive cursor", "room", r.JID, "err", err)
		}
		from[r.JID] = cur
	}
	created := make([]bool, len(rooms))
	var wg sync.WaitGroup
	for i, r := range rooms {
		wg.Go(func() { created[i] = s.join(ctx, c, r) })
	}
	wg.Wait()
	for i, r := range rooms {
		if created[i] {
			from[r.JID] = fromStart // made anew: all in it is new
		}
	}
	s.recallCopies(ctx, rooms)
	return from
}

// maxRecall bounds how many records from the outbox's head a new link
// looks through for messages to rooms (recallCopies).
const maxRecall = 2048

// maxCopyPages bounds how far back recallCopies reads a room's archive.
const maxCopyPages = 10

// recallCopies reads back the archive of each room that one of the
// outbox's first records goes to, so that the bot's own copies there are
// known (echoes) before the writer starts: a message the room has already
// is then not sent again (inRoomAlready). A message the server took just
// before a crash or a lost link would otherwise go twice, and the room
// gives the second its own new id, by which clients tell a room's messages
// apart (Conversations compares the rooms' stanza-ids, not the message
// ids): the owner would see it twice. It reads back until it has met
// every record's copy, or a copy of a message sent before them (the
// outbox is in order: what is older was confirmed), or the archive's
// start. Rooms nothing waits for are not asked.
func (s *Session) recallCopies(ctx context.Context, rooms []*mucRoom) {
	// What an earlier link may have written unconfirmed: at most the
	// writer's window (outWriter.full) at the highest pace, from the head,
	// after what a crash brought back of the removals that waited for a
	// commit (maxLazy, outWriter.remove).
	window := max(minWindow, uint64(s.cfg.Rate)) + maxLazy
	want := map[string]map[string]bool{}
	var after, size uint64
	for n := 0; n < maxRecall && size < window; {
		items, err := s.cfg.Outbox.Peek(after, 64)
		if err != nil {
			s.log.Error("cannot read the outbox", "err", err)
			return
		}
		if len(items) == 0 {
			break
		}
		for _, it := range items {
			after, size, n = it.Seq, size+uint64(len(it.Data)), n+1
			st, err := recordStanza(it.Data)
			if err != nil {
				continue
			}
			room, m := roomMessageTo(st), messageID(st)
			if room == "" || m == nil {
				continue
			}
			if want[room] == nil {
				want[room] = map[string]bool{}
			}
			want[room][string(m)] = true
		}
	}
	for _, r := range rooms {
		if want[r.JID] == nil {
			continue
		}
		qid := "mam-copies-" + s.NewID()
		s.muc.mu.Lock()
		in := r.nick != ""
		if in {
			r.copies, r.wanted, r.older = qid, want[r.JID], false
		}
		s.muc.mu.Unlock()
		if !in {
			continue
		}
		before, pages := "", 0
		for ; pages < maxCopyPages; pages++ {
			first, complete, err := s.roomPageBack(ctx, r, qid, before)
			if err != nil {
				if ctx.Err() == nil {
					s.log.Warn("cannot read back a room's archive; what the bot sent there just before may come twice", "room", r.JID, "err", err)
				}
				break
			}
			s.muc.mu.Lock()
			done := r.older || len(r.wanted) == 0
			s.muc.mu.Unlock()
			if done || complete || first == "" {
				break
			}
			before = first
		}
		s.muc.mu.Lock()
		r.copies, r.wanted = "", nil
		s.muc.mu.Unlock()
		s.log.Debug("a room's archive read back", "room", r.JID, "pages", pages+1)
	}
}

// inRoomAlready reports whether stanza is a message to a room that has
// given its copy of it back already (see recallCopies), or was written on
// this link already; else the writer writes it now. Called by the writer
// only.
func (s *Session) inRoomAlready(stanza []byte) bool {
	room := roomMessageTo(stanza)
	if room == "" {
		return false
	}
	m := messageID(stanza)
	if m == nil {
		return false
	}
	k := room + "\x00" + string(m)
	s.muc.mu.Lock()
	defer s.muc.mu.Unlock()
	if _, ok := s.muc.echoes[k]; ok || s.muc.written[k] {
		return true
	}
	if s.muc.written == nil || len(s.muc.written) >= maxEchoes {
		s.muc.written = map[string]bool{} // bounded; a copy this far apart is rare
	}
	s.muc.written[k] = true // the writer writes it now
	return false
}

// roomMessageTo is the room an encoded groupchat message goes to, "" for
// any other stanza: from the start tag's to and type attributes (the last
// of each, in the writer's form name="value"). The writer calls it for
// every stanza: it allocates only for a room's.
func roomMessageTo(stanza []byte) string {
	const open = "<message"
	if len(stanza) <= len(open) || string(stanza[:len(open)]) != open || !reSpace(stanza[len(open)]) {
		return ""
	}
	end := bytes.IndexByte(stanza, '>')
	if end < 0 {
		return ""
	}
	tag := stanza[:end+1]
	var to, typ []byte
	for i := 0; i < len(tag); i++ {
		if !reSpace(tag[i]) {
			continue
		}
		var name string
		switch rest := tag[i+1:]; {
		case bytes.HasPrefix(rest, []byte(`to="`)):
			name = "to"
		case bytes.HasPrefix(rest, []byte(`type="`)):
			name = "type"
		default:
			continue
		}
		v := tag[i+1+len(name)+2:]
		q := bytes.IndexByte(v, '"')
		if q < 0 {
			continue
		}
		if name == "to" {
			to = v[:q]
		} else {
			typ = v[:q]
		}
		i += len(name) + 3 + q // to the closing quote
	}
	if string(typ) != "groupchat" {
		return ""
	}
	return bareJID(string(to))
}

// reSpace is regexp's \s.
func reSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r' }

// catchUpRooms replays the archives of the rooms joined at this login.
func (s *Session) catchUpRooms(ctx context.Context, from map[string]string) {
	s.muc.mu.Lock()
	var rooms []*mucRoom
	for _, r := range s.muc.rooms {
		if _, ok := from[r.JID]; ok && r.nick != "" {
			rooms = append(rooms, r)
		}
	}
	s.muc.mu.Unlock()
	for _, r := range rooms {
		s.lockdown(ctx, r)
		if err := s.catchUpRoom(ctx, r, from[r.JID]); err != nil && ctx.Err() == nil {
			s.log.Warn("room archive catch-up failed", "room", r.JID, "err", err)
		}
	}
}

// enterRoom joins a room while connected (SetRooms) and replays its
// archive.
func (s *Session) enterRoom(ctx context.Context, c *conn, r *mucRoom) {
	cur, err := s.loadRoomCursor(r.JID)
	if err != nil {
		s.log.Error("cannot read a room's archive cursor", "room", r.JID, "err", err)
	}
	s.muc.mu.Lock()
	r.replaying = true
	s.muc.mu.Unlock()
	if s.join(ctx, c, r) {
		cur = fromStart
	}
	s.muc.mu.Lock()
	in := r.nick != ""
	s.muc.mu.Unlock()
	if in {
		s.resendBounced(r)
	}
	s.lockdown(ctx, r)
	if err := s.catchUpRoom(ctx, r, cur); err != nil && ctx.Err() == nil {
		s.log.Warn("room archive catch-up failed", "room", r.JID, "err", err)
	}
}

// join enters r on link c and reports whether the server made the room
// anew (its data was lost): then it is configured and the owner invited
// again. A room the bot cannot be in any more is told gone.
func (s *Session) join(ctx context.Context, c *conn, r *mucRoom) (created bool) {
	res, err := s.joinRoom(ctx, c, r, s.spec(r).Nick)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("could not join a room", "room", r.JID, "err", err)
		}
		return false
	}
	if res.err != nil {
		s.log.Warn("a room refused the bot", "room", r.JID, "err", res.err)
		switch res.err.Condition {
		case "gone", "item-not-found", "forbidden", "registration-required", "not-allowed", "not-authorized":
			s.muc.mu.Lock()
			r.gone = true
			s.muc.mu.Unlock()
			reason := res.err.Text
			if reason == "" {
				reason = res.err.Condition
			}
			s.note(ctx, &bridge.RoomGone{OwnerMeta: bridge.OwnerMeta{Room: r.JID, Time: time.Now()}, Reason: reason})
		}
		return false
	}
	if !res.created {
		return false
	}
	s.log.Warn("a room was gone on the server and is made again", "room", r.JID)
	if err := s.configureRoom(ctx, r); err != nil {
		s.log.Error("could not configure a room made again", "room", r.JID, "err", err)
	}
	if err := s.saveRoomCursor(r.JID, fromStart); err != nil {
		s.log.Error("cannot save a room's archive cursor", "room", r.JID, "err", err)
	}
	s.invite(r, "Your WhatsApp chat "+s.spec(r).Name+" (its room again)")
	return true
}

// joinRoom sends the join presence and waits for the room's answer. A nick
// taken by someone else (the owner may have picked the same) is tried with
// a "~" added, a few times.
func (s *Session) joinRoom(ctx context.Context, c *conn, r *mucRoom, nick string) (joinResult, error) {
	out := false
	for range 4 {
		ch := make(chan joinResult, 1)
		s.muc.mu.Lock()
		r.joining, r.tryNick, r.leaving = ch, nick, false
		s.mu.Lock()
		show, status := s.show, s.status
		s.mu.Unlock()
		s.muc.mu.Unlock()
		if err := s.sendCtrl(ctx, c, joinPresence(r.JID, nick, show, status, botCaps())); err != nil {
			return joinResult{}, err
		}
		t := time.NewTimer(s.cfg.PingTimeout + s.cfg.WriteTimeout)
		var res joinResult
		select {
		case res = <-ch:
			t.Stop()
		case <-t.C:
			s.muc.mu.Lock()
			r.joining = nil
			s.muc.mu.Unlock()
			return joinResult{}, errJoinTimeout
		case <-ctx.Done():
			t.Stop()
			s.muc.mu.Lock()
			r.joining = nil
			s.muc.mu.Unlock()
			return joinResult{}, ctx.Err()
		case <-c.done:
			t.Stop()
			return joinResult{}, ErrOffline
		}
		if out = res.out; out {
			continue
		}
		if res.err != nil && res.err.Condition == "conflict" {
			nick += "~"
			continue
		}
		return res, nil
	}
	if out {
		go s.rejoin(r) // put out at each try: again later, as after a kick
		return joinResult{}, errPutOut
	}
	return joinResult{err: &StanzaError{Type: "cancel", Condition: "conflict"}}, nil
}

// routeRoomPresence handles a presence from one of the bot's rooms: the
// answer to a join, the bot going out, and who else is in.
func (s *Session) routeRoomPresence(ctx context.Context, p *InPresence) error {
	room, nick := bareJID(p.From), resourcePart(p.From)
	if nick == "" {
		return nil // the room's own presence (its caps)
	}
	u := p.MUC
	if u == nil {
		u = &MUCUser{}
	}
	s.muc.mu.Lock()
	r := s.roomOf(room)
	if r == nil {
		s.muc.mu.Unlock()
		return nil
	}
	if p.Type == "error" {
		if r.joining != nil && nick == r.tryNick {
			r.joining <- joinResult{err: p.Error}
			r.joining = nil
		}
		s.muc.mu.Unlock()
		return nil
	}
	self := u.Has(110) || nick == r.nick || r.joining != nil && nick == r.tryNick && r.nick == ""
	if self {
		var gone *bridge.RoomGone
		switch {
		case p.Type != "unavailable":
			r.nick = nick
			if r.joining != nil {
				r.joining <- joinResult{nick: nick, created: u.Has(201)}
				r.joining = nil
			}
		case u.Has(303): // a new nick
			r.nick = u.Nick
		default:
			r.nick = ""
			clear(r.occupants)
			if r.leaving {
				break
			}
			switch {
			case u.Destroyed, u.Has(301), u.Has(321), u.Has(322):
				r.gone = true
				reason := u.Reason
				if reason == "" {
					reason = map[bool]string{true: "the room was destroyed", false: "the bot was removed from the room"}[u.Destroyed]
				}
				gone = &bridge.RoomGone{OwnerMeta: bridge.OwnerMeta{Room: room, Time: time.Now()}, Reason: reason}
			case r.joining != nil:
				// Put out while a join is in flight (ejabberd: a killed
				// link's leave, under the same full JID, reached the room
				// after this link's join): that join goes again. A join
				// of its own would take the answer, and this one would
				// wait out its timeout with the link's gate closed.
				s.log.Debug("put out of a room while joining it; joining again", "room", room, "codes", u.Codes)
				r.joining <- joinResult{out: true}
				r.joining = nil
			default: // kicked, or the service shut down: back in
				s.muc.mu.Unlock()
				s.log.Warn("the bot was put out of a room; joining again", "room", room, "codes", u.Codes)
				go s.rejoin(r)
				return nil
			}
		}
		s.muc.mu.Unlock()
		if gone != nil {
			return s.note(ctx, gone)
		}
		return nil
	}
	real := bareJID(u.JID)
	if p.Type == "unavailable" {
		delete(r.occupants, nick)
		if u.Has(303) && u.Nick != "" {
			r.occupants[u.Nick] = real
		}
		s.muc.mu.Unlock()
		return nil
	}
	r.occupants[nick] = real
	s.muc.mu.Unlock()
	if real != s.owner && real != s.bare {
		return s.stranger(ctx, room, real, nick)
	}
	return nil
}

// roomBounced handles a room's error about a message the bot wrote: when
// the room refused it because the bot was not an occupant (XEP-0045 §7.4:
// not-acceptable; ejabberd still routes to a link that lost its place, and
// puts a new link out while an old one lingers), the message is kept and
// goes again once the bot is back in (resendBounced). Anything else is
// logged: the room will not take it.
func (s *Session) roomBounced(r *mucRoom, room string, m *Inbound) {
	stanza := s.sent.take(m.ID)
	if stanza == nil || roomMessageTo(stanza) != room || m.Error == nil || m.Error.Condition != "not-acceptable" {
		s.log.Warn("a room bounced a message", "room", room, "id", m.ID, "err", m.Error)
		return
	}
	s.muc.mu.Lock()
	defer s.muc.mu.Unlock()
	if r.tries == nil {
		r.tries = map[string]int{}
	}
	if r.tries[m.ID] >= roomResends {
		s.log.Warn("a room bounced a message again; given up", "room", room, "id", m.ID, "err", m.Error)
		return
	}
	r.tries[m.ID]++
	r.bounced = append(r.bounced, stanza)
	delete(s.muc.written, room+"\x00"+m.ID) // it did not get in: write it again
	s.log.Info("a room bounced a message while the bot was not in it; it goes again once the bot is back", "room", room, "id", m.ID)
	if r.nick != "" && r.joining == nil && !r.rejoined {
		// The bot holds a nick on this link and the room says it is not
		// in: it was put out without a word; joining again resends.
		r.rejoined = true
		go s.rejoin(r)
	}
}

// resendBounced queues again, through the outbox, what r bounced while the
// bot was out of it.
func (s *Session) resendBounced(r *mucRoom) {
	s.muc.mu.Lock()
	recs := make([][]byte, 0, len(r.bounced))
	for _, st := range r.bounced {
		recs = append(recs, record(timeNow(), st))
	}
	r.bounced, r.rejoined = nil, false
	if len(r.tries) > 4*maxEchoes {
		clear(r.tries)
	}
	s.muc.mu.Unlock()
	if len(recs) == 0 {
		return
	}
	if _, err := s.cfg.Outbox.Enqueue(recs...); err != nil {
		s.log.Error("cannot queue again what a room bounced", "room", r.JID, "err", err)
		return
	}
	s.log.Info("sending again what a room bounced", "room", r.JID, "messages", len(recs))
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// rejoin enters a room the bot was put out of, on the current link.
func (s *Session) rejoin(r *mucRoom) {
	s.muc.mu.Lock()
	c, ctx := s.muc.link, s.muc.linkCtx
	s.muc.mu.Unlock()
	if c == nil || sleep(ctx, time.Second) != nil {
		return
	}
	s.enterRoom(ctx, c, r)
}

// stranger tells the core, once per run, of someone else in a room.
func (s *Session) stranger(ctx context.Context, room, real, nick string) error {
	who := real
	if who == "" {
		who = "nick:" + nick
	}
	s.muc.mu.Lock()
	if s.muc.told == nil {
		s.muc.told = map[string]bool{}
	}
	told := s.muc.told[room+"\x00"+who]
	s.muc.told[room+"\x00"+who] = true
	s.muc.mu.Unlock()
	s.dropped.Add(1)
	if told {
		return nil
	}
	s.log.Warn("someone else is in a room", "room", room, "jid", real, "nick", nick)
	return s.note(ctx, &bridge.RoomStranger{OwnerMeta: bridge.OwnerMeta{Room: room, Time: time.Now()}, JID: real, Nick: nick})
}

// note hands the core a notice about a room. Backpressure as Inbound: the
// reader waits while the core is busy.
func (s *Session) note(ctx context.Context, ev bridge.OwnerEvent) error {
	select {
	case s.notes <- ev:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// roomMessage returns the room a message came through, "" when none of
// the bot's: a groupchat message, an error from a room, or a result of a
// room's archive.
func (s *Session) roomMessage(m *Inbound) string {
	if m.Archived != nil && m.Archived.From != "" && s.isRoom(m.Archived.From) {
		return bareJID(m.Archived.From)
	}
	if s.isRoom(m.From) {
		return bareJID(m.From)
	}
	return ""
}

// routeRoomMessage handles a message from one of the bot's rooms: the
// owner's messages (live or replayed from the room's archive) go to the
// core, and the room's copies of the bot's own (the room's id for them);
// everyone else's are dropped, and the owner told once; a settings change
// brings a check.
func (s *Session) routeRoomMessage(ctx context.Context, c *conn, room string, m *Inbound) error {
	s.muc.mu.Lock()
	r := s.roomOf(room)
	if r == nil {
		s.muc.mu.Unlock()
		return nil
	}
	copies := false
	if m.Archived != nil {
		// Only the room's own archive, answering our own query.
		copies = r.copies != "" && m.Archived.QueryID == r.copies
		if !copies && (r.mamQuery == "" || m.Archived.QueryID != r.mamQuery) || bareJID(m.Archived.From) != room {
			s.muc.mu.Unlock()
			return nil
		}
	}
	nick := resourcePart(m.From)
	real := ""
	if m.MUC != nil && m.MUC.JID != "" {
		real = bareJID(m.MUC.JID) // the archive tells who wrote it
	} else if m.Archived == nil {
		real = r.occupants[nick]
	}
	ourNick := r.nick
	s.muc.mu.Unlock()
	if copies {
		// recallCopies: the bot's own tell what the room has; the rest is
		// the catch-up's.
		id, sid := cmpOr(m.OriginID, m.ID), archiveID(m, room)
		if real != s.bare || m.Type != "groupchat" || id == "" || sid == "" {
			return nil
		}
		s.echoed(room, id, sid)
		s.muc.mu.Lock()
		if r.wanted[id] {
			delete(r.wanted, id)
		} else if m.HasBody {
			r.older = true // what bypasses the outbox (markers, typing) has none
		}
		s.muc.mu.Unlock()
		return nil
	}
	switch {
	case m.Type == "error":
		s.roomBounced(r, room, m)
		return nil
	case nick == "":
		// From the room itself: a settings change (XEP-0045 §10.2.1:
		// 104, 170-174) or an affiliation change brings a check.
		if u := m.MUC; u != nil && (u.Has(104) || u.Has(170) || u.Has(171) || u.Has(172) || u.Has(173) || u.Has(174) || u.Affiliation != "") {
			s.muc.mu.Lock()
			c, lctx := s.muc.link, s.muc.linkCtx
			s.muc.mu.Unlock()
			if c != nil {
				go s.lockdown(lctx, r)
			}
		}
		return nil
	case m.Type != "groupchat":
		s.drop("room-private", m.From) // private messages through the room
		return nil
	}
	switch {
	case real == s.bare || real == "" && nick == ourNick && m.Archived == nil:
		sid := archiveID(m, room)
		if sid == "" {
			return nil
		}
		m.Echo = true
		s.echoed(room, cmpOr(m.OriginID, m.ID), sid)
	case real == s.owner:
	case real == "" && m.Archived == nil && ourNick == "":
		// Before the bot is in the room on this link (ejabberd still
		// routes the room's messages to the full JID an earlier link held
		// there): who wrote it is not known yet, and it is no stranger's
		// for that. The archive's replay after the join brings it.
		s.log.Debug("a room's message before the join: left to its archive", "room", room)
		return nil
	default:
		return s.stranger(ctx, room, real, nick)
	}
	m.Room = room
	if key := m.OriginID; key != "" || m.ID != "" {
		if key == "" {
			key = m.ID
		}
		if s.recent.seen(room + "\x00" + key) {
			s.duplicates.Add(1)
			return nil
		}
	}
	s.inflight.Add(1)
	s.delivered(c.sm, c.seq) // XEP-0198: counted once the core has handled it
	select {
	case s.in <- m:
		return nil
	case <-ctx.Done():
		s.inflight.Add(-1)
		s.undeliver()
		return context.Cause(ctx)
	}
}

// maxEchoes bounds Session.muc.echoes: far more than the core takes to
// record them.
const maxEchoes = 1024

// echoed remembers the room's id for one of the bot's messages.
func (s *Session) echoed(room, id, roomID string) {
	if id == "" {
		return
	}
	s.muc.mu.Lock()
	defer s.muc.mu.Unlock()
	if s.muc.echoes == nil {
		s.muc.echoes = map[string]string{}
	}
	k := room + "\x00" + id
	if _, ok := s.muc.echoes[k]; ok {
		return
	}
	s.muc.echoes[k] = roomID
	s.muc.echoOrder = append(s.muc.echoOrder, k)
	if len(s.muc.echoOrder) > maxEchoes {
		delete(s.muc.echoes, s.muc.echoOrder[0])
		s.muc.echoOrder = s.muc.echoOrder[1:]
	}
	if fs := s.muc.fixups[k]; len(fs) > 0 {
		delete(s.muc.fixups, k) // its place in fixupOrder goes when it comes round
		go s.sendFixups(fs, roomID)
	}
}

// fixup is a stanza to send again once the room's id for one of the
// bot's messages is known: set applies the id.
type fixup struct {
	m       Message
	set     func(m *Message, roomID string)
	durable bool
}

// maxFixups bounds Session.muc.fixups.
const maxFixups = 256

// fixLater keeps m (which names the bot's message id in room by that id)
// to be sent again naming the room's id, when the room's copy comes.
func (s *Session) fixLater(room, id string, f fixup) {
	if !strings.HasPrefix(id, "wa-") && !strings.HasPrefix(id, "wx-") {
		return // not one of the bot's own ids
	}
	s.muc.mu.Lock()
	defer s.muc.mu.Unlock()
	if s.muc.fixups == nil {
		s.muc.fixups = map[string][]fixup{}
	}
	k := bareJID(room) + "\x00" + id
	if len(s.muc.fixups[k]) == 0 {
		s.muc.fixupOrder = append(s.muc.fixupOrder, k)
	}
	s.muc.fixups[k] = append(s.muc.fixups[k], f)
	if len(s.muc.fixupOrder) > maxFixups {
		delete(s.muc.fixups, s.muc.fixupOrder[0])
		s.muc.fixupOrder = s.muc.fixupOrder[1:]
	}
}

// sendFixups sends again what waited for the room's id of a message.
func (s *Session) sendFixups(fs []fixup, roomID string) {
	var durable []Message
	for _, f := range fs {
		m := f.m
		m.ID = s.NewID()
		f.set(&m, roomID)
		if !f.durable {
			if err := s.SendNow(m); err != nil {
				s.log.Debug("marker not sent again", "err", err)
			}
			continue
		}
		durable = append(durable, m)
	}
	if len(durable) > 0 {
		if _, err := s.SendBatch(durable); err != nil {
			s.log.Error("cannot queue what names a room's message", "err", err)
		}
	}
}

// inRoom is the id that names message id in room: the room's own, when
// its copy came back and told it, else id.
func (s *Session) inRoom(room, id string) string {
	if id == "" {
		return ""
	}
	s.muc.mu.Lock()
	defer s.muc.mu.Unlock()
	if rid, ok := s.muc.echoes[bareJID(room)+"\x00"+id]; ok {
		return rid
	}
	return id
}

// roomHandled records that the core has dealt with a message from a room
// whose archive id is archiveID; like handled, the cursors are saved at
// quiet moments.
func (s *Session) roomHandled(room, archiveID string) {
	s.smHandled()
	n := s.inflight.Add(-1)
	s.muc.mu.Lock()
	if r := s.roomOf(room); r != nil && archiveID != "" {
		r.handled = archiveID
	}
	s.muc.mu.Unlock()
	if n <= 0 {
		s.saveRoomCursors()
	}
}

// saveRoomCursors saves the cursor of every room whose replay is done,
// when every message delivered has been handled.
func (s *Session) saveRoomCursors() {
	if s.inflight.Load() > 0 {
		return
	}
	type save struct{ room, id string }
	var saves []save
	s.muc.mu.Lock()
	for _, r := range s.muc.rooms {
		if r.handled != "" && !r.replaying {
			saves = append(saves, save{r.JID, r.handled})
			r.handled = ""
		}
	}
	s.muc.mu.Unlock()
	for _, sv := range saves {
		if err := s.saveRoomCursor(sv.room, sv.id); err != nil {
			s.log.Error("cannot save a room's archive cursor", "room", sv.room, "err", err)
		}
	}
}

func (s *Session) loadRoomCursor(room string) (string, error) {
	if s.cfg.Rooms == nil {
		return "", nil
	}
	return s.cfg.Rooms.LoadRoomCursor(room)
}

func (s *Session) saveRoomCursor(room, id string) error {
	if s.cfg.Rooms == nil {
		return nil
	}
	return s.cfg.Rooms.SaveRoomCursor(room, id)
}

// catchUpRoom replays a room's archive after the cursor after (the room
// cursor's "^": from its start). With no cursor it only records where
// the archive ends now. Results go through routeRoomMessage.
func (s *Session) catchUpRoom(ctx context.Context, r *mucRoom, after string) (err error) {
	defer func() {
		s.muc.mu.Lock()
		r.mamQuery = ""
		if err == nil {
			r.replaying = false
		} else {
			// Not replayed to the end (the link went): the cursor stays
			// where it was, or what came live, before and after, would
			// move it past what was not replayed yet. The next login
			// replays from there again (the core drops what it handled
			// already).
			r.handled = ""
		}
		s.muc.mu.Unlock()
		s.saveRoomCursors()
	}()
	if after == "" {
		last, _, err := s.roomPage(ctx, r, "mam-pos-"+s.NewID(), "", true)
		if err != nil {
			return err
		}
		return s.saveRoomCursor(r.JID, cmpOr(last, fromStart))
	}
	qid := "mam-" + s.NewID()
	s.muc.mu.Lock()
	r.mamQuery = qid
	s.muc.mu.Unlock()
	s.log.Debug("replaying a room's archive", "room", r.JID, "after", after)
	for {
		last, complete, err := s.roomPage(ctx, r, qid, after, false)
		if err != nil {
			if strings.Contains(err.Error(), "item-not-found") {
				// The room's archive no longer has the cursor (expired):
				// from its end, rather than everything again.
				s.log.Warn("a room's archive no longer holds the last handled message; some messages written there while waxmpp was away may be missing", "room", r.JID, "cursor", after)
				return s.catchUpRoom(ctx, r, "")
			}
			return err
		}
		if complete || last == "" {
			return nil
		}
		after = last
	}
}

// roomPage asks a room's archive for one page after the archive id after
// (or, with latest, just the newest message: the position).
func (s *Session) roomPage(ctx context.Context, r *mucRoom, qid, after string, latest bool) (last string, complete bool, err error) {
	var w writer
	w.open("query", NSMAM, "queryid", qid)
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
	res, err := s.iq(ctx, IQ{Type: "set", To: r.JID, Payload: Inner{w.bytes()}})
	if err != nil {
		return "", false, fmt.Errorf("xmpp: archive query of %s: %w", r.JID, err)
	}
	var fin mamFin
	if err := res.Unmarshal(&fin); err != nil {
		return "", false, err
	}
	return fin.Set.Last, fin.Complete == "true", nil
}

// roomPageBack asks a room's archive for the page of messages before the
// archive id before ("" : the newest); first is the page's oldest.
func (s *Session) roomPageBack(ctx context.Context, r *mucRoom, qid, before string) (first string, complete bool, err error) {
	var w writer
	w.open("query", NSMAM, "queryid", qid)
	w.open("set", NSRSM)
	w.elem("max", "", fmt.Sprint(mamPage))
	w.elem("before", "", before)
	w.close()
	w.close()
	res, err := s.iq(ctx, IQ{Type: "set", To: r.JID, Payload: Inner{w.bytes()}})
	if err != nil {
		return "", false, fmt.Errorf("xmpp: archive query of %s: %w", r.JID, err)
	}
	var fin mamFin
	if err := res.Unmarshal(&fin); err != nil {
		return "", false, err
	}
	return fin.Set.First, fin.Complete == "true", nil
}

// ---- creating, keeping and destroying rooms ----

// mucService finds the group chat service among the server's disco items:
// an item whose identity is conference/text with the MUC feature. A
// server with none is asked again after an hour.
func (s *Session) mucService(ctx context.Context) (string, error) {
	s.muc.mu.Lock()
	svc, none := s.muc.service, !s.muc.noneAt.IsZero() && time.Since(s.muc.noneAt) < time.Hour
	s.muc.mu.Unlock()
	if svc != "" {
		return svc, nil
	}
	if none {
		return "", bridge.ErrNoRooms
	}
	res, err := s.iq(ctx, IQ{Type: "get", To: s.domain, Payload: Inner{[]byte(`<query xmlns="` + NSDiscoItems + `"/>`)}})
	if err != nil {
		return "", fmt.Errorf("xmpp: disco#items %s: %w", s.domain, err)
	}
	var items discoItems
	if err := res.Unmarshal(&items); err != nil {
		return "", fmt.Errorf("xmpp: disco#items %s: %w", s.domain, err)
	}
	for _, it := range items.Items {
		res, err := s.iq(ctx, IQ{Type: "get", To: it.JID, Payload: Inner{[]byte(`<query xmlns="` + NSDiscoInfo + `"/>`)}})
		if err != nil {
			if ctx.Err() != nil {
				return "", ctx.Err()
			}
			continue // an item that does not answer is not our service
		}
		var info discoInfoResult
		if res.Unmarshal(&info) != nil {
			continue
		}
		conference, muc := false, false
		for _, id := range info.Identities {
			conference = conference || id.Category == "conference" && id.Type == "text"
		}
		for _, f := range info.Features {
			muc = muc || f.Var == NSMUC
		}
		if conference && muc {
			svc := strings.ToLower(it.JID)
			s.muc.mu.Lock()
			s.muc.service = svc
			s.muc.mu.Unlock()
			return svc, nil
		}
	}
	s.muc.mu.Lock()
	s.muc.noneAt = time.Now()
	s.muc.mu.Unlock()
	return "", bridge.ErrNoRooms
}

// CreateRoom creates a room for a chat (bridge.Rooms): a fresh, random
// name on the MUC service (a name that exists already is not ours and is
// left for another), configured private, the owner a member and invited.
func (s *Session) CreateRoom(ctx context.Context, spec bridge.Room, invite string) (bridge.Room, error) {
	s.mu.Lock()
	c := s.cur
	s.mu.Unlock()
	if c == nil {
		return bridge.Room{}, ErrOffline
	}
	svc, err := s.mucService(ctx)
	if err != nil {
		return bridge.Room{}, err
	}
	if spec.Nick == "" {
		spec.Nick = "WhatsApp"
	}
	for range 3 {
		b := make([]byte, 6)
		rand.Read(b)
		spec.JID = "wa-" + hex.EncodeToString(b) + "@" + svc
		r := &mucRoom{Room: spec, occupants: map[string]string{}}
		s.muc.mu.Lock()
		if s.muc.rooms == nil {
			s.muc.rooms = map[string]*mucRoom{}
		}
		s.muc.rooms[spec.JID] = r
		s.muc.mu.Unlock()
		forget := func() {
			s.muc.mu.Lock()
			delete(s.muc.rooms, spec.JID)
			s.muc.mu.Unlock()
		}
		res, err := s.joinRoom(ctx, c, r, spec.Nick)
		if err != nil {
			forget()
			return bridge.Room{}, err
		}
		if res.err != nil {
			forget()
			if res.err.Condition == "registration-required" || res.err.Condition == "conflict" {
				continue // a room of someone else's by that name
			}
			return bridge.Room{}, &bridge.RoomRefused{Condition: res.err.Condition, Text: res.err.Text}
		}
		if !res.created {
			s.muc.mu.Lock()
			r.leaving = true
			s.muc.mu.Unlock()
			s.control(leavePresence(spec.JID, res.nick))
			forget()
			continue
		}
		if err := s.configureRoom(ctx, r); err != nil {
			s.destroy(ctx, r, "waxmpp could not configure this room")
			forget()
			var se *StanzaError
			if errors.As(err, &se) {
				return bridge.Room{}, &bridge.RoomRefused{Condition: se.Condition, Text: se.Text}
			}
			return bridge.Room{}, err
		}
		if err := s.saveRoomCursor(spec.JID, fromStart); err != nil {
			s.destroy(ctx, r, "waxmpp could not save this room")
			forget()
			return bridge.Room{}, err
		}
		s.muc.mu.Lock()
		r.Nick = res.nick // the nick the room gave
		spec.Nick = res.nick
		s.muc.mu.Unlock()
		s.invite(r, invite)
		s.log.Info("room created", "room", spec.JID)
		return spec, nil
	}
	return bridge.Room{}, &bridge.RoomRefused{Condition: "conflict", Text: "no free room name"}
}

// configureRoom submits the private settings and makes the owner a member.
func (s *Session) configureRoom(ctx context.Context, r *mucRoom) error {
	res, err := s.iq(ctx, IQ{Type: "get", To: r.JID, Payload: roomQuery(NSMUCOwner, nil)})
	if err != nil {
		return stanzaErr(res, err)
	}
	var form configForm
	if err := res.Unmarshal(&form); err != nil {
		return err
	}
	offered, _ := settingsToChange(form, roomSettings(s.spec(r).Name))
	if res, err := s.iq(ctx, IQ{Type: "set", To: r.JID, Payload: configSubmit(offered)}); err != nil {
		return stanzaErr(res, err)
	}
	return s.setAffiliation(ctx, r.JID, s.owner, "member")
}

// stanzaErr is the server's stanza error in res, or err.
func stanzaErr(res *InIQ, err error) error {
	if res != nil && res.Error != nil {
		return res.Error
	}
	return err
}

func (s *Session) setAffiliation(ctx context.Context, room, jid, aff string) error {
	res, err := s.iq(ctx, IQ{Type: "set", To: room, Payload: roomQuery(NSMUCAdmin, func(w *writer) {
		w.empty("item", "", "affiliation", aff, "jid", jid)
	})})
	return stanzaErr(res, err)
}

// lockdown checks that r is still private to the owner, and makes it so
// again: its settings (someone with the right, a server admin, changed
// them), its title, and who may be in it (only the bot and the owner).
// One check runs per room at a time; one asked for meanwhile runs after
// it (the title may have changed).
func (s *Session) lockdown(ctx context.Context, r *mucRoom) {
	s.muc.mu.Lock()
	if r.checking || r.gone {
		r.recheck = r.checking
		s.muc.mu.Unlock()
		return
	}
	r.checking = true
	s.muc.mu.Unlock()
	for {
		s.check(ctx, r)
		s.muc.mu.Lock()
		again := r.recheck && ctx.Err() == nil
		r.recheck, r.checking = false, again
		s.muc.mu.Unlock()
		if !again {
			return
		}
	}
}

// check is one lockdown check.
func (s *Session) check(ctx context.Context, r *mucRoom) {
	name := s.spec(r).Name
	res, err := s.iq(ctx, IQ{Type: "get", To: r.JID, Payload: roomQuery(NSMUCOwner, nil)})
	if err != nil {
		s.log.Warn("cannot read a room's settings", "room", r.JID, "err", err)
		return
	}
	var form configForm
	if err := res.Unmarshal(&form); err != nil {
		s.log.Warn("cannot read a room's settings", "room", r.JID, "err", err)
		return
	}
	if offered, differs := settingsToChange(form, roomSettings(name)); differs {
		var what []string
		for _, o := range offered {
			if !sameValue(form.value(o.Var), o.Value) {
				what = append(what, o.Var+"="+form.value(o.Var))
			}
		}
		s.log.Warn("a room's settings were changed; setting them back", "room", r.JID, "fields", what)
		if res, err := s.iq(ctx, IQ{Type: "set", To: r.JID, Payload: configSubmit(offered)}); err != nil {
			s.log.Error("cannot set a room's settings back", "room", r.JID, "err", stanzaErr(res, err))
		}
	}
	ownerIsMember := false
	for _, aff := range []string{"owner", "admin", "member", "outcast"} {
		res, err := s.iq(ctx, IQ{Type: "get", To: r.JID, Payload: roomQuery(NSMUCAdmin, func(w *writer) {
			w.empty("item", "", "affiliation", aff)
		})})
		if err != nil {
			continue // a server may not list every affiliation
		}
		var items affiliationItems
		if res.Unmarshal(&items) != nil {
			continue
		}
		for _, it := range items.Items {
			who := bareJID(it.JID)
			switch {
			case who == s.bare:
			case who == s.owner && aff == "member":
				ownerIsMember = true
			case who == s.owner:
				// made owner, admin or banned: a member again, below
			default:
				s.log.Warn("someone else was let into a room; taken out", "room", r.JID, "jid", who, "affiliation", aff)
				if err := s.setAffiliation(ctx, r.JID, who, "none"); err != nil {
					s.log.Warn("cannot take someone out of a room", "room", r.JID, "jid", who, "err", err)
				}
			}
		}
	}
	if !ownerIsMember {
		if err := s.setAffiliation(ctx, r.JID, s.owner, "member"); err != nil {
			s.log.Warn("cannot make the owner a member of a room", "room", r.JID, "err", err)
		}
	}
}

// invite queues an XEP-0249 invitation of the owner into r, durably.
func (s *Session) invite(r *mucRoom, reason string) {
	b := inviteMessage(s.NewID(), s.cfg.Owner, r.JID, reason)
	if _, err := s.cfg.Outbox.Enqueue(record(time.Now(), b)); err != nil {
		s.log.Error("cannot queue a room's invitation", "room", r.JID, "err", err)
		return
	}
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// DestroyRoom destroys a room of the bot's (bridge.Rooms); one the server
// has no more is destroyed already.
func (s *Session) DestroyRoom(ctx context.Context, jid, reason string) error {
	jid = bareJID(jid)
	s.muc.mu.Lock()
	r := s.roomOf(jid)
	if r == nil {
		r = &mucRoom{Room: bridge.Room{JID: jid}, occupants: map[string]string{}}
	}
	r.leaving = true
	s.muc.mu.Unlock()
	if err := s.destroy(ctx, r, reason); err != nil {
		s.muc.mu.Lock()
		r.leaving = false
		s.muc.mu.Unlock()
		return err
	}
	s.muc.mu.Lock()
	delete(s.muc.rooms, jid)
	s.muc.mu.Unlock()
	if err := s.saveRoomCursor(jid, ""); err != nil {
		s.log.Warn("cannot forget a room's archive cursor", "room", jid, "err", err)
	}
	return nil
}

func (s *Session) destroy(ctx context.Context, r *mucRoom, reason string) error {
	res, err := s.iq(ctx, IQ{Type: "set", To: r.JID, Payload: roomQuery(NSMUCOwner, func(w *writer) {
		w.open("destroy", "")
		w.elem("reason", "", reason)
		w.close()
	})})
	if err != nil && res != nil && res.Error != nil && (res.Error.Condition == "item-not-found" || res.Error.Condition == "gone") {
		return nil
	}
	return err
}

// roomPresences sends the bot's presence to every room it is in, so that
// its health shows there too.
func (s *Session) roomPresences() {
	s.muc.mu.Lock()
	type p struct{ jid, nick string }
	var in []p
	for _, r := range s.muc.rooms {
		if r.nick != "" {
			in = append(in, p{r.JID, r.nick})
		}
	}
	s.muc.mu.Unlock()
	s.mu.Lock()
	show, status := s.show, s.status
	s.mu.Unlock()
	for _, r := range in {
		var w writer
		w.open("presence", "", "to", r.jid+"/"+r.nick)
		if show != "" {
			w.elem("show", "", show)
		}
		if status != "" {
			w.elem("status", "", status)
		}
		caps := botCaps()
		w.empty("c", NSCaps, "hash", caps.Hash, "node", caps.Node, "ver", caps.Ver)
		w.close()
		s.control(w.bytes())
	}
}

// linkDown forgets the rooms' state of a link that is over.
func (s *Session) linkDown(c *conn) {
	s.muc.mu.Lock()
	defer s.muc.mu.Unlock()
	if s.muc.link != c {
		return
	}
	s.muc.link, s.muc.linkCtx = nil, nil
	for _, r := range s.muc.rooms {
		r.nick = ""
		clear(r.occupants)
	}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
