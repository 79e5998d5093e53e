package xmpp

// Room pictures. A room's picture (avatar) is its vCard (XEP-0054: PHOTO
// with TYPE and BINVAL), set by the room's owner with an IQ set to the
// room's bare JID, as XEP-0486 describes. Servers keep it where they
// advertise the vcard-temp feature in the room's disco#info: ejabberd's
// mod_muc always (mod_muc_room, process_iq_vcard: owner only; it then
// tells occupants the picture's hash in a vcard-temp:x:update presence),
// Prosody only with the community module mod_vcard_muc (Debian's package
// prosody-modules), which also shows the hash in the room's disco#info.
// Elsewhere the room has no picture (bridge.ErrNoRoomPictures).
//
// A picture goes in one stanza, written past the outbox's pace (it is an
// IQ), so it is kept small: at most maxRoomPicture bytes, and under the
// server's stanza limit (split.go) once in base64. One larger is decoded
// and sent again as a smaller JPEG (WhatsApp's are 640 × 640 JPEGs of
// 30–100 kB). At Prosody's default throttle (10 kB/s) a 60 kB stanza holds
// the link for six seconds and makes the pace back off; 16 KiB is a 256 ×
// 256 photo, more than clients show of a room's picture.

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/jpeg"
	"image/png"

	"waxmpp/bridge"
)

// nsVCard is vcard-temp (XEP-0054): the vCard element and the feature.
const nsVCard = "vcard-temp"

// vcardOverhead is what an IQ carrying a vCard takes besides the base64
// picture and the room's JID: the iq, its id, the vCard and PHOTO
// elements, with room to spare.
const vcardOverhead = 512

// maxRoomPicture bounds a room picture's bytes.
const maxRoomPicture = 16 << 10

// maxPicturePixels bounds the pixels of a picture decoded to be made
// smaller (4 bytes each in memory): far above WhatsApp's 640 × 640.
const maxPicturePixels = 2048 * 2048

// pictureSides are the sizes (longest side, pixels) a picture too large
// for a stanza is tried at, largest first.
var pictureSides = []int{640, 480, 360, 256, 192, 128, 96, 64}

// SetRoomPicture sets the picture of one of the bot's rooms (bridge.Rooms);
// p nil removes it (an empty vCard).
func (s *Session) SetRoomPicture(ctx context.Context, jid string, p *bridge.Picture) error {
	room := bareJID(jid)
	s.mu.Lock()
	c := s.cur
	s.mu.Unlock()
	if c == nil {
		return ErrOffline
	}
	ok, err := s.roomKeepsPictures(ctx, room)
	if err != nil {
		return err
	}
	if !ok {
		return bridge.ErrNoRoomPictures
	}
	var typ string
	var data []byte
	if p != nil {
		budget := min(maxRoomPicture, (s.stanzaLimit()-vcardOverhead-len(room))/4*3)
		if typ, data, err = fitPicture(p.Data, budget); err != nil {
			return fmt.Errorf("xmpp: room picture: %w", err)
		}
	}
	res, err := s.iq(ctx, IQ{Type: "set", To: room, Payload: roomVCard(typ, data)})
	if err != nil {
		if res != nil && res.Error != nil {
			switch res.Error.Condition {
			case "feature-not-implemented", "service-unavailable":
				return bridge.ErrNoRoomPictures
			}
			return fmt.Errorf("xmpp: room picture: %w", res.Error)
		}
		return fmt.Errorf("xmpp: room picture: %w", err)
	}
	s.log.Info("room picture set", "room", room, "type", typ, "bytes", len(data))
	return nil
}

// roomKeepsPictures asks the room's disco#info for the vcard-temp feature.
func (s *Session) roomKeepsPictures(ctx context.Context, room string) (bool, error) {
	res, err := s.iq(ctx, IQ{Type: "get", To: room, Payload: Inner{[]byte(`<query xmlns="` + NSDiscoInfo + `"/>`)}})
	if err != nil {
		return false, fmt.Errorf("xmpp: disco#info %s: %w", room, stanzaErr(res, err))
	}
	var info discoInfoResult
	if err := res.Unmarshal(&info); err != nil {
		return false, fmt.Errorf("xmpp: disco#info %s: %w", room, err)
	}
	for _, f := range info.Features {
		if f.Var == nsVCard {
			return true, nil
		}
	}
	return false, nil
}

// roomVCard is the vCard payload: PHOTO with typ and data, or an empty
// vCard (no picture) when data is nil.
func roomVCard(typ string, data []byte) Inner {
	var w writer
	w.open("vCard", nsVCard)
	if data != nil {
		w.open("PHOTO", "")
		w.elem("TYPE", "", typ)
		w.elem("BINVAL", "", base64.StdEncoding.EncodeToString(data))
		w.close()
	}
	w.close()
	return Inner{w.bytes()}
}

// errNotPicture: the bytes are no JPEG or PNG picture.
var errNotPicture = errors.New("not a JPEG or PNG picture")

// fitPicture returns the picture in b (JPEG or PNG) as it goes into a
// room's vCard: as it is when it takes at most limit bytes, else decoded and
// encoded again as a JPEG, smaller, until it does. Broken or oversized
// pictures are an error, never a panic.
func fitPicture(b []byte, limit int) (typ string, out []byte, err error) {
	cfg, format, err := image.DecodeConfig(bytes.NewReader(b))
	if err != nil {
		return "", nil, fmt.Errorf("%w: %v", errNotPicture, err)
	}
	switch format {
	case "jpeg", "png":
	default:
		return "", nil, fmt.Errorf("%w: %s", errNotPicture, format)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 || cfg.Width*cfg.Height > maxPicturePixels {
		return "", nil, fmt.Errorf("a picture of %d × %d pixels, over %d", cfg.Width, cfg.Height, maxPicturePixels)
	}
	if len(b) <= limit {
		return "image/" + format, b, nil
	}
	var img image.Image
	if format == "jpeg" {
		img, err = jpeg.Decode(bytes.NewReader(b))
	} else {
		img, err = png.Decode(bytes.NewReader(b))
	}
	if err != nil {
		return "", nil, fmt.Errorf("%w: %v", errNotPicture, err)
	}
	// Onto white: JPEG has no transparency.
	flat := image.NewRGBA(image.Rect(0, 0, cfg.Width, cfg.Height))
	draw.Draw(flat, flat.Bounds(), image.NewUniform(color.White), image.Point{}, draw.Src)
	draw.Draw(flat, flat.Bounds(), img, img.Bounds().Min, draw.Over)
	for _, side := range pictureSides {
		small := shrink(flat, side)
		for _, q := range []int{85, 65} {
			var buf bytes.Buffer
			if err := jpeg.Encode(&buf, small, &jpeg.Options{Quality: q}); err != nil {
				return "", nil, err
			}
			if buf.Len() <= limit {
				return "image/jpeg", buf.Bytes(), nil
			}
		}
	}
	return "", nil, fmt.Errorf("the picture does not fit in %d bytes", limit)
}

// shrink scales img down (never up) so that its longest side is at most
// side pixels, each pixel the average of those it covers.
func shrink(img *image.RGBA, side int) *image.RGBA {
	w, h := img.Rect.Dx(), img.Rect.Dy()
	nw, nh := w, h
	if w >= h && w > side {
		nw, nh = side, max(1, h*side/w)
	} else if h > w && h > side {
		nw, nh = max(1, w*side/h), side
	}
	if nw == w && nh == h {
		return img
	}
	out := image.NewRGBA(image.Rect(0, 0, nw, nh))
	for y := range nh {
		y0, y1 := y*h/nh, max((y+1)*h/nh, y*h/nh+1)
		for x := range nw {
			x0, x1 := x*w/nw, max((x+1)*w/nw, x*w/nw+1)
			var r, g, b, a, n int
			for sy := y0; sy < y1; sy++ {
				row := img.Pix[sy*img.Stride:]
				for sx := x0; sx < x1; sx++ {
					p := row[sx*4 : sx*4+4]
					r, g, b, a, n = r+int(p[0]), g+int(p[1]), b+int(p[2]), a+int(p[3]), n+1
				}
			}
			o := out.Pix[y*out.Stride+x*4:]
			o[0], o[1], o[2], o[3] = uint8(r/n), uint8(g/n), uint8(b/n), uint8(a/n)
		}
	}
	return out
}
