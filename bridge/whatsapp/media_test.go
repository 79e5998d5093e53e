package whatsapp

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waMmsRetry"
	wastore "go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	"go.mau.fi/whatsmeow/util/gcmutil"
	"go.mau.fi/whatsmeow/util/hkdfutil"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"waxmpp/bridge"
)

// uploaded is one UploadReader call of the fake client.
type uploaded struct {
	mt      whatsmeow.MediaType
	sha     [32]byte
	n       int64
	tempDir string // where the encryption's temporary file was
}

// fakeUpload reads the plaintext as whatsmeow does (streamed) and writes
// "ciphertext" to the temporary file it was given.
func fakeUpload(plain io.Reader, tmp io.ReadWriteSeeker, mt whatsmeow.MediaType) (uploaded, whatsmeow.UploadResponse, error) {
	if tmp == nil {
		return uploaded{}, whatsmeow.UploadResponse{}, errors.New("no temporary file: whatsmeow would use /tmp")
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(h, tmp), plain)
	if err != nil {
		return uploaded{}, whatsmeow.UploadResponse{}, err
	}
	u := uploaded{mt: mt, n: n}
	copy(u.sha[:], h.Sum(nil))
	if f, ok := tmp.(*os.File); ok {
		u.tempDir = filepath.Dir(f.Name())
	}
	return u, whatsmeow.UploadResponse{
		URL: "https://mmg.whatsapp.net/o1/v/t62/x", DirectPath: "/o1/v/t62/x?ccb=1", MediaKey: bytes.Repeat([]byte{7}, 32),
		FileEncSHA256: bytes.Repeat([]byte{0xE}, 32), FileSHA256: u.sha[:], FileLength: uint64(n),
	}, nil
}

func (f *fakeClient) UploadReader(ctx context.Context, plain io.Reader, tmp io.ReadWriteSeeker, mt whatsmeow.MediaType) (whatsmeow.UploadResponse, error) {
	u, resp, err := fakeUpload(plain, tmp, mt)
	f.mu.Lock()
	f.uploads = append(f.uploads, u)
	f.mu.Unlock()
	return resp, err
}

func (f *fakeClient) SendMediaRetryReceipt(ctx context.Context, info *types.MessageInfo, key []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.retries = append(f.retries, *info)
	return nil
}

func (r *recordingClient) UploadReader(ctx context.Context, plain io.Reader, tmp io.ReadWriteSeeker, mt whatsmeow.MediaType) (whatsmeow.UploadResponse, error) {
	_, resp, err := fakeUpload(plain, tmp, mt)
	return resp, err
}

// TestSendMediaGolden: each kind's message, with the upload's fields and
// the ones the phone shows, as real whatsmeow protobufs
// (testdata/send/media_*.golden.json).
func TestSendMediaGolden(t *testing.T) {
	h := newHarness(t, true)
	var rec *recordingClient
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	a, err := newAdapter(context.Background(), testConfig(h.db, log, h.events), func(d *wastore.Device) client {
		rec = &recordingClient{Client: whatsmeow.NewClient(d, nil)}
		return rec
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	a.now = func() time.Time { return t0 }
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	os.WriteFile(file, []byte("the file's bytes"), 0o600)
	dm := bridge.ChatID(alice.String())
	grp := bridge.ChatID(group.String())
	reply := bridge.SendOptions{ID: "3EB0FROMXMPP", ReplyTo: &bridge.MsgRef{Chat: grp, Sender: bridge.UserID(bob.String()), ID: "Q1"}, QuotedText: "photos?"}
	cases := []struct {
		name string
		chat bridge.ChatID
		m    bridge.OutMedia
		opts bridge.SendOptions
	}{
		{"media_image", grp, bridge.OutMedia{Kind: bridge.Image, MimeType: "image/jpeg", Caption: "the *beach*", Width: 1600, Height: 1200, Thumbnail: []byte{0xFF, 0xD8, 0xFF, 0xD9}}, reply},
		{"media_video_gif", dm, bridge.OutMedia{Kind: bridge.Video, MimeType: "video/mp4", Width: 480, Height: 270, Duration: 2400 * time.Millisecond, GIF: true, Thumbnail: []byte{0xFF, 0xD8}}, bridge.SendOptions{}},
		{"media_voice", dm, bridge.OutMedia{Kind: bridge.Voice, MimeType: "audio/ogg; codecs=opus", Duration: 7 * time.Second, Waveform: []byte{0, 10, 100, 50}}, bridge.SendOptions{ID: "3EB0VOICE"}},
		{"media_audio", dm, bridge.OutMedia{Kind: bridge.Audio, MimeType: "audio/mp4", Duration: 61 * time.Second}, bridge.SendOptions{}},
		{"media_document", dm, bridge.OutMedia{Kind: bridge.Document, MimeType: "application/pdf", FileName: "Report 2024.pdf"}, bridge.SendOptions{}},
		{"media_document_caption", dm, bridge.OutMedia{Kind: bridge.Document, MimeType: "application/pdf", FileName: "x.pdf", Caption: "read this"}, bridge.SendOptions{}},
		{"media_sticker", grp, bridge.OutMedia{Kind: bridge.Sticker, MimeType: "image/webp", Width: 512, Height: 512}, bridge.SendOptions{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n := len(rec.sent)
			tc.m.Path = file
			if _, _, err := a.SendMedia(context.Background(), tc.chat, &tc.m, tc.opts); err != nil {
				t.Fatal(err)
			}
			if len(rec.sent) != n+1 {
				t.Fatalf("%d messages sent", len(rec.sent)-n)
			}
			golden(t, tc.name, rec.sent[n])
		})
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(h.db.Path()), ".waxmpp-*")); len(left) > 0 {
		t.Errorf("upload left behind: %v", left)
	}
	if _, _, err := a.SendMedia(context.Background(), dm, &bridge.OutMedia{Kind: bridge.Text, Path: file}, bridge.SendOptions{}); err == nil {
		t.Error("a text kind was sent as media")
	}
	if _, _, err := a.SendMedia(context.Background(), dm, &bridge.OutMedia{Kind: bridge.Image, Path: filepath.Join(dir, "missing")}, bridge.SendOptions{}); err == nil {
		t.Error("a missing file was sent")
	}
}

// golden compares a sent message with testdata/send/<name>.golden.json.
func golden(t *testing.T, name string, s sentMsg) {
	t.Helper()
	body, err := protojson.Marshal(s.msg)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	json.Unmarshal(body, &v)
	pretty, _ := json.MarshalIndent(v, "", "  ")
	head, _ := json.Marshal(map[string]string{"to": s.to.String(), "id": string(s.id)})
	got := append(append(head, '\n'), append(pretty, '\n')...)
	path := filepath.Join("testdata", "send", name+".golden.json")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s: got\n%s\nwant\n%s", path, got, want)
	}
}

// TestSendMediaStreams: the upload reads the file through whatsmeow's
// UploadReader with a temporary file beside the state file, and the
// message carries what the upload returned.
func TestSendMediaStreams(t *testing.T) {
	h := newHarness(t, true)
	h.run()
	c := h.client()
	content := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	path := filepath.Join(t.TempDir(), "video.mp4")
	os.WriteFile(path, content, 0o600)
	ref, _, err := h.a.SendMedia(context.Background(), bridge.ChatID(alice.String()),
		&bridge.OutMedia{Kind: bridge.Video, Path: path, Size: int64(len(content)), MimeType: "video/mp4"}, bridge.SendOptions{ID: "3EB0X1"})
	if err != nil || ref.ID != "3EB0X1" {
		t.Fatal(ref, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.uploads) != 1 || c.uploads[0].sha != sha256.Sum256(content) || c.uploads[0].mt != whatsmeow.MediaVideo ||
		c.uploads[0].tempDir != filepath.Dir(h.db.Path()) {
		t.Fatalf("uploads %+v", c.uploads)
	}
	v := c.sent[len(c.sent)-1].msg.GetVideoMessage()
	if v.GetFileLength() != uint64(len(content)) || !bytes.Equal(v.GetFileSHA256(), c.uploads[0].sha[:]) || v.GetDirectPath() == "" {
		t.Errorf("video message %v", v)
	}
}

func (f *fakeClient) expiredDownload(p string) error {
	switch p {
	case "/gone403":
		return whatsmeow.ErrMediaDownloadFailedWith403
	case "/gone404":
		return whatsmeow.ErrMediaDownloadFailedWith404
	case "/gone410":
		return whatsmeow.ErrMediaDownloadFailedWith410
	}
	return nil
}

// TestMediaExpiredAndRetry: WhatsApp's 403/404/410 are ErrMediaExpired;
// the retry receipt names the message, the handle is kept across a
// restart, and the phone's answer (a real encrypted notification)
// becomes a MediaRetry with the new path, or says the file is gone.
func TestMediaExpiredAndRetry(t *testing.T) {
	h := newHarness(t, true)
	h.run()
	c := h.client()
	dl := filepath.Join(t.TempDir(), "dl")
	for _, p := range []string{"/gone403", "/gone404", "/gone410"} {
		_, err := h.a.Download(context.Background(), &bridge.Media{Handle: `{"t":"image","p":"` + p + `","k":"AA=="}`}, dl)
		if !errors.Is(err, bridge.ErrMediaExpired) {
			t.Errorf("%s: %v", p, err)
		}
	}
	key := bytes.Repeat([]byte{3}, 32)
	hb, _ := json.Marshal(mediaHandle{Type: "image", DirectPath: "/old", MediaKey: key, SHA256: []byte{1}, EncSHA256: []byte{2}, Length: 1234})
	media := &bridge.Media{MimeType: "image/jpeg", Size: 1234, Handle: string(hb)}
	ref := bridge.MsgRef{Chat: bridge.ChatID(group.String()), Sender: bridge.UserID(bob.String()), ID: "3A0123"}
	if err := h.a.RequestMediaRetry(context.Background(), ref, media); err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	if len(c.retries) != 1 || c.retries[0].ID != "3A0123" || c.retries[0].Chat != group || c.retries[0].Sender != bob || !c.retries[0].IsGroup {
		t.Fatalf("retry receipts %+v", c.retries)
	}
	c.mu.Unlock()

	// The answer arrives after a restart.
	h.stop()
	h.run()
	c = h.client()
	c.dispatch(retryAnswer(t, key, "3A0123", waMmsRetry.MediaRetryNotification_SUCCESS, "/new/path"))
	r, ok := h.next().(*bridge.MediaRetry)
	if !ok || r.Media == nil || r.Ref.ID != "3A0123" || r.Ref.Chat != ref.Chat || r.Ref.Sender != ref.Sender {
		t.Fatalf("answer %+v", r)
	}
	var nh mediaHandle
	json.Unmarshal([]byte(r.Media.Handle), &nh)
	if nh.DirectPath != "/new/path" || !bytes.Equal(nh.MediaKey, key) || nh.Length != 1234 {
		t.Errorf("new handle %+v", nh)
	}
	// Answered: a second answer for it is dropped.
	c.dispatch(retryAnswer(t, key, "3A0123", waMmsRetry.MediaRetryNotification_SUCCESS, "/again"))
	h.none()

	// Gone from the phone: the unencrypted error, and a NOT_FOUND result.
	for _, gone := range []*events.MediaRetry{
		{Error: &events.MediaRetryError{Code: 2}, MessageID: "3A0124", ChatID: group, SenderID: bob},
		retryAnswer(t, key, "3A0125", waMmsRetry.MediaRetryNotification_NOT_FOUND, ""),
	} {
		if err := h.a.RequestMediaRetry(context.Background(), bridge.MsgRef{Chat: ref.Chat, Sender: ref.Sender, ID: string(gone.MessageID)}, media); err != nil {
			t.Fatal(err)
		}
		c.dispatch(gone)
		if r, ok := h.next().(*bridge.MediaRetry); !ok || r.Media != nil || !strings.Contains(r.Err, "no longer on the phone") {
			t.Errorf("gone %s: %+v", gone.MessageID, r)
		}
	}
	// An answer nobody asked for is dropped.
	c.dispatch(retryAnswer(t, key, "NOTASKED", waMmsRetry.MediaRetryNotification_SUCCESS, "/x"))
	h.none()
	if err := h.a.RequestMediaRetry(context.Background(), ref, &bridge.Media{Handle: "junk"}); err == nil {
		t.Error("a junk handle was accepted")
	}
}

// retryAnswer is the notification the phone sends, encrypted as
// whatsmeow expects (HKDF of the media key, AES-GCM with the message id).
func retryAnswer(t *testing.T, mediaKey []byte, id string, result waMmsRetry.MediaRetryNotification_ResultType, path string) *events.MediaRetry {
	n := &waMmsRetry.MediaRetryNotification{StanzaID: proto.String(id), Result: result.Enum()}
	if path != "" {
		n.DirectPath = proto.String(path)
	}
	plain, err := proto.Marshal(n)
	if err != nil {
		t.Fatal(err)
	}
	iv := bytes.Repeat([]byte{9}, 12)
	ct, err := gcmutil.Encrypt(hkdfutil.SHA256(mediaKey, nil, []byte("WhatsApp Media Retry Notification"), 32), iv, plain, []byte(id))
	if err != nil {
		t.Fatal(err)
	}
	return &events.MediaRetry{Ciphertext: ct, IV: iv, MessageID: types.MessageID(id), ChatID: group, SenderID: bob, Timestamp: t0}
}
