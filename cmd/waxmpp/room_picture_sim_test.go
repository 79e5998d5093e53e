//go:build simwa

package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"waxmpp/bridge"
	pt "waxmpp/bridge/prosodytest"
)

// gradientJPEG is a 640 × 640 JPEG, smooth enough to take under 16 KiB:
// it goes into the room as it is.
func gradientJPEG(t *testing.T, tint uint8) []byte {
	img := image.NewRGBA(image.Rect(0, 0, 640, 640))
	for y := range 640 {
		for x := range 640 {
			img.Set(x, y, color.RGBA{R: uint8(x / 3), G: uint8(y / 3), B: tint * 60, A: 255})
		}
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 70}); err != nil {
		t.Fatal(err)
	}
	if b.Len() > 16<<10 {
		t.Fatalf("the test picture takes %d bytes: too large to go as it is", b.Len())
	}
	return b.Bytes()
}

// pictureEvent is the simulator's picture event setting chat's picture.
func pictureEvent(chat, id string, data []byte) string {
	b, _ := json.Marshal(map[string]any{"type": "picture", "chat": chat, "id": id,
		"media": map[string]any{"mime_type": "image/jpeg", "data": data}})
	return string(b)
}

// roomPicture fetches room's vCard as the owner's client does: its PHOTO's
// bytes, nil when it has none (or the room keeps no vCard).
func (o *roomOwner) roomPicture(room string) []byte {
	o.e.tb.Helper()
	o.seq++
	id := fmt.Sprintf("vcard-%d-%d", time.Now().UnixNano(), o.seq)
	m := o.e.mark()
	o.c.Send("<iq type='get' id='" + id + "' to='" + room + "'><vCard xmlns='vcard-temp'/></iq>")
	res := o.e.stanza(m, wait, "the room's vCard", func(s *pt.Elem) bool { return s.XMLName.Local == "iq" && s.Attr("id") == id })
	ph := res.Child("vcard-temp", "vCard")
	if ph != nil {
		ph = ph.Child("vcard-temp", "PHOTO")
	}
	if res.Attr("type") != "result" || ph == nil || ph.Child("vcard-temp", "BINVAL") == nil {
		return nil
	}
	data, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(ph.Child("vcard-temp", "BINVAL").Text), ""))
	if err != nil {
		o.e.tb.Fatalf("the room's picture: %v", err)
	}
	return data
}

// waitPicture waits until room shows want as its picture (nil: none).
func (o *roomOwner) waitPicture(room string, want []byte, what string) {
	o.e.tb.Helper()
	o.waitPictureFor(room, what, func(got []byte) bool { return bytes.Equal(got, want) })
}

// waitPictureFor waits until ok accepts room's picture. It asks again
// after each stanza from the room itself: both servers tell occupants of
// a new picture (a presence with its hash, vcard-temp:x:update).
func (o *roomOwner) waitPictureFor(room, what string, ok func([]byte) bool) []byte {
	o.e.tb.Helper()
	deadline := time.Now().Add(wait)
	for {
		m := o.e.mark()
		got := o.roomPicture(room)
		if ok(got) {
			return got
		}
		left := time.Until(deadline)
		if left <= 0 {
			o.e.tb.Fatalf("%s: the room's picture is %d bytes", what, len(got))
		}
		o.e.stanza(m, left, what+" (a stanza from the room)", func(s *pt.Elem) bool {
			return s.Attr("from") == room && s.XMLName.Local != "iq"
		})
	}
}

// photoJPEG is a 640 × 640 JPEG with a photo's detail (noise over a
// gradient): hundreds of kB, too large for a stanza as it is.
func photoJPEG(t *testing.T) []byte {
	r := rand.New(rand.NewPCG(7, 7))
	img := image.NewRGBA(image.Rect(0, 0, 640, 640))
	for y := range 640 {
		for x := range 640 {
			n := uint8(r.UintN(64))
			img.Set(x, y, color.RGBA{R: uint8(x/3) + n, G: uint8(y/3) + n, B: 100 + n, A: 255})
		}
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 92}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestSimRoomPicture: /room gives the room the chat's WhatsApp picture
// (bytes as WhatsApp served them), a change on WhatsApp changes it, a
// removal removes it; a broken picture leaves a room without one and
// everything else working. On Prosody without mod_vcard_muc the creation's
// line and /rooms say that the server shows no room pictures (ejabberd's
// mod_muc always keeps them: there is no such ejabberd).
func TestSimRoomPicture(t *testing.T) {
	t.Run("pictures", func(t *testing.T) {
		e := newSimEnv(t, envOptions{roomPictures: true})
		e.inject(&bridge.ContactInfo{User: alice, FullName: "Alice"}, &bridge.ContactInfo{User: bob, FullName: "Bob"})
		m := e.mark()
		e.inject(textMsg(alice, alice, "RP1", "hello", "Alice"), textMsg(bob, bob, "RP2", "hi", "Bob"))
		e.msg(m, "*Alice*: hello")
		e.msg(m, "*Bob*: hi")
		pic1, pic2 := gradientJPEG(t, 1), gradientJPEG(t, 2)
		e.injectJSON(pictureEvent(alice, "P1", pic1))
		o := newRoomOwner(e)
		room := o.room("alice")
		o.waitPicture(room, pic1, "made with the chat's picture")
		e.injectJSON(pictureEvent(alice, "P2", pic2))
		o.waitPicture(room, pic2, "the picture changed on WhatsApp")
		e.injectJSON(`{"type":"picture","chat":"` + alice + `","removed":true}`)
		o.waitPicture(room, nil, "the picture removed on WhatsApp")

		// A broken picture: the room is made all the same, without one.
		e.injectJSON(pictureEvent(bob, "B1", []byte("\xff\xd8\xff\xe0 not a picture at all")))
		roomB := o.room("bob")
		if got := o.roomPicture(roomB); got != nil {
			t.Errorf("a broken picture became the room's: %d bytes", len(got))
		}
		m = e.mark()
		e.inject(textMsg(bob, bob, "RP3", "still fine", "Bob"))
		e.inRoom(m, roomB, "still fine")
		if ans := o.command("/rooms"); strings.Contains(ans, "picture") || !strings.Contains(ans, "2 rooms") {
			t.Errorf("/rooms = %q", ans)
		}
	})
	t.Run("a large picture, the server's throttle on", func(t *testing.T) {
		e := newSimEnv(t, envOptions{roomPictures: true, limits: true})
		e.inject(&bridge.ContactInfo{User: alice, FullName: "Alice"})
		m := e.mark()
		e.inject(textMsg(alice, alice, "LP1", "hello", "Alice"))
		e.msg(m, "*Alice*: hello")
		big := photoJPEG(t)
		e.injectJSON(pictureEvent(alice, "P1", big))
		o := newRoomOwner(e)
		room := o.room("alice")
		got := o.waitPictureFor(room, "a large picture, made smaller", func(b []byte) bool { return b != nil })
		cfg, format, err := image.DecodeConfig(bytes.NewReader(got))
		if err != nil || format != "jpeg" || cfg.Width > 640 || len(got) >= len(big) {
			t.Errorf("the room's picture: %d bytes (WhatsApp's: %d), %s %dx%d, %v", len(got), len(big), format, cfg.Width, cfg.Height, err)
		}
		t.Logf("WhatsApp's %d-byte picture is the room's as %d bytes, %dx%d", len(big), len(got), cfg.Width, cfg.Height)
		// The link lived through it: both ways in the room.
		m = e.mark()
		e.inject(textMsg(alice, alice, "LP2", "after the picture", "Alice"))
		e.inRoom(m, room, "after the picture")
		o.say(room, "still here", "")
		e.action(m, wait, "to Alice", sendTo(alice, "still here"))
	})
	if pt.EnvKind(t) != pt.Prosody {
		return
	}
	t.Run("no room pictures", func(t *testing.T) {
		e := newSimEnv(t, envOptions{})
		e.inject(&bridge.ContactInfo{User: alice, FullName: "Alice"})
		m := e.mark()
		e.inject(textMsg(alice, alice, "NP1", "hello", "Alice"))
		e.msg(m, "*Alice*: hello")
		e.injectJSON(pictureEvent(alice, "P1", gradientJPEG(t, 3)))
		o := newRoomOwner(e)
		ans := o.command("/room alice")
		if !strings.Contains(ans, "has a room of its own now") || !strings.Contains(ans, "Your XMPP server does not show pictures of rooms, so the room has none.") {
			t.Fatalf("/room alice = %q", ans)
		}
		if ans := o.command("/rooms"); !strings.Contains(ans, "does not show pictures of rooms") {
			t.Errorf("/rooms = %q", ans)
		}
	})
}
