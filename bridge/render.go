package bridge

import "strings"

// This file renders the first line of a relayed message (see "What the
// owner reads" in the package doc) for the owner's clients: styled with
// XEP-0393 strong emphasis ("*Bob* in *Family*: "), or plain where a
// client of the owner's shows the markers as typed (profanity, poezio):
//
//	Alice: text            a direct chat
//	Bob → Family: text     a group: the sender, an arrow, the chat
//	You → Alice: text      what the owner wrote on the phone
//	Family: Bob joined     a note about a chat
//
// Names cannot hold a colon or an arrow (cleanName turns them into
// spaces), so the first ": " ends the header and an arrow before it
// separates sender and chat: the plain form is as unambiguous as the
// styled one.

// plainHeader is header without markers.
func plainHeader(kind ChatKind, chatName, senderName string, fromMe bool) string {
	chatName, senderName = cleanName(chatName), cleanName(senderName)
	if chatName == "" {
		chatName = "?"
	}
	if senderName == "" {
		senderName = "?"
	}
	switch {
	case fromMe:
		return "You → " + chatName + ": "
	case kind == Group || kind == Broadcast:
		return senderName + " → " + chatName + ": "
	default:
		return senderName + ": "
	}
}

// plainNoteHeader is noteHeader without markers.
func plainNoteHeader(chatName string) string {
	n := cleanName(chatName)
	if n == "" {
		n = "?"
	}
	return n + ": "
}

// hdr is the header of a line about a message, as the owner's clients
// render it.
func (c *Core) hdr(kind ChatKind, chatName, senderName string, fromMe bool) string {
	if c.plain() {
		return plainHeader(kind, chatName, senderName, fromMe)
	}
	return header(kind, chatName, senderName, fromMe)
}

// noteHdr is the header of a note about a chat.
func (c *Core) noteHdr(chatName string) string {
	if c.plain() {
		return plainNoteHeader(chatName)
	}
	return noteHeader(chatName)
}

// strong is a name in a sentence: "*Bob*", or "Bob" in plain rendering.
func (c *Core) strong(name string) string {
	if c.plain() {
		return name
	}
	return "*" + name + "*"
}

// afterHeader is the text of a line after its header, "" when it has
// none.
func (c *Core) afterHeader(body string) string {
	sep := "*: "
	if c.plain() {
		sep = ": "
	}
	_, text, _ := strings.Cut(body, sep)
	return text
}

// stripPlainHeader removes a plain header ("Alice: ", "Bob → Family: ")
// from the first line of a quote; see stripHeader for the styled one. A
// text that only looks like one ("Note: …") is matched both ways.
func stripPlainHeader(s string) string {
	s = strings.TrimLeft(s, "\n")
	line, _, _ := strings.Cut(s, "\n")
	i := strings.Index(line, ": ")
	if i <= 0 || strings.ContainsAny(line[:i], "*") || len([]rune(line[:i])) > 3*maxName {
		return s
	}
	return s[i+2:]
}
