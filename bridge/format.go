package bridge

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// This file turns WhatsApp content into the text the owner reads (see "What
// the owner reads" in the package doc). It is pure: names come in through a
// function.

// relayPrefix starts the XMPP id of every message the bot relays from
// WhatsApp; ids the owner's clients make never do (they are UUIDs), so the
// core can tell "the bot's message" from "the owner's message" in the map.
const relayPrefix = "wa-"

// relayID is the XMPP id of the message relayed for WhatsApp message key:
// derived, not random, so that relaying the same message again after a
// crash (between "queued to XMPP" and "recorded in the map") carries the
// same id, which the owner's clients and the XMPP outbox drop as a duplicate.
func relayID(k MessageKey) string {
	var in [160]byte // on the stack for the usual ids
	b := append(append(append(append(append(in[:0], k.Chat...), 0), k.Sender...), 0), k.ID...)
	h := sha256.Sum256(b)
	var out [len(relayPrefix) + 20]byte
	copy(out[:], relayPrefix)
	hex.Encode(out[len(relayPrefix):], h[:10])
	return string(out[:])
}

// waSendID is the WhatsApp message id for the owner's XMPP message ownerID,
// in the shape WhatsApp Web uses ("3EB0" and hex): a resend after a crash
// carries the same id.
func waSendID(ownerID string) string {
	var in [128]byte // on the stack for the usual ids
	h := sha256.Sum256(append(append(in[:0], "waxmpp\x00"...), ownerID...))
	const digits = "0123456789ABCDEF"
	out := [4 + 18]byte{'3', 'E', 'B', '0'}
	for i, c := range h[:9] {
		out[4+2*i], out[5+2*i] = digits[c>>4], digits[c&15]
	}
	return string(out[:])
}

// header is the first line's prefix naming chat and sender:
// "*Alice*: ", "*Bob* in *Family*: ", "*You* → *Alice*: ".
func header(kind ChatKind, chatName, senderName string, fromMe bool) string {
	chatName, senderName = cleanName(chatName), cleanName(senderName)
	if chatName == "" {
		chatName = "?"
	}
	if senderName == "" {
		senderName = "?"
	}
	switch {
	case fromMe:
		return "*You* → *" + chatName + "*: "
	case kind == Group || kind == Broadcast:
		return "*" + senderName + "* in *" + chatName + "*: "
	default:
		return "*" + senderName + "*: "
	}
}

// noteHeader prefixes a note about a chat (group events, calls): "*Family*: ".
func noteHeader(chatName string) string {
	n := cleanName(chatName)
	if n == "" {
		n = "?"
	}
	return "*" + n + "*: "
}

// content renders a message's content (without the header): the text, or a
// readable line for what is not text. Media is a placeholder line for now.
func content(m *Message, name func(UserID) string) string {
	text := mentions(m.Text, m.Mentions, name)
	var s string
	switch m.Kind {
	case Image:
		s = mediaLine("photo", m.Media, text)
	case Video:
		s = mediaLine("video", m.Media, text)
	case Audio:
		s = mediaLine("audio", m.Media, text)
	case Voice:
		s = mediaLine("voice message", m.Media, text)
	case Document:
		s = mediaLine("document", m.Media, text)
	case Sticker:
		s = mediaLine("sticker", m.Media, text)
	case Location, LiveLocation:
		s = geoText(m.Location, m.Kind == LiveLocation)
		if text != "" {
			s += "\n" + text
		}
	case ContactCard:
		s = contactsText(m.Contacts)
	case Poll:
		s = pollText(m.Poll)
	default:
		s = text
	}
	if strings.TrimSpace(s) == "" {
		s = "[a message waxmpp cannot show yet: see your phone]"
		if m.ViewOnce { // WhatsApp keeps its content from linked devices
			s = "[only your phone can open it]"
		}
	}
	if m.ViewOnce {
		s = "(view once) " + s
	}
	if m.Forwarded {
		s = "↪ forwarded: " + s
	}
	return s
}

func mediaLine(what string, md *Media, caption string) string {
	var parts []string
	if md != nil {
		if md.FileName != "" && what == "document" {
			parts = append(parts, md.FileName)
		}
		if md.Duration > 0 {
			d := md.Duration.Round(time.Second)
			parts = append(parts, fmt.Sprintf("%d:%02d", int(d.Minutes()), int(d.Seconds())%60))
		}
	}
	s := "[" + what
	if len(parts) > 0 {
		s += " " + strings.Join(parts, ", ")
	}
	if caption != "" {
		s += ": " + caption
	}
	return s + "]"
}

func geoText(g *Geo, live bool) string {
	if g == nil {
		return "📍 location"
	}
	s := "📍 "
	if live {
		s += "live location "
	}
	var label []string
	for _, p := range []string{g.Name, g.Address} {
		if p = strings.TrimSpace(p); p != "" {
			label = append(label, p)
		}
	}
	if len(label) > 0 {
		s += strings.Join(label, ", ") + " "
	}
	return s + geoURI(g.Lat, g.Lon)
}

// geoURI is RFC 5870's geo: URI, which XMPP clients open in a map.
func geoURI(lat, lon float64) string {
	return "geo:" + strconv.FormatFloat(lat, 'f', -1, 64) + "," + strconv.FormatFloat(lon, 'f', -1, 64)
}

// parseGeo reads a lone "geo:lat,lon[;…]" URI the owner sent.
func parseGeo(s string) (Geo, bool) {
	s = strings.TrimSpace(s)
	rest, ok := strings.CutPrefix(strings.ToLower(s), "geo:")
	if !ok || strings.ContainsAny(rest, " \n") {
		return Geo{}, false
	}
	rest, _, _ = strings.Cut(rest, ";")
	rest, _, _ = strings.Cut(rest, "?")
	la, lo, ok := strings.Cut(rest, ",")
	if !ok {
		return Geo{}, false
	}
	lo, _, _ = strings.Cut(lo, ",") // altitude
	lat, err1 := strconv.ParseFloat(la, 64)
	lon, err2 := strconv.ParseFloat(lo, 64)
	if err1 != nil || err2 != nil || lat < -90 || lat > 90 || lon < -180 || lon > 180 {
		return Geo{}, false
	}
	return Geo{Lat: lat, Lon: lon}, true
}

func contactsText(cs []Contact) string {
	if len(cs) == 0 {
		return "👤 contact card"
	}
	var lines []string
	for _, c := range cs {
		n := strings.TrimSpace(c.Name)
		if n == "" {
			n = "contact"
		}
		l := "👤 " + n
		if len(c.Numbers) > 0 {
			l += ": " + strings.Join(c.Numbers, ", ")
		}
		lines = append(lines, l)
	}
	return strings.Join(lines, "\n")
}

func pollText(p *PollInfo) string {
	if p == nil {
		return "📊 poll"
	}
	s := "📊 " + p.Question
	for i, o := range p.Options {
		s += "\n" + strconv.Itoa(i+1) + ". " + o
	}
	if p.Selectable > 1 {
		s += "\n(choose up to " + strconv.Itoa(p.Selectable) + ")"
	}
	return s + "\n(vote on your phone)"
}

// mentions replaces "@491701234567" (how WhatsApp writes a mention in the
// text) by "@Alice".
func mentions(text string, users []UserID, name func(UserID) string) string {
	for _, u := range users {
		num := userPart(u)
		if num == "" {
			continue
		}
		if n := cleanName(name(u)); n != "" && !strings.HasPrefix(n, "+") {
			text = strings.ReplaceAll(text, "@"+num, "@"+n)
		}
	}
	return text
}

// userPart is the user part of a JID: "4917…" of "4917…:3@s.whatsapp.net".
func userPart[T ~string](id T) string {
	s := string(id)
	s, _, _ = strings.Cut(s, "@")
	s, _, _ = strings.Cut(s, ":")
	return s
}

// phoneOf is "+4917…" for a phone-number JID, "" for others (LIDs, groups).
func phoneOf[T ~string](id T) string {
	s := string(id)
	if !strings.HasSuffix(s, "@s.whatsapp.net") {
		return ""
	}
	u := userPart(s)
	if u == "" || !isNumber(u) {
		return ""
	}
	return "+" + u
}

func isNumber(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}

// maxExcerpt is how many bytes of a text the message map keeps (the
// store's limit).
const maxExcerpt = 160

// excerptOf is what the map keeps of a relayed text, for quote matching and
// for "reacted to …" notes: its start, cut on a character boundary (a cut
// inside a character would leave U+FFFD, which no quote matches).
func excerptOf(s string) string {
	if len(s) <= maxExcerpt {
		return s
	}
	cut := maxExcerpt
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}

// short cuts s to n runes with an ellipsis, on one line.
func short(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// callText is the note for a call event; "" when nothing needs saying.
func callText(c *Call, who string) string {
	kind := "voice"
	if c.Video {
		kind = "video"
	}
	switch c.Kind {
	case CallOffered:
		return "📞 " + who + " is calling (" + kind + " call; answer on your phone)"
	case CallMissed:
		return "📞 missed " + kind + " call from " + who
	}
	return ""
}

// groupText is the note for a group change.
func groupText(g *GroupChange, name func(UserID) string) string {
	actor := ""
	if g.Actor != "" {
		actor = cleanName(name(g.Actor))
	}
	var users []string
	for _, u := range g.Users {
		users = append(users, cleanName(name(u)))
	}
	who := strings.Join(users, ", ")
	self := len(g.Users) == 1 && g.Users[0] == g.Actor || g.Actor == "" || len(g.Users) == 0
	switch g.Kind {
	case GroupJoined:
		if self {
			if who == "" {
				who = actor
			}
			return who + " joined"
		}
		return actor + " added " + who
	case GroupLeft:
		if self {
			if who == "" {
				who = actor
			}
			return who + " left"
		}
		return actor + " removed " + who
	case GroupPromoted:
		return orSomeone(actor) + " made " + who + " an admin"
	case GroupDemoted:
		return orSomeone(actor) + " removed " + who + " as admin"
	case GroupSubject:
		return orSomeone(actor) + " renamed the group to " + safeName(g.Subject)
	case GroupDescription:
		return orSomeone(actor) + " changed the group description: " + g.Text
	case GroupCreated:
		return orSomeone(actor) + " created the group"
	}
	return orSomeone(actor) + " changed the group settings"
}

func orSomeone(s string) string {
	if s == "" {
		return "Someone"
	}
	return s
}

// formatDuration says a mute's length in words: "8h", "2d", "1w".
func formatUntil(t, now time.Time) string {
	if t.After(now.Add(100 * 365 * 24 * time.Hour)) {
		return "until you /unmute"
	}
	return "until " + t.Local().Format("Mon 2 Jan 15:04")
}
