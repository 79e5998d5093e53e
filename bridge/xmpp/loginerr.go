package xmpp

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/xml"
	"errors"
	"fmt"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// Login errors. Run returns the permanent ones (ErrAuth, ErrAccountDisabled,
// ErrMechanism), wrapped in a *LoginError; the others are retried with
// backoff.
var (
	// ErrAccountDisabled: the server says the bot's account is disabled.
	ErrAccountDisabled = errors.New("xmpp: the server says the account is disabled")
	// ErrMechanism: the configured SASL mechanism is not offered.
	ErrMechanism = errors.New("xmpp: the server does not offer the configured SASL mechanism")
)

// LoginError is a login that failed at one endpoint: what failed, and what
// the server said.
type LoginError struct {
	Addr      string
	Stage     string // "dns", "connect", "tls", "sasl", "bind", "stream"
	Mechanism string // the SASL mechanism tried, if known
	Condition string // the SASL failure or stream error condition, if any
	Text      string // the server's text, if any
	Err       error  // a sentinel (ErrAuth …) or the underlying error

	offered []string // the SASL mechanisms the server offered
}

func (e *LoginError) Error() string {
	var b strings.Builder
	switch e.Stage {
	case "dns":
		fmt.Fprintf(&b, "xmpp: cannot find the server %s in DNS", e.Addr)
	case "connect":
		fmt.Fprintf(&b, "xmpp: cannot connect to %s", e.Addr)
	case "tls":
		fmt.Fprintf(&b, "xmpp: TLS with %s failed", e.Addr)
	case "sasl":
		switch {
		case errors.Is(e.Err, ErrAuth):
			fmt.Fprintf(&b, "xmpp: %s refused the password", e.Addr)
		case errors.Is(e.Err, ErrAccountDisabled):
			fmt.Fprintf(&b, "xmpp: %s says the account is disabled", e.Addr)
		case errors.Is(e.Err, ErrMechanism):
			fmt.Fprintf(&b, "xmpp: %s does not offer the SASL mechanism %s", e.Addr, e.Mechanism)
		case e.Condition == "temporary-auth-failure":
			fmt.Fprintf(&b, "xmpp: %s cannot check logins right now (temporary-auth-failure)", e.Addr)
		default:
			fmt.Fprintf(&b, "xmpp: login at %s failed (not the password)", e.Addr)
		}
		if e.Mechanism != "" && !errors.Is(e.Err, ErrMechanism) {
			fmt.Fprintf(&b, " with %s", e.Mechanism)
		}
	default:
		fmt.Fprintf(&b, "xmpp: login at %s", e.Addr)
	}
	if e.Condition != "" && e.Condition != "temporary-auth-failure" {
		fmt.Fprintf(&b, ": %s", e.Condition)
	}
	if e.Text != "" {
		fmt.Fprintf(&b, " (%q)", e.Text)
	}
	if e.Err != nil && e.Err != ErrAuth && e.Err != ErrAccountDisabled && e.Err != ErrMechanism {
		fmt.Fprintf(&b, ": %v", e.Err)
	}
	return b.String()
}

func (e *LoginError) Unwrap() error { return e.Err }

// binding reports whether the mechanism uses channel binding (-PLUS).
func binding(mech string) bool { return strings.HasSuffix(mech, "-PLUS") }

// permanent reports whether retrying cannot help (Run returns it).
func permanent(err error) bool {
	return errors.Is(err, ErrAccountDisabled) || errors.Is(err, ErrMechanism)
}

// bestWithoutBinding picks the strongest offered mechanism that does not
// use channel binding, "" if none.
func bestWithoutBinding(offered []string) string {
	for _, m := range []string{"SCRAM-SHA-512", "SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"} {
		if slices.Contains(offered, m) {
			return m
		}
	}
	return ""
}

// loginTrace watches go-xmpp's login through its debug writer: the
// mechanism it chose (from what it sent) and what the server answered,
// so that a failure is told by its condition, not by go-xmpp's flattened
// text. It keeps only the server's bytes, at most 64 KiB, and nothing once
// the login is over.
type loginTrace struct {
	mu   sync.Mutex
	done bool
	recv []byte
	mech string
}

var mechAttr = regexp.MustCompile(`<(?:auth|authenticate)\b[^>]*\bmechanism=['"]([A-Za-z0-9_-]+)['"]`)

func (t *loginTrace) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.done {
		return len(p), nil
	}
	switch {
	case bytes.HasPrefix(p, []byte("RECV ")):
		// go-xmpp prefixes each read and ends it with a newline.
		b := bytes.TrimSuffix(p[5:], []byte("\n"))
		if len(t.recv)+len(b) <= 64<<10 {
			t.recv = append(t.recv, b...)
		}
	case bytes.HasPrefix(p, []byte("SEND ")):
		// Only the mechanism's name is kept from what we sent.
		if m := mechAttr.FindSubmatch(p); m != nil {
			t.mech = string(m[1])
		}
	}
	return len(p), nil
}

// offers reports whether the server's stream features named ns.
func (t *loginTrace) offers(ns string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return bytes.Contains(t.recv, []byte(ns))
}

// maxBytes is the stanza limit of the server's last stream features
// (XEP-0478: after login, the authenticated stream's), 0 if it states none.
func (t *loginTrace) maxBytes() int {
	var f struct {
		XMLName xml.Name `xml:"features"`
		Limits  []struct {
			XMLName  xml.Name
			MaxBytes string `xml:"max-bytes"`
		} `xml:"limits"`
	}
	if !t.last("features", &f) {
		return 0
	}
	for _, l := range f.Limits {
		if l.XMLName.Space != nsStreamLimits {
			continue
		}
		if n, err := strconv.Atoi(strings.TrimSpace(l.MaxBytes)); err == nil && n > 0 {
			return n
		}
	}
	return 0
}

// finish stops the trace: the link's stanzas are never kept.
func (t *loginTrace) finish() {
	t.mu.Lock()
	t.done, t.recv = true, nil
	t.mu.Unlock()
}

// mechanism is the SASL mechanism go-xmpp tried, "" if none is known (go-xmpp
// writes PLAIN past the trace).
func (t *loginTrace) mechanism() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.mech
}

// offered lists the SASL mechanisms of the last <mechanisms/> the server
// advertised.
func (t *loginTrace) offered() []string {
	var f struct {
		Mechanisms []string `xml:"mechanism"`
	}
	if !t.last("mechanisms", &f) {
		return nil
	}
	for i := range f.Mechanisms {
		f.Mechanisms[i] = strings.TrimSpace(f.Mechanisms[i])
	}
	return f.Mechanisms
}

// condition is the server's last SASL failure (condition and text), or its
// stream error.
func (t *loginTrace) condition() (stage, cond, text string) {
	var f struct {
		XMLName xml.Name
		Inner   []struct {
			XMLName xml.Name
			Text    string `xml:",chardata"`
		} `xml:",any"`
	}
	for _, el := range []string{"failure", "error"} {
		if !t.last(el, &f) {
			continue
		}
		for _, c := range f.Inner {
			switch {
			case c.XMLName.Local == "text":
				text = strings.TrimSpace(c.Text)
			case cond == "":
				cond = c.XMLName.Local
			}
		}
		if el == "failure" {
			return "sasl", cond, text
		}
		return "stream", cond, text
	}
	return "", "", ""
}

// last decodes the last element named local (any prefix) that the server
// sent into v.
func (t *loginTrace) last(local string, v any) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	re := regexp.MustCompile(`<(?:[A-Za-z0-9_.-]+:)?` + local + `[\s/>]`)
	locs := re.FindAllIndex(t.recv, -1)
	if len(locs) == 0 {
		return false
	}
	d := xml.NewDecoder(bytes.NewReader(t.recv[locs[len(locs)-1][0]:]))
	d.Strict = false // a stream: prefix declared on the stream element
	return d.Decode(v) == nil
}

// loginError turns what go-xmpp returned, and what the trace saw, into a
// *LoginError.
func loginError(addr string, err error, t *loginTrace) *LoginError {
	e := &LoginError{Addr: addr, Stage: "sasl", Mechanism: t.mechanism(), Err: err}
	stage, cond, text := t.condition()
	var cve *tls.CertificateVerificationError
	var uae x509.UnknownAuthorityError
	var hne x509.HostnameError
	var ciErr x509.CertificateInvalidError
	var rh tls.RecordHeaderError
	msg := err.Error()
	switch {
	case errors.As(err, &cve), errors.As(err, &uae), errors.As(err, &hne), errors.As(err, &ciErr), errors.As(err, &rh),
		strings.HasPrefix(msg, "starttls handshake"), strings.HasPrefix(msg, "tls:"):
		e.Stage = "tls"
		return e
	case strings.Contains(msg, "no viable authentication method"):
		e.Err = ErrMechanism
		return e
	case stage == "stream":
		e.Stage, e.Condition, e.Text = "stream", cond, text
		return e
	case strings.HasPrefix(msg, "auth failure"):
		e.Condition, e.Text = cond, text
		if cond == "" {
			e.Condition = strings.TrimSpace(strings.TrimPrefix(msg, "auth failure:"))
		}
	case strings.HasPrefix(msg, "bind"):
		e.Stage = "bind"
		return e
	default:
		e.Stage = ""
		return e
	}
	// A SASL failure: which kind.
	switch e.Condition {
	case "not-authorized", "credentials-expired":
		if !binding(e.Mechanism) {
			e.Err = ErrAuth
		}
	case "account-disabled":
		e.Err = ErrAccountDisabled
	}
	if e.Err == err {
		e.Err = nil
	}
	return e
}

// dialError turns a failed TCP dial into a *LoginError.
func dialError(addr string, err error) *LoginError {
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return &LoginError{Addr: addr, Stage: "dns", Err: err}
	}
	return &LoginError{Addr: addr, Stage: "connect", Err: err}
}
