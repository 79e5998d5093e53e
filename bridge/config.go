package bridge

import (
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/BurntSushi/toml"
)

// ErrNotConfigured means waxmpp has no usable configuration yet: the config
// file does not exist, or it does not name the bot account (xmpp.jid) or its
// password. It is the normal state of a fresh install, before setup has run;
// the daemon exits with EX_CONFIG and systemd does not restart it.
var ErrNotConfigured = errors.New("waxmpp is not configured")

// Config is waxmpp's whole configuration, read from one TOML file
// (/etc/waxmpp/config.toml). Keys are the snake_case names in the toml tags.
// Durations are Go duration strings ("60s", "2160h").
//
// The zero value is not usable: start from DefaultConfig, or use ParseConfig
// or LoadConfig, which apply the defaults and validate.
type Config struct {
	XMPP     XMPPConfig     `toml:"xmpp"`
	WhatsApp WhatsAppConfig `toml:"whatsapp"`
	Store    StoreConfig    `toml:"store"`
	Log      LogConfig      `toml:"log"`
}

// XMPPConfig is the [xmpp] table: the bot account and how to reach its
// server.
type XMPPConfig struct {
	// JID is the bot account's bare JID (name@example.org). Required.
	JID string `toml:"jid"`
	// Password is the bot account's password. Required unless PasswordFile
	// is set; a file may not set both. After LoadConfig it holds the
	// password read from PasswordFile.
	Password string `toml:"password"`
	// PasswordFile, when set, names a file holding the password (trailing
	// newlines are trimmed). LoadConfig resolves a relative path against the
	// config file's directory.
	PasswordFile string `toml:"password_file"`
	// Owner is the owner's bare JID, the only account the bot serves.
	// Required; must differ from JID.
	Owner string `toml:"owner"`
	// Server optionally overrides where to connect, as "host:port"
	// (STARTTLS) or "tls://host:port" (direct TLS, XEP-0368). Empty means
	// the usual SRV lookup of JID's domain (RFC 6120, XEP-0368).
	Server string `toml:"server"`
	// CAFile optionally names a PEM bundle of CA certificates trusted in
	// addition to the system roots (self-hosted servers, tests). LoadConfig
	// resolves a relative path against the config file's directory.
	CAFile string `toml:"ca_file"`
	// Resource is the bot's XMPP resource. Default "waxmpp".
	Resource string `toml:"resource"`
	// Rate is the outgoing byte rate in bytes per second (a token bucket),
	// kept under the server's limit: Prosody's default is about 10 kB/s.
	// Default 8000, minimum 500.
	Rate int `toml:"rate"`
	// Burst is the token bucket's size in bytes. It must hold the largest
	// stanza we send. Default 16000, minimum 4096.
	Burst int `toml:"burst"`
	// PingInterval is how often the bot sends an XEP-0199 ping, both as a
	// keepalive and to confirm that the server received the stanzas sent
	// before it (go-xmpp has no XEP-0198). Default 60s, 5s..10m.
	PingInterval time.Duration `toml:"ping_interval"`
	// PingTimeout is how long a ping may stay unanswered before the
	// connection is considered dead and rebuilt. Default 20s; 1s up to
	// PingInterval.
	PingTimeout time.Duration `toml:"ping_timeout"`
}

// WhatsAppConfig is the [whatsapp] table.
type WhatsAppConfig struct {
	// Simulator, for tests only, replaces WhatsApp with the simulated
	// network (package bridge/simwa) controlled through a Unix socket at
	// this path. Only a binary built with -tags simwa has the simulator;
	// any other build refuses the key. LoadConfig resolves a relative path
	// against the config file's directory. Empty: the real WhatsApp.
	Simulator string `toml:"simulator"`
}

// StoreConfig is the [store] table: the state file.
type StoreConfig struct {
	// Path is the bbolt state file. Default /var/lib/waxmpp/waxmpp.db.
	// LoadConfig resolves a relative path against the config file's
	// directory.
	Path string `toml:"path"`
	// Retention is how long message id mappings are kept (they let replies,
	// edits and reactions find their message). Default 2160h (90 days),
	// minimum 24h.
	Retention time.Duration `toml:"retention"`
}

// LogConfig is the [log] table.
type LogConfig struct {
	// Level is the least severe level logged: debug, info, warn or error.
	// Message bodies and phone numbers appear only at debug. Default info.
	Level string `toml:"level"`
	// Format is text (logfmt-like, for the journal) or json. Default text.
	Format string `toml:"format"`
}

// Limits enforced by Validate.
const (
	minRate         = 500
	minBurst        = 4096
	maxRateOrBurst  = 1 << 30
	minPingInterval = 5 * time.Second
	maxPingInterval = 10 * time.Minute
	minPingTimeout  = time.Second
	minRetention    = 24 * time.Hour

	// maxConfigSize bounds what ParseConfig reads; a real file is ~1 KiB.
	maxConfigSize = 1 << 20
	// maxSecretFileSize bounds a password file.
	maxSecretFileSize = 64 << 10
	// maxSocketPath is what fits in sockaddr_un.sun_path on Linux.
	maxSocketPath = 107
	// maxJIDPart is RFC 7622's limit for each part of a JID, in bytes.
	maxJIDPart = 1023
)

// DefaultConfig returns the defaults that ParseConfig starts from. It has no
// accounts, so it does not validate on its own.
func DefaultConfig() Config {
	return Config{
		XMPP: XMPPConfig{
			Resource:     "waxmpp",
			Rate:         8000,
			Burst:        16000,
			PingInterval: 60 * time.Second,
			PingTimeout:  20 * time.Second,
		},
		Store: StoreConfig{
			Path:      "/var/lib/waxmpp/waxmpp.db",
			Retention: 90 * 24 * time.Hour,
		},
		Log: LogConfig{
			Level:  "info",
			Format: "text",
		},
	}
}

// ConfigError is one problem with the configuration: which key, where, what
// is wrong and what would be valid. Validate, ParseConfig and LoadConfig
// return these, several joined with errors.Join when there are several
// problems; find them with errors.As.
type ConfigError struct {
	// Field is the dotted TOML key ("xmpp.rate"); empty when the problem is
	// the file as a whole (syntax, size, unreadable).
	Field string
	// Line is the 1-based line in the file, or 0 when unknown (Validate on
	// a Config built in code, or a key set by default).
	Line int
	// Problem says what is wrong and what would be valid.
	Problem string
	// Err is the underlying error, if any (a toml.ParseError, an I/O error).
	Err error

	key toml.Key // Field as decoded, when it needs quoting to print
}

func (e *ConfigError) Error() string {
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

func (e *ConfigError) Unwrap() error { return e.Err }

// ParseConfig reads a TOML config from r, applies the defaults for what it
// does not set, and validates the result.
//
// Errors: a file that does not name the bot account or its password yet
// yields an error wrapping ErrNotConfigured; everything else that is wrong
// (syntax, unknown keys, wrong types, invalid values) yields *ConfigError
// values, each naming its key and, where known, its line. ParseConfig does
// not touch the file system: password_file and ca_file are read by
// LoadConfig.
func ParseConfig(r io.Reader) (Config, error) { return parseConfig(r, "") }

// parseConfig is ParseConfig; credential, when not empty, is the password
// file used when the config names neither xmpp.password nor
// xmpp.password_file (see PasswordCredential).
func parseConfig(r io.Reader, credential string) (Config, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxConfigSize+1))
	if err != nil {
		return Config{}, &ConfigError{Problem: "cannot read the config", Err: err}
	}
	if len(data) > maxConfigSize {
		return Config{}, &ConfigError{Problem: fmt.Sprintf("the config is larger than %d bytes; is it the right file?", maxConfigSize)}
	}
	if !utf8.Valid(data) {
		return Config{}, &ConfigError{Problem: "the config is not valid UTF-8 text"}
	}

	cfg := DefaultConfig()
	md, err := toml.Decode(string(data), &cfg)
	if err != nil {
		return Config{}, decodeError(data, err)
	}
	// The decoder also accepts integers (nanoseconds) for durations and
	// silently ignores nothing else; insist on the documented types.
	if errs := typeErrors(md); len(errs) > 0 {
		return Config{}, withLines(data, errs)
	}
	if errs := unknownKeys(md); len(errs) > 0 {
		return Config{}, withLines(data, errs)
	}
	if md.IsDefined("xmpp", "password") && md.IsDefined("xmpp", "password_file") {
		return Config{}, withLines(data, []*ConfigError{{
			Field:   "xmpp.password_file",
			Problem: "set either xmpp.password or xmpp.password_file, not both",
		}})
	}
	if credential != "" && !md.IsDefined("xmpp", "password") && !md.IsDefined("xmpp", "password_file") {
		cfg.XMPP.PasswordFile = credential
	}
	if err := cfg.notConfigured(); err != nil {
		return Config{}, err
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, withLines(data, configErrors(err))
	}
	return cfg, nil
}

// PasswordCredential is the systemd credential that holds the bot's
// password when the config names neither xmpp.password nor
// xmpp.password_file: the unit's LoadCredential=waxmpp.password gives the
// service /etc/credstore/waxmpp.password as
// $CREDENTIALS_DIRECTORY/waxmpp.password. Outside the service (waxmpp pair
// as root) the file in /etc/credstore is read directly.
const PasswordCredential = "waxmpp.password"

// credstore is systemd's credential store on disk; tests replace it.
var credstore = "/etc/credstore"

// credentialFile is where the password credential is, "" if nowhere.
func credentialFile() string {
	for _, dir := range []string{os.Getenv("CREDENTIALS_DIRECTORY"), credstore} {
		if dir == "" {
			continue
		}
		p := filepath.Join(dir, PasswordCredential)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// LoadConfig reads the config file at path (see ParseConfig), resolves
// relative paths in it against the file's directory, reads
// xmpp.password_file into XMPP.Password and checks that xmpp.ca_file holds
// certificates.
//
// Without xmpp.password and xmpp.password_file the password is the systemd
// credential PasswordCredential. A missing file, or one without xmpp.jid or
// a password, yields an error wrapping ErrNotConfigured.
func LoadConfig(path string) (Config, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Config{}, fmt.Errorf("config %s: %w: the file does not exist", path, ErrNotConfigured)
	}
	if err != nil {
		return Config{}, fmt.Errorf("config %s: %w", path, &ConfigError{Problem: "cannot open the file", Err: err})
	}
	defer f.Close()
	cfg, err := parseConfig(f, credentialFile())
	if err != nil {
		return Config{}, fmt.Errorf("config %s: %w", path, err)
	}

	dir := filepath.Dir(path)
	resolve := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(dir, p)
	}
	cfg.XMPP.PasswordFile = resolve(cfg.XMPP.PasswordFile)
	cfg.XMPP.CAFile = resolve(cfg.XMPP.CAFile)
	cfg.Store.Path = resolve(cfg.Store.Path)
	cfg.WhatsApp.Simulator = resolve(cfg.WhatsApp.Simulator)

	if cfg.XMPP.PasswordFile != "" {
		pw, err := readSecretFile(cfg.XMPP.PasswordFile)
		if err != nil {
			return Config{}, fmt.Errorf("config %s: %w", path, &ConfigError{
				Field:   "xmpp.password_file",
				Problem: fmt.Sprintf("cannot read the password: %v", err),
				Err:     err,
			})
		}
		if pw == "" {
			return Config{}, fmt.Errorf("config %s: %w: xmpp.password_file %s is empty", path, ErrNotConfigured, cfg.XMPP.PasswordFile)
		}
		if strings.ContainsRune(pw, 0) {
			return Config{}, fmt.Errorf("config %s: %w", path, &ConfigError{
				Field:   "xmpp.password_file",
				Problem: fmt.Sprintf("%s contains a NUL byte, which no XMPP password may contain", cfg.XMPP.PasswordFile),
			})
		}
		cfg.XMPP.Password = pw
	}
	if cfg.XMPP.CAFile != "" {
		if err := checkCAFile(cfg.XMPP.CAFile); err != nil {
			return Config{}, fmt.Errorf("config %s: %w", path, &ConfigError{
				Field:   "xmpp.ca_file",
				Problem: err.Error(),
				Err:     err,
			})
		}
	}
	return cfg, nil
}

func readSecretFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxSecretFileSize+1))
	if err != nil {
		return "", err
	}
	if len(b) > maxSecretFileSize {
		return "", fmt.Errorf("%s is larger than %d bytes; is it the right file?", path, maxSecretFileSize)
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

func checkCAFile(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("cannot read the CA bundle: %w", err)
	}
	if !x509.NewCertPool().AppendCertsFromPEM(b) {
		return fmt.Errorf("%s holds no PEM certificates; want a file of -----BEGIN CERTIFICATE----- blocks", path)
	}
	return nil
}

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
// *ConfigError values joined with errors.Join, in field order.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &ConfigError{Field: field, Problem: fmt.Sprintf(format, args...)})
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

	if w := c.WhatsApp.Simulator; w != "" {
		switch {
		case !simulatorBuilt:
			bad("whatsapp.simulator", "this build has no simulated WhatsApp (build with -tags simwa); remove the key to use WhatsApp")
		case checkPath(w) != "":
			bad("whatsapp.simulator", "%s", checkPath(w))
		case len(w) > maxSocketPath:
			bad("whatsapp.simulator", "%q is longer than a Unix socket path may be (%d bytes); want a shorter path, such as \"/tmp/waxmpp-sim.sock\"", w, maxSocketPath)
		}
	}

	switch {
	case c.Store.Path == "":
		bad("store.path", "required; want the state file, such as \"/var/lib/waxmpp/waxmpp.db\"")
	case checkPath(c.Store.Path) != "":
		bad("store.path", "%s", checkPath(c.Store.Path))
	case strings.HasSuffix(c.Store.Path, "/"):
		bad("store.path", "%q names a directory; want a file, such as \"/var/lib/waxmpp/waxmpp.db\"", c.Store.Path)
	}
	if c.Store.Retention < minRetention {
		bad("store.retention", "%s is too short; want at least %s, such as \"2160h\" (90 days)", c.Store.Retention, minRetention)
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
			"rate", r.XMPP.Rate,
			"burst", r.XMPP.Burst,
			"ping_interval", r.XMPP.PingInterval,
			"ping_timeout", r.XMPP.PingTimeout,
		),
		slog.Group("whatsapp",
			"simulator", r.WhatsApp.Simulator,
		),
		slog.Group("store",
			"path", r.Store.Path,
			"retention", r.Store.Retention,
		),
		slog.Group("log",
			"level", r.Log.Level,
			"format", r.Log.Format,
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

// checkPath returns what is wrong with a non-empty file name, or "".
func checkPath(s string) string {
	if strings.ContainsRune(s, 0) {
		return fmt.Sprintf("%q contains a NUL byte; want a file name", s)
	}
	return ""
}

// decodeError turns an error from toml.Decode into *ConfigError values.
func decodeError(data []byte, err error) error {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		if pe.LastKey != "" && strings.Contains(pe.Message, "duration") {
			return &ConfigError{Field: pe.LastKey, Line: pe.Position.Line,
				Problem: fmt.Sprintf("%s; want a Go duration such as \"60s\", \"10m\" or \"2160h\"", pe.Message), Err: err}
		}
		return &ConfigError{Line: pe.Position.Line, Problem: "TOML syntax: " + pe.Message, Err: err}
	}
	// A value of the wrong type for a known key stops the decoder with an
	// unstructured error. Decode generically to name the key and its line.
	var m map[string]any
	if md, err2 := toml.Decode(string(data), &m); err2 == nil {
		if errs := typeErrors(md); len(errs) > 0 {
			return withLines(data, errs)
		}
	}
	return &ConfigError{Problem: err.Error(), Err: err}
}

// configKeys maps every key Config accepts ("xmpp.rate") to its TOML type as
// MetaData.Type names it ("Hash", "String", "Integer"). Durations are
// written as strings.
var configKeys = func() map[string]string {
	keys := make(map[string]string)
	var walk func(prefix string, t reflect.Type)
	walk = func(prefix string, t reflect.Type) {
		for f := range t.Fields() {
			name := f.Tag.Get("toml")
			if prefix != "" {
				name = prefix + "." + name
			}
			switch {
			case f.Type.Kind() == reflect.Struct:
				keys[name] = "Hash"
				walk(name, f.Type)
			case f.Type.Kind() == reflect.String, f.Type == reflect.TypeFor[time.Duration]():
				keys[name] = "String"
			case f.Type.Kind() == reflect.Int:
				keys[name] = "Integer"
			default:
				panic("bridge: config field " + name + " has an unhandled type")
			}
		}
	}
	walk("", reflect.TypeFor[Config]())
	return keys
}()

var typeNames = map[string]string{
	"Hash":      "a table",
	"ArrayHash": "an array of tables",
	"String":    "a string",
	"Integer":   "an integer",
	"Float":     "a float",
	"Bool":      "a boolean",
	"Array":     "an array",
	"Datetime":  "a date-time",
}

// typeErrors reports known keys whose TOML type is not the documented one.
func typeErrors(md toml.MetaData) []*ConfigError {
	var errs []*ConfigError
	for _, k := range md.Keys() {
		name := k.String()
		want, ok := configKeys[name]
		if !ok {
			continue
		}
		got := md.Type(k...)
		if got == want {
			continue
		}
		var problem string
		switch {
		case want == "Hash":
			problem = fmt.Sprintf("is %s; want a table, written [%s]", article(got), name)
		case want == "String" && isDurationKey(name):
			problem = fmt.Sprintf("is %s; want a duration in quotes, such as \"60s\" or \"2160h\"", article(got))
		case want == "String":
			problem = fmt.Sprintf("is %s; want a string in quotes", article(got))
		default:
			problem = fmt.Sprintf("is %s; want a whole number without quotes", article(got))
		}
		errs = append(errs, &ConfigError{Field: name, Problem: problem})
	}
	return errs
}

func article(tomlType string) string {
	if s, ok := typeNames[tomlType]; ok {
		return s
	}
	return tomlType
}

func isDurationKey(name string) bool {
	switch name {
	case "xmpp.ping_interval", "xmpp.ping_timeout", "store.retention":
		return true
	}
	return false
}

// unknownKeys reports keys that Config has no field for: those the decoder
// left undecoded, and those it matched to a field only case-insensitively
// (TOML keys are case-sensitive; "JID" is not "jid"). Below an unknown
// table only the table itself is reported.
func unknownKeys(md toml.MetaData) []*ConfigError {
	undecoded := make(map[string]bool)
	for _, k := range md.Undecoded() {
		undecoded[k.String()] = true
	}
	var errs []*ConfigError
	var reported []toml.Key
	for _, k := range md.Keys() {
		if _, known := configKeys[k.String()]; known && !undecoded[k.String()] {
			continue
		}
		if slices.ContainsFunc(reported, func(p toml.Key) bool { return hasPrefix(k, p) }) {
			continue
		}
		reported = append(reported, k)
		name := k.String()
		problem := "unknown key"
		if s := suggest(name); s != "" {
			problem += "; did you mean " + s + "?"
		} else {
			problem += "; see the example config for the keys waxmpp knows"
		}
		errs = append(errs, &ConfigError{Field: name, Problem: problem, key: k})
	}
	return errs
}

func hasPrefix(k, prefix toml.Key) bool {
	return len(k) > len(prefix) && slices.Equal(k[:len(prefix)], prefix)
}

// suggest returns the known key closest to name, if it is close enough to
// be a typo or a key in the wrong table.
func suggest(name string) string {
	table, last := "", name
	if i := strings.LastIndexByte(name, '.'); i >= 0 {
		table, last = name[:i], name[i+1:]
	}
	best, bestDist := "", 3
	for k := range configKeys {
		if strings.EqualFold(k, name) {
			return k
		}
		kt, kl := "", k
		if i := strings.LastIndexByte(k, '.'); i >= 0 {
			kt, kl = k[:i], k[i+1:]
		}
		d := editDistance(last, kl)
		if kt != table {
			// The right name in the wrong table ([xmpp] jid under [log]).
			if d != 0 {
				continue
			}
			d = 1
		}
		if d < bestDist || (d == bestDist && k < best) {
			best, bestDist = k, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between short strings a and b.
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 64
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// configErrors unpacks the *ConfigError values of an error from Validate.
func configErrors(err error) []*ConfigError {
	var out []*ConfigError
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			out = append(out, configErrors(e)...)
		}
		return out
	}
	var ce *ConfigError
	if errors.As(err, &ce) {
		return []*ConfigError{ce}
	}
	return []*ConfigError{{Problem: err.Error(), Err: err}}
}

// withLines fills in the line of each error's key, where the file sets it,
// and joins the errors.
func withLines(data []byte, errs []*ConfigError) error {
	keys := make(map[string]toml.Key)
	for _, e := range errs {
		if e.Field != "" && e.Line == 0 {
			k := e.key
			if k == nil {
				k = strings.Split(e.Field, ".")
			}
			keys[e.Field] = k
		}
	}
	lines := keyLines(data, keys)
	joined := make([]error, len(errs))
	for i, e := range errs {
		if e.Line == 0 {
			e.Line = lines[e.Field]
		}
		joined[i] = e
	}
	if len(joined) == 1 {
		return joined[0]
	}
	return errors.Join(joined...)
}

// keyLines finds the line on which each dotted key is defined. The TOML
// decoder keeps key positions to itself, so this asks the decoder itself:
// for each line that mentions the key's last part, it decodes the file up to
// that line (or, for a value spanning lines, up to the first line where the
// prefix parses) and checks whether the key is defined yet. No heuristic to
// get wrong, and cheap on a real config. The work is bounded; keys not found
// within it, and keys in large files, go without a line.
func keyLines(data []byte, keys map[string]toml.Key) map[string]int {
	const (
		maxData     = 16 << 10
		maxDecodes  = 200 // in all
		maxSpanRows = 50  // lines one value may span
	)
	found := make(map[string]int)
	if len(keys) == 0 || len(data) > maxData {
		return found
	}
	var ends []int // ends[i] is the offset just past line i+1
	for off := 0; off < len(data); {
		if i := bytes.IndexByte(data[off:], '\n'); i >= 0 {
			off += i + 1
		} else {
			off = len(data)
		}
		ends = append(ends, off)
	}
	budget := maxDecodes
	names := slices.Sorted(maps.Keys(keys))
	for _, name := range names {
		k := keys[name]
		last := []byte(k[len(k)-1])
	lines:
		for li := range ends {
			start := 0
			if li > 0 {
				start = ends[li-1]
			}
			if !bytes.Contains(data[start:ends[li]], last) {
				continue
			}
			for j := li; j < len(ends) && j < li+maxSpanRows; j++ {
				if budget == 0 {
					return found
				}
				budget--
				var m map[string]any
				md, err := toml.Decode(string(data[:ends[j]]), &m)
				if err != nil {
					continue // inside a multi-line value; read on
				}
				if md.IsDefined(k...) {
					found[name] = li + 1
					break lines
				}
				break
			}
		}
	}
	return found
}
