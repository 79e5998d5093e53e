package bridge

import (
	"flag"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// TestURIString: what /invite and the reminders write, in RFC 5122's URI
// form (§2.2), escaped part by part.
func TestURIString(t *testing.T) {
	tests := []struct {
		u    XMPPURI
		want string
	}{
		{XMPPURI{JID: "me@example.org", Query: "roster"}, "xmpp:me@example.org?roster"},
		{XMPPURI{JID: "family@muc.example.org", Query: "join"}, "xmpp:family@muc.example.org?join"},
		{XMPPURI{JID: "alice@example.org", Query: "message"}, "xmpp:alice@example.org?message"},
		{XMPPURI{JID: "example.org"}, "xmpp:example.org"},
		// RFC 5122 §2.9's examples.
		{XMPPURI{JID: "nasty!#$%()*+,-.;=?[\\]^_`{|}~node@example.com"}, "xmpp:nasty!%23$%25()*+,-.;=%3F%5B%5C%5D%5E_%60%7B%7C%7D~node@example.com"},
		{XMPPURI{JID: "node@example.com/repulsive !#\"$%&'()*+,-./:;<=>?@[\\]^_`{|}~resource"}, "xmpp:node@example.com/repulsive%20!%23%22$%25&'()*+,-.%2F:;%3C=%3E%3F%40%5B%5C%5D%5E_%60%7B%7C%7D~resource"},
		{XMPPURI{JID: "jiři@čechy.example/v Praze"}, "xmpp:ji%C5%99i@%C4%8Dechy.example/v%20Praze"},
		{XMPPURI{JID: "me@[::1]", Query: "roster"}, "xmpp:me@[::1]?roster"},
		// XEP-0147's examples.
		{XMPPURI{JID: "romeo@montague.net", Query: "message", Params: []URIParam{{"subject", "Test Message"}, {"body", "Here's a test message"}}},
			"xmpp:romeo@montague.net?message;subject=Test%20Message;body=Here%27s%20a%20test%20message"},
		{XMPPURI{JID: "romeo@montague.net", Query: "roster", Params: []URIParam{{"name", "Romeo Montague"}, {"group", "Friends"}}},
			"xmpp:romeo@montague.net?roster;name=Romeo%20Montague;group=Friends"},
		{XMPPURI{Auth: "guest@example.com", JID: "support@example.com", Query: "message"}, "xmpp://guest@example.com/support@example.com?message"},
	}
	for _, tt := range tests {
		got := tt.u.String()
		if got != tt.want {
			t.Errorf("%+v.String() = %q, want %q", tt.u, got, tt.want)
		}
		back, err := ParseURI(got)
		if err != nil || !reflect.DeepEqual(back, tt.u) {
			t.Errorf("ParseURI(%q) = %+v, %v; want %+v", got, back, err, tt.u)
		}
		// Any URI parser reads it as an opaque URI of the scheme, without
		// a fragment or anything left over.
		if pu, err := url.Parse(got); err != nil || pu.Scheme != "xmpp" || pu.Fragment != "" {
			t.Errorf("url.Parse(%q) = %+v, %v", got, pu, err)
		}
	}
}

func TestParseURI(t *testing.T) {
	good := []struct {
		in   string
		want XMPPURI
	}{
		{"xmpp:node@example.com", XMPPURI{JID: "node@example.com"}},
		{"XMPP:node@example.com?join", XMPPURI{JID: "node@example.com", Query: "join"}},
		{"xmpp://guest@example.com", XMPPURI{Auth: "guest@example.com"}},
		{"xmpp:ji\u0159i@\u010dechy.example/v%20Praze", XMPPURI{JID: "jiři@čechy.example/v Praze"}}, // the IRI form
		{"xmpp:a@b?message;body=", XMPPURI{JID: "a@b", Query: "message", Params: []URIParam{{"body", ""}}}},
		{"xmpp:a@b#frag%20x", XMPPURI{JID: "a@b", Fragment: "frag x"}},
		{"xmpp:a@b?", XMPPURI{JID: "a@b"}},
	}
	for _, tt := range good {
		got, err := ParseURI(tt.in)
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseURI(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
	bad := []struct{ in, wantIn string }{
		{"", "scheme is not xmpp"},
		{"http://example.org", "scheme is not xmpp"},
		{"xmpp:", "no domain"},
		{"xmpp:@example.org", "empty node"},
		{"xmpp:a b@example.org", "must be percent-encoded"},
		{"xmpp:a%2@example.org", "percent-encoding"},
		{"xmpp:a%zz@example.org", "percent-encoding"},
		{"xmpp:a%FF@example.org", "not UTF-8"},
		{"xmpp:a%2Fb@example.org", "may not have"},
		{"xmpp:a@b@example.org", "'@' must be percent-encoded"},
		{"xmpp:a@example.org/", "empty resource"},
		{"xmpp:a@[::1", "IPv6"},
		{"xmpp:a@[127.0.0.1]", "IPv6"},
		{"xmpp:a@example.org?ro%20ster", "not allowed"},
		{"xmpp:a@example.org?message;body", "no ="},
		{"xmpp:a@example.org?message;bo dy=x", "not allowed"},
		{"xmpp:a@example.org?message;body=a b", "must be percent-encoded"},
		{"xmpp://example.com/a@b", "no node@"},
		{"xmpp://g@example.com/r/a@b", "resource: '@' must be percent-encoded"},
		{"xmpp:a\u0085@example.org", "may not stand"},
		{"xmpp:a\ue000@example.org", "may not stand"},
		{"xmpp:a@example.org\xff", "UTF-8"},
	}
	for _, tt := range bad {
		if u, err := ParseURI(tt.in); err == nil || !strings.Contains(err.Error(), tt.wantIn) {
			t.Errorf("ParseURI(%q) = %+v, %v; want an error saying %q", tt.in, u, err, tt.wantIn)
		}
	}
}

// FuzzParseURI: no input panics; what parses writes back as a URI (ASCII
// only) that parses to the same thing.
func FuzzParseURI(f *testing.F) {
	for _, s := range []string{"xmpp:me@example.org?roster", "xmpp://guest@example.com/support@example.com?message;body=x%20y#f",
		"xmpp:ji\u0159i@\u010dechy.example/v%20Praze", "xmpp:a@[::1]/r", "xmpp:%", "xmpp:a@b?;=", "xmpp:@"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := ParseURI(s)
		if err != nil {
			return
		}
		out := u.String()
		for i := 0; i < len(out); i++ {
			if out[i] >= utf8.RuneSelf || out[i] <= ' ' {
				t.Fatalf("%q wrote %q, which is not an ASCII URI", s, out)
			}
		}
		again, err := ParseURI(out)
		if err != nil || !reflect.DeepEqual(again, u) {
			t.Fatalf("%q → %+v → %q → %+v, %v", s, u, out, again, err)
		}
	})
}

// FuzzInviteURI: the URI of any address an invitation may carry (a JID
// whose parts hold anything a JID may) parses back, by the grammar, to the
// same address and query.
func FuzzInviteURI(f *testing.F) {
	f.Add("me", "example.org", "", uint8(0))
	f.Add("jiři", "čechy.example", "v Praze", uint8(1))
	f.Add("nasty!#$%()*+,-.;=?[\\]^_`{|}~node", "example.com", "repulsive !#\"$%&'()*+,-./:;<=>?@[\\]^_`{|}~", uint8(2))
	f.Fuzz(func(t *testing.T, node, domain, res string, q uint8) {
		if !utf8.ValidString(node) || !utf8.ValidString(domain) || !utf8.ValidString(res) || node == "" || domain == "" ||
			strings.ContainsAny(node, "\"&'/:<>@") || strings.ContainsAny(domain, "@/[] ") {
			return
		}
		jid := node + "@" + domain
		if res != "" {
			jid += "/" + res
		}
		u := XMPPURI{JID: jid, Query: []string{"roster", "join", "message", ""}[q%4]}
		s := u.String()
		got, err := ParseURI(s)
		if err != nil || got.JID != jid || got.Query != u.Query {
			t.Fatalf("%+v wrote %q, which parses as %+v, %v", u, s, got, err)
		}
		for _, base := range []string{DefaultInviteLink, "https://xmpp.link/#"} {
			l := landingLink(base, u)
			pu, err := url.Parse(l)
			if err != nil || pu.Scheme != "https" || strings.ContainsAny(l, " \n") {
				t.Fatalf("landing link %q: %+v, %v", l, pu, err)
			}
			if base == DefaultInviteLink {
				if p, err := url.PathUnescape(strings.TrimPrefix(pu.EscapedPath(), "/i/")); err != nil || p != jid {
					t.Fatalf("landing link %q names %q, %v; want %q", l, p, err, jid)
				}
			} else if back, err := ParseURI("xmpp:" + pu.EscapedFragment()); err != nil || back.JID != jid {
				t.Fatalf("landing link %q names %+v, %v; want %q", l, back, err, jid)
			}
		}
	})
}

func TestLandingLink(t *testing.T) {
	tests := []struct {
		base string
		u    XMPPURI
		want string
	}{
		{DefaultInviteLink, XMPPURI{JID: "me@example.org", Query: "roster"}, "https://conversations.im/i/me@example.org"},
		{DefaultRoomLink, XMPPURI{JID: "family@muc.example.org", Query: "join"}, "https://conversations.im/j/family@muc.example.org"},
		{"https://xmpp.link/#", XMPPURI{JID: "me@example.org", Query: "roster"}, "https://xmpp.link/#me@example.org?roster"},
		{"https://xmpp.link/#", XMPPURI{JID: "family@muc.example.org", Query: "join"}, "https://xmpp.link/#family@muc.example.org?join"},
		{DefaultInviteLink, XMPPURI{JID: "a#b%c?d@example.org"}, "https://conversations.im/i/a%23b%25c%3Fd@example.org"},
	}
	for _, tt := range tests {
		if got := landingLink(tt.base, tt.u); got != tt.want {
			t.Errorf("landingLink(%q, %+v) = %q, want %q", tt.base, tt.u, got, tt.want)
		}
	}
}

func TestInviteTemplate(t *testing.T) {
	vals := map[string]string{"name": "Alice", "address": "me@example.org", "uri": "xmpp:me@example.org?roster", "link": "https://l/"}
	noName := map[string]string{"address": "me@example.org", "uri": "xmpp:me@example.org?roster", "link": "https://l/"}
	tests := []struct {
		text          string
		want, wantNot string // with a name, without
	}{
		{"Hi {name}! {link}", "Hi Alice! https://l/", "Hi! https://l/"},
		{"¡Hola, {name}! {uri}", "¡Hola, Alice! xmpp:me@example.org?roster", "¡Hola! xmpp:me@example.org?roster"},
		{"Salut {name}\u202f! {address}", "Salut Alice\u202f! me@example.org", "Salut\u202f! me@example.org"},
		{"{name}, see {link}", "Alice, see https://l/", ", see https://l/"},
		{"{{name}} {{ {link}", "{name}} { https://l/", "{name}} { https://l/"},
		{"{link}{link}", "https://l/https://l/", "https://l/https://l/"},
	}
	for _, tt := range tests {
		p, err := parseInviteText(tt.text)
		if err != nil {
			t.Errorf("parseInviteText(%q): %v", tt.text, err)
			continue
		}
		if got := p.render(vals); got != tt.want {
			t.Errorf("render(%q) = %q, want %q", tt.text, got, tt.want)
		}
		if got := p.render(noName); got != tt.wantNot {
			t.Errorf("render(%q) without a name = %q, want %q", tt.text, got, tt.wantNot)
		}
	}
	for _, bad := range []string{"", " \n", "Hi {name}!", "{adress}", "{link} {", "{LINK}", "{ link}", "{link}\x00", "\xff{link}"} {
		if err := CheckInviteText(bad); err == nil {
			t.Errorf("CheckInviteText(%q) = nil, want an error", bad)
		}
	}
	for _, lang := range InviteLanguages {
		for _, k := range []inviteKind{toPerson, toGroup, toRoom} {
			if err := CheckInviteText(builtinInvite(lang, k)); err != nil {
				t.Errorf("the built-in %s text %s: %v", lang, textKeys[k], err)
			}
		}
	}
}

// FuzzInviteText: no template panics; an accepted one always says where
// to find the owner, and fills every placeholder in.
func FuzzInviteText(f *testing.F) {
	for _, s := range []string{builtinInvite("fr", toPerson), "Hi {name}, {link}", "{{{link}}}", "{", "{link", "}{uri}{"} {
		f.Add(s, "Alice")
	}
	f.Fuzz(func(t *testing.T, text, name string) {
		p, err := parseInviteText(text)
		if err != nil {
			return
		}
		const addr, uri, link = "\x01ADDR\x01", "\x01URI\x01", "\x01LINK\x01"
		out := p.render(map[string]string{"name": name, "address": addr, "uri": uri, "link": link})
		if !strings.Contains(out, addr) && !strings.Contains(out, uri) && !strings.Contains(out, link) {
			t.Fatalf("%q rendered without the address: %q", text, out)
		}
		// Placeholders are gone: what is left in braces came from "{{".
		lits := strings.Count(text, "{{")
		if n := strings.Count(out, "{"); n > lits {
			t.Fatalf("%q rendered %d braces from %d {{: %q", text, n, lits, out)
		}
	})
}

func TestParseAddress(t *testing.T) {
	good := map[string]string{
		"alice@example.org":                 "alice@example.org",
		"Alice@Example.ORG":                 "Alice@example.org",
		"alice@example.org/phone":           "alice@example.org",
		"xmpp:alice@example.org?roster":     "alice@example.org",
		"XMPP:alice@example.org":            "alice@example.org",
		"xmpp:ji%C5%99i@%C4%8Dechy.example": "jiři@čechy.example",
		"family@muc.example.org":            "family@muc.example.org",
	}
	for in, want := range good {
		if got, why := parseAddress(in); got != want || why != "" {
			t.Errorf("parseAddress(%q) = %q, %q; want %q", in, got, why, want)
		}
	}
	for _, in := range []string{"alice", "@example.org", "alice@", "a@b@c", "a<b@example.org", "alice@exa_mple.org", "alice@example..org",
		"alice@-example.org", "xmpp:alice@", "xmpp:a b@c", "a\tb@example.org", "+491701234567", "https://conversations.im/i/alice@example.org"} {
		if got, why := parseAddress(in); why == "" {
			t.Errorf("parseAddress(%q) = %q, want a problem", in, got)
		}
	}
}

// FuzzParseAddress: what /moved accepts is one bare JID, stable when read
// again, and its URI parses back to it.
func FuzzParseAddress(f *testing.F) {
	for _, s := range []string{"alice@example.org", "xmpp:a@b?roster", "a@b/c", "@", "a@b.", "jiři@čechy.example"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, why := parseAddress(s)
		if why != "" {
			return
		}
		if strings.Count(got, "@") != 1 || strings.ContainsAny(got, "/ \t\n") {
			t.Fatalf("parseAddress(%q) = %q", s, got)
		}
		if again, why := parseAddress(got); again != got || why != "" {
			t.Fatalf("parseAddress(%q) = %q, then %q, %q", s, got, again, why)
		}
		if u, err := ParseURI(XMPPURI{JID: got, Query: "message"}.String()); err != nil || u.JID != got {
			t.Fatalf("the URI of %q parses as %+v, %v", got, u, err)
		}
	})
}

// TestRoomInvites renders the invitation to a group that has its own room,
// in each language and on both kinds of landing page (the room's address,
// ?join), against testdata/core/invite-rooms.golden. (The core sends it
// once the group has a room; until then a group gets the owner's address.)
func TestRoomInvites(t *testing.T) {
	u := XMPPURI{JID: "family@muc.example.org", Query: "join"}
	var b strings.Builder
	for _, lang := range InviteLanguages {
		for _, base := range []string{DefaultRoomLink, "https://xmpp.link/#"} {
			text, err := parseInviteText(builtinInvite(lang, toRoom))
			if err != nil {
				t.Fatal(err)
			}
			b.WriteString("== " + lang + " " + base + "\n" + renderInvite(text, base, u, "") + "\n")
		}
	}
	path := filepath.Join("testdata", "core", "invite-rooms.golden")
	if f := flag.Lookup("update"); f != nil && f.Value.String() == "true" {
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if b.String() != string(want) {
		t.Errorf("room invitations differ from %s (run with -update to accept):\n%s", path, b.String())
	}
}
