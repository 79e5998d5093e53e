//go:build simwa

package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestSimStatusChecks: /status shows waxmpp doctor's findings, run by the
// bridge itself; waxmpp doctor, run beside the running bridge, reads its
// state through a snapshot and agrees.
func TestSimStatusChecks(t *testing.T) {
	e := newSimEnv(t, envOptions{})
	deadline := time.Now().Add(60 * time.Second)
	var got string
	for {
		got = e.command("/status")
		if !strings.Contains(got, "Checks: running") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/status never showed the checks:\n%s", got)
		}
		time.Sleep(2 * time.Second)
	}
	// The config is mode 0600 and names its password inline: fine. The
	// simulated device is not in the state file: WhatsApp "not linked"
	// is a problem the checks report, with what to do.
	if !strings.Contains(got, "Checks (the same as waxmpp doctor):") || !strings.Contains(got, "❌ whatsapp: WhatsApp is not linked.") {
		t.Fatalf("/status:\n%s", got)
	}
	if strings.Contains(got, "login:") || strings.Contains(got, "config:") {
		t.Errorf("/status reports a login or config problem:\n%s", got)
	}

	cmd := exec.Command(simBinary(t), "doctor", "--config", e.conf, "--json")
	out, err := cmd.Output()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("doctor: %v (want exit 1: not linked)\n%s", err, out)
	}
	for _, want := range []string{`"healthy": false`, `"check": "login"`, `"message": "The bot logs in as bot@waxmpp.test/waxmpp-doctor."`, `the state file is intact`} {
		if !strings.Contains(strings.ToLower(string(out)), strings.ToLower(want)) {
			t.Errorf("doctor --json lacks %s:\n%s", want, out)
		}
	}
	if _, err := os.Stat(e.conf); err != nil {
		t.Fatal(err)
	}
}
