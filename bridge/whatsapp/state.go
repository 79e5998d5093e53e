package whatsapp

import (
	"context"
	"log/slog"
	"time"

	wastore "go.mau.fi/whatsmeow/store"

	"waxmpp/bridge"
)

// Config is what New needs: the parts of the state file the adapter uses,
// each behind an interface of this package (bridge/store implements them;
// cmd/waxmpp wires them), and where its events go.
type Config struct {
	// Devices holds whatsmeow's device store: the linked device's keys,
	// sessions, contacts and the rest of whatsmeow's store interfaces.
	Devices Devices
	// Inbox is the durable queue of converted events on their way to the
	// core (see "Nothing lost" in the package doc).
	Inbox Queue
	// History is the durable queue of history-sync notifications not yet
	// processed.
	History Queue
	// Passkeys says that the caller can answer WhatsApp's passkey
	// requests (PairCode.Passkey; AnswerPasskey): a setup page in a
	// browser. Without it a passkey request ends the pairing attempt
	// with advice.
	Passkeys bool
	// Settings keeps the adapter's few records (web version, phone watch,
	// poll options).
	Settings Settings
	// TempDir is where downloads and history blobs are written while they
	// are decrypted: a directory on disk (on a Pi /tmp may be RAM, and a
	// document reaches 2 GB), private to waxmpp.
	TempDir string
	Log     *slog.Logger
	// Events receives the adapter's events in order; the adapter never
	// blocks whatsmeow on it.
	Events chan<- bridge.Event
}

// Devices is whatsmeow's device container (the part the adapter calls
// itself; whatsmeow reaches the rest through wastore.Device).
type Devices interface {
	// NewDevice makes a fresh, unpaired device with new keys; nothing is
	// stored until whatsmeow saves it at pairing.
	NewDevice() *wastore.Device
	// GetFirstDevice returns the stored device, or a new one if none.
	GetFirstDevice(ctx context.Context) (*wastore.Device, error)
}

// Queue is a durable FIFO: Enqueue returns once the items are on disk
// (one fsync for all of them); items stay until acknowledged, across
// restarts. Safe for concurrent use.
type Queue interface {
	Enqueue(data ...[]byte) ([]uint64, error)
	// Peek returns up to n items with a sequence number above after.
	Peek(after uint64, n int) ([]bridge.QueueItem, error)
	// AckThrough removes every item up to and including seq.
	AckThrough(seq uint64) error
	Len() (int, error)
}

// Settings keeps small named records durably. Safe for concurrent use.
type Settings interface {
	// Blob returns the record name; ok is false when it was never set.
	Blob(name string) (v []byte, ok bool, err error)
	PutBlob(name string, v []byte) error
}

// Settings the adapter keeps.
const (
	settingVersion   = "whatsapp.web_version"     // last web version fetched, "2.3000.1234"
	settingPhoneSeen = "whatsapp.phone_last_seen" // RFC 3339
	settingPhoneAsk  = "whatsapp.phone_last_ask"  // RFC 3339: the last wake-up request
	settingPollPfx   = "whatsapp.poll/"           // + chat/id → JSON option list
)

// timeSetting reads a time kept by putTime.
func (a *Adapter) timeSetting(name string) (time.Time, bool) {
	b, ok, err := a.settings.Blob(name)
	if err != nil || !ok {
		if err != nil {
			a.log.Warn("read setting", "name", name, "err", err)
		}
		return time.Time{}, false
	}
	var t time.Time
	if err := t.UnmarshalText(b); err != nil {
		a.log.Warn("read setting", "name", name, "err", err)
		return time.Time{}, false
	}
	return t, true
}

func (a *Adapter) putTime(name string, t time.Time) error {
	b, err := t.UTC().MarshalText()
	if err != nil {
		return err
	}
	return a.settings.PutBlob(name, b)
}
