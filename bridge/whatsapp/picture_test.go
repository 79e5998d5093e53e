package whatsapp

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"

	"waxmpp/bridge"
)

// TestChatPicture fetches pictures as whatsmeow describes them (real
// ProfilePictureInfo values and errors) from an https server on loopback:
// the bytes and type, none when not set or hidden, and refusals of what
// is too large, not an image, or not https.
func TestChatPicture(t *testing.T) {
	jpeg := append([]byte{0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10, 'J', 'F', 'I', 'F', 0}, bytes.Repeat([]byte{7}, 500)...)
	var pngBuf bytes.Buffer
	img := image.NewRGBA(image.Rect(0, 0, 4, 4))
	img.Set(1, 1, color.RGBA{R: 255, A: 255})
	if err := png.Encode(&pngBuf, img); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/a.jpg":
			w.Write(jpeg)
		case "/g.png":
			w.Write(pngBuf.Bytes())
		case "/huge":
			w.Write(bytes.Repeat([]byte{0xFF}, bridge.MaxPicture+10))
		case "/text":
			w.Write([]byte("<html>not a picture</html>"))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()

	h := newHarness(t, true)
	h.a.pictureHTTP = srv.Client()
	h.run()
	c := h.client()
	carol := types.NewJID("491705555555", types.DefaultUserServer)
	dave := types.NewJID("491706666666", types.DefaultUserServer)
	erin := types.NewJID("491707777777", types.DefaultUserServer)
	c.mu.Lock()
	c.pictures = map[types.JID]picAnswer{
		alice: {info: &types.ProfilePictureInfo{URL: srv.URL + "/a.jpg?oh=x&oe=y", ID: "1700000001", Type: "image", DirectPath: "/v/t61/a.jpg"}},
		group: {info: &types.ProfilePictureInfo{URL: srv.URL + "/g.png", ID: "42", Type: "image"}},
		bob:   {err: whatsmeow.ErrProfilePictureUnauthorized},
		carol: {info: &types.ProfilePictureInfo{URL: srv.URL + "/huge", ID: "3"}},
		dave:  {info: &types.ProfilePictureInfo{URL: srv.URL + "/text", ID: "4"}},
		erin:  {info: &types.ProfilePictureInfo{URL: strings.Replace(srv.URL, "https://", "ftp://", 1) + "/a.jpg", ID: "5"}},
		own:   {err: errors.New("info query timed out")},
	}
	c.mu.Unlock()
	ctx := context.Background()
	for _, tc := range []struct {
		jid     types.JID
		id, typ string
		data    []byte
		err     string
	}{
		{jid: alice, id: "1700000001", typ: "image/jpeg", data: jpeg},
		{jid: group, id: "42", typ: "image/png", data: pngBuf.Bytes()},
		{jid: bob}, // hidden from the owner
		{jid: types.NewJID("491708888888", types.DefaultUserServer)}, // not set
		{jid: carol, err: "over"},
		{jid: dave, err: "neither JPEG nor PNG"},
		{jid: erin, err: "only https"},
		{jid: own, err: "timed out"},
	} {
		p, err := h.a.ChatPicture(ctx, chatID(tc.jid))
		switch {
		case tc.err != "":
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: err %v, want one with %q", tc.jid, err, tc.err)
			}
		case err != nil:
			t.Errorf("%s: %v", tc.jid, err)
		case tc.data == nil && p != nil:
			t.Errorf("%s: a picture %+v, want none", tc.jid, p.ID)
		case tc.data != nil && (p == nil || p.ID != tc.id || p.Type != tc.typ || !bytes.Equal(p.Data, tc.data)):
			t.Errorf("%s: got %v, want id %s type %s and the bytes", tc.jid, p, tc.id, tc.typ)
		}
	}
	if _, err := h.a.ChatPicture(ctx, "not a jid@@"); err == nil {
		t.Error("a bad chat id: no error")
	}
}

// TestPictureEventQueued: a picture change goes to the core through the
// durable inbox like every event.
func TestPictureEventQueued(t *testing.T) {
	h := newHarness(t, true)
	h.run()
	go h.client().dispatch(&events.Picture{JID: group, Author: bob, PictureID: "77"})
	for {
		if e, ok := h.next().(*bridge.PictureChange); ok {
			if e.Chat != chatID(group) || e.ID != "77" || e.Removed {
				t.Errorf("got %+v", e)
			}
			return
		}
	}
}
