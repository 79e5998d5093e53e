package bootcfg

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// A real key (ssh-keygen -t ed25519), and one whose blob names another type.
const (
	testKey      = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMCet+O21AaoozzN5tDkXrC8ffm8nP62YYC27Aaw9+bu test@waxmpp"
	testKeyNoCmt = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMCet+O21AaoozzN5tDkXrC8ffm8nP62YYC27Aaw9+bu"
	wrongTypeKey = "ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIMCet+O21AaoozzN5tDkXrC8ffm8nP62YYC27Aaw9+bu"
)

func TestParseSettings(t *testing.T) {
	in := "\xef\xbb\xbf# comment\r\n" +
		"wifi_name = \" My Net \"\r\n" +
		"WIFI_PASSWORD=pa ss#word\"x\r\n" +
		"wifi_country = de\r\n" +
		"hostname = Kitchen-Pi\r\n" +
		"ssh_key =   " + strings.ReplaceAll(testKey, " ", "   ") + "\r\n" +
		"ssh_key = " + testKeyNoCmt + "\r\n" +
		"setup_code = abcd-1234-EFGH\r\n" +
		"owner = me@example.org\r\n" +
		"bot = bot@example.org\r\n" +
		"bot_password = p = w\r\n"
	f := Parse([]byte(in))
	if len(f.Problems) > 0 {
		t.Fatalf("problems: %v", f.Problems)
	}
	want := Settings{
		WiFi:      &WiFi{Name: " My Net ", Password: `pa ss#word"x`, Country: "DE"},
		Hostname:  "kitchen-pi",
		SSHKeys:   []string{testKey, testKeyNoCmt},
		SetupCode: "abcd-1234-EFGH",
		Account:   &Account{Owner: "me@example.org", Bot: "bot@example.org", Password: "p = w"},
	}
	if !reflect.DeepEqual(f.Settings, want) {
		t.Errorf("settings:\ngot  %+v %+v %+v\nwant %+v %+v %+v", f.Settings, f.Settings.WiFi, f.Settings.Account, want, want.WiFi, want.Account)
	}
}

func TestParseProblems(t *testing.T) {
	full := "wifi_name = Home\nwifi_password = 12345678\nwifi_country = DE\n"
	tests := []struct {
		name string
		in   string
		want []string // substrings of the problems, in order
		// groups that must still be applied despite the problems
		ok []string
	}{
		{"empty file", "", nil, nil},
		{"only comments", "# hello\n\n   # indented\n", nil, nil},
		{"no equals", "wifi_name Home\n", []string{"line 1: is not a setting (it has no =)"}, nil},
		{"password line not echoed", "wifi_password: hunter22\n", []string{"line 1: is not a setting"}, nil},
		{"unknown key with suggestion", "wifi_pasword = x\nhostname = pi\n", []string{`line 1: "wifi_pasword" is not a setting waxmpp knows; did you mean wifi_password?`}, []string{GroupHostname}},
		{"unknown key without suggestion", "colour = blue\n", []string{"the settings are wifi_name, wifi_password"}, nil},
		{"empty key", "= x\n", []string{"line 1: a line starts with ="}, nil},
		{"empty value", "hostname =\n", []string{"line 1 (hostname): has no value"}, nil},
		{"duplicate", "hostname = a\nhostname = b\n", []string{"line 2 (hostname): is given twice (also on line 1)"}, nil},
		{"ssh_key may repeat", "ssh_key = " + testKey + "\nssh_key = " + testKeyNoCmt + "\n", nil, []string{GroupSSH}},
		{"wifi without password and country", "wifi_name = Home\n", []string{
			"line 1 (wifi_password): is missing", "line 1 (wifi_country): is missing"}, nil},
		{"wifi password alone", "\nwifi_password = 12345678\n", []string{"line 2 (wifi_name): is missing", "line 2 (wifi_country): is missing"}, nil},
		{"wifi password short", strings.Replace(full, "12345678", "1234567", 1), []string{"line 2 (wifi_password): is 7 characters long; a WPA Wi-Fi password has 8 to 63"}, nil},
		{"wifi password long", strings.Replace(full, "12345678", strings.Repeat("x", 64), 1), []string{"is 64 characters long"}, nil},
		{"wifi raw key", strings.Replace(full, "12345678", strings.Repeat("aB", 32), 1), nil, []string{GroupWiFi}},
		{"wifi password tab", strings.Replace(full, "12345678", "1234\t5678", 1), []string{"control characters"}, nil},
		{"wifi name long", strings.Replace(full, "Home", strings.Repeat("n", 33), 1), []string{"is 33 bytes long"}, nil},
		{"country name", strings.Replace(full, "DE", "Germany", 1), []string{`"Germany" is not a two-letter country code`}, nil},
		{"country alias", strings.Replace(full, "DE", "uk", 1), []string{`did you mean GB`}, nil},
		{"country lower case", strings.Replace(full, "DE", "fr", 1), nil, []string{GroupWiFi}},
		{"hostname underscore", "hostname = kitchen_pi\n", []string{"such as kitchen-pi"}, nil},
		{"hostname .local", "hostname = kitchen.local\n", []string{"hostname = kitchen"}, nil},
		{"hostname dash", "hostname = -pi\n", []string{"begins or ends with a dash"}, nil},
		{"hostname long", "hostname = " + strings.Repeat("a", 64) + "\n", []string{"at most 63"}, nil},
		{"hostname unicode", "hostname = küche\n", []string{"contains 'ü'"}, nil},
		{"ssh private key", "ssh_key = -----BEGIN OPENSSH PRIVATE KEY-----\n", []string{"is a private key!"}, nil},
		{"ssh key cut", "ssh_key = ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMCet+O21Aao\n", []string{"line 1 (ssh_key): the key is cut or changed"}, nil},
		{"ssh key not base64", "ssh_key = ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMCet+O21Aa\n", []string{"its base64 text does not decode"}, nil},
		{"ssh key wrong type", "ssh_key = " + wrongTypeKey + "\n", []string{"does not match its type"}, nil},
		{"ssh key type only", "ssh_key = ssh-ed25519\n", []string{"paste the whole line"}, nil},
		{"ssh key unknown type", "ssh_key = ssh-dss AAAA\n", []string{`"ssh-dss" is not an SSH public key type`}, nil},
		{"setup code short", "setup_code = abc\n", []string{"is 3 characters long"}, nil},
		{"setup code space", "setup_code = abcd efgh\n", []string{"contains ' '"}, nil},
		{"account incomplete", "owner = me@example.org\n", []string{"line 1 (bot): is missing", "line 1 (bot_password): is missing"}, nil},
		{"account same", "owner = me@example.org\nbot = ME@example.org\nbot_password = x\n", []string{"line 1 (owner): is the bot account itself"}, nil},
		{"account resource", "owner = me@example.org/phone\nbot = bot@example.org\nbot_password = x\n", []string{`line 1 (owner): "me@example.org/phone" has a /resource; want an address`}, nil},
		{"account no at", "owner = me@example.org\nbot = example.org\nbot_password = x\n", []string{`line 2 (bot): "example.org" is not an XMPP address`}, nil},
		{"not utf-8", "hostname = \xff\xfe\x00x\n", []string{"not a text file"}, nil},
		{"latin-1 line", "wifi_name = Caf\xe9\nhostname = pi\n", []string{"line 1: is not UTF-8 text"}, []string{GroupHostname}},
		{"utf-16", "\xff\xfeh\x00o\x00", []string{`saved as UTF-16`}, nil},
		{"rtf", "{\\rtf1\\ansi hostname = pi}", []string{"rich text (RTF)"}, nil},
		{"too big", strings.Repeat("# x\n", maxSize), []string{"larger than 64 KiB"}, nil},
		{"bad group keeps others", full + "hostname = pi\nwifi_country = XX\n", []string{"line 5 (wifi_country): is given twice"}, []string{GroupHostname}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := Parse([]byte(tt.in))
			var got []string
			for _, p := range f.Problems {
				got = append(got, p.String())
			}
			if len(got) != len(tt.want) {
				t.Fatalf("problems:\ngot  %q\nwant %q", got, tt.want)
			}
			for i := range got {
				if !strings.Contains(got[i], tt.want[i]) {
					t.Errorf("problem %d:\ngot  %q\nwant it to contain %q", i, got[i], tt.want[i])
				}
			}
			for _, g := range []string{GroupWiFi, GroupHostname, GroupSSH, GroupAccount, GroupSetup} {
				want := false
				for _, o := range tt.ok {
					want = want || o == g
				}
				if f.okGroups[g] != want {
					t.Errorf("group %s applicable = %v, want %v", g, f.okGroups[g], want)
				}
			}
			// A problem never repeats a secret.
			for _, p := range got {
				for _, secret := range []string{"hunter22", "12345678"} {
					if strings.Contains(p, secret) {
						t.Errorf("problem %q shows the secret %q", p, secret)
					}
				}
			}
		})
	}
}

// TestScrubbed checks the text written back, against golden files: applied
// lines become comments, secrets go, problems are annotated above their
// line, and annotations from an earlier pass are replaced.
func TestScrubbed(t *testing.T) {
	ins, err := filepath.Glob("testdata/scrub/*.in.txt")
	if err != nil || len(ins) == 0 {
		t.Fatalf("no testdata: %v", err)
	}
	for _, in := range ins {
		name := strings.TrimSuffix(filepath.Base(in), ".in.txt")
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			f := Parse(data)
			for _, g := range []string{GroupWiFi, GroupHostname, GroupSSH, GroupAccount, GroupSetup} {
				f.Applied(g)
			}
			out, _, ok := f.Scrubbed()
			if !ok {
				t.Fatal("not rewritable")
			}
			golden := strings.TrimSuffix(in, ".in.txt") + ".out.txt"
			if *update {
				if err := os.WriteFile(golden, out, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out, want) {
				t.Errorf("scrubbed %s:\n%s\nwant:\n%s", name, out, want)
			}
			// Applying the written-back file again changes nothing.
			g := Parse(out)
			for _, grp := range []string{GroupWiFi, GroupHostname, GroupSSH, GroupAccount, GroupSetup} {
				g.Applied(grp)
			}
			again, changed, _ := g.Scrubbed()
			if changed || !bytes.Equal(again, out) {
				t.Errorf("second pass changed the file:\n%s", again)
			}
		})
	}
}

func TestScrubbedKeepsLineEnds(t *testing.T) {
	for _, in := range []string{
		"hostname = pi",                  // no final line end
		"hostname = pi\n",                // LF
		"# x\r\nhostname = pi\r\n",       // CRLF
		"\xef\xbb\xbfhostname = pi\r\n",  // BOM
		"\xef\xbb\xbf# x\r\n# y\r\n\r\n", // nothing to apply
	} {
		f := Parse([]byte(in))
		out, changed, _ := f.Scrubbed()
		if changed || string(out) != in {
			t.Errorf("unapplied %q: got %q (changed %v)", in, out, changed)
		}
		f.Applied(GroupHostname)
		out, _, _ = f.Scrubbed()
		want := strings.ReplaceAll(in, "hostname = pi", "# applied: hostname = pi")
		if string(out) != want {
			t.Errorf("applied %q:\ngot  %q\nwant %q", in, out, want)
		}
	}
}

func TestScrubbedNotText(t *testing.T) {
	f := Parse([]byte("\xff\xfeh\x00"))
	if _, _, ok := f.Scrubbed(); ok {
		t.Error("a UTF-16 file would be rewritten")
	}
}
