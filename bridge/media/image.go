package media

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	_ "image/gif" // GIF headers and first frames
	"image/jpeg"
	_ "image/png"
	"io"
	"os"

	_ "golang.org/x/image/webp" // WebP stickers and photos: the standard library has no decoder
)

// MaxPixels bounds the images waxmpp decodes. Decoding takes 1.5 (JPEG) to
// 4 (PNG) bytes per pixel: 16 Mpx is at most 64 MB, bearable on a 512 MB
// Pi. A larger photo is sent as it is, without a thumbnail.
const MaxPixels = 16 << 20

// ThumbSize is the longest side of a thumbnail. WhatsApp shows it blurred
// while the photo loads; it travels inside the message, so it is small.
const ThumbSize = 96

// ErrTooManyPixels means an image is larger than MaxPixels.
var ErrTooManyPixels = errors.New("media: image too large to decode")

// ImageInfo is what an image's header says.
type ImageInfo struct {
	Format        string // "jpeg", "png", "gif", "webp"
	Width, Height int
}

// ReadImageInfo reads the header of the image in file path.
func ReadImageInfo(path string) (ImageInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return ImageInfo{}, err
	}
	defer f.Close()
	return imageInfo(bufio.NewReader(f))
}

func imageInfo(r io.Reader) (ImageInfo, error) {
	cfg, format, err := image.DecodeConfig(r)
	if err != nil {
		return ImageInfo{}, fmt.Errorf("media: image header: %w", err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return ImageInfo{}, errors.New("media: image header: no size")
	}
	return ImageInfo{Format: format, Width: cfg.Width, Height: cfg.Height}, nil
}

// decodeImage decodes the image in path after its header showed it is no
// larger than MaxPixels.
func decodeImage(path string) (image.Image, ImageInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, ImageInfo{}, err
	}
	defer f.Close()
	return decodeFrom(f)
}

func decodeFrom(f io.ReadSeeker) (image.Image, ImageInfo, error) {
	info, err := imageInfo(bufio.NewReader(f))
	if err != nil {
		return nil, info, err
	}
	if int64(info.Width)*int64(info.Height) > MaxPixels {
		return nil, info, fmt.Errorf("%w: %dx%d", ErrTooManyPixels, info.Width, info.Height)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, info, err
	}
	img, _, err := image.Decode(bufio.NewReader(f))
	if err != nil {
		return nil, info, fmt.Errorf("media: decode %s: %w", info.Format, err)
	}
	b := img.Bounds()
	if b.Dx() != info.Width || b.Dy() != info.Height {
		return nil, info, errors.New("media: image size differs from its header")
	}
	return img, info, nil
}

// ToJPEG writes the image in src (PNG, WebP, GIF's first frame, or JPEG)
// to dst as a JPEG, transparent parts on white (JPEG has no alpha; the
// default would be black), and returns its size and a thumbnail.
func ToJPEG(dst, src string) (ImageInfo, []byte, error) {
	img, info, err := decodeImage(src)
	if err != nil {
		return info, nil, err
	}
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return info, nil, err
	}
	w := bufio.NewWriter(f)
	err = jpeg.Encode(w, flatten(img), &jpeg.Options{Quality: 88})
	if err == nil {
		err = w.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return info, nil, fmt.Errorf("media: write JPEG: %w", err)
	}
	thumb, err := thumbnail(img)
	if err != nil {
		return info, nil, err
	}
	return ImageInfo{Format: "jpeg", Width: info.Width, Height: info.Height}, thumb, nil
}

// Thumbnail reads the image in path and returns its size and a JPEG
// thumbnail no larger than ThumbSize on its longest side.
func Thumbnail(path string) (ImageInfo, []byte, error) {
	img, info, err := decodeImage(path)
	if err != nil {
		return info, nil, err
	}
	thumb, err := thumbnail(img)
	return info, thumb, err
}

func thumbnail(img image.Image) ([]byte, error) {
	b := img.Bounds()
	w, h := fit(b.Dx(), b.Dy(), ThumbSize)
	small := shrink(img, w, h)
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, small, &jpeg.Options{Quality: 70}); err != nil {
		return nil, fmt.Errorf("media: thumbnail: %w", err)
	}
	return buf.Bytes(), nil
}

// fit scales w×h to fit in max×max, keeping the aspect ratio; never
// upwards, never to zero.
func fit(w, h, max int) (int, int) {
	if w <= max && h <= max {
		return max1(w), max1(h)
	}
	if w >= h {
		return max, max1(int(int64(h) * int64(max) / int64(w)))
	}
	return max1(int(int64(w) * int64(max) / int64(h))), max
}

func max1(n int) int { return max(n, 1) }

// shrink scales img down to w×h by averaging each destination pixel's
// source area (a box filter: good for large reductions, and cheap), on
// white where img is transparent.
func shrink(img image.Image, w, h int) *image.RGBA {
	b := img.Bounds()
	sw, sh := b.Dx(), b.Dy()
	dst := image.NewRGBA(image.Rect(0, 0, w, h))
	at := rgbaAt(img)
	for dy := range h {
		y0 := b.Min.Y + dy*sh/h
		y1 := max(b.Min.Y+(dy+1)*sh/h, y0+1)
		for dx := range w {
			x0 := b.Min.X + dx*sw/w
			x1 := max(b.Min.X+(dx+1)*sw/w, x0+1)
			var r, g, bl, n uint64
			for y := y0; y < y1; y++ {
				for x := x0; x < x1; x++ {
					pr, pg, pb, pa := at(x, y)
					// Premultiplied: add what white shows through.
					white := 0xffff - uint64(pa)
					r += uint64(pr) + white
					g += uint64(pg) + white
					bl += uint64(pb) + white
					n++
				}
			}
			i := dst.PixOffset(dx, dy)
			dst.Pix[i+0] = uint8(r / n >> 8)
			dst.Pix[i+1] = uint8(g / n >> 8)
			dst.Pix[i+2] = uint8(bl / n >> 8)
			dst.Pix[i+3] = 0xff
		}
	}
	return dst
}

// rgbaAt returns a fast premultiplied 16-bit pixel reader for the image
// types the decoders return, and the generic At otherwise.
func rgbaAt(img image.Image) func(x, y int) (r, g, b, a uint32) {
	switch m := img.(type) {
	case *image.YCbCr:
		return func(x, y int) (uint32, uint32, uint32, uint32) {
			yi, ci := m.YOffset(x, y), m.COffset(x, y)
			r, g, b := color.YCbCrToRGB(m.Y[yi], m.Cb[ci], m.Cr[ci])
			return uint32(r) * 0x101, uint32(g) * 0x101, uint32(b) * 0x101, 0xffff
		}
	case *image.NRGBA:
		return func(x, y int) (uint32, uint32, uint32, uint32) {
			i := m.PixOffset(x, y)
			return color.NRGBA{m.Pix[i], m.Pix[i+1], m.Pix[i+2], m.Pix[i+3]}.RGBA()
		}
	case *image.RGBA:
		return func(x, y int) (uint32, uint32, uint32, uint32) {
			i := m.PixOffset(x, y)
			return color.RGBA{m.Pix[i], m.Pix[i+1], m.Pix[i+2], m.Pix[i+3]}.RGBA()
		}
	}
	return func(x, y int) (uint32, uint32, uint32, uint32) { return img.At(x, y).RGBA() }
}

// flatten puts img on white when it may have transparent parts. It wraps
// img rather than copying it: a copy would double the memory a large
// image takes.
func flatten(img image.Image) image.Image {
	if o, ok := img.(interface{ Opaque() bool }); ok && o.Opaque() {
		return img
	}
	return onWhite{img}
}

// onWhite is an image seen on a white background.
type onWhite struct{ image.Image }

func (onWhite) ColorModel() color.Model { return color.RGBA64Model }

func (o onWhite) At(x, y int) color.Color {
	r, g, b, a := o.Image.At(x, y).RGBA()
	w := 0xffff - a
	return color.RGBA64{uint16(r + w), uint16(g + w), uint16(b + w), 0xffff}
}
