package bridge_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"waxmpp/bridge"
	"waxmpp/bridge/store"
)

// countingStore counts the core's PutMessages calls (one transaction each).
type countingStore struct {
	*faultStore
	mu     sync.Mutex
	puts   []int      // messages per call
	ids    [][]string // their XMPP ids, per call
	recent int        // RecentMessages calls
}

func (s *countingStore) RecentMessages(chat string, n int) ([]bridge.MsgLink, error) {
	s.mu.Lock()
	s.recent++
	s.mu.Unlock()
	return s.faultStore.RecentMessages(chat, n)
}

func (s *countingStore) PutMessages(ms ...bridge.MsgLink) error {
	s.mu.Lock()
	s.puts = append(s.puts, len(ms))
	var ids []string
	for _, m := range ms {
		ids = append(ids, m.XMPPID)
	}
	s.ids = append(s.ids, ids)
	s.mu.Unlock()
	return s.faultStore.PutMessages(ms...)
}

// countingXMPP counts Send calls (one outbox transaction each).
type countingXMPP struct {
	*fakeXMPP
	mu    sync.Mutex
	sends []int // messages per call
}

func (x *countingXMPP) Send(ms ...bridge.Outgoing) ([]string, error) {
	ids, err := x.fakeXMPP.Send(ms...)
	if err == nil {
		x.mu.Lock()
		x.sends = append(x.sends, len(ms))
		x.mu.Unlock()
	}
	return ids, err
}

// burstCore runs a core whose events channel holds evs before Run starts:
// a burst waiting, as after a reconnect.
func burstCore(t *testing.T, x *countingXMPP, wa *fakeWA, evs []bridge.Event) *countingStore {
	t.Helper()
	return burstCoreOn(t, testDB(t), x, wa, evs)
}

func testDB(t *testing.T) *store.DB {
	t.Helper()
	db, err := store.Open(filepath.Join(t.TempDir(), "w.db"), store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// burstCoreOn is burstCore on db, with any XMPP side.
func burstCoreOn(t *testing.T, db *store.DB, x bridge.XMPP, wa *fakeWA, evs []bridge.Event) *countingStore {
	t.Helper()
	st := &countingStore{faultStore: &faultStore{DB: db}}
	ch := make(chan bridge.Event, len(evs))
	for _, ev := range evs {
		wa.box.delivered(ev)
		ch <- ev
	}
	runCore(t, db, bridge.CoreConfig{WhatsApp: wa, XMPP: x, Store: st, Events: ch, Owner: make(chan bridge.OwnerEvent)})
	return st
}

// runCore runs a core made of cfg until the test ends, then closes db.
func runCore(t *testing.T, db *store.DB, cfg bridge.CoreConfig, before ...func(*bridge.Core)) {
	t.Helper()
	core, err := bridge.NewCore(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range before {
		f(core)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- core.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Run = %v", err)
		}
		db.Close()
	})
}

// waitAcked waits until WhatsApp got n acknowledgements.
func waitAcked(t *testing.T, wa *fakeWA, n int) []bridge.Event {
	t.Helper()
	return wa.box.waitAcked(t, n, "events")
}

func burst(n int) []bridge.Event {
	var evs []bridge.Event
	for i := range n {
		evs = append(evs, &bridge.Message{Ref: bridge.MsgRef{Chat: alice, Sender: alice, ID: fmt.Sprintf("B%d", i)}, Kind: bridge.Text, Text: fmt.Sprintf("#%d burst", i)})
	}
	return evs
}

// relayedTexts are the numbers of the relayed burst messages, in order.
func relayedTexts(x *countingXMPP) []string {
	var got []string
	for _, m := range x.take() {
		if _, rest, ok := strings.Cut(m.Body, "#"); ok {
			got = append(got, "#"+rest)
		}
	}
	return got
}

// TestBurstOneBatch: a burst waiting on the channel is relayed with one
// outbox write and one map write, in order, and acknowledged in order
// once both are done; a message delivered twice within the burst (the
// second names one of the batch) is relayed once.
func TestBurstOneBatch(t *testing.T) {
	x, wa := &countingXMPP{fakeXMPP: &fakeXMPP{}}, &fakeWA{}
	evs := burst(50)
	evs = append(evs, evs[10]) // WhatsApp delivered #10 again
	st := burstCore(t, x, wa, evs)
	acked := waitAcked(t, wa, len(evs))
	if !slices.Equal(acked, evs) {
		t.Errorf("acknowledged out of order")
	}
	var want []string
	for i := range 50 {
		want = append(want, fmt.Sprintf("#%d burst", i))
	}
	if got := relayedTexts(x); !slices.Equal(got, want) {
		t.Errorf("relayed %q, want %q", got, want)
	}
	st.mu.Lock()
	puts := slices.Clone(st.puts)
	st.mu.Unlock()
	x.mu.Lock()
	sends := slices.Clone(x.sends)
	x.mu.Unlock()
	if !slices.Equal(sends, []int{50}) || !slices.Equal(puts, []int{50}) {
		t.Errorf("burst of 50 written as sends %v and map writes %v; want one of 50 each", sends, puts)
	}
}

// TestBurstFails: when the outbox cannot be written, nothing of the burst
// is acknowledged; once it can, every message is relayed once, in order,
// and then acknowledged.
func TestBurstFails(t *testing.T) {
	x, wa := &countingXMPP{fakeXMPP: &fakeXMPP{sendErr: errors.New("disk full")}}, &fakeWA{}
	evs := burst(20)
	burstCore(t, x, wa, evs)
	// Told that relaying waits (SendNow skips the outbox).
	deadline := time.Now().Add(30 * time.Second)
	for len(x.takeNow()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the owner was not told that relaying waits")
		}
		time.Sleep(10 * time.Millisecond)
	}
	wa.box.mu.Lock()
	n := len(wa.box.acked)
	wa.box.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d events acknowledged while nothing could be written", n)
	}
	x.fakeXMPP.mu.Lock()
	x.fakeXMPP.sendErr = nil
	x.fakeXMPP.mu.Unlock()
	acked := waitAcked(t, wa, len(evs))
	if !slices.Equal(acked, evs) {
		t.Errorf("acknowledged out of order")
	}
	var want []string
	for i := range 20 {
		want = append(want, fmt.Sprintf("#%d burst", i))
	}
	if got := relayedTexts(x); !slices.Equal(got, want) {
		t.Errorf("relayed %q, want %q", got, want)
	}
}

// ownerBurstCore runs a core whose owner channel holds evs before Run
// starts (a burst the server delivered at once), with alice's chat the
// current one.
func ownerBurstCore(t *testing.T, x *fakeXMPP, wa *fakeWA, evs []bridge.OwnerEvent, mapErr error) *countingStore {
	t.Helper()
	db := testDB(t)
	if _, err := db.PutChat(bridge.Chat{ID: alice, Kind: bridge.Direct, Name: "Alice"}); err != nil {
		t.Fatal(err)
	}
	if err := db.SetRoute(alice); err != nil {
		t.Fatal(err)
	}
	// Alice wrote before: the owner's answers mark it read.
	if err := db.PutMessages(bridge.MsgLink{WA: bridge.MessageKey{Chat: alice, Sender: alice, ID: "A1"}, XMPPID: "wa-A1", Time: t0.Add(-time.Minute)}); err != nil {
		t.Fatal(err)
	}
	st := &countingStore{faultStore: &faultStore{DB: db}}
	st.set("PutMessages", mapErr)
	own := make(chan bridge.OwnerEvent, len(evs))
	for _, m := range evs {
		x.box.delivered(m)
		own <- m
	}
	runCore(t, db, bridge.CoreConfig{WhatsApp: wa, XMPP: x, Store: st, Events: make(chan bridge.Event), Owner: own})
	return st
}

func ownerBurst(n int) []bridge.OwnerEvent {
	var evs []bridge.OwnerEvent
	for i := range n {
		evs = append(evs, &bridge.OwnerText{OwnerMeta: bridge.OwnerMeta{ID: fmt.Sprintf("o%d", i), Time: t0}, Body: fmt.Sprintf("#%d out", i)})
	}
	return evs
}

// waitHandled waits until the XMPP side got n acknowledgements.
func waitHandled(t *testing.T, x *fakeXMPP, n int) []bridge.OwnerEvent {
	t.Helper()
	return x.box.waitAcked(t, n, "owner events")
}

// sentTexts are the WhatsApp ids the owner's texts were sent with, each
// once, in the order first sent, and how many sends there were.
func sentTexts(wa *fakeWA) ([]string, int) {
	wa.mu.Lock()
	defer wa.mu.Unlock()
	var ids []string
	for _, id := range wa.textIDs {
		if !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	return ids, len(wa.textIDs)
}

// TestOwnerBurstOneBatch: a burst of the owner's texts waiting on the
// channel is sent to WhatsApp in order and mapped with one map write,
// then acknowledged in order; a text delivered twice within the burst is
// sent once.
func TestOwnerBurstOneBatch(t *testing.T) {
	x, wa := &fakeXMPP{}, &fakeWA{}
	evs := ownerBurst(50)
	evs = append(evs, &bridge.OwnerText{OwnerMeta: bridge.OwnerMeta{ID: "o10", Time: t0}, Body: "#10 out"}) // delivered again
	st := ownerBurstCore(t, x, wa, evs, nil)
	acked := waitHandled(t, x, len(evs))
	if !slices.Equal(acked, evs) {
		t.Errorf("acknowledged out of order")
	}
	ids, n := sentTexts(wa)
	if want := mappedIDs(t, st, 50); !slices.Equal(ids, want) || n != 50 {
		t.Errorf("sent %d texts with ids %q, want the mapped %q once each", n, ids, want)
	}
	st.mu.Lock()
	puts, recent := slices.Clone(st.puts), st.recent
	st.mu.Unlock()
	if !slices.Equal(puts, []int{50}) {
		t.Errorf("burst of 50 mapped with map writes %v; want one of 50", puts)
	}
	// Answering marks what Alice wrote read, once; the chat's recent
	// messages are read for the first answer only.
	wa.mu.Lock()
	reads := slices.Clone(wa.reads)
	wa.mu.Unlock()
	if len(reads) != 1 || recent != 1 {
		t.Errorf("50 answers: MarkRead %q, recent messages read %d times; want one of each", reads, recent)
	}
}

// mappedIDs are the WhatsApp ids the map has for the owner's o0…o(n-1).
func mappedIDs(t *testing.T, st *countingStore, n int) []string {
	t.Helper()
	var ids []string
	for i := range n {
		l, err := st.MessageByXMPP(fmt.Sprintf("o%d", i))
		if err != nil || l.WA.ID == "" {
			t.Fatalf("map of o%d = %+v, %v", i, l, err)
		}
		ids = append(ids, l.WA.ID)
	}
	return ids
}

// TestOwnerBurstFails: when the map cannot be written, nothing of the
// owner's burst is acknowledged; once it can, every text is mapped and
// acknowledged in order, and what WhatsApp got again carries the same
// ids (its recipients drop a message they have).
func TestOwnerBurstFails(t *testing.T) {
	x, wa := &fakeXMPP{}, &fakeWA{}
	evs := ownerBurst(20)
	st := ownerBurstCore(t, x, wa, evs, errors.New("disk full"))
	deadline := time.Now().Add(30 * time.Second)
	for len(x.takeNow()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the owner was not told that relaying waits")
		}
		time.Sleep(10 * time.Millisecond)
	}
	x.box.mu.Lock()
	n := len(x.box.acked)
	x.box.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d owner events acknowledged while the map could not be written", n)
	}
	st.set("PutMessages", nil)
	acked := waitHandled(t, x, len(evs))
	if !slices.Equal(acked, evs) {
		t.Errorf("acknowledged out of order")
	}
	if ids, _ := sentTexts(wa); !slices.Equal(ids, mappedIDs(t, st, 20)) {
		t.Errorf("sent ids %q, want the mapped %q", ids, mappedIDs(t, st, 20))
	}
}

// recordingXMPP is an XMPP side whose outbox shares the store
// (bridge.RecordingXMPP): SendWith writes the record itself; with
// unsupported set it refuses, as an outbox of another kind does.
type recordingXMPP struct {
	*countingXMPP
	db          *store.DB
	unsupported bool
	withs       []int // links per SendWith
}

func (x *recordingXMPP) SendWith(r bridge.Record, ms ...bridge.Outgoing) ([]string, error) {
	if x.unsupported {
		return nil, fmt.Errorf("test: %w", errors.ErrUnsupported)
	}
	ids, err := x.countingXMPP.Send(ms...)
	if err != nil {
		return nil, err
	}
	if err := x.db.PutMessages(r.Links...); err != nil {
		return nil, err
	}
	x.mu.Lock()
	x.withs = append(x.withs, len(r.Links))
	x.mu.Unlock()
	return ids, nil
}

// TestBurstOneCommit: where the XMPP side writes the map with the
// stanzas, a burst is relayed with one SendWith and no map write of the
// core's own; where it cannot, with one Send and one map write.
func TestBurstOneCommit(t *testing.T) {
	for _, unsupported := range []bool{false, true} {
		t.Run(fmt.Sprintf("unsupported=%v", unsupported), func(t *testing.T) {
			db := testDB(t)
			x := &recordingXMPP{countingXMPP: &countingXMPP{fakeXMPP: &fakeXMPP{}}, db: db, unsupported: unsupported}
			wa := &fakeWA{}
			evs := burst(30)
			st := burstCoreOn(t, db, x, wa, evs)
			acked := waitAcked(t, wa, len(evs))
			if !slices.Equal(acked, evs) {
				t.Errorf("acknowledged out of order")
			}
			st.mu.Lock()
			puts := slices.Clone(st.puts)
			st.mu.Unlock()
			x.mu.Lock()
			sends, withs := slices.Clone(x.sends), slices.Clone(x.withs)
			x.mu.Unlock()
			want := [][]int{{30}, {30}, nil} // sends, SendWith's links, the core's map writes
			if unsupported {
				want = [][]int{{30}, nil, {30}}
			}
			if !slices.Equal(sends, want[0]) || !slices.Equal(withs, want[1]) || !slices.Equal(puts, want[2]) {
				t.Errorf("burst of 30: sends %v, SendWith links %v, map writes %v; want %v", sends, withs, puts, want)
			}
			for _, ev := range evs {
				m := ev.(*bridge.Message)
				if _, err := db.MessageByWA(bridge.MessageKey{Chat: string(m.Ref.Chat), ID: m.Ref.ID}); err != nil {
					t.Errorf("%s not mapped: %v", m.Ref.ID, err)
				}
			}
		})
	}
}
