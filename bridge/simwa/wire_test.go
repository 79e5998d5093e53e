package simwa

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"waxmpp/bridge"
)

var t0 = time.Date(2026, 11, 22, 1, 2, 3, 0, time.UTC)

// allEvents is one of every bridge event, with every field set.
func allEvents() []bridge.Event {
	ref := bridge.MsgRef{Chat: "491701234567@s.whatsapp.net", Sender: "491701234567@s.whatsapp.net", ID: "M1"}
	grp := bridge.MsgRef{Chat: "120363000000000001@g.us", Sender: "491709999999@s.whatsapp.net", ID: "G1"}
	mine := bridge.MsgRef{Chat: ref.Chat, ID: "3EB0X", FromMe: true}
	return []bridge.Event{
		&bridge.Message{Ref: ref, Time: t0, PushName: "Alice", Kind: bridge.Text, Text: "hi *you*",
			Mentions: []bridge.UserID{"49170@s.whatsapp.net"}, ReplyTo: &mine, QuotedText: "earlier",
			Forwarded: true, ViewOnce: true, History: true, Retry: true},
		&bridge.Message{Ref: grp, Time: t0, Kind: bridge.Voice, Media: &bridge.Media{MimeType: "audio/ogg; codecs=opus", FileName: "v.ogg", Size: 1234, Duration: 3 * time.Second, Handle: "h1"}},
		&bridge.Message{Ref: ref, Time: t0, Kind: bridge.Location, Location: &bridge.Geo{Lat: 52.5, Lon: 13.4, Name: "Berlin", Address: "Mitte"}},
		&bridge.Message{Ref: ref, Time: t0, Kind: bridge.ContactCard, Contacts: []bridge.Contact{{Name: "Bob", Numbers: []string{"+4917012"}, VCard: "BEGIN:VCARD"}}},
		&bridge.Message{Ref: grp, Time: t0, Kind: bridge.Poll, Poll: &bridge.PollInfo{Question: "Lunch?", Options: []string{"yes", "no"}, Selectable: 1}},
		&bridge.Edit{Ref: ref, Time: t0, Text: "edited"},
		&bridge.Revoke{Ref: grp, By: "491700000000@s.whatsapp.net", Time: t0},
		&bridge.Reaction{Target: mine, Sender: "491701234567@s.whatsapp.net", Emoji: "👍", Time: t0},
		&bridge.Reaction{Target: ref, FromMe: true, Emoji: "", Time: t0},
		&bridge.PollVote{Poll: grp, Voter: "491701234567@s.whatsapp.net", Options: []string{"yes"}, Time: t0},
		&bridge.Receipt{Chat: ref.Chat, By: ref.Sender, IDs: []string{"a", "b"}, Kind: bridge.Read, Time: t0},
		&bridge.Typing{Chat: ref.Chat, Sender: ref.Sender, State: bridge.Recording},
		&bridge.Presence{User: ref.Sender, Online: true, LastSeen: t0},
		&bridge.Call{Chat: ref.Chat, From: ref.Sender, ID: "C1", Video: true, Kind: bridge.CallMissed, Time: t0},
		&bridge.GroupChange{Chat: grp.Chat, Actor: grp.Sender, Kind: bridge.GroupJoined, Users: []bridge.UserID{"4917@s.whatsapp.net"}, Subject: "S", Text: "T", Time: t0},
		&bridge.Undecryptable{Ref: ref, Time: t0},
		&bridge.ContactInfo{User: ref.Sender, FullName: "Alice A", FirstName: "Alice", PushName: "Ali", BusinessName: "A GmbH"},
		&bridge.ChatInfo{Chat: grp.Chat, Kind: bridge.Group, Name: "Family"},
		&bridge.PictureChange{Chat: grp.Chat, ID: "1700000001"},
		&bridge.PictureChange{Chat: ref.Chat, Removed: true},
		&bridge.Alias{LID: "123@lid", Phone: ref.Sender},
		&bridge.Status{State: bridge.TempBanned, Reason: "spam", Until: t0, PhoneLastSeen: t0},
		&bridge.PairCode{QR: "2@x", LinkCode: "ABCD-EFGH", Expires: t0},
		&bridge.PairResult{OK: true, ID: ref.Sender, Name: "Me", Err: "e"},
		&bridge.MediaRetry{Ref: grp, Media: &bridge.Media{MimeType: "image/jpeg", Size: 99, Handle: "h1/retry"}},
		&bridge.MediaRetry{Ref: ref, Err: "not on the phone"},
	}
}

// TestEventRoundTrip: every event survives bridge → JSON → bridge.
func TestEventRoundTrip(t *testing.T) {
	for _, ev := range allEvents() {
		w, err := FromBridge(ev)
		if err != nil {
			t.Fatal(err)
		}
		b, err := json.Marshal(Request{Op: "event", Event: &w})
		if err != nil {
			t.Fatal(err)
		}
		req, err := DecodeRequest(b)
		if err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		got, err := req.Event.ToBridge(t0.Add(time.Hour))
		if err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		if !reflect.DeepEqual(got, ev) {
			t.Errorf("%s:\ngot  %#v\nwant %#v", b, got, ev)
		}
	}
}

// TestExampleFromDoc: the documented example decodes to what it says.
func TestExampleFromDoc(t *testing.T) {
	req, err := DecodeRequest([]byte(`{"op":"event","id":7,"event":{"type":"message","chat":"491701234567@s.whatsapp.net","id":"M1","text":"hi","push_name":"Alice"}}`))
	if err != nil {
		t.Fatal(err)
	}
	got, err := req.Event.ToBridge(t0)
	if err != nil {
		t.Fatal(err)
	}
	want := &bridge.Message{Ref: bridge.MsgRef{Chat: "491701234567@s.whatsapp.net", Sender: "491701234567@s.whatsapp.net", ID: "M1"},
		Time: t0, PushName: "Alice", Kind: bridge.Text, Text: "hi"}
	if !reflect.DeepEqual(got, want) || string(req.ID) != "7" {
		t.Errorf("got %#v id %s, want %#v id 7", got, req.ID, want)
	}
}

func TestBadRequests(t *testing.T) {
	tests := []struct{ line, want string }{
		{``, "bad request"},
		{`{}`, `missing "op"`},
		{`{"op":"fly"}`, `unknown op "fly"`},
		{`{"op":"event"}`, `needs "event"`},
		{`{"op":"state","bogus":1}`, `unknown field "bogus"`},
		{`{"op":"state"} {"op":"state"}`, "more than one"},
		{`{"op":"actions","timeout":"soon"}`, "Go duration"},
		{`{"op":"actions","types":["send"]}`, `unknown action type "send"`},
		{`{"op":"actions","wait":-1}`, "negative"},
		{`{"op":"script","rule":{"action":"edit","found":true}}`, "lookups only"},
		{`{"op":"script","rule":{"action":"nope"}}`, `unknown action "nope"`},
		{`{"op":"generate","generate":{"messages":5}}`, "need chats"},
	}
	for _, tt := range tests {
		_, err := DecodeRequest([]byte(tt.line))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("DecodeRequest(%s) = %v, want an error containing %q", tt.line, err, tt.want)
		}
	}
}

func TestBadEvents(t *testing.T) {
	tests := []struct{ event, want string }{
		{`{"type":"message","id":"M"}`, `"chat" is required`},
		{`{"type":"message","chat":"c","id":"M","kind":"gif"}`, `kind "gif" is not one of`},
		{`{"type":"message","chat":"c","id":"M","kind":"image"}`, `needs "media"`},
		{`{"type":"message","chat":"c","id":"M","kind":"poll"}`, `needs "poll"`},
		{`{"type":"reaction","sender":"u","emoji":"x"}`, `"target"`},
		{`{"type":"receipt","chat":"c"}`, `"ids" is required`},
		{`{"type":"status"}`, `"state" is required`},
		{`{"type":"status","state":"happy"}`, `state "happy"`},
		{`{"type":"group_change","chat":"g@g.us"}`, `"kind" is required`},
		{`{"type":"pair_code"}`, `"qr" or "link_code"`},
		{`{"type":"weather"}`, `unknown type "weather"`},
		{`{}`, `missing "type"`},
	}
	for _, tt := range tests {
		req, err := DecodeRequest([]byte(`{"op":"event","event":` + tt.event + `}`))
		if err == nil {
			_, err = req.Event.ToBridge(t0)
		}
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("event %s: %v, want an error containing %q", tt.event, err, tt.want)
		}
	}
}

func TestErrorCodes(t *testing.T) {
	for code, sentinel := range errorCodes {
		if err := apply(t.Context(), &Rule{Error: code}); !errors.Is(err, sentinel) {
			t.Errorf("error %q: %v, want %v", code, err, sentinel)
		}
		if got := errText(sentinel); got != code {
			t.Errorf("errText(%v) = %q, want %q", sentinel, got, code)
		}
	}
}

// FuzzControl feeds arbitrary lines to the request decoder. It must never
// panic, and every event it accepts must convert to a bridge event that
// converts back to the same bridge event (no field is lost or invented).
func FuzzControl(f *testing.F) {
	for _, ev := range allEvents() {
		w, _ := FromBridge(ev)
		b, _ := json.Marshal(Request{Op: "event", Event: &w})
		f.Add(b)
	}
	for _, s := range []string{
		`{"op":"actions","wait":2,"timeout":"5s","types":["send_text"]}`,
		`{"op":"watch","since":0}`,
		`{"op":"script","rule":{"action":"lookup","phone":"+49","found":false}}`,
		`{"op":"events","events":[{"type":"typing","chat":"c"},{"type":"presence","user":"u"}]}`,
		`{"op":"generate","generate":{"contacts":2,"chats":1,"messages":3}}`,
		`{"op":"state","id":"x"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		req, err := DecodeRequest(line)
		if err != nil {
			return
		}
		evs := req.Events
		if req.Event != nil {
			evs = append(evs, *req.Event)
		}
		for _, w := range evs {
			ev, err := w.ToBridge(t0)
			if err != nil {
				continue
			}
			w2, err := FromBridge(ev)
			if err != nil {
				t.Fatalf("FromBridge(%#v): %v", ev, err)
			}
			b, err := json.Marshal(w2)
			if err != nil {
				t.Fatalf("marshal %#v: %v", w2, err)
			}
			var w3 Event
			if err := json.Unmarshal(b, &w3); err != nil {
				t.Fatalf("unmarshal %s: %v", b, err)
			}
			ev2, err := w3.ToBridge(t0)
			if err != nil {
				t.Fatalf("%s no longer converts: %v", b, err)
			}
			if !equalEvents(ev, ev2) {
				t.Fatalf("round trip changed the event:\n%#v\n%#v", ev, ev2)
			}
		}
	})
}

// equalEvents compares events, times by instant (JSON keeps the instant,
// not the location).
func equalEvents(a, b bridge.Event) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return reflect.TypeOf(a) == reflect.TypeOf(b) && string(ja) == string(jb)
}
