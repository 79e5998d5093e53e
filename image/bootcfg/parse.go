// Package bootcfg reads waxmpp.txt, the settings file on the SD image's FAT
// boot partition, and applies it to the system early at every boot
// (`waxmpp bootconfig`, run by waxmpp-bootconfig.service in the image).
//
// The file is written by people on any computer (Notepad, TextEdit, nano),
// so the parser is forgiving about what editors do (CRLF line ends, a UTF-8
// byte order mark, spaces around "=", quotes around a value) and strict
// about everything else: an unknown setting, a missing part of the Wi-Fi or
// account settings or a bad value is a Problem, reported in plain words with
// its line, never silently ignored.
//
// Format: one "name = value" per line; everything after the first "=" is
// the value, trimmed, and double quotes around it are removed (so a value
// may begin or end with a space). A line whose first non-blank character
// is "#" is a comment. There are no inline comments: "#" is a valid
// character of a Wi-Fi password.
//
// After applying, the file is written back (Scrubbed) with every applied
// line turned into a comment and the secrets in it removed, so a setting is
// applied once; a line written later is applied at the next boot.
package bootcfg

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"waxmpp/bridge/config"
)

// File names on the boot partition.
const (
	// FileName is the settings file people edit.
	FileName = "waxmpp.txt"
	// ErrorsName lists the problems found at the last boot; it is removed
	// when there are none.
	ErrorsName = "waxmpp-errors.txt"
	// SetupCodeName holds the setup code while waxmpp is not set up.
	SetupCodeName = "waxmpp-setup-code.txt"
)

// maxSize bounds what Parse accepts; the template is about 2 KiB.
const maxSize = 64 << 10

// Settings is what a waxmpp.txt asks for. A nil or empty field was not
// given (or was given with a problem, and is not applied).
type Settings struct {
	WiFi      *WiFi
	Hostname  string   // lower case, a valid host name label
	SSHKeys   []string // authorized_keys lines, "type base64 [comment]"
	SetupCode string
	Account   *Account
}

// WiFi is one network to join.
type WiFi struct {
	Name     string // the SSID, 1 to 32 bytes
	Password string // WPA passphrase (8 to 63 bytes) or 64 hex digits
	Country  string // ISO 3166-1 alpha-2, upper case
}

// Account is a setup without the web page: the owner's address and the bot
// account waxmpp logs in with.
type Account struct {
	Owner, Bot, Password string
}

// Problem is one mistake in the file, in plain words for the person who
// wrote it.
type Problem struct {
	Line int    // 1-based line number; 0 when about the whole file
	Key  string // the setting, if known
	Text string // what is wrong and what would be right
}

func (p Problem) String() string {
	switch {
	case p.Line > 0 && p.Key != "":
		return fmt.Sprintf("line %d (%s): %s", p.Line, p.Key, p.Text)
	case p.Line > 0:
		return fmt.Sprintf("line %d: %s", p.Line, p.Text)
	case p.Key != "":
		return p.Key + ": " + p.Text
	}
	return p.Text
}

// keyInfo describes one setting.
type keyInfo struct {
	group  string // settings applied together (all or none)
	secret bool   // its value is removed from the file once applied
	repeat bool   // may appear on several lines
}

var keys = map[string]keyInfo{
	"wifi_name":     {group: "wifi"},
	"wifi_password": {group: "wifi", secret: true},
	"wifi_country":  {group: "wifi"},
	"hostname":      {group: "hostname"},
	"ssh_key":       {group: "ssh", repeat: true},
	"setup_code":    {group: "setup", secret: true},
	"owner":         {group: "account"},
	"bot":           {group: "account"},
	"bot_password":  {group: "account", secret: true},
}

// keyOrder is the order settings are listed in messages.
var keyOrder = []string{"wifi_name", "wifi_password", "wifi_country", "hostname", "ssh_key", "setup_code", "owner", "bot", "bot_password"}

// Groups, in the order they are applied.
const (
	GroupHostname = "hostname"
	GroupWiFi     = "wifi"
	GroupSSH      = "ssh"
	GroupAccount  = "account"
	GroupSetup    = "setup"
)

// annotation starts the comment lines Scrubbed writes above a line with a
// problem; they are dropped and rewritten on every pass.
const annotation = "# waxmpp: "

type line struct {
	text    string // as written, without the line end
	key     string // "" for comments and blank lines
	value   string
	bad     bool // has a problem of its own: never applied
	applied bool
	drop    bool // an old annotation
}

// File is a parsed waxmpp.txt: the settings, the problems, and the lines as
// written, so that Scrubbed can write the file back.
type File struct {
	Settings Settings
	Problems []Problem

	lines    []line
	bom      bool
	crlf     bool
	final    bool // the last line ended with a line end
	readonly bool // not a text file we understand: never written back
	okGroups map[string]bool
}

// Parse reads a waxmpp.txt. It never fails: what it cannot use is in
// Problems, and Settings holds only what is complete and valid.
func Parse(data []byte) *File {
	f := &File{okGroups: map[string]bool{}}
	if whole := wholeFileProblem(data); whole != "" {
		f.readonly = true
		f.Problems = append(f.Problems, Problem{Text: whole})
		return f
	}
	if rest, ok := bytes.CutPrefix(data, []byte("\xef\xbb\xbf")); ok {
		f.bom, data = true, rest
	}
	text := string(data)
	f.final = strings.HasSuffix(text, "\n")
	text = strings.TrimSuffix(text, "\n")
	if len(data) > 0 {
		for _, s := range strings.Split(text, "\n") {
			if strings.HasSuffix(s, "\r") {
				f.crlf = true
				s = strings.TrimSuffix(s, "\r")
			}
			f.lines = append(f.lines, line{text: s})
		}
	}

	seen := map[string]int{} // key -> index of its first line
	for i := range f.lines {
		l := &f.lines[i]
		n := i + 1
		t := strings.TrimFunc(l.text, unicode.IsSpace)
		if strings.HasPrefix(l.text, annotation) {
			l.drop = true
			continue
		}
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		if !utf8.ValidString(t) {
			l.bad = true
			f.problem(n, "", "is not UTF-8 text; save the file as UTF-8 (or retype the line)")
			continue
		}
		k, v, ok := strings.Cut(t, "=")
		if !ok {
			l.bad = true
			// The line is not echoed: it may be a password typed wrong.
			f.problem(n, "", "is not a setting (it has no =); write name = value, or put # in front to make it a comment")
			continue
		}
		k = strings.ToLower(strings.TrimSpace(k))
		v = strings.TrimSpace(v)
		if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
			v = v[1 : len(v)-1]
		}
		info, known := keys[k]
		if !known {
			l.bad = true
			f.problem(n, "", unknownKey(k))
			continue
		}
		l.key, l.value = k, v
		if first, dup := seen[k]; dup && !info.repeat {
			l.bad = true
			f.lines[first].bad = true
			f.problem(n, k, fmt.Sprintf("is given twice (also on line %d); keep one of them", first+1))
			continue
		}
		if _, dup := seen[k]; !dup {
			seen[k] = i
		}
		if v == "" {
			l.bad = true
			f.problem(n, k, "has no value; write it after the =, or put # in front of the line")
			continue
		}
		if msg := checkValue(k, v); msg != "" {
			l.bad = true
			f.problem(n, k, msg)
		}
	}
	f.settle(seen)
	return f
}

// settle checks the groups and fills Settings with the complete ones.
func (f *File) settle(seen map[string]int) {
	val := func(k string) (string, bool) {
		i, ok := seen[k]
		if !ok || f.lines[i].bad {
			return "", false
		}
		return f.lines[i].value, true
	}
	groupBad := func(g string) bool {
		for _, l := range f.lines {
			if l.key != "" && keys[l.key].group == g && l.bad {
				return true
			}
		}
		return false
	}
	given := func(k string) bool { _, ok := seen[k]; return ok }
	// missing reports the members of a group that are absent, on the line
	// of the first member given.
	missing := func(group string, members []string, why map[string]string) bool {
		first := -1
		for _, k := range members {
			if i, ok := seen[k]; ok && (first < 0 || i < first) {
				first = i
			}
		}
		if first < 0 {
			return true // nothing of the group given
		}
		complete := true
		for _, k := range members {
			if !given(k) {
				complete = false
				f.problem(first+1, k, why[k])
			}
		}
		return !complete
	}

	wifi := []string{"wifi_name", "wifi_password", "wifi_country"}
	if !missing(GroupWiFi, wifi, map[string]string{
		"wifi_name":     "is missing: write the name of your Wi-Fi network as wifi_name = ...",
		"wifi_password": "is missing: write the Wi-Fi password as wifi_password = ... (networks without a password are not supported)",
		"wifi_country":  "is missing: write the two-letter code of the country you are in, such as wifi_country = DE (Wi-Fi channels depend on it)",
	}) && !groupBad(GroupWiFi) {
		name, _ := val("wifi_name")
		pass, _ := val("wifi_password")
		country, _ := val("wifi_country")
		f.Settings.WiFi = &WiFi{Name: name, Password: pass, Country: strings.ToUpper(country)}
		f.okGroups[GroupWiFi] = true
	}

	account := []string{"owner", "bot", "bot_password"}
	if !missing(GroupAccount, account, map[string]string{
		"owner":        "is missing: a setup without the page needs your own XMPP address as owner = you@example.org",
		"bot":          "is missing: a setup without the page needs the bot account as bot = yourbot@example.org",
		"bot_password": "is missing: a setup without the page needs the bot account's password as bot_password = ...",
	}) && !groupBad(GroupAccount) {
		owner, _ := val("owner")
		bot, _ := val("bot")
		pass, _ := val("bot_password")
		if key, msg := checkAccount(owner, bot, pass); msg != "" {
			f.lines[seen[key]].bad = true
			f.problem(seen[key]+1, key, msg)
		} else {
			f.Settings.Account = &Account{Owner: owner, Bot: bot, Password: pass}
			f.okGroups[GroupAccount] = true
		}
	}

	if h, ok := val("hostname"); ok {
		f.Settings.Hostname = strings.ToLower(h)
		f.okGroups[GroupHostname] = true
	}
	if c, ok := val("setup_code"); ok {
		f.Settings.SetupCode = c
		f.okGroups[GroupSetup] = true
	}
	for _, l := range f.lines {
		if l.key == "ssh_key" && !l.bad {
			f.Settings.SSHKeys = append(f.Settings.SSHKeys, normalizeSSHKey(l.value))
			f.okGroups[GroupSSH] = true
		}
	}
	slices.SortStableFunc(f.Problems, func(a, b Problem) int { return a.Line - b.Line })
}

func (f *File) problem(line int, key, text string) {
	f.Problems = append(f.Problems, Problem{Line: line, Key: key, Text: text})
}

// Fail records that a group could not be applied (an error writing the
// system's files): its lines stay as they are, with the problem above them.
func (f *File) Fail(group, text string) {
	for i, l := range f.lines {
		if l.key != "" && keys[l.key].group == group && !l.bad {
			f.problem(i+1, l.key, text)
			slices.SortStableFunc(f.Problems, func(a, b Problem) int { return a.Line - b.Line })
			return
		}
	}
	f.problem(0, "", text)
}

// Applied marks a group's lines as applied: Scrubbed turns them into
// comments. A group with a problem is never marked.
func (f *File) Applied(group string) {
	if !f.okGroups[group] {
		return
	}
	for i := range f.lines {
		l := &f.lines[i]
		if l.key != "" && keys[l.key].group == group && !l.bad {
			l.applied = true
		}
	}
}

// Scrubbed returns the file to write back: applied lines as comments with
// secrets removed, each line with a problem preceded by comments saying
// what is wrong, everything else as it was (line ends and byte order mark
// included). ok is false when the file must not be rewritten (it is not a
// text file Parse understood), and changed tells whether the text differs
// from what was parsed.
func (f *File) Scrubbed() (out []byte, changed, ok bool) {
	if f.readonly {
		return nil, false, false
	}
	byLine := map[int][]Problem{}
	for _, p := range f.Problems {
		byLine[p.Line] = append(byLine[p.Line], p)
	}
	var orig, b strings.Builder
	eol := "\n"
	if f.crlf {
		eol = "\r\n"
	}
	if f.bom {
		b.WriteString("\xef\xbb\xbf")
		orig.WriteString("\xef\xbb\xbf")
	}
	var out1 []string
	var in1 []string
	for _, p := range byLine[0] {
		out1 = append(out1, annotation+oneLine(p.Text))
	}
	for i, l := range f.lines {
		in1 = append(in1, l.text)
		if l.drop {
			continue
		}
		for _, p := range byLine[i+1] {
			msg := p.Text
			if p.Key != "" {
				msg = p.Key + " " + msg
			}
			out1 = append(out1, annotation+oneLine(msg))
		}
		switch {
		case l.applied && keys[l.key].secret:
			out1 = append(out1, "# applied: "+l.key+" = (removed from this file)")
		case l.applied:
			out1 = append(out1, "# applied: "+l.key+" = "+l.value)
		default:
			out1 = append(out1, l.text)
		}
	}
	join := func(w *strings.Builder, ls []string) {
		for i, s := range ls {
			w.WriteString(s)
			if i < len(ls)-1 || f.final {
				w.WriteString(eol)
			}
		}
	}
	join(&b, out1)
	// The original, rebuilt the same way, to compare without the BOM and
	// line-end details.
	join(&orig, in1)
	return []byte(b.String()), b.String() != orig.String(), true
}

// wholeFileProblem recognises files that are not plain text at all.
func wholeFileProblem(data []byte) string {
	switch {
	case len(data) > maxSize:
		return fmt.Sprintf("waxmpp.txt is larger than %d KiB; is it the right file? Start again from the waxmpp.txt of a fresh image", maxSize>>10)
	case bytes.HasPrefix(data, []byte{0xff, 0xfe}), bytes.HasPrefix(data, []byte{0xfe, 0xff}):
		return `waxmpp.txt is saved as UTF-16 ("Unicode"); save it as UTF-8 or plain text (in Notepad: Save as, Encoding: UTF-8)`
	case bytes.HasPrefix(bytes.TrimLeft(data, " \t\r\n"), []byte(`{\rtf`)):
		return "waxmpp.txt is saved as rich text (RTF); save it as plain text (in TextEdit: Format, Make Plain Text)"
	case bytes.IndexByte(data, 0) >= 0:
		return "waxmpp.txt is not a text file (it has NUL bytes); save it as plain text"
	}
	return ""
}

func unknownKey(k string) string {
	if k == "" {
		return "a line starts with =; write name = value"
	}
	best, dist := "", 3
	for _, name := range keyOrder {
		if d := config.EditDistance(k, name); d < dist {
			best, dist = name, d
		}
	}
	if best == "" {
		for _, name := range keyOrder {
			if strings.Contains(k, name) || strings.Contains(name, k) {
				best = name
				break
			}
		}
	}
	msg := fmt.Sprintf("%q is not a setting waxmpp knows", clip(k))
	if best != "" {
		return msg + fmt.Sprintf("; did you mean %s?", best)
	}
	return msg + "; the settings are " + strings.Join(keyOrder, ", ")
}

func checkValue(k, v string) string {
	switch k {
	case "wifi_name":
		if len(v) > 32 {
			return fmt.Sprintf("is %d bytes long; a Wi-Fi network name has at most 32", len(v))
		}
		if hasControl(v) {
			return "contains control characters; write the network name as it appears on your phone"
		}
	case "wifi_password":
		if len(v) == 64 && isHex(v) {
			return "" // a raw WPA key
		}
		if hasControl(v) {
			return "contains control characters (a tab?); write the password as you type it on your phone"
		}
		if n := len(v); n < 8 || n > 63 {
			return fmt.Sprintf("is %d characters long; a WPA Wi-Fi password has 8 to 63", utf8.RuneCountInString(v))
		}
	case "wifi_country":
		c := strings.ToUpper(v)
		if _, ok := countries[c]; ok {
			return ""
		}
		if alt, ok := countryAliases[c]; ok {
			return fmt.Sprintf("%q is not an ISO country code; did you mean %s (%s)?", v, alt, countries[alt])
		}
		return fmt.Sprintf("%q is not a two-letter country code; write the code of the country you are in, such as DE, FR, GB or US", clip(v))
	case "hostname":
		return checkHostname(v)
	case "ssh_key":
		return checkSSHKey(v)
	case "setup_code":
		if n := len(v); n < 8 || n > 64 {
			return fmt.Sprintf("is %d characters long; use 8 to 64 letters, digits and dashes", utf8.RuneCountInString(v))
		}
		for _, r := range v {
			if !(r < utf8.RuneSelf && (r == '-' || unicode.IsLetter(r) || unicode.IsDigit(r))) {
				return fmt.Sprintf("contains %q; use only letters (a to z), digits and dashes", r)
			}
		}
	case "owner", "bot":
		if strings.ContainsFunc(v, unicode.IsSpace) {
			return "contains a space; write the address alone, such as name@example.org"
		}
		if !strings.Contains(v, "@") {
			return fmt.Sprintf("%q is not an XMPP address; write it as name@example.org", clip(v))
		}
	case "bot_password":
		if strings.ContainsRune(v, 0) {
			return "contains a NUL byte"
		}
	}
	return ""
}

// countryAliases are codes people write that are not ISO 3166's.
var countryAliases = map[string]string{"UK": "GB", "EL": "GR", "EN": "GB"}

func checkHostname(v string) string {
	switch {
	case len(v) > 63:
		return fmt.Sprintf("is %d characters long; a host name has at most 63", len(v))
	case strings.HasPrefix(v, "-") || strings.HasSuffix(v, "-"):
		return fmt.Sprintf("%q begins or ends with a dash; use letters and digits there", v)
	case strings.HasSuffix(strings.ToLower(v), ".local"):
		return fmt.Sprintf("write the name without .local: hostname = %s", v[:len(v)-len(".local")])
	}
	for _, r := range v {
		ok := r < utf8.RuneSelf && (r == '-' || unicode.IsLetter(r) || unicode.IsDigit(r))
		if !ok {
			hint := ""
			if r == '_' || r == ' ' || r == '.' {
				hint = fmt.Sprintf(", such as %s", strings.Map(func(r rune) rune {
					if r == '_' || r == ' ' || r == '.' {
						return '-'
					}
					return r
				}, v))
			}
			return fmt.Sprintf("contains %q; use only letters (a to z), digits and dashes%s", r, hint)
		}
	}
	return ""
}

// sshKeyTypes are the public key types OpenSSH's sshd (bookworm) accepts.
var sshKeyTypes = []string{
	"ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521",
	"sk-ssh-ed25519@openssh.com", "sk-ecdsa-sha2-nistp256@openssh.com",
}

func checkSSHKey(v string) string {
	fields := strings.Fields(v)
	if len(fields) < 2 {
		return "is not an SSH public key; paste the whole line of your .pub file, such as ssh-ed25519 AAAAC3Nz... you@laptop"
	}
	typ := fields[0]
	if !slices.Contains(sshKeyTypes, typ) {
		if strings.Contains(v, "PRIVATE KEY") {
			return "is a private key! Give the public key (the .pub file) instead, and make a new key pair: this one is no longer secret"
		}
		return fmt.Sprintf("%q is not an SSH public key type; paste the whole line of your .pub file (it starts with ssh-ed25519, ssh-rsa or ecdsa-sha2-...)", clip(typ))
	}
	blob, err := base64.StdEncoding.DecodeString(fields[1])
	if err != nil {
		return "the key is cut or changed (its base64 text does not decode); paste the whole line again"
	}
	if msg := checkKeyBlob(typ, blob); msg != "" {
		return msg
	}
	return ""
}

// checkKeyBlob checks the key's wire form (RFC 4253 section 6.6, RFC 5656,
// PROTOCOL.u2f): a sequence of SSH strings, the first repeating the type,
// with as many parts as the type has. A key cut short fails here.
func checkKeyBlob(typ string, blob []byte) string {
	var parts [][]byte
	for len(blob) > 0 {
		if len(blob) < 4 {
			return "the key is cut or changed; paste the whole line again"
		}
		n := binary.BigEndian.Uint32(blob)
		if uint64(n) > uint64(len(blob)-4) {
			return "the key is cut or changed; paste the whole line again"
		}
		parts = append(parts, blob[4:4+n])
		blob = blob[4+n:]
	}
	if len(parts) == 0 || string(parts[0]) != typ {
		return "the key does not match its type; paste the whole line of your .pub file again"
	}
	want := map[string]int{
		"ssh-ed25519": 2, "ssh-rsa": 3,
		"ecdsa-sha2-nistp256": 3, "ecdsa-sha2-nistp384": 3, "ecdsa-sha2-nistp521": 3,
		"sk-ssh-ed25519@openssh.com": 3, "sk-ecdsa-sha2-nistp256@openssh.com": 4,
	}[typ]
	switch {
	case len(parts) != want:
		return "the key is cut or changed; paste the whole line again"
	case strings.HasSuffix(typ, "ed25519") || strings.HasSuffix(typ, "ed25519@openssh.com"):
		if len(parts[1]) != 32 {
			return "the key is cut or changed; paste the whole line again"
		}
	case strings.HasPrefix(typ, "ecdsa-sha2-"):
		if string(parts[1]) != strings.TrimPrefix(typ, "ecdsa-sha2-") {
			return "the key does not match its type; paste the whole line of your .pub file again"
		}
	}
	return ""
}

// normalizeSSHKey is the authorized_keys line for a checked key: type,
// key and comment separated by single spaces.
func normalizeSSHKey(v string) string { return strings.Join(strings.Fields(v), " ") }

// checkAccount checks the account with the bridge's own config rules, so
// that what bootconfig writes is a config waxmpp accepts.
func checkAccount(owner, bot, password string) (key, msg string) {
	cfg := config.Default()
	cfg.XMPP.Owner, cfg.XMPP.JID, cfg.XMPP.Password = owner, bot, password
	err := cfg.Validate()
	if err == nil {
		return "", ""
	}
	var ce *config.Error
	if !errors.As(err, &ce) {
		return "owner", err.Error()
	}
	switch ce.Field {
	case "xmpp.jid":
		key = "bot"
	case "xmpp.password":
		key = "bot_password"
	default:
		key = "owner"
	}
	r := strings.NewReplacer("xmpp.jid", "bot", "xmpp.owner", "owner", "xmpp.password", "bot_password",
		"a bare JID", "an address", "bare JID", "address")
	return key, r.Replace(ce.Problem)
}

func hasControl(s string) bool { return strings.ContainsFunc(s, unicode.IsControl) }

func isHex(s string) bool {
	for _, c := range s {
		if !strings.ContainsRune("0123456789abcdefABCDEF", c) {
			return false
		}
	}
	return true
}

// clip shortens s for a message.
func clip(s string) string {
	if utf8.RuneCountInString(s) <= 40 {
		return s
	}
	r := []rune(s)
	return string(r[:40]) + "..."
}

// oneLine makes s safe as a single comment line.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' {
			return ' '
		}
		return r
	}, s)
}
