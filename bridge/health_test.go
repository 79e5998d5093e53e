package bridge_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"waxmpp/bridge"
	"waxmpp/bridge/store"
)

// stuckWA is a WhatsApp whose Lookup blocks until release is closed: a
// core stuck in one event, as the watchdog must notice.
type stuckWA struct {
	*fakeWA
	entered chan struct{}
	release chan struct{}
}

func (s *stuckWA) Lookup(ctx context.Context, phone string) (bridge.UserID, bool, error) {
	close(s.entered)
	<-s.release
	return s.fakeWA.Lookup(ctx, phone)
}

func TestHealth(t *testing.T) {
	db, err := store.Open(filepath.Join(t.TempDir(), "w.db"), store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	wa := &stuckWA{
		fakeWA:  &fakeWA{lookup: map[string]bridge.UserID{"+493333": carol}},
		entered: make(chan struct{}),
		release: make(chan struct{}),
	}
	ev := make(chan bridge.Event)
	own := make(chan bridge.OwnerEvent)
	core, err := bridge.NewCore(bridge.CoreConfig{WhatsApp: wa, XMPP: &fakeXMPP{}, Store: db, Events: ev, Owner: own})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- core.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()

	ask := func(d time.Duration) (bridge.Health, error) {
		hctx, hcancel := context.WithTimeout(context.Background(), d)
		defer hcancel()
		return core.Health(hctx)
	}

	h, err := ask(5 * time.Second)
	if err != nil {
		t.Fatalf("Health of an idle core: %v", err)
	}
	if got, want := h.String(), "WhatsApp starting · XMPP connected · 2 queued"; got != want {
		t.Errorf("Health = %q, want %q", got, want)
	}

	ev <- &bridge.Status{State: bridge.NotPaired}
	h, err = ask(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := h.String(), "WhatsApp not linked: send /pair · XMPP connected · 2 queued"; got != want {
		t.Errorf("Health = %q, want %q", got, want)
	}

	// The loop is stuck in a WhatsApp call: Health gets no answer.
	own <- &bridge.OwnerText{OwnerMeta: bridge.OwnerMeta{ID: "o1"}, Body: "/new +493333"}
	<-wa.entered
	if h, err := ask(200 * time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Health of a stuck core = %v, %v; want context.DeadlineExceeded", h, err)
	}
	// Unstuck, it answers again.
	close(wa.release)
	if _, err := ask(5 * time.Second); err != nil {
		t.Fatalf("Health after the call returned: %v", err)
	}
}

func TestHealthString(t *testing.T) {
	until := time.Date(2026, 12, 24, 18, 30, 0, 0, time.UTC)
	tests := []struct {
		h    bridge.Health
		want string
	}{
		{bridge.Health{WhatsApp: bridge.Connected, XMPP: bridge.XMPPStats{Connected: true}}, "WhatsApp connected · XMPP connected · 0 queued"},
		{bridge.Health{WhatsApp: bridge.Disconnected, XMPP: bridge.XMPPStats{Queued: 7}}, "WhatsApp reconnecting · XMPP connecting · 7 queued"},
		{bridge.Health{WhatsApp: bridge.TempBanned, Until: until}, "WhatsApp banned until 24 Dec 18:30 · XMPP connecting · 0 queued"},
		{bridge.Health{WhatsApp: bridge.LoggedOut, XMPPErr: errors.New("disk"), Waiting: 3, Held: 1}, "WhatsApp logged out: send /pair · XMPP unknown (store error) · 0 queued · 3 from WhatsApp waiting · 1 held for an answer"},
		{bridge.Health{WhatsApp: bridge.Disconnected, XMPP: bridge.XMPPStats{Connected: true}, Pending: 2, Paused: true}, "WhatsApp reconnecting · XMPP connected · 0 queued · 2 waiting for WhatsApp · paused: cannot save (disk full?)"},
	}
	for _, tt := range tests {
		if got := tt.h.String(); got != tt.want {
			t.Errorf("%+v: String() = %q, want %q", tt.h, got, tt.want)
		}
	}
}
