package store

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"waxmpp/bridge"

	bolt "go.etcd.io/bbolt"
)

// ChatKind says what a WhatsApp chat is: the domain's ChatKind.
type ChatKind = bridge.ChatKind

const (
	KindDirect    = bridge.Direct
	KindGroup     = bridge.Group
	KindBroadcast = bridge.Broadcast
	KindStatus    = bridge.StatusChat
)

// Chat is a WhatsApp chat as the bridge knows it: the domain's Chat, so the
// core consumes the store through an interface of its own.
type Chat = bridge.Chat

// ErrNotFound is returned by lookups of things the store does not hold. It is
// the domain's ErrNotFound, so the core can tell it without importing store.
var ErrNotFound = bridge.ErrNotFound

// ErrHandleTaken is returned by SetHandle for a handle another chat holds.
var ErrHandleTaken = errors.New("store: handle belongs to another chat")

const chatRecordV1 = 1

func encodeChat(c Chat) []byte {
	e := enc{b: []byte{chatRecordV1}}
	e.uint(uint64(c.Kind))
	e.str(c.Name)
	e.str(c.Handle)
	e.time(c.MutedUntil)
	e.time(c.LastActivity)
	return e.b
}

// decodeChat decodes the record stored under key id in bucket.
func decodeChat(bucket, id, v []byte) (Chat, error) {
	d := dec{b: v}
	if ver := d.byte1(); d.err == "" && ver != chatRecordV1 {
		return Chat{}, corrupt(bucket, id, fmt.Sprintf("unknown chat record version %d", ver))
	}
	c := Chat{ID: string(id)}
	kind := d.uint()
	c.Name = d.str()
	c.Handle = d.str()
	c.MutedUntil = d.time()
	c.LastActivity = d.time()
	if d.err != "" {
		return Chat{}, corrupt(bucket, id, d.err)
	}
	if kind < uint64(KindDirect) || kind > uint64(KindStatus) {
		return Chat{}, corrupt(bucket, id, fmt.Sprintf("unknown chat kind %d", kind))
	}
	c.Kind = ChatKind(kind)
	return c, nil
}

// resolve maps id through the aliases to the canonical chat id.
func resolve(tx *bolt.Tx, id string) string {
	if to := tx.Bucket(bucketAliases).Get([]byte(id)); to != nil {
		return string(to)
	}
	return id
}

func getChat(tx *bolt.Tx, id string) (Chat, bool, error) {
	id = resolve(tx, id)
	v := tx.Bucket(bucketChats).Get([]byte(id))
	if v == nil {
		return Chat{}, false, nil
	}
	c, err := decodeChat(bucketChats, []byte(id), v)
	return c, err == nil, err
}

// PutChat creates or updates a chat and returns it as stored. c.ID may be an
// alias; the canonical chat is updated. An existing chat keeps its handle
// unless c.Handle is set (see SetHandle for the rules). A zero LastActivity
// keeps the stored one.
func (db *DB) PutChat(c Chat) (Chat, error) {
	if c.ID == "" {
		return Chat{}, fmt.Errorf("store: put chat: empty id")
	}
	if c.Kind < KindDirect || c.Kind > KindStatus {
		return Chat{}, fmt.Errorf("store: put chat %s: invalid kind %d", c.ID, c.Kind)
	}
	var out Chat
	err := db.write(func(tx *bolt.Tx) error {
		db.cache.changed(tx)
		var err error
		out, err = putChat(tx, c)
		return err
	})
	if err != nil {
		return Chat{}, fmt.Errorf("store: put chat %s: %w", c.ID, err)
	}
	return out, nil
}

func putChat(tx *bolt.Tx, c Chat) (Chat, error) {
	c.ID = resolve(tx, c.ID)
	old, ok, err := getChat(tx, c.ID)
	if err != nil {
		return Chat{}, err
	}
	want := c.Handle
	if ok {
		c.Handle = old.Handle
		if c.LastActivity.IsZero() {
			c.LastActivity = old.LastActivity
		}
	} else {
		c.Handle = ""
	}
	if want != "" && want != c.Handle {
		if err := claimHandle(tx, c.ID, want); err != nil {
			return Chat{}, err
		}
		c.Handle = want
	}
	if c.Handle == "" {
		if c.Handle, err = allocHandle(tx, c); err != nil {
			return Chat{}, err
		}
	}
	return c, tx.Bucket(bucketChats).Put([]byte(c.ID), encodeChat(c))
}

// claimHandle gives handle h to chat id, failing if another chat holds it.
func claimHandle(tx *bolt.Tx, id, h string) error {
	if !validHandle(h) {
		return fmt.Errorf("store: handle %q: use 1 to %d letters a-z and digits, starting with a letter", h, maxHandle)
	}
	hs := tx.Bucket(bucketHandles)
	if owner := hs.Get([]byte(h)); owner != nil && resolve(tx, string(owner)) != id {
		return fmt.Errorf("%w: %q", ErrHandleTaken, h)
	}
	return hs.Put([]byte(h), []byte(id))
}

const maxHandle = bridge.MaxHandle

func validHandle(h string) bool {
	if len(h) == 0 || len(h) > maxHandle || h[0] < 'a' || h[0] > 'z' {
		return false
	}
	for i := 0; i < len(h); i++ {
		if !(h[i] >= 'a' && h[i] <= 'z' || h[i] >= '0' && h[i] <= '9') {
			return false
		}
	}
	return true
}

// allocHandle picks the first free handle derived from the chat's name:
// "alice", then "alice2", "alice3"… It is deterministic: the same chats put
// in the same order get the same handles.
func allocHandle(tx *bolt.Tx, c Chat) (string, error) {
	base := HandleBase(c.Name)
	if base == "" {
		base = map[ChatKind]string{KindDirect: "contact", KindGroup: "group", KindBroadcast: "broadcast", KindStatus: "status"}[c.Kind]
	}
	hs := tx.Bucket(bucketHandles)
	for n := 1; ; n++ {
		h := base
		if n > 1 {
			suffix := strconv.Itoa(n)
			h = base[:min(len(base), maxHandle-len(suffix))] + suffix
		}
		if hs.Get([]byte(h)) == nil {
			return h, hs.Put([]byte(h), []byte(c.ID))
		}
	}
}

// HandleBase derives a handle from a display name: lower-case ASCII letters
// and digits, accents dropped, at most 16 characters, starting with a letter.
// It returns "" when nothing usable is left (a name in another script). It
// is the domain's HandleBase.
func HandleBase(name string) string { return bridge.HandleBase(name) }

// Chat returns the chat with id, which may be an alias.
func (db *DB) Chat(id string) (Chat, error) {
	if c, ok := db.cache.chat(id); ok {
		if !c.ok {
			return Chat{}, &notFound{what: "chat ", id: id}
		}
		return c.c, nil
	}
	gen := db.cache.generation()
	var c Chat
	var ok bool
	err := db.bolt.View(func(tx *bolt.Tx) error {
		var err error
		c, ok, err = getChat(tx, id)
		return err
	})
	if err != nil {
		return Chat{}, fmt.Errorf("store: chat %s: %w", id, err)
	}
	db.cache.putChat(gen, id, cachedChat{c, ok})
	if !ok {
		return Chat{}, &notFound{what: "chat ", id: id}
	}
	return c, nil
}

// notFound is ErrNotFound about what id names, worded only when read: a
// lookup that misses is common on the hot path (a chat that has no invite
// record, a message not seen before). It reads "store: " what id, then
// "/" id2 with pair, then ": not found".
type notFound struct {
	what, id, id2 string
	pair          bool
}

func (e *notFound) Error() string {
	s := "store: " + e.what + e.id
	if e.pair {
		s += "/" + e.id2
	}
	return s + ": " + ErrNotFound.Error()
}

func (e *notFound) Unwrap() error { return ErrNotFound }

// ChatByHandle returns the chat that holds handle h (or held it before
// SetHandle gave it a new one).
func (db *DB) ChatByHandle(h string) (Chat, error) {
	var c Chat
	err := db.bolt.View(func(tx *bolt.Tx) error {
		id := tx.Bucket(bucketHandles).Get([]byte(h))
		if id == nil {
			return ErrNotFound
		}
		var ok bool
		var err error
		c, ok, err = getChat(tx, string(id))
		if err == nil && !ok {
			err = corrupt(bucketHandles, []byte(h), "handle of a missing chat "+string(id))
		}
		return err
	})
	if err != nil {
		return Chat{}, fmt.Errorf("store: chat by handle %s: %w", h, err)
	}
	return c, nil
}

// SetHandle gives chat id the handle h. The old handle stays reserved for the
// same chat. It fails with ErrHandleTaken if another chat holds h.
func (db *DB) SetHandle(id, h string) (Chat, error) {
	if !validHandle(h) {
		return Chat{}, fmt.Errorf("store: set handle of %s: %q: use 1 to %d letters a-z and digits, starting with a letter", id, h, maxHandle)
	}
	var out Chat
	err := db.write(func(tx *bolt.Tx) error {
		db.cache.changed(tx)
		c, ok, err := getChat(tx, id)
		if err != nil {
			return err
		}
		if !ok {
			return ErrNotFound
		}
		c.Handle = h
		out, err = putChat(tx, c)
		return err
	})
	if err != nil {
		return Chat{}, fmt.Errorf("store: set handle of %s: %w", id, err)
	}
	return out, nil
}

// Touch records activity in chat id at t (if later than what is stored).
func (db *DB) Touch(id string, t time.Time) error {
	err := db.write(func(tx *bolt.Tx) error {
		db.cache.changed(tx)
		ok, err := touch(tx, id, t)
		if err == nil && !ok {
			err = ErrNotFound
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("store: touch %s: %w", id, err)
	}
	return nil
}

// touch moves chat id's activity to t, if later; ok is false when there
// is no such chat.
func touch(tx *bolt.Tx, id string, t time.Time) (ok bool, err error) {
	c, ok, err := getChat(tx, id)
	if err != nil || !ok {
		return ok, err
	}
	if !t.After(c.LastActivity) {
		return true, nil
	}
	c.LastActivity = t
	return true, tx.Bucket(bucketChats).Put([]byte(c.ID), encodeChat(c))
}

// Chats returns every chat, most recently active first (ties by id).
func (db *DB) Chats() ([]Chat, error) {
	var cs []Chat
	err := db.bolt.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketChats).ForEach(func(k, v []byte) error {
			c, err := decodeChat(bucketChats, k, v)
			cs = append(cs, c)
			return err
		})
	})
	if err != nil {
		return nil, fmt.Errorf("store: chats: %w", err)
	}
	sort.SliceStable(cs, func(i, j int) bool {
		if !cs[i].LastActivity.Equal(cs[j].LastActivity) {
			return cs[i].LastActivity.After(cs[j].LastActivity)
		}
		return cs[i].ID < cs[j].ID
	})
	return cs, nil
}

// AddAlias makes alias another name of chat id (for example a contact's
// phone-number JID and LID). If alias already has a chat of its own, that
// chat is merged into id: its handles and aliases move to id, and the later
// activity and mute are kept. id itself may be an alias.
func (db *DB) AddAlias(id, alias string) error {
	if id == "" || alias == "" {
		return fmt.Errorf("store: add alias: empty id")
	}
	err := db.write(func(tx *bolt.Tx) error {
		db.cache.changed(tx)
		return addAlias(tx, id, alias)
	})
	if err != nil {
		return fmt.Errorf("store: add alias %s for %s: %w", alias, id, err)
	}
	return nil
}

func addAlias(tx *bolt.Tx, id, alias string) error {
	id = resolve(tx, id)
	from := resolve(tx, alias)
	if from == id {
		if alias != id {
			return tx.Bucket(bucketAliases).Put([]byte(alias), []byte(id))
		}
		return nil
	}
	chats, aliases, handles := tx.Bucket(bucketChats), tx.Bucket(bucketAliases), tx.Bucket(bucketHandles)
	target, ok, err := getChat(tx, id)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("chat %s: %w", id, ErrNotFound)
	}
	if old, ok, err := getChat(tx, from); err != nil {
		return err
	} else if ok {
		// Merge from into id.
		if old.LastActivity.After(target.LastActivity) {
			target.LastActivity = old.LastActivity
		}
		if old.MutedUntil.After(target.MutedUntil) {
			target.MutedUntil = old.MutedUntil
		}
		if target.Name == "" {
			target.Name = old.Name
		}
		if err := chats.Delete([]byte(from)); err != nil {
			return err
		}
		if err := mergeInvite(tx, from, id); err != nil {
			return err
		}
		if err := chats.Put([]byte(id), encodeChat(target)); err != nil {
			return err
		}
	}
	// Everything that pointed at from now points at id.
	for _, b := range []*bolt.Bucket{aliases, handles} {
		var keys [][]byte
		err := b.ForEach(func(k, v []byte) error {
			if string(v) == from {
				keys = append(keys, k)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range keys {
			if err := b.Put(k, []byte(id)); err != nil {
				return err
			}
		}
	}
	if err := aliases.Put([]byte(from), []byte(id)); err != nil {
		return err
	}
	if alias != from {
		return aliases.Put([]byte(alias), []byte(id))
	}
	return nil
}

// Aliases returns the ids that resolve to chat id, sorted.
func (db *DB) Aliases(id string) ([]string, error) {
	var out []string
	err := db.bolt.View(func(tx *bolt.Tx) error {
		id = resolve(tx, id)
		return tx.Bucket(bucketAliases).ForEach(func(k, v []byte) error {
			if string(v) == id {
				out = append(out, string(k))
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("store: aliases of %s: %w", id, err)
	}
	return out, nil
}
