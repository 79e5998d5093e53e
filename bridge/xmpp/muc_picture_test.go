package xmpp

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"waxmpp/bridge"
	pt "waxmpp/bridge/prosodytest"
)

// testPNG is a small PNG picture (it fits a stanza as it is).
func testPNG(t testing.TB, side int) []byte {
	img := image.NewNRGBA(image.Rect(0, 0, side, side))
	for y := range side {
		for x := range side {
			img.Set(x, y, color.NRGBA{R: uint8(x * 7), G: uint8(y * 5), B: 90, A: uint8(128 + x)})
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// noisyJPEG is a 640 × 640 JPEG of noise: far over a stanza in base64,
// and hard to make small.
func noisyJPEG(t testing.TB, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	img := image.NewRGBA(image.Rect(0, 0, 640, 640))
	for i := range img.Pix {
		img.Pix[i] = uint8(r.UintN(256))
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 95}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestFitPicture: a picture that fits goes as it is; one that does not is
// made a smaller JPEG that fits; what is no picture, or too many pixels,
// is an error.
func TestFitPicture(t *testing.T) {
	small := testPNG(t, 32)
	if typ, out, err := fitPicture(small, 10000); err != nil || typ != "image/png" || !bytes.Equal(out, small) {
		t.Errorf("a small PNG: %s %d bytes %v, want it as it is", typ, len(out), err)
	}
	big := noisyJPEG(t, 1)
	for _, limit := range []int{47000, 12000, 3000} {
		typ, out, err := fitPicture(big, limit)
		if err != nil {
			t.Errorf("%d B of noise into %d: %v", len(big), limit, err)
			continue
		}
		cfg, format, err := image.DecodeConfig(bytes.NewReader(out))
		if typ != "image/jpeg" || err != nil || format != "jpeg" || len(out) > limit || cfg.Width > 640 || cfg.Width != cfg.Height {
			t.Errorf("into %d: %s, %d bytes, %s %dx%d, %v", limit, typ, len(out), format, cfg.Width, cfg.Height, err)
		}
	}
	if _, _, err := fitPicture(big, 100); err == nil {
		t.Error("into 100 bytes: no error")
	}
	// A wide PNG with transparency: flattened, the longest side bounded.
	wide := image.NewNRGBA(image.Rect(0, 0, 1500, 300))
	rnd := rand.New(rand.NewPCG(5, 5))
	for i := range wide.Pix {
		wide.Pix[i] = uint8(rnd.UintN(256))
	}
	var wb bytes.Buffer
	png.Encode(&wb, wide)
	if _, out, err := fitPicture(wb.Bytes(), 20000); err != nil {
		t.Errorf("a wide PNG: %v", err)
	} else if cfg, _, _ := image.DecodeConfig(bytes.NewReader(out)); cfg.Width > 640 || cfg.Height*5 < cfg.Width-5 || cfg.Height*5 > cfg.Width+5 {
		t.Errorf("a wide PNG became %dx%d", cfg.Width, cfg.Height)
	}
	for name, b := range map[string][]byte{
		"text":      []byte("<html>no picture</html>"),
		"empty":     nil,
		"truncated": big[:len(big)/3],
		"gif":       []byte("GIF89a\x01\x00\x01\x00\x00\x00\x00;"),
	} {
		if _, _, err := fitPicture(b, 1000); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	// A header claiming 60000 × 60000 pixels is refused before decoding.
	var hb bytes.Buffer
	png.Encode(&hb, image.NewGray(image.Rect(0, 0, 1, 1)))
	h := hb.Bytes()
	h[16], h[17], h[18], h[19] = 0, 0, 0xEA, 0x60
	h[20], h[21], h[22], h[23] = 0, 0, 0xEA, 0x60
	binary.BigEndian.PutUint32(h[29:33], crc32.ChecksumIEEE(h[12:29])) // IHDR's CRC
	if _, _, err := fitPicture(h, 10); err == nil || !strings.Contains(err.Error(), "pixels") {
		t.Errorf("60000 × 60000: %v", err)
	}
}

// FuzzFitPicture: whatever WhatsApp hands over, fitPicture returns an
// error or a JPEG/PNG within the limit; never a panic.
func FuzzFitPicture(f *testing.F) {
	f.Add(testPNG(f, 8), 100000)
	f.Add(testPNG(f, 40), 500)
	f.Add(noisyJPEG(f, 2)[:4000], 2000)
	f.Add([]byte("\xff\xd8\xff\xe0garbage"), 10)
	f.Fuzz(func(t *testing.T, b []byte, limit int) {
		limit = limit%200000 + 1
		if limit < 0 {
			limit = -limit
		}
		typ, out, err := fitPicture(b, limit)
		if err != nil {
			return
		}
		if len(out) > limit && !bytes.Equal(out, b) || typ != "image/jpeg" && typ != "image/png" {
			t.Fatalf("%s, %d bytes for a limit of %d", typ, len(out), limit)
		}
		if len(out) > limit {
			t.Fatalf("%d bytes over the limit %d", len(out), limit)
		}
	})
}

// roomVCardOf fetches room's vCard as c (a member client): its PHOTO's
// type and bytes, "" and nil when it has none.
func roomVCardOf(t *testing.T, c *pt.Client, room string) (string, []byte) {
	t.Helper()
	id := fmt.Sprintf("vc%d", time.Now().UnixNano())
	c.Send("<iq type='get' id='" + id + "' to='" + room + "'><vCard xmlns='vcard-temp'/></iq>")
	res := c.Next(t, 10*time.Second, func(e *pt.Elem) bool { return e.Attr("id") == id })
	if res.Attr("type") != "result" {
		t.Fatalf("the room's vCard: %s", res)
	}
	v := res.Child(nsVCard, "vCard")
	if v == nil {
		return "", nil
	}
	ph := v.Child(nsVCard, "PHOTO")
	if ph == nil {
		return "", nil
	}
	typ, bin := ph.Child(nsVCard, "TYPE"), ph.Child(nsVCard, "BINVAL")
	if typ == nil || bin == nil {
		t.Fatalf("a PHOTO without TYPE or BINVAL: %s", res)
	}
	data, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(bin.Text), ""))
	if err != nil {
		t.Fatalf("BINVAL: %v", err)
	}
	return strings.TrimSpace(typ.Text), data
}

// discoHash is the picture hash a room's disco#info shows (Prosody's
// mod_vcard_muc: a field of its own; XEP-0486's muc#roominfo_avatarhash
// where a server uses it), "" when none.
func discoHash(t *testing.T, c *pt.Client, room string) string {
	t.Helper()
	id := fmt.Sprintf("di%d", time.Now().UnixNano())
	c.Send(fmt.Sprintf("<iq type='get' id='%s' to='%s'><query xmlns='%s'/></iq>", id, room, NSDiscoInfo))
	res := c.Next(t, 10*time.Second, func(e *pt.Elem) bool { return e.Attr("id") == id })
	q := res.Child(NSDiscoInfo, "query")
	if q == nil {
		return ""
	}
	for _, x := range q.Children {
		if x.XMLName.Local != "x" {
			continue
		}
		for _, f := range x.Children {
			switch f.Attr("var") {
			case "muc#roominfo_avatarhash", "{http://modules.prosody.im/mod_vcard_muc}avatar#sha1":
				if v := f.Child("jabber:x:data", "value"); v != nil {
					return strings.TrimSpace(v.Text)
				}
			}
		}
	}
	return ""
}

// isPhotoUpdate matches the room's presence telling its picture's hash
// (vcard-temp:x:update), both servers' way to tell occupants; hash ""
// matches any picture's hash but not's.
func isPhotoUpdate(room, hash string, not ...string) func(*pt.Elem) bool {
	return func(e *pt.Elem) bool {
		if e.XMLName.Local != "presence" || e.Attr("from") != room {
			return false
		}
		x := e.Child("vcard-temp:x:update", "x")
		if x == nil {
			return false
		}
		p := x.Child("vcard-temp:x:update", "photo")
		if p == nil {
			return false
		}
		if hash == "" {
			return strings.TrimSpace(p.Text) != "" && !slices.Contains(not, strings.TrimSpace(p.Text))
		}
		return strings.TrimSpace(p.Text) == hash
	}
}

func sha1Hex(b []byte) string {
	h := sha1.Sum(b)
	return hex.EncodeToString(h[:])
}

// TestRoomPicture on real servers: ejabberd's mod_muc and Prosody with
// mod_vcard_muc keep a room's picture; a member fetching the room's vCard
// gets the bytes set, the room tells its occupants the hash (and
// Prosody's disco#info shows it); a picture too large for a stanza is
// sent smaller, a broken one is refused without harm, nil removes the
// picture. Prosody without the module: ErrNoRoomPictures.
func TestRoomPicture(t *testing.T) {
	type variant struct {
		name     string
		opts     pt.Options
		pictures bool
	}
	for _, v := range []variant{
		{"ejabberd", pt.Options{Kind: pt.Ejabberd, NoShaper: true}, true},
		{"prosody+vcard_muc", pt.Options{Kind: pt.Prosody, NoShaper: true, RoomPictures: true}, true},
		{"prosody", pt.Options{Kind: pt.Prosody, NoShaper: true}, false},
	} {
		t.Run(v.name, func(t *testing.T) {
			srv := pt.Start(t, v.opts)
			b, owner, r := aliceRoom(t, srv)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			small := testPNG(t, 48)
			err := b.bot.SetRoomPicture(ctx, r.JID, &bridge.Picture{ID: "P1", Type: "image/png", Data: small})
			if !v.pictures {
				if !errors.Is(err, bridge.ErrNoRoomPictures) {
					t.Fatalf("SetRoomPicture on a server without room pictures: %v, want ErrNoRoomPictures", err)
				}
				if typ, data := vcardOrNone(t, owner, r.JID); data != nil {
					t.Errorf("the room shows a picture (%s) nonetheless", typ)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			owner.Next(t, 10*time.Second, isPhotoUpdate(r.JID, sha1Hex(small)))
			if typ, data := roomVCardOf(t, owner, r.JID); typ != "image/png" || !bytes.Equal(data, small) {
				t.Errorf("the room's picture: %s, %d bytes; want image/png, the %d bytes set", typ, len(data), len(small))
			}
			if h := discoHash(t, owner, r.JID); v.opts.Kind == pt.Prosody && h != sha1Hex(small) {
				t.Errorf("disco#info hash %q, want %s", h, sha1Hex(small))
			} else {
				t.Logf("disco#info hash: %q", h)
			}

			// WhatsApp's own are too large for a stanza in base64.
			big := noisyJPEG(t, 3)
			if err := b.bot.SetRoomPicture(ctx, r.JID, &bridge.Picture{ID: "P2", Type: "image/jpeg", Data: big}); err != nil {
				t.Fatal(err)
			}
			upd := owner.Next(t, 10*time.Second, isPhotoUpdate(r.JID, "", sha1Hex(small)))
			typ, data := roomVCardOf(t, owner, r.JID)
			cfg, format, err := image.DecodeConfig(bytes.NewReader(data))
			if typ != "image/jpeg" || err != nil || format != "jpeg" || cfg.Width > 640 || len(data) >= len(big) {
				t.Errorf("the large picture: %s, %d bytes (of %d), %s %dx%d, %v", typ, len(data), len(big), format, cfg.Width, cfg.Height, err)
			}
			if !isPhotoUpdate(r.JID, sha1Hex(data))(upd) {
				t.Errorf("the room told %s, not the hash of its picture %s", upd, sha1Hex(data))
			}
			t.Logf("a %d-byte JPEG went as %d bytes, %dx%d", len(big), len(data), cfg.Width, cfg.Height)

			// A broken picture: refused, the room and the link as they were.
			if err := b.bot.SetRoomPicture(ctx, r.JID, &bridge.Picture{ID: "P3", Type: "image/jpeg", Data: []byte("\xff\xd8\xff\xe0 not really")}); err == nil || errors.Is(err, bridge.ErrNoRoomPictures) {
				t.Errorf("a broken picture: %v", err)
			}
			if _, after := roomVCardOf(t, owner, r.JID); !bytes.Equal(after, data) {
				t.Error("a broken picture changed the room's")
			}
			if _, err := b.bot.Send(bridge.Outgoing{Body: "still here", Room: r.JID}); err != nil {
				t.Fatal(err)
			}
			owner.Next(t, 10*time.Second, isGroupchat(r.JID, "still here"))

			// Removed.
			if err := b.bot.SetRoomPicture(ctx, r.JID, nil); err != nil {
				t.Fatal(err)
			}
			if typ, data := roomVCardOf(t, owner, r.JID); data != nil {
				t.Errorf("after removal the room shows %s, %d bytes", typ, len(data))
			}
		})
	}
}

// vcardOrNone is the room's picture, "" and nil also when the room
// answers the vCard request with an error (a server without room vCards).
func vcardOrNone(t *testing.T, c *pt.Client, room string) (string, []byte) {
	t.Helper()
	id := fmt.Sprintf("vn%d", time.Now().UnixNano())
	c.Send("<iq type='get' id='" + id + "' to='" + room + "'><vCard xmlns='vcard-temp'/></iq>")
	res := c.Next(t, 10*time.Second, func(e *pt.Elem) bool { return e.Attr("id") == id })
	if res.Attr("type") == "error" {
		return "", nil
	}
	if v := res.Child(nsVCard, "vCard"); v != nil && v.Child(nsVCard, "PHOTO") != nil {
		return "?", []byte{1}
	}
	return "", nil
}
