package xmpp

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"waxmpp/bridge"
)

// FuzzDecode: arbitrary bytes never panic, and whatever decodes holds only
// clean text.
func FuzzDecode(f *testing.F) {
	for _, c := range decodeCases {
		f.Add([]byte(c.in))
	}
	for _, c := range encryptedStanzas {
		f.Add([]byte(c.xml))
	}
	golden, _ := filepath.Glob(filepath.Join("testdata", "codec", "*.xml"))
	for _, g := range golden {
		if b, err := os.ReadFile(g); err == nil {
			f.Add(b)
		}
	}
	small := Limits{MaxBytes: 512, MaxDepth: 4}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, l := range []Limits{DefaultLimits, small} {
			st, err := l.DecodeBytes(b)
			if err != nil {
				if st != nil {
					t.Fatalf("error %v with a stanza", err)
				}
				var de *DecodeError
				if errors.As(err, &de) && de.Error() == "" {
					t.Fatal("empty DecodeError")
				}
				continue
			}
			checkClean(t, reflect.ValueOf(st))
			if m, ok := st.(*Inbound); ok {
				for _, ns := range []string{NSReply, NSRetract, ""} {
					checkClean(t, reflect.ValueOf(m.BodyWithoutFallback(ns)))
				}
				// An encrypted message's body is a fallback: it never
				// becomes anything to send (text, correction, reaction,
				// retraction).
				if m.Sealed {
					switch ev := OwnerEvent(m, "", time.Time{}); ev.(type) {
					case *bridge.OwnerEncrypted, *bridge.OwnerDisplayed, *bridge.OwnerReceived:
					default:
						t.Fatalf("an encrypted message (%s) became %T", m.Encryption, ev)
					}
				}
			}
		}
	})
}

// checkClean fails if any string reachable from v would need Clean.
func checkClean(t *testing.T, v reflect.Value) {
	t.Helper()
	switch v.Kind() {
	case reflect.String:
		if s := v.String(); Clean(s) != s {
			t.Fatalf("unclean string %q", s)
		}
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			checkClean(t, v.Elem())
		}
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return // PayloadXML is XML, checked by the decoder itself
		}
		for i := range v.Len() {
			checkClean(t, v.Index(i))
		}
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			return
		}
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				checkClean(t, v.Field(i))
			}
		}
	}
}

// FuzzRoundTrip: a Message built from fuzzed strings encodes, decodes, and
// comes back with the same fields, text exactly equal after Clean.
func FuzzRoundTrip(f *testing.F) {
	f.Add("m1", "owner@example.org", "*Alice*: hello", "", "", "", "", "", "", "", "", uint16(0x3), int64(0))
	f.Add("m2", "owner@example.org", "*Bob*: ok", "Alice: see you 🙂\nat 5", "m1", "", "", "👍", "", "", "", uint16(0), int64(1709281800))
	f.Add("m3", "o@x", " ", "", "", "m1", "", "", "o1", "https://up.example.org/a.jpg", "photo", uint16(0x1f), int64(-1))
	f.Add("m4", "o@x", "", "q\x00", "r", "c", "m1", "", "", "", "", uint16(0xffff), int64(253402300799))
	f.Add("m\"5'<", "o@x\xff", "a <b> & \"c\" ]]> \x00\x01\x1b\uFFFE tab\tcr\rlf\n bad\xff end", "\n\n", "\x01", "", "", "", "", "", "", uint16(0x40), int64(0))
	// Found by fuzzing: a quote that cleans to nothing adds no fallback.
	f.Add("0", "0", "0", "\x00", "0", "0", "0", "0", "", "0", "0", uint16(12), int64(0))
	states := []string{"", StateActive, StateComposing, StatePaused, StateInactive, StateGone}
	f.Fuzz(func(t *testing.T, id, to, body, quote, replyID, replace, retract, emoji, receipt, url, desc string, flags uint16, stamp int64) {
		m := Message{ID: id, To: to, Body: body, Replace: replace, Retract: retract, Receipt: receipt,
			Markable: flags&1 != 0, ChatState: states[int(flags>>1)%len(states)]}
		if flags&0x10 != 0 {
			m.Displayed = receipt
		}
		if replyID != "" {
			m.Reply, m.Quote = &Reply{To: "bot@example.org/" + desc, ID: replyID}, quote
		}
		if flags&0x20 != 0 {
			m.Reactions = &Reactions{ID: replace + "r", Emojis: []string{emoji, desc}}
			if flags&0x40 != 0 {
				m.Reactions.Emojis = nil
			}
		}
		if url != "" {
			m.OOB = &OOB{URL: url, Desc: desc}
		}
		if flags&0x80 != 0 {
			// Years 0001–9999, which RFC 3339 can express.
			sec := stamp % (253402300800 - -62135596800)
			if sec < 0 {
				sec = -sec
			}
			m.Delay = &Delay{Stamp: time.Unix(sec-62135596800, int64(flags)*1000).UTC(), From: desc, Reason: quote}
		}
		b, err := EncodeMessage(m)
		if Clean(id) == "" || Clean(to) == "" {
			if err == nil {
				t.Fatalf("no error for empty id or to: %s", b)
			}
			return
		}
		if m.Reply != nil && Clean(replyID) == "" {
			if err == nil {
				t.Fatalf("no error for a reply without id: %s", b)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		// Fuzzed strings may exceed the default limits; those are tested elsewhere.
		st, err := Limits{MaxBytes: 1 << 24, MaxDepth: 32}.DecodeBytes(b)
		if err != nil {
			t.Fatalf("DecodeBytes(%s): %v", b, err)
		}
		got, ok := st.(*Inbound)
		if !ok {
			t.Fatalf("decoded %T", st)
		}

		// What the decoder must report.
		want := Inbound{ID: Clean(id), To: Clean(to), Type: "chat", OriginID: Clean(id), Replace: Clean(replace),
			Received: Clean(receipt), ChatState: m.ChatState}
		wantBody := Clean(body)
		if Clean(retract) != "" {
			want.Retract = &Retraction{ID: Clean(retract), Form: RetractV1}
			if wantBody == "" {
				wantBody = retractDefault
			}
		}
		full := wantBody
		if m.Reply != nil {
			want.Reply = &Reply{To: Clean(m.Reply.To), ID: Clean(replyID)}
			if q := strings.TrimRight(Clean(quote), "\n"); q != "" {
				full = quoteForTest(q) + wantBody
			}
		}
		if full != "" {
			want.Body, want.HasBody = full, true
		}
		if want.Retract == nil && want.Replace != "" && full == " " {
			want.Retract = &Retraction{ID: want.Replace, Form: RetractCorrection}
			want.Replace = ""
		}
		if m.Markable && full != "" && want.Retract.formOrZero() != RetractV1 {
			want.Markable = true
		}
		if m.Displayed != "" && Clean(receipt) != "" {
			want.Marker = &Marker{Kind: "displayed", ID: Clean(receipt)}
		}
		if m.Reactions != nil {
			want.Reactions = &Reactions{ID: Clean(m.Reactions.ID), Emojis: []string{}}
			for _, e := range m.Reactions.Emojis {
				want.Reactions.Emojis = append(want.Reactions.Emojis, Clean(e))
			}
		}
		if m.OOB != nil {
			want.OOB = &OOB{URL: Clean(url), Desc: Clean(desc)}
		}
		if m.Delay != nil {
			want.Delay = &Delay{Stamp: m.Delay.Stamp, From: Clean(desc), Reason: Clean(quote)}
		}

		if got.Body != want.Body || got.HasBody != want.HasBody {
			t.Fatalf("body %q (%v), want %q (%v)\n%s", got.Body, got.HasBody, want.Body, want.HasBody, b)
		}
		if w := wantBody; m.Reply != nil && got.BodyWithoutFallback(NSReply) != w {
			t.Fatalf("BodyWithoutFallback = %q, want %q\n%s", got.BodyWithoutFallback(NSReply), w, b)
		}
		if got.Delay != nil && want.Delay != nil && got.Delay.Stamp.Equal(want.Delay.Stamp) {
			got.Delay.Stamp = want.Delay.Stamp
		}
		got.Fallbacks = nil // checked through the body above
		if !reflect.DeepEqual(*got, want) {
			t.Fatalf("decoded\n got  %s\n want %s\nfrom %s", show(got), show(want), b)
		}
	})
}

func (r *Retraction) formOrZero() RetractForm {
	if r == nil {
		return 0
	}
	return r.Form
}

// quoteForTest is an independent statement of the reply fallback format:
// trailing newlines dropped, then "> line\n" per line.
func quoteForTest(q string) string {
	var b strings.Builder
	for _, line := range strings.Split(strings.TrimRight(q, "\n"), "\n") {
		b.WriteString("> " + line + "\n")
	}
	return b.String()
}
