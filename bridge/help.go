package bridge

import "strings"

// This file writes /help and the answer to an unknown command for the
// owner's client (client.go): the commands as they are typed there.

// helpCommands are /help's lines, written with "/" (say turns them into
// "!" for clients that take "/" for themselves).
const helpCommands = `/chats [filter] — list chats and their handles
/to <chat> — write to this chat from now on
/msg <chat> <text> — send one message
/new <+number> — start a chat with a phone number
/find <name> — search chats and contacts
/history <chat> [n] — ask the phone for n earlier messages (default 20)
/mute <chat> [8h|2d|1w] — stop relaying a chat (default: until /unmute)
/unmute [chat] — relay it again
/status — WhatsApp and XMPP connections, queues, version
/pair [+number] — link WhatsApp by QR code, or by a code for that number
/logout — unlink WhatsApp from waxmpp
/cancel — drop held messages
/room <chat> — give a chat a room of its own; /room <chat> off moves it back
/rooms — the chats that have rooms
/invite <chat> — invite a friend or a group to XMPP (/invite text shows the message)
/moved <chat> <address> — note that a friend is on XMPP now
/invites — who was invited, and who is on XMPP`

// help is /help's answer, for the client the owner writes from.
func (c *Core) help() string {
	cl := c.current()
	var b strings.Builder
	switch {
	case cl.Slash:
		b.WriteString("Commands — in " + cl.Name + " start them with ! (" + cl.Name + " takes lines starting with / as its own commands)")
	case cl.Name != "":
		b.WriteString("Commands — start them with / (or !)")
	default:
		b.WriteString("Commands — start them with / or ! (! where your app takes / for its own commands)")
	}
	b.WriteString(":\n" + helpCommands + "\n")
	b.WriteString("Reply to a message to answer in its chat. Plain text goes to the current chat only when no other chat wrote since; otherwise I ask. What you write to a chat marks its messages as read on WhatsApp.\n")
	b.WriteString("To send a text that starts with / or !, double it: " + cl.escapeHint("text"))
	if cl.Strips && cl.Name != "" {
		b.WriteString(" (" + cl.Name + " takes one / away)")
	}
	b.WriteString(".\n")
	if a := withBot(cl.adhoc, c.fit.bot); a != "" {
		b.WriteString("The same commands as ad-hoc commands: " + a)
	} else {
		b.WriteString("The same commands are ad-hoc commands in apps that offer them.")
	}
	return b.String()
}

// unknownCommand answers a command the bot does not know, with the
// prefix the owner typed it with.
func (c *Core) unknownCommand(name string) string {
	cl := c.current()
	p := c.fit.typed
	if p == "" {
		p = cl.prefix()
	}
	esc := "!!" + name
	if p == "/" {
		esc = "//" + name
		if cl.Strips {
			esc = "///" + name
		}
	}
	return "Unknown command " + p + name + ". /help lists the commands; to send text starting with " + p + ", write " + esc + "."
}

// unescapeText undoes the escapes for a text that starts like a command:
// "//x" sends "/x", "!!x" sends "!x" (x a letter, as for commands). ok is
// false when body has no escape.
func unescapeText(body string) (string, bool) {
	switch {
	case strings.HasPrefix(body, "//"):
		return body[1:], true
	case len(body) > 2 && body[0] == '!' && body[1] == '!' && asciiLetter(body[2]):
		return body[1:], true
	}
	return body, false
}

func asciiLetter(b byte) bool { return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' }
