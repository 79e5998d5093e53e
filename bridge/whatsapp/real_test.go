//lint:file-ignore SA1019 the tests feed nodes to whatsmeow's own handlers, as its socket would (DangerousInternals)

package whatsapp

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"go.mau.fi/libsignal/ecc"
	"go.mau.fi/libsignal/keys/identity"
	"go.mau.fi/libsignal/keys/prekey"
	"go.mau.fi/libsignal/util/optional"
	"go.mau.fi/whatsmeow"
	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/proto/waAdv"
	"go.mau.fi/whatsmeow/proto/waE2E"
	wastore "go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	"google.golang.org/protobuf/proto"

	"waxmpp/bridge"
	"waxmpp/bridge/store"
)

// realClient is a real *whatsmeow.Client with the adapter's settings
// (newWhatsmeow) that never touches the network: it has no socket, so
// whatsmeow's own acks and receipts fail quietly; Connect only marks it
// connected (offline: it fails as whatsmeow's Connect does with
// InitialAutoReconnect, by a Disconnected event); the adapter's sends are
// recorded. Tests feed it nodes through whatsmeow's own handlers.
type realClient struct {
	*whatsmeow.Client

	mu        sync.Mutex
	connected bool
	loggedIn  bool
	offline   bool
	peer      []*waE2E.Message
	passkeys  []*types.WebAuthnResponse
	presence  []error // what whatsmeow's SendPresence returned, per call
	receipts  []string
	deleted   []string
}

func (r *realClient) Connect() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.offline {
		go r.DangerousInternals().DispatchEvent(&events.Disconnected{})
		return nil
	}
	r.connected = true
	return nil
}

func (r *realClient) Disconnect() {
	r.mu.Lock()
	r.connected, r.loggedIn = false, false
	r.mu.Unlock()
	r.Client.Disconnect()
}

func (r *realClient) IsConnected() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.connected
}

// IsLoggedIn is true once the test logged the client in (login).
func (r *realClient) IsLoggedIn() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.loggedIn
}

// login is what whatsmeow does on the server's connect success: logged
// in, then the Connected event.
func (r *realClient) login() {
	r.mu.Lock()
	r.connected, r.loggedIn = true, true
	r.mu.Unlock()
	r.DangerousInternals().DispatchEvent(&events.Connected{})
}

// SendPeerMessage records peer messages; before login whatsmeow has no
// connection to send them on.
func (r *realClient) SendPeerMessage(ctx context.Context, m *waE2E.Message) (whatsmeow.SendResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.loggedIn {
		return whatsmeow.SendResponse{}, whatsmeow.ErrNotConnected
	}
	r.peer = append(r.peer, m)
	return whatsmeow.SendResponse{ID: "PEER"}, nil
}

func (r *realClient) peers() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.peer)
}

func (r *realClient) SendPasskeyResponse(ctx context.Context, resp *types.WebAuthnResponse) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.passkeys = append(r.passkeys, resp)
	return nil
}

// SendPresence runs whatsmeow's own (which checks the push name, then
// fails for want of a socket) and records its answer.
func (r *realClient) SendPresence(ctx context.Context, p types.Presence) error {
	err := r.Client.SendPresence(ctx, p)
	r.mu.Lock()
	r.presence = append(r.presence, err)
	r.mu.Unlock()
	return err
}

func (r *realClient) SendProtocolMessageReceipt(ctx context.Context, id types.MessageID, typ types.ReceiptType) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.receipts = append(r.receipts, string(typ)+" "+id)
	return nil
}

func (r *realClient) DeleteMedia(ctx context.Context, mt whatsmeow.MediaType, path string, enc []byte, handle string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.deleted = append(r.deleted, path)
	return nil
}

func (r *realClient) DownloadMediaWithPathToFile(ctx context.Context, p string, enc, sha, key []byte, mt whatsmeow.MediaType, mms string, noHash bool, file whatsmeow.File) error {
	return errors.New("no media server in tests")
}

// sentPresence counts SendPresence calls whatsmeow let past its push-name
// check (they fail later, for want of a socket).
func (r *realClient) sentPresence() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, err := range r.presence {
		if !errors.Is(err, whatsmeow.ErrNoPushName) {
			n++
		}
	}
	return n
}

// realHarness is an adapter on a temporary state file with real clients.
type realHarness struct {
	t       *testing.T
	a       *Adapter
	db      *store.DB
	path    string
	events  chan bridge.Event
	inbox   *faultQueue
	mu      sync.Mutex
	clients []*realClient
	cancel  context.CancelFunc
	done    chan error
	offline bool
	msgs    map[string]int // messages by id (counted)
}

// faultQueue is a Queue whose Enqueue can be made to fail (a full or
// failing disk) or to run a hook first.
type faultQueue struct {
	Queue
	mu     sync.Mutex
	fail   int            // the next fail Enqueue calls fail
	before func([][]byte) // runs before each Enqueue
}

var errDiskFull = errors.New("disk full (test)")

func (q *faultQueue) Enqueue(data ...[]byte) ([]uint64, error) {
	q.mu.Lock()
	before := q.before
	fail := q.fail > 0
	if fail {
		q.fail--
	}
	q.mu.Unlock()
	if before != nil {
		before(data)
	}
	if fail {
		return nil, errDiskFull
	}
	return q.Queue.Enqueue(data...)
}

// ownDevice makes the linked device (device 7 of the owner's account) in
// db, as whatsmeow stores it after pairing.
func ownDevice(t testing.TB, db *store.DB, pushName string) *wastore.Device {
	t.Helper()
	devs := db.Devices(nil)
	d := devs.NewDevice()
	id := types.NewADJID(own.User, 0, 7)
	d.ID = &id
	d.LID = types.NewADJID(ownLID.User, 0, 7)
	d.LID.Server = types.HiddenUserServer
	d.PushName = pushName
	d.Account = &waAdv.ADVSignedDeviceIdentity{Details: []byte{1}, AccountSignatureKey: make([]byte, 32),
		AccountSignature: make([]byte, 64), DeviceSignature: make([]byte, 64)}
	if err := devs.PutDevice(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	return d
}

// newRealHarness opens the state file at path ("" for a new one); setup,
// if set, prepares it first (the linked device).
func newRealHarness(t *testing.T, path string, setup func(*store.DB)) *realHarness {
	t.Helper()
	if path == "" {
		path = filepath.Join(t.TempDir(), "waxmpp.db")
	}
	db, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if setup != nil {
		setup(db)
	}
	h := &realHarness{t: t, db: db, path: path, events: make(chan bridge.Event)}
	t.Cleanup(func() { h.stop(); db.Close() })
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg := testConfig(db, log, h.events)
	h.inbox = &faultQueue{Queue: cfg.Inbox}
	cfg.Inbox = h.inbox
	h.a, err = newAdapter(context.Background(), cfg, func(d *wastore.Device) client {
		h.mu.Lock()
		defer h.mu.Unlock()
		c := &realClient{Client: newWhatsmeow(d, waLogger{log}), offline: h.offline}
		h.clients = append(h.clients, c)
		return c
	}, func(context.Context) (*wastore.WAVersionContainer, error) { return nil, errors.New("offline") })
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func (h *realHarness) client() *realClient {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.clients[len(h.clients)-1]
}

func (h *realHarness) run() {
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	h.done = make(chan error, 1)
	go func() { h.done <- h.a.Run(ctx) }()
	// whatsmeow dispatches events only inside Run, whose context the
	// adapter's goroutines (presence at Connected) start from: a test's
	// login before Run has begun would have them dropped.
	select {
	case <-h.a.running:
	case <-time.After(5 * time.Second):
		h.t.Fatal("Run did not begin")
	}
}

func (h *realHarness) stop() {
	if h.cancel == nil {
		return
	}
	h.cancel()
	select {
	case <-h.done:
	case <-time.After(5 * time.Second):
		h.t.Error("Run did not return")
	}
	h.cancel = nil
}

// next returns the next event the core would get, and acknowledges it.
func (h *realHarness) next() bridge.Event {
	h.t.Helper()
	select {
	case e := <-h.events:
		h.a.Handled(e)
		return e
	case <-time.After(5 * time.Second):
		h.t.Fatal("no event")
		return nil
	}
}

// nextMessage skips to the next Message (aliases, statuses…), failing
// after wait.
func (h *realHarness) nextMessage(wait time.Duration) (*bridge.Message, bool) {
	h.t.Helper()
	deadline := time.After(wait)
	for {
		select {
		case e := <-h.events:
			h.a.Handled(e)
			if m, ok := e.(*bridge.Message); ok {
				return m, true
			}
		case <-deadline:
			return nil, false
		}
	}
}

// feed hands whatsmeow a message node, as its socket would after reading
// it off the wire (the node goes through whatsmeow's binary codec).
func (h *realHarness) feed(n waBinary.Node) {
	h.t.Helper()
	b, err := waBinary.Marshal(n)
	if err != nil {
		h.t.Fatal(err)
	}
	h.feedRaw(b)
}

// feedRaw is feed for a node already encoded (waBinary.Marshal).
func (h *realHarness) feedRaw(b []byte) {
	h.t.Helper()
	data, err := waBinary.Unpack(b)
	if err != nil {
		h.t.Fatal(err)
	}
	node, err := waBinary.Unmarshal(data)
	if err != nil {
		h.t.Fatal(err)
	}
	h.client().DangerousInternals().HandleEncryptedMessage(context.Background(), node)
}

// peer is another WhatsApp device (a contact's phone, or the owner's own)
// that encrypts messages for the linked device with Signal, through
// whatsmeow's own encryption, on a state file of its own.
type peer struct {
	jid types.JID
	cli *whatsmeow.Client
}

func newPeer(t testing.TB, jid types.JID) *peer {
	t.Helper()
	db, err := store.Open(filepath.Join(t.TempDir(), "peer.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	devs := db.Devices(nil)
	d := devs.NewDevice()
	d.ID = &jid
	d.Account = &waAdv.ADVSignedDeviceIdentity{Details: []byte{1}, AccountSignatureKey: make([]byte, 32),
		AccountSignature: make([]byte, 64), DeviceSignature: make([]byte, 64)}
	if err := devs.PutDevice(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	return &peer{jid: jid, cli: whatsmeow.NewClient(d, nil)}
}

// bundle is the linked device's prekey bundle, as WhatsApp's servers
// hand it to a sender that has no session yet.
func bundle(t testing.TB, d *wastore.Device) *prekey.Bundle {
	t.Helper()
	pk, err := d.PreKeys.GenOnePreKey(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return prekey.NewBundle(d.RegistrationID, uint32(d.ID.Device), optional.NewOptionalUint32(pk.KeyID), d.SignedPreKey.KeyID,
		ecc.NewDjbECPublicKey(*pk.Pub), ecc.NewDjbECPublicKey(*d.SignedPreKey.Pub), *d.SignedPreKey.Signature,
		identity.NewKey(ecc.NewDjbECPublicKey(*d.IdentityKey.Pub)))
}

// message encrypts m for device to (a prekey message when b is set, else
// on the session the first one made) and wraps it in the <message> node
// WhatsApp's server delivers: from the sender, in chat (empty: a direct
// chat with the sender).
func (p *peer) message(t testing.TB, to types.JID, b *prekey.Bundle, id string, at time.Time, m *waE2E.Message, attrs waBinary.Attrs) waBinary.Node {
	t.Helper()
	plain, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	enc, _, err := p.cli.DangerousInternals().EncryptMessageForDevice(context.Background(), plain, to, b, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	a := waBinary.Attrs{"from": p.jid, "id": id, "t": strconv.FormatInt(at.Unix(), 10), "type": "text"}
	for k, v := range attrs {
		a[k] = v
	}
	return waBinary.Node{Tag: "message", Attrs: a, Content: []waBinary.Node{*enc}}
}
