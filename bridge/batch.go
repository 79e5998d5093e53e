package bridge

import (
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
// waiting on the channel (up to maxBatch) as one batch: each plain text
// sent to WhatsApp leaves its map entry in the batch, and the batch is
// written with one PutMessages; then its events are acknowledged to the
// XMPP side (the archive cursor, XEP-0198), in order. WhatsApp is asked
// one message at a time, as before: a send is a round trip the map entry
// must follow.
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
