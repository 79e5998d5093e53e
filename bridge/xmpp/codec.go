package xmpp

// The stanza codec: typed Go values to stanza XML and back, with no I/O.
//
// Outbound stanzas are written by a small escaping writer (xml.EscapeText for
// every text and attribute value) after the text has been cleaned of
// characters XML 1.0 forbids, so a strange WhatsApp message can never break
// the XML stream. Inbound stanzas are read token by token into a bounded tree
// and then interpreted; unknown elements are ignored.

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Namespaces used by the codec.
const (
	NSClient       = "jabber:client"
	NSStanzas      = "urn:ietf:params:xml:ns:xmpp-stanzas"    // RFC 6120 §8.3
	NSSID          = "urn:xmpp:sid:0"                         // XEP-0359
	NSReply        = "urn:xmpp:reply:0"                       // XEP-0461
	NSFallback     = "urn:xmpp:fallback:0"                    // XEP-0428
	NSCorrect      = "urn:xmpp:message-correct:0"             // XEP-0308
	NSRetract      = "urn:xmpp:message-retract:1"             // XEP-0424 ≥ 0.4
	NSRetract0     = "urn:xmpp:message-retract:0"             // XEP-0424 < 0.4, inside XEP-0422
	NSFasten       = "urn:xmpp:fasten:0"                      // XEP-0422
	NSReactions    = "urn:xmpp:reactions:0"                   // XEP-0444
	NSHints        = "urn:xmpp:hints"                         // XEP-0334
	NSReceipts     = "urn:xmpp:receipts"                      // XEP-0184
	NSMarkers      = "urn:xmpp:chat-markers:0"                // XEP-0333
	NSChatStates   = "http://jabber.org/protocol/chatstates"  // XEP-0085
	NSOOB          = "jabber:x:oob"                           // XEP-0066
	NSDelay        = "urn:xmpp:delay"                         // XEP-0203
	NSCarbons      = "urn:xmpp:carbons:2"                     // XEP-0280
	NSMAM          = "urn:xmpp:mam:2"                         // XEP-0313
	NSRSM          = "http://jabber.org/protocol/rsm"         // XEP-0059
	NSForward      = "urn:xmpp:forward:0"                     // XEP-0297
	NSCaps         = "http://jabber.org/protocol/caps"        // XEP-0115
	NSDiscoInfo    = "http://jabber.org/protocol/disco#info"  // XEP-0030
	NSDiscoItems   = "http://jabber.org/protocol/disco#items" // XEP-0030
	NSDataForms    = "jabber:x:data"                          // XEP-0004
	NSPing         = "urn:xmpp:ping"                          // XEP-0199
	NSRoster       = "jabber:iq:roster"                       // RFC 6121
	NSUpload       = "urn:xmpp:http:upload:0"                 // XEP-0363
	NSCommands     = "http://jabber.org/protocol/commands"    // XEP-0050
	NSStyling      = "urn:xmpp:styling:0"                     // XEP-0393
	xmlNamespace   = "http://www.w3.org/XML/1998/namespace"   // the xml: prefix
	retractDefault = "This person attempted to retract a previous message, but it's unsupported by your client."
)

// Chat states of XEP-0085.
const (
	StateActive    = "active"
	StateComposing = "composing"
	StatePaused    = "paused"
	StateInactive  = "inactive"
	StateGone      = "gone"
)

func validChatState(s string) bool {
	switch s {
	case StateActive, StateComposing, StatePaused, StateInactive, StateGone:
		return true
	}
	return false
}

// ---------------------------------------------------------------------------
// Outbound

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
	// Request asks for a delivery receipt (XEP-0184) and marks the message
	// markable (XEP-0333). It only applies to messages with a normal body
	// (not retractions).
	Request bool
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
func EncodeMessage(m Message) ([]byte, error) {
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
	if m.Request && body != "" && m.Retract == "" {
		w.empty("request", NSReceipts)
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

// RosterItem is one roster entry (RFC 6121 §2.1.2).
type RosterItem struct {
	JID          string   `xml:"jid,attr"`
	Name         string   `xml:"name,attr,omitempty"`
	Subscription string   `xml:"subscription,attr,omitempty"` // none, to, from, both, remove
	Ask          string   `xml:"ask,attr,omitempty"`
	Groups       []string `xml:"group"`
}

// Roster is the payload of a roster get result or push.
type Roster struct {
	XMLName xml.Name     `xml:"jabber:iq:roster query"`
	Ver     string       `xml:"ver,attr,omitempty"`
	Items   []RosterItem `xml:"item"`
}

// RosterGet asks the server for the bot's roster.
func RosterGet(id string) IQ {
	var w writer
	w.empty("query", NSRoster)
	return IQ{ID: id, Type: "get", Payload: Inner{w.bytes()}}
}

// RosterSet adds, changes or (Subscription "remove") removes one item.
func RosterSet(id string, item RosterItem) IQ {
	var w writer
	w.open("query", NSRoster)
	w.open("item", "", "jid", item.JID, "name", item.Name, "subscription", item.Subscription)
	for _, g := range item.Groups {
		w.elem("group", "", g)
	}
	w.close()
	w.close()
	return IQ{ID: id, Type: "set", Payload: Inner{w.bytes()}}
}

// UploadRequest asks the upload service for an XEP-0363 slot.
func UploadRequest(id, service, filename string, size int64, contentType string) IQ {
	var w writer
	w.empty("request", NSUpload, "filename", filename, "size", strconv.FormatInt(size, 10), "content-type", contentType)
	return IQ{ID: id, To: service, Type: "get", Payload: Inner{w.bytes()}}
}

// UploadSlot is the payload of an XEP-0363 slot result.
type UploadSlot struct {
	XMLName xml.Name `xml:"urn:xmpp:http:upload:0 slot"`
	Put     struct {
		URL     string `xml:"url,attr"`
		Headers []struct {
			Name  string `xml:"name,attr"`
			Value string `xml:",chardata"`
		} `xml:"header"`
	} `xml:"put"`
	Get struct {
		URL string `xml:"url,attr"`
	} `xml:"get"`
}

// ---------------------------------------------------------------------------
// Text cleaning and the writer

// Clean returns s with invalid UTF-8 replaced by U+FFFD and the characters
// XML 1.0 forbids (controls other than tab, newline and carriage return,
// U+FFFE, U+FFFF) dropped. Everything the codec writes goes through it.
func Clean(s string) string {
	ok := true
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && n == 1) || !xmlChar(r) {
			ok = false
			break
		}
		i += n
	}
	if ok {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		i += n
		switch {
		case r == utf8.RuneError && n == 1:
			b.WriteRune(utf8.RuneError)
		case xmlChar(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

// xmlChar reports whether r is a Char of XML 1.0 §2.2.
func xmlChar(r rune) bool {
	return r == 0x09 || r == 0x0A || r == 0x0D ||
		r >= 0x20 && r <= 0xD7FF ||
		r >= 0xE000 && r <= 0xFFFD ||
		r >= 0x10000 && r <= 0x10FFFF
}

// writer builds XML with every text and attribute value cleaned and
// escaped. Names are constants of this file or names read by the decoder.
type writer struct {
	buf     bytes.Buffer
	stack   []string
	pending bool // a start tag is open and waits for '>' or '/>'
}

// open starts an element. ns, if set, becomes its default namespace; attrs
// are name/value pairs, and pairs with an empty value are left out.
func (w *writer) open(name, ns string, attrs ...string) {
	w.start(name, ns, false, attrs)
}

// start is open, keeping empty attribute values if keepEmpty.
func (w *writer) start(name, ns string, keepEmpty bool, attrs []string) {
	w.finishStart()
	w.buf.WriteByte('<')
	w.buf.WriteString(name)
	if ns != "" {
		w.attr("xmlns", ns)
	}
	for i := 0; i+1 < len(attrs); i += 2 {
		if keepEmpty || attrs[i+1] != "" {
			w.attr(attrs[i], attrs[i+1])
		}
	}
	w.stack = append(w.stack, name)
	w.pending = true
}

func (w *writer) attr(name, value string) {
	w.buf.WriteByte(' ')
	w.buf.WriteString(name)
	w.buf.WriteString(`="`)
	xml.EscapeText(&w.buf, []byte(Clean(value))) // escapes quotes too
	w.buf.WriteByte('"')
}

func (w *writer) finishStart() {
	if w.pending {
		w.buf.WriteByte('>')
		w.pending = false
	}
}

func (w *writer) text(s string) {
	if s == "" {
		return
	}
	w.finishStart()
	xml.EscapeText(&w.buf, []byte(Clean(s)))
}

// raw appends XML that is already well-formed (from xml.Marshal or this
// package).
func (w *writer) raw(b []byte) {
	w.finishStart()
	w.buf.Write(b)
}

func (w *writer) close() {
	name := w.stack[len(w.stack)-1]
	w.stack = w.stack[:len(w.stack)-1]
	if w.pending {
		w.buf.WriteString("/>")
		w.pending = false
		return
	}
	w.buf.WriteString("</")
	w.buf.WriteString(name)
	w.buf.WriteByte('>')
}

func (w *writer) empty(name, ns string, attrs ...string) {
	w.open(name, ns, attrs...)
	w.close()
}

func (w *writer) elem(name, ns, text string) {
	w.open(name, ns)
	w.text(text)
	w.close()
}

func (w *writer) bytes() []byte { return w.buf.Bytes() }

// ---------------------------------------------------------------------------
// Inbound

// Stanza is a decoded top-level stanza: *Inbound, *InPresence or *InIQ.
type Stanza interface{ stanza() }

func (*Inbound) stanza()    {}
func (*InPresence) stanza() {}
func (*InIQ) stanza()       {}

// Archived describes the XEP-0313 result wrapper of an archived message.
type Archived struct {
	QueryID string // the query it answers
	ID      string // the archive id (the stanza-id the archive gave it)
	From    string // the wrapper's from: the archive, i.e. the bot's own bare JID
}

// Carbon tells whether a message came wrapped in an XEP-0280 carbon.
type Carbon string

const (
	CarbonNone     Carbon = ""
	CarbonSent     Carbon = "sent"     // a copy of a message sent by another resource
	CarbonReceived Carbon = "received" // a copy of a message received by another resource
)

// RetractForm tells which of the three retraction forms was used.
type RetractForm int

const (
	RetractV1         RetractForm = iota + 1 // XEP-0424 urn:xmpp:message-retract:1 <retract id=…/>
	RetractFasten                            // XEP-0424 v0: <apply-to id=…> (XEP-0422) holding <retract/>
	RetractCorrection                        // XEP-0308 correction whose body is " " (Cheogram)
)

func (f RetractForm) String() string {
	switch f {
	case RetractV1:
		return "retract:1"
	case RetractFasten:
		return "retract:0"
	case RetractCorrection:
		return "correction"
	}
	return "RetractForm(" + strconv.Itoa(int(f)) + ")"
}

// Retraction is a request to delete an earlier message.
type Retraction struct {
	ID   string // the retracted message's origin-id (or id)
	Form RetractForm
}

// StanzaID is an XEP-0359 <stanza-id/> assigned by the entity By.
type StanzaID struct {
	ID string
	By string
}

// Range is a span of the body in Unicode code points, End exclusive
// (XEP-0426).
type Range struct{ Start, End int }

// Fallback is an XEP-0428 fallback marker: the parts of the body only
// there for clients that do not support the specification For. No Ranges
// means the whole body.
type Fallback struct {
	For    string
	Ranges []Range
}

// Marker is an XEP-0333 chat marker.
type Marker struct {
	Kind string // received, displayed or acknowledged
	ID   string
}

// Inbound is a received <message/>. For a carbon, the fields describe
// the forwarded message and Carbon/CarbonFrom the wrapper.
type Inbound struct {
	ID   string // the id attribute
	From string
	To   string
	Type string // as sent; "" means normal
	// Body is the text of the first <body/> (the one without xml:lang if
	// there is one), fallbacks included. For retractions it is the fallback
	// sentence; ignore it when Retract is set.
	Body    string
	HasBody bool

	OriginID  string     // XEP-0359
	StanzaIDs []StanzaID // XEP-0359, as added by servers
	Reply     *Reply     // XEP-0461
	Fallbacks []Fallback // XEP-0428; see BodyWithoutFallback
	Replace   string     // XEP-0308; not set when the correction is a retraction
	Retract   *Retraction
	Reactions *Reactions // XEP-0444
	Request   bool       // XEP-0184 receipt requested
	Received  string     // XEP-0184 receipt for this id
	Markable  bool       // XEP-0333
	Marker    *Marker    // XEP-0333
	ChatState string     // XEP-0085
	OOB       *OOB       // XEP-0066
	Delay     *Delay     // XEP-0203
	Error     *StanzaError

	Carbon     Carbon // XEP-0280
	CarbonFrom string // the wrapper's from; only the bot's own bare JID is legitimate

	// Archived is set for a message forwarded from a message archive
	// (XEP-0313 result); the fields above describe the archived message.
	Archived *Archived
}

// BodyWithoutFallback returns Body without the parts marked as fallback for
// the namespace ns (e.g. NSReply strips the quote of a reply). Ranges that
// do not fit the body are ignored; a fallback without ranges removes the
// whole body.
func (m *Inbound) BodyWithoutFallback(ns string) string {
	var ranges []Range
	for _, f := range m.Fallbacks {
		if f.For != ns {
			continue
		}
		if len(f.Ranges) == 0 {
			return ""
		}
		ranges = append(ranges, f.Ranges...)
	}
	if len(ranges) == 0 {
		return m.Body
	}
	runes := []rune(m.Body)
	drop := make([]bool, len(runes))
	for _, r := range ranges {
		if r.Start < 0 || r.End > len(runes) || r.Start >= r.End {
			continue
		}
		for i := r.Start; i < r.End; i++ {
			drop[i] = true
		}
	}
	var b strings.Builder
	for i, r := range runes {
		if !drop[i] {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// InPresence is a received <presence/>.
type InPresence struct {
	ID       string
	From     string
	To       string
	Type     string // "" means available
	Show     string
	Status   string
	Priority int
	Caps     *Caps // XEP-0115
	Error    *StanzaError
}

// InIQ is a received <iq/>. The session unmarshals the payload it handles
// with Unmarshal (ping, disco#info, roster push, upload slot, commands).
type InIQ struct {
	ID      string
	From    string
	To      string
	Type    string   // get, set, result or error
	Payload xml.Name // the first child other than <error/>; zero if none
	// PayloadXML is that child re-encoded with its namespaces, ready for
	// xml.Unmarshal; nil if none.
	PayloadXML []byte
	Error      *StanzaError
}

// Unmarshal decodes the payload into v with encoding/xml.
func (iq *InIQ) Unmarshal(v any) error {
	if iq.PayloadXML == nil {
		return fmt.Errorf("xmpp: iq %s has no payload", iq.ID)
	}
	if err := xml.Unmarshal(iq.PayloadXML, v); err != nil {
		return fmt.Errorf("xmpp: iq %s payload %s: %w", iq.ID, iq.Payload.Local, err)
	}
	return nil
}

// DecodeError is an error in one well-formed element: too large, too deep,
// not a stanza, or an invalid stanza. The stream itself is still in order
// (the element has been consumed), so the session drops just this stanza.
// Any other error from Decode comes from the XML stream and is fatal to it.
type DecodeError struct {
	Name   xml.Name // the top-level element
	ID     string   // its id attribute, if any
	Reason string
	Err    error // ErrTooLarge, ErrTooDeep, ErrNotStanza or nil
}

func (e *DecodeError) Error() string {
	s := "xmpp: decode <" + e.Name.Local + ">"
	if e.ID != "" {
		s += " " + e.ID
	}
	return s + ": " + e.Reason
}

func (e *DecodeError) Unwrap() error { return e.Err }

// Sentinels wrapped in a *DecodeError.
var (
	ErrTooLarge  = errors.New("stanza too large")
	ErrTooDeep   = errors.New("stanza nested too deeply")
	ErrNotStanza = errors.New("not a stanza")
)

// Limits bound what Decode accepts. Memory used while decoding one stanza is
// proportional to MaxBytes. The xml.Decoder itself buffers a whole text
// token before returning it, so the session should also cap the bytes read
// per top-level element (Decoder.InputOffset makes that easy).
type Limits struct {
	// MaxBytes bounds the text, attribute values and names of a stanza.
	MaxBytes int
	// MaxDepth bounds element nesting; the stanza element is depth 1.
	MaxDepth int
}

// DefaultLimits are used by Decode and DecodeBytes.
var DefaultLimits = Limits{MaxBytes: 64 << 10, MaxDepth: 32}

// Decode reads one top-level element of the stream whose start tag the
// caller has just read, using DefaultLimits.
func Decode(d *xml.Decoder, start xml.StartElement) (Stanza, error) {
	return DefaultLimits.Decode(d, start)
}

// DecodeBytes decodes a single stanza from b, using DefaultLimits.
func DecodeBytes(b []byte) (Stanza, error) {
	return DefaultLimits.DecodeBytes(b)
}

// Decode reads one top-level element of the stream whose start tag the
// caller has just read, and consumes it entirely, even on a *DecodeError.
// Elements other than message, presence and iq give a *DecodeError
// wrapping ErrNotStanza; the session should look at stream-level elements
// (stream:error, …) before calling Decode.
func (l Limits) Decode(d *xml.Decoder, start xml.StartElement) (Stanza, error) {
	n, err := l.read(d, start)
	if err != nil {
		return nil, err
	}
	if n.name.Space != "" && n.name.Space != NSClient {
		return nil, &DecodeError{Name: n.name, ID: n.attr("id"), Reason: "not a stanza (namespace " + n.name.Space + ")", Err: ErrNotStanza}
	}
	switch n.name.Local {
	case "message":
		return parseMessage(n, true), nil
	case "presence":
		return parsePresence(n), nil
	case "iq":
		return parseIQ(n)
	}
	return nil, &DecodeError{Name: n.name, Reason: "not a stanza", Err: ErrNotStanza}
}

// DecodeBytes decodes b, which must hold one element and nothing else but
// white space, comments and an XML declaration.
func (l Limits) DecodeBytes(b []byte) (Stanza, error) {
	d := xml.NewDecoder(bytes.NewReader(b))
	var start xml.StartElement
	for {
		tok, err := d.Token()
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, fmt.Errorf("xmpp: decode: %w", err)
		}
		if s, ok := tok.(xml.StartElement); ok {
			start = s
			break
		}
		if !ignorable(tok) {
			return nil, &DecodeError{Reason: "content before the element", Err: ErrNotStanza}
		}
	}
	st, err := l.Decode(d, start)
	if err != nil {
		return nil, err
	}
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return st, nil
		}
		if err != nil {
			return nil, fmt.Errorf("xmpp: decode: %w", err)
		}
		if !ignorable(tok) {
			return nil, &DecodeError{Name: start.Name, Reason: "content after the element"}
		}
	}
}

func ignorable(tok xml.Token) bool {
	switch t := tok.(type) {
	case xml.CharData:
		return len(bytes.TrimSpace(t)) == 0
	case xml.Comment, xml.ProcInst:
		return true
	}
	return false
}

// node is an element read into memory. Its parts keep text and children in
// document order so an IQ payload can be re-encoded faithfully.
type node struct {
	name  xml.Name
	attrs []xml.Attr
	parts []part
}

type part struct {
	text string
	el   *node
}

func (n *node) attr(local string) string {
	for _, a := range n.attrs {
		if a.Name.Space == "" && a.Name.Local == local {
			return a.Value
		}
	}
	return ""
}

func (n *node) lang() string {
	for _, a := range n.attrs {
		if a.Name.Space == xmlNamespace && a.Name.Local == "lang" {
			return a.Value
		}
	}
	return ""
}

// text returns the element's own character data.
func (n *node) text() string {
	var b strings.Builder
	for _, p := range n.parts {
		if p.el == nil {
			b.WriteString(p.text)
		}
	}
	return b.String()
}

func (n *node) children() []*node {
	var c []*node
	for _, p := range n.parts {
		if p.el != nil {
			c = append(c, p.el)
		}
	}
	return c
}

func (n *node) child(space, local string) *node {
	for _, p := range n.parts {
		if p.el != nil && p.el.name.Space == space && p.el.name.Local == local {
			return p.el
		}
	}
	return nil
}

// per-element and per-attribute overhead charged to Limits.MaxBytes, so
// that many empty elements cannot take unbounded memory either.
const nodeCost = 32

// read consumes the element started by start into a tree, within l.
func (l Limits) read(d *xml.Decoder, start xml.StartElement) (*node, error) {
	budget := l.MaxBytes
	charge := func(n int) bool { budget -= n; return budget >= 0 }
	var id string
	for _, a := range start.Attr {
		if a.Name.Space == "" && a.Name.Local == "id" {
			id = a.Value
		}
	}
	// fail consumes what remains of the open elements and reports err.
	fail := func(open int, err error) (*node, error) {
		for range open {
			if serr := d.Skip(); serr != nil {
				return nil, fmt.Errorf("xmpp: decode <%s>: %w", start.Name.Local, serr)
			}
		}
		return nil, &DecodeError{Name: start.Name, ID: Clean(id), Reason: err.Error(), Err: err}
	}
	newNode := func(s xml.StartElement) (*node, bool) {
		n := &node{name: s.Name}
		ok := charge(nodeCost + len(s.Name.Space) + len(s.Name.Local))
		for _, a := range s.Attr {
			if a.Name.Space == "xmlns" || a.Name.Space == "" && a.Name.Local == "xmlns" {
				continue // the decoder has already resolved namespaces
			}
			ok = charge(nodeCost+len(a.Name.Space)+len(a.Name.Local)+len(a.Value)) && ok
			n.attrs = append(n.attrs, a)
		}
		return n, ok
	}
	if l.MaxDepth < 1 {
		return fail(1, ErrTooDeep)
	}
	root, ok := newNode(start)
	if !ok {
		return fail(1, ErrTooLarge)
	}
	stack := []*node{root}
	for len(stack) > 0 {
		tok, err := d.Token()
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, fmt.Errorf("xmpp: decode <%s>: %w", start.Name.Local, err)
		}
		top := stack[len(stack)-1]
		switch t := tok.(type) {
		case xml.StartElement:
			if len(stack) >= l.MaxDepth {
				return fail(len(stack)+1, ErrTooDeep)
			}
			n, ok := newNode(t)
			if !ok {
				return fail(len(stack)+1, ErrTooLarge)
			}
			top.parts = append(top.parts, part{el: n})
			stack = append(stack, n)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if !charge(len(t)) {
				return fail(len(stack), ErrTooLarge)
			}
			top.parts = append(top.parts, part{text: string(t)})
		case xml.Comment, xml.ProcInst, xml.Directive:
			if !charge(len(tokBytes(t))) {
				return fail(len(stack), ErrTooLarge)
			}
		}
	}
	return root, nil
}

func tokBytes(t xml.Token) []byte {
	switch t := t.(type) {
	case xml.Comment:
		return t
	case xml.ProcInst:
		return t.Inst
	case xml.Directive:
		return t
	}
	return nil
}

func parseMessage(n *node, outer bool) *Inbound {
	m := &Inbound{
		ID:   Clean(n.attr("id")),
		From: Clean(n.attr("from")),
		To:   Clean(n.attr("to")),
		Type: Clean(n.attr("type")),
	}
	ns := n.name.Space // jabber:client, or "" outside a stream
	var retract1, retract0 string
	bodyLang := ""
	for _, c := range n.children() {
		switch c.name.Space {
		case ns:
			switch c.name.Local {
			case "body":
				// Prefer a body without xml:lang; otherwise the first.
				if !m.HasBody || (bodyLang != "" && c.lang() == "") {
					m.Body, m.HasBody, bodyLang = Clean(c.text()), true, c.lang()
				}
			case "error":
				m.Error = parseError(c)
			}
		case NSSID:
			switch c.name.Local {
			case "origin-id":
				m.OriginID = Clean(c.attr("id"))
			case "stanza-id":
				m.StanzaIDs = append(m.StanzaIDs, StanzaID{ID: Clean(c.attr("id")), By: Clean(c.attr("by"))})
			}
		case NSReply:
			if c.name.Local == "reply" {
				m.Reply = &Reply{To: Clean(c.attr("to")), ID: Clean(c.attr("id"))}
			}
		case NSFallback:
			if c.name.Local == "fallback" {
				if f, ok := parseFallback(c); ok {
					m.Fallbacks = append(m.Fallbacks, f)
				}
			}
		case NSCorrect:
			if c.name.Local == "replace" {
				m.Replace = Clean(c.attr("id"))
			}
		case NSRetract:
			if c.name.Local == "retract" {
				retract1 = Clean(c.attr("id"))
			}
		case NSFasten:
			if c.name.Local == "apply-to" && c.child(NSRetract0, "retract") != nil {
				retract0 = Clean(c.attr("id"))
			}
		case NSReactions:
			if c.name.Local == "reactions" {
				r := &Reactions{ID: Clean(c.attr("id")), Emojis: []string{}}
				for _, e := range c.children() {
					if e.name.Space == NSReactions && e.name.Local == "reaction" {
						r.Emojis = append(r.Emojis, Clean(e.text()))
					}
				}
				m.Reactions = r
			}
		case NSReceipts:
			switch c.name.Local {
			case "request":
				m.Request = true
			case "received":
				m.Received = Clean(c.attr("id"))
			}
		case NSMarkers:
			switch c.name.Local {
			case "markable":
				m.Markable = true
			case "received", "displayed", "acknowledged":
				m.Marker = &Marker{Kind: c.name.Local, ID: Clean(c.attr("id"))}
			}
		case NSChatStates:
			if validChatState(c.name.Local) {
				m.ChatState = c.name.Local
			}
		case NSOOB:
			if c.name.Local == "x" {
				o := &OOB{}
				if u := c.child(NSOOB, "url"); u != nil {
					o.URL = Clean(u.text())
				}
				if d := c.child(NSOOB, "desc"); d != nil {
					o.Desc = Clean(d.text())
				}
				m.OOB = o
			}
		case NSDelay:
			if c.name.Local == "delay" {
				if t, err := time.Parse(time.RFC3339Nano, c.attr("stamp")); err == nil {
					m.Delay = &Delay{Stamp: t.UTC(), From: Clean(c.attr("from")), Reason: Clean(c.text())}
				}
			}
		case NSMAM:
			// XEP-0313: an archived message, forwarded with its original
			// delay. The inner message is what the owner sent.
			if !outer || c.name.Local != "result" {
				continue
			}
			fw := c.child(NSForward, "forwarded")
			if fw == nil {
				continue
			}
			var delay *Delay
			if d := fw.child(NSDelay, "delay"); d != nil {
				if t, err := time.Parse(time.RFC3339Nano, d.attr("stamp")); err == nil {
					delay = &Delay{Stamp: t.UTC(), From: Clean(d.attr("from"))}
				}
			}
			for _, inner := range fw.children() {
				if inner.name.Local == "message" && (inner.name.Space == NSClient || inner.name.Space == ns) {
					im := parseMessage(inner, false)
					im.Archived = &Archived{QueryID: Clean(c.attr("queryid")), ID: Clean(c.attr("id")), From: m.From}
					if im.Delay == nil {
						im.Delay = delay
					}
					return im
				}
			}
		case NSCarbons:
			if !outer || (c.name.Local != "sent" && c.name.Local != "received") {
				continue
			}
			fw := c.child(NSForward, "forwarded")
			if fw == nil {
				continue
			}
			for _, inner := range fw.children() {
				if inner.name.Local == "message" && (inner.name.Space == NSClient || inner.name.Space == ns) {
					im := parseMessage(inner, false)
					im.Carbon = Carbon(c.name.Local)
					im.CarbonFrom = m.From
					return im
				}
			}
		}
	}
	switch {
	case retract1 != "":
		m.Retract = &Retraction{ID: retract1, Form: RetractV1}
	case retract0 != "":
		m.Retract = &Retraction{ID: retract0, Form: RetractFasten}
	case m.Replace != "" && m.HasBody && m.Body == " ":
		m.Retract = &Retraction{ID: m.Replace, Form: RetractCorrection}
	}
	if m.Retract != nil && m.Retract.Form == RetractCorrection {
		m.Replace = ""
	}
	return m
}

func parseFallback(c *node) (Fallback, bool) {
	f := Fallback{For: Clean(c.attr("for"))}
	for _, b := range c.children() {
		if b.name.Space != NSFallback || b.name.Local != "body" {
			continue // <subject/> ranges do not concern the body
		}
		s, err1 := strconv.Atoi(b.attr("start"))
		e, err2 := strconv.Atoi(b.attr("end"))
		if err1 != nil || err2 != nil || s < 0 || e < s {
			// A broken range must not make the whole body a fallback.
			return Fallback{}, false
		}
		f.Ranges = append(f.Ranges, Range{Start: s, End: e})
	}
	if len(f.Ranges) == 0 && len(c.children()) > 0 {
		return Fallback{}, false // only <subject/> ranges
	}
	return f, true
}

func parseError(c *node) *StanzaError {
	e := &StanzaError{Type: Clean(c.attr("type"))}
	for _, k := range c.children() {
		if k.name.Space != NSStanzas {
			continue
		}
		if k.name.Local == "text" {
			e.Text = Clean(k.text())
		} else if e.Condition == "" {
			e.Condition = k.name.Local
		}
	}
	return e
}

func parsePresence(n *node) *InPresence {
	p := &InPresence{
		ID:   Clean(n.attr("id")),
		From: Clean(n.attr("from")),
		To:   Clean(n.attr("to")),
		Type: Clean(n.attr("type")),
	}
	ns := n.name.Space
	for _, c := range n.children() {
		switch {
		case c.name.Space == ns && c.name.Local == "show":
			p.Show = Clean(strings.TrimSpace(c.text()))
		case c.name.Space == ns && c.name.Local == "status":
			if p.Status == "" || c.lang() == "" {
				p.Status = Clean(c.text())
			}
		case c.name.Space == ns && c.name.Local == "priority":
			if v, err := strconv.Atoi(strings.TrimSpace(c.text())); err == nil && v >= -128 && v <= 127 {
				p.Priority = v
			}
		case c.name.Space == ns && c.name.Local == "error":
			p.Error = parseError(c)
		case c.name.Space == NSCaps && c.name.Local == "c":
			p.Caps = &Caps{Hash: Clean(c.attr("hash")), Node: Clean(c.attr("node")), Ver: Clean(c.attr("ver"))}
		}
	}
	return p
}

func parseIQ(n *node) (*InIQ, error) {
	iq := &InIQ{
		ID:   Clean(n.attr("id")),
		From: Clean(n.attr("from")),
		To:   Clean(n.attr("to")),
		Type: n.attr("type"),
	}
	bad := func(reason string) (*InIQ, error) {
		return nil, &DecodeError{Name: n.name, ID: iq.ID, Reason: reason}
	}
	switch iq.Type {
	case "get", "set", "result", "error":
	default:
		return bad("bad type " + strconv.Quote(Clean(iq.Type)))
	}
	if iq.ID == "" {
		return bad("no id")
	}
	for _, c := range n.children() {
		if c.name.Space == n.name.Space && c.name.Local == "error" {
			if iq.Error == nil {
				iq.Error = parseError(c)
			}
			continue
		}
		if iq.PayloadXML == nil {
			iq.Payload = c.name
			var w writer
			writeNode(&w, c, n.name.Space)
			iq.PayloadXML = bytes.Clone(w.bytes())
		}
	}
	if (iq.Type == "get" || iq.Type == "set") && iq.PayloadXML == nil {
		return bad(iq.Type + " without payload")
	}
	return iq, nil
}

// writeNode re-encodes n; parentNS is the default namespace in scope.
func writeNode(w *writer, n *node, parentNS string) {
	ns := ""
	if n.name.Space != parentNS {
		ns = n.name.Space
	}
	var attrs []string
	prefixes := 0
	var decls []string
	for _, a := range n.attrs {
		name := a.Name.Local
		switch a.Name.Space {
		case "":
		case xmlNamespace:
			name = "xml:" + a.Name.Local
		default:
			prefixes++
			p := "ns" + strconv.Itoa(prefixes)
			decls = append(decls, "xmlns:"+p, a.Name.Space)
			name = p + ":" + a.Name.Local
		}
		attrs = append(attrs, name, a.Value)
	}
	if n.name.Space == "" && parentNS != "" {
		// A child in no namespace under a namespaced parent.
		decls = append(decls, "xmlns", "")
	}
	w.start(n.name.Local, ns, true, append(decls, attrs...))
	for _, p := range n.parts {
		if p.el != nil {
			writeNode(w, p.el, n.name.Space)
		} else {
			w.text(p.text)
		}
	}
	w.close()
}
