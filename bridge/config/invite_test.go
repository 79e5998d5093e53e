package config

import (
	"errors"
	"strings"
	"testing"
)

// TestInviteErrors: every bad [invite] value is an *Error naming its key and
// line, and saying what would do.
func TestInviteErrors(t *testing.T) {
	tests := []struct {
		name   string
		rest   string
		line   int // in configDoc's document: [xmpp] and its 3 keys come first
		field  string
		wantIn string
	}{
		{"language", "[invite]\nlanguage = \"it\"\n", 6, "invite.language", "want en, de, fr or es"},
		{"language upper", "[invite]\nlanguage = \"DE\"\n", 6, "invite.language", "want en, de, fr or es"},
		{"text typo", "[invite]\n\ntext = \"Hi {nmae}! {link}\"\n", 7, "invite.text", `"{nmae}", which is not a placeholder; use {name}, {address}, {uri} and {link}`},
		{"text multi-line typo", "[invite]\ntext = \"\"\"\nHi {name}!\nFind me: {lnk}\n\"\"\"\n", 6, "invite.text", `"{lnk}"`},
		{"text no address", "[invite]\ntext = \"Hi {name}, come to XMPP!\"\n", 6, "invite.text", "would not say where to find you"},
		{"text open brace", "[invite]\ntext = \"{link} :-{\"\n", 6, "invite.text", "a { without its }"},
		{"text blank", "[invite]\ntext = \"  \"\n", 6, "invite.text", "is empty"},
		{"text long", "[invite]\ntext = \"{link}" + strings.Repeat("x", 4000) + "\"\n", 6, "invite.text", "at most 4000"},
		{"room_text", "[invite]\nroom_text = \"{room}\"\n", 6, "invite.room_text", `"{room}"`},
		{"group_text", "[invite]\ngroup_text = \"Hi all\"\n", 6, "invite.group_text", "would not say where"},
		{"link http", "[invite]\nlink = \"http://conversations.im/i/\"\n", 6, "invite.link", "not an https address"},
		{"link no slash", "[invite]\nlink = \"https://conversations.im/i\"\n", 6, "invite.link", "does not end in / or #"},
		{"link query", "[invite]\nlink = \"https://example.org/?jid=/\"\n", 6, "invite.link", "has a query"},
		{"link no host", "[invite]\nlink = \"https:///i/\"\n", 6, "invite.link", "names no host"},
		{"link empty", "[invite]\nlink = \"\"\n", 6, "invite.link", "is empty"},
		{"link space", "[invite]\nlink = \"https://example.org/a b/\"\n", 6, "invite.link", "spaces"},
		{"room_link", "[invite]\nroom_link = \"ftp://example.org/j/\"\n", 6, "invite.room_link", "https"},
		{"unknown key", "[invite]\nlanguge = \"de\"\n", 6, "invite.languge", "did you mean invite.language?"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := configDoc("", tt.rest)
			_, err := Parse(strings.NewReader(doc))
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("Parse = %v, want an *Error\n%s", err, doc)
			}
			if ce.Field != tt.field || ce.Line != tt.line || !strings.Contains(ce.Problem, tt.wantIn) {
				t.Errorf("got  %s (line %d): %s\nwant %s (line %d): …%s…", ce.Field, ce.Line, ce.Problem, tt.field, tt.line, tt.wantIn)
			}
		})
	}
}

func TestInviteValues(t *testing.T) {
	doc := configDoc("", `[invite]
language = "es"
text = """
¡Hola, {name}! Escríbeme: {link} ({{sí}})"""
group_text = "¡Hola a todos! {address}"
room_text = "Únete: {uri}"
link = "https://xmpp.link/#"
room_link = "https://example.org/join/"
`)
	got, err := Parse(strings.NewReader(doc))
	if err != nil {
		t.Fatal(err)
	}
	want := Invite{Language: "es", Text: "¡Hola, {name}! Escríbeme: {link} ({{sí}})", GroupText: "¡Hola a todos! {address}", RoomText: "Únete: {uri}",
		Link: "https://xmpp.link/#", RoomLink: "https://example.org/join/"}
	if got.Invite != want {
		t.Errorf("got  %+v\nwant %+v", got.Invite, want)
	}
}

// TestInviteLang: the language is the config's, else the locale's, else
// English.
func TestInviteLang(t *testing.T) {
	tests := []struct {
		language string
		env      map[string]string
		want     string
	}{
		{"", nil, "en"},
		{"fr", map[string]string{"LANG": "de_DE.UTF-8"}, "fr"},
		{"", map[string]string{"LANG": "de_DE.UTF-8"}, "de"},
		{"", map[string]string{"LANG": "es"}, "es"},
		{"", map[string]string{"LANG": "fr_CA@euro"}, "fr"},
		{"", map[string]string{"LANG": "FR_fr"}, "fr"},
		{"", map[string]string{"LANG": "C.UTF-8"}, "en"},
		{"", map[string]string{"LANG": "POSIX"}, "en"},
		{"", map[string]string{"LANG": "it_IT.UTF-8"}, "en"},
		{"", map[string]string{"LANG": "de_DE.UTF-8", "LC_MESSAGES": "es_ES.UTF-8"}, "es"},
		{"", map[string]string{"LANG": "de_DE.UTF-8", "LC_MESSAGES": "es_ES.UTF-8", "LC_ALL": "fr_FR.UTF-8"}, "fr"},
		// The first one set decides, even when it is none of ours.
		{"", map[string]string{"LANG": "de_DE.UTF-8", "LC_ALL": "C"}, "en"},
	}
	for _, tt := range tests {
		got := Invite{Language: tt.language}.Lang(func(k string) string { return tt.env[k] })
		if got != tt.want {
			t.Errorf("Lang(language %q, env %v) = %q, want %q", tt.language, tt.env, got, tt.want)
		}
	}
}
