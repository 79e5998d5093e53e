package media

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

var fuzzFiles = []string{"video.mp4", "video.mov", "video_rot.mp4", "voice.m4a", "voice.ogg", "photo.jpg", "photo.png", "photo.webp", "anim.gif", "clip.webm"}

func addFiles(f *testing.F) {
	for _, n := range fuzzFiles {
		b, err := os.ReadFile(filepath.Join("testdata", n))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

func FuzzReadMP4(f *testing.F) {
	addFiles(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		info, err := readMP4(bytes.NewReader(b), int64(len(b)))
		if err == nil && (info.Duration < 0 || info.Channels < 0 || info.Width < 0) {
			t.Errorf("nonsense: %+v", info)
		}
	})
}

func FuzzReadOpus(f *testing.F) {
	addFiles(f)
	f.Add(page(2, 0, 7, opusHead(2, 312)))
	f.Fuzz(func(t *testing.T, b []byte) {
		info, err := readOpus(bytes.NewReader(b), int64(len(b)))
		if err == nil && (info.Duration < 0 || info.Channels <= 0) {
			t.Errorf("nonsense: %+v", info)
		}
	})
}

func FuzzImage(f *testing.F) {
	addFiles(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		img, info, err := decodeFrom(bytes.NewReader(b))
		if err != nil {
			return
		}
		thumb, err := thumbnail(img)
		if err != nil || info.Width <= 0 || len(thumb) == 0 {
			t.Errorf("thumbnail of %+v: %d bytes, %v", info, len(thumb), err)
		}
		Sniff(b)
	})
}

func FuzzSafeName(f *testing.F) {
	for _, s := range []string{"Report 2024.PDF", "../../x", "名前.jpg", "a\x00b", ".", "x.tar.gz", "\u202e.exe"} {
		f.Add(s, "application/pdf")
		f.Add(s, "")
	}
	f.Fuzz(func(t *testing.T, name, mt string) {
		got := SafeName(name, mt)
		if got == "" || !utf8.ValidString(got) || strings.HasPrefix(got, ".") || strings.HasPrefix(got, "-") {
			t.Fatalf("SafeName(%q, %q) = %q", name, mt, got)
		}
		for _, r := range got {
			if !(unicode.IsLetter(r) || unicode.IsDigit(r) || r == '_' || r == '-' || r == '.') {
				t.Fatalf("SafeName(%q, %q) = %q has %q", name, mt, got, r)
			}
		}
		if strings.Count(got, ".") != 1 {
			t.Fatalf("SafeName(%q, %q) = %q: not one dot", name, mt, got)
		}
		BaseType(mt)
		TypeByName(name)
	})
}

func FuzzAESGCM(f *testing.F) {
	f.Add("aesgcm://h/f#"+strings.Repeat("ab", 44), []byte("ciphertext and sixteen tag bytes"))
	f.Add("aesgcm://h/f#"+strings.Repeat("ab", 48), []byte{})
	f.Fuzz(func(t *testing.T, u string, ct []byte) {
		a, err := ParseAESGCM(u)
		if err != nil {
			if !errors.Is(err, ErrBadAESGCM) {
				t.Fatalf("ParseAESGCM(%q): %v", u, err)
			}
			return
		}
		if len(a.Key) != 32 || (len(a.IV) != 12 && len(a.IV) != 16) || !strings.HasPrefix(a.URL, "https://") {
			t.Fatalf("ParseAESGCM(%q) = %+v", u, a)
		}
		// Random bytes never verify (2^-128), and never panic.
		if _, err := DecryptAESGCM(io.Discard, bytes.NewReader(ct), a.Key, a.IV); !errors.Is(err, ErrBadTag) {
			t.Fatalf("random ciphertext: %v", err)
		}
	})
}
