package bridge

import (
	"strings"
	"unicode"
	"unicode/utf8"
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

// Names from WhatsApp (push names, which anyone chooses, address-book
// names, group subjects) are shown at the start of every relayed line, so
// they must not be able to pass for the bot's own structure: "*Alice*:",
// "*Bob* in *Family*:", "*You* → *Alice*:". safeName makes a name safe to
// show; showName adds the number (or handle) when the name would still
// read as the owner, as a header, or as someone else.

// maxName is the longest name shown, in characters.
const maxName = 48

// safeName returns name without what could change how a line reads:
// control and format characters (bidi overrides and isolates, zero-width
// characters, tags), private-use characters, the asterisk and its
// look-alikes (XEP-0393's strong markers), and colons and arrows and their
// look-alikes (the header's separators), which become spaces. Whitespace
// runs become one space; combining marks cannot start the name (they would
// sit on the marker before it); a name is at most maxName characters.
func safeName(name string) string {
	s := cleanName(name)
	if utf8.RuneCountInString(s) <= maxName {
		return s
	}
	r := []rune(s)
	return strings.TrimRight(string(r[:maxName-1]), " ") + "…"
}

// cleanName is safeName without the length cap: for names already shown
// (a capped name and its tag), where the header is made.
func cleanName(name string) string {
	if clean(name) {
		return name // most names: nothing to drop, no copy
	}
	return cleanSlow(name)
}

// clean reports whether cleanName(name) is name itself: cleanSlow would
// keep every character where it is (its cases, in its order).
func clean(name string) bool {
	prev := rune(-1) // none yet
	for i, r := range name {
		switch {
		case r == '*' || starLike(r) || r == utf8.RuneError:
			return false
		case r == '>' && (prev == '-' || prev == '='):
			return false
		case r == ':' || colonLike(r) || arrow(r):
			return false
		case r == ' ':
			if prev == -1 || prev == ' ' || i == len(name)-1 {
				return false // leading, doubled or trailing
			}
		case unicode.IsSpace(r) || unicode.In(r, unicode.Zs, unicode.Zl, unicode.Zp):
			return false
		case unicode.In(r, unicode.Cc, unicode.Cf, unicode.Co, unicode.Cs):
			return false
		case unicode.In(r, unicode.Mn, unicode.Me) && (prev == -1 || prev == ' '):
			return false
		}
		prev = r
	}
	return true
}

// cleanSlow is cleanName for a name that changes.
func cleanSlow(name string) string {
	var out []rune
	space := false // a space is due before the next character
	for _, r := range strings.ToValidUTF8(name, "") {
		switch {
		case r == '*' || starLike(r) || r == utf8.RuneError:
			continue
		case r == '>' && len(out) > 0 && !space && (out[len(out)-1] == '-' || out[len(out)-1] == '='):
			out = out[:len(out)-1] // "->", "=>": an arrow
			for len(out) > 0 && out[len(out)-1] == ' ' {
				out = out[:len(out)-1]
			}
			r = ' '
		case r == ':' || colonLike(r) || arrow(r):
			r = ' '
		case unicode.IsSpace(r) || unicode.In(r, unicode.Zs, unicode.Zl, unicode.Zp):
			r = ' '
		case unicode.In(r, unicode.Cc, unicode.Cf, unicode.Co, unicode.Cs):
			continue
		case unicode.In(r, unicode.Mn, unicode.Me) && (space || len(out) == 0):
			continue
		}
		if r == ' ' {
			space = len(out) > 0
			continue
		}
		if space {
			out = append(out, ' ')
			space = false
		}
		out = append(out, r)
	}
	return strings.TrimRight(string(out), " ")
}

// starLike reports look-alikes of '*': U+2217 ∗, ⁎, ⁑, ⁕, ٭, ꙳, ﹡, ＊,
// the dingbat asterisks and florettes, and the geometric asterisks.
func starLike(r rune) bool {
	switch r {
	case 0x2217, 0x204E, 0x2051, 0x2055, 0x066D, 0xA673, 0xFE61, 0xFF0A, 0x229B:
		return true
	}
	return r >= 0x2722 && r <= 0x274B || r >= 0x1F7AF && r <= 0x1F7BF
}

// colonLike reports look-alikes of ':'.
func colonLike(r rune) bool {
	switch r {
	case 0x02D0, 0x02D1, 0x02F8, 0x0589, 0x05C3, 0x0703, 0x0704, 0x16EC, 0x1804, 0x1809,
		0x205A, 0x2236, 0xA789, 0xFE13, 0xFE30, 0xFE55, 0xFF1A, 0x2E2A, 0x2E2B, 0x2E2C, 0x2E2D, 0x2E31:
		return true
	}
	return false
}

// arrow reports arrows of every Unicode arrow block (the owner's header is
// "*You* → *Alice*").
func arrow(r rune) bool {
	for _, rg := range [][2]rune{{0x2190, 0x21FF}, {0x27F0, 0x27FF}, {0x2900, 0x297F}, {0x2B00, 0x2BFF},
		{0x2794, 0x27BF}, {0xFFE9, 0xFFEE}, {0x1F800, 0x1F8FF}, {0x2301, 0x2301}, {0x261A, 0x261F}} {
		if r >= rg[0] && r <= rg[1] {
			return true
		}
	}
	return false
}

// nameKey is what two names are compared by: letters only, lower case,
// look-alikes from other scripts and styles folded to Latin ("Үоu",
// "Ｙｏｕ" and "𝐘𝐨𝐮" are "you"), accents dropped.
func nameKey(s string) string { return string(appendNameKey(nil, s)) }

// appendNameKey appends s's nameKey to dst: into a buffer on the stack,
// for a key that is only compared or looked up.
func appendNameKey(dst []byte, s string) []byte {
	for _, r := range s {
		r = foldLetter(r)
		if unicode.IsLetter(r) {
			dst = utf8.AppendRune(dst, unicode.ToLower(r))
		}
	}
	return dst
}

// foldLetter maps a letter that looks like a Latin one to it.
func foldLetter(r rune) rune {
	switch {
	case r < 0x80:
		return r
	case r >= 0xFF21 && r <= 0xFF3A, r >= 0xFF41 && r <= 0xFF5A: // fullwidth
		return r - 0xFF21 + 'A'
	case r >= 0x1D400 && r <= 0x1D6A3: // mathematical alphanumerics
		i := (r - 0x1D400) % 52
		if i < 26 {
			return 'a' + i
		}
		return 'a' + i - 26
	case r >= 0x24B6 && r <= 0x24CF: // circled
		return 'a' + r - 0x24B6
	case r >= 0x24D0 && r <= 0x24E9:
		return 'a' + r - 0x24D0
	case r >= 0x249C && r <= 0x24B5: // parenthesized
		return 'a' + r - 0x249C
	case r >= 0x1F1E6 && r <= 0x1F1FF: // regional indicators
		return 'a' + r - 0x1F1E6
	case r >= 0x1F130 && r <= 0x1F149, r >= 0x1F150 && r <= 0x1F169, r >= 0x1F170 && r <= 0x1F189: // squared
		return 'a' + (r-0x1F130)%32
	}
	if f, ok := confusable[r]; ok {
		return f
	}
	if f, ok := fold[unicode.ToLower(r)]; ok {
		return f
	}
	return r
}

// confusable maps letters of other scripts that look like Latin ones.
var confusable = func() map[rune]rune {
	m := map[rune]rune{}
	for latin, all := range map[rune]string{
		'a': "аαАΑᴀɑ", 'b': "ВΒʙЬ", 'c': "сСϲᴄ", 'd': "ԁᴅ", 'e': "еЕΕᴇ", 'g': "ɡɢ", 'h': "һНΗʜ",
		'i': "іІΙιɪıӀ", 'j': "јЈ", 'k': "кКΚκᴋ", 'l': "ӏʟ", 'm': "МΜᴍ", 'n': "ΝɴпՈո", 'o': "оОοΟᴏσ",
		'p': "рРρΡᴘ", 'q': "ԛ", 'r': "ʀг", 's': "ѕЅꜱ", 't': "тТτΤᴛ", 'u': "υᴜսՍ", 'v': "νᴠѵ",
		'w': "ԝᴡѡ", 'x': "хХχΧ", 'y': "уУΥүҮʏγ", 'z': "Ζᴢ",
	} {
		for _, r := range all {
			m[r] = latin
		}
	}
	return m
}()

// readsAsOwner reports whether a (safe) name reads as "You", the owner's
// own header: the name, its first word, or single letters spelled out at
// its start ("Y o u"), in any script's look-alikes.
func readsAsOwner(name string) bool {
	var buf [64]byte
	if string(appendNameKey(buf[:0], name)) == "you" {
		return true
	}
	var sp [8]byte
	spelled := sp[:0]
	first := true
	for w := range strings.FieldsSeq(name) {
		k := appendNameKey(buf[:0], w)
		if first && string(k) == "you" {
			return true
		}
		first = false
		if utf8.RuneCount(k) != 1 {
			break
		}
		spelled = append(spelled, k...)
		if string(spelled) == "you" {
			return true
		}
		if len(spelled) >= len("you") {
			break // it only grows
		}
	}
	return false
}

// readsAsHeader reports whether a (safe) name reads as the group header's
// "Sender in Chat": a word "in" between two others.
func readsAsHeader(name string) bool {
	var buf [64]byte
	in := false // the word before was "in", not the first
	i := 0
	for w := range strings.FieldsSeq(name) {
		if in {
			return true
		}
		in = i > 0 && string(appendNameKey(buf[:0], w)) == "in"
		i++
	}
	return false
}

// showName is how a name is shown: safe, and followed by tag (the
// person's number, a chat's handle) in brackets when it would lie: when it
// reads as the owner or as a header, or clashes with another name the owner
// knows. An empty name is the tag alone.
func showName(name, tag string, clash bool) string {
	s := safeName(name)
	switch {
	case s == "":
		return tag
	case tag != "" && (clash || readsAsOwner(s) || readsAsHeader(s)):
		return s + " (" + tag + ")"
	}
	return s
}
