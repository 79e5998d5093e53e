package bridge_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"waxmpp/bridge"
	"waxmpp/bridge/media"
)

// fakeMedia is the media part of fakeWA: what downloads give, and what
// was sent.
type fakeMedia struct {
	mu        sync.Mutex
	content   map[string][]byte // handle → the file
	expired   map[string]bool   // handle → WhatsApp no longer has it
	gate      chan struct{}     // when set, downloads wait for it
	downloads int
	retries   []bridge.MsgRef
	sent      []sentMedia
	sendErr   error
}

type sentMedia struct {
	chat bridge.ChatID
	m    bridge.OutMedia
	opts bridge.SendOptions
	sum  [32]byte
	data []byte
}

var errNoMedia = errors.New("no media")

func (f *fakeWA) Download(ctx context.Context, m *bridge.Media, path string) (int64, error) {
	fm := f.media
	if fm == nil {
		return 0, errNoMedia
	}
	fm.mu.Lock()
	fm.downloads++
	gate, b, ok, gone := fm.gate, fm.content[m.Handle], fm.content[m.Handle] != nil, fm.expired[m.Handle]
	fm.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	if gone {
		return 0, fmt.Errorf("download: %w (HTTP 410)", bridge.ErrMediaExpired)
	}
	if !ok {
		return 0, errors.New("no such media")
	}
	return int64(len(b)), os.WriteFile(path, b, 0o600)
}

func (f *fakeWA) SendMedia(_ context.Context, chat bridge.ChatID, m *bridge.OutMedia, o bridge.SendOptions) (bridge.MsgRef, time.Time, error) {
	fm := f.media
	if fm == nil {
		return bridge.MsgRef{}, time.Time{}, errNoMedia
	}
	b, err := os.ReadFile(m.Path)
	if err != nil {
		return bridge.MsgRef{}, time.Time{}, err
	}
	fm.mu.Lock()
	serr := fm.sendErr
	if serr == nil {
		fm.sent = append(fm.sent, sentMedia{chat: chat, m: *m, opts: o, sum: sha256.Sum256(b), data: b})
	}
	fm.mu.Unlock()
	if serr != nil {
		return bridge.MsgRef{}, time.Time{}, serr
	}
	f.log("SendMedia %s %d %s id=%s", chat, m.Kind, m.MimeType, o.ID)
	return bridge.MsgRef{Chat: chat, Sender: me, ID: o.ID, FromMe: true}, t0, nil
}

func (f *fakeWA) RequestMediaRetry(_ context.Context, ref bridge.MsgRef, m *bridge.Media) error {
	fm := f.media
	if fm == nil {
		return errNoMedia
	}
	fm.mu.Lock()
	defer fm.mu.Unlock()
	fm.retries = append(fm.retries, ref)
	return nil
}

// waitLog waits until the core's log has a line containing want.
func (h *harness) waitLog(want string) {
	h.t.Helper()
	for end := time.Now().Add(20 * time.Second); !strings.Contains(h.log.String(), want); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(end) {
			h.t.Fatalf("no log line with %q:\n%s", want, h.log.String())
		}
	}
}

func (h *mediaHarness) downloads() int {
	h.wm.mu.Lock()
	defer h.wm.mu.Unlock()
	return h.wm.downloads
}

// fakeUploads is the XMPP side's upload service for media tests.
type fakeUploads struct {
	mu   sync.Mutex
	gate chan struct{}
	err  error
	got  []upload
}

type upload struct {
	name, ct string
	size     int64
	sum      [32]byte
	data     []byte
}

func (u *fakeUploads) upload(ctx context.Context, name, ct string, size int64, r io.Reader) (string, error) {
	u.mu.Lock()
	gate, err := u.gate, u.err
	u.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
	if err != nil {
		return "", err
	}
	b, _ := io.ReadAll(r)
	if int64(len(b)) != size {
		return "", fmt.Errorf("upload of %d bytes announced as %d", len(b), size)
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	u.got = append(u.got, upload{name: name, ct: ct, size: size, sum: sha256.Sum256(b), data: b})
	return fmt.Sprintf("https://up.example/%d/%s", len(u.got), name), nil
}

func (u *fakeUploads) all() []upload {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]upload(nil), u.got...)
}

// mediaHarness is a harness whose core relays media: the real
// bridge/media with ffmpeg (or without: noFFmpeg), a fake WhatsApp that
// serves and takes files, a fake upload service, and an https server on
// loopback serving bridge/media's test files to the owner's links.
type mediaHarness struct {
	*harness
	wm  *fakeMedia
	up  *fakeUploads
	srv *httptest.Server
}

func newMediaHarness(t *testing.T, withFFmpeg bool, aac string) *mediaHarness {
	t.Helper()
	h := &harness{t: t, path: filepath.Join(t.TempDir(), "w.db"), wa: &fakeWA{lookup: map[string]bridge.UserID{}}, x: &fakeXMPP{}, clock: t0, aac: aac}
	h.wa.sync = h.sync
	mh := &mediaHarness{harness: h, wm: &fakeMedia{content: map[string][]byte{}, expired: map[string]bool{}}, up: &fakeUploads{}}
	h.wa.media, h.x.files = mh.wm, mh.up
	mh.srv = httptest.NewTLSServer(http.StripPrefix("/share/", http.FileServer(http.Dir("media/testdata"))))
	t.Cleanup(mh.srv.Close)
	var ff *media.FFmpeg
	if withFFmpeg {
		var err error
		if ff, err = media.FindFFmpeg(context.Background()); err != nil {
			t.Fatalf("%v: install Debian's ffmpeg to run this test", err)
		}
	}
	pool := mh.srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	h.files = &media.Files{Fetcher: &media.Fetcher{Dir: filepath.Dir(h.path), RootCAs: pool, Timeout: 20 * time.Second}, FFmpeg: ff}
	h.start()
	t.Cleanup(h.stop)
	return mh
}

func testFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("media", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// photo is a WhatsApp photo message from Alice whose download is data.
func (h *mediaHarness) photo(id, caption string, data []byte) *bridge.Message {
	handle := "h-" + id
	h.wm.mu.Lock()
	h.wm.content[handle] = data
	h.wm.mu.Unlock()
	return &bridge.Message{Ref: bridge.MsgRef{Chat: alice, Sender: alice, ID: id}, Time: h.now(), PushName: "Alice",
		Kind: bridge.Image, Text: caption, Media: &bridge.Media{MimeType: "image/jpeg", Size: int64(len(data)), Handle: handle}}
}

func text(chat, id, body string) *bridge.Message {
	push := map[string]string{alice: "Alice", bob: "Bob"}[chat]
	return &bridge.Message{Ref: bridge.MsgRef{Chat: bridge.ChatID(chat), Sender: bridge.UserID(chat), ID: id}, Time: t0, PushName: push, Kind: bridge.Text, Text: body}
}

// waitSent waits until the core has sent the owner n messages (in all)
// and returns them.
func (h *mediaHarness) waitSent(n int) []bridge.Outgoing {
	h.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		h.x.mu.Lock()
		got := append([]bridge.Outgoing(nil), h.x.sent...)
		h.x.mu.Unlock()
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("%d messages to the owner, want %d:\n%s\nlog:\n%s", len(got), n, bodies(got), h.log.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func bodies(out []bridge.Outgoing) string {
	var b strings.Builder
	for _, o := range out {
		fmt.Fprintf(&b, "  id=%s replace=%s url=%s: %q\n", o.ID, o.Replace, o.URL, o.Body)
	}
	return b.String()
}

// leftTemp fails when a media transfer left a file beside the state file.
func (h *mediaHarness) leftTemp() {
	h.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		m, _ := filepath.Glob(filepath.Join(filepath.Dir(h.path), media.TempPrefix+"*"))
		if len(m) == 0 {
			return
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("temporary files left: %v", m)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestMediaToOwner: a photo reaches the owner as its line (chat, sender,
// caption) and a message whose body is the URL with the same URL as OOB;
// the upload has the bytes WhatsApp sent, the type and an extension that
// matches; both messages are mapped (a reply to either routes to the
// chat); a text sent after the photo comes after it, while a slow
// transfer does not hold up another chat.
func TestMediaToOwner(t *testing.T) {
	h := newMediaHarness(t, false, "")
	jpeg := testFile(t, "photo.jpg")
	gate := make(chan struct{})
	h.up.mu.Lock()
	h.up.gate = gate
	h.up.mu.Unlock()
	h.send(h.photo("P1", "the *beach*", jpeg), text(alice, "T1", "after the photo"), text(bob, "B1", "meanwhile"))
	got := h.waitSent(1)
	if len(got) != 1 || !strings.Contains(got[0].Body, "meanwhile") {
		t.Fatalf("while Alice's photo uploads, want only Bob's text:\n%s", bodies(got))
	}
	close(gate)
	got = h.waitSent(4)
	if !strings.HasSuffix(got[1].Body, "📷 photo: the *beach*") || !strings.HasPrefix(got[1].Body, "*Alice*: ") {
		t.Errorf("photo line %q", got[1].Body)
	}
	if got[2].Body != got[2].URL || !strings.HasPrefix(got[2].URL, "https://up.example/") || !strings.HasSuffix(got[2].URL, ".jpg") {
		t.Errorf("file message body %q url %q", got[2].Body, got[2].URL)
	}
	if !strings.Contains(got[3].Body, "after the photo") {
		t.Errorf("order: the text after the photo is %q", got[3].Body)
	}
	ups := h.up.all()
	if len(ups) != 1 || ups[0].sum != sha256.Sum256(jpeg) || ups[0].ct != "image/jpeg" || !strings.HasPrefix(ups[0].name, "photo_") || !strings.HasSuffix(ups[0].name, ".jpg") {
		t.Fatalf("uploads %+v", ups)
	}
	// A reply to the file message routes to Alice.
	h.owner(&bridge.OwnerText{Body: "nice", ReplyTo: got[2].ID})
	h.sync()
	if calls := h.wa.take(); len(calls) != 1 || !strings.Contains(calls[0], "SendText "+alice) {
		t.Errorf("reply to the file: %v", calls)
	}
	h.leftTemp()
	// Delivered again (a restart before WhatsApp got the acknowledgement):
	// relayed once.
	h.send(h.photo("P1", "the *beach*", jpeg))
	h.sync()
	time.Sleep(50 * time.Millisecond)
	if n := len(h.x.take()); n != 4 || len(h.up.all()) != 1 {
		t.Errorf("a duplicate was relayed: %d messages, %d uploads", n, len(h.up.all()))
	}
}

// TestMediaFailures: each failure ends in a line with kind, size and
// "open it on your phone", never in silence, and leaves no file behind.
func TestMediaFailures(t *testing.T) {
	for _, c := range []struct {
		name string
		err  error
		want string
	}{
		{"too large", fmt.Errorf("xmpp: %w", bridge.ErrUploadTooLarge), "it is larger than your XMPP server accepts"},
		{"quota", fmt.Errorf("xmpp: %w", bridge.ErrUploadQuota), "your XMPP server's upload quota is used up"},
		{"no upload", fmt.Errorf("xmpp: %w", bridge.ErrNoUpload), "your XMPP server offers no file upload"},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newMediaHarness(t, false, "")
			h.up.err = c.err
			h.send(h.photo("P1", "", bytes.Repeat([]byte{0xff}, 2_300_000)))
			got := h.waitSent(1)
			if b := got[0].Body; !strings.Contains(b, "📷 photo (2.3 MB) could not be relayed: "+c.want) || !strings.Contains(b, "Open it on your phone.") {
				t.Errorf("line %q", b)
			}
			h.leftTemp()
		})
	}
	t.Run("download", func(t *testing.T) {
		h := newMediaHarness(t, false, "")
		m := h.photo("P1", "look", []byte("x"))
		m.Media.Handle = "missing"
		h.send(m)
		// Tried again, then told: the download failing is a passing
		// failure, so it takes the retries (30 s apart) in the clock.
		// The core schedules the next try from its clock when its loop
		// takes the failed download's result, which is after the fake
		// counted the download: the clock moves on only once the
		// retry is scheduled, or the try would fall due a tick late.
		for try := 1; try < 4; try++ {
			h.waitLog(fmt.Sprintf(`msg="transfer failed; trying again" err="download from WhatsApp: no such media" try=%d`, try))
			h.advance(2 * time.Minute) // the next try is due at the next tick
		}
		got := h.waitSent(1)
		if b := got[0].Body; !strings.Contains(b, "could not be relayed: the download from WhatsApp failed. Open it on your phone.") || !strings.Contains(b, "look") {
			t.Errorf("line %q", b)
		}
		if n := h.downloads(); n != 4 {
			t.Errorf("%d downloads, want 4 tries", n)
		}
		h.leftTemp()
	})
}

// TestMediaExpired: WhatsApp no longer has the photo: the owner reads
// that the phone is asked, the retry receipt goes out, and the phone's
// answer relays the file (correcting that line), or says it is gone.
func TestMediaExpired(t *testing.T) {
	h := newMediaHarness(t, false, "")
	jpeg := testFile(t, "photo.jpg")
	m := h.photo("OLD", "from March", jpeg)
	h.wm.expired[m.Media.Handle] = true
	h.send(m)
	got := h.waitSent(1)
	if b := got[0].Body; !strings.Contains(b, "old 📷 photo (no longer on WhatsApp's servers), asking your phone for it…") {
		t.Fatalf("line %q", b)
	}
	if len(h.wm.retries) != 1 || h.wm.retries[0].ID != "OLD" {
		t.Fatalf("retries %v", h.wm.retries)
	}
	// A restart in between: the core still knows what it asked for.
	h.restart()
	h.wm.content["new-handle"] = jpeg
	h.send(&bridge.MediaRetry{Ref: m.Ref, Media: &bridge.Media{Handle: "new-handle"}})
	got = h.waitSent(3)
	if got[1].Replace != got[0].ID || !strings.HasSuffix(got[1].Body, "📷 photo: from March") || got[2].URL == "" || got[2].Body != got[2].URL {
		t.Errorf("after the phone's answer:\n%s", bodies(got))
	}
	if ups := h.up.all(); len(ups) != 1 || ups[0].sum != sha256.Sum256(jpeg) {
		t.Errorf("uploads %+v", ups)
	}
	// Another, which the phone no longer has.
	m2 := h.photo("OLDER", "", jpeg)
	h.wm.expired[m2.Media.Handle] = true
	h.send(m2)
	h.waitSent(4)
	h.send(&bridge.MediaRetry{Ref: m2.Ref, Err: "not on the phone"})
	got = h.waitSent(5)
	if got[4].Replace != got[3].ID || !strings.Contains(got[4].Body, "could not be relayed: it is no longer on WhatsApp's servers nor on your phone. Open it on your phone.") {
		t.Errorf("gone:\n%s", bodies(got[3:]))
	}
	h.leftTemp()
}

// TestMediaViewOnce: a notice, nothing downloaded.
func TestMediaViewOnce(t *testing.T) {
	h := newMediaHarness(t, false, "")
	m := h.photo("V1", "", testFile(t, "photo.jpg"))
	m.ViewOnce = true
	h.send(m)
	got := h.waitSent(1)
	if !strings.Contains(got[0].Body, "👁 a view-once photo: open it on your phone") || got[0].URL != "" {
		t.Errorf("view once %q", got[0].Body)
	}
	if h.wm.downloads != 0 {
		t.Errorf("%d downloads", h.wm.downloads)
	}
}

// TestMediaRestartMidTransfer: the core stops while a photo uploads; after
// the restart the transfer runs again and the owner gets exactly one
// photo.
func TestMediaRestartMidTransfer(t *testing.T) {
	h := newMediaHarness(t, false, "")
	jpeg := testFile(t, "photo.jpg")
	h.up.mu.Lock()
	h.up.gate = make(chan struct{})
	h.up.mu.Unlock()
	h.send(h.photo("P1", "", jpeg), text(alice, "T1", "then this"))
	time.Sleep(100 * time.Millisecond)
	// The upload under way waits on the old gate until the crash ends
	// it; the core after the restart finds the server quick.
	h.up.mu.Lock()
	h.up.gate = nil
	h.up.mu.Unlock()
	h.crash()
	h.waitSent(3)
	time.Sleep(100 * time.Millisecond) // nothing more comes
	got := h.waitSent(3)
	if len(got) != 3 {
		t.Log(h.log.String())
	}
	if len(got) != 3 || got[1].URL == "" || !strings.Contains(got[2].Body, "then this") {
		t.Fatalf("after the restart:\n%s", bodies(got))
	}
	h.leftTemp()
}

// ownerFile is the owner sending a file as Conversations does: the body
// is the URL, and an OOB element carries it.
func (h *mediaHarness) ownerFile(name string) string {
	u := h.srv.URL + "/share/" + name
	return h.owner(&bridge.OwnerText{Body: u, URL: u, File: u})
}

// TestMediaFromOwner: files the owner sends become the WhatsApp messages
// they should, with their fields; a text after a file to the same chat
// goes after it; a replay of the same message sends one; a link inside
// text stays text.
func TestMediaFromOwner(t *testing.T) {
	for _, ff := range []bool{true, false} {
		t.Run(fmt.Sprintf("ffmpeg=%v", ff), func(t *testing.T) {
			h := newMediaHarness(t, ff, "")
			h.send(text(alice, "A1", "hi"))
			h.waitSent(1)
			h.say("/to alice")
			cases := []struct {
				file string
				kind bridge.MsgKind
				mime string
			}{
				{"photo.jpg", bridge.Image, "image/jpeg"},
				{"photo.png", bridge.Image, "image/jpeg"},
				{"photo.webp", bridge.Image, "image/jpeg"},
				{"video.mp4", bridge.Video, "video/mp4"},
				{"voice.ogg", bridge.Voice, "audio/ogg; codecs=opus"},
			}
			if ff {
				cases = append(cases, []struct {
					file string
					kind bridge.MsgKind
					mime string
				}{
					{"voice.m4a", bridge.Voice, "audio/ogg; codecs=opus"},
					{"anim.gif", bridge.Video, "video/mp4"},
					{"clip.webm", bridge.Video, "video/mp4"},
				}...)
			} else {
				cases = append(cases, []struct {
					file string
					kind bridge.MsgKind
					mime string
				}{
					{"voice.m4a", bridge.Audio, "audio/mp4"},
					{"anim.gif", bridge.Document, "image/gif"},
					{"clip.webm", bridge.Document, "video/webm"},
				}...)
			}
			var ids []string
			for _, c := range cases {
				ids = append(ids, h.ownerFile(c.file))
			}
			last := h.say("and a link https://example.org/x inside text")
			deadline := time.Now().Add(60 * time.Second)
			for {
				h.wa.mu.Lock()
				n := len(h.wa.calls) // each file's SendMedia, then the text's SendText
				h.wa.mu.Unlock()
				if n >= len(cases)+1 || time.Now().After(deadline) {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			h.sync()
			calls := h.wa.take()
			if len(calls) != len(cases)+1 || !strings.HasPrefix(calls[len(calls)-1], "SendText "+alice+" \"and a link") {
				t.Fatalf("calls, in order:\n%s", strings.Join(calls, "\n"))
			}
			for i, c := range cases {
				s := h.wm.sent[i]
				if s.m.Kind != c.kind || s.m.MimeType != c.mime || s.chat != alice || s.opts.ID == "" {
					t.Errorf("%s: sent %v %q to %s id %q; want %v %q", c.file, s.m.Kind, s.m.MimeType, s.chat, s.opts.ID, c.kind, c.mime)
				}
				if s.m.Size != int64(len(s.data)) {
					t.Errorf("%s: Size %d, file %d", c.file, s.m.Size, len(s.data))
				}
				switch c.kind {
				case bridge.Image:
					if s.m.Width != 80 && s.m.Width != 40 || len(s.m.Thumbnail) == 0 || !bytes.HasPrefix(s.data, []byte{0xff, 0xd8}) {
						t.Errorf("%s: photo %dx%d thumb %d", c.file, s.m.Width, s.m.Height, len(s.m.Thumbnail))
					}
					if c.file == "photo.jpg" && s.sum != sha256.Sum256(testFile(t, c.file)) {
						t.Errorf("a JPEG goes as it is")
					}
				case bridge.Video:
					if s.m.Width == 0 || s.m.Duration == 0 || (ff && len(s.m.Thumbnail) == 0) {
						t.Errorf("%s: video %dx%d %v thumb %d", c.file, s.m.Width, s.m.Height, s.m.Duration, len(s.m.Thumbnail))
					}
					if c.file == "anim.gif" && !s.m.GIF {
						t.Errorf("%s: not gifPlayback", c.file)
					}
				case bridge.Voice:
					if s.m.Duration < time.Second || (ff && len(s.m.Waveform) != 64) {
						t.Errorf("%s: voice %v waveform %v", c.file, s.m.Duration, s.m.Waveform)
					}
				case bridge.Audio:
					if s.m.Duration < time.Second {
						t.Errorf("%s: audio %v", c.file, s.m.Duration)
					}
				case bridge.Document:
					if s.m.FileName != c.file || s.sum != sha256.Sum256(testFile(t, c.file)) {
						t.Errorf("%s: document %q", c.file, s.m.FileName)
					}
				}
			}
			// Replays of the same messages (the server's archive after
			// a restart) send nothing again.
			for i, c := range cases[:2] {
				u := h.srv.URL + "/share/" + c.file
				h.owner(&bridge.OwnerText{OwnerMeta: bridge.OwnerMeta{ID: ids[i]}, Body: u, URL: u, File: u})
			}
			h.owner(&bridge.OwnerText{OwnerMeta: bridge.OwnerMeta{ID: last}, Body: "and a link https://example.org/x inside text"})
			h.sync()
			time.Sleep(100 * time.Millisecond)
			if calls := h.wa.take(); len(calls) != 0 {
				t.Errorf("replays sent: %v", calls)
			}
			h.leftTemp()
		})
	}
}

// TestMediaFromOwnerFails: a file that cannot be fetched ends in a line
// naming the chat, and what follows it still goes.
func TestMediaFromOwnerFails(t *testing.T) {
	h := newMediaHarness(t, false, "")
	h.send(text(alice, "A1", "hi"))
	h.waitSent(1)
	h.say("/to alice")
	u := h.srv.URL + "/share/missing.jpg"
	h.owner(&bridge.OwnerText{Body: u, URL: u, File: u})
	h.say("still here")
	got := h.waitSent(3) // hi, the answer to /to, the failure
	if !strings.Contains(got[2].Body, "Not sent to Alice") || !strings.Contains(got[2].Body, "answered 404") {
		t.Errorf("failure line %q", got[2].Body)
	}
	h.sync()
	if calls := h.wa.take(); len(calls) != 1 || !strings.Contains(calls[0], "still here") {
		t.Errorf("calls %v", calls)
	}
	h.leftTemp()
}

// TestMediaVoiceAAC: with "always" (or an iOS client online) a WhatsApp
// voice note reaches the owner as AAC in .m4a.
func TestMediaVoiceAAC(t *testing.T) {
	h := newMediaHarness(t, true, bridge.VoiceAACAlways)
	ogg := testFile(t, "voice.ogg")
	h.wm.content["v1"] = ogg
	h.send(&bridge.Message{Ref: bridge.MsgRef{Chat: alice, Sender: alice, ID: "V1"}, Time: t0, Kind: bridge.Voice,
		Media: &bridge.Media{MimeType: "audio/ogg; codecs=opus", Size: int64(len(ogg)), Duration: 2 * time.Second, Handle: "v1"}})
	got := h.waitSent(2)
	if !strings.Contains(got[0].Body, "🎤 voice message (0:02)") || !strings.HasSuffix(got[1].URL, ".m4a") {
		t.Errorf("voice:\n%s", bodies(got))
	}
	if ups := h.up.all(); len(ups) != 1 || ups[0].ct != "audio/mp4" || !bytes.Contains(ups[0].data[:32], []byte("ftyp")) {
		t.Errorf("upload %+v", ups[0].ct)
	}
}
