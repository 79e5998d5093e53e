//go:build !simwa

package main

import (
	"context"
	"errors"
	"log/slog"

	"waxmpp/bridge"
	"waxmpp/bridge/store"
	"waxmpp/bridge/whatsapp"
)

// newWhatsApp starts the real WhatsApp adapter (bridge/whatsapp) on the
// device in db (none yet: it reports NotPaired and the owner sends /pair).
// Its events go to events until ctx ends; wait returns once the adapter
// has stopped (after ctx ended), before db may be closed.
func newWhatsApp(ctx context.Context, cfg bridge.Config, db *store.DB, log *slog.Logger, events chan<- bridge.Event) (bridge.WhatsApp, func(), error) {
	wa, err := whatsapp.New(ctx, whatsappConfig(db, log, events))
	if err != nil {
		return nil, nil, err
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := wa.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
			log.Error("WhatsApp stopped", "component", "whatsapp", "err", err)
		}
	}()
	return wa, func() { <-done }, nil
}
