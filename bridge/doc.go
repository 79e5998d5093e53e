// Package bridge is waxmpp's domain and core: the types that describe chats,
// messages, contacts and events, the engine that relays between WhatsApp
// and the owner's XMPP account, its routing rules, the owner's commands, and
// the small interfaces (ports) the core consumes.
//
// It imports only the standard library. The adapters live in subpackages
// named after what they wrap: bridge/whatsapp (whatsmeow), bridge/xmpp
// (go-xmpp), bridge/store (bbolt), bridge/qr (QR images). They speak this
// package's types and never import each other; cmd/waxmpp wires them.
//
// # The shape
//
// waxmpp links to the owner's WhatsApp account as a companion device and
// logs into an ordinary XMPP account, the bot. Every WhatsApp chat reaches
// the owner's own XMPP account as messages from the bot; what the owner
// writes to the bot goes back to WhatsApp. The WhatsApp side delivers Event
// values, the XMPP side OwnerEvent values; one goroutine (Core.Run) owns all
// of the core's state and handles them one at a time. Slow work that must
// not stall it (uploading a pairing QR image) runs on a goroutine the core
// starts, owns and waits for; its result comes back through the loop.
//
// # What the owner reads
//
// Each relayed message is one chat message from the bot. Its first line
// names the chat and the sender, styled with XEP-0393 strong emphasis:
//
//	*Alice*: text                 a direct chat
//	*Bob* in *Family*: text       a group
//	*You* → *Alice*: text         what the owner wrote on the phone
//	*Family*: Bob joined          a note about a chat (calls, group events)
//
// Names come from the owner's WhatsApp address book, then the push name the
// person chose, then the phone number. The owner trusts that first line to
// know who speaks, and anyone may choose their push name (and any group
// member its subject), so names cannot lie: control and format characters
// (bidi overrides, zero-width characters) go, asterisks, colons and arrows
// and their look-alikes go, and a name is at most 48 characters. A name
// that would still read as the owner ("You", "Ｙｏｕ", "Y o u"), as a header
// ("Bob in Family") or as another name the owner knows (compared with
// look-alike letters folded) is shown with what tells it apart: a person's
// number ("*Alice (+4915…)*: new phone, send money"), a group's handle.
// The owner's own address-book names get a number only when two of them
// are the same. Each chat also has a short handle
// (alice, family, alice2), unique and never given to another chat, shown by
// /chats and accepted wherever a chat is named. Relayed messages never carry
// a <nick/> (clients would rename the bot).
//
// Where one of the owner's online clients shows XEP-0393 markers as typed
// (profanity, poezio: "*Alice*:" with its stars), lines are plain: a
// message to the owner's bare JID reaches all their clients, so one such
// client is enough. The plain header is as unambiguous as the styled one,
// since names hold no colon and no arrow:
//
//	Alice: text                   a direct chat
//	Bob → Family: text            a group: sender, arrow, chat
//	You → Alice: text             what the owner wrote on the phone
//	Family: Bob joined            a note about a chat
//
// A "> " quote of a plain line is matched like a quote of a styled one.
//
// # Routing what the owner writes
//
// A misrouted message is the worst failure the bridge can have: the core
// routes with certainty, or holds the message and asks. In this order:
//
//  1. A command ("/word …", or "!word …" with a letter after the "!") is a
//     command, even when sent as a reply, and never reaches WhatsApp;
//     "//x" sends the text "/x", "!!x" sends "!x". /msg <chat> <text>
//     sends once to that chat.
//  2. An XEP-0461 reply to a relayed message (or note, or the owner's own
//     earlier message) goes to that message's chat, as a WhatsApp reply.
//     A reply to a bot message that names no chat (a command's answer) is
//     refused, never routed elsewhere.
//  3. A "> " quote (XEP-0393, as Conversations, Siskin and Monal write
//     replies) that matches the text of a recently relayed line goes to
//     that line's chat as a WhatsApp reply to it, the quote removed. What
//     is matched is what the owner saw: the bot's header and the quoted
//     lines a relayed reply carries are left out, markup and whitespace
//     folded. Only relayed lines count (a muted chat's messages were never
//     seen): the newest 200 records of each of the 20 chats that relayed
//     most recently. When the quoted words were said in several chats, or
//     match nothing, the bot asks: a quote means "that message".
//  4. While messages are held, the answer is a number from the question
//     (also written "2.", "2)", "#2", a keycap, or sent as a reply to the
//     question or a quote of it) or a chat's handle: the held messages go
//     to that chat, in order, and it becomes the current chat. /to <chat>
//     also releases them there; /cancel drops them. A question's numbers
//     never change while anything is held: chats are only added after
//     them, so a number means what the owner saw. Chats of the same name
//     are told apart by their handles; a chat merged from a LID and a
//     phone number is offered once.
//  5. Plain text goes to the current chat only if no other chat has relayed
//     anything since the owner last wrote to it. Otherwise it is held and
//     the bot asks ("Send to 1) Alice 2) Family? Answer 1 or 2."). While
//     anything is held, further plain text is held too (order is kept).
//
// A chat is named by its handle, its JID, its +number, or its whole name. A
// renamed chat keeps its old handle; when a handle and another chat's
// current name disagree ("family" is the old group's handle and the new
// group's name), the bot asks instead of choosing.
//
// The current chat changes only by /to, /new, or by answering a question.
// A reply, a quote or /msg sends once and leaves it alone. "Spoke since"
// counts everything relayed with a chat's name on it: messages, the owner's
// own messages from the phone, reactions and notes; muted chats never
// count. Held messages, the pending question and the "spoke since" set are
// saved in the store (setting "core.route"), so a restart keeps them and
// asks again.
//
// # Nothing lost, nothing twice
//
// Both sides keep what they delivered until the core calls their Handled,
// in delivery order, and deliver what is left again after a restart. The
// core acknowledges only what it dealt with durably. When the store or the
// outbox fails (a full or failing SD card), the event is not acknowledged:
// that side waits (nothing after it is handled out of order), the event is
// tried again (after 1 s, doubling up to 30 s), and the owner is told once
// that relaying waits. Names, aliases and history anchors are saved in
// batches (every few seconds); the events that changed them are
// acknowledged once they are saved. Bad input (a message without a chat)
// is dropped and logged, never retried.
//
// WhatsApp to XMPP: a message whose key is in the message map is not relayed
// again. "Spoke since" is saved first, then XMPP.Send (durable), then the
// map (in the same commit where the XMPP side can: see below); a crash in
// between relays it again with the same XMPP id, derived
// from the WhatsApp key (relayID), which the outbox and clients drop; notes
// about events carry ids derived from the event in the same way. A sender
// known by a LID and a phone number is one sender.
//
// XMPP to WhatsApp: the WhatsApp id (of a text or a location) is derived
// from the owner's XMPP id (SendOptions.ID), so a resend after a crash
// between "sent" and "recorded" is dropped by the recipients. Every owner
// message that does something (text, command, answer, correction,
// retraction, reaction) is handled once by its id: the server's archive
// replays what the bot had not acknowledged, and a replayed /logout yes or
// answer does nothing. A message WhatsApp does not take (not linked,
// reconnecting) waits on disk for its chat, in order, and goes when
// WhatsApp is connected again or the owner writes next; one WhatsApp
// refuses three times while connected is dropped, and the owner told.
// Corrections send text as the rules would have: a "/msg chat" prefix, a
// quote or the "//" escape are not part of it, and a correction naming
// another chat is refused.
//
// # What is committed when
//
// Every durable write is a bbolt commit: its pages, then its meta page,
// each fsynced (an SD card manages 25-100 fsyncs a second), so the core
// lets a burst share them (batch.go) and asks for no commit it does not
// need:
//
//   - WhatsApp to the owner: the plain messages waiting on the events
//     channel (up to 100) are one commit: the outbox's stanzas, their map
//     entries and their chats' activity together (RecordingXMPP; an XMPP
//     side without it costs one Send and one PutMessages). The events are
//     acknowledged once it is done. What a later ping proved the server
//     has leaves the outbox with the next commit of anything (or at
//     Close), not in one of its own (store.Queue.AckThroughLater), as
//     long as those stanzas are a few (8 KiB); a burst's removal commits.
//     A kill -9 or a power cut before then sends them again with their
//     ids: clients drop them by id, and a room's are read back from its
//     archive before anything is resent (xmpp's recallCopies). A lone
//     message costs one commit. The real WhatsApp adapter adds its
//     inbox's commit in front (each whatsmeow event is on disk before
//     whatsmeow acknowledges it); the inbox's removal of handled events
//     waits for the next commit the same way.
//   - The owner to WhatsApp: the texts waiting on the owner channel (up to
//     100) are sent to WhatsApp one by one and then mapped in one commit,
//     after which they are acknowledged to the XMPP side. A server may
//     hand a burst over one text at a time, more slowly than a commit
//     (ejabberd: ~10 ms apart here, where a commit takes 2-4 ms): a batch
//     that begins within 100 ms of the last written one is therefore held
//     open while more arrive, each within 100 ms of the one before, for
//     at most 400 ms, and is then written with one commit (batch.go:
//     ownerLinger, ownerHoldMax, and the measurements behind them). Each
//     text still goes to WhatsApp as it arrives; only its map entry and
//     its acknowledgement wait. A lone text is written at once. Its
//     archive cursor is no commit of its own: it goes to disk with the
//     next commit (cmd/waxmpp's cursor, store.PutSettingLater), so a lone
//     text costs one commit; after a crash the archive is replayed from an
//     older cursor and what was handled is dropped by id.
//   - Anything else (a command, a correction, a note, a room's message)
//     first writes the batch before it, then commits on its own; names
//     and history anchors are saved every few seconds (saveCache).
//
// # Feature mapping
//
//	WhatsApp              to the owner                    from the owner
//	text, formatting      body, XEP-0393                  body
//	reply                 XEP-0461 + XEP-0428 fallback    XEP-0461 or "> " quote
//	edit                  XEP-0308 on the relayed message XEP-0308, within 20 minutes
//	                                                      of the send (EditWindow)
//	delete (revoke)       XEP-0424 with a fallback body   XEP-0424 v1, v0, or a
//	                                                      correction to " "
//	reaction              XEP-0444 in direct chats; a     XEP-0444 (WhatsApp keeps
//	                      note in groups (no reactor lost) one reaction: the last)
//	delivered / read      XEP-0184 / XEP-0333 displayed   XEP-0333 displayed, or writing
//	                      on the owner's message          to the chat: mark read (per
//	                                                      sender in groups)
//	typing                XEP-0085, direct chats only     XEP-0085, to the current
//	                                                      chat when text would go there
//	                                                      and the last text went there
//	media                 a line naming chat, sender, kind a file (body = its XEP-0066
//	                      and caption, then a message     URL, or a lone aesgcm://
//	                      whose body is the file's URL    URL) is sent as the matching
//	                      (XEP-0363 upload) with XEP-0066 WhatsApp media message; a
//	                                                      URL inside text is text
//	location, contact,    readable text (geo: URI, name   a lone geo: URI is sent as
//	poll, call, group     and number, options, "missed    a location
//	events                call", "Bob joined")
//	undecryptable         a placeholder, corrected when
//	                      the phone resends it
//
// Further decisions: reactions the owner made on the phone are not relayed
// (the owner made them); delivered and read go to the owner once per
// message (the first member's, in groups); of calls, offered and missed are
// told, ended and rejected are not; status@broadcast (stories) is not
// relayed. Mute is the bridge's own (/mute): the phone's mute state is not
// used, so nothing is dropped without the owner's word; a muted chat's
// messages are mapped (a reply to them still finds them) but not relayed.
//
// # Media
//
// Files move on transfer goroutines, never the core's loop, at most three
// at once, through temporary files beside the state file (transfer.go has
// the lanes that keep each chat's order, and what survives a restart). To
// the owner: downloaded from WhatsApp, then uploaded (the upload slot is
// asked only once the download is complete: Prosody refuses a PUT more than
// 300 s after its slot), then the line and the URL message are relayed,
// mapped both to the WhatsApp message. Media WhatsApp no longer has (403,
// 404, 410) is asked of the phone; the line says so and is corrected when
// the phone answers (with the file, or that it is gone), or after a week
// without an answer. A failure is a line with the kind, the size, why, and
// "Open it on your phone". View-once media is a notice, never downloaded;
// media in history is a line. Voice notes go as AAC (.m4a) when
// CoreConfig.VoiceAAC says so (by default when an online client of the
// owner is Monal or Siskin, which play no Opus) and ffmpeg is there.
// From the owner: a file is fetched (bridge/media: https, size and time
// limits, aesgcm:// decrypted and verified), prepared (bridge/media
// decides the WhatsApp kind and fields) and sent; its failure is told with
// the chat's name. A passing failure (a server unreachable) is tried four
// times, 30 s, 60 s and 90 s apart.
// # Rooms
//
// /room <chat> moves a chat into a group chat of its own (XEP-0045) on the
// bot's server, so the owner's client shows it as a conversation with its
// own unread count and notifications: members-only, non-anonymous,
// persistent, hidden, archived, titled after the chat, the owner a member
// and invited (XEP-0249). [rooms] auto (RoomsAuto) gives every chat that
// speaks a room, its first message in it. When the server has no group
// chats or refuses to make one, the owner is told why in one line and the
// chat stays in the bot conversation (auto stops asking until a restart).
// The room ↔ chat binding is saved ("core.rooms") and the XMPP side is told
// the rooms before it connects; /room <chat> off destroys the room and
// moves the chat back; /rooms lists them.
//
// In a room nothing is routed: what the owner writes there goes to its
// chat (a reply, or a "> " quote of one of the chat's messages, as a
// WhatsApp reply); a command is a command there too, answered in the room
// with the bot's name in front ("*waxmpp*: "), since the bot speaks there
// under the chat's name: the person's in a direct chat, "WhatsApp" in a
// group. Its chat's lines come there without the chat's name: "*Bob*: …" in
// a group, no prefix in a direct chat except "*You*: " for what the owner
// wrote on the phone, and notes ("Bob joined", calls, reactions in groups)
// without the "*Family*: ". A chat with a room does not speak in the bot
// conversation (it does not make plain text there ask), though a reply there
// to one of its earlier messages still goes to it. Every feature works
// there: replies, reactions, retractions and markers name the message by
// the id the room gave it (XEP-0359 stanza-id by the room; the room's copy
// of the bot's own message tells it, RoomEcho), until then by its XMPP id;
// corrections by its XMPP id. The owner's displayed marker in the room marks
// read on WhatsApp; WhatsApp's read receipts become markers in the room
// (XEP-0184 receipts are not for rooms); typing goes both ways, for groups
// too. An event about a message stays where the message is: a message of
// the bot conversation is corrected there even after its chat got a room;
// one of a room that is gone gets a new line instead.
//
// Nothing is lost or doubled on this path either: the XMPP side rejoins
// every room without its history after each login, before it sends anything
// to one, and replays from the room's archive what the owner wrote there
// while the bot was away; the core handles each owner message once by its
// id, as in the bot conversation. Only the owner is served: anyone else in a
// room is ignored, and the owner told once per person (RoomStranger, saved
// with the binding); a room the bot is out of for good (destroyed, banned)
// moves its chat back, told (RoomGone).
//
// A room shows its chat's WhatsApp picture (a person's or a group's): the
// core fetches it (WhatsApp's ChatPicture) once the room is made and sets
// it (Rooms' SetRoomPicture, which makes it small enough for one stanza); a
// change on WhatsApp (PictureChange) sets the new one, a removal removes
// it. The binding keeps the picture's id, so an event delivered again sets
// nothing. A picture that cannot be fetched or read (broken, too large)
// leaves the room as it is, logged: the room is made all the same, and the
// picture is tried again when WhatsApp next connects (as for rooms made
// before rooms had pictures). Where the server keeps no room pictures
// (ErrNoRoomPictures: Prosody without mod_vcard_muc), the room has none:
// the line that made it (when the chat has a picture) ends with "(Your XMPP
// server does not show pictures of rooms, so the room has none.)", /rooms
// says so too, the log says it once, and that room is not asked again (a
// room made later is).
//
// # Commands
//
// In the bot conversation, and the same as XEP-0050 ad-hoc commands:
//
//	/help                    the commands
//	/chats [filter]          chats and their handles
//	/to <chat>               the current chat; releases held messages there
//	/msg <chat> <text>       send once
//	/new <+number>           start a chat with a phone number
//	/find <name>             search chats and contacts
//	/history <chat> [n]      ask the phone for n (default 20) messages older
//	                         than the oldest of the chat the core knows
//	/mute <chat> [30m|8h|2d|1w]  stop relaying (default: until /unmute)
//	/unmute [chat]           relay again
//	/status                  WhatsApp and XMPP health, queues, version
//	/pair [+number]          link WhatsApp by QR code, or by a code for that number
//	/logout yes              unlink WhatsApp (without "yes" it only explains)
//	/cancel                  drop held messages
//	/room <chat> [off]       give a chat a room of its own; off moves it back
//	/rooms                   the chats that have rooms
//	/invite <chat> [again]   send a friend or a group your XMPP address
//	/invite text             the invitation's text
//	/moved <chat> <address>  note that a friend is on XMPP now (forget: undo)
//	/invites                 who was invited when, and who moved
//
// Unknown commands and bad arguments get one line saying what is wrong and
// what would work. A chat is named by its handle, its JID, its +number, or
// its name when that is unique.
//
// Every command also starts with "!" (!help, !to alice): profanity, Gajim
// and poezio take a line starting with "/" as their own command (/help
// shows the client's help, /msg writes to another address). /help and
// every hint are written in the form that works in the owner's client.
//
// # Bringing friends over
//
// The bridge is a door, not a home. /invite sends the chat a short message
// from the owner (through WhatsApp, as the owner): that they are on XMPP,
// the owner's address (CoreConfig.Invite) as an RFC 5122 URI with the
// XEP-0147 query "?roster", a landing page link that opens it in an app
// (https://conversations.im/i/ by default), and which apps to get. A group
// gets the same, addressed to everyone; a group that has its own room gets
// the room's address ("?join"). The text is built in, in English, German,
// French or Spanish, or the owner's own (see invitetext.go for the
// placeholders). The language is the config's [invite] language, else the
// system locale's (cmd/waxmpp reads LC_ALL, LC_MESSAGES, LANG), else
// English; the bot's own answers are English. The WhatsApp id comes from
// the owner's message (a replay after a crash is one message), and the
// invitation is mapped like any message the owner sent.
//
// Invited within the last 30 days, or moved already, /invite asks first:
// "/invite alice again" sends anyway. /moved records the chat's XMPP
// address; from then on /chats marks it "(on XMPP)", each new message
// relayed from it ends with one line, "↪ on XMPP: xmpp:…?message" (a
// group's: "?join"), which a "> " quote may include, and the next time
// the owner writes to it through the bridge the bot offers, once, the URI
// to write there directly. Reminders concern the chat that moved: a moved
// person's messages in a group are relayed as they were. /invites counts
// invited people and groups and how many of them moved ("3 of 12 invited
// friends are on XMPP."), then lists them, latest invitation first, and
// who moved without an invitation. Invitations and moves are kept in the
// state file (bridge/store's invites bucket), and follow a chat merged
// into another.
//
// # The owner's clients
//
// The XMPP side says which client each of the owner's resources runs (its
// XEP-0115 caps node and XEP-0030 identity: OwnerClient) and whether the
// owner sees the bot's presence (OwnerRoster); client.go knows what each
// client does. The bot's words follow the client the owner last wrote from
// (else an online one that takes "/" for itself, where "!" is what works):
// "!" for commands, the escape as typed there (Dino, Gajim, poezio and
// profanity send "//x" as "/x", so "/x" takes "///x"), and how to do what
// it asks in that client's own terms. Said once, and remembered across
// restarts (setting "core.clients"):
//
//   - the first time the owner uses a client that takes "/" for itself:
//     how to write the bot's commands there;
//   - when the owner does not see the bot's presence (accepting the bot's
//     request gives the bot the owner's presence, not the other way round,
//     and profanity does not ask back by itself): please add the bot, whose
//     status tells whether WhatsApp is connected. It is asked when a client
//     of the owner's is first known, so in that client's words, and again
//     only after the owner added the bot and removed it.
//
// What the owner writes to a chat marks what that chat sent before as
// read on WhatsApp (read when answered): profanity, for one, sends no
// XEP-0333 markers. Displayed markers mark read as well. The bot's
// messages are markable but ask for no XEP-0184 receipts: nothing uses
// them, and each of the owner's clients would answer every relayed
// message.
//
// A message the owner's client encrypted end to end (OMEMO, OpenPGP for
// XMPP, legacy PGP, OTR: OwnerEncrypted) is never sent: its body is only
// the client's fallback ("I sent you an OMEMO encrypted message…"). The
// owner is told that the bot cannot read encrypted messages yet and how to
// turn encryption off for the bot's chat in their client. The XMPP side
// keeps the bot's OMEMO device list empty, so clients do not encrypt to
// it.
//
// # WhatsApp's life
//
// The bot's presence is the bridge's health light: available when WhatsApp
// is connected; away while reconnecting or when the phone has been offline
// (with the day count); dnd when logged out or not linked (the status says
// to send /pair). Life events are told to the owner once, in plain words,
// with what to do: logged out, the phone offline for 10 days or more
// (WhatsApp unlinks companion devices after about 14), the link taken over
// by another client, this version refused, a temporary ban. QR pairing: each
// code is uploaded as a PNG (XEP-0363) and linked, with its text below;
// without upload, only the text.
//
// Messages to the owner are plain words; internals (store and protocol
// errors) go to the log, which the caller scopes to the component.
package bridge
