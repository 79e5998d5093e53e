package whatsapp

import (
	"compress/zlib"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/appstate"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/proto/waHistorySync"
	"go.mau.fi/whatsmeow/proto/waWeb"
	wastore "go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	"google.golang.org/protobuf/proto"

	"waxmpp/bridge"
)

// History syncs. The phone sends a HistorySyncNotification (a peer
// message) for each blob: after pairing the recent history in parts, and
// the answer to each on-demand request. The adapter accepts them only
// from the owner's phone: anyone else could send one, with an inline
// payload and a sync type of their choosing, to inject "history",
// rename contacts and rewrite identity mappings. whatsmeow itself
// honours them only when IsFromMe (message.go, handleProtocolMessage).
//
// A notification is written to a durable queue before the phone gets its
// receipt (whatsmeow's own receipt is turned off): the phone never sends
// a receipted notification again, so one that waxmpp had not processed
// when it stopped would be lost. One goroutine processes the queue, one
// blob at a time (peak memory is one blob's, on a Pi), and deletes each
// blob from WhatsApp's media servers afterwards.
//
// From each blob the adapter stores what whatsmeow's DownloadHistorySync
// would have stored: message secrets (votes, edits and encrypted
// reactions on older messages decrypt with them), privacy tokens (sends
// to existing contacts may be refused without them), the NCT salt, push
// names, LID mappings (phone numbers still on the legacy c.us server
// included), the LID migration time and the companion meta nonce. Unlike
// whatsmeow it never lets a history mapping replace a different known
// one. Initial syncs are not relayed (the owner would be flooded): the
// core gets names and identities only; on-demand syncs are relayed with
// History set.

// historyBatch is how many history events, secrets, tokens or mappings
// share one durable write.
const historyBatch = 256

// History processing retries a blob whose download failed this many
// times, after historyRetryWait, then gives it up.
const (
	historyAttempts  = 3
	historyRetryWait = 30 * time.Second
	historyLoginPoll = time.Second
)

// historyQueue is the durable queue of history-sync notifications not yet
// processed. push is called from whatsmeow's handler; the adapter's
// history goroutine takes them one at a time.
type historyQueue struct {
	q Queue
	// signal says "the queue grew". Capacity 1: a pending signal already
	// says "look again".
	signal chan struct{}
}

func newHistoryQueue(q Queue) *historyQueue {
	return &historyQueue{q: q, signal: make(chan struct{}, 1)}
}

func (h *historyQueue) push(n *waE2E.HistorySyncNotification) error {
	b, err := proto.Marshal(n)
	if err != nil {
		return fmt.Errorf("whatsapp: queue history notification: %w", err)
	}
	if _, err := h.q.Enqueue(b); err != nil {
		return fmt.Errorf("whatsapp: queue history notification: %w", err)
	}
	select {
	case h.signal <- struct{}{}:
	default:
	}
	return nil
}

// clear drops every queued notification (they belong to an account that
// was logged out).
func (h *historyQueue) clear() error {
	for {
		items, err := h.q.Peek(0, historyBatch)
		if err != nil || len(items) == 0 {
			return err
		}
		if err := h.q.AckThrough(items[len(items)-1].Seq); err != nil {
			return err
		}
	}
}

// historyNotification handles a history-sync notification in whatsmeow's
// handler: one from anyone but the owner's phone is dropped; the owner's
// is queued durably, and only then does the phone get its receipt.
func (a *Adapter) historyNotification(c client, e *events.Message, n *waE2E.HistorySyncNotification) bool {
	if e.Info.IsGroup || !a.fromPhone(e.Info.MessageSource) {
		a.log.Warn("ignoring a history sync that did not come from the owner's phone", "type", n.GetSyncType().String(), "id", e.Info.ID)
		a.log.Debug("ignored history sync", "sender", e.Info.Sender.String(), "chat", e.Info.Chat.String())
		return true
	}
	a.sawPhone(e.Info.Timestamp)
	if err := a.hist.push(n); err != nil {
		a.log.Error("cannot queue a history sync on disk; WhatsApp will deliver it again", "err", err)
		return false
	}
	a.syncStep(func(s *syncState) { s.queued++; s.last = time.Now() })
	id := e.Info.ID
	a.spawn(func(ctx context.Context) {
		if err := c.SendProtocolMessageReceipt(ctx, id, types.ReceiptTypeHistorySync); err != nil {
			a.log.Info("history sync receipt", "err", err)
		}
	})
	return true
}

// historyLoop processes queued notifications, one at a time, until ctx
// ends; what is left is processed at the next start.
func (a *Adapter) historyLoop(ctx context.Context) {
	attempts := 0
	for {
		items, err := a.hist.q.Peek(0, 1)
		if err != nil {
			a.log.Error("cannot read the history queue", "err", err)
			if !sleep(ctx, time.Second) {
				return
			}
			continue
		}
		if len(items) == 0 {
			select {
			case <-a.hist.signal:
			case <-ctx.Done():
				return
			}
			continue
		}
		it := items[0]
		var n waE2E.HistorySyncNotification
		if err := proto.Unmarshal(it.Data, &n); err != nil {
			a.log.Error("skipping a damaged history notification", "err", err)
		} else if n.GetInitialHistBootstrapInlinePayload() == nil && !a.client().IsLoggedIn() {
			// A blob to download waits for the login (after a restart the
			// queue may hold some before the connection is up); waiting
			// is not an attempt.
			if !sleep(ctx, historyLoginPoll) {
				return
			}
			continue
		} else {
			a.syncStep(func(s *syncState) { s.busy = true })
			retry, err := a.processHistory(ctx, a.client(), &n)
			a.syncStep(func(s *syncState) { s.busy = false; s.last = time.Now() })
			if ctx.Err() != nil {
				return // stopped half-way: processed again at the next start
			}
			if err != nil && retry {
				attempts++
				if attempts < historyAttempts {
					a.log.Info("history sync failed; trying again", "attempt", attempts, "err", err)
					if !sleep(ctx, historyRetryWait) {
						return
					}
					continue
				}
				a.log.Warn("history sync given up", "err", err)
			} else if err != nil {
				a.log.Warn("history sync", "err", err)
			}
		}
		attempts = 0
		if err := a.hist.q.AckThrough(it.Seq); err != nil {
			a.log.Error("cannot remove a processed history notification", "err", err)
			if !sleep(ctx, time.Second) {
				return
			}
			continue
		}
		a.syncStep(func(s *syncState) { s.done++ })
	}
}

// sleep waits d or until ctx ends; false means ctx ended.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// processHistory downloads one blob (or takes the inline payload), reads
// it and deletes it from WhatsApp's servers. retry says whether a failure
// may be cured by trying again (the download, or the inbox on disk).
func (a *Adapter) processHistory(ctx context.Context, c client, n *waE2E.HistorySyncNotification) (retry bool, err error) {
	f, err := a.tempFile("history")
	if err != nil {
		return true, fmt.Errorf("whatsapp: history: %w", err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	inline := n.GetInitialHistBootstrapInlinePayload()
	if inline != nil {
		_, err = f.Write(inline)
	} else {
		err = c.DownloadMediaWithPathToFile(ctx, n.GetDirectPath(), n.GetFileEncSHA256(), n.GetFileSHA256(), n.GetMediaKey(),
			whatsmeow.MediaHistory, "", false, f)
	}
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		return true, fmt.Errorf("whatsapp: history download: %w", err)
	}
	z, err := zlib.NewReader(f)
	if err != nil {
		return false, fmt.Errorf("whatsapp: history: %w", err)
	}
	defer z.Close()
	relay := n.GetSyncType() == waE2E.HistorySyncType_ON_DEMAND
	if _, err := a.readHistory(ctx, c, z, relay); err != nil {
		var qe *queueError
		return errors.As(err, &qe), err
	}
	if inline == nil {
		if err := c.DeleteMedia(ctx, whatsmeow.MediaHistory, n.GetDirectPath(), n.GetFileEncSHA256(), n.GetEncHandle()); err != nil {
			a.log.Info("cannot delete a history blob from WhatsApp's servers", "err", err)
		}
	}
	return false, nil
}

// queueError is a history event batch that did not reach the inbox.
type queueError struct{ err error }

func (e *queueError) Error() string { return e.err.Error() }
func (e *queueError) Unwrap() error { return e.err }

// pendingSecret is a message secret met in a history sync, stored once its
// conversation's id is known (it may follow the messages).
type pendingSecret struct {
	id, participant, msgParticipant string
	fromMe                          bool
	secret                          []byte
}

// historyReader is the state of one blob being read.
type historyReader struct {
	a     *Adapter
	ctx   context.Context
	c     client
	dev   *wastore.Device
	relay bool

	events   []bridge.Event
	secrets  []pendingSecret // of the current conversation
	tokens   []wastore.PrivacyToken
	names    []*waHistorySync.Pushname
	mappings []wastore.LIDMapping
	mapped   map[string]string // pn → lid and lid → pn of mappings not yet written
	err      error             // the first inbox failure
}

// readHistory converts a decompressed history blob, stores what it holds
// for whatsmeow, and queues its events; relay says whether its messages
// reach the core.
func (a *Adapter) readHistory(ctx context.Context, c client, r io.Reader, relay bool) (*waHistorySync.HistorySync, error) {
	h := &historyReader{a: a, ctx: ctx, c: c, dev: a.device(), relay: relay, mapped: map[string]string{}}
	hs, err := readHistory(r, historySink{
		message:      h.message,
		conversation: h.conversation,
		pushName:     h.pushName,
		mapping:      h.mapping,
	})
	h.flushMappings()
	h.flushTokens()
	h.flushNames()
	h.flushEvents()
	if err == nil {
		h.storeMeta(hs)
	}
	if err == nil && h.err != nil {
		err = h.err
	}
	return hs, err
}

func (h *historyReader) add(evs ...bridge.Event) {
	h.events = append(h.events, evs...)
	if len(h.events) >= historyBatch {
		h.flushEvents()
	}
}

func (h *historyReader) flushEvents() {
	if len(h.events) == 0 {
		return
	}
	if err := h.a.emit(h.events...); err != nil && h.err == nil {
		h.err = &queueError{err}
	}
	h.events = nil
}

func (h *historyReader) message(chat string, wm *waWeb.WebMessageInfo) {
	if s := wm.GetMessageSecret(); len(s) > 0 && wm.GetKey().GetID() != "" {
		h.secrets = append(h.secrets, pendingSecret{id: wm.GetKey().GetID(), fromMe: wm.GetKey().GetFromMe(),
			participant: wm.GetKey().GetParticipant(), msgParticipant: wm.GetParticipant(), secret: s})
		if len(h.secrets) >= historyBatch && chat != "" {
			h.flushSecrets(chat)
		}
	}
	if !h.relay {
		return
	}
	var cj types.JID
	if chat != "" {
		cj, _ = types.ParseJID(chat)
	}
	e, err := h.c.ParseWebMessage(cj, wm)
	if err != nil {
		h.a.log.Debug("history message", "err", err)
		return
	}
	h.add(h.a.prepare(h.ctx, h.a.conv.message(h.ctx, e, true))...)
}

func (h *historyReader) conversation(conv *waHistorySync.Conversation) {
	h.flushSecrets(conv.GetID())
	j, err := types.ParseJID(conv.GetID())
	if err != nil || j.IsEmpty() {
		return
	}
	h.token(j, conv)
	// Group subjects only: a direct chat's name here may be a push name or
	// the address book's; the app-state contacts
	// (EmitAppStateEventsOnFullSync) say which.
	if name := conv.GetName(); name != "" && j.Server == types.GroupServer {
		h.add(&bridge.ChatInfo{Chat: chatID(j), Kind: bridge.Group, Name: name})
	}
}

// flushSecrets stores the secrets of conversation chat's messages under
// their senders, as whatsmeow's storeHistoricalMessageSecrets does: the
// owner for their own messages, the peer in a direct chat, else the
// key's or the message's participant.
func (h *historyReader) flushSecrets(chat string) {
	pend := h.secrets
	h.secrets = nil
	own := h.a.self()
	cj, _ := types.ParseJID(chat)
	if len(pend) == 0 || own.IsEmpty() || cj.IsEmpty() || h.dev.MsgSecrets == nil {
		return
	}
	ins := make([]wastore.MessageSecretInsert, 0, len(pend))
	for _, p := range pend {
		var sender types.JID
		switch {
		case p.fromMe:
			sender = own
		case cj.Server == types.DefaultUserServer || cj.Server == types.HiddenUserServer:
			sender = cj
		case p.participant != "":
			sender, _ = types.ParseJID(p.participant)
		case p.msgParticipant != "":
			sender, _ = types.ParseJID(p.msgParticipant)
		}
		if sender.IsEmpty() {
			continue
		}
		ins = append(ins, wastore.MessageSecretInsert{Chat: cj, Sender: sender, ID: p.id, Secret: p.secret})
	}
	if err := h.dev.MsgSecrets.PutMessageSecrets(h.ctx, ins); err != nil {
		h.a.log.Warn("store message secrets from history", "err", err)
	}
}

// token keeps a direct chat's privacy token. They are stored at the end
// of the blob, after its LID mappings, under the peer's LID where known
// (as whatsmeow, which stores the mappings first; lookups try both).
func (h *historyReader) token(j types.JID, conv *waHistorySync.Conversation) {
	if conv.GetTcToken() == nil || h.a.self().IsEmpty() ||
		(j.Server != types.HiddenUserServer && j.Server != types.DefaultUserServer) {
		return
	}
	h.tokens = append(h.tokens, wastore.PrivacyToken{User: j, Token: conv.GetTcToken(),
		Timestamp:       time.Unix(int64(conv.GetTcTokenTimestamp()), 0),
		SenderTimestamp: time.Unix(int64(conv.GetTcTokenSenderTimestamp()), 0)})
}

func (h *historyReader) flushTokens() {
	tokens := h.tokens
	h.tokens = nil
	if len(tokens) == 0 || h.dev.PrivacyTokens == nil {
		return
	}
	for i, t := range tokens {
		if t.User.Server == types.DefaultUserServer && h.dev.LIDs != nil {
			if lid, err := h.dev.LIDs.GetLIDForPN(h.ctx, t.User); err == nil && !lid.IsEmpty() {
				tokens[i].User = lid
			}
		}
	}
	if err := h.dev.PrivacyTokens.PutPrivacyTokens(h.ctx, tokens...); err != nil {
		h.a.log.Warn("store privacy tokens from history", "err", err)
	}
}

func (h *historyReader) pushName(p *waHistorySync.Pushname) {
	j, err := types.ParseJID(p.GetID())
	name := p.GetPushname()
	if err != nil || j.IsEmpty() || name == "" || name == "-" {
		return
	}
	h.names = append(h.names, p)
	if len(h.names) >= historyBatch {
		h.flushNames()
	}
	h.add(&bridge.ContactInfo{User: userID(j), PushName: name})
}

// flushNames stores push names in whatsmeow's contact store, a batch in
// one transaction (the store's DoDecryptionTxn commits every call made
// with its context together: one fsync, not one per name).
func (h *historyReader) flushNames() {
	names := h.names
	h.names = nil
	if len(names) == 0 || h.dev.Contacts == nil || h.dev.EventBuffer == nil {
		return
	}
	err := h.dev.EventBuffer.DoDecryptionTxn(h.ctx, func(ctx context.Context) error {
		for _, p := range names {
			j, _ := types.ParseJID(p.GetID())
			if _, _, err := h.dev.Contacts.PutPushName(ctx, j, p.GetPushname()); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		h.a.log.Warn("store push names from history", "err", err)
	}
}

// mapping takes a phone-number ⇄ LID pair from the phone's history. It
// never replaces a different mapping already known (from WhatsApp's
// servers, or an earlier sync): the owner's next message to that number
// would be encrypted for whoever the new LID is. A conflict is logged.
func (h *historyReader) mapping(m *waHistorySync.PhoneNumberToLIDMapping) {
	pn, err1 := types.ParseJID(m.GetPnJID())
	lid, err2 := types.ParseJID(m.GetLidJID())
	if pn.Server == types.LegacyUserServer {
		pn.Server = types.DefaultUserServer
	}
	pn, lid = pn.ToNonAD(), lid.ToNonAD()
	if err1 != nil || err2 != nil || pn.Server != types.DefaultUserServer || lid.Server != types.HiddenUserServer ||
		pn.User == "" || lid.User == "" || h.dev.LIDs == nil {
		return
	}
	knownLID, err := h.dev.LIDs.GetLIDForPN(h.ctx, pn)
	if err != nil {
		h.a.log.Warn("check a history mapping", "err", err)
		return
	}
	knownPN, err := h.dev.LIDs.GetPNForLID(h.ctx, lid)
	if err != nil {
		h.a.log.Warn("check a history mapping", "err", err)
		return
	}
	if l, ok := h.mapped[pn.String()]; ok && knownLID.IsEmpty() {
		knownLID, _ = types.ParseJID(l)
	}
	if p, ok := h.mapped[lid.String()]; ok && knownPN.IsEmpty() {
		knownPN, _ = types.ParseJID(p)
	}
	if (!knownLID.IsEmpty() && knownLID != lid) || (!knownPN.IsEmpty() && knownPN != pn) {
		h.a.log.Warn("a history sync maps a known phone number or LID to a different identity; the known mapping is kept")
		h.a.log.Debug("conflicting history mapping", "phone", pn.String(), "lid", lid.String(),
			"known_lid", knownLID.String(), "known_phone", knownPN.String())
		return
	}
	if knownLID.IsEmpty() {
		h.mappings = append(h.mappings, wastore.LIDMapping{LID: lid, PN: pn})
		h.mapped[pn.String()], h.mapped[lid.String()] = lid.String(), pn.String()
	}
	al := &bridge.Alias{LID: userID(lid), Phone: userID(pn)}
	h.a.mu.Lock()
	seen := h.a.aliases[*al]
	h.a.aliases[*al] = true
	h.a.mu.Unlock()
	if !seen {
		h.add(al)
	}
	if len(h.mappings) >= historyBatch {
		h.flushMappings()
	}
}

func (h *historyReader) flushMappings() {
	if len(h.mappings) == 0 {
		return
	}
	if err := h.dev.LIDs.PutManyLIDMappings(h.ctx, h.mappings); err != nil {
		h.a.log.Warn("store LID mappings from history", "err", err)
	}
	h.mappings = nil
	clear(h.mapped)
}

// storeMeta keeps the sync's own fields as whatsmeow does: the NCT salt,
// the chat database's LID migration time, the companion meta nonce.
func (h *historyReader) storeMeta(hs *waHistorySync.HistorySync) {
	if salt := hs.GetNctSalt(); len(salt) > 0 && h.dev.NCTSalt != nil {
		if err := h.dev.NCTSalt.PutNCTSalt(h.ctx, salt); err != nil {
			h.a.log.Warn("store NCT salt from history", "err", err)
		}
	}
	save := false
	if ts := hs.GetGlobalSettings().GetChatDbLidMigrationTimestamp(); ts > 0 && h.dev.LIDMigrationTimestamp == 0 {
		h.dev.LIDMigrationTimestamp, save = ts, true
	}
	if nonce := hs.GetCompanionMetaNonce(); nonce != "" && nonce != h.dev.CompanionMetaNonce {
		h.dev.CompanionMetaNonce, save = nonce, true
	}
	if save && !h.a.self().IsEmpty() {
		if err := h.dev.Save(h.ctx); err != nil {
			h.a.log.Warn("save device after history", "err", err)
		}
	}
}

// syncState is what the first sync after pairing has done, for
// InitialSync.
type syncState struct {
	offline     bool // the messages queued while offline were delivered
	appState    map[appstate.WAPatchName]bool
	queued      int       // history notifications queued since the start
	done        int       // … and processed
	busy        bool      // a blob is being processed
	last        time.Time // the last history activity
	initialized bool
}

// syncStep changes the sync state and wakes InitialSync.
func (a *Adapter) syncStep(f func(*syncState)) {
	a.mu.Lock()
	if !a.sync.initialized {
		a.sync = syncState{appState: map[appstate.WAPatchName]bool{}, initialized: true}
	}
	f(&a.sync)
	close(a.syncChanged)
	a.syncChanged = make(chan struct{})
	a.mu.Unlock()
}

// InitialSync waits, after pairing, until what WhatsApp sends a new device
// has arrived: the messages queued while it was offline, the critical
// app-state patches (the owner's push name, the address book), and the
// history syncs, until none has come for historyIdle. progress gets a
// line for each step done. It returns after syncLimit at most (what is
// still missing arrives later; history notifications are on disk before
// the phone is told) or when ctx ends.
func (a *Adapter) InitialSync(ctx context.Context, progress func(string)) error {
	start := time.Now()
	a.syncStep(func(s *syncState) {
		if s.last.IsZero() {
			s.last = start
		}
	})
	told := map[string]bool{}
	tell := func(key, line string) {
		if !told[key] {
			told[key] = true
			progress(line)
		}
	}
	limit := time.NewTimer(a.syncLimit)
	defer limit.Stop()
	for {
		a.mu.Lock()
		s := a.sync
		crit := s.appState[appstate.WAPatchCriticalBlock] && s.appState[appstate.WAPatchCriticalUnblockLow]
		changed := a.syncChanged
		a.mu.Unlock()
		pending, _ := a.hist.q.Len()
		if s.offline {
			tell("offline", "Messages from while waxmpp was not linked: received.")
		}
		if crit {
			tell("appstate", "Your name and address book: received.")
		}
		if s.done > 0 {
			tell(fmt.Sprintf("history %d", s.done), fmt.Sprintf("History from your phone: %d part(s) processed.", s.done))
		}
		idle := time.Since(s.last)
		if s.offline && crit && !s.busy && pending == 0 && idle >= a.historyIdle {
			return nil
		}
		wait := a.historyIdle - idle
		if wait <= 0 {
			wait = a.historyIdle
		}
		t := time.NewTimer(wait)
		select {
		case <-changed:
		case <-t.C:
		case <-limit.C:
			t.Stop()
			progress("Still syncing; waxmpp finishes this when it runs.")
			return nil
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
		t.Stop()
	}
}
