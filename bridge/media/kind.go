package media

import (
	"bytes"
	"path"
	"strings"
	"unicode"
	"unicode/utf8"
)

// The MIME types waxmpp knows, each with the extension a file of that type
// gets (the first) and those it is known by. The table is ours, not the
// system's mime.types: a Pi image may have none, and the upload's
// extension must match its Content-Type on every machine alike.
var knownTypes = []struct {
	mime string
	exts []string
}{
	{"image/jpeg", []string{".jpg", ".jpeg", ".jpe", ".jfif"}},
	{"image/png", []string{".png"}},
	{"image/webp", []string{".webp"}},
	{"image/gif", []string{".gif"}},
	{"image/heic", []string{".heic"}},
	{"image/heif", []string{".heif"}},
	{"image/avif", []string{".avif"}},
	{"image/bmp", []string{".bmp"}},
	{"image/tiff", []string{".tif", ".tiff"}},
	{"image/svg+xml", []string{".svg"}},
	{"video/mp4", []string{".mp4", ".m4v"}},
	{"video/quicktime", []string{".mov", ".qt"}},
	{"video/webm", []string{".webm"}},
	{"video/x-matroska", []string{".mkv"}},
	{"video/3gpp", []string{".3gp"}},
	{"video/x-msvideo", []string{".avi"}},
	{"audio/ogg", []string{".ogg", ".opus", ".oga"}},
	{"audio/mp4", []string{".m4a", ".mp4a"}},
	{"audio/aac", []string{".aac"}},
	{"audio/mpeg", []string{".mp3", ".mpga"}},
	{"audio/wav", []string{".wav"}},
	{"audio/flac", []string{".flac"}},
	{"audio/amr", []string{".amr"}},
	{"audio/webm", []string{".weba"}},
	{"application/pdf", []string{".pdf"}},
	{"application/zip", []string{".zip"}},
	{"application/gzip", []string{".gz"}},
	{"application/x-7z-compressed", []string{".7z"}},
	{"application/x-tar", []string{".tar"}},
	{"application/vnd.android.package-archive", []string{".apk"}},
	{"application/msword", []string{".doc"}},
	{"application/vnd.ms-excel", []string{".xls"}},
	{"application/vnd.ms-powerpoint", []string{".ppt"}},
	{"application/vnd.openxmlformats-officedocument.wordprocessingml.document", []string{".docx"}},
	{"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", []string{".xlsx"}},
	{"application/vnd.openxmlformats-officedocument.presentationml.presentation", []string{".pptx"}},
	{"application/vnd.oasis.opendocument.text", []string{".odt"}},
	{"application/vnd.oasis.opendocument.spreadsheet", []string{".ods"}},
	{"application/vnd.oasis.opendocument.presentation", []string{".odp"}},
	{"application/rtf", []string{".rtf"}},
	{"application/epub+zip", []string{".epub"}},
	{"application/json", []string{".json"}},
	{"text/plain", []string{".txt", ".text", ".log"}},
	{"text/csv", []string{".csv"}},
	{"text/vcard", []string{".vcf", ".vcard"}},
	{"text/calendar", []string{".ics"}},
	{"text/html", []string{".html", ".htm"}},
	{"application/octet-stream", []string{".bin"}},
}

// aliases are other names clients and WhatsApp give the types above.
var aliases = map[string]string{
	"image/jpg":          "image/jpeg",
	"image/pjpeg":        "image/jpeg",
	"image/x-png":        "image/png",
	"audio/x-m4a":        "audio/mp4",
	"audio/m4a":          "audio/mp4",
	"audio/opus":         "audio/ogg",
	"application/ogg":    "audio/ogg",
	"audio/mp3":          "audio/mpeg",
	"audio/x-wav":        "audio/wav",
	"audio/wave":         "audio/wav",
	"audio/x-flac":       "audio/flac",
	"video/mov":          "video/quicktime",
	"application/x-zip":  "application/zip",
	"text/x-vcard":       "text/vcard",
	"application/x-gzip": "application/gzip",
}

// BaseType is mt without parameters, lower case, with aliases resolved:
// "audio/ogg; codecs=opus" → "audio/ogg", "image/jpg" → "image/jpeg". An
// unparsable type is "".
func BaseType(mt string) string {
	mt, _, _ = strings.Cut(mt, ";")
	mt = strings.ToLower(strings.TrimSpace(mt))
	if a, ok := aliases[mt]; ok {
		return a
	}
	major, minor, ok := strings.Cut(mt, "/")
	if !ok || major == "" || minor == "" || strings.ContainsAny(mt, " \t\"\\,") || strings.Count(mt, "/") != 1 {
		return ""
	}
	return mt
}

// Ext is the extension a file of type mt gets: ".jpg" for image/jpeg,
// ".bin" for a type waxmpp does not know.
func Ext(mt string) string {
	mt = BaseType(mt)
	for _, t := range knownTypes {
		if t.mime == mt {
			return t.exts[0]
		}
	}
	return ".bin"
}

// TypeByName is the MIME type a file name's extension says, "" when the
// extension is not one waxmpp knows.
func TypeByName(name string) string {
	ext := strings.ToLower(path.Ext(name))
	if ext == "" {
		return ""
	}
	for _, t := range knownTypes {
		for _, e := range t.exts {
			if e == ext {
				return t.mime
			}
		}
	}
	return ""
}

// Sniff tells a file's type from its first bytes (512 are enough), ""
// when they say nothing waxmpp relies on. It knows the formats waxmpp
// converts or reads: a Content-Type from a server or a client may be
// generic or wrong, the bytes are not.
func Sniff(head []byte) string {
	switch {
	case bytes.HasPrefix(head, []byte{0xFF, 0xD8, 0xFF}):
		return "image/jpeg"
	case bytes.HasPrefix(head, []byte("\x89PNG\r\n\x1a\n")):
		return "image/png"
	case bytes.HasPrefix(head, []byte("GIF87a")), bytes.HasPrefix(head, []byte("GIF89a")):
		return "image/gif"
	case len(head) >= 12 && string(head[:4]) == "RIFF" && string(head[8:12]) == "WEBP":
		return "image/webp"
	case len(head) >= 12 && string(head[:4]) == "RIFF" && string(head[8:12]) == "WAVE":
		return "audio/wav"
	case bytes.HasPrefix(head, []byte("OggS")):
		return "audio/ogg"
	case bytes.HasPrefix(head, []byte("%PDF-")):
		return "application/pdf"
	case bytes.HasPrefix(head, []byte("ID3")), len(head) >= 2 && head[0] == 0xFF && head[1]&0xE6 == 0xE2:
		return "audio/mpeg"
	case bytes.HasPrefix(head, []byte("fLaC")):
		return "audio/flac"
	case bytes.HasPrefix(head, []byte{0x1A, 0x45, 0xDF, 0xA3}):
		// EBML: WebM names its doctype in the header.
		if bytes.Contains(head[:min(len(head), 64)], []byte("webm")) {
			return "video/webm"
		}
		return "video/x-matroska"
	case len(head) >= 12 && string(head[4:8]) == "ftyp":
		return ftypType(string(head[8:12]))
	}
	return ""
}

// ftypType maps an ISO base media file's major brand to its MIME type.
func ftypType(brand string) string {
	switch brand {
	case "M4A ", "M4B ", "M4P ", "F4A ":
		return "audio/mp4"
	case "qt  ":
		return "video/quicktime"
	case "3gp4", "3gp5", "3gp6", "3ge6", "3gg6":
		return "video/3gpp"
	case "heic", "heix", "heim", "heis":
		return "image/heic"
	case "mif1", "msf1":
		return "image/heif"
	case "avif", "avis":
		return "image/avif"
	}
	return "video/mp4"
}

// maxStem is how many characters of a file name's stem are kept.
const maxStem = 64

// SafeName is name made safe for a URL path segment and for every file
// system, with the extension of type mt: letters (of any script) and
// digits are kept, runs of anything else become one "_", a leading dot
// or dash goes, the stem is cut to 64 characters, and the extension
// is mt's unless name already has one of mt's extensions ("Report
// 2024.PDF" stays "Report_2024.PDF"); for a type waxmpp does not know,
// the name's own. An empty stem becomes "file".
func SafeName(name, mt string) string {
	name = path.Base(strings.ReplaceAll(name, "\\", "/"))
	if name == "." || name == "/" {
		name = ""
	}
	ext := path.Ext(name)
	stem := strings.TrimSuffix(name, ext)
	var want string
	switch t := BaseType(mt); {
	case known(t) && TypeByName(ext) == t:
		want = safeExt(ext)
	case known(t):
		want = Ext(t)
	case safeExt(ext) != "":
		// A type waxmpp does not know (text/markdown): the name's
		// own extension is the best there is.
		want = ext
	default:
		want = ".bin"
	}
	var b strings.Builder
	under := false
	n := 0
	for _, r := range stem {
		if n >= maxStem {
			break
		}
		if unicode.IsLetter(r) || unicode.IsDigit(r) || r == '-' || r == '.' {
			if (r == '.' || r == '-') && b.Len() == 0 {
				continue
			}
			if r == '.' {
				r = '_' // one dot only: before the extension
			}
			b.WriteRune(r)
			under = r == '_'
			n++
			continue
		}
		if !under && b.Len() > 0 {
			b.WriteByte('_')
			under = true
			n++
		}
	}
	s := strings.TrimRight(b.String(), "_-")
	if s == "" || !utf8.ValidString(s) {
		s = "file"
	}
	return s + want
}

// known tells whether waxmpp knows mt (a base type) by more than
// application/octet-stream.
func known(mt string) bool {
	if mt == "" || mt == "application/octet-stream" {
		return false
	}
	for _, t := range knownTypes {
		if t.mime == mt {
			return true
		}
	}
	return false
}

// safeExt is ext when it is a short extension of ASCII letters and digits,
// else "".
func safeExt(ext string) string {
	if len(ext) < 2 || len(ext) > 10 {
		return ""
	}
	for _, r := range ext[1:] {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return ""
		}
	}
	return ext
}
