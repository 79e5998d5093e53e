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
	"waxmpp/bridge/qr"
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
		Cursor:       cursor{db},
		Log:          log.With("component", "xmpp"),
	})
	if err != nil {
		return err
	}
	// Until WhatsApp says otherwise the bot shows that it is not linked
	// (DESIGN §2.6); the core updates it from WhatsApp's life events.
	sess.SetPresence("dnd", "WhatsApp is not linked yet")

	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // runs before wg.Wait
	wg.Go(func() { prune(ctx, db, m.Config.Store.Retention, log.With("component", "store")) })

	// events carries WhatsApp's events to the core. Capacity 256: the
	// adapter buffers beyond it on its own side and never drops (see its
	// doc); the core drains it one event at a time.
	events := make(chan bridge.Event, 256)
	wa, waitWA, err := newWhatsApp(ctx, m.Config, db, log, events)
	var ce *bridge.ConfigError
	if errors.As(err, &ce) {
		return err
	}
	if waitWA != nil {
		defer func() { cancel(); waitWA() }() // the adapter stops before the store closes
	}
	done := make(chan error, 1)
	go func() { done <- sess.Run(ctx) }()
	if err != nil {
		// No WhatsApp side in this build: the XMPP session alone.
		log.Warn("WhatsApp unavailable; relaying nothing", "component", "main", "err", err)
		m.notifyState("READY=1\nSTATUS=no WhatsApp in this build: XMPP only")
		return waitXMPP(ctx, sess, done, cfg.JID, log)
	}
	bot := xmpp.NewBot(sess)
	core, err := bridge.NewCore(bridge.CoreConfig{
		WhatsApp: wa,
		XMPP:     bot,
		Store:    db,
		Events:   events,
		Owner:    bot.Owner(),
		Commands: bot.Commands(),
		QR:       qr.PNG,
		Log:      log.With("component", "core"),
		Version:  version,
	})
	if err != nil {
		cancel()
		<-done
		return err
	}
	wg.Go(func() { bot.Run(ctx) })
	if m.Getenv("NOTIFY_SOCKET") != "" { // service.go
		wg.Go(func() {
			supervise(ctx, core.Health, watchdogInterval(m.Getenv), m.notifyState, log.With("component", "main"))
		})
	}
	coreDone := make(chan error, 1)
	go func() { coreDone <- core.Run(ctx) }()
	select {
	case err = <-done:
		err = xmppResult(ctx, err, cfg.JID) // before cancel: ctx tells who stopped it
		cancel()
		<-coreDone
		return err
	case err = <-coreDone:
		cancel()
		<-done
		if ctx.Err() != nil && errors.Is(err, context.Canceled) {
			return nil
		}
		return err
	}
}

// waitXMPP runs the session without a core: the owner's messages are
// logged at debug level only.
func waitXMPP(ctx context.Context, sess *xmpp.Session, done <-chan error, jid string, log *slog.Logger) error {
	for {
		select {
		case msg := <-sess.Inbound():
			log.Debug("owner message", "component", "xmpp", "id", msg.ID, "body", msg.Body)
		case err := <-done:
			return xmppResult(ctx, err, jid)
		}
	}
}

// xmppResult maps the end of the XMPP session to runBridge's result.
func xmppResult(ctx context.Context, err error, jid string) error {
	if errors.Is(err, xmpp.ErrAuth) {
		return &bridge.ConfigError{Field: "xmpp.password", Problem: fmt.Sprintf("the server refused the login of %s; check the password", jid), Err: err}
	}
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// cursor keeps the XMPP archive cursor in the store's settings.
type cursor struct{ db *store.DB }

const cursorSetting = "xmpp.archive_cursor"

func (c cursor) LoadCursor() (string, error) {
	id, _, err := store.GetSetting[string](c.db, cursorSetting)
	return id, err
}

func (c cursor) SaveCursor(id string) error { return store.PutSetting(c.db, cursorSetting, id) }

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
