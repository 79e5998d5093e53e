package bridge

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// This file knows the owner's XMPP clients: how each treats a line
// starting with "/", whether it renders XEP-0393 styling, and how to do in
// it what the bot asks (turn encryption off, add the bot back, run ad-hoc
// commands). The XMPP side says which software each of the owner's
// resources runs (OwnerClient: its XEP-0115 caps node and XEP-0030
// identity name); the core writes its help and hints in the form that
// works there.

// Client is what the core knows of one XMPP client of the owner's.
type Client struct {
	Name string // "Profanity"; "" when unknown
	// Slash: the client takes a line starting with "/" as its own command
	// (profanity, Gajim, poezio: "/help" shows the client's help, "/msg"
	// sends elsewhere), so the bot's commands are written with "!" there.
	Slash bool
	// Strips: the client sends a line typed "//x" as "/x" (its escape for
	// a leading slash), so "/x" reaches the bot only as "//x" typed.
	Strips bool
	// Plain: the client shows XEP-0393 markers as typed ("*Alice*:").
	Plain bool
	// Help and hints in the client's own words: how to turn end-to-end
	// encryption off for the bot's chat (per scheme: OMEMO, OTR, PGP,
	// OpenPGP), how to add the bot to the contacts ("{bot}": the bot's
	// bare JID), how to list ad-hoc commands ("{bot}": its full JID).
	crypto  map[string]string
	addBack string
	adhoc   string
}

// knownClients are the clients the core has words for, matched by a
// lower-case part of their caps node or identity name. What each does was
// read in its source (Gajim's COMMAND_REGEX "^/[a-z]+" and "//" escape,
// poezio's tab commands and "//", Dino's chat input: its own /me, /say,
// /kick, /nick, /ping, /topic, /affiliate and "//") or tried (profanity
// 0.13: "/help" shows its help, "/to" is "Unknown command", "/msg alice hi"
// sends "hi" to the JID alice, "//x" sends "/x"; it sends XEP-0184
// receipts but no XEP-0333 markers, and shows "*Alice*" with its stars).
var knownClients = []struct {
	match []string
	Client
}{
	{[]string{"profanity"}, Client{Name: "Profanity", Slash: true, Strips: true, Plain: true,
		crypto: map[string]string{
			"OMEMO":   "type /omemo end in my chat window",
			"OTR":     "type /otr end in my chat window",
			"PGP":     "type /pgp end in my chat window",
			"OpenPGP": "type /ox end in my chat window",
		},
		addBack: "/sub request {bot}",
		adhoc:   "list them with /cmd list {bot}\nrun one with /cmd exec <command> {bot}"}},
	{[]string{"gajim"}, Client{Name: "Gajim", Slash: true, Strips: true,
		crypto:  map[string]string{"": "click the lock beside the message field and choose Disabled"},
		addBack: "Add Contact… with {bot}",
		adhoc:   "in my contact menu, Execute Command…"}},
	{[]string{"poez"}, Client{Name: "poezio", Slash: true, Strips: true, Plain: true,
		crypto: map[string]string{
			"OMEMO": "type /omemo in my tab (it turns OMEMO off again)",
			"OTR":   "type /otr end in my tab",
		},
		addBack: "/add {bot}",
		adhoc:   "list them with /ad-hoc {bot}"}},
	{[]string{"dino"}, Client{Name: "Dino", Strips: true,
		crypto: map[string]string{"": "click the lock in the message field and choose Unencrypted"}}},
	{[]string{"conversations", "cheogram", "blabber", "quicksy", "monocles"}, Client{Name: "Conversations",
		crypto: map[string]string{"": "tap the lock at the top of the chat and choose Unencrypted"}}},
	{[]string{"monal"}, Client{Name: "Monal",
		crypto: map[string]string{"": "tap the lock at the top of the chat to switch encryption off"}}},
	{[]string{"siskin", "beagle"}, Client{Name: "Siskin"}},
	{[]string{"movim"}, Client{Name: "Movim"}},
	{[]string{"pidgin", "finch"}, Client{Name: "Pidgin", Slash: true, Plain: true}},
	{[]string{"mcabber"}, Client{Name: "mcabber", Slash: true, Plain: true}},
}

// identifyClient names the client of an XEP-0115 caps node
// ("http://profanity-im.github.io") or XEP-0030 identity name ("Profanity
// 0.13.1"); the zero Client when neither is known.
func identifyClient(node, name string) Client {
	node, name = strings.ToLower(node), strings.ToLower(name)
	for _, k := range knownClients {
		for _, m := range k.match {
			if strings.Contains(node, m) || strings.Contains(name, m) {
				return k.Client
			}
		}
	}
	return Client{}
}

// prefix is how the owner starts the bot's commands in cl: "!" where the
// client takes "/" for itself.
func (cl Client) prefix() string {
	if cl.Slash {
		return "!"
	}
	return "/"
}

// in names the client in a hint: " In Profanity:" or "".
func (cl Client) in() string {
	if cl.Name == "" {
		return ""
	}
	return " In " + cl.Name + ":"
}

// cryptoOff says how to turn scheme off for the bot's chat in cl.
func (cl Client) cryptoOff(scheme string) string {
	if s := cl.crypto[scheme]; s != "" {
		return s
	}
	if s := cl.crypto[""]; s != "" {
		return s
	}
	what := scheme
	if what == "" {
		what = "encryption"
	}
	return "switch " + what + " off for your chat with me (often a lock icon in the chat)"
}

// commandNames are the words the bot's commands start with: forms
// rewrites "/word" to "!word" for clients that take "/" for themselves.
var commandNames = map[string]bool{
	"help": true, "chats": true, "to": true, "msg": true, "new": true, "find": true, "history": true,
	"mute": true, "unmute": true, "status": true, "pair": true, "logout": true, "cancel": true,
	"room": true, "rooms": true, "invite": true, "moved": true, "invites": true,
}

// forms writes the bot's commands in text ("/help", "(/chats lists…") as
// the owner types them in a client that takes "/" for itself ("!help").
// Only a command word after the start of a line, a space, "(" or a quote
// is changed; a path ("/etc/hosts"), the "//x" escape and lines quoting
// the owner's own text ("> …") are left as they are.
func forms(text string, bang bool) string {
	if !bang || !strings.Contains(text, "/") {
		return text
	}
	lines := strings.Split(text, "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, "> ") {
			continue
		}
		var b strings.Builder
		for j := 0; j < len(l); j++ {
			if l[j] == '/' && commandAt(l, j) {
				b.WriteByte('!')
				continue
			}
			b.WriteByte(l[j])
		}
		lines[i] = b.String()
	}
	return strings.Join(lines, "\n")
}

// commandAt reports whether the "/" at l[j] starts a command word: after
// the line's start, a space, "(" or a quote, and followed by a command
// name that ends there (not "/etc/hosts", not "/tomorrow").
func commandAt(l string, j int) bool {
	if j > 0 {
		prev, _ := utf8.DecodeLastRuneInString(l[:j])
		if !strings.ContainsRune(" (\"“'", prev) {
			return false
		}
	}
	k := j + 1
	for k < len(l) && l[k] >= 'a' && l[k] <= 'z' {
		k++
	}
	if k < len(l) {
		next, _ := utf8.DecodeRuneInString(l[k:])
		if next == '/' || next == '_' || unicode.IsLetter(next) || unicode.IsDigit(next) {
			return false
		}
	}
	return commandNames[l[j+1:k]]
}

// escapeHint says how to send a text that starts with the command prefix
// itself, as typed in cl: "//text sends "/text"" (in a client that strips
// one slash, "///text"), "!!text sends "!text"".
func (cl Client) escapeHint(word string) string {
	slash := "//" + word
	if cl.Strips {
		slash = "///" + word
	}
	bang := "!!" + word + ` sends "!` + word + `"`
	s := slash + ` sends "/` + word + `"`
	if cl.Slash {
		return bang + ", " + s
	}
	return s + ", " + bang
}

// withBot fills a hint's "{bot}" with jid; "" when the hint needs the JID
// and it is not known yet.
func withBot(hint, jid string) string {
	if strings.Contains(hint, "{bot}") {
		if jid == "" {
			return ""
		}
		return strings.ReplaceAll(hint, "{bot}", jid)
	}
	return hint
}

// settingClients is where what the core told the owner about their
// clients is kept, so that it is said once.
const settingClients = "core.clients"

// fitState is what the core knows of the owner's clients.
type fitState struct {
	online  map[string]Client // the owner's online resources and their clients
	active  string            // the resource the owner last wrote from
	typed   string            // the prefix of the command being run ("/" or "!"), "" for ad-hoc
	bot     string            // the bot's full JID
	botBare string
	roster  *OwnerRoster // the latest roster state, nil before the first
	show    string       // the bot's presence as last set, before forms
	status  string
	saved   fitSaved
}

// fitSaved is fitState's part that survives a restart.
type fitSaved struct {
	// Told are the clients whose way with "/" the owner was told.
	Told []string `json:"told,omitempty"`
	// Asked: the owner was asked to add the bot back; cleared when they did.
	Asked bool `json:"asked,omitempty"`
	// Plain is the rendering last decided (see plain), used after a
	// restart until the owner's clients are known again.
	Plain bool `json:"plain,omitempty"`
}

// loadFit reads what was told; a broken record only means telling again.
func (c *Core) loadFit() error {
	c.fit.online = map[string]Client{}
	b, ok, err := c.st.Blob(settingClients)
	if err != nil || !ok {
		return err
	}
	if err := json.Unmarshal(b, &c.fit.saved); err != nil {
		c.log.Warn("client notes unreadable, starting over", "err", err)
		c.fit.saved = fitSaved{}
	}
	return nil
}

func (c *Core) saveFit() error {
	b, err := json.Marshal(c.fit.saved)
	if err == nil {
		err = c.st.PutBlob(settingClients, b)
	}
	if err != nil {
		return fmt.Errorf("save client notes: %w", err)
	}
	return nil
}

// current is the client the bot writes for: the one the owner last wrote
// from, else an online one that takes "/" for itself (then "!" is what
// works), else any known online one.
func (c *Core) current() Client {
	if cl, ok := c.fit.online[c.fit.active]; ok && cl.Name != "" {
		return cl
	}
	var known Client
	for _, r := range slices.Sorted(maps.Keys(c.fit.online)) {
		cl := c.fit.online[r]
		if cl.Slash {
			return cl
		}
		if known.Name == "" {
			known = cl
		}
	}
	return known
}

// bang reports whether the bot's commands are written with "!".
func (c *Core) bang() bool { return c.current().Slash }

// plain reports whether relayed lines are rendered without XEP-0393
// markers: when any online client of the owner's shows them as typed
// (a message to the owner's bare JID reaches all of them), else as last
// decided.
func (c *Core) plain() bool {
	if len(c.fit.online) == 0 {
		return c.fit.saved.Plain
	}
	for _, cl := range c.fit.online {
		if cl.Plain {
			return true
		}
	}
	return false
}

// setPresence sets the bot's presence, its status written for the
// owner's client; it is set again when the client changes.
func (c *Core) setPresence(show, status string) {
	c.fit.show, c.fit.status = show, status
	c.x.SetPresence(show, forms(status, c.bang()))
}

// ownerClient learns which client one of the owner's resources runs. The
// first time the owner uses a client that takes "/" for itself, the bot
// says how to write its commands there.
func (c *Core) ownerClient(e *OwnerClient) error {
	if e.Bot != "" {
		c.fit.bot = e.Bot
	}
	before, wasPlain := c.bang(), c.plain()
	cl := identifyClient(e.Node, e.Name)
	if e.Online {
		c.fit.online[e.Resource] = cl
	} else {
		delete(c.fit.online, e.Resource)
	}
	if c.bang() != before && c.fit.status != "" {
		c.x.SetPresence(c.fit.show, forms(c.fit.status, c.bang()))
	}
	save := false
	if p := c.plain(); p != wasPlain || p != c.fit.saved.Plain {
		c.fit.saved.Plain = p
		save = true
	}
	if e.Online && cl.Slash && !slices.Contains(c.fit.saved.Told, cl.Name) {
		if _, err := c.x.Send(Outgoing{Body: slashNote(cl)}); err != nil {
			return err
		}
		c.fit.saved.Told = append(c.fit.saved.Told, cl.Name)
		save = true
	}
	if save {
		if err := c.saveFit(); err != nil {
			return err
		}
	}
	return c.askRoster()
}

// slashNote tells the owner how to write the bot's commands in cl, which
// takes "/" for itself. It is sent as it is (not through forms: its
// "/help" is the client's).
func slashNote(cl Client) string {
	s := "You are writing from " + cl.Name + ", which takes a line starting with / as its own command (/help shows " + cl.Name + "'s help, /msg writes to another address). Write my commands with ! instead: !help, !chats, !to alice, !msg alice see you at 8."
	if cl.Strips {
		s += " (//help works too.)"
	}
	return s
}

// ownerRoster learns whether the owner sees the bot's presence, which
// tells whether WhatsApp is connected (see askRoster).
func (c *Core) ownerRoster(e *OwnerRoster) error {
	if e.Bot != "" {
		c.fit.botBare = e.Bot
	}
	c.fit.roster = e
	if e.SeesBot {
		if !c.fit.saved.Asked {
			return nil
		}
		c.fit.saved.Asked = false // asked again if it is undone
		return c.saveFit()
	}
	return c.askRoster()
}

// askRoster asks the owner, once, to add the bot back when they do not see
// its presence: when it first matters, that is when one of the owner's
// clients is known (online, or writing to the bot), so that the words are
// that client's.
func (c *Core) askRoster() error {
	e := c.fit.roster
	if e == nil || e.SeesBot || c.fit.saved.Asked || len(c.fit.online) == 0 {
		return nil
	}
	cl := c.current()
	s := "Please add me to your contacts, so that you see my status: it tells you whether WhatsApp is connected (online: connected; away: reconnecting, or your phone is offline; busy: I need you, say to link again with /pair)."
	if !e.Accepted {
		s += " Accept my contact request too: then I see which app you write from and can write my hints for it."
	}
	if a := withBot(cl.addBack, c.fit.botBare); a != "" {
		s += cl.in() + " " + a // no full stop after a command to copy
	} else if c.fit.botBare != "" {
		s += " My address is " + c.fit.botBare + "."
	}
	c.say(s)
	c.fit.saved.Asked = true
	return c.saveFit()
}

// ownerEncrypted tells the owner that an encrypted message of theirs was
// not sent (the bot cannot read it; its body is the client's fallback
// text), and how to turn encryption off in the client they wrote from.
func (c *Core) ownerEncrypted(e *OwnerEncrypted) {
	cl, ok := c.fit.online[e.Resource]
	if !ok {
		cl = c.current()
	}
	scheme := e.Scheme
	if scheme == "" {
		scheme = "end-to-end"
	}
	how := cl.cryptoOff(e.Scheme)
	if cl.Name == "" {
		how = strings.ToUpper(how[:1]) + how[1:]
	}
	where := "for our chat"
	if e.Room != "" {
		where = "in this room"
		how = inRoom.Replace(how)
	}
	c.say("🔒 Not sent: your message was encrypted (" + scheme + "), and I cannot read encrypted messages yet, so nothing went to WhatsApp. Turn encryption off " + where + ", then send it again." + cl.in() + " " + how + ".")
}

// inRoom rewrites the clients' hints about the bot's chat for a room.
var inRoom = strings.NewReplacer("in my chat window", "in the room's window", "in my tab", "in the room's tab", "for your chat with me", "in this room", "of the chat", "of the room")
