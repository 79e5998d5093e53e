package bootcfg

import (
	"bufio"
	"bytes"
	"crypto/pbkdf2"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"waxmpp/bridge/config"
	"waxmpp/setup/setupcode"
)

// Paths on the system, relative to System.Root. The setup page (package
// setup) reads SetupCodeFile; see image/README.md.
const (
	ConfigFile = "etc/waxmpp/config.toml"
	// PasswordFile is the bot's password as the systemd credential the
	// unit loads (LoadCredential=waxmpp.password).
	PasswordFile  = "etc/credstore/waxmpp.password"
	SetupCodeFile = "var/lib/waxmpp/setup-code"
	// StateDir is the service's StateDirectory (the state file's).
	StateDir     = "var/lib/waxmpp"
	WiFiFile     = "etc/wpa_supplicant/wpa_supplicant-wlan0.conf"
	IssueFile    = "etc/issue.d/waxmpp.issue"
	HostnameFile = "etc/hostname"
	HostsFile    = "etc/hosts"
	AuthKeysFile = "root/.ssh/authorized_keys"
	// SSHOffFile keeps Debian's ssh.service from starting
	// (ConditionPathExists=!/etc/ssh/sshd_not_to_be_run).
	SSHOffFile = "etc/ssh/sshd_not_to_be_run"
	// ServiceUser owns the setup code and reads the config.
	ServiceUser = "waxmpp"
)

// DefaultHostname is the image's name until waxmpp.txt gives another.
const DefaultHostname = "waxmpp"

// System is where Run applies waxmpp.txt: the root file system and the
// mounted boot partition. Tests point both at temporary directories.
type System struct {
	Root string // "/" on the Pi
	Boot string // the FAT boot partition, "/boot/firmware" on the Pi
	// SetHostname sets the running kernel's host name (sethostname(2)); nil
	// leaves it alone.
	SetHostname func(string) error
	// Rand is the source of setup codes; nil means crypto/rand.
	Rand io.Reader
}

// Result is what one Run did, for the console and the journal.
type Result struct {
	// Problems are the mistakes in waxmpp.txt and what could not be
	// applied; they are also in waxmpp-errors.txt and on the console.
	Problems []Problem
	// Done says, one line each, what was applied ("Wi-Fi network Home").
	Done []string
	// Hostname is the system's host name after the run.
	Hostname string
	// SetupCode is the code the setup page asks for, or "" once waxmpp is
	// set up (the page is closed then).
	SetupCode string
}

func (s *System) root(rel string) string { return filepath.Join(s.Root, rel) }

// Run reads Boot/waxmpp.txt, applies its settings, writes the file back
// scrubbed, and brings the setup code, waxmpp-errors.txt and the console
// notice (/etc/issue.d) up to date. A missing waxmpp.txt applies nothing.
// The returned error is for failures of the system itself (an unreadable
// boot partition); mistakes in the file are Result.Problems.
func (s *System) Run() (*Result, error) {
	res := &Result{}
	path := filepath.Join(s.Boot, FileName)
	data, err := readLimited(path)
	var f *File
	switch {
	case errors.Is(err, fs.ErrNotExist):
		f = Parse(nil)
	case err != nil:
		return nil, fmt.Errorf("bootconfig: read %s: %w", path, err)
	default:
		f = Parse(data)
	}
	set := f.Settings
	apply := func(group, done string, fn func() error) {
		if err := fn(); err != nil {
			f.Fail(group, fmt.Sprintf("could not be applied: %v", err))
			return
		}
		f.Applied(group)
		res.Done = append(res.Done, done)
	}
	if set.Hostname != "" {
		apply(GroupHostname, "host name "+set.Hostname, func() error { return s.hostname(set.Hostname) })
	}
	if set.WiFi != nil {
		apply(GroupWiFi, fmt.Sprintf("Wi-Fi network %q (country %s)", set.WiFi.Name, set.WiFi.Country), func() error { return s.wifi(*set.WiFi) })
	}
	if len(set.SSHKeys) > 0 {
		apply(GroupSSH, fmt.Sprintf("%d SSH key(s) for root; SSH is on", len(set.SSHKeys)), func() error { return s.sshKeys(set.SSHKeys) })
	}
	if set.Account != nil {
		if exists(s.root(ConfigFile)) {
			f.Fail(GroupAccount, "not applied: waxmpp is set up already (/etc/waxmpp/config.toml exists); to change its accounts, log in and run sudo waxmpp setup")
		} else {
			apply(GroupAccount, fmt.Sprintf("setup without the page: bot %s serving %s", set.Account.Bot, set.Account.Owner), func() error { return s.account(*set.Account) })
		}
	}
	configured := exists(s.root(ConfigFile))
	if set.SetupCode != "" {
		if configured {
			f.Fail(GroupSetup, "not needed: waxmpp is set up already, so there is no setup page; remove this line")
		} else {
			apply(GroupSetup, "the setup code from waxmpp.txt", func() error { return s.storeSetupCode(set.SetupCode) })
		}
	}
	if configured {
		for _, p := range []string{s.root(SetupCodeFile), filepath.Join(s.Boot, SetupCodeName)} {
			if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("bootconfig: remove %s: %w", p, err)
			}
		}
	} else if code, err := s.setupCode(); err != nil {
		f.problem(0, "", fmt.Sprintf("the setup code could not be created: %v", err))
	} else {
		res.SetupCode = code
	}
	res.Hostname = s.currentHostname()

	if out, changed, ok := f.Scrubbed(); ok && changed {
		if err := writeFile(path, out, 0o600, -1, -1); err != nil {
			return nil, fmt.Errorf("bootconfig: write back %s: %w", path, err)
		}
	}
	res.Problems = f.Problems
	if err := s.writeErrors(res.Problems); err != nil {
		return nil, err
	}
	if res.SetupCode != "" {
		text := fmt.Sprintf("waxmpp setup code: %s\r\n\r\nOpen http://%s.local/ on a phone or computer in the same network and enter this code.\r\n", res.SetupCode, res.Hostname)
		if err := writeFile(filepath.Join(s.Boot, SetupCodeName), []byte(text), 0o600, -1, -1); err != nil {
			return nil, fmt.Errorf("bootconfig: %w", err)
		}
	}
	if err := s.writeIssue(res); err != nil {
		return nil, err
	}
	return res, nil
}

func (s *System) hostname(name string) error {
	if err := writeFile(s.root(HostnameFile), []byte(name+"\n"), 0o644, -1, -1); err != nil {
		return err
	}
	hosts, err := os.ReadFile(s.root(HostsFile))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	var b bytes.Buffer
	replaced := false
	for _, l := range strings.SplitAfter(string(hosts), "\n") {
		if l == "" {
			continue
		}
		if f := strings.Fields(l); len(f) > 0 && f[0] == "127.0.1.1" {
			if !replaced {
				fmt.Fprintf(&b, "127.0.1.1\t%s\n", name)
			}
			replaced = true
			continue
		}
		b.WriteString(l)
		if !strings.HasSuffix(l, "\n") {
			b.WriteByte('\n')
		}
	}
	if !replaced {
		fmt.Fprintf(&b, "127.0.1.1\t%s\n", name)
	}
	if err := writeFile(s.root(HostsFile), b.Bytes(), 0o644, -1, -1); err != nil {
		return err
	}
	if s.SetHostname != nil {
		return s.SetHostname(name)
	}
	return nil
}

func (s *System) currentHostname() string {
	b, err := os.ReadFile(s.root(HostnameFile))
	if h := strings.TrimSpace(string(b)); err == nil && h != "" {
		return h
	}
	return DefaultHostname
}

// wifi writes wpa_supplicant's profile for wlan0. The network name is
// written in hex and the password as the derived WPA key, so no character
// of either can break the file's syntax, and the password itself is not
// kept on the card.
func (s *System) wifi(w WiFi) error {
	psk := strings.ToLower(w.Password)
	if !(len(w.Password) == 64 && isHex(w.Password)) {
		key, err := pbkdf2.Key(sha1.New, w.Password, []byte(w.Name), 4096, 32)
		if err != nil {
			return err
		}
		psk = hex.EncodeToString(key)
	}
	conf := fmt.Sprintf(`# Written by waxmpp bootconfig from waxmpp.txt. Network %q.
ctrl_interface=DIR=/run/wpa_supplicant GROUP=netdev
update_config=0
country=%s

network={
	ssid=%s
	scan_ssid=1
	key_mgmt=WPA-PSK
	psk=%s
}
`, w.Name, w.Country, hex.EncodeToString([]byte(w.Name)), psk)
	return writeFile(s.root(WiFiFile), []byte(conf), 0o600, -1, -1)
}

func (s *System) sshKeys(add []string) error {
	path := s.root(AuthKeysFile)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	have := map[string]bool{}
	for _, l := range strings.Split(string(old), "\n") {
		if f := strings.Fields(l); len(f) >= 2 {
			have[f[0]+" "+f[1]] = true
		}
	}
	out := old
	if len(out) > 0 && !bytes.HasSuffix(out, []byte("\n")) {
		out = append(out, '\n')
	}
	for _, k := range add {
		f := strings.Fields(k)
		if have[f[0]+" "+f[1]] {
			continue
		}
		have[f[0]+" "+f[1]] = true
		out = append(out, k+"\n"...)
	}
	if err := writeFile(path, out, 0o600, 0, 0); err != nil {
		return err
	}
	if err := os.Remove(s.root(SSHOffFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// account writes the config for a setup without the page: the accounts in
// /etc/waxmpp/config.toml (root:waxmpp 0640), the password as the systemd
// credential waxmpp.password in /etc/credstore (root 0600; systemd hands it
// to the service).
func (s *System) account(a Account) error {
	uid, err := lookupID(s.root("etc/passwd"), ServiceUser)
	if err != nil {
		return err
	}
	gid, err := lookupID(s.root("etc/group"), ServiceUser)
	if err != nil {
		return err
	}
	// A setup begun on the page and left at the WhatsApp step has made
	// the state file as root (the page runs as root and links into it);
	// the page gives it to the service's user only when it finishes.
	// Without this, waxmpp.service (as waxmpp) could not open it.
	if err := chownTree(s.root(StateDir), uid, gid); err != nil {
		return fmt.Errorf("give %s to %s: %w", "/"+StateDir, ServiceUser, err)
	}
	if err := os.MkdirAll(filepath.Dir(s.root(PasswordFile)), 0o700); err != nil {
		return err
	}
	if err := writeFile(s.root(PasswordFile), []byte(a.Password), 0o600, 0, 0); err != nil {
		return err
	}
	conf := fmt.Sprintf(`# Written by waxmpp bootconfig from waxmpp.txt on the boot partition.
# The bot's password is the systemd credential /etc/credstore/waxmpp.password.
# Other settings: /usr/share/doc/waxmpp/examples/config.toml.
[xmpp]
jid = %s
owner = %s
`, tomlString(a.Bot), tomlString(a.Owner))
	return writeFile(s.root(ConfigFile), []byte(conf), 0o640, 0, gid)
}

// setupCode returns the code the setup page asks for: the one stored, else
// a new one, stored.
func (s *System) setupCode() (string, error) {
	b, err := os.ReadFile(s.root(SetupCodeFile))
	if code := strings.TrimSpace(string(b)); err == nil && code != "" {
		return code, nil
	}
	code, err := setupcode.New(s.Rand)
	if err != nil {
		return "", err
	}
	if err := s.storeSetupCode(code); err != nil {
		return "", err
	}
	return code, nil
}

func (s *System) storeSetupCode(code string) error {
	uid, err := lookupID(s.root("etc/passwd"), ServiceUser)
	if err != nil {
		return err
	}
	gid, err := lookupID(s.root("etc/group"), ServiceUser)
	if err != nil {
		return err
	}
	// The service's StateDirectory (0700, its user's); systemd makes it
	// when the service first starts, which is after this.
	dir := filepath.Dir(s.root(SetupCodeFile))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if err := os.Chown(dir, uid, gid); err != nil {
		return err
	}
	return writeFile(s.root(SetupCodeFile), []byte(code+"\n"), 0o600, uid, gid)
}

func (s *System) writeErrors(problems []Problem) error {
	path := filepath.Join(s.Boot, ErrorsName)
	if len(problems) == 0 {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("bootconfig: %w", err)
		}
		return nil
	}
	var b strings.Builder
	b.WriteString("waxmpp found mistakes in waxmpp.txt when the Pi started:\r\n\r\n")
	for _, p := range problems {
		b.WriteString("  " + p.String() + "\r\n")
	}
	b.WriteString("\r\nCorrect them in waxmpp.txt; the Pi reads it again when it starts.\r\n")
	if err := writeFile(path, []byte(b.String()), 0o600, -1, -1); err != nil {
		return fmt.Errorf("bootconfig: %w", err)
	}
	return nil
}

// writeIssue keeps the console's login screen (agetty shows /etc/issue.d)
// telling what to do: the setup page and its code, and any mistakes.
func (s *System) writeIssue(res *Result) error {
	path := s.root(IssueFile)
	if res.SetupCode == "" && len(res.Problems) == 0 {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("bootconfig: %w", err)
		}
		return nil
	}
	var b strings.Builder
	if res.SetupCode != "" {
		// agetty replaces \4 with this machine's IPv4 address.
		fmt.Fprintf(&b, "waxmpp is not set up yet. On a phone or computer in the same network, open\n  http://%s.local/  (or http://\\4/)\nand enter the setup code:  %s\n\n", issueEscape(res.Hostname), issueEscape(res.SetupCode))
	}
	if len(res.Problems) > 0 {
		b.WriteString("waxmpp.txt on the boot partition has mistakes (also in waxmpp-errors.txt there):\n")
		for _, p := range res.Problems {
			b.WriteString("  " + issueEscape(p.String()) + "\n")
		}
		b.WriteString("\n")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("bootconfig: %w", err)
	}
	if err := writeFile(path, []byte(b.String()), 0o644, -1, -1); err != nil {
		return fmt.Errorf("bootconfig: %w", err)
	}
	return nil
}

// issueEscape protects agetty's backslash escapes.
func issueEscape(s string) string { return strings.ReplaceAll(s, `\`, `\\`) }

// tomlString quotes s as a TOML basic string.
func tomlString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\u%04X`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// lookupID finds name's numeric id in an /etc/passwd or /etc/group file
// (the third field in both).
func lookupID(file, name string) (int, error) {
	f, err := os.Open(file)
	if err != nil {
		return 0, fmt.Errorf("look up %s: %w", name, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Split(sc.Text(), ":")
		if len(fields) >= 3 && fields[0] == name {
			return strconv.Atoi(fields[2])
		}
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("look up %s in %s: %w", name, file, err)
	}
	return 0, fmt.Errorf("there is no %s in %s (is the waxmpp package installed?)", name, file)
}

// chownTree gives dir and everything under it to uid:gid, without
// following symlinks. A missing dir is no error.
func chownTree(dir string, uid, gid int) error {
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

func readLimited(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, maxSize+1))
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// writeFile replaces path atomically and durably: a power cut leaves the
// old or the new file, on ext4 and on the FAT boot partition. uid or gid
// -1 leaves the owner as created.
func writeFile(path string, data []byte, perm os.FileMode, uid, gid int) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return config.ReplaceFile(path, data, perm, uid, gid)
}
