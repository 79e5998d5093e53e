package bridge_test

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"waxmpp/bridge"
)

// holdClock is a test's clock and one-shot timer for the core's hold of
// an owner batch (bridge.SetOwnerClock): the time moves only when the test
// says, and a timer fires only when the test fires it.
type holdClock struct {
	mu    sync.Mutex
	now   time.Time
	armed []time.Duration  // every timer the core armed, in order
	fire  chan<- time.Time // the last one's, until it fired or was stopped
}

func (h *holdClock) time() time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.now
}

func (h *holdClock) advance(d time.Duration) {
	h.mu.Lock()
	h.now = h.now.Add(d)
	h.mu.Unlock()
}

func (h *holdClock) after(d time.Duration) (<-chan time.Time, func() bool) {
	ch := make(chan time.Time, 1)
	h.mu.Lock()
	h.armed = append(h.armed, d)
	h.fire = ch
	h.mu.Unlock()
	return ch, func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.fire != ch {
			return false
		}
		h.fire = nil
		return true
	}
}

// timers is what the core armed so far.
func (h *holdClock) timers() []time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.armed)
}

// waitArmed waits until the core armed n timers and returns the last.
func (h *holdClock) waitArmed(t *testing.T, n int) time.Duration {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if a := h.timers(); len(a) >= n {
			if len(a) > n {
				t.Fatalf("the core armed %d timers, want %d: %v", len(a), n, a)
			}
			return a[n-1]
		}
		if time.Now().After(deadline) {
			t.Fatalf("the core armed %d timers, want %d", len(h.timers()), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// fireNow fires the armed timer.
func (h *holdClock) fireNow(t *testing.T) {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.fire == nil {
		t.Fatal("no timer armed to fire")
	}
	h.fire <- h.now
	h.fire = nil
}

// heldCore runs a core with alice's chat the current one whose owner
// and events channels the test feeds one event at a time, its hold on
// clock h.
func heldCore(t *testing.T, h *holdClock, x *fakeXMPP, wa *fakeWA) (*countingStore, chan<- bridge.OwnerEvent, chan<- bridge.Event) {
	t.Helper()
	db := testDB(t)
	if _, err := db.PutChat(bridge.Chat{ID: alice, Kind: bridge.Direct, Name: "Alice"}); err != nil {
		t.Fatal(err)
	}
	if err := db.SetRoute(alice); err != nil {
		t.Fatal(err)
	}
	st := &countingStore{faultStore: &faultStore{DB: db}}
	own, evs := make(chan bridge.OwnerEvent), make(chan bridge.Event)
	runCore(t, db, bridge.CoreConfig{WhatsApp: wa, XMPP: x, Store: st, Events: evs, Owner: own, Now: func() time.Time { return t0 }},
		func(c *bridge.Core) { bridge.SetOwnerClock(c, h.time, h.after) })
	return st, own, evs
}

// ownerText is the owner's text #i with id o<i>.
func ownerText(i int) bridge.OwnerEvent {
	return &bridge.OwnerText{OwnerMeta: bridge.OwnerMeta{ID: fmt.Sprintf("o%d", i), Time: t0}, Body: fmt.Sprintf("#%d out", i)}
}

// feed hands the core one owner event, as the XMPP side does.
func feed(t *testing.T, x *fakeXMPP, own chan<- bridge.OwnerEvent, m bridge.OwnerEvent) {
	t.Helper()
	x.box.delivered(m)
	select {
	case own <- m:
	case <-time.After(30 * time.Second):
		t.Fatal("the core took no owner event for 30 s")
	}
}

func (s *countingStore) writes() ([]int, [][]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.puts), slices.Clone(s.ids)
}

func handledCount(x *fakeXMPP) int {
	x.box.mu.Lock()
	defer x.box.mu.Unlock()
	return len(x.box.acked)
}

// waitSent waits until WhatsApp got n texts.
func waitSent(t *testing.T, wa *fakeWA, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, got := sentTexts(wa); got >= n {
			return
		}
		if time.Now().After(deadline) {
			_, got := sentTexts(wa)
			t.Fatalf("WhatsApp got %d of %d texts", got, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestOwnerBurstHeld: the owner's texts handed over one at a time, a few
// ms apart (a server that delivers more slowly than a commit), share
// their commits: a text that follows a written batch within ownerLinger
// is held, each goes to WhatsApp as it arrives, and nothing of the batch
// is acknowledged before its commit; the hold ends when its timer fires,
// or ownerHoldMax after the batch's first text without one. A lone text,
// nothing written within ownerLinger before it, is written and
// acknowledged at once, with no timer armed. The core on the old code
// wrote every text with a commit of its own.
func TestOwnerBurstHeld(t *testing.T) {
	h := &holdClock{now: t0}
	x, wa := &fakeXMPP{}, &fakeWA{}
	st, own, _ := heldCore(t, h, x, wa)

	// A lone text: written at once.
	feed(t, x, own, ownerText(0))
	waitHandled(t, x, 1)
	if puts, _ := st.writes(); !slices.Equal(puts, []int{1}) || len(h.timers()) != 0 {
		t.Fatalf("a lone text: map writes %v, timers %v; want one write, no timer", puts, h.timers())
	}

	// Nine more, 3 ms apart: held while they come, one commit for all.
	for i := 1; i < 10; i++ {
		h.advance(3 * time.Millisecond)
		feed(t, x, own, ownerText(i))
		if d := h.waitArmed(t, i); d != bridge.OwnerLinger {
			t.Fatalf("text %d: held for %v, want %v", i, d, bridge.OwnerLinger)
		}
	}
	waitSent(t, wa, 10) // each sent as it came, none waits for the commit
	if puts, _ := st.writes(); !slices.Equal(puts, []int{1}) || handledCount(x) != 1 {
		t.Fatalf("while held: map writes %v, %d acknowledged; want the lone text's only", puts, handledCount(x))
	}
	h.fireNow(t)
	waitHandled(t, x, 10)
	if puts, _ := st.writes(); !slices.Equal(puts, []int{1, 9}) {
		t.Errorf("a slow burst of 9 after a lone text: map writes %v, want [1 9]", puts)
	}

	// The next ones, 40 ms apart, within ownerLinger of each other: held
	// until ownerHoldMax after the first, and then written without a
	// timer firing.
	armed := len(h.timers())
	h.advance(3 * time.Millisecond)
	var waits []time.Duration
	n := 0
	for elapsed := time.Duration(0); elapsed < bridge.OwnerHoldMax; elapsed += 40 * time.Millisecond {
		feed(t, x, own, ownerText(10+n))
		n++
		armed++
		waits = append(waits, h.waitArmed(t, armed))
		h.advance(40 * time.Millisecond)
	}
	if last := bridge.OwnerHoldMax - time.Duration(n-1)*40*time.Millisecond; waits[n-1] != last || waits[0] != bridge.OwnerLinger {
		t.Errorf("holds %v: want %v first, %v last (ownerHoldMax after the first text)", waits, bridge.OwnerLinger, last)
	}
	feed(t, x, own, ownerText(10+n)) // past ownerHoldMax: written with the batch
	n++
	waitHandled(t, x, 10+n)
	if puts, _ := st.writes(); !slices.Equal(puts, []int{1, 9, n}) || len(h.timers()) != armed {
		t.Errorf("a burst longer than ownerHoldMax: map writes %v, %d timers armed; want [1 9 %d], %d", puts, len(h.timers()), n, armed)
	}

	// A lone text again, a second after the burst: written at once.
	h.advance(time.Second)
	feed(t, x, own, ownerText(10+n))
	acked := waitHandled(t, x, 11+n)
	if puts, _ := st.writes(); len(puts) != 4 || puts[3] != 1 || len(h.timers()) != armed {
		t.Errorf("a lone text after a burst: map writes %v, %d timers armed; want one more write, no timer", puts, len(h.timers()))
	}
	for i, m := range acked {
		if m.Meta().ID != fmt.Sprintf("o%d", i) {
			t.Fatalf("acknowledged out of order: #%d is %s", i, m.Meta().ID)
		}
	}
	if ids, _ := sentTexts(wa); !slices.Equal(ids, mappedIDs(t, st, 11+n)) {
		t.Errorf("sent ids %q, want the mapped ones", ids)
	}
}

// TestOwnerHoldEndsForWhatsApp: a WhatsApp event ends the hold at once:
// the held batch is written before the event is handled (what it names is
// mapped by then), without waiting for the timer.
func TestOwnerHoldEndsForWhatsApp(t *testing.T) {
	h := &holdClock{now: t0}
	x, wa := &fakeXMPP{}, &fakeWA{}
	st, own, evs := heldCore(t, h, x, wa)
	feed(t, x, own, ownerText(0))
	waitHandled(t, x, 1)
	h.advance(3 * time.Millisecond)
	feed(t, x, own, ownerText(1))
	h.waitArmed(t, 1)
	ev := &bridge.Message{Ref: bridge.MsgRef{Chat: alice, Sender: alice, ID: "W1"}, Kind: bridge.Text, Text: "answer"}
	wa.box.delivered(ev)
	evs <- ev
	waitAcked(t, wa, 1)
	waitHandled(t, x, 2)
	_, ids := st.writes()
	if len(ids) != 3 || !slices.Equal(ids[1], []string{"o1"}) {
		t.Errorf("map writes %q: want the held o1 written second, before the WhatsApp message", ids)
	}
	h.mu.Lock()
	live := h.fire != nil
	h.mu.Unlock()
	if live {
		t.Errorf("the hold's timer is still armed after the batch was written")
	}
}
