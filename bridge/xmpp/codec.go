package xmpp

// The stanza codec: typed Go values to stanza XML and back, with no I/O.
//
// Outbound stanzas (encode.go, forms.go) are written by a small escaping
// writer (every text and attribute value escaped as xml.EscapeText does,
// below) after the text has been cleaned of characters XML 1.0 forbids, so
// a strange WhatsApp message can never break the XML stream. Inbound
// stanzas are read token by token into a bounded tree (decode.go) and then
// interpreted (parse.go); unknown elements are ignored.

import (
	"strings"
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
// It appends to buf, which may start with the caller's bytes
// (appendMessage); a writer on the stack allocates only what buf grows.
type writer struct {
	buf     []byte
	names   [8]string // the open elements' names, outermost first
	deeper  []string  // and those past len(names)
	depth   int
	pending bool // a start tag is open and waits for '>' or '/>'
}

func (w *writer) push(name string) {
	if w.depth < len(w.names) {
		w.names[w.depth] = name
	} else {
		w.deeper = append(w.deeper, name)
	}
	w.depth++
}

func (w *writer) pop() string {
	w.depth--
	if w.depth < len(w.names) {
		return w.names[w.depth]
	}
	name := w.deeper[len(w.deeper)-1]
	w.deeper = w.deeper[:len(w.deeper)-1]
	return name
}

// open starts an element. ns, if set, becomes its default namespace; attrs
// are name/value pairs, and pairs with an empty value are left out.
func (w *writer) open(name, ns string, attrs ...string) {
	w.start(name, ns, false, attrs)
}

// start is open, keeping empty attribute values if keepEmpty.
func (w *writer) start(name, ns string, keepEmpty bool, attrs []string) {
	w.finishStart()
	w.buf = append(w.buf, '<')
	w.buf = append(w.buf, name...)
	if ns != "" {
		w.attr("xmlns", ns)
	}
	for i := 0; i+1 < len(attrs); i += 2 {
		if keepEmpty || attrs[i+1] != "" {
			w.attr(attrs[i], attrs[i+1])
		}
	}
	w.push(name)
	w.pending = true
}

func (w *writer) attr(name, value string) {
	w.buf = append(w.buf, ' ')
	w.buf = append(w.buf, name...)
	w.buf = append(w.buf, `="`...)
	w.buf = appendEscaped(w.buf, Clean(value)) // escapes quotes too
	w.buf = append(w.buf, '"')
}

func (w *writer) finishStart() {
	if w.pending {
		w.buf = append(w.buf, '>')
		w.pending = false
	}
}

func (w *writer) text(s string) {
	if s == "" {
		return
	}
	w.finishStart()
	w.buf = appendEscaped(w.buf, Clean(s))
}

// raw appends XML that is already well-formed (from xml.Marshal or this
// package).
func (w *writer) raw(b []byte) {
	w.finishStart()
	w.buf = append(w.buf, b...)
}

func (w *writer) close() {
	name := w.pop()
	if w.pending {
		w.buf = append(w.buf, "/>"...)
		w.pending = false
		return
	}
	w.buf = append(w.buf, "</"...)
	w.buf = append(w.buf, name...)
	w.buf = append(w.buf, '>')
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

func (w *writer) bytes() []byte { return w.buf }

// appendEscaped appends s escaped as xml.EscapeText escapes it (quotes,
// tabs and line ends included; a character outside XML's range, which
// Clean has dropped already, as U+FFFD), from a string and without its
// io.Writer.
func appendEscaped(dst []byte, s string) []byte {
	last := 0
	for i := 0; i < len(s); {
		r, width := utf8.DecodeRuneInString(s[i:])
		i += width
		var esc string
		switch r {
		case '"':
			esc = "&#34;"
		case '\'':
			esc = "&#39;"
		case '&':
			esc = "&amp;"
		case '<':
			esc = "&lt;"
		case '>':
			esc = "&gt;"
		case '\t':
			esc = "&#x9;"
		case '\n':
			esc = "&#xA;"
		case '\r':
			esc = "&#xD;"
		default:
			if !xmlChar(r) || (r == utf8.RuneError && width == 1) {
				esc = "\uFFFD"
				break
			}
			continue
		}
		dst = append(dst, s[last:i-width]...)
		dst = append(dst, esc...)
		last = i
	}
	return append(dst, s[last:]...)
}
