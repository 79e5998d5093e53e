package store

import (
	"bytes"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"waxmpp/bridge"

	bolt "go.etcd.io/bbolt"
)

// MessageKey names a WhatsApp message: whatsmeow's (chat, sender, id).
type MessageKey = bridge.MessageKey

// Message links one WhatsApp message to the XMPP stanza id it was relayed
// with (or came from): the domain's MsgLink.
type Message = bridge.MsgLink

// MaxExcerpt is how many bytes of a message's text the map keeps.
const MaxExcerpt = 160

// The message map is split into generations of genSize messages, each a
// bucket inside "messages" named by its 8-byte generation number:
//
//	'm' seq                     → message record
//	'w' wa-id 0x00 seq          → (empty)  lookup by WhatsApp id
//	'x' xmpp-id 0x00 seq        → (empty)  lookup by XMPP id (and by room id)
//	'c' chat 0x00 seq           → (empty)  recent messages of a chat
//
// seq is the messages bucket's sequence; generation = (seq-1) / genSize.
// Ids are random, so in one big tree a burst of 100 messages would dirty
// ~200 random leaf pages (800 KB written). Within a generation a burst dirties
// at most the generation's few index pages. Lookups try generations newest
// first; pruning deletes whole generations, which frees their pages at once.
var genSize uint64 = 128

const (
	prefixMsg   = 'm'
	prefixWA    = 'w'
	prefixXMPP  = 'x'
	prefixChat  = 'c'
	msgRecordV1 = 1
	// msgRecordV2 is a record with a room id (MsgLink.RoomID) after the
	// time; records without one are still written as version 1.
	msgRecordV2 = 2
)

func encodeMessage(m Message) []byte {
	e := enc{b: make([]byte, 0, 24+len(m.WA.Chat)+len(m.WA.Sender)+len(m.WA.ID)+len(m.XMPPID)+len(m.Excerpt)+len(m.RoomID))}
	ver := byte(msgRecordV1)
	if m.RoomID != "" {
		ver = msgRecordV2
	}
	e.b = append(e.b, ver)
	e.str(m.WA.Chat)
	e.str(m.WA.Sender)
	e.str(m.WA.ID)
	e.str(m.XMPPID)
	e.str(m.Excerpt)
	e.time(m.Time)
	if ver == msgRecordV2 {
		e.str(m.RoomID)
	}
	return e.b
}

func decodeMessage(bucket, key, v []byte) (Message, error) {
	d := dec{b: v}
	ver := d.byte1()
	if d.err == "" && ver != msgRecordV1 && ver != msgRecordV2 {
		return Message{}, corrupt(bucket, key, fmt.Sprintf("unknown message record version %d", ver))
	}
	var m Message
	m.WA.Chat = d.str()
	m.WA.Sender = d.str()
	m.WA.ID = d.str()
	m.XMPPID = d.str()
	m.Excerpt = d.str()
	m.Time = d.time()
	if ver == msgRecordV2 {
		m.RoomID = d.str()
	}
	if d.err != "" {
		return Message{}, corrupt(bucket, key, d.err)
	}
	return m, nil
}

func indexKey(prefix byte, id string, seq uint64) []byte {
	k := make([]byte, 0, 1+len(id)+1+8)
	k = append(k, prefix)
	k = append(k, id...)
	k = append(k, 0)
	return append(k, seqKey(seq)...)
}

func msgKey(seq uint64) []byte { return append([]byte{prefixMsg}, seqKey(seq)...) }

// excerpt cuts s to MaxExcerpt bytes on a character boundary.
func excerpt(s string) string {
	if len(s) <= MaxExcerpt {
		return s
	}
	s = s[:MaxExcerpt]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}

// PutMessages records messages in one durable transaction. Chat ids are
// stored as given; lookups resolve aliases on both sides.
func (db *DB) PutMessages(ms ...Message) error {
	for _, m := range ms {
		if m.WA.ID == "" && m.XMPPID == "" {
			return fmt.Errorf("store: put message: neither WhatsApp nor XMPP id")
		}
		if bytes.IndexByte([]byte(m.WA.ID+m.XMPPID+m.WA.Chat+m.RoomID), 0) >= 0 {
			return fmt.Errorf("store: put message %q/%q: id contains NUL", m.WA.ID, m.XMPPID)
		}
	}
	err := db.write(func(tx *bolt.Tx) error {
		root := tx.Bucket(bucketMessages)
		var gen *bolt.Bucket
		var genN uint64 = ^uint64(0)
		for _, m := range ms {
			m.Excerpt = excerpt(m.Excerpt)
			seq, err := root.NextSequence()
			if err != nil {
				return err
			}
			if g := (seq - 1) / genSize; g != genN {
				genN = g
				if gen, err = root.CreateBucketIfNotExists(seqKey(g)); err != nil {
					return err
				}
				// Messages are appended; bbolt's default 50% fill
				// would leave every page half empty.
				gen.FillPercent = 0.9
			}
			if err := gen.Put(msgKey(seq), encodeMessage(m)); err != nil {
				return err
			}
			if m.WA.ID != "" {
				if err := gen.Put(indexKey(prefixWA, m.WA.ID, seq), nil); err != nil {
					return err
				}
			}
			if m.XMPPID != "" {
				if err := gen.Put(indexKey(prefixXMPP, m.XMPPID, seq), nil); err != nil {
					return err
				}
			}
			// A room's id names the message there as the XMPP id does
			// elsewhere (replies, reactions, retractions, markers).
			if m.RoomID != "" && m.RoomID != bridge.RoomPending && m.RoomID != m.XMPPID {
				if err := gen.Put(indexKey(prefixXMPP, m.RoomID, seq), nil); err != nil {
					return err
				}
			}
			if err := gen.Put(indexKey(prefixChat, m.WA.Chat, seq), nil); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: put messages: %w", err)
	}
	return nil
}

// generations calls fn for each generation, newest first, until fn returns
// false or an error.
func generations(tx *bolt.Tx, fn func(name []byte, gen *bolt.Bucket) (bool, error)) error {
	root := tx.Bucket(bucketMessages)
	c := root.Cursor()
	for k, v := c.Last(); k != nil; k, v = c.Prev() {
		if v != nil {
			return corrupt(bucketMessages, k, "not a generation bucket")
		}
		more, err := fn(k, root.Bucket(k))
		if err != nil || !more {
			return err
		}
	}
	return nil
}

// lookup finds the newest message indexed under prefix+id that match accepts.
func lookup(tx *bolt.Tx, prefix byte, id string, match func(Message) bool) (Message, bool, error) {
	var found Message
	var ok bool
	p := append(append([]byte{prefix}, id...), 0)
	err := generations(tx, func(name []byte, gen *bolt.Bucket) (bool, error) {
		c := gen.Cursor()
		// Newest first: seek past the prefix and walk back.
		end := append(append([]byte{}, p...), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)
		k, _ := c.Seek(end)
		if k == nil {
			k, _ = c.Last()
		} else {
			k, _ = c.Prev()
		}
		for ; k != nil && bytes.HasPrefix(k, p); k, _ = c.Prev() {
			seq, good := keySeq(k[len(p):])
			if !good {
				return false, corrupt(genPath(name), k, "index key without sequence")
			}
			mk := msgKey(seq)
			v := gen.Get(mk)
			if v == nil {
				return false, corrupt(genPath(name), k, "index entry of a missing message")
			}
			m, err := decodeMessage(genPath(name), mk, v)
			if err != nil {
				return false, err
			}
			if match(m) {
				found, ok = m, true
				return false, nil
			}
		}
		return true, nil
	})
	return found, ok, err
}

func genPath(name []byte) []byte {
	return fmt.Appendf(nil, "%s/%x", bucketMessages, name)
}

// MessageByWA returns the newest message with WhatsApp key k. Chat and
// sender match through aliases; an empty k.Sender matches any sender.
func (db *DB) MessageByWA(k MessageKey) (Message, error) {
	var m Message
	err := db.bolt.View(func(tx *bolt.Tx) error {
		chat, sender := resolve(tx, k.Chat), resolve(tx, k.Sender)
		var ok bool
		var err error
		m, ok, err = lookup(tx, prefixWA, k.ID, func(m Message) bool {
			return resolve(tx, m.WA.Chat) == chat && (k.Sender == "" || resolve(tx, m.WA.Sender) == sender)
		})
		if err == nil && !ok {
			err = ErrNotFound
		}
		return err
	})
	if err != nil {
		return Message{}, fmt.Errorf("store: message %s/%s: %w", k.Chat, k.ID, err)
	}
	return m, nil
}

// MessageByXMPP returns the newest message relayed with (or received as)
// XMPP stanza id, or known by that id in its room (MsgLink.RoomID).
func (db *DB) MessageByXMPP(id string) (Message, error) {
	var m Message
	err := db.bolt.View(func(tx *bolt.Tx) error {
		var ok bool
		var err error
		m, ok, err = lookup(tx, prefixXMPP, id, func(Message) bool { return true })
		if err == nil && !ok {
			err = ErrNotFound
		}
		return err
	})
	if err != nil {
		return Message{}, fmt.Errorf("store: message xmpp:%s: %w", id, err)
	}
	return m, nil
}

// RecentMessages returns up to n of the most recently recorded messages of
// chat (an alias matches too), newest first, for matching quotes against
// their excerpts. An empty chat means all chats.
func (db *DB) RecentMessages(chat string, n int) ([]Message, error) {
	var out []Message
	err := db.bolt.View(func(tx *bolt.Tx) error {
		var prefixes [][]byte
		if chat != "" {
			canon := resolve(tx, chat)
			ids := []string{canon}
			err := tx.Bucket(bucketAliases).ForEach(func(k, v []byte) error {
				if string(v) == canon {
					ids = append(ids, string(k))
				}
				return nil
			})
			if err != nil {
				return err
			}
			for _, id := range ids {
				prefixes = append(prefixes, append(append([]byte{prefixChat}, id...), 0))
			}
		}
		return generations(tx, func(name []byte, gen *bolt.Bucket) (bool, error) {
			var seqs []uint64
			if chat == "" {
				c := gen.Cursor()
				k, _ := c.Seek([]byte{prefixMsg + 1})
				if k == nil {
					k, _ = c.Last()
				} else {
					k, _ = c.Prev()
				}
				for ; k != nil && k[0] == prefixMsg && len(seqs) < n-len(out); k, _ = c.Prev() {
					seq, ok := keySeq(k[1:])
					if !ok {
						return false, corrupt(genPath(name), k, "message key without sequence")
					}
					seqs = append(seqs, seq)
				}
			} else {
				for _, p := range prefixes {
					c := gen.Cursor()
					k, _ := c.Seek(append(append([]byte{}, p...), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff))
					if k == nil {
						k, _ = c.Last()
					} else {
						k, _ = c.Prev()
					}
					for i := 0; k != nil && bytes.HasPrefix(k, p) && i < n-len(out); k, _ = c.Prev() {
						seq, ok := keySeq(k[len(p):])
						if !ok {
							return false, corrupt(genPath(name), k, "index key without sequence")
						}
						seqs = append(seqs, seq)
						i++
					}
				}
				sortDesc(seqs)
			}
			for _, seq := range seqs {
				if len(out) == n {
					break
				}
				mk := msgKey(seq)
				v := gen.Get(mk)
				if v == nil {
					return false, corrupt(genPath(name), mk, "index entry of a missing message")
				}
				m, err := decodeMessage(genPath(name), mk, v)
				if err != nil {
					return false, err
				}
				out = append(out, m)
			}
			return len(out) < n, nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("store: recent messages of %q: %w", chat, err)
	}
	return out, nil
}

func sortDesc(s []uint64) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] > s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// PruneMessages forgets messages whose Time is older than now minus
// Options.MessageMaxAge and returns how many. A generation whose messages are
// all old is dropped whole, which returns its pages to bbolt's freelist for
// reuse (the file does not shrink, but stops growing).
func (db *DB) PruneMessages(now time.Time) (int, error) {
	cut := timeNanos(now.Add(-db.opts.MessageMaxAge))
	var n int
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		n = 0
		root := tx.Bucket(bucketMessages)
		// The newest generation is still being filled: it is pruned key by
		// key but never dropped, so its number is not reused.
		last, _ := root.Cursor().Last()
		var names [][]byte
		err := root.ForEachBucket(func(k []byte) error {
			names = append(names, k)
			return nil
		})
		if err != nil {
			return err
		}
		for _, name := range names {
			gen := root.Bucket(name)
			var old []Message
			var oldSeqs []uint64
			total := 0
			c := gen.Cursor()
			for k, v := c.Seek([]byte{prefixMsg}); k != nil && k[0] == prefixMsg; k, v = c.Next() {
				total++
				m, err := decodeMessage(genPath(name), k, v)
				if err != nil {
					return err
				}
				if timeNanos(m.Time) < cut {
					seq, _ := keySeq(k[1:])
					old = append(old, m)
					oldSeqs = append(oldSeqs, seq)
				}
			}
			n += len(old)
			if len(old) == total && !bytes.Equal(name, last) {
				if err := root.DeleteBucket(name); err != nil {
					return err
				}
				continue
			}
			for i, m := range old {
				seq := oldSeqs[i]
				keys := [][]byte{msgKey(seq), indexKey(prefixChat, m.WA.Chat, seq)}
				if m.WA.ID != "" {
					keys = append(keys, indexKey(prefixWA, m.WA.ID, seq))
				}
				if m.XMPPID != "" {
					keys = append(keys, indexKey(prefixXMPP, m.XMPPID, seq))
				}
				for _, k := range keys {
					if err := gen.Delete(k); err != nil {
						return err
					}
				}
			}
		}
		if n == 0 {
			return errNothingToPrune // roll back: an idle bridge writes nothing
		}
		return nil
	})
	if errors.Is(err, errNothingToPrune) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("store: prune messages: %w", err)
	}
	return n, nil
}

// errNothingToPrune rolls back a prune that found nothing old: a bbolt
// commit writes and syncs its meta page even when nothing changed, and the
// daily prune of an idle bridge must not write to the SD card.
var errNothingToPrune = errors.New("store: nothing to prune")
