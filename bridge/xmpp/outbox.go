package xmpp

import (
	"context"
	"encoding/xml"
	"fmt"
	"time"

	"waxmpp/bridge"
)

// write is the link's only writer. It sends control stanzas first, then
// outbox items in order, paced by the token bucket; it pings to confirm
// what it wrote and to detect a dead link.
//
// Confirmation: the server processes a stream in order, so the result of a
// ping written after outbox item N proves items up to N arrived; only then
// are they acknowledged (removed) from the durable outbox. Unconfirmed items
// are written again, unchanged (same id), on the next link.
func (s *Session) write(ctx context.Context, c *conn) error {
	s.pacer.newLink()
	pace := newBucket(s.cfg.Rate, s.cfg.Burst)
	pace.setRate(s.pacer.rate)
	s.rate.Store(int64(s.pacer.rate))
	w := &outWriter{s: s, c: c, pace: pace, pings: map[string]ping{}, limit: s.linkLimit(c.link)}
	s.limit.Store(int64(w.limit))
	tick := time.NewTicker(min(s.cfg.PingInterval, s.cfg.PingTimeout) / 2)
	defer tick.Stop()
	defer s.unconfirmed.Store(0)
	defer func() {
		if err := w.remove(true); err != nil {
			s.log.Warn("confirmed stanzas stay queued; the next link sends them again", "err", err)
		}
	}()
	defer func() {
		g := &s.guard
		g.unconfirmed = w.inflight
		g.wasCareful = len(w.inflight) == 1 && w.inflight[0] <= g.careful
	}()
	for {
		if did, err := w.urgent(ctx); err != nil {
			return err
		} else if did {
			continue
		}
		if did, err := w.drain(ctx); err != nil {
			return err
		} else if did {
			continue
		}
		if err := w.idle(ctx, tick.C); err != nil {
			return err
		}
	}
}

// outWriter is the state of one link's writer goroutine.
type outWriter struct {
	s    *Session
	c    *conn
	pace *bucket
	// written is the outbox seq of the last item written on this link,
	// confirmed the last one a ping result proved the server has, removed
	// the last one removed from the outbox (remove), since removeFrom.
	written, confirmed, removed uint64
	removeFrom                  time.Time
	removedBytes                uint64          // ackedBytes when removed was
	backlog                     bool            // the last look at the outbox found more than was written
	pings                       map[string]ping // by id
	pingSent                    time.Time       // oldest unanswered ping, zero if none
	lastPing                    time.Time
	lastPingBytes               uint64 // bytes when the last ping was written
	held                        bool   // the pace held the writer back since the last ping
	bytes                       uint64 // stanza bytes written on this link
	ackedBytes                  uint64 // of which the server confirmed
	// inflight lists the outbox items written and not yet confirmed.
	inflight []uint64
	// limit is the link's stanza limit (see split.go).
	limit int
	// fullAt is when the window filled with items still to write, for
	// stageWindow (zero: not full, or stages off).
	fullAt time.Time
}

// ping is one ping in flight.
type ping struct {
	seq   uint64    // outbox seq written before it
	bytes uint64    // stanza bytes written before it
	at    time.Time // when it was written
	stage time.Time // bridge.StageStart when it was written
}

// Stages (bridge.NewStage): the outbox's durable write in SendBatch, and
// each stanza's write to the socket (the pace's wait left out).
var (
	stageOutbox = bridge.NewStage("xmpp outbox commit")
	stageWrite  = bridge.NewStage("xmpp socket write")
	// The writer's waits: for the pace (the token bucket), for the
	// server to confirm a full window, and a ping's round trip.
	stagePace   = bridge.NewStage("xmpp pace wait")
	stageWindow = bridge.NewStage("xmpp window wait")
	stagePing   = bridge.NewStage("xmpp ping round trip")
)

// send writes one stanza, paced, with a deadline.
func (w *outWriter) send(ctx context.Context, b []byte) error {
	t := bridge.StageStart()
	held, err := w.pace.wait(ctx, len(b))
	if err != nil {
		return context.Cause(ctx)
	}
	if held {
		stagePace.Done(t)
	}
	w.held = w.held || held
	w.c.conn.SetWriteDeadline(time.Now().Add(w.s.cfg.WriteTimeout))
	t = bridge.StageStart()
	if _, err := w.c.conn.Write(b); err != nil {
		return fmt.Errorf("xmpp: write: %w", err)
	}
	stageWrite.Done(t)
	w.bytes += uint64(len(b))
	return nil
}

// ping asks the server for a result that confirms everything written so far.
func (w *outWriter) ping(ctx context.Context) error {
	id := "p-" + w.s.NewID()
	b, _ := EncodeIQ(IQ{ID: id, Type: "get", To: w.s.domain, Payload: pingPayload{}})
	if err := w.send(ctx, b); err != nil {
		return err
	}
	w.pings[id] = ping{seq: w.written, bytes: w.bytes, at: time.Now(), stage: bridge.StageStart()}
	if w.pingSent.IsZero() {
		w.pingSent = time.Now()
	}
	w.lastPing = time.Now()
	w.lastPingBytes = w.bytes
	return nil
}

// pong handles a ping result: the outbox is acknowledged up to what was
// written before that ping.
func (w *outWriter) pong(id string) error {
	p, ok := w.pings[id]
	if !ok {
		return nil
	}
	stagePing.Done(p.stage)
	seq := p.seq
	w.ackedBytes = max(w.ackedBytes, p.bytes)
	// Results arrive in order; older pings are answered too.
	for pid, ps := range w.pings {
		if ps.at.Compare(p.at) <= 0 {
			delete(w.pings, pid)
		}
	}
	now := time.Now()
	rtt := now.Sub(p.at)
	before := w.s.pacer.rate
	w.pace.setRate(w.s.pacer.observe(rtt, p.at, w.held, now))
	if w.s.pacer.rate < before {
		w.s.log.Debug("the server is queueing the bot: slower", "rate", int(w.s.pacer.rate), "was", int(before),
			"rtt", rtt.Round(time.Millisecond))
	}
	w.held = false
	w.s.rtt.Store(int64(rtt))
	w.s.rate.Store(int64(w.s.pacer.rate))
	w.pingSent = time.Time{}
	if len(w.pings) > 0 {
		w.pingSent = time.Now()
	}
	if seq > w.confirmed {
		if w.confirmed <= w.removed {
			w.removeFrom = now
		}
		w.confirmed = seq
		w.s.unconfirmed.Store(int64(w.written - w.confirmed))
	}
	if err := w.remove(false); err != nil {
		return err
	}
	i := 0
	for i < len(w.inflight) && w.inflight[i] <= seq {
		i++
	}
	w.inflight = w.inflight[i:]
	return nil
}

// remove removes from the outbox what the server confirmed. While a
// burst is being written (a later ping is out, or the outbox holds more
// than was written) it waits, for up to confirmEvery, so that one commit
// removes what several answers confirmed (on an SD card each commit is
// two fsyncs).
// force removes at once: the link ends, and a new link's writer starts
// from the outbox.
//
// A crash meanwhile sends those stanzas again, with their ids, as after a
// crash between an answer and its removal: clients drop a message whose
// id they have, and a room's are read back first (inRoomAlready).
func (w *outWriter) remove(force bool) error {
	if w.confirmed <= w.removed {
		return nil
	}
	if !force && (w.pending(w.confirmed+1) || w.backlog) && time.Since(w.removeFrom) < confirmEvery {
		return nil
	}
	bytes := w.ackedBytes - min(w.ackedBytes, w.removedBytes)
	if lq, ok := w.s.cfg.Outbox.(LaterQueue); ok && w.s.lazy.fits(lq.Removed(), w.confirmed, bytes) {
		lq.AckThroughLater(w.confirmed)
		w.s.log.Debug("confirmed stanzas out of the outbox, on disk with the next commit", "through", w.confirmed)
	} else {
		if err := w.s.cfg.Outbox.AckThrough(w.confirmed); err != nil {
			return fmt.Errorf("xmpp: ack outbox through %d: %w", w.confirmed, err)
		}
		w.s.lazy.clear()
	}
	w.removed, w.removedBytes = w.confirmed, w.ackedBytes
	return nil
}

// lazyRemovals are the outbox removals made with AckThroughLater that may
// not be on disk yet: after a crash their stanzas are at the outbox's
// head again, and go again with their ids. They are bounded (maxLazy
// bytes) so that recallCopies, which reads the head after a restart,
// still finds every room message among them; beyond that a removal is
// committed at once (it writes the earlier ones with it). One writer at
// a time uses it.
type lazyRemovals struct {
	seqs  []uint64 // the removals' last seqs, in order
	bytes []uint64 // the stanza bytes each removed
}

// maxLazy bounds the stanza bytes whose removal may wait for a commit:
// a lone message's stanza or a few, not a burst's.
const maxLazy = minWindow

// fits reports whether the removal through seq of bytes more may wait,
// and notes it if so; onDisk is the highest removal on disk.
func (l *lazyRemovals) fits(onDisk, seq, bytes uint64) bool {
	i := 0
	for i < len(l.seqs) && l.seqs[i] <= onDisk {
		i++
	}
	l.seqs, l.bytes = l.seqs[i:], l.bytes[i:]
	sum := bytes
	for _, b := range l.bytes {
		sum += b
	}
	if sum > maxLazy {
		return false
	}
	l.seqs, l.bytes = append(l.seqs, seq), append(l.bytes, bytes)
	return true
}

// clear forgets the removals: a commit wrote them.
func (l *lazyRemovals) clear() { l.seqs, l.bytes = l.seqs[:0], l.bytes[:0] }

// silent reports a ping unanswered for longer than PingTimeout.
func (w *outWriter) silent() error {
	if !w.pingSent.IsZero() && time.Since(w.pingSent) > w.s.cfg.PingTimeout {
		return fmt.Errorf("xmpp: no ping answer within %v", w.s.cfg.PingTimeout)
	}
	return nil
}

// pending reports whether a ping is out that covers outbox seq.
func (w *outWriter) pending(seq uint64) bool {
	for _, p := range w.pings {
		if p.seq >= seq {
			return true
		}
	}
	return false
}

// full reports whether the bytes written and not yet confirmed fill the
// window: about a second at the current pace, at least minWindow (8 KiB). A server
// that reads fast but processes slowly (ejabberd archiving to Mnesia) then
// never holds more than that of ours: its answers to our pings stay quick,
// and a link that fails has at most the window to resend. Without it a
// large burst allowance let the whole backlog into the server's socket,
// its pings went unanswered for the ping timeout, and every new link
// started over with the same backlog.
func (w *outWriter) full() bool {
	return w.bytes-w.ackedBytes >= w.window()
}

// window is the most the writer has written unconfirmed.
func (w *outWriter) window() uint64 { return max(minWindow, uint64(w.s.pacer.rate)) }

// minWindow is the smallest window: a few dozen stanzas, under three
// seconds of ejabberd's shipped 3,000 B/s, so a ping never waits longer
// behind our own bytes. (A stanza larger than the window goes alone.)
const minWindow = 8 << 10

// urgent handles, without waiting, a control stanza or a ping result.
func (w *outWriter) urgent(ctx context.Context) (bool, error) {
	select {
	case b := <-w.c.ctrl:
		return true, w.send(ctx, b)
	case id := <-w.c.pongs:
		return true, w.pong(id)
	case <-ctx.Done():
		return true, context.Cause(ctx)
	default:
		return false, nil
	}
}

// drain writes the next outbox items, up to 32, yielding to control
// stanzas and ping results. It reports false when the outbox has nothing
// left to write.
func (w *outWriter) drain(ctx context.Context) (bool, error) {
	select {
	case <-w.c.gate:
	default:
		return false, nil // not in the rooms yet (conn.gate)
	}
	items, err := w.s.cfg.Outbox.Peek(w.written, 32)
	if err != nil {
		return false, fmt.Errorf("xmpp: read outbox: %w", err)
	}
	w.backlog = len(items) > 0
	if len(items) == 0 {
		return false, nil
	}
	if w.full() {
		if w.fullAt.IsZero() {
			w.fullAt = bridge.StageStart()
		}
		// Wait for the server to confirm: a ping now, so that a fast
		// server's answer opens the window at once.
		w.held = true
		if !w.pending(w.written) && len(w.pings) < maxPings {
			return true, w.ping(ctx)
		}
		return false, nil
	}
	wrote := false
	for _, it := range items {
		if w.full() {
			break
		}
		if it.Seq <= w.s.guard.careful && len(w.inflight) > 0 {
			// After a stream error: one at a time, each confirmed
			// before the next (guard.go).
			if !wrote {
				return false, nil // idle pings and waits
			}
			break
		}
		wrote = true
		stageWindow.Done(w.fullAt)
		w.fullAt = time.Time{}
		if st, err := recordStanza(it.Data); err != nil {
			// A record we cannot have written: drop it rather than
			// wedge the queue behind it forever.
			w.s.log.Error("dropping malformed outbox record", "seq", it.Seq, "err", err)
		} else if w.s.inRoomAlready(st) {
			// Written on an earlier link, and the room has it (muc.go).
			w.s.log.Debug("not sent again: the room has it", "seq", it.Seq)
		} else if err := w.item(ctx, it.Seq, st); err != nil {
			return false, err
		}
		w.written = it.Seq
		w.s.unconfirmed.Store(int64(w.written - w.confirmed))
		w.backlog = it.Seq < items[len(items)-1].Seq || len(items) == 32
		if len(w.c.ctrl) > 0 || len(w.c.pongs) > 0 || w.halfWindow() || w.pingDue() {
			break
		}
	}
	// During a long drain, confirm as we go, so acknowledgements (and the
	// resend window after a failure) stay small, and notice a server that
	// stopped answering.
	if err := w.silent(); err != nil {
		return false, err
	}
	// Pings go out every second, and each half window written, even
	// while earlier ones are unanswered (up to maxPings): their round
	// trips are what the pacer reads, and the answer to one opens the
	// window while the writer goes on with the next half (pipelining:
	// waiting for an answer per full window left the server idle for a
	// round trip per window).
	if w.canPing() && (w.halfWindow() || w.pingDue()) {
		return true, w.ping(ctx)
	}
	return true, nil
}

// canPing reports whether the writer may ping now: none out for what it
// wrote so far, and fewer than maxPings out.
func (w *outWriter) canPing() bool { return !w.pending(w.written) && len(w.pings) < maxPings }

// pingDue reports whether a draining writer's ping is due: a second since
// the last, and canPing. The drain stops for it between items: at a slow
// pace a batch of them takes seconds, and the pacer learns from the
// answers.
func (w *outWriter) pingDue() bool {
	return time.Since(w.lastPing) >= confirmEvery && w.canPing()
}

// halfWindow reports whether half a window was written since the last
// ping.
func (w *outWriter) halfWindow() bool { return w.bytes-w.lastPingBytes >= w.window()/2 }

// item writes one outbox item: in parts when it is over the link's
// limit (queued before the session knew it), not at all when the guard
// took it out.
func (w *outWriter) item(ctx context.Context, seq uint64, stanza []byte) error {
	if seq == w.s.guard.culprit {
		out, err := w.culprit(seq, stanza)
		if err != nil {
			return err
		}
		if out {
			w.confirmed = max(w.confirmed, seq) // acknowledged: out of the outbox
			return nil
		}
	}
	stanzas := [][]byte{stanza}
	if len(stanza) > w.limit {
		if parts, ok := resplit(stanza, w.limit); ok {
			stanzas = parts
		}
	}
	for _, b := range stanzas {
		// Remembered before it is written: a federating server that cannot
		// connect to the owner's bounces it within milliseconds, and the
		// reader may see the bounce before this writer returns.
		w.s.sent.remember(b)
		if err := w.send(ctx, b); err != nil {
			return err
		}
	}
	w.inflight = append(w.inflight, seq)
	return nil
}

// idle confirms what was written since the last ping, then waits for the
// next thing to do: a control stanza, a ping result, a grown outbox or the
// keepalive tick.
func (w *outWriter) idle(ctx context.Context, tick <-chan time.Time) error {
	if w.written > w.confirmed && !w.pending(w.written) {
		return w.ping(ctx)
	}
	select {
	case b := <-w.c.ctrl:
		return w.send(ctx, b)
	case id := <-w.c.pongs:
		return w.pong(id)
	case <-w.s.kick:
		return nil
	case <-tick:
		if err := w.silent(); err != nil {
			return err
		}
		w.s.retryHeld()
		if err := w.remove(false); err != nil {
			return err
		}
		if time.Since(w.lastPing) >= w.s.cfg.PingInterval {
			return w.ping(ctx)
		}
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// maxPings bounds the pings in flight.
const maxPings = 8

// confirmEvery is how often a draining writer pings to confirm what it
// wrote: about 100 bytes a second, ~1% of the default pace.
const confirmEvery = time.Second

type pingPayload struct {
	XMLName xml.Name `xml:"urn:xmpp:ping ping"`
}
