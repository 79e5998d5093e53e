//go:build !simwa

package main

import (
	"context"
	"flag"
	"log/slog"

	"waxmpp/bridge"
	"waxmpp/bridge/store"
	"waxmpp/bridge/whatsapp"
)

// newWhatsApp makes the real WhatsApp adapter (bridge/whatsapp) on the
// device in db (none yet: it reports NotPaired and the owner sends /pair).
// Its events go to events; run runs it until ctx ends, and returns only
// after it has stopped, before db may be closed.
func newWhatsApp(ctx context.Context, _ string, db *store.DB, log *slog.Logger, events chan<- bridge.Event) (wa bridge.WhatsApp, run func(context.Context) error, err error) {
	a, err := whatsapp.New(ctx, whatsappConfig(db, log, events))
	if err != nil {
		return nil, nil, err
	}
	return a, a.Run, nil
}

// The real build has no simulated WhatsApp: run has no --simulator.
const simUsage = ""

func simFlag(*flag.FlagSet, *string) {}

func checkSimulator(string) string { return "" }
