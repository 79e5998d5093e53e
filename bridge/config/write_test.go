package config

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func accounts() Config {
	c := Default()
	c.XMPP.JID, c.XMPP.Password, c.XMPP.Owner = "bot@example.org", "secret", "me@example.org"
	return c
}

// TestWriteRoundTrip: what Write writes, Parse reads back as the same
// Config; only what differs from the defaults is written.
func TestWriteRoundTrip(t *testing.T) {
	every := Config{
		XMPP: XMPP{
			JID: "bøt@exämple.org", Password: "pa\"ss\\wörd\n'x'", Owner: "me@[::1]",
			Server: "tls://xmpp.example.org:5223", CAFile: "/etc/ssl/my ca.pem", Resource: "pi 4",
			Rate: 500, Burst: 4096, PingInterval: Duration(90 * time.Second), PingTimeout: Duration(1500 * time.Millisecond),
		},
		Store: Store{Path: "/srv/waxmpp/state.db", Retention: Duration(24 * time.Hour)},
		Media: Media{MaxSize: 1 << 30, Timeout: Duration(time.Hour), VoiceAAC: "never"},
		Log:   Log{Level: "debug", Format: "json"},
		Invite: Invite{Language: "fr", Text: "Salut {name} !\nAjoute-moi : {link}\n", GroupText: "Salut tout le monde : {uri}", RoomText: "Viens : {uri}",
			Link: "https://xmpp.link/#", RoomLink: "https://xmpp.link/#"},
	}
	tests := []struct {
		name    string
		cfg     Config
		want    []string // lines the file must have
		wantNot []string // substrings it must not have
	}{
		{"accounts only", accounts(),
			[]string{"[xmpp]", "jid = 'bot@example.org'", "password = 'secret'", "owner = 'me@example.org'"},
			[]string{"rate", "resource", "[store]", "[log]", "[whatsapp]", "ping"}},
		{"every key", every,
			[]string{"rate = 500", "ping_interval = '1m30s'", "ping_timeout = '1.5s'", "retention = '24h'", "level = 'debug'", "max_size = 1073741824", "voice_aac = 'never'"},
			nil},
		{"one default changed", func() Config { c := accounts(); c.Store.Retention = Duration(30 * 24 * time.Hour); return c }(),
			[]string{"[store]", "retention = '720h'"},
			[]string{"path", "[log]"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := Write(&b, tt.cfg); err != nil {
				t.Fatal(err)
			}
			text := b.String()
			lines := strings.Split(text, "\n")
			for _, w := range tt.want {
				found := false
				for _, l := range lines {
					found = found || l == w
				}
				if !found {
					t.Errorf("written file lacks the line %q:\n%s", w, text)
				}
			}
			for _, w := range tt.wantNot {
				if strings.Contains(text, w) {
					t.Errorf("written file has %q, a default:\n%s", w, text)
				}
			}
			got, err := Parse(strings.NewReader(text))
			if err != nil {
				t.Fatalf("Parse of what Write wrote: %v\n%s", err, text)
			}
			if got != tt.cfg {
				t.Errorf("round trip\ngot  %+v\nwant %+v\nfile:\n%s", got, tt.cfg, text)
			}
		})
	}
}

// A config whose password is in a file (as Load leaves it: the file's
// password read into Password) is written with the file, not the password.
func TestWritePasswordFile(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "pw"), "from-the-file\n", 0o600)
	path := filepath.Join(dir, "config.toml")
	writeFile(t, path, configDoc(`password_file = "pw"`, ""), 0o600)
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := Write(&b, cfg); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "from-the-file") || strings.Contains(b.String(), "password =") {
		t.Errorf("Write wrote the password read from the password file:\n%s", b.String())
	}
	if err := os.WriteFile(path, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	back, err := Load(path)
	if err != nil {
		t.Fatalf("Load of what Write wrote: %v\n%s", err, b.String())
	}
	if back != cfg {
		t.Errorf("round trip through Load\ngot  %+v\nwant %+v", back, cfg)
	}
}

func TestWriteRefusesInvalid(t *testing.T) {
	c := accounts()
	c.XMPP.Rate = 1
	var b bytes.Buffer
	err := Write(&b, c)
	var ce *Error
	if !errors.As(err, &ce) || ce.Field != "xmpp.rate" {
		t.Errorf("Write of an invalid config = %v, want the xmpp.rate Error", err)
	}
	if b.Len() != 0 {
		t.Errorf("Write wrote %q for an invalid config", b.String())
	}
}

func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.toml")
	writeFile(t, path, "old", 0o644)
	c := accounts()
	c.XMPP.Server = "127.0.0.1:5222"
	if err := WriteFile(path, c, 0o640); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o640 {
		t.Errorf("mode %v, want 0640", fi.Mode().Perm())
	}
	got, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if got != c {
		t.Errorf("Load(WriteFile(c))\ngot  %+v\nwant %+v", got, c)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 1 {
		t.Errorf("WriteFile left %d files in the directory, want only the config: %v", len(ents), ents)
	}

	// An invalid config leaves the file as it was.
	c.XMPP.Owner = c.XMPP.JID
	if err := WriteFile(path, c, 0o600); err == nil {
		t.Fatal("WriteFile of an invalid config succeeded")
	}
	if again, err := Load(path); err != nil || again != got {
		t.Errorf("after a refused WriteFile: Load = %+v, %v; want the earlier file", again, err)
	}
	if err := WriteFile(filepath.Join(dir, "no", "such", "dir.toml"), accounts(), 0o600); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("WriteFile into a missing directory = %v, want an error naming the cause", err)
	}
}

func TestDurationText(t *testing.T) {
	for _, tt := range []struct {
		d    time.Duration
		want string
	}{
		{60 * time.Second, "1m"}, {90 * time.Second, "1m30s"}, {2160 * time.Hour, "2160h"},
		{time.Hour + 10*time.Second, "1h0m10s"}, {time.Hour + time.Minute, "1h1m"},
		{10 * time.Second, "10s"}, {1500 * time.Millisecond, "1.5s"}, {0, "0s"},
	} {
		b, _ := Duration(tt.d).MarshalText()
		if string(b) != tt.want {
			t.Errorf("MarshalText(%v) = %q, want %q", tt.d, b, tt.want)
		}
		var back Duration
		if err := back.UnmarshalText(b); err != nil || time.Duration(back) != tt.d {
			t.Errorf("UnmarshalText(%q) = %v, %v; want %v", b, back, err, tt.d)
		}
	}
}
