package whatsapp

import (
	"context"
	"errors"
	"fmt"

	"go.mau.fi/whatsmeow"

	"waxmpp/bridge"
)

// Pair implements bridge.WhatsApp. It starts linking and returns; the QR
// codes (or the link code) and the end arrive as PairCode and PairResult
// events. A pairing attempt lasts at most 5 minutes.
//
// Passkeys: WhatsApp may ask a new companion to prove the owner holds the
// account's passkey (events.PairPasskeyRequest, a WebAuthn assertion for
// relying party whatsapp.com). That needs a browser on whatsapp.com and
// the passkey's authenticator; a headless bridge cannot produce it, so
// the attempt ends with a PairResult saying so, and the owner is told to
// link by QR code from the phone itself. (A handoff confirmation only
// follows a passkey response, which waxmpp never sends.)
func (a *Adapter) Pair(ctx context.Context, phone string) error {
	var num string
	if phone != "" {
		var err error
		if num, err = NormalizePhone(phone); err != nil {
			return err
		}
	}
	a.mu.Lock()
	switch {
	case a.dev.ID != nil:
		a.mu.Unlock()
		return bridge.ErrAlreadyPaired
	case a.runCtx == nil:
		a.mu.Unlock()
		return errNotRunning
	case a.pairing:
		a.mu.Unlock()
		return errors.New("whatsapp: a pairing is already under way")
	}
	a.pairing = true
	c, runCtx := a.cli, a.runCtx
	a.mu.Unlock()

	pctx, cancel := context.WithTimeout(runCtx, pairTimeout)
	done := func() {
		cancel()
		a.mu.Lock()
		a.pairing = false
		a.mu.Unlock()
	}
	a.updateVersion(pctx)           // an outdated version is refused at pairing too
	qr, err := c.GetQRChannel(pctx) // before Connect, or the first codes are missed
	if err == nil && !c.IsConnected() {
		err = c.Connect()
	}
	if err != nil {
		done()
		return fmt.Errorf("whatsapp: pair: %w", err)
	}
	a.spawn(func(context.Context) {
		defer done()
		a.pairLoop(pctx, c, qr, num)
	})
	return nil
}

func (a *Adapter) pairLoop(ctx context.Context, c client, qr <-chan whatsmeow.QRChannelItem, num string) {
	sentCode := false
	fail := func(msg string) {
		a.emit(&bridge.PairResult{Err: msg})
		c.Disconnect()
	}
	for {
		var item whatsmeow.QRChannelItem
		var ok bool
		select {
		case item, ok = <-qr:
		case <-ctx.Done():
			fail("pairing was stopped before it finished")
			return
		}
		if !ok {
			return
		}
		switch item.Event {
		case whatsmeow.QRChannelEventCode:
			if num == "" {
				a.emit(&bridge.PairCode{QR: item.Code, Expires: a.now().Add(item.Timeout)})
				continue
			}
			if sentCode {
				continue
			}
			sentCode = true
			code, err := c.PairPhone(ctx, num, true, whatsmeow.PairClientChrome, "Chrome (Linux)")
			if err != nil {
				fail(fmt.Sprintf("WhatsApp refused a link code for +%s (%v); the number must be the phone's own, with country code", num, err))
				return
			}
			a.emit(&bridge.PairCode{LinkCode: code, Expires: a.now().Add(linkCodeValid)})
		case whatsmeow.QRChannelSuccess.Event:
			a.mu.Lock()
			ps := a.pairedAs
			a.mu.Unlock()
			r := &bridge.PairResult{OK: true}
			if ps != nil {
				r.ID, r.Name = userID(ps.ID), ps.BusinessName
			}
			if r.Name == "" {
				if d := a.device(); d != nil {
					r.Name = d.PushName
				}
			}
			a.emit(r)
			return
		case whatsmeow.QRChannelTimeout.Event:
			if num != "" {
				fail("the link code was not entered in time")
			} else {
				fail("no QR code was scanned in time")
			}
			return
		case whatsmeow.QRChannelClientOutdated.Event:
			a.emit(outdated())
			fail("WhatsApp refused waxmpp's version as outdated")
			return
		case whatsmeow.QRChannelScannedWithoutMultidevice.Event:
			// The same code can be scanned again once the phone is updated.
			a.log.Info("QR scanned by a phone without multi-device support")
		case whatsmeow.QRChannelEventPasskeyRequest:
			fail("WhatsApp asked to confirm this link with your passkey, which waxmpp cannot use; link with the QR code instead (/pair without a number), scanned in WhatsApp on the phone under Settings → Linked devices → Link a device")
			return
		case whatsmeow.QRChannelEventPasskeyResponse:
			// Follows only a passkey response, which waxmpp never sends;
			// confirm as whatsmeow does when WhatsApp skips the handoff.
			if err := c.SendPasskeyConfirmation(ctx); err != nil {
				fail("confirming the link failed: " + err.Error())
				return
			}
		case whatsmeow.QRChannelEventError:
			msg := "WhatsApp reported an error"
			if item.Error != nil {
				msg = item.Error.Error()
			}
			fail(msg)
			return
		default:
			fail("unexpected pairing event " + item.Event)
			return
		}
	}
}
