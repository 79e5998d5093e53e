package xmpp

// Outbound stanzas: typed values to the XML the bot writes. Every text and
// attribute value goes through Clean and the escaping writer.

import (
	"encoding/xml"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Message is one outbound <message/> from the bot to the owner. Every part
// but ID and To is optional; the zero value of a part means "absent".
type Message struct {
	// ID is our stanza id. It is also sent as the XEP-0359 origin-id, which
	// is what XEP-0308/0424/0444/0461 clients reference, so the outbox can
	// resend it unchanged after a reconnect. Required.
	ID string
	// To is the owner's bare JID. Required.
	To string
	// Type is the message type; "" means "chat".
	Type string
	// Body is the text, verbatim; it may use XEP-0393 styling. Characters
	// XML 1.0 forbids are dropped and invalid UTF-8 becomes U+FFFD.
	Body string

	// Reply makes this an XEP-0461 reply to another message.
	Reply *Reply
	// Quote, with Reply, is the text of the replied-to message. It is
	// prefixed to Body as an XEP-0393 quote ("> line" per line, then "\n";
	// trailing newlines of Quote are dropped)
	// and marked as an XEP-0428 fallback for urn:xmpp:reply:0, so clients
	// that show replies natively hide it and others still show the context.
	Quote string

	// Replace is the id of a message this one corrects (XEP-0308).
	Replace string
	// Retract is the id of a message this one retracts (XEP-0424,
	// urn:xmpp:message-retract:1). It carries an XEP-0428 fallback body:
	// Body if set, otherwise an English sentence, and a <store/> hint.
	Retract string
	// Reactions replaces the bot's reactions on a message (XEP-0444); an
	// empty list removes them all. A <store/> hint is added.
	Reactions *Reactions

	// Receipt is the id of a message whose delivery this acknowledges
	// (XEP-0184 <received/>).
	Receipt string
	// Markable marks the message markable (XEP-0333): the owner's clients
	// send displayed markers for it, which mark it read on WhatsApp. It
	// asks for no delivery receipt (XEP-0184): nothing uses one, and every
	// client of the owner's would answer every relayed message, each
	// answer copied by the server to the owner's other clients (XEP-0280)
	// and read by the bot. It only applies to messages with a normal body
	// (not retractions).
	Markable bool
	// Displayed is the id of a message that was read (XEP-0333); a
	// <store/> hint is added.
	Displayed string
	// ChatState is one of the XEP-0085 states (StateActive …). A message
	// with nothing else worth archiving gets a <no-store/> hint (XEP-0334).
	ChatState string

	// OOB attaches a URL (XEP-0066). For Conversations to show a file inline
	// the caller must also set Body to exactly OOB.URL; the codec does not
	// do this, because a caption-less URL body is a caller's decision.
	OOB *OOB
	// Delay marks the message as delayed (XEP-0203), e.g. a WhatsApp message
	// relayed after the bridge was offline.
	Delay *Delay
}

// Reply references the message being replied to (XEP-0461).
type Reply struct {
	To string // the full or bare JID of the original sender
	ID string // the referenced message's origin-id (or id)
}

// Reactions is the full set of reactions to one message (XEP-0444).
type Reactions struct {
	ID     string   // the referenced message's origin-id (or id)
	Emojis []string // one <reaction/> each; empty removes all
}

// OOB is an out-of-band URL (XEP-0066).
type OOB struct {
	URL  string
	Desc string
}

// Delay is a delayed-delivery timestamp (XEP-0203).
type Delay struct {
	Stamp  time.Time // sent in UTC
	From   string    // the entity that delayed it; optional
	Reason string    // optional text
}

// EncodeMessage returns the XML of one <message/> stanza for the stream.
// It fails only on a Message that would be meaningless on the wire (no ID or
// To, an unknown chat state, a reference without an id).
func EncodeMessage(m Message) ([]byte, error) { return appendMessage(nil, m) }

// appendMessage is EncodeMessage appending to dst (an outbox record's
// time stamp): one allocation for the usual message, none when dst has
// room.
func appendMessage(dst []byte, m Message) ([]byte, error) {
	// References are cleaned first: an id made only of forbidden
	// characters would otherwise become an element without its id.
	for _, s := range []*string{&m.ID, &m.To, &m.Replace, &m.Retract, &m.Receipt, &m.Displayed} {
		*s = Clean(*s)
	}
	if m.Reply != nil {
		m.Reply = &Reply{To: Clean(m.Reply.To), ID: Clean(m.Reply.ID)}
	}
	if m.Reactions != nil {
		m.Reactions = &Reactions{ID: Clean(m.Reactions.ID), Emojis: m.Reactions.Emojis}
	}
	if m.ID == "" || m.To == "" {
		return nil, fmt.Errorf("xmpp: encode message: id and to are required")
	}
	if m.ChatState != "" && !validChatState(m.ChatState) {
		return nil, fmt.Errorf("xmpp: encode message %s: unknown chat state %q", m.ID, m.ChatState)
	}
	if m.Reply != nil && m.Reply.ID == "" {
		return nil, fmt.Errorf("xmpp: encode message %s: reply without id", m.ID)
	}
	if m.Reactions != nil && m.Reactions.ID == "" {
		return nil, fmt.Errorf("xmpp: encode message %s: reactions without id", m.ID)
	}
	typ := m.Type
	if typ == "" {
		typ = "chat"
	}
	body := Clean(m.Body)
	fallbackEnd := 0
	if m.Retract != "" && body == "" {
		body = retractDefault
	}
	if q := strings.TrimRight(Clean(m.Quote), "\n"); m.Reply != nil && q != "" {
		q = quote(q)
		fallbackEnd = utf8.RuneCountInString(q)
		body = q + body
	}

	var w writer
	w.buf = dst
	if n := messageRoom(m); cap(dst)-len(dst) < n {
		w.buf = append(make([]byte, 0, len(dst)+n), dst...)
	}
	w.open("message", "", "type", typ, "to", m.To, "id", m.ID)
	if body != "" {
		w.elem("body", "", body)
	}
	w.empty("origin-id", NSSID, "id", m.ID)
	if m.Reply != nil {
		w.empty("reply", NSReply, "to", m.Reply.To, "id", m.Reply.ID)
		if fallbackEnd > 0 {
			w.open("fallback", NSFallback, "for", NSReply)
			w.empty("body", "", "start", "0", "end", strconv.Itoa(fallbackEnd))
			w.close()
		}
	}
	if m.Replace != "" {
		w.empty("replace", NSCorrect, "id", m.Replace)
	}
	if m.Retract != "" {
		w.empty("retract", NSRetract, "id", m.Retract)
		w.empty("fallback", NSFallback, "for", NSRetract)
	}
	if m.Reactions != nil {
		w.open("reactions", NSReactions, "id", m.Reactions.ID)
		for _, e := range m.Reactions.Emojis {
			w.elem("reaction", "", Clean(e))
		}
		w.close()
	}
	// Retractions, reactions and read markers have no real body; the hint
	// makes the server archive them (XEP-0313) so every client of the owner
	// sees them, as Conversations does for its own markers.
	store := m.Retract != "" || m.Reactions != nil || m.Displayed != ""
	if store {
		w.empty("store", NSHints)
	}
	if m.Receipt != "" {
		w.empty("received", NSReceipts, "id", m.Receipt)
	}
	if m.Markable && body != "" && m.Retract == "" {
		w.empty("markable", NSMarkers)
	}
	if m.Displayed != "" {
		w.empty("displayed", NSMarkers, "id", m.Displayed)
	}
	if m.ChatState != "" {
		w.empty(m.ChatState, NSChatStates)
		if body == "" && !store {
			w.empty("no-store", NSHints)
		}
	}
	if m.OOB != nil {
		w.open("x", NSOOB)
		w.elem("url", "", m.OOB.URL)
		if m.OOB.Desc != "" {
			w.elem("desc", "", m.OOB.Desc)
		}
		w.close()
	}
	if m.Delay != nil {
		w.open("delay", NSDelay, "stamp", m.Delay.Stamp.UTC().Format(time.RFC3339Nano), "from", m.Delay.From)
		if m.Delay.Reason != "" {
			w.text(m.Delay.Reason)
		}
		w.close()
	}
	w.close()
	return w.bytes(), nil
}

// messageRoom is about what m's stanza takes: the frame and its elements
// (some 300 bytes), the body with room for some escaping, the quote.
func messageRoom(m Message) int { return 512 + len(m.Body) + len(m.Body)/8 + 2*len(m.Quote) }

// quote renders text as an XEP-0393 block quote followed by a newline, the
// form Conversations and Dino produce for XEP-0461 fallbacks.
func quote(text string) string {
	var b strings.Builder
	for line := range strings.SplitSeq(text, "\n") {
		b.WriteString("> ")
		b.WriteString(line)
		b.WriteByte('\n')
	}
	return b.String()
}

// Presence is one outbound <presence/>.
type Presence struct {
	ID       string
	To       string // "" for a broadcast presence
	Type     string // "" (available), unavailable, subscribe, subscribed, unsubscribe, unsubscribed
	Show     string // "" (online), away, chat, dnd, xa
	Status   string // human-readable text
	Priority int    // sent when not 0
	Caps     *Caps  // XEP-0115 entity capabilities
}

// Caps is an XEP-0115 <c/> element.
type Caps struct {
	Hash string // "sha-1" when empty on output
	Node string
	Ver  string
}

// EncodePresence returns the XML of one <presence/> stanza.
func EncodePresence(p Presence) ([]byte, error) {
	switch p.Show {
	case "", "away", "chat", "dnd", "xa":
	default:
		return nil, fmt.Errorf("xmpp: encode presence: unknown show %q", p.Show)
	}
	var w writer
	w.open("presence", "", "id", p.ID, "to", p.To, "type", p.Type)
	if p.Show != "" {
		w.elem("show", "", p.Show)
	}
	if p.Status != "" {
		w.elem("status", "", p.Status)
	}
	if p.Priority != 0 {
		w.elem("priority", "", strconv.Itoa(p.Priority))
	}
	if p.Caps != nil {
		hash := p.Caps.Hash
		if hash == "" {
			hash = "sha-1"
		}
		w.empty("c", NSCaps, "hash", hash, "node", p.Caps.Node, "ver", p.Caps.Ver)
	}
	w.close()
	return w.bytes(), nil
}

// Subscribe asks to see to's presence (RFC 6121 §3.1); the bot asks the owner.
func Subscribe(to string) Presence { return Presence{To: to, Type: "subscribe"} }

// Subscribed approves to's subscription request (RFC 6121 §3.1.4); only
// the owner's.
func Subscribed(to string) Presence { return Presence{To: to, Type: "subscribed"} }

// Unsubscribed refuses or cancels to's subscription (RFC 6121 §3.2); the
// answer to strangers.
func Unsubscribed(to string) Presence { return Presence{To: to, Type: "unsubscribed"} }

// IQ is one outbound <iq/>.
type IQ struct {
	ID   string // required
	To   string
	Type string // get, set, result or error; required
	// Payload is the single child element. It is either an Inner built by
	// this package or any value encoding/xml can marshal (its XMLName
	// carries the namespace). nil means no child (a bare result).
	Payload any
	// Error is the <error/> child of an error reply.
	Error *StanzaError
}

// Inner is pre-encoded XML made by this package's helpers, used as an
// IQ.Payload. Its zero value is empty.
type Inner struct{ b []byte }

// StanzaError is an RFC 6120 §8.3 stanza error.
type StanzaError struct {
	Type      string // cancel, continue, modify, auth, wait
	Condition string // e.g. "service-unavailable"
	Text      string // optional
}

func (e *StanzaError) Error() string {
	if e.Text != "" {
		return fmt.Sprintf("xmpp: stanza error %s/%s: %s", e.Type, e.Condition, e.Text)
	}
	return fmt.Sprintf("xmpp: stanza error %s/%s", e.Type, e.Condition)
}

// EncodeIQ returns the XML of one <iq/> stanza.
func EncodeIQ(iq IQ) ([]byte, error) {
	switch iq.Type {
	case "get", "set", "result", "error":
	default:
		return nil, fmt.Errorf("xmpp: encode iq %s: bad type %q", iq.ID, iq.Type)
	}
	if iq.ID == "" {
		return nil, fmt.Errorf("xmpp: encode iq: id is required")
	}
	var payload []byte
	switch p := iq.Payload.(type) {
	case nil:
	case Inner:
		payload = p.b
	case *Inner:
		payload = p.b
	default:
		b, err := xml.Marshal(p)
		if err != nil {
			return nil, fmt.Errorf("xmpp: encode iq %s: %w", iq.ID, err)
		}
		payload = b
	}
	var w writer
	w.open("iq", "", "type", iq.Type, "to", iq.To, "id", iq.ID)
	if len(payload) > 0 {
		w.raw(payload)
	}
	if iq.Error != nil {
		iq.Error.write(&w)
	}
	w.close()
	return w.bytes(), nil
}

func (e *StanzaError) write(w *writer) {
	w.open("error", "", "type", e.Type)
	w.empty(e.Condition, NSStanzas)
	if e.Text != "" {
		w.elem("text", NSStanzas, e.Text)
	}
	w.close()
}

// Error conditions the session answers with.
const (
	CondServiceUnavailable    = "service-unavailable"
	CondFeatureNotImplemented = "feature-not-implemented"
)

// ErrorReply answers a received get or set with an error of type cancel
// and the given condition, e.g. CondServiceUnavailable for requests the bot
// does not serve (RFC 6120 §8.4) or CondFeatureNotImplemented.
func ErrorReply(req *InIQ, condition string) IQ {
	return IQ{ID: req.ID, To: req.From, Type: "error", Error: &StanzaError{Type: "cancel", Condition: condition}}
}

// Result answers a received get or set with an empty result, which is the
// whole answer to an XEP-0199 ping and to a roster push (RFC 6121 §2.1.6).
func Result(req *InIQ) IQ {
	return IQ{ID: req.ID, To: req.From, Type: "result"}
}

// Ping is an XEP-0199 ping to the server (to == "") or an entity.
func Ping(id, to string) IQ {
	var w writer
	w.empty("ping", NSPing)
	return IQ{ID: id, To: to, Type: "get", Payload: Inner{w.bytes()}}
}

// DiscoInfoResult answers a disco#info get with info. node is echoed from
// the request (XEP-0115 clients ask for "node#ver").
func DiscoInfoResult(req *InIQ, node string, info DiscoInfo) IQ {
	return IQ{ID: req.ID, To: req.From, Type: "result", Payload: Inner{info.encode(node)}}
}
