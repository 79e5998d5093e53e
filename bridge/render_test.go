package bridge

import (
	"strings"
	"testing"
)

// parsePlainHeader reads a plain line the way the owner does: "You →
// Chat: text", "Sender → Chat: text" or "Sender: text": the first ": "
// ends the header, an arrow before it separates sender and chat.
func parsePlainHeader(line string) (p parsed, ok bool) {
	head, text, found := strings.Cut(line, ": ")
	if !found {
		return parsed{}, false
	}
	if sender, chat, group := strings.Cut(head, " → "); group {
		if strings.Contains(chat, " → ") {
			return parsed{}, false
		}
		if sender == "You" {
			return parsed{fromMe: true, chat: chat, text: text}, true
		}
		return parsed{sender: sender, chat: chat, text: text}, true
	}
	return parsed{sender: head, text: text}, true
}

// checkPlainHeaders is checkHeaders for the plain rendering: each header a
// hostile name appears in parses as what it is.
func checkPlainHeaders(t *testing.T, name string) {
	t.Helper()
	const tag, group = "+4915550001", "fam2"
	person := show(name, tag)
	h := plainHeader(Direct, person, person, false) + "hi"
	if p, ok := parsePlainHeader(h); !ok || p.fromMe || p.chat != "" || p.sender != person || p.text != "hi" {
		t.Errorf("plain direct %q: %q reads as %+v (ok %v)", name, h, p, ok)
	}
	h = plainHeader(Group, "Family", person, false) + "hi"
	if p, ok := parsePlainHeader(h); !ok || p.fromMe || p.chat != "Family" || p.sender != person || p.text != "hi" {
		t.Errorf("plain group %q: %q reads as %+v (ok %v)", name, h, p, ok)
	}
	subject := show(name, group)
	h = plainHeader(Group, subject, "Bob", false) + "hi"
	if p, ok := parsePlainHeader(h); !ok || p.fromMe || p.chat != subject || p.sender != "Bob" || p.text != "hi" {
		t.Errorf("plain subject %q: %q reads as %+v (ok %v)", name, h, p, ok)
	}
	h = plainHeader(Direct, person, "", true) + "hi"
	if p, ok := parsePlainHeader(h); !ok || !p.fromMe || p.chat != person {
		t.Errorf("plain own %q: %q reads as %+v (ok %v)", name, h, p, ok)
	}
	h = plainNoteHeader(subject) + "Bob joined"
	if p, ok := parsePlainHeader(h); !ok || p.sender != subject || p.text != "Bob joined" {
		t.Errorf("plain note %q: %q reads as %+v (ok %v)", name, h, p, ok)
	}
}

func TestPlainHeaders(t *testing.T) {
	for _, tt := range []struct {
		kind         ChatKind
		chat, sender string
		fromMe       bool
		want         string
	}{
		{Direct, "Alice", "Alice", false, "Alice: "},
		{Group, "Family", "Bob", false, "Bob → Family: "},
		{Direct, "Alice", "", true, "You → Alice: "},
		{Group, "Family", "", true, "You → Family: "},
		{Group, "", "", false, "? → ?: "},
		{Group, "A: B", "C → D", false, "C D → A B: "},
	} {
		if got := plainHeader(tt.kind, tt.chat, tt.sender, tt.fromMe); got != tt.want {
			t.Errorf("plainHeader(%v, %q, %q, %v) = %q, want %q", tt.kind, tt.chat, tt.sender, tt.fromMe, got, tt.want)
		}
	}
}

// TestStripPlainHeader: a quote of a plain line matches the relayed text.
func TestStripPlainHeader(t *testing.T) {
	recent := []MsgLink{
		{WA: MessageKey{Chat: "a@s.whatsapp.net", ID: "1"}, XMPPID: "wa-1", Excerpt: "dinner at 8?"},
		{WA: MessageKey{Chat: "g@g.us", ID: "2"}, XMPPID: "wa-2", Excerpt: "Note: bring wine"},
	}
	for _, tt := range []struct {
		quote string
		want  []ChatID
	}{
		{"Alice: dinner at 8?", []ChatID{"a@s.whatsapp.net"}},
		{"*Alice*: dinner at 8?", []ChatID{"a@s.whatsapp.net"}},
		{"Bob → Family: Note: bring wine", []ChatID{"g@g.us"}},
		{"Note: bring wine", []ChatID{"g@g.us"}},
		{"Someone: something else", nil},
	} {
		got, _ := matchQuote(tt.quote, recent)
		if strings.Join(toStrings(got), ",") != strings.Join(toStrings(tt.want), ",") {
			t.Errorf("matchQuote(%q) = %v, want %v", tt.quote, got, tt.want)
		}
	}
}

func toStrings(ids []ChatID) []string {
	var s []string
	for _, id := range ids {
		s = append(s, string(id))
	}
	return s
}
