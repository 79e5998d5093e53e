// Package store keeps all of waxmpp's state in one go.etcd.io/bbolt file:
// whatsmeow's device store and the bridge's own state (chats, message maps,
// durable queues, settings).
//
// One file means one thing to back up and one fsync per transaction. bbolt
// needs no cgo, so the binary cross-builds for every Raspberry Pi.
//
// Writes that must be durable before the caller goes on (queue appends, the
// dedupe set, map entries) go through a group committer: calls that arrive
// while a commit is being fsynced are committed together in the next
// transaction, so a burst costs a few fsyncs rather than one per call (an SD
// card manages only ~25–100 fsyncs/s).
//
// What is committed when: each call that returns having written (Enqueue,
// AckThrough, PutMessages, PutSetting, ...) has committed, alone or with
// its concurrent neighbours. Queue.EnqueueWith commits queue items with
// map entries and chats' activity in one transaction (the XMPP outbox and
// what the core records of relayed messages). PutSettingLater commits
// nothing: its value goes with the next commit of any call, or with Close,
// and is lost in a crash before that (for values whose loss costs repeated
// work only, such as the XMPP archive cursor). Queue.AckThroughLater is
// the same for a queue's removals: the items leave Peek and Len at once
// and the disk with the next commit, or with Close; a crash before that
// brings them back (the XMPP outbox's confirmed stanzas, sent again with
// their ids; the WhatsApp inbox's handled events, dropped by the core as
// known), so a relayed message costs one commit, not two.
// PutMessagesLater is the same for map entries that a replay brings back
// (a room's id for the bot's own message: the room's archive, read from
// the older cursor a crash leaves, tells it again); lookups find them at
// once. A commit writes its dirty pages and then the meta page, each
// followed by an fdatasync; the freelist is not written (NoFreelistSync,
// see Open).
//
// Clearing later. For one message from a real account whatsmeow
// (go.mau.fi/whatsmeow v0.0.0-20260821141805-33cfac511629) calls, in its
// node-handling goroutine: PutLIDMapping when the node names the sender's
// other identity (message.go:50-53, client.go:1034), PutPushName on a
// goroutine of its own (message.go:57-58, user.go:684), GetBufferedEvent
// and DoDecryptionTxn with PutBufferedEvent (message.go:533-566),
// PutMessageSecret when the message has one (message.go:923, 949), the
// event handlers (message.go:1148: the WhatsApp adapter's durable inbox
// write), ClearBufferedEventPlaintext (message.go:460), then the ack and
// receipt, synchronously with SynchronousAck (message.go:483-491,
// receipt.go:105-107). bbolt commits every write transaction, one that
// changes nothing too (tx.go writeMeta: the meta page and two fdatasyncs),
// so a known LID mapping, an unchanged push name and the move of a
// sender's sessions to its LID with nothing to move (MigratePNToLID,
// asked once per sender and run: message.go:342, 310) are read, not
// written; so is an unchanged identity key, which libsignal saves with
// every message it encrypts for a device (SessionCipher.Encrypt), so that
// sending costs one commit for the sessions of all the recipient's
// devices (send.go:1352, PutCachedSessions) rather than one more per
// device. The cleared plaintext waits for the next commit of anything (the core's
// batch, the next message's decryption), at most maxLazyClears of them,
// and Close: a crash before that leaves the plaintext, and a message that
// WhatsApp delivers again (it had no ack) is dispatched again from the
// buffer (message.go:536-551) and dropped by the core by its WhatsApp id,
// as after a crash between the inbox write and the clear before. A
// message whose ack did arrive leaves its plaintext in the buffer until
// DeleteOldBufferedHashes (14 days). Counted through whatsmeow's own
// handling (bridge/whatsapp TestLoneMessageCommits): 7 commits before,
// 4 now, for a message with a secret from a known sender. What stays:
// the decryption's commit holds bbolt's one writer lock while it runs,
// and whatsmeow writes with the outer context after it and before the
// handler (PutMessageSecret, message.go:949; the sender key, :936), which
// would wait for it forever if it stayed open; its writes exist only in
// that transaction, so no later commit can take them; and they must be
// on disk before the ack: a session or a used prekey lost after it makes
// the sender's next messages undecryptable. The message secret could go
// with the inbox write, which precedes the ack, but a message the
// handler queues nothing for would have it waiting at the ack, and a
// sent message's (send.go:391) would wait for a commit that may come
// after the message left; it commits on its own.
//
// Chats, invites and the route are read from memory (cache.go): every
// transaction that writes the chats, aliases, invites or the route must
// call readCache.changed, which empties the cache when it commits.
package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"waxmpp/bridge"
)

// DB is the open state file. It is safe for concurrent use.
type DB struct {
	bolt  *bolt.DB
	path  string
	opts  Options
	group group

	// msgs is the message map's index (msgmap.go); Open builds it, or
	// the first lookup of a read-only file.
	msgs      *msgIndex
	indexOnce sync.Once
	indexErr  error

	lazy lazySettings // PutSettingLater's, until a commit takes them

	cache readCache // chats, invites and the route as committed (cache.go)
}

// Options tune how the file is opened. The zero value is what the daemon uses.
type Options struct {
	// Timeout is how long Open waits for the file lock held by another
	// process (a second waxmpp on the same file). Zero means 5 seconds.
	Timeout time.Duration
	// NoSync turns off fsync. Only benchmarks comparing costs may set it.
	NoSync bool
	// MessageMaxAge is how long message map entries are kept by
	// PruneMessages. Zero means DefaultMessageMaxAge.
	MessageMaxAge time.Duration
	// MaxGroup caps how many calls one group commit holds. Zero means 1000.
	MaxGroup int
	// ReadOnly opens an existing file for reading only, as it is: Open
	// neither creates it (a missing file is an error wrapping
	// fs.ErrNotExist) nor migrates it, and every write fails. Several
	// read-only opens may share the file; none can while a writer holds it
	// (ErrLocked). For backups of a stopped daemon's file.
	ReadOnly bool
}

// DefaultMessageMaxAge is how long the message map remembers a message: long
// enough for replies and reactions to old messages, short enough that the
// file stays small on a Pi.
const DefaultMessageMaxAge = 90 * 24 * time.Hour

// ErrLocked is returned by Open when another process holds the file.
var ErrLocked = errors.New("store: file is in use by another process")

// ErrCorrupt is wrapped by every error about a record that cannot be decoded.
// Such errors name the bucket and the key.
var ErrCorrupt = errors.New("corrupt record")

// Open opens (creating if needed) the state file at path with mode 0600: it
// holds pairing keys and must never be world-readable. It brings the bridge's
// schema to the current version in one transaction. With opts.ReadOnly it
// only opens a file that exists.
func Open(path string, opts Options) (*DB, error) {
	if opts.Timeout == 0 {
		opts.Timeout = 5 * time.Second
	}
	if opts.MessageMaxAge == 0 {
		opts.MessageMaxAge = DefaultMessageMaxAge
	}
	if opts.MaxGroup == 0 {
		opts.MaxGroup = 1000
	}
	if !opts.ReadOnly {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("store: open %s: %w", path, err)
		}
	}
	b, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout:  opts.Timeout,
		NoSync:   opts.NoSync,
		ReadOnly: opts.ReadOnly,
		// The freelist is not written on every commit: after pruning it
		// can be many pages, rewritten by every small transaction. bbolt
		// rebuilds it by walking the file at Open instead (a few hundred
		// milliseconds for tens of megabytes). The hashmap freelist keeps
		// allocation fast when the freelist is large.
		NoFreelistSync: true,
		FreelistType:   bolt.FreelistMapType,
	})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("store: open %s: %w", path, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	// The file grows by 4 MiB once past it, not bbolt's 16: what a
	// Pi's SD card holds of it beyond the data is at most that (a 100k
	// message map and a backlog of 50k stanzas: 24 MiB, not 32).
	b.AllocSize = 4 << 20
	db := &DB{bolt: b, path: path, opts: opts}
	db.group.db = b
	db.group.max = opts.MaxGroup
	db.group.lazy = &db.lazy
	if opts.ReadOnly {
		return db, nil
	}
	err = b.Update(func(tx *bolt.Tx) error {
		if err := migrate(tx, migrations); err != nil {
			return err
		}
		// whatsmeow's device store (device.go, buckets prefixed "wa_")
		// is created or upgraded in the same transaction, after the
		// bridge's schema: a crash during Open leaves either the old file
		// or a fully upgraded one.
		return db.initDevice(tx)
	})
	if err == nil {
		err = b.View(func(tx *bolt.Tx) error {
			var err error
			db.msgs, err = buildIndex(tx)
			return err
		})
	}
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	return db, nil
}

// Path is the file's path.
func (db *DB) Path() string { return db.path }

// Commits is how many write transactions the file has committed since it
// was made (bbolt's transaction id): whoever made them, the group, the
// device store or Open. Tests and benchmarks count commits by its
// difference.
func (db *DB) Commits() uint64 {
	var id int
	_ = db.bolt.View(func(tx *bolt.Tx) error {
		id = tx.ID()
		return nil
	})
	return uint64(id)
}

// Close closes the file. It waits for transactions in progress; calls made
// after Close fail.
func (db *DB) Close() error {
	if !db.opts.ReadOnly && db.lazy.pending() {
		// What PutSettingLater left goes with a last commit.
		if err := db.write(func(*bolt.Tx) error { return nil }); err != nil {
			db.bolt.Close()
			return fmt.Errorf("store: close %s: %w", db.path, err)
		}
	}
	if err := db.bolt.Close(); err != nil {
		return fmt.Errorf("store: close %s: %w", db.path, err)
	}
	return nil
}

// write runs fn in a read-write transaction that is committed (and fsynced)
// together with concurrent callers' transactions. fn may run more than once
// (when another call in its group fails, the group is retried without it), so
// it must reset any result it sets.
func (db *DB) write(fn func(tx *bolt.Tx) error) error {
	return db.group.do(fn)
}

// group is a group committer. A caller that finds no commit running becomes
// the leader: it commits everything pending, its own call included, in one
// transaction. Calls arriving meanwhile wait; when the leader is done it
// hands leadership to the oldest waiter, which commits the rest. No goroutine
// of its own, no timer: a lone caller pays one fsync and no delay, and a
// burst of concurrent callers shares one fsync per commit cycle.
//
// bbolt's DB.Batch does the same with a timer (MaxBatchDelay, 10ms) that every
// lone writer would wait for; here the running fsync is the delay.
type group struct {
	db  *bolt.DB
	max int

	commits atomic.Int64  // transactions committed, for tests and benchmarks
	lazy    *lazySettings // written with every commit

	mu      sync.Mutex
	busy    bool // a leader is committing
	pending []*call
}

type call struct {
	fn  func(tx *bolt.Tx) error
	err error
	// wake receives false when the call is committed (err is set), or true
	// when the call must lead the next commit.
	wake chan bool
}

func (g *group) do(fn func(tx *bolt.Tx) error) error {
	c := &call{fn: fn, wake: make(chan bool, 1)}
	g.mu.Lock()
	g.pending = append(g.pending, c)
	if g.busy {
		g.mu.Unlock()
		if lead := <-c.wake; !lead {
			return c.err
		}
		g.mu.Lock()
	} else {
		g.busy = true
	}
	// Leading: c is pending[0] (a new leader) or the only pending call.
	n := min(len(g.pending), g.max)
	batch := g.pending[:n:n]
	g.pending = append([]*call(nil), g.pending[n:]...)
	g.mu.Unlock()

	g.commit(batch)

	g.mu.Lock()
	if len(g.pending) > 0 {
		g.pending[0].wake <- true
	} else {
		g.busy = false
	}
	g.mu.Unlock()
	for _, o := range batch {
		if o != c {
			o.wake <- false
		}
	}
	return c.err
}

// failedCall marks which call of a group made the transaction fail.
type failedCall struct {
	i   int
	err error
}

func (f *failedCall) Error() string { return f.err.Error() }

// stageCommit times the group's write transactions, fsync included.
var stageCommit = bridge.NewStage("store commit")

// commit runs the calls in one transaction. If one call fails, it gets the
// error of running alone and the others are committed without it, so one bad
// call never fails its neighbours.
func (g *group) commit(batch []*call) {
	for len(batch) > 0 {
		g.commits.Add(1)
		t := bridge.StageStart()
		var lazy lazyBatch
		err := g.db.Update(func(tx *bolt.Tx) error {
			// Taken once the transaction holds bbolt's writer lock, so
			// that no other transaction commits between taking and
			// writing them (a buffered event deleted and put again).
			// First, so that a call of the same transaction that
			// sets the same setting wins.
			lazy = g.lazy.take()
			putLazy(tx, lazy)
			for i, c := range batch {
				if err := safeRun(c.fn, tx); err != nil {
					return &failedCall{i, err}
				}
			}
			return nil
		})
		stageCommit.Done(t)
		g.lazy.settle(lazy, err)
		var f *failedCall
		if !errors.As(err, &f) {
			for _, c := range batch {
				c.err = err
			}
			return
		}
		bad := batch[f.i]
		if len(batch) == 1 {
			bad.err = f.err
			return
		}
		g.commits.Add(1)
		bad.err = g.db.Update(func(tx *bolt.Tx) error { return safeRun(bad.fn, tx) })
		batch = append(batch[:f.i:f.i], batch[f.i+1:]...)
	}
}

// safeRun turns a panic in fn into an error, so that the other callers of a
// group are not left waiting forever.
func safeRun(fn func(tx *bolt.Tx) error, tx *bolt.Tx) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("store: panic in transaction: %v", r)
		}
	}()
	return fn(tx)
}

// lazySettings are what is written with the next commit, whoever makes
// it (the group, a device-store write, a decryption transaction):
// settings (PutSettingLater), queue removals (AckThroughLater) and the
// clearing of buffered events' plaintext (ClearBufferedEventPlaintext).
// Safe for concurrent use; the zero value is empty.
type lazySettings struct {
	mu   sync.Mutex
	m    map[string][]byte // name → encoded record
	acks map[string]uint64 // queue → remove every item up to here
	// msgs are map entries (PutMessagesLater) not yet written; shown
	// are those not yet indexed, written or not: lookups read them.
	msgs, shown []*pendingMessages
	// clears are the buffered events whose plaintext is to be cleared:
	// false while waiting, true while a commit that took them runs.
	// GetBufferedEvent reads them as cleared until they are on disk.
	clears map[bufKey]bool
	// floors are the queues' removals, lazy or written, that Peek and
	// Len already leave out; removed are those on disk. Both only grow.
	floors, removed map[string]uint64
}

func (l *lazySettings) set(name string, rec []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m == nil {
		l.m = map[string][]byte{}
	}
	l.m[name] = rec
}

// drop forgets name's value: a durable write of name supersedes it.
func (l *lazySettings) drop(name string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.m, name)
}

func (l *lazySettings) get(name string) ([]byte, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	rec, ok := l.m[name]
	return rec, ok
}

func (l *lazySettings) pending() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.m) > 0 || len(l.acks) > 0 || len(l.msgs) > 0 {
		return true
	}
	for _, taken := range l.clears {
		if !taken {
			return true
		}
	}
	return false
}

// bufKey names a buffered event: the device's JID and the ciphertext's
// hash.
type bufKey struct {
	dev  string
	hash [32]byte
}

// clear notes that k's plaintext is to be cleared with the next commit,
// unless bound clears wait already: then it notes nothing and returns
// false (the caller writes it).
func (l *lazySettings) clear(k bufKey, bound int) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.clears[k]; ok {
		return true
	}
	if len(l.clears) >= bound {
		return false
	}
	if l.clears == nil {
		l.clears = map[bufKey]bool{}
	}
	l.clears[k] = false
	return true
}

// clearing reports whether k's plaintext is cleared but maybe not on
// disk yet.
func (l *lazySettings) clearing(k bufKey) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, ok := l.clears[k]
	return ok
}

// ack notes queue's removal through seq, to be written later.
func (l *lazySettings) ack(queue string, seq uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.acks == nil {
		l.acks = map[string]uint64{}
	}
	if seq > l.acks[queue] {
		l.acks[queue] = seq
	}
	l.raise(queue, seq)
}

// raise lifts queue's floor to seq. l.mu is held.
func (l *lazySettings) raise(queue string, seq uint64) {
	if l.floors == nil {
		l.floors = map[string]uint64{}
	}
	l.floors[queue] = max(l.floors[queue], seq)
}

// floor is queue's highest removal, written or not: Peek and Len leave
// out what is at or below it.
func (l *lazySettings) floor(queue string) uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.floors[queue]
}

// written notes that queue's items through seq are removed on disk.
func (l *lazySettings) written(queue string, seq uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.removed == nil {
		l.removed = map[string]uint64{}
	}
	l.removed[queue] = max(l.removed[queue], seq)
	l.raise(queue, seq)
}

// onDisk is queue's highest removal a commit has written.
func (l *lazySettings) onDisk(queue string) uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.removed[queue]
}

// putMessages notes map entries to be written with the next commit.
func (l *lazySettings) putMessages(p *pendingMessages) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.msgs = append(l.msgs, p)
	l.shown = append(l.shown, p)
}

// messages calls f with the map entries not yet indexed, newest first,
// until it returns false.
func (l *lazySettings) messages(f func(Message) bool) {
	l.mu.Lock()
	shown := slices.Clone(l.shown)
	l.mu.Unlock()
	for _, p := range slices.Backward(shown) {
		for _, m := range slices.Backward(p.ms) {
			if !f(m) {
				return
			}
		}
	}
}

// lazyBatch is what one commit takes.
type lazyBatch struct {
	settings map[string][]byte
	acks     map[string]uint64
	clears   []bufKey
	msgs     []*pendingMessages
}

// take hands the values to a commit.
func (l *lazySettings) take() lazyBatch {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := lazyBatch{settings: l.m, acks: l.acks, msgs: l.msgs}
	l.m, l.acks, l.msgs = nil, nil, nil
	for k, taken := range l.clears {
		if !taken {
			b.clears = append(b.clears, k)
			l.clears[k] = true
		}
	}
	return b
}

// settle notes how the commit that took b ended.
func (l *lazySettings) settle(b lazyBatch, err error) {
	if err != nil {
		l.restore(b)
	} else {
		l.committed(b)
	}
}

// restore takes back the values of a commit that failed, unless set
// again meanwhile.
func (l *lazySettings) restore(b lazyBatch) {
	if len(b.settings) == 0 && len(b.acks) == 0 && len(b.clears) == 0 && len(b.msgs) == 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.msgs = append(b.msgs, l.msgs...)
	for _, k := range b.clears {
		if _, ok := l.clears[k]; ok {
			l.clears[k] = false
		}
	}
	if l.m == nil && len(b.settings) > 0 {
		l.m = map[string][]byte{}
	}
	for k, v := range b.settings {
		if _, ok := l.m[k]; !ok {
			l.m[k] = v
		}
	}
	if l.acks == nil && len(b.acks) > 0 {
		l.acks = map[string]uint64{}
	}
	for k, v := range b.acks {
		l.acks[k] = max(l.acks[k], v)
	}
}

// committed notes b's removals and clears as written.
func (l *lazySettings) committed(b lazyBatch) {
	for q, seq := range b.acks {
		l.written(q, seq)
	}
	for _, p := range b.msgs {
		p.indexed()
	}
	if len(b.clears) > 0 || len(b.msgs) > 0 {
		l.mu.Lock()
		for _, k := range b.clears {
			delete(l.clears, k)
		}
		l.shown = slices.DeleteFunc(l.shown, func(p *pendingMessages) bool { return slices.Contains(b.msgs, p) })
		l.mu.Unlock()
	}
}

// putLazy writes b's settings and removals in tx. bbolt's Put and Delete
// fail only before they change anything (a bad key or value, a read-only
// transaction), and such a value is lost: a lazy setting is one whose
// loss costs repeated work, not data, and a removal that is lost sends
// its items again (with their ids) after a restart.
func putLazy(tx *bolt.Tx, b lazyBatch) {
	if s := tx.Bucket(bucketSettings); s != nil {
		for k, v := range b.settings {
			_ = s.Put([]byte(k), v)
		}
	}
	for q, seq := range b.acks {
		_ = removeThrough(tx, []byte(q), seq)
	}
	for _, p := range b.msgs {
		_ = p.put(tx)
	}
	if top := tx.Bucket(bktEventBuffer); top != nil {
		for _, k := range b.clears {
			_ = clearPlaintext(top.Bucket([]byte(k.dev)), k.hash[:])
		}
	}
}
