package xmpp

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// recordSamples is stanzas of every form the bot queues.
func recordSamples(t testing.TB) [][]byte {
	t.Helper()
	ms := []Message{
		{ID: "wa-30e6928016823a76fe73", To: "owner@example.org", Body: "*Contact 454 (+491000000454)*: #46454 load", Markable: true},
		{ID: "wa-1", To: "room@muc.example.org", Type: "groupchat", Body: "hi", Markable: true},
		{ID: "wa-2", To: "owner@example.org", Body: "> quoted\nreply", Quote: "quoted", Reply: &Reply{To: "owner@example.org", ID: "x1"}},
		{ID: "wa-3", To: "owner@example.org", Body: "fixed", Replace: "wa-1"},
		{ID: "wa-4", To: "owner@example.org", Retract: "wa-1"},
		{ID: "wa-5", To: "owner@example.org", Reactions: &Reactions{ID: "wa-1", Emojis: []string{"👍", "❤"}}},
		{ID: "wa-6", To: "owner@example.org", Receipt: "o-1"},
		{ID: "wa-7", To: "owner@example.org", Displayed: "o-1"},
		{ID: "wa-8", To: "owner@example.org", ChatState: "composing"},
		{ID: "wa-9", To: "owner@example.org", Body: "https://up.example.org/a.jpg", Markable: true, OOB: &OOB{URL: "https://up.example.org/a.jpg"}},
		{ID: "wa-10", To: "owner@example.org", Body: "late\ttab\r\nlines", Delay: &Delay{Stamp: time.Unix(1e9, 0), From: "example.org"}},
	}
	var out [][]byte
	for _, m := range ms {
		b, err := EncodeMessage(m)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return append(out, []byte(`<presence to="room@muc.example.org/Bot"/>`), []byte(`<iq type="get" id="1"/>`), []byte("x"))
}

// TestRecordCompaction: every form of stanza comes back as it went in;
// the common chat message takes well under two thirds of its room, and
// every dictionary entry is used by some stanza (a misspelt one would
// never match and cost nothing but its code).
func TestRecordCompaction(t *testing.T) {
	used := make([]bool, len(recDict))
	for _, st := range recordSamples(t) {
		rec := record(time.Unix(5, 0), st)
		got, err := recordStanza(rec)
		if err != nil || !bytes.Equal(got, st) {
			t.Fatalf("%q: recorded %q, read back %q, %v", st, rec, got, err)
		}
		for _, c := range rec[8:] {
			if e := recEntry[c]; e != 0 && rec[8] == recCompact {
				used[e-1] = true
			}
		}
	}
	for i, u := range used {
		if !u {
			t.Errorf("no sample uses entry %q", recDict[i])
		}
	}
	chat := recordSamples(t)[0]
	if rec := record(time.Now(), chat); float64(len(rec)) > 0.6*float64(8+len(chat)) {
		t.Errorf("the chat message's record is %d bytes, its stanza %d: %q", len(rec), len(chat), rec)
	}
}

// TestRecordLegacy: a record written before compaction (the stanza as it
// is) reads as it is; a stanza holding a code byte is not compacted; a
// compacted record with an unknown code, or a short one, is an error.
func TestRecordLegacy(t *testing.T) {
	old := append([]byte("12345678"), `<message type="chat" to="o@x" id="1"><body>a</body></message>`...)
	if got, err := recordStanza(old); err != nil || string(got) != string(old[8:]) {
		t.Fatalf("legacy record: %q, %v", got, err)
	}
	odd := []byte("<message type=\"chat\" to=\"o@x\" id=\"1\"><body>\x01</body></message>")
	if rec := record(time.Now(), odd); rec[8] != '<' {
		t.Fatalf("a stanza with a code byte was compacted: %q", rec)
	}
	if _, err := recordStanza([]byte("12345678\x00\x01\x1f")); err == nil && len(recDict) < 28 {
		t.Fatal("an unknown code was read")
	}
	if _, err := recordStanza([]byte("1234567")); err == nil {
		t.Fatal("a short record was read")
	}
}

// FuzzRecord: whatever the stanza, its record reads back as it was, is
// never longer, and reading any bytes as a record never panics. (A
// stanza starting with a NUL, which XML forbids and nothing writes, would
// read as compacted: not a stanza to test.)
func FuzzRecord(f *testing.F) {
	for _, st := range recordSamples(f) {
		f.Add(st)
	}
	f.Add([]byte(strings.Repeat(`"/>`, 10)))
	f.Fuzz(func(t *testing.T, st []byte) {
		recordStanza(append([]byte("12345678"), st...))
		if len(st) > 0 && st[0] == recCompact {
			return
		}
		rec := record(time.Unix(1, 0), st)
		if len(rec) > 8+len(st) {
			t.Fatalf("record of %q is longer: %q", st, rec)
		}
		got, err := recordStanza(rec)
		if err != nil || !bytes.Equal(got, st) {
			t.Fatalf("%q: recorded %q, read back %q, %v", st, rec, got, err)
		}
	})
}
