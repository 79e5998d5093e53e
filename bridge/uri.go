package bridge

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"unicode/utf8"
)

// This file writes and reads xmpp: URIs (RFC 5122) with their XEP-0147
// queries ("?roster", "?join", "?message"), and the https landing links
// that invitations carry: what /invite sends a friend and /moved accepts.

// XMPPURI is an xmpp: URI, decoded: "xmpp:alice@example.org?roster" is
// {JID: "alice@example.org", Query: "roster"}.
type XMPPURI struct {
	// Auth is the JID of the authority ("xmpp://me@example.org/…"), ""
	// when the URI names none (almost always).
	Auth string
	// JID is the address the URI names: [node@]domain[/resource].
	JID string
	// Query is the XEP-0147 query type ("roster", "join", "message"), ""
	// when there is none; Params its ";key=value" pairs, in order.
	Query  string
	Params []URIParam
	// Fragment is what follows "#", decoded; "" when there is none.
	Fragment string
}

// URIParam is one ";key=value" pair of a query.
type URIParam struct{ Key, Value string }

// String writes u in the URI form of RFC 5122 (ASCII only): JID parts
// percent-encode what their grammar does not allow as it is (non-ASCII
// text as UTF-8), so that any client, and WhatsApp's link detection, reads
// it the same.
func (u XMPPURI) String() string {
	var b strings.Builder
	b.WriteString("xmpp:")
	if u.Auth != "" {
		b.WriteString("//")
		writeJID(&b, u.Auth)
		b.WriteString("/")
	}
	writeJID(&b, u.JID)
	if u.Query != "" || len(u.Params) > 0 {
		b.WriteString("?")
		b.WriteString(escape(u.Query, isUnreserved))
		for _, p := range u.Params {
			b.WriteString(";" + escape(p.Key, isUnreserved) + "=" + escape(p.Value, isUnreserved))
		}
	}
	if u.Fragment != "" {
		b.WriteString("#" + escape(u.Fragment, isFragment))
	}
	return b.String()
}

// writeJID writes [node@]domain[/resource] with each part escaped by its
// own grammar (RFC 5122 §2.2: nodeallow, resallow, reg-name).
func writeJID(b *strings.Builder, jid string) {
	node, domain, res := splitJID(jid)
	if node != "" {
		b.WriteString(escape(node, isNodeChar) + "@")
	}
	if strings.HasPrefix(domain, "[") && strings.HasSuffix(domain, "]") {
		b.WriteString(domain) // an IP literal, as it is
	} else {
		b.WriteString(escape(domain, isHostChar))
	}
	if res != "" {
		b.WriteString("/" + escape(res, isResChar))
	}
}

// splitJID splits a JID into its parts (RFC 7622 §3.1: the resource starts
// at the first "/", the node ends at the first "@" before it).
func splitJID(jid string) (node, domain, res string) {
	bare, res, _ := strings.Cut(jid, "/")
	if n, d, ok := strings.Cut(bare, "@"); ok {
		return n, d, res
	}
	return "", bare, res
}

// escape percent-encodes every byte of s that keep does not allow.
func escape(s string, keep func(byte) bool) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if keep(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

// The character classes of RFC 3986 and RFC 5122, for ASCII bytes.
func isUnreserved(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~'
}
func isSubDelim(c byte) bool  { return strings.IndexByte("!$&'()*+,;=", c) >= 0 }
func isNodeChar(c byte) bool  { return isUnreserved(c) || strings.IndexByte("!$()*+,;=", c) >= 0 }
func isResChar(c byte) bool   { return isUnreserved(c) || strings.IndexByte("!$&'()*+,:;=", c) >= 0 }
func isHostChar(c byte) bool  { return isUnreserved(c) || isSubDelim(c) }
func isPathChar(c byte) bool  { return isUnreserved(c) || isSubDelim(c) || c == ':' || c == '@' }
func isFragment(c byte) bool  { return isPathChar(c) || c == '/' || c == '?' }
func isValueChar(c byte) bool { return isUnreserved(c) }

// ParseURI reads an xmpp: URI or IRI (RFC 5122 §2.2 and §2.3: letters
// beyond ASCII may stand as they are) and decodes its parts. It is strict:
// anything the grammar does not allow is an error saying what.
func ParseURI(s string) (XMPPURI, error) {
	var u XMPPURI
	if !utf8.ValidString(s) {
		return u, errors.New("not valid UTF-8")
	}
	scheme, rest, ok := strings.Cut(s, ":")
	if !ok || !strings.EqualFold(scheme, "xmpp") {
		return u, errors.New("the scheme is not xmpp")
	}
	var err error
	if i := strings.IndexByte(rest, '#'); i >= 0 {
		if u.Fragment, err = unescape(rest[i+1:], isFragment, "fragment"); err != nil {
			return u, err
		}
		rest = rest[:i]
	}
	hier, query, hasQuery := strings.Cut(rest, "?")
	if auth, ok := strings.CutPrefix(hier, "//"); ok {
		a, path, ok := strings.Cut(auth, "/")
		if u.Auth, err = parseJID(a, true); err != nil {
			return u, fmt.Errorf("authority: %w", err)
		}
		if !ok {
			// "xmpp://guest@example.com" names only the authority.
			hier = ""
		} else {
			hier = path
		}
	}
	if hier != "" || u.Auth == "" {
		if u.JID, err = parseJID(hier, false); err != nil {
			return u, err
		}
	}
	if hasQuery {
		parts := strings.Split(query, ";")
		if u.Query, err = unescapeStrict(parts[0], "query type"); err != nil {
			return u, err
		}
		for _, p := range parts[1:] {
			k, v, ok := strings.Cut(p, "=")
			if !ok {
				return u, fmt.Errorf("query pair %q has no =", p)
			}
			key, err := unescapeStrict(k, "query key")
			if err != nil {
				return u, err
			}
			val, err := unescape(v, isValueChar, "query value")
			if err != nil {
				return u, err
			}
			u.Params = append(u.Params, URIParam{key, val})
		}
	}
	return u, nil
}

// parseJID reads [node@]host[/resource] (node required for an authority,
// which ends at the first "/").
func parseJID(s string, needNode bool) (string, error) {
	bare, res, hasRes := strings.Cut(s, "/")
	nodeRaw, host, hasNode := strings.Cut(bare, "@")
	if !hasNode {
		nodeRaw, host = "", bare
	}
	if needNode && !hasNode {
		return "", errors.New("no node@ in the authority")
	}
	var out strings.Builder
	if hasNode {
		node, err := unescape(nodeRaw, isNodeChar, "node")
		if err != nil {
			return "", err
		}
		if node == "" {
			return "", errors.New("empty node before @")
		}
		if strings.ContainsAny(node, "\"&'/:<>@") {
			return "", fmt.Errorf("node %q has a character a JID's node may not have", node)
		}
		out.WriteString(node + "@")
	}
	if host == "" {
		return "", errors.New("no domain")
	}
	if strings.HasPrefix(host, "[") {
		a, err := netip.ParseAddr(strings.TrimSuffix(host[1:], "]"))
		if !strings.HasSuffix(host, "]") || err != nil || !a.Is6() || a.Zone() != "" {
			return "", fmt.Errorf("%q is not an IPv6 literal", host)
		}
		out.WriteString(host)
	} else {
		h, err := unescape(host, isHostChar, "domain")
		if err != nil {
			return "", err
		}
		if h == "" || strings.ContainsAny(h, "@/[] ") {
			return "", fmt.Errorf("domain %q is not a host name", h)
		}
		out.WriteString(h)
	}
	if hasRes {
		r, err := unescape(res, isResChar, "resource")
		if err != nil {
			return "", err
		}
		if r == "" {
			return "", errors.New("empty resource after /")
		}
		out.WriteString("/" + r)
	}
	return out.String(), nil
}

// unescape decodes percent-encoding in s, whose ASCII bytes must be
// allowed by ok; letters beyond ASCII stand as they are (IRI), except
// control and private-use characters. The result must be UTF-8.
func unescape(s string, ok func(byte) bool, what string) (string, error) {
	var b []byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '%':
			if i+2 >= len(s) || unhex(s[i+1]) < 0 || unhex(s[i+2]) < 0 {
				return "", fmt.Errorf("%s: bad percent-encoding", what)
			}
			b = append(b, byte(unhex(s[i+1])<<4|unhex(s[i+2])))
			i += 2
		case c >= utf8.RuneSelf:
			r, n := utf8.DecodeRuneInString(s[i:])
			if !isUCSChar(r) {
				return "", fmt.Errorf("%s: %U may not stand in an IRI", what, r)
			}
			b = append(b, s[i:i+n]...)
			i += n - 1
		case ok(c):
			b = append(b, c)
		default:
			return "", fmt.Errorf("%s: %q must be percent-encoded", what, c)
		}
	}
	if !utf8.Valid(b) {
		return "", fmt.Errorf("%s: decodes to bytes that are not UTF-8", what)
	}
	return string(b), nil
}

// unescapeStrict reads the query type and keys: unreserved characters only
// (RFC 5122's iquerytype and ikey take no percent-encoding).
func unescapeStrict(s, what string) (string, error) {
	for i := 0; i < len(s); i++ {
		if s[i] < utf8.RuneSelf && !isUnreserved(s[i]) {
			return "", fmt.Errorf("%s: %q is not allowed", what, s[i])
		}
	}
	return unescape(s, isUnreserved, what)
}

func unhex(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// isUCSChar is RFC 3987's ucschar: what an IRI may carry unencoded.
func isUCSChar(r rune) bool {
	switch {
	case r >= 0xA0 && r <= 0xD7FF, r >= 0xF900 && r <= 0xFDCF, r >= 0xFDF0 && r <= 0xFFEF:
		return true
	case r >= 0x10000 && r <= 0xEFFFD:
		return r&0xFFFF < 0xFFFE // not the noncharacters at the end of each plane
	}
	return false
}

// landingLink is the https link of an invitation: base with the address
// added, in the form the landing page reads. A base ending in "#" takes the
// URI without its "xmpp:" as a fragment ("https://xmpp.link/#me@example.org?roster",
// the Easy XMPP invitation page, which the browser does not send to its
// server); any other base takes the JID as the last path segment
// ("https://conversations.im/i/me@example.org", and /j/ for a room).
func landingLink(base string, u XMPPURI) string {
	if strings.HasSuffix(base, "#") {
		return base + strings.TrimPrefix(u.String(), "xmpp:")
	}
	return base + escape(u.JID, isPathChar)
}
