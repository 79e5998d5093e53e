package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"waxmpp/bridge"
	"waxmpp/bridge/config"
	"waxmpp/bridge/media"
	"waxmpp/bridge/qr"
	"waxmpp/bridge/store"
	"waxmpp/bridge/xmpp"
)

// runBridge wires the adapters and runs them until ctx is done. It returns
// nil once ctx is done, an error a restart may cure (exit 1), or a
// *config.Error when only the owner can fix it (exit 78).
//
// The parts (XMPP session, WhatsApp adapter, core, bot, pruning) run in one
// errgroup: when one of them fails, or stops while it should run, all stop
// and runBridge returns its error, so that the service manager restarts the
// whole bridge rather than letting it run half (an XMPP side relaying
// nothing). The WhatsApp adapter stops only after the core: what the core
// sends and acknowledges while it stops still reaches it. All have stopped
// when runBridge returns, before the store may close.
func (m *Main) runBridge(ctx context.Context, log *slog.Logger, db *store.DB) error {
	// One child logger per component; log itself is the root.
	mainLog, xmppLog := log.With("component", "main"), log.With("component", "xmpp")
	cfg := m.Config.XMPP
	sess, err := newSession(cfg, db, xmppLog)
	if err != nil {
		return err
	}
	// Until WhatsApp says otherwise the bot shows that it is not linked;
	// the core updates it from WhatsApp's life events.
	sess.SetPresence("dnd", "WhatsApp is not linked yet")

	g, gctx := errgroup.WithContext(ctx)
	// part runs one part of the bridge in g until its ctx ends. A part that
	// returns before that has failed, even with nil.
	part := func(ctx context.Context, name string, run func(context.Context) error) {
		g.Go(func() error {
			err := run(ctx)
			if ctx.Err() == nil && err == nil {
				err = fmt.Errorf("%s stopped on its own", name)
			}
			return err
		})
	}
	// waCtx ends after the core has returned (or when start-up fails).
	waCtx, stopWA := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWA()

	// events carries WhatsApp's events to the core. Capacity 256: the
	// adapter buffers beyond it on its own side and never drops (see its
	// doc); the core drains it one event at a time.
	events := make(chan bridge.Event, 256)
	wa, runWA, err := openWhatsApp(waCtx, m.Simulator, db, log, events)
	switch {
	case errors.Is(err, errNoWhatsApp):
		mainLog.Warn("WhatsApp unavailable; relaying nothing", "err", err)
		m.notifyState("READY=1\nSTATUS=no WhatsApp in this build: XMPP only")
		part(gctx, "xmpp", sess.Run)
		part(gctx, "owner log", func(ctx context.Context) error { logOwner(ctx, sess, xmppLog); return nil })
		return bridgeResult(ctx, g.Wait(), cfg.JID)
	case err != nil:
		return err
	}
	roots, err := rootCAs(cfg.CAFile) // newSession checked the file
	if err != nil {
		return &config.Error{Field: "xmpp.ca_file", Problem: err.Error(), Err: err}
	}
	files := m.mediaFiles(ctx, log.With("component", "media"), db, roots)
	part(waCtx, "whatsapp", runWA)
	bot := xmpp.NewBot(sess)
	checks := &statusDoctor{configPath: m.ConfigPath, db: db, sess: sess} // doctor_status.go
	core, err := bridge.NewCore(bridge.CoreConfig{
		WhatsApp: wa,
		XMPP:     bot,
		Store:    db,
		Events:   events,
		Owner:    bot.Owner(),
		Commands: bot.Commands(),
		QR:       qr.PNG,
		Files:    files,
		VoiceAAC: m.Config.Media.VoiceAAC,
		Invite:   inviteConfig(m.Config, m.Getenv),
		// NewCore tells the session its rooms, before sess.Run below
		// connects: they are joined at the first login.
		Rooms:     bot,
		RoomsAuto: m.Config.Rooms.Auto,
		Log:       log.With("component", "core"),
		Version:   version,
		Doctor:    checks,
		Idle:      releaseMemory,
	})
	if err != nil {
		stopWA()
		g.Wait()
		return err
	}
	part(gctx, "xmpp", sess.Run)
	part(gctx, "bot", bot.Run)
	if m.Getenv("NOTIFY_SOCKET") != "" { // service.go
		part(gctx, "watchdog", func(ctx context.Context) error {
			supervise(ctx, core.Health, watchdogInterval(m.Getenv), m.notifyState, mainLog)
			return nil
		})
	}
	part(gctx, "core", func(ctx context.Context) error {
		defer stopWA()
		return core.Run(ctx)
	})
	part(gctx, "pruning", func(ctx context.Context) error {
		prune(ctx, db, log.With("component", "store"))
		return nil
	})
	part(gctx, "checks", func(ctx context.Context) error { checks.run(ctx); return nil })
	return bridgeResult(ctx, g.Wait(), cfg.JID)
}

// inviteConfig is what /invite sends: the [invite] table, in the language
// it or the environment (the system's locale, under systemd) names, with
// the owner's address.
func inviteConfig(c config.Config, getenv func(string) string) bridge.InviteConfig {
	return bridge.InviteConfig{
		Address:   c.XMPP.Owner,
		Lang:      c.Invite.Lang(getenv),
		Text:      c.Invite.Text,
		GroupText: c.Invite.GroupText,
		RoomText:  c.Invite.RoomText,
		Link:      c.Invite.Link,
		RoomLink:  c.Invite.RoomLink,
	}
}

// newSession makes the XMPP session of the bot account in cfg, its outbox
// and archive cursor in db.
func newSession(cfg config.XMPP, db *store.DB, log *slog.Logger) (*xmpp.Session, error) {
	roots, err := rootCAs(cfg.CAFile)
	if err != nil {
		return nil, &config.Error{Field: "xmpp.ca_file", Problem: err.Error(), Err: err}
	}
	return xmpp.New(xmpp.Config{
		JID:          cfg.JID,
		Password:     cfg.Password,
		Resource:     cfg.Resource,
		Mechanism:    cfg.SASLMechanism,
		Owner:        cfg.Owner,
		Server:       cfg.Server,
		RootCAs:      roots,
		Rate:         cfg.Rate,
		Burst:        cfg.Burst,
		PingInterval: time.Duration(cfg.PingInterval),
		PingTimeout:  time.Duration(cfg.PingTimeout),
		Outbox:       db.Queue("xmpp-out"),
		Held:         db.Queue("xmpp-held"),
		Cursor:       cursor{db},
		Rooms:        newRoomCursors(db),
		Log:          log,
	})
}

// mediaFiles sets up media relaying: temporary files beside the state file
// (what a crash left there is removed first), the owner's files fetched
// within [media]'s limits and verified against the same roots as the XMPP
// stream, and ffmpeg when it is installed (its absence is said once: it
// only narrows what is converted).
func (m *Main) mediaFiles(ctx context.Context, log *slog.Logger, db *store.DB, roots *x509.CertPool) *media.Files {
	dir := filepath.Dir(db.Path())
	if n, err := media.Sweep(dir); err != nil {
		log.Warn("temporary files of earlier transfers not removed", "err", err)
	} else if n > 0 {
		log.Info("removed temporary files of transfers cut short", "count", n)
	}
	ff, err := media.FindFFmpeg(ctx)
	if err != nil {
		log.Info("ffmpeg not found: voice messages go to WhatsApp as audio files, GIF, WebM and MOV videos as documents, and voice notes reach you as Ogg/Opus", "err", err)
	} else {
		log.Info("ffmpeg found", "version", ff.String())
	}
	mc := m.Config.Media
	return &media.Files{
		Fetcher: &media.Fetcher{Dir: dir, MaxSize: mc.MaxSize, Timeout: time.Duration(mc.Timeout), RootCAs: roots},
		FFmpeg:  ff,
		Log:     log,
	}
}

// openWhatsApp is newWhatsApp (whatsapp_real.go, or whatsapp_simwa.go in a
// test build); tests replace it with one that fails.
var openWhatsApp = newWhatsApp

// errNoWhatsApp is newWhatsApp's answer in a test build without a
// simulated WhatsApp: the bridge then runs the XMPP side alone.
var errNoWhatsApp = errors.New("no WhatsApp in this build")

// logOwner stands in for the core when there is no WhatsApp: the owner's
// messages are logged at debug level only.
func logOwner(ctx context.Context, sess *xmpp.Session, log *slog.Logger) {
	for {
		select {
		case msg := <-sess.Inbound():
			log.Debug("owner message", "id", msg.ID, "body", msg.Body)
		case <-ctx.Done():
			return
		}
	}
}

// bridgeResult maps the first error of the bridge's parts to runBridge's
// result: a login the server refused is the owner's to fix; what ends with
// ctx is a clean stop.
func bridgeResult(ctx context.Context, err error, jid string) error {
	switch {
	case errors.Is(err, xmpp.ErrAuth):
		return &config.Error{Field: "xmpp.password", Problem: fmt.Sprintf("the server refused the login of %s; check the password", jid), Err: err}
	case errors.Is(err, xmpp.ErrAccountDisabled):
		return &config.Error{Field: "xmpp.jid", Problem: fmt.Sprintf("the server says the account %s is disabled; ask its administrator", jid), Err: err}
	case errors.Is(err, xmpp.ErrMechanism):
		return &config.Error{Field: "xmpp.sasl_mechanism", Problem: "the server does not offer it; leave it empty for the strongest the server offers", Err: err}
	}
	if ctx.Err() != nil && (err == nil || errors.Is(err, context.Canceled)) {
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

// SaveCursor costs no commit of its own: the cursor goes to disk with the
// next write (an owner's message handled writes the map), or at Close. A
// crash may leave an older cursor; the archive is then replayed from
// there and the core drops by id what it had handled.
func (c cursor) SaveCursor(id string) error { return store.PutSettingLater(c.db, cursorSetting, id) }

// roomCursors keeps each room's archive cursor in the store's settings.
//
// A room's cursor moves with every message there the core handled
// (several per relayed message: the message, the room's echo of the
// bot's own). Once the room has a cursor on disk, a later one costs no
// commit of its own: it goes to disk with the next write (the core's
// next batch), or at Close, and a crash before that leaves the older
// cursor: the room's archive is replayed from there and the core drops
// by id what it had handled (the owner's messages by their ids, the
// echoes by the room id the map already has). The first cursor of a room
// (none on disk: the room is new, made again, or had none) and the
// room's start ("^") are written at once: with no cursor at all, the
// next start would skip what the room's archive got meanwhile.
type roomCursors struct {
	db *store.DB

	mu sync.Mutex
	// onDisk: whether the room has a cursor on disk, for the rooms this
	// process saved or loaded one of.
	onDisk map[string]bool
}

func newRoomCursors(db *store.DB) *roomCursors {
	return &roomCursors{db: db, onDisk: map[string]bool{}}
}

const roomCursorSetting = "xmpp.room_cursor/" // + the room's JID

// roomStart is bridge/xmpp's cursor for "the room's archive from its
// start".
const roomStart = "^"

func (c *roomCursors) LoadRoomCursor(room string) (string, error) {
	id, _, err := store.GetSetting[string](c.db, roomCursorSetting+room)
	if err == nil && id != "" {
		c.mu.Lock()
		if _, saved := c.onDisk[room]; !saved {
			// Not saved by this process: read from the disk. (A
			// value saved since, lazily or not, keeps its entry.)
			c.onDisk[room] = true
		}
		c.mu.Unlock()
	}
	return id, err
}

func (c *roomCursors) SaveRoomCursor(room, id string) error {
	name := roomCursorSetting + room
	c.mu.Lock()
	defer c.mu.Unlock()
	if id == "" {
		c.onDisk[room] = false
		return c.db.DeleteSetting(name)
	}
	if id != roomStart && c.onDisk[room] {
		return store.PutSettingLater(c.db, name, id)
	}
	if err := store.PutSetting(c.db, name, id); err != nil {
		return err
	}
	c.onDisk[room] = true
	return nil
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

// prune drops message mappings older than the store's MessageMaxAge
// ([store] retention), at start and then daily, until ctx ends. A Pi runs
// for years: without this the map would grow forever.
func prune(ctx context.Context, db *store.DB, log *slog.Logger) {
	t := time.NewTicker(24 * time.Hour)
	defer t.Stop()
	for {
		n, err := db.PruneMessages(time.Now())
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

// releaseMemory gives the system back the memory the heap holds free,
// when the garbage collector ran several times since the last time (a
// burst went by, not a message or two): Go's runtime otherwise returns it
// over minutes. Idle after the burst benchmark's 22,000 relayed messages,
// the binary's anonymous memory was 18.6 MB with it and 23.7 without.
// Called by the core once it has been idle for a few seconds.
func releaseMemory() {
	s := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return
	}
	n := s[0].Value.Uint64()
	if n < releasedAt.Load()+releaseCycles {
		return
	}
	debug.FreeOSMemory() // a collection itself
	releasedAt.Store(n + 1)
}

// releaseCycles is how many collections since the last release make
// releaseMemory give memory back; releasedAt is the count then.
const releaseCycles = 4

var releasedAt atomic.Uint64
