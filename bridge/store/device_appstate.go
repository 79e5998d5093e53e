package store

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"

	bolt "go.etcd.io/bbolt"
	wastore "go.mau.fi/whatsmeow/store"
)

// --- AppStateSyncKeyStore ---

// PutAppStateSyncKey inserts the key, or replaces a stored one only if the
// new timestamp is later (sqlstore's ON CONFLICT ... WHERE excluded.timestamp
// > timestamp).
func (s *deviceStore) PutAppStateSyncKey(ctx context.Context, id []byte, key wastore.AppStateSyncKey) error {
	if len(id) == 0 {
		return errors.New("store: app state sync key id must not be empty")
	}
	if key.Data == nil || key.Fingerprint == nil {
		return errors.New("store: app state sync key data and fingerprint must not be null")
	}
	return s.db.update(ctx, func(tx *bolt.Tx) error {
		b, err := s.write(tx, bktSyncKey)
		if err != nil {
			return err
		}
		if v := b.Get(id); v != nil {
			old, err := decodeSyncKey(id, v)
			if err != nil {
				return err
			}
			if key.Timestamp <= old.timestamp {
				return nil
			}
		}
		return b.Put(id, syncKeyRecord{timestamp: key.Timestamp, data: key.Data, fingerprint: key.Fingerprint}.encode())
	})
}

// GetAppStateSyncKey returns nil, nil for an unknown ID.
func (s *deviceStore) GetAppStateSyncKey(ctx context.Context, id []byte) (*wastore.AppStateSyncKey, error) {
	var out *wastore.AppStateSyncKey
	err := s.db.view(ctx, func(tx *bolt.Tx) error {
		b := s.read(tx, bktSyncKey)
		if b == nil || len(id) == 0 {
			return nil
		}
		v := b.Get(id)
		if v == nil {
			return nil
		}
		r, err := decodeSyncKey(id, v)
		if err != nil {
			return err
		}
		out = &wastore.AppStateSyncKey{Data: r.data, Fingerprint: r.fingerprint, Timestamp: r.timestamp}
		return nil
	})
	return out, err
}

type syncKeyRow struct {
	id []byte
	syncKeyRecord
}

// syncKeysNewestFirst is sqlstore's ORDER BY timestamp DESC. SQLite sorts
// the rows it reads in primary-key order with a stable sort, so equal
// timestamps come in key-ID order; we do the same.
func (s *deviceStore) syncKeysNewestFirst(tx *bolt.Tx) ([]syncKeyRow, error) {
	b := s.read(tx, bktSyncKey)
	if b == nil {
		return nil, nil
	}
	var rows []syncKeyRow
	err := b.ForEach(func(k, v []byte) error {
		r, err := decodeSyncKey(k, v)
		if err != nil {
			return err
		}
		rows = append(rows, syncKeyRow{slices.Clone(k), r})
		return nil
	})
	slices.SortStableFunc(rows, func(a, b syncKeyRow) int { return cmp.Compare(b.timestamp, a.timestamp) })
	return rows, err
}

// GetLatestAppStateSyncKeyID returns the ID of the newest key, or nil.
func (s *deviceStore) GetLatestAppStateSyncKeyID(ctx context.Context) ([]byte, error) {
	var out []byte
	err := s.db.view(ctx, func(tx *bolt.Tx) error {
		rows, err := s.syncKeysNewestFirst(tx)
		if err == nil && len(rows) > 0 {
			out = rows[0].id
		}
		return err
	})
	return out, err
}

// GetAllAppStateSyncKeys returns every key, newest first (nil for none).
func (s *deviceStore) GetAllAppStateSyncKeys(ctx context.Context) ([]*wastore.AppStateSyncKey, error) {
	var out []*wastore.AppStateSyncKey
	err := s.db.view(ctx, func(tx *bolt.Tx) error {
		rows, err := s.syncKeysNewestFirst(tx)
		for _, r := range rows {
			out = append(out, &wastore.AppStateSyncKey{Data: r.data, Fingerprint: r.fingerprint, Timestamp: r.timestamp})
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// --- AppStateStore ---

func (s *deviceStore) PutAppStateVersion(ctx context.Context, name string, version uint64, hash [128]byte) error {
	if name == "" {
		return errors.New("store: app state name must not be empty")
	}
	if version > math.MaxInt64 {
		return errBigUint
	}
	return s.db.update(ctx, func(tx *bolt.Tx) error {
		b, err := s.write(tx, bktASVersion)
		if err != nil {
			return err
		}
		return b.Put([]byte(name), versionRecord{version: version, hash: hash[:]}.encode())
	})
}

// GetAppStateVersion returns 0 and a zero hash for an unknown name (the
// initial state), and an error for a stored version 0, as sqlstore does.
func (s *deviceStore) GetAppStateVersion(ctx context.Context, name string) (version uint64, hash [128]byte, err error) {
	err = s.db.view(ctx, func(tx *bolt.Tx) error {
		b := s.read(tx, bktASVersion)
		if b == nil || name == "" {
			return nil
		}
		v := b.Get([]byte(name))
		if v == nil {
			return nil
		}
		r, err := decodeVersion([]byte(name), v)
		if err != nil {
			return err
		}
		version = r.version
		switch {
		case len(r.hash) != 128:
			return ErrInvalidLength
		case r.version == 0:
			return fmt.Errorf("invalid saved app state version 0 for name %s (hash %x)", name, r.hash)
		}
		hash = [128]byte(r.hash)
		return nil
	})
	return version, hash, err
}

// DeleteAppStateVersion deletes the version and, through sqlstore's foreign
// key from the MAC table, every mutation MAC of name.
func (s *deviceStore) DeleteAppStateVersion(ctx context.Context, name string) error {
	return s.db.update(ctx, func(tx *bolt.Tx) error {
		if b := s.read(tx, bktASVersion); b != nil && name != "" {
			if err := b.Delete([]byte(name)); err != nil {
				return err
			}
		}
		return deletePrefix(s.read(tx, bktASMAC), lp(name))
	})
}

// errBigUint is database/sql's refusal of a uint64 with the high bit set
// (the columns are signed BIGINT), which sqlstore returns for such versions.
var errBigUint = errors.New("store: uint64 values with high bit set are not supported")

const macLen = 32 // CHECK (length(index_mac) = 32), same for value_mac

func macKey(name string, indexMAC []byte, version uint64) []byte {
	return binary.BigEndian.AppendUint64(append(lp(name), indexMAC...), version)
}

// PutAppStateMutationMACs inserts the MACs (plain INSERT: an existing
// name/version/index is an error). Like sqlstore's foreign key, name must
// have a stored version. Everything is checked before anything is written,
// so a failed call leaves no partial batch even inside DoDecryptionTxn.
func (s *deviceStore) PutAppStateMutationMACs(ctx context.Context, name string, version uint64, mutations []wastore.AppStateMutationMAC) error {
	if len(mutations) == 0 {
		return nil
	}
	if version > math.MaxInt64 {
		return errBigUint
	}
	return s.db.update(ctx, func(tx *bolt.Tx) error {
		if vb := s.read(tx, bktASVersion); vb == nil || name == "" || vb.Get([]byte(name)) == nil {
			return fmt.Errorf("store: app state %q has no version: %w", name, errNoDevice)
		}
		b, err := s.write(tx, bktASMAC)
		if err != nil {
			return err
		}
		seen := make(map[string]struct{}, len(mutations))
		for _, m := range mutations {
			if len(m.IndexMAC) != macLen || len(m.ValueMAC) != macLen {
				return fmt.Errorf("store: mutation MAC lengths %d/%d, want %d", len(m.IndexMAC), len(m.ValueMAC), macLen)
			}
			k := string(macKey(name, m.IndexMAC, version))
			if _, dup := seen[k]; dup || b.Get([]byte(k)) != nil {
				return fmt.Errorf("store: mutation MAC %x of %s version %d already exists", m.IndexMAC, name, version)
			}
			seen[k] = struct{}{}
		}
		for _, m := range mutations {
			if err := b.Put(macKey(name, m.IndexMAC, version), encodeBlob(m.ValueMAC)); err != nil {
				return err
			}
		}
		return nil
	})
}

// DeleteAppStateMutationMACs deletes every version of the given index MACs.
func (s *deviceStore) DeleteAppStateMutationMACs(ctx context.Context, name string, indexMACs [][]byte) error {
	if len(indexMACs) == 0 {
		return nil
	}
	return s.db.update(ctx, func(tx *bolt.Tx) error {
		b := s.read(tx, bktASMAC)
		for _, im := range indexMACs {
			if len(im) != macLen {
				continue // no stored row can have it
			}
			if err := deletePrefix(b, append(lp(name), im...)); err != nil {
				return err
			}
		}
		return nil
	})
}

// GetAppStateMutationMAC returns the value MAC of the highest version of
// indexMAC, or nil.
func (s *deviceStore) GetAppStateMutationMAC(ctx context.Context, name string, indexMAC []byte) ([]byte, error) {
	var out []byte
	err := s.db.view(ctx, func(tx *bolt.Tx) error {
		b := s.read(tx, bktASMAC)
		if b == nil || len(indexMAC) != macLen {
			return nil
		}
		prefix := append(lp(name), indexMAC...)
		// Seek past the largest possible version, then step back.
		c := b.Cursor()
		top := binary.BigEndian.AppendUint64(slices.Clone(prefix), ^uint64(0))
		k, v := c.Seek(top)
		switch {
		case k == nil:
			k, v = c.Last()
		case !bytes.Equal(k, top):
			k, v = c.Prev()
		}
		if k == nil || !bytes.HasPrefix(k, prefix) {
			return nil
		}
		var err error
		out, err = decodeFixedBlob(bktASMAC, k, v, macLen)
		return err
	})
	return out, err
}
