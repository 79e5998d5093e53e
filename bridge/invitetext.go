package bridge

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"
)

// This file holds the invitation's text: the built-in texts in each
// language, and the small template language the owner may write their own
// in ([invite] text, group_text and room_text in the config).
//
// A template is plain text with placeholders in braces:
//
//	{name}     the person's first name as the owner's address book has it
//	           (else their WhatsApp name); empty in a group, and then the
//	           spaces and one comma before it go too ("Hi {name}!" → "Hi!")
//	{address}  the address to add: the owner's (xmpp.owner), or the room's
//	{uri}      that address as an xmpp: URI (…?roster, or …?join for a room)
//	{link}     the https landing page link that opens it in an app, or
//	           helps install one
//
// "{{" writes a brace. Anything else in braces is an error, so that a typo
// cannot reach a friend as "{adress}". A template must carry the address
// ({address}, {uri} or {link}): an invitation without it says nothing.

// InviteLanguages are the languages the built-in invitations are written
// in, as ISO 639-1 codes: what [invite] language may be.
var InviteLanguages = []string{"en", "de", "fr", "es"}

// DefaultInviteLink and DefaultRoomLink are the landing pages invitations
// link to unless the config names others: Conversations' public pages,
// which open the address in an XMPP app or offer apps to install, and read
// the address from the path (https://conversations.im/i/me@example.org).
const (
	DefaultInviteLink = "https://conversations.im/i/"
	DefaultRoomLink   = "https://conversations.im/j/"
)

// maxInviteText bounds a template, in bytes: an invitation is a short
// message (WhatsApp would take 65536 characters).
const maxInviteText = 4000

// inviteKind is whom an invitation goes to, and so which text it takes.
type inviteKind int

const (
	toPerson inviteKind = iota // a person: the owner's address ([invite] text)
	toGroup                    // a group without a room of its own: the owner's address (group_text)
	toRoom                     // a group with its room (/room): the room's address (room_text)
)

// The built-in invitations, to a person, a group and a room, in each
// language. The apps line is the same list in every one: Conversations and
// Quicksy (Android; Quicksy signs up with a phone number, as WhatsApp
// does), Monal and Siskin (iOS), Dino and Gajim (computers). A person is
// addressed informally (du, tu, tú), a group in the plural.
var builtinInvites = map[string][3]string{
	"en": {
		`Hi {name}! I'm on XMPP now, a free chat network where anyone can write to anyone, like email. You can reach me at {address}.

Add me with one tap: {link}
In an XMPP app: {uri}

No app yet? Conversations or Quicksy on Android, Monal or Siskin on iPhone, Dino or Gajim on a computer.`,
		`Hi all! I'm on XMPP now, a free chat network where anyone can write to anyone, like email. You can reach me at {address}.

Add me with one tap: {link}
In an XMPP app: {uri}

No app yet? Conversations or Quicksy on Android, Monal or Siskin on iPhone, Dino or Gajim on a computer.`,
		`Hi all! This group is on XMPP too, a free chat network where anyone can write to anyone, like email.

Join with one tap: {link}
In an XMPP app: {uri}

No app yet? Conversations or Quicksy on Android, Monal or Siskin on iPhone, Dino or Gajim on a computer.`,
	},
	"de": {
		`Hallo {name}! Ich bin jetzt bei XMPP, einem freien Chat-Netz, in dem jeder jedem schreiben kann, wie bei E-Mail. Du erreichst mich unter {address}.

Mit einem Tipp hinzufügen: {link}
In einer XMPP-App: {uri}

Noch keine App? Conversations oder Quicksy für Android, Monal oder Siskin für das iPhone, Dino oder Gajim für den Computer.`,
		`Hallo zusammen! Ich bin jetzt bei XMPP, einem freien Chat-Netz, in dem jeder jedem schreiben kann, wie bei E-Mail. Ihr erreicht mich unter {address}.

Mit einem Tipp hinzufügen: {link}
In einer XMPP-App: {uri}

Noch keine App? Conversations oder Quicksy für Android, Monal oder Siskin für das iPhone, Dino oder Gajim für den Computer.`,
		`Hallo zusammen! Diese Gruppe gibt es jetzt auch bei XMPP, einem freien Chat-Netz, in dem jeder jedem schreiben kann, wie bei E-Mail.

Mit einem Tipp beitreten: {link}
In einer XMPP-App: {uri}

Noch keine App? Conversations oder Quicksy für Android, Monal oder Siskin für das iPhone, Dino oder Gajim für den Computer.`,
	},
	// French puts a narrow no-break space before ! and ? and a no-break
	// space before a colon.
	"fr": {
		"Salut {name}\u202f! Je suis maintenant sur XMPP, un réseau de messagerie libre où tout le monde peut écrire à tout le monde, comme avec l’e-mail. Tu peux me joindre à l’adresse {address}.\n\n" +
			"M’ajouter en un clic\u00a0: {link}\n" +
			"Dans une appli XMPP\u00a0: {uri}\n\n" +
			"Pas encore d’appli\u202f? Conversations ou Quicksy sur Android, Monal ou Siskin sur iPhone, Dino ou Gajim sur ordinateur.",
		"Salut tout le monde\u202f! Je suis maintenant sur XMPP, un réseau de messagerie libre où tout le monde peut écrire à tout le monde, comme avec l’e-mail. Vous pouvez me joindre à l’adresse {address}.\n\n" +
			"M’ajouter en un clic\u00a0: {link}\n" +
			"Dans une appli XMPP\u00a0: {uri}\n\n" +
			"Pas encore d’appli\u202f? Conversations ou Quicksy sur Android, Monal ou Siskin sur iPhone, Dino ou Gajim sur ordinateur.",
		"Salut tout le monde\u202f! Ce groupe est aussi sur XMPP, un réseau de messagerie libre où tout le monde peut écrire à tout le monde, comme avec l’e-mail.\n\n" +
			"Rejoindre en un clic\u00a0: {link}\n" +
			"Dans une appli XMPP\u00a0: {uri}\n\n" +
			"Pas encore d’appli\u202f? Conversations ou Quicksy sur Android, Monal ou Siskin sur iPhone, Dino ou Gajim sur ordinateur.",
	},
	// The group texts avoid vosotros and ustedes, which split Spain and
	// Latin America.
	"es": {
		`¡Hola, {name}! Ahora estoy en XMPP, una red de chat libre en la que cualquiera puede escribir a cualquiera, como con el correo electrónico. Puedes escribirme a {address}.

Añádeme con un toque: {link}
En una app de XMPP: {uri}

¿Aún no tienes app? Conversations o Quicksy en Android, Monal o Siskin en iPhone, Dino o Gajim en el ordenador.`,
		`¡Hola a todos! Ahora estoy en XMPP, una red de chat libre en la que cualquiera puede escribir a cualquiera, como con el correo electrónico. Mi dirección allí es {address}.

Para añadirme, con un toque: {link}
En una app de XMPP: {uri}

¿Todavía sin app? Conversations o Quicksy en Android, Monal o Siskin en iPhone, Dino o Gajim en el ordenador.`,
		`¡Hola a todos! Este grupo también está en XMPP, una red de chat libre en la que cualquiera puede escribir a cualquiera, como con el correo electrónico.

Para unirse, con un toque: {link}
En una app de XMPP: {uri}

¿Todavía sin app? Conversations o Quicksy en Android, Monal o Siskin en iPhone, Dino o Gajim en el ordenador.`,
	},
}

// languageNames name the languages in /invite text's answer.
var languageNames = map[string]string{"en": "English", "de": "German", "fr": "French", "es": "Spanish"}

// builtinInvite is the built-in invitation in lang (one of
// InviteLanguages; English for anything else) of kind.
func builtinInvite(lang string, kind inviteKind) string {
	t, ok := builtinInvites[lang]
	if !ok {
		t = builtinInvites["en"]
	}
	return t[kind]
}

// placeholders are the names a template may use.
var placeholders = []string{"name", "address", "uri", "link"}

// inviteText is a parsed template: literal text and placeholders, in order.
type inviteText []textPart

type textPart struct {
	lit string // literal text, when ph is ""
	ph  string // a placeholder's name
}

// CheckInviteText says what is wrong with a template, or nil (the config
// validates [invite] text and room_text with it).
func CheckInviteText(s string) error {
	_, err := parseInviteText(s)
	return err
}

func parseInviteText(s string) (inviteText, error) {
	switch {
	case !utf8.ValidString(s):
		return nil, errors.New("is not valid UTF-8")
	case strings.TrimSpace(s) == "":
		return nil, errors.New("is empty; leave the key out for the built-in text")
	case len(s) > maxInviteText:
		return nil, fmt.Errorf("is %d bytes long; an invitation may have at most %d", len(s), maxInviteText)
	case strings.ContainsRune(s, 0):
		return nil, errors.New("contains a NUL character")
	}
	var out inviteText
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			out = append(out, textPart{lit: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '{' {
			lit.WriteByte(c)
			continue
		}
		if i+1 < len(s) && s[i+1] == '{' {
			lit.WriteByte('{')
			i++
			continue
		}
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			return nil, fmt.Errorf("has a { without its }; placeholders are %s (write {{ for a brace)", placeholderList())
		}
		name := s[i+1 : i+end]
		if !slices.Contains(placeholders, name) {
			return nil, fmt.Errorf("has %q, which is not a placeholder; use %s (write {{ for a brace)", short(s[i:i+end+1], 30), placeholderList())
		}
		flush()
		out = append(out, textPart{ph: name})
		i += end
	}
	flush()
	if !slices.ContainsFunc(out, func(p textPart) bool { return p.ph == "address" || p.ph == "uri" || p.ph == "link" }) {
		return nil, errors.New("has none of {address}, {uri} and {link}: the invitation would not say where to find you")
	}
	return out, nil
}

func placeholderList() string {
	var b strings.Builder
	for i, p := range placeholders {
		switch {
		case i == len(placeholders)-1:
			b.WriteString(" and ")
		case i > 0:
			b.WriteString(", ")
		}
		b.WriteString("{" + p + "}")
	}
	return b.String()
}

// render fills the placeholders in. An empty {name} takes the spaces and
// one comma before it along ("Hi {name}!" → "Hi!", "¡Hola, {name}!" →
// "¡Hola!").
func (t inviteText) render(v map[string]string) string {
	var b strings.Builder
	for _, p := range t {
		if p.ph == "" {
			b.WriteString(p.lit)
			continue
		}
		val := v[p.ph]
		if val == "" && p.ph == "name" {
			s := strings.TrimRight(b.String(), " ")
			s = strings.TrimRight(strings.TrimSuffix(s, ","), " ")
			b.Reset()
			b.WriteString(s)
			continue
		}
		b.WriteString(val)
	}
	return b.String()
}
