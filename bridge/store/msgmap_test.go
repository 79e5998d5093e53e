package store

import (
	"bytes"
	"errors"
	"fmt"
	"math"
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

// TestMessageMapPrune: lookups find old messages, the newest duplicate id
// wins, pruning forgets old messages (from the index too) and the
// sequence goes on after everything was pruned.
func TestMessageMapPrune(t *testing.T) {
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
		t.Errorf("RecentMessages: %d, first %v last %v", len(ms), ms[0].WA.ID, ms[len(ms)-1].WA.ID)
	}
	// Now = t0+50h, keep 10h: messages 0..39 go.
	n, err := db.PruneMessages(t0.Add(50 * time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if n != 40 {
		t.Errorf("pruned %d, want 40", n)
	}
	for round := range 2 {
		if round == 1 {
			db = reopen(t, db)
		}
		for i := range 50 {
			_, err := db.MessageByXMPP(fmt.Sprint("x", i))
			if gone := errors.Is(err, ErrNotFound); gone != (i < 40 && i != 7) {
				t.Errorf("x%d: not found = %v after prune", i, gone)
			}
			_, err = db.MessageByWA(MessageKey{Chat: "c", Sender: "s", ID: fmt.Sprint("w", i)})
			if gone := errors.Is(err, ErrNotFound); gone != (i < 40) {
				t.Errorf("w%d: not found = %v after prune", i, gone)
			}
		}
		if ms, _ := db.RecentMessages("c", 100); len(ms) != 11 {
			t.Errorf("RecentMessages after prune: %d, want 11", len(ms))
		}
		if err := checkInvariants(db); err != nil {
			t.Error(err)
		}
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
	db.bolt.View(func(tx *bolt.Tx) error {
		if k, _ := tx.Bucket(bucketMsgmap).Cursor().Last(); !bytes.Equal(k, seqKey(52)) {
			t.Errorf("the message after pruning all has key %x, want seq 52", k)
		}
		return nil
	})
}

// TestPackedStrings: every string reads back as it was written; the ids
// WhatsApp and waxmpp make pack small.
func TestPackedStrings(t *testing.T) {
	for _, tt := range []struct {
		s    string
		size int // bytes packed; 0: not checked
	}{
		{"", 2},
		{"4917012345678@s.whatsapp.net", 9},
		{"120363012345678901@g.us", 11},
		{"99887766@lid", 6},
		{"status@broadcast", 0},
		{"3EB0A1B2C3D4E5F60718", 12},
		{"wa-0123456789abcdef0123", 12},
		{"wa-", 0}, {"@lid", 0}, {"wa-xyz", 0}, {"0", 3}, {"007", 3}, {"00000000000000000000", 0},
		{"3eb0A1", 0}, {"abc", 0}, {"8b7a0002-1c2d-4e5f-a6b7-c8d9e0f1a2b3", 0}, {"4917-1600000000@g.us", 0},
		{"12345678901234567890123@s.whatsapp.net", 0}, {"é@lid", 0}, {"-", 0}, {"room-stanza-3", 0},
	} {
		b := packStr(nil, tt.s)
		d := dec{b: b}
		if got := d.packed(); got != tt.s || d.err != "" || len(d.b) != 0 {
			t.Errorf("packed %q reads as %q (%s, %d left)", tt.s, got, d.err, len(d.b))
		}
		if tt.size != 0 && len(b) != tt.size {
			t.Errorf("packed %q is %d bytes, want %d", tt.s, len(b), tt.size)
		}
	}
}

func FuzzDecodeMessage(f *testing.F) {
	f.Add(encodeMessage(Message{WA: MessageKey{Chat: "c", Sender: "s", ID: "i"}, XMPPID: "x", Excerpt: "hi", Time: time.Unix(5, 0)}))
	f.Add([]byte{1})
	f.Add([]byte{1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	for _, m := range v5Messages() {
		f.Add(encodeMessage(m))
		f.Add(encodeMessageV2(m))
	}
	f.Fuzz(func(t *testing.T, v []byte) {
		m, err := decodeMessage([]byte("messages/00"), []byte("m1"), v)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), `messages/00/"m1"`) {
				t.Fatalf("error %v does not name the record", err)
			}
			return
		}
		rec := encodeMessage(m)
		m2, err := decodeMessage(nil, nil, rec)
		if err != nil || m2 != m {
			t.Fatalf("round trip: %+v, %v; want %+v", m2, err, m)
		}
		// The index reads a record's ids in place as a put packs them.
		ids, err := recordIDsOf(nil, nil, rec)
		if want := idsOf(m); err != nil || !bytes.Equal(ids.chat, want.chat) || !bytes.Equal(ids.wa, want.wa) || !bytes.Equal(ids.xmpp, want.xmpp) || !bytes.Equal(ids.room, want.room) {
			t.Fatalf("ids of %+v read as %q, %v; want %q", m, ids, err, want)
		}
	})
}

func FuzzPackStr(f *testing.F) {
	for _, s := range []string{"", "4917012345678@s.whatsapp.net", "wa-00ff", "3EB0AB", "007", "x@lid"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d := dec{b: packStr(nil, s)}
		if got := d.packed(); got != s || d.err != "" || len(d.b) != 0 {
			t.Fatalf("packed %q reads as %q (%s, %d left)", s, got, d.err, len(d.b))
		}
	})
}

// TestMessageRoomID: a message in a room is found by the id the room gave
// it as by its own XMPP id; a later record (the room's copy came back)
// wins; records of versions 1 and 2 read back as before; the pending
// marker names nothing.
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
	for _, m := range []Message{{XMPPID: "a", Time: t0}, {XMPPID: "a", Time: t0, RoomID: "r"}} {
		for _, b := range [][]byte{encodeMessage(m), encodeMessageV2(m)} {
			got, err := decodeMessage(nil, nil, b)
			if got.Time.Equal(m.Time) {
				got.Time = m.Time
			}
			if err != nil || got != m {
				t.Errorf("record of %+v, version %d: decoded %+v, %v", m, b[0], got, err)
			}
		}
	}
	for _, bad := range [][]byte{{3}, {4}, {3, 0, 0x7c}, {3, 0, 1, 20, 1}, {3, 0, 2, 0}} {
		if _, err := decodeMessage(nil, nil, bad); !errors.Is(err, ErrCorrupt) {
			t.Errorf("record %x decoded: %v", bad, err)
		}
	}
	if err := db.PutMessages(Message{XMPPID: "b", RoomID: "r\x00"}); err == nil {
		t.Error("a room id with NUL was stored")
	}
}

// TestPutMessagesLater: map entries put later cost no commit of their
// own, are found at once by every lookup (by the room id, by WhatsApp
// key, among the recent ones), are lost in a crash before the next
// commit, written by it (and indexed: found after a reopen), and by Close.
func TestPutMessagesLater(t *testing.T) {
	db := openTest(t)
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	k := MessageKey{Chat: "4917@s.whatsapp.net", Sender: "4917@s.whatsapp.net", ID: "W1"}
	first := Message{WA: k, XMPPID: "wa-1", Excerpt: "hi", Time: t0, RoomID: bridge.RoomPending}
	if err := db.PutMessages(first); err != nil {
		t.Fatal(err)
	}
	c0 := db.Commits()
	echo := first
	echo.RoomID = "room-77"
	if err := db.PutMessagesLater(echo); err != nil {
		t.Fatal(err)
	}
	if n := db.Commits() - c0; n != 0 {
		t.Errorf("PutMessagesLater committed %d times; want 0", n)
	}
	check := func(db *DB, when string) {
		t.Helper()
		if m, err := db.MessageByXMPP("room-77"); err != nil || m.RoomID != "room-77" || m.WA != k {
			t.Errorf("%s: MessageByXMPP(room id) = %+v, %v", when, m, err)
		}
		if m, err := db.MessageByWA(k); err != nil || m.RoomID != "room-77" {
			t.Errorf("%s: MessageByWA = %+v, %v; want the room id", when, m, err)
		}
		if r, err := db.RecentMessages(k.Chat, 1); err != nil || len(r) != 1 || r[0].RoomID != "room-77" {
			t.Errorf("%s: RecentMessages = %+v, %v", when, r, err)
		}
	}
	check(db, "before a commit")
	if _, err := crashCopy(t, db).MessageByXMPP("room-77"); !errors.Is(err, ErrNotFound) {
		t.Errorf("a crash now finds the room id: %v", err)
	}
	if err := PutSetting(db, "other", "x"); err != nil { // any commit
		t.Fatal(err)
	}
	check(crashCopy(t, db), "after the next commit, on disk")
	check(db, "after the next commit")

	// Close writes what waits.
	k2 := MessageKey{Chat: k.Chat, Sender: k.Sender, ID: "W2"}
	if err := db.PutMessagesLater(Message{WA: k2, XMPPID: "wa-2", RoomID: "room-78", Time: t0}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.MessageByWA(k2); err != nil {
		t.Errorf("a new message put later: %v", err)
	}
	db = reopen(t, db)
	if m, err := db.MessageByXMPP("room-78"); err != nil || m.WA != k2 {
		t.Errorf("after Close and a reopen: %+v, %v", m, err)
	}
	if m, err := db.MessageByWA(k); err != nil || m.RoomID != "room-77" {
		t.Errorf("after a reopen: MessageByWA = %+v, %v; want the room id", m, err)
	}
}

// TestIdIndex: the index's 32-bit entries, the seqs of a hash seen twice
// (newest first) and back to one entry when one goes, and a seq past 32
// bits, which only dup can hold.
func TestIdIndex(t *testing.T) {
	x := idIndex{one: map[uint32]uint32{}, dup: map[uint32][]uint64{}}
	h1, h2 := uint64(1)<<32, uint64(1) // fold alike
	if fold(h1) != fold(h2) {
		t.Fatal("fold")
	}
	got := func(h uint64) string { return fmt.Sprint(x.seqs(nil, h)) }
	x.add(h1, 7)
	x.add(h1, 7)
	if got(h1) != "[7]" || len(x.one) != 1 || len(x.dup) != 0 {
		t.Fatalf("one seq: %s, %v %v", got(h1), x.one, x.dup)
	}
	x.add(h2, 3)
	if got(h2) != "[7 3]" || len(x.one) != 0 {
		t.Fatalf("two: %s, %v %v", got(h2), x.one, x.dup)
	}
	x.remove(h1, 7)
	if got(h1) != "[3]" || len(x.one) != 1 || len(x.dup) != 0 {
		t.Fatalf("after remove: %s, %v %v", got(h1), x.one, x.dup)
	}
	x.remove(h1, 9) // not held
	big := uint64(math.MaxUint32) + 5
	x.add(99, big)
	if got(99) != fmt.Sprintf("[%d]", big) {
		t.Fatalf("seq past 32 bits: %s", got(99))
	}
	x.add(99, 4)
	x.remove(99, 4)
	if got(99) != fmt.Sprintf("[%d]", big) || len(x.dup) != 1 {
		t.Fatalf("seq past 32 bits, after remove: %s, %v", got(99), x.dup)
	}
	x.remove(99, big)
	x.remove(h1, 3)
	if len(x.one)+len(x.dup) != 0 {
		t.Fatalf("left: %v %v", x.one, x.dup)
	}
}

// TestMessageMapCollision: two WhatsApp ids whose hashes fold alike under
// the file's index are each found, as themselves, and a third id under
// that hash is not.
func TestMessageMapCollision(t *testing.T) {
	db := openTest(t)
	ix, err := db.index()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[uint32]string{}
	var a, b string
	for i := 0; b == ""; i++ { // about 77,000 ids for a pair
		id := fmt.Sprintf("3EB0%08X", i)
		k := fold(ix.hash(id))
		if o, ok := seen[k]; ok {
			a, b = o, id
		}
		seen[k] = id
	}
	chat := "4917@s.whatsapp.net"
	if err := db.PutMessages(Message{WA: MessageKey{Chat: chat, Sender: chat, ID: a}, XMPPID: "xa"},
		Message{WA: MessageKey{Chat: chat, Sender: chat, ID: b}, XMPPID: "xb"}); err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]string{a: "xa", b: "xb"} {
		m, err := db.MessageByWA(MessageKey{Chat: chat, Sender: chat, ID: id})
		if err != nil || m.XMPPID != want {
			t.Errorf("MessageByWA(%s) = %v, %v; want %s", id, m, err, want)
		}
	}
	if _, err := db.MessageByWA(MessageKey{Chat: chat, Sender: chat, ID: "3EB0NONE"}); !errors.Is(err, ErrNotFound) {
		t.Errorf("an id not mapped: %v", err)
	}
}
