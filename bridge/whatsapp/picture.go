package whatsapp

// Chats' profile pictures: WhatsApp tells a change (events.Picture) and
// serves the picture by URL (GetProfilePictureInfo); the core puts it on
// the chat's room.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"

	"waxmpp/bridge"
	bmedia "waxmpp/bridge/media"
)

// pictureTimeout bounds asking for a picture's URL and downloading it.
const pictureTimeout = 20 * time.Second

// pictureChange converts events.Picture.
func pictureChange(e *events.Picture) bridge.Event {
	if e.JID.IsEmpty() {
		return nil
	}
	ch := &bridge.PictureChange{Chat: chatID(e.JID), Removed: e.Remove}
	if !e.Remove {
		ch.ID = e.PictureID
	}
	return ch
}

// ChatPicture implements bridge.WhatsApp: the full-size picture (WhatsApp
// serves 640 × 640 JPEGs) of a person or group; nil when there is none or
// the person hides it from the owner.
func (a *Adapter) ChatPicture(ctx context.Context, chat bridge.ChatID) (*bridge.Picture, error) {
	c, _, err := a.linked()
	if err != nil {
		return nil, err
	}
	j, err := parseJID(string(chat))
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, pictureTimeout)
	defer cancel()
	info, err := c.GetProfilePictureInfo(ctx, j, &whatsmeow.GetProfilePictureParams{})
	if p, done, err := pictureInfo(info, err); done {
		return p, err
	}
	p, err := fetchPicture(ctx, a.pictureHTTP, info.URL, bridge.MaxPicture)
	if err != nil {
		return nil, err
	}
	p.ID = info.ID
	return p, nil
}

// pictureInfo sorts GetProfilePictureInfo's answer: done with (p, err)
// when there is nothing to download.
func pictureInfo(info *types.ProfilePictureInfo, err error) (p *bridge.Picture, done bool, _ error) {
	switch {
	case errors.Is(err, whatsmeow.ErrProfilePictureNotSet), errors.Is(err, whatsmeow.ErrProfilePictureUnauthorized):
		return nil, true, nil
	case err != nil:
		return nil, true, fmt.Errorf("whatsapp: picture: %w", err)
	case info == nil || info.URL == "":
		return nil, true, nil
	}
	return nil, false, nil
}

// fetchPicture downloads a picture from WhatsApp's servers: https only
// (http only to a loopback address, where tests run), at most max bytes,
// JPEG or PNG as its bytes say. hc nil is the default client.
func fetchPicture(ctx context.Context, hc *http.Client, raw string, max int) (*bridge.Picture, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("whatsapp: picture URL: %w", err)
	}
	if err := bmedia.AllowedURL(u); err != nil {
		return nil, fmt.Errorf("whatsapp: picture: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("whatsapp: picture: %w", err)
	}
	if hc == nil {
		hc = http.DefaultClient
	}
	res, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("whatsapp: picture: %w", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("whatsapp: picture: HTTP %s", res.Status)
	}
	if res.ContentLength > int64(max) {
		return nil, fmt.Errorf("whatsapp: picture: %d bytes, over %d", res.ContentLength, max)
	}
	b, err := io.ReadAll(io.LimitReader(res.Body, int64(max)+1))
	if err != nil {
		return nil, fmt.Errorf("whatsapp: picture: %w", err)
	}
	if len(b) > max {
		return nil, fmt.Errorf("whatsapp: picture: over %d bytes", max)
	}
	typ := pictureType(b)
	if typ == "" {
		return nil, fmt.Errorf("whatsapp: picture: neither JPEG nor PNG (%s)", http.DetectContentType(b))
	}
	return &bridge.Picture{Type: typ, Data: b}, nil
}

// pictureType is the picture's MIME type by its first bytes, "" when it is
// neither JPEG nor PNG.
func pictureType(b []byte) string {
	switch t := http.DetectContentType(b); t {
	case "image/jpeg", "image/png":
		return t
	}
	return ""
}
