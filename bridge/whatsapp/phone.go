package whatsapp

import (
	"context"
	"fmt"
	"time"

	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"

	"waxmpp/bridge"
)

// Timings of the phone watch. WhatsApp unlinks companions whose phone was
// not seen for about 14 days.
const (
	phoneAskAfter    = 10 * 24 * time.Hour // ask the phone to come online
	phoneWarnAfter   = 12 * 24 * time.Hour // tell the owner
	phoneAskEvery    = 24 * time.Hour
	phoneCheckEvery  = time.Hour
	phoneSeenPersist = time.Hour // write the last-seen setting at most this often
)

// fromPhone reports whether a message or receipt came from the owner's
// phone: device 0 (the primary device) of the owner's own account, by
// phone number or LID. whatsmeow sets IsFromMe from the sender's user
// part alone; the server is checked here too.
func (a *Adapter) fromPhone(s types.MessageSource) bool {
	if !s.IsFromMe || s.Sender.Device != 0 {
		return false
	}
	j := s.Sender
	if self := a.self(); !self.IsEmpty() && j.Server == types.DefaultUserServer && j.User == self.User {
		return true
	}
	lid := a.selfLID()
	return !lid.IsEmpty() && j.Server == types.HiddenUserServer && j.User == lid.User
}

// sawPhone records that the phone was active at t.
func (a *Adapter) sawPhone(t time.Time) {
	if t.IsZero() {
		t = a.now()
	}
	a.mu.Lock()
	if !t.After(a.phoneSeen) {
		a.mu.Unlock()
		return
	}
	back := a.phoneWarn
	a.phoneSeen, a.phoneWarn = t, false
	save := t.Sub(a.phoneSave) >= phoneSeenPersist
	if save {
		a.phoneSave = t
	}
	a.mu.Unlock()
	if save {
		if err := a.putTime(settingPhoneSeen, t); err != nil {
			a.log.Warn("save phone last seen", "err", err)
		}
	}
	if back {
		_ = a.emit(&bridge.Status{State: bridge.Connected, Reason: "phone online again", PhoneLastSeen: t})
	}
}

// checkPhone runs at start-up, after the first connect of each client and
// hourly: WhatsApp unlinks a companion whose phone stayed offline for
// about 14 days. From 10 days waxmpp asks the phone to come online (a peer
// message, which WhatsApp delivers to the phone by push), once a day and
// only while logged in (a request that could not be sent is tried again
// at the next check); from 12 days it tells the owner, daily.
func (a *Adapter) checkPhone(ctx context.Context) {
	if !a.paired() {
		return
	}
	now := a.now()
	a.mu.Lock()
	seen, asked, warned := a.phoneSeen, a.phoneAsk, a.phoneWarn
	if seen.IsZero() {
		// Never seen since this version started watching: start now.
		a.phoneSeen, a.phoneSave = now, now
		a.mu.Unlock()
		if err := a.putTime(settingPhoneSeen, now); err != nil {
			a.log.Warn("save phone last seen", "err", err)
		}
		return
	}
	off := now.Sub(seen)
	c := a.cli
	ask := off >= phoneAskAfter && now.Sub(asked) >= phoneAskEvery && c.IsLoggedIn()
	if ask {
		a.phoneAsk = now // claimed; given back if the request fails
	}
	// Told at day 12, then daily, so the day count stays current.
	days := int(off / (24 * time.Hour))
	warn := off >= phoneWarnAfter && (!warned || days != a.phoneWarnDays)
	if warn {
		a.phoneWarn, a.phoneWarnDays = true, days
	}
	a.mu.Unlock()
	if ask {
		if _, err := c.SendPeerMessage(ctx, wakePhone()); err != nil {
			a.log.Info("ask phone to come online", "err", err)
			a.mu.Lock()
			if a.phoneAsk.Equal(now) {
				a.phoneAsk = asked
			}
			a.mu.Unlock()
		} else {
			if err := a.putTime(settingPhoneAsk, now); err != nil {
				a.log.Warn("save phone wake-up time", "err", err)
			}
		}
	}
	if warn {
		_ = a.emit(&bridge.Status{State: bridge.PhoneOffline, PhoneLastSeen: seen,
			Reason: fmt.Sprintf("phone not online for %d days", days)})
	}
}

// wakePhone is a peer request the phone answers when it runs; WhatsApp
// pushes it to the phone, which wakes the app.
func wakePhone() *waE2E.Message {
	t := waE2E.PeerDataOperationRequestType_COMPANION_META_NONCE_FETCH
	pt := waE2E.ProtocolMessage_PEER_DATA_OPERATION_REQUEST_MESSAGE
	return &waE2E.Message{ProtocolMessage: &waE2E.ProtocolMessage{
		Type:                            &pt,
		PeerDataOperationRequestMessage: &waE2E.PeerDataOperationRequestMessage{PeerDataOperationRequestType: &t},
	}}
}
