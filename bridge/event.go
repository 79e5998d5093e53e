package bridge

import "time"

// Identifiers are WhatsApp JIDs in their string form, as whatsmeow prints
// them: "491701234567@s.whatsapp.net" (a phone number), "123456789@lid"
// (a hidden-number id), "120363…@g.us" (a group), "status@broadcast". A
// person may appear under both a phone-number JID and a LID; the core treats
// an Alias event as "these two are one".
type (
	// ChatID names a WhatsApp chat: a person (direct) or a group.
	ChatID string
	// UserID names a WhatsApp user (a message's sender, a reactor).
	UserID string
)

// ChatKind tells direct chats from groups.
type ChatKind int

const (
	Direct ChatKind = iota + 1
	Group
	Broadcast
	StatusChat // status@broadcast
)

// MsgRef identifies one WhatsApp message.
type MsgRef struct {
	Chat   ChatID
	Sender UserID // in direct chats the other person, or the owner when FromMe
	ID     string
	FromMe bool // sent by the owner (from the phone or through waxmpp)
}

// Event is something that happened on WhatsApp, produced by the WhatsApp
// adapter (real or simulated) and consumed by the core. The concrete types
// are those below; the unexported method closes the set.
type Event interface{ waEvent() }

// MsgKind is the kind of a WhatsApp message's content.
type MsgKind int

const (
	Text MsgKind = iota + 1
	Image
	Video
	Audio // an audio file
	Voice // a push-to-talk voice note
	Document
	Sticker
	Location
	LiveLocation
	ContactCard
	Poll
)

// Message is a new message in a chat, from anyone (including the owner's
// phone: Ref.FromMe). The same message may arrive twice (reconnects,
// retries): the core suppresses duplicates by Ref.
type Message struct {
	Ref      MsgRef
	Time     time.Time
	PushName string // the sender's self-chosen name, as sent with the message
	Kind     MsgKind
	// Text is the text, or the caption of media (WhatsApp formatting:
	// *bold* _italic_ ~strike~ ```mono```).
	Text     string
	Mentions []UserID
	// ReplyTo is the quoted message, with QuotedText its text as WhatsApp
	// carried it (the original may be unknown to us).
	ReplyTo    *MsgRef
	QuotedText string
	Media      *Media
	Location   *Geo
	Contacts   []Contact // contact card(s)
	Poll       *PollInfo
	Forwarded  bool
	ViewOnce   bool
	// History marks messages from a history request (/history) or history
	// sync: relayed marked as delayed (XEP-0203), never as new.
	History bool
	// Retry is set when this message replaces an earlier Undecryptable with
	// the same Ref.
	Retry bool
}

// Media describes an attachment; Handle is the adapter's opaque key to
// download it later.
type Media struct {
	MimeType string
	FileName string
	Size     int64
	Duration time.Duration
	Handle   string
}

// Geo is a location.
type Geo struct {
	Lat, Lon      float64
	Name, Address string
}

// Contact is one shared contact card.
type Contact struct {
	Name    string
	Numbers []string // E.164 with '+'
	VCard   string
}

// PollInfo is a poll's question and options.
type PollInfo struct {
	Question   string
	Options    []string
	Selectable int // how many options one may pick; 0 or 1 means one
}

// Edit replaces the text of an earlier message.
type Edit struct {
	Ref  MsgRef // the edited message
	Time time.Time
	Text string
}

// Revoke deletes an earlier message for everyone.
type Revoke struct {
	Ref  MsgRef // the deleted message
	By   UserID // who deleted it (a group admin may delete others')
	Time time.Time
}

// Reaction sets (or, with Emoji "", removes) Sender's reaction to Target.
type Reaction struct {
	Target MsgRef
	Sender UserID
	FromMe bool
	Emoji  string
	Time   time.Time
}

// PollVote is one voter's current choice in a poll (already decrypted).
type PollVote struct {
	Poll    MsgRef
	Voter   UserID
	Options []string // the option texts chosen; empty = vote withdrawn
	Time    time.Time
}

// ReceiptKind is how far a message got.
type ReceiptKind int

const (
	Delivered ReceiptKind = iota + 1
	Read
	Played
)

// Receipt reports that IDs (messages the owner sent in Chat) reached or
// were read by By (in groups, one receipt per member).
type Receipt struct {
	Chat ChatID
	By   UserID
	IDs  []string
	Kind ReceiptKind
	Time time.Time
}

// TypingState is a chat state.
type TypingState int

const (
	Paused TypingState = iota
	Composing
	Recording
)

// Typing is a chat-presence change of Sender in Chat.
type Typing struct {
	Chat   ChatID
	Sender UserID
	State  TypingState
}

// Presence is a contact going online or offline.
type Presence struct {
	User     UserID
	Online   bool
	LastSeen time.Time // zero when unknown or hidden
}

// CallKind is what happened to a call.
type CallKind int

const (
	CallOffered CallKind = iota + 1
	CallMissed
	CallEnded
	CallRejected
)

// Call is a voice or video call event. waxmpp cannot take calls; it tells.
type Call struct {
	Chat  ChatID
	From  UserID
	ID    string
	Video bool
	Kind  CallKind
	Time  time.Time
}

// GroupChangeKind is what changed in a group.
type GroupChangeKind int

const (
	GroupJoined GroupChangeKind = iota + 1 // Users joined (by link or added)
	GroupLeft                              // Users left or were removed
	GroupPromoted
	GroupDemoted
	GroupSubject     // Subject is the new name
	GroupDescription // Text is the new description
	GroupCreated
)

// GroupChange is a change of a group's members or settings, by Actor.
type GroupChange struct {
	Chat    ChatID
	Actor   UserID
	Kind    GroupChangeKind
	Users   []UserID
	Subject string
	Text    string
	Time    time.Time
}

// Undecryptable is a message WhatsApp could not decrypt yet; the adapter
// asks the phone to resend, and the Message with the same Ref follows
// (Retry set).
type Undecryptable struct {
	Ref  MsgRef
	Time time.Time
}

// ContactInfo updates what the owner's address book (FullName, FirstName)
// or the user themself (PushName) calls User. Empty fields are unknown, not
// cleared.
type ContactInfo struct {
	User         UserID
	FullName     string
	FirstName    string
	PushName     string
	BusinessName string
}

// ChatInfo updates what is known of a chat: a group's name.
type ChatInfo struct {
	Chat ChatID
	Kind ChatKind
	Name string // group subject; "" unknown
}

// PictureChange says that a chat's profile picture (a person's, a group's)
// changed to the picture ID, or was removed. ChatPicture fetches it.
type PictureChange struct {
	Chat    ChatID
	ID      string // WhatsApp's id of the new picture; "" when Removed
	Removed bool
}

// Alias says that LID and Phone are the same person (WhatsApp's move from
// phone-number JIDs to LIDs): one person is one chat.
type Alias struct {
	LID   UserID
	Phone UserID
}

// ConnState is the WhatsApp connection's life state.
type ConnState int

const (
	Connected ConnState = iota + 1
	Disconnected
	LoggedOut      // unlinked; /pair again
	NotPaired      // no device yet
	StreamReplaced // another waxmpp (or client) took over this device
	Outdated       // WhatsApp rejected our client version
	TempBanned     // until Until
	PhoneOffline   // connected, but the phone was not seen since PhoneLastSeen
	Banned         // WhatsApp banned the account; linking again cannot help until WhatsApp lifts it
)

// Status reports a life event of the WhatsApp connection.
type Status struct {
	State         ConnState
	Reason        string // WhatsApp's words, for the owner
	Until         time.Time
	PhoneLastSeen time.Time
}

// PairCode is a pairing step: a QR code's content to render, or a link
// code to type on the phone, valid until Expires.
type PairCode struct {
	QR       string
	LinkCode string
	// Passkey, when set, is WhatsApp asking to confirm the link with the
	// account's passkey: WebAuthn request options (JSON) for relying party
	// whatsapp.com. Only a browser can answer (the WhatsApp adapter's
	// AnswerPasskey); the adapter sends it only to a caller that said so.
	Passkey string
	Expires time.Time
}

// PairResult ends a pairing attempt.
type PairResult struct {
	OK   bool
	ID   UserID // the linked account
	Name string
	Err  string // when !OK, for the owner
}

func (*Message) waEvent()       {}
func (*Edit) waEvent()          {}
func (*Revoke) waEvent()        {}
func (*Reaction) waEvent()      {}
func (*PollVote) waEvent()      {}
func (*Receipt) waEvent()       {}
func (*Typing) waEvent()        {}
func (*Presence) waEvent()      {}
func (*Call) waEvent()          {}
func (*GroupChange) waEvent()   {}
func (*Undecryptable) waEvent() {}
func (*ContactInfo) waEvent()   {}
func (*ChatInfo) waEvent()      {}
func (*PictureChange) waEvent() {}
func (*Alias) waEvent()         {}
func (*Status) waEvent()        {}
func (*PairCode) waEvent()      {}
func (*PairResult) waEvent()    {}

// OwnerEvent is something the owner did in the bot conversation, decoded by
// the XMPP side (bridge/xmpp) and consumed by the core. The concrete types
// are those below; the unexported method closes the set. Each comes with
// the OwnerMeta of the stanza it came in.
type OwnerEvent interface {
	Meta() OwnerMeta
	ownerEvent()
}

// OwnerMeta is what every owner event carries.
type OwnerMeta struct {
	// ID is the stanza's XEP-0359 origin-id, else its id attribute: what
	// the owner's clients refer to in replies, corrections and markers.
	ID   string
	Time time.Time // when the owner sent it (XEP-0203 delay), else when it arrived
	// Archive is the id the bot's server archive gave the stanza
	// (XEP-0359 stanza-id, XEP-0313), "" when the server keeps none. In a
	// room, the id the room gave it: what clients refer to there.
	Archive string
	// Room is the room (XEP-0045) the stanza came through, "" for the bot
	// conversation.
	Room string
	// Resource is the owner's resource the stanza came from: which of
	// the owner's clients (see OwnerClient) wrote it; "" in a room.
	Resource string
}

// Meta returns m; it makes every type that embeds OwnerMeta say its meta.
func (m OwnerMeta) Meta() OwnerMeta { return m }

// OwnerText is a message the owner wrote: text, a file's URL, or both.
type OwnerText struct {
	OwnerMeta
	Body    string // the text, with any XEP-0461 fallback quote removed
	ReplyTo string // XEP-0461: the XMPP id replied to
	URL     string // XEP-0066, or a body that is just a URL (aesgcm:// too)
	// File is set when the owner sent a file: the URL of an XEP-0066
	// attachment whose body is that URL (as Conversations, Dino and Gajim
	// send files), or a body that is a lone aesgcm:// URL (XEP-0454). A
	// URL inside text, or a lone https link, is text.
	File string
}

// OwnerCorrection corrects one of the owner's earlier messages (XEP-0308).
type OwnerCorrection struct {
	OwnerMeta
	Target string // the corrected message's id
	Body   string // the new text
}

// OwnerRetraction takes back one of the owner's earlier messages (XEP-0424
// in any of its forms: v1, v0 fastening, or a correction to " ").
type OwnerRetraction struct {
	OwnerMeta
	Target string
}

// OwnerReaction is the owner's full set of reactions to Target (XEP-0444);
// an empty set removes them.
type OwnerReaction struct {
	OwnerMeta
	Target string
	Emojis []string
}

// OwnerDisplayed says the owner has read the bot's messages up to Target
// (XEP-0333 displayed).
type OwnerDisplayed struct {
	OwnerMeta
	Target string
}

// OwnerReceived says the owner's client got the bot's message Target
// (XEP-0184).
type OwnerReceived struct {
	OwnerMeta
	Target string
}

// OwnerChatState is the owner's typing state (XEP-0085).
type OwnerChatState struct {
	OwnerMeta
	State TypingState
}

// OwnerOther is a stanza from the owner with nothing the bridge acts on. It
// is delivered all the same, so that it is acknowledged in order.
type OwnerOther struct {
	OwnerMeta
}

func (*OwnerText) ownerEvent()       {}
func (*OwnerCorrection) ownerEvent() {}
func (*OwnerRetraction) ownerEvent() {}
func (*OwnerReaction) ownerEvent()   {}
func (*OwnerDisplayed) ownerEvent()  {}
func (*OwnerReceived) ownerEvent()   {}
func (*OwnerChatState) ownerEvent()  {}
func (*OwnerOther) ownerEvent()      {}

// OwnerEncrypted is a message the owner's client encrypted end to end
// (OMEMO, OpenPGP for XMPP, legacy PGP, OTR): the bot cannot read it, and
// its body is only the client's fallback text ("I sent you an OMEMO
// encrypted message…"), which must never reach WhatsApp.
type OwnerEncrypted struct {
	OwnerMeta
	Scheme string // "OMEMO", "OpenPGP" (XEP-0373), "PGP" (XEP-0027), "OTR", or another name
}

// OwnerClient says which client software one of the owner's resources
// (OwnerMeta.Resource) runs, from its XEP-0115 caps node and XEP-0030
// identity name, or that the resource went offline. It is no stanza of the
// owner's archive: the XMPP side does not wait for it to be handled.
type OwnerClient struct {
	OwnerMeta
	Online bool
	Node   string // XEP-0115 caps node, e.g. "http://profanity-im.github.io"
	Name   string // XEP-0030 identity name, e.g. "Profanity 0.13.1"
	Bot    string // the bot's full JID, which ad-hoc commands are asked of
}

// OwnerRoster says how the owner and the bot are subscribed to each
// other's presence (RFC 6121), at each login and when it changes. Like
// OwnerClient it is no stanza of the owner's archive.
type OwnerRoster struct {
	OwnerMeta
	Bot string // the bot's bare JID
	// SeesBot: the owner receives the bot's presence, the bridge's health
	// light (the bot's roster says "from" or "both").
	SeesBot bool
	// Accepted: the owner accepted the bot's request, so the bot sees the
	// owner's presence ("to" or "both") and which clients they use.
	Accepted bool
}

func (*OwnerEncrypted) ownerEvent() {}
func (*OwnerClient) ownerEvent()    {}
func (*OwnerRoster) ownerEvent()    {}
