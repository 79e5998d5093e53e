package bridge

import (
	"strings"
)

// MaxHandle is the longest handle a chat gets.
const MaxHandle = 16

// HandleBase derives a handle from a display name: lower-case ASCII letters
// and digits, accents dropped, at most 16 characters, starting with a letter.
// It returns "" when nothing usable is left (a name in another script).
func HandleBase(name string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(name) {
		if b.Len() == MaxHandle {
			break
		}
		if s, ok := fold[r]; ok {
			r = s
		}
		switch {
		case r >= 'a' && r <= 'z':
			b.WriteRune(r)
		case r >= '0' && r <= '9' && b.Len() > 0:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// fold maps the Latin letters with diacritics common in contact names to
// their base letter.
var fold = func() map[rune]rune {
	m := map[rune]rune{}
	for base, all := range map[rune]string{
		'a': "àáâãäåāăą", 'c': "çćčĉċ", 'd': "ďđ", 'e': "èéêëēĕėęě", 'g': "ğĝġģ",
		'h': "ĥħ", 'i': "ìíîïĩīĭįı", 'j': "ĵ", 'k': "ķ", 'l': "ĺļľŀł", 'n': "ñńņňŉ",
		'o': "òóôõöøōŏő", 'r': "ŕŗř", 's': "śŝşšș", 't': "ţťŧț", 'u': "ùúûüũūŭůűų",
		'w': "ŵ", 'y': "ýÿŷ", 'z': "źżž",
	} {
		for _, r := range all {
			m[r] = base
		}
	}
	return m
}()

// genericHandle reports whether h was made without a name ("group2",
// "contact3", "n491701234567"), so a better one may replace it once the
// chat's name is known.
func genericHandle(h string) bool {
	for _, p := range []string{"group", "contact", "broadcast", "n"} {
		if rest, ok := strings.CutPrefix(h, p); ok && (rest == "" && p != "n" || isNumber(rest)) {
			return true
		}
	}
	return false
}
