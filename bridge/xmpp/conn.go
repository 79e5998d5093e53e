package xmpp

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// conn is the live state of one link, shared by its reader and writer.
type conn struct {
	*link
	// ctrl carries non-durable stanzas (IQ answers, presence, pings,
	// chat states) to the writer, ahead of the outbox. Capacity 256; when
	// full, senders get an error instead of blocking (see Session.control).
	ctrl chan []byte
	// pongs carries the ids of ping results from reader to writer.
	// Capacity 64; the reader blocks if the writer lags that far, which it
	// cannot for long since the writer drains it first.
	pongs chan string
	done  chan struct{} // closed when the link is over
	sm    *smState      // XEP-0198 counts
	seq   uint64        // the number of the stanza being routed (reader only)
	// gate is closed once the bot is in its rooms again (setupRooms):
	// until then the writer sends nothing of the outbox, which may hold
	// messages to rooms; a room drops what comes before the join.
	gate     chan struct{}
	gateOnce sync.Once
}

// offer hands b to the writer without waiting; false when its queue is
// full (the link is stuck and will be rebuilt).
func (c *conn) offer(b []byte) bool {
	select {
	case c.ctrl <- b:
		return true
	default:
		return false
	}
}

// openGate lets the writer send the outbox.
func (c *conn) openGate() {
	c.gateOnce.Do(func() { close(c.gate) })
}

// serve runs one link until it fails or ctx ends. The link is never reused:
// after any read, decode or write error it is closed and Run dials anew
// (go-xmpp may hold its decoder lock after a decode error, and a stream
// that lost a stanza mid-way cannot be trusted).
func (s *Session) serve(ctx context.Context, l *link, from cursorPos) error {
	ctx, cancel := context.WithCancelCause(ctx)
	c := &conn{link: l, ctrl: make(chan []byte, 256), pongs: make(chan string, 64), done: make(chan struct{}), gate: make(chan struct{}),
		sm: &smState{pending: map[uint64]bool{}}}
	c.sm.write = c.offer
	s.smOn.Store(false)
	s.mu.Lock()
	s.cur = c
	s.mu.Unlock()
	s.connected.Store(true)

	readErr := make(chan error, 1)
	go func() { readErr <- s.read(ctx, c) }()
	writeErr := make(chan error, 1)
	go func() { writeErr <- s.write(ctx, c) }()
	setupDone := make(chan struct{})
	go func() {
		defer close(setupDone)
		if err := s.setup(ctx, c, from); err != nil {
			cancel(err)
		}
	}()

	var err error
	readDone, writeDone := false, false
	select {
	case err = <-readErr:
		readDone = true
	case err = <-writeErr:
		writeDone = true
	case <-ctx.Done():
		err = context.Cause(ctx)
	}
	cancel(err)
	s.mu.Lock()
	s.cur = nil
	s.mu.Unlock()
	s.linkDown(c)
	close(c.done)
	s.connected.Store(false)
	// Closing the socket unblocks the reader and the writer; a polite
	// </stream:stream> first, with a short deadline.
	c.conn.SetWriteDeadline(time.Now().Add(time.Second))
	if c.sm.on() {
		c.conn.Write(smAck(c.sm.h())) // what was handled is not stored again
	}
	c.conn.Write([]byte("</stream:stream>"))
	c.link.close()
	if !readDone {
		<-readErr
	}
	if !writeDone {
		<-writeErr
	}
	s.failPending()
	<-setupDone // it waits on ctx or on IQ answers, both ended now
	return err
}

// setup runs once per link: presence with caps, roster check, subscription
// with the owner, and the archive replay from the cursor from; then it
// keeps the cursor in step where live messages carry no stanza-id.
func (s *Session) setup(ctx context.Context, c *conn, from cursorPos) error {
	s.mu.Lock()
	s.ownerCaps = nil // the server tells them again after our presence
	s.ownerSeen = make(chan struct{})
	s.mu.Unlock()
	if c.smOffered {
		if err := s.sendCtrl(ctx, c, []byte("<enable xmlns='"+nsSM+"'/>")); err != nil {
			return err
		}
	}
	if err := s.sendCtrl(ctx, c, s.presence()); err != nil {
		return err
	}
	// Into the rooms before anything goes to one (the gate).
	roomsFrom := s.setupRooms(ctx, c)
	select {
	case s.kick <- struct{}{}:
	default:
	}
	res, err := s.iq(ctx, IQ{Type: "get", Payload: rosterQuery{}})
	if err != nil {
		return fmt.Errorf("xmpp: roster: %w", err)
	}
	var q rosterQuery
	if err := res.Unmarshal(&q); err != nil {
		return fmt.Errorf("xmpp: roster: %w", err)
	}
	sub, ask := "none", ""
	item := RosterItem{JID: s.cfg.Owner}
	for _, it := range q.Items {
		if strings.EqualFold(it.JID, s.owner) {
			sub, ask = it.Subscription, it.Ask
			item = RosterItem{JID: it.JID, Name: it.Name, Groups: it.Groups}
		}
	}
	asked := slices.Contains(item.Groups, rosterMark)
	if !asked {
		// Marked before the pre-approval below: a roster set drops it
		// (Prosody's mod_roster builds the item anew, without "approved").
		item.Groups = append(item.Groups, rosterMark)
		if _, err := s.iq(ctx, RosterSet(s.NewID(), item)); err != nil {
			s.log.Warn("cannot mark the owner's roster item", "err", err)
		}
	}
	// Pre-approve the owner's subscription (RFC 6121 §3.4) and ask for
	// theirs, so each sees the other's presence: the bot's presence is the
	// bridge's health light.
	// Pre-approval only where the server offers it (RFC 6121 §3.4);
	// elsewhere the owner's request is approved when it comes.
	if sub != "from" && sub != "both" && c.preApproval {
		if err := s.sendCtrl(ctx, c, mustPresence(Presence{To: s.cfg.Owner, Type: "subscribed"})); err != nil {
			return err
		}
	}
	// Asked once, ever: an owner who removed the bot from their roster is
	// not asked again at every login (the roster remembers, rosterMark).
	if sub != "to" && sub != "both" && ask != "subscribe" && !asked {
		if err := s.sendCtrl(ctx, c, mustPresence(Presence{To: s.cfg.Owner, Type: "subscribe"})); err != nil {
			return err
		}
	}
	s.tellConflict()
	s.release()
	s.noteOwner(ownerNote{roster: &RosterItem{JID: s.owner, Subscription: sub, Ask: ask}})
	if err := s.emptyOMEMO(ctx, sub == "from" || sub == "both"); err != nil {
		s.log.Warn("cannot check the bot's OMEMO device list", "err", err)
	}
	s.archiveAlways(ctx)
	err = s.catchUp(ctx, from)
	switch {
	case err == nil:
	case errors.Is(err, errNoArchive):
		s.log.Debug("the server keeps no archive: nothing to replay")
	case ctx.Err() == nil:
		// Not fatal: live messages still flow; say what may be missing.
		s.log.Warn("archive catch-up failed", "err", err)
	}
	s.catchUpRooms(ctx, roomsFrom)
	if err == nil && s.cfg.Cursor != nil {
		s.keepCursor(ctx) // until the link ends
	}
	return nil
}

// rosterMark is the roster group the bot puts the owner's item in once it
// has asked for the owner's presence (or found it asked for: by setup, or
// granted): from then on it never asks by itself. The roster is the bot
// account's own, kept by its server, so it remembers across restarts and
// reinstalls.
const rosterMark = "waxmpp"

type rosterQuery struct {
	XMLName xml.Name     `xml:"jabber:iq:roster query"`
	Items   []RosterItem `xml:"item"`
}

func mustPresence(p Presence) []byte {
	b, err := EncodePresence(p)
	if err != nil {
		panic(err) // only our own values reach here
	}
	return b
}

func (s *Session) sendCtrl(ctx context.Context, c *conn, b []byte) error {
	select {
	case c.ctrl <- b:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// iq sends a request on the current link and waits for its answer.
func (s *Session) iq(ctx context.Context, req IQ) (*InIQ, error) {
	if req.ID == "" {
		req.ID = s.NewID()
	}
	b, err := EncodeIQ(req)
	if err != nil {
		return nil, err
	}
	ch := make(chan *InIQ, 1)
	s.mu.Lock()
	s.pending[req.ID] = pendingIQ{ch: ch, to: req.To}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.pending, req.ID)
		s.mu.Unlock()
	}()
	if err := s.control(b); err != nil {
		return nil, err
	}
	t := time.NewTimer(s.cfg.PingTimeout + s.cfg.WriteTimeout)
	defer t.Stop()
	select {
	case res, ok := <-ch:
		if !ok {
			return nil, ErrOffline
		}
		if res.Type == "error" {
			return res, fmt.Errorf("xmpp: iq %s: %s", req.ID, res.Error)
		}
		return res, nil
	case <-t.C:
		return nil, fmt.Errorf("xmpp: iq %s: no answer", req.ID)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// pendingIQ waits for the answer to a request sent to to.
type pendingIQ struct {
	ch chan *InIQ // capacity 1
	to string
}

func (s *Session) failPending() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, p := range s.pending {
		close(p.ch)
		delete(s.pending, id)
	}
}

// refused tells the owner, in plain words, that a message of theirs was
// too large to take (the core never saw it). It goes out at once, not
// through the outbox: without a link it is moot.
func (s *Session) refused(c *conn, id string) {
	b, err := EncodeMessage(Message{ID: s.NewID(), To: s.cfg.Owner, Body: fmt.Sprintf(
		"waxmpp could not take a message you sent (over %d KiB): it was not relayed. Send it in parts, or as a file.", DefaultLimits.MaxBytes>>10)})
	if err != nil {
		return
	}
	c.offer(b)
	s.log.Warn("refused an owner message too large to take", "id", id)
}

// read is the link's only reader: it decodes each top-level element of the
// stream and routes it. A stream-level read or XML error ends the link; a
// stanza that is well-formed but not understood is dropped alone.
func (s *Session) read(ctx context.Context, c *conn) error {
	in := newStanzaReader(c.dec)
	for {
		// A server that goes silent is caught by the writer's ping timeout;
		// this deadline is only the backstop for a writer stuck elsewhere.
		c.conn.SetReadDeadline(time.Now().Add(2*s.cfg.PingInterval + s.cfg.PingTimeout))
		if n, ok := in.next(DefaultLimits); ok {
			c.seq = c.sm.count() // a stanza of jabber:client, as below
			st, err := interpret(n)
			if err := s.take(ctx, c, st, err); err != nil {
				return err
			}
			continue
		}
		tok, err := c.dec.Token()
		if err != nil {
			return fmt.Errorf("xmpp: read: %w", err)
		}
		switch t := tok.(type) {
		case xml.EndElement:
			return errors.New("xmpp: server closed the stream")
		case xml.StartElement:
			if t.Name.Space == "http://etherx.jabber.org/streams" && t.Name.Local == "error" {
				return parseStreamError(c.dec, t)
			}
			if t.Name.Space == nsSM {
				if err := s.smElement(c, c.dec, t); err != nil {
					return err
				}
				continue
			}
			if t.Name.Space == NSClient {
				c.seq = c.sm.count()
			}
			st, err := Decode(c.dec, t)
			if err := s.take(ctx, c, st, err); err != nil {
				return err
			}
		}
	}
}

// take routes a decoded stanza and drops one that would not decode
// (DecodeError); any other error ends the link.
func (s *Session) take(ctx context.Context, c *conn, st Stanza, err error) error {
	var de *DecodeError
	if errors.As(err, &de) {
		s.log.Warn("dropping undecodable stanza", "err", err)
		s.dropped.Add(1)
		if errors.Is(err, ErrTooLarge) && bareJID(de.From) == s.owner && de.Name.Local == "message" {
			s.refused(c, de.ID)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("xmpp: read: %w", err)
	}
	return s.route(ctx, c, st)
}
