package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"waxmpp/bridge"
	"waxmpp/bridge/store"
	"waxmpp/bridge/xmpp"
)

// runBridge wires the adapters and runs them until ctx is done. It returns
// nil once ctx is done, an error a restart may cure (exit 1), or a
// *bridge.ConfigError when only the owner can fix it (exit 78).
func (m *Main) runBridge(ctx context.Context, log *slog.Logger, db *store.DB) error {
	cfg := m.Config.XMPP
	roots, err := rootCAs(cfg.CAFile)
	if err != nil {
		return &bridge.ConfigError{Field: "xmpp.ca_file", Problem: err.Error(), Err: err}
	}
	sess, err := xmpp.New(xmpp.Config{
		JID:          cfg.JID,
		Password:     cfg.Password,
		Resource:     cfg.Resource,
		Owner:        cfg.Owner,
		Server:       cfg.Server,
		RootCAs:      roots,
		Rate:         cfg.Rate,
		Burst:        cfg.Burst,
		PingInterval: cfg.PingInterval,
		PingTimeout:  cfg.PingTimeout,
		Outbox:       db.Queue("xmpp-out"),
		Seen:         db,
		Log:          log.With("component", "xmpp"),
	})
	if err != nil {
		return err
	}
	// Until WhatsApp is linked the bot says so in its presence (DESIGN §2.6).
	sess.SetPresence("dnd", "WhatsApp is not linked yet")
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // runs before wg.Wait
	done := make(chan error, 1)
	go func() { done <- sess.Run(ctx) }()
	wg.Go(func() { prune(ctx, db, m.Config.Store.Retention, log.With("component", "store")) })
	for {
		select {
		case msg := <-sess.Inbound():
			// The relay core (routing, commands) consumes these; until it
			// is wired, they are logged at debug level only.
			log.Debug("owner message", "component", "xmpp", "id", msg.ID, "body", msg.Body)
		case err := <-done:
			if errors.Is(err, xmpp.ErrAuth) {
				return &bridge.ConfigError{Field: "xmpp.password", Problem: fmt.Sprintf("the server refused the login of %s; check the password", cfg.JID), Err: err}
			}
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
}

// rootCAs is the system's roots plus the PEM certificates in file.
func rootCAs(file string) (*x509.CertPool, error) {
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if file == "" {
		return pool, nil
	}
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificate", file)
	}
	return pool, nil
}

// prune drops message mappings and seen ids older than retention, at start
// and then daily, until ctx ends. A Pi runs for years: without this the map
// would grow forever.
func prune(ctx context.Context, db *store.DB, retention time.Duration, log *slog.Logger) {
	t := time.NewTicker(24 * time.Hour)
	defer t.Stop()
	for {
		now := time.Now()
		n, err := db.PruneMessages(now)
		if err == nil {
			var k int
			k, err = db.PruneSeen(now.Add(-retention))
			n += k
		}
		if err != nil {
			log.Error("pruning failed", "err", err)
		} else if n > 0 {
			log.Info("pruned old ids", "count", n)
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
	}
}
