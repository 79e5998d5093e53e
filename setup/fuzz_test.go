package setup

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzAnswers: what a person types as an address, a bot name or a phone
// number never panics the checks, and an address they accept is one the
// config accepts.
func FuzzAnswers(f *testing.F) {
	for _, s := range []string{"me@example.org", " xmpp:Me@Example.org?roster ", "xmpp:%41@b.c", "+49 170 1234567", "0170", "a@b@c", "@", "", "jörg@bücher.example"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		j := cleanJID(s)
		if checkJID("xmpp.owner", j) == "" {
			if !utf8.ValidString(j) || strings.ContainsAny(j, "/ \t") {
				t.Fatalf("accepted %q as an address", j)
			}
		}
		checkJID("xmpp.jid", j)
		checkPhone(s)
		if n := suggestName(s); n == "" || strings.ContainsAny(n, "@/ ") {
			t.Fatalf("suggestName(%q) = %q", s, n)
		}
	})
}
