package store

import (
	"context"
	"fmt"

	bolt "go.etcd.io/bbolt"
	wastore "go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"
)

// lidStore maps LID users to phone-number users and back, for every device
// in the file (sqlstore's whatsmeow_lid_map has no our_jid). Both
// directions are unique, so it is kept as two buckets updated together.
type lidStore struct {
	c *Devices
}

var _ wastore.LIDStore = (*lidStore)(nil)

func (s *lidStore) lookup(ctx context.Context, bucket []byte, user string) (string, error) {
	if err := s.c.init(); err != nil {
		return "", err
	}
	var out string
	err := s.c.db.view(ctx, func(tx *bolt.Tx) error {
		if user != "" {
			out = string(tx.Bucket(bucket).Get([]byte(user)))
		}
		return nil
	})
	return out, err
}

// GetLIDForPN returns the LID of a phone-number JID, keeping its device, or
// an empty JID if unknown. Any other server is an error.
func (s *lidStore) GetLIDForPN(ctx context.Context, pn types.JID) (types.JID, error) {
	if pn.Server != types.DefaultUserServer {
		return types.JID{}, fmt.Errorf("invalid GetLIDForPN call with non-PN JID %s", pn)
	}
	lid, err := s.lookup(ctx, bktPNToLID, pn.User)
	if err != nil || lid == "" {
		return types.JID{}, err
	}
	return types.JID{User: lid, Device: pn.Device, Server: types.HiddenUserServer}, nil
}

// GetPNForLID is GetLIDForPN the other way.
func (s *lidStore) GetPNForLID(ctx context.Context, lid types.JID) (types.JID, error) {
	if lid.Server != types.HiddenUserServer {
		return types.JID{}, fmt.Errorf("invalid GetPNForLID call with non-LID JID %s", lid)
	}
	pn, err := s.lookup(ctx, bktLIDToPN, lid.User)
	if err != nil || pn == "" {
		return types.JID{}, err
	}
	return types.JID{User: pn, Device: lid.Device, Server: types.DefaultUserServer}, nil
}

// GetManyLIDsForPNs returns the known LIDs of the phone-number JIDs among
// pns (other servers are skipped), nil for no input. Like sqlstore's query
// path, each result is the input JID with user and server replaced.
func (s *lidStore) GetManyLIDsForPNs(ctx context.Context, pns []types.JID) (map[types.JID]types.JID, error) {
	if len(pns) == 0 {
		return nil, nil
	}
	if err := s.c.init(); err != nil {
		return nil, err
	}
	result := make(map[types.JID]types.JID, len(pns))
	err := s.c.db.view(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bktPNToLID)
		for _, pn := range pns {
			if pn.Server != types.DefaultUserServer || pn.User == "" {
				continue
			}
			if lid := b.Get([]byte(pn.User)); lid != nil {
				j := pn
				j.Server = types.HiddenUserServer
				j.User = string(lid)
				result[pn] = j
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return result, nil
}

// PutLIDMapping records lid ↔ pn, replacing any other mapping of either.
func (s *lidStore) PutLIDMapping(ctx context.Context, lid, pn types.JID) error {
	if lid.Server != types.HiddenUserServer || pn.Server != types.DefaultUserServer {
		return fmt.Errorf("invalid PutLIDMapping call %s/%s", lid, pn)
	}
	if err := s.c.init(); err != nil {
		return err
	}
	// whatsmeow stores the pair of every message that names both
	// (message.go's handleEncryptedMessage): nearly always one it knows.
	// A write transaction that changes nothing still costs a commit.
	known := false
	err := s.c.db.view(ctx, func(tx *bolt.Tx) error {
		known = string(tx.Bucket(bktLIDToPN).Get([]byte(lid.User))) == pn.User &&
			string(tx.Bucket(bktPNToLID).Get([]byte(pn.User))) == lid.User
		return nil
	})
	if err != nil || known {
		return err
	}
	return s.c.db.update(ctx, func(tx *bolt.Tx) error {
		return putLIDMapping(tx, lid.User, pn.User)
	})
}

// PutManyLIDMappings records many mappings in one transaction, in order,
// skipping invalid entries and later duplicates (sqlstore's
// exslices.DeduplicateUnsortedOverwrite keeps the first). sqlstore also
// drops, before applying any, entries its cache already knows; that only
// differs from applying them in order when one batch maps a PN twice, and
// then the last entry wins here, as with sqlstore's cold cache.
func (s *lidStore) PutManyLIDMappings(ctx context.Context, mappings []wastore.LIDMapping) error {
	var valid []wastore.LIDMapping
	seen := make(map[wastore.LIDMapping]struct{}, len(mappings))
	for _, m := range mappings {
		if m.LID.Server != types.HiddenUserServer || m.PN.Server != types.DefaultUserServer {
			continue
		}
		if _, dup := seen[m]; dup {
			continue
		}
		seen[m] = struct{}{}
		valid = append(valid, m)
	}
	if len(valid) == 0 {
		return nil
	}
	if err := s.c.init(); err != nil {
		return err
	}
	return s.c.db.update(ctx, func(tx *bolt.Tx) error {
		for _, m := range valid {
			if err := putLIDMapping(tx, m.LID.User, m.PN.User); err != nil {
				return err
			}
		}
		return nil
	})
}

// putLIDMapping is sqlstore's two statements: delete the row holding pn
// under another LID, then upsert lid → pn (which drops lid's old pn).
func putLIDMapping(tx *bolt.Tx, lid, pn string) error {
	if lid == "" || pn == "" {
		return fmt.Errorf("store: empty LID mapping %q/%q", lid, pn)
	}
	l2p, p2l := tx.Bucket(bktLIDToPN), tx.Bucket(bktPNToLID)
	if old := p2l.Get([]byte(pn)); old != nil && string(old) != lid {
		if err := l2p.Delete(old); err != nil {
			return err
		}
	}
	if old := l2p.Get([]byte(lid)); old != nil && string(old) != pn {
		if err := p2l.Delete(old); err != nil {
			return err
		}
	}
	if err := l2p.Put([]byte(lid), []byte(pn)); err != nil {
		return err
	}
	return p2l.Put([]byte(pn), []byte(lid))
}
