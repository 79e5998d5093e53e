package bridge

import (
	"encoding/json"
	"fmt"
	"reflect"
)

// Events are kept on disk between the moment WhatsApp hands them over and
// the moment the core has handled them (DESIGN §3: acknowledge only what
// is durably queued). The record is JSON: {"t":"<type>","e":{…}}, the
// event's exported fields as encoding/json writes them. Adding a field is
// compatible both ways; renaming one is not.

type eventRecord struct {
	Type  string          `json:"t"`
	Event json.RawMessage `json:"e"`
}

// eventTypes names every concrete Event for the record; a new Event type
// must be added here (TestEventCodecCoversAllTypes checks).
var eventTypes = map[string]func() Event{
	"message":       func() Event { return new(Message) },
	"edit":          func() Event { return new(Edit) },
	"revoke":        func() Event { return new(Revoke) },
	"reaction":      func() Event { return new(Reaction) },
	"poll_vote":     func() Event { return new(PollVote) },
	"receipt":       func() Event { return new(Receipt) },
	"typing":        func() Event { return new(Typing) },
	"presence":      func() Event { return new(Presence) },
	"call":          func() Event { return new(Call) },
	"group_change":  func() Event { return new(GroupChange) },
	"undecryptable": func() Event { return new(Undecryptable) },
	"contact_info":  func() Event { return new(ContactInfo) },
	"chat_info":     func() Event { return new(ChatInfo) },
	"alias":         func() Event { return new(Alias) },
	"status":        func() Event { return new(Status) },
	"pair_code":     func() Event { return new(PairCode) },
	"pair_result":   func() Event { return new(PairResult) },
}

// eventNames is eventTypes reversed.
var eventNames = func() map[reflect.Type]string {
	m := make(map[reflect.Type]string, len(eventTypes))
	for name, mk := range eventTypes {
		m[reflect.TypeOf(mk())] = name
	}
	return m
}()

// eventName is the record type of ev.
func eventName(ev Event) (string, bool) {
	name, ok := eventNames[reflect.TypeOf(ev)]
	return name, ok
}

// MarshalEvent encodes ev for a durable queue.
func MarshalEvent(ev Event) ([]byte, error) {
	name, ok := eventName(ev)
	if !ok {
		return nil, fmt.Errorf("bridge: marshal event: unknown type %T", ev)
	}
	body, err := json.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("bridge: marshal %s event: %w", name, err)
	}
	return json.Marshal(eventRecord{Type: name, Event: body})
}

// UnmarshalEvent decodes a record written by MarshalEvent. A damaged or
// unknown record is an error, never a panic.
func UnmarshalEvent(b []byte) (Event, error) {
	var r eventRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("bridge: unmarshal event: %w", err)
	}
	mk, ok := eventTypes[r.Type]
	if !ok {
		return nil, fmt.Errorf("bridge: unmarshal event: unknown type %q", r.Type)
	}
	ev := mk()
	if len(r.Event) == 0 {
		return nil, fmt.Errorf("bridge: unmarshal %s event: no body", r.Type)
	}
	if err := json.Unmarshal(r.Event, ev); err != nil {
		return nil, fmt.Errorf("bridge: unmarshal %s event: %w", r.Type, err)
	}
	return ev, nil
}
