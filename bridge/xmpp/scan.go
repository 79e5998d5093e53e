package xmpp

// The link reader's fast path. encoding/xml makes a string of every name,
// attribute value and text of a stanza, an attribute slice grown one
// append at a time and two boxed tokens per tag: 84 allocations for an
// owner's message as Prosody writes it, 99 as ejabberd does, where the
// fast path makes 4 (TestFastPathAllocs). A stanza that lies whole in the decoder's
// buffer and keeps to the plain forms — ASCII names without prefixes
// (xml:lang and the like aside), quoted attribute values, text with no
// more than the five predefined entities, no CDATA, comments, processing
// instructions, character references or carriage returns, within Limits —
// is read here straight out of that buffer into the same tree Limits.read
// builds, in one string, with the nodes kept from stanza to stanza.
// Anything else is the decoder's: the scanner consumes nothing of an
// element it has not accepted whole, so the decoder reads it as if the
// fast path did not exist and accepts or rejects it as it always has;
// what the scanner accepts, encoding/xml accepts with the same tree
// (FuzzFastPath holds it to Limits.read). The one difference: the
// decoder's line numbers in later syntax errors do not count the lines
// the scanner read.
//
// The decoder keeps its buffer and its state to itself, so the fast path
// looks at them through reflect (decoderFields): only between top-level
// elements, when the decoder holds no byte, token or error of its own, and
// only reading. A Go release that changes those fields turns the fast path
// off (TestFastPathOn fails then).

import (
	"bufio"
	"bytes"
	"encoding/xml"
	"io"
	"reflect"
	"strings"
	"unicode/utf8"
	"unsafe"
)

// decoderFields are the indexes of the xml.Decoder fields the fast path
// reads; ok is false if one is missing or not of the type it expects.
var decoderFields = func() (f struct {
	ok                                                          bool
	r, t, saved, depth, needClose, next, nextByte, ns, err, unm int
}) {
	typ := reflect.TypeFor[xml.Decoder]()
	for _, w := range []struct {
		name string
		typ  reflect.Type
		at   *int
	}{
		{"r", reflect.TypeFor[io.ByteReader](), &f.r},
		{"t", reflect.TypeFor[xml.TokenReader](), &f.t},
		{"saved", reflect.TypeFor[*bytes.Buffer](), &f.saved},
		{"stkDepth", reflect.TypeFor[int](), &f.depth},
		{"needClose", reflect.TypeFor[bool](), &f.needClose},
		{"nextToken", reflect.TypeFor[xml.Token](), &f.next},
		{"nextByte", reflect.TypeFor[int](), &f.nextByte},
		{"ns", reflect.TypeFor[map[string]string](), &f.ns},
		{"err", reflect.TypeFor[error](), &f.err},
		{"inUnmarshalXML", reflect.TypeFor[bool](), &f.unm},
	} {
		sf, ok := typ.FieldByName(w.name)
		if !ok || sf.Type != w.typ || len(sf.Index) != 1 {
			return f
		}
		*w.at = sf.Index[0]
	}
	f.ok = true
	return f
}()

// idle returns d's buffer and the default namespace in scope when d sits
// between two top-level elements of a stream (only the stream element
// open) with nothing of its own pending: no byte read back, no end tag of
// an empty element, no token, no error; and reads XML as Strict does,
// without entities of its own. ok is false otherwise.
func idle(d *xml.Decoder) (br *bufio.Reader, space string, ok bool) {
	f := &decoderFields
	if !f.ok || !d.Strict || len(d.AutoClose) != 0 || d.Entity != nil {
		return nil, "", false
	}
	v := reflect.ValueOf(d).Elem()
	if !v.Field(f.t).IsNil() || !v.Field(f.saved).IsNil() || v.Field(f.depth).Int() != 1 ||
		v.Field(f.needClose).Bool() || !v.Field(f.next).IsNil() || v.Field(f.nextByte).Int() != -1 ||
		!v.Field(f.err).IsNil() || v.Field(f.unm).Bool() {
		return nil, "", false
	}
	rb := *(*io.ByteReader)(unsafe.Pointer(v.Field(f.r).UnsafeAddr()))
	if br, ok = rb.(*bufio.Reader); !ok {
		return nil, "", false
	}
	ns := *(*map[string]string)(unsafe.Pointer(v.Field(f.ns).UnsafeAddr()))
	space, bound := ns[""]
	if !bound {
		space = d.DefaultSpace
	}
	return br, space, true
}

// stanzaReader is the fast path of one stream's reader. Its goroutine
// only.
type stanzaReader struct {
	d  *xml.Decoder
	sc scanner
}

func newStanzaReader(d *xml.Decoder) *stanzaReader { return &stanzaReader{d: d} }

// next reads the next top-level element of the stream if it is a
// message, presence or iq of jabber:client in a form the fast path takes, and returns its tree (valid until the next call). Otherwise it
// returns false, having consumed at most white space between elements
// (which the session ignores), and the element is the decoder's to read.
// It blocks, as the decoder would, until the element is in the buffer.
func (r *stanzaReader) next(l Limits) (*node, bool) {
	br, outer, ok := idle(r.d)
	if !ok {
		return nil, false
	}
	for {
		if _, err := br.Peek(1); err != nil {
			return nil, false // the decoder meets the error
		}
		b, _ := br.Peek(br.Buffered())
		ws := 0
		for ws < len(b) && isSpace(b[ws]) {
			ws++
		}
		br.Discard(ws)
		if ws < len(b) {
			break
		}
	}
	for {
		b, _ := br.Peek(br.Buffered())
		end, res := r.sc.scan(b, outer, l)
		switch res {
		case scanNo:
			return nil, false
		case scanOK:
			s := string(b[:end])
			br.Discard(end)
			return r.sc.build(s, outer), true
		}
		if len(b) >= br.Size() {
			return nil, false // larger than the buffer
		}
		if _, err := br.Peek(len(b) + 1); err != nil {
			return nil, false
		}
	}
}

// What scanner.scan found.
const (
	scanNo   = iota // not a form the fast path takes
	scanMore        // the bytes end inside the element
	scanOK
)

// scanner is the fast path's storage, kept from stanza to stanza: the
// tags and texts the first pass found, and the tree's nodes, attributes
// and parts. Nothing keeps a tree once the stanza has been interpreted
// (the parsers take strings out of it).
type scanner struct {
	evs   []scanEvent
	attrs []scanAttr
	open  []int // the open elements' events (first pass)
	nodes []node
	xattr []xml.Attr
	parts []part
	stack []*node
	n     struct{ nodes, attrs, parts int } // what the first pass counted
}

// scanEvent is a start tag, a text or an end tag, by offsets into the
// stanza's bytes.
type scanEvent struct {
	kind       uint8
	entities   bool // text: holds entity references
	start, end int  // the element's name, or the text
	// An element's namespace: the value of its xmlns attribute or its
	// parent's; nsStart < 0 is the one in scope outside the stanza.
	nsStart, nsEnd int
	attrs, nattrs  int // the element's attributes (xmlns aside) in scanner.attrs
	parts          int // the element's children and texts
}

const (
	evStart = iota
	evText
	evEnd
)

type scanAttr struct {
	xml          bool // the xml: prefix
	entities     bool // the value holds entity references
	start, end   int  // the local name
	vstart, vend int  // the value
}

func isSpace(c byte) bool { return c == ' ' || c == '\r' || c == '\n' || c == '\t' }

func isNameStart(c byte) bool { return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || c == '_' }

// isNameByte is encoding/xml's: the bytes that continue a name.
func isNameByte(c byte) bool {
	return isNameStart(c) || '0' <= c && c <= '9' || c == ':' || c == '.' || c == '-'
}

// scanName scans the name that starts at b[i]: its end and the position
// of its colon (-1 if none). The decoder reads a name up to the first
// ASCII byte that cannot be in one, taking every byte from 0x80 on; the
// fast path takes ASCII names with at most one colon.
func scanName(b []byte, i int) (end, colon, res int) {
	if i >= len(b) {
		return 0, 0, scanMore
	}
	if !isNameStart(b[i]) {
		return 0, 0, scanNo
	}
	colon = -1
	for end = i + 1; end < len(b); end++ {
		c := b[end]
		if c >= utf8.RuneSelf {
			return 0, 0, scanNo
		}
		if !isNameByte(c) {
			return end, colon, scanOK
		}
		if c == ':' {
			if colon >= 0 {
				return 0, 0, scanNo
			}
			colon = end
		}
	}
	return 0, 0, scanMore
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return i
}

// scanChar checks the character at b[i], outside markup and entity
// references: its length, or scanNo for what the decoder rejects or
// rewrites (a carriage return), scanMore if b ends inside it.
func scanChar(b []byte, i int) (size, res int) {
	c := b[i]
	if c < utf8.RuneSelf {
		if c < 0x20 && c != '\t' && c != '\n' {
			return 0, scanNo
		}
		return 1, scanOK
	}
	if !utf8.FullRune(b[i:]) {
		return 0, scanMore
	}
	r, size := utf8.DecodeRune(b[i:])
	if r == utf8.RuneError && size == 1 || !xmlChar(r) {
		return 0, scanNo
	}
	return size, scanOK
}

// scanEntity reads the reference at b[i] ('&'): its end, or scanNo for any
// but the five every parser knows.
func scanEntity(b []byte, i int) (end, res int) {
	j := i + 1
	for j < len(b) && (b[j] >= utf8.RuneSelf || isNameByte(b[j])) {
		j++
	}
	if j >= len(b) {
		return 0, scanMore
	}
	if b[j] != ';' {
		return 0, scanNo
	}
	switch string(b[i+1 : j]) {
	case "lt", "gt", "amp", "apos", "quot":
		return j + 1, scanOK
	}
	return 0, scanNo
}

// scanText scans character data from b[i] up to the next '<' (quote 0) or
// the closing quote of an attribute value: its end (the '<' or the quote),
// its length once references are replaced, and whether it holds any.
func scanText(b []byte, i int, quote byte) (end, n int, entities bool, res int) {
	var b0, b1 byte // the decoder's look-back for "]]>"
	for i < len(b) {
		c := b[i]
		switch {
		case quote != 0 && c == quote, quote == 0 && c == '<':
			return i, n, entities, scanOK
		case c == '<':
			return 0, 0, false, scanNo
		case c == '&':
			e, res := scanEntity(b, i)
			if res != scanOK {
				return 0, 0, false, res
			}
			i, n, entities, b0, b1 = e, n+1, true, 0, 0
			continue
		case quote == 0 && c == '>' && b0 == ']' && b1 == ']':
			return 0, 0, false, scanNo
		}
		size, res := scanChar(b, i)
		if res != scanOK {
			return 0, 0, false, res
		}
		b0, b1 = b1, c
		if size > 1 {
			b0, b1 = 0, 0
		}
		i, n = i+size, n+size
	}
	return 0, 0, false, scanMore
}

// scan is the first pass over b, which starts with an element: it checks
// the element against the fast path's forms and l, records its tags and
// texts, and returns where it ends. outer is the default namespace in
// scope outside it.
func (sc *scanner) scan(b []byte, outer string, l Limits) (end, res int) {
	sc.evs, sc.attrs, sc.open = sc.evs[:0], sc.attrs[:0], sc.open[:0]
	sc.n.nodes, sc.n.attrs, sc.n.parts = 0, 0, 0
	budget := l.MaxBytes
	if len(b) == 0 {
		return 0, scanMore
	}
	if b[0] != '<' || l.MaxDepth < 1 {
		return 0, scanNo
	}
	i, empty, res := sc.startTag(b, 0, outer, &budget)
	if res != scanOK {
		return 0, res
	}
	root := &sc.evs[0]
	switch string(b[root.start:root.end]) {
	case "message", "presence", "iq":
	default:
		return 0, scanNo
	}
	if root.nsStart < 0 && outer != NSClient || root.nsStart >= 0 && string(b[root.nsStart:root.nsEnd]) != NSClient {
		return 0, scanNo
	}
	if empty {
		sc.evs = append(sc.evs, scanEvent{kind: evEnd})
		return i, budgetOK(budget)
	}
	sc.open = append(sc.open, 0)
	for len(sc.open) > 0 {
		if i >= len(b) {
			return 0, scanMore
		}
		top := sc.open[len(sc.open)-1]
		if b[i] != '<' {
			e, n, ents, res := scanText(b, i, 0)
			if res != scanOK {
				return 0, res
			}
			budget -= n
			sc.evs = append(sc.evs, scanEvent{kind: evText, start: i, end: e, entities: ents})
			sc.evs[top].parts++
			sc.n.parts++
			i = e
			continue
		}
		if i+1 >= len(b) {
			return 0, scanMore
		}
		switch b[i+1] {
		case '/':
			e, _, res := scanName(b, i+2)
			if res != scanOK {
				return 0, res
			}
			open := &sc.evs[top]
			if !bytes.Equal(b[i+2:e], b[open.start:open.end]) {
				return 0, scanNo
			}
			e = skipSpace(b, e)
			if e >= len(b) {
				return 0, scanMore
			}
			if b[e] != '>' {
				return 0, scanNo
			}
			sc.evs = append(sc.evs, scanEvent{kind: evEnd})
			sc.open = sc.open[:len(sc.open)-1]
			i = e + 1
		case '!', '?':
			return 0, scanNo // comment, CDATA, directive, processing instruction
		default:
			if len(sc.open) >= l.MaxDepth {
				return 0, scanNo
			}
			ev := len(sc.evs)
			e, empty, res := sc.startTag(b, i, outer, &budget)
			if res != scanOK {
				return 0, res
			}
			sc.evs[top].parts++
			sc.n.parts++
			if empty {
				sc.evs = append(sc.evs, scanEvent{kind: evEnd})
			} else {
				sc.open = append(sc.open, ev)
			}
			i = e
		}
	}
	return i, budgetOK(budget)
}

func budgetOK(budget int) int {
	if budget < 0 {
		return scanNo // Limits.read refuses it
	}
	return scanOK
}

// startTag scans the start tag at b[i] ('<') and records it: its end and
// whether it is an empty element's. An element without an xmlns attribute
// is in its parent's namespace, the root in outer's. It charges budget as
// Limits.read does.
func (sc *scanner) startTag(b []byte, i int, outer string, budget *int) (end int, empty bool, res int) {
	e, colon, res := scanName(b, i+1)
	if res != scanOK {
		return 0, false, res
	}
	if colon >= 0 {
		return 0, false, scanNo
	}
	ev := scanEvent{kind: evStart, start: i + 1, end: e, nsStart: -1, attrs: len(sc.attrs)}
	if len(sc.open) > 0 {
		parent := &sc.evs[sc.open[len(sc.open)-1]]
		ev.nsStart, ev.nsEnd = parent.nsStart, parent.nsEnd
	}
	i = e
	charges := nodeCost + ev.end - ev.start
	for {
		i = skipSpace(b, i)
		if i >= len(b) {
			return 0, false, scanMore
		}
		switch b[i] {
		case '/':
			if i+1 >= len(b) {
				return 0, false, scanMore
			}
			if b[i+1] != '>' {
				return 0, false, scanNo
			}
			empty, i = true, i+2
		case '>':
			i++
		default:
			a := scanAttr{start: i}
			e, colon, res := scanName(b, i)
			if res != scanOK {
				return 0, false, res
			}
			a.end = e
			if colon >= 0 {
				// Only xml:, which needs no declaration.
				if string(b[i:colon]) != "xml" || colon+1 == e {
					return 0, false, scanNo
				}
				a.xml, a.start = true, colon+1
			}
			e = skipSpace(b, e)
			if e >= len(b) {
				return 0, false, scanMore
			}
			if b[e] != '=' {
				return 0, false, scanNo
			}
			e = skipSpace(b, e+1)
			if e >= len(b) {
				return 0, false, scanMore
			}
			q := b[e]
			if q != '"' && q != '\'' {
				return 0, false, scanNo
			}
			ve, n, ents, res := scanText(b, e+1, q)
			if res != scanOK {
				return 0, false, res
			}
			a.vstart, a.vend, a.entities = e+1, ve, ents
			i = ve + 1
			if !a.xml && string(b[a.start:a.end]) == "xmlns" {
				if ents {
					return 0, false, scanNo
				}
				ev.nsStart, ev.nsEnd = a.vstart, a.vend // the last one counts
				continue
			}
			charges += nodeCost + a.end - a.start + n
			if a.xml {
				charges += len(xmlNamespace)
			}
			sc.attrs = append(sc.attrs, a)
			ev.nattrs++
			continue
		}
		break
	}
	if ev.nsStart >= 0 {
		charges += ev.nsEnd - ev.nsStart
	} else {
		charges += len(outer)
	}
	*budget -= charges
	sc.evs = append(sc.evs, ev)
	sc.n.nodes++
	sc.n.attrs += ev.nattrs
	return i, empty, scanOK
}

// build is the second pass: the tree of the element scan accepted, its
// strings cut out of s, the element's bytes.
func (sc *scanner) build(s, outer string) *node {
	if cap(sc.nodes) < sc.n.nodes {
		sc.nodes = make([]node, max(sc.n.nodes, 8))
	}
	if cap(sc.xattr) < sc.n.attrs {
		sc.xattr = make([]xml.Attr, max(sc.n.attrs, 16))
	}
	if cap(sc.parts) < sc.n.parts {
		sc.parts = make([]part, max(sc.n.parts, 16))
	}
	nodes, xattr, parts := sc.nodes[:cap(sc.nodes)], sc.xattr[:cap(sc.xattr)], sc.parts[:cap(sc.parts)]
	stack := sc.stack[:0]
	ni, ai, pi := 0, 0, 0
	for i := range sc.evs {
		ev := &sc.evs[i]
		switch ev.kind {
		case evStart:
			n := &nodes[ni]
			ni++
			space := outer
			if ev.nsStart >= 0 {
				space = s[ev.nsStart:ev.nsEnd]
			}
			*n = node{name: xml.Name{Space: space, Local: s[ev.start:ev.end]}}
			if ev.nattrs > 0 {
				n.attrs = xattr[ai : ai : ai+ev.nattrs]
				ai += ev.nattrs
				for _, a := range sc.attrs[ev.attrs : ev.attrs+ev.nattrs] {
					at := xml.Attr{Name: xml.Name{Local: s[a.start:a.end]}, Value: s[a.vstart:a.vend]}
					if a.xml {
						at.Name.Space = xmlNamespace
					}
					if a.entities {
						at.Value = unescape(at.Value)
					}
					n.attrs = append(n.attrs, at)
				}
			}
			if ev.parts > 0 {
				n.parts = parts[pi : pi : pi+ev.parts]
				pi += ev.parts
			}
			if len(stack) > 0 {
				top := stack[len(stack)-1]
				top.parts = append(top.parts, part{el: n})
			}
			stack = append(stack, n)
		case evText:
			t := s[ev.start:ev.end]
			if ev.entities {
				t = unescape(t)
			}
			top := stack[len(stack)-1]
			top.parts = append(top.parts, part{text: t})
		case evEnd:
			stack = stack[:len(stack)-1]
		}
	}
	sc.stack = stack[:0]
	return &nodes[0]
}

// unescape replaces the five predefined entity references, the only ones
// scan lets through.
func unescape(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for {
		i := strings.IndexByte(s, '&')
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		b.WriteString(s[:i])
		j := strings.IndexByte(s[i:], ';') + i
		switch s[i+1 : j] {
		case "lt":
			b.WriteByte('<')
		case "gt":
			b.WriteByte('>')
		case "amp":
			b.WriteByte('&')
		case "apos":
			b.WriteByte('\'')
		case "quot":
			b.WriteByte('"')
		}
		s = s[j+1:]
	}
}
