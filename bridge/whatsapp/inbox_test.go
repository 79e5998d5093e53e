package whatsapp

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"waxmpp/bridge"
	"waxmpp/bridge/store"
)

// TestInboxSurvivesRestart: events are on disk before push returns; after
// a restart (a new inbox on the same file), everything not handled comes
// again, in order, and nothing handled and flushed does.
func TestInboxSurvivesRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "waxmpp.db")
	db, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	b := newInbox(db.Queue("whatsapp-in"))
	var evs []bridge.Event
	for i := range 10 {
		evs = append(evs, &bridge.Typing{Chat: "c@s.whatsapp.net", Sender: bridge.UserID(string(rune('a' + i)))})
	}
	if err := b.push(evs...); err != nil {
		t.Fatal(err)
	}
	out := make(chan bridge.Event)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { b.deliver(ctx, out, log); close(done) }()
	for range 4 {
		ev := <-out
		if err := b.handled(ev); err != nil {
			t.Fatal(err)
		}
	}
	<-out // delivered, never handled: the crash comes first
	cancel()
	<-done // deliver flushes what was handled on its way out
	db.Close()

	db, err = store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	b = newInbox(db.Queue("whatsapp-in"))
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	go b.deliver(ctx, out, log)
	for i := 4; i < 10; i++ {
		select {
		case ev := <-out:
			if got := ev.(*bridge.Typing).Sender; got != evs[i].(*bridge.Typing).Sender {
				t.Fatalf("after restart got %s, want %s", got, evs[i].(*bridge.Typing).Sender)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("event %d not delivered again", i)
		}
	}
	select {
	case ev := <-out:
		t.Fatalf("unexpected %+v", ev)
	case <-time.After(200 * time.Millisecond):
	}
}
