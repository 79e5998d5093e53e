package media

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"waxmpp/bridge"
)

func copyTestdata(t *testing.T, dir, name string) bridge.LocalFile {
	t.Helper()
	b := readTestdata(t, name)
	p := filepath.Join(dir, TempPrefix+name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return bridge.LocalFile{Path: p, Size: int64(len(b))}
}

func TestForOwner(t *testing.T) {
	dir := t.TempDir()
	f := &Files{Fetcher: &Fetcher{Dir: dir}}
	ctx := context.Background()
	for _, c := range []struct {
		file, name, mime string
		kind             bridge.MsgKind
		wantName, want   string
	}{
		{"photo.jpg", "photo_2026-11-22_10-00-00", "image/jpeg", bridge.Image, "photo_2026-11-22_10-00-00.jpg", "image/jpeg"},
		// WhatsApp says JPEG, the bytes say WebP (stickers): the bytes win.
		{"photo.webp", "sticker_1", "image/jpeg", bridge.Sticker, "sticker_1.webp", "image/webp"},
		{"voice.ogg", "voice_1", "audio/ogg; codecs=opus", bridge.Voice, "voice_1.ogg", "audio/ogg; codecs=opus"},
		// An M4A is audio/mp4 even though the bytes say only MP4.
		{"voice.m4a", "audio_1", "audio/mp4", bridge.Audio, "audio_1.m4a", "audio/mp4"},
		{"photo.png", "Scan 3.PNG", "image/png", bridge.Document, "Scan_3.PNG", "image/png"},
		{"photo.jpg", "../x", "", bridge.Document, "x.jpg", "image/jpeg"},
	} {
		in := copyTestdata(t, dir, c.file)
		in.Name, in.MimeType = c.name, c.mime
		out, err := f.ForOwner(ctx, in, c.kind, false)
		if err != nil || out.Name != c.wantName || out.MimeType != c.want || out.Path != in.Path {
			t.Errorf("%s: %+v %v; want %s %s", c.file, out, err, c.wantName, c.want)
		}
	}
	// aac without ffmpeg: as it is.
	in := copyTestdata(t, dir, "voice.ogg")
	in.Name, in.MimeType = "voice_2", "audio/ogg; codecs=opus"
	if out, _ := f.ForOwner(ctx, in, bridge.Voice, true); out.Path != in.Path || out.Name != "voice_2.ogg" {
		t.Errorf("aac without ffmpeg: %+v", out)
	}
	f.FFmpeg = ffmpegForTest(t)
	out, err := f.ForOwner(ctx, in, bridge.Voice, true)
	if err != nil || out.Path == in.Path || out.Name != "voice_2.m4a" || out.MimeType != "audio/mp4" || !strings.HasPrefix(filepath.Base(out.Path), TempPrefix) {
		t.Fatalf("aac: %+v %v", out, err)
	}
	if mi, err := ReadMP4(out.Path); err != nil || mi.AudioCodec != "mp4a" {
		t.Errorf("aac file: %+v %v", mi, err)
	}
}

func TestForWhatsAppDocuments(t *testing.T) {
	dir := t.TempDir()
	f := &Files{Fetcher: &Fetcher{Dir: dir}}
	// Bytes that are no image, though the name says PNG: a document.
	p := filepath.Join(dir, TempPrefix+"x")
	os.WriteFile(p, []byte("not a png"), 0o600)
	out, err := f.ForWhatsApp(context.Background(), bridge.LocalFile{Path: p, Name: "Plan\x00 B.png", MimeType: "image/png", Size: 9})
	if err != nil || out.Kind != bridge.Document || out.FileName != "Plan B.png" || out.Path != p {
		t.Errorf("broken png: %+v %v", out, err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, TempPrefix+"*")); len(left) != 1 {
		t.Errorf("a failed conversion left %v", left)
	}
	out, _ = f.ForWhatsApp(context.Background(), bridge.LocalFile{Path: p, Name: "", MimeType: "application/pdf", Size: 9})
	if out.FileName != "file.pdf" {
		t.Errorf("nameless document %q", out.FileName)
	}
	if out, _ := f.ForWhatsApp(context.Background(), bridge.LocalFile{Path: p, MimeType: "audio/mpeg", Size: 9}); out.Kind != bridge.Audio || out.FileName != "" {
		t.Errorf("mp3: %+v", out)
	}
}
