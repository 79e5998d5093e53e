package simwa

import (
	"context"
	"fmt"
	"net/http"
	"os"

	"waxmpp/bridge"
)

// picture is a chat's profile picture: what ChatPicture returns.
type picture struct {
	id, mimeType string
	src          source
}

// observePicture keeps the chats' pictures as picture events set them:
// one with media sets it, a removal removes it, one without media leaves
// it as it is (a test announcing a change made before). Called with s.mu
// held.
func (s *Sim) observePicture(w *Event, v *bridge.PictureChange) {
	switch {
	case v.Removed:
		delete(s.pictures, string(v.Chat))
	case w.Media != nil:
		s.pictures[string(v.Chat)] = picture{id: v.ID, mimeType: w.Media.MimeType, src: source{data: w.Media.Data, file: w.Media.File}}
	}
}

// ChatPicture implements bridge.WhatsApp: the picture the last picture
// event of the chat gave, nil when none; over bridge.MaxPicture bytes is
// an error, as the adapter's. Its MIME type is the event's, else what the
// bytes look like: the simulator passes on broken pictures, as WhatsApp
// might.
func (s *Sim) ChatPicture(ctx context.Context, chat bridge.ChatID) (*bridge.Picture, error) {
	p, err := s.chatPicture(ctx, chat)
	a := Action{Type: "chat_picture", Chat: string(chat), Error: errText(err)}
	if p != nil {
		a.ID, a.Size = p.ID, int64(len(p.Data))
	}
	s.record(a)
	return p, err
}

func (s *Sim) chatPicture(ctx context.Context, chat bridge.ChatID) (*bridge.Picture, error) {
	if err := s.checkPaired(); err != nil {
		return nil, err
	}
	if err := apply(ctx, s.rule("chat_picture", string(chat), "", "", "")); err != nil {
		return nil, err
	}
	s.mu.Lock()
	pic, ok := s.pictures[string(chat)]
	s.mu.Unlock()
	if !ok {
		return nil, nil
	}
	data := pic.src.data
	if data == nil && pic.src.file != "" {
		st, err := os.Stat(pic.src.file)
		if err != nil {
			return nil, fmt.Errorf("simwa: picture of %s: %w", chat, err)
		}
		if st.Size() > bridge.MaxPicture {
			return nil, fmt.Errorf("simwa: picture of %s: %d bytes, over %d", chat, st.Size(), bridge.MaxPicture)
		}
		if data, err = os.ReadFile(pic.src.file); err != nil {
			return nil, fmt.Errorf("simwa: picture of %s: %w", chat, err)
		}
	}
	if len(data) > bridge.MaxPicture {
		return nil, fmt.Errorf("simwa: picture of %s: %d bytes, over %d", chat, len(data), bridge.MaxPicture)
	}
	typ := pic.mimeType
	if typ == "" {
		typ = http.DetectContentType(data)
	}
	return &bridge.Picture{ID: pic.id, Type: typ, Data: data}, nil
}
