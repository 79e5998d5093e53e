package main

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"
)

const help = `usage: waxmpp <command> [flags]

commands:
  run [--config FILE]   run the bridge until SIGINT or SIGTERM
                        (FILE defaults to $WAXMPP_CONFIG)
  pair [--phone +NUMBER]
                        link WhatsApp in this terminal
  help                  print this help

The config is TOML.
`

func TestWrite(t *testing.T) {
	var out bytes.Buffer
	if err := write(&out, help, "1.2-3", "2026-12-01"); err != nil {
		t.Fatal(err)
	}
	page := out.String()
	for _, want := range []string{
		`.TH WAXMPP 1 "2026-12-01" "waxmpp 1.2\-3" "User Commands"`,
		".B waxmpp <command> [flags]\n",
		".SH COMMANDS\n.TP\n\\fBrun\\fR [\\-\\-config \\fIFILE\\fR]\nrun the bridge until SIGINT or SIGTERM (FILE defaults to $WAXMPP_CONFIG)\n",
		".TP\n\\fBpair\\fR [\\-\\-phone +\\fINUMBER\\fR]\nlink WhatsApp in this terminal\n",
		".TP\n\\fBhelp\\fR\nprint this help\n",
		".PP\nThe config is TOML.\n",
		".SH EXIT STATUS",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q:\n%s", want, page)
		}
	}
	// groff's own check, as lintian runs it: no warnings at all.
	groff, err := exec.LookPath("groff")
	if err != nil {
		t.Fatal("groff is not installed (apt-get install groff-base): the page cannot be checked")
	}
	cmd := exec.Command(groff, "-man", "-ww", "-z", "-Tutf8")
	cmd.Stdin = strings.NewReader(page)
	if msg, err := cmd.CombinedOutput(); err != nil || len(msg) > 0 {
		t.Errorf("groff: %v\n%s", err, msg)
	}
}

func TestParseErrors(t *testing.T) {
	for _, bad := range []string{
		"no usage line\ncommands:\n  run  x\n",
		"usage: waxmpp\n\nno sections at all\n",
		"usage: waxmpp\n\ncommands:\nstray line inside a section\n",
	} {
		if _, _, _, err := parse(bad); err == nil {
			t.Errorf("parse(%q) = nil error", bad)
		}
	}
}
