package xmpp

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	pt "waxmpp/bridge/prosodytest"
)

// The archive cursor against real servers. Most of these run on a server
// without XEP-0198 (Prosody before 0.12, or one whose admin switched it
// off), where the archive is the only place a message the bot never
// handled is kept.

// archiveRun starts a Session on srv with the cursor cur; stop (which may
// be called again) ends it as a crash would (nothing handled after it).
func archiveRun(t *testing.T, srv *pt.Server, cur *memCursor, tweak ...func(*Session)) (s *Session, stop func()) {
	t.Helper()
	cfg := botConfig(t, srv)
	cfg.Cursor = cur
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range tweak {
		f(s)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	waitFor(t, 10*time.Second, "connected", func() bool { return s.connected.Load() })
	waitFor(t, 5*time.Second, "cursor initialised", func() bool { id, _ := cur.LoadCursor(); return id != "" })
	var once sync.Once
	return s, func() { once.Do(func() { cancel(); <-done }) }
}

// next is the next owner message s delivers, within 5 s.
func next(t *testing.T, s *Session) *Inbound {
	t.Helper()
	select {
	case m := <-s.Inbound():
		return m
	case <-time.After(5 * time.Second):
		t.Fatal("no owner message within 5s")
		return nil
	}
}

// none fails if s delivers anything within d.
func none(t *testing.T, s *Session, d time.Duration) {
	t.Helper()
	select {
	case m := <-s.Inbound():
		t.Fatalf("unexpected %s (archived %v)", m.ID, m.Archived != nil)
	case <-time.After(d):
	}
}

// ownerSays sends a chat message with id as its id and body.
func ownerSays(owner *pt.Client, bot, id string) {
	owner.Send("<message to='" + bot + "' type='chat' id='" + id + "'><body>" + id + "</body></message>")
}

// cursorAt waits until cur holds the archive id want.
func cursorAt(t *testing.T, cur *memCursor, what, want string) {
	t.Helper()
	waitFor(t, 5*time.Second, "cursor at "+what, func() bool { id, _ := cur.LoadCursor(); return decodeCursor(id).ID == want })
}

// TestArchiveExpiredCursor: the archive expires the cursor's message (a
// quiet week under Prosody's archive_expires_after). A message the bot got
// but never handled before it crashed is replayed all the same, by time.
// Before, the archive's item-not-found reset the cursor to the archive's
// end and the message was lost.
func TestArchiveExpiredCursor(t *testing.T) {
	// The archive keeps messages 12 s: m1 is let age past that, m2 must
	// not age past it while Prosody restarts to expire (seconds under
	// load: with 4 s m2 expired too once).
	const keep = 12 * time.Second
	srv := pt.Start(t, pt.Options{NoStreamManagement: true, ArchiveExpiry: strconv.Itoa(int(keep.Seconds()))})
	owner := srv.Dial(t, "owner")
	bot := srv.JID("bot")
	cur := &memCursor{}
	s1, stop1 := archiveRun(t, srv, cur)
	ownerSays(owner, bot, "m1")
	m1 := next(t, s1)
	s1.handled()
	cursorAt(t, cur, "m1", archiveID(m1, s1.bare))
	time.Sleep(keep + time.Second) // m1 is older than the archive keeps
	ownerSays(owner, bot, "m2")
	sent := time.Now()
	next(t, s1) // delivered, never handled: waxmpp dies
	stop1()
	srv.ExpireArchive()
	if d := time.Since(sent); d >= keep {
		t.Fatalf("Prosody took %v to restart and expire, longer than its archive keeps m2 (%v): nothing left to test", d.Round(time.Millisecond), keep)
	}
	srv.Dial(t, "owner") // the owner online again after the restart

	s2, stop2 := archiveRun(t, srv, cur)
	defer stop2()
	if m := next(t, s2); m.ID != "m2" || m.Archived == nil {
		t.Fatalf("after the archive expired the cursor got %s (archived %v), want m2 from the archive", m.ID, m.Archived != nil)
	}
	s2.handled()
	none(t, s2, time.Second)
	// The cursor has moved on from the expired item: the next login
	// replays nothing by time.
	waitFor(t, 5*time.Second, "cursor moved on", func() bool { id, _ := cur.LoadCursor(); return decodeCursor(id).ID != archiveID(m1, s1.bare) })
	stop2()
	s3, stop3 := archiveRun(t, srv, cur)
	defer stop3()
	none(t, s3, time.Second)
	if p := s3.replayPages.Load(); p != 1 {
		t.Errorf("the next login asked for %d pages, want 1 (the cursor is in the archive again)", p)
	}
}

// TestArchiveCursorFollowsArchive: the owner writes nothing while the bot
// relays; after a complete replay the cursor is the archive's last item
// (the bot's latest message), not the owner's last message of long ago,
// which the archive will expire first. On a server that puts no stanza-id
// on live messages, the cursor follows the archive at quiet moments, so
// that the next login does not replay the link's traffic again.
func TestArchiveCursorFollowsArchive(t *testing.T) {
	forServers(t, pt.Kinds, pt.Options{NoStreamManagement: true}, func(t *testing.T, srv *pt.Server) {
		owner := srv.Dial(t, "owner")
		bot := srv.JID("bot")
		cur := &memCursor{}
		s1, stop1 := archiveRun(t, srv, cur)
		ownerSays(owner, bot, "m1")
		m1 := next(t, s1)
		s1.handled()
		cursorAt(t, cur, "m1", archiveID(m1, s1.bare))
		for i := range 3 {
			if _, err := s1.Send(Message{Body: fmt.Sprintf("relayed %d", i)}); err != nil {
				t.Fatal(err)
			}
		}
		for range 3 {
			owner.Next(t, 5*time.Second, pt.Messages)
		}
		stop1()

		defer func(d time.Duration) { archiveSync = d }(archiveSync)
		archiveSync = 200 * time.Millisecond
		s2, stop2 := archiveRun(t, srv, cur, func(s *Session) { s.stripLiveIDs = true })
		waitFor(t, 5*time.Second, "replay done", func() bool { return !s2.replaying.Load() })
		end, err := s2.archiveEnd(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if end.ID == archiveID(m1, s1.bare) {
			t.Fatal("the archive's last item is m1: the bot's messages were not archived")
		}
		cursorAt(t, cur, "the archive's end", end.ID)
		for i := range 5 {
			ownerSays(owner, bot, fmt.Sprint("live", i))
			next(t, s2)
			s2.handled()
		}
		waitFor(t, 5*time.Second, "cursor past the live messages", func() bool {
			id, _ := cur.LoadCursor()
			return decodeCursor(id).ID != end.ID
		})
		stop2()
		s3, stop3 := archiveRun(t, srv, cur)
		defer stop3()
		none(t, s3, time.Second)
	})
}

// TestArchiveCursorUnderTraffic: the core never catches up (another
// message is always in flight), as under a burst; the cursor follows what
// it handled all the same, so a crash replays only what was not handled.
func TestArchiveCursorUnderTraffic(t *testing.T) {
	srv := pt.Start(t, pt.Options{NoStreamManagement: true})
	owner := srv.Dial(t, "owner")
	cur := &memCursor{}
	s1, stop1 := archiveRun(t, srv, cur)
	bot := srv.JID("bot")
	ownerSays(owner, bot, "m1")
	ownerSays(owner, bot, "m2")
	m1, m2 := next(t, s1), next(t, s1)
	s1.handled() // m2 still in flight
	cursorAt(t, cur, "m1", archiveID(m1, s1.bare))
	ownerSays(owner, bot, "m3")
	next(t, s1)
	time.Sleep(cursorEvery + 100*time.Millisecond)
	s1.handled() // m2; m3 in flight, never handled: waxmpp dies first
	cursorAt(t, cur, "m2", archiveID(m2, s1.bare))
	stop1()

	s2, stop2 := archiveRun(t, srv, cur)
	defer stop2()
	if m := next(t, s2); m.ID != "m3" || m.Archived == nil {
		t.Fatalf("after restart got %s (archived %v), want m3 from the archive", m.ID, m.Archived != nil)
	}
	none(t, s2, time.Second)
}

// TestArchiveReplayResumes: a crash in the middle of an archive replay of
// several pages; the next replay goes on after the last replayed message
// handled, instead of starting over, and pages on to the end.
func TestArchiveReplayResumes(t *testing.T) {
	defer func(n int) { mamPage = n }(mamPage)
	mamPage = 7 // many pages
	srv := pt.Start(t, pt.Options{NoStreamManagement: true})
	owner := srv.Dial(t, "owner")
	cur := &memCursor{}
	bot := srv.JID("bot")
	const n, handled = 60, 40
	s1, stop1 := archiveRun(t, srv, cur)
	for i := range n {
		ownerSays(owner, bot, fmt.Sprintf("r%d", i))
	}
	for i := range n { // delivered, never handled: waxmpp dies
		if m := next(t, s1); m.ID != fmt.Sprintf("r%d", i) {
			t.Fatalf("got %s, want r%d", m.ID, i)
		}
	}
	stop1()

	s2, stop2 := archiveRun(t, srv, cur)
	var lastID string
	for i := range handled {
		m := next(t, s2)
		lastID = archiveID(m, s2.bare)
		if m.ID != fmt.Sprintf("r%d", i) || m.Archived == nil {
			t.Fatalf("replay: got %s (archived %v), want r%d from the archive", m.ID, m.Archived != nil, i)
		}
		if i == handled-1 {
			time.Sleep(cursorEvery + 100*time.Millisecond) // the cursor is saved at most this often
		}
		s2.handled()
	}
	cursorAt(t, cur, fmt.Sprintf("r%d", handled-1), lastID)
	stop2()

	s3, stop3 := archiveRun(t, srv, cur)
	defer stop3()
	for i := handled; i < n; i++ {
		if m := next(t, s3); m.ID != fmt.Sprintf("r%d", i) {
			t.Fatalf("second replay: got %s, want r%d (r0…r%d were handled)", m.ID, i, handled-1)
		}
		s3.handled()
	}
	none(t, s3, time.Second)
	if p := s3.replayPages.Load(); p < uint64((n-handled)/mamPage) {
		t.Errorf("the replay asked for %d pages of %d, want at least %d", p, mamPage, (n-handled)/mamPage)
	}
}

// TestArchiveReplayCatchesUp: the owner keeps writing while the bot
// replays its archive after a crash. The replay ends when it reaches the
// first message the new link got live, instead of paging on through the
// live traffic; nothing comes twice.
func TestArchiveReplayCatchesUp(t *testing.T) {
	defer func(n int) { mamPage = n }(mamPage)
	mamPage = 20
	srv := pt.Start(t, pt.Options{NoStreamManagement: true})
	owner := srv.Dial(t, "owner")
	cur := &memCursor{}
	bot := srv.JID("bot")
	const lost, live = 60, 200
	s1, stop1 := archiveRun(t, srv, cur)
	for i := range lost {
		ownerSays(owner, bot, fmt.Sprintf("r%d", i))
	}
	for range lost { // delivered, never handled: waxmpp dies
		next(t, s1)
	}
	stop1()

	s2, stop2 := archiveRun(t, srv, cur)
	defer stop2()
	// The core is slow: nobody reads, so the reader soon blocks within the
	// replay's first pages; meanwhile the owner writes on.
	for i := range live {
		ownerSays(owner, bot, fmt.Sprintf("l%d", i))
	}
	waitFor(t, 5*time.Second, "reader blocked", func() bool { return s2.deliveredN.Load() > uint64(cap(s2.in)) })
	time.Sleep(500 * time.Millisecond) // the server archives what the owner wrote
	seen := map[string]int{}
	for len(seen) < lost+live {
		m := next(t, s2)
		seen[m.ID]++
		if strings.HasPrefix(m.ID, "r") != (m.Archived != nil) {
			t.Fatalf("%s: archived %v; want r… from the replay and l… live", m.ID, m.Archived != nil)
		}
		s2.handled()
	}
	none(t, s2, time.Second)
	for id, n := range seen {
		if n != 1 {
			t.Errorf("%s delivered %d times", id, n)
		}
	}
	waitFor(t, 5*time.Second, "replay done", func() bool { return !s2.replaying.Load() })
	// The lost messages fill three pages, the fourth reaches the live ones
	// (a page or two more on a loaded machine); paging through all that
	// came live would take lost+live pages.
	if p, all := s2.replayPages.Load(), uint64((lost+live)/mamPage); p >= all-3 {
		t.Errorf("the replay asked for %d pages, want well under %d: it went on through what came live", p, all)
	}
}

// TestCursorCandidates: the cursor moves only to positions everything
// before which the core has handled, forwards, and its time never goes
// back.
func TestCursorCandidates(t *testing.T) {
	cur := &memCursor{}
	s, err := New(Config{JID: "bot@example.org", Password: "pw", Owner: "owner@example.org", Outbox: &memQueue{}, Cursor: cur})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	live := func(id string) *Inbound {
		return &Inbound{ID: id, StanzaIDs: []StanzaID{{ID: "a-" + id, By: "bot@example.org"}}}
	}
	s.mamQuery.Store("q")
	replayed := func(id string, at time.Time) *Inbound {
		m := &Inbound{ID: id, Archived: &Archived{QueryID: "q", ID: "a-" + id}, Delay: &Delay{Stamp: at}}
		s.noteResult(m)
		return m
	}
	at := func() cursorPos { v, _ := cur.LoadCursor(); return decodeCursor(v) }

	s.replaying.Store(true)
	stored := live("o1")
	stored.Delay = &Delay{Stamp: t0.Add(-time.Hour)}
	s.number(stored) // from offline storage: may be older than the archive's rest
	if s.liveFirst != "" {
		t.Fatalf("a message from offline storage ends the replay at %q", s.liveFirst)
	}
	s.handled()
	s.number(live("l1")) // live during the replay: no candidate
	if s.liveFirst != "a-l1" {
		t.Fatalf("first live message %q, want a-l1", s.liveFirst)
	}
	s.number(replayed("r1", t0))         // 3
	s.number(replayed("r2", t0.Add(-1))) // 4: a server stamp earlier than r1's
	s.handled()
	if got := at(); got.ID != "" {
		t.Fatalf("cursor %v after handling a live message of the replay, want none", got)
	}
	s.handled()
	if got := at(); got.ID != "a-r1" || !got.Time.Equal(t0) {
		t.Fatalf("cursor %v, want a-r1 at %v", got, t0)
	}
	s.addCandidate(cursorPos{ID: "end", Time: t0.Add(time.Minute)}, s.deliveredN.Load()) // complete: the archive's end
	s.replayed()
	if got := at(); got.ID != "a-r1" {
		t.Fatalf("cursor %v before r2 was handled, want still a-r1", got)
	}
	s.handled()
	if got := at(); got.ID != "end" || !got.Time.Equal(t0.Add(time.Minute)) {
		t.Fatalf("cursor %v, want the archive's end", got)
	}
	k := s.number(live("l2")) // after the replay: a candidate, with the bot's clock
	s.unnumber(k)             // never reached the core
	s.number(live("l3"))
	s.handled()
	if got := at(); got.ID != "a-l3" || got.Time.Before(t0.Add(time.Minute)) {
		t.Fatalf("cursor %v, want a-l3 and a time no earlier than before", got)
	}
	if p := decodeCursor("plain-id"); p.ID != "plain-id" || !p.Time.IsZero() {
		t.Errorf("a cursor saved by an older waxmpp reads as %v", p)
	}
}

// TestArchivePreferences: ejabberd's mod_mam at its module default
// ("default: never") archives only for users who asked. The bot asks (its
// XEP-0313 preferences, "always"), so the owner's messages are in its
// archive for the replay. Before, the archive stayed empty there: nothing
// a dying link lost could be replayed.
func TestArchivePreferences(t *testing.T) {
	srv := pt.Start(t, pt.Options{Kind: pt.Ejabberd, ArchiveOnRequest: true})
	owner := srv.Dial(t, "owner")
	cur := &memCursor{}
	s, stop := archiveRun(t, srv, cur)
	defer stop()
	waitFor(t, 5*time.Second, "preferences set", s.prefsSet.Load)
	ownerSays(owner, srv.JID("bot"), "p1")
	m := next(t, s)
	s.handled()
	end, err := s.archiveEnd(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if end.ID == "" || end.ID != archiveID(m, s.bare) {
		t.Fatalf("the archive's last item is %q, want p1's %q: the owner's message was not archived", end.ID, archiveID(m, s.bare))
	}
}
