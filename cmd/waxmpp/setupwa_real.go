//go:build !simwa

package main

import (
	"context"
	"flag"
	"log/slog"

	"waxmpp/bridge"
	"waxmpp/bridge/store"
	"waxmpp/bridge/whatsapp"
	"waxmpp/setup"
)

// setupWhatsApp is how setup links WhatsApp: the real adapter on the
// state file. Passkeys stay off: the setup page cannot answer them (a
// browser makes a WebAuthn assertion for whatsapp.com only on a
// whatsapp.com page), so the adapter ends such an attempt with advice.
func setupWhatsApp(context.Context, string) (setup.OpenWhatsApp, error) {
	return func(ctx context.Context, db *store.DB, log *slog.Logger, events chan<- bridge.Event) (setup.WhatsApp, error) {
		return whatsapp.New(ctx, whatsappConfig(db, log, events))
	}, nil
}

// The real build has no simulated WhatsApp: setup has no --simulator.
func simSetupFlag(*flag.FlagSet, *string) {}
