package bridge

import (
	"reflect"
	"testing"
	"time"
)

func sampleEvents() []Event {
	at := time.Date(2026, 11, 22, 9, 30, 0, 0, time.UTC)
	ref := MsgRef{Chat: "491701234567@s.whatsapp.net", Sender: "491701234567@s.whatsapp.net", ID: "3EB0A1"}
	return []Event{
		&Message{Ref: ref, Time: at, PushName: "Alice", Kind: Image, Text: "caption *bold*", Mentions: []UserID{"1@lid"},
			ReplyTo: &MsgRef{Chat: ref.Chat, ID: "X", FromMe: true}, QuotedText: "q", Media: &Media{MimeType: "image/jpeg", Size: 42, Handle: "h"},
			Location: &Geo{Lat: 52.5, Lon: 13.4, Name: "Berlin"}, Contacts: []Contact{{Name: "Bob", Numbers: []string{"+4917"}}},
			Poll: &PollInfo{Question: "?", Options: []string{"a", "b"}, Selectable: 1}, Forwarded: true, History: true, Retry: true},
		&Edit{Ref: ref, Time: at, Text: "new"},
		&Revoke{Ref: ref, By: "x@lid", Time: at},
		&Reaction{Target: ref, Sender: "s", FromMe: true, Emoji: "👍", Time: at},
		&PollVote{Poll: ref, Voter: "v", Options: []string{"a"}, Time: at},
		&Receipt{Chat: ref.Chat, By: "b", IDs: []string{"1", "2"}, Kind: Read, Time: at},
		&Typing{Chat: ref.Chat, Sender: "s", State: Recording},
		&Presence{User: "u", Online: true, LastSeen: at},
		&Call{Chat: ref.Chat, From: "f", ID: "c", Video: true, Kind: CallMissed, Time: at},
		&GroupChange{Chat: "1@g.us", Actor: "a", Kind: GroupSubject, Users: []UserID{"u"}, Subject: "S", Text: "T", Time: at},
		&Undecryptable{Ref: ref, Time: at},
		&ContactInfo{User: "u", FullName: "Alice Liddell", FirstName: "Alice", PushName: "Al", BusinessName: "B"},
		&ChatInfo{Chat: "1@g.us", Kind: Group, Name: "Family", MutedUntil: at},
		&Alias{LID: "1@lid", Phone: "4917@s.whatsapp.net"},
		&Status{State: TempBanned, Reason: "r", Until: at, PhoneLastSeen: at},
		&PairCode{QR: "2@abc", LinkCode: "ABCD-EFGH", Expires: at},
		&PairResult{OK: true, ID: "4917@s.whatsapp.net", Name: "Me", Err: ""},
	}
}

func TestEventCodecRoundTrip(t *testing.T) {
	for _, ev := range sampleEvents() {
		b, err := MarshalEvent(ev)
		if err != nil {
			t.Fatalf("marshal %T: %v", ev, err)
		}
		got, err := UnmarshalEvent(b)
		if err != nil {
			t.Fatalf("unmarshal %s: %v", b, err)
		}
		if !reflect.DeepEqual(got, ev) {
			t.Errorf("round trip of %T:\n got  %+v\n want %+v", ev, got, ev)
		}
	}
}

// TestEventCodecCoversAllTypes: every Event type has a record name and a
// sample above, so a new event type cannot silently miss the queue.
func TestEventCodecCoversAllTypes(t *testing.T) {
	samples := map[string]bool{}
	for _, ev := range sampleEvents() {
		name, ok := eventName(ev)
		if !ok {
			t.Errorf("%T has no record name", ev)
		}
		samples[name] = true
	}
	for name := range eventTypes {
		if !samples[name] {
			t.Errorf("event type %s has no sample in sampleEvents", name)
		}
	}
}

func TestUnmarshalEventErrors(t *testing.T) {
	for _, in := range []string{``, `{}`, `{"t":"nope","e":{}}`, `{"t":"message"}`, `{"t":"message","e":[1]}`, `not json`} {
		if ev, err := UnmarshalEvent([]byte(in)); err == nil {
			t.Errorf("UnmarshalEvent(%q) = %v, want an error", in, ev)
		}
	}
}

func FuzzUnmarshalEvent(f *testing.F) {
	for _, ev := range sampleEvents() {
		b, _ := MarshalEvent(ev)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, err := UnmarshalEvent(b)
		if err != nil {
			return
		}
		// What decodes re-encodes and decodes to the same value.
		b2, err := MarshalEvent(ev)
		if err != nil {
			t.Fatalf("re-marshal %T: %v", ev, err)
		}
		ev2, err := UnmarshalEvent(b2)
		if err != nil || !reflect.DeepEqual(ev, ev2) {
			t.Fatalf("unstable: %+v vs %+v (%v)", ev, ev2, err)
		}
	})
}
