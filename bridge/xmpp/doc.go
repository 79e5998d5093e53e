// Package xmpp is waxmpp's XMPP side: the bot account's client session on
// github.com/xmppo/go-xmpp, the typed stanza codec, the durable outbox and
// XEP-0363 upload.
//
// What the code relies on, and the choices it makes:
//
//   - Login: an explicit server ("host:port", or "tls://host:port" for
//     direct TLS), else SRV _xmpps-client (direct TLS, XEP-0368), then
//     _xmpp-client (STARTTLS), then the domain on 5222 (RFC 6120 §3.2).
//     STARTTLS is required; certificates are verified for the JID's domain
//     against the system roots plus an optional CA file.
//   - SASL: go-xmpp takes the strongest mechanism offered, channel binding
//     (-PLUS) first. Not every server gets binding right (ejabberd before
//     24.02 refuses the tls-exporter binding go-xmpp sends over TLS 1.3):
//     when a -PLUS login fails, the session tries once more on a fresh
//     connection with the strongest mechanism without binding, keeps to it
//     for this server and logs that once (the certificate is verified
//     either way). Config.Mechanism forces one. Failures are told by the
//     server's condition, read from go-xmpp's login trace (go-xmpp itself
//     flattens them to text): not-authorized or credentials-expired
//     without binding, said twice in a row, is ErrAuth (the binary exits
//     78 naming xmpp.password); account-disabled is ErrAccountDisabled
//     and an unoffered forced mechanism ErrMechanism (also permanent);
//     temporary-auth-failure, other conditions, TLS, DNS and connection
//     failures are a *LoginError with their own words, retried with
//     backoff.
//   - Bounded logins: go-xmpp dials by itself and has no deadlines in TLS,
//     SASL and bind. The session dials the endpoint itself and gives
//     go-xmpp a one-connection loopback relay to that socket; a login not
//     done within DialTimeout (or cancelled) has its socket closed and is
//     waited for, so a late login can never bind the bot's resource and
//     make the server replace the live session. Once logged in, the link's
//     TLS connection is handed over to the dialed socket and the relay
//     ends (handover.go: the boundary is marked by shutting each way of
//     the loopback, so nothing in flight is lost or reordered); a Go
//     whose tls.Conn differs keeps the relay. (go-xmpp would send even that
//     loopback dial to an HTTP_PROXY from the environment unless NO_PROXY
//     names 127.0.0.1; the service runs without one.)
//   - Reading: go-xmpp's Recv drops the id attribute of messages and eats
//     some IQs. After go-xmpp has done TLS, SASL and bind, the session reads
//     every stanza itself from go-xmpp's own *xml.Decoder (reached via
//     reflection), so nothing already buffered is lost and every attribute
//     is seen. New checks go-xmpp's Client layout first: a go-xmpp other
//     than the pinned v0.3.7 stops New with one error. go-xmpp's Recv and
//     periodic pings are never used. A stanza whole in that decoder's
//     buffer and in the plain forms the servers write (scan.go) is read
//     straight out of the buffer, in a few allocations where encoding/xml
//     makes one for every name, value, text and tag; anything else is left
//     to the decoder untouched, so both accept and reject the same
//     (FuzzFastPath). That needs a look, by reflection, at the decoder's
//     buffer and state between stanzas; a Go whose xml.Decoder differs
//     turns the fast path off (TestFastPathOn).
//   - Writing: one writer goroutine per link, with a deadline on every
//     write, paced by a token bucket whose rate follows the server's pace:
//     servers throttle a client by not reading its socket (Prosody's
//     mod_limits, 10 kB/s; ejabberd's shaper, 3,000 B/s as shipped), so
//     ping round trips grow when we write faster than they read. The pace
//     starts at 2,000 B/s, grows while round trips stay short and there is
//     more to send, and backs off after two answers in a row queued a
//     second, never above Config.Rate (default 8 kB/s). A window bounds the
//     bytes written but not yet confirmed (about a second at the pace, at
//     least 8 KiB), so a server that reads fast but processes slowly never
//     holds much of ours and its answers stay quick. Control stanzas (IQ
//     answers, presence, pings) go before queued messages.
//   - Nothing lost: Send writes the stanza into the durable outbox (a
//     bbolt queue; Send returns after fsync). The writer sends queue items
//     in order and pings the server: when idle, every second while
//     draining (also with earlier pings unanswered, up to eight), when the
//     window is full, and every PingInterval as keepalive. The server processes a
//     stream in order, so a ping's result proves everything written before
//     it arrived; only then are those items removed: at once for the
//     writer (the next link starts after them), on disk with the store's
//     next commit of anything (LaterQueue) while they are at most 8 KiB
//     (maxLazy), else in a commit of their own. After a kill -9 or a power
//     cut before that commit they are sent again like unconfirmed ones
//     (clients drop them by id; a room's are read back first, recallCopies
//     reading that much more of the outbox's head). After a reconnect,
//     unconfirmed items are sent again, byte for byte (same id), so a
//     server crash can duplicate at most the last second's stanzas, which
//     clients drop by id. A ping unanswered for PingTimeout, any read, XML
//     or write error closes the link; it is never reused.
//   - Reconnect: forever, exponential backoff from MinBackoff to
//     MaxBackoff with ±50% jitter, reset after a link that lived a minute.
//   - Who is served: only the owner's bare JID. Messages, presences and
//     IQ requests from anyone else are dropped and counted (Stats.Dropped);
//     strangers' subscription requests are refused with "unsubscribed";
//     carbons are dropped (the bot never enables them). IQ results are
//     accepted only from the entity the request went to. The owner's
//     unknown IQ requests get service-unavailable.
//   - Nothing lost inbound: a message the server has written to the bot's
//     socket is gone for it unless it keeps it some other way. Two ways
//     are used, each where the server offers it. XEP-0198 (both servers
//     ship it on): the session acknowledges only stanzas the core has
//     durably handled (Bot.Handled; see sm.go), so what a dying link never
//     acknowledged is stored offline by the server and delivered at the
//     next login. XEP-0313 archive (both ship it off): a cursor (an archive
//     id and the archive's time there) moves to positions up to which the
//     core has handled everything (replayed messages, the archive's end
//     after a complete replay, live messages by their stanza-id, or the
//     archive's end at a quiet moment where live messages carry none), only
//     forwards; every login replays the owner's messages after it, by time
//     when the archive has expired the cursor's item, page after page to
//     the end or to the first message the link got live as routed (not
//     from offline storage, which on ejabberd holds part of what a dying
//     link never acknowledged and may be older than what only the archive
//     has). Only results of
//     our own query from our own archive are accepted (see mam.go).
//   - What waxmpp can promise, per server (inbound; Stats.Caveat says it
//     for /status and waxmpp doctor):
//     Prosody 0.12 and 13 as shipped (mod_smacks on, mod_mam commented
//     out): nothing the owner sends is lost while waxmpp restarts or its
//     link dies (a half-open link is found by its ping), as long as
//     Prosody keeps running: what the bot never acknowledged goes to
//     offline storage when the bot has no other session. A Prosody
//     restart loses what it had written to a dying link.
//     Prosody with mod_mam: mod_smacks stores nothing offline for a
//     session that used the archive (mod_smacks.lua's delivery/failure
//     hook), so the archive replay brings those back, also across a
//     Prosody restart, up to what the archive keeps (archive_expires_after,
//     a week by default; past it the replay asks by the cursor's time).
//     ejabberd 23.01 as shipped (mod_stream_mgmt with resend_on_timeout:
//     if_offline; mod_mam commented out): as Prosody as shipped; its
//     offline storage keeps 100 messages per user (max_user_offline_messages),
//     more are refused (outbound, see below). With mod_mam as well: the
//     archive replay too, as on Prosody with it (mod_mam's module default,
//     "default: never", archives only for users who ask: the bot asks for
//     "always" at its first login of a run).
//     A server with neither XEP-0198 nor an archive (Prosody before 0.12,
//     or with mod_smacks switched off): a message the owner sends just as
//     the link dies can be lost; the rest is relayed. A live message
//     without a stanza-id (a server that adds none) still moves the
//     cursor: the archive's last item is asked for at a quiet moment.
//     Outbound, on every server: the outbox holds every message until a
//     ping result proves the server took it; a message the owner's server
//     refuses for now (ejabberd's full offline storage; a federating
//     server that cannot reach the owner's) is set aside, durably, and
//     sent again when the owner is online, with one note (at most one an
//     hour), and again with a growing wait while it is refused and the
//     owner stays online (see bounce.go).
//     Across federation (the owner on another server; measured with two
//     Prosody 0.12 on loopback, authenticating each other by dialback, as
//     Prosody does when neither trusts the other's certificate): when the
//     owner's server stops in the middle of a burst, what it took before
//     reaches the owner, and the bot's server answers every later message
//     remote-server-not-found, so those go again once the owner is back;
//     nothing is doubled. What is on its way in the moment the owner's
//     server shuts down or crashes (written to the link between the
//     servers, or taken but not passed on) can be lost without an error:
//     Prosody 0.12 closes its server links at shutdown at once, without
//     waiting for the other side's stream end (mod_s2s.lua's session_close
//     waits only when closing without a reason; shutdown gives
//     system-shutdown), and uses no XEP-0198 on a link authenticated by
//     dialback (mod_smacks offers it only to authenticated server streams,
//     mod_s2s sends its features before dialback), so nothing tells the
//     bot's server. Measured: 1 of 300 under load, none on a quiet machine
//     after a stop; 1 of 300 in one of three runs after a kill.
//   - Duplicates in: the session drops an owner message whose origin-id (or
//     id) is among the last 4,096 it saw (resends, archive replays); across
//     restarts the core drops what it already handled, by the same id.
//   - Roster: at each login the bot pre-approves the owner's subscription
//     where the server offers pre-approval (RFC 6121 §3.4: Prosody does,
//     ejabberd 23.01 does not; there the owner's request is approved when
//     it comes), so the owner sees the bot's presence, the bridge's health
//     light. It asks for the owner's presence once, ever: the owner's item
//     in the bot's roster then carries the group "waxmpp", and an owner who
//     removed the bot is not asked again at every login. The owner's
//     roster item, at login and in roster pushes, reaches the core as
//     bridge.OwnerRoster (the core asks to be added back when the owner
//     does not see the bot's presence).
//   - The owner's clients (fit.go): each available presence of the owner's
//     names its client by its XEP-0115 caps node; the Bot asks the
//     resource for its XEP-0030 identity (at node#ver, cached by it; a
//     resource that writes without a presence, as it does before the
//     owner accepted the bot's subscription, is asked at no node) and
//     tells the core with bridge.OwnerClient, which writes its hints in
//     that client's forms. An unavailable presence tells the core the
//     client is gone; an answer that comes after its resource went away or
//     changed caps is dropped; a resource that does not answer within 20 s
//     is told by its caps node alone. Every owner message names its
//     resource (bridge.OwnerMeta.Resource), so the core knows which client
//     wrote; in a room the resource of the sender's JID is a nick, and no
//     resource is named. Presences and roster items reach the Bot on a
//     channel of their own (capacity 64), and one that finds it full is
//     dropped and logged: it only tunes hints, and the reader never waits
//     for it. These events come from no archived stanza, and Handled
//     ignores them.
//   - End-to-end encryption (crypto.go): a message with an XEP-0380 hint,
//     an OMEMO payload (eu.siacs.conversations.axolotl or urn:xmpp:omemo:2),
//     an OpenPGP for XMPP or legacy PGP element, or an OTR body ("?OTR") is
//     a bridge.OwnerEncrypted, never text (in a room too): its body is the
//     client's fallback. An OMEMO element without payload (a key
//     exchange) is nothing to act on; OTR's whitespace tag is removed from
//     plain text. At each login
//     the bot reads its own OMEMO device lists (both namespaces, PEP) and
//     publishes an empty one where one names devices: an app once used on
//     the bot account leaves its device, and clients that see it encrypt
//     to the bot. A list that does not exist is left alone. Prosody 0.12
//     and ejabberd 23.01 both take the empty list without publish-options
//     and keep the node's configuration. The lists are checked at login
//     only: a device published while the bot runs is removed at its next
//     login.
//   - Size in: the codec takes what the servers take (256 KiB of text; their
//     stanza limits are 256 KiB) and refuses deeper nesting than 32 (dropped
//     alone, the stream goes on); an owner's message refused for its size
//     is told to the owner in plain words. The server's own stanza limit
//     bounds what the decoder buffers.
//   - Size out: a server closes the stream on a stanza over its limit, and
//     the outbox would write it again on every link. Every stanza stays
//     under the server's limit where it states one (XEP-0478), else under
//     64,000 bytes (ejabberd's documented examples and many deployments
//     take 65,536; its server-to-server examples 131,072), and never above
//     that when the owner is on another server. A longer message goes in
//     parts, cut at line breaks where it can be, each ending with an
//     "(i/n)" line, a preformatted block cut in two closed and opened
//     again; the core knows it by the first part's id. After a stream error
//     that may be about what was written, the unconfirmed items go one at a
//     time: one that precedes a second error is sent in parts at half the
//     size (the session's limit goes down with it) or, when it cannot be
//     split, taken out of the outbox, the owner told what could not be
//     delivered (guard.go).
//   - Upload: the service is found by disco#items/disco#info on the
//     bot's server; its max-file-size is respected before asking for a slot;
//     the PUT streams from an io.Reader to https only (http only on
//     loopback), with the slot's Authorization, Cookie and Expires headers
//     and no redirects.
//   - Rooms (XEP-0045, muc.go; the core's bridge.Rooms): the MUC service
//     is the disco item with identity conference/text and the muc
//     feature. A room is created under a random name ("wa-" and 12 hex
//     digits; a name that exists already is someone else's and is left
//     alone), configured from the form the server offers (only the fields
//     it offers are sent: ejabberd refuses a whole form for one unknown
//     field) as members-only, non-anonymous, persistent, hidden and
//     archived, no invitations by others, no private messages; the owner
//     is made a member and invited (XEP-0249). Prosody says "not-allowed"
//     where room creation is restricted, ejabberd "forbidden"; a server
//     without a MUC service is told as bridge.ErrNoRooms.
//   - Into the rooms first: at each login the bot joins every room with
//     <history maxstanzas='0'/> (nothing is replayed as new), and the
//     writer sends nothing of the outbox until the joins are answered
//     (conn.gate): a room drops a message from someone not in it, and the
//     ping would confirm it all the same. Then each room's archive is
//     replayed from its own cursor (RoomCursors), as the bot's own archive
//     is; a room made anew by the server (its data lost: status 201 at a
//     rejoin) is configured, its owner invited again, and replayed from
//     its start. A replay cut short (the link went) leaves the cursor
//     where it was, so what came live meanwhile cannot move it past what
//     was not replayed; a room's message before the bot's join on this
//     link (ejabberd routes to the full JID an earlier link held) is left
//     to that replay. That earlier link's leave, reaching the room after
//     this link's join, puts the bot out (status 110) while the join is
//     in flight: the join goes again, and the gate opens on its answer.
//   - Not twice in a room: before the gate opens, each room one of the
//     outbox's first records goes to is read back (XEP-0313, newest
//     first) until the copy of each record, or of something older, is
//     met; a record whose copy is there, or whose id went to the room on
//     this link already (the core queued it again after a crash), is not
//     written again. Clients
//     drop a chat message sent again under its id, but a room gives the
//     second copy a stanza-id of its own, and Conversations tells a
//     room's messages apart by that id.
//   - Who is who in a room: the room shows real JIDs (non-anonymous), in
//     presences and in its archive; live messages are told by the
//     occupant's nick. The owner's messages go to the core with the room's
//     id (stanza-id by the room); the room's copies of the bot's own
//     messages tell the core that id (bridge.RoomEcho); what the core
//     sends before that names the bot's id, and deletions, reactions and
//     markers go again under the room's id once the copy comes (fixups).
//     Everyone else is dropped and told to the core once per run
//     (bridge.RoomStranger). A settings or affiliation change (status
//     104, 170-174) and every join bring a check that sets the settings
//     back and takes anyone else's affiliation away. Destroyed, banned or
//     removed: bridge.RoomGone; kicked: joined again.
//   - A room's picture (muc_picture.go; bridge.Rooms' SetRoomPicture): the
//     room's vCard (XEP-0054 PHOTO, TYPE and BINVAL), set by the bot as
//     its owner, where the room's disco#info has the vcard-temp feature:
//     ejabberd's mod_muc always, Prosody with mod_vcard_muc (Debian's
//     prosody-modules); else bridge.ErrNoRoomPictures. Both then send
//     occupants a presence from the room with the picture's hash
//     (vcard-temp:x:update); Prosody's module also shows it in the room's
//     disco#info, ejabberd 23.01 does not (no XEP-0486 avatar hash). The
//     picture goes in one IQ, past the outbox's pace: one over 16 KiB (or
//     over the stanza limit in base64) is decoded (JPEG or PNG, at most
//     2048 × 2048 pixels) and sent as a JPEG at the largest of 640 … 64
//     pixels that fits; nil sends an empty vCard (no picture).
package xmpp
