//go:build !simwa

package main

import (
	"context"
	"fmt"
	"log/slog"

	"waxmpp/bridge"
	"waxmpp/bridge/store"
)

// newWhatsApp connects the real WhatsApp adapter (bridge/whatsapp), which
// delivers its events on events until ctx ends.
//
// Until that adapter exists it fails with an error wrapping
// bridge.ErrNotPaired.
func newWhatsApp(ctx context.Context, cfg bridge.Config, db *store.DB, log *slog.Logger, events chan<- bridge.Event) (bridge.WhatsApp, error) {
	return nil, fmt.Errorf("the WhatsApp adapter is not built yet: %w", bridge.ErrNotPaired)
}
