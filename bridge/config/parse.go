package config

import (
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/pelletier/go-toml/v2"
	"github.com/pelletier/go-toml/v2/unstable"
)

const (
	// maxConfigSize bounds what Parse reads; a real file is ~1 KiB.
	maxConfigSize = 1 << 20
	// maxSecretFileSize bounds a password file.
	maxSecretFileSize = 64 << 10
)

// Parse reads a TOML config from r, applies the defaults for what it does
// not set, and validates the result.
//
// Errors: a file that does not name the bot account or its password yet
// yields an error wrapping ErrNotConfigured; everything else that is wrong
// (syntax, unknown keys, wrong types, invalid values) yields *Error values,
// each naming its key and, where the file sets it, its line. Parse does not
// touch the file system: password_file and ca_file are read by Load.
func Parse(r io.Reader) (Config, error) { return parse(r, "") }

// parse is Parse; credential, when not empty, is the password file used
// when the config names neither xmpp.password nor xmpp.password_file (see
// PasswordCredential).
func parse(r io.Reader, credential string) (Config, error) {
	cfg, lines, err := decode(r, credential)
	if err != nil {
		return Config{}, err
	}
	if err := cfg.notConfigured(); err != nil {
		return Config{}, err
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, withLines(Errors(err), lines)
	}
	return cfg, nil
}

// decode reads a config onto the defaults, with the line of each key the
// file sets, without validating the values. See parse for credential.
func decode(r io.Reader, credential string) (Config, map[string]int, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxConfigSize+1))
	if err != nil {
		return Config{}, nil, &Error{Problem: "cannot read the config", Err: err}
	}
	if len(data) > maxConfigSize {
		return Config{}, nil, &Error{Problem: fmt.Sprintf("the config is larger than %d bytes; is it the right file?", maxConfigSize)}
	}
	if !utf8.Valid(data) {
		return Config{}, nil, &Error{Problem: "the config is not valid UTF-8 text"}
	}

	defs, err := scan(data)
	if err != nil {
		return Config{}, nil, err
	}
	// go-toml's decoder matches keys to fields ignoring case ("JID" would
	// set jid), stops at the first value of a wrong type, and takes an
	// integer for a duration (nanoseconds). So the names and types of the
	// keys are checked on the parsed document first, every problem at once.
	if errs := typeErrors(defs); len(errs) > 0 {
		return Config{}, nil, join(errs)
	}
	if errs := unknownKeys(defs); len(errs) > 0 {
		return Config{}, nil, join(errs)
	}
	cfg := Default()
	if err := toml.NewDecoder(bytes.NewReader(data)).DisallowUnknownFields().Decode(&cfg); err != nil {
		return Config{}, nil, decodeError(err)
	}
	lines := defs.lines()
	_, pw := lines["xmpp.password"]
	pwLine, pwFile := lines["xmpp.password_file"]
	switch {
	case pw && pwFile:
		return Config{}, nil, &Error{Field: "xmpp.password_file", Line: pwLine,
			Problem: "set either xmpp.password or xmpp.password_file, not both"}
	case !pw && !pwFile && credential != "":
		cfg.XMPP.PasswordFile = credential
		cfg.XMPP.credential = true
	}
	return cfg, lines, nil
}

// withLines sets each error's line from lines and joins them.
func withLines(errs []*Error, lines map[string]int) error {
	for _, e := range errs {
		if e.Line == 0 {
			e.Line = lines[e.Field]
		}
	}
	return join(errs)
}

// LoadStore reads the [store] table of the config file at path, resolved
// as Load does: all that `waxmpp pair` and `waxmpp backup` need. Unlike Load
// it works before setup has run: a file that does not exist yet gives the
// default, and one that does not name the accounts yet gives the [store] it
// sets. Anything else wrong with the file is an error, as in Load.
func LoadStore(path string) (Store, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Default().Store, nil
	}
	if err != nil {
		return Store{}, fmt.Errorf("config %s: %w", path, &Error{Problem: "cannot open the file", Err: err})
	}
	defer f.Close()
	cfg, lines, err := decode(f, credentialFile())
	if err != nil {
		return Store{}, fmt.Errorf("config %s: %w", path, err)
	}
	if cfg.notConfigured() == nil {
		err = cfg.Validate()
	} else {
		var store []*Error
		for _, e := range Errors(cfg.Validate()) {
			if strings.HasPrefix(e.Field, "store.") {
				store = append(store, e)
			}
		}
		if len(store) > 0 {
			err = join(store)
		}
	}
	if err != nil {
		return Store{}, fmt.Errorf("config %s: %w", path, withLines(Errors(err), lines))
	}
	cfg.Store.Path = resolve(filepath.Dir(path), cfg.Store.Path)
	return cfg.Store, nil
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

// resolve makes a relative path p relative to dir.
func resolve(dir, p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(dir, p)
}

// Load reads the config file at path (see Parse), resolves relative paths
// in it against the file's directory, reads xmpp.password_file into
// XMPP.Password and checks that xmpp.ca_file holds certificates.
//
// Without xmpp.password and xmpp.password_file the password is the systemd
// credential PasswordCredential. A missing file, or one without xmpp.jid or
// a password, yields an error wrapping ErrNotConfigured.
func Load(path string) (Config, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Config{}, fmt.Errorf("config %s: %w: the file does not exist", path, ErrNotConfigured)
	}
	if err != nil {
		return Config{}, fmt.Errorf("config %s: %w", path, &Error{Problem: "cannot open the file", Err: err})
	}
	defer f.Close()
	cfg, err := parse(f, credentialFile())
	if err != nil {
		return Config{}, fmt.Errorf("config %s: %w", path, err)
	}

	dir := filepath.Dir(path)
	cfg.XMPP.PasswordFile = resolve(dir, cfg.XMPP.PasswordFile)
	cfg.XMPP.CAFile = resolve(dir, cfg.XMPP.CAFile)
	cfg.Store.Path = resolve(dir, cfg.Store.Path)

	if cfg.XMPP.PasswordFile != "" {
		pw, err := readSecretFile(cfg.XMPP.PasswordFile)
		if err != nil {
			return Config{}, fmt.Errorf("config %s: %w", path, &Error{
				Field:   "xmpp.password_file",
				Problem: fmt.Sprintf("cannot read the password: %v", err),
				Err:     err,
			})
		}
		if pw == "" {
			return Config{}, fmt.Errorf("config %s: %w: xmpp.password_file %s is empty", path, ErrNotConfigured, cfg.XMPP.PasswordFile)
		}
		if strings.ContainsRune(pw, 0) {
			return Config{}, fmt.Errorf("config %s: %w", path, &Error{
				Field:   "xmpp.password_file",
				Problem: fmt.Sprintf("%s contains a NUL byte, which no XMPP password may contain", cfg.XMPP.PasswordFile),
			})
		}
		cfg.XMPP.Password = pw
	}
	if cfg.XMPP.CAFile != "" {
		if err := checkCAFile(cfg.XMPP.CAFile); err != nil {
			return Config{}, fmt.Errorf("config %s: %w", path, &Error{
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

// Errors unpacks the *Error values of an error from Validate, Parse or Load
// (a single one, or several joined).
func Errors(err error) []*Error {
	var out []*Error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			out = append(out, Errors(e)...)
		}
		return out
	}
	var ce *Error
	if errors.As(err, &ce) {
		return []*Error{ce}
	}
	if err != nil {
		out = append(out, &Error{Problem: err.Error(), Err: err})
	}
	return out
}

// join returns one error alone, several joined.
func join(errs []*Error) error {
	if len(errs) == 1 {
		return errs[0]
	}
	joined := make([]error, len(errs))
	for i, e := range errs {
		joined[i] = e
	}
	return errors.Join(joined...)
}

// def is a key the document defines: where, and as what.
type def struct {
	key  []string
	name string // key as TOML writes it: parts joined by dots, quoted where needed
	kind kind
	line int
}

// kind is a value's TOML type, as errors name it.
type kind string

const (
	kindTable      kind = "a table"
	kindArrayTable kind = "an array of tables"
	kindString     kind = "a string"
	kindInteger    kind = "an integer"
	kindFloat      kind = "a float"
	kindBool       kind = "a boolean"
	kindArray      kind = "an array"
	kindDateTime   kind = "a date-time"
)

type defs []def

// lines maps each key's name to the line that first defines it.
func (ds defs) lines() map[string]int {
	m := make(map[string]int, len(ds))
	for _, d := range ds {
		if _, ok := m[d.name]; !ok {
			m[d.name] = d.line
		}
	}
	return m
}

// scan lists every key the document defines, in document order, with its
// line: tables (also those a dotted key or a [a.b] header defines on the
// way), keys and the keys inside inline tables. It reports syntax errors
// with their line. It does not check what TOML forbids beyond syntax
// (a key defined twice): the decoder does.
func scan(data []byte) (defs, error) {
	data = data[:len(data):len(data)] // so that a highlight's offset is cap(data)-cap(h)
	var p unstable.Parser
	p.Reset(data)
	var out defs
	add := func(key []string, k kind, line int) {
		key = slices.Clone(key)
		out = append(out, def{key: key, name: keyName(key), kind: k, line: line})
	}
	line := func(n *unstable.Node) int { return p.Shape(n.Raw).Start.Line }
	// keyParts adds the tables a dotted key defines on its way and returns
	// the whole key below prefix.
	keyParts := func(prefix []string, n *unstable.Node, last kind) []string {
		key := slices.Clone(prefix)
		it := n.Key()
		for it.Next() {
			k := it.Node()
			key = append(key, string(k.Data))
			if it.IsLast() {
				add(key, last, line(k))
			} else {
				add(key, kindTable, line(k))
			}
		}
		return key
	}
	var keyValue func(prefix []string, kv *unstable.Node)
	keyValue = func(prefix []string, kv *unstable.Node) {
		v := kv.Value()
		key := keyParts(prefix, kv, valueKind(v.Kind))
		if v.Kind == unstable.InlineTable {
			it := v.Children()
			for it.Next() {
				keyValue(key, it.Node())
			}
		}
	}
	var table []string
	for p.NextExpression() {
		e := p.Expression()
		switch e.Kind {
		case unstable.Table:
			table = keyParts(nil, e, kindTable)
		case unstable.ArrayTable:
			table = keyParts(nil, e, kindArrayTable)
		case unstable.KeyValue:
			keyValue(table, e)
		}
	}
	if err := p.Error(); err != nil {
		ce := &Error{Problem: "TOML syntax: " + err.Error(), Err: err}
		var pe *unstable.ParserError
		if errors.As(err, &pe) {
			ce.Line = lineAt(data, pe.Highlight)
		}
		return nil, ce
	}
	return out, nil
}

// lineAt is the line on which h, a slice of data, starts; the last line
// when h is not one.
func lineAt(data, h []byte) int {
	off := cap(data) - cap(h)
	if h == nil || off < 0 || off > len(data) {
		off = len(data)
	}
	return 1 + bytes.Count(data[:off], []byte("\n"))
}

func valueKind(k unstable.Kind) kind {
	switch k {
	case unstable.InlineTable:
		return kindTable
	case unstable.Array:
		return kindArray
	case unstable.String:
		return kindString
	case unstable.Integer:
		return kindInteger
	case unstable.Float:
		return kindFloat
	case unstable.Bool:
		return kindBool
	default:
		return kindDateTime
	}
}

// keyName writes key as TOML does: bare parts as they are, others quoted.
func keyName(key []string) string {
	parts := make([]string, len(key))
	for i, k := range key {
		parts[i] = k
		if k == "" || strings.ContainsFunc(k, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-')
		}) {
			parts[i] = strconv.Quote(k)
		}
	}
	return strings.Join(parts, ".")
}

// keys maps every key Config accepts ("xmpp.rate") to the kind of value it
// takes. Durations are strings.
var keys = func() map[string]kind {
	keys := make(map[string]kind)
	var walk func(prefix string, t reflect.Type)
	walk = func(prefix string, t reflect.Type) {
		for f := range t.Fields() {
			if !f.IsExported() {
				continue
			}
			name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
			if prefix != "" {
				name = prefix + "." + name
			}
			switch {
			case f.Type == reflect.TypeFor[Duration](), f.Type.Kind() == reflect.String:
				keys[name] = kindString
			case f.Type.Kind() == reflect.Struct:
				keys[name] = kindTable
				walk(name, f.Type)
			case f.Type.Kind() == reflect.Int, f.Type.Kind() == reflect.Int64:
				keys[name] = kindInteger
			case f.Type.Kind() == reflect.Bool:
				keys[name] = kindBool
			default:
				panic("config: field " + name + " has an unhandled type")
			}
		}
	}
	walk("", reflect.TypeFor[Config]())
	return keys
}()

func isDuration(name string) bool {
	switch name {
	case "xmpp.ping_interval", "xmpp.ping_timeout", "store.retention", "media.timeout":
		return true
	}
	return false
}

// typeErrors reports known keys whose value is not of the documented type,
// each key once.
func typeErrors(ds defs) []*Error {
	var errs []*Error
	done := make(map[string]bool)
	for _, d := range ds {
		want, ok := keys[d.name]
		if !ok || d.kind == want || done[d.name] {
			continue
		}
		done[d.name] = true
		var problem string
		switch {
		case want == kindTable:
			problem = fmt.Sprintf("is %s; want a table, written [%s]", d.kind, d.name)
		case want == kindString && isDuration(d.name):
			problem = fmt.Sprintf("is %s; want a duration in quotes, such as \"60s\" or \"2160h\"", d.kind)
		case want == kindString:
			problem = fmt.Sprintf("is %s; want a string in quotes", d.kind)
		case want == kindBool:
			problem = fmt.Sprintf("is %s; want true or false, without quotes", d.kind)
		default:
			problem = fmt.Sprintf("is %s; want a whole number without quotes", d.kind)
		}
		errs = append(errs, &Error{Field: d.name, Line: d.line, Problem: problem})
	}
	return errs
}

// unknownKeys reports keys that Config has no field for, matched exactly
// (TOML keys are case-sensitive). Below an unknown table only the table
// itself is reported.
func unknownKeys(ds defs) []*Error {
	var errs []*Error
	var reported [][]string
	for _, d := range ds {
		if _, known := keys[d.name]; known {
			continue
		}
		if slices.ContainsFunc(reported, func(p []string) bool {
			return len(d.key) >= len(p) && slices.Equal(d.key[:len(p)], p)
		}) {
			continue
		}
		reported = append(reported, d.key)
		problem := "unknown key"
		if s := suggest(d.name); s != "" {
			problem += "; did you mean " + s + "?"
		} else {
			problem += "; see the example config for the keys waxmpp knows"
		}
		errs = append(errs, &Error{Field: d.name, Line: d.line, Problem: problem})
	}
	return errs
}

// suggest returns the known key closest to name, if it is close enough to
// be a typo or a key in the wrong table.
func suggest(name string) string {
	table, last := "", name
	if i := strings.LastIndexByte(name, '.'); i >= 0 {
		table, last = name[:i], name[i+1:]
	}
	best, bestDist := "", 3
	for k := range keys {
		if strings.EqualFold(k, name) {
			return k
		}
		kt, kl := "", k
		if i := strings.LastIndexByte(k, '.'); i >= 0 {
			kt, kl = k[:i], k[i+1:]
		}
		d := EditDistance(last, kl)
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

// EditDistance is the Levenshtein distance between short strings a and b
// (64 for longer ones): how far a mistyped key is from a known one. The SD
// image's boot config uses it too.
func EditDistance(a, b string) int {
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

// decodeError turns an error of the decoder into an *Error. After scan,
// typeErrors and unknownKeys, what is left is what TOML forbids beyond
// syntax (a key or table defined twice) and values the fields refuse (a
// duration that does not parse, a number too large for this machine's int).
func decodeError(err error) error {
	var de *toml.DecodeError
	if !errors.As(err, &de) {
		return &Error{Problem: err.Error(), Err: err}
	}
	line, _ := de.Position()
	msg := strings.TrimPrefix(de.Error(), "toml: ")
	name := keyName(de.Key())
	switch want, known := keys[name]; {
	case known && isDuration(name):
		return &Error{Field: name, Line: line, Err: err,
			Problem: fmt.Sprintf("%s; want a Go duration such as \"60s\", \"10m\" or \"2160h\"", msg)}
	case known && want == kindInteger:
		return &Error{Field: name, Line: line, Err: err,
			Problem: fmt.Sprintf("%s; the number is out of range", msg)}
	}
	return &Error{Line: line, Problem: "TOML: " + msg, Err: err}
}
