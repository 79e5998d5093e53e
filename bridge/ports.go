package bridge

import (
	"context"
	"errors"
	"io"
	"time"
)

// WhatsApp is what the core asks of the WhatsApp side: the whatsmeow
// adapter (bridge/whatsapp) or the simulated network. Methods block until
// WhatsApp answered or ctx ends, and may be called from the core's goroutine
// only (they must not call back into the core). Events reach the core on
// the channel given to the adapter's constructor; the adapter never blocks
// whatsmeow's handler on it (see the adapters' docs for their buffering).
type WhatsApp interface {
	// SendText sends text (WhatsApp formatting) to chat, as a reply to
	// opts.ReplyTo when set. It returns the new message's id and time.
	SendText(ctx context.Context, chat ChatID, text string, opts SendOptions) (MsgRef, time.Time, error)
	// SendLocation sends a location pin; of opts, only ID is used.
	SendLocation(ctx context.Context, chat ChatID, g Geo, opts SendOptions) (MsgRef, time.Time, error)
	// Edit changes the text of one of the owner's messages. WhatsApp
	// accepts edits for EditWindow after sending and silently ignores
	// later ones: the core asks only within the window.
	Edit(ctx context.Context, ref MsgRef, text string) error
	// Revoke deletes one of the owner's messages for everyone.
	Revoke(ctx context.Context, ref MsgRef) error
	// React sets the owner's reaction to target; "" removes it.
	React(ctx context.Context, target MsgRef, emoji string) error
	// MarkRead marks ids, sent by sender in chat, as read. In groups the
	// core calls it once per sender.
	MarkRead(ctx context.Context, chat ChatID, sender UserID, ids []string, at time.Time) error
	// SetTyping sets the owner's chat state in chat.
	SetTyping(ctx context.Context, chat ChatID, state TypingState) error
	// SetOnline sets the owner's global presence (false keeps the phone
	// notifying).
	SetOnline(ctx context.Context, online bool) error
	// Pair starts linking a new device: with phone "" by QR codes, else by
	// a link code for that number (E.164, '+' optional). Steps and the end
	// arrive as PairCode and PairResult events. ErrAlreadyPaired if linked.
	Pair(ctx context.Context, phone string) error
	// Logout unlinks this device and forgets its keys.
	Logout(ctx context.Context) error
	// Lookup resolves a phone number (E.164) to a WhatsApp user; ok false
	// when the number is not on WhatsApp.
	Lookup(ctx context.Context, phone string) (id UserID, ok bool, err error)
	// RequestHistory asks the phone for up to n messages of before.Ref.Chat
	// older than before (the core passes the oldest message of the chat it
	// knows). They arrive as Message events with History set.
	RequestHistory(ctx context.Context, before HistoryAnchor, n int) error
	// Download writes a media attachment's content to the file at path
	// (created, or truncated) and returns its length. ErrMediaExpired
	// (wrapped) when WhatsApp's servers no longer have it: ask the phone
	// with RequestMediaRetry. Unlike the other methods it may be called
	// from any goroutine: the core's transfers run on their own.
	Download(ctx context.Context, m *Media, path string) (int64, error)
	// SendMedia uploads m.Path (streamed, never read whole into memory)
	// and sends it to chat as the message m describes. Like SendText
	// otherwise (opts.ID); may be called from any goroutine.
	SendMedia(ctx context.Context, chat ChatID, m *OutMedia, opts SendOptions) (MsgRef, time.Time, error)
	// RequestMediaRetry asks the phone to upload ref's attachment m
	// again. The answer arrives as a MediaRetry event (the phone may be
	// offline: it may take days, or never come). May be called from any
	// goroutine.
	RequestMediaRetry(ctx context.Context, ref MsgRef, m *Media) error
	// ChatPicture fetches chat's profile picture (a person's or a
	// group's): nil, nil when it has none or hides it from the owner. The
	// adapter bounds its size (MaxPicture) and time (a few seconds).
	ChatPicture(ctx context.Context, chat ChatID) (*Picture, error)
	// Handled tells the adapter that the core has durably dealt with ev
	// (an event it delivered), in delivery order. The adapter keeps each
	// event on disk until then and delivers what is left again after a
	// restart; the core drops what it already handled.
	Handled(ev Event)
}

// Picture is a chat's profile picture, as WhatsApp serves it.
type Picture struct {
	ID   string // WhatsApp's id of this picture: a new picture, a new id
	Type string // its MIME type: image/jpeg as WhatsApp serves them, image/png
	Data []byte
}

// MaxPicture bounds a picture's bytes: WhatsApp's are JPEGs of 640 × 640
// pixels, well under 200 kB.
const MaxPicture = 1 << 20

// SendOptions shape an outgoing WhatsApp text.
type SendOptions struct {
	ReplyTo    *MsgRef
	QuotedText string // the quoted message's text, shown by WhatsApp
	Mentions   []UserID
	// ID, when set, is the WhatsApp message id to use. The core derives it
	// from the owner's XMPP message id, so a resend after a crash between
	// "sent" and "recorded" carries the same id and recipients drop the
	// duplicate. The adapter passes it on (whatsmeow: SendRequestExtra.ID).
	ID string
}

// EditWindow is how long after sending WhatsApp accepts an edit (as
// whatsmeow's EditWindow). The core measures it from when WhatsApp took the
// message, not from when the owner wrote it (a held message is sent later).
const EditWindow = 20 * time.Minute

// HistoryAnchor is a message a history request continues before: its
// reference as WhatsApp named it and when it was sent (the phone wants both).
type HistoryAnchor struct {
	Ref  MsgRef
	Time time.Time
}

// Errors the WhatsApp side returns; the core turns them into plain words.
var (
	ErrEditWindow    = errors.New("whatsapp: the 20-minute edit window has passed")
	ErrNotPaired     = errors.New("whatsapp: not linked to a phone")
	ErrAlreadyPaired = errors.New("whatsapp: already linked")
	ErrNotFound      = errors.New("not found")
)

// XMPP is what the core asks of the bot's XMPP session (bridge/xmpp).
// Methods may be called from any goroutine; none calls back into the core.
type XMPP interface {
	// Send queues messages to the owner durably, in order, and returns
	// their XMPP ids once they are on disk; delivery follows, surviving
	// restarts.
	Send(msgs ...Outgoing) ([]string, error)
	// SendNow sends a message that is worthless later (chat states,
	// markers) if connected, and drops it otherwise.
	SendNow(m Outgoing) error
	// SetPresence sets the bot's show (""=available, away, dnd, xa) and
	// status text, kept across reconnects: the bridge's health light.
	SetPresence(show, status string)
	// Upload stores a file on the server's XEP-0363 service and returns its
	// URL. r is streamed.
	Upload(ctx context.Context, name, contentType string, size int64, r io.Reader) (string, error)
	// Stats reports connection and queue health for /status.
	Stats() (XMPPStats, error)
	// Handled tells the XMPP side that the core has durably dealt with m
	// (sent it, held it, answered or refused it). Until then the XMPP side
	// must be able to deliver m again after a crash (it replays the
	// server's archive from the last handled message); the core drops
	// what it already handled by id. Called in the order m arrived.
	Handled(m OwnerEvent)
}

// Record is what the core records of a batch of relayed messages: their
// map entries and their chats' new activity (chat id → time, never moved
// back). An XMPP side whose outbox shares the store's transactions
// writes it with the messages (RecordingXMPP).
type Record struct {
	Links []MsgLink
	Touch map[string]time.Time
}

// RecordingXMPP is an XMPP side that queues messages and writes r in one
// transaction: one commit for a batch, and never the map without the
// messages or the other way round. Optional: the core asserts it, and
// writes r itself after Send otherwise. SendWith returns an error
// wrapping errors.ErrUnsupported, having written nothing, when its
// outbox cannot (then the core does the same).
type RecordingXMPP interface {
	SendWith(r Record, msgs ...Outgoing) ([]string, error)
}

// Outgoing is one message from the bot to the owner. Only Body is needed
// for a plain message; the rest maps to XEPs in bridge/xmpp.
type Outgoing struct {
	ID        string // set by Send when empty
	Body      string // XEP-0393 styled
	ReplyTo   string // XEP-0461: the XMPP id of the message replied to
	Quote     string // its text, for the XEP-0428 fallback quote
	Replace   string // XEP-0308: the XMPP id corrected
	Retract   string // XEP-0424: the XMPP id retracted (Body: fallback text)
	React     *Reactions
	Receipt   string // XEP-0184: delivered, for the owner's message id
	Displayed string // XEP-0333: read, for the owner's message id
	ChatState TypingState
	Typing    bool   // send ChatState (XEP-0085)
	URL       string // XEP-0066: Body should be the URL too
	Delay     time.Time
	Markable  bool // ask for read markers (XEP-0333) for this message
	// Room, when set, is the room (XEP-0045) the message goes to instead
	// of the owner: a groupchat message there.
	Room string
}

// Reactions is the full set of reactions of one sender to one message.
type Reactions struct {
	ID     string // the XMPP id reacted to
	Emojis []string
}

// Command is an XEP-0050 ad-hoc command from the owner's client: the same
// command as "/Name Args" in the chat. The core answers on Reply (capacity
// 1) with the text it would have sent.
type Command struct {
	Name  string
	Args  string
	Reply chan<- string
}

// XMPPStats is the XMPP side's health.
type XMPPStats struct {
	Connected   bool
	Queued      int
	Unconfirmed int
	Lag         time.Duration
	Dropped     uint64
	Reconnects  uint64
	// Caveat is what the bot's server cannot guarantee, in plain words
	// for /status and doctor; "" when nothing.
	Caveat string
}
