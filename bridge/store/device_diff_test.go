package store

// The differential test: random operation sequences run against whatsmeow's
// own sqlstore (on SQLite, modernc.org/sqlite) and against our bbolt store;
// every answer must be equal. sqlstore's in-memory caches (contacts, LID
// map) are kept cold by giving each operation a fresh sqlstore.SQLStore and
// CachedLIDMap on the same database, because we match the SQL, not cache
// artefacts (see device.go). The one cache that changes behaviour,
// MigratePNToLID's, lives in the device handle in both worlds.
//
// Reproduce a failure with: go test ./bridge/store/ -run TestDeviceDiff -seed N

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	bolt "go.etcd.io/bbolt"
	"go.mau.fi/util/dbutil"
	"go.mau.fi/whatsmeow/proto/waAdv"
	wastore "go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/store/sqlstore"
	"go.mau.fi/whatsmeow/store/sqlstore/upgrades"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/util/keys"
	_ "modernc.org/sqlite"
)

var (
	diffSeed  = flag.Uint64("seed", 0, "seed for TestDeviceDiff (0: run the default seeds)")
	diffOps   = flag.Int("ops", 3000, "operations per seed in TestDeviceDiff")
	diffSeeds = []uint64{1, 2, 3, 20260821}
)

// Pools are small so operations collide. Users look like real ones: phone
// numbers of 11–12 digits, LIDs of 15, LID addresses carrying agent "_1".
var (
	ourJIDs   = []string{"491701111111:3@s.whatsapp.net", "491702222222:7@s.whatsapp.net"}
	pnUsers   = []string{"491511111111", "491522222222", "15553334444", "447700900123"}
	lidUser   = []string{"100000000000001", "200000000000002", "300000000000003", "400000000000004"}
	groupJIDs = []string{"120363000000000001@g.us", "120363000000000002@g.us"}
	msgIDs    = []string{"3EB0A1", "3EB0B2", "3EB0C3"}
	asNames   = []string{"critical_block", "regular_high", "regular"}
	formats   = []string{"wa", "fb"}
)

type diffWorld struct {
	name string
	ctr  interface {
		wastore.DeviceContainer
		GetDevice(context.Context, types.JID) (*wastore.Device, error)
		GetAllDevices(context.Context) ([]*wastore.Device, error)
		GetFirstDevice(context.Context) (*wastore.Device, error)
	}
	handles map[string]*wastore.Device
	// raw returns a store for jid outside any device handle (its device may
	// not be saved: foreign-key errors).
	raw func(jid string) wastore.AllSessionSpecificStores
	// fresh returns the store for a live handle.
	fresh func(d *wastore.Device) wastore.AllSessionSpecificStores
	lids  func() wastore.LIDStore
	// age moves an event-buffer or retry-buffer row back in time.
	ageEvent func(jid string, hash [32]byte, d time.Duration) error
	ageRetry func(jid, chat, id string, d time.Duration) error
	// preKeys remembers every pre-key this world generated.
	preKeys map[string]map[uint32][32]byte
}

// st picks the store an operation uses: the live handle's, or (raw) one
// for a device that may not exist, or the deleted handle's no-op store.
func (w *diffWorld) st(jid string, raw bool) wastore.AllSessionSpecificStores {
	h := w.handles[jid]
	switch {
	case h == nil || (h.Deleted && raw):
		return w.raw(jid)
	case h.Deleted:
		return h.Identities.(wastore.AllSessionSpecificStores)
	}
	return w.fresh(h)
}

func newSQLWorld(t *testing.T) *diffWorld {
	path := filepath.Join(t.TempDir(), "sql.db")
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=foreign_keys(1)&_pragma=journal_mode(WAL)")
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	wrapped, err := dbutil.NewWithDB(db, "sqlite")
	if err != nil {
		t.Fatal(err)
	}
	wrapped.UpgradeTable = upgrades.Table
	wrapped.VersionTable = "whatsmeow_version"
	base := sqlstore.NewWithWrappedDB(wrapped, nil)
	if err := base.Upgrade(context.Background()); err != nil {
		t.Fatal(err)
	}
	parse := func(jid string) types.JID { return mustJID(jid) }
	return &diffWorld{
		name:    "sqlstore",
		ctr:     base,
		handles: map[string]*wastore.Device{},
		raw: func(jid string) wastore.AllSessionSpecificStores {
			return sqlstore.NewSQLStore(sqlstore.NewWithWrappedDB(wrapped, nil), parse(jid))
		},
		fresh: func(d *wastore.Device) wastore.AllSessionSpecificStores {
			return sqlstore.NewSQLStore(sqlstore.NewWithWrappedDB(wrapped, nil), *d.ID)
		},
		lids: func() wastore.LIDStore { return sqlstore.NewWithWrappedDB(wrapped, nil).LIDMap },
		ageEvent: func(jid string, hash [32]byte, d time.Duration) error {
			_, err := db.Exec(`UPDATE whatsmeow_event_buffer SET insert_timestamp=insert_timestamp-? WHERE our_jid=? AND ciphertext_hash=?`, d.Milliseconds(), jid, hash[:])
			return err
		},
		ageRetry: func(jid, chat, id string, d time.Duration) error {
			_, err := db.Exec(`UPDATE whatsmeow_retry_buffer SET timestamp=timestamp-? WHERE our_jid=? AND chat_jid=? AND message_id=?`, d.Milliseconds(), jid, chat, id)
			return err
		},
		preKeys: map[string]map[uint32][32]byte{},
	}
}

func newBoltWorld(t *testing.T) *diffWorld {
	db, err := Open(filepath.Join(t.TempDir(), "bolt.db"), Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	c := db.Devices(nil)
	rewrite := func(table []byte, jid string, k []byte, f func(v []byte) ([]byte, error)) error {
		return db.bolt.Update(func(tx *bolt.Tx) error {
			b := tx.Bucket(table).Bucket([]byte(jid))
			if b == nil || b.Get(k) == nil {
				return nil
			}
			nv, err := f(b.Get(k))
			if err != nil {
				return err
			}
			return b.Put(k, nv)
		})
	}
	return &diffWorld{
		name:    "bolt",
		ctr:     c,
		handles: map[string]*wastore.Device{},
		raw: func(jid string) wastore.AllSessionSpecificStores {
			if err := c.init(); err != nil {
				t.Fatal(err)
			}
			return newDeviceStore(c, mustJID(jid))
		},
		fresh: func(d *wastore.Device) wastore.AllSessionSpecificStores {
			return d.Identities.(wastore.AllSessionSpecificStores)
		},
		lids: func() wastore.LIDStore { return c.lid },
		ageEvent: func(jid string, hash [32]byte, d time.Duration) error {
			return rewrite(bktEventBuffer, jid, hash[:], func(v []byte) ([]byte, error) {
				r, err := decodeBufferedEvent(hash[:], v)
				r.insertTSMS -= d.Milliseconds()
				return r.encode(), err
			})
		},
		ageRetry: func(jid, chat, id string, d time.Duration) error {
			k := append(lp(chat), id...)
			return rewrite(bktRetryBuffer, jid, k, func(v []byte) ([]byte, error) {
				r, err := decodeOutgoing(k, v)
				r.timestampMS -= d.Milliseconds()
				return r.encode(), err
			})
		},
		preKeys: map[string]map[uint32][32]byte{},
	}
}

// opFn runs one operation in one world and returns its comparable answer.
type opFn func(w *diffWorld, ctx context.Context) any

type opGen struct {
	method string // "Interface.Method", checked against the interfaces
	weight int
	inTxn  bool // may run inside DoDecryptionTxn
	make   func(r *rand.Rand) opFn
}

// errClass makes errors comparable: messages differ between the stores,
// the kind must not.
func errClass(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, sql.ErrNoRows):
		return "no rows"
	case errors.Is(err, wastore.ErrDeviceDeleted):
		return "deleted"
	}
	return "error"
}

type res []any

func pick[T any](r *rand.Rand, s []T) T { return s[r.IntN(len(s))] }

func randBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.IntN(4)) // few values: collisions
	}
	return b
}

// blob is a small value, sometimes nil or empty to pin NULL handling.
func blob(r *rand.Rand) []byte {
	switch r.IntN(12) {
	case 0:
		return nil
	case 1:
		return []byte{}
	}
	return randBytes(r, 1+r.IntN(6))
}

func randPN(r *rand.Rand) types.JID {
	return types.JID{User: pick(r, pnUsers), Server: types.DefaultUserServer}
}
func randLID(r *rand.Rand) types.JID {
	return types.JID{User: pick(r, lidUser), Server: types.HiddenUserServer}
}

// randUser is a user JID, sometimes with a device (the stores strip or keep
// it, and must agree).
func randUser(r *rand.Rand) types.JID {
	var j types.JID
	if r.IntN(2) == 0 {
		j = randPN(r)
	} else {
		j = randLID(r)
	}
	if r.IntN(4) == 0 {
		j.Device = uint16(1 + r.IntN(3))
	}
	return j
}

func randChat(r *rand.Rand) types.JID {
	if r.IntN(3) == 0 {
		return mustJID(pick(r, groupJIDs))
	}
	return randUser(r).ToNonAD()
}

// randAddress is a Signal address "<user>[_1]:<device>".
func randAddress(r *rand.Rand) string {
	return randUser(r).SignalAddress().String()
}

func randPhone(r *rand.Rand) string {
	if r.IntN(2) == 0 {
		return pick(r, pnUsers)
	}
	return pick(r, lidUser) + "_1"
}

func randTime(r *rand.Rand) time.Time {
	switch r.IntN(8) {
	case 0:
		return time.Time{}
	case 1:
		return wastore.MutedForever
	}
	return time.Unix(1_700_000_000+int64(r.IntN(5))*1000, 0)
}

func randHash(r *rand.Rand) [32]byte {
	var h [32]byte
	h[0] = byte(r.IntN(4))
	return h
}

func randMAC(r *rand.Rand) []byte {
	if r.IntN(30) == 0 {
		return randBytes(r, 31) // CHECK (length = 32) fails
	}
	m := make([]byte, 32)
	m[0] = byte(r.IntN(4))
	return m
}

// deviceSummary is every stored field of a device, keys included.
func deviceSummary(d *wastore.Device) any {
	if d == nil {
		return nil
	}
	if d.ID == nil {
		return "new unsaved device"
	}
	return res{d.ID.String(), d.LID.String(), d.RegistrationID, *d.NoiseKey.Priv, *d.NoiseKey.Pub, *d.IdentityKey.Priv,
		d.SignedPreKey.KeyID, *d.SignedPreKey.Priv, *d.SignedPreKey.Signature, d.AdvSecretKey,
		d.Account.Details, d.Account.AccountSignature, d.Account.AccountSignatureKey, d.Account.DeviceSignature,
		d.Platform, d.BusinessName, d.PushName, d.FacebookUUID, d.LIDMigrationTimestamp, d.CompanionMetaNonce,
		d.Initialized, d.Deleted}
}

// makeDevice builds the same device twice (one per world) from r's draws.
func makeDevice(r *rand.Rand, jid string) func() *wastore.Device {
	priv := func() [32]byte {
		var p [32]byte
		for i := range p {
			p[i] = byte(r.Uint32())
		}
		return p
	}
	noise, ident, spk := priv(), priv(), priv()
	var sig [64]byte
	sig[0] = byte(r.Uint32())
	reg := r.Uint32()
	adv := randBytes(r, 32)
	details := randBytes(r, 8)
	sigLen := 64
	if r.IntN(20) == 0 {
		sigLen = 10 // CHECK fails
	}
	var fb uuid.UUID
	if r.IntN(2) == 0 {
		fb[0] = 1
	}
	return func() *wastore.Device {
		s := sig
		return &wastore.Device{
			NoiseKey:       keys.NewKeyPairFromPrivateKey(noise),
			IdentityKey:    keys.NewKeyPairFromPrivateKey(ident),
			SignedPreKey:   &keys.PreKey{KeyPair: *keys.NewKeyPairFromPrivateKey(spk), KeyID: 1, Signature: &s},
			RegistrationID: reg,
			AdvSecretKey:   slices.Clone(adv),
			ID:             ptr(mustJID(jid)),
			Account: &waAdv.ADVSignedDeviceIdentity{
				Details: slices.Clone(details), AccountSignature: make([]byte, sigLen),
				AccountSignatureKey: make([]byte, 32), DeviceSignature: make([]byte, 64),
			},
			Platform:     "android",
			FacebookUUID: fb,
		}
	}
}

func ptr[T any](v T) *T { return &v }

// storeOp builds an op on a random device's store.
func storeOp(f func(r *rand.Rand) func(s wastore.AllSessionSpecificStores, ctx context.Context) any) func(r *rand.Rand) opFn {
	return func(r *rand.Rand) opFn {
		jid := pick(r, ourJIDs)
		raw := r.IntN(3) == 0
		g := f(r)
		return func(w *diffWorld, ctx context.Context) any { return g(w.st(jid, raw), ctx) }
	}
}

func lidOp(f func(r *rand.Rand) func(s wastore.LIDStore, ctx context.Context) any) func(r *rand.Rand) opFn {
	return func(r *rand.Rand) opFn {
		g := f(r)
		return func(w *diffWorld, ctx context.Context) any { return g(w.lids(), ctx) }
	}
}

type S = wastore.AllSessionSpecificStores

func diffOpsTable() []opGen {
	var ops []opGen
	add := func(method string, weight int, inTxn bool, f func(r *rand.Rand) opFn) {
		ops = append(ops, opGen{method, weight, inTxn, f})
	}
	st := func(method string, weight int, f func(r *rand.Rand) func(s S, ctx context.Context) any) {
		add(method, weight, true, storeOp(f))
	}

	// Identities.
	st("IdentityStore.PutIdentity", 4, func(r *rand.Rand) func(S, context.Context) any {
		a := randAddress(r)
		var k [32]byte
		k[0] = byte(r.IntN(3))
		return func(s S, ctx context.Context) any { return errClass(s.PutIdentity(ctx, a, k)) }
	})
	st("IdentityStore.DeleteAllIdentities", 1, func(r *rand.Rand) func(S, context.Context) any {
		p := randPhone(r)
		return func(s S, ctx context.Context) any { return errClass(s.DeleteAllIdentities(ctx, p)) }
	})
	st("IdentityStore.DeleteIdentity", 1, func(r *rand.Rand) func(S, context.Context) any {
		a := randAddress(r)
		return func(s S, ctx context.Context) any { return errClass(s.DeleteIdentity(ctx, a)) }
	})
	st("IdentityStore.IsTrustedIdentity", 3, func(r *rand.Rand) func(S, context.Context) any {
		a := randAddress(r)
		var k [32]byte
		k[0] = byte(r.IntN(3))
		return func(s S, ctx context.Context) any {
			ok, err := s.IsTrustedIdentity(ctx, a, k)
			return res{ok, errClass(err)}
		}
	})

	// Sessions.
	st("SessionStore.GetSession", 3, func(r *rand.Rand) func(S, context.Context) any {
		a := randAddress(r)
		return func(s S, ctx context.Context) any {
			v, err := s.GetSession(ctx, a)
			return res{v, errClass(err)}
		}
	})
	st("SessionStore.HasSession", 2, func(r *rand.Rand) func(S, context.Context) any {
		a := randAddress(r)
		return func(s S, ctx context.Context) any {
			v, err := s.HasSession(ctx, a)
			return res{v, errClass(err)}
		}
	})
	st("SessionStore.GetManySessions", 2, func(r *rand.Rand) func(S, context.Context) any {
		var as []string
		for range r.IntN(4) {
			as = append(as, randAddress(r))
		}
		return func(s S, ctx context.Context) any {
			v, err := s.GetManySessions(ctx, slices.Clone(as))
			return res{v, errClass(err)}
		}
	})
	st("SessionStore.PutSession", 5, func(r *rand.Rand) func(S, context.Context) any {
		a, v := randAddress(r), blob(r)
		return func(s S, ctx context.Context) any { return errClass(s.PutSession(ctx, a, slices.Clone(v))) }
	})
	st("SessionStore.PutManySessions", 2, func(r *rand.Rand) func(S, context.Context) any {
		m := map[string][]byte{}
		for range r.IntN(4) {
			m[randAddress(r)] = blob(r)
		}
		return func(s S, ctx context.Context) any {
			c := map[string][]byte{}
			for k, v := range m {
				c[k] = slices.Clone(v)
			}
			return errClass(s.PutManySessions(ctx, c))
		}
	})
	st("SessionStore.DeleteAllSessions", 1, func(r *rand.Rand) func(S, context.Context) any {
		p := randPhone(r)
		return func(s S, ctx context.Context) any { return errClass(s.DeleteAllSessions(ctx, p)) }
	})
	st("SessionStore.DeleteSession", 1, func(r *rand.Rand) func(S, context.Context) any {
		a := randAddress(r)
		return func(s S, ctx context.Context) any { return errClass(s.DeleteSession(ctx, a)) }
	})
	// MigratePNToLID goes through the device handle in both worlds: its
	// "already migrated" cache is part of the semantics.
	add("SessionStore.MigratePNToLID", 2, true, func(r *rand.Rand) opFn {
		jid := pick(r, ourJIDs)
		pn, lid := randPN(r), randLID(r)
		return func(w *diffWorld, ctx context.Context) any {
			h := w.handles[jid]
			if h == nil {
				return "no handle"
			}
			return errClass(h.Sessions.MigratePNToLID(ctx, pn, lid))
		}
	})

	// Pre-keys: key material is random, so compare IDs and check each world
	// against the keys it generated.
	preKeyIDs := func(w *diffWorld, jid string, ks []*keys.PreKey, gen bool) any {
		var ids []uint32
		for _, k := range ks {
			if k == nil {
				ids = append(ids, 0)
				continue
			}
			ids = append(ids, k.KeyID)
			pub := keys.NewKeyPairFromPrivateKey(*k.Priv).Pub
			if *pub != *k.Pub {
				return "pre-key public key does not match private key"
			}
			m := w.preKeys[jid]
			if m == nil {
				m = map[uint32][32]byte{}
				w.preKeys[jid] = m
			}
			if old, ok := m[k.KeyID]; ok && !gen && old != *k.Priv {
				return fmt.Sprintf("pre-key %d changed", k.KeyID)
			}
			m[k.KeyID] = *k.Priv
		}
		return ids
	}
	preKeyOp := func(method string, weight int, f func(r *rand.Rand) func(w *diffWorld, jid string, s S, ctx context.Context) any) {
		add(method, weight, true, func(r *rand.Rand) opFn {
			jid := pick(r, ourJIDs)
			raw := r.IntN(3) == 0
			g := f(r)
			return func(w *diffWorld, ctx context.Context) any { return g(w, jid, w.st(jid, raw), ctx) }
		})
	}
	preKeyOp("PreKeyStore.GetOrGenPreKeys", 3, func(r *rand.Rand) func(*diffWorld, string, S, context.Context) any {
		n := uint32(r.IntN(6))
		return func(w *diffWorld, jid string, s S, ctx context.Context) any {
			ks, err := s.GetOrGenPreKeys(ctx, n)
			return res{ks == nil, preKeyIDs(w, jid, ks, true), errClass(err)}
		}
	})
	preKeyOp("PreKeyStore.GenOnePreKey", 2, func(r *rand.Rand) func(*diffWorld, string, S, context.Context) any {
		return func(w *diffWorld, jid string, s S, ctx context.Context) any {
			k, err := s.GenOnePreKey(ctx)
			if err != nil {
				return res{"error", errClass(err)}
			}
			return res{preKeyIDs(w, jid, []*keys.PreKey{k}, true), errClass(err)}
		}
	})
	preKeyOp("PreKeyStore.GetPreKey", 3, func(r *rand.Rand) func(*diffWorld, string, S, context.Context) any {
		id := uint32(r.IntN(12))
		return func(w *diffWorld, jid string, s S, ctx context.Context) any {
			k, err := s.GetPreKey(ctx, id)
			if k == nil {
				return res{"nil", errClass(err)}
			}
			return res{preKeyIDs(w, jid, []*keys.PreKey{k}, false), errClass(err)}
		}
	})
	st("PreKeyStore.RemovePreKey", 1, func(r *rand.Rand) func(S, context.Context) any {
		id := uint32(r.IntN(12))
		return func(s S, ctx context.Context) any { return errClass(s.RemovePreKey(ctx, id)) }
	})
	st("PreKeyStore.MarkPreKeysAsUploaded", 1, func(r *rand.Rand) func(S, context.Context) any {
		id := uint32(r.IntN(12))
		return func(s S, ctx context.Context) any { return errClass(s.MarkPreKeysAsUploaded(ctx, id)) }
	})
	st("PreKeyStore.UploadedPreKeyCount", 2, func(r *rand.Rand) func(S, context.Context) any {
		return func(s S, ctx context.Context) any {
			n, err := s.UploadedPreKeyCount(ctx)
			return res{n, errClass(err)}
		}
	})

	// Sender keys.
	st("SenderKeyStore.PutSenderKey", 3, func(r *rand.Rand) func(S, context.Context) any {
		g, u, v := pick(r, groupJIDs), randAddress(r), blob(r)
		return func(s S, ctx context.Context) any { return errClass(s.PutSenderKey(ctx, g, u, slices.Clone(v))) }
	})
	st("SenderKeyStore.GetSenderKey", 3, func(r *rand.Rand) func(S, context.Context) any {
		g, u := pick(r, groupJIDs), randAddress(r)
		return func(s S, ctx context.Context) any {
			v, err := s.GetSenderKey(ctx, g, u)
			return res{v, errClass(err)}
		}
	})

	// App state sync keys.
	syncKeyID := func(r *rand.Rand) []byte { return []byte{0, 0, byte(r.IntN(4))} }
	st("AppStateSyncKeyStore.PutAppStateSyncKey", 3, func(r *rand.Rand) func(S, context.Context) any {
		id := syncKeyID(r)
		k := wastore.AppStateSyncKey{Data: blob(r), Fingerprint: blob(r), Timestamp: int64(r.IntN(5))}
		return func(s S, ctx context.Context) any {
			c := k
			c.Data, c.Fingerprint = slices.Clone(k.Data), slices.Clone(k.Fingerprint)
			return errClass(s.PutAppStateSyncKey(ctx, slices.Clone(id), c))
		}
	})
	st("AppStateSyncKeyStore.GetAppStateSyncKey", 2, func(r *rand.Rand) func(S, context.Context) any {
		id := syncKeyID(r)
		return func(s S, ctx context.Context) any {
			k, err := s.GetAppStateSyncKey(ctx, id)
			return res{k, errClass(err)}
		}
	})
	st("AppStateSyncKeyStore.GetLatestAppStateSyncKeyID", 2, func(r *rand.Rand) func(S, context.Context) any {
		return func(s S, ctx context.Context) any {
			id, err := s.GetLatestAppStateSyncKeyID(ctx)
			return res{id, errClass(err)}
		}
	})
	st("AppStateSyncKeyStore.GetAllAppStateSyncKeys", 2, func(r *rand.Rand) func(S, context.Context) any {
		return func(s S, ctx context.Context) any {
			ks, err := s.GetAllAppStateSyncKeys(ctx)
			return res{ks, errClass(err)}
		}
	})

	// App state versions and MACs.
	st("AppStateStore.PutAppStateVersion", 3, func(r *rand.Rand) func(S, context.Context) any {
		name, ver := pick(r, asNames), uint64(r.IntN(4))
		var h [128]byte
		h[0] = byte(r.IntN(4))
		return func(s S, ctx context.Context) any { return errClass(s.PutAppStateVersion(ctx, name, ver, h)) }
	})
	st("AppStateStore.GetAppStateVersion", 3, func(r *rand.Rand) func(S, context.Context) any {
		name := pick(r, asNames)
		return func(s S, ctx context.Context) any {
			v, h, err := s.GetAppStateVersion(ctx, name)
			return res{v, h, errClass(err)}
		}
	})
	st("AppStateStore.DeleteAppStateVersion", 1, func(r *rand.Rand) func(S, context.Context) any {
		name := pick(r, asNames)
		return func(s S, ctx context.Context) any { return errClass(s.DeleteAppStateVersion(ctx, name)) }
	})
	st("AppStateStore.PutAppStateMutationMACs", 3, func(r *rand.Rand) func(S, context.Context) any {
		name, ver := pick(r, asNames), uint64(1+r.IntN(3))
		var ms []wastore.AppStateMutationMAC
		for range r.IntN(4) {
			ms = append(ms, wastore.AppStateMutationMAC{IndexMAC: randMAC(r), ValueMAC: randMAC(r)})
		}
		return func(s S, ctx context.Context) any {
			return errClass(s.PutAppStateMutationMACs(ctx, name, ver, slices.Clone(ms)))
		}
	})
	st("AppStateStore.DeleteAppStateMutationMACs", 1, func(r *rand.Rand) func(S, context.Context) any {
		name := pick(r, asNames)
		var ims [][]byte
		for range r.IntN(3) {
			ims = append(ims, randMAC(r))
		}
		return func(s S, ctx context.Context) any { return errClass(s.DeleteAppStateMutationMACs(ctx, name, ims)) }
	})
	st("AppStateStore.GetAppStateMutationMAC", 3, func(r *rand.Rand) func(S, context.Context) any {
		name, im := pick(r, asNames), randMAC(r)
		return func(s S, ctx context.Context) any {
			v, err := s.GetAppStateMutationMAC(ctx, name, im)
			return res{v, errClass(err)}
		}
	})

	// Contacts.
	names := []string{"", "Ann", "Bob"}
	st("ContactStore.PutPushName", 3, func(r *rand.Rand) func(S, context.Context) any {
		u, n := randUser(r).ToNonAD(), pick(r, names)
		return func(s S, ctx context.Context) any {
			ch, prev, err := s.PutPushName(ctx, u, n)
			return res{ch, prev, errClass(err)}
		}
	})
	st("ContactStore.PutBusinessName", 2, func(r *rand.Rand) func(S, context.Context) any {
		u, n := randUser(r).ToNonAD(), pick(r, names)
		return func(s S, ctx context.Context) any {
			ch, prev, err := s.PutBusinessName(ctx, u, n)
			return res{ch, prev, errClass(err)}
		}
	})
	st("ContactStore.PutContactName", 2, func(r *rand.Rand) func(S, context.Context) any {
		u, a, b := randUser(r).ToNonAD(), pick(r, names), pick(r, names)
		return func(s S, ctx context.Context) any { return errClass(s.PutContactName(ctx, u, a, b)) }
	})
	st("ContactStore.PutAllContactNames", 1, func(r *rand.Rand) func(S, context.Context) any {
		var cs []wastore.ContactEntry
		for range r.IntN(4) {
			cs = append(cs, wastore.ContactEntry{JID: randUser(r).ToNonAD(), FirstName: pick(r, names), FullName: pick(r, names)})
		}
		return func(s S, ctx context.Context) any { return errClass(s.PutAllContactNames(ctx, slices.Clone(cs))) }
	})
	st("ContactStore.PutManyRedactedPhones", 1, func(r *rand.Rand) func(S, context.Context) any {
		var es []wastore.RedactedPhoneEntry
		for range r.IntN(4) {
			es = append(es, wastore.RedactedPhoneEntry{JID: randUser(r).ToNonAD(), RedactedPhone: pick(r, []string{"", "+49∙∙∙11", "+1∙∙∙44"})})
		}
		return func(s S, ctx context.Context) any { return errClass(s.PutManyRedactedPhones(ctx, slices.Clone(es))) }
	})
	st("ContactStore.GetContact", 3, func(r *rand.Rand) func(S, context.Context) any {
		u := randUser(r).ToNonAD()
		return func(s S, ctx context.Context) any {
			c, err := s.GetContact(ctx, u)
			return res{c, errClass(err)}
		}
	})
	st("ContactStore.GetAllContacts", 1, func(r *rand.Rand) func(S, context.Context) any {
		return func(s S, ctx context.Context) any {
			c, err := s.GetAllContacts(ctx)
			if err != nil {
				c = nil
			}
			return res{c, errClass(err)}
		}
	})

	// Chat settings.
	st("ChatSettingsStore.PutMutedUntil", 2, func(r *rand.Rand) func(S, context.Context) any {
		c, tm := randChat(r), randTime(r)
		return func(s S, ctx context.Context) any { return errClass(s.PutMutedUntil(ctx, c, tm)) }
	})
	st("ChatSettingsStore.PutPinned", 2, func(r *rand.Rand) func(S, context.Context) any {
		c, v := randChat(r), r.IntN(2) == 0
		return func(s S, ctx context.Context) any { return errClass(s.PutPinned(ctx, c, v)) }
	})
	st("ChatSettingsStore.PutArchived", 2, func(r *rand.Rand) func(S, context.Context) any {
		c, v := randChat(r), r.IntN(2) == 0
		return func(s S, ctx context.Context) any { return errClass(s.PutArchived(ctx, c, v)) }
	})
	st("ChatSettingsStore.GetChatSettings", 3, func(r *rand.Rand) func(S, context.Context) any {
		c := randChat(r)
		return func(s S, ctx context.Context) any {
			v, err := s.GetChatSettings(ctx, c)
			return res{v, errClass(err)}
		}
	})

	// Message secrets.
	st("MsgSecretStore.PutMessageSecrets", 1, func(r *rand.Rand) func(S, context.Context) any {
		var ins []wastore.MessageSecretInsert
		for range r.IntN(4) {
			ins = append(ins, wastore.MessageSecretInsert{Chat: randChat(r), Sender: randUser(r), ID: pick(r, msgIDs), Secret: blob(r)})
		}
		return func(s S, ctx context.Context) any { return errClass(s.PutMessageSecrets(ctx, slices.Clone(ins))) }
	})
	st("MsgSecretStore.PutMessageSecret", 3, func(r *rand.Rand) func(S, context.Context) any {
		c, u, id, sec := randChat(r), randUser(r), pick(r, msgIDs), blob(r)
		return func(s S, ctx context.Context) any {
			return errClass(s.PutMessageSecret(ctx, c, u, id, slices.Clone(sec)))
		}
	})
	st("MsgSecretStore.GetMessageSecret", 4, func(r *rand.Rand) func(S, context.Context) any {
		c, u, id := randChat(r), randUser(r), pick(r, msgIDs)
		return func(s S, ctx context.Context) any {
			sec, snd, err := s.GetMessageSecret(ctx, c, u, id)
			return res{sec, snd, errClass(err)}
		}
	})

	// Privacy tokens.
	st("PrivacyTokenStore.PutPrivacyTokens", 3, func(r *rand.Rand) func(S, context.Context) any {
		var ts []wastore.PrivacyToken
		for range r.IntN(3) {
			t := wastore.PrivacyToken{User: randUser(r), Token: randBytes(r, 1+r.IntN(3)), Timestamp: time.Unix(int64(100+r.IntN(4)), 0)}
			if r.IntN(2) == 0 {
				t.SenderTimestamp = time.Unix(int64(50+r.IntN(4)), 0)
			}
			ts = append(ts, t)
		}
		return func(s S, ctx context.Context) any { return errClass(s.PutPrivacyTokens(ctx, slices.Clone(ts)...)) }
	})
	st("PrivacyTokenStore.GetPrivacyToken", 3, func(r *rand.Rand) func(S, context.Context) any {
		u := randUser(r)
		return func(s S, ctx context.Context) any {
			t, err := s.GetPrivacyToken(ctx, u)
			return res{t, errClass(err)}
		}
	})
	st("PrivacyTokenStore.DeleteExpiredPrivacyTokens", 1, func(r *rand.Rand) func(S, context.Context) any {
		cut := time.Unix(int64(100+r.IntN(5)), 0)
		return func(s S, ctx context.Context) any {
			n, err := s.DeleteExpiredPrivacyTokens(ctx, cut)
			return res{n, errClass(err)}
		}
	})

	// NCT salt.
	st("NCTSaltStore.PutNCTSalt", 1, func(r *rand.Rand) func(S, context.Context) any {
		v := blob(r)
		return func(s S, ctx context.Context) any { return errClass(s.PutNCTSalt(ctx, slices.Clone(v))) }
	})
	st("NCTSaltStore.GetNCTSalt", 1, func(r *rand.Rand) func(S, context.Context) any {
		return func(s S, ctx context.Context) any {
			v, err := s.GetNCTSalt(ctx)
			return res{v, errClass(err)}
		}
	})
	st("NCTSaltStore.DeleteNCTSalt", 1, func(r *rand.Rand) func(S, context.Context) any {
		return func(s S, ctx context.Context) any { return errClass(s.DeleteNCTSalt(ctx)) }
	})

	// Event buffer. InsertTime is the wall clock of each store; compare it
	// to the second.
	st("EventBuffer.GetBufferedEvent", 3, func(r *rand.Rand) func(S, context.Context) any {
		h := randHash(r)
		return func(s S, ctx context.Context) any {
			e, err := s.GetBufferedEvent(ctx, h)
			if e == nil {
				return res{"nil", errClass(err)}
			}
			// Rows are aged by whole days (test.AgeBuffers), and were
			// inserted moments ago.
			d := time.Since(e.InsertTime)
			if d < -time.Minute {
				return res{"insert time in the future", d}
			}
			return res{e.Plaintext, e.ServerTime, int(d / (24 * time.Hour)), errClass(err)}
		}
	})
	st("EventBuffer.PutBufferedEvent", 3, func(r *rand.Rand) func(S, context.Context) any {
		h, pt, ts := randHash(r), blob(r), time.Unix(int64(1_700_000_000+r.IntN(3)), 0)
		return func(s S, ctx context.Context) any { return errClass(s.PutBufferedEvent(ctx, h, slices.Clone(pt), ts)) }
	})
	st("EventBuffer.ClearBufferedEventPlaintext", 1, func(r *rand.Rand) func(S, context.Context) any {
		h := randHash(r)
		return func(s S, ctx context.Context) any { return errClass(s.ClearBufferedEventPlaintext(ctx, h)) }
	})
	st("EventBuffer.DeleteOldBufferedHashes", 1, func(r *rand.Rand) func(S, context.Context) any {
		return func(s S, ctx context.Context) any { return errClass(s.DeleteOldBufferedHashes(ctx)) }
	})
	st("EventBuffer.GetOutgoingEvent", 3, func(r *rand.Rand) func(S, context.Context) any {
		c, id := randChat(r), pick(r, msgIDs)
		var alt types.JID
		if r.IntN(2) == 0 {
			alt = randChat(r)
		}
		return func(s S, ctx context.Context) any {
			f, pt, err := s.GetOutgoingEvent(ctx, c, alt, id)
			return res{f, pt, errClass(err)}
		}
	})
	st("EventBuffer.AddOutgoingEvent", 3, func(r *rand.Rand) func(S, context.Context) any {
		c, id, f, pt := randChat(r), pick(r, msgIDs), pick(r, formats), blob(r)
		return func(s S, ctx context.Context) any {
			return errClass(s.AddOutgoingEvent(ctx, c, id, f, slices.Clone(pt)))
		}
	})
	st("EventBuffer.DeleteOldOutgoingEvents", 1, func(r *rand.Rand) func(S, context.Context) any {
		return func(s S, ctx context.Context) any { return errClass(s.DeleteOldOutgoingEvents(ctx)) }
	})
	// Ageing rows lets the two Delete* above delete something.
	add("test.AgeBuffers", 2, false, func(r *rand.Rand) opFn {
		jid, h, c, id := pick(r, ourJIDs), randHash(r), randChat(r), pick(r, msgIDs)
		d := time.Duration(r.IntN(20)) * 24 * time.Hour
		return func(w *diffWorld, ctx context.Context) any {
			return res{errClass(w.ageEvent(jid, h, d)), errClass(w.ageRetry(jid, c.String(), id, d))}
		}
	})

	// LID map.
	add("LIDStore.PutLIDMapping", 3, true, lidOp(func(r *rand.Rand) func(wastore.LIDStore, context.Context) any {
		l, p := randLID(r), randPN(r)
		if r.IntN(15) == 0 {
			l, p = p, l // invalid
		}
		return func(s wastore.LIDStore, ctx context.Context) any { return errClass(s.PutLIDMapping(ctx, l, p)) }
	}))
	add("LIDStore.PutManyLIDMappings", 2, true, lidOp(func(r *rand.Rand) func(wastore.LIDStore, context.Context) any {
		var ms []wastore.LIDMapping
		for range r.IntN(4) {
			m := wastore.LIDMapping{LID: randLID(r), PN: randPN(r)}
			if r.IntN(10) == 0 {
				m.LID, m.PN = m.PN, m.LID
			}
			ms = append(ms, m)
		}
		return func(s wastore.LIDStore, ctx context.Context) any {
			return errClass(s.PutManyLIDMappings(ctx, slices.Clone(ms)))
		}
	}))
	add("LIDStore.GetPNForLID", 3, true, lidOp(func(r *rand.Rand) func(wastore.LIDStore, context.Context) any {
		u := randUser(r)
		return func(s wastore.LIDStore, ctx context.Context) any {
			v, err := s.GetPNForLID(ctx, u)
			return res{v, errClass(err)}
		}
	}))
	add("LIDStore.GetLIDForPN", 3, true, lidOp(func(r *rand.Rand) func(wastore.LIDStore, context.Context) any {
		u := randUser(r)
		return func(s wastore.LIDStore, ctx context.Context) any {
			v, err := s.GetLIDForPN(ctx, u)
			return res{v, errClass(err)}
		}
	}))
	add("LIDStore.GetManyLIDsForPNs", 2, true, lidOp(func(r *rand.Rand) func(wastore.LIDStore, context.Context) any {
		var us []types.JID
		for range r.IntN(4) {
			us = append(us, randUser(r))
		}
		return func(s wastore.LIDStore, ctx context.Context) any {
			v, err := s.GetManyLIDsForPNs(ctx, us)
			return res{v, errClass(err)}
		}
	}))

	// Container.
	add("DeviceContainer.PutDevice", 2, false, func(r *rand.Rand) opFn {
		jid := pick(r, ourJIDs)
		mk := makeDevice(r, jid)
		fresh := r.IntN(3) == 0
		lid := randLID(r)
		push := pick(r, names)
		return func(w *diffWorld, ctx context.Context) any {
			h := w.handles[jid]
			if h == nil || h.Deleted || fresh {
				d := mk()
				d.LID, d.PushName = lid, push
				err := w.ctr.PutDevice(ctx, d)
				w.handles[jid] = d
				return res{errClass(err), deviceSummary(d)}
			}
			h.LID, h.PushName, h.Platform = lid, push, "ios"
			h.LIDMigrationTimestamp++
			return res{errClass(h.Save(ctx)), deviceSummary(h)}
		}
	})
	add("DeviceContainer.DeleteDevice", 1, false, func(r *rand.Rand) opFn {
		jid := pick(r, ourJIDs)
		return func(w *diffWorld, ctx context.Context) any {
			h := w.handles[jid]
			if h == nil {
				return "no handle"
			}
			return errClass(h.Delete(ctx))
		}
	})
	add("Container.GetDevice", 2, false, func(r *rand.Rand) opFn {
		jid := pick(r, ourJIDs)
		return func(w *diffWorld, ctx context.Context) any {
			d, err := w.ctr.GetDevice(ctx, mustJID(jid))
			if d != nil {
				w.handles[jid] = d
			}
			return res{deviceSummary(d), errClass(err)}
		}
	})
	add("Container.GetAllDevices", 1, false, func(r *rand.Rand) opFn {
		return func(w *diffWorld, ctx context.Context) any {
			ds, err := w.ctr.GetAllDevices(ctx)
			var out []any
			for _, d := range ds {
				out = append(out, deviceSummary(d))
			}
			return res{out, errClass(err)}
		}
	})
	add("Container.GetFirstDevice", 1, false, func(r *rand.Rand) opFn {
		return func(w *diffWorld, ctx context.Context) any {
			d, err := w.ctr.GetFirstDevice(ctx)
			return res{deviceSummary(d), errClass(err)}
		}
	})

	// DoDecryptionTxn: a few operations inside one transaction, then commit
	// or roll back. Both the inner answers and the effects must agree.
	var inner []opGen
	for _, o := range ops {
		if o.inTxn {
			inner = append(inner, o)
		}
	}
	add("EventBuffer.DoDecryptionTxn", 6, false, func(r *rand.Rand) opFn {
		jid, raw := pick(r, ourJIDs), r.IntN(5) == 0
		var subs []opFn
		var methods []string
		for range 1 + r.IntN(4) {
			o := pickWeighted(r, inner)
			methods = append(methods, o.method)
			subs = append(subs, o.make(r))
		}
		fail := r.IntN(3) == 0
		return func(w *diffWorld, ctx context.Context) any {
			var got []any
			err := w.st(jid, raw).DoDecryptionTxn(ctx, func(ctx context.Context) error {
				for i, sub := range subs {
					got = append(got, methods[i], sub(w, ctx))
				}
				if fail {
					return errors.New("roll back")
				}
				return nil
			})
			return res{got, errClass(err)}
		}
	})
	return ops
}

func pickWeighted(r *rand.Rand, ops []opGen) opGen {
	total := 0
	for _, o := range ops {
		total += o.weight
	}
	n := r.IntN(total)
	for _, o := range ops {
		if n < o.weight {
			return o
		}
		n -= o.weight
	}
	panic("unreachable")
}

// wantMethods lists every method of every store interface whatsmeow
// defines, by reflection, so a method added upstream fails the coverage
// check until the test exercises it.
func wantMethods() []string {
	ifaces := []reflect.Type{
		reflect.TypeFor[wastore.AllStores](),
		reflect.TypeFor[wastore.DeviceContainer](),
	}
	owners := []reflect.Type{
		reflect.TypeFor[wastore.IdentityStore](), reflect.TypeFor[wastore.SessionStore](),
		reflect.TypeFor[wastore.PreKeyStore](), reflect.TypeFor[wastore.SenderKeyStore](),
		reflect.TypeFor[wastore.AppStateSyncKeyStore](), reflect.TypeFor[wastore.AppStateStore](),
		reflect.TypeFor[wastore.ContactStore](), reflect.TypeFor[wastore.ChatSettingsStore](),
		reflect.TypeFor[wastore.MsgSecretStore](), reflect.TypeFor[wastore.PrivacyTokenStore](),
		reflect.TypeFor[wastore.NCTSaltStore](), reflect.TypeFor[wastore.EventBuffer](),
		reflect.TypeFor[wastore.LIDStore](), reflect.TypeFor[wastore.DeviceContainer](),
	}
	var out []string
	for _, it := range ifaces {
		for i := range it.NumMethod() {
			m := it.Method(i).Name
			owner := "?"
			for _, o := range owners {
				if _, ok := o.MethodByName(m); ok {
					owner = o.Name()
				}
			}
			out = append(out, owner+"."+m)
		}
	}
	// The container methods that are not in an interface.
	out = append(out, "Container.GetDevice", "Container.GetAllDevices", "Container.GetFirstDevice")
	sort.Strings(out)
	return slices.Compact(out)
}

func TestDeviceDiff(t *testing.T) {
	seeds := diffSeeds
	if *diffSeed != 0 {
		seeds = []uint64{*diffSeed}
	}
	covered := map[string]int{}
	total := 0
	for _, seed := range seeds {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			total += runDiff(t, seed, *diffOps, covered)
		})
	}
	if t.Failed() {
		return
	}
	var missing []string
	for _, m := range wantMethods() {
		if covered[m] == 0 {
			missing = append(missing, m)
		}
	}
	if len(missing) > 0 {
		t.Errorf("methods never exercised: %s", strings.Join(missing, ", "))
	}
	t.Logf("%d operations; %d of %d interface and container methods covered", total, len(wantMethods())-len(missing), len(wantMethods()))
}

func runDiff(t *testing.T, seed uint64, n int, covered map[string]int) int {
	ctx := context.Background()
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	worlds := []*diffWorld{newSQLWorld(t), newBoltWorld(t)}
	ops := diffOpsTable()
	var log []string
	for i := range n {
		o := pickWeighted(r, ops)
		// The first operations save both devices, so most later ones work.
		if i < len(ourJIDs) {
			o = ops[slices.IndexFunc(ops, func(o opGen) bool { return o.method == "DeviceContainer.PutDevice" })]
		}
		fn := o.make(r)
		var answers []any
		for _, w := range worlds {
			answers = append(answers, fn(w, ctx))
		}
		covered[o.method]++
		if o.method == "EventBuffer.DoDecryptionTxn" {
			// The inner answers alternate method name, answer.
			inner, _ := answers[0].(res)[0].([]any)
			for j := 0; j < len(inner); j += 2 {
				covered[inner[j].(string)]++
			}
		}
		log = append(log, o.method)
		if !reflect.DeepEqual(answers[0], answers[1]) {
			tail := log[max(0, len(log)-15):]
			t.Fatalf("seed %d op %d %s:\nsqlstore: %s\nbolt:     %s\nlast ops: %s\nrerun: go test ./bridge/store/ -run TestDeviceDiff -seed %d",
				seed, i, o.method, show(answers[0]), show(answers[1]), strings.Join(tail, " "), seed)
		}
	}
	return n
}

// show prints an answer with pointers followed; JSON keeps nil (null) and
// empty ("") byte slices apart.
func show(v any) string {
	b, err := json.Marshal(v)
	s := string(b)
	if err != nil {
		s = fmt.Sprintf("%#v", v)
	}
	if len(s) > 2000 {
		s = s[:2000] + "…"
	}
	return s
}

// TestDeviceDiffMethodList pins the reflection above to the interfaces we
// know, so the coverage check cannot pass vacuously.
func TestDeviceDiffMethodList(t *testing.T) {
	got := wantMethods()
	if len(got) < 60 {
		t.Fatalf("only %d methods found: %v", len(got), got)
	}
	for _, m := range got {
		if strings.HasPrefix(m, "?.") {
			t.Errorf("method %s belongs to no known interface: add it to owners and the op table", m)
		}
	}
	ops := diffOpsTable()
	for _, m := range got {
		if !slices.ContainsFunc(ops, func(o opGen) bool { return o.method == m }) {
			t.Errorf("no operation for %s", m)
		}
	}
}

func mustJID(s string) types.JID {
	j, err := types.ParseJID(s)
	if err != nil {
		panic(err)
	}
	return j
}
