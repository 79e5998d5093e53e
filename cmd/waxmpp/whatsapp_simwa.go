//go:build simwa

package main

import (
	"context"
	"errors"
	"log/slog"

	"waxmpp/bridge"
	"waxmpp/bridge/simwa"
	"waxmpp/bridge/store"
)

// newWhatsApp, in a test build (-tags simwa), is the simulated WhatsApp
// network on the control socket whatsapp.simulator (go doc
// waxmpp/bridge/simwa). It serves the socket until ctx ends. Events go to
// events; a control request that injects one returns once the channel took
// it. A test build has no real WhatsApp: without the key it returns a
// plain error, and the binary runs the XMPP side alone (as the in-process
// tests of main do). A socket it cannot serve is a config error.
func newWhatsApp(ctx context.Context, cfg bridge.Config, db *store.DB, log *slog.Logger, events chan<- bridge.Event) (bridge.WhatsApp, func(), error) {
	if cfg.WhatsApp.Simulator == "" {
		return nil, nil, errors.New("this binary is a test build (-tags simwa) with only the simulated WhatsApp, and whatsapp.simulator is not set")
	}
	sim, err := simwa.New(simwa.Config{
		Socket: cfg.WhatsApp.Simulator,
		Events: events,
		Log:    log.With("component", "simwa"),
	})
	if err != nil {
		return nil, nil, &bridge.ConfigError{Field: "whatsapp.simulator", Problem: err.Error(), Err: err}
	}
	log.Warn("using the simulated WhatsApp (test build)", "component", "simwa", "socket", cfg.WhatsApp.Simulator, "boot", sim.Boot())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := sim.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
			log.Error("simulated WhatsApp stopped", "component", "simwa", "err", err)
		}
	}()
	return sim, func() { <-done }, nil
}
