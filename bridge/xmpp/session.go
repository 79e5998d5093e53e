package xmpp

import (
	"cmp"
	"context"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"waxmpp/bridge"
)

// Queue is the durable FIFO the outbox lives in (bridge/store's Queue).
// Enqueue returns only once the items are on disk.
type Queue interface {
	Enqueue(data ...[]byte) ([]uint64, error)
	Peek(after uint64, n int) ([]bridge.QueueItem, error)
	AckThrough(seq uint64) error
	Len() (int, error)
	Oldest() (bridge.QueueItem, bool, error)
}

// LaterQueue is a Queue whose removals may wait for the store's next
// commit (bridge/store's queues): AckThroughLater takes the items out at
// once for Peek, Len and Oldest, and off the disk with whatever commits
// next; Removed is the highest seq whose removal is on disk. The writer
// removes a lone message's confirmed stanza that way (outWriter.remove),
// so that relaying it costs one commit, not two.
type LaterQueue interface {
	AckThroughLater(seq uint64)
	Removed() uint64
}

// Cursor keeps, durably, the archive id (XEP-0313) of the last owner
// message the core has handled; after a reconnect the session replays the
// server's archive from there, so a message that reached the bot just
// before a crash is not lost.
type Cursor interface {
	LoadCursor() (string, error)
	SaveCursor(id string) error
}

// Config configures a Session. JID, Password, Owner and Outbox are required.
type Config struct {
	JID      string // the bot's bare JID
	Password string
	Resource string // "" means "waxmpp"
	Owner    string // the owner's bare JID: the only one served
	// Server is "host:port" (STARTTLS) or "tls://host:port" (direct TLS);
	// empty means SRV lookup of the JID's domain.
	Server   string
	RootCAs  *x509.CertPool // nil: the system's roots
	Resolver Resolver       // nil: net.DefaultResolver

	// Rate is the ceiling of the pace in bytes/s, default 8000 (below
	// Prosody's 10 kB/s); the session finds the server's own pace below
	// it from ping round trips.
	Rate  int
	Burst int // bytes, default 16000

	PingInterval time.Duration // default 60 s; also how often idle links are checked
	PingTimeout  time.Duration // default 20 s
	DialTimeout  time.Duration // whole login, default 30 s
	WriteTimeout time.Duration // one stanza's write, default 30 s
	MinBackoff   time.Duration // default 1 s
	MaxBackoff   time.Duration // default 5 min
	// ConflictBackoff is how long Run waits after the server closed the
	// stream because another login took the bot's resource; default 10 min.
	ConflictBackoff time.Duration

	// Mechanism forces a SASL mechanism (e.g. "SCRAM-SHA-1"); "" takes the
	// strongest the server offers, falling back once from channel binding
	// (-PLUS) when the server gets it wrong.
	Mechanism string

	Outbox Queue
	// Held keeps, durably, messages the owner's server refused for now
	// (see bounce.go) until they can go again; nil: kept in memory.
	Held   Queue
	Cursor Cursor      // nil: no archive replay after a restart
	Rooms  RoomCursors // nil: no replay of the rooms' archives (muc.go)
	Log    *slog.Logger
}

func (c *Config) defaults() error {
	if c.JID == "" || c.Password == "" || c.Owner == "" || c.Outbox == nil {
		return errors.New("xmpp: config needs JID, Password, Owner and Outbox")
	}
	if c.Resource == "" {
		c.Resource = "waxmpp"
	}
	if c.Resolver == nil {
		c.Resolver = net.DefaultResolver
	}
	setDefault(&c.Rate, 8000)
	setDefault(&c.Burst, 16000)
	setDefault(&c.PingInterval, 60*time.Second)
	setDefault(&c.PingTimeout, 20*time.Second)
	setDefault(&c.DialTimeout, 30*time.Second)
	setDefault(&c.WriteTimeout, 30*time.Second)
	setDefault(&c.MinBackoff, time.Second)
	setDefault(&c.MaxBackoff, 5*time.Minute)
	setDefault(&c.ConflictBackoff, 10*time.Minute)
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	return nil
}

func setDefault[T comparable](p *T, v T) {
	var zero T
	if *p == zero {
		*p = v
	}
}

// Session is the bot's XMPP client: it keeps one stream to the server alive
// forever, relays the owner's messages to Inbound and drains the durable
// outbox at a paced rate.
//
// Goroutines: Run owns one link at a time, and each link runs a reader and a
// writer; all stop when Run's context ends. The public methods may be called
// from any goroutine.
type Session struct {
	cfg    Config
	log    *slog.Logger
	owner  string
	bare   string // the bot's bare JID
	domain string

	// in carries the owner's messages to the core. Backpressure: the reader
	// blocks when it is full, so a stuck core stops reading the socket (and
	// the link is rebuilt when pings time out); nothing is dropped.
	in chan *Inbound
	// kick tells the writer the outbox grew. Capacity 1: a pending kick
	// already says "look again".
	kick chan struct{}

	mu      sync.Mutex
	cur     *conn // the live link, nil while disconnected
	pending map[string]pendingIQ
	show    string
	status  string
	upload  *uploadService // discovered per server, nil until needed
	// ownerCaps are the owner's online resources and their XEP-0115
	// caps nodes (owner.go).
	ownerCaps map[string]string
	// ownerSeen is closed once this link has the owner's presence
	// (owner.go); made anew by each link's setup.
	ownerSeen chan struct{}
	// sent remembers confirmed messages, for bounces.
	sent bounces
	// smq lists the owner messages handed to the core, oldest first, until
	// it reports them handled (see sm.go).
	smq []smEntry
	// noUpload is when the server was found without an upload service.
	noUpload time.Time
	// fallback is the SASL mechanism without channel binding to use from
	// now on, once this server failed a -PLUS login; "" until then.
	fallback string
	// redirect is where a see-other-host stream error sent the next
	// login, "" if nowhere; conflicted is set by a conflict until the
	// owner is told.
	redirect   string
	conflicted bool
	// The archive cursor (mam.go): candidates waiting for the core to
	// handle what was delivered before them; next, the latest due one not
	// yet saved (at most every cursorEvery); saved, the cursor saved
	// last, at cursorSaved; lastResult, the latest result of our own
	// archive query, with the server's stamp.
	cands       []candidate
	next        *cursorPos
	saved       cursorPos
	cursorSaved time.Time
	lastResult  cursorPos

	// recent remembers the ids of the owner's latest messages (reader
	// goroutine only): a resend or an archive replay of one is dropped.
	recent recentIDs
	// mamQuery is the id of the archive replay running, mamPos the id of
	// the query for the archive's last item; "" if none.
	mamQuery, mamPos atomic.Value
	// replaying is true from before a login until its archive replay has
	// completed; meanwhile only replayed messages move the cursor, so a
	// replay cut short (a dying link, a crash) goes on from the last one
	// handled.
	replaying atomic.Bool
	// liveFirst is the archive id of the first owner message this link
	// got live during its replay (reader goroutine; reset before each
	// login); caughtUp is set when the replay returns it.
	liveFirst string
	caughtUp  atomic.Bool
	// deliveredN numbers the owner messages handed to Inbound, handledN
	// counts those reported handled (in the same order).
	deliveredN, handledN atomic.Uint64
	// inflight counts the owner messages handed to Inbound, from the bot
	// conversation and the rooms, not yet reported handled (the rooms'
	// cursors wait for it to be 0, muc.go).
	inflight atomic.Int64
	// syncWanted: a live message without a stanza-id was delivered since
	// the archive's last item was asked for (keepCursor).
	syncWanted atomic.Bool
	// prefsSet: the server took the bot's archive preferences.
	prefsSet atomic.Bool
	// cursorKick wakes keepCursor (mam.go).
	cursorKick chan struct{}
	// For tests: replayPages counts the archive pages asked for;
	// stripLiveIDs drops the stanza-ids of live messages, as a server
	// that adds none.
	replayPages  atomic.Uint64
	stripLiveIDs bool

	// cmds carries XEP-0050 commands to the core (Bot.Commands).
	// Capacity 8; a command that finds it full waits up to 30 s on its own
	// goroutine, then answers "busy".
	cmds  chan bridge.Command
	adhoc adhoc
	// fits carries what the session learns of the owner outside their
	// messages (presences, roster) to the Bot (fit.go). Capacity 64;
	// when full a note is dropped: it only tunes hints.
	fits chan ownerNote

	// lazy are the outbox removals that wait for the store's next
	// commit (outbox.go; the writer goroutine only).
	lazy lazyRemovals

	// pacer finds the server's pace (writer goroutine only); rate and rtt
	// are its latest rate (B/s) and round trip (ns), for Stats.
	pacer     *pacer
	rate, rtt atomic.Int64

	// limit is the stanza limit new messages are split for (0: not
	// known yet, defaultStanzaLimit); lowered, when set, is a lower one a
	// server taught by closing the stream after a large stanza (guard.go).
	limit, lowered atomic.Int64
	// guard finds an outbox item that keeps preceding a stream error
	// (guard.go). One link's writer at a time, then Run.
	guard guard

	smOn    atomic.Bool // the last link had XEP-0198 enabled
	archive atomic.Bool // the server archives the owner's messages to the bot
	// muc is the rooms the bot is in (muc.go). notes carries notices
	// about them to the core (Bot): someone else in a room, a room gone.
	// Capacity 16; backpressure as in: the reader waits.
	muc   mucState
	notes chan bridge.OwnerEvent

	connected   atomic.Bool
	conflicts   atomic.Uint64 // links closed by the server for a resource conflict
	dropped     atomic.Uint64 // stanzas from anyone but the owner
	duplicates  atomic.Uint64
	reconnects  atomic.Uint64
	unconfirmed atomic.Int64
	idn         atomic.Uint64
}

// New checks cfg and returns an unstarted Session.
func New(cfg Config) (*Session, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	if err := checkGoXMPP(goxmppClient); err != nil {
		return nil, err
	}
	_, domain, ok := strings.Cut(cfg.JID, "@")
	if !ok || domain == "" {
		return nil, fmt.Errorf("xmpp: JID %q has no domain", cfg.JID)
	}
	return &Session{
		cfg:    cfg,
		log:    cfg.Log,
		owner:  strings.ToLower(cfg.Owner),
		bare:   strings.ToLower(cfg.JID),
		domain: strings.ToLower(domain),
		in:     make(chan *Inbound, 64),
		kick:   make(chan struct{}, 1),
		// cursorKick: capacity 1, a kick that finds it full is merged.
		cursorKick: make(chan struct{}, 1),
		cmds:       make(chan bridge.Command, 8),
		notes:      make(chan bridge.OwnerEvent, 16),
		fits:       make(chan ownerNote, 64),
		pending:    make(map[string]pendingIQ),
		show:       "away",
		pacer:      newPacer(cfg.Rate),
	}, nil
}

// Inbound delivers the owner's messages, duplicates removed, in order.
func (s *Session) Inbound() <-chan *Inbound { return s.in }

// Send queues m durably and returns once it is on disk; the writer sends it
// when connected and paced, and resends it (same id) after a reconnect until
// a later ping result proves the server has it. m.ID is set if empty.
func (s *Session) Send(m Message) (string, error) {
	ids, err := s.SendBatch([]Message{m})
	if err != nil {
		return "", err
	}
	return ids[0], nil
}

// SendBatch queues ms in one durable write (one fsync) and returns their
// ids. A message over the server's stanza limit is queued in parts (see
// splitMessage); its id is the first part's.
func (s *Session) SendBatch(ms []Message) ([]string, error) {
	return s.SendBatchWith(bridge.Record{}, ms)
}

// RecordingQueue is an outbox that writes a bridge.Record in the
// transaction that queues items (bridge/store's queues do).
type RecordingQueue interface {
	EnqueueWith(r bridge.Record, data ...[]byte) ([]uint64, error)
}

// SendBatchWith is SendBatch that writes r in the same transaction as
// the stanzas (bridge.RecordingXMPP). With a record and an outbox that
// is no RecordingQueue it writes nothing and returns an error wrapping
// errors.ErrUnsupported.
func (s *Session) SendBatchWith(r bridge.Record, ms []Message) ([]string, error) {
	rq, recording := s.cfg.Outbox.(RecordingQueue)
	if !recording && (len(r.Links) > 0 || len(r.Touch) > 0) {
		return nil, fmt.Errorf("xmpp: this outbox cannot write the map with the messages: %w", errors.ErrUnsupported)
	}
	recs := make([][]byte, 0, len(ms))
	ids := make([]string, len(ms))
	now := time.Now()
	limit := s.stanzaLimit()
	for i, m := range ms {
		if m.ID == "" {
			m.ID = s.NewID()
		}
		if m.To == "" {
			m.To = s.cfg.Owner
		}
		// A message over the server's limit goes in parts; the core
		// knows it by the first part's id (m.ID).
		rec, err := recordMessage(now, m)
		if err != nil {
			return nil, fmt.Errorf("xmpp: send: %w", err)
		}
		if len(rec)-8 <= limit {
			recs = append(recs, rec) // as splitMessage would leave it
			ids[i] = m.ID
			continue
		}
		parts, err := splitMessage(m, limit)
		if errors.Is(err, errTooLarge) {
			parts = []Message{m} // the writer's guard deals with it
		} else if err != nil {
			return nil, fmt.Errorf("xmpp: send: %w", err)
		}
		for _, p := range parts {
			b, err := EncodeMessage(p)
			if err != nil {
				return nil, fmt.Errorf("xmpp: send: %w", err)
			}
			recs = append(recs, record(now, b))
		}
		ids[i] = m.ID
	}
	t := bridge.StageStart()
	var err error
	if recording {
		_, err = rq.EnqueueWith(r, recs...)
	} else {
		_, err = s.cfg.Outbox.Enqueue(recs...)
	}
	if err != nil {
		return nil, fmt.Errorf("xmpp: queue %d stanzas: %w", len(ms), err)
	}
	stageOutbox.Done(t)
	select {
	case s.kick <- struct{}{}:
	default:
	}
	return ids, nil
}

// SendNow writes m without queueing it: for chat states and markers, which
// are worthless later. It returns ErrOffline when there is no link.
func (s *Session) SendNow(m Message) error {
	if m.ID == "" {
		m.ID = s.NewID()
	}
	if m.To == "" {
		m.To = s.cfg.Owner
	}
	b, err := EncodeMessage(m)
	if err != nil {
		return fmt.Errorf("xmpp: send: %w", err)
	}
	return s.control(b)
}

// ErrOffline is returned for sends that need a live link when there is none.
var ErrOffline = errors.New("xmpp: not connected")

// control hands a non-durable stanza to the current link's writer.
func (s *Session) control(b []byte) error {
	s.mu.Lock()
	c := s.cur
	s.mu.Unlock()
	if c == nil {
		return ErrOffline
	}
	select {
	case c.ctrl <- b:
		return nil
	case <-c.done:
		return ErrOffline
	default:
		// Backpressure: control stanzas are small and rare; a full channel
		// means the link is stuck, and it will be rebuilt.
		return fmt.Errorf("xmpp: control queue full")
	}
}

// SetPresence sets the bot's show ("" available, away, dnd, xa) and status
// text, now and after every reconnect.
func (s *Session) SetPresence(show, status string) {
	s.mu.Lock()
	s.show, s.status = show, status
	s.mu.Unlock()
	s.control(s.presence())
	s.roomPresences()
}

func (s *Session) presence() []byte {
	s.mu.Lock()
	show, status := s.show, s.status
	s.mu.Unlock()
	b, err := EncodePresence(Presence{Show: show, Status: status, Caps: botCaps()})
	if err != nil {
		panic(err) // our own constant values; a failure is a bug
	}
	return b
}

// NewID returns a fresh stanza id, unique across restarts.
func (s *Session) NewID() string {
	return fmt.Sprintf("wx-%x-%x", time.Now().UnixNano(), s.idn.Add(1))
}

// Stats is a snapshot for /status.
type Stats struct {
	Connected   bool
	Queued      int           // stanzas in the outbox, sent or not
	Unconfirmed int           // written on this link, not yet proven received
	Lag         time.Duration // age of the oldest queued stanza
	Pace        int           // bytes/s the writer paces at now
	RTT         time.Duration // the latest ping's round trip
	Dropped     uint64        // stanzas from anyone but the owner, ignored
	Duplicates  uint64        // owner messages dropped as already seen
	Reconnects  uint64
	Conflicts   uint64 // links another login took over (stream error conflict)
	// Archive: the server answered an archive query (XEP-0313): messages
	// the owner wrote while waxmpp was down or dying are replayed.
	// StreamManagement: the last link acknowledged stanzas (XEP-0198):
	// what the core had not handled when a link died is stored again.
	Archive, StreamManagement bool
}

// Caveat says in plain words what this server cannot guarantee, "" when
// nothing: with neither an archive nor stream management, a message the
// owner sends just as waxmpp stops or loses its connection can be lost.
func (st Stats) Caveat() string {
	if st.Archive || st.StreamManagement {
		return ""
	}
	return "the bot's server keeps no message archive and offers no stream management: a message you send just as waxmpp restarts or loses its connection can be lost"
}

// Stats reads the counters and the outbox.
func (s *Session) Stats() (Stats, error) {
	st := Stats{
		Connected:        s.connected.Load(),
		Unconfirmed:      int(s.unconfirmed.Load()),
		Pace:             int(s.rate.Load()),
		RTT:              time.Duration(s.rtt.Load()),
		Dropped:          s.dropped.Load(),
		Duplicates:       s.duplicates.Load(),
		Reconnects:       s.reconnects.Load(),
		Conflicts:        s.conflicts.Load(),
		Archive:          s.archive.Load(),
		StreamManagement: s.smOn.Load(),
	}
	n, err := s.cfg.Outbox.Len()
	if err != nil {
		return st, err
	}
	st.Queued = n
	if it, ok, err := s.cfg.Outbox.Oldest(); err != nil {
		return st, err
	} else if ok && len(it.Data) >= 8 {
		st.Lag = time.Since(time.Unix(0, int64(binary.BigEndian.Uint64(it.Data))))
	}
	return st, nil
}

// timeNow is time.Now; records are stamped with it.
var timeNow = time.Now

// recordMessage is record(t, EncodeMessage(m)), encoded in place.
func recordMessage(t time.Time, m Message) ([]byte, error) {
	b := make([]byte, 8, 8+messageRoom(m))
	binary.BigEndian.PutUint64(b, uint64(t.UnixNano()))
	b, err := appendMessage(b, m)
	if err != nil {
		return nil, err
	}
	return compactRecord(b), nil
}

// record prefixes a stanza with its enqueue time, for lag reporting, and
// compacts it (record.go).
func record(t time.Time, stanza []byte) []byte {
	b := make([]byte, 8+len(stanza))
	binary.BigEndian.PutUint64(b, uint64(t.UnixNano()))
	copy(b[8:], stanza)
	return compactRecord(b)
}

// Run connects and keeps the session connected until ctx ends, reconnecting
// with exponential backoff and jitter. It returns ctx's error, or ErrAuth
// wrapped when the server refuses the password (retrying cannot help).
func (s *Session) Run(ctx context.Context) error {
	backoff := s.cfg.MinBackoff
	refused := 0 // logins refused as a wrong password, in a row
	for {
		// Where the archive replay of this link starts, read before login:
		// the server delivers stored messages right after it, and the core
		// may handle (and move the cursor past) them before the replay
		// asks, skipping what was lost in between.
		s.replaying.Store(true)
		s.liveFirst = "" // the last link's reader has ended
		s.caughtUp.Store(false)
		from, cerr := s.loadCursor()
		if cerr != nil {
			s.log.Error("cannot read the archive cursor", "err", cerr)
		}
		l, err := s.dial(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		switch {
		case errors.Is(err, ErrAuth):
			// A refused password is permanent only when the server says
			// it again: one refusal can be a server's hiccup.
			if refused++; refused >= 2 {
				return err
			}
		case permanent(err):
			return err
		case err == nil:
			refused = 0
		}
		if err == nil {
			start := time.Now()
			err = s.serve(ctx, l, from)
			if ctx.Err() != nil {
				return ctx.Err()
			}
			s.reconnects.Add(1)
			if time.Since(start) > time.Minute {
				backoff = s.cfg.MinBackoff
			}
		}
		// Jitter keeps many bridges restarted by one server outage from
		// returning in lock step.
		wait := backoff/2 + rand.N(backoff/2+1)
		wait = max(wait, s.afterStreamError(err))
		s.guard.linkEnded(s, err)
		s.log.Warn("disconnected", "err", err, "retry_in", wait.Round(time.Millisecond))
		if err := sleep(ctx, wait); err != nil {
			return err
		}
		backoff = min(backoff*2, s.cfg.MaxBackoff)
	}
}

func (s *Session) dial(ctx context.Context) (*link, error) {
	s.mu.Lock()
	explicit := cmp.Or(s.redirect, s.cfg.Server)
	s.redirect = ""
	s.mu.Unlock()
	eps := endpoints(ctx, s.cfg.Resolver, s.domain, explicit)
	if len(eps) == 0 {
		return nil, fmt.Errorf("xmpp: %s offers no client service (SRV target \".\")", s.domain)
	}
	var errs []error
	for _, ep := range eps {
		l, err := s.login(ctx, ep)
		if err == nil {
			s.log.Info("connected", "addr", ep.Addr, "direct_tls", ep.DirectTLS, "jid", l.jid)
			return l, nil
		}
		var le *LoginError
		if ctx.Err() != nil || errors.As(err, &le) && le.Stage == "sasl" {
			return nil, err // the account's answer: the same at every endpoint
		}
		errs = append(errs, err)
	}
	return nil, errors.Join(errs...)
}

// login logs in at ep. When a channel-binding (-PLUS) mechanism fails (not
// every server gets it right: ejabberd before 24.02 refuses go-xmpp's
// tls-exporter binding), it tries once more on a fresh connection with the
// strongest mechanism without binding, and keeps to that one for this
// server from then on. The certificate is verified either way.
func (s *Session) login(ctx context.Context, ep endpoint) (*link, error) {
	s.mu.Lock()
	mech := cmp.Or(s.cfg.Mechanism, s.fallback)
	s.mu.Unlock()
	l, err := dialEndpoint(ctx, ep, &s.cfg, mech, s.cfg.DialTimeout)
	var le *LoginError
	if err == nil || mech != "" || !errors.As(err, &le) || le.Stage != "sasl" || !binding(le.Mechanism) {
		return l, err
	}
	fb := bestWithoutBinding(le.offered)
	if fb == "" {
		return nil, err
	}
	l, err = dialEndpoint(ctx, ep, &s.cfg, fb, s.cfg.DialTimeout)
	if err != nil {
		return nil, err
	}
	s.log.Warn("the server refused channel binding; logging in without it from now on (the certificate is verified either way)",
		"refused", le.Mechanism, "condition", le.Condition, "text", le.Text, "now", fb)
	s.mu.Lock()
	s.fallback = fb
	s.mu.Unlock()
	return l, nil
}
