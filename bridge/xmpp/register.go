package xmpp

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"
)

// In-band registration (XEP-0077) of a new account, for setup: on a stream
// of its own, before any login, as XEP-0077 §3 describes. The stream stays
// open from OpenRegistration to Submit because a CAPTCHA (XEP-0158) is
// bound to it: ejabberd checks the answer against the challenge it sent on
// that stream.
//
// What real servers do, and what this code expects:
//   - Prosody without allow_registration offers no register stream feature
//     and answers the query with service-unavailable; ejabberd's access
//     rule answers not-allowed or forbidden. Both are ErrRegistrationClosed.
//   - Prosody's additional_registration_fields and ejabberd's CAPTCHA send a
//     data form (XEP-0004) that replaces the legacy fields: the form is
//     what is submitted. ejabberd's CAPTCHA form has FORM_TYPE
//     urn:xmpp:captcha, hidden fields (from, challenge, sid) that must be
//     echoed, an answer field (ocr) whose <media/> (XEP-0221) points to the
//     image as a cid: URI, carried in the same answer as Bits of Binary
//     (XEP-0231), and as an https URL of the server's own.
//   - A server that registers only on a web page sends a jabber:x:oob URL
//     (XEP-0077 §5): Registration.Redirect.
//   - Submit's failures: conflict (the name is taken), not-acceptable (a
//     missing field, a bad name), not-allowed on a CAPTCHA form (a wrong
//     answer: ejabberd's "The CAPTCHA verification has failed"), resource-
//     constraint or policy-violation of type wait (too many registrations
//     from this address), not-allowed (closed after all).

// RegisterConfig says where to register.
type RegisterConfig struct {
	// Domain is the server's XMPP domain: the new account's domainpart.
	Domain string
	// Server, RootCAs and Resolver are as in Config.
	Server   string
	RootCAs  *x509.CertPool
	Resolver Resolver
	// Timeout bounds connecting and each request; default 30 s.
	Timeout time.Duration
}

// Registration is an open registration stream and the form the server
// asked to fill in.
type Registration struct {
	Domain       string
	Instructions string
	// Fields are what to fill in: the data form's fields when the server
	// sent one, else the legacy fields (all required, XEP-0077 §3.1).
	Fields []RegField
	// Form says the fields came from a data form (submitted as one).
	Form bool
	// Captcha says the form is a CAPTCHA challenge (XEP-0158): its
	// FORM_TYPE says so, or a field carries media to answer.
	Captcha bool
	// Redirect is a web page where registration happens instead, or "".
	Redirect string
	// Offered says the server advertised registration as a stream feature.
	Offered bool

	conn    net.Conn
	dec     *xml.Decoder
	timeout time.Duration
	n       int
}

// RegField is one field to fill in.
type RegField struct {
	Var      string // "username", "password", "email", "ocr", …
	Type     string // XEP-0004 type: text-single, text-private, hidden, fixed, list-single, boolean, …; "" for legacy fields
	Label    string
	Desc     string
	Required bool
	Value    string // the server's value: default, or the hidden field's
	Options  []RegOption
	Media    []Media // XEP-0221: the CAPTCHA's image or sound
}

// RegOption is one choice of a list field.
type RegOption struct{ Label, Value string }

// Media is one way to fetch a CAPTCHA's media: an http(s) URL, or a cid:
// URI whose bytes (Data) came with the form as Bits of Binary.
type Media struct {
	Type string // MIME type, e.g. image/png
	URI  string
	Data []byte // for cid: URIs, when the server sent the data
}

// Hidden says the field is not shown to a person (hidden, fixed text).
func (f RegField) Hidden() bool { return f.Type == "hidden" || f.Type == "fixed" }

// Registration errors: a *RegisterError wraps one of these when it applies.
var (
	ErrRegistrationClosed = errors.New("xmpp: the server does not allow creating accounts here")
	ErrNameTaken          = errors.New("xmpp: that name is taken")
	ErrNotAcceptable      = errors.New("xmpp: the server did not accept the form")
	ErrTooManyAccounts    = errors.New("xmpp: the server allows no more accounts from this address for now")
	// ErrCaptchaFailed: the CAPTCHA answer was wrong (ejabberd says
	// not-allowed, "The CAPTCHA verification has failed").
	ErrCaptchaFailed = errors.New("xmpp: the CAPTCHA answer was not right")
)

// RegisterError is what the server answered to a registration request.
type RegisterError struct {
	Condition string // RFC 6120 §8.3.3 condition
	Text      string // the server's words, if any
	Err       error  // one of the sentinels above, or nil
}

func (e *RegisterError) Error() string {
	s := "xmpp: registration: " + e.Condition
	if e.Text != "" {
		s += " (" + e.Text + ")"
	}
	return s
}

func (e *RegisterError) Unwrap() error { return e.Err }

// registerLimits admit a CAPTCHA image (Bits of Binary, base64) in the form.
var registerLimits = Limits{MaxBytes: 1 << 20, MaxDepth: 32}

// OpenRegistration connects to cfg.Domain's server without logging in
// (TLS required, the certificate verified for Domain) and asks for the
// registration form.
func OpenRegistration(ctx context.Context, cfg RegisterConfig) (*Registration, error) {
	if cfg.Timeout == 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.Resolver == nil {
		cfg.Resolver = net.DefaultResolver
	}
	eps := endpoints(ctx, cfg.Resolver, cfg.Domain, cfg.Server)
	if len(eps) == 0 {
		return nil, fmt.Errorf("xmpp: %s offers no client service (SRV target \".\")", cfg.Domain)
	}
	var errs []error
	for _, ep := range eps {
		r, err := openRegistration(ctx, cfg, ep)
		if err == nil {
			return r, nil
		}
		var re *RegisterError
		if ctx.Err() != nil || errors.As(err, &re) {
			return nil, err
		}
		errs = append(errs, err)
	}
	return nil, errors.Join(errs...)
}

func openRegistration(ctx context.Context, cfg RegisterConfig, ep endpoint) (_ *Registration, err error) {
	d := net.Dialer{Timeout: cfg.Timeout}
	raw, err := d.DialContext(ctx, "tcp", ep.Addr)
	if err != nil {
		return nil, stageErr(ep.Addr, "connect", err)
	}
	defer func() {
		if err != nil {
			raw.Close()
		}
	}()
	stop := context.AfterFunc(ctx, func() { raw.Close() })
	defer stop()
	raw.SetDeadline(time.Now().Add(cfg.Timeout))
	tcfg := &tls.Config{RootCAs: cfg.RootCAs, ServerName: cfg.Domain, MinVersion: tls.VersionTLS12}
	var conn net.Conn
	if ep.DirectTLS {
		tc := tls.Client(raw, tcfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			return nil, stageErr(ep.Addr, "tls", err)
		}
		conn = tc
	} else {
		dec, f, err := openStream(raw, cfg.Domain)
		if err != nil {
			return nil, stageErr(ep.Addr, "stream", err)
		}
		if f.StartTLS == nil {
			return nil, stageErr(ep.Addr, "tls", errors.New("the server offers no STARTTLS; waxmpp never registers in the clear"))
		}
		if _, err := raw.Write([]byte("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")); err != nil {
			return nil, stageErr(ep.Addr, "tls", err)
		}
		start, err := nextStart(dec)
		if err != nil || start.Name.Local != "proceed" {
			return nil, stageErr(ep.Addr, "tls", fmt.Errorf("STARTTLS refused (%s%v)", start.Name.Local, err))
		}
		tc := tls.Client(raw, tcfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			return nil, stageErr(ep.Addr, "tls", err)
		}
		conn = tc
	}
	dec, f, err := openStream(conn, cfg.Domain)
	if err != nil {
		return nil, stageErr(ep.Addr, "stream", err)
	}
	r := &Registration{Domain: cfg.Domain, Offered: f.Register != nil, conn: conn, dec: dec, timeout: cfg.Timeout}
	res, err := r.request(ctx, "get", []byte("<query xmlns='jabber:iq:register'/>"))
	if err != nil {
		return nil, err
	}
	if res.Type == "error" {
		return nil, registerError(res.Error, true)
	}
	if err := r.parse(res.PayloadXML); err != nil {
		return nil, err
	}
	raw.SetDeadline(time.Time{})
	return r, nil
}

// features is the part of <stream:features/> registration looks at.
type features struct {
	StartTLS *struct{} `xml:"urn:ietf:params:xml:ns:xmpp-tls starttls"`
	Register *struct{} `xml:"http://jabber.org/features/iq-register register"`
}

// openStream writes a stream header on w and reads the server's header and
// features.
func openStream(conn net.Conn, domain string) (*xml.Decoder, features, error) {
	var f features
	var b strings.Builder
	b.WriteString("<?xml version='1.0'?><stream:stream to='")
	xml.EscapeText(&b, []byte(domain))
	b.WriteString("' version='1.0' xml:lang='en' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>")
	if _, err := conn.Write([]byte(b.String())); err != nil {
		return nil, f, err
	}
	dec := xml.NewDecoder(conn)
	start, err := nextStart(dec)
	if err != nil {
		return nil, f, err
	}
	if start.Name.Space != streamsNS || start.Name.Local != "stream" {
		return nil, f, fmt.Errorf("not an XMPP stream: <%s>", start.Name.Local)
	}
	start, err = nextStart(dec)
	if err != nil {
		return nil, f, err
	}
	if start.Name.Space == streamsNS && start.Name.Local == "error" {
		var se struct {
			Inner string `xml:",innerxml"`
		}
		dec.DecodeElement(&se, &start)
		return nil, f, fmt.Errorf("stream error: %s", se.Inner)
	}
	if start.Name.Local != "features" {
		return nil, f, fmt.Errorf("expected stream features, got <%s>", start.Name.Local)
	}
	if err := dec.DecodeElement(&f, &start); err != nil {
		return nil, f, err
	}
	return dec, f, nil
}

// stageErr is a failure to reach the registration form at addr.
func stageErr(addr, stage string, err error) error {
	return fmt.Errorf("xmpp: registration at %s: %s: %w", addr, stage, err)
}

func nextStart(dec *xml.Decoder) (xml.StartElement, error) {
	for {
		tok, err := dec.Token()
		if err != nil {
			return xml.StartElement{}, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			return t, nil
		case xml.EndElement:
			return xml.StartElement{}, errors.New("the server closed the stream")
		}
	}
}

// request sends an IQ to the server with payload and returns its answer.
func (r *Registration) request(ctx context.Context, typ string, payload []byte) (*InIQ, error) {
	r.n++
	id := fmt.Sprintf("reg-%d", r.n)
	b, err := EncodeIQ(IQ{ID: id, To: r.Domain, Type: typ, Payload: Inner{payload}})
	if err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { r.conn.Close() })
	defer stop()
	r.conn.SetDeadline(time.Now().Add(r.timeout))
	defer r.conn.SetDeadline(time.Time{})
	if _, err := r.conn.Write(b); err != nil {
		return nil, r.streamErr(ctx, err)
	}
	for {
		start, err := nextStart(r.dec)
		if err != nil {
			return nil, r.streamErr(ctx, err)
		}
		if start.Name.Space == streamsNS && start.Name.Local == "error" {
			var se struct {
				Inner string `xml:",innerxml"`
			}
			r.dec.DecodeElement(&se, &start)
			// Prosody closes an unauthenticated stream that sends what it
			// does not serve: registration is closed there.
			if strings.Contains(se.Inner, "not-authorized") || strings.Contains(se.Inner, "policy-violation") {
				return nil, &RegisterError{Condition: "stream " + streamCondition(se.Inner), Err: ErrRegistrationClosed}
			}
			return nil, fmt.Errorf("xmpp: registration: stream error: %s", se.Inner)
		}
		st, err := registerLimits.Decode(r.dec, start)
		var de *DecodeError
		if errors.As(err, &de) {
			continue
		}
		if err != nil {
			return nil, r.streamErr(ctx, err)
		}
		if iq, ok := st.(*InIQ); ok && iq.ID == id && (iq.Type == "result" || iq.Type == "error") {
			return iq, nil
		}
	}
}

func (r *Registration) streamErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return fmt.Errorf("xmpp: registration at %s: %w", r.Domain, err)
}

func streamCondition(inner string) string {
	var c struct {
		Any []struct{ XMLName xml.Name } `xml:",any"`
	}
	xml.Unmarshal([]byte("<e>"+inner+"</e>"), &c)
	for _, a := range c.Any {
		if a.XMLName.Local != "text" {
			return a.XMLName.Local
		}
	}
	return "error"
}

// registerError maps a stanza error to a *RegisterError. get says it
// answered the request for the form.
func registerError(e *StanzaError, get bool) error {
	if e == nil {
		return &RegisterError{Condition: "undefined-condition"}
	}
	re := &RegisterError{Condition: e.Condition, Text: e.Text}
	switch e.Condition {
	case "conflict":
		re.Err = ErrNameTaken
	case "not-acceptable", "bad-request", "jid-malformed":
		re.Err = ErrNotAcceptable
	case "resource-constraint":
		re.Err = ErrTooManyAccounts
	case "policy-violation":
		if e.Type == "wait" {
			re.Err = ErrTooManyAccounts
		} else {
			re.Err = ErrNotAcceptable
		}
	case "not-allowed", "forbidden", "service-unavailable", "feature-not-implemented", "registration-required", "not-authorized":
		re.Err = ErrRegistrationClosed
	}
	if get && re.Err == ErrNotAcceptable {
		re.Err = ErrRegistrationClosed
	}
	return re
}

// regQuery is a jabber:iq:register query as servers send it.
type regQuery struct {
	XMLName      xml.Name  `xml:"jabber:iq:register query"`
	Instructions string    `xml:"instructions"`
	Registered   *struct{} `xml:"registered"`
	Form         *dataForm `xml:"jabber:x:data x"`
	OOB          *struct {
		URL string `xml:"url"`
	} `xml:"jabber:x:oob x"`
	BoB []bobData  `xml:"urn:xmpp:bob data"`
	Any []anyChild `xml:",any"`
}

type anyChild struct {
	XMLName xml.Name
	Value   string `xml:",chardata"`
}

type bobData struct {
	CID  string `xml:"cid,attr"`
	Type string `xml:"type,attr"`
	Data string `xml:",chardata"`
}

type dataForm struct {
	Type         string      `xml:"type,attr"`
	Title        string      `xml:"title"`
	Instructions []string    `xml:"instructions"`
	Fields       []formField `xml:"field"`
}

type formField struct {
	Var      string    `xml:"var,attr"`
	Type     string    `xml:"type,attr"`
	Label    string    `xml:"label,attr"`
	Desc     string    `xml:"desc"`
	Required *struct{} `xml:"required"`
	Values   []string  `xml:"value"`
	Options  []struct {
		Label string `xml:"label,attr"`
		Value string `xml:"value"`
	} `xml:"option"`
	Media []struct {
		URIs []struct {
			Type string `xml:"type,attr"`
			URI  string `xml:",chardata"`
		} `xml:"uri"`
	} `xml:"urn:xmpp:media-element media"`
}

// legacyFields are the XEP-0077 §14 field names a server may ask for.
var legacyFields = map[string]bool{
	"username": true, "nick": true, "password": true, "name": true, "first": true, "last": true,
	"email": true, "address": true, "city": true, "state": true, "zip": true, "phone": true,
	"url": true, "date": true, "misc": true, "text": true, "key": true,
}

func (r *Registration) parse(payload []byte) error {
	if payload == nil {
		return &RegisterError{Condition: "empty answer", Err: ErrRegistrationClosed}
	}
	var q regQuery
	if err := xml.Unmarshal(payload, &q); err != nil {
		return fmt.Errorf("xmpp: registration form from %s: %w", r.Domain, err)
	}
	r.Instructions = strings.TrimSpace(q.Instructions)
	if q.OOB != nil {
		r.Redirect = strings.TrimSpace(q.OOB.URL)
	}
	bob := map[string]bobData{}
	for _, d := range q.BoB {
		bob[d.CID] = d
	}
	if q.Form != nil && (q.Form.Type == "form" || q.Form.Type == "") {
		r.Form = true
		if r.Instructions == "" {
			r.Instructions = strings.TrimSpace(strings.Join(q.Form.Instructions, "\n"))
		}
		for _, f := range q.Form.Fields {
			if f.Var == "" && f.Type != "fixed" {
				continue
			}
			rf := RegField{Var: f.Var, Type: f.Type, Label: f.Label, Desc: strings.TrimSpace(f.Desc), Required: f.Required != nil}
			if rf.Type == "" {
				rf.Type = "text-single"
			}
			rf.Value = strings.Join(f.Values, "\n")
			if rf.Var == "FORM_TYPE" && rf.Value == "urn:xmpp:captcha" {
				r.Captcha = true
			}
			for _, o := range f.Options {
				rf.Options = append(rf.Options, RegOption{Label: o.Label, Value: o.Value})
			}
			for _, m := range f.Media {
				for _, u := range m.URIs {
					md := Media{Type: u.Type, URI: strings.TrimSpace(u.URI)}
					if cid, ok := strings.CutPrefix(md.URI, "cid:"); ok {
						if d, ok := bob[cid]; ok {
							data, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(d.Data), ""))
							if err == nil {
								md.Data = data
								if md.Type == "" {
									md.Type = d.Type
								}
							}
						}
					}
					rf.Media = append(rf.Media, md)
				}
			}
			if len(rf.Media) > 0 {
				r.Captcha = true
			}
			r.Fields = append(r.Fields, rf)
		}
		return nil
	}
	for _, c := range q.Any {
		if c.XMLName.Space == "jabber:iq:register" && legacyFields[c.XMLName.Local] {
			r.Fields = append(r.Fields, RegField{Var: c.XMLName.Local, Required: true, Value: strings.TrimSpace(c.Value)})
		}
	}
	if len(r.Fields) == 0 && r.Redirect == "" {
		return &RegisterError{Condition: "no fields", Text: r.Instructions, Err: ErrRegistrationClosed}
	}
	return nil
}

// CaptchaURL is a web address where a person can see the CAPTCHA when the
// image cannot be shown (a terminal): an http(s) media URI, else the URL
// the server gave beside the form (ejabberd's captcha-fallback-url), or "".
func (r *Registration) CaptchaURL() string {
	for _, f := range r.Fields {
		for _, m := range f.Media {
			if strings.HasPrefix(m.URI, "https://") || strings.HasPrefix(m.URI, "http://") {
				return m.URI
			}
		}
	}
	for _, v := range []string{"captcha-fallback-url", "url"} {
		if f, ok := r.Field(v); ok && (strings.HasPrefix(f.Value, "https://") || strings.HasPrefix(f.Value, "http://")) {
			return f.Value
		}
	}
	return ""
}

// Field returns the field named v, if the server asked for it.
func (r *Registration) Field(v string) (RegField, bool) {
	for _, f := range r.Fields {
		if f.Var == v {
			return f, true
		}
	}
	return RegField{}, false
}

// Submit sends the filled-in form: values by field Var (username and
// password at least); hidden fields keep the server's values unless
// values names them. On success the account exists, with values'
// username and password. The stream stays open after an error (try
// another name), but a CAPTCHA is used up: open a new Registration.
func (r *Registration) Submit(ctx context.Context, values map[string]string) error {
	var w writer
	w.open("query", "jabber:iq:register")
	if r.Form {
		w.open("x", "jabber:x:data", "type", "submit")
		for _, f := range r.Fields {
			if f.Type == "fixed" {
				continue
			}
			v, ok := values[f.Var]
			if !ok {
				v = f.Value
			}
			w.open("field", "", "var", f.Var)
			if f.Type == "text-multi" || f.Type == "list-multi" || f.Type == "jid-multi" {
				for line := range strings.SplitSeq(v, "\n") {
					w.elem("value", "", line)
				}
			} else {
				w.elem("value", "", v)
			}
			w.close()
		}
		w.close()
	} else {
		for _, f := range r.Fields {
			v, ok := values[f.Var]
			if !ok {
				v = f.Value
			}
			w.elem(f.Var, "", v)
		}
	}
	w.close()
	res, err := r.request(ctx, "set", w.bytes())
	if err != nil {
		return err
	}
	if res.Type == "error" {
		err := registerError(res.Error, false)
		var re *RegisterError
		if r.Captcha && errors.As(err, &re) && (re.Condition == "not-allowed" || re.Condition == "not-acceptable") &&
			(re.Text == "" || strings.Contains(strings.ToLower(re.Text), "captcha")) {
			re.Err = ErrCaptchaFailed
		}
		return err
	}
	return nil
}

// Close ends the registration stream.
func (r *Registration) Close() error {
	r.conn.SetWriteDeadline(time.Now().Add(time.Second))
	r.conn.Write([]byte("</stream:stream>"))
	return r.conn.Close()
}
