package media

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestReadMP4(t *testing.T) {
	for _, c := range []struct {
		name string
		want MP4Info
	}{
		{"video.mp4", MP4Info{Brand: "isom", Duration: 2 * time.Second, Video: true, Audio: true, Width: 64, Height: 48,
			VideoCodec: "avc1", AudioCodec: "mp4a", Channels: 1, SampleRate: 44100, FastStart: true}},
		{"video.mov", MP4Info{Brand: "qt  ", Duration: time.Second, Video: true, Width: 64, Height: 48, VideoCodec: "avc1"}},
		{"video_rot.mp4", MP4Info{Brand: "isom", Duration: time.Second, Video: true, Width: 48, Height: 64, VideoCodec: "avc1"}},
		{"voice.m4a", MP4Info{Brand: "M4A ", Audio: true, AudioCodec: "mp4a", Channels: 1, SampleRate: 22050}},
	} {
		got, err := ReadMP4(filepath.Join("testdata", c.name))
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if c.name == "voice.m4a" {
			// AAC priming: 1.5 s of sound is a little more in the file.
			if got.Duration < 1500*time.Millisecond || got.Duration > 1600*time.Millisecond {
				t.Errorf("%s: duration %v, want about 1.5s", c.name, got.Duration)
			}
			c.want.Duration, c.want.FastStart = got.Duration, got.FastStart
		}
		if c.name == "video.mov" || c.name == "video_rot.mp4" {
			c.want.FastStart = got.FastStart
		}
		if got != c.want {
			t.Errorf("%s:\n got %+v\nwant %+v", c.name, got, c.want)
		}
	}
	for _, name := range []string{"voice.ogg", "photo.jpg", "clip.webm"} {
		if _, err := ReadMP4(filepath.Join("testdata", name)); !errors.Is(err, ErrNotMP4) {
			t.Errorf("%s: err %v, want ErrNotMP4", name, err)
		}
	}
}

// box builds an MP4 box.
func box(typ string, payload ...[]byte) []byte {
	body := bytes.Join(payload, nil)
	b := binary.BigEndian.AppendUint32(nil, uint32(8+len(body)))
	return append(append(b, typ...), body...)
}

func TestReadMP4Synthetic(t *testing.T) {
	mvhd1 := make([]byte, 4+28)
	mvhd1[0] = 1 // version 1: 64-bit times
	binary.BigEndian.PutUint32(mvhd1[4+16:], 1000)
	binary.BigEndian.PutUint64(mvhd1[4+20:], 90500)
	// moov after mdat, mdat with a 64-bit size.
	mdat := append(binary.BigEndian.AppendUint32(nil, 1), "mdat"...)
	mdat = binary.BigEndian.AppendUint64(mdat, 16+3)
	mdat = append(mdat, 1, 2, 3)
	file := bytes.Join([][]byte{box("ftyp", []byte("mp42\x00\x00\x00\x00")), mdat, box("moov", box("mvhd", mvhd1))}, nil)
	got, err := readMP4(bytes.NewReader(file), int64(len(file)))
	if err != nil {
		t.Fatal(err)
	}
	if got.Duration != 90500*time.Millisecond || got.FastStart || got.Brand != "mp42" {
		t.Errorf("got %+v", got)
	}
	// Broken files are errors, never panics.
	for name, f := range map[string][]byte{
		"empty":       nil,
		"no moov":     box("ftyp", []byte("isom")),
		"bad size":    append(box("ftyp", []byte("isom")), 0, 0, 0, 3, 'm', 'o', 'o', 'v'),
		"overrun":     append(box("ftyp", []byte("isom")), 0, 0, 1, 0, 'm', 'o', 'o', 'v'),
		"short mvhd":  box("moov", box("mvhd", []byte{0, 0, 0, 0, 1})),
		"not mp4":     []byte("hello, world, this is text"),
		"short large": append(binary.BigEndian.AppendUint32(nil, 1), "moov"...),
	} {
		if _, err := readMP4(bytes.NewReader(f), int64(len(f))); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestReadMP4ManyBoxes(t *testing.T) {
	var b []byte
	b = append(b, box("ftyp", []byte("isom"))...)
	for range maxBoxes + 10 {
		b = append(b, box("free")...)
	}
	if _, err := readMP4(bytes.NewReader(b), int64(len(b))); err == nil {
		t.Error("no error for a flood of boxes")
	}
}

func TestDuration(t *testing.T) {
	for _, c := range []struct {
		units, scale uint64
		want         time.Duration
	}{
		{48000, 48000, time.Second}, {1, 3, 333333333}, {0, 1000, 0}, {5, 0, 0},
		{1<<32 - 1, 1000, 0}, {1<<64 - 1, 1, 0}, {1 << 62, 1, 0},
	} {
		if got := duration(c.units, c.scale); got != c.want {
			t.Errorf("duration(%d, %d) = %v, want %v", c.units, c.scale, got, c.want)
		}
	}
}

func readTestdata(t testing.TB, name string) []byte {
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
