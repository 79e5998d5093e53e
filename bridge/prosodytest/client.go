package prosodytest

import (
	"crypto/tls"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Client is a deliberately independent, minimal XMPP client for the test
// side (the owner, the stranger, the benchmark's direct sender): STARTTLS,
// SASL PLAIN, bind, and every inbound stanza as a generic element tree, so
// tests check exactly what a client receives without trusting waxmpp's codec.
type Client struct {
	JID  string // full JID after bind
	conn net.Conn
	dec  *xml.Decoder
	wmu  sync.Mutex
	in   chan *Elem
	errc chan error
	// sm counts the stanzas received since stream management was enabled
	// (ClientOptions.StreamManagement); -1 when it is off. acks counts
	// the server's requests answered.
	sm   int64
	acks atomic.Int64
}

// ClientOptions are what a client does beyond the minimum.
type ClientOptions struct {
	// StreamManagement enables XEP-0198 acknowledgements after binding,
	// as mobile clients do (Conversations, Monal, Siskin): the server then
	// keeps a copy of every stanza it sends the client until the client
	// answers its <r/> with <a/>, which the client does at once. No
	// resumption.
	StreamManagement bool
}

// Elem is a parsed XML element.
type Elem struct {
	XMLName  xml.Name
	Attrs    []xml.Attr `xml:",any,attr"`
	Children []*Elem    `xml:",any"`
	Text     string     `xml:",chardata"`
	Received time.Time  `xml:"-"`
}

// Attr returns the value of the attribute with the given local name.
func (e *Elem) Attr(local string) string {
	for _, a := range e.Attrs {
		if a.Name.Local == local {
			return a.Value
		}
	}
	return ""
}

// Child returns the first child with the given namespace and local name.
func (e *Elem) Child(space, local string) *Elem {
	for _, c := range e.Children {
		if c.XMLName.Local == local && (space == "" || c.XMLName.Space == space) {
			return c
		}
	}
	return nil
}

// String re-encodes the element for failure messages.
func (e *Elem) String() string {
	var b strings.Builder
	enc := xml.NewEncoder(&b)
	enc.Encode(e)
	return b.String()
}

// Body is the text of the <body/> child, "" if none.
func (e *Elem) Body() string {
	if b := e.Child("jabber:client", "body"); b != nil {
		return b.Text
	}
	return ""
}

// Dial logs user in on s, sends initial presence and reads the roster.
func (s *Server) Dial(tb testing.TB, user string) *Client {
	tb.Helper()
	c, err := DialClient(s.Addr(), s.TLSConfig(), s.JID(user), Password(user))
	if err != nil {
		tb.Fatalf("dial %s: %v", user, err)
	}
	tb.Cleanup(c.Close)
	return c
}

// DialWith is Dial with opts.
func (s *Server) DialWith(tb testing.TB, user string, opts ClientOptions) *Client {
	tb.Helper()
	c, err := DialClientWith(s.Addr(), s.TLSConfig(), s.JID(user), Password(user), opts)
	if err != nil {
		tb.Fatalf("dial %s: %v", user, err)
	}
	tb.Cleanup(c.Close)
	return c
}

// DialClient logs in without a testing.TB (benchmarks' helpers use it too).
func DialClient(addr string, tc *tls.Config, jid, pass string) (*Client, error) {
	return DialClientWith(addr, tc, jid, pass, ClientOptions{})
}

// DialClientWith is DialClient with opts.
func DialClientWith(addr string, tc *tls.Config, jid, pass string, opts ClientOptions) (*Client, error) {
	user, domain, _ := strings.Cut(jid, "@")
	raw, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	c := &Client{conn: raw, in: make(chan *Elem, 100000), errc: make(chan error, 1), sm: -1}
	raw.SetDeadline(time.Now().Add(15 * time.Second))
	fail := func(err error) (*Client, error) { raw.Close(); return nil, err }
	if _, err := c.openStream(domain); err != nil {
		return fail(err)
	}
	c.write("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
	if e, err := c.next(); err != nil || e.XMLName.Local != "proceed" {
		return fail(fmt.Errorf("starttls: %v %v", e, err))
	}
	tlsConn := tls.Client(raw, tc)
	if err := tlsConn.Handshake(); err != nil {
		return fail(err)
	}
	c.conn = tlsConn
	if _, err := c.openStream(domain); err != nil {
		return fail(err)
	}
	cred := base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + pass))
	c.write("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>" + cred + "</auth>")
	if e, err := c.next(); err != nil || e.XMLName.Local != "success" {
		return fail(fmt.Errorf("auth: %v %v", e, err))
	}
	if _, err := c.openStream(domain); err != nil {
		return fail(err)
	}
	c.write("<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>test</resource></bind></iq>")
	e, err := c.next()
	if err != nil || e.Attr("type") != "result" {
		return fail(fmt.Errorf("bind: %v %v", e, err))
	}
	c.JID = strings.TrimSpace(e.Child("", "bind").Child("", "jid").Text)
	if opts.StreamManagement {
		c.write("<enable xmlns='" + nsSM + "'/>")
		if e, err := c.next(); err != nil || e.XMLName.Local != "enabled" {
			return fail(fmt.Errorf("enable stream management: %v %v", e, err))
		}
		c.sm = 0
	}
	c.write("<iq type='get' id='roster1'><query xmlns='jabber:iq:roster'/></iq>")
	if _, err := c.next(); err != nil {
		return fail(err)
	}
	c.write("<presence/>")
	raw.SetDeadline(time.Time{})
	go c.readLoop()
	return c, nil
}

func (c *Client) openStream(domain string) (*Elem, error) {
	c.dec = xml.NewDecoder(c.conn)
	c.write("<?xml version='1.0'?><stream:stream to='" + domain + "' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>")
	for {
		t, err := c.dec.Token()
		if err != nil {
			return nil, err
		}
		if se, ok := t.(xml.StartElement); ok && se.Name.Local == "stream" {
			break
		}
	}
	return c.next() // <stream:features/>
}

func (c *Client) next() (*Elem, error) {
	for {
		t, err := c.dec.Token()
		if err != nil {
			return nil, err
		}
		switch t := t.(type) {
		case xml.StartElement:
			var e Elem
			if err := c.dec.DecodeElement(&e, &t); err != nil {
				return nil, err
			}
			e.Received = time.Now()
			if c.sm >= 0 && e.XMLName.Space != nsSM {
				c.sm++
			}
			return &e, nil
		case xml.EndElement:
			return nil, fmt.Errorf("stream closed")
		}
	}
}

func (c *Client) readLoop() {
	for {
		e, err := c.next()
		if err != nil {
			c.errc <- err
			close(c.in)
			return
		}
		if e.XMLName.Space == nsSM {
			if e.XMLName.Local == "r" && c.sm >= 0 {
				c.Send(fmt.Sprintf("<a xmlns='%s' h='%d'/>", nsSM, c.sm))
				c.acks.Add(1)
			}
			continue
		}
		// Answer pings so the server never drops us.
		if e.XMLName.Local == "iq" && e.Attr("type") == "get" && e.Child("urn:xmpp:ping", "ping") != nil {
			c.Send(fmt.Sprintf("<iq type='result' id='%s' to='%s'/>", xmlEsc(e.Attr("id")), xmlEsc(e.Attr("from"))))
			continue
		}
		c.in <- e
	}
}

func (c *Client) write(s string) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_, err := c.conn.Write([]byte(s))
	return err
}

// Acks is how many of the server's acknowledgement requests (XEP-0198
// <r/>) the client answered.
func (c *Client) Acks() int64 { return c.acks.Load() }

// Send writes raw XML (one or more stanzas).
func (c *Client) Send(raw string) error { return c.write(raw) }

// Next returns the next stanza that match accepts (others are dropped), or
// fails the test after timeout.
func (c *Client) Next(tb testing.TB, timeout time.Duration, match func(*Elem) bool) *Elem {
	tb.Helper()
	e, err := c.Wait(timeout, match)
	if err != nil {
		tb.Fatalf("%s: %v", c.JID, err)
	}
	return e
}

// Wait is Next without a testing.TB.
func (c *Client) Wait(timeout time.Duration, match func(*Elem) bool) (*Elem, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		select {
		case e, ok := <-c.in:
			if !ok {
				return nil, fmt.Errorf("connection closed")
			}
			if match == nil || match(e) {
				return e, nil
			}
		case <-t.C:
			return nil, fmt.Errorf("nothing matching within %v", timeout)
		}
	}
}

// Messages matches message stanzas with a body.
func Messages(e *Elem) bool { return e.XMLName.Local == "message" && e.Child("", "body") != nil }

// Close ends the stream and the connection.
func (c *Client) Close() {
	c.write("</stream:stream>")
	c.conn.Close()
}

const nsSM = "urn:xmpp:sm:3" // XEP-0198

func xmlEsc(s string) string {
	var b strings.Builder
	xml.EscapeText(&b, []byte(s))
	return b.String()
}

// Esc escapes text for the raw XML tests write.
func Esc(s string) string { return xmlEsc(s) }
