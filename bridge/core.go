package bridge

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"
)

// Store is what the core keeps in bridge/store (*store.DB satisfies it).
// Methods block on disk (fsync); they are called from the core's goroutine.
type Store interface {
	PutChat(c Chat) (Chat, error)
	Chat(id string) (Chat, error)
	ChatByHandle(h string) (Chat, error)
	SetHandle(id, h string) (Chat, error)
	Chats() ([]Chat, error)
	Touch(id string, t time.Time) error
	AddAlias(id, alias string) error
	PutMessages(ms ...MsgLink) error
	MessageByWA(k MessageKey) (MsgLink, error)
	MessageByXMPP(id string) (MsgLink, error)
	RecentMessages(chat string, n int) ([]MsgLink, error)
	Route() (chatID string, ok bool, err error)
	SetRoute(id string) error
	Blob(name string) ([]byte, bool, error)
	PutBlob(name string, v []byte) error
	InviteStore
}

// CoreConfig is what NewCore needs.
type CoreConfig struct {
	WhatsApp WhatsApp
	XMPP     XMPP
	Store    Store
	// Events are WhatsApp's events. Backpressure: the core reads them one
	// at a time; while it works (a WhatsApp call takes up to waTimeout,
	// a store write one fsync) the channel fills and the WhatsApp adapter
	// buffers (see its doc). The core never drops an event; while one
	// waits to be tried again (the store failed), the channel is not read
	// at all.
	Events <-chan Event
	// Owner are the owner's messages. Backpressure as Events.
	Owner <-chan OwnerEvent
	// Commands are XEP-0050 ad-hoc commands (may be nil). Each is answered
	// on its Reply channel (capacity 1) without blocking.
	Commands <-chan Command
	// Rooms gives chats rooms of their own (XEP-0045); nil: no rooms.
	// RoomsAuto gives every chat that speaks one ([rooms] auto).
	Rooms     Rooms
	RoomsAuto bool
	// QR renders a pairing QR code's content as a PNG image (bridge/qr's
	// PNG), which the core uploads and links. nil: the code's text only.
	QR func(content string) ([]byte, error)
	// Files fetches and prepares media (bridge/media). nil: media is
	// relayed as a line, and the owner's links as text.
	Files Files
	// VoiceAAC says when WhatsApp's Opus voice notes reach the owner as
	// AAC (.m4a): VoiceAACAuto ("" too) when one of the owner's online
	// clients is an iOS client that plays no Opus, VoiceAACAlways or
	// VoiceAACNever.
	VoiceAAC string
	// Invite is what /invite sends (invite.go).
	Invite  InviteConfig
	Log     *slog.Logger
	Version string
	// Doctor gives /status the health checks' findings (findings.go);
	// nil: /status has none.
	Doctor Doctor
	Now    func() time.Time // nil: time.Now
	// Idle is called once the core has had nothing to handle for
	// idleAfter after handling something (nil: never): the binary gives
	// memory a burst used back to the system then. Not periodic: an idle
	// bridge wakes for nothing.
	Idle func()
}

// idleAfter is how long the core waits with nothing to handle before it
// calls CoreConfig.Idle.
var idleAfter = 5 * time.Second

// waTimeout bounds every WhatsApp call the core makes, so one stuck call
// cannot freeze the core (it owns the only goroutine).
const waTimeout = 30 * time.Second

// Core relays between WhatsApp and the owner. One goroutine (Run) owns all
// of its state.
type Core struct {
	cfg CoreConfig
	log *slog.Logger
	now func() time.Time
	wa  WhatsApp
	x   XMPP // cfg.XMPP as batchXMPP: a send first writes the batch
	xw  XMPP // cfg.XMPP itself: writes the batch (batch.go); optional methods are asserted on it
	st  Store

	resolveFn func(string) (ChatID, []ChatID) // resolveForRoute, made once (routeIn)

	people  map[UserID]*person         // names, persisted as "core.people"
	oldest  map[ChatID]anchor          // each chat's oldest known message, persisted as "core.oldest"
	names   map[string]map[string]bool // the name index (see index): nameKey → entry → trusted
	nameAt  map[string]string          // entry → its nameKey in names
	dirty   bool                       // people or oldest changed since saved
	saveDue time.Time                  // when to save them

	route routeState // persisted as "core.route"

	rooms      map[ChatID]*roomBinding // each chat's room, persisted as "core.rooms" (rooms.go)
	roomChat   map[string]ChatID       // room JID → its chat
	answerRoom string                  // while an owner event from a room is handled: that room, where say answers
	autoOff    bool                    // [rooms] auto gave up: this server makes no rooms
	autoAt     time.Time               // [rooms] auto waits until then after a failure that may pass
	elsewhere  bool                    // the owner's last text went to another chat than the current one
	fit        fitState                // the owner's clients (client.go)
	collect    *[]string               // while set, say collects lines here instead of sending them
	cmdID      string                  // while a command typed in the chat runs: the owner's message id

	invites [3]inviteText // the invitation's templates, by inviteKind (invite.go)

	// unacked are WhatsApp events handled but not yet acknowledged: they
	// changed names or history anchors, which are saved in batches
	// (saveCache); they are acknowledged once saved, in order, with the
	// events that came after them.
	unacked []Event
	// stuckEvent and stuckOwner are an event that could not be handled
	// durably (the store or the outbox failed). While one is set, its
	// side's channel is not read: nothing after it is handled out of
	// order or acknowledged before it. It is tried again after retryIn.
	stuckEvent Event
	stuckOwner OwnerEvent
	// redo are events to handle again after stuckEvent, in order, before
	// the channel is read: a batch that could not be written (batch.go).
	redo []Event
	// batch is the batch of WhatsApp messages Run is taking (nil between
	// batches); batchFailed its events when it could not be written.
	batch       *relayBatch
	batchFailed []Event
	// obatch is the batch of owner events Run is taking (nil between
	// batches), ownerFailed its events when it could not be written and
	// ownerRedo the owner events to handle again after stuckOwner.
	obatch      *ownerBatch
	ownerFailed []OwnerEvent
	ownerRedo   []OwnerEvent
	// ownerWritten is when the last owner batch that mapped texts was
	// written; ownerClock is the clock and timer that hold a burst's
	// batch open (batch.go: ownerLinger).
	ownerWritten time.Time
	ownerClock   holdClock
	retryIn      time.Duration
	toldStuck    bool // the owner was told that relaying is paused

	status     Status    // last WhatsApp Status
	statusSeen bool      // a Status arrived
	toldState  ConnState // the last state the owner was told about
	toldDays   int       // the phone-offline day count last told

	marked    map[string]bool        // relayed messages marked read on WhatsApp, by chat and id (in memory)
	readClean map[ChatID]bool        // chats markRead left with nothing to mark; emptied when a relayed message is mapped (readStore)
	receipted map[string]ReceiptKind // owner's message ids with a receipt sent
	qrShown   int                    // QR codes shown in this pairing
	qrSeq     int                    // counts QR uploads started; a result of an older one is stale
	qrCancel  context.CancelFunc     // cancels the QR upload under way, if any
	qrDone    chan qrUpload          // QR uploads that ended (see pairCode)

	// bg are the goroutines the core started for slow work (QR uploads);
	// Run waits for them before it returns. Each sends its result to the
	// loop, or gives up when Run's ctx ends.
	bg sync.WaitGroup

	healthReq chan chan Health // Health's requests; unbuffered, answered by Run (health.go)

	xf transfers // media transfers and the lanes that keep each chat's order (transfer.go)
}

// person is what the core knows of a WhatsApp user's names.
type person struct {
	Full     string `json:"f,omitempty"`
	First    string `json:"n,omitempty"`
	Push     string `json:"p,omitempty"`
	Business string `json:"b,omitempty"`
	Phone    UserID `json:"ph,omitempty"` // for a LID: the phone JID (Alias)
	LID      UserID `json:"l,omitempty"`  // for a phone JID: the LID
}

// routeState is the routing state that must survive a restart.
type routeState struct {
	Since []ChatID `json:"since,omitempty"` // spoke since the owner last wrote to the current chat, most recent first
	// Held are the held messages, oldest first. Backpressure: none needed;
	// only the owner's typing fills it, and the bot asks after each one.
	Held []draft `json:"held,omitempty"`
	// Question are the numbered candidates of the question about the held
	// messages: n names Question[n-1]. While anything is held, entries are
	// only added, never renumbered.
	Question []ChatID `json:"question,omitempty"`
	Handles  bool     `json:"handles,omitempty"` // the question shows handles (a name was ambiguous)
	Asked    []string `json:"asked,omitempty"`   // XMPP ids of the latest questions, oldest first: a reply to one answers
	// Pending are messages whose chat is decided that WhatsApp did not
	// take yet (not linked, reconnecting), oldest first; they go when it
	// does. Backpressure: only the owner's typing fills it.
	Pending []draft `json:"pending,omitempty"`
}

// draft is a text of the owner's on its way to WhatsApp, held or about to
// be sent. Its JSON keys are those of the held messages saved by earlier
// versions (the fields of their OwnerMessage), so saved routing state loads.
type draft struct {
	ID    string    `json:"ID"` // the owner's XMPP id ("" for an ad-hoc /msg)
	Body  string    `json:"Body"`
	Time  time.Time `json:"Time"`            // when the owner wrote it
	Chat  ChatID    `json:"chat,omitempty"`  // pending: where it goes
	Quote *MsgLink  `json:"quote,omitempty"` // send as a WhatsApp reply to it
	Tries int       `json:"tries,omitempty"` // pending: times WhatsApp refused it while connected
	File  string    `json:"file,omitempty"`  // a file's URL (https, aesgcm): the owner sent a file
	// RoomID is the id the room gave the message, when the owner wrote
	// it in a chat's room (RoomPending when the room gave none).
	RoomID string `json:"room,omitempty"`
}

// anchor is the oldest message of a chat the core knows: where /history
// continues. Its JSON is that of the records the WhatsApp adapter kept
// before the core decided the anchor ("whatsapp.oldest/<chat>"), which are
// read where the core has none.
type anchor struct {
	ID     string    `json:"id"`
	FromMe bool      `json:"me,omitempty"`
	Chat   ChatID    `json:"c,omitempty"` // the chat as WhatsApp named it; "" for the chat's own id
	Time   time.Time `json:"t"`
}

const (
	settingOldest      = "core.oldest"
	settingOldestOfOld = "whatsapp.oldest/" // + chat id: an anchor as older versions kept it
	settingPeople      = "core.people"
	settingRoute       = "core.route"
)

// NewCore checks cfg and loads the persisted state.
func NewCore(cfg CoreConfig) (*Core, error) {
	switch {
	case cfg.WhatsApp == nil:
		return nil, errors.New("bridge: core: no WhatsApp")
	case cfg.XMPP == nil:
		return nil, errors.New("bridge: core: no XMPP")
	case cfg.Store == nil:
		return nil, errors.New("bridge: core: no store")
	case cfg.Events == nil || cfg.Owner == nil:
		return nil, errors.New("bridge: core: no event channels")
	}
	c := &Core{
		cfg: cfg, log: cfg.Log, now: cfg.Now, wa: cfg.WhatsApp, xw: cfg.XMPP,
		people: map[UserID]*person{}, oldest: map[ChatID]anchor{}, names: map[string]map[string]bool{}, nameAt: map[string]string{}, marked: map[string]bool{}, readClean: map[ChatID]bool{}, receipted: map[string]ReceiptKind{},
		rooms: map[ChatID]*roomBinding{}, roomChat: map[string]ChatID{},
		qrDone:    make(chan qrUpload),
		healthReq: make(chan chan Health),
		xf:        newTransfers(),
	}
	c.x = batchXMPP{XMPP: cfg.XMPP, c: c}
	c.st = readStore{Store: cfg.Store, c: c}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.now == nil {
		c.now = time.Now
	}
	var err error
	if c.cfg.Invite, c.invites, err = inviteSetup(cfg.Invite); err != nil {
		return nil, err
	}
	if b, ok, err := cfg.Store.Blob(settingPeople); err != nil {
		return nil, fmt.Errorf("bridge: core: %w", err)
	} else if ok {
		if err := json.Unmarshal(b, &c.people); err != nil {
			// Names are a cache that refills from WhatsApp: start over.
			c.log.Warn("names unreadable, starting over", "err", err)
			c.people = map[UserID]*person{}
		}
	}
	if b, ok, err := cfg.Store.Blob(settingOldest); err != nil {
		return nil, fmt.Errorf("bridge: core: %w", err)
	} else if ok {
		if err := json.Unmarshal(b, &c.oldest); err != nil {
			// History anchors refill as messages arrive.
			c.log.Warn("history anchors unreadable, starting over", "err", err)
			c.oldest = map[ChatID]anchor{}
		}
	}
	for u := range c.people {
		c.indexPerson(u)
	}
	chats, err := cfg.Store.Chats()
	if err != nil {
		return nil, fmt.Errorf("bridge: core: %w", err)
	}
	for _, ch := range chats {
		c.indexChat(ch)
	}
	if err := c.loadRooms(); err != nil {
		return nil, fmt.Errorf("bridge: core: %w", err)
	}
	c.tellRooms() // before the XMPP side connects: it joins them at login
	if err := c.loadFit(); err != nil {
		return nil, fmt.Errorf("bridge: core: %w", err)
	}
	if b, ok, err := cfg.Store.Blob(settingRoute); err != nil {
		return nil, fmt.Errorf("bridge: core: %w", err)
	} else if ok {
		if err := json.Unmarshal(b, &c.route); err != nil {
			// Held messages cannot be recovered; refusing to start
			// would not recover them either. Say so loudly.
			c.log.Error("routing state unreadable; held messages lost", "err", err)
			c.route = routeState{}
		}
	}
	if err := c.loadTransfers(); err != nil {
		return nil, fmt.Errorf("bridge: core: %w", err)
	}
	return c, nil
}

// Run relays until ctx ends, then returns ctx.Err(). It is the only
// goroutine that touches the core's state.
// Stages (stage.go): a batch of WhatsApp events, and one of owner
// messages, each from its first event until it is written and
// acknowledged; an owner batch held open during a burst (batch.go:
// ownerLinger) counts its hold, up to 400 ms.
var (
	stageCoreWA    = NewStage("core: WhatsApp events")
	stageCoreOwner = NewStage("core: owner messages")
)

func (c *Core) Run(ctx context.Context) error {
	defer c.saveCache()
	defer c.bg.Wait() // ctx is done: they end promptly
	if len(c.route.Held) > 0 {
		c.ask() // after a restart: the question again
	}
	c.resumeTransfers(ctx)
	// The tick saves the names and history anchors and moves media
	// transfers on (pumpAll). It runs only while either has something to
	// do: an idle bridge wakes for nothing (a Pi on batteries).
	save := time.NewTicker(time.Second)
	defer save.Stop()
	save.Stop()
	ticking := false
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Stop()
	events, owner, cmds := c.cfg.Events, c.cfg.Owner, c.cfg.Commands
	idle := time.NewTimer(time.Hour)
	idle.Stop()
	defer idle.Stop()
	busy := func() {
		if c.cfg.Idle != nil {
			idle.Reset(idleAfter)
		}
	}
	for {
		evs, own := events, owner
		if c.stuckEvent != nil || len(c.redo) > 0 {
			evs = nil
		}
		if c.stuckOwner != nil || len(c.ownerRedo) > 0 {
			own = nil
		}
		var tick <-chan time.Time
		if c.tickDue() {
			if !ticking {
				save.Reset(time.Second)
				ticking = true
			}
			tick = save.C
		} else if ticking {
			save.Stop()
			ticking = false
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case ev, ok := <-evs:
			if !ok {
				events = nil
				continue
			}
			c.relayEvents(ctx, ev, &events, retry)
			busy()
		case m, ok := <-own:
			if !ok {
				owner = nil
				continue
			}
			if ev := c.relayOwner(ctx, m, &owner, &events, retry); ev != nil {
				c.relayEvents(ctx, ev, &events, retry)
			}
			busy()
		case <-idle.C:
			c.cfg.Idle()
		case <-retry.C:
			ok := true
			if ev := c.stuckEvent; ev != nil {
				c.stuckEvent = nil
				ok = c.takeEvent(ctx, ev)
			}
			for ok && len(c.redo) > 0 {
				ev := c.redo[0]
				c.redo = c.redo[1:]
				ok = c.takeEvent(ctx, ev)
			}
			if m := c.stuckOwner; m != nil && ok {
				c.stuckOwner = nil
				ok = c.takeOwner(ctx, m)
			}
			for ok && len(c.ownerRedo) > 0 {
				m := c.ownerRedo[0]
				c.ownerRedo = c.ownerRedo[1:]
				ok = c.takeOwner(ctx, m)
			}
			if !ok {
				c.stuck(retry)
			} else if c.stuckEvent == nil && c.stuckOwner == nil {
				c.retryIn = 0
				if c.toldStuck {
					c.toldStuck = false
					c.say("✅ waxmpp can save again: relaying goes on, nothing was lost.")
				}
			}
		case cmd, ok := <-cmds:
			if !ok {
				cmds = nil
				continue
			}
			c.fit.typed = ""
			text := forms(c.command(ctx, cmd.Name, cmd.Args), c.bang())
			if cmd.Reply != nil {
				select {
				case cmd.Reply <- text:
				default:
					c.log.Warn("ad-hoc command reply dropped: reply channel full", "command", cmd.Name)
				}
			}
		case u := <-c.qrDone:
			c.qrUploaded(u)
		case r := <-c.xf.done:
			c.transferred(r)
		case reply := <-c.healthReq:
			reply <- c.health() // capacity 1: never blocks
		case <-tick:
			c.pumpAll()
			if c.dirty && (!c.now().Before(c.saveDue) || len(c.unacked) >= maxUnacked) {
				c.saveCache()
			}
		}
	}
}

// tickDue reports whether Run's tick has something to do: names or
// anchors to save, or media transfers that wait for a time.
func (c *Core) tickDue() bool {
	return c.dirty || len(c.unacked) > 0 || len(c.xf.stalled) > 0 || len(c.xf.retryAt) > 0 || len(c.xf.waiting) > 0
}

// maxUnacked bounds the events waiting for saveCache: beyond it, the cache
// is saved at once.
const maxUnacked = 1000

// takeEvent handles a WhatsApp event and acknowledges it (at once, or
// with its batch), or reports false (and keeps it as stuckEvent, or in
// redo behind its batch's events) when it could not be handled durably.
func (c *Core) takeEvent(ctx context.Context, ev Event) bool {
	b := c.batch
	if b != nil {
		if len(b.events) > 0 && !b.takes(ev) && !c.flushBatch() {
			c.fail(ev)
			return false
		}
		b.cur, b.added = ev, false
	}
	err := c.event(ctx, ev)
	if b != nil {
		b.cur = nil
	}
	if len(c.batchFailed) > 0 {
		// A send while handling ev wrote the batch and failed: ev
		// comes again after the batch's events.
		c.fail(ev)
		return false
	}
	if err != nil {
		c.log.Error("WhatsApp event not handled; trying again", "event", fmt.Sprintf("%T", ev), "err", err)
		if !c.flushBatch() {
			c.fail(ev)
			return false
		}
		c.stuckEvent = ev
		return false
	}
	if b != nil && b.added {
		b.events = append(b.events, ev)
		return true
	}
	// Handled at once: acknowledged after the batch before it.
	if !c.flushBatch() {
		c.fail(ev)
		return false
	}
	c.ack(ev)
	return true
}

// takeOwner handles an owner event and acknowledges it, or reports false
// (and keeps it as stuckOwner).
func (c *Core) takeOwner(ctx context.Context, m OwnerEvent) bool {
	// What the owner wrote in a room is answered there.
	c.answerRoom = ""
	switch m.(type) {
	case *RoomEcho, *RoomStranger, *RoomGone: // about a room: told in the bot conversation
	default:
		if _, ok := c.roomChat[m.Meta().Room]; ok {
			c.answerRoom = m.Meta().Room
		}
	}
	b := c.obatch
	if b != nil {
		if len(b.events) > 0 && !b.takes(m) && !c.flushOwner() {
			c.failOwner(m)
			return false
		}
		b.cur = ""
		if t, ok := m.(*OwnerText); ok && b.takes(m) {
			b.cur = t.ID
		}
	}
	err := c.ownerEvent(ctx, m)
	c.answerRoom = ""
	if b != nil {
		b.cur = ""
	}
	if err != nil {
		c.log.Error("owner message not handled; trying again", "event", fmt.Sprintf("%T", m), "err", err)
		if !c.flushOwner() {
			c.failOwner(m)
			return false
		}
		c.stuckOwner = m
		return false
	}
	if b != nil {
		// Acknowledged once the batch is written, after those before it.
		b.events = append(b.events, m)
		return true
	}
	c.x.Handled(m)
	return true
}

// stuck schedules the next try of what could not be handled (1 s, then
// doubling up to 30 s) and tells the owner, once, that relaying waits.
// The message skips the durable outbox, which may be what fails.
func (c *Core) stuck(retry *time.Timer) {
	c.retryIn = min(max(2*c.retryIn, time.Second), 30*time.Second)
	retry.Reset(c.retryIn)
	if c.toldStuck {
		return
	}
	if err := c.x.SendNow(Outgoing{Body: "⚠️ waxmpp cannot save what it relays (is its disk full or failing?). Relaying waits and nothing is lost; it goes on by itself when it can save again."}); err == nil {
		c.toldStuck = true
	}
}

// waCtx bounds one WhatsApp call.
func waCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, waTimeout)
}

// say sends the owner a line from the bot itself (not about a chat). A
// line that cannot be queued is logged: what it answers is done, and the
// owner's next message gets an answer again.
func (c *Core) say(text string) {
	if c.collect != nil {
		*c.collect = append(*c.collect, text)
		return
	}
	out := Outgoing{Body: forms(text, c.bang())}
	if c.answerRoom != "" {
		// The bot speaks there under the chat's name: its own lines say
		// that they are its own.
		out = Outgoing{Body: roomsWord + out.Body, Room: c.answerRoom}
	}
	if _, err := c.x.Send(out); err != nil {
		c.log.Error("tell owner", "err", err)
	}
}

// sayAbout sends a note about chat (its id from noteID) and maps it to the
// chat, so that a reply to it routes there, and a quote of it. It counts
// as the chat speaking. A note sent before (the event came again after a
// crash) is not sent again. A chat with a room gets it there (callers
// make its body with noteIn or headerIn).
func (c *Core) sayAbout(chat Chat, out Outgoing) error {
	out.Room = c.roomOf(ChatID(chat.ID))
	if _, err := c.st.MessageByXMPP(out.ID); err == nil {
		return nil
	} else if !errors.Is(err, ErrNotFound) {
		return err
	}
	if err := c.spoke(ChatID(chat.ID)); err != nil {
		return err
	}
	if _, err := c.x.Send(out); err != nil {
		return err
	}
	l := MsgLink{WA: MessageKey{Chat: chat.ID}, XMPPID: out.ID, Excerpt: excerptOf(c.afterHeader(out.Body)), Time: c.now()}
	if out.Room != "" {
		l.Excerpt, l.RoomID = excerptOf(out.Body), RoomPending
	}
	return c.st.PutMessages(l)
}

// noteID is the XMPP id of a note about an event, derived from what
// identifies the event (like relayID), so that the note for an event
// delivered again carries the same id.
func noteID(parts ...string) string {
	h := sha256.Sum256([]byte("note\x00" + strings.Join(parts, "\x00")))
	return relayPrefix + hex.EncodeToString(h[:10])
}

// ---- names and chats ----

// name is what the owner calls user: address book, push name, +number.
//
// The name is shown safe (showName): with the person's number when it reads
// as the owner or a header, or when it is the same as another name the
// owner knows. A name from the address book (the owner's own) gets the
// number only when another address-book name is the same; a push name,
// which anyone may choose, whenever it clashes with any.
func (c *Core) name(u UserID) string {
	u = bareUser(u)
	if u == "" {
		return "someone"
	}
	n, trusted := c.baseName(u)
	clash := c.clash(personPrefix, string(c.canonicalUser(u)), n, trusted)
	if s := safeName(n); s != "" && !clash && !readsAsOwner(s) && !readsAsHeader(s) {
		return s // as showName has it, without making the tag it leaves out
	}
	return showName(n, c.tagOf(u), clash)
}

// baseName is the name the owner knows u by, from either of u's
// identities: the address book (trusted: the owner chose it), else the
// push name or business name; "" when none is known.
func (c *Core) baseName(u UserID) (string, bool) {
	ids := [2]UserID{u, c.other(u)}
	for _, id := range ids {
		if p := c.people[id]; p != nil && id != "" {
			for _, n := range []string{p.Full, p.First} {
				if safeName(n) != "" {
					return n, true
				}
			}
		}
	}
	for _, id := range ids {
		if p := c.people[id]; p != nil && id != "" {
			for _, n := range []string{p.Push, p.Business} {
				if safeName(n) != "" {
					return n, false
				}
			}
		}
	}
	return "", false
}

// tagOf is what tells u apart: the phone number, else "~" and the LID.
func (c *Core) tagOf(u UserID) string {
	for _, id := range []UserID{u, c.other(u)} {
		if ph := phoneOf(id); ph != "" {
			return ph
		}
	}
	return "~" + userPart(u)
}

// The name index: which people and groups go by each name (nameKey), so
// that a name the owner would read as someone else's is shown with what
// tells it apart. Entries are "u:" + a canonical user, "g:" + a group's id;
// the value says whether the name is trusted (the owner's address book).
// A stale entry can only add a tag where none was needed.
func personEntry(u UserID) string { return personPrefix + string(u) }
func groupEntry(id string) string { return groupPrefix + id }

const personPrefix, groupPrefix = "u:", "g:"

// clash reports whether name, shown for the entry prefix+id, is the same
// as another entry's: any other, for an untrusted name; another trusted
// one, for a trusted name.
func (c *Core) clash(prefix, id, name string, trusted bool) bool {
	var buf [64]byte
	k := appendNameKey(buf[:0], safeName(name))
	if len(k) == 0 {
		return false
	}
	entries := c.names[string(k)]
	for other, t := range entries {
		if !(len(other) == len(prefix)+len(id) && strings.HasPrefix(other, prefix) && other[len(prefix):] == id) && (t || !trusted) {
			return true
		}
	}
	return false
}

// index records that entry goes by name now.
func (c *Core) index(entry, name string, trusted bool) {
	if old, ok := c.nameAt[entry]; ok {
		delete(c.names[old], entry)
		if len(c.names[old]) == 0 {
			delete(c.names, old)
		}
		delete(c.nameAt, entry)
	}
	k := nameKey(safeName(name))
	if k == "" {
		return
	}
	if c.names[k] == nil {
		c.names[k] = map[string]bool{}
	}
	c.names[k][entry] = trusted
	c.nameAt[entry] = k
}

// indexPerson updates the name index for u (under its canonical id; the
// other identity's entry goes).
func (c *Core) indexPerson(u UserID) {
	u = bareUser(u)
	cu := c.canonicalUser(u)
	for _, id := range []UserID{u, c.other(u)} {
		if id != cu && id != "" {
			c.index(personEntry(id), "", false)
		}
	}
	n, trusted := c.baseName(cu)
	c.index(personEntry(cu), n, trusted)
}

// indexChat updates the name index for a group.
func (c *Core) indexChat(ch Chat) {
	if ch.Kind != Direct {
		c.index(groupEntry(ch.ID), ch.Name, false)
	}
}

// other is the alias of u (its LID or phone JID), "" if unknown.
func (c *Core) other(u UserID) UserID {
	p := c.people[bareUser(u)]
	if p == nil {
		return ""
	}
	if p.Phone != "" {
		return p.Phone
	}
	return p.LID
}

// canonicalUser is the phone JID of a user known under a LID and a phone
// number, else the user (without device part): one person, one sender.
func (c *Core) canonicalUser(u UserID) UserID {
	u = bareUser(u)
	if p := c.people[u]; p != nil && p.Phone != "" {
		return p.Phone
	}
	return u
}

// bareUser drops a device part: "49…:3@s.whatsapp.net" → "49…@s.whatsapp.net".
func bareUser(u UserID) UserID {
	s := string(u)
	user, server, ok := strings.Cut(s, "@")
	if !ok {
		return u
	}
	user, _, device := strings.Cut(user, ":")
	if !device {
		return u // no copy
	}
	return UserID(user + "@" + server)
}

func (c *Core) personOf(u UserID) *person {
	u = bareUser(u)
	p := c.people[u]
	if p == nil {
		p = &person{}
		c.people[u] = p
	}
	return p
}

func (c *Core) markDirty() {
	if !c.dirty {
		c.dirty = true
		c.saveDue = c.now().Add(5 * time.Second)
	}
}

// saveCache saves the names and history anchors, if they changed.
func (c *Core) saveCache() {
	if !c.dirty {
		return
	}
	for _, s := range []struct {
		name string
		v    any
	}{{settingPeople, c.people}, {settingOldest, c.oldest}} {
		b, err := json.Marshal(s.v)
		if err == nil {
			err = c.st.PutBlob(s.name, b)
		}
		if err != nil {
			c.log.Error("save "+s.name, "err", err)
			return
		}
	}
	c.dirty = false
	// What waited for this save is durable now.
	for _, ev := range c.unacked {
		c.wa.Handled(ev)
	}
	c.unacked = nil
}

// noteOldest remembers m when it is the oldest message of ch the core has
// seen: /history continues before it.
func (c *Core) noteOldest(ch Chat, m *Message) {
	if m.Time.IsZero() || m.Ref.ID == "" {
		return
	}
	if a, ok := c.oldest[ChatID(ch.ID)]; ok && !m.Time.Before(a.Time) {
		return
	}
	a := anchor{ID: m.Ref.ID, FromMe: m.Ref.FromMe, Time: m.Time}
	if m.Ref.Chat != ChatID(ch.ID) {
		a.Chat = m.Ref.Chat
	}
	c.oldest[ChatID(ch.ID)] = a
	c.markDirty()
}

// anchorOf is where a history request for ch continues: the oldest
// message of ch known, ok false when none is.
func (c *Core) anchorOf(ch Chat) (HistoryAnchor, bool) {
	a, ok := c.oldest[ChatID(ch.ID)]
	if !ok {
		b, found, err := c.st.Blob(settingOldestOfOld + ch.ID)
		if err != nil || !found || json.Unmarshal(b, &a) != nil || a.ID == "" {
			return HistoryAnchor{}, false
		}
	}
	chat := a.Chat
	if chat == "" {
		chat = ChatID(ch.ID)
	}
	return HistoryAnchor{Ref: MsgRef{Chat: chat, ID: a.ID, FromMe: a.FromMe}, Time: a.Time}, true
}

func (c *Core) saveRoute() error {
	b, err := json.Marshal(c.route)
	if err == nil {
		err = c.st.PutBlob(settingRoute, b)
	}
	if err != nil {
		return fmt.Errorf("save routing state: %w", err)
	}
	return nil
}

// chatKindOf tells a chat's kind from its JID.
func chatKindOf(id ChatID) ChatKind {
	s := string(id)
	switch {
	case s == "status@broadcast":
		return StatusChat
	case strings.HasSuffix(s, "@g.us"):
		return Group
	case strings.HasSuffix(s, "@broadcast"):
		return Broadcast
	}
	return Direct
}

// canonical maps a direct chat's LID to its phone JID when the alias is
// known, so one person is one chat.
func (c *Core) canonical(id ChatID) ChatID {
	if chatKindOf(id) != Direct {
		return id
	}
	if p := c.people[UserID(id)]; p != nil && p.Phone != "" {
		return ChatID(p.Phone)
	}
	return id
}

// chat returns the stored chat id, creating it (named, with a handle) when
// new. A direct chat's name follows what the owner calls the person.
func (c *Core) chat(id ChatID, pushHint string) (Chat, error) {
	id = c.canonical(id)
	ch, err := c.st.Chat(string(id))
	if err == nil {
		if ch.Kind == Direct {
			if n := c.name(UserID(ch.ID)); n != ch.Name && !strings.HasPrefix(n, "+") && !strings.HasPrefix(n, "~") {
				ch.Name = n
				if ch2, err := c.st.PutChat(ch); err == nil {
					ch = c.rehandle(ch2)
				}
			}
		}
		return ch, nil
	}
	if !errors.Is(err, ErrNotFound) {
		return Chat{}, err
	}
	ch = Chat{ID: string(id), Kind: chatKindOf(id)}
	if ch.Kind == Direct {
		ch.Name = c.name(UserID(id))
		if (strings.HasPrefix(ch.Name, "+") || strings.HasPrefix(ch.Name, "~")) && safeName(pushHint) != "" {
			ch.Name = safeName(pushHint)
		}
	}
	full := ch.Name
	if ch.Kind == Direct {
		// The handle comes from the first name (alice, not
		// aliceliddell): the store derives it from the name given at
		// creation and keeps it when the name changes.
		ch.Name = c.firstName(UserID(id), full)
	}
	ch, err = c.st.PutChat(ch)
	if err != nil {
		return Chat{}, err
	}
	if ch.Name != full {
		ch.Name = full
		if ch, err = c.st.PutChat(ch); err != nil {
			return Chat{}, err
		}
	}
	c.indexChat(ch)
	if o := c.other(UserID(id)); o != "" {
		if err := c.st.AddAlias(ch.ID, string(o)); err != nil {
			return Chat{}, err
		}
	}
	return ch, nil
}

// rehandle gives a chat whose handle was made without a name ("group2",
// "n4917…") one from its name (from the first name for a person), once the
// name is known. The old handle keeps naming the chat too.
func (c *Core) rehandle(ch Chat) Chat {
	if !genericHandle(ch.Handle) {
		return ch
	}
	name := ch.Name
	if ch.Kind == Direct {
		name = c.firstName(UserID(ch.ID), c.name(UserID(ch.ID)))
	}
	base := HandleBase(name)
	if base == "" || genericHandle(base) {
		return ch
	}
	for n := 1; n < 10; n++ {
		h := base
		if n > 1 {
			h = base[:min(len(base), MaxHandle-1)] + string(rune('0'+n))
		}
		if out, err := c.st.SetHandle(ch.ID, h); err == nil {
			return out
		}
	}
	return ch
}

// firstName is the short name a person's handle derives from.
func (c *Core) firstName(u UserID, full string) string {
	if p := c.people[u]; p != nil && safeName(p.First) != "" {
		return safeName(p.First)
	}
	if f := strings.Fields(full); len(f) > 0 && !strings.HasPrefix(full, "+") && !strings.HasPrefix(full, "~") {
		return f[0]
	}
	// Only a number: "n4917…" can be typed; "contact7" says nothing.
	if n := userPart(u); isNumber(n) {
		return "n" + n
	}
	return full
}

// chatName is how the owner reads a chat's name.
//
// A group's subject (anyone in it may set it) is shown with the group's
// handle when it reads as the owner or a header, or is another chat's or
// person's name too.
func (c *Core) chatName(ch Chat) string {
	if ch.Kind == Direct {
		if n, _ := c.baseName(UserID(ch.ID)); n == "" && ch.Name != "" {
			// No name known any more (the names cache started over):
			// the name the chat was stored with.
			return showName(ch.Name, c.tagOf(UserID(ch.ID)), c.clash(personPrefix, string(c.canonicalUser(UserID(ch.ID))), ch.Name, false))
		}
		return c.name(UserID(ch.ID))
	}
	return showName(ch.Name, ch.Handle, c.clash(groupPrefix, ch.ID, ch.Name, false))
}

// chatNameOf names a chat id, for questions and answers.
func (c *Core) chatNameOf(id ChatID) string {
	ch, err := c.st.Chat(string(id))
	if err != nil {
		return string(id)
	}
	return c.chatName(ch)
}

func muted(ch Chat, now time.Time) bool { return ch.MutedUntil.After(now) }

// spoke records that chat relayed something the owner sees.
//
// It is recorded before the message is relayed: a crash after relaying
// must not forget it (the message, mapped, would not be relayed again).
// The other way round, a crash between the two can only make the bot ask
// once more than needed.
func (c *Core) spoke(chat ChatID) error {
	if c.roomOf(chat) != "" {
		return nil // it speaks in its room, not in the bot conversation
	}
	cur, _, err := c.st.Route()
	if err != nil {
		return err
	}
	if c.canonicalChat(ChatID(cur)) == c.canonicalChat(chat) {
		return nil
	}
	if len(c.route.Since) > 0 && c.route.Since[0] == chat {
		return nil
	}
	// Saved on every change, order included: the order of a question's
	// candidates after a restart is the order before it. (A chat that
	// keeps speaking is at the front already and costs nothing.)
	if i := slices.Index(c.route.Since, chat); i >= 0 {
		c.route.Since = slices.Delete(c.route.Since, i, i+1)
	}
	c.route.Since = slices.Insert(c.route.Since, 0, chat)
	if len(c.route.Since) > 20 {
		c.route.Since = c.route.Since[:20]
	}
	return c.saveRoute()
}

// wrote records that the owner wrote to chat; when it is the current chat
// the "spoke since" set starts over.
func (c *Core) wrote(chat ChatID) error {
	cur, _, err := c.st.Route()
	if err != nil {
		return err
	}
	if c.canonicalChat(ChatID(cur)) != c.canonicalChat(chat) || len(c.route.Since) == 0 {
		return nil
	}
	c.route.Since = nil
	return c.saveRoute()
}
