package store

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestHandleBase(t *testing.T) {
	tests := []struct{ name, want string }{
		{"Alice", "alice"},
		{"Alice Smith", "alicesmith"},
		{"Zoë Ñúñez", "zoenunez"},
		{"Family 🏡", "family"},
		{"2024 Trip", "trip"},
		{"Trip 2024", "trip2024"},
		{"Ölçek", "olcek"},
		{"Мама", ""},
		{"", ""},
		{"A very long group name indeed", "averylonggroupna"},
	}
	for _, tt := range tests {
		if got := HandleBase(tt.name); got != tt.want {
			t.Errorf("HandleBase(%q) = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestHandleAllocation(t *testing.T) {
	db := openTest(t)
	puts := []struct {
		id, name string
		kind     ChatKind
		want     string
	}{
		{"1@s.whatsapp.net", "Alice", KindDirect, "alice"},
		{"2@g.us", "Family", KindGroup, "family"},
		{"3@s.whatsapp.net", "alice", KindDirect, "alice2"},
		{"4@s.whatsapp.net", "Alice!", KindDirect, "alice3"},
		{"5@s.whatsapp.net", "Мама", KindDirect, "contact"},
		{"6@g.us", "中文", KindGroup, "group"},
		{"7@s.whatsapp.net", "", KindDirect, "contact2"},
		{"status@broadcast", "", KindStatus, "status"},
		{"8@s.whatsapp.net", "A very long group name indeed", KindDirect, "averylonggroupna"},
		{"9@s.whatsapp.net", "A very long group name indeed", KindDirect, "averylonggroupn2"},
		{"1@s.whatsapp.net", "Alice Renamed", KindDirect, "alice"}, // keeps its handle
	}
	for _, p := range puts {
		c, err := db.PutChat(Chat{ID: p.id, Name: p.name, Kind: p.kind})
		if err != nil {
			t.Fatal(err)
		}
		if c.Handle != p.want {
			t.Errorf("PutChat(%s %q) handle = %q, want %q", p.id, p.name, c.Handle, p.want)
		}
		got, err := db.ChatByHandle(p.want)
		if err != nil || got.ID != p.id {
			t.Errorf("ChatByHandle(%q) = %s, %v; want %s", p.want, got.ID, err, p.id)
		}
	}
	// A new handle for chat 1 keeps "alice" reserved for it.
	if _, err := db.SetHandle("1@s.whatsapp.net", "ally"); err != nil {
		t.Fatal(err)
	}
	if c, _ := db.PutChat(Chat{ID: "10@s.whatsapp.net", Name: "Alice", Kind: KindDirect}); c.Handle != "alice4" {
		t.Errorf("new Alice after rename got %q, want alice4 (alice stays reserved)", c.Handle)
	}
	if c, _ := db.ChatByHandle("alice"); c.ID != "1@s.whatsapp.net" || c.Handle != "ally" {
		t.Errorf("ChatByHandle(alice) = %s %s, want 1@s.whatsapp.net ally", c.ID, c.Handle)
	}
	for _, h := range []string{"family", "Bad", "", "9lives", strings.Repeat("a", 17)} {
		if _, err := db.SetHandle("3@s.whatsapp.net", h); err == nil {
			t.Errorf("SetHandle(%q): no error", h)
		}
	}
	if _, err := db.SetHandle("3@s.whatsapp.net", "family"); !errors.Is(err, ErrHandleTaken) {
		t.Errorf("SetHandle(taken) = %v, want ErrHandleTaken", err)
	}
	if _, err := db.ChatByHandle("nobody"); !errors.Is(err, ErrNotFound) {
		t.Errorf("ChatByHandle(nobody) = %v, want ErrNotFound", err)
	}
}

// TestHandlesDeterministic: the same puts in the same order give the same
// handles in a fresh file.
func TestHandlesDeterministic(t *testing.T) {
	names := []string{"Bob", "bob", "Bob", "Team", "team", "", "Bob"}
	var runs [2][]string
	for r := range runs {
		db := openTest(t)
		for i, n := range names {
			c, err := db.PutChat(Chat{ID: string(rune('a'+i)) + "@s.whatsapp.net", Name: n, Kind: KindDirect})
			if err != nil {
				t.Fatal(err)
			}
			runs[r] = append(runs[r], c.Handle)
		}
	}
	if strings.Join(runs[0], ",") != strings.Join(runs[1], ",") {
		t.Errorf("handles differ between runs: %v and %v", runs[0], runs[1])
	}
	if got, want := strings.Join(runs[0], ","), "bob,bob2,bob3,team,team2,contact,bob4"; got != want {
		t.Errorf("handles = %s, want %s", got, want)
	}
}

func TestChatFieldsAndOrder(t *testing.T) {
	db := openTest(t)
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	in := []Chat{
		{ID: "a@s.whatsapp.net", Kind: KindDirect, Name: "A", LastActivity: t0},
		{ID: "b@g.us", Kind: KindGroup, Name: "B", LastActivity: t0.Add(time.Hour), MutedUntil: t0.Add(24 * time.Hour)},
		{ID: "c@broadcast", Kind: KindBroadcast, Name: "C"},
	}
	for _, c := range in {
		if _, err := db.PutChat(c); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Touch("a@s.whatsapp.net", t0.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := db.Touch("b@g.us", t0); err != nil { // earlier: ignored
		t.Fatal(err)
	}
	db = reopen(t, db)
	cs, err := db.Chats()
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, c := range cs {
		order = append(order, c.ID)
	}
	if got, want := strings.Join(order, " "), "a@s.whatsapp.net b@g.us c@broadcast"; got != want {
		t.Errorf("Chats order = %s, want %s", got, want)
	}
	b, err := db.Chat("b@g.us")
	if err != nil {
		t.Fatal(err)
	}
	if b.Kind != KindGroup || b.Name != "B" || !b.MutedUntil.Equal(t0.Add(24*time.Hour)) || !b.LastActivity.Equal(t0.Add(time.Hour)) {
		t.Errorf("Chat(b) = %+v", b)
	}
	// A put without LastActivity keeps the stored one.
	if _, err := db.PutChat(Chat{ID: "b@g.us", Kind: KindGroup, Name: "B2"}); err != nil {
		t.Fatal(err)
	}
	if b, _ := db.Chat("b@g.us"); b.Name != "B2" || !b.LastActivity.Equal(t0.Add(time.Hour)) {
		t.Errorf("after rename: %+v", b)
	}
	for _, bad := range []Chat{{ID: "", Kind: KindDirect}, {ID: "x", Kind: 0}, {ID: "x", Kind: 9}} {
		if _, err := db.PutChat(bad); err == nil {
			t.Errorf("PutChat(%+v): no error", bad)
		}
	}
	if _, err := db.Chat("nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Chat(nope) = %v, want ErrNotFound", err)
	}
	if err := db.Touch("nope", t0); !errors.Is(err, ErrNotFound) {
		t.Errorf("Touch(nope) = %v, want ErrNotFound", err)
	}
}

func TestAliases(t *testing.T) {
	db := openTest(t)
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	pn, lid, lid2 := "491701234@s.whatsapp.net", "8877@lid", "9999@lid"
	if _, err := db.PutChat(Chat{ID: pn, Kind: KindDirect, Name: "Dora", LastActivity: t0}); err != nil {
		t.Fatal(err)
	}
	// A chat created under the LID before the mapping was known.
	if _, err := db.PutChat(Chat{ID: lid, Kind: KindDirect, Name: "Dora L", LastActivity: t0.Add(time.Hour), MutedUntil: t0.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := db.AddAlias(pn, lid); err != nil {
		t.Fatal(err)
	}
	if err := db.AddAlias(lid, lid2); err != nil { // via an alias
		t.Fatal(err)
	}
	for _, id := range []string{pn, lid, lid2} {
		c, err := db.Chat(id)
		if err != nil {
			t.Fatal(err)
		}
		if c.ID != pn || c.Name != "Dora" || !c.LastActivity.Equal(t0.Add(time.Hour)) || !c.MutedUntil.Equal(t0.Add(time.Hour)) {
			t.Errorf("Chat(%s) = %+v, want the merged chat %s", id, c, pn)
		}
	}
	for _, h := range []string{"dora", "doral"} {
		if c, err := db.ChatByHandle(h); err != nil || c.ID != pn {
			t.Errorf("ChatByHandle(%s) = %s, %v; want %s", h, c.ID, err, pn)
		}
	}
	cs, _ := db.Chats()
	if len(cs) != 1 {
		t.Errorf("%d chats after merge, want 1", len(cs))
	}
	as, _ := db.Aliases(lid2)
	if got, want := strings.Join(as, " "), lid+" "+lid2; got != want {
		t.Errorf("Aliases = %s, want %s", got, want)
	}
	// Putting under an alias updates the canonical chat.
	if c, _ := db.PutChat(Chat{ID: lid, Kind: KindDirect, Name: "Dora M"}); c.ID != pn || c.Handle != "dora" {
		t.Errorf("PutChat via alias = %+v", c)
	}
	if err := db.AddAlias("missing", "x@lid"); !errors.Is(err, ErrNotFound) {
		t.Errorf("AddAlias to a missing chat = %v, want ErrNotFound", err)
	}
	if err := db.AddAlias(pn, pn); err != nil {
		t.Errorf("AddAlias(id, id) = %v", err)
	}
	if _, err := db.Chat(pn); err != nil {
		t.Errorf("chat lost after AddAlias(id, id): %v", err)
	}
}

func FuzzDecodeChat(f *testing.F) {
	f.Add(encodeChat(Chat{Kind: KindGroup, Name: "Family", Handle: "family", LastActivity: time.Unix(1, 2)}))
	f.Add([]byte{})
	f.Add([]byte{1, 9})
	f.Fuzz(func(t *testing.T, v []byte) {
		c, err := decodeChat(bucketChats, []byte("id"), v)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), `chats/"id"`) {
				t.Fatalf("error %v does not name the record", err)
			}
			return
		}
		c2, err := decodeChat(bucketChats, []byte("id"), encodeChat(c))
		if err != nil || c2 != c {
			t.Fatalf("round trip: %+v, %v; want %+v", c2, err, c)
		}
	})
}

func TestDecodeChatErrors(t *testing.T) {
	good := encodeChat(Chat{Kind: KindDirect, Name: "Alice", Handle: "alice"})
	for i := range len(good) {
		if _, err := decodeChat(bucketChats, []byte("k"), good[:i]); !errors.Is(err, ErrCorrupt) {
			t.Errorf("truncated to %d bytes: err = %v, want ErrCorrupt", i, err)
		}
	}
	if _, err := decodeChat(bucketChats, []byte("k"), append([]byte{2}, good[1:]...)); !errors.Is(err, ErrCorrupt) {
		t.Errorf("unknown version: err = %v, want ErrCorrupt", err)
	}
}
