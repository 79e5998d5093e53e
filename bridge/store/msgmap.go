package store

import (
	"bytes"
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"waxmpp/bridge"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// MessageKey names a WhatsApp message: whatsmeow's (chat, sender, id).
type MessageKey = bridge.MessageKey

// Message links one WhatsApp message to the XMPP stanza id it was relayed
// with (or came from): the domain's MsgLink.
type Message = bridge.MsgLink

// MaxExcerpt is how many bytes of a message's text the map keeps.
const MaxExcerpt = 160

// The message map (from schema 6) is one bucket, "msgmap", of
//
//	seq (8 bytes, big-endian) → message record (msgrecord.go)
//
// seq is the bucket's sequence, so records are appended: a burst dirties
// the last leaf page or two, not a page per message. The lookups by
// WhatsApp id, by XMPP id and by chat are an index in memory (msgIndex),
// built when the file is opened and kept with every write: ids are random,
// and an index of them on disk costs a random leaf page per message and
// id written (4 KB each on the SD card), which is what the generations of
// schema 2 to 5 bounded, at the price of lookups that walked every
// generation (1–2 ms at 100k messages).
var bucketMsgmap = []byte("msgmap")

// msgIndex finds records by id. Its entries are hashes of ids: a lookup
// reads the records it points to and keeps only those whose id is the one
// asked for, so a collision costs a record read, never a wrong answer.
// Entries change only after their transaction committed.
type msgIndex struct {
	mu    sync.RWMutex
	seed  maphash.Seed
	wa    idIndex             // WhatsApp id
	xmpp  idIndex             // XMPP id, and room id (MsgLink.RoomID)
	chats map[string][]uint64 // chat id as stored → its seqs, ascending
}

// idIndex maps an id's hash, folded to 32 bits, to the seq of its
// record. One entry per mapped message and id is most of the index's
// memory, so the usual one, a seq that fits 32 bits alone under its hash,
// is held in 8 bytes (one): half of what 64-bit keys and seqs took (at
// 100k mapped messages the two indexes held 8.8 MB of the heap). A hash
// seen more than once (the same id in two chats, or a collision: about
// one pair in 100k ids, costing a lookup a record read) moves to dup,
// with all of its seqs in ascending order; so does a seq past 32 bits,
// which 4 billion messages would take.
type idIndex struct {
	one map[uint32]uint32
	dup map[uint32][]uint64
}

func newMsgIndex() *msgIndex {
	return &msgIndex{
		seed:  maphash.MakeSeed(),
		wa:    idIndex{one: map[uint32]uint32{}, dup: map[uint32][]uint64{}},
		xmpp:  idIndex{one: map[uint32]uint32{}, dup: map[uint32][]uint64{}},
		chats: map[string][]uint64{},
	}
}

// fold is the index's key of hash h.
func fold(h uint64) uint32 { return uint32(h) ^ uint32(h>>32) }

func (x *idIndex) add(h, seq uint64) {
	k := fold(h)
	if s, ok := x.dup[k]; ok {
		x.dup[k] = insertSeq(s, seq)
		return
	}
	old, ok := x.one[k]
	if !ok && seq <= math.MaxUint32 {
		x.one[k] = uint32(seq)
		return
	}
	if ok && uint64(old) == seq {
		return
	}
	var s []uint64
	if ok {
		delete(x.one, k)
		s = []uint64{uint64(old)}
	}
	x.dup[k] = insertSeq(s, seq)
}

func (x *idIndex) remove(h, seq uint64) {
	k := fold(h)
	if s, ok := x.dup[k]; ok {
		if i, found := slices.BinarySearch(s, seq); found {
			s = slices.Delete(s, i, i+1)
		}
		switch {
		case len(s) == 0:
			delete(x.dup, k)
		case len(s) == 1 && s[0] <= math.MaxUint32:
			delete(x.dup, k)
			x.one[k] = uint32(s[0])
		default:
			x.dup[k] = s
		}
		return
	}
	if old, ok := x.one[k]; ok && uint64(old) == seq {
		delete(x.one, k)
	}
}

// seqs appends the seqs under h to dst, newest first.
func (x *idIndex) seqs(dst []uint64, h uint64) []uint64 {
	k := fold(h)
	if s, ok := x.dup[k]; ok {
		for i := len(s) - 1; i >= 0; i-- {
			dst = append(dst, s[i])
		}
		return dst
	}
	if seq, ok := x.one[k]; ok {
		dst = append(dst, uint64(seq))
	}
	return dst
}

// insertSeq adds seq to the ascending s (seqs are mostly appended).
func insertSeq(s []uint64, seq uint64) []uint64 {
	if len(s) == 0 || s[len(s)-1] < seq {
		return append(s, seq)
	}
	i, found := slices.BinarySearch(s, seq)
	if found {
		return s
	}
	return slices.Insert(s, i, seq)
}

// Ids are indexed packed (packStr), as the records hold them: building
// the index reads the packed fields without making strings.
func (ix *msgIndex) hashPacked(p []byte) uint64 { return maphash.Bytes(ix.seed, p) }

// hash is the index's hash of id.
func (ix *msgIndex) hash(id string) uint64 {
	var buf [64]byte
	return ix.hashPacked(packStr(buf[:0], id))
}

// chatKey is the key of chat in ix.chats.
func chatKey(chat string) string { return string(packStr(nil, chat)) }

// recordIDs are a record's packed ids; nil for none.
type recordIDs struct{ chat, wa, xmpp, room []byte }

var packedEmpty, packedPending = packStr(nil, ""), packStr(nil, bridge.RoomPending)

func idsOf(m Message) recordIDs { return idsIn(nil, m) }

// idsIn is idsOf packing the ids one after the other into buf: a buffer
// on the caller's stack, for ids that are only hashed and looked up
// (indexed).
func idsIn(buf []byte, m Message) recordIDs {
	pack := func(s string) []byte {
		start := len(buf)
		buf = packStr(buf, s)
		return buf[start:len(buf):len(buf)]
	}
	r := recordIDs{chat: pack(m.WA.Chat)}
	if m.WA.ID != "" {
		r.wa = pack(m.WA.ID)
	}
	if m.XMPPID != "" {
		r.xmpp = pack(m.XMPPID)
	}
	if k := roomKey(m); k != "" {
		r.room = pack(k)
	}
	return r
}

// roomKey is the room id a record is also found by (MsgLink.RoomID), "" if
// none: a room's id names the message there as the XMPP id does elsewhere
// (replies, reactions, retractions, markers).
func roomKey(m Message) string {
	if m.RoomID == "" || m.RoomID == bridge.RoomPending || m.RoomID == m.XMPPID {
		return ""
	}
	return m.RoomID
}

// recordIDsOf reads the ids of record v. A version 3 record is read in
// place; the slices point into v.
func recordIDsOf(bucket, key, v []byte) (recordIDs, error) {
	if len(v) == 0 || v[0] != msgRecordV3 {
		m, err := decodeMessage(bucket, key, v)
		if err != nil {
			return recordIDs{}, err
		}
		return idsOf(m), nil
	}
	d := dec{b: v[1:]}
	flags := d.byte1()
	var r recordIDs
	r.chat = d.packedSpan()
	if flags&(flagNoSender|flagSenderIsChat) == 0 {
		d.packedSpan()
	}
	r.wa = d.packedSpan()
	r.xmpp = d.packedSpan()
	d.bytes()
	if flags&flagTime != 0 {
		d.int()
		d.uint()
	}
	if flags&flagRoom != 0 {
		r.room = d.packedSpan()
	}
	if d.err != "" {
		return recordIDs{}, corrupt(bucket, key, d.err)
	}
	if bytes.Equal(r.wa, packedEmpty) {
		r.wa = nil
	}
	if bytes.Equal(r.xmpp, packedEmpty) {
		r.xmpp = nil
	}
	if bytes.Equal(r.room, packedEmpty) || bytes.Equal(r.room, packedPending) || bytes.Equal(r.room, r.xmpp) {
		r.room = nil
	}
	return r, nil
}

// add indexes the record of ids under seq. The caller holds ix.mu.
func (ix *msgIndex) add(seq uint64, ids recordIDs) {
	if ids.wa != nil {
		ix.wa.add(ix.hashPacked(ids.wa), seq)
	}
	if ids.xmpp != nil {
		ix.xmpp.add(ix.hashPacked(ids.xmpp), seq)
	}
	if ids.room != nil {
		ix.xmpp.add(ix.hashPacked(ids.room), seq)
	}
	if s, ok := ix.chats[string(ids.chat)]; ok {
		ix.chats[string(ids.chat)] = insertSeq(s, seq)
	} else {
		ix.chats[string(ids.chat)] = []uint64{seq}
	}
}

// remove forgets the record of ids under seq. The caller holds ix.mu.
func (ix *msgIndex) remove(seq uint64, ids recordIDs) {
	if ids.wa != nil {
		ix.wa.remove(ix.hashPacked(ids.wa), seq)
	}
	if ids.xmpp != nil {
		ix.xmpp.remove(ix.hashPacked(ids.xmpp), seq)
	}
	if ids.room != nil {
		ix.xmpp.remove(ix.hashPacked(ids.room), seq)
	}
	s := ix.chats[string(ids.chat)]
	if i, found := slices.BinarySearch(s, seq); found {
		s = slices.Delete(s, i, i+1)
	}
	if len(s) == 0 {
		delete(ix.chats, string(ids.chat))
	} else {
		ix.chats[string(ids.chat)] = s
	}
}

// buildIndex reads every record of the map. A record that cannot be
// decoded is left out: lookups cannot find it, and RecentMessages and
// PruneMessages report it.
func buildIndex(tx *bolt.Tx) (*msgIndex, error) {
	ix := newMsgIndex()
	b := tx.Bucket(bucketMsgmap)
	if b == nil {
		return nil, fmt.Errorf("store: bucket %s missing", bucketMsgmap)
	}
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		seq, ok := keySeq(k)
		if !ok {
			continue
		}
		ids, err := recordIDsOf(bucketMsgmap, k, v)
		if err != nil {
			continue
		}
		ix.add(seq, ids)
	}
	return ix, nil
}

// index is the message index, built on first use for a read-only file
// (Open builds it for a writable one, before any write can miss it).
func (db *DB) index() (*msgIndex, error) {
	db.indexOnce.Do(func() {
		if db.msgs != nil {
			return
		}
		db.indexErr = db.bolt.View(func(tx *bolt.Tx) error {
			var err error
			db.msgs, err = buildIndex(tx)
			return err
		})
	})
	return db.msgs, db.indexErr
}

func msgKey(seq uint64) []byte { return seqKey(seq) }

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
	p, err := db.prepareMessages(ms)
	if err != nil {
		return fmt.Errorf("store: put messages: %w", err)
	}
	if err := db.write(p.put); err != nil {
		return fmt.Errorf("store: put messages: %w", err)
	}
	p.indexed()
	return nil
}

// PutMessagesLater records messages as PutMessages does, without a
// commit of its own: every lookup finds them at once, and they are
// written with the next commit of any write, or by Close; a crash before
// that loses them. For entries that what comes again after a crash
// brings back: a room's id for the bot's own message (MsgLink.RoomID),
// which the room's archive tells again when it is read from the cursor
// on disk (the cursor saved after the echo goes with the same commit or
// a later one).
func (db *DB) PutMessagesLater(ms ...Message) error {
	if db.opts.ReadOnly {
		return fmt.Errorf("store: put messages: %w", bolterrors.ErrDatabaseReadOnly)
	}
	p, err := db.prepareMessages(ms)
	if err != nil {
		return fmt.Errorf("store: put messages: %w", err)
	}
	for i := range p.ms {
		p.ms[i].Excerpt = excerpt(p.ms[i].Excerpt) // lookups read them from now on
	}
	db.lazy.putMessages(p)
	return nil
}

// laterMessage is the newest entry PutMessagesLater holds that match
// accepts.
func (db *DB) laterMessage(match func(Message) bool) (Message, bool) {
	var out Message
	found := false
	db.lazy.messages(func(m Message) bool {
		if match(m) {
			out, found = m, true
		}
		return !found
	})
	return out, found
}

// pendingMessages are map entries checked and ready to be put in a
// transaction (put), then indexed once it committed (indexed).
type pendingMessages struct {
	ix   *msgIndex
	ms   []Message
	seqs []uint64
}

func (db *DB) prepareMessages(ms []Message) (*pendingMessages, error) {
	for _, m := range ms {
		if m.WA.ID == "" && m.XMPPID == "" {
			return nil, fmt.Errorf("put message: neither WhatsApp nor XMPP id")
		}
		if strings.IndexByte(m.WA.ID, 0) >= 0 || strings.IndexByte(m.XMPPID, 0) >= 0 || strings.IndexByte(m.WA.Chat, 0) >= 0 || strings.IndexByte(m.RoomID, 0) >= 0 {
			return nil, fmt.Errorf("put message %q/%q: id contains NUL", m.WA.ID, m.XMPPID)
		}
	}
	ix, err := db.index()
	if err != nil {
		return nil, err
	}
	// Excerpts are cut in place.
	return &pendingMessages{ix: ix, ms: slices.Clone(ms), seqs: make([]uint64, 0, len(ms))}, nil
}

// put writes the entries in tx. The group committer may run it again.
func (p *pendingMessages) put(tx *bolt.Tx) error {
	p.seqs = p.seqs[:0]
	b := tx.Bucket(bucketMsgmap)
	// Appends only: bbolt's default 50% fill would leave every page
	// half empty.
	b.FillPercent = 0.95
	for i := range p.ms {
		if ex := excerpt(p.ms[i].Excerpt); len(ex) != len(p.ms[i].Excerpt) {
			p.ms[i].Excerpt = ex // (PutMessagesLater's are cut: lookups read them)
		}
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		if err := b.Put(msgKey(seq), encodeMessage(p.ms[i])); err != nil {
			return err
		}
		p.seqs = append(p.seqs, seq)
	}
	return nil
}

// indexed adds the committed entries to the index.
func (p *pendingMessages) indexed() {
	var buf [256]byte
	p.ix.mu.Lock()
	for i, seq := range p.seqs {
		p.ix.add(seq, idsIn(buf[:0], p.ms[i]))
	}
	p.ix.mu.Unlock()
}

// holds reports whether x has records under id's hash: without, lookup
// finds nothing.
func (ix *msgIndex) holds(x *idIndex, id string) bool {
	var buf [4]uint64
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return len(x.seqs(buf[:0], ix.hash(id))) > 0
}

// lookup finds the newest message indexed under id in x that match accepts
// (has reports whether the record is one of id's).
func (db *DB) lookup(tx *bolt.Tx, ix *msgIndex, x *idIndex, id string, has func(Message) bool, match func(Message) bool) (Message, bool, error) {
	var buf [4]uint64
	ix.mu.RLock()
	seqs := x.seqs(buf[:0], ix.hash(id))
	ix.mu.RUnlock()
	b := tx.Bucket(bucketMsgmap)
	for _, seq := range seqs {
		k := msgKey(seq)
		v := b.Get(k)
		if v == nil {
			continue // pruned meanwhile, or not committed in tx's view
		}
		m, err := decodeMessage(bucketMsgmap, k, v)
		if err != nil {
			return Message{}, false, err
		}
		if has(m) && match(m) {
			return m, true, nil
		}
	}
	return Message{}, false, nil
}

// MessageByWA returns the newest message with WhatsApp key k. Chat and
// sender match through aliases; an empty k.Sender matches any sender.
func (db *DB) MessageByWA(k MessageKey) (Message, error) {
	var m Message
	ix, err := db.index()
	_, later := db.laterMessage(func(m Message) bool { return m.WA.ID == k.ID })
	if err == nil && !later && !ix.holds(&ix.wa, k.ID) {
		// Not indexed: no record to read (a new message's common case).
		return Message{}, &notFound{what: "message ", id: k.Chat, id2: k.ID, pair: true}
	}
	if err == nil {
		err = db.bolt.View(func(tx *bolt.Tx) error {
			chat, sender := resolve(tx, k.Chat), resolve(tx, k.Sender)
			match := func(m Message) bool {
				return resolve(tx, m.WA.Chat) == chat && (k.Sender == "" || resolve(tx, m.WA.Sender) == sender)
			}
			var ok bool
			if later {
				if m, ok = db.laterMessage(func(m Message) bool { return m.WA.ID == k.ID && match(m) }); ok {
					return nil
				}
			}
			var err error
			m, ok, err = db.lookup(tx, ix, &ix.wa, k.ID, func(m Message) bool { return m.WA.ID == k.ID }, match)
			if err == nil && !ok {
				err = ErrNotFound
			}
			return err
		})
	}
	if err != nil {
		return Message{}, fmt.Errorf("store: message %s/%s: %w", k.Chat, k.ID, err)
	}
	return m, nil
}

// MessageByXMPP returns the newest message relayed with (or received as)
// XMPP stanza id, or known by that id in its room (MsgLink.RoomID).
func (db *DB) MessageByXMPP(id string) (Message, error) {
	if m, ok := db.laterMessage(func(m Message) bool { return m.XMPPID == id || roomKey(m) == id }); ok {
		return m, nil
	}
	var m Message
	ix, err := db.index()
	if err == nil && !ix.holds(&ix.xmpp, id) {
		return Message{}, &notFound{what: "message xmpp:", id: id}
	}
	if err == nil {
		err = db.bolt.View(func(tx *bolt.Tx) error {
			var ok bool
			var err error
			m, ok, err = db.lookup(tx, ix, &ix.xmpp, id, func(m Message) bool { return m.XMPPID == id || roomKey(m) == id }, func(Message) bool { return true })
			if err == nil && !ok {
				err = ErrNotFound
			}
			return err
		})
	}
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
	ix, err := db.index()
	if err == nil && n > 0 {
		err = db.bolt.View(func(tx *bolt.Tx) error {
			b := tx.Bucket(bucketMsgmap)
			// What PutMessagesLater holds is newer than what is on
			// disk.
			canon := resolve(tx, chat)
			db.lazy.messages(func(m Message) bool {
				if chat == "" || resolve(tx, m.WA.Chat) == canon {
					out = append(out, m)
				}
				return len(out) < n
			})
			if chat == "" {
				c := b.Cursor()
				for k, v := c.Last(); k != nil && len(out) < n; k, v = c.Prev() {
					m, err := decodeMessage(bucketMsgmap, k, v)
					if err != nil {
						return err
					}
					out = append(out, m)
				}
				return nil
			}
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
			// The newest n of each id, merged newest first.
			var seqs []uint64
			ix.mu.RLock()
			for _, id := range ids {
				s := ix.chats[chatKey(id)]
				seqs = append(seqs, s[max(0, len(s)-n):]...)
			}
			ix.mu.RUnlock()
			slices.Sort(seqs)
			slices.Reverse(seqs)
			for _, seq := range seqs {
				if len(out) == n {
					break
				}
				k := msgKey(seq)
				v := b.Get(k)
				if v == nil {
					continue // pruned meanwhile
				}
				m, err := decodeMessage(bucketMsgmap, k, v)
				if err != nil {
					return err
				}
				out = append(out, m)
			}
			return nil
		})
	}
	if err != nil {
		return nil, fmt.Errorf("store: recent messages of %q: %w", chat, err)
	}
	return out, nil
}

// PruneMessages forgets messages whose Time is older than now minus
// Options.MessageMaxAge and returns how many. Their pages go to bbolt's
// freelist for reuse (the file does not shrink, but stops growing).
func (db *DB) PruneMessages(now time.Time) (int, error) {
	cut := timeNanos(now.Add(-db.opts.MessageMaxAge))
	ix, err := db.index()
	if err != nil {
		return 0, fmt.Errorf("store: prune messages: %w", err)
	}
	var oldSeqs []uint64
	var old []Message
	err = db.bolt.Update(func(tx *bolt.Tx) error {
		oldSeqs, old = nil, nil
		b := tx.Bucket(bucketMsgmap)
		c := b.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			m, err := decodeMessage(bucketMsgmap, k, v)
			if err != nil {
				return err
			}
			if timeNanos(m.Time) < cut {
				seq, _ := keySeq(k)
				old = append(old, m)
				oldSeqs = append(oldSeqs, seq)
			}
		}
		if len(old) == 0 {
			return errNothingToPrune // roll back: an idle bridge writes nothing
		}
		for _, seq := range oldSeqs {
			if err := b.Delete(msgKey(seq)); err != nil {
				return err
			}
		}
		return nil
	})
	if errors.Is(err, errNothingToPrune) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("store: prune messages: %w", err)
	}
	ix.mu.Lock()
	for i, seq := range oldSeqs {
		ix.remove(seq, idsOf(old[i]))
	}
	ix.mu.Unlock()
	return len(old), nil
}

// errNothingToPrune rolls back a prune that found nothing old: a bbolt
// commit writes and syncs its meta page even when nothing changed, and the
// daily prune of an idle bridge must not write to the SD card.
var errNothingToPrune = errors.New("store: nothing to prune")
