package media

import (
	"bytes"
	"encoding/binary"
	"errors"
	"path/filepath"
	"testing"
	"time"
)

func TestReadOpus(t *testing.T) {
	got, err := ReadOpus(filepath.Join("testdata", "voice.ogg"))
	if err != nil {
		t.Fatal(err)
	}
	if got.Channels != 1 || got.InputRate != 48000 || got.Duration.Round(10*time.Millisecond) != 2500*time.Millisecond {
		t.Errorf("got %+v, want mono 48 kHz 2.5 s", got)
	}
	for _, name := range []string{"voice.m4a", "photo.jpg"} {
		if _, err := ReadOpus(filepath.Join("testdata", name)); !errors.Is(err, ErrNotOpus) {
			t.Errorf("%s: %v, want ErrNotOpus", name, err)
		}
	}
}

// page builds one Ogg page with a correct checksum.
func page(kind byte, granule uint64, serial uint32, payload []byte) []byte {
	var segs []byte
	n := len(payload)
	for n >= 255 {
		segs = append(segs, 255)
		n -= 255
	}
	segs = append(segs, byte(n))
	b := []byte("OggS\x00")
	b = append(b, kind)
	b = binary.LittleEndian.AppendUint64(b, granule)
	b = binary.LittleEndian.AppendUint32(b, serial)
	b = binary.LittleEndian.AppendUint32(b, 0)
	b = binary.LittleEndian.AppendUint32(b, 0) // checksum
	b = append(b, byte(len(segs)))
	b = append(append(b, segs...), payload...)
	binary.LittleEndian.PutUint32(b[22:], oggCRC(b))
	return b
}

func opusHead(channels byte, preskip uint16) []byte {
	h := []byte("OpusHead\x01")
	h = append(h, channels)
	h = binary.LittleEndian.AppendUint16(h, preskip)
	h = binary.LittleEndian.AppendUint32(h, 16000)
	return append(h, 0, 0, 0)
}

func TestReadOpusSynthetic(t *testing.T) {
	head := page(2, 0, 7, opusHead(2, 312))
	tags := page(0, 0, 7, []byte("OpusTags"))
	// A page of another stream after ours, and one with no packet end.
	last := page(4, 312+48000*3, 7, bytes.Repeat([]byte{1}, 700))
	other := page(4, 999999999, 8, []byte("x"))
	noEnd := page(1, 1<<64-1, 7, []byte("OggS fake inside"))
	file := bytes.Join([][]byte{head, tags, last, noEnd, other}, nil)
	got, err := readOpus(bytes.NewReader(file), int64(len(file)))
	if err != nil {
		t.Fatal(err)
	}
	if got.Duration != 3*time.Second || got.Channels != 2 || got.PreSkip != 312 {
		t.Errorf("got %+v", got)
	}
	// A corrupted checksum on the last page: the one before counts.
	bad := bytes.Clone(file)
	bad[len(head)+len(tags)+30] ^= 0xff
	got, err = readOpus(bytes.NewReader(bad), int64(len(bad)))
	if err != nil || got.Duration != 0 {
		t.Errorf("corrupt last page: %+v %v (want the tags page: duration 0)", got, err)
	}
	for name, f := range map[string][]byte{
		"empty":     nil,
		"no head":   page(2, 0, 1, []byte("OpusHeaX\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00")),
		"no bos":    page(0, 0, 1, opusHead(1, 0)),
		"0 chan":    page(2, 0, 1, opusHead(0, 0)),
		"truncated": head[:20],
		"bad crc":   append(bytes.Clone(head[:len(head)-1]), head[len(head)-1]^1),
	} {
		if _, err := readOpus(bytes.NewReader(f), int64(len(f))); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
