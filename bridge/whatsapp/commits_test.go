//lint:file-ignore SA1019 the tests drive whatsmeow's own encryption and handlers, as its socket and SendMessage would (DangerousInternals)

package whatsapp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mau.fi/libsignal/keys/prekey"
	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/proto/waE2E"
	wastore "go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"
	"google.golang.org/protobuf/proto"

	"waxmpp/bridge"
	"waxmpp/bridge/store"
)

// pushWatch tells when whatsmeow's push-name update (a goroutine of its
// own, message.go's handleEncryptedMessage) has been stored.
type pushWatch struct {
	wastore.ContactStore
	done chan struct{}
}

func (w *pushWatch) PutPushName(ctx context.Context, user types.JID, name string) (bool, string, error) {
	defer func() { w.done <- struct{}{} }()
	return w.ContactStore.PutPushName(ctx, user, name)
}

// realMessage is what a real account's contact sends nowadays: the
// sender's push name and LID in the node (whatsmeow stores both for every
// message), a message secret in the message (stored for reactions, votes
// and edits that name it).
func realMessage(t *testing.T, p *peer, b *bundleArg, id, text string) waBinary.Node {
	t.Helper()
	m := &waE2E.Message{
		Conversation:       proto.String(text),
		MessageContextInfo: &waE2E.MessageContextInfo{MessageSecret: []byte(strings.Repeat("s", 32))},
	}
	return p.message(t, ownDev, b.b, id, t0, m, waBinary.Attrs{"notify": "Alice", "sender_lid": aliceLID})
}

// bundleArg is a prekey bundle for the first message only (nil after).
type bundleArg struct{ b *prekey.Bundle }

// TestLoneMessageCommits counts the commits of one message from a real
// account, through whatsmeow's own handling of the encrypted node on the
// real state file, to the core's commit: bbolt's own transaction count
// (store.DB.Commits). whatsmeow stores the sender's LID mapping and push
// name (unchanged: no commit), commits the decryption with the buffered
// plaintext, stores the message secret; the handler's inbox write; the
// cleared plaintext and the inbox removal go with the core's commit.
// Before: 7 (the unchanged LID mapping and push name, and the clear, each
// committed on its own).
func TestLoneMessageCommits(t *testing.T) {
	var dev *wastore.Device
	h := newRealHarness(t, "", func(db *store.DB) { dev = ownDevice(t, db, "Owner") })
	h.a.q.q = h.inbox.Queue // the store's queue, as cmd/waxmpp wires it
	watch := &pushWatch{ContactStore: h.client().Store.Contacts, done: make(chan struct{}, 8)}
	h.client().Store.Contacts = watch
	outbox := h.db.Queue("xmpp-out") // stands for the core's commit
	h.run()
	p := newPeer(t, alice)

	// handle waits for the message id and, if name is set, the push
	// name's change (announced after whatsmeow stored it); the core's
	// commit, then Handled.
	handle := func(id, name string) {
		gotMsg, gotName := false, name == ""
		for !gotMsg || !gotName {
			var e bridge.Event
			select {
			case e = <-h.events:
			case <-time.After(5 * time.Second):
				t.Fatalf("waiting for %s: no event", id)
			}
			switch e := e.(type) {
			case *bridge.Message:
				if e.Ref.ID == id {
					if _, err := outbox.Enqueue([]byte(e.Text)); err != nil {
						t.Fatal(err)
					}
					gotMsg = true
				}
			case *bridge.ContactInfo:
				gotName = gotName || e.PushName == name
			}
			h.a.Handled(e)
		}
	}
	c0 := h.db.Commits()
	h.feed(realMessage(t, p, &bundleArg{bundle(t, dev)}, "FIRST", "hello"))
	handle("FIRST", "Alice")
	first := h.db.Commits() - c0
	for len(watch.done) > 0 {
		<-watch.done
	}

	lone := realMessage(t, p, &bundleArg{}, "LONE", "a lone message")
	c0 = h.db.Commits()
	h.feed(lone)
	select {
	case <-watch.done: // the unchanged push name
	case <-time.After(5 * time.Second):
		t.Fatal("whatsmeow never stored the push name")
	}
	handle("LONE", "")
	n := h.db.Commits() - c0
	t.Logf("commits: %d for the first message (a new session, LID and push name), %d for the next", first, n)
	if n != 4 {
		t.Errorf("a lone message cost %d commits, want 4 (decryption, message secret, inbox, core)", n)
	}

	// The plaintext is cleared on disk by the core's commit: in a copy
	// of the file the message is still in the inbox (its removal waits
	// for the next commit) but not in whatsmeow's buffer, so the
	// server's redelivery is not dispatched again.
	cp := crashCopy(t, h.db.Path())
	h2 := newRealHarness(t, cp, nil)
	h2.run()
	h2.feed(lone) // the server had no ack
	if n := h2.a.Pending(); n != 1 {
		t.Errorf("%d events in the copy's inbox after the redelivery, want 1 (the one whose removal was not on disk)", n)
		for range n {
			t.Logf("%#v", h2.next())
		}
	}
}

// crashCopy copies the state file as it is on disk now (what a power cut
// would leave: bbolt writes only committed transactions).
func crashCopy(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cp := filepath.Join(t.TempDir(), "copy.db")
	if err := os.WriteFile(cp, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return cp
}

// TestRedeliveryAfterLostClear: the process dies after the handler wrote
// the message to the inbox but before the cleared plaintext went to disk
// (it waits for the next commit); WhatsApp had no ack and delivers the
// message again. whatsmeow finds the plaintext in its buffer and
// dispatches it again, so the message is in the inbox twice; the real
// core relays it once and drops the second by its WhatsApp id.
//
// Something of whatsmeow's own may commit right after the message (a
// store write of one of its goroutines) and take the cleared plaintext to
// disk before the copy; the redelivery is then dropped as handled, rightly
// (the core got the message once), but the case under test did not
// happen, so the test makes it again with another message, a few times.
func TestRedeliveryAfterLostClear(t *testing.T) {
	var dev *wastore.Device
	h := newRealHarness(t, "", func(db *store.DB) { dev = ownDevice(t, db, "Owner") })
	h.a.q.q = h.inbox.Queue
	h.run()
	p := newPeer(t, alice)
	for try := 1; ; try++ {
		id := fmt.Sprintf("AGAIN%d", try)
		node := p.message(t, ownDev, bundle(t, dev), id, t0, plain("only once "+id), nil)
		h.feed(node) // nobody reads h.events: nothing of ours commits after the inbox write
		cp := crashCopy(t, h.db.Path())
		if seen := redeliver(t, cp, node, id); seen == 2 {
			return
		}
		t.Logf("try %d: the cleared plaintext was on disk before the copy; the redelivery was dropped as handled", try)
		if try == 5 {
			t.Fatal("in 5 tries the cleared plaintext always reached the disk before the copy: the case never happened")
		}
	}
}

// redeliver starts the adapter and the real core on the crash copy cp,
// lets the server deliver node (the message id) again, and returns how
// many times the core got it, once the inbox is empty: 2 when the copy
// still held the plaintext (dispatched again from whatsmeow's buffer), 1
// when it held the clear. The owner must have it once either way.
func redeliver(t *testing.T, cp string, node waBinary.Node, id string) int {
	t.Helper()
	h2 := newRealHarness(t, cp, nil)
	h2.a.q.q = h2.inbox.Queue
	x := &sentXMPP{}
	core, err := bridge.NewCore(bridge.CoreConfig{
		WhatsApp: h2.a, XMPP: x, Store: h2.db, Events: h2.counted(), Owner: make(chan bridge.OwnerEvent),
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	coreDone := make(chan error, 1)
	go func() { coreDone <- core.Run(ctx) }()
	defer func() { cancel(); <-coreDone; h2.stop() }()
	h2.run()
	h2.feed(node) // the server delivers the unacknowledged message again
	// whatsmeow dispatches the redelivery before feed returns, so once the
	// inbox is empty (the core acknowledges a message from a person it did
	// not know once it saved the names, 5 s later) the count is final.
	deadline := time.Now().Add(30 * time.Second)
	for h2.seen(id) == 0 || h2.a.Pending() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("after 30 s the core got the message %d times, %d events wait in the inbox", h2.seen(id), h2.a.Pending())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := x.bodies("only once " + id); got != 1 {
		t.Errorf("the owner got the message %d times, want 1", got)
	}
	return h2.seen(id)
}

// counted forwards the adapter's events to the core and counts messages
// by id.
func (h *realHarness) counted() <-chan bridge.Event {
	out := make(chan bridge.Event)
	done := make(chan struct{})
	h.t.Cleanup(func() { close(done) })
	go func() {
		for {
			var e bridge.Event
			select {
			case e = <-h.events:
			case <-done:
				return
			}
			if m, ok := e.(*bridge.Message); ok {
				h.mu.Lock()
				if h.msgs == nil {
					h.msgs = map[string]int{}
				}
				h.msgs[m.Ref.ID]++
				h.mu.Unlock()
			}
			select {
			case out <- e:
			case <-done:
				return
			}
		}
	}()
	return out
}

func (h *realHarness) seen(id string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.msgs[id]
}

// sentXMPP is the owner's side for the core: it records what is sent.
type sentXMPP struct {
	mu   sync.Mutex
	sent []bridge.Outgoing
	n    int
}

func (x *sentXMPP) Send(msgs ...bridge.Outgoing) ([]string, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	ids := make([]string, len(msgs))
	for i := range msgs {
		x.n++
		if msgs[i].ID == "" {
			msgs[i].ID = "x" + string(rune('a'+x.n))
		}
		ids[i] = msgs[i].ID
		x.sent = append(x.sent, msgs[i])
	}
	return ids, nil
}

func (x *sentXMPP) bodies(sub string) int {
	x.mu.Lock()
	defer x.mu.Unlock()
	n := 0
	for _, m := range x.sent {
		if strings.Contains(m.Body, sub) {
			n++
		}
	}
	return n
}

func (x *sentXMPP) SendNow(bridge.Outgoing) error   { return nil }
func (x *sentXMPP) SetPresence(show, status string) {}
func (x *sentXMPP) Upload(context.Context, string, string, int64, io.Reader) (string, error) {
	return "", errors.New("no upload in tests")
}
func (x *sentXMPP) Stats() (bridge.XMPPStats, error) { return bridge.XMPPStats{Connected: true}, nil }
func (x *sentXMPP) Handled(bridge.OwnerEvent)        {}

// TestSendEncryptionCommits: whatsmeow's encryption of one message for a
// contact's devices (encryptMessageForDevices, what SendMessage runs)
// saves every device's identity (libsignal's SessionCipher.Encrypt),
// nearly always unchanged, then the sessions together (PutCachedSessions):
// one commit, where each identity was one more.
func TestSendEncryptionCommits(t *testing.T) {
	h := newRealHarness(t, "", func(db *store.DB) { ownDevice(t, db, "Owner") })
	c := h.client().DangerousInternals()
	ctx := context.Background()
	var devs []types.JID
	for i := range 3 {
		jid := types.NewADJID(alice.User, 0, uint8(i))
		p := newPeer(t, jid)
		if _, _, err := c.EncryptMessageForDevice(ctx, []byte("hello"), jid, bundle(t, p.cli.Store), waBinary.Attrs{}, nil); err != nil {
			t.Fatal(err)
		}
		devs = append(devs, jid)
	}
	c0 := h.db.Commits()
	nodes, _, err := c.EncryptMessageForDevices(ctx, devs, "SEND1", []byte("a lone message"), nil, waBinary.Attrs{})
	if err != nil || len(nodes) != len(devs) {
		t.Fatalf("encrypted for %d of %d devices: %v", len(nodes), len(devs), err)
	}
	n := h.db.Commits() - c0
	t.Logf("encrypting one message for %d devices: %d commits", len(devs), n)
	if n != 1 {
		t.Errorf("%d commits; want 1 (the sessions)", n)
	}
}
