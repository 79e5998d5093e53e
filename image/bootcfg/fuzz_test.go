package bootcfg

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParse: any bytes parse without panicking; what is applied and
// written back is a file that applies nothing again, keeps every line that
// was not applied, and holds none of the applied secrets.
func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/scrub/*.in.txt")
	for _, s := range seeds {
		b, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("\xef\xbb\xbfwifi_name = \"a\"\r\nwifi_password=\"\"\"\"\"\"\"\"\"\"\r\nwifi_country=us"))
	f.Add([]byte("ssh_key = " + testKey + "\nssh_key = " + wrongTypeKey + "\n"))
	f.Add([]byte("# waxmpp: old\nhostname = a\nhostname = b\n="))
	f.Fuzz(func(t *testing.T, data []byte) {
		p := Parse(data)
		for _, pr := range p.Problems {
			if pr.Text == "" {
				t.Errorf("empty problem at line %d", pr.Line)
			}
		}
		for _, g := range []string{GroupWiFi, GroupHostname, GroupSSH, GroupAccount, GroupSetup} {
			p.Applied(g)
		}
		out, _, ok := p.Scrubbed()
		if !ok {
			return
		}
		again := Parse(out)
		if again.Settings.WiFi != nil || again.Settings.Hostname != "" || len(again.Settings.SSHKeys) > 0 || again.Settings.SetupCode != "" || again.Settings.Account != nil {
			t.Fatalf("written back, it applies again: %+v\n%q", again.Settings, out)
		}
		for _, l := range strings.Split(string(out), "\n") {
			rest, applied := strings.CutPrefix(strings.TrimSuffix(l, "\r"), "# applied: ")
			if !applied {
				continue
			}
			k, v, _ := strings.Cut(rest, " = ")
			if keys[k].secret && v != "(removed from this file)" {
				t.Fatalf("applied secret kept: %q", l)
			}
		}
		if bytes.Count(out, []byte("\n")) < bytes.Count(data, []byte("\n"))-bytes.Count(data, []byte("\n"+annotation)) {
			t.Fatalf("lines lost:\n%q\n->\n%q", data, out)
		}
	})
}
