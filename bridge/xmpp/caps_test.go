package xmpp

import "testing"

// The examples of XEP-0115 §5.2 and §5.3.
func TestCapsVer(t *testing.T) {
	simple := CapsVer(
		[]Identity{{Category: "client", Type: "pc", Name: "Exodus 0.9.1"}},
		[]string{
			"http://jabber.org/protocol/disco#info",
			"http://jabber.org/protocol/disco#items",
			"http://jabber.org/protocol/muc",
			"http://jabber.org/protocol/caps",
		})
	if want := "QgayPKawpkPSDYmwT/WM94uAlu0="; simple != want {
		t.Errorf("simple example: got %s, want %s", simple, want)
	}

	complex := CapsVer(
		[]Identity{
			{Category: "client", Type: "pc", Lang: "en", Name: "Psi 0.11"},
			{Category: "client", Type: "pc", Lang: "el", Name: "Ψ 0.11"},
		},
		[]string{
			"http://jabber.org/protocol/muc",
			"http://jabber.org/protocol/disco#info",
			"http://jabber.org/protocol/caps",
			"http://jabber.org/protocol/disco#items",
		},
		Form{Type: "urn:xmpp:dataforms:softwareinfo", Fields: []Field{
			{Var: "software_version", Values: []string{"0.11"}},
			{Var: "os", Values: []string{"Mac"}},
			{Var: "ip_version", Values: []string{"ipv6", "ipv4"}},
			{Var: "os_version", Values: []string{"10.5.1"}},
			{Var: "software", Values: []string{"Psi"}},
		}},
		Form{Fields: []Field{{Var: "ignored", Values: []string{"no FORM_TYPE"}}}},
	)
	if want := "q07IKJEyjvHSyhy//CH0CxmKi8w="; complex != want {
		t.Errorf("complex example: got %s, want %s", complex, want)
	}
}

// Sorting is by category, then type, then lang, field by field: "a" sorts
// before "a-b" although "a/" sorts after "a-" as joined strings.
func TestCapsVerIdentityOrder(t *testing.T) {
	ids := []Identity{{Category: "a-b", Type: "x"}, {Category: "a", Type: "x"}}
	rev := []Identity{ids[1], ids[0]}
	if CapsVer(ids, nil) != CapsVer(rev, nil) {
		t.Error("CapsVer depends on the order of identities")
	}
	// The expected string is "a/x//<a-b/x//<"; build it through a feature.
	want := CapsVer([]Identity{{Category: "a", Type: "x"}}, []string{"a-b/x//"})
	if got := CapsVer(ids, nil); got != want {
		t.Errorf("identity order: got %s, want %s", got, want)
	}
}

func TestCapsBotDiscoInfo(t *testing.T) {
	info := BotDiscoInfo()
	seen := map[string]bool{}
	for _, f := range info.Features {
		if seen[f] {
			t.Errorf("feature %s listed twice (XEP-0115 §5.4 makes such caps invalid)", f)
		}
		seen[f] = true
	}
	c := info.Caps()
	if c.Hash != "sha-1" || c.Node != CapsNode || c.Ver != info.Ver() || c.Ver == "" {
		t.Errorf("Caps() = %+v", c)
	}
	// A fresh value each time: callers may append without affecting others.
	info.Features = append(info.Features[:0], "x")
	if BotDiscoInfo().Features[0] == "x" {
		t.Error("BotDiscoInfo shares its slices")
	}
}
