package simwa

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"waxmpp/bridge"
)

// Config configures a simulator.
type Config struct {
	// Socket is the control socket's path. A stale socket file left by a
	// killed process is replaced; one that answers is an error.
	Socket string
	// Events is where events go: the core's channel. See the package
	// documentation for its backpressure.
	Events chan<- bridge.Event
	// Log receives the simulator's own diagnostics.
	Log *slog.Logger
	// Now is the clock (time.Now if nil).
	Now func() time.Time
	// Unpaired starts the simulator as a device that is not linked: no
	// Status connected at start, and Pair works at once.
	Unpaired bool
}

// maxLog bounds the in-memory action log answered by op actions and a
// new watch's backlog; watching connections get every action as it is
// recorded regardless. An action takes about 350 bytes in the binary's
// heap, so the log is kept to what a test asks back (the burst
// benchmark's owner sends 10,000 texts); one that asks for actions the log
// no longer holds gets an error, never a silent gap.
const maxLog = 50_000

// pushTimeout is how long an action waits for a watching connection to
// take its line before that connection is dropped.
const pushTimeout = 10 * time.Second

// Sim is the simulated WhatsApp network: a bridge.WhatsApp plus the
// control socket. Its WhatsApp methods are called by the core; the control
// connections run on goroutines of Run.
type Sim struct {
	cfg  Config
	log  *slog.Logger
	now  func() time.Time
	ln   *net.UnixListener
	boot string

	recMu sync.Mutex // orders records: log append and pushes, one at a time

	mu       sync.Mutex
	seq      uint64
	actions  []Action // the last maxLog actions
	first    uint64   // seq of actions[0]
	changed  chan struct{}
	watchers map[*conn]watch
	rules    []*Rule
	life     context.Context // Run's: for answers the simulator sends later
	paired   bool
	online   bool
	events   uint64
	handled  uint64
	ids      uint64
	media    map[string]source    // handle → what Download writes
	pictures map[string]picture   // chat → its profile picture (picture.go)
	sent     map[string]time.Time // id → send time, for the edit window
}

type watch struct {
	types   map[string]bool
	handled bool // push acknowledgements too
}

// New listens on cfg.Socket. Serve with Run.
func New(cfg Config) (*Sim, error) {
	if cfg.Socket == "" {
		return nil, errors.New("simwa: no control socket path")
	}
	if cfg.Events == nil {
		return nil, errors.New("simwa: no events channel")
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	if err := removeStale(cfg.Socket); err != nil {
		return nil, err
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: cfg.Socket, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("simwa: listen: %w", err)
	}
	os.Chmod(cfg.Socket, 0o600)
	return &Sim{
		cfg: cfg, log: log, now: now, ln: ln,
		boot:     fmt.Sprintf("%X", time.Now().UnixNano()),
		changed:  make(chan struct{}),
		watchers: make(map[*conn]watch),
		paired:   !cfg.Unpaired,
		media:    make(map[string]source),
		pictures: make(map[string]picture),
		sent:     make(map[string]time.Time),
	}, nil
}

// removeStale removes a socket file that nobody answers on (a killed
// process's).
func removeStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("simwa: %w", err)
	}
	if fi.Mode()&os.ModeSocket == 0 {
		return fmt.Errorf("simwa: %s exists and is not a socket", path)
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		c.Close()
		return fmt.Errorf("simwa: %s is in use by another simulator", path)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("simwa: %s: %w", path, err)
	}
	return os.Remove(path)
}

// Boot identifies this start of the simulator.
func (s *Sim) Boot() string { return s.boot }

// Run serves control connections until ctx ends; then it closes the
// listener and every connection and returns nil. At start, unless
// Config.Unpaired, it tells the core that WhatsApp is connected.
func (s *Sim) Run(ctx context.Context) error {
	s.mu.Lock()
	s.life = ctx
	s.mu.Unlock()
	var wg sync.WaitGroup
	defer wg.Wait()
	conns := make(map[net.Conn]struct{})
	var cmu sync.Mutex
	stop := context.AfterFunc(ctx, func() {
		s.ln.Close()
		cmu.Lock()
		for c := range conns {
			c.Close()
		}
		cmu.Unlock()
	})
	defer stop()
	if s.paired {
		wg.Go(func() { s.emit(ctx, &bridge.Status{State: bridge.Connected}) })
	}
	for {
		c, err := s.ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				os.Remove(s.cfg.Socket)
				return nil
			}
			return fmt.Errorf("simwa: accept: %w", err)
		}
		cmu.Lock()
		conns[c] = struct{}{}
		cmu.Unlock()
		wg.Go(func() {
			s.serve(ctx, c)
			cmu.Lock()
			delete(conns, c)
			cmu.Unlock()
		})
	}
}

// emit hands an event the simulator produces itself to the core.
func (s *Sim) emit(ctx context.Context, ev bridge.Event) bool {
	select {
	case s.cfg.Events <- ev:
		s.mu.Lock()
		s.events++
		s.mu.Unlock()
		return true
	case <-ctx.Done():
		return false
	}
}

// conn is one control connection.
type conn struct {
	c        net.Conn
	wmu      sync.Mutex
	cursor   uint64        // op actions without since continues here
	watching bool          // set by watch, read by serve (same goroutine)
	dead     chan struct{} // closed when a push failed
	deadOnce sync.Once
}

func (c *conn) kill() {
	c.deadOnce.Do(func() { close(c.dead) })
	c.c.Close()
}

func (c *conn) write(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	b = append(b, '\n')
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.c.SetWriteDeadline(time.Now().Add(pushTimeout))
	_, err = c.c.Write(b)
	return err
}

func (s *Sim) serve(ctx context.Context, nc net.Conn) {
	c := &conn{c: nc, dead: make(chan struct{})}
	defer func() {
		s.mu.Lock()
		delete(s.watchers, c)
		s.mu.Unlock()
		nc.Close()
	}()
	sc := bufio.NewScanner(nc)
	sc.Buffer(make([]byte, 64<<10), MaxLine)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		req, err := DecodeRequest(line)
		var rep Reply
		if req != nil {
			rep.ID = req.ID
		}
		if err == nil {
			rep, err = s.handle(ctx, c, req)
			rep.ID = req.ID
			if errors.Is(err, errWatching) {
				continue
			}
		}
		if err != nil {
			rep.OK, rep.Error = false, err.Error()
		} else {
			rep.OK = true
		}
		if werr := c.write(rep); werr != nil {
			return
		}
	}
	if err := sc.Err(); err != nil && ctx.Err() == nil && !errors.Is(err, net.ErrClosed) {
		c.write(Reply{Error: "closing: " + err.Error()})
		return
	}
	// A watcher that closed its sending side (echo … | socat) still
	// reads: keep pushing until a push fails or the simulator stops.
	if c.watching {
		select {
		case <-c.dead:
		case <-ctx.Done():
		}
	}
}

func (s *Sim) handle(ctx context.Context, c *conn, req *Request) (Reply, error) {
	switch req.Op {
	case "event":
		if err := s.inject(ctx, []Event{*req.Event}); err != nil {
			return Reply{}, err
		}
		return Reply{N: 1}, nil
	case "events":
		if err := s.inject(ctx, req.Events); err != nil {
			return Reply{}, err
		}
		return Reply{N: len(req.Events)}, nil
	case "actions":
		return s.actionsOp(ctx, c, req)
	case "watch":
		if err := s.watch(c, req); err != nil && !errors.Is(err, errWatching) {
			c.kill() // the reply or backlog could not be written
		}
		return Reply{}, errWatching
	case "script":
		s.mu.Lock()
		r := *req.Rule
		s.rules = append(s.rules, &r)
		n := len(s.rules)
		s.mu.Unlock()
		return Reply{N: n}, nil
	case "reset":
		s.mu.Lock()
		s.rules = nil
		s.mu.Unlock()
		return Reply{}, nil
	case "forget":
		s.recMu.Lock()
		s.mu.Lock()
		n := len(s.actions)
		s.actions, s.first = nil, s.seq+1
		s.sent = map[string]time.Time{}
		s.mu.Unlock()
		s.recMu.Unlock()
		return Reply{N: n}, nil
	case "state":
		st := s.state()
		return Reply{State: &st}, nil
	case "generate":
		n, err := s.generate(ctx, req.Gen)
		return Reply{N: n}, err
	case "media":
		s.mu.Lock()
		s.media[req.Media.Handle] = source{data: req.Media.Data, file: req.Media.File}
		s.mu.Unlock()
		return Reply{}, nil
	}
	return Reply{}, fmt.Errorf("unknown op %q", req.Op)
}

func (s *Sim) state() State {
	s.mu.Lock()
	defer s.mu.Unlock()
	return State{Boot: s.boot, PID: os.Getpid(), Paired: s.paired, Online: s.online,
		Events: s.events, Handled: s.handled, Actions: s.seq, Rules: len(s.rules)}
}

// inject converts all events first (nothing is sent when one is bad), then
// hands them to the core in order, each once the channel accepts it.
func (s *Sim) inject(ctx context.Context, wire []Event) error {
	evs := make([]bridge.Event, len(wire))
	for i := range wire {
		ev, err := wire[i].ToBridge(s.now())
		if err != nil {
			if len(wire) > 1 {
				return fmt.Errorf("event %d (%s): %w", i, wire[i].Type, err)
			}
			return fmt.Errorf("event (%s): %w", wire[i].Type, err)
		}
		evs[i] = ev
	}
	for i, ev := range evs {
		s.observe(&wire[i], ev)
		if !s.emit(ctx, ev) {
			return fmt.Errorf("simulator stopping; %d of %d events accepted", i, len(evs))
		}
	}
	return nil
}

// observe keeps the simulator's own state in step with injected events:
// media for Download, and the pairing state.
func (s *Sim) observe(w *Event, ev bridge.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch v := ev.(type) {
	case *bridge.Message:
		if w.Media != nil {
			s.media[w.Media.Handle] = source{data: w.Media.Data, file: w.Media.File}
		}
	case *bridge.MediaRetry:
		if w.Media != nil && (w.Media.Data != nil || w.Media.File != "") {
			s.media[w.Media.Handle] = source{data: w.Media.Data, file: w.Media.File}
		}
	case *bridge.PictureChange:
		s.observePicture(w, v)
	case *bridge.PairResult:
		if v.OK {
			s.paired = true
		}
	case *bridge.Status:
		switch v.State {
		case bridge.LoggedOut, bridge.NotPaired:
			s.paired = false
		case bridge.Connected:
			s.paired = true
		}
	}
}

func (s *Sim) actionsOp(ctx context.Context, c *conn, req *Request) (Reply, error) {
	since := c.cursor
	if req.Since != nil {
		since = *req.Since
	}
	types := typeSet(req.Types)
	var deadline <-chan time.Time
	if req.Wait > 0 {
		timeout := time.Duration(req.Timeout)
		if timeout == 0 {
			timeout = 10 * time.Second
		}
		t := time.NewTimer(timeout)
		defer t.Stop()
		deadline = t.C
	}
	for {
		s.mu.Lock()
		out, err := s.since(since, types)
		next := s.seq
		changed := s.changed
		s.mu.Unlock()
		if err != nil {
			return Reply{}, err
		}
		if len(out) >= req.Wait || deadline == nil {
			c.cursor = next
			return Reply{Actions: out, Next: next}, nil
		}
		select {
		case <-changed:
		case <-deadline:
			c.cursor = next
			return Reply{Actions: out, Next: next}, fmt.Errorf("timeout: %d of %d actions", len(out), req.Wait)
		case <-ctx.Done():
			return Reply{}, errors.New("simulator stopping")
		}
	}
}

func typeSet(types []string) map[string]bool {
	if len(types) == 0 {
		return nil
	}
	m := make(map[string]bool, len(types))
	for _, t := range types {
		m[t] = true
	}
	return m
}

// since returns the logged actions after seq, of the given types (all if
// nil). s.mu is held.
func (s *Sim) since(seq uint64, types map[string]bool) ([]Action, error) {
	if s.first > 0 && seq+1 < s.first {
		return nil, fmt.Errorf("the log no longer holds the actions after %d: it starts at %d", seq, s.first)
	}
	var out []Action
	start := 0
	if seq >= s.first {
		start = int(seq - s.first + 1)
	}
	for i := start; i < len(s.actions); i++ {
		if types == nil || types[s.actions[i].Type] {
			out = append(out, s.actions[i])
		}
	}
	return out, nil
}

// watch sends the backlog after since (default: everything this process
// recorded), then every new action as it is recorded.
func (s *Sim) watch(c *conn, req *Request) error {
	s.recMu.Lock()
	defer s.recMu.Unlock()
	var since uint64
	if req.Since != nil {
		since = *req.Since
	}
	types := typeSet(req.Types)
	s.mu.Lock()
	backlog, err := s.since(since, types)
	if err == nil {
		s.watchers[c] = watch{types: types, handled: req.Handled}
	}
	s.mu.Unlock()
	if err != nil {
		return err
	}
	c.watching = true
	// The reply goes first so the client knows the stream has begun.
	if err := c.write(Reply{ID: req.ID, OK: true}); err != nil {
		return err
	}
	for i := range backlog {
		if err := c.write(Pushed{Action: &backlog[i]}); err != nil {
			return err
		}
	}
	return errWatching
}

// errWatching tells serve that watch already replied. It is not an error.
var errWatching = errors.New("watching")

// record logs an action and pushes it to watchers; it returns once every
// watcher has it in its socket buffer (or was dropped).
func (s *Sim) record(a Action) {
	s.recMu.Lock()
	defer s.recMu.Unlock()
	// The log keeps copies of the texts: the bridge's are parts of the
	// stanzas it read, which the log would otherwise keep whole (2.3 MB
	// of the binary's heap after the burst benchmark's 12,000 owner
	// messages), as WhatsApp's client, which encodes and forgets them,
	// does not.
	a.Text, a.QuotedText = strings.Clone(a.Text), strings.Clone(a.QuotedText)
	s.mu.Lock()
	s.seq++
	a.Seq, a.Boot, a.At = s.seq, s.boot, s.now()
	s.actions = append(s.actions, a)
	if s.first == 0 {
		s.first = a.Seq
	}
	if len(s.actions) > maxLog {
		drop := len(s.actions) - maxLog*9/10
		s.actions = append(s.actions[:0:0], s.actions[drop:]...)
		s.first += uint64(drop)
	}
	close(s.changed)
	s.changed = make(chan struct{})
	type target struct {
		c *conn
		w watch
	}
	var ts []target
	for c, w := range s.watchers {
		ts = append(ts, target{c, w})
	}
	s.mu.Unlock()
	for _, t := range ts {
		if t.w.types != nil && !t.w.types[a.Type] {
			continue
		}
		if err := t.c.write(Pushed{Action: &a}); err != nil {
			s.log.Warn("dropping a watcher that does not read", "err", err)
			s.mu.Lock()
			delete(s.watchers, t.c)
			s.mu.Unlock()
			t.c.kill()
		}
	}
}

// ack is the core's acknowledgement of ev (bridge.WhatsApp's Handled): it
// is counted and pushed, as the event's wire form, to the watchers that
// asked for acknowledgements, before the core goes on. A test that kills
// the binary re-injects exactly the events it never saw acknowledged, as
// WhatsApp redelivers what the device never acknowledged.
func (s *Sim) ack(ev bridge.Event) {
	s.recMu.Lock()
	defer s.recMu.Unlock()
	s.mu.Lock()
	s.handled++
	var ts []*conn
	for c, w := range s.watchers {
		if w.handled {
			ts = append(ts, c)
		}
	}
	s.mu.Unlock()
	if len(ts) == 0 {
		return
	}
	w, err := FromBridge(ev)
	if err != nil {
		s.log.Warn("acknowledged an event without a wire form", "err", err)
		return
	}
	for _, c := range ts {
		if err := c.write(Pushed{Handled: &w}); err != nil {
			s.log.Warn("dropping a watcher that does not read", "err", err)
			s.mu.Lock()
			delete(s.watchers, c)
			s.mu.Unlock()
			c.kill()
		}
	}
}

// newID returns a message id unique across restarts: the boot time and a
// counter, in the style of WhatsApp's uppercase hex ids.
func (s *Sim) newID() string {
	s.mu.Lock()
	s.ids++
	n := s.ids
	s.mu.Unlock()
	return fmt.Sprintf("3EB0%s%06X", s.boot, n)
}

// rule finds and uses up the first rule matching a call.
func (s *Sim) rule(action, chat, id, phone, text string) *Rule {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, r := range s.rules {
		if r.Action != action ||
			(r.Chat != "" && r.Chat != chat) ||
			(r.ID != "" && r.ID != id) ||
			(r.Phone != "" && normPhone(r.Phone) != normPhone(phone)) ||
			(r.TextContains != "" && !strings.Contains(text, r.TextContains)) {
			continue
		}
		rc := *r
		if r.Times > 0 {
			r.Times--
			if r.Times == 0 {
				s.rules = append(s.rules[:i:i], s.rules[i+1:]...)
			}
		}
		return &rc
	}
	return nil
}

// apply runs a matched rule's delay and returns its error.
func apply(ctx context.Context, r *Rule) error {
	if r == nil {
		return nil
	}
	if r.Delay > 0 {
		t := time.NewTimer(time.Duration(r.Delay))
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if r.Error == "" {
		return nil
	}
	if err, ok := errorCodes[r.Error]; ok {
		return err
	}
	return errors.New("whatsapp (simulated): " + r.Error)
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	for code, e := range errorCodes {
		if errors.Is(err, e) {
			return code
		}
	}
	return err.Error()
}

func normPhone(p string) string { return strings.TrimPrefix(strings.TrimSpace(p), "+") }

func mentions(m []bridge.UserID) []string { return strs(m) }

func (s *Sim) checkPaired() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.paired {
		return bridge.ErrNotPaired
	}
	return nil
}

// SendText implements bridge.WhatsApp. A message id chosen by the core
// (opts.ID) is used as it is, as WhatsApp does.
func (s *Sim) SendText(ctx context.Context, chat bridge.ChatID, text string, opts bridge.SendOptions) (bridge.MsgRef, time.Time, error) {
	a := Action{Type: "send_text", Chat: string(chat), Text: text, ReplyTo: wireRef(opts.ReplyTo),
		QuotedText: opts.QuotedText, Mentions: mentions(opts.Mentions), ID: opts.ID}
	return s.send(ctx, a)
}

// SendLocation implements bridge.WhatsApp.
func (s *Sim) SendLocation(ctx context.Context, chat bridge.ChatID, g bridge.Geo, opts bridge.SendOptions) (bridge.MsgRef, time.Time, error) {
	w := Geo(g)
	return s.send(ctx, Action{Type: "send_location", Chat: string(chat), Location: &w, ID: opts.ID})
}

// stageSend times a send, as the whatsapp adapter's "whatsapp send" does
// whatsmeow's: here the action's record and its push to the watchers.
var stageSend = bridge.NewStage("whatsapp send (simulated)")

func (s *Sim) send(ctx context.Context, a Action) (bridge.MsgRef, time.Time, error) {
	defer stageSend.Done(bridge.StageStart())
	err := s.checkPaired()
	if err == nil {
		err = apply(ctx, s.rule(a.Type, a.Chat, "", "", a.Text))
	}
	if err != nil {
		a.Error = errText(err)
		s.record(a)
		return bridge.MsgRef{}, time.Time{}, err
	}
	return s.done(a)
}

// done records a successful send: the id (the core's, else a new one) and
// the time returned.
func (s *Sim) done(a Action) (bridge.MsgRef, time.Time, error) {
	id, at := a.ID, s.now()
	if id == "" {
		id = s.newID()
	}
	s.mu.Lock()
	s.sent[id] = at
	s.mu.Unlock()
	a.ID, a.Time = id, at
	s.record(a)
	return bridge.MsgRef{Chat: bridge.ChatID(a.Chat), ID: id, FromMe: true}, at, nil
}

// Edit implements bridge.WhatsApp. Besides scripted errors, it enforces the
// edit window for messages this process sent.
func (s *Sim) Edit(ctx context.Context, ref bridge.MsgRef, text string) error {
	err := s.checkPaired()
	if err == nil {
		err = apply(ctx, s.rule("edit", string(ref.Chat), ref.ID, "", text))
	}
	if err == nil {
		s.mu.Lock()
		at, ok := s.sent[ref.ID]
		s.mu.Unlock()
		if ok && s.now().Sub(at) > bridge.EditWindow {
			err = bridge.ErrEditWindow
		}
	}
	s.record(Action{Type: "edit", Target: wireRef(&ref), Text: text, Error: errText(err)})
	return err
}

// Revoke implements bridge.WhatsApp.
func (s *Sim) Revoke(ctx context.Context, ref bridge.MsgRef) error {
	err := s.checkPaired()
	if err == nil {
		err = apply(ctx, s.rule("revoke", string(ref.Chat), ref.ID, "", ""))
	}
	s.record(Action{Type: "revoke", Target: wireRef(&ref), Error: errText(err)})
	return err
}

// React implements bridge.WhatsApp.
func (s *Sim) React(ctx context.Context, target bridge.MsgRef, emoji string) error {
	err := s.checkPaired()
	if err == nil {
		err = apply(ctx, s.rule("react", string(target.Chat), target.ID, "", emoji))
	}
	s.record(Action{Type: "react", Target: wireRef(&target), Emoji: emoji, Error: errText(err)})
	return err
}

// MarkRead implements bridge.WhatsApp.
func (s *Sim) MarkRead(ctx context.Context, chat bridge.ChatID, sender bridge.UserID, ids []string, at time.Time) error {
	err := s.checkPaired()
	if err == nil {
		err = apply(ctx, s.rule("mark_read", string(chat), first(ids), "", ""))
	}
	s.record(Action{Type: "mark_read", Chat: string(chat), Sender: string(sender), IDs: ids, Time: at, Error: errText(err)})
	return err
}

func first(ids []string) string {
	if len(ids) == 0 {
		return ""
	}
	return ids[0]
}

// SetTyping implements bridge.WhatsApp.
func (s *Sim) SetTyping(ctx context.Context, chat bridge.ChatID, state bridge.TypingState) error {
	err := s.checkPaired()
	if err == nil {
		err = apply(ctx, s.rule("set_typing", string(chat), "", "", ""))
	}
	s.record(Action{Type: "set_typing", Chat: string(chat), State: enumName(typingStates, state), Error: errText(err)})
	return err
}

// SetOnline implements bridge.WhatsApp.
func (s *Sim) SetOnline(ctx context.Context, online bool) error {
	err := s.checkPaired()
	if err == nil {
		err = apply(ctx, s.rule("set_online", "", "", "", ""))
	}
	if err == nil {
		s.mu.Lock()
		s.online = online
		s.mu.Unlock()
	}
	s.record(Action{Type: "set_online", Online: &online, Error: errText(err)})
	return err
}

// Pair implements bridge.WhatsApp: unless scripted otherwise it answers
// with one PairCode event (a QR, or a link code when phone is set); the
// test then injects the PairResult.
func (s *Sim) Pair(ctx context.Context, phone string) error {
	s.mu.Lock()
	paired := s.paired
	s.mu.Unlock()
	var err error
	if paired {
		err = bridge.ErrAlreadyPaired
	} else {
		err = apply(ctx, s.rule("pair", "", "", phone, ""))
	}
	s.record(Action{Type: "pair", Phone: phone, Error: errText(err)})
	if err != nil {
		return err
	}
	code := &bridge.PairCode{QR: "2@simwa," + s.newID(), Expires: s.now().Add(time.Minute)}
	if phone != "" {
		code = &bridge.PairCode{LinkCode: "SIMW-A123", Expires: s.now().Add(3 * time.Minute)}
	}
	// The core is inside Pair now and reads events only when it returns.
	go s.emit(ctx, code)
	return nil
}

// Logout implements bridge.WhatsApp: the device is unlinked and a Status
// logged_out follows.
func (s *Sim) Logout(ctx context.Context) error {
	err := s.checkPaired()
	if err == nil {
		err = apply(ctx, s.rule("logout", "", "", "", ""))
	}
	if err == nil {
		s.mu.Lock()
		s.paired = false
		s.mu.Unlock()
	}
	s.record(Action{Type: "logout", Error: errText(err)})
	if err == nil {
		go s.emit(ctx, &bridge.Status{State: bridge.LoggedOut, Reason: "logged out by waxmpp"})
	}
	return err
}

// Lookup implements bridge.WhatsApp: every number with 6 to 15 digits is on
// WhatsApp as <digits>@s.whatsapp.net, unless a rule answers otherwise.
func (s *Sim) Lookup(ctx context.Context, phone string) (bridge.UserID, bool, error) {
	err := s.checkPaired()
	var r *Rule
	if err == nil {
		r = s.rule("lookup", "", "", phone, "")
		err = apply(ctx, r)
	}
	var user string
	found := false
	if err == nil {
		digits := normPhone(phone)
		valid := len(digits) >= 6 && len(digits) <= 15 && strings.Trim(digits, "0123456789") == ""
		found = valid
		if found {
			user = digits + "@s.whatsapp.net"
		}
		if r != nil && r.Found != nil {
			found = *r.Found
		}
		if r != nil && r.User != "" {
			user = r.User
		}
		if !found {
			user = ""
		}
	}
	a := Action{Type: "lookup", Phone: phone, Error: errText(err)}
	if err == nil {
		a.User, a.Found = user, &found
	}
	s.record(a)
	return bridge.UserID(user), found, err
}

// RequestHistory implements bridge.WhatsApp; the test injects the history
// messages.
func (s *Sim) RequestHistory(ctx context.Context, before bridge.HistoryAnchor, n int) error {
	chat := before.Ref.Chat
	err := s.checkPaired()
	if err == nil {
		err = apply(ctx, s.rule("request_history", string(chat), "", "", ""))
	}
	s.record(Action{Type: "request_history", Chat: string(chat), N: n, Before: wireRef(&before.Ref), Error: errText(err)})
	return err
}

// generate injects synthetic events (op generate).
func (s *Sim) generate(ctx context.Context, g *Gen) (int, error) {
	user := func(i int) string { return fmt.Sprintf("49100%07d@s.whatsapp.net", i) }
	group := func(i int) string { return fmt.Sprintf("120363%012d@g.us", i) }
	prefix := g.Prefix
	if prefix == "" {
		prefix = "GEN" + s.boot
	}
	text := g.Text
	if text == "" {
		text = "generated"
	}
	n := 0
	send := func(ev bridge.Event) error {
		if !s.emit(ctx, ev) {
			return fmt.Errorf("simulator stopping; %d events accepted", n)
		}
		n++
		return nil
	}
	for i := range g.Contacts {
		if err := send(&bridge.ContactInfo{User: bridge.UserID(user(i)), FullName: fmt.Sprintf("Contact %d", i)}); err != nil {
			return n, err
		}
	}
	for i := range g.Chats {
		if err := send(&bridge.ChatInfo{Chat: bridge.ChatID(user(i)), Kind: bridge.Direct}); err != nil {
			return n, err
		}
	}
	for i := range g.Groups {
		if err := send(&bridge.ChatInfo{Chat: bridge.ChatID(group(i)), Kind: bridge.Group, Name: fmt.Sprintf("Group %d", i)}); err != nil {
			return n, err
		}
	}
	chats := g.Chats + g.Groups
	for i := range g.Messages {
		c := i % chats
		var chat, sender string
		if c < g.Chats {
			chat, sender = user(c), user(c)
		} else {
			chat, sender = group(c-g.Chats), user(i%max(g.Contacts, 1))
		}
		m := &bridge.Message{
			Ref:  bridge.MsgRef{Chat: bridge.ChatID(chat), Sender: bridge.UserID(sender), ID: fmt.Sprintf("%s%d", prefix, i)},
			Time: s.now(), Kind: bridge.Text, Text: fmt.Sprintf("#%d %s", i, text),
		}
		if err := send(m); err != nil {
			return n, err
		}
	}
	return n, nil
}

var _ bridge.WhatsApp = (*Sim)(nil)
