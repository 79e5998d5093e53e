package media

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"testing"
)

func TestReadImageInfo(t *testing.T) {
	for _, c := range []struct {
		name, format string
		w, h         int
	}{
		{"photo.jpg", "jpeg", 80, 60}, {"photo.webp", "webp", 80, 60},
		{"photo.png", "png", 40, 20}, {"anim.gif", "gif", 40, 30},
	} {
		got, err := ReadImageInfo(filepath.Join("testdata", c.name))
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if got != (ImageInfo{c.format, c.w, c.h}) {
			t.Errorf("%s: got %+v, want %s %dx%d", c.name, got, c.format, c.w, c.h)
		}
	}
	if _, err := ReadImageInfo(filepath.Join("testdata", "voice.ogg")); err == nil {
		t.Error("an Ogg file read as an image")
	}
}

func TestToJPEG(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"photo.png", "photo.webp", "anim.gif", "photo.jpg"} {
		dst := filepath.Join(dir, name+".jpg")
		info, thumb, err := ToJPEG(dst, filepath.Join("testdata", name))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		b, err := os.ReadFile(dst)
		if err != nil {
			t.Fatal(err)
		}
		cfg, format, err := image.DecodeConfig(bytes.NewReader(b))
		if err != nil || format != "jpeg" || cfg.Width != info.Width || cfg.Height != info.Height || info.Format != "jpeg" {
			t.Errorf("%s: wrote %s %dx%d (%v), said %+v", name, format, cfg.Width, cfg.Height, err, info)
		}
		tc, err := jpeg.DecodeConfig(bytes.NewReader(thumb))
		if err != nil || max(tc.Width, tc.Height) > ThumbSize {
			t.Errorf("%s: thumbnail %dx%d, %v", name, tc.Width, tc.Height, err)
		}
	}
	// The half-transparent red PNG comes out on white: pink, not dark red.
	dst := filepath.Join(dir, "png.jpg")
	if _, _, err := ToJPEG(dst, filepath.Join("testdata", "photo.png")); err != nil {
		t.Fatal(err)
	}
	f, _ := os.Open(dst)
	img, err := jpeg.Decode(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	r, g, b, _ := img.At(10, 10).RGBA()
	if r>>8 < 240 || g>>8 < 100 || g>>8 > 160 || b>>8 < 100 || b>>8 > 160 {
		t.Errorf("transparent red on white = %d,%d,%d; want about 255,128,128", r>>8, g>>8, b>>8)
	}
}

func TestThumbnailShape(t *testing.T) {
	for _, c := range []struct{ w, h, tw, th int }{
		{4000, 3000, 96, 72}, {3000, 4000, 72, 96}, {50, 20, 50, 20}, {10000, 10, 96, 1}, {96, 96, 96, 96},
	} {
		if w, h := fit(c.w, c.h, ThumbSize); w != c.tw || h != c.th {
			t.Errorf("fit(%d,%d) = %d,%d; want %d,%d", c.w, c.h, w, h, c.tw, c.th)
		}
	}
	// A 2×1 image, left black and right white, keeps both halves.
	img := image.NewNRGBA(image.Rect(0, 0, 200, 100))
	for y := range 100 {
		for x := range 200 {
			if x >= 100 {
				img.Set(x, y, color.White)
			} else {
				img.Set(x, y, color.Black)
			}
		}
	}
	s := shrink(img, 2, 1)
	if s.Pix[0] != 0 || s.Pix[4] != 255 {
		t.Errorf("shrink: %v", s.Pix)
	}
	path := filepath.Join(t.TempDir(), "x.png")
	var buf bytes.Buffer
	png.Encode(&buf, img)
	os.WriteFile(path, buf.Bytes(), 0o600)
	info, thumb, err := Thumbnail(path)
	if err != nil || info.Width != 200 || len(thumb) == 0 {
		t.Errorf("Thumbnail: %+v %d %v", info, len(thumb), err)
	}
}

func TestTooManyPixels(t *testing.T) {
	// A PNG header claiming 8192×8192 is refused before any decoding.
	var buf bytes.Buffer
	png.Encode(&buf, image.NewGray(image.Rect(0, 0, 8192, 8192)))
	path := filepath.Join(t.TempDir(), "big.png")
	os.WriteFile(path, buf.Bytes(), 0o600)
	if _, _, err := Thumbnail(path); err == nil {
		t.Fatal("decoded a 64 Mpx image")
	}
	if info, err := ReadImageInfo(path); err != nil || info.Width != 8192 {
		t.Errorf("header: %+v %v", info, err)
	}
}
