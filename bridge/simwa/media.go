package simwa

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"waxmpp/bridge"
)

// source is what Download writes for one handle: data, else the file,
// else the media's Size bytes of Pattern.
type source struct {
	data []byte
	file string
}

// Pattern is the content of a simulated attachment injected without data
// or file: byte i is 'a' + i%26, so a test knows its SHA-256 for any size.
type Pattern struct{ off int64 }

func (p *Pattern) Read(b []byte) (int, error) {
	for i := range b {
		b[i] = byte('a' + (p.off+int64(i))%26)
	}
	p.off += int64(len(b))
	return len(b), nil
}

// Download implements bridge.WhatsApp: the media's content (see source)
// streamed into path, unless a rule answers otherwise (http_403, http_404
// and http_410 are expired media).
func (s *Sim) Download(ctx context.Context, m *bridge.Media, path string) (int64, error) {
	n, err := s.download(ctx, m, path)
	s.record(Action{Type: "download", Handle: m.Handle, Size: n, Error: errText(err)})
	return n, err
}

func (s *Sim) download(ctx context.Context, m *bridge.Media, path string) (int64, error) {
	if err := apply(ctx, s.rule("download", "", m.Handle, "", "")); err != nil {
		return 0, err
	}
	s.mu.Lock()
	src, ok := s.media[m.Handle]
	s.mu.Unlock()
	var r io.Reader
	switch {
	case ok && src.data != nil:
		r = bytes.NewReader(src.data)
	case ok && src.file != "":
		f, err := os.Open(src.file)
		if err != nil {
			return 0, fmt.Errorf("simwa: download %s: %w", m.Handle, err)
		}
		defer f.Close()
		r = f
	default:
		r = io.LimitReader(&Pattern{}, m.Size)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return 0, fmt.Errorf("simwa: download %s: %w", m.Handle, err)
	}
	n, err := io.Copy(f, ctxReader{ctx, r})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return n, fmt.Errorf("simwa: download %s: %w", m.Handle, err)
	}
	return n, nil
}

// ctxReader stops a copy when ctx ends (a cancelled transfer).
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// SendMedia implements bridge.WhatsApp: it reads m.Path as an upload
// would (streamed, hashed) and records a send_media action with every
// field (see SentMedia).
func (s *Sim) SendMedia(ctx context.Context, chat bridge.ChatID, m *bridge.OutMedia, opts bridge.SendOptions) (bridge.MsgRef, time.Time, error) {
	sm := &SentMedia{Kind: enumName(msgKinds, m.Kind), MimeType: m.MimeType, FileName: m.FileName,
		Width: m.Width, Height: m.Height, Duration: Duration(m.Duration), Thumbnail: m.Thumbnail,
		GIF: m.GIF, Caption: m.Caption}
	for _, v := range m.Waveform {
		sm.Waveform = append(sm.Waveform, int(v))
	}
	a := Action{Type: "send_media", Chat: string(chat), Media: sm, ReplyTo: wireRef(opts.ReplyTo),
		QuotedText: opts.QuotedText, Mentions: mentions(opts.Mentions), ID: opts.ID}
	err := s.checkPaired()
	if err == nil {
		err = s.upload(ctx, m, sm)
	}
	if err == nil {
		err = apply(ctx, s.rule("send_media", string(chat), "", "", m.Caption))
	}
	if err != nil {
		a.Error = errText(err)
		s.record(a)
		return bridge.MsgRef{}, time.Time{}, err
	}
	return s.done(a)
}

// upload reads the file to send, as WhatsApp's upload would.
func (s *Sim) upload(ctx context.Context, m *bridge.OutMedia, sm *SentMedia) error {
	switch m.Kind {
	case bridge.Image, bridge.Video, bridge.Audio, bridge.Voice, bridge.Document, bridge.Sticker:
	default:
		return fmt.Errorf("simwa: send_media: kind %v is not media", m.Kind)
	}
	f, err := os.Open(m.Path)
	if err != nil {
		return fmt.Errorf("simwa: upload: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	var keep bytes.Buffer
	n, err := io.Copy(io.MultiWriter(h, &limitWriter{&keep, MaxSentData + 1}), ctxReader{ctx, f})
	if err != nil {
		return fmt.Errorf("simwa: upload: %w", err)
	}
	if m.Size != 0 && m.Size != n {
		return fmt.Errorf("simwa: upload: OutMedia.Size says %d bytes, the file has %d", m.Size, n)
	}
	sm.Size, sm.SHA256 = n, hex.EncodeToString(h.Sum(nil))
	if n <= MaxSentData {
		sm.Data = keep.Bytes()
	}
	return nil
}

// limitWriter keeps at most n bytes and drops the rest (not an error).
type limitWriter struct {
	w io.Writer
	n int64
}

func (l *limitWriter) Write(p []byte) (int, error) {
	if l.n > 0 {
		k := int64(len(p))
		if k > l.n {
			k = l.n
		}
		l.w.Write(p[:k])
		l.n -= k
	}
	return len(p), nil
}

// RequestMediaRetry implements bridge.WhatsApp: recorded as media_retry;
// then, unless a rule says otherwise (answer gone or none), the phone
// answers with a MediaRetry whose handle is the old one + "/retry", with
// the same content.
func (s *Sim) RequestMediaRetry(ctx context.Context, ref bridge.MsgRef, m *bridge.Media) error {
	err := s.checkPaired()
	var r *Rule
	if err == nil {
		r = s.rule("media_retry", string(ref.Chat), ref.ID, "", "")
		err = apply(ctx, r)
	}
	s.record(Action{Type: "media_retry", Target: wireRef(&ref), Handle: m.Handle, Error: errText(err)})
	if err != nil {
		return err
	}
	answer := "uploaded"
	if r != nil && r.Answer != "" {
		answer = r.Answer
	}
	ev := &bridge.MediaRetry{Ref: ref}
	switch answer {
	case "none":
		return nil
	case "gone":
		ev.Err = "the phone no longer has the file"
	default:
		nm := *m
		nm.Handle = strings.TrimSuffix(m.Handle, "/retry") + "/retry"
		s.mu.Lock()
		if src, ok := s.media[m.Handle]; ok {
			s.media[nm.Handle] = src
		}
		s.mu.Unlock()
		ev.Media = &nm
	}
	// The answer comes as an event, from the simulator's own life (the
	// call's ctx ends when it returns).
	s.mu.Lock()
	life := s.life
	s.mu.Unlock()
	if life == nil {
		life = context.Background()
	}
	go s.emit(life, ev)
	return nil
}
