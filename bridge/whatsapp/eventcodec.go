package whatsapp

import (
	"encoding/json"
	"fmt"
	"reflect"

	"waxmpp/bridge"
)

// The inbox keeps events on disk between the moment whatsmeow hands them
// over and the moment the core has handled them: a message is acknowledged
// to WhatsApp only once it is durably queued. The record is JSON:
// {"t":"<type>","e":{…}}, the event's exported fields as encoding/json
// writes them. Adding a field is compatible both ways; renaming one is not,
// and neither is renaming a record type below (records written by an
// older version are still on disk after an upgrade).

type eventRecord struct {
	Type  string          `json:"t"`
	Event json.RawMessage `json:"e"`
}

// eventTypes names every concrete bridge.Event for the record; a new event
// type must be added here (TestEventCodecCoversAllTypes checks).
var eventTypes = map[string]func() bridge.Event{
	"message":       func() bridge.Event { return new(bridge.Message) },
	"edit":          func() bridge.Event { return new(bridge.Edit) },
	"revoke":        func() bridge.Event { return new(bridge.Revoke) },
	"reaction":      func() bridge.Event { return new(bridge.Reaction) },
	"poll_vote":     func() bridge.Event { return new(bridge.PollVote) },
	"receipt":       func() bridge.Event { return new(bridge.Receipt) },
	"typing":        func() bridge.Event { return new(bridge.Typing) },
	"presence":      func() bridge.Event { return new(bridge.Presence) },
	"call":          func() bridge.Event { return new(bridge.Call) },
	"group_change":  func() bridge.Event { return new(bridge.GroupChange) },
	"undecryptable": func() bridge.Event { return new(bridge.Undecryptable) },
	"contact_info":  func() bridge.Event { return new(bridge.ContactInfo) },
	"chat_info":     func() bridge.Event { return new(bridge.ChatInfo) },
	"picture":       func() bridge.Event { return new(bridge.PictureChange) },
	"alias":         func() bridge.Event { return new(bridge.Alias) },
	"status":        func() bridge.Event { return new(bridge.Status) },
	"pair_code":     func() bridge.Event { return new(bridge.PairCode) },
	"pair_result":   func() bridge.Event { return new(bridge.PairResult) },
	"media_retry":   func() bridge.Event { return new(bridge.MediaRetry) },
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
func eventName(ev bridge.Event) (string, bool) {
	name, ok := eventNames[reflect.TypeOf(ev)]
	return name, ok
}

// marshalEvent encodes ev for the inbox.
func marshalEvent(ev bridge.Event) ([]byte, error) {
	name, ok := eventName(ev)
	if !ok {
		return nil, fmt.Errorf("whatsapp: marshal event: unknown type %T", ev)
	}
	body, err := json.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("whatsapp: marshal %s event: %w", name, err)
	}
	return json.Marshal(eventRecord{Type: name, Event: body})
}

// unmarshalEvent decodes a record written by marshalEvent. A damaged or
// unknown record is an error, never a panic.
func unmarshalEvent(b []byte) (bridge.Event, error) {
	var r eventRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("whatsapp: unmarshal event: %w", err)
	}
	mk, ok := eventTypes[r.Type]
	if !ok {
		return nil, fmt.Errorf("whatsapp: unmarshal event: unknown type %q", r.Type)
	}
	ev := mk()
	if len(r.Event) == 0 {
		return nil, fmt.Errorf("whatsapp: unmarshal %s event: no body", r.Type)
	}
	if err := json.Unmarshal(r.Event, ev); err != nil {
		return nil, fmt.Errorf("whatsapp: unmarshal %s event: %w", r.Type, err)
	}
	return ev, nil
}
