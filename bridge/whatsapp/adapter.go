package whatsapp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/appstate"
	"go.mau.fi/whatsmeow/proto/waCompanionReg"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/proto/waWeb"
	wastore "go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	waLog "go.mau.fi/whatsmeow/util/log"
	"google.golang.org/protobuf/proto"

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
	IsLoggedIn() bool
	Logout(ctx context.Context) error
	AddEventHandlerWithSuccessStatus(h whatsmeow.EventHandlerWithSuccessStatus) uint32

	SendMessage(ctx context.Context, to types.JID, m *waE2E.Message, extra ...whatsmeow.SendRequestExtra) (whatsmeow.SendResponse, error)
	SendPeerMessage(ctx context.Context, m *waE2E.Message) (whatsmeow.SendResponse, error)
	SendProtocolMessageReceipt(ctx context.Context, id types.MessageID, msgType types.ReceiptType) error
	BuildEdit(chat types.JID, id types.MessageID, newContent *waE2E.Message) *waE2E.Message
	BuildRevoke(chat, sender types.JID, id types.MessageID) *waE2E.Message
	BuildReaction(chat, sender types.JID, id types.MessageID, reaction string) *waE2E.Message
	BuildHistorySyncRequest(last *types.MessageInfo, count int) *waE2E.Message
	MarkRead(ctx context.Context, ids []types.MessageID, ts time.Time, chat, sender types.JID, extra ...types.ReceiptType) error
	SendChatPresence(ctx context.Context, jid types.JID, state types.ChatPresence, media types.ChatPresenceMedia) error
	SendPresence(ctx context.Context, state types.Presence) error
	IsOnWhatsApp(ctx context.Context, phones []string) ([]types.IsOnWhatsAppResponse, error)
	GetJoinedGroups(ctx context.Context) ([]*types.GroupInfo, error)
	GetProfilePictureInfo(ctx context.Context, jid types.JID, params *whatsmeow.GetProfilePictureParams) (*types.ProfilePictureInfo, error)

	GetQRChannel(ctx context.Context) (<-chan whatsmeow.QRChannelItem, error)
	PairPhone(ctx context.Context, phone string, showPushNotification bool, clientType whatsmeow.PairClientType, clientDisplayName string) (string, error)
	SendPasskeyResponse(ctx context.Context, resp *types.WebAuthnResponse) error
	SendPasskeyConfirmation(ctx context.Context) error

	DownloadMediaWithPathToFile(ctx context.Context, directPath string, encFileHash, fileHash, mediaKey []byte, mediaType whatsmeow.MediaType, mmsType string, allowNoHash bool, file whatsmeow.File) error
	UploadReader(ctx context.Context, plaintext io.Reader, tempFile io.ReadWriteSeeker, appInfo whatsmeow.MediaType) (whatsmeow.UploadResponse, error)
	SendMediaRetryReceipt(ctx context.Context, message *types.MessageInfo, mediaKey []byte) error
	DeleteMedia(ctx context.Context, appInfo whatsmeow.MediaType, directPath string, encFileHash []byte, encHandle string) error
	ParseWebMessage(chat types.JID, m *waWeb.WebMessageInfo) (*events.Message, error)
}

var _ client = (*whatsmeow.Client)(nil)

// Timings.
const (
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
	tempDir  string
	passkeys bool
	conv     *converter
	q        inbox
	hist     *historyQueue

	// test seams
	newClient    func(*wastore.Device) client
	fetchVersion func(context.Context) (*wastore.WAVersionContainer, error)
	now          func() time.Time
	pictureHTTP  *http.Client // nil: the default client (picture.go)

	mu      sync.Mutex
	dev     *wastore.Device
	cli     client
	id, lid types.JID // the device's own JIDs (non-AD), see learnIdentity
	runCtx  context.Context
	// running is closed once Run has begun (runOnce): Pair waits for it.
	running       chan struct{}
	runOnce       sync.Once
	pairing       *pairing
	pairedAs      *events.PairSuccess
	aliases       map[bridge.Alias]bool
	undecr        map[bridge.MsgRef]bool // Undecryptable sent, Message not yet
	phoneSeen     time.Time
	phoneSave     time.Time
	phoneAsk      time.Time
	phoneWarn     bool // PhoneOffline was reported
	phoneWarnDays int
	phoneChecked  bool // the first check after a connect ran
	groupsFetched bool // once per client: names of all groups
	sync          syncState
	syncChanged   chan struct{} // closed and replaced when sync changes
	historyIdle   time.Duration // InitialSync: no history for this long is idle
	syncLimit     time.Duration // InitialSync waits at most this long
	wg            sync.WaitGroup
}

var _ bridge.WhatsApp = (*Adapter)(nil)

// New loads the linked device (if any) from cfg.Devices and prepares its
// whatsmeow client; it does not connect (Run does).
func New(ctx context.Context, cfg Config) (*Adapter, error) {
	setDeviceProps()
	wl := waLogger{cfg.Log.With("component", "whatsmeow")}
	return newAdapter(ctx, cfg, func(d *wastore.Device) client {
		return newWhatsmeow(d, wl)
	}, func(ctx context.Context) (*wastore.WAVersionContainer, error) {
		return whatsmeow.GetLatestVersion(ctx, &http.Client{Timeout: versionFetchLimit})
	})
}

// newWhatsmeow is the real client with the settings the adapter's
// contract depends on.
func newWhatsmeow(d *wastore.Device, log waLog.Logger) *whatsmeow.Client {
	c := whatsmeow.NewClient(d, log)
	// Acknowledge a message to WhatsApp only after the handler has
	// queued it on disk.
	c.SynchronousAck = true
	// The plaintext of every decrypted message is kept (in the same
	// commit as the Signal session that decrypted it) until the handler
	// succeeded: a message the handler could not queue, or one decrypted
	// just before a crash, decrypts again from there when WhatsApp
	// delivers it again, instead of failing on the advanced session.
	c.EnableDecryptedEventBuffer = true
	c.EnableAutoReconnect = true
	c.InitialAutoReconnect = true // offline at start-up: keep trying
	// Undecryptable messages: ask the phone to resend them too.
	c.AutomaticMessageRerequestFromPhone = true
	// Keep sent messages in the store (bridge/store implements
	// whatsmeow's outgoing-event store) so retry receipts are answered
	// after a restart.
	c.UseRetryMessageStore = true
	// History blobs are streamed by the adapter (historysync.go), and
	// their receipt goes to the phone only once the notification is on
	// disk: the phone does not send a receipted one again.
	c.ManualHistorySyncDownload = true
	c.DisableManualHistorySyncReceipt = true
	// The initial app-state sync carries the address book's names.
	c.EmitAppStateEventsOnFullSync = true
	// Reporting tokens go with sent messages, as WhatsApp's own clients
	// (and mautrix-whatsapp) send them.
	c.SendReportingTokens = true
	return c
}

var devicePropsOnce sync.Once

// setDeviceProps says what the phone shows for the linked device (a
// computer named waxmpp) and asks for the history waxmpp uses after
// pairing: names, push names, LID mappings, privacy tokens and the
// message secrets of recent messages, not years of messages and
// thumbnails (whatsmeow's default asks for a 10 GB quota with no day
// limit). On-demand history requests (/history) are separate.
func setDeviceProps() {
	devicePropsOnce.Do(func() {
		p := wastore.DeviceProps
		p.Os = proto.String("waxmpp")
		p.PlatformType = waCompanionReg.DeviceProps_DESKTOP.Enum()
		p.RequireFullSync = proto.Bool(false)
		h := p.HistorySyncConfig
		h.FullSyncDaysLimit = proto.Uint32(historyDays)
		h.FullSyncSizeMbLimit = proto.Uint32(historyMB)
		h.StorageQuotaMb = proto.Uint32(historyQuotaMB)
		h.RecentSyncDaysLimit = proto.Uint32(historyDays)
		h.InitialSyncMaxMessagesPerChat = proto.Uint32(historyPerChat)
		h.ThumbnailSyncDaysLimit = proto.Uint32(1)
	})
}

// What the device asks the phone to send after pairing.
const (
	historyDays    = 30
	historyMB      = 64
	historyQuotaMB = 256
	historyPerChat = 50
)

// Logger is whatsmeow's logger interface over slog, for the device store
// (bridge/store's Devices takes one).
func Logger(l *slog.Logger) waLog.Logger { return waLogger{l} }

func newAdapter(ctx context.Context, cfg Config,
	mk func(*wastore.Device) client, fetch func(context.Context) (*wastore.WAVersionContainer, error)) (*Adapter, error) {
	a := &Adapter{
		log: cfg.Log.With("component", "whatsapp"), out: cfg.Events,
		running:      make(chan struct{}),
		devices:      cfg.Devices,
		settings:     cfg.Settings,
		tempDir:      cfg.TempDir,
		passkeys:     cfg.Passkeys,
		q:            newInbox(cfg.Inbox),
		hist:         newHistoryQueue(cfg.History),
		newClient:    mk,
		fetchVersion: fetch,
		now:          time.Now,
		aliases:      map[bridge.Alias]bool{},
		undecr:       map[bridge.MsgRef]bool{},
		syncChanged:  make(chan struct{}),
		historyIdle:  30 * time.Second,
		syncLimit:    10 * time.Minute,
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

// setClient makes dev the current device with a fresh client, and forgets
// what the previous one learned (a logout's old device, its group list).
func (a *Adapter) setClient(dev *wastore.Device) {
	c := a.newClient(dev)
	// The handler reports failure when an event could not be queued
	// durably: whatsmeow then does not acknowledge the message, and
	// WhatsApp delivers it again (decrypted from the event buffer).
	c.AddEventHandlerWithSuccessStatus(func(evt any) bool { return a.handle(c, evt) })
	a.mu.Lock()
	a.dev, a.cli = dev, c
	a.id, a.lid = types.EmptyJID, types.EmptyJID
	a.conv.dec = c
	a.groupsFetched = false
	a.phoneChecked = false
	a.sync = syncState{}
	a.mu.Unlock()
	a.learnIdentity(dev) // no whatsmeow goroutine uses dev yet
}

func (a *Adapter) client() client {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.cli
}

// learnIdentity copies the device's JIDs. whatsmeow writes them on its
// own goroutines (pairing, login, and a logout's delete); the adapter
// reads only its copy, taken when the device is new to it and on
// whatsmeow's PairSuccess and Connected, which whatsmeow dispatches after
// writing them.
func (a *Adapter) learnIdentity(dev *wastore.Device) {
	id, lid := types.EmptyJID, types.EmptyJID
	if dev.ID != nil {
		id = dev.ID.ToNonAD()
	}
	if !dev.LID.IsEmpty() {
		lid = dev.LID.ToNonAD()
	}
	a.mu.Lock()
	if a.dev == dev {
		a.id, a.lid = id, lid
	}
	a.mu.Unlock()
}

// self is the owner's phone-number JID, or empty before pairing.
func (a *Adapter) self() types.JID {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.id
}

// selfLID is the owner's LID, or empty.
func (a *Adapter) selfLID() types.JID {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.lid
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
	a.runOnce.Do(func() { close(a.running) })
	a.wg.Add(2)
	go func() { defer a.wg.Done(); a.drain(ctx) }()
	go func() { defer a.wg.Done(); a.historyLoop(ctx) }()
	defer a.wg.Wait()

	if !a.paired() {
		// Nothing to connect to until /pair: no network at all (Pair
		// fetches the version first).
		a.emit(&bridge.Status{State: bridge.NotPaired, Reason: "no linked device"})
	} else {
		a.updateVersion(ctx)
		a.connect(ctx)
		// waxmpp itself may have been down for days: tell the owner now;
		// the phone is asked once the connection is up (Connected).
		a.checkPhone(ctx)
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

// emit queues evs durably for the core, in order. An error means they are
// not on disk: the handler then reports failure, so WhatsApp delivers the
// message again.
func (a *Adapter) emit(evs ...bridge.Event) error {
	err := a.q.push(evs...)
	if err != nil {
		a.log.Error("cannot queue WhatsApp events on disk", "err", err)
	}
	return err
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
// It reports whether everything the event gave was queued durably; only
// its own writes count (a history batch failing meanwhile on another
// goroutine does not).
func (a *Adapter) handle(c client, evt any) bool {
	if a.client() != c {
		return true // a replaced (logged-out) client's late events
	}
	if done, ok := a.lifeEvent(c, evt); done {
		return ok
	}
	ctx := context.Background()
	switch e := evt.(type) {
	case *events.PushNameSetting:
		// whatsmeow announces the owner's push name with presence only;
		// right after pairing it was unknown at Connected.
		a.spawn(func(ctx context.Context) { a.sendPresence(ctx, c) })
		return true
	case *events.AppStateSyncComplete:
		a.syncStep(func(s *syncState) { s.appState[e.Name] = true })
		if e.Name == appstate.WAPatchCriticalBlock { // holds the push name
			a.spawn(func(ctx context.Context) { a.sendPresence(ctx, c) })
		}
		return true
	case *events.OfflineSyncCompleted:
		a.syncStep(func(s *syncState) { s.offline = true })
		return true
	case *events.HistorySync:
		// Only with automatic downloads (not ours).
		return true
	case *events.MediaRetry:
		return a.emitConverted(ctx, a.mediaRetry(e)) == nil
	case *events.Message:
		if n := e.Message.GetProtocolMessage().GetHistorySyncNotification(); n != nil {
			return a.historyNotification(c, e, n)
		}
		if a.fromPhone(e.Info.MessageSource) {
			a.sawPhone(e.Info.Timestamp)
		}
	case *events.Receipt:
		if a.fromPhone(e.MessageSource) {
			a.sawPhone(e.Timestamp)
		}
	}
	return a.emitConverted(ctx, a.conv.convert(ctx, evt)) == nil
}

// lifeEvent handles the connection's life events; done is false for
// other events.
func (a *Adapter) lifeEvent(c client, evt any) (done, ok bool) {
	var err error
	switch e := evt.(type) {
	case *events.Connected:
		a.learnIdentity(a.device()) // the login may have brought the LID
		err = a.connected(c)
	case *events.Disconnected:
		err = a.emit(&bridge.Status{State: bridge.Disconnected, Reason: "connection lost, reconnecting"})
	case *events.KeepAliveTimeout:
		err = a.emit(&bridge.Status{State: bridge.Disconnected, Reason: fmt.Sprintf("no answer to %d keep-alive pings", e.ErrorCount)})
	case *events.KeepAliveRestored:
		err = a.emit(&bridge.Status{State: bridge.Connected, Reason: "keep-alive pings answered again"})
	case *events.LoggedOut:
		a.loggedOut(c, loggedOutStatus(e.Reason))
	case *events.StreamReplaced:
		err = a.emit(&bridge.Status{State: bridge.StreamReplaced, Reason: "another connection with the same link replaced this one"})
	case *events.ClientOutdated:
		// whatsmeow turns a 405 connect failure into this event (never
		// into a ConnectFailure).
		err = a.emit(outdated())
		a.spawn(func(ctx context.Context) { a.retryOutdated(ctx, c) })
	case *events.TemporaryBan:
		err = a.emit(&bridge.Status{State: bridge.TempBanned, Until: a.now().Add(e.Expire).UTC(),
			Reason: banWords(e.Code)})
		// whatsmeow does not reconnect after a ban; try again when it ends.
		a.spawn(func(ctx context.Context) { a.reconnectAfter(ctx, c, e.Expire+time.Minute) })
	case *events.ConnectFailure:
		// Logouts, bans and 405 come as their own events.
		if !e.Reason.IsLoggedOut() {
			err = a.emit(&bridge.Status{State: bridge.Disconnected, Reason: strings.TrimSpace(fmt.Sprintf("connection refused: %s %s", e.Reason.String(), e.Message))})
		}
	case *events.PairSuccess:
		a.mu.Lock()
		a.pairedAs = e
		a.id, a.lid = e.ID.ToNonAD(), e.LID.ToNonAD()
		a.mu.Unlock()
		a.sawPhone(a.now())
	default:
		return false, true
	}
	return true, err == nil
}

// connected handles Connected: the owner's identities, presence, and once
// per client every group's name; then the phone check, which may send the
// phone a wake-up now that the login is up.
func (a *Adapter) connected(c client) error {
	err := a.emit(&bridge.Status{State: bridge.Connected, Reason: "connected"})
	a.spawn(func(ctx context.Context) { a.sendPresence(ctx, c) })
	if err2 := a.emitConverted(context.Background(), alias(a.selfLID(), a.self())); err == nil {
		err = err2
	}
	a.mu.Lock()
	first := !a.groupsFetched
	a.groupsFetched = true
	check := !a.phoneChecked
	a.phoneChecked = true
	a.mu.Unlock()
	if first {
		a.spawn(func(ctx context.Context) { a.fetchGroups(ctx, c) })
	}
	if check {
		a.spawn(a.checkPhone)
	}
	return err
}

// sendPresence says "unavailable", so that the phone keeps notifying. It
// also tells WhatsApp the owner's push name, which others see as the
// sender's name: whatsmeow refuses it (ErrNoPushName) until the push name
// is known, which after pairing comes with the app-state sync.
func (a *Adapter) sendPresence(ctx context.Context, c client) {
	if err := c.SendPresence(ctx, types.PresenceUnavailable); err != nil {
		a.log.Debug("send presence", "err", err)
	}
}

// fetchGroups tells the core every group's name and the identities of
// its members, once per client: names otherwise arrive only with changes.
func (a *Adapter) fetchGroups(ctx context.Context, c client) {
	gs, err := c.GetJoinedGroups(ctx)
	if err != nil {
		a.log.Info("fetch groups", "err", err)
		a.mu.Lock()
		if a.cli == c {
			a.groupsFetched = false // try again at the next connect
		}
		a.mu.Unlock()
		return
	}
	for _, g := range gs {
		evs := []bridge.Event{&bridge.ChatInfo{Chat: chatID(g.JID), Kind: bridge.Group, Name: g.Name}}
		for _, p := range g.Participants {
			evs = append(evs, alias(p.LID, p.PhoneNumber)...)
		}
		_ = a.emitConverted(ctx, evs) // logged; the next connect's fetch repeats them
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
func (a *Adapter) emitConverted(ctx context.Context, evs []bridge.Event) error {
	return a.emit(a.prepare(ctx, evs)...)
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
// directions), which whatsmeow may not have seen (app state, group
// lists). These come from WhatsApp's servers; a mapping in a history
// sync is checked first (historyMapping).
func (a *Adapter) putLID(ctx context.Context, e *bridge.Alias) {
	lid, err1 := types.ParseJID(string(e.LID))
	pn, err2 := types.ParseJID(string(e.Phone))
	if err1 != nil || err2 != nil {
		return
	}
	lids := a.device().LIDs
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
	lids := a.device().LIDs
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

// loggedOutStatus is WhatsApp's logout reason as the owner is told it (the
// core adds what to do). The codes are WhatsApp Web's (whatsmeow's
// events.ConnectFailureReason): 401 unlinked, 403 LOCKED (whatsmeow sees
// it after bans and after WhatsApp moved to another phone), 406 BANNED.
func loggedOutStatus(r events.ConnectFailureReason) *bridge.Status {
	s := &bridge.Status{State: bridge.LoggedOut}
	switch r {
	case events.ConnectFailureLoggedOut:
		s.Reason = "the device was removed from Linked devices on the phone"
	case events.ConnectFailureMainDeviceGone:
		s.Reason = "WhatsApp locked this account's link: the account may be banned, or its WhatsApp moved to another phone"
	case events.ConnectFailureUnknownLogout:
		s.State, s.Reason = bridge.Banned, "WhatsApp has banned this account"
	default:
		s.Reason = r.String()
	}
	return s
}

// loggedOut forgets the device (whatsmeow already deleted its keys) and
// makes a fresh one, so that /pair works again. Only the first call for
// client c does anything: a logout that waxmpp started (/logout) may also
// bring whatsmeow's LoggedOut event.
func (a *Adapter) loggedOut(c client, s *bridge.Status) {
	a.mu.Lock()
	current := a.cli == c
	a.mu.Unlock()
	if !current {
		return
	}
	a.setClient(a.devices.NewDevice())
	a.mu.Lock()
	a.phoneWarn = false
	a.mu.Unlock()
	if err := a.hist.clear(); err != nil {
		a.log.Warn("clear the history queue", "err", err)
	}
	_ = a.emit(s) // logged; the presence the core shows follows the next status
	a.spawn(func(context.Context) { c.Disconnect() })
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
