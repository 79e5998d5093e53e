package bridge

import (
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
