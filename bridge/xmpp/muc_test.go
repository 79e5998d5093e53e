package xmpp

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"waxmpp/bridge"
	pt "waxmpp/bridge/prosodytest"
)

// memRoomCursors keeps the rooms' archive cursors in memory.
type memRoomCursors struct {
	mu sync.Mutex
	m  map[string]string
}

func (c *memRoomCursors) LoadRoomCursor(room string) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[room], nil
}

func (c *memRoomCursors) SaveRoomCursor(room, id string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]string{}
	}
	if id == "" {
		delete(c.m, room)
	} else {
		c.m[room] = id
	}
	return nil
}

// roomBot is a Session with its Bot, run until stopped, acknowledging
// every event it delivers as the core does, and keeping them.
type roomBot struct {
	t      *testing.T
	s      *Session
	bot    *Bot
	cancel context.CancelFunc
	done   chan struct{}
	mu     sync.Mutex
	events []bridge.OwnerEvent
	more   chan struct{}
}

func startRoomBot(t *testing.T, cfg Config, rooms []bridge.Room) *roomBot {
	t.Helper()
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	b := &roomBot{t: t, s: s, bot: NewBot(s), done: make(chan struct{}), more: make(chan struct{}, 1)}
	if rooms != nil {
		b.bot.SetRooms(rooms) // as NewCore does, before the session runs
	}
	ctx, cancel := context.WithCancel(context.Background())
	b.cancel = cancel
	var wg sync.WaitGroup
	wg.Go(func() { s.Run(ctx) })
	wg.Go(func() { b.bot.Run(ctx) })
	wg.Go(func() {
		for {
			select {
			case ev := <-b.bot.Owner():
				b.mu.Lock()
				b.events = append(b.events, ev)
				b.mu.Unlock()
				b.bot.Handled(ev)
				select {
				case b.more <- struct{}{}:
				default:
				}
			case <-ctx.Done():
				return
			}
		}
	})
	go func() { wg.Wait(); close(b.done) }()
	t.Cleanup(b.stop)
	waitFor(t, 10*time.Second, "session connected", func() bool { return s.connected.Load() })
	return b
}

func (b *roomBot) stop() {
	if b.cancel != nil {
		b.cancel()
		<-b.done
		b.cancel = nil
	}
}

// next waits for an event match accepts, after the first skip events.
func (b *roomBot) next(what string, skip *int, match func(bridge.OwnerEvent) bool) bridge.OwnerEvent {
	b.t.Helper()
	deadline := time.After(15 * time.Second)
	for {
		b.mu.Lock()
		evs := b.events
		b.mu.Unlock()
		for i := *skip; i < len(evs); i++ {
			if match(evs[i]) {
				*skip = i + 1
				return evs[i]
			}
		}
		select {
		case <-b.more:
		case <-deadline:
			b.t.Fatalf("no %s; events: %s", what, describeEvents(evs))
		}
	}
}

func (b *roomBot) all() []bridge.OwnerEvent {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]bridge.OwnerEvent(nil), b.events...)
}

func describeEvents(evs []bridge.OwnerEvent) string {
	var s []string
	for _, e := range evs {
		s = append(s, fmt.Sprintf("%T%+v", e, e))
	}
	return strings.Join(s, "\n  ")
}

func roomConfig(t *testing.T, srv *pt.Server) Config {
	cfg := botConfig(t, srv)
	cfg.Rooms = &memRoomCursors{}
	return cfg
}

// joinOwner makes the owner's client accept the invitation into room as
// Conversations does: it joins with a nick of its own, and waits until in.
// aliceRoom starts a bot on srv with the owner subscribed, makes the
// room of the chat with Alice and has the owner join it as "me".
func aliceRoom(t *testing.T, srv *pt.Server) (*roomBot, *pt.Client, bridge.Room) {
	t.Helper()
	owner := srv.Dial(t, "owner")
	b := startRoomBot(t, roomConfig(t, srv), nil)
	subscribed(t, owner, srv.JID("bot"))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	r, err := b.bot.CreateRoom(ctx, bridge.Room{Nick: "Alice", Name: "Alice"}, "Your WhatsApp chat with Alice")
	if err != nil {
		t.Fatal(err)
	}
	b.bot.SetRooms([]bridge.Room{r})
	joinOwner(t, owner, r.JID, "me")
	return b, owner, r
}

func joinOwner(t *testing.T, c *pt.Client, room, nick string) {
	t.Helper()
	c.Send("<presence to='" + room + "/" + nick + "'><x xmlns='http://jabber.org/protocol/muc'/></presence>")
	p := c.Next(t, 10*time.Second, func(e *pt.Elem) bool {
		return e.XMLName.Local == "presence" && e.Attr("from") == room+"/"+nick
	})
	if p.Attr("type") == "error" {
		t.Fatalf("%s could not join %s: %s", c.JID, room, p)
	}
}

func isGroupchat(room string, body string) func(*pt.Elem) bool {
	return func(e *pt.Elem) bool {
		return e.XMLName.Local == "message" && e.Attr("type") == "groupchat" && bareJID(e.Attr("from")) == room && (body == "" || e.Body() == body)
	}
}

func stanzaIDBy(e *pt.Elem, by string) string {
	for _, c := range e.Children {
		if c.XMLName.Space == NSSID && c.XMLName.Local == "stanza-id" && c.Attr("by") == by {
			return c.Attr("id")
		}
	}
	return ""
}

// TestRoomLife on each server: a room is created private (members-only,
// non-anonymous, persistent, hidden), the owner invited (XEP-0249) and
// joined; the bot's messages reach the owner there (no receipt request,
// a marker request), the room's copy tells the core the room's id, the
// owner's messages reach the core with the room's id; someone else (a
// server admin) in the room is reported once and never relayed, and the
// settings that admin changes are set back; destroying the room ends it.
func TestRoomLife(t *testing.T) {
	for _, kind := range pt.Kinds {
		t.Run(string(kind), func(t *testing.T) {
			srv := pt.Start(t, pt.Options{Kind: kind, NoShaper: true, Admin: "stranger"})
			owner := srv.Dial(t, "owner")
			stranger := srv.Dial(t, "stranger")
			b := startRoomBot(t, roomConfig(t, srv), nil)
			subscribed(t, owner, srv.JID("bot"))
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			r, err := b.bot.CreateRoom(ctx, bridge.Room{Nick: "Alice", Name: "Alice"}, "Your WhatsApp chat with Alice")
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(r.JID, "wa-") || !strings.HasSuffix(r.JID, "@"+pt.MUC) || r.Nick != "Alice" {
				t.Fatalf("room %+v", r)
			}
			b.bot.SetRooms([]bridge.Room{r})
			inv := owner.Next(t, 10*time.Second, func(e *pt.Elem) bool {
				return e.XMLName.Local == "message" && e.Child(NSConference, "x") != nil
			})
			if x := inv.Child(NSConference, "x"); x.Attr("jid") != r.JID || x.Attr("reason") != "Your WhatsApp chat with Alice" {
				t.Fatalf("invitation %s", inv)
			}
			owner.Send(fmt.Sprintf("<iq type='get' id='ri' to='%s'><query xmlns='%s'/></iq>", r.JID, NSDiscoInfo))
			info := owner.Next(t, 5*time.Second, func(e *pt.Elem) bool { return e.Attr("id") == "ri" })
			var features []string
			name := ""
			if q := info.Child(NSDiscoInfo, "query"); q != nil {
				for _, c := range q.Children {
					features = append(features, c.Attr("var"))
					if c.XMLName.Local == "identity" {
						name = c.Attr("name")
					}
				}
			}
			for _, f := range []string{"muc_membersonly", "muc_nonanonymous", "muc_persistent", "muc_hidden", NSMAM} {
				if !contains(features, f) {
					t.Errorf("the room lacks %s: %v", f, features)
				}
			}
			if name != "Alice" {
				t.Errorf("room title %q, want Alice", name)
			}
			joinOwner(t, owner, r.JID, "me")

			// The chat's name changes: so does the room's title.
			b.bot.SetRooms([]bridge.Room{{JID: r.JID, Nick: r.Nick, Name: "Alice L."}})
			waitFor(t, 10*time.Second, "the new title", func() bool {
				owner.Send(fmt.Sprintf("<iq type='get' id='rn' to='%s'><query xmlns='%s'/></iq>", r.JID, NSDiscoInfo))
				info, err := owner.Wait(5*time.Second, func(e *pt.Elem) bool { return e.Attr("id") == "rn" })
				if err != nil {
					return false
				}
				if q := info.Child(NSDiscoInfo, "query"); q != nil {
					for _, c := range q.Children {
						if c.XMLName.Local == "identity" && c.Attr("name") == "Alice L." {
							return true
						}
					}
				}
				return false
			})

			// The bot's message, and the room's copy of it.
			ids, err := b.bot.Send(bridge.Outgoing{Body: "hello from WhatsApp", Markable: true, Room: r.JID})
			if err != nil {
				t.Fatal(err)
			}
			got := owner.Next(t, 10*time.Second, isGroupchat(r.JID, "hello from WhatsApp"))
			if got.Attr("from") != r.JID+"/Alice" || got.Child(NSReceipts, "request") != nil || got.Child(NSMarkers, "markable") == nil {
				t.Errorf("in the room: %s", got)
			}
			seen := 0
			echo := b.next("the room's copy", &seen, func(ev bridge.OwnerEvent) bool { _, ok := ev.(*bridge.RoomEcho); return ok }).(*bridge.RoomEcho)
			if echo.ID != ids[0] || echo.Room != r.JID || echo.Archive == "" || echo.Archive != stanzaIDBy(got, r.JID) {
				t.Errorf("echo %+v; the owner saw stanza-id %q", echo, stanzaIDBy(got, r.JID))
			}

			// The owner's messages: text, a reaction to the room's id, a marker.
			owner.Send("<message type='groupchat' to='" + r.JID + "' id='o1'><body>hi from the room</body><origin-id xmlns='urn:xmpp:sid:0' id='o1'/></message>")
			txt := b.next("the owner's text", &seen, func(ev bridge.OwnerEvent) bool { _, ok := ev.(*bridge.OwnerText); return ok }).(*bridge.OwnerText)
			mine := owner.Next(t, 10*time.Second, isGroupchat(r.JID, "hi from the room"))
			if txt.ID != "o1" || txt.Body != "hi from the room" || txt.Room != r.JID || txt.Archive == "" || txt.Archive != stanzaIDBy(mine, r.JID) {
				t.Errorf("owner text %+v", txt)
			}
			owner.Send("<message type='groupchat' to='" + r.JID + "' id='o2'><reactions xmlns='urn:xmpp:reactions:0' id='" + echo.Archive + "'><reaction>👍</reaction></reactions><store xmlns='urn:xmpp:hints'/></message>")
			react := b.next("the owner's reaction", &seen, func(ev bridge.OwnerEvent) bool { _, ok := ev.(*bridge.OwnerReaction); return ok }).(*bridge.OwnerReaction)
			if react.Target != echo.Archive || react.Room != r.JID {
				t.Errorf("reaction %+v", react)
			}
			owner.Send("<message type='groupchat' to='" + r.JID + "' id='o3'><displayed xmlns='urn:xmpp:chat-markers:0' id='" + echo.Archive + "'/></message>")
			if d := b.next("the owner's marker", &seen, func(ev bridge.OwnerEvent) bool { _, ok := ev.(*bridge.OwnerDisplayed); return ok }).(*bridge.OwnerDisplayed); d.Target != echo.Archive || d.Room != r.JID {
				t.Errorf("marker %+v", d)
			}

			// A stranger the server lets in (its admin): reported once, its
			// words never delivered; the settings it changes are set back.
			joinOwner(t, stranger, r.JID, "eve")
			st := b.next("the stranger's report", &seen, func(ev bridge.OwnerEvent) bool { _, ok := ev.(*bridge.RoomStranger); return ok }).(*bridge.RoomStranger)
			if st.JID != srv.JID("stranger") || st.Nick != "eve" || st.Room != r.JID {
				t.Errorf("stranger %+v", st)
			}
			stranger.Send("<message type='groupchat' to='" + r.JID + "' id='s1'><body>let me in</body></message>")
			stranger.Send(fmt.Sprintf("<iq type='set' id='cfg' to='%s'><query xmlns='%s'><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>%s</value></field><field var='muc#roomconfig_publicroom'><value>1</value></field><field var='muc#roomconfig_membersonly'><value>0</value></field></x></query></iq>", r.JID, NSMUCOwner, NSRoomConfig))
			if res := stranger.Next(t, 5*time.Second, func(e *pt.Elem) bool { return e.Attr("id") == "cfg" }); res.Attr("type") != "result" {
				t.Fatalf("the admin could not change the room: %s", res)
			}
			waitFor(t, 10*time.Second, "the settings set back", func() bool {
				owner.Send(fmt.Sprintf("<iq type='get' id='ri2' to='%s'><query xmlns='%s'/></iq>", r.JID, NSDiscoInfo))
				info, err := owner.Wait(5*time.Second, func(e *pt.Elem) bool { return e.Attr("id") == "ri2" })
				if err != nil {
					return false
				}
				var fs []string
				if q := info.Child(NSDiscoInfo, "query"); q != nil {
					for _, c := range q.Children {
						fs = append(fs, c.Attr("var"))
					}
				}
				return contains(fs, "muc_membersonly") && contains(fs, "muc_hidden")
			})
			owner.Send("<message type='groupchat' to='" + r.JID + "' id='o4'><body>still mine</body><origin-id xmlns='urn:xmpp:sid:0' id='o4'/></message>")
			b.next("the owner's next text", &seen, func(ev bridge.OwnerEvent) bool { t, ok := ev.(*bridge.OwnerText); return ok && t.ID == "o4" })
			n := 0
			for _, ev := range b.all() {
				switch e := ev.(type) {
				case *bridge.RoomStranger:
					n++
				case *bridge.OwnerText:
					if e.Body == "let me in" {
						t.Errorf("the stranger's message was delivered: %+v", e)
					}
				}
			}
			if n != 1 {
				t.Errorf("the stranger was reported %d times, want once", n)
			}

			// Destroyed: the owner is told by the room, and the bot no
			// longer treats it as its own.
			if err := b.bot.DestroyRoom(ctx, r.JID, "moved back"); err != nil {
				t.Fatal(err)
			}
			owner.Next(t, 10*time.Second, func(e *pt.Elem) bool {
				return e.XMLName.Local == "presence" && e.Attr("type") == "unavailable" && e.Attr("from") == r.JID+"/me"
			})
			b.bot.SetRooms(nil)
			for _, ev := range b.all() {
				if _, gone := ev.(*bridge.RoomGone); gone {
					t.Errorf("destroying the room was reported as its loss: %+v", ev)
				}
			}
		})
	}
}

// TestRoomRejoin on each server: the bot comes back after being away (a
// restart): it joins its room again without the room's history; what the
// owner wrote there meanwhile is replayed from the room's archive, once,
// and nothing the core had handled before; what the bot queued for the
// room while away reaches it (the outbox waits for the join).
func TestRoomRejoin(t *testing.T) {
	for _, kind := range pt.Kinds {
		t.Run(string(kind), func(t *testing.T) {
			srv := pt.Start(t, pt.Options{Kind: kind, NoShaper: true})
			owner := srv.Dial(t, "owner")
			cfg := roomConfig(t, srv)
			b := startRoomBot(t, cfg, nil)
			subscribed(t, owner, srv.JID("bot"))
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			r, err := b.bot.CreateRoom(ctx, bridge.Room{Nick: "WhatsApp", Name: "Family"}, "Your WhatsApp group Family")
			if err != nil {
				t.Fatal(err)
			}
			b.bot.SetRooms([]bridge.Room{r})
			joinOwner(t, owner, r.JID, "me")
			owner.Send("<message type='groupchat' to='" + r.JID + "' id='before'><body>before</body><origin-id xmlns='urn:xmpp:sid:0' id='before'/></message>")
			seen := 0
			b.next("the first text", &seen, func(ev bridge.OwnerEvent) bool { t, ok := ev.(*bridge.OwnerText); return ok && t.ID == "before" })
			waitFor(t, 5*time.Second, "the room's cursor saved", func() bool {
				c, _ := cfg.Rooms.LoadRoomCursor(r.JID)
				return c != "" && c != fromStart
			})
			b.stop()

			// Away: the owner writes; the bot's outbox gets a message for the room.
			owner.Send("<message type='groupchat' to='" + r.JID + "' id='away1'><body>while you were away</body><origin-id xmlns='urn:xmpp:sid:0' id='away1'/></message>")
			owner.Send("<message type='groupchat' to='" + r.JID + "' id='away2'><body>and this</body><origin-id xmlns='urn:xmpp:sid:0' id='away2'/></message>")
			owner.Next(t, 10*time.Second, isGroupchat(r.JID, "and this"))
			s2, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := NewBot(s2).Send(bridge.Outgoing{ID: "queued-1", Body: "queued while away", Room: r.JID}); err != nil {
				t.Fatal(err)
			}

			// A stranger cannot enter, nor read the room's history.
			stranger := srv.Dial(t, "stranger")
			stranger.Send("<presence to='" + r.JID + "/eve'><x xmlns='http://jabber.org/protocol/muc'/></presence>")
			if p := stranger.Next(t, 10*time.Second, func(e *pt.Elem) bool { return e.XMLName.Local == "presence" && e.Attr("from") == r.JID+"/eve" }); p.Attr("type") != "error" {
				t.Errorf("a stranger entered the room: %s", p)
			}
			stranger.Send("<iq type='set' id='smam' to='" + r.JID + "'><query xmlns='urn:xmpp:mam:2' queryid='sq'/></iq>")
			if res := stranger.Next(t, 10*time.Second, func(e *pt.Elem) bool { return e.Attr("id") == "smam" || e.Child(NSMAM, "result") != nil }); res.Attr("type") != "error" {
				t.Errorf("a stranger read the room's archive: %s", res)
			}

			b2 := startRoomBot(t, cfg, []bridge.Room{r})
			got := owner.Next(t, 15*time.Second, isGroupchat(r.JID, "queued while away"))
			if got.Attr("from") != r.JID+"/WhatsApp" {
				t.Errorf("queued message from %s", got.Attr("from"))
			}
			seen2 := 0
			b2.next("the replay of away2", &seen2, func(ev bridge.OwnerEvent) bool { t, ok := ev.(*bridge.OwnerText); return ok && t.ID == "away2" })
			time.Sleep(500 * time.Millisecond)
			count := map[string]int{}
			for _, ev := range b2.all() {
				if t, ok := ev.(*bridge.OwnerText); ok {
					count[t.ID]++
					if t.Room != r.JID || t.Archive == "" {
						t.Room = "?" // reported below
					}
				}
			}
			if count["away1"] != 1 || count["away2"] != 1 || count["before"] != 0 {
				t.Errorf("replayed %v; want away1 and away2 once, not before", count)
			}
			// Live again.
			owner.Send("<message type='groupchat' to='" + r.JID + "' id='live'><body>live</body><origin-id xmlns='urn:xmpp:sid:0' id='live'/></message>")
			b2.next("live text", &seen2, func(ev bridge.OwnerEvent) bool {
				t, ok := ev.(*bridge.OwnerText)
				return ok && t.ID == "live" && t.Room == r.JID
			})
		})
	}
}

// TestRoomRefused: a server without group chats, and one that refuses
// to create rooms: CreateRoom says which, nothing is left behind.
func TestRoomRefused(t *testing.T) {
	for _, kind := range pt.Kinds {
		t.Run(string(kind), func(t *testing.T) {
			for _, pol := range []pt.RoomPolicy{pt.NoRooms, pt.RoomsRestricted} {
				srv := pt.Start(t, pt.Options{Kind: kind, NoShaper: true, Rooms: pol})
				b := startRoomBot(t, roomConfig(t, srv), nil)
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				_, err := b.bot.CreateRoom(ctx, bridge.Room{Nick: "Alice", Name: "Alice"}, "x")
				cancel()
				var refused *bridge.RoomRefused
				switch {
				case pol == pt.NoRooms && !errors.Is(err, bridge.ErrNoRooms):
					t.Errorf("no MUC service: %v, want ErrNoRooms", err)
				case pol == pt.RoomsRestricted && !errors.As(err, &refused):
					t.Errorf("creation restricted: %v, want RoomRefused", err)
				case pol == pt.RoomsRestricted:
					t.Logf("%s refuses with %q: %q", kind, refused.Condition, refused.Text)
				}
				b.s.muc.mu.Lock()
				left := len(b.s.muc.rooms)
				b.s.muc.mu.Unlock()
				if left != 0 {
					t.Errorf("%d rooms left behind", left)
				}
				b.stop()
				srv.Stop()
			}
		})
	}
}

// TestRoomFixups: a deletion or a reaction that names one of the bot's
// room messages before the room's copy came back goes at once under the
// bot's id, and again, under the room's id, once the copy tells it; one
// sent after names the room's id at once.
func TestRoomFixups(t *testing.T) {
	q := &memQueue{}
	s, err := New(Config{JID: "bot@example.org", Password: "x", Owner: "me@example.org", Outbox: q})
	if err != nil {
		t.Fatal(err)
	}
	b := NewBot(s)
	const room = "wa-1@conference.example.org"
	if _, err := b.Send(bridge.Outgoing{Retract: "wa-msg1", Body: "Alice deleted a message", Room: room},
		bridge.Outgoing{React: &bridge.Reactions{ID: "wa-msg1", Emojis: []string{"👍"}}, Room: room},
		bridge.Outgoing{React: &bridge.Reactions{ID: "own-2"}, Room: room}); err != nil {
		t.Fatal(err)
	}
	s.echoed(room, "wa-msg1", "S1")
	if _, err := b.Send(bridge.Outgoing{Retract: "wa-msg1", Room: room}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the fixups queued", func() bool { n, _ := q.Len(); return n == 6 })
	items, _ := q.Peek(0, 10)
	var got []string
	for _, it := range items {
		raw, err := recordStanza(it.Data)
		if err != nil {
			t.Fatal(err)
		}
		st, err := DecodeBytes(raw)
		if err != nil {
			t.Fatal(err)
		}
		m := st.(*Inbound)
		if m.To != room || m.Type != "groupchat" {
			t.Errorf("%s to %s type %s", m.ID, m.To, m.Type)
		}
		switch {
		case m.Retract != nil:
			got = append(got, "retract "+m.Retract.ID)
		case m.Reactions != nil:
			got = append(got, "react "+m.Reactions.ID)
		}
	}
	// First as sent, then the fixups and the later deletion, in either
	// order (the fixups go on a goroutine of their own).
	rest := slices.Clone(got[3:])
	slices.Sort(rest)
	if strings.Join(got[:3], " | ") != "retract wa-msg1 | react wa-msg1 | react own-2" || strings.Join(rest, " | ") != "react S1 | retract S1 | retract S1" {
		t.Errorf("queued %q", got)
	}
}

// TestRoomMessageTo: the outbox's records that go to a room are told from
// the rest by their encoded opening tag.
func TestRoomMessageTo(t *testing.T) {
	for _, c := range []struct{ stanza, want string }{
		{`<message type="groupchat" to="r1@muc.example" id="wa-1"><body>x</body></message>`, "r1@muc.example"},
		{`<message id="wa-2" to="r1@muc.example/nick" type="groupchat"/>`, "r1@muc.example"},
		{`<message type="chat" to="owner@example" id="wa-3"><body>type="groupchat"</body></message>`, ""},
		{`<message to="owner@example" id="wa-4"><body> to="r@m" type="groupchat"</body></message>`, ""},
		{`<presence to="r1@muc.example/bot"/>`, ""},
		{``, ""},
	} {
		if got := roomMessageTo([]byte(c.stanza)); got != c.want {
			t.Errorf("roomMessageTo(%s) = %q, want %q", c.stanza, got, c.want)
		}
	}
}

// TestRoomReplayCutShort: a room's replay that did not reach the end
// leaves its cursor where it was, even when a live message from the room
// is handled after it: that message's id would skip what was not
// replayed (the owner's words written while waxmpp was down were lost so).
func TestRoomReplayCutShort(t *testing.T) {
	const room = "wa-1@conference.example.org"
	cur := &memRoomCursors{m: map[string]string{room: "C0"}}
	s, err := New(Config{JID: "bot@example.org", Password: "x", Owner: "me@example.org", Outbox: &memQueue{}, Rooms: cur})
	if err != nil {
		t.Fatal(err)
	}
	r := &mucRoom{Room: bridge.Room{JID: room, Nick: "Alice"}, nick: "Alice", replaying: true, occupants: map[string]string{}}
	s.muc.rooms = map[string]*mucRoom{room: r}
	// A live message from the room, delivered to the core meanwhile.
	s.inflight.Add(1)
	// Not connected: the replay's first query fails.
	if err := s.catchUpRoom(context.Background(), r, "C0"); err == nil {
		t.Fatal("the replay did not fail offline")
	}
	s.roomHandled(room, "LIVE")
	s.saveRoomCursors()
	if got, _ := cur.LoadRoomCursor(room); got != "C0" {
		t.Errorf("the cursor moved to %q after a replay cut short, want C0", got)
	}
}

// TestRoomBeforeJoin: a room's live message that comes before the bot is
// in the room on this link (ejabberd routes the room's messages to the
// full JID a killed link held there) is nobody's yet: not a stranger's,
// and not the core's (the archive's replay after the join brings it).
func TestRoomBeforeJoin(t *testing.T) {
	const room = "wa-1@conference.example.org"
	s, err := New(Config{JID: "bot@example.org", Password: "x", Owner: "me@example.org", Outbox: &memQueue{}})
	if err != nil {
		t.Fatal(err)
	}
	s.muc.rooms = map[string]*mucRoom{room: {Room: bridge.Room{JID: room, Nick: "Alice"}, replaying: true, occupants: map[string]string{}}}
	for _, nick := range []string{"me", "Alice"} {
		m := &Inbound{From: room + "/" + nick, Type: "groupchat", Body: "words", HasBody: true, ID: "x-" + nick}
		if err := s.routeRoomMessage(context.Background(), &conn{sm: &smState{pending: map[uint64]bool{}}}, room, m); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case n := <-s.notes:
		t.Errorf("told %T %+v", n, n)
	default:
	}
	select {
	case m := <-s.in:
		t.Errorf("handed to the core: %+v", m)
	default:
	}
}

// TestRoomBounceResent: what the bot writes to a room while it is out of
// it (put out, or not yet back: ejabberd puts a new link out while an
// old one lingers) is refused by the room (not-acceptable) and goes again
// once the bot is back in; it was lost before.
func TestRoomBounceResent(t *testing.T) {
	for _, kind := range pt.Kinds {
		t.Run(string(kind), func(t *testing.T) {
			srv := pt.Start(t, pt.Options{Kind: kind, NoShaper: true})
			b, owner, r := aliceRoom(t, srv)
			if _, err := b.bot.Send(bridge.Outgoing{Body: "before", Room: r.JID}); err != nil {
				t.Fatal(err)
			}
			owner.Next(t, 10*time.Second, isGroupchat(r.JID, "before"))

			// The bot leaves behind the session's back; the room tells
			// everyone, and the session goes back in a second later.
			b.s.muc.mu.Lock()
			c := b.s.muc.link
			b.s.muc.mu.Unlock()
			c.ctrl <- []byte("<presence to='" + r.JID + "/Alice' type='unavailable'/>")
			owner.Next(t, 10*time.Second, func(e *pt.Elem) bool {
				return e.XMLName.Local == "presence" && e.Attr("from") == r.JID+"/Alice" && e.Attr("type") == "unavailable"
			})
			if _, err := b.bot.Send(bridge.Outgoing{Body: "while out", Room: r.JID}); err != nil {
				t.Fatal(err)
			}
			owner.Next(t, 15*time.Second, isGroupchat(r.JID, "while out"))
			if !b.s.connected.Load() {
				t.Error("the link was lost")
			}
		})
	}
}

// TestRoomPutOutWhileJoining: a join in flight when the room puts the bot
// out (ejabberd: a killed link's leave, under the same full JID, reaches
// the room after the new link's join) joins again and is answered. It was
// left waiting (another join took its answer) for the ping and write
// timeouts, 50 s by default, with the link's gate closed: nothing went
// out to anyone meanwhile (TestSimRoomBurstWithKills lost 399 of 400 so).
func TestRoomPutOutWhileJoining(t *testing.T) {
	const room = "wa-1@conference.example.org"
	s, err := New(Config{JID: "bot@example.org", Password: "x", Owner: "me@example.org", Outbox: &memQueue{}, Rooms: &memRoomCursors{m: map[string]string{}}})
	if err != nil {
		t.Fatal(err)
	}
	r := &mucRoom{Room: bridge.Room{JID: room, Nick: "Alice"}, occupants: map[string]string{}}
	s.muc.rooms = map[string]*mucRoom{room: r}
	c := &conn{ctrl: make(chan []byte, 16), done: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s.muc.link, s.muc.linkCtx = c, ctx
	type joined struct {
		res joinResult
		err error
	}
	done := make(chan joined, 1)
	go func() {
		res, err := s.joinRoom(ctx, c, r, "Alice")
		done <- joined{res, err}
	}()
	joinSent := func(what string) {
		t.Helper()
		select {
		case b := <-c.ctrl:
			if !strings.Contains(string(b), room+"/Alice") {
				t.Fatalf("%s: wrote %s", what, b)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no %s", what)
		}
	}
	joinSent("join")
	out := &InPresence{From: room + "/Alice", Type: "unavailable", MUC: &MUCUser{Codes: []int{110}}}
	if err := s.routeRoomPresence(ctx, out); err != nil {
		t.Fatal(err)
	}
	joinSent("join again")
	in := &InPresence{From: room + "/Alice", MUC: &MUCUser{Codes: []int{110}}}
	if err := s.routeRoomPresence(ctx, in); err != nil {
		t.Fatal(err)
	}
	select {
	case j := <-done:
		if j.err != nil || j.res.err != nil || j.res.nick != "Alice" {
			t.Errorf("join = %+v, %v; want in as Alice", j.res, j.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the join in flight was not answered")
	}
	select {
	case b := <-c.ctrl:
		t.Errorf("joined twice: %s", b)
	case <-time.After(1500 * time.Millisecond):
	}
}
