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
// other adapter. New never connects. Run fetches WhatsApp's current web version (whatsmeow
// otherwise announces the version it was built with, which WhatsApp refuses
// as "client outdated" after a while), keeps it in the settings and falls
// back to that copy when offline; then it connects, or reports NotPaired.
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
//     the phone watch are tested with a fake client.
//   - pair.go: linking by QR code or link code.
//   - history.go: streamed history-sync parsing.
//
// # Buffering
//
// whatsmeow handles incoming nodes one at a time and calls event handlers
// synchronously. With SynchronousAck, it acknowledges a message to
// WhatsApp only after the handlers returned. The handler here converts the
// event and appends the results to a durable queue in the state file
// (inbox.go: one fsync, shared with concurrent writers; history syncs in
// batches of 256), then returns; if that write fails it reports failure,
// so whatsmeow does not acknowledge and WhatsApp delivers again. One
// goroutine owned by Run delivers the queue to the core's channel in
// order; events leave the disk once the core has handled them (Handled,
// removal batched), so a crash or power cut loses nothing: the rest is
// delivered again at the next start and the core drops what it already
// handled. Network work triggered by events (presence, history downloads,
// reconnects) runs on goroutines Run waits for.
//
// # whatsmeow settings
//
// EnableAutoReconnect and InitialAutoReconnect (whatsmeow reconnects with
// backoff, also when offline at start-up); AutomaticMessageRerequestFromPhone
// (an undecryptable message is also asked from the phone: the owner sees a
// placeholder, then the message with Retry set); UseRetryMessageStore
// (sent messages are kept in bridge/store, which implements whatsmeow's
// outgoing-event store, so retry receipts are answered after a restart);
// ManualHistorySyncDownload (history blobs are streamed here, see below);
// EmitAppStateEventsOnFullSync (the address book's names arrive after
// pairing).
//
// # Identities
//
// WhatsApp moves people from phone-number JIDs to LIDs. Whenever an event
// shows both (SenderAlt, RecipientAlt, PushName.JIDAlt, group participant
// lists, history mappings, app-state contacts), the adapter stores the pair
// in whatsmeow's LID store and emits one bridge.Alias, so the core keeps
// one chat per person. Resolve answers either way. On the first connect of
// a run the adapter also tells every group's name and its members'
// identities (GetJoinedGroups), and the owner's own LID.
//
// # Life events
//
// Told to the owner as bridge.Status in plain words: connected;
// disconnected and reconnecting; keep-alive lost and restored; logged out
// (with WhatsApp's reason; the device's keys are gone and a fresh device is
// prepared, so /pair works again); stream replaced (another process uses
// the same link); client outdated (the web version is fetched again and,
// if it changed, the adapter reconnects); temporary ban (with its end; the
// adapter reconnects then). waxmpp goes "unavailable" on connect so the
// phone keeps notifying.
//
// Phone offline: WhatsApp unlinks companions whose phone has not been
// online for about 14 days. The adapter notes when the phone was last
// active (messages and receipts from the owner's device 0) and keeps it in
// the settings. From day 10 it sends the phone a peer request once a day
// (WhatsApp delivers it by push, which wakes the app); from day 12 it
// reports PhoneOffline, once a day so the day count stays current.
//
// Status.Reason holds WhatsApp's side in a few words ("the device was
// removed from Linked devices on the phone"); the core adds what to do.
//
// # History
//
// After pairing the phone sends the recent history. It is never relayed
// (the owner would be flooded): only names, push names and LID mappings
// are taken from it. RequestHistory asks the phone for older messages of
// one chat (an on-demand history request, a peer message); they come back
// as a history sync whose messages are relayed with History set. A blob is
// downloaded to a temporary file (whatsmeow decrypts it in place) and read
// record by record; a synthetic 50 MB sync peaks at about 40 MB RSS
// (TestHistoryMemory). whatsmeow's own DownloadHistorySync would hold the
// blob several times over.
//
// # Pairing and passkeys
//
// Pair(ctx, "") streams QR codes (PairCode.QR, a new one every 20 s after
// the first minute, until about 160 s); Pair(ctx, "+491701234567") asks
// for an 8-character link code (PairCode.LinkCode) to type on the phone.
// PairResult ends both. WhatsApp can ask a new companion to confirm the
// link with the account's passkey (a WebAuthn assertion for whatsapp.com).
// A headless bridge cannot do that: the attempt ends with a PairResult
// saying so. What to tell the owner: link by scanning the QR code with
// WhatsApp on the phone itself (Settings → Linked devices → Link a device);
// scanning from the phone holding the account is the usual proof of
// possession. Whether WhatsApp still insists on a passkey for QR links
// cannot be checked from here (see Not verified).
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
//  4. The terminal says "Linked. Finishing the first connection…", then
//     "Success: waxmpp is linked to WhatsApp account +<number> (<name>)".
//     The phone lists a new linked device named like "Chrome (Linux)".
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
// "international form" (the number needs + and the country code), "asked
// to confirm this link with your passkey" (use the QR code from the phone).
//
// # Not verified here
//
// WhatsApp's servers cannot be reached from the test environment: the
// real handshake, pairing, link codes, passkey prompts, the peer request
// that wakes the phone, media downloads and history requests were tested
// only against the fake client and whatsmeow's types, never end to end.
package whatsapp
