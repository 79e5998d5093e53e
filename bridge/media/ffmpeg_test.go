package media

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"image/jpeg"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// ffmpegForTest is Debian's ffmpeg, which CI installs. Without it the
// test fails: the conversions are part of what waxmpp promises.
func ffmpegForTest(t *testing.T) *FFmpeg {
	t.Helper()
	f, err := FindFFmpeg(context.Background())
	if err != nil {
		t.Fatalf("%v: install Debian's ffmpeg (apt-get install ffmpeg) to run these tests", err)
	}
	return f
}

func TestFindFFmpegAbsent(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	f, err := FindFFmpeg(context.Background())
	if !errors.Is(err, ErrNoFFmpeg) || f != nil {
		t.Fatalf("got %v, %v; want ErrNoFFmpeg", f, err)
	}
	// Absent is a nil *FFmpeg: every conversion says so, nothing panics.
	dst := filepath.Join(t.TempDir(), "x")
	for _, err := range []error{
		f.VoiceNote(context.Background(), DemuxMP4, "testdata/voice.m4a", dst),
		f.M4A(context.Background(), DemuxOgg, "testdata/voice.ogg", dst),
		f.MP4(context.Background(), DemuxGIF, "testdata/anim.gif", dst, true),
		f.Frame(context.Background(), DemuxMP4, "testdata/video.mp4", dst),
	} {
		if !errors.Is(err, ErrNoFFmpeg) {
			t.Errorf("nil FFmpeg: %v", err)
		}
	}
	if _, err := f.Waveform(context.Background(), DemuxOgg, "testdata/voice.ogg"); !errors.Is(err, ErrNoFFmpeg) {
		t.Errorf("nil Waveform: %v", err)
	}
	if f.String() != "not installed" {
		t.Errorf("String: %q", f.String())
	}
}

func TestFFmpegConversions(t *testing.T) {
	f := ffmpegForTest(t)
	if f.String() == "" {
		t.Error("no version")
	}
	ctx := context.Background()
	dir := t.TempDir()

	// An owner's AAC voice message becomes a WhatsApp voice note.
	ogg := filepath.Join(dir, "voice.ogg")
	if err := f.VoiceNote(ctx, DemuxerFor("audio/mp4"), "testdata/voice.m4a", ogg); err != nil {
		t.Fatal(err)
	}
	oi, err := ReadOpus(ogg)
	if err != nil || oi.Channels != 1 || oi.Duration < 1400*time.Millisecond || oi.Duration > 1700*time.Millisecond {
		t.Errorf("voice note: %+v %v", oi, err)
	}
	wf, err := f.Waveform(ctx, DemuxOgg, ogg)
	if err != nil || len(wf) != WaveformSize || bytes.IndexByte(wf, 100) < 0 {
		t.Errorf("waveform: %v %v", wf, err)
	}

	// A WhatsApp voice note becomes AAC for an iOS client.
	m4a := filepath.Join(dir, "voice.m4a")
	if err := f.M4A(ctx, DemuxOgg, "testdata/voice.ogg", m4a); err != nil {
		t.Fatal(err)
	}
	mi, err := ReadMP4(m4a)
	if err != nil || !mi.Audio || mi.Video || mi.AudioCodec != "mp4a" || mi.Brand != "M4A " || !mi.FastStart ||
		mi.Duration < 2400*time.Millisecond || mi.Duration > 2700*time.Millisecond {
		t.Errorf("m4a: %+v %v", mi, err)
	}

	// Videos WhatsApp does not play become H.264 MP4.
	for _, c := range []struct {
		src, mime string
		gif       bool
	}{
		{"testdata/clip.webm", "video/webm", false},
		{"testdata/video.mov", "video/quicktime", false},
		{"testdata/anim.gif", "image/gif", true},
	} {
		out := filepath.Join(dir, filepath.Base(c.src)+".mp4")
		if err := f.MP4(ctx, DemuxerFor(c.mime), c.src, out, c.gif); err != nil {
			t.Errorf("%s: %v", c.src, err)
			continue
		}
		vi, err := ReadMP4(out)
		if err != nil || !vi.Video || vi.VideoCodec != "avc1" || vi.Width == 0 || vi.Width%2 != 0 || vi.Height%2 != 0 ||
			!vi.FastStart || (c.gif && vi.Audio) {
			t.Errorf("%s: %+v %v", c.src, vi, err)
		}
	}

	// A video's thumbnail.
	jpg := filepath.Join(dir, "frame.jpg")
	if err := f.Frame(ctx, DemuxMP4, "testdata/video.mp4", jpg); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(jpg)
	cfg, err := jpeg.DecodeConfig(bytes.NewReader(b))
	if err != nil || cfg.Width != ThumbSize || cfg.Height != 72 {
		t.Errorf("frame: %dx%d %v", cfg.Width, cfg.Height, err)
	}
}

func TestFFmpegNamedDemuxer(t *testing.T) {
	f := ffmpegForTest(t)
	dir := t.TempDir()
	// A "voice note" that is a playlist pointing at a local file is not
	// followed: the demuxer is Ogg, and only Ogg.
	secret := filepath.Join(dir, "secret.ogg")
	os.WriteFile(secret, readTestdata(t, "voice.ogg"), 0o600)
	m3u := filepath.Join(dir, "x.ogg")
	os.WriteFile(m3u, []byte("#EXTM3U\n#EXTINF:1,\nfile:"+secret+"\n"), 0o600)
	if err := f.M4A(context.Background(), DemuxOgg, m3u, filepath.Join(dir, "out.m4a")); err == nil {
		t.Error("ffmpeg read a playlist as a voice note")
	}
	// Cancelled: ends promptly with the context's error.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := f.MP4(ctx, DemuxMP4, "testdata/video.mov", filepath.Join(dir, "o.mp4"), false); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}

func TestWaveform(t *testing.T) {
	// Silence then a loud half: the second half of the waveform is 100.
	var pcm []byte
	for i := range 16000 {
		v := int16(0)
		if i >= 8000 {
			v = 20000
			if i%2 == 0 {
				v = -20000
			}
		}
		pcm = binary.LittleEndian.AppendUint16(pcm, uint16(v))
	}
	levels, err := loudness(bytes.NewReader(pcm), 400, 1000)
	if err != nil || len(levels) != 40 {
		t.Fatalf("levels %d %v", len(levels), err)
	}
	w := waveform(levels)
	if len(w) != WaveformSize || w[0] != 0 || w[31] != 0 || w[32] != 100 || w[63] != 100 {
		t.Errorf("waveform %v", w)
	}
	// Fewer levels than values, none, and folding past the limit.
	if w := waveform([]float64{1, 2}); w[0] != 50 || w[63] != 100 {
		t.Errorf("short: %v", w)
	}
	if w := waveform(nil); len(w) != WaveformSize || w[0] != 0 {
		t.Errorf("empty: %v", w)
	}
	levels, _ = loudness(bytes.NewReader(pcm), 10, 5)
	if len(levels) != 5 || levels[4] < 19999 {
		t.Errorf("folded: %v", levels)
	}
}
