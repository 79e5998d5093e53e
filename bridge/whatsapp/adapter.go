package whatsapp

import (
	"compress/zlib"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/proto/waHistorySync"
	"go.mau.fi/whatsmeow/proto/waWeb"
	wastore "go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	waLog "go.mau.fi/whatsmeow/util/log"

	"waxmpp/bridge"
)

// client is the part of *whatsmeow.Client the adapter uses. The real one
// is *whatsmeow.Client itself; tests use a fake, so that life cycle,
// pairing and retries run without WhatsApp's servers.
type client interface {
	decrypter
	Connect() error
	Disconnect()
	IsConnected() bool
	Logout(ctx context.Context) error
	AddEventHandlerWithSuccessStatus(h whatsmeow.EventHandlerWithSuccessStatus) uint32

	SendMessage(ctx context.Context, to types.JID, m *waE2E.Message, extra ...whatsmeow.SendRequestExtra) (whatsmeow.SendResponse, error)
	SendPeerMessage(ctx context.Context, m *waE2E.Message) (whatsmeow.SendResponse, error)
	BuildEdit(chat types.JID, id types.MessageID, newContent *waE2E.Message) *waE2E.Message
	BuildRevoke(chat, sender types.JID, id types.MessageID) *waE2E.Message
	BuildReaction(chat, sender types.JID, id types.MessageID, reaction string) *waE2E.Message
	BuildHistorySyncRequest(last *types.MessageInfo, count int) *waE2E.Message
	MarkRead(ctx context.Context, ids []types.MessageID, ts time.Time, chat, sender types.JID, extra ...types.ReceiptType) error
	SendChatPresence(ctx context.Context, jid types.JID, state types.ChatPresence, media types.ChatPresenceMedia) error
	SendPresence(ctx context.Context, state types.Presence) error
	IsOnWhatsApp(ctx context.Context, phones []string) ([]types.IsOnWhatsAppResponse, error)
	GetJoinedGroups(ctx context.Context) ([]*types.GroupInfo, error)

	GetQRChannel(ctx context.Context) (<-chan whatsmeow.QRChannelItem, error)
	PairPhone(ctx context.Context, phone string, showPushNotification bool, clientType whatsmeow.PairClientType, clientDisplayName string) (string, error)
	SendPasskeyConfirmation(ctx context.Context) error

	DownloadMediaWithPathToFile(ctx context.Context, directPath string, encFileHash, fileHash, mediaKey []byte, mediaType whatsmeow.MediaType, mmsType string, allowNoHash bool, file whatsmeow.File) error
	UploadReader(ctx context.Context, plaintext io.Reader, tempFile io.ReadWriteSeeker, appInfo whatsmeow.MediaType) (whatsmeow.UploadResponse, error)
	SendMediaRetryReceipt(ctx context.Context, message *types.MessageInfo, mediaKey []byte) error
	ParseWebMessage(chat types.JID, m *waWeb.WebMessageInfo) (*events.Message, error)
}

var _ client = (*whatsmeow.Client)(nil)

// Timings of the phone watch. WhatsApp unlinks companions whose phone was
// not seen for about 14 days.
const (
	phoneAskAfter     = 10 * 24 * time.Hour // ask the phone to come online
	phoneWarnAfter    = 12 * 24 * time.Hour // tell the owner
	phoneAskEvery     = 24 * time.Hour
	phoneCheckEvery   = time.Hour
	phoneSeenPersist  = time.Hour // write the last-seen setting at most this often
	versionFetchLimit = 15 * time.Second
	pairTimeout       = 5 * time.Minute
	// linkCodeValid is how long a link code can be typed: as long as the
	// pairing session's QR rotation (60 s + 5 × 20 s) keeps the socket.
	linkCodeValid = 160 * time.Second
)

// Adapter is the WhatsApp side of the bridge: whatsmeow linked as a
// companion device, speaking the domain's types (bridge.WhatsApp).
//
// Buffering: whatsmeow calls the event handler from its node-handling
// goroutine and, with SynchronousAck, acknowledges a message to WhatsApp
// only after the handler returned. The handler converts the event and
// appends the results to a durable queue in the state file (one fsync,
// shared by concurrent writers), then returns; it never waits for the
// core. One goroutine (started by Run) delivers the queue to the core's
// channel in order, waiting for the core as long as it needs; an event
// leaves the queue when the core calls Handled. After a crash the
// undelivered and unhandled events are delivered again (the core drops
// what it already handled). Disk is the only bound: Pending tells how many
// events wait.
type Adapter struct {
	log      *slog.Logger
	out      chan<- bridge.Event
	devices  Devices
	settings Settings
	messages Messages
	tempDir  string
	conv     *converter
	q        inbox

	// test seams
	newClient    func(*wastore.Device) client
	fetchVersion func(context.Context) (*wastore.WAVersionContainer, error)
	now          func() time.Time

	mu            sync.Mutex
	dev           *wastore.Device
	cli           client
	runCtx        context.Context
	pairing       bool
	pairedAs      *events.PairSuccess
	aliases       map[bridge.Alias]bool
	undecr        map[bridge.MsgRef]bool // Undecryptable sent, Message not yet
	phoneSeen     time.Time
	phoneSave     time.Time
	phoneAsk      time.Time
	phoneWarn     bool // PhoneOffline was reported
	phoneWarnDays int
	groupsFetched bool // once per run: names of all groups
	wg            sync.WaitGroup
}

var _ bridge.WhatsApp = (*Adapter)(nil)

// New loads the linked device (if any) from cfg.Devices and prepares its
// whatsmeow client; it does not connect (Run does).
func New(ctx context.Context, cfg Config) (*Adapter, error) {
	wl := waLogger{cfg.Log.With("component", "whatsmeow")}
	return newAdapter(ctx, cfg, func(d *wastore.Device) client {
		c := whatsmeow.NewClient(d, wl)
		// Acknowledge a message to WhatsApp only after the handler has
		// queued it on disk.
		c.SynchronousAck = true
		c.EnableAutoReconnect = true
		c.InitialAutoReconnect = true // offline at start-up: keep trying
		// Undecryptable messages: ask the phone to resend them too.
		c.AutomaticMessageRerequestFromPhone = true
		// Keep sent messages in the store (bridge/store implements
		// whatsmeow's outgoing-event store) so retry receipts are
		// answered after a restart.
		c.UseRetryMessageStore = true
		// History blobs are streamed by the adapter (history.go).
		c.ManualHistorySyncDownload = true
		// The initial app-state sync carries the address book's names.
		c.EmitAppStateEventsOnFullSync = true
		return c
	}, func(ctx context.Context) (*wastore.WAVersionContainer, error) {
		return whatsmeow.GetLatestVersion(ctx, &http.Client{Timeout: versionFetchLimit})
	})
}

// Logger is whatsmeow's logger interface over slog, for the device store
// (bridge/store's Devices takes one).
func Logger(l *slog.Logger) waLog.Logger { return waLogger{l} }

func newAdapter(ctx context.Context, cfg Config,
	mk func(*wastore.Device) client, fetch func(context.Context) (*wastore.WAVersionContainer, error)) (*Adapter, error) {
	a := &Adapter{
		log: cfg.Log.With("component", "whatsapp"), out: cfg.Events,
		devices:      cfg.Devices,
		settings:     cfg.Settings,
		messages:     cfg.Messages,
		tempDir:      cfg.TempDir,
		q:            newInbox(cfg.Inbox),
		newClient:    mk,
		fetchVersion: fetch,
		now:          time.Now,
		aliases:      map[bridge.Alias]bool{},
		undecr:       map[bridge.MsgRef]bool{},
	}
	a.conv = &converter{self: a.self, selfLID: a.selfLID, polls: a, log: a.log}
	dev, err := a.devices.GetFirstDevice(ctx)
	if err != nil {
		return nil, fmt.Errorf("whatsapp: load device: %w", err)
	}
	a.setClient(dev)
	if t, ok := a.timeSetting(settingPhoneSeen); ok {
		a.phoneSeen, a.phoneSave = t, t
	}
	if t, ok := a.timeSetting(settingPhoneAsk); ok {
		a.phoneAsk = t
	}
	return a, nil
}

// setClient makes dev the current device with a fresh client.
func (a *Adapter) setClient(dev *wastore.Device) {
	c := a.newClient(dev)
	// The handler reports failure when an event could not be queued
	// durably: whatsmeow then does not acknowledge the message, and
	// WhatsApp delivers it again.
	c.AddEventHandlerWithSuccessStatus(func(evt any) bool {
		before := a.q.failures.Load()
		a.handle(c, evt)
		return a.q.failures.Load() == before
	})
	a.mu.Lock()
	a.dev, a.cli = dev, c
	a.conv.dec = c
	a.mu.Unlock()
}

func (a *Adapter) client() client {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.cli
}

// self is the owner's phone-number JID, or empty before pairing.
func (a *Adapter) self() types.JID {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.dev == nil || a.dev.ID == nil {
		return types.EmptyJID
	}
	return a.dev.ID.ToNonAD()
}

// selfLID is the owner's LID, or empty.
func (a *Adapter) selfLID() types.JID {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.dev == nil {
		return types.EmptyJID
	}
	return a.dev.LID.ToNonAD()
}

func (a *Adapter) paired() bool { return !a.self().IsEmpty() }

func (a *Adapter) device() *wastore.Device {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.dev
}

// Run fetches WhatsApp's current web version, connects if a device is
// linked (else reports NotPaired) and relays events until ctx ends. It
// returns nil when ctx ends.
func (a *Adapter) Run(ctx context.Context) error {
	a.mu.Lock()
	a.runCtx = ctx
	a.mu.Unlock()
	a.wg.Add(1)
	go func() { defer a.wg.Done(); a.drain(ctx) }()
	defer a.wg.Wait()

	if !a.paired() {
		// Nothing to connect to until /pair: no network at all (Pair
		// fetches the version first).
		a.emit(&bridge.Status{State: bridge.NotPaired, Reason: "no linked device"})
	} else {
		a.updateVersion(ctx)
		a.connect(ctx)
		a.checkPhone(ctx) // waxmpp itself may have been down for days
	}
	t := time.NewTicker(phoneCheckEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			a.client().Disconnect()
			return nil
		case <-t.C:
			a.checkPhone(ctx)
		}
	}
}

// connect connects the current client. whatsmeow reconnects by itself
// after a start (InitialAutoReconnect) and after drops; an error here is
// one it will not retry (logged out, banned), told by its own event.
func (a *Adapter) connect(ctx context.Context) {
	if err := a.client().Connect(); err != nil {
		a.log.Warn("connect", "err", err)
		a.emit(&bridge.Status{State: bridge.Disconnected, Reason: "cannot connect: " + err.Error()})
	}
}

// updateVersion asks web.whatsapp.com which client version is current and
// makes whatsmeow announce it: an old built-in version is refused as
// "client outdated". Offline, the last fetched version is used, if it is
// newer than whatsmeow's built-in one.
func (a *Adapter) updateVersion(ctx context.Context) {
	fctx, cancel := context.WithTimeout(ctx, versionFetchLimit)
	v, err := a.fetchVersion(fctx)
	cancel()
	if err == nil && v != nil && !v.IsZero() {
		wastore.SetWAVersion(*v)
		if err := a.settings.PutBlob(settingVersion, []byte(v.String())); err != nil {
			a.log.Warn("save web version", "err", err)
		}
		a.log.Info("web version", "version", v.String(), "source", "web.whatsapp.com")
		return
	}
	a.log.Info("cannot fetch the current web version", "err", err)
	b, ok, _ := a.settings.Blob(settingVersion)
	if !ok {
		return
	}
	s := string(b)
	cached, err := wastore.ParseVersion(s)
	if err == nil && wastore.GetWAVersion().LessThan(cached) {
		wastore.SetWAVersion(cached)
		a.log.Info("web version", "version", s, "source", "cache")
	}
}

// Pending is the number of events converted but not yet taken by the
// core's channel. Safe to call from any goroutine.
func (a *Adapter) Pending() int {
	n, err := a.q.q.Len()
	if err != nil {
		a.log.Warn("inbox length", "err", err)
	}
	return n
}

// emit queues evs durably for the core, in order.
func (a *Adapter) emit(evs ...bridge.Event) {
	if err := a.q.push(evs...); err != nil {
		a.log.Error("cannot queue WhatsApp events on disk; WhatsApp will deliver them again", "err", err)
	}
}

// drain delivers queued events to the core's channel, in order.
func (a *Adapter) drain(ctx context.Context) {
	a.q.deliver(ctx, a.out, a.log)
}

// Handled removes ev, and everything delivered before it, from the queue
// (bridge.WhatsApp).
func (a *Adapter) Handled(ev bridge.Event) {
	if err := a.q.handled(ev); err != nil {
		a.log.Error("cannot remove a handled event from the inbox", "err", err)
	}
}

// spawn runs f on a goroutine Run waits for: work that must not run on
// whatsmeow's handler goroutine (network calls).
func (a *Adapter) spawn(f func(ctx context.Context)) {
	a.mu.Lock()
	ctx := a.runCtx
	a.mu.Unlock()
	if ctx == nil || ctx.Err() != nil {
		return
	}
	a.wg.Add(1)
	go func() { defer a.wg.Done(); f(ctx) }()
}

// handle is whatsmeow's event handler for client c. It must return fast.
func (a *Adapter) handle(c client, evt any) {
	if a.client() != c {
		return // a replaced (logged-out) client's late events
	}
	ctx := context.Background()
	switch e := evt.(type) {
	case *events.Connected:
		a.emit(&bridge.Status{State: bridge.Connected, Reason: "connected"})
		// Unavailable, so that the phone keeps showing notifications.
		a.spawn(func(ctx context.Context) {
			if err := c.SendPresence(ctx, types.PresenceUnavailable); err != nil {
				a.log.Debug("send presence", "err", err)
			}
		})
		a.emitConverted(ctx, alias(a.selfLID(), a.self()))
		a.mu.Lock()
		first := !a.groupsFetched
		a.groupsFetched = true
		a.mu.Unlock()
		if first {
			a.spawn(func(ctx context.Context) { a.fetchGroups(ctx, c) })
		}
		return
	case *events.Disconnected:
		a.emit(&bridge.Status{State: bridge.Disconnected, Reason: "connection lost, reconnecting"})
		return
	case *events.KeepAliveTimeout:
		a.emit(&bridge.Status{State: bridge.Disconnected, Reason: fmt.Sprintf("no answer to %d keep-alive pings", e.ErrorCount)})
		return
	case *events.KeepAliveRestored:
		a.emit(&bridge.Status{State: bridge.Connected, Reason: "keep-alive pings answered again"})
		return
	case *events.LoggedOut:
		a.loggedOut(c, loggedOutWords(e.Reason))
		return
	case *events.StreamReplaced:
		a.emit(&bridge.Status{State: bridge.StreamReplaced, Reason: "another connection with the same link replaced this one"})
		return
	case *events.ClientOutdated:
		a.emit(outdated())
		a.spawn(func(ctx context.Context) { a.retryOutdated(ctx, c) })
		return
	case *events.TemporaryBan:
		a.emit(&bridge.Status{State: bridge.TempBanned, Until: a.now().Add(e.Expire).UTC(),
			Reason: banWords(e.Code)})
		// whatsmeow does not reconnect after a ban; try again when it ends.
		a.spawn(func(ctx context.Context) { a.reconnectAfter(ctx, c, e.Expire+time.Minute) })
		return
	case *events.ConnectFailure:
		switch {
		case e.Reason == events.ConnectFailureClientOutdated:
			a.emit(outdated())
			a.spawn(func(ctx context.Context) { a.retryOutdated(ctx, c) })
		case e.Reason.IsLoggedOut():
			// whatsmeow sends LoggedOut too.
		default:
			a.emit(&bridge.Status{State: bridge.Disconnected, Reason: strings.TrimSpace(fmt.Sprintf("connection refused: %s %s", e.Reason.String(), e.Message))})
		}
		return
	case *events.PairSuccess:
		a.mu.Lock()
		a.pairedAs = e
		a.mu.Unlock()
		a.sawPhone(a.now())
		return
	case *events.HistorySync:
		// Only with automatic downloads (not ours); names only.
		return
	case *events.MediaRetry:
		a.emitConverted(ctx, a.mediaRetry(e))
		return
	case *events.Message:
		if n := e.Message.GetProtocolMessage().GetHistorySyncNotification(); n != nil {
			a.spawn(func(ctx context.Context) { a.history(ctx, c, n) })
			return
		}
		if a.fromPhone(e.Info.MessageSource) {
			a.sawPhone(e.Info.Timestamp)
		}
	case *events.Receipt:
		if a.fromPhone(e.MessageSource) {
			a.sawPhone(e.Timestamp)
		}
	}
	a.emitConverted(ctx, a.conv.convert(ctx, evt))
}

// fetchGroups tells the core every group's name and the identities of
// its members, once per run: names otherwise arrive only with changes.
func (a *Adapter) fetchGroups(ctx context.Context, c client) {
	gs, err := c.GetJoinedGroups(ctx)
	if err != nil {
		a.log.Info("fetch groups", "err", err)
		a.mu.Lock()
		a.groupsFetched = false // try again at the next connect
		a.mu.Unlock()
		return
	}
	for _, g := range gs {
		evs := []bridge.Event{&bridge.ChatInfo{Chat: chatID(g.JID), Kind: bridge.Group, Name: g.Name}}
		for _, p := range g.Participants {
			evs = append(evs, alias(p.LID, p.PhoneNumber)...)
		}
		a.emitConverted(ctx, evs)
	}
}

// reconnectAfter connects c again after d, unless it was replaced (logged
// out) or is connected by then.
func (a *Adapter) reconnectAfter(ctx context.Context, c client, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return
	case <-t.C:
	}
	if a.client() != c || c.IsConnected() {
		return
	}
	if err := c.Connect(); err != nil {
		a.log.Warn("reconnect", "err", err)
	}
}

// retryOutdated fetches the web version again (WhatsApp may have moved on
// since start-up) and reconnects if it changed; otherwise the owner must
// update waxmpp, as the Status said.
func (a *Adapter) retryOutdated(ctx context.Context, c client) {
	before := wastore.GetWAVersion()
	a.updateVersion(ctx)
	if wastore.GetWAVersion() != before {
		a.reconnectAfter(ctx, c, 0)
	}
}

// emitConverted records what converted events teach (LID mappings, poll
// options, pending retries) and queues them.
func (a *Adapter) emitConverted(ctx context.Context, evs []bridge.Event) {
	a.emit(a.prepare(ctx, evs)...)
}

// prepare is emitConverted without the emit: it drops aliases already
// reported and marks retries.
func (a *Adapter) prepare(ctx context.Context, evs []bridge.Event) []bridge.Event {
	out := evs[:0]
	for _, ev := range evs {
		switch e := ev.(type) {
		case *bridge.Alias:
			a.mu.Lock()
			seen := a.aliases[*e]
			a.aliases[*e] = true
			a.mu.Unlock()
			if seen {
				continue
			}
			a.putLID(ctx, e)
		case *bridge.Undecryptable:
			a.mu.Lock()
			if len(a.undecr) > 1000 {
				a.undecr = map[bridge.MsgRef]bool{} // retries that never came
			}
			a.undecr[e.Ref] = true
			a.mu.Unlock()
		case *bridge.Message:
			if !e.History {
				a.noteOldest(e) // history: once per conversation, in readHistory
			}
			a.mu.Lock()
			if a.undecr[e.Ref] {
				delete(a.undecr, e.Ref)
				e.Retry = true
			}
			a.mu.Unlock()
		}
		out = append(out, ev)
	}
	return out
}

// putLID stores a LID⇄phone mapping in whatsmeow's LID store (both
// directions), which whatsmeow may not have seen (history, app state).
func (a *Adapter) putLID(ctx context.Context, e *bridge.Alias) {
	lid, err1 := types.ParseJID(string(e.LID))
	pn, err2 := types.ParseJID(string(e.Phone))
	if err1 != nil || err2 != nil {
		return
	}
	a.mu.Lock()
	lids := a.dev.LIDs
	a.mu.Unlock()
	if lids == nil {
		return
	}
	if err := lids.PutLIDMapping(ctx, lid, pn); err != nil {
		a.log.Debug("store LID mapping", "err", err)
	}
}

// Resolve returns both identities of a user or direct chat id (a LID or a
// phone-number JID), as far as the LID store knows them.
func (a *Adapter) Resolve(ctx context.Context, id bridge.UserID) (lid, phone bridge.UserID, err error) {
	j, err := types.ParseJID(string(id))
	if err != nil {
		return "", "", fmt.Errorf("whatsapp: resolve %q: %w", id, err)
	}
	a.mu.Lock()
	lids := a.dev.LIDs
	a.mu.Unlock()
	if lids == nil {
		return "", "", bridge.ErrNotPaired
	}
	switch j.Server {
	case types.HiddenUserServer:
		pn, err := lids.GetPNForLID(ctx, j)
		if err != nil {
			return "", "", fmt.Errorf("whatsapp: resolve: %w", err)
		}
		return userID(j), userID(pn), nil
	case types.DefaultUserServer:
		l, err := lids.GetLIDForPN(ctx, j)
		if err != nil {
			return "", "", fmt.Errorf("whatsapp: resolve: %w", err)
		}
		return userID(l), userID(j), nil
	}
	return "", "", fmt.Errorf("whatsapp: resolve %q: not a user", id)
}

func outdated() *bridge.Status {
	return &bridge.Status{State: bridge.Outdated, Reason: "client version " + wastore.GetWAVersion().String() + " is outdated"}
}

// banWords is the ban's reason without its number.
func banWords(code events.TempBanReason) string {
	s := code.String()
	if _, after, ok := strings.Cut(s, ": "); ok {
		s = after
	}
	return s
}

// loggedOutWords is WhatsApp's logout reason in words (the core adds what
// to do).
func loggedOutWords(r events.ConnectFailureReason) string {
	switch r {
	case events.ConnectFailureLoggedOut:
		return "the device was removed from Linked devices on the phone"
	case events.ConnectFailureMainDeviceGone:
		return "the phone's WhatsApp was reinstalled or moved to another phone"
	case events.ConnectFailureUnknownLogout:
		return "no reason given; often the phone was offline for more than 14 days"
	}
	return r.String()
}

// loggedOut forgets the device (whatsmeow already deleted its keys) and
// makes a fresh one, so that /pair works again.
func (a *Adapter) loggedOut(c client, reason string) {
	a.setClient(a.devices.NewDevice())
	a.mu.Lock()
	a.phoneWarn = false
	a.mu.Unlock()
	a.emit(&bridge.Status{State: bridge.LoggedOut, Reason: reason})
	a.spawn(func(context.Context) { c.Disconnect() })
}

// fromPhone reports whether a message or receipt came from the owner's
// phone (device 0 of the owner's account).
func (a *Adapter) fromPhone(s types.MessageSource) bool {
	self := a.self()
	if self.IsEmpty() || !s.IsFromMe {
		return false
	}
	return s.Sender.Device == 0 && (s.Sender.User == self.User || s.Sender.Server == types.HiddenUserServer)
}

// sawPhone records that the phone was active at t.
func (a *Adapter) sawPhone(t time.Time) {
	if t.IsZero() {
		t = a.now()
	}
	a.mu.Lock()
	if !t.After(a.phoneSeen) {
		a.mu.Unlock()
		return
	}
	back := a.phoneWarn
	a.phoneSeen, a.phoneWarn = t, false
	save := t.Sub(a.phoneSave) >= phoneSeenPersist
	if save {
		a.phoneSave = t
	}
	a.mu.Unlock()
	if save {
		if err := a.putTime(settingPhoneSeen, t); err != nil {
			a.log.Warn("save phone last seen", "err", err)
		}
	}
	if back {
		a.emit(&bridge.Status{State: bridge.Connected, Reason: "phone online again", PhoneLastSeen: t})
	}
}

// checkPhone runs hourly: WhatsApp unlinks a companion whose phone stayed
// offline for about 14 days. At 10 days waxmpp asks the phone to come
// online (a peer message, which WhatsApp delivers to the phone by push),
// daily; at 12 days it tells the owner.
func (a *Adapter) checkPhone(ctx context.Context) {
	if !a.paired() {
		return
	}
	now := a.now()
	a.mu.Lock()
	seen, asked, warned := a.phoneSeen, a.phoneAsk, a.phoneWarn
	if seen.IsZero() {
		// Never seen since this version started watching: start now.
		a.phoneSeen, a.phoneSave = now, now
		a.mu.Unlock()
		if err := a.putTime(settingPhoneSeen, now); err != nil {
			a.log.Warn("save phone last seen", "err", err)
		}
		return
	}
	off := now.Sub(seen)
	ask := off >= phoneAskAfter && now.Sub(asked) >= phoneAskEvery
	if ask {
		a.phoneAsk = now
	}
	// Told at day 12, then daily, so the day count stays current.
	days := int(off / (24 * time.Hour))
	warn := off >= phoneWarnAfter && (!warned || days != a.phoneWarnDays)
	if warn {
		a.phoneWarn, a.phoneWarnDays = true, days
	}
	c := a.cli
	a.mu.Unlock()
	if ask {
		if err := a.putTime(settingPhoneAsk, now); err != nil {
			a.log.Warn("save phone wake-up time", "err", err)
		}
		if _, err := c.SendPeerMessage(ctx, wakePhone()); err != nil {
			a.log.Info("ask phone to come online", "err", err)
		}
	}
	if warn {
		a.emit(&bridge.Status{State: bridge.PhoneOffline, PhoneLastSeen: seen,
			Reason: fmt.Sprintf("phone not online for %d days", days)})
	}
}

// wakePhone is a peer request the phone answers when it runs; WhatsApp
// pushes it to the phone, which wakes the app.
func wakePhone() *waE2E.Message {
	t := waE2E.PeerDataOperationRequestType_COMPANION_META_NONCE_FETCH
	pt := waE2E.ProtocolMessage_PEER_DATA_OPERATION_REQUEST_MESSAGE
	return &waE2E.Message{ProtocolMessage: &waE2E.ProtocolMessage{
		Type:                            &pt,
		PeerDataOperationRequestMessage: &waE2E.PeerDataOperationRequestMessage{PeerDataOperationRequestType: &t},
	}}
}

// putPoll and pollOptions keep poll options in the settings bucket, so
// votes on polls made before a restart still show option texts.
func (a *Adapter) putPoll(chat, id string, options []string) {
	b, _ := json.Marshal(options)
	if err := a.settings.PutBlob(settingPollPfx+chat+"/"+id, b); err != nil {
		a.log.Warn("save poll", "err", err)
	}
}

func (a *Adapter) pollOptions(chat, id string) []string {
	b, ok, err := a.settings.Blob(settingPollPfx + chat + "/" + id)
	if err != nil || !ok {
		return nil
	}
	var o []string
	_ = json.Unmarshal(b, &o)
	return o
}

// history processes one history sync blob: the initial syncs after
// pairing give names, contacts and LID mappings only (never a flood of old
// messages); on-demand syncs (RequestHistory) are relayed with History set.
func (a *Adapter) history(ctx context.Context, c client, n *waE2E.HistorySyncNotification) {
	f, err := a.tempFile("history")
	if err != nil {
		a.log.Warn("history sync", "err", err)
		return
	}
	defer os.Remove(f.Name())
	defer f.Close()
	if inline := n.GetInitialHistBootstrapInlinePayload(); inline != nil {
		_, err = f.Write(inline)
	} else {
		err = c.DownloadMediaWithPathToFile(ctx, n.GetDirectPath(), n.GetFileEncSHA256(), n.GetFileSHA256(), n.GetMediaKey(),
			whatsmeow.MediaHistory, "", false, f)
	}
	if err == nil {
		_, err = f.Seek(0, 0)
	}
	if err != nil {
		a.log.Warn("history sync download", "err", err)
		return
	}
	z, err := zlib.NewReader(f)
	if err != nil {
		a.log.Warn("history sync", "err", err)
		return
	}
	defer z.Close()
	relay := n.GetSyncType() == waE2E.HistorySyncType_ON_DEMAND
	if _, err := a.readHistory(ctx, c, z, relay); err != nil {
		a.log.Warn("history sync", "err", err)
	}
}

// readHistory converts a decompressed history blob; relay says whether
// its messages reach the core.
func (a *Adapter) readHistory(ctx context.Context, c client, r interface{ Read([]byte) (int, error) }, relay bool) (waHistorySync.HistorySync_HistorySyncType, error) {
	var oldest *bridge.Message // of the current conversation
	// A history sync holds thousands of messages: queue them in batches,
	// one fsync per batch, not per message (an SD card does ~25–100 fsyncs
	// a second).
	var batch []bridge.Event
	add := func(evs ...bridge.Event) {
		batch = append(batch, evs...)
		if len(batch) >= historyBatch {
			a.emit(batch...)
			batch = nil
		}
	}
	defer func() { a.emit(batch...) }()
	return readHistory(r, historySink{
		message: func(chat string, wm *waWeb.WebMessageInfo) {
			if !relay {
				return
			}

			var cj types.JID
			if chat != "" {
				cj, _ = types.ParseJID(chat)
			}
			e, err := c.ParseWebMessage(cj, wm)
			if err != nil {
				a.log.Debug("history message", "err", err)
				return
			}
			evs := a.conv.message(ctx, e, true)
			for _, ev := range evs {
				if m, ok := ev.(*bridge.Message); ok && (oldest == nil || m.Time.Before(oldest.Time)) {
					oldest = m
				}
			}
			add(a.prepare(ctx, evs)...)
		},
		conversation: func(id, name string) {
			if oldest != nil {
				a.noteOldest(oldest)
				oldest = nil
			}
			j, err := types.ParseJID(id)
			if err != nil || name == "" {
				return
			}
			// Group subjects only: a direct chat's name here may be a
			// push name or the address book's; the app-state contacts
			// (EmitAppStateEventsOnFullSync) say which.
			if j.Server == types.GroupServer {
				add(&bridge.ChatInfo{Chat: chatID(j), Kind: bridge.Group, Name: name})
			}
		},
		pushName: func(id, name string) {
			if j, err := types.ParseJID(id); err == nil && name != "" {
				add(&bridge.ContactInfo{User: userID(j), PushName: name})
			}
		},
		mapping: func(pn, lid string) {
			p, err1 := types.ParseJID(pn)
			l, err2 := types.ParseJID(lid)
			if err1 == nil && err2 == nil {
				add(a.prepare(ctx, alias(l, p))...)
			}
		},
	})
}

// historyBatch is how many history events share one durable write.
const historyBatch = 256

// waLogger sends whatsmeow's logs to slog. whatsmeow logs message contents
// and numbers at debug level only, matching the project's rule.
type waLogger struct{ l *slog.Logger }

func (w waLogger) Warnf(msg string, args ...any)  { w.l.Warn(fmt.Sprintf(msg, args...)) }
func (w waLogger) Errorf(msg string, args ...any) { w.l.Error(fmt.Sprintf(msg, args...)) }
func (w waLogger) Infof(msg string, args ...any)  { w.l.Info(fmt.Sprintf(msg, args...)) }
func (w waLogger) Debugf(msg string, args ...any) {
	if w.l.Enabled(context.Background(), slog.LevelDebug) {
		w.l.Debug(fmt.Sprintf(msg, args...))
	}
}
func (w waLogger) Sub(module string) waLog.Logger { return waLogger{w.l.With("module", module)} }

var errNotRunning = errors.New("whatsapp: not running")
