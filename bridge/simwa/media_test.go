package simwa

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"waxmpp/bridge"
)

// inject sends one wire event through the socket and returns what the
// core received.
func inject(t *testing.T, c *Client, events chan bridge.Event, line string) bridge.Event {
	t.Helper()
	got := make(chan bridge.Event, 1)
	go func() { got <- <-events }()
	if _, err := c.Raw([]byte(line)); err != nil {
		t.Fatal(err)
	}
	return <-got
}

func TestMediaDownload(t *testing.T) {
	s, events, sock := start(t)
	c := dial(t, sock)
	dir := t.TempDir()
	big := filepath.Join(dir, "big.bin")
	content := bytes.Repeat([]byte("0123456789"), 300_000)
	os.WriteFile(big, content, 0o600)

	data := inject(t, c, events, `{"op":"event","event":{"type":"message","chat":"c@s.whatsapp.net","id":"A","kind":"image","text":"cap","media":{"mime_type":"image/jpeg","handle":"h-data","data":"aGVsbG8="}}}`).(*bridge.Message)
	file := inject(t, c, events, `{"op":"event","event":{"type":"message","chat":"c@s.whatsapp.net","id":"B","kind":"document","media":{"mime_type":"application/pdf","file_name":"x.pdf","size":3000000,"handle":"h-file","file":"`+big+`"}}}`).(*bridge.Message)
	pat := inject(t, c, events, `{"op":"event","event":{"type":"message","chat":"c@s.whatsapp.net","id":"C","kind":"video","media":{"mime_type":"video/mp4","size":100003,"handle":"h-pattern"}}}`).(*bridge.Message)
	if data.Text != "cap" || data.Media.MimeType != "image/jpeg" || file.Media.FileName != "x.pdf" || file.Media.Size != 3000000 {
		t.Fatalf("events: %+v %+v", data, file)
	}
	want := map[*bridge.Message][]byte{data: []byte("hello"), file: content}
	want[pat], _ = io.ReadAll(io.LimitReader(&Pattern{}, 100003))
	for m, w := range want {
		path := filepath.Join(dir, "out-"+m.Ref.ID)
		n, err := s.Download(t.Context(), m.Media, path)
		got, _ := os.ReadFile(path)
		if err != nil || n != int64(len(w)) || !bytes.Equal(got, w) {
			t.Errorf("%s: %d bytes, %v; equal %v", m.Media.Handle, n, err, bytes.Equal(got, w))
		}
	}
	if b := want[pat]; b[0] != 'a' || b[26] != 'a' || b[27] != 'b' {
		t.Errorf("pattern %q", b[:30])
	}
	acts, err := c.Do(Request{Op: "actions", Types: []string{"download"}})
	if err != nil || len(acts.Actions) != 3 || acts.Actions[1].Size == 0 {
		t.Fatalf("download actions %+v %v", acts, err)
	}
	// Content for a handle without an event (op media), as after a restart.
	if rep, err := c.Raw([]byte(`{"op":"media","media":{"handle":"h-late","data":"bGF0ZQ=="}}`)); err != nil || !rep.OK {
		t.Fatalf("op media: %+v %v", rep, err)
	}
	if rep, _ := c.Raw([]byte(`{"op":"media","media":{"handle":"h-none"}}`)); rep.OK {
		t.Error("op media without content accepted")
	}
	path := filepath.Join(dir, "late")
	if _, err := s.Download(t.Context(), &bridge.Media{Handle: "h-late"}, path); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != "late" {
		t.Errorf("op media download %q", b)
	}
}

func TestMediaExpiredAndRetry(t *testing.T) {
	s, events, sock := start(t)
	c := dial(t, sock)
	m := inject(t, c, events, `{"op":"event","event":{"type":"message","chat":"c@s.whatsapp.net","id":"OLD","kind":"image","media":{"handle":"h1","data":"b2xk"}}}`).(*bridge.Message)
	for _, code := range []string{"http_403", "http_404", "http_410"} {
		if _, err := c.Raw([]byte(`{"op":"script","rule":{"action":"download","id":"h1","error":"` + code + `","times":1}}`)); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Download(t.Context(), m.Media, filepath.Join(t.TempDir(), "x")); !errors.Is(err, bridge.ErrMediaExpired) {
			t.Errorf("%s: %v, want ErrMediaExpired", code, err)
		}
	}
	// The phone uploads it again: a new handle with the same content.
	got := make(chan bridge.Event, 1)
	go func() { got <- <-events }()
	if err := s.RequestMediaRetry(t.Context(), m.Ref, m.Media); err != nil {
		t.Fatal(err)
	}
	r := (<-got).(*bridge.MediaRetry)
	if r.Ref != m.Ref || r.Media == nil || r.Media.Handle != "h1/retry" {
		t.Fatalf("retry answer %+v", r)
	}
	path := filepath.Join(t.TempDir(), "again")
	if _, err := s.Download(t.Context(), r.Media, path); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != "old" {
		t.Errorf("after retry %q", b)
	}
	// Gone from the phone; and a phone that never answers.
	c.Raw([]byte(`{"op":"script","rule":{"action":"media_retry","id":"OLD","answer":"gone","times":1}}`))
	go func() { got <- <-events }()
	s.RequestMediaRetry(t.Context(), m.Ref, m.Media)
	if r := (<-got).(*bridge.MediaRetry); r.Media != nil || r.Err == "" {
		t.Errorf("gone: %+v", r)
	}
	c.Raw([]byte(`{"op":"script","rule":{"action":"media_retry","answer":"none","times":1}}`))
	if err := s.RequestMediaRetry(t.Context(), m.Ref, m.Media); err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-events:
		t.Errorf("answer %+v from a phone that never answers", ev)
	case <-time.After(100 * time.Millisecond):
	}
	acts, _ := c.Do(Request{Op: "actions", Types: []string{"media_retry"}})
	if len(acts.Actions) != 3 || acts.Actions[0].Target.ID != "OLD" || acts.Actions[0].Handle != "h1" {
		t.Errorf("media_retry actions %+v", acts.Actions)
	}
	// An injected answer (the phone answering later) works the same.
	ev := inject(t, c, events, `{"op":"event","event":{"type":"media_retry","chat":"c@s.whatsapp.net","sender":"c@s.whatsapp.net","id":"OLD","media":{"handle":"h2","data":"bmV3"}}}`).(*bridge.MediaRetry)
	if _, err := s.Download(t.Context(), ev.Media, path); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != "new" {
		t.Errorf("injected retry %q", b)
	}
	if ev := inject(t, c, events, `{"op":"event","event":{"type":"media_retry","chat":"c@s.whatsapp.net","id":"OLD"}}`).(*bridge.MediaRetry); ev.Media != nil || ev.Err == "" {
		t.Errorf("injected gone %+v", ev)
	}
}

func TestSendMedia(t *testing.T) {
	s, _, sock := start(t)
	c := dial(t, sock)
	dir := t.TempDir()
	small := filepath.Join(dir, "photo.jpg")
	os.WriteFile(small, []byte("\xff\xd8\xff not really a jpeg"), 0o600)
	large := filepath.Join(dir, "doc.pdf")
	lb := bytes.Repeat([]byte("%PDF"), MaxSentData)
	os.WriteFile(large, lb, 0o600)
	reply := bridge.MsgRef{Chat: "c@s.whatsapp.net", Sender: "c@s.whatsapp.net", ID: "Q"}
	ref, at, err := s.SendMedia(t.Context(), "c@s.whatsapp.net", &bridge.OutMedia{
		Kind: bridge.Image, Path: small, Size: 21, MimeType: "image/jpeg", Caption: "look",
		Width: 640, Height: 480, Thumbnail: []byte{1, 2}, Waveform: nil,
	}, bridge.SendOptions{ID: "3EB0OWNER1", ReplyTo: &reply, QuotedText: "q"})
	if err != nil || ref.ID != "3EB0OWNER1" || !ref.FromMe || at.IsZero() {
		t.Fatalf("send: %+v %v %v", ref, at, err)
	}
	_, _, err = s.SendMedia(t.Context(), "c@s.whatsapp.net", &bridge.OutMedia{
		Kind: bridge.Voice, Path: large, Size: int64(len(lb)), MimeType: "audio/ogg; codecs=opus",
		Duration: 3 * time.Second, Waveform: []byte{0, 50, 100},
	}, bridge.SendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	acts, err := c.Do(Request{Op: "actions", Types: []string{"send_media"}})
	if err != nil || len(acts.Actions) != 2 {
		t.Fatalf("actions %+v %v", acts, err)
	}
	a, m := acts.Actions[0], acts.Actions[0].Media
	sum := sha256.Sum256([]byte("\xff\xd8\xff not really a jpeg"))
	if a.ID != "3EB0OWNER1" || a.ReplyTo.ID != "Q" || a.QuotedText != "q" || m.Kind != "image" || m.Caption != "look" ||
		m.Width != 640 || m.Size != 21 || m.SHA256 != hex.EncodeToString(sum[:]) || string(m.Data) != "\xff\xd8\xff not really a jpeg" ||
		len(m.Thumbnail) != 2 {
		t.Errorf("image %+v %+v", a, m)
	}
	v := acts.Actions[1].Media
	sum = sha256.Sum256(lb)
	if v.Kind != "voice" || v.Data != nil || v.SHA256 != hex.EncodeToString(sum[:]) || len(v.Waveform) != 3 || v.Waveform[2] != 100 ||
		v.Duration != Duration(3*time.Second) || acts.Actions[1].ID == "" {
		t.Errorf("voice %+v", v)
	}
	// Scripted failures and a wrong size are recorded as failed sends.
	c.Raw([]byte(`{"op":"script","rule":{"action":"send_media","text_contains":"fail","error":"upload refused","times":1}}`))
	if _, _, err := s.SendMedia(t.Context(), "c@s.whatsapp.net", &bridge.OutMedia{Kind: bridge.Document, Path: small, Caption: "fail"}, bridge.SendOptions{}); err == nil {
		t.Error("scripted failure did not fail")
	}
	if _, _, err := s.SendMedia(t.Context(), "c@s.whatsapp.net", &bridge.OutMedia{Kind: bridge.Document, Path: small, Size: 5}, bridge.SendOptions{}); err == nil {
		t.Error("wrong size accepted")
	}
	if _, _, err := s.SendMedia(t.Context(), "c@s.whatsapp.net", &bridge.OutMedia{Kind: bridge.Text, Path: small}, bridge.SendOptions{}); err == nil {
		t.Error("text kind accepted")
	}
	acts, _ = c.Do(Request{Op: "actions", Types: []string{"send_media"}})
	if len(acts.Actions) != 3 || acts.Actions[0].Error == "" {
		t.Errorf("failed sends %+v", acts.Actions)
	}
}
