package whatsapp

import (
	"reflect"
	"testing"
	"time"

	"waxmpp/bridge"
)

func sampleEvents() []bridge.Event {
	at := time.Date(2026, 11, 22, 9, 30, 0, 0, time.UTC)
	ref := bridge.MsgRef{Chat: "491701234567@s.whatsapp.net", Sender: "491701234567@s.whatsapp.net", ID: "3EB0A1"}
	return []bridge.Event{
		&bridge.Message{Ref: ref, Time: at, PushName: "Alice", Kind: bridge.Image, Text: "caption *bold*", Mentions: []bridge.UserID{"1@lid"},
			ReplyTo: &bridge.MsgRef{Chat: ref.Chat, ID: "X", FromMe: true}, QuotedText: "q", Media: &bridge.Media{MimeType: "image/jpeg", Size: 42, Handle: "h"},
			Location: &bridge.Geo{Lat: 52.5, Lon: 13.4, Name: "Berlin"}, Contacts: []bridge.Contact{{Name: "Bob", Numbers: []string{"+4917"}}},
			Poll: &bridge.PollInfo{Question: "?", Options: []string{"a", "b"}, Selectable: 1}, Forwarded: true, History: true, Retry: true},
		&bridge.Edit{Ref: ref, Time: at, Text: "new"},
		&bridge.Revoke{Ref: ref, By: "x@lid", Time: at},
		&bridge.Reaction{Target: ref, Sender: "s", FromMe: true, Emoji: "👍", Time: at},
		&bridge.PollVote{Poll: ref, Voter: "v", Options: []string{"a"}, Time: at},
		&bridge.Receipt{Chat: ref.Chat, By: "b", IDs: []string{"1", "2"}, Kind: bridge.Read, Time: at},
		&bridge.Typing{Chat: ref.Chat, Sender: "s", State: bridge.Recording},
		&bridge.Presence{User: "u", Online: true, LastSeen: at},
		&bridge.Call{Chat: ref.Chat, From: "f", ID: "c", Video: true, Kind: bridge.CallMissed, Time: at},
		&bridge.GroupChange{Chat: "1@g.us", Actor: "a", Kind: bridge.GroupSubject, Users: []bridge.UserID{"u"}, Subject: "S", Text: "T", Time: at},
		&bridge.Undecryptable{Ref: ref, Time: at},
		&bridge.ContactInfo{User: "u", FullName: "Alice Liddell", FirstName: "Alice", PushName: "Al", BusinessName: "B"},
		&bridge.ChatInfo{Chat: "1@g.us", Kind: bridge.Group, Name: "Family"},
		&bridge.PictureChange{Chat: "1@g.us", ID: "1700000001"},
		&bridge.PictureChange{Chat: "491701234567@s.whatsapp.net", Removed: true},
		&bridge.Alias{LID: "1@lid", Phone: "4917@s.whatsapp.net"},
		&bridge.Status{State: bridge.TempBanned, Reason: "r", Until: at, PhoneLastSeen: at},
		&bridge.PairCode{QR: "2@abc", LinkCode: "ABCD-EFGH", Expires: at},
		&bridge.PairResult{OK: true, ID: "4917@s.whatsapp.net", Name: "Me", Err: ""},
		&bridge.MediaRetry{Ref: ref, Media: &bridge.Media{MimeType: "image/jpeg", Size: 42, Handle: "h2"}},
		&bridge.MediaRetry{Ref: ref, Err: "no longer on the phone"},
	}
}

func TestEventCodecRoundTrip(t *testing.T) {
	for _, ev := range sampleEvents() {
		b, err := marshalEvent(ev)
		if err != nil {
			t.Fatalf("marshal %T: %v", ev, err)
		}
		got, err := unmarshalEvent(b)
		if err != nil {
			t.Fatalf("unmarshal %s: %v", b, err)
		}
		if !reflect.DeepEqual(got, ev) {
			t.Errorf("round trip of %T:\n got  %+v\n want %+v", ev, got, ev)
		}
	}
}

// TestEventCodecCoversAllTypes: every bridge.Event type has a record name and a
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
		if ev, err := unmarshalEvent([]byte(in)); err == nil {
			t.Errorf("unmarshalEvent(%q) = %v, want an error", in, ev)
		}
	}
}

func FuzzUnmarshalEvent(f *testing.F) {
	for _, ev := range sampleEvents() {
		b, _ := marshalEvent(ev)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, err := unmarshalEvent(b)
		if err != nil {
			return
		}
		// What decodes re-encodes and decodes to the same value.
		b2, err := marshalEvent(ev)
		if err != nil {
			t.Fatalf("re-marshal %T: %v", ev, err)
		}
		ev2, err := unmarshalEvent(b2)
		if err != nil || !reflect.DeepEqual(ev, ev2) {
			t.Fatalf("unstable: %+v vs %+v (%v)", ev, ev2, err)
		}
	})
}
