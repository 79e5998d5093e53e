package setup

import (
	"context"
	"errors"

	"waxmpp/bridge/xmpp"
)

// enterSubscribe goes to StepSubscribe and starts the task that asks the
// owner and waits; f.mu is held.
func (f *Flow) enterSubscribe() {
	f.st.Step = StepSubscribe
	f.st.Waiting, f.st.Declined = false, false
	f.st.Note = ""
	f.startSubscribe()
}

// startSubscribe runs the subscription task; f.mu is held. The task owns
// the bot's login while it runs.
func (f *Flow) startSubscribe() {
	ctx, cancel := context.WithCancel(f.ctx)
	f.stopSub = cancel
	acct, jid, password, owner := f.acct, f.st.Bot, f.password, f.st.Owner
	f.acct = nil
	f.st.Busy = "Asking " + owner + " to accept " + jid + " …"
	f.wg.Go(func() {
		defer cancel()
		f.subscribe(ctx, acct, jid, password, owner)
	})
}

// subscribe is the subscription task: log in (unless the bot step left a
// login), ask, wait.
func (f *Flow) subscribe(ctx context.Context, acct *xmpp.Account, jid, password, owner string) {
	var err error
	if acct == nil {
		acct, err = f.login(ctx, jid, password)
	}
	if err == nil {
		defer acct.Close()
		var sub xmpp.Subscription
		sub, err = acct.SubscriptionOf(ctx, owner)
		if err == nil && sub.Accepted() {
			f.log.Info("the owner had accepted the bot already", "owner", owner)
			f.subscribed(ctx, "")
			return
		}
		if err == nil {
			err = acct.AskSubscription(owner)
		}
	}
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		f.mu.Lock()
		f.st.Busy = ""
		f.st.Problem = "The bot could not ask you: " + problemText(err) + " You can skip this step; the bridge asks when it starts."
		f.touch()
		f.mu.Unlock()
		return
	}
	f.mu.Lock()
	f.st.Busy = ""
	f.st.Waiting = true
	f.touch()
	f.mu.Unlock()
	err = acct.WaitAccepted(ctx, owner)
	switch {
	case ctx.Err() != nil:
		return
	case err == nil:
		f.subscribed(ctx, "")
	case errors.Is(err, xmpp.ErrDeclined):
		f.mu.Lock()
		f.st.Waiting, f.st.Declined = false, true
		f.st.Problem = "You declined the bot's request. Without it you do not see whether the bridge is working (the bot's presence tells). Ask again and accept it, or skip."
		f.touch()
		f.mu.Unlock()
	default:
		f.mu.Lock()
		f.st.Waiting = false
		f.st.Problem = "The bot's connection ended while waiting (" + err.Error() + "). Ask again, or skip."
		f.touch()
		f.mu.Unlock()
	}
}

func problemText(err error) string {
	var p *Problem
	if errors.As(err, &p) {
		return p.Msg
	}
	return err.Error()
}

// subscribed moves on from StepSubscribe; note, if set, says why.
func (f *Flow) subscribed(ctx context.Context, note string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if ctx.Err() != nil || f.st.Step != StepSubscribe {
		return
	}
	f.st.Waiting, f.st.Declined, f.st.Busy = false, false, ""
	f.st.Problem = ""
	f.st.Note = note
	if f.menu {
		f.st.Step = StepMenu
	} else {
		f.enterWhatsApp()
	}
	f.touch()
}

// SkipSubscription moves on without waiting for the owner.
func (f *Flow) SkipSubscription() error {
	f.mu.Lock()
	if f.st.Step != StepSubscribe {
		f.mu.Unlock()
		return ErrWrongStep
	}
	stop := f.stopSub
	f.mu.Unlock()
	if stop != nil {
		stop()
	}
	f.subscribedSkip()
	return nil
}

func (f *Flow) subscribedSkip() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.st.Step != StepSubscribe {
		return
	}
	f.st.Waiting, f.st.Declined, f.st.Busy, f.st.Problem = false, false, "", ""
	f.st.Note = "The bot asks you again each time the bridge starts: accept it in your XMPP app when it does."
	if f.menu {
		f.st.Step = StepMenu
	} else {
		f.enterWhatsApp()
	}
	f.touch()
}

// AskAgain sends the subscription request again (after a refusal or a
// failure) and waits anew.
func (f *Flow) AskAgain() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.st.Step != StepSubscribe {
		return ErrWrongStep
	}
	if f.st.Busy != "" || f.st.Waiting {
		return ErrBusy
	}
	if f.stopSub != nil {
		f.stopSub()
	}
	f.st.Problem = ""
	f.st.Declined = false
	f.startSubscribe()
	f.touch()
	return nil
}
