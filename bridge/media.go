package bridge

import (
	"context"
	"errors"
	"time"
)

// This file holds the domain's side of media: what the core hands the
// WhatsApp side to send, and what WhatsApp answers about media it no
// longer has. Files themselves never pass through the core's goroutine:
// they are temporary files beside the state file, named by path.

// OutMedia is a file the owner sent, prepared for WhatsApp (bridge/media
// decides the kind, converts and measures): what the adapter uploads,
// streamed from Path, and the fields the phone needs to show it. The
// adapter adds what the upload yields (keys, hashes, URLs).
type OutMedia struct {
	Kind     MsgKind // Image, Video, Audio, Voice, Document or Sticker
	Path     string  // the file to upload; the caller removes it
	Size     int64
	MimeType string
	FileName string // documents: the name shown
	Caption  string
	// Width and Height of images, stickers and videos, as shown.
	Width, Height int
	Duration      time.Duration // audio, voice notes and videos
	Thumbnail     []byte        // a small JPEG, for images and videos
	Waveform      []byte        // voice notes: 64 values, 0–100
	GIF           bool          // a video WhatsApp loops without sound (gifPlayback)
}

// MediaRetry is the phone's answer to WhatsApp.RequestMediaRetry: the
// attachment uploaded again (Media, ready to download), or no longer on
// the phone (Media nil, Err saying why in WhatsApp's words).
type MediaRetry struct {
	Ref   MsgRef
	Media *Media
	Err   string
}

func (*MediaRetry) waEvent() {}

// ErrMediaExpired means WhatsApp's servers no longer have an attachment
// (they answer 403, 404 or 410 after some weeks): only the phone may,
// asked with RequestMediaRetry.
var ErrMediaExpired = errors.New("whatsapp: the attachment is no longer on WhatsApp's servers")

// LocalFile is a file in a temporary place beside the state file: a
// download, or what a conversion made of it.
type LocalFile struct {
	Path     string
	Name     string // the name it goes by (a URL's, a document's); may be ""
	MimeType string
	Size     int64
}

// Files is what the core asks of bridge/media: fetching what the owner
// sends and preparing files for the other side. Its methods block
// (network, disk, ffmpeg); the core calls them from its transfer
// goroutines only, several at once, never from its loop.
type Files interface {
	// Temp names a new, empty temporary file beside the state file.
	Temp() (string, error)
	// Fetch downloads the file behind an owner's attachment URL (https;
	// aesgcm:// decrypted and its tag verified) into a temporary file.
	Fetch(ctx context.Context, url string) (LocalFile, error)
	// ForWhatsApp prepares an owner's file: its kind and the fields the
	// phone needs, converting what WhatsApp does not show (a conversion
	// writes a new temporary file: OutMedia.Path, which the caller removes
	// beside f).
	ForWhatsApp(ctx context.Context, f LocalFile) (*OutMedia, error)
	// ForOwner prepares a file from WhatsApp for the owner's client: its
	// name (made safe for a URL, with the extension of its type) and
	// type; a voice note becomes AAC in .m4a when aac is set and a
	// converter is there. The result may be f itself, renamed.
	ForOwner(ctx context.Context, f LocalFile, kind MsgKind, aac bool) (LocalFile, error)
	// Converter says, for /status, what converts voice notes and videos
	// (ffmpeg's version), or that nothing does.
	Converter() string
}

// Upload errors the XMPP side returns (wrapped), which the core tells the
// owner in plain words.
var (
	ErrNoUpload       = errors.New("the XMPP server offers no file upload")
	ErrUploadTooLarge = errors.New("the file is larger than the XMPP server accepts")
	ErrUploadQuota    = errors.New("the XMPP server's upload quota is used up")
)

// ErrFetchTooLarge is a file the owner sent that is over the size limit
// (bridge/media wraps it).
var ErrFetchTooLarge = errors.New("the file is over the size limit")

// ErrNotVerified is an encrypted (aesgcm://) file whose tag does not
// verify: a wrong key, or the file was changed or cut (bridge/media wraps
// it).
var ErrNotVerified = errors.New("the encrypted file does not verify")

// ErrBadURL is an attachment URL waxmpp does not fetch (not https, or
// http off loopback; a redirect to another host).
var ErrBadURL = errors.New("waxmpp fetches only https links")
