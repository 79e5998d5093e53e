package store

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"waxmpp/bridge"

	bolt "go.etcd.io/bbolt"
)

func TestMessageMap(t *testing.T) {
	db := openTest(t)
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	pn, lid := "4917@s.whatsapp.net", "77@lid"
	if _, err := db.PutChat(Chat{ID: pn, Kind: KindDirect, Name: "Dora"}); err != nil {
		t.Fatal(err)
	}
	ms := []Message{
		{WA: MessageKey{Chat: pn, Sender: pn, ID: "W1"}, XMPPID: "x1", Excerpt: "hello there", Time: t0},
		{WA: MessageKey{Chat: lid, Sender: lid, ID: "W2"}, XMPPID: "x2", Excerpt: "stored under the lid", Time: t0.Add(time.Minute)},
		{WA: MessageKey{Chat: "g@g.us", Sender: pn, ID: "W1"}, XMPPID: "x3", Excerpt: "same id, other chat", Time: t0.Add(2 * time.Minute)},
		{WA: MessageKey{Chat: "g@g.us", Sender: "me", ID: "W4"}, Excerpt: strings.Repeat("é", 100), Time: t0.Add(3 * time.Minute)},
		{XMPPID: "x5", Excerpt: "from the owner, not yet sent", Time: t0.Add(4 * time.Minute)},
	}
	if err := db.PutMessages(ms...); err != nil {
		t.Fatal(err)
	}
	// The LID becomes an alias after its messages were stored.
	if err := db.AddAlias(pn, lid); err != nil {
		t.Fatal(err)
	}
	db = reopen(t, db)
	byWA := []struct {
		key  MessageKey
		want string // XMPP id, or "" for not found
	}{
		{MessageKey{Chat: pn, Sender: pn, ID: "W1"}, "x1"},
		{MessageKey{Chat: pn, Sender: "", ID: "W1"}, "x1"},
		{MessageKey{Chat: lid, Sender: lid, ID: "W1"}, "x1"},
		{MessageKey{Chat: "g@g.us", Sender: pn, ID: "W1"}, "x3"},
		{MessageKey{Chat: "g@g.us", Sender: lid, ID: "W1"}, "x3"},
		{MessageKey{Chat: pn, Sender: pn, ID: "W2"}, "x2"},
		{MessageKey{Chat: pn, Sender: "other", ID: "W1"}, ""},
		{MessageKey{Chat: "h@g.us", Sender: pn, ID: "W1"}, ""},
		{MessageKey{Chat: pn, Sender: pn, ID: "W9"}, ""},
	}
	for _, tt := range byWA {
		m, err := db.MessageByWA(tt.key)
		if tt.want == "" {
			if !errors.Is(err, ErrNotFound) {
				t.Errorf("MessageByWA(%v) = %v, %v; want ErrNotFound", tt.key, m, err)
			}
			continue
		}
		if err != nil || m.XMPPID != tt.want {
			t.Errorf("MessageByWA(%v) = %q, %v; want %q", tt.key, m.XMPPID, err, tt.want)
		}
	}
	for _, want := range ms {
		if want.XMPPID == "" {
			continue
		}
		m, err := db.MessageByXMPP(want.XMPPID)
		if err != nil {
			t.Fatal(err)
		}
		if m.WA != want.WA || m.Excerpt != want.Excerpt || !m.Time.Equal(want.Time) {
			t.Errorf("MessageByXMPP(%s) = %+v, want %+v", want.XMPPID, m, want)
		}
	}
	if _, err := db.MessageByXMPP("nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("MessageByXMPP(nope) = %v, want ErrNotFound", err)
	}
	m, _ := db.MessageByWA(MessageKey{Chat: "g@g.us", Sender: "me", ID: "W4"})
	if len(m.Excerpt) != MaxExcerpt || m.Excerpt != strings.Repeat("é", MaxExcerpt/2) {
		t.Errorf("excerpt of %d bytes, want %d whole characters", len(m.Excerpt), MaxExcerpt)
	}
	recent := []struct {
		chat string
		n    int
		want string
	}{
		{pn, 10, "x2 x1"},
		{lid, 10, "x2 x1"},
		{pn, 1, "x2"},
		{"g@g.us", 10, " x3"},
		{"", 3, "x5  x3"},
		{"nobody", 10, ""},
	}
	for _, tt := range recent {
		ms, err := db.RecentMessages(tt.chat, tt.n)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, m := range ms {
			ids = append(ids, m.XMPPID)
		}
		if got := strings.Join(ids, " "); got != tt.want {
			t.Errorf("RecentMessages(%q, %d) = %q, want %q", tt.chat, tt.n, got, tt.want)
		}
	}
	for _, bad := range []Message{{}, {WA: MessageKey{ID: "a\x00b"}}} {
		if err := db.PutMessages(bad); err == nil {
			t.Errorf("PutMessages(%+v): no error", bad)
		}
	}
}

// TestMessageGenerations crosses several generations: lookups find messages
// in old generations, the newest duplicate id wins, and pruning drops old
// generations whole and old messages in a mixed one.
func TestMessageGenerations(t *testing.T) {
	defer func(g uint64) { genSize = g }(genSize)
	genSize = 8
	db, err := Open(t.TempDir()+"/w.db", Options{MessageMaxAge: 10 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	for i := range 50 {
		m := Message{WA: MessageKey{Chat: "c", Sender: "s", ID: fmt.Sprint("w", i)}, XMPPID: fmt.Sprint("x", i), Time: t0.Add(time.Duration(i) * time.Hour)}
		if err := db.PutMessages(m); err != nil {
			t.Fatal(err)
		}
	}
	// Id x7 again, later: the newest wins.
	if err := db.PutMessages(Message{WA: MessageKey{Chat: "c", Sender: "s", ID: "again"}, XMPPID: "x7", Time: t0.Add(49 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if m, err := db.MessageByXMPP("x7"); err != nil || m.WA.ID != "again" {
		t.Errorf("MessageByXMPP(x7) = %v, %v; want the newer one", m.WA.ID, err)
	}
	if m, err := db.MessageByWA(MessageKey{Chat: "c", Sender: "s", ID: "w3"}); err != nil || m.XMPPID != "x3" {
		t.Errorf("MessageByWA(w3) = %v, %v", m.XMPPID, err)
	}
	if ms, _ := db.RecentMessages("c", 20); len(ms) != 20 || ms[0].WA.ID != "again" || ms[19].WA.ID != "w31" {
		t.Errorf("RecentMessages across generations: %d, first %v last %v", len(ms), ms[0].WA.ID, ms[len(ms)-1].WA.ID)
	}
	// Now = t0+50h, keep 10h: messages 0..39 go.
	n, err := db.PruneMessages(t0.Add(50 * time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if n != 40 {
		t.Errorf("pruned %d, want 40", n)
	}
	for i := range 50 {
		_, err := db.MessageByXMPP(fmt.Sprint("x", i))
		if gone := errors.Is(err, ErrNotFound); gone != (i < 40 && i != 7) {
			t.Errorf("x%d: not found = %v after prune", i, gone)
		}
	}
	var gens int
	db.bolt.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMessages).ForEachBucket(func([]byte) error { gens++; return nil })
	})
	if gens != 2 { // 40..47 and the partly filled 48..50
		t.Errorf("%d generations left, want 2", gens)
	}
	// Prune everything, then keep writing: the sequence goes on.
	if _, err := db.PruneMessages(t0.Add(1000 * time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := db.PutMessages(Message{XMPPID: "late", Time: t0}); err != nil {
		t.Fatal(err)
	}
	if m, err := db.MessageByXMPP("late"); err != nil || m.XMPPID != "late" {
		t.Errorf("after pruning all: %v, %v", m, err)
	}
}

func FuzzDecodeMessage(f *testing.F) {
	f.Add(encodeMessage(Message{WA: MessageKey{Chat: "c", Sender: "s", ID: "i"}, XMPPID: "x", Excerpt: "hi", Time: time.Unix(5, 0)}))
	f.Add([]byte{1})
	f.Add([]byte{1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, v []byte) {
		m, err := decodeMessage([]byte("messages/00"), []byte("m1"), v)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), `messages/00/"m1"`) {
				t.Fatalf("error %v does not name the record", err)
			}
			return
		}
		m2, err := decodeMessage(nil, nil, encodeMessage(m))
		if err != nil || m2 != m {
			t.Fatalf("round trip: %+v, %v; want %+v", m2, err, m)
		}
	})
}

// TestMessageRoomID: a message in a room is found by the id the room gave
// it as by its own XMPP id; a later record (the room's copy came back)
// wins; records without a room id stay version 1 and read back as before;
// the pending marker names nothing.
func TestMessageRoomID(t *testing.T) {
	db := openTest(t)
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	k := MessageKey{Chat: "4917@s.whatsapp.net", Sender: "4917@s.whatsapp.net", ID: "W1"}
	if err := db.PutMessages(
		Message{WA: k, XMPPID: "wa-1", Excerpt: "hi", Time: t0, RoomID: bridge.RoomPending},
		Message{WA: MessageKey{Chat: k.Chat, ID: "W2"}, XMPPID: "own-2", Time: t0},
	); err != nil {
		t.Fatal(err)
	}
	if _, err := db.MessageByXMPP(bridge.RoomPending); !errors.Is(err, ErrNotFound) {
		t.Errorf("MessageByXMPP(pending marker) = %v, want ErrNotFound", err)
	}
	if m, err := db.MessageByXMPP("wa-1"); err != nil || m.RoomID != bridge.RoomPending {
		t.Errorf("before the room's copy: %+v, %v", m, err)
	}
	if err := db.PutMessages(Message{WA: k, XMPPID: "wa-1", Excerpt: "hi", Time: t0, RoomID: "room-77"}); err != nil {
		t.Fatal(err)
	}
	db = reopen(t, db)
	for _, id := range []string{"wa-1", "room-77"} {
		m, err := db.MessageByXMPP(id)
		if err != nil || m.XMPPID != "wa-1" || m.RoomID != "room-77" || m.WA != k {
			t.Errorf("MessageByXMPP(%s) = %+v, %v; want wa-1 in room as room-77", id, m, err)
		}
	}
	if m, err := db.MessageByWA(k); err != nil || m.RoomID != "room-77" {
		t.Errorf("MessageByWA = %+v, %v; want the newest record, with the room id", m, err)
	}
	if m, err := db.MessageByXMPP("own-2"); err != nil || m.RoomID != "" {
		t.Errorf("a message outside rooms = %+v, %v", m, err)
	}
	// Version 1 stays version 1; version 2 carries the room id.
	for _, m := range []Message{{XMPPID: "a", Time: t0}, {XMPPID: "a", Time: t0, RoomID: "r"}} {
		b := encodeMessage(m)
		want := byte(msgRecordV1)
		if m.RoomID != "" {
			want = msgRecordV2
		}
		got, err := decodeMessage(nil, nil, b)
		if got.Time.Equal(m.Time) {
			got.Time = m.Time
		}
		if b[0] != want || err != nil || got != m {
			t.Errorf("record of %+v: version %d, decoded %+v, %v", m, b[0], got, err)
		}
	}
	if _, err := decodeMessage(nil, nil, []byte{3}); err == nil {
		t.Error("record version 3 decoded")
	}
	if err := db.PutMessages(Message{XMPPID: "b", RoomID: "r\x00"}); err == nil {
		t.Error("a room id with NUL was stored")
	}
}
