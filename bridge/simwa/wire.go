package simwa

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"waxmpp/bridge"
)

// MaxLine bounds one control line in either direction (an "events" batch
// of a few thousand messages fits).
const MaxLine = 16 << 20

// Request is one control line from a test to the simulator. Op chooses
// which of the other fields matter; see the package documentation.
type Request struct {
	Op string `json:"op"`
	// ID is echoed in the reply, so a client may pipeline requests.
	ID json.RawMessage `json:"id,omitempty"`

	Event  *Event  `json:"event,omitempty"`  // op event
	Events []Event `json:"events,omitempty"` // op events

	Since   *uint64  `json:"since,omitempty"`    // op actions, watch
	Wait    int      `json:"wait,omitempty"`     // op actions
	Timeout Duration `json:"timeout,omitzero"`   // op actions
	Types   []string `json:"types,omitempty"`    // op actions, watch: only these action types
	Rule    *Rule    `json:"rule,omitempty"`     // op script
	Gen     *Gen     `json:"generate,omitempty"` // op generate
	Handled bool     `json:"handled,omitempty"`  // op watch: push the core's acknowledgements too
	Media   *Media   `json:"media,omitempty"`    // op media
}

// Reply answers one Request. Ok false comes with Error.
type Reply struct {
	ID      json.RawMessage `json:"id,omitempty"`
	OK      bool            `json:"ok"`
	Error   string          `json:"error,omitempty"`
	Actions []Action        `json:"actions,omitempty"`
	Next    uint64          `json:"next,omitempty"` // op actions: pass as since to continue
	State   *State          `json:"state,omitempty"`
	N       int             `json:"n,omitempty"` // events accepted (events, generate); rules (script)
}

// Pushed is a line the simulator writes on a watching connection: an
// action as it happens, or (when the watch asked for them) an event the
// core acknowledged as durably handled.
type Pushed struct {
	Action  *Action `json:"action,omitempty"`
	Handled *Event  `json:"handled,omitempty"`
}

// State describes the running simulator (op state).
type State struct {
	Boot    string `json:"boot"` // unique per start of the process
	PID     int    `json:"pid"`
	Paired  bool   `json:"paired"`
	Online  bool   `json:"online"`
	Events  uint64 `json:"events"`  // events accepted by the core since start
	Handled uint64 `json:"handled"` // events the core acknowledged since start
	Actions uint64 `json:"actions"` // actions since start (the last seq)
	Rules   int    `json:"rules"`   // script rules in force
}

// Duration is a time.Duration written as a Go duration string ("1.5s").
type Duration time.Duration

func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("want a Go duration such as \"5s\": %w", err)
	}
	*d = Duration(v)
	return nil
}

// Ref is a message reference on the wire (bridge.MsgRef).
type Ref struct {
	Chat   string `json:"chat"`
	Sender string `json:"sender,omitempty"`
	ID     string `json:"id"`
	FromMe bool   `json:"from_me,omitempty"`
}

func (r *Ref) msgRef() *bridge.MsgRef {
	if r == nil {
		return nil
	}
	return &bridge.MsgRef{Chat: bridge.ChatID(r.Chat), Sender: bridge.UserID(r.Sender), ID: r.ID, FromMe: r.FromMe}
}

func wireRef(r *bridge.MsgRef) *Ref {
	if r == nil {
		return nil
	}
	return &Ref{Chat: string(r.Chat), Sender: string(r.Sender), ID: r.ID, FromMe: r.FromMe}
}

// Media is an attachment on the wire. Its content, what Download writes,
// is Data (base64 in JSON), else the file at File (read when downloaded:
// a test's large files need not pass through the socket), else Size bytes
// of a fixed pattern (Pattern).
type Media struct {
	MimeType string   `json:"mime_type,omitempty"`
	FileName string   `json:"file_name,omitempty"`
	Size     int64    `json:"size,omitempty"`
	Duration Duration `json:"duration,omitzero"`
	Handle   string   `json:"handle"`
	Data     []byte   `json:"data,omitempty"`
	File     string   `json:"file,omitempty"`
}

// SentMedia is an attachment the bridge sent (action send_media): every
// field the WhatsApp message carries, and the uploaded bytes' SHA-256
// (hex), with the bytes themselves (Data) when they are at most
// MaxSentData.
type SentMedia struct {
	Kind      string   `json:"kind"` // image, video, audio, voice, document, sticker
	MimeType  string   `json:"mime_type"`
	FileName  string   `json:"file_name,omitempty"`
	Size      int64    `json:"size"`
	SHA256    string   `json:"sha256"`
	Width     int      `json:"width,omitempty"`
	Height    int      `json:"height,omitempty"`
	Duration  Duration `json:"duration,omitzero"`
	Thumbnail []byte   `json:"thumbnail,omitempty"` // JPEG
	Waveform  []int    `json:"waveform,omitempty"`  // 64 values, 0–100
	GIF       bool     `json:"gif_playback,omitempty"`
	Caption   string   `json:"caption,omitempty"`
	Data      []byte   `json:"data,omitempty"`
}

// MaxSentData is the largest upload whose bytes a send_media action
// carries; larger ones are told by size and SHA-256.
const MaxSentData = 1 << 20

// Geo is a location on the wire.
type Geo struct {
	Lat     float64 `json:"lat"`
	Lon     float64 `json:"lon"`
	Name    string  `json:"name,omitempty"`
	Address string  `json:"address,omitempty"`
}

// Contact is a contact card on the wire.
type Contact struct {
	Name    string   `json:"name,omitempty"`
	Numbers []string `json:"numbers,omitempty"`
	VCard   string   `json:"vcard,omitempty"`
}

// Poll is a poll on the wire.
type Poll struct {
	Question   string   `json:"question"`
	Options    []string `json:"options"`
	Selectable int      `json:"selectable,omitempty"`
}

// Event is every bridge.Event on the wire: Type chooses the event and
// which fields apply (the package documentation lists them). Unknown
// fields are an error, so a typo never goes unnoticed.
type Event struct {
	Type string `json:"type"`

	// The subject message (message, edit, revoke, undecryptable) and the
	// chat of most events.
	Chat   string    `json:"chat,omitempty"`
	Sender string    `json:"sender,omitempty"`
	ID     string    `json:"id,omitempty"`
	FromMe bool      `json:"from_me,omitempty"`
	Time   time.Time `json:"time,omitzero"`

	// message
	PushName   string    `json:"push_name,omitempty"`
	Kind       string    `json:"kind,omitempty"` // also receipt, call, group_change, chat_info kinds
	Text       string    `json:"text,omitempty"` // also edit, group_change
	Mentions   []string  `json:"mentions,omitempty"`
	ReplyTo    *Ref      `json:"reply_to,omitempty"`
	QuotedText string    `json:"quoted_text,omitempty"`
	Media      *Media    `json:"media,omitempty"`
	Location   *Geo      `json:"location,omitempty"`
	Contacts   []Contact `json:"contacts,omitempty"`
	Poll       *Poll     `json:"poll,omitempty"`
	Forwarded  bool      `json:"forwarded,omitempty"`
	ViewOnce   bool      `json:"view_once,omitempty"`
	History    bool      `json:"history,omitempty"`
	Retry      bool      `json:"retry,omitempty"`

	By      string   `json:"by,omitempty"`      // revoke, receipt
	Target  *Ref     `json:"target,omitempty"`  // reaction, poll_vote (the poll)
	Emoji   string   `json:"emoji,omitempty"`   // reaction
	Options []string `json:"options,omitempty"` // poll_vote
	IDs     []string `json:"ids,omitempty"`     // receipt
	State   string   `json:"state,omitempty"`   // typing, status
	User    string   `json:"user,omitempty"`    // presence, contact_info, pair_result
	Online  bool     `json:"online,omitempty"`  // presence
	Video   bool     `json:"video,omitempty"`   // call
	Users   []string `json:"users,omitempty"`   // group_change
	Subject string   `json:"subject,omitempty"` // group_change
	Name    string   `json:"name,omitempty"`    // chat_info, pair_result
	Removed bool     `json:"removed,omitempty"` // picture

	LastSeen      time.Time `json:"last_seen,omitzero"`       // presence
	FullName      string    `json:"full_name,omitempty"`      // contact_info
	FirstName     string    `json:"first_name,omitempty"`     // contact_info
	BusinessName  string    `json:"business_name,omitempty"`  // contact_info
	LID           string    `json:"lid,omitempty"`            // alias
	Phone         string    `json:"phone,omitempty"`          // alias
	Reason        string    `json:"reason,omitempty"`         // status
	Until         time.Time `json:"until,omitzero"`           // status
	PhoneLastSeen time.Time `json:"phone_last_seen,omitzero"` // status
	QR            string    `json:"qr,omitempty"`             // pair_code
	LinkCode      string    `json:"link_code,omitempty"`      // pair_code
	Passkey       string    `json:"passkey,omitempty"`        // pair_code: WebAuthn request options (JSON)
	Expires       time.Time `json:"expires,omitzero"`         // pair_code
	OK            bool      `json:"ok,omitempty"`             // pair_result
	Error         string    `json:"error,omitempty"`          // pair_result, media_retry
}

// Action is one call the bridge made on the simulated WhatsApp, recorded
// when the call returned. Error is set when the call failed (scripted, or
// the edit window); the ids and times are those the simulator returned.
type Action struct {
	Seq  uint64    `json:"seq"`  // 1, 2, … per start of the process
	Boot string    `json:"boot"` // State.Boot of the process that recorded it
	Type string    `json:"type"`
	At   time.Time `json:"at"` // when the call returned

	Chat       string     `json:"chat,omitempty"`
	Text       string     `json:"text,omitempty"`
	ReplyTo    *Ref       `json:"reply_to,omitempty"`
	QuotedText string     `json:"quoted_text,omitempty"`
	Mentions   []string   `json:"mentions,omitempty"`
	Location   *Geo       `json:"location,omitempty"`
	Target     *Ref       `json:"target,omitempty"` // edit, revoke, react
	Emoji      string     `json:"emoji,omitempty"`
	Sender     string     `json:"sender,omitempty"` // mark_read
	IDs        []string   `json:"ids,omitempty"`    // mark_read
	State      string     `json:"state,omitempty"`  // set_typing
	Online     *bool      `json:"online,omitempty"` // set_online
	Phone      string     `json:"phone,omitempty"`  // pair, lookup
	User       string     `json:"user,omitempty"`   // lookup's answer
	Found      *bool      `json:"found,omitempty"`  // lookup's answer
	N          int        `json:"n,omitempty"`      // request_history
	Before     *Ref       `json:"before,omitempty"` // request_history
	Handle     string     `json:"handle,omitempty"` // download, media_retry
	Size       int64      `json:"size,omitempty"`   // download: bytes written; chat_picture: bytes returned
	Media      *SentMedia `json:"media,omitempty"`  // send_media

	// What the simulator returned for sends.
	ID   string    `json:"id,omitempty"`
	Time time.Time `json:"time,omitzero"` // mark_read: the read time given

	Error string `json:"error,omitempty"`
}

// Rule scripts the simulator's answers (op script). A call matches when
// its action type is Action and every non-empty matcher agrees; the first
// matching rule in force applies, and is used up after Times matches
// (0: forever).
type Rule struct {
	Action string `json:"action"`
	// Matchers: the call's chat, target message id, phone number, and a
	// substring of its text.
	Chat         string `json:"chat,omitempty"`
	ID           string `json:"id,omitempty"`
	Phone        string `json:"phone,omitempty"`
	TextContains string `json:"text_contains,omitempty"`
	Times        int    `json:"times,omitempty"`

	// Delay holds the call this long (ctx permitting) before it answers.
	Delay Duration `json:"delay,omitzero"`
	// Error fails the call: one of the codes edit_window, not_paired,
	// already_paired, not_found (the bridge's sentinel errors), or any
	// other text (a plain error).
	Error string `json:"error,omitempty"`
	// Lookup answers (action lookup): User and Found.
	User  string `json:"user,omitempty"`
	Found *bool  `json:"found,omitempty"`
	// Answer is the phone's answer to a media_retry: "uploaded" (the
	// default: a MediaRetry event with a new handle, same content), "gone"
	// (no longer on the phone) or "none" (the phone never answers).
	Answer string `json:"answer,omitempty"`
}

// Gen asks the simulator to inject synthetic events (op generate), a test
// aid for loading a bridge: Contacts ContactInfo events for users
// 49100000000+i, Chats direct chats' ChatInfo, then Messages text messages
// round-robin over the chats (ids Prefix+number), from those users.
type Gen struct {
	Contacts int    `json:"contacts,omitempty"`
	Chats    int    `json:"chats,omitempty"`
	Groups   int    `json:"groups,omitempty"`
	Messages int    `json:"messages,omitempty"`
	Prefix   string `json:"prefix,omitempty"`
	Text     string `json:"text,omitempty"` // body of generated messages; "#n <text>"
}

// errorCodes map a Rule.Error code to the bridge's sentinel errors.
var errorCodes = map[string]error{
	"edit_window":    bridge.ErrEditWindow,
	"not_paired":     bridge.ErrNotPaired,
	"already_paired": bridge.ErrAlreadyPaired,
	"not_found":      bridge.ErrNotFound,
	// download: WhatsApp's media servers no longer have the file.
	"http_403": fmt.Errorf("%w (HTTP 403)", bridge.ErrMediaExpired),
	"http_404": fmt.Errorf("%w (HTTP 404)", bridge.ErrMediaExpired),
	"http_410": fmt.Errorf("%w (HTTP 410)", bridge.ErrMediaExpired),
}

// enum tables: wire names of the bridge's enumerations.
var (
	msgKinds = map[string]bridge.MsgKind{
		"text": bridge.Text, "image": bridge.Image, "video": bridge.Video, "audio": bridge.Audio,
		"voice": bridge.Voice, "document": bridge.Document, "sticker": bridge.Sticker,
		"location": bridge.Location, "live_location": bridge.LiveLocation,
		"contact_card": bridge.ContactCard, "poll": bridge.Poll,
	}
	receiptKinds = map[string]bridge.ReceiptKind{"delivered": bridge.Delivered, "read": bridge.Read, "played": bridge.Played}
	typingStates = map[string]bridge.TypingState{"paused": bridge.Paused, "composing": bridge.Composing, "recording": bridge.Recording}
	callKinds    = map[string]bridge.CallKind{"offered": bridge.CallOffered, "missed": bridge.CallMissed, "ended": bridge.CallEnded, "rejected": bridge.CallRejected}
	groupKinds   = map[string]bridge.GroupChangeKind{
		"joined": bridge.GroupJoined, "left": bridge.GroupLeft, "promoted": bridge.GroupPromoted,
		"demoted": bridge.GroupDemoted, "subject": bridge.GroupSubject,
		"description": bridge.GroupDescription, "created": bridge.GroupCreated,
	}
	chatKinds  = map[string]bridge.ChatKind{"direct": bridge.Direct, "group": bridge.Group, "broadcast": bridge.Broadcast, "status": bridge.StatusChat}
	connStates = map[string]bridge.ConnState{
		"connected": bridge.Connected, "disconnected": bridge.Disconnected, "logged_out": bridge.LoggedOut,
		"not_paired": bridge.NotPaired, "stream_replaced": bridge.StreamReplaced, "outdated": bridge.Outdated,
		"temp_banned": bridge.TempBanned, "phone_offline": bridge.PhoneOffline, "banned": bridge.Banned,
	}
)

func lookupEnum[T comparable](table map[string]T, field, name, def string) (T, error) {
	if name == "" {
		name = def
	}
	v, ok := table[name]
	if !ok {
		var zero T
		names := make([]string, 0, len(table))
		for k := range table {
			names = append(names, k)
		}
		sortStrings(names)
		return zero, fmt.Errorf("%s %q is not one of %s", field, name, strings.Join(names, ", "))
	}
	return v, nil
}

func enumName[T comparable](table map[string]T, v T) string {
	for k, x := range table {
		if x == v {
			return k
		}
	}
	return ""
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// DecodeRequest parses one control line. Unknown fields, trailing data and
// unknown ops are errors.
func DecodeRequest(line []byte) (*Request, error) {
	if len(line) > MaxLine {
		return nil, fmt.Errorf("line longer than %d bytes", MaxLine)
	}
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	var r Request
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("bad request: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("bad request: more than one JSON value on the line")
	}
	switch r.Op {
	case "event":
		if r.Event == nil {
			return &r, errors.New(`op event needs "event"`)
		}
	case "events", "actions", "watch", "state", "reset", "forget":
	case "media":
		if r.Media == nil || r.Media.Handle == "" || (r.Media.Data == nil && r.Media.File == "") {
			return &r, errors.New(`op media needs "media" with "handle" and "data" or "file"`)
		}
	case "script":
		if r.Rule == nil {
			return &r, errors.New(`op script needs "rule"`)
		}
		if err := r.Rule.check(); err != nil {
			return &r, err
		}
	case "generate":
		if r.Gen == nil {
			return &r, errors.New(`op generate needs "generate"`)
		}
		if g := r.Gen; g.Contacts < 0 || g.Chats < 0 || g.Groups < 0 || g.Messages < 0 ||
			g.Contacts > 1e6 || g.Chats > 1e6 || g.Groups > 1e6 || g.Messages > 1e7 {
			return &r, errors.New("generate: counts must be 0 to 1e6 (messages 1e7)")
		} else if g.Messages > 0 && g.Chats+g.Groups == 0 {
			return &r, errors.New("generate: messages need chats or groups")
		}
	case "":
		return &r, errors.New(`missing "op"`)
	default:
		return &r, fmt.Errorf("unknown op %q; want event, events, actions, watch, script, reset, forget, state, generate or media", r.Op)
	}
	if r.Wait < 0 {
		return &r, errors.New("wait must not be negative")
	}
	if r.Timeout < 0 {
		return &r, errors.New("timeout must not be negative")
	}
	for _, t := range r.Types {
		if !actionTypes[t] {
			return &r, fmt.Errorf("types: unknown action type %q", t)
		}
	}
	return &r, nil
}

// actionTypes are the Action.Type values, one per bridge.WhatsApp method.
var actionTypes = map[string]bool{
	"send_text": true, "send_location": true, "edit": true, "revoke": true, "react": true,
	"mark_read": true, "set_typing": true, "set_online": true, "pair": true, "logout": true,
	"lookup": true, "request_history": true, "download": true, "chat_picture": true,
	"send_media": true, "media_retry": true,
}

func (r *Rule) check() error {
	if !actionTypes[r.Action] {
		return fmt.Errorf("rule: unknown action %q", r.Action)
	}
	if r.Times < 0 {
		return errors.New("rule: times must not be negative")
	}
	if r.Delay < 0 || time.Duration(r.Delay) > time.Hour {
		return errors.New("rule: delay must be 0 to 1h")
	}
	if (r.User != "" || r.Found != nil) && r.Action != "lookup" {
		return errors.New("rule: user and found answer lookups only")
	}
	switch r.Answer {
	case "":
	case "uploaded", "gone", "none":
		if r.Action != "media_retry" {
			return errors.New("rule: answer is for media_retry only")
		}
	default:
		return fmt.Errorf("rule: answer %q is not one of uploaded, gone, none", r.Answer)
	}
	return nil
}

func need(field, v string) error {
	if v == "" {
		return fmt.Errorf("%q is required", field)
	}
	return nil
}

// nilEmpty makes an empty list nil: JSON's [] and an absent field mean the
// same.
func nilEmpty(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
}

func users(s []string) []bridge.UserID {
	if len(s) == 0 {
		return nil
	}
	out := make([]bridge.UserID, len(s))
	for i, u := range s {
		out[i] = bridge.UserID(u)
	}
	return out
}

func strs(s []bridge.UserID) []string {
	if len(s) == 0 {
		return nil
	}
	out := make([]string, len(s))
	for i, u := range s {
		out[i] = string(u)
	}
	return out
}

// FromBridge is ToBridge's inverse: the wire form of a bridge event (Go
// tests build events as bridge values and send them with it).
func FromBridge(ev bridge.Event) (Event, error) {
	flat := func(e *Event, r bridge.MsgRef) {
		e.Chat, e.Sender, e.ID, e.FromMe = string(r.Chat), string(r.Sender), r.ID, r.FromMe
	}
	var e Event
	switch v := ev.(type) {
	case *bridge.Message:
		e.Type = "message"
		flat(&e, v.Ref)
		e.Time, e.PushName, e.Kind, e.Text = v.Time, v.PushName, enumName(msgKinds, v.Kind), v.Text
		e.Mentions, e.ReplyTo, e.QuotedText = strs(v.Mentions), wireRef(v.ReplyTo), v.QuotedText
		if m := v.Media; m != nil {
			e.Media = &Media{MimeType: m.MimeType, FileName: m.FileName, Size: m.Size, Duration: Duration(m.Duration), Handle: m.Handle}
		}
		if v.Location != nil {
			g := Geo(*v.Location)
			e.Location = &g
		}
		for _, c := range v.Contacts {
			e.Contacts = append(e.Contacts, Contact{Name: c.Name, Numbers: c.Numbers, VCard: c.VCard})
		}
		if p := v.Poll; p != nil {
			e.Poll = &Poll{Question: p.Question, Options: p.Options, Selectable: p.Selectable}
		}
		e.Forwarded, e.ViewOnce, e.History, e.Retry = v.Forwarded, v.ViewOnce, v.History, v.Retry
	case *bridge.Edit:
		e.Type = "edit"
		flat(&e, v.Ref)
		e.Time, e.Text = v.Time, v.Text
	case *bridge.Revoke:
		e.Type = "revoke"
		flat(&e, v.Ref)
		e.By, e.Time = string(v.By), v.Time
	case *bridge.Undecryptable:
		e.Type = "undecryptable"
		flat(&e, v.Ref)
		e.Time = v.Time
	case *bridge.Reaction:
		e.Type, e.Target, e.Sender, e.FromMe, e.Emoji, e.Time = "reaction", wireRef(&v.Target), string(v.Sender), v.FromMe, v.Emoji, v.Time
	case *bridge.PollVote:
		e.Type, e.Target, e.Sender, e.Options, e.Time = "poll_vote", wireRef(&v.Poll), string(v.Voter), v.Options, v.Time
	case *bridge.Receipt:
		e.Type, e.Chat, e.By, e.IDs, e.Kind, e.Time = "receipt", string(v.Chat), string(v.By), v.IDs, enumName(receiptKinds, v.Kind), v.Time
	case *bridge.Typing:
		e.Type, e.Chat, e.Sender, e.State = "typing", string(v.Chat), string(v.Sender), enumName(typingStates, v.State)
	case *bridge.Presence:
		e.Type, e.User, e.Online, e.LastSeen = "presence", string(v.User), v.Online, v.LastSeen
	case *bridge.Call:
		e.Type, e.Chat, e.Sender, e.ID, e.Video, e.Kind, e.Time = "call", string(v.Chat), string(v.From), v.ID, v.Video, enumName(callKinds, v.Kind), v.Time
	case *bridge.GroupChange:
		e.Type, e.Chat, e.Sender, e.Kind = "group_change", string(v.Chat), string(v.Actor), enumName(groupKinds, v.Kind)
		e.Users, e.Subject, e.Text, e.Time = strs(v.Users), v.Subject, v.Text, v.Time
	case *bridge.ContactInfo:
		e.Type, e.User, e.FullName, e.FirstName, e.PushName, e.BusinessName = "contact_info", string(v.User), v.FullName, v.FirstName, v.PushName, v.BusinessName
	case *bridge.ChatInfo:
		e.Type, e.Chat, e.Kind, e.Name = "chat_info", string(v.Chat), enumName(chatKinds, v.Kind), v.Name
	case *bridge.PictureChange:
		e.Type, e.Chat, e.ID, e.Removed = "picture", string(v.Chat), v.ID, v.Removed
	case *bridge.Alias:
		e.Type, e.LID, e.Phone = "alias", string(v.LID), string(v.Phone)
	case *bridge.Status:
		e.Type, e.State, e.Reason, e.Until, e.PhoneLastSeen = "status", enumName(connStates, v.State), v.Reason, v.Until, v.PhoneLastSeen
	case *bridge.PairCode:
		e.Type, e.QR, e.LinkCode, e.Passkey, e.Expires = "pair_code", v.QR, v.LinkCode, v.Passkey, v.Expires
	case *bridge.PairResult:
		e.Type, e.OK, e.User, e.Name, e.Error = "pair_result", v.OK, string(v.ID), v.Name, v.Err
	case *bridge.MediaRetry:
		e.Type = "media_retry"
		flat(&e, v.Ref)
		e.Error = v.Err
		if m := v.Media; m != nil {
			e.Media = &Media{MimeType: m.MimeType, FileName: m.FileName, Size: m.Size, Duration: Duration(m.Duration), Handle: m.Handle}
		}
	default:
		return Event{}, fmt.Errorf("simwa: no wire form for %T", ev)
	}
	return e, nil
}
