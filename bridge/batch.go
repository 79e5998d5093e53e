package bridge

import (
	"context"
	"errors"
	"strings"
	"time"
)

// A burst of WhatsApp messages shares its writes. Run takes what waits on
// the events channel (up to maxBatch) and handles it as one batch: each
// plain message that goes to the bot conversation leaves its stanza and
// its map entry in the batch, and the batch is written in one
// transaction: where the XMPP side's outbox shares the store's
// transactions (RecordingXMPP: bridge/xmpp over bridge/store), the
// stanzas, their map entries and their chats' new activity go in one
// commit; else with one Send (one outbox transaction) and one
// PutMessages (one map transaction) for all. A lone message costs one
// commit, a burst of 100 too (an SD card manages 25-100 fsyncs a second).
//
// The guarantees stay: nothing is acknowledged to WhatsApp before it is
// on disk (the batch's events are acknowledged, in order, once it is
// written), and the owner sees everything in order (any other send, a
// line of the bot's, a note, a room's message, first writes the batch;
// so does any event that is not such a message, and any message that
// names one in the batch). When the batch cannot be written, its events
// are handled again, one by one, before anything else (redo).
type relayBatch struct {
	cur    Event // the event being handled, until message takes it
	added  bool  // message took cur
	outs   []Outgoing
	links  []MsgLink
	touch  map[string]time.Time // chat id → the time its activity moves to
	events []Event              // the events batched, in order
	ids    map[string]bool      // their WhatsApp ids
}

// maxBatch bounds the events Run takes at once, so that the owner's
// messages are not kept waiting behind a long burst.
const maxBatch = 100

func newRelayBatch() *relayBatch {
	return &relayBatch{touch: map[string]time.Time{}, ids: map[string]bool{}}
}

// takes reports whether ev may join the batch without writing it first:
// a message that does not name one of the batch's messages.
func (b *relayBatch) takes(ev Event) bool {
	m, ok := ev.(*Message)
	return ok && !b.ids[m.Ref.ID] && (m.ReplyTo == nil || !b.ids[m.ReplyTo.ID])
}

// batched leaves m's relay in the batch, if m is the event being taken
// (not a message of a lane, whose removal from the lane is written at
// once) and goes where the batch's messages go. It reports whether it
// did; the event is acknowledged once the batch is written.
func (c *Core) batched(m *Message, out Outgoing, link MsgLink, touch bool) bool {
	b := c.batch
	if b == nil || b.cur != Event(m) || out.Room != "" || out.Replace != "" {
		return false
	}
	b.cur, b.added = nil, true
	b.outs = append(b.outs, out)
	b.links = append(b.links, link)
	b.ids[m.Ref.ID] = true
	if touch && m.Time.After(b.touch[link.WA.Chat]) {
		b.touch[link.WA.Chat] = m.Time
	}
	return true
}

// errBatch is a send's error when the batch before it could not be written.
var errBatch = errors.New("bridge: the messages before it could not be saved")

// flushBatch writes the batch and acknowledges its events. On a failure
// they move to batchFailed (see fail) and it reports false.
func (c *Core) flushBatch() bool {
	b := c.batch
	if b == nil || len(b.events) == 0 && len(b.outs) == 0 {
		return true
	}
	outs, links, touch, evs := b.outs, b.links, b.touch, b.events
	b.outs, b.links, b.touch, b.events, b.ids = nil, nil, map[string]time.Time{}, nil, map[string]bool{}
	var err error
	recorded := false // links and touch written with outs
	if w, ok := c.xw.(RecordingXMPP); ok && len(outs) > 0 {
		c.mappedLinks(links)
		_, err = w.SendWith(Record{Links: links, Touch: touch}, outs...)
		recorded = !errors.Is(err, errors.ErrUnsupported)
	}
	if !recorded {
		err = nil
		if len(outs) > 0 {
			_, err = c.xw.Send(outs...)
		}
		if err == nil && len(links) > 0 {
			err = c.st.PutMessages(links...)
		}
	}
	if err != nil {
		c.log.Error("WhatsApp messages not relayed; trying again", "messages", len(evs), "err", err)
		c.batchFailed = append(c.batchFailed, evs...)
		return false
	}
	if recorded {
		touch = nil
	}
	for chat, t := range touch {
		// Only orders /chats and the quote window: a failure is no loss.
		if err := c.st.Touch(chat, t); err != nil {
			c.log.Warn("touch chat", "err", err)
		}
	}
	for _, ev := range evs {
		c.ack(ev)
	}
	return true
}

// fail keeps what is not on disk for the next try, in order: the events
// of a batch that could not be written, then ev (nil: none). The first is
// stuckEvent, the others wait in redo.
func (c *Core) fail(ev Event) {
	f := c.batchFailed
	c.batchFailed = nil
	if ev != nil {
		f = append(f, ev)
	}
	if len(f) == 0 {
		return
	}
	c.stuckEvent = f[0]
	c.redo = append(f[1:len(f):len(f)], c.redo...)
}

// ack acknowledges a handled event, or keeps it until the names and
// anchors it changed are saved (saveCache).
func (c *Core) ack(ev Event) {
	if c.dirty || len(c.unacked) > 0 {
		c.unacked = append(c.unacked, ev)
		return
	}
	c.wa.Handled(ev)
}

// batchXMPP is the XMPP side as the core uses it: every send first writes
// the batch, so that the owner sees what was relayed in order.
type batchXMPP struct {
	XMPP
	c *Core
}

func (x batchXMPP) Send(msgs ...Outgoing) ([]string, error) {
	if !x.c.flushBatch() {
		return nil, errBatch
	}
	return x.XMPP.Send(msgs...)
}

func (x batchXMPP) SendNow(m Outgoing) error {
	if !x.c.flushBatch() {
		return errBatch
	}
	return x.XMPP.SendNow(m)
}

// The owner's burst shares its writes too. Run takes the owner's events
// waiting on the channel (up to maxBatch) as one batch, and during a
// burst also those that arrive soon after (relayOwner, ownerLinger): each
// plain text sent to WhatsApp leaves its map entry in the batch, and the
// batch is written with one PutMessages; then its events are acknowledged
// to the XMPP side (the archive cursor, XEP-0198), in order. WhatsApp is
// asked one message at a time, as each arrives: a send is a round trip
// the map entry must follow.
//
// A crash before the batch is written loses nothing and doubles nothing:
// the owner's messages were not acknowledged, so the server delivers them
// again; they are sent again with the WhatsApp ids derived from their
// XMPP ids (waSendID), and WhatsApp's recipients drop what they have.
// When the batch cannot be written, its events are handled again, one by
// one, before anything else (ownerRedo), the same way.
//
// What could read the batch's entries before they are written writes the
// batch first: any event but a plain text, a chat state or a receipt (a
// correction, retraction, reaction or marker names an earlier message), a
// text that replies, quotes ("> "), is a command or a file, or comes
// through a room. The batch's own ids are known to handledBefore, so a
// message delivered twice within a burst is sent once.
type ownerBatch struct {
	cur    string // the id of the owner's text being handled, until send takes it
	links  []MsgLink
	ids    map[string]bool // the XMPP ids of links
	events []OwnerEvent    // handled, acknowledged once the batch is written
}

func newOwnerBatch() *ownerBatch { return &ownerBatch{ids: map[string]bool{}} }

// takes reports whether m may join the batch without writing it first.
func (b *ownerBatch) takes(m OwnerEvent) bool {
	if m.Meta().Room != "" {
		return false
	}
	switch e := m.(type) {
	case *OwnerText:
		return e.ReplyTo == "" && e.File == "" && !strings.HasPrefix(e.Body, ">") && !strings.HasPrefix(e.Body, "/")
	case *OwnerChatState, *OwnerReceived:
		return true
	}
	return false
}

// ownerBatched leaves l, the map entry of the owner's text being handled,
// in the batch. It reports false (write l now) for anything else: a
// pending or held message sent meanwhile, or no batch.
func (c *Core) ownerBatched(l MsgLink) bool {
	b := c.obatch
	if b == nil || b.cur == "" || l.XMPPID != b.cur {
		return false
	}
	b.cur = ""
	b.links = append(b.links, l)
	b.ids[l.XMPPID] = true
	return true
}

// inOwnerBatch reports whether the owner's message id waits in the batch.
func (c *Core) inOwnerBatch(id string) bool {
	return c.obatch != nil && id != "" && c.obatch.ids[id]
}

// flushOwner writes the owner batch and acknowledges its events. On a
// failure they move to ownerFailed (see failOwner) and it reports false.
func (c *Core) flushOwner() bool {
	b := c.obatch
	if b == nil || len(b.events) == 0 && len(b.links) == 0 {
		return true
	}
	links, evs := b.links, b.events
	b.links, b.events, b.ids = nil, nil, map[string]bool{}
	if len(links) > 0 {
		if err := c.st.PutMessages(links...); err != nil {
			c.log.Error("owner messages sent but not recorded; handling them again", "messages", len(evs), "err", err)
			c.ownerFailed = append(c.ownerFailed, evs...)
			return false
		}
		c.ownerWritten = c.ownerClock.time()
	}
	for _, m := range evs {
		c.x.Handled(m)
	}
	return true
}

// failOwner keeps what is not on disk for the next try, in order: the
// events of an owner batch that could not be written, then m (nil: none).
// The first is stuckOwner, the others wait in ownerRedo.
func (c *Core) failOwner(m OwnerEvent) {
	f := c.ownerFailed
	c.ownerFailed = nil
	if m != nil {
		f = append(f, m)
	}
	if len(f) == 0 {
		return
	}
	c.stuckOwner = f[0]
	c.ownerRedo = append(f[1:len(f):len(f)], c.ownerRedo...)
}

// relayEvents handles a batch of WhatsApp events: ev and what waits
// behind it on events (up to maxBatch), written with one commit
// (flushBatch). events is Run's channel: nil once closed.
func (c *Core) relayEvents(ctx context.Context, ev Event, events *<-chan Event, retry *time.Timer) {
	t := StageStart()
	c.batch = newRelayBatch()
	good := c.takeEvent(ctx, ev)
take:
	for n := 1; good && n < maxBatch; n++ {
		select {
		case ev, ok := <-*events:
			if !ok {
				*events = nil
				break take
			}
			good = c.takeEvent(ctx, ev)
		default:
			break take
		}
	}
	if good && !c.flushBatch() {
		c.fail(nil)
		good = false
	}
	c.batch = nil
	stageCoreWA.Done(t)
	if !good {
		c.stuck(retry)
	}
}

// A burst of the owner's messages shares its commit even when the server
// hands them over one at a time, more slowly than a commit: when a batch
// begins within ownerLinger of the last written one and maps texts, it is
// held open while more arrive, each within ownerLinger of the one before,
// up to ownerHoldMax after its first event (or maxBatch events); what
// arrives meanwhile joins it. A lone message (nothing written within
// ownerLinger before it) is written at once, as is a batch that maps
// nothing (it has no commit to share).
//
// Holding delays no relay: each text goes to WhatsApp as it arrives; only
// its map entry and its acknowledgement to the XMPP side (the stream's
// count, the archive cursor) wait for the batch's commit, as they always
// did, so nothing is acknowledged before it is on disk. A WhatsApp event
// ends the hold at once (the batch is written, then the event handled:
// what it names is mapped by then); commands, the tick and health
// requests wait at most ownerHoldMax. The hold is a one-shot timer, armed
// only while a batch is held: an idle bridge sets none.
//
// The numbers, from BenchmarkSimDiskWrites (bursts of 100 texts sent at
// once by the owner's client) on this 2-core machine: ejabberd (Debian's
// 23.01, its archive in SQLite) hands them to the bot one at a time at
// 70-90 a second, up to 85 ms apart (p50 8-11 ms, p90 17-28 ms, 2 runs), while
// a commit takes 2-4 ms, so without the hold each text was its own batch:
// 0.69-1.0 commits and 11.5-16.6 KB written per message (a commit of the
// map writes ~16-19 KB, its pages and the meta page, whether it maps one
// text or 50); Prosody hands them over faster, 8-9 batches a burst,
// 1.5-1.7 KB a message. Holds of a few tens of ms take 2-4 texts each:
// with 50 ms and 250 ms, 0.07-0.16 commits and 1.3-2.8 KB a message on
// ejabberd (the server's gaps went past 50 ms 3-5 times a burst). With
// ownerLinger 100 ms and ownerHoldMax 400 ms: ejabberd 0.04 commits and
// 860 B a message, Prosody 0.02 and 532 B (both 0.02 and 532 B once the
// XMPP reader's fast path made ejabberd's texts cheaper to read); the
// texts' latency to WhatsApp is the server's pace, unchanged (ejabberd, 6 bursts each,
// alternating, loaded machine: p50 286-1,090 ms before, 195-1,050 after).
// On a Pi's SD card (10-40 ms per fdatasync, two per commit) the owner
// side then commits at most about twice a second during a burst, a small
// share of the card's 25-100 syncs a second, where one commit per text
// at ejabberd's pace would take all of them; what arrives during a slow
// commit joins the next batch as before. ownerLinger is far below the
// time a person takes to send two messages; an acknowledgement that
// waits up to 400 ms only means that after a crash in that time the
// server delivers those texts again, and they are sent again with the
// same WhatsApp ids (see ownerBatch).
const (
	ownerLinger  = 100 * time.Millisecond
	ownerHoldMax = 400 * time.Millisecond
)

// holdClock is what the owner batch's hold reads the time with and
// waits on: the real clock and one reused timer, or a test's.
type holdClock struct {
	now   func() time.Time
	after func(d time.Duration) (<-chan time.Time, func() bool)
	timer *time.Timer
}

func (h *holdClock) time() time.Time {
	if h.now != nil {
		return h.now()
	}
	return time.Now()
}

// start arms the one-shot timer: it fires once, d from now, unless
// stopped.
func (h *holdClock) start(d time.Duration) (<-chan time.Time, func() bool) {
	if h.after != nil {
		return h.after(d)
	}
	if h.timer == nil {
		h.timer = time.NewTimer(d)
	} else {
		h.timer.Reset(d)
	}
	return h.timer.C, h.timer.Stop
}

// relayOwner handles a batch of the owner's events: m and what waits
// behind it on owner, or arrives while the batch is held (see
// ownerLinger), written with one commit (flushOwner). It returns a
// WhatsApp event that ended the hold, which the caller handles next (nil:
// none). owner and events are Run's channels: nil once closed.
func (c *Core) relayOwner(ctx context.Context, m OwnerEvent, owner *<-chan OwnerEvent, events *<-chan Event, retry *time.Timer) Event {
	t := StageStart()
	begun := c.ownerClock.time()
	burst := !c.ownerWritten.IsZero() && begun.Sub(c.ownerWritten) < ownerLinger
	c.obatch = newOwnerBatch()
	good := c.takeOwner(ctx, m)
	var (
		held <-chan time.Time // the hold's timer
		stop func() bool      // stops it, while armed
		ev   Event
	)
take:
	for n := 1; good && n < maxBatch; n++ {
		select {
		case m, ok := <-*owner:
			if !ok {
				*owner = nil
				break take
			}
			good = c.takeOwner(ctx, m)
			continue
		default:
		}
		// Nothing waits: write the batch now, unless it is held.
		if !burst || len(c.obatch.links) == 0 {
			break take
		}
		wait := min(ownerLinger, ownerHoldMax-c.ownerClock.time().Sub(begun))
		if wait <= 0 {
			break take
		}
		if stop != nil {
			stop()
		}
		held, stop = c.ownerClock.start(wait)
		evs := *events
		if c.stuckEvent != nil || len(c.redo) > 0 {
			evs = nil
		}
		select {
		case m, ok := <-*owner:
			if !ok {
				*owner = nil
				break take
			}
			good = c.takeOwner(ctx, m)
		case e, ok := <-evs:
			if !ok {
				*events = nil
			} else {
				ev = e
			}
			break take
		case <-held:
			stop = nil
			break take
		case <-ctx.Done():
			break take
		}
	}
	if stop != nil {
		stop()
	}
	if good && !c.flushOwner() {
		c.failOwner(nil)
		good = false
	}
	c.obatch = nil
	stageCoreOwner.Done(t)
	if !good {
		c.stuck(retry)
	}
	return ev
}
