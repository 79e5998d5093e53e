// Package simwa is a simulated WhatsApp network for end-to-end tests: an
// in-process bridge.WhatsApp that a test drives from outside the process,
// in any language, through a JSON-lines control socket. It injects every
// event the real adapter can produce, records every call the bridge makes,
// and answers those calls as scripted.
//
// # Build tag
//
// The package itself has no build tag: it needs only the standard library
// and package bridge, so its tests and fuzz target run with every
// `go test ./...`. The binary links it only when built with -tags simwa
// (cmd/waxmpp/whatsapp_simwa.go); then
//
//	waxmpp run --simulator /run/waxmpp-sim.sock
//
// replaces the real WhatsApp connection with the simulator, listening on
// that Unix socket (mode 0600). A build without the tag has no such flag.
//
// # Protocol
//
// Connect to the socket (any number of connections at once). Each side
// writes one JSON object per line (at most 16 MiB). Every request has an
// "op" and may carry an "id" (any JSON value) that its reply echoes. Every
// reply has "ok"; when it is false, "error" says why in words. A
// connection answers its requests in order. Field names are snake_case;
// unknown fields are an error (names are matched as Go's encoding/json
// does, ignoring case: write them as documented); times are RFC 3339
// (omitted: now); durations are Go duration strings ("5s", "1m30s").
//
// With socat or python:
//
//	echo '{"op":"state"}' | socat - UNIX-CONNECT:/tmp/sim.sock
//	{"ok":true,"state":{"boot":"1879A2C0DE","pid":4242,"paired":true,"online":false,"events":1,"handled":1,"actions":0,"rules":0}}
//
//	python3 -c 'import socket,json,sys; s=socket.socket(socket.AF_UNIX); s.connect("/tmp/sim.sock"); f=s.makefile("rw"); f.write(json.dumps({"op":"event","event":{"type":"message","chat":"491701234567@s.whatsapp.net","id":"M1","text":"hi","push_name":"Alice"}})+"\n"); f.flush(); print(f.readline())'
//
// # Ops
//
// event — inject one event; the reply comes once the core's event channel
// accepted it, so requests on one connection reach the core in order. The
// binary gives that channel a buffer: the core may not have dealt with the
// event yet (see the acknowledgements under watch):
//
//	→ {"op":"event","event":{"type":"message","chat":"491701234567@s.whatsapp.net","sender":"491701234567@s.whatsapp.net","id":"M1","text":"hi","push_name":"Alice"}}
//	← {"ok":true,"n":1}
//
// events — inject several in order ("events":[…]); all are checked before
// the first is sent, so a bad one sends none. "n" counts those accepted.
//
// actions — the calls the bridge made, in order. Without "since", a
// connection continues where its previous actions reply ended (a new
// connection starts at the beginning of this process's log); "since":S
// returns those with seq > S. "wait":N waits until at least N are there,
// for at most "timeout" (default 10s; on timeout ok is false and the
// actions so far are still returned). "types":[…] filters by type (and
// then "wait" counts only those). "next" is the seq to continue from.
//
//	→ {"op":"actions","wait":1,"timeout":"5s","types":["send_text"]}
//	← {"ok":true,"actions":[{"seq":3,"boot":"1879A2C0DE","type":"send_text","at":"…","chat":"491701234567@s.whatsapp.net","text":"hello","reply_to":{"chat":"491701234567@s.whatsapp.net","sender":"491701234567@s.whatsapp.net","id":"M1"},"quoted_text":"hi","id":"3EB01879A2C0DE000001","time":"…"}],"next":3}
//
// watch — turns the connection into a stream: the reply {"ok":true}, then
// every action recorded since "since" (default 0: all of this process's),
// then each new action as it happens, each as {"action":{…}}. An action is
// written to every watcher before the bridge's call returns, so an action
// the bridge saw succeed is in the watcher's socket buffer even if the
// process is SIGKILLed the next instant; a test that must count every
// send across kills watches, and reconnects after each restart. A watcher
// that does not read for 10s is disconnected (it would stall the bridge).
// Requests may still be sent on a watching connection; their replies are
// interleaved with the pushed actions. With "handled":true the watch also
// pushes each event the core acknowledges as durably handled
// (bridge.WhatsApp's Handled), as {"handled":{…the event…}}, before the
// core goes on: after a kill, a test re-injects exactly the events it never
// saw acknowledged, as WhatsApp redelivers what a device never acknowledged.
//
//	→ {"op":"watch","handled":true}
//	← {"ok":true}
//	← {"handled":{"type":"message","chat":"491701234567@s.whatsapp.net","sender":"491701234567@s.whatsapp.net","id":"M1","time":"…","kind":"text","text":"hi","push_name":"Alice"}}
//	← {"action":{"seq":1,…}}
//
// script — add a rule answering matching calls; rules apply first-added
// first, and one with "times":N is used up after N matches (0: forever):
//
//	{"op":"script","rule":{"action":"edit","error":"edit_window","times":1}}
//	{"op":"script","rule":{"action":"send_text","chat":"491701234567@s.whatsapp.net","error":"network down","times":3}}
//	{"op":"script","rule":{"action":"send_text","text_contains":"slow","delay":"2s"}}
//	{"op":"script","rule":{"action":"lookup","phone":"+4915550000","found":false}}
//	{"op":"script","rule":{"action":"lookup","phone":"+4915550001","found":true,"user":"123456789@lid"}}
//
// Matchers: "chat", "id" (the target message: edit, revoke, react,
// media_retry; the first id of mark_read; the handle of download),
// "phone" (pair, lookup; '+' ignored), "text_contains" (send_text, edit;
// the caption of send_media; the emoji of react). Answers: "delay",
// "error" (edit_window, not_paired, already_paired and not_found become
// the bridge's sentinel errors — bridge.ErrEditWindow and so on —;
// http_403, http_404 and http_410 make a download fail as expired media,
// bridge.ErrMediaExpired; any other text a plain error), for lookup
// "found"/"user", and for media_retry "answer" (below).
//
// # Media
//
// A message event's "media" carries what Download writes into the file
// the bridge names: "data" (base64), else the file "file" (a path on this
// machine, read at download time: large files need not cross the
// socket), else "size" bytes of a fixed pattern (byte i is 'a' + i%26;
// Pattern). Media expires as on WhatsApp when a rule says so:
//
//	{"op":"event","event":{"type":"message","chat":"491701234567@s.whatsapp.net","id":"P1","kind":"image","text":"the beach","media":{"mime_type":"image/jpeg","size":52011,"handle":"P1","file":"/tmp/t/beach.jpg"}}}
//	{"op":"script","rule":{"action":"download","id":"P1","error":"http_410","times":1}}
//
// The bridge then asks the phone (action media_retry). Unless scripted,
// the phone answers at once with a media_retry event whose handle is the
// old one + "/retry", with the same content; "answer":"gone" makes it say
// the file is no longer on the phone, "answer":"none" makes it never
// answer (a test may inject the answer itself later):
//
//	{"op":"script","rule":{"action":"media_retry","id":"P1","answer":"gone"}}
//	{"op":"event","event":{"type":"media_retry","chat":"491701234567@s.whatsapp.net","id":"P1","media":{"handle":"P1-again","file":"/tmp/t/beach.jpg"}}}
//
// media — what Download writes for a handle, without an event: after a
// restart the simulator has forgotten the content of what was injected
// before (WhatsApp's servers would still have it):
//
//	{"op":"media","media":{"handle":"P1","file":"/tmp/t/beach.jpg"}}
//
// What the bridge sends is recorded as a send_media action with every
// field of the WhatsApp message and the bytes' SHA-256 (and the bytes,
// base64, up to 1 MiB):
//
//	{"action":{"seq":9,"type":"send_media","chat":"491701234567@s.whatsapp.net","id":"3EB0…","media":{"kind":"voice","mime_type":"audio/ogg; codecs=opus","size":5161,"sha256":"9f2c…","duration":"2.5s","waveform":[0,12,…,100],"data":"T2dnUw…"},…}}
//
// reset — remove all rules.
//
// forget — drop the action log (op actions then answers only what is
// recorded later; asked for older ones, it says the log no longer holds
// them) and the send times the edit window is judged by (edits of what
// was sent before are then not refused for it): the simulated network's
// own memory, in the bridge's process, for a test that measures the
// bridge's. "n" is how many actions were dropped.
//
// state — {"boot","pid","paired","online","events","handled","actions",
// "rules"}: "boot" changes with every start of the process; "events" counts
// the events the core took from its channel, "handled" those it
// acknowledged; "actions" is the last seq.
//
// generate — a test aid for loading the bridge: injects, in this order,
// "contacts" ContactInfo events (users 491000000000@s.whatsapp.net,
// 491000000001@…), "chats" ChatInfo events for direct chats with the first
// of those users, "groups" groups (120363000000000000@g.us, …), then
// "messages" text messages "#i <text>" round-robin over the chats, ids
// "<prefix>i" (prefix defaults to one unique per process):
//
//	{"op":"generate","generate":{"contacts":2000,"chats":500,"messages":100000,"prefix":"L","text":"load"}}
//
// # Events
//
// "type" selects the event; the fields that apply are (* required):
//
//	message        chat*, id*, sender (direct chats: the chat; groups: required by sense),
//	               from_me, time, push_name, kind (text default, image, video, audio,
//	               voice, document, sticker, location, live_location, contact_card,
//	               poll), text (the caption for media), mentions [user], reply_to
//	               {chat, sender, id, from_me}, quoted_text, media {mime_type,
//	               file_name, size, duration, handle*, data (base64) or file (a
//	               path): what Download writes}, location {lat, lon, name, address}, contacts [{name,
//	               numbers, vcard}], poll {question, options, selectable},
//	               forwarded, view_once, history, retry
//	edit           chat*, id*, sender, from_me (the edited message), text, time
//	revoke         chat*, id*, sender, from_me (the deleted message), by, time
//	undecryptable  chat*, id*, sender, from_me, time; later send the message with
//	               the same ids and "retry":true
//	reaction       target* {chat, sender, id, from_me}, sender* (the reactor; or
//	               from_me), emoji ("" removes), time
//	poll_vote      target* (the poll), sender* (the voter), options [text], time
//	receipt        chat*, ids*, by (default the chat), kind (delivered, read,
//	               played), time
//	typing         chat*, sender (default the chat), state (composing default,
//	               recording, paused)
//	presence       user*, online, last_seen
//	call           chat*, sender (the caller; default the chat), id, video, kind
//	               (offered default, missed, ended, rejected), time
//	group_change   chat*, sender (the actor), kind* (joined, left, promoted,
//	               demoted, subject, description, created), users, subject, text, time
//	contact_info   user*, full_name, first_name, push_name, business_name
//	chat_info      chat*, kind (direct, group for …@g.us, broadcast, status), name
//	picture        chat*, id (the picture's), media {mime_type, data or file}: the
//	               chat's new profile picture, what ChatPicture returns from now on
//	               (no media: the one set before; a restart forgets them all);
//	               "removed":true removes it
//	alias          lid*, phone*
//	status         state* (connected, disconnected, logged_out, not_paired,
//	               stream_replaced, outdated, temp_banned, phone_offline, banned), reason,
//	               until, phone_last_seen
//	pair_code      qr, link_code or passkey* (WebAuthn request options, JSON), expires
//	pair_result    ok, user, name, error
//	media_retry    chat*, id*, sender, from_me (the message), media (the file
//	               uploaded again: handle*, data or file; absent: gone from the
//	               phone), error
//
// # Actions
//
// Each action has "seq" (1, 2, … per process start), "boot", "type", "at"
// (when the call returned) and, when the call failed, "error" (a code
// above, or the text). By type:
//
//	send_text        chat, text, reply_to, quoted_text, mentions, id (the core's or
//	                 the simulator's); time returned
//	send_location    chat, location; id, time returned
//	edit             target, text
//	revoke           target
//	react            target, emoji
//	mark_read        chat, sender, ids, time
//	set_typing       chat, state
//	set_online       online
//	pair             phone
//	logout
//	lookup           phone; user, found returned
//	request_history  chat, n, before
//	download         handle; size (bytes written)
//	send_media       chat, media {kind, mime_type, file_name, size, sha256, width,
//	                 height, duration, thumbnail (base64 JPEG), waveform, gif_playback,
//	                 caption, data}, reply_to, quoted_text, mentions, id; time returned
//	media_retry      target (the message), handle
//	chat_picture     chat; id (the picture's) and size returned
//
// # Behaviour
//
// The simulator starts paired and, once served, tells the core
// Status connected (Config.Unpaired: neither). Calls other than Pair and
// Download fail with not_paired while unpaired. Logout unpairs and is
// followed by Status logged_out; Pair (when unpaired) is followed by one
// PairCode, and an injected pair_result with "ok":true (or a status
// connected) pairs again. Download, SendMedia and RequestMediaRetry may
// be called from any goroutine, as the bridge's transfers are. SendMedia
// reads the whole file (as an upload would), streamed. Lookup finds every number of 6 to 15 digits as
// <digits>@s.whatsapp.net. Edit fails with edit_window for a message this
// process sent more than 20 minutes before. Returned ids are the id the
// core chose (SendOptions.ID), else "3EB0<boot><counter>", unique across
// restarts of the process. A resend with an id already used is recorded
// again: WhatsApp recipients drop it, so count distinct ids for what
// reached a chat and all send_text actions for what was sent.
//
// Buffering and backpressure: an event request blocks until the core's
// channel (whose buffer the binary sizes) accepts the event; a slow core
// thus slows the test. Accepted is not acknowledged: an event is safe only
// once the core called Handled for it (watch with "handled"); until then a
// kill may lose it, and the test, playing WhatsApp, delivers it again. Events the simulator makes
// itself (the start-up status, PairCode, logged_out) are sent from their
// own goroutine, because the core is inside the call that causes them.
// Actions are recorded when the bridge's call returns, after the watchers
// have them; the log answered by op actions keeps the last 200,000.
//
// Nothing survives the process but the uniqueness of ids: after a restart
// the log starts empty (a new "boot"), rules are gone and the simulator is
// paired again. The socket file of a killed process is replaced at start.
package simwa
