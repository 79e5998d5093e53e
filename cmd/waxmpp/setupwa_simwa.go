//go:build simwa

package main

import (
	"context"
	"errors"
	"flag"
	"log/slog"

	"waxmpp/bridge"
	"waxmpp/bridge/simwa"
	"waxmpp/bridge/store"
	"waxmpp/setup"
)

// setupWhatsApp, in a test build, links the simulated WhatsApp served on
// setup's --simulator socket (go doc waxmpp/bridge/simwa): it starts
// unlinked; the test plays the phone with pair_code and pair_result
// events.
func setupWhatsApp(_ context.Context, sock string) (setup.OpenWhatsApp, error) {
	return func(ctx context.Context, db *store.DB, log *slog.Logger, events chan<- bridge.Event) (setup.WhatsApp, error) {
		if sock == "" {
			return nil, errors.New("this test build links only the simulated WhatsApp: give setup --simulator SOCKET")
		}
		return simwa.New(simwa.Config{Socket: sock, Events: events, Log: log, Unpaired: true})
	}, nil
}

func simSetupFlag(fs *flag.FlagSet, sock *string) {
	fs.StringVar(sock, "simulator", "", "(this test build) link the simulated WhatsApp served on this control socket")
}
