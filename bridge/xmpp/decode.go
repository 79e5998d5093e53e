package xmpp

// Inbound stanzas: the types the session routes, and the bounded reader
// that turns one top-level element of the stream into a tree.

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"iter"
	"strconv"
	"strings"
)

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
	Received  string     // XEP-0184 receipt for this id
	Markable  bool       // XEP-0333
	Marker    *Marker    // XEP-0333
	ChatState string     // XEP-0085
	OOB       *OOB       // XEP-0066
	Delay     *Delay     // XEP-0203
	Error     *StanzaError
	// Encryption names the end-to-end encryption of the message ("OMEMO",
	// "OpenPGP", "PGP", "OTR"; see crypto.go), "" for none. Sealed says
	// that it carries an encrypted text (not only a key exchange): its
	// body, if any, is a fallback for clients without the encryption.
	Encryption string
	Sealed     bool

	Carbon     Carbon // XEP-0280
	CarbonFrom string // the wrapper's from; only the bot's own bare JID is legitimate

	// Archived is set for a message forwarded from a message archive
	// (XEP-0313 result); the fields above describe the archived message.
	Archived *Archived

	// MUC is the muc#user <x/> of a message from a room (XEP-0045).
	MUC *MUCUser
	// Room and Echo are set by the session for a message that came
	// through one of the bot's rooms: the room's bare JID, and whether it
	// is the room's copy of the bot's own message.
	Room string
	Echo bool
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
	MUC      *MUCUser // XEP-0045 muc#user, from a room
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
	From   string   // its from attribute, if any
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

// DefaultLimits are used by Decode and DecodeBytes. MaxBytes takes what the
// servers take: Prosody's c2s stanza limit is 256 KiB, ejabberd's shipped
// max_stanza_size 262,144 bytes, and text and attribute values never count
// more than the stanza's bytes on the wire.
var DefaultLimits = Limits{MaxBytes: 256 << 10, MaxDepth: 32}

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
	return interpret(n)
}

// interpret turns the tree of a top-level element into its stanza.
func interpret(n *node) (Stanza, error) {
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
	for i, p := range n.parts {
		if p.el != nil {
			continue
		}
		if b.Len() == 0 && noText(n.parts[i+1:]) {
			return p.text // one piece (a body, usually): no copy
		}
		b.WriteString(p.text)
	}
	return b.String()
}

// noText reports whether parts hold no character data.
func noText(parts []part) bool {
	for _, p := range parts {
		if p.el == nil && p.text != "" {
			return false
		}
	}
	return true
}

// hasChildren reports whether n has child elements.
func hasChildren(n *node) bool {
	for range n.children() {
		return true
	}
	return false
}

// children yields the element's child elements in order.
func (n *node) children() iter.Seq[*node] {
	return func(yield func(*node) bool) {
		for _, p := range n.parts {
			if p.el != nil && !yield(p.el) {
				return
			}
		}
	}
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
	var id, from string
	for _, a := range start.Attr {
		switch {
		case a.Name.Space == "" && a.Name.Local == "id":
			id = a.Value
		case a.Name.Space == "" && a.Name.Local == "from":
			from = a.Value
		}
	}
	// fail consumes what remains of the open elements and reports err.
	fail := func(open int, err error) (*node, error) {
		for range open {
			if serr := d.Skip(); serr != nil {
				return nil, fmt.Errorf("xmpp: decode <%s>: %w", start.Name.Local, serr)
			}
		}
		return nil, &DecodeError{Name: start.Name, ID: Clean(id), From: Clean(from), Reason: err.Error(), Err: err}
	}
	var slab []node // nodes are made 8 at a time: a stanza has a few
	newNode := func(s xml.StartElement) (*node, bool) {
		if len(slab) == cap(slab) {
			slab = make([]node, 0, 8)
		}
		slab = append(slab, node{name: s.Name})
		n := &slab[len(slab)-1]
		ok := charge(nodeCost + len(s.Name.Space) + len(s.Name.Local))
		xmlns := 0
		for _, a := range s.Attr {
			if a.Name.Space == "xmlns" || a.Name.Space == "" && a.Name.Local == "xmlns" {
				xmlns++ // the decoder has already resolved namespaces
				continue
			}
			ok = charge(nodeCost+len(a.Name.Space)+len(a.Name.Local)+len(a.Value)) && ok
		}
		switch {
		case xmlns == 0:
			// The decoder makes each token's attributes anew: they
			// are the node's, without a copy.
			n.attrs = s.Attr
		case xmlns < len(s.Attr):
			n.attrs = make([]xml.Attr, 0, len(s.Attr)-xmlns)
			for _, a := range s.Attr {
				if !(a.Name.Space == "xmlns" || a.Name.Space == "" && a.Name.Local == "xmlns") {
					n.attrs = append(n.attrs, a)
				}
			}
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
	root.parts = make([]part, 0, 8) // a stanza's children, usually
	var open [8]*node
	stack := append(open[:0], root)
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
