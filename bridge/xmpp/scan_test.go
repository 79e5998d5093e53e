package xmpp

import (
	"bufio"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// streamHeads open the streams the fast path's tests read: as the servers
// send it, with a prefix declared for the stanzas to use, without a
// default namespace, and a server-to-server one (no stanza of
// jabber:client then).
var streamHeads = []string{
	"<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' id='x' version='1.0'>",
	"<stream:stream xmlns:stream='http://etherx.jabber.org/streams' xmlns='jabber:client' xmlns:sm='urn:xmpp:sm:3' xmlns:c='jabber:client'>",
	"<stream:stream xmlns:stream='http://etherx.jabber.org/streams'>",
	"<stream xmlns='jabber:server'>",
}

// outcome is what reading one top-level element of a stream came to, as
// the session sees it.
type outcome struct {
	tree string // the element's tree, "" if none was built
	st   Stanza
	err  string // a DecodeError's fields, or the error that ends the stream
	tok  string // a top-level element the session does not decode, or the stream's end
}

var lineNumber = regexp.MustCompile(`on line [0-9]+`)

func errOutcome(err error) string {
	var de *DecodeError
	if errors.As(err, &de) {
		return fmt.Sprintf("DecodeError %v %q %q %q %v", de.Name, de.ID, de.From, de.Reason, de.Err)
	}
	// The decoder's line numbers do not count the fast path's lines.
	return lineNumber.ReplaceAllString(err.Error(), "on line N")
}

// readStream reads a stream as Session.read does, with the fast path or
// only with the decoder (Limits.read and interpret, i.e. Limits.Decode:
// the code the fast path replaces), and returns what each element came to
// and how many the fast path took.
func readStream(r io.Reader, l Limits, fast bool) (outs []outcome, nfast int) {
	d := xml.NewDecoder(r)
	for {
		tok, err := d.Token()
		if err != nil {
			return append(outs, outcome{err: "head: " + errOutcome(err)}), 0
		}
		if _, ok := tok.(xml.StartElement); ok {
			break
		}
	}
	in := newStanzaReader(d)
	for {
		if fast {
			if n, ok := in.next(l); ok {
				nfast++
				o := outcome{tree: dumpNode(n)}
				st, err := interpret(n)
				o.st = st
				if err != nil {
					o.err = errOutcome(err)
				}
				outs = append(outs, o)
				continue
			}
		}
		tok, err := d.Token()
		if err != nil {
			return append(outs, outcome{err: errOutcome(err)}), nfast
		}
		switch t := tok.(type) {
		case xml.EndElement:
			return append(outs, outcome{tok: "end " + t.Name.Space + " " + t.Name.Local}), nfast
		case xml.StartElement:
			if t.Name.Space == "http://etherx.jabber.org/streams" && t.Name.Local == "error" || t.Name.Space == nsSM {
				outs = append(outs, outcome{tok: t.Name.Space + " " + t.Name.Local})
				if err := d.Skip(); err != nil {
					return append(outs, outcome{err: errOutcome(err)}), nfast
				}
				continue
			}
			n, err := l.read(d, t)
			if err != nil {
				outs = append(outs, outcome{err: errOutcome(err)})
				var de *DecodeError
				if !errors.As(err, &de) {
					return outs, nfast
				}
				continue
			}
			o := outcome{tree: dumpNode(n)}
			st, err := interpret(n)
			o.st = st
			if err != nil {
				o.err = errOutcome(err)
			}
			outs = append(outs, o)
		}
	}
}

// dumpNode writes a tree out in full, nil and empty slices alike.
func dumpNode(n *node) string {
	var b strings.Builder
	var dump func(n *node)
	dump = func(n *node) {
		fmt.Fprintf(&b, "<{%q}%q", n.name.Space, n.name.Local)
		for _, a := range n.attrs {
			fmt.Fprintf(&b, " {%q}%q=%q", a.Name.Space, a.Name.Local, a.Value)
		}
		b.WriteString(">")
		for _, p := range n.parts {
			if p.el != nil {
				dump(p.el)
			} else {
				fmt.Fprintf(&b, "%q", p.text)
			}
		}
		b.WriteString("</>")
	}
	dump(n)
	return b.String()
}

// chunks reads b in pieces of n bytes; it is no io.ByteReader, so the
// decoder buffers it as it does the link's socket.
type chunks struct {
	b []byte
	n int
}

func (c *chunks) Read(p []byte) (int, error) {
	if len(c.b) == 0 {
		return 0, io.EOF
	}
	k := copy(p[:min(len(p), c.n)], c.b)
	c.b = c.b[k:]
	return k, nil
}

// streamReader is what readStream reads: the stream in pieces of chunk
// bytes, through the decoder's own buffer (bufSize 0, as on the link) or a
// smaller one.
func streamReader(stream []byte, chunk, bufSize int) io.Reader {
	var r io.Reader = &chunks{stream, max(chunk, 1)}
	if bufSize > 0 {
		r = bufio.NewReaderSize(r, bufSize) // 16 at the least
	}
	return r
}

// FuzzFastPath: the fast path reads every stream as the decoder alone
// does — each element to the same tree and stanza, the same DecodeError,
// or the same error ending the stream — however the stream arrives and
// whatever the limits.
func FuzzFastPath(f *testing.F) {
	for _, s := range fastSeeds() {
		f.Add([]byte(s), uint8(0), uint8(255), uint8(0))
		f.Add([]byte(s), uint8(1), uint8(7), uint8(1))
		f.Add([]byte(s), uint8(0x80), uint8(255), uint8(0))
	}
	small := Limits{MaxBytes: 512, MaxDepth: 4}
	f.Fuzz(func(t *testing.T, body []byte, head, chunk, bufSize uint8) {
		stream := []byte(streamHeads[int(head&0x7f)%len(streamHeads)])
		if head&0x80 != 0 {
			// Inside a stanza, where the fast path does its work.
			stream = append(stream, "<message id='w' to='bot@example.org'>"...)
			stream = append(append(stream, body...), "</message>"...)
		} else {
			stream = append(stream, body...)
		}
		size := 0
		if bufSize%4 != 0 {
			size = 16 + int(bufSize)
		}
		for _, l := range []Limits{DefaultLimits, small} {
			want, _ := readStream(streamReader(stream, int(chunk), size), l, false)
			got, _ := readStream(streamReader(stream, int(chunk), size), l, true)
			compareOutcomes(t, stream, got, want)
		}
	})
}

func compareOutcomes(t *testing.T, stream []byte, got, want []outcome) {
	t.Helper()
	for i := range max(len(got), len(want)) {
		var g, w outcome
		if i < len(got) {
			g = got[i]
		}
		if i < len(want) {
			w = want[i]
		}
		if g.tree != w.tree || g.err != w.err || g.tok != w.tok || !reflect.DeepEqual(g.st, w.st) {
			t.Fatalf("stream %q, element %d:\nfast path %s %q %q %#v\ndecoder   %s %q %q %#v", stream, i, g.tree, g.err, g.tok, g.st, w.tree, w.err, w.tok, w.st)
		}
	}
}

// fastSeeds are streams after the head: the codec's cases and golden
// files, two elements each, and the forms at the fast path's edges.
func fastSeeds() []string {
	var seeds []string
	for _, c := range decodeCases {
		seeds = append(seeds, c.in+"\n "+c.in)
	}
	for _, c := range encryptedStanzas {
		seeds = append(seeds, c.xml)
	}
	golden, _ := filepath.Glob(filepath.Join("testdata", "codec", "*.xml"))
	for _, g := range golden {
		if b, err := os.ReadFile(g); err == nil {
			seeds = append(seeds, string(b)+"<r xmlns='urn:xmpp:sm:3'/>"+string(b))
		}
	}
	return append(seeds,
		prosodyMessage+" "+prosodyMessage+"</stream:stream>",
		ejabberdMessage+ejabberdMessage,
		"<iq type='result' id='p1' from='example.org' to='bot@example.org/r'/>  \n\t<presence/>",
		"<message id='a' to='b'><body>it&apos;s &lt;3 &amp; &quot;q&quot; &gt; ]] ] ></body></message>",
		"<message><body>a]]>b</body></message>",
		"<message><body>a\r\nb</body></message>",
		"<message><body><![CDATA[x]]></body></message>",
		"<message><!-- c --><body>x</body></message>",
		"<message><?pi x?><body>x</body></message>",
		"<message><body>&#65;&#x42;</body></message>",
		"<message><body>&nbsp;</body></message>",
		"<message><body>&amp</body></message>",
		"<message><body>caf\u00e9 \U0001F600 \ufffd</body></message>",
		"<message><body>\xc3</body></message>",
		"<message><body>\xc3&amp;\xa9</body></message>",
		"<message><body>\x01</body></message>",
		"<message><body>\uffff</body></message>",
		"<message id='a'id=\"b\" to = 'c' ><body xml:lang='en'>x</body><body>y</body></message >",
		"<message id='a' id='a2'/><message id='<'/>",
		"<message id='a&b;'/><message id=a/>",
		"<message xmlns='jabber:client' xmlns='jabber:server'/><message xmlns='jabber:server' xmlns='jabber:client'/>",
		"<message xmlns=''/><message><x xmlns=''><y/></x></message>",
		"<message xmlns='jabber&amp;client'/>",
		"<message><x xmlns='urn:x'><y a='1'>t</y></x><z/></message>",
		"<c:message><body>x</body></c:message><message><c:body>x</c:body></message>",
		"<message xmlns:x='urn:x'><x:y/></message><message><stream:y/></message>",
		"<message x:a='1'/><message xml:='1'/><message xml:a:b='1'/><message xmlns:='u'/>",
		"<message><a><b><c><d><e/></d></c></b></a></message>",
		"<message><a><b><c/></b></a></message><message><a><b><c><d/></c></b></a></message>", // 4 and 5 deep
		// 512 and 513 bytes charged (Limits.read: 32 an element, names, text)
		"<message><body>"+strings.Repeat("x", 411)+"</body></message><message><body>"+strings.Repeat("x", 412)+"</body></message>",
		"<message><body>"+strings.Repeat("&amp;", 411)+"</body></message><message><body>"+strings.Repeat("\u00e9", 206)+"</body></message>",
		"<message xml:lang='en'><body>"+strings.Repeat("x", 337)+"</body></message><message xml:lang='en'><body>"+strings.Repeat("x", 338)+"</body></message>",
		"<message><x xmlns='urn:xyz'>"+strings.Repeat("x", 420)+"</x></message><message><x xmlns='urn:xyz'>"+strings.Repeat("x", 421)+"</x></message>",
		"<message><body>"+strings.Repeat("x", 600)+"</body></message>",
		"<message><body>"+strings.Repeat("x", 5000)+"</body></message><message/>",
		"<message a='"+strings.Repeat("y", 200)+"' b='"+strings.Repeat("y", 300)+"'/>",
		"<message><body>x</bod></message>",
		"<message><body>x</body ></message>",
		"<message><body>x</body</message>",
		"<message><body>x</body></message>trailing<message/>",
		"<message><body>x</body>",
		"<message/ >",
		"<message a='1'b='2'/>",
		"<messag\u00e9/>",
		"<1message/>",
		"<presence><show>away</show><status>x</status><priority>5</priority></presence>",
		"<iq type='get' id='q'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>",
		"<iq type='bad' id='q'/><iq type='get'/>",
		"<r xmlns='urn:xmpp:sm:3'/><a xmlns='urn:xmpp:sm:3' h='3'/><message/>",
		"<stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>",
		"<features/><message/>",
		"</stream:stream>",
		"<message>\t\n<body>x</body>\n</message>",
	)
}

// An owner's message as the servers write it to the bot (captured from
// the Prosody and ejabberd of the tests, body and ids changed).
const (
	prosodyMessage  = `<message xml:lang='en' to='bot@waxmpp.test' id='alloc-out-12' type='chat' from='owner@waxmpp.test/test'><body>#12 lorem ipsum lorem ipsum lorem ipsum &amp; lorem ipsum lorem ipsum lorem ipsum lorem ipsum lorem ipsum </body><origin-id xmlns='urn:xmpp:sid:0' id='alloc-out-12'/><request xmlns='urn:xmpp:receipts'/><markable xmlns='urn:xmpp:chat-markers:0'/><active xmlns='http://jabber.org/protocol/chatstates'/><stanza-id xmlns='urn:xmpp:sid:0' by='bot@waxmpp.test' id='aycWWWbTliBiDq3SgHEGcokq'/></message>`
	ejabberdMessage = `<message xml:lang='en' to='bot@waxmpp.test' from='owner@waxmpp.test/test' type='chat' id='alloc-out-12'><archived by='bot@waxmpp.test' id='1796176359549115' xmlns='urn:xmpp:mam:tmp'/><stanza-id by='bot@waxmpp.test' id='1796176359549115' xmlns='urn:xmpp:sid:0'/><origin-id xmlns='urn:xmpp:sid:0' id='alloc-out-12'/><request xmlns='urn:xmpp:receipts'/><markable xmlns='urn:xmpp:chat-markers:0'/><active xmlns='http://jabber.org/protocol/chatstates'/><body>#12 lorem ipsum lorem ipsum lorem ipsum &amp; lorem ipsum lorem ipsum lorem ipsum lorem ipsum lorem ipsum </body></message>`
)

// TestFastPathOn: the fast path can see into this Go's xml.Decoder, and
// takes the servers' owner messages, IQ results and presences; it leaves
// to the decoder what it does not take.
func TestFastPathOn(t *testing.T) {
	if !decoderFields.ok {
		t.Fatal("xml.Decoder's fields are not as the fast path expects (a new Go?): see scan.go")
	}
	for _, c := range []struct {
		in   string
		fast bool
	}{
		{prosodyMessage, true},
		{ejabberdMessage, true},
		{"<iq type='result' id='p1' from='example.org' to='bot@example.org/r'/>", true},
		{"<presence from='owner@example.org/a' to='bot@example.org'><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='n' ver='v='/></presence>", true},
		{"<message><body>it&apos;s</body></message>", true},
		{"<r xmlns='urn:xmpp:sm:3'/>", false},
		{"<message><body>&#65;</body></message>", false},
		{"<message><body>x\r\n</body></message>", false},
		{"<message><!-- --></message>", false},
	} {
		for h := range 2 {
			stream := streamHeads[h] + c.in + "</stream:stream>"
			got, n := readStream(streamReader([]byte(stream), 1<<20, 0), DefaultLimits, true)
			if (n == 1) != c.fast {
				t.Errorf("%s: the fast path took %d elements, want fast=%v", c.in, n, c.fast)
			}
			want, _ := readStream(streamReader([]byte(stream), 1<<20, 0), DefaultLimits, false)
			compareOutcomes(t, []byte(stream), got, want)
		}
	}
}

// TestFastPathAllocs: an owner's message costs the fast path (reading,
// the tree and interpreting it) a few allocations where the decoder makes
// dozens.
func TestFastPathAllocs(t *testing.T) {
	for _, c := range []struct {
		name, stanza string
		max          float64
	}{{"prosody", prosodyMessage, 4}, {"ejabberd", ejabberdMessage, 4}} {
		stream := streamHeads[0] + strings.Repeat(c.stanza, 300)
		in := newStanzaReader(headDecoder(t, stream))
		fast := testing.AllocsPerRun(200, func() {
			n, ok := in.next(DefaultLimits)
			if !ok {
				t.Fatal("not on the fast path")
			}
			if _, err := interpret(n); err != nil {
				t.Fatal(err)
			}
		})
		d := headDecoder(t, stream)
		slow := testing.AllocsPerRun(200, func() {
			tok, err := d.Token()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := Decode(d, tok.(xml.StartElement)); err != nil {
				t.Fatal(err)
			}
		})
		t.Logf("%s: fast path %.0f allocations, decoder %.0f", c.name, fast, slow)
		if fast > c.max {
			t.Errorf("%s: the fast path made %.0f allocations, want ≤ %.0f", c.name, fast, c.max)
		}
	}
}

// headDecoder is a decoder of stream positioned after its head.
func headDecoder(t *testing.T, stream string) *xml.Decoder {
	d := xml.NewDecoder(&chunks{[]byte(stream), 1 << 20})
	for {
		tok, err := d.Token()
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := tok.(xml.StartElement); ok {
			return d
		}
	}
}
