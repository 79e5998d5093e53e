package bridge

import (
	"context"
	"strconv"
	"strings"
	"time"
)

// Health is the bridge's state in brief, as the core's loop sees it: what
// the service manager shows (systemd's STATUS=) and what proves the loop
// still answers (the watchdog).
type Health struct {
	// WhatsApp is the last state WhatsApp reported; 0 until it reported one.
	WhatsApp ConnState
	// Until is when a temporary ban ends (WhatsApp == TempBanned).
	Until time.Time
	// Waiting is how many WhatsApp events wait for the core.
	Waiting int
	// XMPP is the XMPP side's health; XMPPErr is set when it could not be
	// read (the store failed).
	XMPP    XMPPStats
	XMPPErr error
	// Held is how many of the owner's messages wait for "Send to…?";
	// Pending how many wait for WhatsApp to take them.
	Held    int
	Pending int
	// Paused is set while the core cannot save what it relays (the store
	// or the outbox fails): it waits, and tries again.
	Paused bool
}

// Health asks the core's loop for its health. The request goes through
// the loop's select, so an answer proves the loop runs; a loop stuck in
// one event never answers, and Health returns ctx's error when ctx ends.
// Any goroutine may call it, as often as every second (it reads, never
// writes, the store).
func (c *Core) Health(ctx context.Context) (Health, error) {
	reply := make(chan Health, 1)
	select {
	case c.healthReq <- reply:
	case <-ctx.Done():
		return Health{}, ctx.Err()
	}
	select {
	case h := <-reply:
		return h, nil
	case <-ctx.Done():
		return Health{}, ctx.Err()
	}
}

// health answers Health; called by Run's loop only.
func (c *Core) health() Health {
	h := Health{Waiting: len(c.cfg.Events), Held: len(c.route.Held), Pending: len(c.route.Pending),
		Paused: c.stuckEvent != nil || c.stuckOwner != nil}
	if c.statusSeen {
		h.WhatsApp, h.Until = c.status.State, c.status.Until
	}
	h.XMPP, h.XMPPErr = c.x.Stats()
	return h
}

// String tells h in a few words, e.g. "WhatsApp connected · XMPP
// connected · 0 queued" (systemctl status shows it).
func (h Health) String() string {
	var wa string
	switch h.WhatsApp {
	case 0:
		wa = "WhatsApp starting"
	case Connected:
		wa = "WhatsApp connected"
	case Disconnected:
		wa = "WhatsApp reconnecting"
	case LoggedOut:
		wa = "WhatsApp logged out: send /pair"
	case NotPaired:
		wa = "WhatsApp not linked: send /pair"
	case StreamReplaced:
		wa = "WhatsApp taken over by another client"
	case Outdated:
		wa = "WhatsApp rejected this version: update waxmpp"
	case TempBanned:
		wa = "WhatsApp banned until " + h.Until.Local().Format("2 Jan 15:04")
	case PhoneOffline:
		wa = "WhatsApp connected, phone offline"
	default:
		wa = "WhatsApp state " + strconv.Itoa(int(h.WhatsApp))
	}
	parts := []string{wa}
	switch {
	case h.XMPPErr != nil:
		parts = append(parts, "XMPP unknown (store error)")
	case h.XMPP.Connected:
		parts = append(parts, "XMPP connected")
	default:
		parts = append(parts, "XMPP connecting")
	}
	parts = append(parts, strconv.Itoa(h.XMPP.Queued)+" queued")
	if h.Waiting > 0 {
		parts = append(parts, strconv.Itoa(h.Waiting)+" from WhatsApp waiting")
	}
	if h.Held > 0 {
		parts = append(parts, strconv.Itoa(h.Held)+" held for an answer")
	}
	if h.Pending > 0 {
		parts = append(parts, strconv.Itoa(h.Pending)+" waiting for WhatsApp")
	}
	if h.Paused {
		parts = append(parts, "paused: cannot save (disk full?)")
	}
	return strings.Join(parts, " · ")
}
