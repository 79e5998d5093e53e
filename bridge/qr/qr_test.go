package qr

import (
	"bytes"
	"image/png"
	"strings"
	"testing"
)

// TestPNG: a pairing code's content (the shape whatsmeow emits: ref,
// keys, adv secret, comma-separated) renders as a PNG whose size is a
// whole number of modules with the quiet zone, small enough to upload.
func TestPNG(t *testing.T) {
	text := "2@" + strings.Repeat("A", 80) + "," + strings.Repeat("b", 44) + "," + strings.Repeat("c", 44) + "," + strings.Repeat("d", 44)
	b, err := PNG(text)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	w := img.Bounds().Dx()
	if w != img.Bounds().Dy() || w%Scale != 0 {
		t.Errorf("image %v, want a square of %d-pixel modules", img.Bounds(), Scale)
	}
	if len(b) > 16<<10 {
		t.Errorf("PNG is %d bytes, want a small upload", len(b))
	}
}

// TestPNGTooLong: content beyond a QR code's capacity is an error, not a
// panic.
func TestPNGTooLong(t *testing.T) {
	if _, err := PNG(strings.Repeat("x", 5000)); err == nil {
		t.Error("PNG of 5000 bytes succeeded")
	}
}
