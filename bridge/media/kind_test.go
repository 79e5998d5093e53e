package media

import (
	"os"
	"path/filepath"
	"testing"
)

func TestBaseType(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"audio/ogg; codecs=opus", "audio/ogg"},
		{"Image/JPG", "image/jpeg"},
		{"audio/x-m4a", "audio/mp4"},
		{" video/mp4 ", "video/mp4"},
		{"text/markdown", "text/markdown"},
		{"", ""},
		{"nonsense", ""},
		{"a/b/c", ""},
		{"image/", ""},
		{"a b/c", ""},
	} {
		if got := BaseType(c.in); got != c.want {
			t.Errorf("BaseType(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestExtAndTypeByName(t *testing.T) {
	for _, c := range []struct{ mime, ext string }{
		{"image/jpeg", ".jpg"}, {"image/png", ".png"}, {"image/webp", ".webp"},
		{"video/mp4", ".mp4"}, {"audio/ogg; codecs=opus", ".ogg"}, {"audio/mp4", ".m4a"},
		{"application/pdf", ".pdf"}, {"application/x-unknown", ".bin"}, {"", ".bin"},
	} {
		if got := Ext(c.mime); got != c.ext {
			t.Errorf("Ext(%q) = %q, want %q", c.mime, got, c.ext)
		}
	}
	// Every known extension maps back to its type.
	for _, kt := range knownTypes {
		for _, e := range kt.exts {
			if got := TypeByName("x" + e); got != kt.mime {
				t.Errorf("TypeByName(x%s) = %q, want %q", e, got, kt.mime)
			}
		}
	}
	if got := TypeByName("README"); got != "" {
		t.Errorf("TypeByName(README) = %q", got)
	}
	if got := TypeByName("a.JPEG"); got != "image/jpeg" {
		t.Errorf("TypeByName(a.JPEG) = %q", got)
	}
}

func TestSafeName(t *testing.T) {
	for _, c := range []struct{ name, mime, want string }{
		{"Report 2024.PDF", "application/pdf", "Report_2024.PDF"},
		{"Ärztebrief.pdf", "application/pdf", "Ärztebrief.pdf"},
		{"../../etc/passwd", "text/plain", "passwd.txt"},
		{`C:\Users\me\x.docx`, "application/vnd.openxmlformats-officedocument.wordprocessingml.document", "x.docx"},
		{"photo.png", "image/jpeg", "photo.jpg"},
		{"", "image/jpeg", "file.jpg"},
		{"...", "image/png", "file.png"},
		{".hidden.txt", "text/plain", "hidden.txt"},
		{"a  b??c.txt", "text/plain", "a_b_c.txt"},
		{"notes.md", "text/markdown", "notes.md"},
		{"notes.md", "", "notes.md"},
		{"data", "application/octet-stream", "data.bin"},
		{"v1.2.tar.gz", "application/gzip", "v1_2_tar.gz"},
		{"a%2Fb#c?d.jpg", "image/jpeg", "a_2Fb_c_d.jpg"},
		{"名前.jpg", "image/jpeg", "名前.jpg"},
		{"x\x00y\u202e.jpg", "image/jpeg", "x_y.jpg"},
		{"evil.php", "image/jpeg", "evil.jpg"},
		{"-rf.txt", "text/plain", "rf.txt"},
	} {
		if got := SafeName(c.name, c.mime); got != c.want {
			t.Errorf("SafeName(%q, %q) = %q, want %q", c.name, c.mime, got, c.want)
		}
	}
	long := ""
	for range 200 {
		long += "ab"
	}
	if got := SafeName(long+".pdf", "application/pdf"); len([]rune(got)) != maxStem+len(".pdf") {
		t.Errorf("long name kept %d runes: %q", len([]rune(got)), got)
	}
}

func TestSniff(t *testing.T) {
	want := map[string]string{
		"photo.jpg": "image/jpeg", "photo.png": "image/png", "photo.webp": "image/webp",
		"anim.gif": "image/gif", "video.mp4": "video/mp4", "video.mov": "video/quicktime",
		"voice.m4a": "audio/mp4", "voice.ogg": "audio/ogg", "clip.webm": "video/webm",
	}
	for name, w := range want {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		if got := Sniff(b[:min(len(b), 512)]); got != w {
			t.Errorf("Sniff(%s) = %q, want %q", name, got, w)
		}
	}
	if got := Sniff([]byte("hello")); got != "" {
		t.Errorf("Sniff(text) = %q", got)
	}
}
