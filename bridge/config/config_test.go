package config

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// configDoc returns a config with a bot account, a password and an owner,
// with the [xmpp] lines in xmppLines added (replacing the account lines of
// the same key; password_file replaces password) and rest appended after the
// [xmpp] table.
func configDoc(xmppLines, rest string) string {
	base := []string{`jid = "bot@example.org"`, `password = "secret"`, `owner = "me@example.org"`}
	var b strings.Builder
	b.WriteString("[xmpp]\n")
	for _, l := range base {
		key, _, _ := strings.Cut(l, " ")
		if key == "password" {
			key = "password(_file)?"
		}
		if !regexp.MustCompile(`(?m)^` + key + `\s*=`).MatchString(xmppLines) {
			b.WriteString(l + "\n")
		}
	}
	b.WriteString(xmppLines)
	if xmppLines != "" && !strings.HasSuffix(xmppLines, "\n") {
		b.WriteString("\n")
	}
	b.WriteString(rest)
	return b.String()
}

func TestParseExample(t *testing.T) {
	f, err := os.Open("example.toml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, err := Parse(f)
	if err != nil {
		t.Fatalf("Parse(example.toml): %v", err)
	}
	want := Default()
	want.XMPP.JID = "bot@example.org"
	want.XMPP.Password = "change-me"
	want.XMPP.Owner = "me@example.org"
	if got != want {
		t.Errorf("Parse(example.toml)\ngot  %+v\nwant %+v", got, want)
	}
}

// The example is the user's reference: it must mention every key.
func TestExampleMentionsEveryKey(t *testing.T) {
	b, err := os.ReadFile("example.toml")
	if err != nil {
		t.Fatal(err)
	}
	table := ""
	mentioned := map[string]bool{}
	for line := range strings.SplitSeq(string(b), "\n") {
		line = strings.TrimSpace(line)
		if m := regexp.MustCompile(`^\[(\w+)\]$`).FindStringSubmatch(line); m != nil {
			table = m[1]
			mentioned[table] = true
			continue
		}
		if m := regexp.MustCompile(`^#?\s*(\w+) = `).FindStringSubmatch(line); m != nil && table != "" {
			mentioned[table+"."+m[1]] = true
		}
	}
	for k := range keys {
		if !mentioned[k] {
			t.Errorf("example.toml does not mention %s", k)
		}
	}
}

func TestParseDefaults(t *testing.T) {
	got, err := Parse(strings.NewReader(configDoc("", "")))
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.XMPP.JID, want.XMPP.Password, want.XMPP.Owner = "bot@example.org", "secret", "me@example.org"
	if got != want {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
}

func TestParseValues(t *testing.T) {
	doc := configDoc(`password_file = "pw"
server = "[::1]:5223"
ca_file = "ca.pem"
resource = "pi"
rate = 500
burst = 4096
ping_interval = "5s"
ping_timeout = "1s"
`, `[whatsapp]
[store]
path = "state/w.db"
retention = "24h"
[media]
max_size = 2048
timeout = "30s"
voice_aac = "always"
[log]
level = "debug"
format = "json"
`)
	got, err := Parse(strings.NewReader(doc))
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		XMPP: XMPP{
			JID: "bot@example.org", PasswordFile: "pw", Owner: "me@example.org",
			Server: "[::1]:5223", CAFile: "ca.pem", Resource: "pi", Rate: 500, Burst: 4096,
			PingInterval: Duration(5 * time.Second), PingTimeout: Duration(time.Second),
		},
		Store:  Store{Path: "state/w.db", Retention: Duration(24 * time.Hour)},
		Media:  Media{MaxSize: 2048, Timeout: Duration(30 * time.Second), VoiceAAC: "always"},
		Log:    Log{Level: "debug", Format: "json"},
		Invite: Default().Invite,
	}
	if got != want {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name      string
		xmpp      string // lines for [xmpp]
		rest      string // tables after [xmpp]
		wantField string
		wantIn    string // substring of the problem
	}{
		{"jid with resource", `jid = "bot@example.org/r"`, "", "xmpp.jid", "bare JID"},
		{"jid without @", `jid = "example.org"`, "", "xmpp.jid", "no @"},
		{"jid empty localpart", `jid = "@example.org"`, "", "xmpp.jid", "nothing before the @"},
		{"jid two @", `jid = "a@b@example.org"`, "", "xmpp.jid", "more than one @"},
		{"jid forbidden char", `jid = "a<b@example.org"`, "", "xmpp.jid", "'<' may not appear"},
		{"jid space", `jid = "a b@example.org"`, "", "xmpp.jid", "spaces"},
		{"jid empty domain", `jid = "bot@"`, "", "xmpp.jid", "domain is empty"},
		{"jid bad domain char", `jid = "bot@exa_mple.org"`, "", "xmpp.jid", "contains '_'"},
		{"jid trailing dot", `jid = "bot@example.org."`, "", "xmpp.jid", "ends with a dot"},
		{"jid empty label", `jid = "bot@example..org"`, "", "xmpp.jid", "empty label"},
		{"jid hyphen label", `jid = "bot@-example.org"`, "", "xmpp.jid", "starts or ends with '-'"},
		{"jid long label", `jid = "bot@` + strings.Repeat("a", 64) + `.org"`, "", "xmpp.jid", "longer than 63"},
		{"jid long localpart", `jid = "` + strings.Repeat("a", 1024) + `@example.org"`, "", "xmpp.jid", "longer than 1023"},
		{"jid bare ipv6", `jid = "bot@::1"`, "", "xmpp.jid", "must be in brackets"},
		{"jid bad bracket", `jid = "bot@[127.0.0.1]"`, "", "xmpp.jid", "bracketed IPv6"},
		{"jid type", `jid = 5`, "", "xmpp.jid", "is an integer; want a string"},
		{"password nul", `password = "a\u0000b"`, "", "xmpp.password", "NUL"},
		{"password and file", "password = \"x\"\npassword_file = \"/x\"", "", "xmpp.password_file", "not both"},
		{"password_file nul", `password_file = "a\u0000"`, "", "xmpp.password_file", "NUL"},
		{"owner missing", `owner = ""`, "", "xmpp.owner", "required"},
		{"owner with resource", `owner = "me@example.org/phone"`, "", "xmpp.owner", "bare JID"},
		{"owner is bot", `owner = "Bot@Example.org"`, "", "xmpp.owner", "bot account itself"},
		{"server no port", `server = "xmpp.example.org"`, "", "xmpp.server", "not host:port"},
		{"server port 0", `server = "xmpp.example.org:0"`, "", "xmpp.server", "1 to 65535"},
		{"server port name", `server = "xmpp.example.org:xmpp"`, "", "xmpp.server", "1 to 65535"},
		{"server bad host", `server = "exa mple:5222"`, "", "xmpp.server", "contains ' '"},
		{"ca_file nul", `ca_file = "a\u0000"`, "", "xmpp.ca_file", "NUL"},
		{"resource empty", `resource = ""`, "", "xmpp.resource", "required"},
		{"resource spaces", `resource = " pi"`, "", "xmpp.resource", "space"},
		{"resource control", `resource = "p\ti"`, "", "xmpp.resource", "control character"},
		{"sasl mechanism unknown", `sasl_mechanism = "DIGEST-MD5"`, "", "xmpp.sasl_mechanism", "not a mechanism"},
		{"rate low", `rate = 499`, "", "xmpp.rate", "from 500"},
		{"rate negative", `rate = -1`, "", "xmpp.rate", "from 500"},
		{"rate huge", `rate = 9999999999999`, "", "xmpp.rate", "out of range"},
		{"rate string", `rate = "8000"`, "", "xmpp.rate", "is a string; want a whole number"},
		{"rate float", `rate = 8000.5`, "", "xmpp.rate", "is a float; want a whole number"},
		{"rooms.auto string", "", "[rooms]\nauto = \"yes\"", "rooms.auto", "is a string; want true or false"},
		{"rooms.auto number", "", "[rooms]\nauto = 1", "rooms.auto", "is an integer; want true or false"},
		{"rooms unknown key", "", "[rooms]\nautp = true", "rooms.autp", "did you mean rooms.auto?"},
		{"burst low", `burst = 4095`, "", "xmpp.burst", "from 4096"},
		{"ping_interval low", `ping_interval = "4s"`, "", "xmpp.ping_interval", "5s to 10m0s"},
		{"ping_interval high", `ping_interval = "11m"`, "", "xmpp.ping_interval", "5s to 10m0s"},
		{"ping_interval bad", `ping_interval = "soon"`, "", "xmpp.ping_interval", "want a Go duration"},
		{"ping_interval integer", `ping_interval = 60`, "", "xmpp.ping_interval", "duration in quotes"},
		{"ping_timeout low", `ping_timeout = "500ms"`, "", "xmpp.ping_timeout", "at least 1s"},
		{"ping_timeout over interval", "ping_interval = \"10s\"\nping_timeout = \"11s\"", "", "xmpp.ping_timeout", "longer than xmpp.ping_interval"},
		{"store path empty", "", "[store]\npath = \"\"\n", "store.path", "required"},
		{"store path dir", "", "[store]\npath = \"/var/lib/waxmpp/\"\n", "store.path", "names a directory"},
		{"retention low", "", "[store]\nretention = \"23h\"\n", "store.retention", "at least 24h"},
		{"retention bad", "", "[store]\nretention = \"90d\"\n", "store.retention", "want a Go duration"},
		{"level", "", "[log]\nlevel = \"INFO\"\n", "log.level", "debug, info, warn or error"},
		{"format", "", "[log]\nformat = \"logfmt\"\n", "log.format", "text or json"},
		{"unknown key typo", `pasword = "x"`, "", "xmpp.pasword", "did you mean xmpp.password?"},
		{"unknown key wrong table", "", "[log]\njid = \"x\"\n", "log.jid", "did you mean xmpp.jid?"},
		{"unknown key", "", "[store]\ncompress = true\n", "store.compress", "unknown key; see the example"},
		{"unknown table", "", "[matrix]\nhomeserver = \"x\"\n", "matrix", "unknown key"},
		{"whatsapp key", "", "[whatsapp]\nphone = \"+1\"\n", "whatsapp.phone", "unknown key"},
		// The simulated WhatsApp is chosen on a test build's command line
		// (run --simulator), never in the product's config.
		{"simulator key", "", "[whatsapp]\nsimulator = \"/tmp/sim.sock\"\n", "whatsapp.simulator", "unknown key"},
		{"quoted unknown key", "", "[log]\n\"a.b\" = 1\n", `log."a.b"`, "unknown key"},
		{"table is value", "", "[store]\n[log.level]\n", "log.level", "is a table; want a string"},
		{"array of tables", "", "[[store]]\npath = \"x\"\n", "store", "is an array of tables; want a table"},
		{"upper-case key", `JID = "bot@example.org"`, "", "xmpp.JID", "did you mean xmpp.jid?"},
		{"upper-case table", "", "[LOG]\nlevel = \"debug\"\n", "LOG", "did you mean log?"},
		{"syntax", `jid = `, "", "", "TOML syntax"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := configDoc(tt.xmpp, tt.rest)
			_, err := Parse(strings.NewReader(doc))
			if err == nil {
				t.Fatalf("Parse(%q) = nil error, want one for %s", doc, tt.wantField)
			}
			if errors.Is(err, ErrNotConfigured) {
				t.Fatalf("Parse(%q) = %v, want an Error, not ErrNotConfigured", doc, err)
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("Parse(%q) = %T %v, want *Error", doc, err, err)
			}
			if ce.Field != tt.wantField || !strings.Contains(ce.Problem, tt.wantIn) {
				t.Errorf("Parse(%q)\ngot  %s: %s\nwant %s: ...%s...", doc, ce.Field, ce.Problem, tt.wantField, tt.wantIn)
			}
			if ce.Line == 0 {
				t.Errorf("Parse(%q) = %v, want a line number", doc, err)
			}
		})
	}
}

func TestParseLines(t *testing.T) {
	doc := `# comment
[xmpp]
jid = "bot@example.org"
password = "secret"
owner = "me@example.org"
rate = 1

[log]
level = "loud"
multi = """
a
"""
[store]
retention = 5
`
	_, err := Parse(strings.NewReader(doc))
	got := fieldLines(err)
	want := map[string]int{"store.retention": 14}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("type errors: got %v, want %v (err %v)", got, want, err)
	}

	doc = strings.Replace(doc, "retention = 5", `retention = "5h"`, 1)
	_, err = Parse(strings.NewReader(doc))
	got = fieldLines(err)
	// A multi-line value is found on its first line.
	want = map[string]int{"log.multi": 10}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("unknown keys: got %v, want %v (err %v)", got, want, err)
	}

	doc = strings.Replace(doc, "multi = \"\"\"\na\n\"\"\"\n", "", 1)
	_, err = Parse(strings.NewReader(doc))
	got = fieldLines(err)
	want = map[string]int{"xmpp.rate": 6, "log.level": 9, "store.retention": 11}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("invalid values: got %v, want %v (err %v)", got, want, err)
	}
	if want := "xmpp.rate (line 6): 1 is out of range"; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not contain %q", err, want)
	}
}

// Finding lines must stay cheap however the file is shaped.
func TestParseLinesBounded(t *testing.T) {
	doc := configDoc("", "[log]\n"+strings.Repeat("# a\n", 4000)+"a = 1\n")
	start := time.Now()
	_, err := Parse(strings.NewReader(doc))
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Parse took %v on a %d-byte file", d, len(doc))
	}
	// The parser knows every key's line: there is no search budget to
	// run out of, however long the file.
	if got := fieldLines(err); len(got) != 1 || got["log.a"] != 4006 {
		t.Errorf("got %v, want log.a on line 4006", got)
	}
}

func fieldLines(err error) map[string]int {
	m := map[string]int{}
	if err == nil {
		return m
	}
	for _, ce := range Errors(err) {
		m[ce.Field] = ce.Line
	}
	return m
}

func TestParseTableIsValue(t *testing.T) {
	_, err := Parse(strings.NewReader("log = 1\n" + configDoc("", "")))
	var ce *Error
	if !errors.As(err, &ce) || ce.Field != "log" || ce.Line != 1 || !strings.Contains(ce.Problem, "want a table, written [log]") {
		t.Errorf("got %v, want an Error: log on line 1 must be a table", err)
	}
}

func TestParseSyntaxLine(t *testing.T) {
	_, err := Parse(strings.NewReader("[xmpp]\njid = \"a@b\"\nowner = 'x\n"))
	var ce *Error
	if !errors.As(err, &ce) || ce.Line != 3 || ce.Field != "" {
		t.Fatalf("got %v, want a syntax Error on line 3", err)
	}
	if got, want := ce.Error(), "line 3: TOML syntax: "; !strings.HasPrefix(got, want) {
		t.Errorf("Error() = %q, want prefix %q", got, want)
	}
}

func TestParseNotConfigured(t *testing.T) {
	tests := []struct{ name, doc string }{
		{"empty", ""},
		{"comments only", "# set me up\n"},
		{"no jid", "[xmpp]\nowner = \"me@example.org\"\npassword = \"x\"\n"},
		{"no password", "[xmpp]\njid = \"bot@example.org\"\nowner = \"me@example.org\"\n"},
		{"tables only", "[xmpp]\n[store]\n[log]\nlevel = \"debug\"\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(strings.NewReader(tt.doc))
			if !errors.Is(err, ErrNotConfigured) {
				t.Errorf("Parse(%q) = %v, want ErrNotConfigured", tt.doc, err)
			}
		})
	}
}

func TestParseTooLarge(t *testing.T) {
	doc := configDoc("", "# "+strings.Repeat("x", maxConfigSize)+"\n")
	_, err := Parse(strings.NewReader(doc))
	var ce *Error
	if !errors.As(err, &ce) || !strings.Contains(ce.Problem, "larger than") {
		t.Errorf("got %v, want a too-large Error", err)
	}
}

func TestParseNotUTF8(t *testing.T) {
	_, err := Parse(strings.NewReader(configDoc(`resource = "`+"\xff"+`"`, "")))
	var ce *Error
	if !errors.As(err, &ce) || !strings.Contains(ce.Problem, "UTF-8") {
		t.Errorf("got %v, want a UTF-8 Error", err)
	}
}

func TestValidateReportsAll(t *testing.T) {
	c := Default()
	c.XMPP.JID = "bot"
	c.XMPP.Rate = 1
	c.Log.Format = "xml"
	var fields []string
	for _, ce := range Errors(c.Validate()) {
		fields = append(fields, ce.Field)
	}
	want := []string{"xmpp.jid", "xmpp.password", "xmpp.owner", "xmpp.rate", "log.format"}
	if !slices.Equal(fields, want) {
		t.Errorf("Validate reported %v, want %v", fields, want)
	}
}

func TestValidateAccepts(t *testing.T) {
	for _, jid := range []string{
		"bot@example.org", "bot@localhost", "bot@127.0.0.1", "bot@[::1]",
		"bøt@exämple.org", "a.b+c_d-e@x-y.example", "bot@" + strings.Repeat("a", 63) + ".org",
	} {
		if p := checkBareJID(jid); p != "" {
			t.Errorf("checkBareJID(%q) = %q, want ok", jid, p)
		}
	}
	for _, hp := range []string{"example.org:5222", "127.0.0.1:5223", "[::1]:5222", "localhost:1"} {
		if p := checkHostPort(hp); p != "" {
			t.Errorf("checkHostPort(%q) = %q, want ok", hp, p)
		}
	}
}

func TestConfigErrorString(t *testing.T) {
	tests := []struct {
		e    Error
		want string
	}{
		{Error{Field: "xmpp.rate", Line: 3, Problem: "bad"}, "xmpp.rate (line 3): bad"},
		{Error{Field: "xmpp.rate", Problem: "bad"}, "xmpp.rate: bad"},
		{Error{Line: 3, Problem: "bad"}, "line 3: bad"},
		{Error{Problem: "bad"}, "bad"},
	}
	for _, tt := range tests {
		if got := tt.e.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
}

func TestRedacted(t *testing.T) {
	c := Default()
	c.XMPP.Password = "hunter2"
	r := c.Redacted()
	if r.XMPP.Password != "***" {
		t.Errorf("Redacted password = %q, want ***", r.XMPP.Password)
	}
	if c.XMPP.Password != "hunter2" {
		t.Error("Redacted changed its receiver")
	}
	if got := (Config{}).Redacted().XMPP.Password; got != "" {
		t.Errorf("Redacted of no password = %q, want empty", got)
	}

	for _, h := range []func(*bytes.Buffer) slog.Handler{
		func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) },
		func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) },
	} {
		var buf bytes.Buffer
		slog.New(h(&buf)).Info("config", "cfg", c)
		if strings.Contains(buf.String(), "hunter2") {
			t.Errorf("logged config leaks the password: %s", buf.String())
		}
		if !strings.Contains(buf.String(), "ping_interval") {
			t.Errorf("logged config lacks its fields: %s", buf.String())
		}
	}
}

func writeFile(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}

func testCAPEM(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "waxmpp test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "etc", "config.toml")
	writeFile(t, filepath.Join(dir, "etc", "secret"), "s3cret\r\n\n", 0o600)
	writeFile(t, filepath.Join(dir, "etc", "ca.pem"), testCAPEM(t), 0o644)
	writeFile(t, path, configDoc(`password_file = "secret"
ca_file = "ca.pem"`, "[store]\npath = \"state/waxmpp.db\"\n"), 0o600)

	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	etc := filepath.Join(dir, "etc")
	if cfg.XMPP.Password != "s3cret" {
		t.Errorf("password = %q, want s3cret from the password file", cfg.XMPP.Password)
	}
	if want := filepath.Join(etc, "secret"); cfg.XMPP.PasswordFile != want {
		t.Errorf("password_file = %q, want %q", cfg.XMPP.PasswordFile, want)
	}
	if want := filepath.Join(etc, "ca.pem"); cfg.XMPP.CAFile != want {
		t.Errorf("ca_file = %q, want %q", cfg.XMPP.CAFile, want)
	}
	if want := filepath.Join(etc, "state", "waxmpp.db"); cfg.Store.Path != want {
		t.Errorf("store.path = %q, want %q", cfg.Store.Path, want)
	}
	if err := cfg.Validate(); err != nil {
		t.Errorf("a loaded config does not validate again: %v", err)
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name          string
		xmpp          string
		files         map[string]string
		notConfigured bool
		wantField     string
		wantIn        string
	}{
		{name: "missing file", notConfigured: true, wantIn: "does not exist"},
		{name: "no jid", xmpp: `jid = ""`, notConfigured: true, wantIn: "xmpp.jid"},
		{name: "empty password file", xmpp: `password_file = "pw"`,
			files: map[string]string{"pw": "\n"}, notConfigured: true, wantIn: "is empty"},
		{name: "missing password file", xmpp: `password_file = "pw"`,
			wantField: "xmpp.password_file", wantIn: "no such file"},
		{name: "password file nul", xmpp: `password_file = "pw"`,
			files: map[string]string{"pw": "a\x00b"}, wantField: "xmpp.password_file", wantIn: "NUL"},
		{name: "password file huge", xmpp: `password_file = "pw"`,
			files: map[string]string{"pw": strings.Repeat("x", maxSecretFileSize+1)}, wantField: "xmpp.password_file", wantIn: "larger than"},
		{name: "missing ca file", xmpp: `ca_file = "ca.pem"`, wantField: "xmpp.ca_file", wantIn: "no such file"},
		{name: "ca file not pem", xmpp: `ca_file = "ca.pem"`,
			files: map[string]string{"ca.pem": "hello"}, wantField: "xmpp.ca_file", wantIn: "no PEM certificates"},
		{name: "invalid", xmpp: `rate = 1`, wantField: "xmpp.rate", wantIn: "out of range"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "config.toml")
			if tt.name != "missing file" {
				writeFile(t, path, configDoc(tt.xmpp, ""), 0o600)
			}
			for name, content := range tt.files {
				writeFile(t, filepath.Join(dir, name), content, 0o600)
			}
			_, err := Load(path)
			if err == nil {
				t.Fatal("Load succeeded, want an error")
			}
			if !strings.HasPrefix(err.Error(), "config "+path+": ") {
				t.Errorf("error %q does not name the file", err)
			}
			if !strings.Contains(err.Error(), tt.wantIn) {
				t.Errorf("error %q does not contain %q", err, tt.wantIn)
			}
			if got := errors.Is(err, ErrNotConfigured); got != tt.notConfigured {
				t.Errorf("errors.Is(%v, ErrNotConfigured) = %v, want %v", err, got, tt.notConfigured)
			}
			if tt.wantField != "" {
				var ce *Error
				if !errors.As(err, &ce) || ce.Field != tt.wantField {
					t.Errorf("error %v, want an Error for %s", err, tt.wantField)
				}
			}
		})
	}
}

func TestLoadUnreadable(t *testing.T) {
	dir := t.TempDir()
	// A directory cannot be read as a file, even by root.
	_, err := Load(dir)
	var ce *Error
	if !errors.As(err, &ce) {
		t.Fatalf("Load(dir) = %v, want an Error", err)
	}
}

func FuzzParse(f *testing.F) {
	example, err := os.ReadFile("example.toml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(string(example))
	f.Add("")
	f.Add(configDoc("", ""))
	f.Add(configDoc(`rate = 1`, "[log]\nlevel = \"x\"\n"))
	f.Add(configDoc(`ping_interval = 60`, "[matrix]\na = 1\n"))
	f.Add(configDoc(`jid = "a@[::1]"`, "[[store]]\n"))
	f.Add("[xmpp]\njid = 'x@y'\n\"a.b\" = { c = 1 }\n")
	f.Fuzz(func(t *testing.T, doc string) {
		cfg, err := Parse(strings.NewReader(doc))
		if err != nil {
			var ce *Error
			if !errors.Is(err, ErrNotConfigured) && !errors.As(err, &ce) {
				t.Fatalf("Parse(%q) = %T %v, want ErrNotConfigured or *Error", doc, err, err)
			}
			if err.Error() == "" {
				t.Fatalf("Parse(%q): empty error message", doc)
			}
			return
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("Parse(%q) accepted a config that does not validate: %v", doc, err)
		}
		if cfg.XMPP.Password != "" && cfg.Redacted().XMPP.Password != "***" {
			t.Fatalf("Redacted kept the password")
		}
		// What Parse accepts, Write writes and Parse reads back the same.
		var b bytes.Buffer
		if err := Write(&b, cfg); err != nil {
			t.Fatalf("Write of the config parsed from %q: %v", doc, err)
		}
		back, err := Parse(&b)
		if err != nil {
			t.Fatalf("Parse(Write(Parse(%q))) = %v; written:\n%s", doc, err, b.String())
		}
		if back != cfg {
			t.Fatalf("round trip of %q\ngot  %+v\nwant %+v", doc, back, cfg)
		}
	})
}

// TestLoadStore: pair and backup find the state file also before setup has
// named the accounts, where the file says, not at the default.
func TestLoadStore(t *testing.T) {
	tests := []struct {
		name      string
		doc       string // "" : no file
		wantPath  string // relative to the config's directory, or absolute
		wantField string // the error's key; "" for no error
	}{
		{name: "no file", wantPath: DefaultStorePath},
		{name: "no accounts yet", doc: "[store]\npath = \"state/w.db\"\n", wantPath: "state/w.db"},
		{name: "empty", doc: "# nothing yet\n", wantPath: DefaultStorePath},
		{name: "configured", doc: configDoc("", "[store]\npath = \"/srv/w.db\"\n"), wantPath: "/srv/w.db"},
		{name: "no accounts, bad store", doc: "[store]\nretention = \"1h\"\n", wantField: "store.retention"},
		{name: "no accounts, bad log", doc: "[log]\nlevel = \"loud\"\n", wantPath: DefaultStorePath},
		{name: "configured, invalid", doc: configDoc("rate = 1", ""), wantField: "xmpp.rate"},
		{name: "unknown key", doc: "[store]\npaht = \"x\"\n", wantField: "store.paht"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "config.toml")
			if tt.doc != "" {
				writeFile(t, path, tt.doc, 0o600)
			}
			st, err := LoadStore(path)
			if tt.wantField != "" {
				var ce *Error
				if !errors.As(err, &ce) || ce.Field != tt.wantField || ce.Line == 0 {
					t.Fatalf("LoadStore = %v, want an Error for %s with its line", err, tt.wantField)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := tt.wantPath
			if !filepath.IsAbs(want) {
				want = filepath.Join(dir, want)
			}
			if st.Path != want {
				t.Errorf("path = %q, want %q", st.Path, want)
			}
		})
	}
}

// TestRoomsAuto: [rooms] auto is off unless the file says true.
func TestRoomsAuto(t *testing.T) {
	for _, c := range []struct {
		rest string
		want bool
	}{{"", false}, {"[rooms]\n", false}, {"[rooms]\nauto = false\n", false}, {"[rooms]\nauto = true\n", true}} {
		cfg, err := Parse(strings.NewReader(configDoc("", c.rest)))
		if err != nil || cfg.Rooms.Auto != c.want {
			t.Errorf("%q: auto %v, %v; want %v", c.rest, cfg.Rooms.Auto, err, c.want)
		}
	}
}
