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
// link by QR code from the phone itself, which WhatsApp then accepts
// without a passkey. When WhatsApp instead asks to confirm a handoff code
// (events.PairPasskeyConfirmation without SkipHandoffUX), the code is
// shown as a PairCode.LinkCode to compare with the phone, and confirmed.
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
				fail(fmt.Sprintf("WhatsApp refused a link code for +%s (%v). Check the number: it must be the phone's own number, with country code.", num, err))
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
				fail("the link code was not entered in time. Send /pair +number again for a new one.")
			} else {
				fail("no QR code was scanned in time. Send /pair again for new codes.")
			}
			return
		case whatsmeow.QRChannelClientOutdated.Event:
			a.emit(outdated())
			fail("WhatsApp refused waxmpp's version as outdated; restart waxmpp online and try again.")
			return
		case whatsmeow.QRChannelScannedWithoutMultidevice.Event:
			// The same code can be scanned again once the phone is updated.
			a.log.Info("QR scanned by a phone without multi-device support")
		case whatsmeow.QRChannelEventPasskeyRequest:
			fail("WhatsApp asked to confirm this link with your passkey, which waxmpp cannot use. Link by scanning the QR code (send /pair without a number) with WhatsApp on the phone: Settings → Linked devices → Link a device.")
			return
		case whatsmeow.QRChannelEventPasskeyResponse:
			if pc := item.PasskeyConfirmation; pc != nil {
				a.emit(&bridge.PairCode{LinkCode: pc.Code, Expires: a.now().Add(linkCodeValid)})
			}
			if err := c.SendPasskeyConfirmation(ctx); err != nil {
				fail("confirming the link failed: " + err.Error())
				return
			}
		case whatsmeow.QRChannelEventError:
			msg := "pairing failed"
			if item.Error != nil {
				msg += ": " + item.Error.Error()
			}
			fail(msg)
			return
		default:
			fail("pairing failed: " + item.Event)
			return
		}
	}
}
