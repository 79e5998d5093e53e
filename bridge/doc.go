// Package bridge is waxmpp's domain and core: the types that describe chats,
// messages, contacts and events, the engine that routes them between
// WhatsApp and the owner's XMPP account, the owner's commands, the typed
// configuration, and the small interfaces the core consumes.
//
// It imports no protocol or storage library. The adapters live in
// subpackages named after what they wrap: bridge/whatsapp (whatsmeow),
// bridge/xmpp (go-xmpp) and bridge/store (bbolt). They speak this package's
// types and never import each other; cmd/waxmpp wires them together.
package bridge
