// Package whatsapp is the real WhatsApp side of waxmpp: go.mau.fi/whatsmeow
// linked to the owner's account as a companion device (like WhatsApp Web),
// speaking the domain's types (bridge.WhatsApp, bridge.Event).
//
// # Wiring
//
//	wa, err := whatsapp.New(ctx, cfg) // loads the linked device, if any
//	go wa.Run(ctx)                    // connects; returns nil when ctx ends
//
// Config holds the parts of the state file the adapter uses, each behind
// a small interface of this package (Devices, Queue, Settings), which
// bridge/store implements and cmd/waxmpp wires; the adapter imports no
// other adapter. New never connects. Run fetches WhatsApp's current web
// version (whatsmeow otherwise announces the version it was built with,
// which WhatsApp refuses as "client outdated" after a while), keeps it in
// the settings and falls back to that copy when offline; then it
// connects, or reports NotPaired.
//
// # Files
//
//   - convert.go: whatsmeow events → domain events. Pure: everything beyond
//     the event (own JID, message-secret decryption, poll options) comes
//     through small interfaces. Golden-tested on real whatsmeow protobufs
//     (testdata/convert/*.pb.json) and fuzzed (FuzzConvert).
//   - send.go: domain sends → waE2E messages, built with whatsmeow's own
//     BuildEdit, BuildRevoke and BuildReaction (goldens in testdata/send).
//   - adapter.go: life cycle over a narrow seam (the client interface, the
//     subset of *whatsmeow.Client used), so that pairing, logout, bans and
//     the phone watch are tested with a fake client; phone.go: the phone
//     watch.
//   - pair.go: linking by QR code or link code, and passkeys.
//   - history.go: streamed history-sync parsing; historysync.go: the queue
//     of history notifications and what is stored from them.
//   - inbox.go, eventcodec.go: the durable queue of events for the core and
//     its record format.
//
// The tests drive a real *whatsmeow.Client on the bbolt store: messages
// encrypted with Signal by a second whatsmeow device, fed to whatsmeow's
// own message handler as its socket would (real_test.go).
//
// # Nothing lost
//
// whatsmeow handles incoming nodes one at a time and calls event handlers
// synchronously. With SynchronousAck, it acknowledges a message to
// WhatsApp only after the handlers returned. The handler converts the
// event and appends the results to a durable queue in the state file
// (inbox.go: one fsync, shared with concurrent writers; history syncs in
// batches of 256), then returns; if that write fails it reports failure
// (only its own writes count, not a history batch failing meanwhile), so
// whatsmeow does not acknowledge and WhatsApp delivers the message again.
// By then the Signal session has moved on, so the redelivery would not
// decrypt: whatsmeow's decrypted-event buffer (EnableDecryptedEventBuffer,
// on bridge/store's event buffer) keeps each plaintext, committed together
// with the session that decrypted it, until the handler succeeded. The
// same covers a crash or power cut between decryption and the inbox's
// fsync. The store clears a handled plaintext with its next commit (the
// core's batch), not with one of its own: after a crash before that, a
// message WhatsApp delivers again is queued again and the core drops it
// by its WhatsApp id (TestRedeliveryAfterLostClear; a lone message costs
// 4 commits, TestLoneMessageCommits). One goroutine owned by Run delivers the inbox to the core's
// channel in order; events leave the disk once the core has handled them
// (Handled, removal batched), so after a crash the rest is delivered again
// and the core drops what it already handled. Network work triggered by
// events (presence, history downloads, reconnects) runs on goroutines Run
// waits for.
//
// # whatsmeow settings
//
// SynchronousAck and EnableDecryptedEventBuffer (above);
// EnableAutoReconnect and InitialAutoReconnect (whatsmeow reconnects with
// backoff, also when offline at start-up); AutomaticMessageRerequestFromPhone
// (an undecryptable message is also asked from the phone: the owner sees a
// placeholder, then the message with Retry set); UseRetryMessageStore
// (sent messages are kept in bridge/store, which implements whatsmeow's
// outgoing-event store, so retry receipts are answered after a restart);
// ManualHistorySyncDownload and DisableManualHistorySyncReceipt (history
// blobs are queued and streamed here, see History);
// EmitAppStateEventsOnFullSync (the address book's names arrive after
// pairing); SendReportingTokens (sent messages carry reporting tokens, as
// WhatsApp's own clients and mautrix-whatsapp send them).
//
// The phone lists the device as "waxmpp" on a computer (whatsmeow's
// DeviceProps: Os "waxmpp", platform DESKTOP), and the device asks for the
// history waxmpp uses after pairing (30 days, 50 messages a chat, a 256 MB
// quota) instead of whatsmeow's default (a 10 GB quota, no day limit).
//
// # Identities
//
// WhatsApp moves people from phone-number JIDs to LIDs. Whenever an event
// from WhatsApp's servers shows both (SenderAlt, RecipientAlt,
// PushName.JIDAlt, group participant lists, app-state contacts), the
// adapter stores the pair in whatsmeow's LID store and emits one
// bridge.Alias, so the core keeps one chat per person. Resolve answers
// either way. On the first connect of each linked device the adapter also
// tells every group's name and its members' identities
// (GetJoinedGroups), and the owner's own LID.
//
// # Life events
//
// Told to the owner as bridge.Status in plain words: connected;
// disconnected and reconnecting; keep-alive lost and restored; logged out
// (with WhatsApp's reason: 401 unlinked on the phone, 403 "locked", which
// whatsmeow sees after bans and after WhatsApp moved to another phone; the
// device's keys are gone and a fresh device is prepared, so /pair works
// again); banned (406, "BANNED" in WhatsApp Web's code: Status Banned,
// /pair cannot help until WhatsApp lifts it); stream replaced (another
// process uses the same link); client outdated (whatsmeow turns a 405
// into its own event; the web version is fetched again and, if it
// changed, the adapter reconnects); temporary ban (with its end; the
// adapter reconnects then). A logout that waxmpp itself started is told
// once, even when whatsmeow reports it too. waxmpp goes "unavailable" on
// connect, and again when the owner's push name arrives after pairing
// (PushNameSetting, the critical app-state sync): whatsmeow sends presence
// only with a push name, and presence is how WhatsApp learns the name
// others see; "unavailable" keeps the phone notifying.
//
// Phone offline: WhatsApp unlinks companions whose phone has not been
// online for about 14 days. The adapter notes when the phone was last
// active (messages and receipts from the owner's device 0) and keeps it in
// the settings. From day 10 it sends the phone a peer request once a day
// (WhatsApp delivers it by push, which wakes the app), only once logged in
// (a request that could not be sent is tried again at the next check);
// from day 12 it reports PhoneOffline, once a day so the day count stays
// current. Status.Reason holds WhatsApp's side in a few words; the core
// adds what to do.
//
// Contacts' presence is not subscribed: the core shows none (the bot's
// presence is the bridge's health light), and WhatsApp sends presence
// only to a client that is itself online, which would silence the phone.
//
// # History
//
// After pairing the phone sends the recent history, in parts, each as a
// HistorySyncNotification in a peer message. Anyone can send such a
// message (with an inline payload and a sync type of their choosing), so
// the adapter takes it only from the owner's phone (device 0 of the
// owner's own account, not a group): a forged one could inject "history",
// rename contacts and rewrite LID mappings, so that the owner's next
// message to a number would be encrypted for the forger. A mapping in the
// phone's own history never replaces a different known one either (logged
// as a conflict).
//
// A notification is on disk (Config.History) before the phone gets its
// receipt: the phone never sends a receipted one again. One goroutine
// processes them one at a time, once logged in: the blob is downloaded to
// a temporary file
// (whatsmeow decrypts it in place), read record by record (a synthetic
// 50 MB sync peaks at about 40 MB RSS, TestHistoryMemory; whatsmeow's own
// DownloadHistorySync would hold the blob several times over), then
// deleted from WhatsApp's media servers. From it the adapter stores what
// DownloadHistorySync would have stored (TestHistoryStoresWhatWhatsmeowStores
// compares the two): message secrets (votes, edits and encrypted
// reactions on older messages decrypt with them), privacy tokens (sends
// to existing contacts may be refused without them), the NCT salt, push
// names, LID mappings (numbers on the legacy c.us server included), the
// LID migration time and the companion meta nonce. The initial syncs are
// not relayed (the owner would be flooded): the core gets names and
// identities. RequestHistory asks the phone for older messages of one
// chat; they come back as an on-demand sync relayed with History set.
//
// After linking, InitialSync (waxmpp pair) waits until the offline
// messages, the critical app state and the history have arrived.
//
// # Pairing and passkeys
//
// Pair(ctx, "") streams QR codes (PairCode.QR, a new one every 20 s after
// the first minute, until about 160 s); Pair(ctx, "+491701234567") asks
// for an 8-character link code (PairCode.LinkCode) to type on the phone.
// PairResult ends both. Pairing without a network ends with "could not
// reach WhatsApp", a refused link code says whether WhatsApp rate-limited
// it.
//
// WhatsApp can ask a new companion to confirm the link with the account's
// passkey: whatsmeow (at the pinned version) supports the whole exchange
// (PairPasskeyRequest with WebAuthn request options for relying party
// whatsapp.com, SendPasskeyResponse, the confirmation). Only a browser can
// produce the assertion, and only on a whatsapp.com page: WebAuthn binds
// it to the relying party, so waxmpp's own setup page cannot answer either
// (setup/web's TestPasskeyNotFromThisPage shows Chromium refusing it).
// Config.Passkeys (the request goes out as PairCode.Passkey, JSON, and the
// attempt waits for AnswerPasskey with the assertion) is for a front end
// that can get an assertion made on such a page; none of waxmpp's does, so
// the attempt ends with advice: the other way of linking (WhatsApp chooses
// per way of linking when to ask).
//
// # Try it with your phone
//
//  1. Stop the daemon if it runs: sudo systemctl stop waxmpp.
//  2. Run sudo -u waxmpp waxmpp pair. A QR code appears in the terminal,
//     with "Code 1, valid for 60s"; it is redrawn every 20 seconds.
//  3. On the phone: WhatsApp → Settings → Linked devices → Link a device,
//     and scan the code. (No camera at hand? Run waxmpp pair --phone
//     +<your number>: it prints a code like ABCD-EFGH; on the phone choose
//     "Link with phone number instead" and type it. WhatsApp also shows a
//     notification on the phone for it.)
//  4. The terminal says "Linked. Receiving your chats and contacts…",
//     shows the sync's steps, then "Success: waxmpp is linked to WhatsApp
//     account +<number>". The phone lists a new linked device "waxmpp".
//  5. Start the daemon: sudo systemctl start waxmpp. The bot turns
//     available in your XMPP client. Old chats are not replayed.
//  6. Have someone write to you on WhatsApp: the bot relays "*Name*: text".
//     Answer in the bot chat; the message appears on the phone as sent by
//     you, and the other person sees it from you.
//  7. Over XMPP instead of a terminal: send /pair (or /pair +<number>) to
//     the bot while it shows "dnd, send /pair"; it answers with the QR
//     code image or the link code, then "linked".
//
// If linking fails: "no QR code was scanned in time" (run it again),
// "international form" (the number needs + and the country code),
// "could not reach WhatsApp" (the network), "too many were asked for"
// (wait, or use the QR code), "asked to confirm this link with your
// passkey" (the other way of linking: a link code after a QR code, a QR
// code after a link code).
//
// # Seen and inferred
//
// WhatsApp's servers cannot be reached from the test environment. Seen
// (run here, with whatsmeow's own code on both sides): Signal encryption
// and decryption, the event buffer's redelivery after a failed write and
// after a crash, history notifications from others and from the phone,
// whatsmeow's history storage compared with the adapter's, its app-state
// push-name event, its connect-failure handling (401, 403, 406, 405), its
// encrypted reactions, its QR channel offline and with a passkey request.
// Inferred from whatsmeow's code and mautrix-whatsapp, not seen against
// WhatsApp: that history notifications come only from device 0; that the
// phone honours the history limits in DeviceProps and shows "waxmpp" on a
// computer icon; that a late edit is silently ignored; that waiting for
// critical_block and critical_unblock_low covers what the phone sends
// after pairing; what WhatsApp's passkey handoff shows the owner; that a
// 429 is how WhatsApp rate-limits link codes; that the wake-up peer
// request reaches the phone by push; media downloads and on-demand history
// requests end to end.
package whatsapp
