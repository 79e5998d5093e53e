//go:build simwa

package main

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	pt "waxmpp/bridge/prosodytest"
	"waxmpp/bridge/simwa"
)

// End-to-end media: the real binary, Prosody's mod_http_file_share on
// https, the simulated WhatsApp. What the owner downloads from the upload
// service is compared byte for byte (SHA-256) with what WhatsApp sent, and
// what WhatsApp gets with what the owner uploaded.

func mediaFile(t testing.TB, name string) (string, []byte) {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("..", "..", "bridge", "media", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return p, b
}

// httpClient trusts the test server's CA.
func (e *simEnv) httpClient() *http.Client {
	pem, err := os.ReadFile(e.srv.CAFile)
	if err != nil {
		e.tb.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	return &http.Client{Timeout: 5 * time.Minute, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
}

// fetch downloads url as the owner's client does.
func (e *simEnv) fetch(url string) ([]byte, string) {
	e.tb.Helper()
	resp, err := e.httpClient().Get(url)
	if err != nil {
		e.tb.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		e.tb.Fatalf("GET %s: %s %v", url, resp.Status, err)
	}
	return b, resp.Header.Get("Content-Type")
}

var slotSeq int

// ownerSlot asks the upload service for a slot as the owner's client does
// (XEP-0363) and returns its PUT and GET URLs.
func (e *simEnv) ownerSlot(name, ct string, size int64) (put, get string, headers http.Header) {
	e.tb.Helper()
	slotSeq++
	id := fmt.Sprintf("slot%d", slotSeq)
	m := e.mark()
	e.owner.Send(fmt.Sprintf("<iq type='get' id='%s' to='upload.%s'><request xmlns='urn:xmpp:http:upload:0' filename='%s' size='%d' content-type='%s'/></iq>",
		id, pt.Domain, pt.Esc(name), size, pt.Esc(ct)))
	res := e.stanza(m, 10*time.Second, "upload slot", func(s *pt.Elem) bool { return s.XMLName.Local == "iq" && s.Attr("id") == id })
	slot := res.Child("urn:xmpp:http:upload:0", "slot")
	if slot == nil {
		e.tb.Fatalf("no slot: %s", res)
	}
	headers = http.Header{}
	p := slot.Child("", "put")
	for _, h := range p.Children {
		if h.XMLName.Local == "header" {
			headers.Set(h.Attr("name"), h.Text)
		}
	}
	return p.Attr("url"), slot.Child("", "get").Attr("url"), headers
}

// put uploads r (size bytes) to a slot's PUT URL.
func (e *simEnv) put(url string, headers http.Header, ct string, size int64, r io.Reader) {
	e.tb.Helper()
	req, err := http.NewRequest(http.MethodPut, url, r)
	if err != nil {
		e.tb.Fatal(err)
	}
	req.ContentLength = size
	req.Header = headers.Clone()
	req.Header.Set("Content-Type", ct)
	resp, err := e.httpClient().Do(req)
	if err != nil {
		e.tb.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 201 && resp.StatusCode != 200 {
		e.tb.Fatalf("PUT %s: %s", url, resp.Status)
	}
}

// ownerUpload uploads data as the owner's client does and returns its URL.
func (e *simEnv) ownerUpload(name, ct string, data []byte) string {
	e.tb.Helper()
	put, get, h := e.ownerSlot(name, ct, int64(len(data)))
	e.put(put, h, ct, int64(len(data)), bytes.NewReader(data))
	return get
}

// sendFile sends a file as Conversations does: the body is the URL, with
// the same URL as XEP-0066 OOB.
func (e *simEnv) sendFile(url string) string {
	e.tb.Helper()
	return e.send(url, "<x xmlns='jabber:x:oob'><url>"+pt.Esc(url)+"</url></x>")
}

// fileMessage waits for a message from the bot after m whose body is a URL
// with the same URL as OOB (a relayed file).
func (e *simEnv) fileMessage(m mark, timeout time.Duration) *pt.Elem {
	e.tb.Helper()
	return e.stanza(m, timeout, "file message (body = URL = OOB)", func(s *pt.Elem) bool {
		if !e.fromBot(s) {
			return false
		}
		x := s.Child("jabber:x:oob", "x")
		return x != nil && x.Child("", "url") != nil && x.Child("", "url").Text == s.Body() && strings.HasPrefix(s.Body(), "https://")
	})
}

// noTempFiles fails when a transfer left a file beside the state file.
func (e *simEnv) noTempFiles() {
	e.tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		left, _ := filepath.Glob(filepath.Join(e.dir, ".waxmpp-media-*"))
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			e.tb.Fatalf("temporary files left: %v", left)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waMedia injects a media message from Alice whose content is the file at
// path, as the simulator's JSON protocol carries it.
func (e *simEnv) waMedia(id, kind, mime, fileName, caption, path string, size int64, dur time.Duration) {
	e.tb.Helper()
	ev := fmt.Sprintf(`{"type":"message","chat":%q,"sender":%q,"id":%q,"kind":%q,"text":%q,"push_name":"Alice","media":{"mime_type":%q,"file_name":%q,"size":%d,"handle":%q`,
		alice, alice, id, kind, caption, mime, fileName, size, "h-"+id)
	if path != "" { // else the simulator's pattern
		ev += fmt.Sprintf(`,"file":%q`, path)
	}
	if dur > 0 {
		ev += fmt.Sprintf(`,"duration":%q`, dur.String())
	}
	e.injectJSON(ev + `}}`)
}

func TestSimMediaToOwner(t *testing.T) {
	e := newSimEnv(t, envOptions{})
	e.addressBook()
	dir := t.TempDir()
	pdf := filepath.Join(dir, "report.pdf")
	os.WriteFile(pdf, append([]byte("%PDF-1.4\n"), bytes.Repeat([]byte("report "), 20000)...), 0o600)
	jpg, _ := mediaFile(t, "photo.jpg")
	mp4, _ := mediaFile(t, "video.mp4")
	m4a, _ := mediaFile(t, "voice.m4a")
	ogg, _ := mediaFile(t, "voice.ogg")
	webp, _ := mediaFile(t, "photo.webp")
	for _, c := range []struct {
		id, kind, mime, name, caption, path string
		dur                                 time.Duration
		line, ext, ct                       string
	}{
		{"IMG1", "image", "image/jpeg", "", "the *beach*", jpg, 0, "*Alice*: 📷 photo: the *beach*", ".jpg", "image/jpeg"},
		{"VID1", "video", "video/mp4", "", "", mp4, 2 * time.Second, "*Alice*: 🎬 video (0:02)", ".mp4", "video/mp4"},
		{"AUD1", "audio", "audio/mp4", "", "", m4a, 1500 * time.Millisecond, "*Alice*: 🎵 audio (0:02)", ".m4a", "audio/mp4"},
		{"PTT1", "voice", "audio/ogg; codecs=opus", "", "", ogg, 2500 * time.Millisecond, "*Alice*: 🎤 voice message (0:03)", ".ogg", "audio/ogg"},
		{"DOC1", "document", "application/pdf", "Report 2024.pdf", "read this", pdf, 0, "*Alice*: 📄 Report 2024.pdf (140 kB): read this", "/Report_2024.pdf", "application/pdf"},
		{"STK1", "sticker", "image/webp", "", "", webp, 0, "*Alice*: sticker", ".webp", "image/webp"},
	} {
		t.Run(c.kind, func(t *testing.T) {
			want, err := os.ReadFile(c.path)
			if err != nil {
				t.Fatal(err)
			}
			m := e.mark()
			e.waMedia(c.id, c.kind, c.mime, c.name, c.caption, c.path, int64(len(want)), c.dur)
			line := e.msg(m, c.line)
			file := e.fileMessage(m, 30*time.Second)
			if line.Body() != c.line {
				t.Errorf("line %q, want %q", line.Body(), c.line)
			}
			if file.Attr("id") != line.Attr("id")+"-file" {
				t.Errorf("file message id %q, line %q", file.Attr("id"), line.Attr("id"))
			}
			url := file.Body()
			if !strings.HasSuffix(url, c.ext) {
				t.Errorf("URL %s does not end in %s", url, c.ext)
			}
			got, ct := e.fetch(url)
			if sha256.Sum256(got) != sha256.Sum256(want) {
				t.Errorf("downloaded %d bytes that differ from the %d WhatsApp sent", len(got), len(want))
			}
			// The type is the upload service's: ejabberd's mod_http_upload
			// serves by extension (.ogg as application/ogg), Prosody's
			// http_file_share the type the upload gave.
			ejabberdOgg := e.srv.Kind == pt.Ejabberd && c.ct == "audio/ogg" && strings.HasPrefix(ct, "application/ogg")
			if !strings.HasPrefix(ct, c.ct) && !ejabberdOgg {
				t.Errorf("Content-Type %q, want %s", ct, c.ct)
			}
			// A reply to the file message goes to Alice.
			ma := e.mark()
			e.send("got it", "<reply xmlns='urn:xmpp:reply:0' id='"+file.Attr("id")+"' to='"+e.bot+"'/>")
			e.action(ma, 10*time.Second, "reply to the file to Alice", sendTo(alice, "got it"))
		})
	}
	// An iOS client online: a voice note comes as AAC in .m4a.
	e.owner.Send("<presence><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='http://monal.im/' ver='x='/></presence>")
	time.Sleep(500 * time.Millisecond)
	m := e.mark()
	_, oggData := mediaFile(t, "voice.ogg")
	e.waMedia("PTT2", "voice", "audio/ogg; codecs=opus", "", "", ogg, int64(len(oggData)), 2500*time.Millisecond)
	file := e.fileMessage(m, 30*time.Second)
	got, ct := e.fetch(file.Body())
	if !strings.HasSuffix(file.Body(), ".m4a") || ct != "audio/mp4" || !bytes.Contains(got[:16], []byte("ftyp")) {
		t.Errorf("voice note for Monal: %s %s", file.Body(), ct)
	}
	e.noTempFiles()
}

func TestSimMediaFromOwner(t *testing.T) {
	for _, ff := range []bool{true, false} {
		t.Run(fmt.Sprintf("ffmpeg=%v", ff), func(t *testing.T) {
			e := newSimEnv(t, envOptions{noFFmpeg: !ff})
			e.addressBook()
			e.command("/to alice")
			type want struct {
				kind, mime string
				same       bool // the bytes go as they are
			}
			cases := []struct {
				file, ct string
				ff, no   want
			}{
				{"photo.jpg", "image/jpeg", want{"image", "image/jpeg", true}, want{"image", "image/jpeg", true}},
				{"photo.png", "image/png", want{"image", "image/jpeg", false}, want{"image", "image/jpeg", false}},
				{"video.mp4", "video/mp4", want{"video", "video/mp4", true}, want{"video", "video/mp4", true}},
				{"voice.m4a", "audio/mp4", want{"voice", "audio/ogg; codecs=opus", false}, want{"audio", "audio/mp4", true}},
				{"voice.ogg", "audio/ogg", want{"voice", "audio/ogg; codecs=opus", true}, want{"voice", "audio/ogg; codecs=opus", true}},
				{"anim.gif", "image/gif", want{"video", "video/mp4", false}, want{"document", "image/gif", true}},
				{"clip.webm", "video/webm", want{"video", "video/mp4", false}, want{"document", "video/webm", true}},
			}
			for _, c := range cases {
				w := c.no
				if ff {
					w = c.ff
				}
				_, data := mediaFile(t, c.file)
				m := e.mark()
				url := e.ownerUpload(c.file, c.ct, data)
				id := e.sendFile(url)
				a := e.action(m, 60*time.Second, "send_media of "+c.file, func(a simwa.Action) bool { return a.Type == "send_media" })
				sm := a.Media
				if a.Error != "" || a.Chat != alice || sm.Kind != w.kind || sm.MimeType != w.mime || a.ID == "" {
					t.Errorf("%s: sent %s %q to %s (error %q), want %s %q", c.file, sm.Kind, sm.MimeType, a.Chat, a.Error, w.kind, w.mime)
				}
				sum := sha256.Sum256(data)
				if w.same != (sm.SHA256 == hex.EncodeToString(sum[:])) {
					t.Errorf("%s: bytes sent as they are: %v, want %v", c.file, !w.same, w.same)
				}
				switch sm.Kind {
				case "image":
					if sm.Width == 0 || len(sm.Thumbnail) == 0 || !bytes.HasPrefix(sm.Data, []byte{0xff, 0xd8}) {
						t.Errorf("%s: photo %dx%d, thumbnail %d bytes", c.file, sm.Width, sm.Height, len(sm.Thumbnail))
					}
				case "video":
					if sm.Width == 0 || sm.Duration == 0 || (ff && len(sm.Thumbnail) == 0) || (c.file == "anim.gif") != sm.GIF {
						t.Errorf("%s: video %+v", c.file, sm)
					}
				case "voice":
					if sm.Duration == 0 || (ff && len(sm.Waveform) != 64) {
						t.Errorf("%s: voice %v waveform %d", c.file, sm.Duration, len(sm.Waveform))
					}
				case "audio":
					if sm.Duration == 0 {
						t.Errorf("%s: audio without duration", c.file)
					}
				case "document":
					if sm.FileName != c.file {
						t.Errorf("%s: document named %q", c.file, sm.FileName)
					}
				}
				// The same message again (the server's archive after a
				// restart) sends nothing.
				m2 := e.mark()
				e.sendID(id, url, "<x xmlns='jabber:x:oob'><url>"+pt.Esc(url)+"</url></x>")
				e.noAction(m2, time.Second, "a replayed file sent again", func(a simwa.Action) bool { return a.Type == "send_media" })
			}
			// XEP-0454: an encrypted file, and one whose tag fails.
			_, plain := mediaFile(t, "photo.jpg")
			key, iv := make([]byte, 32), make([]byte, 12)
			rand.Read(key)
			rand.Read(iv)
			block, _ := aes.NewCipher(key)
			g, _ := cipher.NewGCM(block)
			ct := g.Seal(nil, iv, plain, nil)
			url := e.ownerUpload("enc.jpg", "application/octet-stream", ct)
			m := e.mark()
			e.send("aesgcm"+strings.TrimPrefix(url, "https")+"#"+hex.EncodeToString(iv)+hex.EncodeToString(key), "")
			a := e.action(m, 30*time.Second, "send_media of the encrypted photo", func(a simwa.Action) bool { return a.Type == "send_media" })
			sum := sha256.Sum256(plain)
			if a.Media.Kind != "image" || a.Media.SHA256 != hex.EncodeToString(sum[:]) {
				t.Errorf("encrypted photo sent as %s %s", a.Media.Kind, a.Media.SHA256)
			}
			bad := bytes.Clone(ct)
			bad[100] ^= 1
			url = e.ownerUpload("bad.jpg", "application/octet-stream", bad)
			m = e.mark()
			e.send("aesgcm"+strings.TrimPrefix(url, "https")+"#"+hex.EncodeToString(iv)+hex.EncodeToString(key), "")
			e.msg(m, "Not sent to Alice", "the encrypted file does not verify")
			e.noAction(m, time.Second, "a damaged file sent", func(a simwa.Action) bool { return a.Type == "send_media" })
			// A link inside text, and a lone https link, are text.
			m = e.mark()
			e.send("look at https://example.org/a.jpg", "")
			e.action(m, 10*time.Second, "text with a link", sendTo(alice, "look at https://example.org/a.jpg"))
			e.noTempFiles()
		})
	}
}

func TestSimMediaFailures(t *testing.T) {
	e := newSimEnv(t, envOptions{uploadLimit: 256 << 10})
	e.addressBook()
	// Larger than the upload service takes.
	big := filepath.Join(t.TempDir(), "big.pdf")
	os.WriteFile(big, append([]byte("%PDF-1.4\n"), make([]byte, 300<<10)...), 0o600)
	m := e.mark()
	e.waMedia("BIG1", "document", "application/pdf", "big.pdf", "", big, 300<<10+9, 0)
	e.msg(m, "*Alice*: 📄 big.pdf (307 kB) could not be relayed: it is larger than your XMPP server accepts. Open it on your phone.")
	e.noTempFiles()

	// Expired on WhatsApp's servers: asked of the phone, which sends it.
	jpg, data := mediaFile(t, "photo.jpg")
	e.script(simwa.Rule{Action: "download", ID: "h-OLD1", Error: "http_410", Times: 1})
	m = e.mark()
	e.waMedia("OLD1", "image", "image/jpeg", "", "from March", jpg, int64(len(data)), 0)
	asking := e.msg(m, "old 📷 photo (no longer on WhatsApp's servers), asking your phone for it…")
	e.action(m, 10*time.Second, "media retry request", func(a simwa.Action) bool { return a.Type == "media_retry" && a.Target.ID == "OLD1" })
	file := e.fileMessage(m, 30*time.Second)
	corr := e.stanza(m, 10*time.Second, "correction of the asking line", func(s *pt.Elem) bool {
		r := s.Child("urn:xmpp:message-correct:0", "replace")
		return e.fromBot(s) && r != nil && r.Attr("id") == asking.Attr("id")
	})
	if !strings.HasSuffix(corr.Body(), "📷 photo: from March") {
		t.Errorf("corrected line %q", corr.Body())
	}
	if got, _ := e.fetch(file.Body()); sha256.Sum256(got) != sha256.Sum256(data) {
		t.Error("the phone's copy differs")
	}
	// Expired, and the phone no longer has it.
	e.script(simwa.Rule{Action: "download", ID: "h-OLD2", Error: "http_404", Times: 1})
	e.script(simwa.Rule{Action: "media_retry", ID: "OLD2", Answer: "gone", Times: 1})
	m = e.mark()
	e.waMedia("OLD2", "image", "image/jpeg", "", "", jpg, int64(len(data)), 0)
	e.msg(m, "could not be relayed: it is no longer on WhatsApp's servers nor on your phone. Open it on your phone.")
	// View once: a notice, no download.
	m = e.mark()
	e.injectJSON(fmt.Sprintf(`{"type":"message","chat":%q,"id":"VO1","kind":"image","view_once":true,"media":{"mime_type":"image/jpeg","handle":"h-VO1","file":%q}}`, alice, jpg))
	e.msg(m, "👁 a view-once photo: open it on your phone")
	e.noAction(m, time.Second, "a view-once download", func(a simwa.Action) bool { return a.Type == "download" && a.Handle == "h-VO1" })
	e.noTempFiles()
}

// TestSimMediaKill: SIGKILL in the middle of a transfer (the download
// from WhatsApp is slow); after the restart the owner has exactly one
// photo, and the text sent after it comes after it.
func TestSimMediaKill(t *testing.T) {
	e := newSimEnv(t, envOptions{})
	e.addressBook()
	// The simulator's pattern as content: the process after the kill
	// serves the same bytes, as WhatsApp's servers would.
	data, _ := io.ReadAll(io.LimitReader(&simwa.Pattern{}, 3<<20))
	e.script(simwa.Rule{Action: "download", ID: "h-K1", Delay: simwa.Duration(30 * time.Second)})
	m := e.mark()
	e.waMedia("K1", "image", "image/jpeg", "", "kill me", "", int64(len(data)), 0)
	e.inject(textMsg(alice, alice, "K2", "after the photo", "Alice"))
	time.Sleep(time.Second) // the download is under way, held by the rule
	e.kill()
	// Both messages were acknowledged (saved in the chat's lane), so
	// WhatsApp delivers nothing again; the rule is gone with the process.
	e.start()
	file := e.fileMessage(m, 30*time.Second)
	after := e.msg(m, "after the photo")
	time.Sleep(2 * time.Second) // anything relayed twice would be here by now
	e.mu.Lock()
	var files, lines int
	var fileAt, afterAt int
	for i, s := range e.stanzas[m.stanzas:] {
		if !e.fromBot(s) {
			continue
		}
		switch {
		case s.Child("jabber:x:oob", "x") != nil:
			files++
			fileAt = i
		case strings.Contains(s.Body(), "📷 photo: kill me"):
			lines++
		case s == after:
			afterAt = i
		}
	}
	e.mu.Unlock()
	if files != 1 || lines != 1 || afterAt < fileAt {
		t.Errorf("after the kill: %d file messages, %d photo lines, text at %d, file at %d; want one each, text after:%s", files, lines, afterAt, fileAt, e.describeStanzas(m))
	}
	if got, _ := e.fetch(file.Body()); sha256.Sum256(got) != sha256.Sum256(data) {
		t.Error("the photo differs")
	}
	e.noTempFiles()
}
