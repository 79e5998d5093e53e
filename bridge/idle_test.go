package bridge_test

import (
	"testing"
	"time"

	"waxmpp/bridge"
)

// TestIdleHook: the core calls CoreConfig.Idle once it has had nothing to
// handle for idleAfter after handling something, once per quiet spell:
// not before anything came, not again while nothing more comes.
func TestIdleHook(t *testing.T) {
	defer bridge.SetIdleAfter(100 * time.Millisecond)()
	calls := make(chan time.Time, 10)
	h := newHarnessWith(t, func(h *harness) { h.idle = func() { calls <- time.Now() } })
	none := func(d time.Duration, why string) {
		t.Helper()
		select {
		case <-calls:
			t.Fatalf("Idle was called %s", why)
		case <-time.After(d):
		}
	}
	none(400*time.Millisecond, "before anything was handled")
	var last time.Time
	for i := range 5 {
		if i > 0 {
			time.Sleep(30 * time.Millisecond) // less than idleAfter apart
		}
		h.send(msg(alice, alice, "I"+string(rune('0'+i)), "hi"))
		last = time.Now() // the core resets its timer after this
	}
	select {
	case at := <-calls:
		if d := at.Sub(last); d < 90*time.Millisecond {
			t.Fatalf("Idle %v after the last event, want about 100ms", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Idle was not called after the events")
	}
	none(400*time.Millisecond, "twice in one quiet spell")
}
