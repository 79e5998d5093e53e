package whatsapp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/types"

	"waxmpp/bridge"
)

// pairing is one linking attempt.
type pairing struct {
	num     string // the phone number for a link code; "" for QR codes
	passkey chan *types.WebAuthnResponse
	// asked is set while WhatsApp waits for a passkey (AnswerPasskey).
	asked bool
}

// passkeyWait is how long a passkey request waits for AnswerPasskey when
// WhatsApp's request names no timeout.
const passkeyWait = 2 * time.Minute

// Pair implements bridge.WhatsApp. It starts linking and returns; the QR
// codes (or the link code) and the end arrive as PairCode and PairResult
// events. A pairing attempt lasts at most 5 minutes. Called before Run
// has begun, it waits for Run (or for ctx to end).
//
// Passkeys: WhatsApp may ask a new companion to prove that the owner holds
// the account's passkey (whatsmeow's PairPasskeyRequest: WebAuthn request
// options for relying party whatsapp.com). Only a browser can produce the
// assertion. With Config.Passkeys the request goes out as a PairCode with
// Passkey set and the attempt waits for AnswerPasskey; without it (the
// terminal, the bot conversation) the attempt ends with a PairResult that
// says what may work instead.
func (a *Adapter) Pair(ctx context.Context, phone string) error {
	var num string
	if phone != "" {
		var err error
		if num, err = NormalizePhone(phone); err != nil {
			return err
		}
	}
	// Callers start Run on a goroutine and ask for codes at once (setup,
	// waxmpp pair): wait until Run has begun instead of racing it (on a
	// loaded Pi, or under QEMU, Run had often not started yet).
	select {
	case <-a.running:
	case <-ctx.Done():
		return ctx.Err()
	}
	a.mu.Lock()
	switch {
	case !a.id.IsEmpty():
		a.mu.Unlock()
		return bridge.ErrAlreadyPaired
	case a.runCtx == nil:
		a.mu.Unlock()
		return errNotRunning
	case a.pairing != nil:
		a.mu.Unlock()
		return errors.New("whatsapp: a pairing is already under way")
	}
	p := &pairing{num: num, passkey: make(chan *types.WebAuthnResponse, 1)}
	a.pairing = p
	c, runCtx := a.cli, a.runCtx
	a.mu.Unlock()

	pctx, cancel := context.WithTimeout(runCtx, pairTimeout)
	done := func() {
		cancel()
		a.mu.Lock()
		a.pairing = nil
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
		a.pairLoop(pctx, c, qr, p)
	})
	return nil
}

// AnswerPasskey gives WhatsApp the owner's passkey assertion for the
// pending request (PairCode.Passkey): the JSON of the PublicKeyCredential
// that navigator.credentials.get returned on a whatsapp.com page, as
// PublicKeyCredential.toJSON writes it (base64url fields). Only with
// Config.Passkeys.
func (a *Adapter) AnswerPasskey(ctx context.Context, assertion []byte) error {
	var resp types.WebAuthnResponse
	if err := json.Unmarshal(assertion, &resp); err != nil {
		return fmt.Errorf("whatsapp: passkey answer: %w", err)
	}
	if resp.RawID == nil || resp.Response.Signature == nil || resp.Response.ClientDataJSON == nil {
		return errors.New("whatsapp: passkey answer: not a WebAuthn assertion (rawId, response.clientDataJSON and response.signature are needed)")
	}
	a.mu.Lock()
	p := a.pairing
	ok := p != nil && p.asked
	if ok {
		p.asked = false
	}
	a.mu.Unlock()
	if !ok {
		return errors.New("whatsapp: WhatsApp is not waiting for a passkey")
	}
	select {
	case p.passkey <- &resp:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (a *Adapter) pairLoop(ctx context.Context, c client, qr <-chan whatsmeow.QRChannelItem, p *pairing) {
	sentCode := false // a QR code or link code was shown
	fail := func(msg string) {
		_ = a.emit(&bridge.PairResult{Err: msg})
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
			if p.num == "" {
				sentCode = true
				_ = a.emit(&bridge.PairCode{QR: item.Code, Expires: a.now().Add(item.Timeout)})
				continue
			}
			if sentCode {
				continue
			}
			code, err := c.PairPhone(ctx, p.num, true, whatsmeow.PairClientChrome, "Chrome (Linux)")
			if err != nil {
				fail(linkCodeRefused(p.num, err))
				return
			}
			sentCode = true
			_ = a.emit(&bridge.PairCode{LinkCode: code, Expires: a.now().Add(linkCodeValid)})
		case whatsmeow.QRChannelSuccess.Event:
			a.pairSucceeded()
			return
		case whatsmeow.QRChannelTimeout.Event:
			switch {
			case !sentCode:
				// whatsmeow reports a connection that never came up
				// (offline) as the QR channel's timeout.
				fail("waxmpp could not reach WhatsApp; check the network connection and try again")
			case p.num != "":
				fail("the link code was not entered in time")
			default:
				fail("no QR code was scanned in time")
			}
			return
		case whatsmeow.QRChannelClientOutdated.Event:
			_ = a.emit(outdated())
			fail("WhatsApp refused waxmpp's version as outdated")
			return
		case whatsmeow.QRChannelScannedWithoutMultidevice.Event:
			// The same code can be scanned again once the phone is updated.
			a.log.Info("QR scanned by a phone without multi-device support")
		case whatsmeow.QRChannelEventPasskeyRequest:
			if !a.askPasskey(ctx, c, p, item, fail) {
				return
			}
		case whatsmeow.QRChannelEventPasskeyResponse:
			// WhatsApp wants the confirmation code shown (no handoff
			// proof): show it, then confirm, as whatsmeow does when the
			// handoff is skipped.
			if pc := item.PasskeyConfirmation; pc != nil {
				_ = a.emit(&bridge.PairCode{LinkCode: pc.Code, Expires: a.now().Add(linkCodeValid)})
			}
			if err := c.SendPasskeyConfirmation(ctx); err != nil {
				a.log.Info("passkey confirmation", "err", err)
				fail("WhatsApp did not accept the passkey confirmation; try linking again")
				return
			}
		case whatsmeow.QRChannelEventError:
			msg := "WhatsApp reported an error"
			if item.Error != nil {
				a.log.Info("pairing error", "err", item.Error)
				msg = "WhatsApp reported an error while linking; try again"
			}
			fail(msg)
			return
		default:
			a.log.Info("unexpected pairing event", "event", item.Event)
			fail("linking stopped unexpectedly; try again")
			return
		}
	}
}

// pairSucceeded reports the linked account.
func (a *Adapter) pairSucceeded() {
	a.mu.Lock()
	ps := a.pairedAs
	a.mu.Unlock()
	r := &bridge.PairResult{OK: true}
	if ps != nil {
		// The push name comes later, with the app-state sync.
		r.ID, r.Name = userID(ps.ID), ps.BusinessName
	}
	_ = a.emit(r)
}

// askPasskey handles WhatsApp's passkey request: with Config.Passkeys it
// hands the request to the caller and sends the answer; otherwise the
// attempt ends. It reports whether the attempt goes on.
func (a *Adapter) askPasskey(ctx context.Context, c client, p *pairing, item whatsmeow.QRChannelItem, fail func(string)) bool {
	if !a.passkeys || item.PasskeyRequest == nil || item.PasskeyRequest.PublicKey == nil {
		fail(passkeyAdvice(p.num))
		return false
	}
	opts, err := json.Marshal(item.PasskeyRequest.PublicKey)
	if err != nil {
		fail(passkeyAdvice(p.num))
		return false
	}
	wait := passkeyWait
	if ms := item.PasskeyRequest.PublicKey.Timeout; ms > 0 {
		wait = time.Duration(ms) * time.Millisecond
	}
	a.mu.Lock()
	p.asked = true
	a.mu.Unlock()
	_ = a.emit(&bridge.PairCode{Passkey: string(opts), Expires: a.now().Add(wait)})
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case resp := <-p.passkey:
		if err := c.SendPasskeyResponse(ctx, resp); err != nil {
			a.log.Info("passkey response", "err", err)
			fail("WhatsApp did not accept the passkey; try linking again")
			return false
		}
		return true
	case <-t.C:
		a.mu.Lock()
		p.asked = false
		a.mu.Unlock()
		fail("the passkey was not confirmed in time; try linking again")
		return false
	case <-ctx.Done():
		fail("pairing was stopped before it finished")
		return false
	}
}

// passkeyAdvice is what to tell an owner whom WhatsApp asked for a passkey
// where no browser can answer. Which way of linking WhatsApp asks a
// passkey for is WhatsApp's choice; the other way may not ask.
func passkeyAdvice(num string) string {
	other := "link with a code instead (/pair +<your number>, or waxmpp pair --phone +<your number>)"
	if num != "" {
		other = "link by scanning the QR code instead (/pair without a number, or waxmpp pair)"
	}
	return "WhatsApp asked to confirm this link with your passkey, which only WhatsApp's own apps and web site can answer: " + other
}

// linkCodeRefused says why WhatsApp gave no link code.
func linkCodeRefused(num string, err error) string {
	switch {
	case errors.Is(err, whatsmeow.ErrIQRateOverLimit):
		return "WhatsApp refuses link codes for now: too many were asked for. Wait an hour, or link by scanning the QR code (/pair without a number)"
	case errors.Is(err, whatsmeow.ErrIQBadRequest), errors.Is(err, whatsmeow.ErrPhoneNumberTooShort),
		errors.Is(err, whatsmeow.ErrPhoneNumberIsNotInternational):
		return fmt.Sprintf("WhatsApp refused a link code for +%s; the number must be the phone's own, with country code", num)
	}
	return "WhatsApp gave no link code; try again, or link by scanning the QR code (/pair without a number)"
}
