package xmpp

import (
	"bytes"
	"encoding/xml"
	"regexp"
	"testing"
	"time"
)

// FuzzAppendEscaped: the writer escapes as xml.EscapeText does.
func FuzzAppendEscaped(f *testing.F) {
	for _, s := range []string{"", "plain", `a"b'c&d<e>f`, "\t\n\r", "\x00\x01", "\xff", "\ufffd", "\U0001F600", "\ufffe", "\ud7ff\ue000"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var want bytes.Buffer
		xml.EscapeText(&want, []byte(s))
		if got := appendEscaped([]byte("x"), s); string(got) != "x"+want.String() {
			t.Errorf("appendEscaped(%q) = %q, xml.EscapeText %q", s, got[1:], want.String())
		}
	})
}

var (
	refMessageTag   = regexp.MustCompile(`^<message\s[^>]*>`)
	refToOrTypeAttr = regexp.MustCompile(`\s(to|type)="([^"]*)"`)
)

// refRoomMessageTo is roomMessageTo as it was, with regular expressions.
func refRoomMessageTo(stanza []byte) string {
	var to, typ string
	for _, a := range refToOrTypeAttr.FindAllSubmatch(refMessageTag.Find(stanza), -1) {
		if string(a[1]) == "to" {
			to = string(a[2])
		} else {
			typ = string(a[2])
		}
	}
	if typ != "groupchat" {
		return ""
	}
	return bareJID(to)
}

// FuzzRoomMessageTo: the scan reads a stanza's room as the regular
// expressions did.
func FuzzRoomMessageTo(f *testing.F) {
	for _, s := range []string{
		`<message type="groupchat" to="Room@muc.example.org/x" id="1"><body>a</body></message>`,
		`<message to="a@b" type="chat">`, `<message type="groupchat">`, `<message  to="r@m"	type="groupchat" to="s@m">`,
		`<message type="groupchat" to="r@m`, `<message type="groupchat"to="r@m">`, `<message	to="x" type="groupchat"/>`,
		`<messagex type="groupchat" to="r@m">`, `<message type="x" type="groupchat" to=""x">`, `<message>`, `<message`, "",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, stanza []byte) {
		if got, want := roomMessageTo(stanza), refRoomMessageTo(stanza); got != want {
			t.Errorf("roomMessageTo(%q) = %q, the regular expressions %q", stanza, got, want)
		}
	})
}

// TestEncodeAllocs: a relayed message's outbox record is one allocation,
// and the writer's look at it for a room none.
func TestEncodeAllocs(t *testing.T) {
	m := Message{ID: "wa-0123456789abcdef0123", To: "owner@example.org", Body: "*Alice*: #12 lorem ipsum lorem ipsum lorem ipsum", Markable: true}
	now := time.Now()
	rec, err := recordMessage(now, m)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := EncodeMessage(m)
	if want := record(now, b); !bytes.Equal(rec, want) {
		t.Fatalf("recordMessage = %q, want %q", rec, want)
	}
	for _, c := range []struct {
		name string
		max  float64
		f    func()
	}{
		{"EncodeMessage", 1, func() { EncodeMessage(m) }},
		{"recordMessage", 1, func() { recordMessage(now, m) }},
		{"roomMessageTo", 0, func() { roomMessageTo(b) }},
		{"messageID", 0, func() { messageID(b) }},
	} {
		if got := testing.AllocsPerRun(100, c.f); got > c.max {
			t.Errorf("%s: %.0f allocations, want ≤ %.0f", c.name, got, c.max)
		}
	}
}

var refIDAttr = regexp.MustCompile(`^<message [^>]*\bid="([^"]+)"`)

// FuzzMessageID: the scan reads a stanza's id as the regular expression
// did.
func FuzzMessageID(f *testing.F) {
	for _, s := range []string{
		`<message type="chat" to="a@b" id="x1"><body>a</body></message>`, `<message id="" id="a">`, `<message xid="a" id="b"`,
		`<message id="a" id="b">`, `<message id="a>b">`, `<message  id="a"`, `<message>id="a"`, `<message id="a`, `<message "id="q">`,
		`<message to="x" id=""><x id="y"/>`, "<message id=\"a\"\n>", "",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, stanza []byte) {
		var want []byte
		if m := refIDAttr.FindSubmatch(stanza); m != nil {
			want = m[1]
		}
		if got := messageID(stanza); !bytes.Equal(got, want) || (got == nil) != (want == nil) {
			t.Errorf("messageID(%q) = %q, the regular expression %q", stanza, got, want)
		}
	})
}
