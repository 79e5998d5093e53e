package store

import (
	"fmt"
	"slices"
	"time"

	"waxmpp/bridge"

	bolt "go.etcd.io/bbolt"
)

// Invite is what the bridge knows of bringing a chat over to XMPP (/invite,
// /moved): the domain's Invite.
type Invite = bridge.Invite

// bucketInvites holds one record per chat that was invited or moved, keyed
// by the chat's canonical id (schema 5).
var bucketInvites = []byte("invites")

const inviteRecordV1 = 1

// maxInviteTimes bounds the invitation times a record holds (the core
// keeps fewer).
const maxInviteTimes = 100

func encodeInvite(inv Invite) []byte {
	e := enc{b: []byte{inviteRecordV1}}
	e.uint(uint64(len(inv.Sent)))
	for _, t := range inv.Sent {
		e.time(t)
	}
	e.str(inv.Address)
	e.time(inv.Moved)
	if inv.Offered {
		e.uint(1)
	} else {
		e.uint(0)
	}
	return e.b
}

func decodeInvite(key, v []byte) (Invite, error) {
	d := dec{b: v}
	if ver := d.byte1(); d.err == "" && ver != inviteRecordV1 {
		return Invite{}, corrupt(bucketInvites, key, fmt.Sprintf("unknown invite record version %d", ver))
	}
	inv := Invite{Chat: string(key)}
	n := d.uint()
	if n > maxInviteTimes {
		d.fail(fmt.Sprintf("%d invitation times", n))
		n = 0
	}
	for range n {
		if t := d.time(); d.err == "" {
			inv.Sent = append(inv.Sent, t)
		}
	}
	inv.Address = d.str()
	inv.Moved = d.time()
	switch d.uint() {
	case 0:
	case 1:
		inv.Offered = true
	default:
		d.fail("offered is not 0 or 1")
	}
	if d.err != "" {
		return Invite{}, corrupt(bucketInvites, key, d.err)
	}
	return inv, nil
}

// Invite returns the record of chat id (which may be an alias), or
// ErrNotFound.
func (db *DB) Invite(id string) (Invite, error) {
	if c, ok := db.cache.invite(id); ok {
		if !c.ok {
			return Invite{}, &notFound{what: "invite ", id: id}
		}
		return c.inv, nil
	}
	gen := db.cache.generation()
	var inv Invite
	var ok bool
	err := db.bolt.View(func(tx *bolt.Tx) error {
		var err error
		inv, ok, err = getInvite(tx, resolve(tx, id))
		return err
	})
	if err != nil {
		return Invite{}, fmt.Errorf("store: invite %s: %w", id, err)
	}
	db.cache.putInvite(gen, id, cachedInvite{inv, ok})
	if !ok {
		return Invite{}, &notFound{what: "invite ", id: id}
	}
	return inv, nil
}

func getInvite(tx *bolt.Tx, id string) (Invite, bool, error) {
	v := tx.Bucket(bucketInvites).Get([]byte(id))
	if v == nil {
		return Invite{}, false, nil
	}
	inv, err := decodeInvite([]byte(id), v)
	return inv, err == nil, err
}

// PutInvite saves inv under its chat's canonical id (inv.Chat may be an
// alias). A record with neither invitation times nor an address is
// removed. Times are kept in order, the latest maxInviteTimes.
func (db *DB) PutInvite(inv Invite) error {
	if inv.Chat == "" {
		return fmt.Errorf("store: put invite: empty chat id")
	}
	inv.Sent = slices.Clone(inv.Sent)
	slices.SortStableFunc(inv.Sent, time.Time.Compare)
	if n := len(inv.Sent); n > maxInviteTimes {
		inv.Sent = inv.Sent[n-maxInviteTimes:]
	}
	err := db.write(func(tx *bolt.Tx) error {
		db.cache.changed(tx)
		return putInvite(tx, resolve(tx, inv.Chat), inv)
	})
	if err != nil {
		return fmt.Errorf("store: put invite %s: %w", inv.Chat, err)
	}
	return nil
}

func putInvite(tx *bolt.Tx, id string, inv Invite) error {
	b := tx.Bucket(bucketInvites)
	if len(inv.Sent) == 0 && inv.Address == "" {
		return b.Delete([]byte(id))
	}
	return b.Put([]byte(id), encodeInvite(inv))
}

// Invites returns every record, by chat id.
func (db *DB) Invites() ([]Invite, error) {
	var out []Invite
	err := db.bolt.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketInvites).ForEach(func(k, v []byte) error {
			inv, err := decodeInvite(k, v)
			out = append(out, inv)
			return err
		})
	})
	if err != nil {
		return nil, fmt.Errorf("store: invites: %w", err)
	}
	return out, nil
}

// mergeInvite moves the record of chat from (merged into chat id by
// AddAlias) to id: the invitation times of both, and an address where id
// has none.
func mergeInvite(tx *bolt.Tx, from, id string) error {
	old, ok, err := getInvite(tx, from)
	if err != nil || !ok {
		return err
	}
	cur, _, err := getInvite(tx, id)
	if err != nil {
		return err
	}
	cur.Sent = append(cur.Sent, old.Sent...)
	slices.SortStableFunc(cur.Sent, time.Time.Compare)
	if n := len(cur.Sent); n > maxInviteTimes {
		cur.Sent = cur.Sent[n-maxInviteTimes:]
	}
	if cur.Address == "" {
		cur.Address, cur.Moved, cur.Offered = old.Address, old.Moved, old.Offered
	}
	if err := tx.Bucket(bucketInvites).Delete([]byte(from)); err != nil {
		return err
	}
	return putInvite(tx, id, cur)
}
