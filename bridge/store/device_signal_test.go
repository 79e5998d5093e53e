package store

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"go.mau.fi/libsignal/ecc"
	"go.mau.fi/libsignal/groups"
	"go.mau.fi/libsignal/keys/identity"
	"go.mau.fi/libsignal/keys/prekey"
	"go.mau.fi/libsignal/protocol"
	"go.mau.fi/libsignal/session"
	"go.mau.fi/libsignal/util/optional"
	"go.mau.fi/whatsmeow/proto/waAdv"
	wastore "go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"
)

var ser = wastore.SignalProtobufSerializer

// peer is one side of a conversation: a device in its own state file.
type peer struct {
	t    *testing.T
	path string
	jid  types.JID
	db   *DB
	dev  *wastore.Device
}

func newPeer(t *testing.T, jid string) *peer {
	p := &peer{t: t, path: filepath.Join(t.TempDir(), "waxmpp.db"), jid: mustJID(jid)}
	p.open()
	dev := p.db.Devices(nil).NewDevice()
	dev.ID = &p.jid
	dev.Account = &waAdv.ADVSignedDeviceIdentity{
		Details: []byte("details"), AccountSignature: make([]byte, 64),
		AccountSignatureKey: make([]byte, 32), DeviceSignature: make([]byte, 64),
	}
	if err := dev.Save(context.Background()); err != nil {
		t.Fatal(err)
	}
	p.dev = dev
	return p
}

func (p *peer) open() {
	db, err := Open(p.path, Options{})
	if err != nil {
		p.t.Fatal(err)
	}
	p.db = db
	p.t.Cleanup(func() { p.db.Close() })
}

// reopen closes the file and loads the device back from it.
func (p *peer) reopen() {
	if err := p.db.Close(); err != nil {
		p.t.Fatal(err)
	}
	p.open()
	dev, err := p.db.Devices(nil).GetDevice(context.Background(), p.jid)
	if err != nil || dev == nil {
		p.t.Fatalf("reopen %s: %v %v", p.jid, dev, err)
	}
	p.dev = dev
}

func (p *peer) addr() *protocol.SignalAddress { return p.jid.SignalAddress() }

// bundle is what the server hands out for p: one pre-key plus the signed
// pre-key, as whatsmeow's prekeys.go builds it.
func (p *peer) bundle(ctx context.Context) *prekey.Bundle {
	pks, err := p.dev.PreKeys.GetOrGenPreKeys(ctx, 1)
	if err != nil {
		p.t.Fatal(err)
	}
	if err := p.dev.PreKeys.MarkPreKeysAsUploaded(ctx, pks[0].KeyID); err != nil {
		p.t.Fatal(err)
	}
	spk := p.dev.SignedPreKey
	return prekey.NewBundle(p.dev.RegistrationID, uint32(p.jid.Device),
		optional.NewOptionalUint32(pks[0].KeyID), spk.KeyID,
		ecc.NewDjbECPublicKey(*pks[0].Pub), ecc.NewDjbECPublicKey(*spk.Pub), *spk.Signature,
		identity.NewKey(ecc.NewDjbECPublicKey(*p.dev.IdentityKey.Pub)))
}

func (p *peer) cipher(to *peer) *session.Cipher {
	return session.NewCipher(session.NewBuilderFromSignal(p.dev, to.addr(), ser), to.addr())
}

func (p *peer) encrypt(ctx context.Context, to *peer, text string) protocol.CiphertextMessage {
	ct, err := p.cipher(to).Encrypt(ctx, []byte(text))
	if err != nil {
		p.t.Fatalf("%s encrypt to %s: %v", p.jid, to.jid, err)
	}
	return ct
}

// decrypt does what whatsmeow's decryptDM and bufferedDecrypt do: decrypt
// and buffer the plaintext in one DoDecryptionTxn. fail makes the function
// fail after decrypting, which must roll the ratchet back.
func (p *peer) decrypt(ctx context.Context, from *peer, ct protocol.CiphertextMessage, fail bool) (string, error) {
	raw := ct.Serialize()
	hash := sha256.Sum256(raw)
	var plain []byte
	err := p.dev.EventBuffer.DoDecryptionTxn(ctx, func(ctx context.Context) error {
		var err error
		c := p.cipher(from)
		switch ct.Type() {
		case protocol.PREKEY_TYPE:
			msg, perr := protocol.NewPreKeySignalMessageFromBytes(raw, ser.PreKeySignalMessage, ser.SignalMessage)
			if perr != nil {
				return perr
			}
			plain, err = c.DecryptMessage(ctx, msg)
		case protocol.WHISPER_TYPE:
			msg, perr := protocol.NewSignalMessageFromBytes(raw, ser.SignalMessage)
			if perr != nil {
				return perr
			}
			plain, err = c.Decrypt(ctx, msg)
		default:
			return fmt.Errorf("type %d", ct.Type())
		}
		if err != nil {
			return err
		}
		if err := p.dev.EventBuffer.PutBufferedEvent(ctx, hash, plain, time.Now()); err != nil {
			return err
		}
		if fail {
			return errRollBack
		}
		return nil
	})
	return string(plain), err
}

var errRollBack = errors.New("roll back")

func TestDeviceSignalRoundTrip(t *testing.T) {
	ctx := context.Background()
	alice := newPeer(t, "491701111111:2@s.whatsapp.net")
	bob := newPeer(t, "491702222222:5@s.whatsapp.net")

	b := bob.bundle(ctx)
	if err := session.NewBuilderFromSignal(alice.dev, bob.addr(), ser).ProcessBundle(ctx, b); err != nil {
		t.Fatal(err)
	}

	n := 0
	send := func(from, to *peer) {
		t.Helper()
		n++
		text := fmt.Sprintf("message %d from %s", n, from.jid.User)
		ct := from.encrypt(ctx, to, text)
		// A decryption rolled back must leave the ratchet where it was...
		if _, err := to.decrypt(ctx, from, ct, true); !errors.Is(err, errRollBack) {
			t.Fatalf("message %d: rolled-back decrypt: %v", n, err)
		}
		// ...so the real one works,
		got, err := to.decrypt(ctx, from, ct, false)
		if err != nil || got != text {
			t.Fatalf("message %d: got %q, %v; want %q", n, got, err, text)
		}
		// and the buffered plaintext survived the commit,
		hash := sha256.Sum256(ct.Serialize())
		if ev, err := to.dev.EventBuffer.GetBufferedEvent(ctx, hash); err != nil || ev == nil || string(ev.Plaintext) != text {
			t.Fatalf("message %d: buffered %v, %v", n, ev, err)
		}
		// and the ratchet moved on: the same message cannot be decrypted
		// again (the stored session really was updated).
		if _, err := to.decrypt(ctx, from, ct, false); err == nil {
			t.Fatalf("message %d decrypted twice", n)
		}
	}

	send(alice, bob)
	if pk, err := bob.dev.PreKeys.GetPreKey(ctx, b.PreKeyID().Value); err != nil || pk != nil {
		t.Errorf("used pre-key still stored: %v %v", pk, err)
	}
	for range 3 {
		send(bob, alice)
		send(alice, bob)
	}
	send(alice, bob) // several in a row from one side
	send(alice, bob)

	alice.reopen()
	bob.reopen()
	for range 3 {
		send(bob, alice)
		send(alice, bob)
	}
	alice.reopen()
	send(alice, bob)
	send(bob, alice)

	if has, err := alice.dev.Sessions.HasSession(ctx, bob.addr().String()); err != nil || !has {
		t.Errorf("alice has no session with bob: %v %v", has, err)
	}
}

func TestDeviceSignalGroup(t *testing.T) {
	ctx := context.Background()
	alice := newPeer(t, "491701111111:2@s.whatsapp.net")
	bob := newPeer(t, "491702222222:5@s.whatsapp.net")
	group := "120363000000000001@g.us"
	name := protocol.NewSenderKeyName(group, alice.addr())

	skdm, err := groups.NewGroupSessionBuilder(alice.dev, ser).Create(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	dist, err := protocol.NewSenderKeyDistributionMessageFromBytes(skdm.Serialize(), ser.SenderKeyDistributionMessage)
	if err != nil {
		t.Fatal(err)
	}
	if err := groups.NewGroupSessionBuilder(bob.dev, ser).Process(ctx, name, dist); err != nil {
		t.Fatal(err)
	}

	n := 0
	send := func() {
		t.Helper()
		n++
		text := fmt.Sprintf("group message %d", n)
		ct, err := groups.NewGroupCipher(groups.NewGroupSessionBuilder(alice.dev, ser), name, alice.dev).Encrypt(ctx, []byte(text))
		if err != nil {
			t.Fatal(err)
		}
		msg, err := protocol.NewSenderKeyMessageFromBytes(ct.SignedSerialize(), ser.SenderKeyMessage)
		if err != nil {
			t.Fatal(err)
		}
		var got []byte
		err = bob.dev.EventBuffer.DoDecryptionTxn(ctx, func(ctx context.Context) error {
			var err error
			got, err = groups.NewGroupCipher(groups.NewGroupSessionBuilder(bob.dev, ser), name, bob.dev).Decrypt(ctx, msg)
			return err
		})
		if err != nil || string(got) != text {
			t.Fatalf("group message %d: got %q, %v", n, got, err)
		}
	}
	send()
	send()
	alice.reopen()
	bob.reopen()
	send()
	send()
	if key, err := bob.dev.SenderKeys.GetSenderKey(ctx, group, alice.addr().String()); err != nil || key == nil {
		t.Errorf("bob has no sender key of alice: %v", err)
	}
}

// TestDeviceTxnConcurrent checks that a store call from another goroutine
// waits for DoDecryptionTxn instead of deadlocking or interleaving, and that
// calls inside see the transaction's own writes.
func TestDeviceTxnConcurrent(t *testing.T) {
	ctx := context.Background()
	p := newPeer(t, "491701111111:2@s.whatsapp.net")
	entered := make(chan struct{})
	release := make(chan struct{})
	outside := make(chan error, 1)
	txnErr := make(chan error, 1)
	go func() {
		txnErr <- p.dev.EventBuffer.DoDecryptionTxn(ctx, func(ctx context.Context) error {
			if err := p.dev.Sessions.PutSession(ctx, "a:1", []byte("in")); err != nil {
				return err
			}
			if s, err := p.dev.Sessions.GetSession(ctx, "a:1"); err != nil || string(s) != "in" {
				return fmt.Errorf("own write not visible: %q %v", s, err)
			}
			// Nested transactions join the outer one.
			if err := p.dev.EventBuffer.DoDecryptionTxn(ctx, func(ctx context.Context) error {
				return p.dev.Sessions.PutSession(ctx, "b:1", []byte("nested"))
			}); err != nil {
				return err
			}
			close(entered)
			<-release
			return nil
		})
	}()
	<-entered
	// Readers outside do not see uncommitted writes and do not block.
	if s, err := p.dev.Sessions.GetSession(ctx, "a:1"); err != nil || s != nil {
		t.Errorf("uncommitted write visible outside: %q %v", s, err)
	}
	go func() { outside <- p.dev.Sessions.PutSession(ctx, "a:1", []byte("out")) }()
	select {
	case err := <-outside:
		t.Fatalf("writer outside the transaction did not wait: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	if err := <-txnErr; err != nil {
		t.Fatal(err)
	}
	if err := <-outside; err != nil {
		t.Fatal(err)
	}
	for addr, want := range map[string]string{"a:1": "out", "b:1": "nested"} {
		if s, err := p.dev.Sessions.GetSession(ctx, addr); err != nil || string(s) != want {
			t.Errorf("%s: got %q %v, want %q", addr, s, err, want)
		}
	}
	// A panic inside rolls back and leaves the store usable.
	func() {
		defer func() { _ = recover() }()
		_ = p.dev.EventBuffer.DoDecryptionTxn(ctx, func(ctx context.Context) error {
			_ = p.dev.Sessions.PutSession(ctx, "c:1", []byte("x"))
			panic("boom")
		})
	}()
	if s, err := p.dev.Sessions.GetSession(ctx, "c:1"); err != nil || s != nil {
		t.Errorf("write of panicked transaction visible: %q %v", s, err)
	}
	if err := p.dev.Sessions.PutSession(ctx, "c:1", []byte("y")); err != nil {
		t.Fatal(err)
	}
}
