package bridge

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// parsed is how a relayed line's header reads: with XEP-0393 rendering
// its strong spans are the names, and without it the asterisks still
// delimit them.
type parsed struct {
	fromMe       bool
	sender, chat string
	text         string
}

// parseHeader reads a line the way the owner does: "*You* → *Chat*: text",
// "*Sender* in *Chat*: text" or "*Sender*: text". ok is false for a line
// that is none of them.
func parseHeader(line string) (p parsed, ok bool) {
	parts := strings.Split(line, "*")
	switch {
	case len(parts) == 5 && parts[0] == "" && parts[1] == "You" && parts[2] == " → " && strings.HasPrefix(parts[4], ": "):
		return parsed{fromMe: true, chat: parts[3], text: parts[4][2:]}, true
	case len(parts) == 5 && parts[0] == "" && parts[2] == " in " && strings.HasPrefix(parts[4], ": "):
		return parsed{sender: parts[1], chat: parts[3], text: parts[4][2:]}, true
	case len(parts) == 3 && parts[0] == "" && strings.HasPrefix(parts[2], ": "):
		return parsed{sender: parts[1], text: parts[2][2:]}, true
	}
	return parsed{}, false
}

// known are the names the owner already reads in the tests below: an
// address-book contact, another, a group. ("You" is not among them: it
// must be refused on its own.)
var known = []string{"Alice Liddell", "Bob", "Family"}

func knownKey(s string) bool {
	k := nameKey(s)
	for _, n := range known {
		if nameKey(n) == k {
			return true
		}
	}
	return false
}

// checkShown fails when shown, the way name is shown with tag, could pass
// for the owner, a header or a known name without its tag, or carries what
// changes how a line reads.
func checkShown(t *testing.T, name, tag, shown string) {
	t.Helper()
	tagged := strings.HasSuffix(shown, " ("+tag+")") || shown == tag
	bare := strings.TrimSuffix(shown, " ("+tag+")")
	if !tagged && (readsAsOwner(bare) || readsAsHeader(bare) || knownKey(bare)) {
		t.Errorf("%q is shown as %q: it passes for the owner, a header or a known name", name, shown)
	}
	for _, r := range bare {
		if r == '*' || r == ':' || starLike(r) || colonLike(r) || arrow(r) || unicode.In(r, unicode.Cc, unicode.Cf, unicode.Co) || r == utf8.RuneError {
			t.Errorf("%q is shown as %q, with %U", name, shown, r)
		}
	}
	if n := utf8.RuneCountInString(bare); n > maxName {
		t.Errorf("%q is shown with %d characters, more than %d", name, n, maxName)
	}
	if strings.TrimSpace(bare) != bare || strings.Contains(bare, "  ") {
		t.Errorf("%q is shown as %q: stray spaces", name, shown)
	}
}

// show is showName with the clash the core would find against known.
func show(name, tag string) string { return showName(name, tag, knownKey(safeName(name))) }

// checkHeaders makes the three headers a hostile name can appear in and
// checks that each parses as what it is, naming the right sender and chat.
func checkHeaders(t *testing.T, name string) {
	t.Helper()
	const tag, group = "+4915550001", "fam2"
	person := show(name, tag)
	checkShown(t, name, tag, person)
	// A direct chat with the person.
	h := header(Direct, person, person, false) + "hi"
	if p, ok := parseHeader(h); !ok || p.fromMe || p.chat != "" || p.sender != person || p.text != "hi" {
		t.Errorf("direct %q: %q reads as %+v (ok %v)", name, h, p, ok)
	}
	// The person in a known group.
	h = header(Group, "Family", person, false) + "hi"
	if p, ok := parseHeader(h); !ok || p.fromMe || p.chat != "Family" || p.sender != person || p.text != "hi" {
		t.Errorf("group %q: %q reads as %+v (ok %v)", name, h, p, ok)
	}
	// A group whose subject is the name.
	subject := show(name, group)
	checkShown(t, name, group, subject)
	h = header(Group, subject, "Bob", false) + "hi"
	if p, ok := parseHeader(h); !ok || p.fromMe || p.chat != subject || p.sender != "Bob" || p.text != "hi" {
		t.Errorf("subject %q: %q reads as %+v (ok %v)", name, h, p, ok)
	}
	// The owner writing to the person.
	h = header(Direct, person, "", true) + "hi"
	if p, ok := parseHeader(h); !ok || !p.fromMe || p.chat != person {
		t.Errorf("own %q: %q reads as %+v (ok %v)", name, h, p, ok)
	}
	// The same, rendered plain (render.go).
	checkPlainHeaders(t, name)
}

// TestHostileNames: names chosen to pass for the owner, another sender or
// another chat are shown so that every header says who wrote where.
func TestHostileNames(t *testing.T) {
	long := strings.Repeat("Al", 5000)
	tests := []struct {
		name, want string // want: how it is shown, tag +4915550001
	}{
		{"Alice", "Alice"},
		{"Zoë Ørsted", "Zoë Ørsted"},
		{"山田 太郎", "山田 太郎"},
		{"You∗ → ∗Bob", "You Bob (+4915550001)"}, // U+2217 asterisk operator
		{"Bob∗ in ∗Family", "Bob in Family (+4915550001)"},
		{"Mallory\u202e:olleh", "Mallory olleh"},                     // right-to-left override
		{"Eve\u200b", "Eve"},                                         // zero-width space
		{"\u202aBob\u202c", "Bob (+4915550001)"},                     // embedding: Bob is known
		{"A\u2066lice Liddell\u2069", "Alice Liddell (+4915550001)"}, // isolate
		{"Trojan \u202e\u2066: You\u2069\u2066", "Trojan You"},
		{"You", "You (+4915550001)"},
		{"you", "you (+4915550001)"},
		{"YOU", "YOU (+4915550001)"},
		{"Үоu", "Үоu (+4915550001)"},     // Cyrillic
		{"Ｙｏｕ", "Ｙｏｕ (+4915550001)"},     // fullwidth
		{"𝐘𝐨𝐮", "𝐘𝐨𝐮 (+4915550001)"},     // mathematical bold
		{"ʏᴏᴜ", "ʏᴏᴜ (+4915550001)"},     // small capitals
		{"🇾🇴🇺", "🇾🇴🇺 (+4915550001)"},     // regional indicators
		{"Y o u", "Y o u (+4915550001)"}, // spelled out
		{"Y\u200bou", "You (+4915550001)"},
		{"You (Alice)", "You (Alice) (+4915550001)"},
		{"Youssef", "Youssef"},
		{"Young Bob", "Young Bob"},
		{"ALICE LIDDELL", "ALICE LIDDELL (+4915550001)"},
		{"Alice Liddell +491111", "Alice Liddell +491111 (+4915550001)"}, // a fake tag
		{"Alicе Liddell", "Alicе Liddell (+4915550001)"},                 // Cyrillic е
		{"Fam\u00adily", "Family (+4915550001)"},                         // soft hyphen
		{"Bob: hi there", "Bob hi there"},
		{"Bob：hi", "Bob hi"},
		{"Bob ⟶ Carol", "Bob Carol"},
		{"x->y", "x y"},
		{"Bob=>Alice", "Bob Alice"},
		{"*Bob* in *Family*", "Bob in Family (+4915550001)"},
		{"Bob\nin\nFamily", "Bob in Family (+4915550001)"},
		{"Tab\tName\u3000Ideo", "Tab Name Ideo"},
		{"\u0301\u0301Zalgo\u0301", "Zalgo\u0301"},
		{"", "+4915550001"},
		{"   \t\n", "+4915550001"},
		{"\u200b\u202e\u2066", "+4915550001"},
		{"∗∗∗", "+4915550001"},
		{"bad\xffutf8", "badutf8"},
		{long, strings.Repeat("Al", 23) + "A…"},
	}
	for _, tt := range tests {
		got := show(tt.name, "+4915550001")
		if got != tt.want {
			t.Errorf("show(%q) = %q, want %q", tt.name, got, tt.want)
		}
		checkHeaders(t, tt.name)
	}
}

// FuzzNames: no name, however chosen, yields a header that reads as the
// owner, as another sender, or as another chat.
func FuzzNames(f *testing.F) {
	for _, s := range []string{"You∗ → ∗Bob", "Bob∗ in ∗Family", "Mallory\u202e:olleh", "Eve\u200b", "Үоu", "Y o u", "Alice Liddell", "x->y", "a:b", "*", "\u0301", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		checkHeaders(t, name)
		if safeName(safeName(name)) != safeName(name) {
			t.Errorf("safeName is not stable for %q", name)
		}
	})
}

// FuzzNameFastPaths: the allocation-free paths answer as the plain
// ones (cleanSlow, and readsAsOwner and readsAsHeader as they were, over
// strings.Fields and nameKey).
func FuzzNameFastPaths(f *testing.F) {
	for _, s := range []string{"Alice", "Alice Liddell", " Alice", "Alice ", "a  b", "x->y", "a - > b", "Y o u", "y ou", "Bob in Family",
		"in Family", "Bob in", "e\u0301", "\u0301e", "a \u0301", "Zoë Ñúñez", "Family 🏡", "\u00a0a", "a\tb", "\ufffd", "\xff", "Үоu"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if clean(name) && cleanSlow(name) != name {
			t.Errorf("clean(%q) but cleanSlow makes %q", name, cleanSlow(name))
		}
		if got, want := cleanName(name), cleanSlow(name); got != want {
			t.Errorf("cleanName(%q) = %q, cleanSlow %q", name, got, want)
		}
		if got, want := readsAsOwner(name), refReadsAsOwner(name); got != want {
			t.Errorf("readsAsOwner(%q) = %v, was %v", name, got, want)
		}
		if got, want := readsAsHeader(name), refReadsAsHeader(name); got != want {
			t.Errorf("readsAsHeader(%q) = %v, was %v", name, got, want)
		}
	})
}

func refReadsAsOwner(name string) bool {
	if nameKey(name) == "you" {
		return true
	}
	words := strings.Fields(name)
	if len(words) > 0 && nameKey(words[0]) == "you" {
		return true
	}
	var spelled strings.Builder
	for _, w := range words {
		k := nameKey(w)
		if len([]rune(k)) != 1 {
			break
		}
		spelled.WriteString(k)
		if spelled.String() == "you" {
			return true
		}
	}
	return false
}

func refReadsAsHeader(name string) bool {
	words := strings.Fields(name)
	for i := 1; i < len(words)-1; i++ {
		if nameKey(words[i]) == "in" {
			return true
		}
	}
	return false
}

// TestNameAllocs: a name with nothing to clean costs no allocation on the
// way to a header (cleanName, safeName, the checks showName makes), and a
// relayed message's id one.
func TestNameAllocs(t *testing.T) {
	for _, c := range []struct {
		name string
		max  float64
		f    func()
	}{
		{"cleanName", 0, func() { cleanName("Alice Liddell") }},
		{"safeName", 0, func() { safeName("Zoë Ñúñez 🏡") }},
		{"readsAsOwner", 0, func() { readsAsOwner("Alice Liddell") }},
		{"readsAsHeader", 0, func() { readsAsHeader("Bob at Family") }},
		{"bareUser", 0, func() { bareUser("4915550001@s.whatsapp.net") }},
		{"relayID", 1, func() {
			relayID(MessageKey{Chat: "4915550001@s.whatsapp.net", Sender: "4915550001@s.whatsapp.net", ID: "3EB0C0FFEE"})
		}},
	} {
		if got := testing.AllocsPerRun(100, c.f); got > c.max {
			t.Errorf("%s: %.0f allocations, want ≤ %.0f", c.name, got, c.max)
		}
	}
}

// TestDerivedIDs: the ids derived on the stack are the ones derived
// before (relayed messages' and sent messages' ids must not change across
// an upgrade: a resend after it must carry the same id).
func TestDerivedIDs(t *testing.T) {
	for _, id := range []string{"", "3EB0C0FFEE", "8b7a0002-1c2d-4e5f-a6b7-c8d9e0f1a2b3", strings.Repeat("x", 300)} {
		k := MessageKey{Chat: "4915550001@s.whatsapp.net", Sender: "4915550002@s.whatsapp.net", ID: id}
		h := sha256.Sum256([]byte(k.Chat + "\x00" + k.Sender + "\x00" + k.ID))
		if got, want := relayID(k), relayPrefix+hex.EncodeToString(h[:10]); got != want {
			t.Errorf("relayID(%q) = %s, was %s", id, got, want)
		}
		h = sha256.Sum256([]byte("waxmpp\x00" + id))
		if got, want := waSendID(id), "3EB0"+strings.ToUpper(hex.EncodeToString(h[:9])); got != want {
			t.Errorf("waSendID(%q) = %s, was %s", id, got, want)
		}
	}
	if got := testing.AllocsPerRun(100, func() { waSendID("8b7a0002-1c2d-4e5f-a6b7-c8d9e0f1a2b3") }); got > 1 {
		t.Errorf("waSendID: %.0f allocations, want 1", got)
	}
}
