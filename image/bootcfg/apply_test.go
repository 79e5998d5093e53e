package bootcfg

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"waxmpp/bridge/config"
)

// newSystem makes a root file system with what the image has (the
// waxmpp user, hosts, the SSH-off flag) and a boot partition holding txt.
func newSystem(t *testing.T, txt string) *System {
	t.Helper()
	dir := t.TempDir()
	s := &System{Root: filepath.Join(dir, "root"), Boot: filepath.Join(dir, "boot")}
	for path, content := range map[string]string{
		"etc/passwd":   "root:x:0:0:root:/root:/bin/sh\nwaxmpp:x:996:995::/var/lib/waxmpp:/usr/sbin/nologin\n",
		"etc/group":    "root:x:0:\nwaxmpp:x:995:\n",
		"etc/hostname": "waxmpp\n",
		"etc/hosts":    "127.0.0.1\tlocalhost\n127.0.1.1\twaxmpp\n::1\tlocalhost\n",
		SSHOffFile:     "",
	} {
		write(t, filepath.Join(s.Root, path), content)
	}
	if txt != "" {
		write(t, filepath.Join(s.Boot, FileName), txt)
	} else if err := os.MkdirAll(s.Boot, 0o755); err != nil {
		t.Fatal(err)
	}
	return s
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func mode(t *testing.T, path string) (fs.FileMode, int, int) {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	sys := st.Sys().(*syscall.Stat_t)
	return st.Mode().Perm(), int(sys.Uid), int(sys.Gid)
}

func TestRunAppliesEverything(t *testing.T) {
	txt := "wifi_name = Home\r\nwifi_password = password\r\nwifi_country = de\r\n" +
		"hostname = Kitchen\r\nssh_key = " + testKey + "\r\nsetup_code = open-sesame\r\n"
	s := newSystem(t, txt)
	var hostname string
	s.SetHostname = func(h string) error { hostname = h; return nil }
	res, err := s.Run()
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Problems) > 0 {
		t.Fatalf("problems: %v", res.Problems)
	}

	if hostname != "kitchen" || read(t, s.root(HostnameFile)) != "kitchen\n" {
		t.Errorf("hostname: kernel %q, file %q", hostname, read(t, s.root(HostnameFile)))
	}
	if got, want := read(t, s.root(HostsFile)), "127.0.0.1\tlocalhost\n127.0.1.1\tkitchen\n::1\tlocalhost\n"; got != want {
		t.Errorf("hosts:\n%s\nwant\n%s", got, want)
	}

	// IEEE 802.11i-2004 H.4.1: passphrase "password", SSID "IEEE" is
	// f42c6fc5...; here the SSID is "Home", checked the same way by
	// wpa_passphrase.
	wifi := read(t, s.root(WiFiFile))
	for _, want := range []string{"country=DE\n", "\tssid=486f6d65\n", "\tkey_mgmt=WPA-PSK\n", "\tpsk=" + wpaPSK(t, "password", "Home") + "\n"} {
		if !strings.Contains(wifi, want) {
			t.Errorf("wpa_supplicant conf lacks %q:\n%s", want, wifi)
		}
	}
	if strings.Contains(wifi, "password\n") {
		t.Error("the Wi-Fi password is stored in clear")
	}
	if m, _, _ := mode(t, s.root(WiFiFile)); m != 0o600 {
		t.Errorf("wifi conf mode %o", m)
	}

	if got := read(t, s.root(AuthKeysFile)); got != testKey+"\n" {
		t.Errorf("authorized_keys %q", got)
	}
	if m, uid, _ := mode(t, s.root(AuthKeysFile)); m != 0o600 || uid != 0 {
		t.Errorf("authorized_keys mode %o uid %d", m, uid)
	}
	if m, _, _ := mode(t, filepath.Dir(s.root(AuthKeysFile))); m != 0o700 {
		t.Errorf(".ssh mode %o", m)
	}
	if exists(s.root(SSHOffFile)) {
		t.Error("sshd_not_to_be_run still there: SSH stays off")
	}

	if res.SetupCode != "open-sesame" || read(t, s.root(SetupCodeFile)) != "open-sesame\n" {
		t.Errorf("setup code %q, file %q", res.SetupCode, read(t, s.root(SetupCodeFile)))
	}
	if m, uid, gid := mode(t, s.root(SetupCodeFile)); m != 0o600 || uid != 996 || gid != 995 {
		t.Errorf("setup code file mode %o owner %d:%d, want 0600 waxmpp", m, uid, gid)
	}
	if got := read(t, filepath.Join(s.Boot, SetupCodeName)); !strings.Contains(got, "open-sesame") || !strings.Contains(got, "http://kitchen.local/") {
		t.Errorf("%s: %q", SetupCodeName, got)
	}
	issue := read(t, s.root(IssueFile))
	if !strings.Contains(issue, "http://kitchen.local/") || !strings.Contains(issue, "open-sesame") || !strings.Contains(issue, `http://\4/`) {
		t.Errorf("issue:\n%s", issue)
	}

	scrubbed := read(t, filepath.Join(s.Boot, FileName))
	for _, secret := range []string{"password\r", "open-sesame"} {
		if strings.Contains(scrubbed, secret) {
			t.Errorf("waxmpp.txt still holds %q:\n%s", secret, scrubbed)
		}
	}
	if !strings.Contains(scrubbed, "# applied: wifi_name = Home\r\n") {
		t.Errorf("waxmpp.txt:\n%s", scrubbed)
	}
	if exists(filepath.Join(s.Boot, ErrorsName)) {
		t.Error("errors file without errors")
	}

	// The next boot applies nothing again and keeps the code.
	write(t, s.root(HostnameFile), "changed-by-hand\n")
	res2, err := s.Run()
	if err != nil {
		t.Fatal(err)
	}
	if len(res2.Done) != 0 || res2.SetupCode != "open-sesame" || read(t, s.root(HostnameFile)) != "changed-by-hand\n" {
		t.Errorf("second run: done %v, code %q, hostname %q", res2.Done, res2.SetupCode, read(t, s.root(HostnameFile)))
	}
	if read(t, filepath.Join(s.Boot, FileName)) != scrubbed {
		t.Error("second run rewrote waxmpp.txt")
	}
}

// wpaPSK is what wpa_passphrase(8) prints, as a check of our PBKDF2 use
// with a known vector first.
func wpaPSK(t *testing.T, pass, ssid string) string {
	t.Helper()
	s := &System{Root: t.TempDir()}
	if err := s.wifi(WiFi{Name: "IEEE", Password: "password", Country: "DE"}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(read(t, s.root(WiFiFile)), "psk=f42c6fc52df0ebef9ebb4b90b38a5f902e83fe1b135a70e23aed762e9710a12e\n") {
		t.Fatalf("IEEE 802.11i test vector failed:\n%s", read(t, s.root(WiFiFile)))
	}
	if err := s.wifi(WiFi{Name: ssid, Password: pass, Country: "DE"}); err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`psk=([0-9a-f]{64})`).FindStringSubmatch(read(t, s.root(WiFiFile)))
	return m[1]
}

func TestRunGeneratesSetupCode(t *testing.T) {
	s := newSystem(t, "")
	res, err := s.Run()
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^[A-HJKMNP-Z2-9]{4}-[A-HJKMNP-Z2-9]{4}-[A-HJKMNP-Z2-9]{4}$`).MatchString(res.SetupCode) {
		t.Errorf("setup code %q", res.SetupCode)
	}
	if got := strings.TrimSpace(read(t, s.root(SetupCodeFile))); got != res.SetupCode {
		t.Errorf("stored %q, shown %q", got, res.SetupCode)
	}
	if !strings.Contains(read(t, filepath.Join(s.Boot, SetupCodeName)), res.SetupCode) {
		t.Error("code not on the boot partition")
	}
	if !strings.Contains(read(t, s.root(IssueFile)), "http://waxmpp.local/") {
		t.Error("issue lacks the default name")
	}
	if exists(filepath.Join(s.Boot, FileName)) {
		t.Error("a missing waxmpp.txt was created")
	}
	if !exists(s.root(SSHOffFile)) {
		t.Error("SSH turned on without a key")
	}
	res2, err := s.Run()
	if err != nil || res2.SetupCode != res.SetupCode {
		t.Errorf("second boot: code %q (first %q), err %v", res2.SetupCode, res.SetupCode, err)
	}
	// Codes differ between cards.
	other := newSystem(t, "")
	res3, err := other.Run()
	if err != nil || res3.SetupCode == res.SetupCode {
		t.Errorf("two cards got the code %q (err %v)", res.SetupCode, err)
	}
}

func TestRunMistakes(t *testing.T) {
	txt := "hostname = kitchen_pi\nwifi_name = Home\ncolour = blue\n"
	s := newSystem(t, txt)
	res, err := s.Run()
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Problems) != 4 {
		t.Fatalf("problems: %v", res.Problems)
	}
	errs := read(t, filepath.Join(s.Boot, ErrorsName))
	for _, p := range res.Problems {
		if !strings.Contains(errs, p.String()) {
			t.Errorf("%s lacks %q:\n%s", ErrorsName, p, errs)
		}
	}
	issue := read(t, s.root(IssueFile))
	if !strings.Contains(issue, "such as kitchen-pi") || !strings.Contains(issue, "waxmpp-errors.txt") {
		t.Errorf("issue:\n%s", issue)
	}
	if exists(s.root(WiFiFile)) || read(t, s.root(HostnameFile)) != "waxmpp\n" {
		t.Error("a setting with a problem was applied")
	}
	// Fixed on a computer: applied, and the errors file goes.
	write(t, filepath.Join(s.Boot, FileName), "hostname = kitchen-pi\n")
	res, err = s.Run()
	if err != nil || len(res.Problems) != 0 {
		t.Fatalf("after the fix: %v %v", res.Problems, err)
	}
	if exists(filepath.Join(s.Boot, ErrorsName)) || read(t, s.root(HostnameFile)) != "kitchen-pi\n" {
		t.Error("fix not applied, or errors file left")
	}
	if strings.Contains(read(t, s.root(IssueFile)), "mistakes") {
		t.Error("issue still shows mistakes")
	}
}

func TestRunAccount(t *testing.T) {
	txt := "owner = me@example.org\nbot = bot@example.org\nbot_password = \"s3cret \\ \"quoted\" \"\nsetup_code = abcdefgh\n"
	s := newSystem(t, txt)
	// A setup begun on the page and left at the WhatsApp step: the page
	// (root) made the state file.
	write(t, s.root("var/lib/waxmpp/waxmpp.db"), "half-linked")
	res, err := s.Run()
	if err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		for _, p := range []string{"var/lib/waxmpp", "var/lib/waxmpp/waxmpp.db"} {
			if _, uid, gid := mode(t, s.root(p)); uid != 996 || gid != 995 {
				t.Errorf("/%s owned by %d:%d, want the service's user waxmpp (996:995)", p, uid, gid)
			}
		}
	}
	// setup_code comes after the account: not needed any more.
	if len(res.Problems) != 1 || !strings.Contains(res.Problems[0].String(), "line 4 (setup_code): not needed") {
		t.Fatalf("problems: %v", res.Problems)
	}
	// As the service reads it: the credential in $CREDENTIALS_DIRECTORY.
	t.Setenv("CREDENTIALS_DIRECTORY", filepath.Dir(s.root(PasswordFile)))
	cfg, err := config.Load(s.root(ConfigFile))
	if err != nil {
		t.Fatalf("config.Load of the written config: %v\n%s", err, read(t, s.root(ConfigFile)))
	}
	if cfg.XMPP.Owner != "me@example.org" || cfg.XMPP.JID != "bot@example.org" || cfg.XMPP.Password != `s3cret \ "quoted" ` {
		t.Errorf("config: %+v", cfg.XMPP)
	}
	if strings.Contains(read(t, s.root(ConfigFile)), "s3cret") {
		t.Error("the password is in the config")
	}
	if m, uid, gid := mode(t, s.root(ConfigFile)); m != 0o640 || uid != 0 || gid != 995 {
		t.Errorf("config: mode %o owner %d:%d, want 0640 root:waxmpp", m, uid, gid)
	}
	if m, uid, gid := mode(t, s.root(PasswordFile)); m != 0o600 || uid != 0 || gid != 0 {
		t.Errorf("credential: mode %o owner %d:%d, want 0600 root", m, uid, gid)
	}
	if res.SetupCode != "" || exists(s.root(SetupCodeFile)) || exists(filepath.Join(s.Boot, SetupCodeName)) || exists(s.root(IssueFile)) && !strings.Contains(read(t, s.root(IssueFile)), "mistakes") {
		t.Error("a setup code remains on a configured system")
	}
	if strings.Contains(read(t, filepath.Join(s.Boot, FileName)), "s3cret") {
		t.Error("the bot's password stays in waxmpp.txt")
	}
	// Given again later: refused, the existing config kept.
	write(t, filepath.Join(s.Boot, FileName), "owner = other@example.org\nbot = bot2@example.org\nbot_password = x\n")
	before := read(t, s.root(ConfigFile))
	res, err = s.Run()
	if err != nil || len(res.Problems) != 1 || !strings.Contains(res.Problems[0].Text, "set up already") {
		t.Fatalf("second account: %v %v", res.Problems, err)
	}
	if read(t, s.root(ConfigFile)) != before {
		t.Error("config overwritten")
	}
}

func TestRunSSHKeysAppend(t *testing.T) {
	s := newSystem(t, "ssh_key = "+testKeyNoCmt+" other comment\n")
	write(t, s.root(AuthKeysFile), testKey) // already there, no final newline
	if _, err := s.Run(); err != nil {
		t.Fatal(err)
	}
	if got := read(t, s.root(AuthKeysFile)); got != testKey+"\n" {
		t.Errorf("authorized_keys %q", got)
	}
}

func TestRunUnreadableFile(t *testing.T) {
	s := newSystem(t, "\xff\xfeh\x00o\x00")
	res, err := s.Run()
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Problems) != 1 || !strings.Contains(read(t, filepath.Join(s.Boot, ErrorsName)), "UTF-16") {
		t.Errorf("problems %v", res.Problems)
	}
	if got := read(t, filepath.Join(s.Boot, FileName)); got != "\xff\xfeh\x00o\x00" {
		t.Error("a file we cannot read was rewritten")
	}
}

func TestRunApplyFailure(t *testing.T) {
	s := newSystem(t, "ssh_key = "+testKey+"\nhostname = pi\n")
	// /root/.ssh cannot be created: a file is in the way.
	write(t, s.root("root/.ssh"), "")
	res, err := s.Run()
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Problems) != 1 || !strings.Contains(res.Problems[0].String(), "line 1 (ssh_key): could not be applied") {
		t.Fatalf("problems %v", res.Problems)
	}
	txt := read(t, filepath.Join(s.Boot, FileName))
	if !strings.Contains(txt, "\nssh_key = "+testKey+"\n") || !strings.Contains(txt, "# applied: hostname = pi") {
		t.Errorf("waxmpp.txt:\n%s", txt)
	}
	if !exists(s.root(SSHOffFile)) {
		t.Error("SSH on without a key installed")
	}
}

func TestRunMissingBoot(t *testing.T) {
	s := newSystem(t, "")
	if err := os.RemoveAll(s.Boot); err != nil {
		t.Fatal(err)
	}
	write(t, s.Boot, "not a directory")
	if _, err := s.Run(); err == nil || errors.Is(err, fs.ErrNotExist) {
		t.Errorf("err %v, want a failure naming the boot partition", err)
	}
}
