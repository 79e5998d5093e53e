package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"
)

// Media transfers, both ways. No download or upload runs on the core's
// goroutine: each is a transfer goroutine (at most maxTransfers at once)
// whose result comes back to the loop, which relays it.
//
// Order within a chat is kept by lanes: one per chat and direction. While
// a chat's lane is not empty, what arrives for that chat (its messages,
// edits, deletions, reactions, votes; the owner's messages to it) waits
// in the lane behind the transfer, and is handled when the transfer before
// it is done. Other chats go on meanwhile. Lanes are saved in the state
// file (one record per lane, rewritten when it changes): what waits in one
// is durably handled, and WhatsApp's events and the owner's messages are
// acknowledged as soon as they are in it. After a restart each lane's
// transfer starts again from the beginning (its temporary files were swept);
// what it relays carries the ids it would have carried, so a transfer done
// just before a crash is not relayed twice (and one relayed twice is dropped
// by the owner's clients by its id, and by WhatsApp by its message id).
// Backpressure: a lane grows while its transfer runs; only one chat's
// traffic fills it, and a transfer ends within transferTimeout.

const (
	// maxTransfers bounds the transfers running at once: each holds a
	// temporary file and a connection, and a Pi's uplink is shared.
	maxTransfers = 3
	// maxTries is how often a transfer that failed for a passing reason
	// (the XMPP server or WhatsApp unreachable) is tried in all.
	maxTransferTries = 4
	// waitTimeout is how long the core waits for the phone to answer a
	// media retry request before saying it did not.
	waitTimeout = 7 * 24 * time.Hour
)

// transferTimeout allows a slow home link (50 kB/s) plus five minutes.
func transferTimeout(size int64) time.Duration {
	return 5*time.Minute + time.Duration(size/(50<<10))*time.Second
}

// laneKey names a lane: a chat (as the store keys it) and a direction.
type laneKey struct {
	Out  bool   `json:"out,omitempty"` // owner → WhatsApp
	Chat ChatID `json:"chat"`
}

func (k laneKey) setting() string {
	if k.Out {
		return settingLanePfx + "out/" + string(k.Chat)
	}
	return settingLanePfx + "in/" + string(k.Chat)
}

const (
	settingLanes    = "core.lanes"      // the non-empty lanes' keys
	settingLanePfx  = "core.lane/"      // + in|out/<chat>: a lane's items
	settingMediaAsk = "core.media_wait" // media the phone was asked for
)

// laneItem is one thing waiting in a lane: a WhatsApp event of the chat
// (one of the pointers) or a message of the owner's (Draft). Transfer
// marks the item whose file is being moved; only a lane's first item is
// one.
type laneItem struct {
	Msg    *Message       `json:"msg,omitempty"`
	Undec  *Undecryptable `json:"undec,omitempty"`
	Edit   *Edit          `json:"edit,omitempty"`
	Revoke *Revoke        `json:"revoke,omitempty"`
	React  *Reaction      `json:"react,omitempty"`
	Vote   *PollVote      `json:"vote,omitempty"`
	Answer *MediaRetry    `json:"answer,omitempty"`
	Draft  *draft         `json:"draft,omitempty"`

	Transfer bool `json:"transfer,omitempty"`
	Retried  bool `json:"retried,omitempty"` // the phone's new upload of media WhatsApp had lost
	Tries    int  `json:"tries,omitempty"`
}

func (it laneItem) event() Event {
	switch {
	case it.Msg != nil:
		return it.Msg
	case it.Undec != nil:
		return it.Undec
	case it.Edit != nil:
		return it.Edit
	case it.Revoke != nil:
		return it.Revoke
	case it.React != nil:
		return it.React
	case it.Vote != nil:
		return it.Vote
	case it.Answer != nil:
		return it.Answer
	}
	return nil
}

// laneFor is the lane item for a WhatsApp event that keeps its place in
// its chat, and that chat; ok false for events that do not wait.
func (c *Core) laneFor(ev Event) (laneItem, ChatID, bool) {
	switch e := ev.(type) {
	case *Message:
		return laneItem{Msg: e}, e.Ref.Chat, true
	case *Undecryptable:
		return laneItem{Undec: e}, e.Ref.Chat, true
	case *Edit:
		return laneItem{Edit: e}, e.Ref.Chat, true
	case *Revoke:
		return laneItem{Revoke: e}, e.Ref.Chat, true
	case *Reaction:
		return laneItem{React: e}, e.Target.Chat, true
	case *PollVote:
		return laneItem{Vote: e}, e.Poll.Chat, true
	case *MediaRetry:
		return laneItem{Answer: e}, e.Ref.Chat, true
	}
	return laneItem{}, "", false
}

// waitingMedia is a message whose media WhatsApp no longer had: the phone
// was asked for it, and the owner was told so with the message's line
// (its XMPP id relayID(Key)), which the answer corrects.
type waitingMedia struct {
	Msg   *Message   `json:"msg"`
	Key   MessageKey `json:"key"`
	Since time.Time  `json:"since"`
}

// transfers is the core's transfer state; the loop owns it.
type transfers struct {
	lanes    map[laneKey][]laneItem
	running  map[laneKey]int // the transfer under way at the head: its sequence number
	seq      int
	draining laneKey // the lane whose head is being handled (it does not wait behind itself)
	stalled  map[laneKey]bool
	retryAt  map[laneKey]time.Time // a failed transfer's next try
	waiting  map[string]waitingMedia
	done     chan transferResult
	slots    chan struct{}   // capacity maxTransfers
	ctx      context.Context // Run's: transfers end with it
}

func newTransfers() transfers {
	return transfers{lanes: map[laneKey][]laneItem{}, running: map[laneKey]int{}, stalled: map[laneKey]bool{},
		retryAt: map[laneKey]time.Time{}, waiting: map[string]waitingMedia{},
		done: make(chan transferResult), slots: make(chan struct{}, maxTransfers)}
}

// loadTransfers reads the saved lanes and waiting media.
func (c *Core) loadTransfers() error {
	b, ok, err := c.st.Blob(settingLanes)
	if err != nil {
		return err
	}
	var keys []laneKey
	if ok && len(b) > 0 {
		if err := json.Unmarshal(b, &keys); err != nil {
			return fmt.Errorf("lanes unreadable: %w", err)
		}
	}
	for _, k := range keys {
		b, ok, err := c.st.Blob(k.setting())
		if err != nil {
			return err
		}
		if !ok || len(b) == 0 {
			continue
		}
		var items []laneItem
		if err := json.Unmarshal(b, &items); err != nil {
			// What waited in it is lost; say so loudly.
			c.log.Error("a lane of waiting messages is unreadable; dropped", "err", err)
			continue
		}
		if len(items) > 0 {
			c.xf.lanes[k] = items
		}
	}
	if b, ok, err := c.st.Blob(settingMediaAsk); err != nil {
		return err
	} else if ok && len(b) > 0 {
		if err := json.Unmarshal(b, &c.xf.waiting); err != nil {
			c.log.Error("media asked of the phone: record unreadable", "err", err)
			c.xf.waiting = map[string]waitingMedia{}
		}
	}
	return nil
}

// saveLane writes a lane (and the index, when a lane appears or goes).
func (c *Core) saveLane(k laneKey) error {
	items := c.xf.lanes[k]
	var b []byte
	if len(items) > 0 {
		var err error
		if b, err = json.Marshal(items); err != nil {
			return err
		}
	}
	if err := c.st.PutBlob(k.setting(), b); err != nil {
		return fmt.Errorf("save lane: %w", err)
	}
	return c.saveLaneIndex()
}

func (c *Core) saveLaneIndex() error {
	keys := make([]laneKey, 0, len(c.xf.lanes))
	for k, l := range c.xf.lanes {
		if len(l) > 0 {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, func(a, b laneKey) int { return strings.Compare(a.setting(), b.setting()) })
	b, err := json.Marshal(keys)
	if err == nil {
		err = c.st.PutBlob(settingLanes, b)
	}
	if err != nil {
		return fmt.Errorf("save lanes: %w", err)
	}
	return nil
}

func (c *Core) saveWaiting() error {
	b, err := json.Marshal(c.xf.waiting)
	if err == nil {
		err = c.st.PutBlob(settingMediaAsk, b)
	}
	if err != nil {
		return fmt.Errorf("save media asked of the phone: %w", err)
	}
	return nil
}

// behind puts it at the end of lane k when that lane is busy (and k is not
// the lane being drained), and reports whether it did.
func (c *Core) behind(k laneKey, it laneItem) (bool, error) {
	if c.xf.draining == k || len(c.xf.lanes[k]) == 0 {
		return false, nil
	}
	c.xf.lanes[k] = append(c.xf.lanes[k], it)
	if err := c.saveLane(k); err != nil {
		c.xf.lanes[k] = c.xf.lanes[k][:len(c.xf.lanes[k])-1]
		return false, err
	}
	return true, nil
}

// waitInLane is event's lane check: an event of a chat whose lane is busy
// waits there.
func (c *Core) waitInLane(ev Event) (bool, error) {
	it, chat, ok := c.laneFor(ev)
	if !ok || c.cfg.Files == nil {
		return false, nil
	}
	return c.behind(laneKey{Chat: c.canonicalChat(chat)}, it)
}

// startTransfer makes it a transfer in lane k: the head being drained
// becomes one (pump starts it), or it waits at the end of a busy lane, or
// a new lane starts with it.
func (c *Core) startTransfer(k laneKey, it laneItem) error {
	it.Transfer = true
	if c.xf.draining == k {
		head := c.xf.lanes[k][0]
		it.Tries, it.Retried = head.Tries, it.Retried || head.Retried
		c.xf.lanes[k][0] = it
		return c.saveLane(k)
	}
	c.xf.lanes[k] = append(c.xf.lanes[k], it)
	if err := c.saveLane(k); err != nil {
		c.xf.lanes[k] = c.xf.lanes[k][:len(c.xf.lanes[k])-1]
		return err
	}
	if len(c.xf.lanes[k]) == 1 {
		c.launch(k)
	}
	return nil
}

// pump handles what waits at the head of lane k until a transfer starts
// or the lane is empty. An item that cannot be handled durably stays, and
// is tried again on the next tick.
func (c *Core) pump(k laneKey) {
	ctx := c.xf.ctx
	if ctx == nil {
		ctx = context.Background()
	}
	for {
		l := c.xf.lanes[k]
		if len(l) == 0 {
			delete(c.xf.lanes, k)
			delete(c.xf.stalled, k)
			if err := c.saveLaneIndex(); err != nil {
				c.log.Error("lanes", "err", err)
			}
			return
		}
		if _, ok := c.xf.running[k]; ok {
			return
		}
		if at, ok := c.xf.retryAt[k]; ok {
			if c.now().Before(at) {
				return
			}
			delete(c.xf.retryAt, k)
		}
		if l[0].Transfer {
			c.launch(k)
			return
		}
		c.xf.draining = k
		var err error
		if l[0].Draft != nil {
			err = c.deliver(ctx, k.Chat, *l[0].Draft)
		} else if ev := l[0].event(); ev != nil {
			err = c.event(ctx, ev)
		}
		c.xf.draining = laneKey{}
		if err != nil {
			c.log.Error("waiting message not handled; trying again", "err", err)
			c.xf.stalled[k] = true
			return
		}
		delete(c.xf.stalled, k)
		if c.xf.lanes[k][0].Transfer {
			continue // it became this lane's transfer
		}
		c.popLane(k)
	}
}

// popLane drops lane k's head.
func (c *Core) popLane(k laneKey) {
	c.xf.lanes[k] = c.xf.lanes[k][1:]
	if err := c.saveLane(k); err != nil {
		// Saved later with the next change; a crash before then
		// handles the head again, which is dropped as a duplicate.
		c.log.Error("lanes", "err", err)
	}
}

// pumpAll is the loop's tick: lanes that stalled on the store, transfers
// whose next try is due, and media the phone never sent.
func (c *Core) pumpAll() {
	now := c.now()
	for k := range c.xf.stalled {
		c.pump(k)
	}
	for k, at := range c.xf.retryAt {
		if !now.Before(at) {
			c.pump(k)
		}
	}
	for id, w := range c.xf.waiting {
		if now.Sub(w.Since) > waitTimeout {
			c.waitedInVain(id, w)
		}
	}
}

// resumeTransfers starts every saved lane again (Run's start).
func (c *Core) resumeTransfers(ctx context.Context) {
	c.xf.ctx = ctx
	for k := range c.xf.lanes {
		c.pump(k)
	}
}

// transferJob is what a transfer goroutine gets: a copy, so that it
// touches nothing the loop owns.
type transferJob struct {
	key  laneKey
	seq  int
	item laneItem
	aac  bool   // an Opus voice note goes to the owner as AAC
	name string // file name stem for the owner (WhatsApp → owner)
}

// transferResult is a transfer's outcome, for the loop.
type transferResult struct {
	key laneKey
	seq int
	// WhatsApp → owner: the upload's URL; owner → WhatsApp: the message.
	url  string
	ref  MsgRef
	what string // the owner's file as the owner reads it ("photo")
	err  error
	// expired: WhatsApp no longer has the media; asked: the phone was
	// asked for it (else askErr says why not).
	expired bool
	asked   bool
	askErr  error
}

// launch starts lane k's head transfer on its own goroutine, unless the
// message was relayed (or sent) already: then the head goes.
func (c *Core) launch(k laneKey) {
	ctx := c.xf.ctx
	if ctx == nil {
		ctx = context.Background() // not running: tests that call handlers directly
	}
	it := c.xf.lanes[k][0]
	if done, err := c.transferDone(k, it); err != nil {
		c.log.Error("transfer check", "err", err)
		c.xf.stalled[k] = true
		return
	} else if done {
		c.popLane(k)
		c.pump(k)
		return
	}
	c.xf.seq++
	job := transferJob{key: k, seq: c.xf.seq, item: it, aac: c.wantAAC()}
	if m := it.Msg; m != nil {
		job.name = ownerFileName(m)
	}
	c.xf.running[k] = job.seq
	files, wa, x := c.cfg.Files, c.wa, c.x
	c.bg.Go(func() {
		var r transferResult
		select {
		case c.xf.slots <- struct{}{}:
			if k.Out {
				r = sendFile(ctx, files, wa, job)
			} else {
				r = fetchMedia(ctx, files, wa, x, job)
			}
			<-c.xf.slots
		case <-ctx.Done():
			return
		}
		r.key, r.seq = job.key, job.seq
		select {
		case c.xf.done <- r:
		case <-ctx.Done():
		}
	})
}

// transferDone reports whether lane k's head was relayed or sent before
// (a crash came between relaying it and saving the lane).
func (c *Core) transferDone(k laneKey, it laneItem) (bool, error) {
	if d := it.Draft; d != nil {
		return c.sent(d.ID)
	}
	if m := it.Msg; m != nil && !it.Retried && !m.Retry {
		kk := c.key(m.Ref)
		kk.Chat = string(k.Chat)
		_, err := c.st.MessageByXMPP(relayID(kk) + fileSuffix)
		switch {
		case err == nil:
			return true, nil
		case errors.Is(err, ErrNotFound):
			return false, nil
		}
		return false, err
	}
	return false, nil
}

// fetchMedia moves a WhatsApp attachment to the owner's upload service:
// download to a temporary file, prepare it, and only then ask for the
// upload slot (Prosody refuses a PUT more than 300 s after its slot).
func fetchMedia(ctx context.Context, files Files, wa WhatsApp, x XMPP, job transferJob) transferResult {
	m := job.item.Msg
	ctx, cancel := context.WithTimeout(ctx, transferTimeout(m.Media.Size))
	defer cancel()
	path, err := files.Temp()
	if err != nil {
		return transferResult{err: fmt.Errorf("temporary file: %w", err)}
	}
	defer os.Remove(path)
	n, err := wa.Download(ctx, m.Media, path)
	if errors.Is(err, ErrMediaExpired) {
		r := transferResult{expired: true}
		if !job.item.Retried {
			r.askErr = wa.RequestMediaRetry(ctx, m.Ref, m.Media)
			r.asked = r.askErr == nil
		}
		return r
	}
	if err != nil {
		return transferResult{err: &downloadError{err}}
	}
	f, err := files.ForOwner(ctx, LocalFile{Path: path, Name: job.name, MimeType: m.Media.MimeType, Size: n}, m.Kind, job.aac)
	if err != nil {
		return transferResult{err: err}
	}
	if f.Path != path {
		defer os.Remove(f.Path)
	}
	r, err := os.Open(f.Path)
	if err != nil {
		return transferResult{err: err}
	}
	defer r.Close()
	waitOnline(ctx, x)
	url, err := x.Upload(ctx, f.Name, f.MimeType, f.Size, r)
	if err != nil {
		return transferResult{err: &uploadError{err}}
	}
	return transferResult{url: url}
}

// waitOnline waits (up to two minutes) until the XMPP side is connected:
// after a start, a transfer resumed from its lane is quicker than the
// login, and an upload then fails for nothing.
func waitOnline(ctx context.Context, x XMPP) {
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		if st, err := x.Stats(); err == nil && st.Connected {
			return
		}
		t := time.NewTimer(250 * time.Millisecond)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return
		}
	}
}

// sendFile moves a file the owner sent to WhatsApp: fetch it, prepare it,
// upload and send it.
func sendFile(ctx context.Context, files Files, wa WhatsApp, job transferJob) transferResult {
	d := job.item.Draft
	ctx, cancel := context.WithTimeout(ctx, transferTimeout(100<<20))
	defer cancel()
	f, err := files.Fetch(ctx, d.File)
	if err != nil {
		return transferResult{err: &fetchError{err}}
	}
	defer os.Remove(f.Path)
	om, err := files.ForWhatsApp(ctx, f)
	if err != nil {
		return transferResult{err: err}
	}
	if om.Path != f.Path {
		defer os.Remove(om.Path)
	}
	opts := SendOptions{}
	if d.ID != "" {
		opts.ID = waSendID(d.ID)
	}
	if q := d.Quote; q != nil && q.WA.ID != "" {
		opts.ReplyTo = &MsgRef{Chat: ChatID(q.WA.Chat), Sender: UserID(q.WA.Sender), ID: q.WA.ID, FromMe: q.WA.Sender == ""}
		opts.QuotedText = q.Excerpt
	}
	what := outWhat(om)
	ref, _, err := wa.SendMedia(ctx, job.key.Chat, om, opts)
	if err != nil {
		return transferResult{err: &notSent{err}, what: what}
	}
	if ref.ID == "" {
		ref.ID = opts.ID
	}
	return transferResult{ref: ref, what: what}
}

// Errors of a transfer's steps, so that the owner reads which failed.
type (
	downloadError struct{ err error }
	uploadError   struct{ err error }
	fetchError    struct{ err error }
)

func (e *downloadError) Error() string { return "download from WhatsApp: " + e.err.Error() }
func (e *downloadError) Unwrap() error { return e.err }
func (e *uploadError) Error() string   { return "upload: " + e.err.Error() }
func (e *uploadError) Unwrap() error   { return e.err }
func (e *fetchError) Error() string    { return "download: " + e.err.Error() }
func (e *fetchError) Unwrap() error    { return e.err }

// passing reports whether a transfer's failure may pass by itself (a
// network, a server, WhatsApp away), so that the transfer is tried again.
func passing(err error) bool {
	switch {
	case errors.Is(err, ErrNoUpload), errors.Is(err, ErrUploadTooLarge), errors.Is(err, ErrUploadQuota),
		errors.Is(err, ErrFetchTooLarge), errors.Is(err, ErrNotVerified), errors.Is(err, ErrMediaExpired):
		return false
	}
	if errors.Is(err, ErrBadURL) {
		return false
	}
	var st interface{ HTTPStatus() int }
	if errors.As(err, &st) && st.HTTPStatus() >= 400 && st.HTTPStatus() < 500 {
		return false
	}
	var fe *fetchError
	var de *downloadError
	var ue *uploadError
	var ns *notSent
	return errors.As(err, &de) || errors.As(err, &ue) || errors.As(err, &fe) || errors.As(err, &ns)
}

// transferred is the loop's side of a transfer's end.
func (c *Core) transferred(r transferResult) {
	ctx := c.xf.ctx
	if ctx == nil {
		ctx = context.Background()
	}
	if c.xf.running[r.key] != r.seq {
		return
	}
	delete(c.xf.running, r.key)
	l := c.xf.lanes[r.key]
	if len(l) == 0 || !l[0].Transfer {
		return
	}
	it := l[0]
	if r.err != nil && passing(r.err) && it.Tries+1 < maxTransferTries && ctx.Err() == nil {
		c.xf.lanes[r.key][0].Tries++
		if err := c.saveLane(r.key); err != nil {
			c.log.Error("lanes", "err", err)
		}
		c.xf.retryAt[r.key] = c.now().Add(time.Duration(it.Tries+1) * 30 * time.Second)
		// Logged once the next try is scheduled (tests move their clock
		// on when they read it).
		c.log.Info("transfer failed; trying again", "err", r.err, "try", it.Tries+1)
		return
	}
	var err error
	if r.key.Out {
		err = c.fileSent(it, r)
	} else {
		err = c.mediaRelayed(r.key, it, r)
	}
	if err != nil {
		// The store or the outbox failed: the transfer runs again.
		c.log.Error("transfer not recorded; trying again", "err", err)
		c.xf.retryAt[r.key] = c.now().Add(5 * time.Second)
		return
	}
	c.popLane(r.key)
	c.pump(r.key)
}

// fileSent records (or tells the failure of) a file the owner sent.
func (c *Core) fileSent(it laneItem, r transferResult) error {
	d := it.Draft
	name := c.chatNameOf(ChatID(d.Chat))
	if r.err != nil {
		c.say("⚠️ Not sent to " + name + ": " + c.fileProblem(r.err) + "\n> " + short(d.Body, 80))
		return nil
	}
	if r.ref.ID == "" || d.ID == "" {
		return nil
	}
	return c.st.PutMessages(MsgLink{WA: MessageKey{Chat: string(d.Chat), ID: r.ref.ID}, XMPPID: d.ID, Excerpt: excerptOf(r.what), Time: c.now(), RoomID: d.RoomID})
}

// fileSuffix makes the XMPP id of a relayed file's URL message from its
// line's id.
const fileSuffix = "-file"

// mediaRelayed relays a finished WhatsApp → owner transfer: the line
// naming chat and sender (with the caption) and the file's URL, or the
// line saying why there is no file.
func (c *Core) mediaRelayed(k laneKey, it laneItem, r transferResult) error {
	m := it.Msg
	ch, err := c.st.Chat(string(k.Chat))
	if err != nil {
		return err
	}
	mk := c.key(m.Ref)
	mk.Chat = ch.ID
	lineID := relayID(mk)
	// A line relayed before for this message (a placeholder while it was
	// undecryptable, the line saying the phone was asked) is corrected.
	replace := ""
	if it.Retried || m.Retry {
		if l, ok, err := c.lookupWA(m.Ref); err != nil {
			return err
		} else if ok && l.XMPPID != "" {
			replace = l.XMPPID
		}
	}
	what := mediaWhat(m)
	switch {
	case r.err == nil && r.url != "":
		return c.relayFile(ch, m, mk, replace, r.url)
	case r.expired && r.asked:
		c.xf.waiting[waitKey(mk)] = waitingMedia{Msg: m, Key: mk, Since: c.now()}
		if err := c.saveWaiting(); err != nil {
			delete(c.xf.waiting, waitKey(mk))
			return err
		}
		return c.relayLine(ch, m, mk, replace, lineID, "old "+what+" (no longer on WhatsApp's servers), asking your phone for it…")
	case r.expired:
		why := "it is no longer on WhatsApp's servers"
		if it.Retried {
			why += ", even after your phone sent it again"
		} else if r.askErr != nil {
			c.log.Warn("media retry request", "err", r.askErr)
			why += ", and asking your phone failed"
		}
		return c.relayLine(ch, m, mk, replace, lineID, c.cannotRelay(m, why))
	}
	return c.relayLine(ch, m, mk, replace, lineID, c.cannotRelay(m, c.fileProblem(r.err)))
}

// cannotRelay is the line for media that could not be relayed: what it
// is, its size, why, and where to see it.
func (c *Core) cannotRelay(m *Message, why string) string {
	s := mediaWhat(m)
	if m.Media != nil && m.Media.Size > 0 && !strings.Contains(s, "(") {
		s += " (" + sizeText(m.Media.Size) + ")"
	}
	s += " could not be relayed: " + why + ". Open it on your phone."
	if m.Text != "" {
		s += "\n" + mentions(m.Text, m.Mentions, c.name)
	}
	return s
}

// relayLine relays one line about m (mapped to it): a new one with id, or
// a correction of replace.
func (c *Core) relayLine(ch Chat, m *Message, k MessageKey, replace, id, text string) error {
	room, roomID, err := c.mediaRoom(ch, replace)
	if err != nil {
		return err
	}
	body := c.headerIn(room, ch, m.Ref) + text
	if !m.History && !m.Ref.FromMe {
		body += c.reminder(ch) // the chat moved to XMPP (invite.go)
	}
	out := Outgoing{ID: id, Body: body, Markable: true, Room: room}
	if replace != "" {
		out = Outgoing{Replace: replace, Body: body, Room: room}
	}
	if m.History {
		out.Delay = m.Time
	} else if err := c.spoke(ChatID(ch.ID)); err != nil {
		return err
	}
	if _, err := c.x.Send(out); err != nil {
		return err
	}
	if replace != "" {
		id = replace
	}
	return c.st.PutMessages(MsgLink{WA: k, XMPPID: id, Excerpt: excerptOf(text), Time: m.Time, RoomID: roomID})
}

// mediaRoom is where a line about media in ch goes: the chat's room, or
// where the line it corrects (replace) is; and the room id to map it with.
func (c *Core) mediaRoom(ch Chat, replace string) (room, roomID string, err error) {
	room = c.roomOf(ChatID(ch.ID))
	if replace != "" {
		l, err := c.st.MessageByXMPP(replace)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return "", "", err
		}
		var gone bool
		if room, gone = c.linkRoom(ch, l); gone {
			room = ""
		}
		return room, l.RoomID, nil
	}
	if room != "" {
		roomID = RoomPending
	}
	return room, roomID, nil
}

// relayFile relays media: its line (naming chat and sender, with the
// caption) and a message whose body is the URL, with the same URL as
// XEP-0066 OOB (clients show a file inline only then). Both are mapped to
// the WhatsApp message, the line last (edits, reactions and quotes go to
// it); a reply to either routes to the chat.
func (c *Core) relayFile(ch Chat, m *Message, k MessageKey, replace, url string) error {
	text := mediaCaption(m, c.name)
	room, roomID, err := c.mediaRoom(ch, replace)
	if err != nil {
		return err
	}
	line := Outgoing{ID: relayID(k), Body: c.headerIn(room, ch, m.Ref) + text, Markable: true, Room: room}
	if !m.History && !m.Ref.FromMe {
		line.Body += c.reminder(ch) // the chat moved to XMPP (invite.go)
	}
	if replace != "" {
		line = Outgoing{Replace: replace, Body: line.Body, Room: room}
	}
	if m.ReplyTo != nil {
		q, ok, err := c.lookupWA(*m.ReplyTo)
		if err != nil {
			return err
		}
		if qroom, gone := c.linkRoom(ch, q); ok && q.XMPPID != "" && qroom == room && !gone {
			line.ReplyTo, line.Quote = refIn(room, q), q.Excerpt
			if m.QuotedText != "" {
				line.Quote = m.QuotedText
			}
		}
	}
	file := Outgoing{ID: relayID(k) + fileSuffix, Body: url, URL: url, Markable: true, Room: room}
	fileRoomID := ""
	if room != "" {
		fileRoomID = RoomPending
	}
	if m.History {
		line.Delay, file.Delay = m.Time, m.Time
	} else if err := c.spoke(ChatID(ch.ID)); err != nil {
		return err
	}
	if _, err := c.x.Send(line, file); err != nil {
		return err
	}
	lineID := line.ID
	if replace != "" {
		lineID = replace
	}
	if err := c.st.PutMessages(
		MsgLink{WA: k, XMPPID: file.ID, Time: m.Time, RoomID: fileRoomID},
		MsgLink{WA: k, XMPPID: lineID, Excerpt: excerptOf(text), Time: m.Time, RoomID: roomID},
	); err != nil {
		return err
	}
	if !m.History && m.Time.After(ch.LastActivity.Add(time.Minute)) {
		if err := c.st.Touch(ch.ID, m.Time); err != nil {
			c.log.Warn("touch chat", "err", err)
		}
	}
	return nil
}

func waitKey(k MessageKey) string { return k.Chat + "\x00" + k.Sender + "\x00" + k.ID }

// mediaAnswer handles the phone's answer about media WhatsApp had lost:
// the file goes as a transfer in the chat's lane (correcting the line that
// said the phone was asked), or the line says it is gone.
func (c *Core) mediaAnswer(a *MediaRetry) error {
	ch, err := c.chat(a.Ref.Chat, "")
	if err != nil {
		return err
	}
	k := c.key(a.Ref)
	k.Chat = ch.ID
	id := waitKey(k)
	w, ok := c.xf.waiting[id]
	if !ok {
		c.log.Debug("media answer for nothing asked", "id", a.Ref.ID)
		return nil
	}
	if a.Media == nil || a.Media.Handle == "" {
		c.log.Info("the phone no longer has the media", "why", a.Err)
		if err := c.relayLine(ch, w.Msg, k, relayID(k), relayID(k), c.cannotRelay(w.Msg, "it is no longer on WhatsApp's servers nor on your phone")); err != nil {
			return err
		}
	} else {
		m := *w.Msg
		md := *w.Msg.Media
		md.Handle = a.Media.Handle
		if a.Media.Size > 0 {
			md.Size = a.Media.Size
		}
		m.Media = &md
		if err := c.startTransfer(laneKey{Chat: ChatID(ch.ID)}, laneItem{Msg: &m, Retried: true}); err != nil {
			return err
		}
	}
	delete(c.xf.waiting, id)
	return c.saveWaiting()
}

// waitedInVain tells that the phone never answered.
func (c *Core) waitedInVain(id string, w waitingMedia) {
	ch, err := c.st.Chat(w.Key.Chat)
	if err == nil {
		err = c.relayLine(ch, w.Msg, w.Key, relayID(w.Key), relayID(w.Key), c.cannotRelay(w.Msg, "your phone did not send it again within a week"))
	}
	if err != nil {
		c.log.Error("media the phone never sent", "err", err)
		return
	}
	delete(c.xf.waiting, id)
	if err := c.saveWaiting(); err != nil {
		c.log.Error("media asked of the phone", "err", err)
	}
}

// transferable reports whether m's media goes through a transfer: media,
// with a Files to prepare it, neither view-once (a notice only) nor from
// history (history brings hundreds at once: its media is a line).
func (c *Core) transferable(m *Message) bool {
	return c.cfg.Files != nil && isMedia(m.Kind) && m.Media != nil && !m.ViewOnce && !m.History
}

func isMedia(k MsgKind) bool {
	switch k {
	case Image, Video, Audio, Voice, Document, Sticker:
		return true
	}
	return false
}

// wantAAC reports whether voice notes go to the owner as AAC: as the
// config says, or ("auto") when one of the owner's online clients is an
// iOS client that does not play Opus (Monal, Siskin: their XEP-0115 caps
// node tells).
func (c *Core) wantAAC() bool {
	switch c.cfg.VoiceAAC {
	case VoiceAACAlways:
		return true
	case VoiceAACNever:
		return false
	}
	oc, ok := c.xw.(interface{ OwnerClients() []string })
	if !ok {
		return false
	}
	for _, node := range oc.OwnerClients() {
		n := strings.ToLower(node)
		if strings.Contains(n, "monal") || strings.Contains(n, "siskin") {
			return true
		}
	}
	return false
}

// VoiceAAC modes (CoreConfig.VoiceAAC).
const (
	VoiceAACAuto   = "auto"
	VoiceAACAlways = "always"
	VoiceAACNever  = "never"
)

// fileProblem says a transfer's failure in plain words (its details go to
// the log).
func (c *Core) fileProblem(err error) string {
	c.log.Warn("media transfer failed", "err", err)
	var de *downloadError
	var ue *uploadError
	var fe *fetchError
	switch {
	case errors.Is(err, ErrUploadTooLarge):
		return "it is larger than your XMPP server accepts"
	case errors.Is(err, ErrUploadQuota):
		return "your XMPP server's upload quota is used up"
	case errors.Is(err, ErrNoUpload):
		return "your XMPP server offers no file upload"
	case errors.Is(err, ErrFetchTooLarge):
		return "the file is over waxmpp's size limit"
	case errors.Is(err, ErrNotVerified):
		return "the encrypted file does not verify (a wrong key, or it was damaged on the way)"
	case errors.Is(err, ErrBadURL):
		return "waxmpp fetches files only from https links"
	case errors.Is(err, context.DeadlineExceeded):
		return "it took too long"
	case errors.Is(err, ErrNotPaired):
		return "waxmpp is not linked to WhatsApp; send /pair"
	case errors.As(err, &de):
		return "the download from WhatsApp failed"
	case errors.As(err, &ue):
		return "the upload to your XMPP server failed"
	case errors.As(err, &fe):
		var st interface{ HTTPStatus() int }
		if errors.As(err, &st) {
			return fmt.Sprintf("waxmpp could not download the file (the server answered %d)", st.HTTPStatus())
		}
		return "waxmpp could not download the file"
	}
	var ns *notSent
	if errors.As(err, &ns) {
		return "WhatsApp did not take it (waxmpp's log says why)"
	}
	return "something went wrong (waxmpp's log says why)"
}

// mediaWhat names a message's media as the owner reads it: "📷 photo",
// "🎤 voice message (0:07)", "📄 Report.pdf (2.1 MB)".
func mediaWhat(m *Message) string {
	md := m.Media
	if md == nil {
		md = &Media{}
	}
	dur := ""
	if md.Duration > 0 {
		d := md.Duration.Round(time.Second)
		dur = fmt.Sprintf(" (%d:%02d)", int(d.Minutes()), int(d.Seconds())%60)
	}
	switch m.Kind {
	case Image:
		return "📷 photo"
	case Video:
		return "🎬 video" + dur
	case Audio:
		return "🎵 audio" + dur
	case Voice:
		return "🎤 voice message" + dur
	case Sticker:
		return "sticker"
	}
	name := cleanFileName(md.FileName)
	if name == "" {
		name = "document"
	}
	if md.Size > 0 {
		return "📄 " + name + " (" + sizeText(md.Size) + ")"
	}
	return "📄 " + name
}

// mediaCaption is the text of a relayed file's line: what it is, and the
// caption.
func mediaCaption(m *Message, name func(UserID) string) string {
	s := mediaWhat(m)
	if m.Text != "" {
		s += ": " + mentions(m.Text, m.Mentions, name)
	}
	if m.Forwarded {
		s = "↪ forwarded: " + s
	}
	return s
}

// viewOnceText is the notice for view-once media: it is not downloaded.
func viewOnceText(m *Message) string {
	w := strings.TrimPrefix(strings.TrimPrefix(mediaWhat(m), "📷 "), "🎬 ")
	return "👁 a view-once " + w + ": open it on your phone (WhatsApp shows it only there)"
}

// cleanFileName is a WhatsApp document's name fit for a line: no line
// breaks or styling characters, at most 80 characters.
func cleanFileName(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f || r == '*' {
			return -1
		}
		return r
	}, s)
	return short(s, 80)
}

// sizeText is a size as the owner reads it: "850 kB", "2.1 MB".
func sizeText(n int64) string {
	switch {
	case n < 1000:
		return fmt.Sprintf("%d bytes", n)
	case n < 1000*1000:
		return fmt.Sprintf("%d kB", (n+500)/1000)
	case n < 1000*1000*1000:
		return fmt.Sprintf("%.1f MB", float64(n)/1e6)
	}
	return fmt.Sprintf("%.1f GB", float64(n)/1e9)
}

// ownerFileName is the name stem of a file from WhatsApp: a document's own
// name, else what it is and when it was sent ("photo_2026-11-22_10-00-00");
// bridge/media makes it safe and adds the extension.
func ownerFileName(m *Message) string {
	if m.Media != nil && m.Media.FileName != "" {
		return m.Media.FileName
	}
	what := map[MsgKind]string{Image: "photo", Video: "video", Audio: "audio", Voice: "voice", Sticker: "sticker"}[m.Kind]
	if what == "" {
		what = "file"
	}
	return what + "_" + m.Time.UTC().Format("2006-01-02_15-04-05")
}

// outWhat names what the owner sent, for the message map's excerpt.
func outWhat(m *OutMedia) string {
	switch m.Kind {
	case Image:
		return "📷 photo"
	case Video:
		return "🎬 video"
	case Audio:
		return "🎵 audio"
	case Voice:
		return "🎤 voice message"
	}
	if m.FileName != "" {
		return "📄 " + m.FileName
	}
	return "📄 document"
}

// queuedDraft reports whether an owner message id waits in a lane.
func (c *Core) queuedDraft(id string) bool {
	for k, l := range c.xf.lanes {
		if !k.Out {
			continue
		}
		for _, it := range l {
			if it.Draft != nil && it.Draft.ID == id {
				return true
			}
		}
	}
	return false
}

// mediaStatus is /status's line about media.
func (c *Core) mediaStatus() string {
	if c.cfg.Files == nil {
		return "" // a test build without media
	}
	n := 0
	for _, l := range c.xf.lanes {
		if len(l) > 0 && l[0].Transfer {
			n++
		}
	}
	s := "Media: "
	if v := c.cfg.Files.Converter(); v != "" {
		s += "relayed both ways; converting with " + v
	} else {
		s += "relayed both ways; ffmpeg is not installed, so voice messages go to WhatsApp as audio files and GIF, WebM and MOV videos as documents"
	}
	if n > 0 {
		s += fmt.Sprintf("; %d %s under way", n, plural(n, "transfer", "transfers"))
	}
	if w := len(c.xf.waiting); w > 0 {
		s += fmt.Sprintf("; %d old %s asked of your phone", w, plural(w, "file", "files"))
	}
	return s
}
