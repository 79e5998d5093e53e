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
	mu   sync.Mutex
	puts []int // messages per call
}

func (s *countingStore) PutMessages(ms ...bridge.MsgLink) error {
	s.mu.Lock()
	s.puts = append(s.puts, len(ms))
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
	db, err := store.Open(filepath.Join(t.TempDir(), "w.db"), store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	st := &countingStore{faultStore: &faultStore{DB: db}}
	ch := make(chan bridge.Event, len(evs))
	for _, ev := range evs {
		wa.box.delivered(ev)
		ch <- ev
	}
	core, err := bridge.NewCore(bridge.CoreConfig{WhatsApp: wa, XMPP: x, Store: st, Events: ch, Owner: make(chan bridge.OwnerEvent)})
	if err != nil {
		t.Fatal(err)
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
	return st
}

// waitAcked waits until WhatsApp got n acknowledgements.
func waitAcked(t *testing.T, wa *fakeWA, n int) []bridge.Event {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		wa.box.mu.Lock()
		acked := slices.Clone(wa.box.acked)
		wa.box.mu.Unlock()
		if len(acked) >= n {
			return acked
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d events acknowledged", len(acked), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
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
