package store

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// v5Messages are the messages in testdata/v5.db (see TestMigrateV5), in
// the order they were recorded.
func v5Messages() []Message {
	t0 := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	alice, lid, group := "4917012345678@s.whatsapp.net", "99887766@lid", "120363012345678901@g.us"
	var ms []Message
	for i := range 20 {
		m := Message{
			WA:      MessageKey{Chat: alice, Sender: alice, ID: fmt.Sprintf("3EB0%016X", 0xA11CE00+i)},
			XMPPID:  fmt.Sprintf("wa-%020x", 0xFEED00+i),
			Excerpt: fmt.Sprintf("message %d from alice", i),
			Time:    t0.Add(time.Duration(i) * time.Minute),
		}
		switch i % 5 {
		case 1: // in the group, from alice under her LID
			m.WA.Chat, m.WA.Sender = group, lid
		case 2: // the owner's own, written in XMPP (a client's random id)
			m.WA.Sender = ""
			m.XMPPID = fmt.Sprintf("8b7a%04d-1c2d-4e5f-a6b7-c8d9e0f1a2b3", i)
		case 3: // in the group's room
			m.WA.Chat, m.WA.Sender = group, alice
			m.RoomID = fmt.Sprintf("room-stanza-%d", i)
			if i == 13 {
				m.RoomID = "-" // its copy had not come back
			}
		case 4: // a note about the chat: no WhatsApp id
			m.WA = MessageKey{Chat: alice}
			m.Excerpt = "Alice reacted 👍"
		}
		ms = append(ms, m)
	}
	// The same WhatsApp id again, in another chat, and a message with a
	// WhatsApp id only, under the LID.
	ms = append(ms,
		Message{WA: MessageKey{Chat: group, Sender: alice, ID: ms[0].WA.ID}, XMPPID: "wa-00000000000000000dup", Excerpt: "same id, other chat", Time: t0.Add(time.Hour)},
		Message{WA: MessageKey{Chat: lid, Sender: lid, ID: "ABCDEF0123"}, Excerpt: "under the lid", Time: t0.Add(2 * time.Hour)},
	)
	return ms
}

// encodeMessageV2 is a record as schema 2 to 5 wrote it: version 1, or 2
// with a room id.
func encodeMessageV2(m Message) []byte {
	e := enc{}
	ver := byte(msgRecordV1)
	if m.RoomID != "" {
		ver = msgRecordV2
	}
	e.b = append(e.b, ver)
	e.str(m.WA.Chat)
	e.str(m.WA.Sender)
	e.str(m.WA.ID)
	e.str(m.XMPPID)
	e.str(m.Excerpt)
	e.time(m.Time)
	if ver == msgRecordV2 {
		e.str(m.RoomID)
	}
	return e.b
}

// TestMigrateV5 opens testdata/v5.db, written by waxmpp at schema 5 (its
// message map in generations of 8 messages, with on-disk indexes; it
// cannot be written again, that code is gone), and checks that every
// message is found as before, by each of its ids, in order, and that the
// map goes on from there.
func TestMigrateV5(t *testing.T) {
	path := filepath.Join(t.TempDir(), "w.db")
	copyFile(t, filepath.Join("testdata", "v5.db"), path)
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if v, err := db.SchemaVersion(); v != SchemaVersion || err != nil {
		t.Errorf("SchemaVersion = %d, %v; want %d", v, err, SchemaVersion)
	}
	db.bolt.View(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketMessages) != nil {
			t.Error("the generations are still there after migration")
		}
		n := 0
		tx.Bucket(bucketMsgmap).ForEach(func(k, v []byte) error {
			n++
			if v[0] != msgRecordV3 {
				t.Errorf("record %x is version %d after migration", k, v[0])
			}
			return nil
		})
		if n != len(v5Messages()) {
			t.Errorf("%d records after migration, want %d", n, len(v5Messages()))
		}
		return nil
	})
	ms := v5Messages()
	same := func(got, want Message) bool {
		return got.WA == want.WA && got.XMPPID == want.XMPPID && got.Excerpt == want.Excerpt && got.Time.Equal(want.Time) && got.RoomID == want.RoomID
	}
	for i, want := range ms {
		if want.WA.ID != "" {
			got, err := db.MessageByWA(want.WA)
			if i == 0 {
				// The same id in another chat later does not hide it.
				got, err = db.MessageByWA(MessageKey{Chat: want.WA.Chat, ID: want.WA.ID})
			}
			if err != nil || !same(got, want) {
				t.Errorf("MessageByWA(%v) = %+v, %v; want %+v", want.WA, got, err, want)
			}
		}
		for _, id := range []string{want.XMPPID, roomKey(want)} {
			if id == "" {
				continue
			}
			if got, err := db.MessageByXMPP(id); err != nil || !same(got, want) {
				t.Errorf("MessageByXMPP(%s) = %+v, %v; want %+v", id, got, err, want)
			}
		}
	}
	// The LID is an alias of alice: her chat's messages, newest first.
	recent, err := db.RecentMessages("99887766@lid", 100)
	if err != nil {
		t.Fatal(err)
	}
	var want []Message
	for i := len(ms) - 1; i >= 0; i-- {
		if c := ms[i].WA.Chat; c == "4917012345678@s.whatsapp.net" || c == "99887766@lid" {
			want = append(want, ms[i])
		}
	}
	if len(recent) != len(want) {
		t.Fatalf("RecentMessages(alice) = %d messages, want %d", len(recent), len(want))
	}
	for i := range want {
		if !same(recent[i], want[i]) {
			t.Errorf("RecentMessages(alice)[%d] = %+v, want %+v", i, recent[i], want[i])
		}
	}
	if items, _ := db.Queue("xmpp-out").Peek(0, 10); len(items) != 1 || string(items[0].Data) != "<message id='q1'/>" {
		t.Errorf("the queue after migration: %v", items)
	}
	// The sequence goes on.
	if err := db.PutMessages(Message{XMPPID: "after", Time: time.Now()}); err != nil {
		t.Fatal(err)
	}
	db.bolt.View(func(tx *bolt.Tx) error {
		if k, _ := tx.Bucket(bucketMsgmap).Cursor().Last(); !bytes.Equal(k, seqKey(uint64(len(ms)+1))) {
			t.Errorf("the next message has key %x, want seq %d", k, len(ms)+1)
		}
		return nil
	})
	if err := checkInvariants(db); err != nil {
		t.Error(err)
	}
	if after, _ := os.ReadFile(filepath.Join("testdata", "v5.db")); !bytes.Equal(after, before) {
		t.Error("the golden file changed")
	}
}
