package main

import (
	"context"
	"sync"
	"time"

	"waxmpp/bridge"
	"waxmpp/bridge/store"
	"waxmpp/bridge/xmpp"
	"waxmpp/setup"
	"waxmpp/setup/doctor"
)

// statusDoctor runs waxmpp doctor's checks inside the bridge, for /status
// (bridge.Doctor): 20 seconds after the start, then every 30 minutes. The
// login check is the bridge's own connection; the state file is the open
// one (its bbolt check is left to waxmpp doctor, which runs it in a child
// process a damaged file cannot crash).
type statusDoctor struct {
	configPath string
	db         *store.DB
	sess       *xmpp.Session

	mu       sync.Mutex
	findings []bridge.Finding
}

// Findings implements bridge.Doctor: the latest results, at once.
func (d *statusDoctor) Findings() []bridge.Finding {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.findings
}

// run checks until ctx ends.
func (d *statusDoctor) run(ctx context.Context) {
	wait := 20 * time.Second // long enough to have logged in
	for {
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return
		}
		d.check(ctx)
		wait = 30 * time.Minute
	}
}

func (d *statusDoctor) check(ctx context.Context) {
	fs := doctor.Run(ctx, doctor.Options{
		ConfigPath: d.configPath,
		InService:  true,
		Connected: func() bool {
			st, err := d.sess.Stats()
			return err == nil && st.Connected
		},
		ReadState: func(context.Context, string) (doctor.StateInfo, error) {
			info := doctor.StateInfo{Linked: setup.LinkedAccount(d.db), Unchecked: true}
			info.PhoneSeen, _ = doctor.PhoneSeen(d.db)
			return info, nil
		},
	})
	out := make([]bridge.Finding, 0, len(fs))
	for _, f := range fs {
		out = append(out, bridge.Finding{Check: f.Check, Status: string(f.Status), Message: f.Message, Fix: f.Fix})
	}
	d.mu.Lock()
	d.findings = out
	d.mu.Unlock()
}
