package media

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"strings"
	"unicode"

	"waxmpp/bridge"
)

// Files is the core's bridge.Files: the downloader, the converters and
// the decisions which WhatsApp message a file becomes.
type Files struct {
	Fetcher *Fetcher // its Dir is where every temporary file goes
	FFmpeg  *FFmpeg  // nil: not installed
	Log     *slog.Logger
}

var _ bridge.Files = (*Files)(nil)

// WhatsApp's limits for showing a file as what it is; larger files go as
// documents (which reach 2 GB).
const (
	maxImage = 16 << 20
	maxVideo = 64 << 20
)

// Temp implements bridge.Files.
func (f *Files) Temp() (string, error) {
	t, err := NewTemp(f.Fetcher.Dir)
	if err != nil {
		return "", err
	}
	name := t.Name()
	if err := t.Close(); err != nil {
		os.Remove(name)
		return "", err
	}
	return name, nil
}

// Fetch implements bridge.Files.
func (f *Files) Fetch(ctx context.Context, url string) (bridge.LocalFile, error) {
	got, err := f.Fetcher.Fetch(ctx, url)
	if err != nil {
		return bridge.LocalFile{}, err
	}
	return bridge.LocalFile{Path: got.Path, Name: got.Name, MimeType: got.Type, Size: got.Size}, nil
}

// Converter implements bridge.Files.
func (f *Files) Converter() string {
	if f.FFmpeg == nil {
		return ""
	}
	return f.FFmpeg.String()
}

// ForWhatsApp implements bridge.Files. What each type becomes:
//
//   - JPEG: a photo as it is; PNG and WebP: a photo, converted to JPEG
//     (pure Go); an animated WebP, or one that does not decode: a document.
//   - GIF: with ffmpeg an H.264 video WhatsApp loops (gifPlayback), else a
//     document. MP4: a video as it is. MOV, WebM, Matroska: with ffmpeg an
//     H.264 MP4 video, else a document.
//   - M4A/AAC: clients record voice messages so (mono). With ffmpeg a
//     mono voice message (a stereo file stays audio) becomes an Ogg/Opus
//     voice note with a waveform; without, an audio file with its duration
//     from the MP4 header. Ogg/Opus: a voice note as it is.
//   - Other audio: an audio file. Everything else: a document with its
//     name.
//
// Photos and videos carry width, height and a JPEG thumbnail (a video's
// only with ffmpeg); audio and video their duration.
func (f *Files) ForWhatsApp(ctx context.Context, in bridge.LocalFile) (*bridge.OutMedia, error) {
	out := &bridge.OutMedia{Kind: bridge.Document, Path: in.Path, Size: in.Size, MimeType: in.MimeType, FileName: displayName(in.Name, in.MimeType)}
	mt := BaseType(in.MimeType)
	var err error
	switch {
	case mt == "image/jpeg" && in.Size <= maxImage:
		err = f.photo(out, in)
	case (mt == "image/png" || mt == "image/webp") && in.Size <= maxImage:
		err = f.toJPEG(out, in)
	case mt == "image/gif" && f.FFmpeg != nil:
		err = f.video(ctx, out, in, true)
	case mt == "video/mp4" && in.Size <= maxVideo:
		err = f.mp4(ctx, out, in.Path)
		out.Kind = bridge.Video
	case (mt == "video/quicktime" || mt == "video/webm" || mt == "video/x-matroska" || mt == "video/3gpp") && f.FFmpeg != nil && in.Size <= maxVideo:
		err = f.video(ctx, out, in, false)
	case mt == "audio/mp4" || mt == "audio/aac":
		err = f.aac(ctx, out, in)
	case mt == "audio/ogg":
		f.opus(ctx, out, in)
	case strings.HasPrefix(mt, "audio/"):
		out.Kind = bridge.Audio
	}
	if err != nil {
		// Not what it said it was, or a conversion failed: the file
		// still goes, as a document.
		f.log().Info("media sent as a document", "type", mt, "err", err)
		f.removeOutput(out, in)
		out = &bridge.OutMedia{Kind: bridge.Document, Path: in.Path, Size: in.Size, MimeType: in.MimeType, FileName: displayName(in.Name, in.MimeType)}
	}
	if out.Kind != bridge.Document {
		out.FileName = ""
	}
	return out, nil
}

func (f *Files) log() *slog.Logger {
	if f.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return f.Log
}

// removeOutput removes a conversion's output that will not be sent.
func (f *Files) removeOutput(out *bridge.OutMedia, in bridge.LocalFile) {
	if out.Path != in.Path {
		os.Remove(out.Path)
	}
}

func (f *Files) photo(out *bridge.OutMedia, in bridge.LocalFile) error {
	info, thumb, err := Thumbnail(in.Path)
	if errors.Is(err, ErrTooManyPixels) {
		err = nil // a photo all the same, without a thumbnail
	}
	if err != nil {
		return err
	}
	out.Kind, out.MimeType = bridge.Image, "image/jpeg"
	out.Width, out.Height, out.Thumbnail = info.Width, info.Height, thumb
	return nil
}

func (f *Files) toJPEG(out *bridge.OutMedia, in bridge.LocalFile) error {
	dst, err := f.Temp()
	if err != nil {
		return err
	}
	out.Path = dst
	info, thumb, err := ToJPEG(dst, in.Path)
	if err != nil {
		return err
	}
	st, err := os.Stat(dst)
	if err != nil {
		return err
	}
	out.Kind, out.MimeType, out.Size = bridge.Image, "image/jpeg", st.Size()
	out.Width, out.Height, out.Thumbnail = info.Width, info.Height, thumb
	return nil
}

// video converts in to H.264 MP4 with ffmpeg.
func (f *Files) video(ctx context.Context, out *bridge.OutMedia, in bridge.LocalFile, gif bool) error {
	dst, err := f.Temp()
	if err != nil {
		return err
	}
	out.Path = dst
	if err := f.FFmpeg.MP4(ctx, DemuxerFor(in.MimeType), in.Path, dst, gif); err != nil {
		return err
	}
	st, err := os.Stat(dst)
	if err != nil {
		return err
	}
	out.Kind, out.MimeType, out.Size, out.GIF = bridge.Video, "video/mp4", st.Size(), gif
	return f.mp4(ctx, out, dst)
}

// mp4 fills a video's fields from its header, and its thumbnail from its
// first frame (with ffmpeg).
func (f *Files) mp4(ctx context.Context, out *bridge.OutMedia, path string) error {
	info, err := ReadMP4(path)
	if err != nil {
		return err
	}
	if !info.Video {
		return errors.New("media: an MP4 without video")
	}
	out.MimeType, out.Width, out.Height, out.Duration = "video/mp4", info.Width, info.Height, info.Duration
	if f.FFmpeg == nil {
		return nil
	}
	frame, err := f.Temp()
	if err != nil {
		return nil
	}
	defer os.Remove(frame)
	if err := f.FFmpeg.Frame(ctx, DemuxMP4, path, frame); err != nil {
		f.log().Info("no video thumbnail", "err", err)
		return nil
	}
	if b, err := os.ReadFile(frame); err == nil && len(b) < 64<<10 {
		out.Thumbnail = b
	}
	return nil
}

// aac makes a voice note of a mono AAC recording (with ffmpeg), else an
// audio file.
func (f *Files) aac(ctx context.Context, out *bridge.OutMedia, in bridge.LocalFile) error {
	out.Kind = bridge.Audio
	info, err := ReadMP4(in.Path)
	if err == nil {
		out.Duration = info.Duration
		if info.Video {
			return errors.New("media: an audio file with video")
		}
	} else if BaseType(in.MimeType) == "audio/mp4" {
		return err
	}
	if f.FFmpeg == nil || info.Channels > 1 {
		return nil
	}
	dst, err := f.Temp()
	if err != nil {
		return err
	}
	if err := f.FFmpeg.VoiceNote(ctx, DemuxerFor(in.MimeType), in.Path, dst); err != nil {
		os.Remove(dst)
		f.log().Info("voice message sent as an audio file", "err", err)
		return nil
	}
	oi, err := ReadOpus(dst)
	st, serr := os.Stat(dst)
	if err != nil || serr != nil {
		os.Remove(dst)
		return nil
	}
	out.Kind, out.Path, out.Size, out.MimeType, out.Duration = bridge.Voice, dst, st.Size(), "audio/ogg; codecs=opus", oi.Duration
	out.Waveform = f.waveform(ctx, dst)
	return nil
}

// opus makes a voice note of an Ogg/Opus file (an Ogg of another codec is
// an audio file).
func (f *Files) opus(ctx context.Context, out *bridge.OutMedia, in bridge.LocalFile) {
	out.Kind = bridge.Audio
	info, err := ReadOpus(in.Path)
	if err != nil {
		return
	}
	out.Kind, out.MimeType, out.Duration = bridge.Voice, "audio/ogg; codecs=opus", info.Duration
	out.Waveform = f.waveform(ctx, in.Path)
}

func (f *Files) waveform(ctx context.Context, path string) []byte {
	if f.FFmpeg == nil {
		return nil
	}
	w, err := f.FFmpeg.Waveform(ctx, DemuxOgg, path)
	if err != nil {
		f.log().Info("no waveform", "err", err)
		return nil
	}
	return w
}

// ForOwner implements bridge.Files: the name gets the extension of the
// type the bytes say (WhatsApp's mimetype is the sender's word), and with
// aac an Opus voice note becomes AAC in .m4a (with ffmpeg).
func (f *Files) ForOwner(ctx context.Context, in bridge.LocalFile, kind bridge.MsgKind, aac bool) (bridge.LocalFile, error) {
	out := in
	if head, err := readHead(in.Path); err == nil {
		// The bytes' type where they tell another than WhatsApp's (the
		// sender's word: stickers come as "image/jpeg" WebP files),
		// except within the MP4 family, where the bytes tell only the
		// container (an M4A is audio/mp4).
		bt, st := BaseType(in.MimeType), Sniff(head)
		if st != "" && st != bt && !(isoFamily(bt) && isoFamily(st)) {
			out.MimeType = st
		}
	}
	if BaseType(out.MimeType) == "" {
		out.MimeType = "application/octet-stream"
	}
	if aac && f.FFmpeg != nil && BaseType(out.MimeType) == "audio/ogg" && (kind == bridge.Voice || kind == bridge.Audio) {
		dst, err := f.Temp()
		if err != nil {
			return bridge.LocalFile{}, err
		}
		if err := f.FFmpeg.M4A(ctx, DemuxOgg, in.Path, dst); err != nil {
			os.Remove(dst)
			f.log().Warn("voice note relayed as Ogg/Opus: conversion failed", "err", err)
		} else if st, err := os.Stat(dst); err == nil {
			out = bridge.LocalFile{Path: dst, Name: strings.TrimSuffix(in.Name, ".ogg"), MimeType: "audio/mp4", Size: st.Size()}
		}
	}
	out.Name = SafeName(out.Name, out.MimeType)
	return out, nil
}

func readHead(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := make([]byte, 512)
	n, err := f.Read(b)
	if n == 0 && err != nil {
		return nil, err
	}
	return b[:n], nil
}

// displayName is the name WhatsApp shows for a document: the owner's own
// (from the upload's URL), without control characters or path parts, not
// longer than 120 characters; "file" with the type's extension when there
// is none.
func displayName(name, mt string) string {
	name = strings.Map(func(r rune) rune {
		if r == '/' || r == '\\' || unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return -1
		}
		return r
	}, name)
	name = strings.TrimSpace(name)
	if r := []rune(name); len(r) > 120 {
		name = string(r[:120])
	}
	if name == "" || name == "." || name == ".." {
		return SafeName("", mt)
	}
	return name
}

func isoFamily(mt string) bool {
	switch mt {
	case "video/mp4", "audio/mp4", "video/quicktime", "video/3gpp":
		return true
	}
	return false
}
