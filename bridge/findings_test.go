package bridge_test

import (
	"strings"
	"sync"
	"testing"

	"waxmpp/bridge"
)

type fakeDoctor struct {
	mu sync.Mutex
	fs []bridge.Finding
}

func (d *fakeDoctor) Findings() []bridge.Finding {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.fs
}

func (d *fakeDoctor) set(fs []bridge.Finding) {
	d.mu.Lock()
	d.fs = fs
	d.mu.Unlock()
}

// TestStatusFindings: /status shows waxmpp doctor's findings: the
// warnings and problems with what to do, or that all is well.
func TestStatusFindings(t *testing.T) {
	d := &fakeDoctor{}
	h := newHarnessWith(t, func(h *harness) { h.doctor = d })
	status := func() string {
		h.say("/status")
		return strings.Join(h.bodies(), "\n")
	}
	if got := status(); !strings.Contains(got, "Checks: running") {
		t.Errorf("before the first run:\n%s", got)
	}
	d.set([]bridge.Finding{{Check: "clock", Status: "ok", Message: "fine"}, {Check: "ffmpeg", Status: "ok", Message: "there"}})
	if got := status(); !strings.Contains(got, "Checks: all well") || strings.Contains(got, "fine") {
		t.Errorf("all well:\n%s", got)
	}
	d.set([]bridge.Finding{
		{Check: "clock", Status: "ok", Message: "fine"},
		{Check: "subscription", Status: "warning", Message: "me@example.org has not accepted the bot's contact request.", Fix: "Accept it in your app."},
		{Check: "state", Status: "problem", Message: "only 12 MB free on its disk", Fix: "Free space."},
	})
	got := status()
	for _, want := range []string{"⚠️ subscription: me@example.org has not accepted the bot's contact request. → Accept it in your app.", "❌ state: only 12 MB free on its disk → Free space."} {
		if !strings.Contains(got, want) {
			t.Errorf("/status lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "fine") {
		t.Errorf("/status lists checks that are ok:\n%s", got)
	}
}
