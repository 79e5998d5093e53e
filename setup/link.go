package setup

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"waxmpp/bridge"
	"waxmpp/bridge/config"
	"waxmpp/bridge/store"
)

// enterWhatsApp goes to StepWhatsApp; f.mu is held. A state file that is
// linked already passes the step (the front end says so).
func (f *Flow) enterWhatsApp() {
	f.st.Step = StepWhatsApp
	f.st.Pair = nil
	if f.linked {
		f.st.Note = "WhatsApp is linked already (" + f.st.Linked + ")."
		f.startFinish()
		return
	}
	if acct := linkedIn(f.storePath()); acct != "" && !strings.HasPrefix(acct, "(") {
		f.linked, f.st.Linked = true, acct
		f.st.Note = "WhatsApp is linked already (" + acct + ")."
		f.startFinish()
	}
}

// storePath is the state file: the existing config's, else the default.
func (f *Flow) storePath() string {
	if f.old != nil && f.old.Store.Path != "" {
		return f.old.Store.Path
	}
	return config.DefaultStorePath
}

// Link starts linking WhatsApp: QR codes when phone is "", else a link
// code for that number (+ and country code). Codes appear in State.Pair as
// WhatsApp sends them; a link ends the step. Calling Link again while
// codes are shown starts over (the other way).
func (f *Flow) Link(ctx context.Context, phone string) error {
	phone = strings.TrimSpace(phone)
	if err := f.begin("Starting WhatsApp …", StepWhatsApp); err != nil {
		return err
	}
	if f.opts.OpenWhatsApp == nil {
		return f.finish(errors.New("setup: this build cannot link WhatsApp"), nil)
	}
	f.stopLinking()
	if phone != "" {
		if p := checkPhone(phone); p != "" {
			return f.finish(problem(nil, "%s", p), nil)
		}
	}
	err := f.startLinking(ctx, phone)
	return f.finish(err, nil)
}

// checkPhone says what is wrong with a phone number for a link code.
func checkPhone(s string) string {
	digits := 0
	for i, r := range s {
		switch {
		case r >= '0' && r <= '9':
			digits++
		case r == '+' && i == 0, r == ' ', r == '-', r == '(', r == ')', r == '.':
		default:
			return fmt.Sprintf("%q is not a phone number: use digits, with + and the country code, such as +49 170 1234567.", s)
		}
	}
	if !strings.HasPrefix(s, "+") && !strings.HasPrefix(s, "00") {
		return "Give the number with + and the country code, such as +49 170 1234567 (the number of the phone with WhatsApp)."
	}
	if digits < 7 || digits > 15 {
		return fmt.Sprintf("%s does not look like a whole phone number with its country code.", s)
	}
	return ""
}

// stopLinking ends a linking task and waits for it.
func (f *Flow) stopLinking() {
	f.mu.Lock()
	stop, done := f.stopPair, f.pairDone
	f.mu.Unlock()
	if stop != nil {
		stop()
		<-done
	}
}

// errLocked: the bridge holds the state file and cannot be stopped here.
var errLocked = errors.New("setup: the state file is in use")

// openStore opens the state file for linking; a running bridge holds it,
// so it is stopped first (Finish starts it again).
func (f *Flow) openStore(ctx context.Context) (*store.DB, error) {
	path := f.storePath()
	db, err := store.Open(path, store.Options{Timeout: 500 * time.Millisecond})
	if errors.Is(err, store.ErrLocked) && f.opts.Service.Present() {
		f.log.Info("stopping the bridge to link WhatsApp", "store", path)
		if serr := f.opts.Service.Stop(ctx); serr != nil {
			return nil, problem(serr, "waxmpp is running and holds %s; stopping it failed (%v). Stop it (systemctl stop waxmpp) and try again.", path, serr)
		}
		db, err = store.Open(path, store.Options{Timeout: 5 * time.Second})
	}
	if errors.Is(err, store.ErrLocked) {
		return nil, problem(errLocked, "Another waxmpp holds %s. Stop it and try again.", path)
	}
	if err != nil {
		return nil, problem(err, "The state file %s cannot be opened: %v", path, err)
	}
	return db, nil
}

// startLinking opens the state file and the WhatsApp side and asks for
// codes; the task that follows owns both until it ends.
func (f *Flow) startLinking(ctx context.Context, phone string) error {
	db, err := f.openStore(ctx)
	if err != nil {
		return err
	}
	tctx, cancel := context.WithCancel(f.ctx)
	// events: the adapter's FIFO to this task. Capacity 16; the adapter
	// buffers beyond it on its side, nothing is dropped.
	events := make(chan bridge.Event, 16)
	wa, err := f.opts.OpenWhatsApp(tctx, db, f.log.With("component", "whatsapp"), events)
	if err != nil {
		cancel()
		db.Close()
		return fmt.Errorf("setup: WhatsApp: %w", err)
	}
	runDone := make(chan error, 1)
	go func() { runDone <- wa.Run(tctx) }()
	stopAll := func() {
		cancel()
		<-runDone
		db.Close()
	}
	f.mu.Lock()
	relink := f.menu
	f.mu.Unlock()
	err = wa.Pair(tctx, phone)
	if errors.Is(err, bridge.ErrAlreadyPaired) && relink {
		f.log.Info("unlinking the old WhatsApp device to link again")
		if err = wa.Logout(tctx); err == nil {
			err = pairAfterLogout(tctx, wa, phone, events)
		}
	}
	if errors.Is(err, bridge.ErrAlreadyPaired) {
		acct := LinkedAccount(db)
		stopAll()
		f.mu.Lock()
		f.linked, f.st.Linked = true, acct
		f.st.Note = "WhatsApp is linked already (" + acct + ")."
		f.afterWhatsApp()
		f.mu.Unlock()
		return nil
	}
	if err != nil {
		stopAll()
		if strings.Contains(err.Error(), "phone") || strings.Contains(err.Error(), "number") {
			return problem(err, "WhatsApp did not take that number: %v", err)
		}
		return problem(err, "WhatsApp could not start linking: %v", err)
	}
	done := make(chan struct{})
	f.mu.Lock()
	f.stopPair, f.pairDone = cancel, done
	f.mu.Unlock()
	f.wg.Go(func() {
		defer close(done)
		defer stopAll()
		f.linkTask(tctx, wa, db, phone != "", events, runDone)
	})
	return nil
}

// pairAfterLogout waits for the logout to settle (the adapter reports
// LoggedOut) and asks for codes again.
func pairAfterLogout(ctx context.Context, wa WhatsApp, phone string, events chan bridge.Event) error {
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	for {
		err := wa.Pair(ctx, phone)
		if !errors.Is(err, bridge.ErrAlreadyPaired) {
			return err
		}
		select {
		case ev := <-events:
			wa.Handled(ev)
		case <-time.After(200 * time.Millisecond):
		case <-deadline.C:
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// linkTask shows codes as they come and ends with the link or its failure.
func (f *Flow) linkTask(ctx context.Context, wa WhatsApp, db *store.DB, phone bool, events <-chan bridge.Event, runDone chan error) {
	var settle <-chan time.Time
	var linked *bridge.PairResult
	n := 0
	for {
		select {
		case <-ctx.Done():
			f.linkEnded("")
			return
		case err := <-runDone:
			runDone <- err
			f.linkEnded(fmt.Sprintf("The WhatsApp connection stopped (%v). Try again.", err))
			return
		case <-settle:
			f.linkedAs(linked, db)
			return
		case ev := <-events:
			wa.Handled(ev)
			switch e := ev.(type) {
			case *bridge.PairCode:
				n++
				f.mu.Lock()
				f.st.Pair = &Pair{Phone: phone, QR: e.QR, Code: e.LinkCode, Expires: e.Expires, N: n}
				f.touch()
				f.mu.Unlock()
			case *bridge.PairResult:
				if !e.OK {
					f.linkEnded(pairFailure(e.Err, phone))
					return
				}
				linked = e
				f.mu.Lock()
				f.st.Pair = nil
				f.st.Busy = "Linked. Finishing WhatsApp's first connection …"
				f.touch()
				f.mu.Unlock()
				// whatsmeow reconnects after linking and uploads keys;
				// wait for that, but not for ever.
				settle = time.After(f.opts.SettleTimeout)
			case *bridge.Status:
				switch e.State {
				case bridge.Connected:
					if linked != nil {
						f.linkedAs(linked, db)
						return
					}
				case bridge.Outdated, bridge.TempBanned:
					f.linkEnded(e.Reason)
					return
				}
			}
		}
	}
}

// passkeyNote: WhatsApp asked for the account's passkey. A WebAuthn
// assertion for whatsapp.com can only be made on a whatsapp.com page: a
// browser refuses any other page's request for that relying party (the
// WebAuthn rule that the rpId be the page's own domain or a suffix of it),
// so neither this page nor a terminal can answer. WhatsApp chooses when to
// ask, per way of linking: the advice is the other way.
func passkeyNote(phone bool) string {
	const asks = "WhatsApp asks to confirm this link with your passkey, which only WhatsApp's own apps and web site can do. "
	if phone {
		return asks + "Link by scanning the QR code with the phone instead."
	}
	return asks + "Link with the phone number instead (WhatsApp on the phone: Link a device, Link with phone number instead)."
}

// pairFailure words a failed attempt for the person.
func pairFailure(msg string, phone bool) string {
	switch {
	case msg == "":
		return "Linking did not finish. Try again."
	case strings.Contains(msg, "passkey"):
		return passkeyNote(phone)
	case strings.Contains(msg, "in time"):
		return "The code expired before it was used (" + msg + "). Get a new one and scan or type it within a minute or two."
	}
	msg = strings.TrimRight(msg, ". ") + "."
	if strings.Contains(strings.ToLower(msg), "try again") {
		return msg // the adapter's words say it already
	}
	return msg + " Try again."
}

// linkEnded records an attempt that ended without a link.
func (f *Flow) linkEnded(why string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stopPair, f.pairDone = nil, nil
	f.st.Pair = nil
	if why != "" { // "": stopped by Link, Skip or Close, which go on
		f.st.Busy = ""
		f.st.Problem = why
	}
	f.touch()
}

// linkedAs records a link and moves on.
func (f *Flow) linkedAs(r *bridge.PairResult, db *store.DB) {
	acct := LinkedAccount(db)
	if acct == "" && r != nil {
		acct = string(r.ID)
		if u, _, ok := strings.Cut(acct, "@"); ok && u != "" {
			acct = "+" + u
		}
		if r.Name != "" {
			acct += " (" + r.Name + ")"
		}
	}
	f.log.Info("WhatsApp linked", "account", acct)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stopPair, f.pairDone = nil, nil
	f.st.Pair = nil
	f.st.Busy = ""
	f.linked, f.st.Linked = true, acct
	if f.menu {
		f.changes["whatsapp"] = true
	}
	f.afterWhatsApp()
}

// afterWhatsApp leaves StepWhatsApp; f.mu is held.
func (f *Flow) afterWhatsApp() {
	if f.st.Step != StepWhatsApp {
		return
	}
	if f.menu {
		f.st.Step = StepMenu
		f.touch()
		return
	}
	f.startFinish()
	f.touch()
}

// SkipWhatsApp leaves WhatsApp unlinked for now (link later with /pair).
func (f *Flow) SkipWhatsApp() error {
	f.mu.Lock()
	if f.st.Step != StepWhatsApp || f.st.Busy != "" && f.stopPair == nil {
		defer f.mu.Unlock()
		if f.st.Step != StepWhatsApp {
			return ErrWrongStep
		}
		return ErrBusy
	}
	f.mu.Unlock()
	f.stopLinking()
	f.mu.Lock()
	defer f.mu.Unlock()
	f.st.Problem = ""
	f.st.Note = "WhatsApp is not linked yet: send /pair to the bot in your XMPP app when you are ready."
	f.afterWhatsApp()
	return nil
}
