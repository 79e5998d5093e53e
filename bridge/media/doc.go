// Package media prepares the files waxmpp relays between WhatsApp and the
// owner's XMPP client: it tells their kind from their type, names them for
// a URL, converts what the other side cannot show (PNG and WebP photos to
// JPEG; with ffmpeg, voice notes and videos), reads what WhatsApp wants to
// know of a file (width and height, a small JPEG thumbnail, the duration of
// MP4/M4A and Ogg/Opus files, a voice note's waveform), and downloads what
// the owner sends (https, and XEP-0454 aesgcm:// with its tag verified).
//
// Everything is streamed through temporary files in one directory, the
// one beside the state file: /tmp may be RAM on a Raspberry Pi, whose
// Zero 2 W has 512 MB in all, and a WhatsApp document may reach 2 GB.
// Only images are decoded in memory (to convert them or draw a thumbnail),
// and only up to MaxPixels.
//
// ffmpeg is optional. FindFFmpeg looks for it once, at start-up; without it
// (a nil *FFmpeg) every conversion that needs it answers ErrNoFFmpeg and the
// caller sends the file as it is.
//
// The parsers (MP4 boxes, Ogg pages, image headers, aesgcm:// URLs) read
// files from anyone: they never panic, bound what they read, and are
// fuzzed.
package media
