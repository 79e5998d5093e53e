// Package config reads, validates and writes waxmpp's configuration file
// (/etc/waxmpp/config.toml): one typed Config, its defaults, and errors that
// name the key, its line and what would be valid. `waxmpp run`, `pair` and
// `backup`, the setup wizard and `waxmpp doctor` all go through it.
//
// The file is TOML. Keys are the snake_case names of the toml tags below;
// durations are Go duration strings ("60s", "2160h"). Unknown keys are an
// error, not silently ignored, so that a typo cannot switch something off.
// TOML keys are case-sensitive: "JID" is not "jid". example.toml beside this
// file describes every key; README.md has the smallest working file.
//
// Parsing uses github.com/pelletier/go-toml/v2: its parser gives the line of
// every key (for errors about values that are valid TOML but not a valid
// setting), its decoder fills Config, and its encoder writes it (Write).
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"waxmpp/bridge"
)

// ErrNotConfigured means waxmpp has no usable configuration yet: the config
// file does not exist, or it does not name the bot account (xmpp.jid) or its
// password. It is the normal state of a fresh install, before setup has run;
// the daemon exits with EX_CONFIG and systemd does not restart it.
var ErrNotConfigured = errors.New("waxmpp is not configured")

// Config is waxmpp's whole configuration, read from one TOML file.
//
// The zero value is not usable: start from Default, or use Parse or Load,
// which apply the defaults and validate.
//
// The toml tags' omitempty only shapes what Write emits (it leaves out
// defaults, which it zeroes first); reading is unaffected.
type Config struct {
	XMPP     XMPP     `toml:"xmpp,omitempty"`
	WhatsApp WhatsApp `toml:"whatsapp,omitempty"`
	Store    Store    `toml:"store,omitempty"`
	Media    Media    `toml:"media,omitempty"`
	Rooms    Rooms    `toml:"rooms,omitempty"`
	Log      Log      `toml:"log,omitempty"`
	Invite   Invite   `toml:"invite,omitempty"`
}

// XMPP is the [xmpp] table: the bot account and how to reach its server.
type XMPP struct {
	// JID is the bot account's bare JID (name@example.org). Required.
	JID string `toml:"jid,omitempty"`
	// Password is the bot account's password. Required unless PasswordFile
	// is set; a file may not set both. After Load it holds the password
	// read from PasswordFile.
	Password string `toml:"password,omitempty"`
	// PasswordFile, when set, names a file holding the password (trailing
	// newlines are trimmed). Load resolves a relative path against the
	// config file's directory. After Load of a file that names neither
	// password nor password_file, it is the systemd credential
	// (PasswordCredential).
	PasswordFile string `toml:"password_file,omitempty"`
	// Owner is the owner's bare JID, the only account the bot serves.
	// Required; must differ from JID.
	Owner string `toml:"owner,omitempty"`
	// Server optionally overrides where to connect, as "host:port"
	// (STARTTLS) or "tls://host:port" (direct TLS, XEP-0368). Empty means
	// the usual SRV lookup of JID's domain (RFC 6120, XEP-0368).
	Server string `toml:"server,omitempty"`
	// CAFile optionally names a PEM bundle of CA certificates trusted in
	// addition to the system roots (self-hosted servers, tests). Load
	// resolves a relative path against the config file's directory.
	CAFile string `toml:"ca_file,omitempty"`
	// Resource is the bot's XMPP resource. Default "waxmpp".
	Resource string `toml:"resource,omitempty"`
	// SASLMechanism forces the SASL mechanism of the bot's login, e.g.
	// "SCRAM-SHA-1". Empty (the default) takes the strongest the server
	// offers, falling back once from channel binding (-PLUS) when the
	// server refuses it.
	SASLMechanism string `toml:"sasl_mechanism,omitempty"`
	// Rate is the ceiling of the outgoing byte rate in bytes per second;
	// below it the bot finds the server's own pace from ping round trips
	// (Prosody's default limit is about 10 kB/s, ejabberd's 3,000 B/s).
	// Default 8000, minimum 500.
	Rate int `toml:"rate,omitempty"`
	// Burst is the token bucket's size in bytes. It must hold the largest
	// stanza we send. Default 16000, minimum 4096.
	Burst int `toml:"burst,omitempty"`
	// PingInterval is how often the bot sends an XEP-0199 ping, both as a
	// keepalive and to confirm that the server received the stanzas sent
	// before it (go-xmpp has no XEP-0198). Default 60s, 5s..10m.
	PingInterval Duration `toml:"ping_interval,omitempty"`
	// PingTimeout is how long a ping may stay unanswered before the
	// connection is considered dead and rebuilt. Default 20s; 1s up to
	// PingInterval.
	PingTimeout Duration `toml:"ping_timeout,omitempty"`

	// credential: PasswordFile is the systemd credential, not a key of
	// the file; Write leaves it out.
	credential bool
}

// WhatsApp is the [whatsapp] table. It has no keys yet; the table is
// accepted (and stays reserved for WhatsApp settings) so that an empty
// [whatsapp] is not an error.
type WhatsApp struct{}

// Store is the [store] table: the state file.
type Store struct {
	// Path is the bbolt state file. Default /var/lib/waxmpp/waxmpp.db.
	// Load resolves a relative path against the config file's directory.
	Path string `toml:"path,omitempty"`
	// Retention is how long message id mappings are kept (they let replies,
	// edits and reactions find their message). Default 2160h (90 days),
	// minimum 24h.
	Retention Duration `toml:"retention,omitempty"`
}

// Media is the [media] table: files relayed both ways.
type Media struct {
	// MaxSize is the largest file the owner may send to WhatsApp, in
	// bytes (what the owner's client uploaded; what WhatsApp sends is
	// bounded by the XMPP server's upload limit). Default 104857600
	// (100 MiB), at most 2 GiB (WhatsApp's own limit).
	MaxSize int64 `toml:"max_size,omitempty"`
	// Timeout bounds the download of one such file. Default "10m".
	Timeout Duration `toml:"timeout,omitempty"`
	// VoiceAAC says when WhatsApp's voice notes (Ogg/Opus) reach you as
	// AAC in .m4a, which iOS clients play: "auto" (default) when one of
	// your online clients is Monal or Siskin, "always", or "never".
	// Converting needs ffmpeg.
	VoiceAAC string `toml:"voice_aac,omitempty"`
}

// Rooms is the [rooms] table: chats in group chats of their own.
type Rooms struct {
	// Auto gives every chat that speaks a group chat of its own (XEP-0045)
	// on the bot's server, as /room does. Default false: chats come to
	// the bot conversation until the owner moves one with /room.
	Auto bool `toml:"auto,omitempty"`
}

// Log is the [log] table.
type Log struct {
	// Level is the least severe level logged: debug, info, warn or error.
	// Message bodies and phone numbers appear only at debug. Default info.
	Level string `toml:"level,omitempty"`
	// Format is text (logfmt-like, for the journal) or json. Default text.
	Format string `toml:"format,omitempty"`
}

// Invite is the [invite] table: what /invite sends a WhatsApp friend to
// bring them over to XMPP (see package bridge's invitetext.go for the
// placeholders).
type Invite struct {
	// Language is the language of the built-in invitation: en, de, fr or
	// es. Empty (the default) follows the system's locale, as LC_ALL,
	// LC_MESSAGES and LANG say in that order (under systemd, the locale
	// localectl sets), and English where it names none of them: see Lang.
	Language string `toml:"language,omitempty"`
	// Text replaces the built-in invitation to a person: plain text with
	// {name}, {address}, {uri} and {link}; it must name the address with
	// one of the last three. Empty: the built-in text in Language.
	Text string `toml:"text,omitempty"`
	// GroupText replaces the built-in invitation to a group (your address,
	// to everyone in it), as Text.
	GroupText string `toml:"group_text,omitempty"`
	// RoomText replaces the built-in invitation to a group that has its
	// own room (/room): the room's address, as Text.
	RoomText string `toml:"room_text,omitempty"`
	// Link is the landing page invitations link to, as a base the address
	// is added to: as the last path segment ("https://conversations.im/i/"
	// gives https://conversations.im/i/me@example.org), or after a base
	// ending in "#" as the URI without "xmpp:" ("https://xmpp.link/#"
	// gives https://xmpp.link/#me@example.org?roster). https only.
	// Default https://conversations.im/i/.
	Link string `toml:"link,omitempty"`
	// RoomLink is Link for a room. Default https://conversations.im/j/.
	RoomLink string `toml:"room_link,omitempty"`
}

// Lang is the language of the built-in invitation: Language, or else the
// first of LC_ALL, LC_MESSAGES and LANG that getenv finds set (POSIX's
// order) when it names one of the languages ("de_DE.UTF-8" is de), else
// English.
func (i Invite) Lang(getenv func(string) string) string {
	if i.Language != "" {
		return i.Language
	}
	for _, v := range []string{"LC_ALL", "LC_MESSAGES", "LANG"} {
		loc := getenv(v)
		if loc == "" {
			continue
		}
		lang := strings.ToLower(loc[:strings.IndexFunc(loc+"_", func(r rune) bool { return r == '_' || r == '.' || r == '@' || r == '-' })])
		if slices.Contains(bridge.InviteLanguages, lang) {
			return lang
		}
		break
	}
	return "en"
}

// Duration is a time.Duration that the file writes as a Go duration string
// in quotes ("60s", "2160h"). A bare integer is refused: it would be
// nanoseconds, never what a person means.
type Duration time.Duration

// String is time.Duration's.
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalText writes the shortest usual form: "1m" rather than "1m0s".
func (d Duration) MarshalText() ([]byte, error) {
	s := time.Duration(d).String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return []byte(s), nil
}

// UnmarshalText parses a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// Limits enforced by Validate.
const (
	minRate         = 500
	minBurst        = 4096
	maxRateOrBurst  = 1 << 30
	minPingInterval = Duration(5 * time.Second)
	maxPingInterval = Duration(10 * time.Minute)
	minPingTimeout  = Duration(time.Second)
	minRetention    = Duration(24 * time.Hour)

	// maxJIDPart is RFC 7622's limit for each part of a JID, in bytes.
	maxJIDPart = 1023
)

// DefaultStorePath is where the state file lives unless [store] path says
// otherwise.
const DefaultStorePath = "/var/lib/waxmpp/waxmpp.db"

// Default returns the defaults that Parse starts from. It has no accounts,
// so it does not validate on its own.
func Default() Config {
	return Config{
		XMPP: XMPP{
			Resource:     "waxmpp",
			Rate:         8000,
			Burst:        16000,
			PingInterval: Duration(60 * time.Second),
			PingTimeout:  Duration(20 * time.Second),
		},
		Store: Store{
			Path:      DefaultStorePath,
			Retention: Duration(90 * 24 * time.Hour),
		},
		Media: Media{
			MaxSize:  100 << 20,
			Timeout:  Duration(10 * time.Minute),
			VoiceAAC: "auto",
		},
		Log: Log{
			Level:  "info",
			Format: "text",
		},
		Invite: Invite{
			Link:     bridge.DefaultInviteLink,
			RoomLink: bridge.DefaultRoomLink,
		},
	}
}

// Error is one problem with the configuration: which key, where, what is
// wrong and what would be valid. Validate, Parse and Load return these,
// several joined with errors.Join when there are several problems; find them
// with errors.As.
type Error struct {
	// Field is the dotted TOML key ("xmpp.rate"), its parts quoted where
	// TOML needs it (log."a.b"); empty when the problem is the file as a
	// whole (syntax, size, unreadable).
	Field string
	// Line is the 1-based line in the file, or 0 when unknown (Validate on
	// a Config built in code, or a key set by default).
	Line int
	// Problem says what is wrong and what would be valid.
	Problem string
	// Err is the underlying error, if any (a TOML parse error, an I/O
	// error).
	Err error
}

func (e *Error) Error() string {
	var b strings.Builder
	switch {
	case e.Field != "" && e.Line > 0:
		fmt.Fprintf(&b, "%s (line %d): ", e.Field, e.Line)
	case e.Field != "":
		b.WriteString(e.Field + ": ")
	case e.Line > 0:
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	b.WriteString(e.Problem)
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// notConfigured reports, wrapping ErrNotConfigured, that the accounts are
// missing altogether: the state before setup has run.
func (c Config) notConfigured() error {
	switch {
	case c.XMPP.JID == "":
		return fmt.Errorf("%w: xmpp.jid (the bot account) is not set", ErrNotConfigured)
	case c.XMPP.Password == "" && c.XMPP.PasswordFile == "":
		return fmt.Errorf("%w: neither xmpp.password nor xmpp.password_file is set", ErrNotConfigured)
	}
	return nil
}

// Validate checks every field and returns nil or all problems found, as
// *Error values joined with errors.Join, in field order.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &Error{Field: field, Problem: fmt.Sprintf(format, args...)})
	}

	x := c.XMPP
	if p := checkBareJID(x.JID); p != "" {
		bad("xmpp.jid", "%s; want the bot account's bare JID, such as bot@example.org", p)
	}
	switch {
	case x.Password == "" && x.PasswordFile == "":
		bad("xmpp.password", "required (or set xmpp.password_file)")
	case strings.ContainsRune(x.Password, 0):
		bad("xmpp.password", "contains a NUL byte, which no XMPP password may contain")
	}
	if p := checkPath(x.PasswordFile); p != "" {
		bad("xmpp.password_file", "%s", p)
	}
	if p := checkBareJID(x.Owner); p != "" {
		bad("xmpp.owner", "%s; want your own bare JID, such as me@example.org", p)
	} else if x.JID != "" && strings.EqualFold(x.Owner, x.JID) {
		bad("xmpp.owner", "is the bot account itself; the bot needs an account of its own, distinct from yours, so that its messages appear as a conversation")
	}
	if x.Server != "" {
		if p := checkHostPort(x.Server); p != "" {
			bad("xmpp.server", "%s; want \"host:port\" such as \"xmpp.example.org:5222\", or leave it empty to use DNS SRV records", p)
		}
	}
	if p := checkPath(x.CAFile); p != "" {
		bad("xmpp.ca_file", "%s", p)
	}
	if p := checkResource(x.Resource); p != "" {
		bad("xmpp.resource", "%s; want a short name such as \"waxmpp\"", p)
	}
	switch x.SASLMechanism {
	case "", "PLAIN", "SCRAM-SHA-1", "SCRAM-SHA-1-PLUS", "SCRAM-SHA-256", "SCRAM-SHA-256-PLUS", "SCRAM-SHA-512", "SCRAM-SHA-512-PLUS":
	default:
		bad("xmpp.sasl_mechanism", "%q is not a mechanism waxmpp has; want SCRAM-SHA-1, SCRAM-SHA-256, SCRAM-SHA-512 (each also -PLUS), PLAIN, or empty for the strongest the server offers", x.SASLMechanism)
	}
	if x.Rate < minRate || x.Rate > maxRateOrBurst {
		bad("xmpp.rate", "%d is out of range; want bytes per second from %d to %d (Prosody allows about 10000)", x.Rate, minRate, maxRateOrBurst)
	}
	if x.Burst < minBurst || x.Burst > maxRateOrBurst {
		bad("xmpp.burst", "%d is out of range; want bytes from %d (the largest stanza must fit) to %d", x.Burst, minBurst, maxRateOrBurst)
	}
	if x.PingInterval < minPingInterval || x.PingInterval > maxPingInterval {
		bad("xmpp.ping_interval", "%s is out of range; want a duration from %s to %s, such as \"60s\"", x.PingInterval, minPingInterval, maxPingInterval)
	}
	switch {
	case x.PingTimeout < minPingTimeout:
		bad("xmpp.ping_timeout", "%s is too short; want at least %s, such as \"20s\"", x.PingTimeout, minPingTimeout)
	case x.PingTimeout > x.PingInterval && x.PingInterval >= minPingInterval:
		bad("xmpp.ping_timeout", "%s is longer than xmpp.ping_interval (%s); want %s to %s", x.PingTimeout, x.PingInterval, minPingTimeout, x.PingInterval)
	}

	switch {
	case c.Store.Path == "":
		bad("store.path", "required; want the state file, such as %q", DefaultStorePath)
	case checkPath(c.Store.Path) != "":
		bad("store.path", "%s", checkPath(c.Store.Path))
	case strings.HasSuffix(c.Store.Path, "/"):
		bad("store.path", "%q names a directory; want a file, such as %q", c.Store.Path, DefaultStorePath)
	}
	if c.Store.Retention < minRetention {
		bad("store.retention", "%s is too short; want at least %s, such as \"2160h\" (90 days)", c.Store.Retention, minRetention)
	}

	if m := c.Media; m.MaxSize < 1<<10 || m.MaxSize > 2<<30 {
		bad("media.max_size", "%d is out of range; want bytes from 1024 to 2147483648 (2 GiB), such as 104857600 (100 MiB)", m.MaxSize)
	}
	if c.Media.Timeout < Duration(10*time.Second) || c.Media.Timeout > Duration(24*time.Hour) {
		bad("media.timeout", "%s is out of range; want a duration from 10s to 24h, such as \"10m\"", c.Media.Timeout)
	}
	switch c.Media.VoiceAAC {
	case "auto", "always", "never":
	default:
		bad("media.voice_aac", "%q is not a choice; want auto, always or never", c.Media.VoiceAAC)
	}

	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "%q is not a level; want debug, info, warn or error", c.Log.Level)
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		bad("log.format", "%q is not a format; want text or json", c.Log.Format)
	}

	in := c.Invite
	if in.Language != "" && !slices.Contains(bridge.InviteLanguages, in.Language) {
		bad("invite.language", "%q is not a language of the invitation; want en, de, fr or es, or leave it out to follow the system's locale", in.Language)
	}
	for _, t := range []struct{ field, text string }{{"invite.text", in.Text}, {"invite.group_text", in.GroupText}, {"invite.room_text", in.RoomText}} {
		if t.text == "" {
			continue
		}
		if err := bridge.CheckInviteText(t.text); err != nil {
			bad(t.field, "%v", err)
		}
	}
	for _, l := range []struct{ field, link, example string }{{"invite.link", in.Link, bridge.DefaultInviteLink}, {"invite.room_link", in.RoomLink, bridge.DefaultRoomLink}} {
		if p := checkLanding(l.link); p != "" {
			bad(l.field, "%s; want an https address ending in / or #, such as %q", p, l.example)
		}
	}
	return errors.Join(errs...)
}

// Redacted returns a copy safe to log: the password is replaced by "***".
func (c Config) Redacted() Config {
	if c.XMPP.Password != "" {
		c.XMPP.Password = "***"
	}
	return c
}

// LogValue makes a Config logged with log/slog show its redacted form, so a
// careless log.Info("config", "cfg", cfg) cannot leak the password.
func (c Config) LogValue() slog.Value {
	r := c.Redacted()
	return slog.GroupValue(
		slog.Group("xmpp",
			"jid", r.XMPP.JID,
			"password", r.XMPP.Password,
			"password_file", r.XMPP.PasswordFile,
			"owner", r.XMPP.Owner,
			"server", r.XMPP.Server,
			"ca_file", r.XMPP.CAFile,
			"resource", r.XMPP.Resource,
			"sasl_mechanism", r.XMPP.SASLMechanism,
			"rate", r.XMPP.Rate,
			"burst", r.XMPP.Burst,
			"ping_interval", time.Duration(r.XMPP.PingInterval),
			"ping_timeout", time.Duration(r.XMPP.PingTimeout),
		),
		slog.Group("store",
			"path", r.Store.Path,
			"retention", time.Duration(r.Store.Retention),
		),
		slog.Group("rooms",
			"auto", r.Rooms.Auto,
		),
		slog.Group("media",
			"max_size", r.Media.MaxSize,
			"timeout", time.Duration(r.Media.Timeout),
			"voice_aac", r.Media.VoiceAAC,
		),
		slog.Group("log",
			"level", r.Log.Level,
			"format", r.Log.Format,
		),
		slog.Group("invite",
			"language", r.Invite.Language,
			"own_text", r.Invite.Text != "",
			"own_group_text", r.Invite.GroupText != "",
			"own_room_text", r.Invite.RoomText != "",
			"link", r.Invite.Link,
			"room_link", r.Invite.RoomLink,
		),
	)
}

// checkBareJID returns what is wrong with s as a bare JID
// (localpart@domainpart), or "". It follows RFC 7622's structure and length
// limits and refuses what it forbids outright, without full PRECIS
// preparation.
func checkBareJID(s string) string {
	switch {
	case s == "":
		return "required"
	case !utf8.ValidString(s):
		return "is not valid UTF-8"
	case strings.Contains(s, "/"):
		return fmt.Sprintf("%q has a /resource; want a bare JID", s)
	}
	local, domain, ok := strings.Cut(s, "@")
	switch {
	case !ok:
		return fmt.Sprintf("%q has no @; want an account, name@domain", s)
	case strings.Contains(domain, "@"):
		return fmt.Sprintf("%q has more than one @", s)
	}
	if local == "" {
		return fmt.Sprintf("%q has nothing before the @", s)
	}
	if len(local) > maxJIDPart {
		return fmt.Sprintf("the part before the @ is longer than %d bytes", maxJIDPart)
	}
	// RFC 7622 section 3.3.1: these may not appear in a localpart.
	if i := strings.IndexAny(local, "\"&'/:<>@"); i >= 0 {
		return fmt.Sprintf("%q: %q may not appear before the @", s, local[i])
	}
	for _, r := range local {
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			return fmt.Sprintf("%q: spaces and control characters may not appear in a JID", s)
		}
	}
	if p := checkDomain(domain); p != "" {
		return fmt.Sprintf("%q: %s", s, p)
	}
	return ""
}

// checkDomain returns what is wrong with s as a JID domainpart or host name:
// a DNS name (internationalized labels allowed), an IPv4 address or a
// bracketed IPv6 address.
func checkDomain(s string) string {
	switch {
	case s == "":
		return "the domain is empty"
	case len(s) > maxJIDPart:
		return fmt.Sprintf("the domain is longer than %d bytes", maxJIDPart)
	case strings.HasPrefix(s, "["):
		if ip := net.ParseIP(strings.TrimSuffix(s[1:], "]")); !strings.HasSuffix(s, "]") || ip == nil || ip.To4() != nil {
			return fmt.Sprintf("%q is not a bracketed IPv6 address", s)
		}
		return ""
	case net.ParseIP(s) != nil:
		if strings.Contains(s, ":") {
			return fmt.Sprintf("the IPv6 address %q must be in brackets", s)
		}
		return ""
	case strings.HasSuffix(s, "."):
		return fmt.Sprintf("the domain %q ends with a dot; leave it out", s)
	}
	for label := range strings.SplitSeq(s, ".") {
		if label == "" {
			return fmt.Sprintf("the domain %q has an empty label (\"..\" or a leading dot)", s)
		}
		if len(label) > 63 {
			return fmt.Sprintf("the domain %q has a label longer than 63 bytes", s)
		}
		if label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Sprintf("the domain %q has a label that starts or ends with '-'", s)
		}
		for _, r := range label {
			if r != '-' && !unicode.IsLetter(r) && !unicode.IsDigit(r) && !unicode.IsMark(r) {
				return fmt.Sprintf("the domain %q contains %q; want letters, digits, '-' and '.'", s, r)
			}
		}
	}
	return ""
}

// checkHostPort returns what is wrong with s as "host:port", or "".
func checkHostPort(s string) string {
	host, port, err := net.SplitHostPort(strings.TrimPrefix(s, "tls://"))
	if err != nil {
		return fmt.Sprintf("%q is not host:port", s)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Sprintf("%q has port %q; want 1 to 65535", s, port)
	}
	if ip := net.ParseIP(host); ip != nil {
		return ""
	}
	if p := checkDomain(host); p != "" {
		return fmt.Sprintf("%q: %s", s, p)
	}
	return ""
}

// checkResource returns what is wrong with s as a JID resourcepart, or "".
func checkResource(s string) string {
	switch {
	case s == "":
		return "required"
	case len(s) > maxJIDPart:
		return fmt.Sprintf("longer than %d bytes", maxJIDPart)
	case !utf8.ValidString(s):
		return "is not valid UTF-8"
	case strings.TrimSpace(s) != s:
		return fmt.Sprintf("%q starts or ends with a space", s)
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return fmt.Sprintf("%q contains a control character", s)
		}
	}
	return ""
}

// checkLanding returns what is wrong with s as the base of an invitation's
// landing link, or "".
func checkLanding(s string) string {
	switch {
	case s == "":
		return "is empty"
	case !strings.HasSuffix(s, "/") && !strings.HasSuffix(s, "#"):
		return fmt.Sprintf("%q does not end in / or #, so the address would not be a part of its own", s)
	case strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r >= 0x7f }):
		return fmt.Sprintf("%q contains spaces or characters beyond ASCII", s)
	}
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return fmt.Sprintf("%q is not a URL", s)
	case u.Scheme != "https":
		return fmt.Sprintf("%q is not an https address", s)
	case u.Host == "" || u.User != nil:
		return fmt.Sprintf("%q names no host", s)
	case u.RawQuery != "" || u.ForceQuery:
		return fmt.Sprintf("%q has a query (?…)", s)
	case u.Fragment != "":
		return fmt.Sprintf("%q has a fragment after its #", s)
	}
	return ""
}

// checkPath returns what is wrong with a non-empty file name, or "".
func checkPath(s string) string {
	if strings.ContainsRune(s, 0) {
		return fmt.Sprintf("%q contains a NUL byte; want a file name", s)
	}
	return ""
}
