package store

// whatsmeow's device store on bbolt.
//
// whatsmeow ships only an SQL store (sqlstore). We keep its data in the same
// bbolt file as the bridge's state so there is one file to back up and one
// fsync per transaction, and so the binary needs no cgo. The data is what
// keeps the Signal sessions alive: a wrong answer here means undecryptable
// messages or a forced re-link. So every method copies sqlstore's semantics
// (the SQL, not its in-memory caches, see below), and device_diff_test.go
// runs random operation sequences against both and demands equal answers.
//
// Layout: every whatsmeow table is a top-level bucket named wa_<table>. A
// table with an our_jid column holds one sub-bucket per device, named by the
// device's JID string, so deleting a device deletes one sub-bucket per table:
// that is sqlstore's ON DELETE CASCADE. Keys are built so bbolt's byte order
// is the iteration order the SQL needs (big-endian integers, length-prefixed
// strings). Values are small versioned binary records (device_codec.go).
//
// sqlstore caches contacts and LID mappings in memory. Reads from a bbolt
// memory map are cheap, so we do not: every answer comes from the file. The
// only cache kept is the per-store "PN already migrated to LID" set, because
// it changes what MigratePNToLID does, not just how fast.

import (
	"context"
	"errors"
	"fmt"
	mathRand "math/rand/v2"
	"slices"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	"go.mau.fi/util/random"
	"go.mau.fi/whatsmeow/proto/waAdv"
	wastore "go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/util/keys"
	waLog "go.mau.fi/whatsmeow/util/log"
)

// Top-level buckets of the device store. All start with "wa_" so they never
// collide with the bridge's own buckets.
var (
	bktDevice       = []byte("wa_device")        // jid → deviceRecord
	bktIdentity     = []byte("wa_identity")      // our jid / their address → 32-byte key
	bktSession      = []byte("wa_session")       // our jid / their address → session
	bktPreKey       = []byte("wa_prekey")        // our jid / u32 id → preKeyRecord
	bktSenderKey    = []byte("wa_sender_key")    // our jid / lp(chat) sender → key
	bktSyncKey      = []byte("wa_appstate_key")  // our jid / key id → syncKeyRecord
	bktASVersion    = []byte("wa_appstate_ver")  // our jid / name → versionRecord
	bktASMAC        = []byte("wa_appstate_mac")  // our jid / lp(name) indexMAC u64(version) → valueMAC
	bktContact      = []byte("wa_contact")       // our jid / their jid → contactRecord
	bktChatSettings = []byte("wa_chat_settings") // our jid / chat jid → chatSettingsRecord
	bktMsgSecret    = []byte("wa_msg_secret")    // our jid / lp(chat) lp(sender) id → secret
	bktPrivacyToken = []byte("wa_privacy_token") // our jid / their jid → privacyTokenRecord
	bktNCTSalt      = []byte("wa_nct_salt")      // our jid → salt (no sub-bucket)
	bktEventBuffer  = []byte("wa_event_buffer")  // our jid / ciphertext hash → bufferedEventRecord
	bktRetryBuffer  = []byte("wa_retry_buffer")  // our jid / lp(chat) id → outgoingRecord
	bktLIDToPN      = []byte("wa_lid_pn")        // lid user → pn user
	bktPNToLID      = []byte("wa_pn_lid")        // pn user → lid user (unique index)
	bktDeviceMeta   = []byte("wa_device_meta")   // "version" → layout version
	deviceLayoutKey = []byte("version")
)

// deviceLayoutVersion is bumped whenever keys or records change shape.
const deviceLayoutVersion = 1

// cascadeBuckets are the per-device tables that sqlstore deletes with the
// device (FOREIGN KEY ... ON DELETE CASCADE). wa_privacy_token is not among
// them: whatsmeow_privacy_tokens has no foreign key, so tokens outlive a
// deleted device there, and here.
var cascadeBuckets = [][]byte{
	bktIdentity, bktSession, bktPreKey, bktSenderKey, bktSyncKey, bktASVersion,
	bktASMAC, bktContact, bktChatSettings, bktMsgSecret, bktEventBuffer, bktRetryBuffer,
}

func allDeviceBuckets() [][]byte {
	return append(slices.Clone(cascadeBuckets), bktDevice, bktPrivacyToken, bktNCTSalt,
		bktLIDToPN, bktPNToLID, bktDeviceMeta)
}

// initDevice creates the device store's buckets. Open calls it in its first
// write transaction; it is idempotent.
func (db *DB) initDevice(tx *bolt.Tx) error {
	for _, name := range allDeviceBuckets() {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return fmt.Errorf("store: create bucket %s: %w", name, err)
		}
	}
	meta := tx.Bucket(bktDeviceMeta)
	v := meta.Get(deviceLayoutKey)
	switch {
	case v == nil:
		return meta.Put(deviceLayoutKey, []byte{deviceLayoutVersion})
	case len(v) != 1 || v[0] != deviceLayoutVersion:
		return fmt.Errorf("store: bucket %s key %s: unsupported device layout %x", bktDeviceMeta, deviceLayoutKey, v)
	}
	return nil
}

// ErrDeviceIDMustBeSet is returned by PutDevice and DeleteDevice for a device
// that has not paired yet, like sqlstore.ErrDeviceIDMustBeSet.
var ErrDeviceIDMustBeSet = errors.New("store: device JID must be known before accessing database")

// errNoDevice stands in for SQL's "FOREIGN KEY constraint failed": a row for
// a device that is not saved.
var errNoDevice = errors.New("no such device (foreign key)")

// Devices is whatsmeow's device container (the sqlstore.Container
// equivalent) on the state file. It is safe for concurrent use.
type Devices struct {
	db  *DB
	log waLog.Logger
	lid *lidStore
	now func() time.Time // time.Now; tests move it

	initOnce sync.Once
	initErr  error
}

var _ wastore.DeviceContainer = (*Devices)(nil)

// Devices returns the device container. log may be nil.
func (db *DB) Devices(log waLog.Logger) *Devices {
	if log == nil {
		log = waLog.Noop
	}
	c := &Devices{db: db, log: log, now: time.Now}
	c.lid = &lidStore{c: c}
	return c
}

// init makes sure the buckets exist. Open will do this once it calls
// initDevice; until then the first use does.
func (c *Devices) init() error {
	c.initOnce.Do(func() {
		// A read-only file (waxmpp doctor, setup looking at the link) is
		// read as it is: a file that Open ever wrote has the buckets. A
		// writable one has them since Open: no write transaction for a
		// container made later (the bridge's /status checks make one
		// every 30 minutes; an idle bridge writes nothing).
		if c.db.opts.ReadOnly {
			return
		}
		exists := false
		c.db.bolt.View(func(tx *bolt.Tx) error {
			exists = tx.Bucket(bktDevice) != nil
			return nil
		})
		if !exists {
			c.initErr = c.db.bolt.Update(c.db.initDevice)
		}
	})
	return c.initErr
}

// NewDevice creates a fresh, unpaired device with new keys, exactly as
// sqlstore.Container.NewDevice does. Nothing is stored until PutDevice (the
// pairing code calls Save).
func (c *Devices) NewDevice() *wastore.Device {
	device := &wastore.Device{
		Log:       c.log,
		Container: c,

		NoiseKey:       keys.NewKeyPair(),
		IdentityKey:    keys.NewKeyPair(),
		RegistrationID: mathRand.Uint32(),
		AdvSecretKey:   random.Bytes(32),
	}
	device.SignedPreKey = device.IdentityKey.CreateSignedPreKey(1)
	return device
}

// GetAllDevices returns the stored devices in the order they were first
// saved. sqlstore's query has no ORDER BY; SQLite then returns rowid order,
// which is first-insert order, and GetFirstDevice depends on it.
func (c *Devices) GetAllDevices(ctx context.Context) ([]*wastore.Device, error) {
	if err := c.init(); err != nil {
		return nil, err
	}
	var recs []*deviceRecord
	err := c.db.view(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bktDevice)
		if b == nil {
			return nil // a read-only file that never held a device
		}
		return b.ForEach(func(k, v []byte) error {
			r, err := decodeDevice(k, v)
			if err != nil {
				return err
			}
			recs = append(recs, r)
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(recs, func(a, b *deviceRecord) int { return compareU64(a.seq, b.seq) })
	var out []*wastore.Device
	for _, r := range recs {
		d, err := c.deviceFromRecord(r)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

func compareU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// GetFirstDevice returns the first stored device, or a new unsaved one if
// there is none.
func (c *Devices) GetFirstDevice(ctx context.Context) (*wastore.Device, error) {
	devices, err := c.GetAllDevices(ctx)
	if err != nil {
		return nil, err
	}
	if len(devices) == 0 {
		return c.NewDevice(), nil
	}
	return devices[0], nil
}

// GetDevice returns the device stored under jid (an AD-JID), or nil, nil.
func (c *Devices) GetDevice(ctx context.Context, jid types.JID) (*wastore.Device, error) {
	if err := c.init(); err != nil {
		return nil, err
	}
	var rec *deviceRecord
	err := c.db.view(ctx, func(tx *bolt.Tx) error {
		k := []byte(jid.String())
		v := tx.Bucket(bktDevice).Get(k)
		if v == nil {
			return nil
		}
		var err error
		rec, err = decodeDevice(k, v)
		return err
	})
	if err != nil || rec == nil {
		return nil, err
	}
	return c.deviceFromRecord(rec)
}

func (c *Devices) deviceFromRecord(r *deviceRecord) (*wastore.Device, error) {
	id, err := types.ParseJID(r.jid)
	if err != nil {
		return nil, fmt.Errorf("store: bucket %s key %q: %w", bktDevice, r.jid, err)
	}
	var lid types.JID
	if r.lid != "" {
		if lid, err = types.ParseJID(r.lid); err != nil {
			return nil, fmt.Errorf("store: bucket %s key %q: lid: %w", bktDevice, r.jid, err)
		}
	}
	d := &wastore.Device{
		Log:            c.log,
		NoiseKey:       keys.NewKeyPairFromPrivateKey(r.noiseKey),
		IdentityKey:    keys.NewKeyPairFromPrivateKey(r.identityKey),
		SignedPreKey:   &keys.PreKey{KeyPair: *keys.NewKeyPairFromPrivateKey(r.signedPreKey), KeyID: r.signedPreKeyID},
		RegistrationID: r.registrationID,
		AdvSecretKey:   r.advKey,
		ID:             &id,
		LID:            lid,
		Account: &waAdv.ADVSignedDeviceIdentity{
			Details:             r.advDetails,
			AccountSignature:    r.advAccountSig,
			AccountSignatureKey: r.advAccountSigKey,
			DeviceSignature:     r.advDeviceSig,
		},
		Platform:              r.platform,
		BusinessName:          r.businessName,
		PushName:              r.pushName,
		LIDMigrationTimestamp: r.lidMigrationTS,
		CompanionMetaNonce:    r.companionMetaNonce,
		FacebookUUID:          r.facebookUUID,
	}
	sig := r.signedPreKeySig
	d.SignedPreKey.Signature = &sig
	c.initializeDevice(d)
	return d, nil
}

func (c *Devices) initializeDevice(d *wastore.Device) {
	d.SetAllStores(newDeviceStore(c, *d.ID))
	d.LIDs = c.lid
	d.Container = c
	d.Initialized = true
}

// PutDevice saves the device (an upsert). Like sqlstore, an existing device
// keeps its keys: only lid, platform, business and push name, LID migration
// timestamp and companion meta nonce are updated. Like sqlstore, the device
// gets its stores even when the write failed.
func (c *Devices) PutDevice(ctx context.Context, device *wastore.Device) error {
	if device.ID == nil {
		return ErrDeviceIDMustBeSet
	}
	err := c.putDevice(ctx, device)
	if !device.Initialized {
		c.initializeDevice(device)
	}
	return err
}

func (c *Devices) putDevice(ctx context.Context, device *wastore.Device) error {
	if err := c.init(); err != nil {
		return err
	}
	rec, err := recordFromDevice(device)
	if err != nil {
		return fmt.Errorf("store: put device %s: %w", device.ID, err)
	}
	return c.db.update(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bktDevice)
		k := []byte(rec.jid)
		if old := b.Get(k); old != nil {
			prev, err := decodeDevice(k, old)
			if err != nil {
				return err
			}
			prev.lid = rec.lid
			prev.platform = rec.platform
			prev.businessName = rec.businessName
			prev.pushName = rec.pushName
			prev.lidMigrationTS = rec.lidMigrationTS
			prev.companionMetaNonce = rec.companionMetaNonce
			rec = prev
		} else {
			seq, err := b.NextSequence()
			if err != nil {
				return err
			}
			rec.seq = seq
		}
		return b.Put(k, rec.encode())
	})
}

// recordFromDevice applies the CHECK and NOT NULL constraints of
// whatsmeow_device, so a device sqlstore refuses is refused here too.
func recordFromDevice(d *wastore.Device) (*deviceRecord, error) {
	if d.NoiseKey == nil || d.IdentityKey == nil || d.SignedPreKey == nil || d.SignedPreKey.Signature == nil {
		return nil, errors.New("missing keys")
	}
	if d.Account == nil {
		return nil, errors.New("missing account")
	}
	a := d.Account
	switch {
	case d.SignedPreKey.KeyID >= 1<<24:
		return nil, fmt.Errorf("signed pre-key id %d out of range", d.SignedPreKey.KeyID)
	case d.AdvSecretKey == nil, a.Details == nil:
		return nil, errors.New("adv key and details must not be null")
	case len(a.AccountSignature) != 64, len(a.AccountSignatureKey) != 32, len(a.DeviceSignature) != 64:
		return nil, errors.New("adv signature lengths must be 64, 32, 64")
	}
	r := &deviceRecord{
		jid:                d.ID.String(),
		registrationID:     d.RegistrationID,
		noiseKey:           *d.NoiseKey.Priv,
		identityKey:        *d.IdentityKey.Priv,
		signedPreKey:       *d.SignedPreKey.Priv,
		signedPreKeyID:     d.SignedPreKey.KeyID,
		signedPreKeySig:    *d.SignedPreKey.Signature,
		advKey:             d.AdvSecretKey,
		advDetails:         a.Details,
		advAccountSig:      a.AccountSignature,
		advAccountSigKey:   a.AccountSignatureKey,
		advDeviceSig:       a.DeviceSignature,
		platform:           d.Platform,
		businessName:       d.BusinessName,
		pushName:           d.PushName,
		facebookUUID:       d.FacebookUUID,
		lidMigrationTS:     d.LIDMigrationTimestamp,
		companionMetaNonce: d.CompanionMetaNonce,
	}
	if !d.LID.IsEmpty() {
		r.lid = d.LID.String()
	}
	return r, nil
}

// DeleteDevice deletes the device and, like sqlstore's foreign keys, all its
// sessions, keys, contacts, settings, secrets and buffers. Privacy tokens and
// LID mappings are not per-device in sqlstore's schema and stay.
func (c *Devices) DeleteDevice(ctx context.Context, device *wastore.Device) error {
	if device.ID == nil {
		return ErrDeviceIDMustBeSet
	}
	if err := c.init(); err != nil {
		return err
	}
	k := []byte(device.ID.String())
	return c.db.update(ctx, func(tx *bolt.Tx) error {
		if err := tx.Bucket(bktDevice).Delete(k); err != nil {
			return err
		}
		for _, name := range cascadeBuckets {
			b := tx.Bucket(name)
			if b.Bucket(k) == nil {
				continue
			}
			if err := b.DeleteBucket(k); err != nil {
				return fmt.Errorf("store: delete %s/%s: %w", name, k, err)
			}
		}
		return tx.Bucket(bktNCTSalt).Delete(k)
	})
}

// txKey finds the write transaction that DoDecryptionTxn put in a context.
// It is keyed by the DB so a transaction of another file is never reused.
type txKey struct{ db *DB }

// ctxTx is a write transaction shared by the store calls made inside one
// DoDecryptionTxn. bolt.Tx is not safe for concurrent use, so calls take mu;
// done is set when the transaction has ended so a context that outlives it
// falls back to transactions of its own.
type ctxTx struct {
	mu   sync.Mutex
	tx   *bolt.Tx
	done bool
}

// update runs fn in the write transaction carried by ctx, or in a new one.
// bbolt has one writer: a goroutine outside the carried transaction waits
// in db.bolt.Update until it commits. Calling a store method inside
// DoDecryptionTxn with a context that does not carry the transaction would
// wait for itself; whatsmeow always passes the context it was given.
func (db *DB) update(ctx context.Context, fn func(*bolt.Tx) error) error {
	if t, ok := ctx.Value(txKey{db}).(*ctxTx); ok {
		t.mu.Lock()
		if !t.done {
			defer t.mu.Unlock()
			return fn(t.tx)
		}
		t.mu.Unlock()
	}
	// What waits for the next commit (lazySettings) goes with this one.
	var lazy lazyBatch
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		lazy = db.lazy.take()
		putLazy(tx, lazy)
		return fn(tx)
	})
	db.lazy.settle(lazy, err)
	return err
}

// view is update for reads: inside DoDecryptionTxn it reads the transaction's
// own uncommitted writes, as SQL does.
func (db *DB) view(ctx context.Context, fn func(*bolt.Tx) error) error {
	if t, ok := ctx.Value(txKey{db}).(*ctxTx); ok {
		t.mu.Lock()
		if !t.done {
			defer t.mu.Unlock()
			return fn(t.tx)
		}
		t.mu.Unlock()
	}
	return db.bolt.View(fn)
}

// doTxn runs fn with a context carrying one write transaction: every store
// call fn makes with that context commits together, or not at all if fn
// returns an error or panics. Nested calls reuse the outer transaction, like
// dbutil.Database.DoTxn.
func (db *DB) doTxn(ctx context.Context, fn func(context.Context) error) error {
	if t, ok := ctx.Value(txKey{db}).(*ctxTx); ok {
		t.mu.Lock()
		done := t.done
		t.mu.Unlock()
		if !done {
			return fn(ctx)
		}
	}
	tx, err := db.bolt.Begin(true)
	if err != nil {
		return err
	}
	t := &ctxTx{tx: tx}
	end := func() {
		t.mu.Lock()
		t.done = true
		t.mu.Unlock()
	}
	// What waits for the next commit goes with this one (see update).
	lazy := db.lazy.take()
	putLazy(tx, lazy)
	committed := false
	defer func() {
		if !committed {
			end()
			_ = tx.Rollback()
			db.lazy.restore(lazy)
		}
	}()
	if err := fn(context.WithValue(ctx, txKey{db}, t)); err != nil {
		return err
	}
	t.mu.Lock()
	t.done = true
	err = tx.Commit()
	t.mu.Unlock()
	committed = true
	db.lazy.settle(lazy, err)
	return err
}

// inTxn reports whether ctx carries a DoDecryptionTxn transaction that
// has not ended.
func (db *DB) inTxn(ctx context.Context) bool {
	t, ok := ctx.Value(txKey{db}).(*ctxTx)
	if !ok {
		return false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return !t.done
}

// deviceExists is the foreign-key check of sqlstore's per-device tables.
func deviceExists(tx *bolt.Tx, jid []byte) error {
	if tx.Bucket(bktDevice).Get(jid) == nil {
		return fmt.Errorf("store: device %s: %w", jid, errNoDevice)
	}
	return nil
}
