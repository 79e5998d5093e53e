package store

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"waxmpp/bridge"
)

// TestReadCacheFollowsWrites reads chats, invites and the route before and
// after every kind of write that changes them: each read must see the
// write, as without the cache.
func TestReadCacheFollowsWrites(t *testing.T) {
	db := openTest(t)
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	pn, lid := "491701234@s.whatsapp.net", "8877@lid"
	chat := func(id string) Chat {
		t.Helper()
		c, err := db.Chat(id)
		if err != nil {
			t.Fatalf("Chat(%s): %v", id, err)
		}
		return c
	}
	if _, err := db.Chat(pn); !errors.Is(err, ErrNotFound) || err.Error() != "store: chat "+pn+": not found" {
		t.Fatalf("Chat of a missing chat = %v, want ErrNotFound", err)
	}
	if _, err := db.PutChat(Chat{ID: pn, Kind: KindDirect, Name: "Dora"}); err != nil {
		t.Fatal(err)
	}
	if c := chat(pn); c.Name != "Dora" || c.Handle != "dora" {
		t.Fatalf("after PutChat: %+v", c)
	}
	if _, err := db.PutChat(Chat{ID: pn, Kind: KindDirect, Name: "Dora M"}); err != nil {
		t.Fatal(err)
	}
	if c := chat(pn); c.Name != "Dora M" {
		t.Errorf("after a second PutChat: %+v", c)
	}
	if err := db.Touch(pn, t0); err != nil {
		t.Fatal(err)
	}
	if c := chat(pn); !c.LastActivity.Equal(t0) {
		t.Errorf("after Touch: %+v", c)
	}
	if _, err := db.Queue("q").EnqueueWith(bridge.Record{Touch: map[string]time.Time{pn: t0.Add(time.Hour)}}, []byte("x")); err != nil {
		t.Fatal(err)
	}
	if c := chat(pn); !c.LastActivity.Equal(t0.Add(time.Hour)) {
		t.Errorf("after EnqueueWith's touch: %+v", c)
	}
	if _, err := db.SetHandle(pn, "dm"); err != nil {
		t.Fatal(err)
	}
	if c := chat(pn); c.Handle != "dm" {
		t.Errorf("after SetHandle: %+v", c)
	}

	// An alias, and a chat of its own merged in.
	if _, err := db.Chat(lid); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Chat(%s) before its alias = %v", lid, err)
	}
	if _, err := db.Invite(pn); !errors.Is(err, ErrNotFound) || err.Error() != "store: invite "+pn+": not found" {
		t.Fatalf("Invite before PutInvite = %v, want ErrNotFound", err)
	}
	if err := db.SetRoute(pn); err != nil {
		t.Fatal(err)
	}
	if id, ok, err := db.Route(); id != pn || !ok || err != nil {
		t.Fatalf("Route = %s %v %v", id, ok, err)
	}
	if _, err := db.PutChat(Chat{ID: lid, Kind: KindDirect, Name: "Dora L"}); err != nil {
		t.Fatal(err)
	}
	if err := db.PutInvite(Invite{Chat: lid, Address: "dora@example.org"}); err != nil {
		t.Fatal(err)
	}
	if c := chat(lid); c.ID != lid {
		t.Fatalf("Chat(%s) = %+v", lid, c)
	}
	if err := db.AddAlias(lid, pn); err != nil { // pn's chat merges into lid's
		t.Fatal(err)
	}
	if c := chat(pn); c.ID != lid {
		t.Errorf("Chat(%s) after AddAlias = %+v, want the chat %s", pn, c, lid)
	}
	if id, ok, _ := db.Route(); id != lid || !ok {
		t.Errorf("Route after AddAlias = %s %v, want %s", id, ok, lid)
	}
	if inv, err := db.Invite(pn); err != nil || inv.Address != "dora@example.org" {
		t.Errorf("Invite(%s) after AddAlias = %+v %v", pn, inv, err)
	}

	// Invites: a changed record, and the copy a caller may change.
	if err := db.PutInvite(Invite{Chat: lid, Sent: []time.Time{t0}}); err != nil {
		t.Fatal(err)
	}
	inv, err := db.Invite(lid)
	if err != nil || len(inv.Sent) != 1 || inv.Address != "" {
		t.Fatalf("Invite after PutInvite = %+v %v", inv, err)
	}
	inv.Sent[0] = t0.Add(time.Hour)
	if inv, _ := db.Invite(lid); !inv.Sent[0].Equal(t0) {
		t.Errorf("a caller's change of Sent reached the store's copy: %v", inv.Sent)
	}

	// The route through the generic settings too.
	if err := db.DeleteSetting(settingRoute); err != nil {
		t.Fatal(err)
	}
	if id, ok, err := db.Route(); id != "" || ok || err != nil {
		t.Errorf("Route after deleting the setting = %s %v %v", id, ok, err)
	}
	if err := PutSettingLater(db, settingRoute, pn); err != nil {
		t.Fatal(err)
	}
	if id, ok, _ := db.Route(); id != lid || !ok {
		t.Errorf("Route after PutSettingLater = %s %v, want %s", id, ok, lid)
	}
}

// TestReadCacheRace reads a chat while another goroutine renames it: once
// a rename returned, every later read sees it (run with -race).
func TestReadCacheRace(t *testing.T) {
	db := openTest(t)
	id := "1@s.whatsapp.net"
	if _, err := db.PutChat(Chat{ID: id, Kind: KindDirect, Name: "n0"}); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := db.Chat(id); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	for i := 1; i <= 50; i++ {
		want := fmt.Sprintf("n%d", i)
		if _, err := db.PutChat(Chat{ID: id, Kind: KindDirect, Name: want}); err != nil {
			t.Fatal(err)
		}
		if c, err := db.Chat(id); err != nil || c.Name != want {
			t.Fatalf("after renaming to %s: %+v %v", want, c, err)
		}
	}
	close(stop)
	wg.Wait()
}

// TestReadCacheAllocs: a cached read allocates nothing; a missing invite
// (most chats have none) or message (a new one) only its error.
func TestReadCacheAllocs(t *testing.T) {
	db := openTest(t)
	id := "1@s.whatsapp.net"
	if _, err := db.PutChat(Chat{ID: id, Kind: KindDirect, Name: "Dora"}); err != nil {
		t.Fatal(err)
	}
	if err := db.SetRoute(id); err != nil {
		t.Fatal(err)
	}
	if err := db.PutMessages(Message{WA: MessageKey{Chat: id, Sender: id, ID: "3EB0AABBCCEE"}, XMPPID: "wa-00"}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.MessageByWA(MessageKey{Chat: id, Sender: id, ID: "3EB0AABBCCDD"}); !errors.Is(err, ErrNotFound) || err.Error() != "store: message "+id+"/3EB0AABBCCDD: not found" {
		t.Errorf("MessageByWA of a new message = %v", err)
	}
	if _, err := db.MessageByXMPP("x1"); !errors.Is(err, ErrNotFound) || err.Error() != "store: message xmpp:x1: not found" {
		t.Errorf("MessageByXMPP of a new message = %v", err)
	}
	if m, err := db.MessageByXMPP("wa-00"); err != nil || m.WA.ID != "3EB0AABBCCEE" {
		t.Errorf("MessageByXMPP of a mapped message = %+v %v", m, err)
	}
	for _, c := range []struct {
		name string
		max  float64
		f    func()
	}{
		{"Chat", 0, func() { db.Chat(id) }},
		{"Route", 0, func() { db.Route() }},
		{"Invite (none)", 1, func() { db.Invite(id) }},
		{"MessageByWA (none)", 1, func() { db.MessageByWA(MessageKey{Chat: id, Sender: id, ID: "3EB0AABBCCDD"}) }},
		{"MessageByXMPP (none)", 1, func() { db.MessageByXMPP("8b7a0002-1c2d-4e5f-a6b7-c8d9e0f1a2b3") }},
	} {
		c.f() // fills the cache
		if got := testing.AllocsPerRun(100, c.f); got > c.max {
			t.Errorf("%s: %.0f allocations, want ≤ %.0f", c.name, got, c.max)
		}
	}
}
