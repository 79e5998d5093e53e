package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	bolt "go.etcd.io/bbolt"
	wastore "go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/util/keys"
)

// deviceStore implements every per-device store of whatsmeow for one device,
// like sqlstore.SQLStore. Each method is one bbolt transaction, or part of
// the caller's if its context comes from DoDecryptionTxn.
type deviceStore struct {
	c   *Devices
	db  *DB
	jid []byte // our JID string: the sub-bucket name in every table

	// preKeyLock serialises pre-key ID allocation, as in sqlstore (the
	// bbolt write lock would too, except inside DoDecryptionTxn).
	preKeyLock sync.Mutex

	// migrated holds the PN signal users MigratePNToLID has handled. Like
	// sqlstore's migratedPNSessionsCache it is per store and never cleared,
	// so a second call for the same PN does nothing, even if the first
	// failed.
	migratedMu sync.Mutex
	migrated   map[string]struct{}
}

var (
	_ wastore.AllSessionSpecificStores = (*deviceStore)(nil)
	_ wastore.IdentityStore            = (*deviceStore)(nil)
	_ wastore.SessionStore             = (*deviceStore)(nil)
	_ wastore.PreKeyStore              = (*deviceStore)(nil)
	_ wastore.SenderKeyStore           = (*deviceStore)(nil)
	_ wastore.AppStateSyncKeyStore     = (*deviceStore)(nil)
	_ wastore.AppStateStore            = (*deviceStore)(nil)
	_ wastore.ContactStore             = (*deviceStore)(nil)
	_ wastore.ChatSettingsStore        = (*deviceStore)(nil)
	_ wastore.MsgSecretStore           = (*deviceStore)(nil)
	_ wastore.PrivacyTokenStore        = (*deviceStore)(nil)
	_ wastore.NCTSaltStore             = (*deviceStore)(nil)
	_ wastore.EventBuffer              = (*deviceStore)(nil)
)

// ErrInvalidLength is returned for a stored key of the wrong length, like
// sqlstore.ErrInvalidLength.
var ErrInvalidLength = errors.New("store: stored byte array has illegal length")

func newDeviceStore(c *Devices, jid types.JID) *deviceStore {
	return &deviceStore{c: c, db: c.db, jid: []byte(jid.String()), migrated: make(map[string]struct{})}
}

// read returns this device's sub-bucket of table, or nil if it has none.
func (s *deviceStore) read(tx *bolt.Tx, table []byte) *bolt.Bucket {
	return tx.Bucket(table).Bucket(s.jid)
}

// write returns this device's sub-bucket of table for inserting rows. It
// fails like a foreign-key violation if the device is not saved.
func (s *deviceStore) write(tx *bolt.Tx, table []byte) (*bolt.Bucket, error) {
	if err := deviceExists(tx, s.jid); err != nil {
		return nil, err
	}
	return tx.Bucket(table).CreateBucketIfNotExists(s.jid)
}

// deletePrefix deletes every key starting with prefix. Keys are collected
// first: deleting under a bbolt cursor skips entries.
func deletePrefix(b *bolt.Bucket, prefix []byte) error {
	if b == nil {
		return nil
	}
	var del [][]byte
	c := b.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		del = append(del, slices.Clone(k))
	}
	for _, k := range del {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// --- IdentityStore ---

// PutIdentity stores a contact device's identity key. libsignal saves it
// with every message encrypted for the device (SessionCipher.Encrypt),
// nearly always unchanged: the same key is read, not written (a write
// transaction that changes nothing still costs a commit, one per
// recipient device of every message sent).
func (s *deviceStore) PutIdentity(ctx context.Context, address string, key [32]byte) error {
	same := false
	if err := s.db.view(ctx, func(tx *bolt.Tx) error {
		if b := s.read(tx, bktIdentity); b != nil {
			if v := b.Get([]byte(address)); v != nil {
				old, err := decodeBlob(bktIdentity, []byte(address), v)
				same = err == nil && bytes.Equal(old, key[:])
			}
		}
		return nil
	}); err == nil && same {
		return nil
	}
	return s.db.update(ctx, func(tx *bolt.Tx) error {
		b, err := s.write(tx, bktIdentity)
		if err != nil {
			return err
		}
		return b.Put([]byte(address), encodeBlob(key[:]))
	})
}

// DeleteAllIdentities deletes the identities of every device of phone.
// sqlstore matches `their_id LIKE phone || ':%'`; phone is a user's digits,
// where LIKE and a prefix match agree.
func (s *deviceStore) DeleteAllIdentities(ctx context.Context, phone string) error {
	return s.db.update(ctx, func(tx *bolt.Tx) error {
		return deletePrefix(s.read(tx, bktIdentity), []byte(phone+":"))
	})
}

// DeleteIdentity deletes one address. sqlstore uses `their_id LIKE address`
// (it reuses the DeleteAllIdentities query), which in SQLite also treats
// '_' as a wildcard and ignores ASCII case. We match the address exactly:
// in a real address "<user>[_<agent>]:<device>" the '_' wildcard can only
// match a user one character longer than a LID user, which does not exist,
// and over-deleting another contact's identity would break their session.
func (s *deviceStore) DeleteIdentity(ctx context.Context, address string) error {
	return s.db.update(ctx, func(tx *bolt.Tx) error {
		if b := s.read(tx, bktIdentity); b != nil {
			return b.Delete([]byte(address))
		}
		return nil
	})
}

// IsTrustedIdentity trusts unknown addresses (whatsmeow saves the key right
// after), and known ones only with the same key.
func (s *deviceStore) IsTrustedIdentity(ctx context.Context, address string, key [32]byte) (bool, error) {
	var trusted bool
	err := s.db.view(ctx, func(tx *bolt.Tx) error {
		b := s.read(tx, bktIdentity)
		var v []byte
		if b != nil {
			v = b.Get([]byte(address))
		}
		if v == nil {
			trusted = true
			return nil
		}
		old, err := decodeBlob(bktIdentity, []byte(address), v)
		if err != nil {
			return err
		}
		if len(old) != 32 {
			return ErrInvalidLength
		}
		trusted = bytes.Equal(old, key[:])
		return nil
	})
	return trusted, err
}

// --- SessionStore ---

// GetSession returns nil, nil for an unknown address.
func (s *deviceStore) GetSession(ctx context.Context, address string) ([]byte, error) {
	var out []byte
	err := s.db.view(ctx, func(tx *bolt.Tx) error {
		b := s.read(tx, bktSession)
		if b == nil {
			return nil
		}
		v := b.Get([]byte(address))
		if v == nil {
			return nil
		}
		var err error
		out, err = decodeBlob(bktSession, []byte(address), v)
		return err
	})
	return out, err
}

// HasSession reports whether a row exists, even one holding a NULL session.
func (s *deviceStore) HasSession(ctx context.Context, address string) (bool, error) {
	var has bool
	err := s.db.view(ctx, func(tx *bolt.Tx) error {
		if b := s.read(tx, bktSession); b != nil {
			has = b.Get([]byte(address)) != nil
		}
		return nil
	})
	return has, err
}

// GetManySessions returns nil for no addresses; otherwise a map with every
// requested address, nil where there is no session.
func (s *deviceStore) GetManySessions(ctx context.Context, addresses []string) (map[string][]byte, error) {
	if len(addresses) == 0 {
		return nil, nil
	}
	result := make(map[string][]byte, len(addresses))
	err := s.db.view(ctx, func(tx *bolt.Tx) error {
		b := s.read(tx, bktSession)
		for _, addr := range addresses {
			result[addr] = nil
			if b == nil {
				continue
			}
			if v := b.Get([]byte(addr)); v != nil {
				sess, err := decodeBlob(bktSession, []byte(addr), v)
				if err != nil {
					return err
				}
				result[addr] = sess
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return result, nil
}

func (s *deviceStore) PutSession(ctx context.Context, address string, session []byte) error {
	return s.db.update(ctx, func(tx *bolt.Tx) error {
		b, err := s.write(tx, bktSession)
		if err != nil {
			return err
		}
		return b.Put([]byte(address), encodeBlob(session))
	})
}

// PutManySessions stores all sessions in one transaction.
func (s *deviceStore) PutManySessions(ctx context.Context, sessions map[string][]byte) error {
	if len(sessions) == 0 {
		return nil
	}
	return s.db.update(ctx, func(tx *bolt.Tx) error {
		b, err := s.write(tx, bktSession)
		if err != nil {
			return err
		}
		for addr, sess := range sessions {
			if err := b.Put([]byte(addr), encodeBlob(sess)); err != nil {
				return err
			}
		}
		return nil
	})
}

// DeleteAllSessions deletes the sessions with every device of phone
// (`their_id LIKE phone || ':%'` in sqlstore).
func (s *deviceStore) DeleteAllSessions(ctx context.Context, phone string) error {
	return s.db.update(ctx, func(tx *bolt.Tx) error {
		return deletePrefix(s.read(tx, bktSession), []byte(phone+":"))
	})
}

func (s *deviceStore) DeleteSession(ctx context.Context, address string) error {
	return s.db.update(ctx, func(tx *bolt.Tx) error {
		if b := s.read(tx, bktSession); b != nil {
			return b.Delete([]byte(address))
		}
		return nil
	})
}

// MigratePNToLID moves the sessions, identity keys and sender keys of every
// device of pn to the same device of lid, overwriting what lid had, and
// deletes the PN rows, in one transaction. sqlstore rewrites the address
// with SQL replace(), which replaces every occurrence of the PN user; we
// replace the leading one. They differ only if the device number contains
// the whole phone number, which cannot happen (device numbers are < 100).
func (s *deviceStore) MigratePNToLID(ctx context.Context, pn, lid types.JID) error {
	pnSignal := pn.SignalAddressUser()
	s.migratedMu.Lock()
	_, done := s.migrated[pnSignal]
	s.migrated[pnSignal] = struct{}{}
	s.migratedMu.Unlock()
	if done {
		return nil
	}
	lidSignal := lid.SignalAddressUser()
	from := []byte(pnSignal + ":")
	// whatsmeow asks for every sender once a run (message.go's
	// decryptMessages), nearly always with nothing left to move: that is
	// read, not written (a write transaction that changes nothing still
	// costs a commit). Anything else, an error too, goes the full way.
	pending := true
	if err := s.db.view(ctx, func(tx *bolt.Tx) error {
		pending = s.anyToMigrate(tx, from)
		return nil
	}); err == nil && !pending {
		s.c.log.Debugf("No sessions or sender keys found to migrate from %s to %s", pnSignal, lidSignal)
		return nil
	}
	var sessions, identities, senderKeys int
	err := s.db.update(ctx, func(tx *bolt.Tx) error {
		var err error
		if sessions, err = migratePrefix(tx, s, bktSession, from, lidSignal); err != nil {
			return fmt.Errorf("failed to migrate sessions: %w", err)
		}
		if identities, err = migratePrefix(tx, s, bktIdentity, from, lidSignal); err != nil {
			return fmt.Errorf("failed to migrate identity keys: %w", err)
		}
		if senderKeys, err = s.migrateSenderKeys(tx, from, lidSignal); err != nil {
			return fmt.Errorf("failed to migrate sender keys: %w", err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if sessions > 0 || identities > 0 || senderKeys > 0 {
		s.c.log.Infof("Migrated %d sessions, %d identity keys and %d sender keys from %s to %s", sessions, identities, senderKeys, pnSignal, lidSignal)
	} else {
		s.c.log.Debugf("No sessions or sender keys found to migrate from %s to %s", pnSignal, lidSignal)
	}
	return nil
}

// anyToMigrate reports whether MigratePNToLID would move a row under
// from, or may fail (a damaged sender key).
func (s *deviceStore) anyToMigrate(tx *bolt.Tx, from []byte) bool {
	for _, table := range [][]byte{bktSession, bktIdentity} {
		if b := s.read(tx, table); b != nil {
			if k, _ := b.Cursor().Seek(from); k != nil && bytes.HasPrefix(k, from) {
				return true
			}
		}
	}
	b := s.read(tx, bktSenderKey)
	if b == nil {
		return false
	}
	found := errors.New("found")
	err := b.ForEach(func(k, _ []byte) error {
		if _, sender, ok := splitLP(k); !ok || bytes.HasPrefix(sender, from) {
			return found
		}
		return nil
	})
	return err != nil
}

// migratePrefix copies the rows under from ("<pn>:") to "<lid>:", then
// deletes the rows under from, in sqlstore's order (so pn == lid deletes).
func migratePrefix(tx *bolt.Tx, s *deviceStore, table, from []byte, lidSignal string) (int, error) {
	b := s.read(tx, table)
	if b == nil {
		return 0, nil
	}
	type kv struct{ k, v []byte }
	var rows []kv
	c := b.Cursor()
	for k, v := c.Seek(from); k != nil && bytes.HasPrefix(k, from); k, v = c.Next() {
		rows = append(rows, kv{slices.Clone(k), slices.Clone(v)})
	}
	for _, r := range rows {
		nk := append([]byte(lidSignal), r.k[len(from)-1:]...)
		if err := b.Put(nk, r.v); err != nil {
			return 0, err
		}
	}
	return len(rows), deletePrefix(b, from)
}

func (s *deviceStore) migrateSenderKeys(tx *bolt.Tx, from []byte, lidSignal string) (int, error) {
	b := s.read(tx, bktSenderKey)
	if b == nil {
		return 0, nil
	}
	type kv struct{ k, nk, v []byte }
	var rows []kv
	err := b.ForEach(func(k, v []byte) error {
		chat, sender, ok := splitLP(k)
		if !ok {
			return &CorruptError{Bucket: string(bktSenderKey), Key: slices.Clone(k), Reason: "bad key"}
		}
		if bytes.HasPrefix(sender, from) {
			nk := append(lp(string(chat)), lidSignal...)
			nk = append(nk, sender[len(from)-1:]...)
			rows = append(rows, kv{slices.Clone(k), nk, slices.Clone(v)})
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	for _, r := range rows {
		if err := b.Put(r.nk, r.v); err != nil {
			return 0, err
		}
	}
	// Delete after all copies, as sqlstore does with a second statement
	// (so pn == lid deletes, there as here).
	for _, r := range rows {
		if err := b.Delete(r.k); err != nil {
			return 0, err
		}
	}
	return len(rows), nil
}

// --- PreKeyStore ---

// maxPreKeyID is one past the largest key_id sqlstore's CHECK allows.
const maxPreKeyID = 1 << 24

// nextPreKeyID is MAX(key_id)+1, or 1 with no keys (deleted keys' IDs are
// reused only if they were the highest, as in sqlstore).
func (s *deviceStore) nextPreKeyID(tx *bolt.Tx) (uint32, error) {
	b := s.read(tx, bktPreKey)
	if b == nil {
		return 1, nil
	}
	k, _ := b.Cursor().Last()
	if k == nil {
		return 1, nil
	}
	if len(k) != 4 {
		return 0, &CorruptError{Bucket: string(bktPreKey), Key: slices.Clone(k), Reason: "bad key"}
	}
	return u32(k) + 1, nil
}

func u32(b []byte) uint32 {
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func (s *deviceStore) insertPreKey(tx *bolt.Tx, key *keys.PreKey, uploaded bool) error {
	if key.KeyID >= maxPreKeyID {
		return fmt.Errorf("store: pre-key id %d out of range", key.KeyID)
	}
	b, err := s.write(tx, bktPreKey)
	if err != nil {
		return err
	}
	k := u32Key(key.KeyID)
	if b.Get(k) != nil {
		return fmt.Errorf("store: pre-key %d already exists", key.KeyID)
	}
	return b.Put(k, preKeyRecord{uploaded: uploaded, priv: *key.Priv}.encode())
}

// GenOnePreKey generates and stores one pre-key marked as uploaded. Like
// sqlstore it returns the key even when storing it failed.
func (s *deviceStore) GenOnePreKey(ctx context.Context) (*keys.PreKey, error) {
	s.preKeyLock.Lock()
	defer s.preKeyLock.Unlock()
	var key *keys.PreKey
	err := s.db.update(ctx, func(tx *bolt.Tx) error {
		id, err := s.nextPreKeyID(tx)
		if err != nil {
			return err
		}
		key = keys.NewPreKey(id)
		return s.insertPreKey(tx, key, true)
	})
	return key, err
}

// GetOrGenPreKeys returns up to count not-yet-uploaded pre-keys in ID order,
// generating new ones (IDs after the highest stored) to make up count.
// sqlstore inserts them one statement at a time, so a failure can leave some
// behind; here they are stored all or none.
func (s *deviceStore) GetOrGenPreKeys(ctx context.Context, count uint32) ([]*keys.PreKey, error) {
	s.preKeyLock.Lock()
	defer s.preKeyLock.Unlock()
	var out []*keys.PreKey
	err := s.db.update(ctx, func(tx *bolt.Tx) error {
		out = nil
		if b := s.read(tx, bktPreKey); b != nil && count > 0 {
			c := b.Cursor()
			for k, v := c.First(); k != nil && uint32(len(out)) < count; k, v = c.Next() {
				r, err := decodePreKey(k, v)
				if err != nil {
					return fmt.Errorf("failed to query existing prekeys: %w", err)
				}
				if !r.uploaded {
					out = append(out, &keys.PreKey{KeyPair: *keys.NewKeyPairFromPrivateKey(r.priv), KeyID: u32(k)})
				}
			}
		}
		have := uint32(len(out))
		if count <= have {
			return nil
		}
		next, err := s.nextPreKeyID(tx)
		if err != nil {
			return err
		}
		out = slices.Grow(out, int(count-have))[:count]
		for i := have; i < count; i++ {
			out[i] = keys.NewPreKey(next)
			if err := s.insertPreKey(tx, out[i], false); err != nil {
				return fmt.Errorf("failed to generate prekey: %w", err)
			}
			next++
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// GetPreKey returns nil, nil for an unknown ID.
func (s *deviceStore) GetPreKey(ctx context.Context, id uint32) (*keys.PreKey, error) {
	var out *keys.PreKey
	err := s.db.view(ctx, func(tx *bolt.Tx) error {
		b := s.read(tx, bktPreKey)
		if b == nil {
			return nil
		}
		k := u32Key(id)
		v := b.Get(k)
		if v == nil {
			return nil
		}
		r, err := decodePreKey(k, v)
		if err != nil {
			return err
		}
		out = &keys.PreKey{KeyPair: *keys.NewKeyPairFromPrivateKey(r.priv), KeyID: id}
		return nil
	})
	return out, err
}

func (s *deviceStore) RemovePreKey(ctx context.Context, id uint32) error {
	return s.db.update(ctx, func(tx *bolt.Tx) error {
		if b := s.read(tx, bktPreKey); b != nil {
			return b.Delete(u32Key(id))
		}
		return nil
	})
}

// MarkPreKeysAsUploaded marks every key with ID <= upToID.
func (s *deviceStore) MarkPreKeysAsUploaded(ctx context.Context, upToID uint32) error {
	return s.db.update(ctx, func(tx *bolt.Tx) error {
		b := s.read(tx, bktPreKey)
		if b == nil {
			return nil
		}
		type kv struct {
			k []byte
			r preKeyRecord
		}
		var upd []kv
		c := b.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			r, err := decodePreKey(k, v)
			if err != nil {
				return err
			}
			if u32(k) > upToID {
				break
			}
			if !r.uploaded {
				r.uploaded = true
				upd = append(upd, kv{slices.Clone(k), r})
			}
		}
		for _, u := range upd {
			if err := b.Put(u.k, u.r.encode()); err != nil {
				return err
			}
		}
		return nil
	})
}

func (s *deviceStore) UploadedPreKeyCount(ctx context.Context) (int, error) {
	n := 0
	err := s.db.view(ctx, func(tx *bolt.Tx) error {
		b := s.read(tx, bktPreKey)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			r, err := decodePreKey(k, v)
			if err != nil {
				return err
			}
			if r.uploaded {
				n++
			}
			return nil
		})
	})
	return n, err
}

// --- SenderKeyStore ---

func (s *deviceStore) PutSenderKey(ctx context.Context, group, user string, session []byte) error {
	if session == nil {
		return errors.New("store: sender key must not be null")
	}
	return s.db.update(ctx, func(tx *bolt.Tx) error {
		b, err := s.write(tx, bktSenderKey)
		if err != nil {
			return err
		}
		return b.Put(append(lp(group), user...), encodeBlob(session))
	})
}

// GetSenderKey returns nil, nil for an unknown sender.
func (s *deviceStore) GetSenderKey(ctx context.Context, group, user string) ([]byte, error) {
	var out []byte
	err := s.db.view(ctx, func(tx *bolt.Tx) error {
		b := s.read(tx, bktSenderKey)
		if b == nil {
			return nil
		}
		k := append(lp(group), user...)
		v := b.Get(k)
		if v == nil {
			return nil
		}
		var err error
		out, err = decodeBlob(bktSenderKey, k, v)
		return err
	})
	return out, err
}
