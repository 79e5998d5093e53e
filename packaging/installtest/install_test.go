//go:build installtest

// Package installtest installs, runs, upgrades and purges the waxmpp
// packages on a real booted systemd: a Debian bookworm rootfs (mmdebstrap)
// booted with systemd-nspawn, installing from a signed apt repository, the
// bot logging into a real Prosody. packaging/installtest/run.sh (make
// test-install) builds the packages, repositories and rootfs and runs this
// test inside a network namespace of its own that has only loopback: the
// container shares it, Prosody listens on its 127.0.0.1, and nothing
// (WhatsApp included) can reach anything else.
package installtest

import (
	"bytes"
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	waAdv "go.mau.fi/whatsmeow/proto/waAdv"
	"go.mau.fi/whatsmeow/types"

	"waxmpp/bridge/prosodytest"
	"waxmpp/bridge/store"
)

var (
	rootfsFlag = flag.String("rootfs", "", "the booted system's root: an extracted bookworm rootfs, used up by the test")
	repo1Flag  = flag.String("repo1", "", "the signed repository with the version to install")
	repo2Flag  = flag.String("repo2", "", "the signed repository with that version and a newer one")
	aptPath    = flag.String("apt-path", "/srv/apt/waxmpp", "where the packages' APT_URL (file:PATH) points inside the machine")
	watchdog   = flag.Duration("watchdog", 60*time.Second, "the unit's WatchdogSec")
)

// machine is the booted container.
type machine struct {
	t      *testing.T
	root   string
	leader int // the container's PID 1, as seen from here
	cmd    *exec.Cmd
	log    *os.File
}

// boot starts systemd in root and waits until it is up.
func boot(t *testing.T, root, serve string) *machine {
	t.Helper()
	logf, err := os.Create(filepath.Join(t.TempDir(), "nspawn.log"))
	if err != nil {
		t.Fatal(err)
	}
	m := &machine{t: t, root: root, log: logf}
	// --register=no --keep-unit: this host has no systemd (and no system
	// bus) for nspawn to register with. The network is the test's own
	// namespace (loopback only), shared.
	m.cmd = exec.Command("systemd-nspawn", "--boot", "--register=no", "--keep-unit",
		"--quiet", "--console=passive", "-D", root,
		"--bind-ro="+serve+":"+*aptPath)
	m.cmd.Stdout, m.cmd.Stderr = logf, logf
	if err := m.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		m.cmd.Process.Signal(os.Interrupt) // nspawn: SIGINT asks the container to power off
		done := make(chan struct{})
		go func() { m.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			m.cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("nspawn log:\n%s", b)
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for m.leader == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the container's systemd did not start")
		}
		time.Sleep(100 * time.Millisecond)
		// nspawn's first child sets up and forks the container's PID 1,
		// systemd: wait for that one.
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", m.cmd.Process.Pid, m.cmd.Process.Pid))
		for _, f := range bytes.Fields(b) {
			comm, _ := os.ReadFile("/proc/" + string(f) + "/comm")
			if strings.TrimSpace(string(comm)) == "systemd" {
				m.leader, _ = strconv.Atoi(string(f))
			}
		}
	}
	for {
		out, _ := m.sh("systemctl is-system-running")
		if s := strings.TrimSpace(out); s == "running" || s == "degraded" {
			if s == "degraded" {
				failed, _ := m.sh("systemctl --failed --no-legend")
				t.Logf("the machine booted degraded: %s", failed)
			}
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("the machine did not finish booting: %q", out)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// sh runs a shell script inside the machine (all its namespaces) and
// returns its combined output.
func (m *machine) sh(script string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "nsenter", "-t", strconv.Itoa(m.leader), "-a",
		"/usr/bin/env", "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8",
		"DEBIAN_FRONTEND=noninteractive", "/bin/sh", "-c", script)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// must runs script and fails the test if it fails.
func (m *machine) must(script string) string {
	m.t.Helper()
	out, err := m.sh(script)
	if err != nil {
		m.t.Fatalf("%s: %v\n%s", script, err, out)
	}
	return out
}

// show reads a property of waxmpp.service.
func (m *machine) show(prop string) string {
	m.t.Helper()
	return strings.TrimSpace(m.must("systemctl show -p " + prop + " --value waxmpp.service"))
}

// waitUnit waits until cond holds for the unit's properties.
func (m *machine) waitUnit(what string, timeout time.Duration, cond func() bool) time.Duration {
	m.t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > timeout {
			status, _ := m.sh("systemctl status --no-pager -l waxmpp; journalctl -b -u waxmpp --no-pager | tail -40")
			m.t.Fatalf("%s: not within %v\n%s", what, timeout, status)
		}
		time.Sleep(250 * time.Millisecond)
	}
	return time.Since(start)
}

// serve makes dir the repository the machine sees at aptPath.
func serve(t *testing.T, serveDir, dir string) {
	t.Helper()
	if out, err := exec.Command("sh", "-c", `rm -rf "$1"/* && cp -a "$2"/. "$1"/`, "sh", serveDir, dir).CombinedOutput(); err != nil {
		t.Fatalf("serve %s: %v\n%s", dir, err, out)
	}
}

// tampered copies repo into a temp dir and applies edit there.
func tampered(t *testing.T, repo string, edit func(dir string)) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("cp", "-a", repo+"/.", dir).CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	edit(dir)
	return dir
}

func step(t *testing.T, name string, f func(t *testing.T)) {
	start := time.Now()
	ok := t.Run(name, f)
	t.Logf("TIMING %-28s %6.1fs", name, time.Since(start).Seconds())
	if !ok {
		t.FailNow()
	}
}

func TestInstall(t *testing.T) {
	for _, f := range []*string{rootfsFlag, repo1Flag, repo2Flag} {
		if *f == "" {
			t.Fatal("run.sh gives -rootfs, -repo1 and -repo2 (make test-install)")
		}
	}
	begin := time.Now()
	xmpp := prosodytest.Start(t, prosodytest.Options{})
	serveDir := t.TempDir()
	serve(t, serveDir, *repo1Flag)

	start := time.Now()
	m := boot(t, *rootfsFlag, serveDir) // on t: the machine lives as long as the whole test
	// Only our repository: the machine has no other network anyway.
	m.must("rm -f /etc/apt/sources.list /etc/apt/sources.list.d/*")
	t.Logf("TIMING %-28s %6.1fs", "boot", time.Since(start).Seconds())

	step(t, "signature", func(t *testing.T) {
		m.t = t
		// What the README tells a new machine: the keyring and the source.
		m.must("cp " + *aptPath + "/waxmpp-archive-keyring.gpg /usr/share/keyrings/ && cp " + *aptPath + "/waxmpp.sources /etc/apt/sources.list.d/")

		// A Release changed after signing is refused.
		bad := tampered(t, *repo1Flag, func(dir string) {
			for _, f := range []string{"InRelease", "Release"} {
				p := filepath.Join(dir, "dists/stable", f)
				b, err := os.ReadFile(p)
				if err != nil {
					t.Fatal(err)
				}
				os.WriteFile(p, bytes.Replace(b, []byte("Label: waxmpp"), []byte("Label: evilpp"), 1), 0o644)
			}
		})
		serve(t, serveDir, bad)
		out, err := m.sh("apt-get update")
		if err == nil || !strings.Contains(out, "signature") {
			t.Errorf("apt-get update of a tampered Release: %v, want refused for its signature:\n%s", err, out)
		}
		if out, _ := m.sh("apt-cache policy waxmpp"); strings.Contains(out, "Candidate: 0") || strings.Contains(out, "Candidate: 1") {
			t.Errorf("a tampered repository offers waxmpp:\n%s", out)
		}

		// A package changed after signing is refused.
		bad = tampered(t, *repo1Flag, func(dir string) {
			debs, _ := filepath.Glob(filepath.Join(dir, "pool/main/w/waxmpp/*_amd64.deb"))
			if len(debs) != 1 {
				t.Fatalf("want one amd64 package in the repository, have %q", debs)
			}
			b, err := os.ReadFile(debs[0])
			if err != nil {
				t.Fatal(err)
			}
			b[len(b)/2] ^= 0xff
			os.WriteFile(debs[0], b, 0o644)
		})
		serve(t, serveDir, bad)
		m.must("apt-get update")
		out, err = m.sh("apt-get install -y waxmpp")
		if err == nil || !(strings.Contains(out, "Hash Sum mismatch") || strings.Contains(out, "File has unexpected size")) {
			t.Errorf("apt-get install of a tampered package: %v, want a hash mismatch:\n%s", err, out)
		}
		if _, err := m.sh("dpkg -s waxmpp"); err == nil {
			t.Errorf("the tampered package got installed")
		}
		serve(t, serveDir, *repo1Flag)
		m.must("apt-get update")
	})

	var v1 string
	step(t, "install without config", func(t *testing.T) {
		m.t = t
		out := m.must("apt-get install -y waxmpp")
		if !strings.Contains(out, "Next step: sudo waxmpp setup") {
			t.Errorf("apt-get install says no next step:\n%s", out)
		}
		v1 = strings.TrimSpace(m.must("dpkg-query -W -f '${Version}' waxmpp"))
		// The recommended waxmpp-apt-source took over the two files the
		// README had put there by hand.
		if own := m.must("dpkg -S /etc/apt/sources.list.d/waxmpp.sources /usr/share/keyrings/waxmpp-archive-keyring.gpg"); strings.Count(own, "waxmpp-apt-source:") != 2 {
			t.Errorf("the apt source is not waxmpp-apt-source's:\n%s", own)
		}
		if s := strings.TrimSpace(m.must("systemctl is-enabled waxmpp")); s != "enabled" {
			t.Errorf("is-enabled %q, want enabled", s)
		}
		if s := m.show("ActiveState"); s != "inactive" {
			t.Errorf("ActiveState %q without a config, want inactive (not started)", s)
		}
		if pw := m.must("getent passwd waxmpp"); !strings.Contains(pw, ":/var/lib/waxmpp:/usr/sbin/nologin") {
			t.Errorf("system user: %q", pw)
		}
		if s := strings.TrimSpace(m.must("stat -c '%U:%G %a' /etc/waxmpp")); s != "root:waxmpp 750" {
			t.Errorf("/etc/waxmpp is %s, want root:waxmpp 750", s)
		}
		// Started anyway: exit 78, not restarted, and the reason shown.
		m.sh("systemctl start waxmpp")
		time.Sleep(7 * time.Second) // longer than RestartSec
		if s := m.show("ExecMainStatus"); s != "78" {
			t.Errorf("ExecMainStatus %q without a config, want 78", s)
		}
		if s := m.show("NRestarts"); s != "0" {
			t.Errorf("NRestarts %q: exit 78 was restarted", s)
		}
		if st := m.must("systemctl status --no-pager waxmpp || true"); !strings.Contains(st, "not configured: run sudo waxmpp setup") {
			t.Errorf("systemctl status does not say what to do:\n%s", st)
		}
		m.must("systemctl reset-failed waxmpp")
	})

	ca, err := os.ReadFile(xmpp.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	config := fmt.Sprintf(`[xmpp]
jid = %q
owner = %q
server = %q
ca_file = "test-ca.pem"
ping_interval = "5s"
ping_timeout = "3s"
`, xmpp.JID("bot"), xmpp.JID("owner"), xmpp.Addr())
	writeFile := func(path, mode, owner, content string) {
		m.t.Helper()
		tmp := filepath.Join(m.root, "root", "waxmpp-test-file") // the machine's /tmp is a tmpfs of its own
		if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
			m.t.Fatal(err)
		}
		m.must(fmt.Sprintf("install -D -m %s -o %s -g %s /root/waxmpp-test-file %s && rm /root/waxmpp-test-file",
			mode, strings.Split(owner, ":")[0], strings.Split(owner, ":")[1], path))
	}

	owner := xmpp.Dial(t, "owner")
	var mainPID string
	step(t, "configured: ready", func(t *testing.T) {
		m.t = t
		// What sudo waxmpp setup writes: the config and the credential.
		writeFile("/etc/waxmpp/test-ca.pem", "0640", "root:waxmpp", string(ca))
		writeFile("/etc/waxmpp/config.toml", "0640", "root:waxmpp", config)
		writeFile("/etc/credstore/waxmpp.password", "0600", "root:root", prosodytest.Password("bot")+"\n")
		m.must("chmod 0700 /etc/credstore")
		// Type=notify: start returns once READY=1 came.
		m.must("systemctl start waxmpp")
		if s := m.show("ActiveState") + "/" + m.show("SubState"); s != "active/running" {
			t.Fatalf("after start: %s", s)
		}
		sub := owner.Next(t, 30*time.Second, func(e *prosodytest.Elem) bool {
			return e.XMLName.Local == "presence" && e.Attr("type") == "subscribe"
		})
		if from := sub.Attr("from"); !strings.HasPrefix(from, xmpp.JID("bot")) {
			t.Errorf("subscription request from %q, want the bot", from)
		}
		owner.Send(fmt.Sprintf("<presence to='%s' type='subscribed'/>", xmpp.JID("bot")))
		m.waitUnit("STATUS= tells XMPP connected", 30*time.Second, func() bool {
			return strings.Contains(m.show("StatusText"), "XMPP connected")
		})
		t.Logf("STATUS=%s", m.show("StatusText"))
		mainPID = m.show("MainPID")
		if u := strings.TrimSpace(m.must("ps -o user= -p " + mainPID)); u != "waxmpp" {
			t.Errorf("runs as %q, want waxmpp", u)
		}
		// The journal: no time of the bridge's own on its lines, and
		// priorities from the levels (the config error of the start
		// without a config was an error, "started" info).
		lines := m.must("journalctl -b -u waxmpp -o cat --no-pager _PID=" + mainPID)
		if !strings.Contains(lines, "msg=started") || strings.Contains(lines, "time=") {
			t.Errorf("journal lines of the bridge, want msg=started and no time=:\n%s", lines)
		}
		if errs := m.must("journalctl -b -u waxmpp -o cat --no-pager -p err"); !strings.Contains(errs, "waxmpp is not configured") || strings.Contains(errs, "msg=started") {
			t.Errorf("journal at priority err:\n%s", errs)
		}
	})

	step(t, "sandbox", func(t *testing.T) {
		m.t = t
		st := m.must("cat /proc/" + mainPID + "/status")
		for _, want := range []string{"NoNewPrivs:\t1", "CapEff:\t0000000000000000", "CapBnd:\t0000000000000000", "Seccomp:\t2"} {
			if !strings.Contains(st, want) {
				t.Errorf("/proc/PID/status lacks %q", want)
			}
		}
		if out, err := m.sh("nsenter -t " + mainPID + " -m ls /root/ /home/ 2>&1; nsenter -t " + mainPID + " -m touch /usr/waxmpp-probe"); err == nil {
			t.Errorf("the service's mount namespace lets it see /root or write /usr:\n%s", out)
		}
		out := m.must("systemd-analyze security --no-pager waxmpp.service")
		exp := regexp.MustCompile(`Overall exposure level for waxmpp.service: ([0-9.]+)`).FindStringSubmatch(out)
		if exp == nil {
			t.Fatalf("systemd-analyze security:\n%s", out)
		}
		t.Logf("EXPOSURE running system: %s", exp[1])
		if v, _ := strconv.ParseFloat(exp[1], 64); v > 1.2 {
			t.Errorf("exposure %s on the running system, want <= 1.2:\n%s", exp[1], out)
		}
	})

	step(t, "idle writes nothing", func(t *testing.T) {
		m.t = t
		// With a ping every 5 s, 20 s of idling: no write to the state file.
		// First the bridge settles: the owner's client (this test's, which
		// answers no disco query, unlike a real one) is known only when the
		// bot's question times out (20 s), and what the core decides from
		// it (plain rendering or not) is saved once. Settled means nothing
		// written for longer than that timeout.
		probe := "stat -c '%Y %s' /var/lib/waxmpp/waxmpp.db; grep ^write_bytes /proc/" + mainPID + "/io"
		t0 := time.Now()
		last, since := m.must(probe), time.Now()
		for time.Since(since) < 25*time.Second {
			if time.Since(t0) > 2*time.Minute {
				t.Fatalf("the bridge kept writing for 2 minutes after it started")
			}
			time.Sleep(time.Second)
			if p := m.must(probe); p != last {
				last, since = p, time.Now()
			}
		}
		t.Logf("settled after %v", time.Since(t0).Round(time.Second))
		before := m.must(probe)
		time.Sleep(20 * time.Second)
		if after := m.must(probe); after != before {
			t.Errorf("idle for 20s, the bridge wrote: before %q, after %q", before, after)
		}
	})

	// askStatus sends /status while the bot is down; the answer proves the
	// message was not lost.
	sendWhileDown := func(t *testing.T, id string) {
		owner.Send(fmt.Sprintf("<message to='%s' type='chat' id='%s'><body>/status</body></message>", xmpp.JID("bot"), id))
	}
	expectAnswer := func(t *testing.T, timeout time.Duration) {
		t.Helper()
		e := owner.Next(t, timeout, func(e *prosodytest.Elem) bool {
			// The answer to /status: "waxmpp VERSION\nWhatsApp: …\nXMPP: …".
			return prosodytest.Messages(e) && strings.HasPrefix(e.Body(), "waxmpp ") && strings.Contains(e.Body(), "\nXMPP: ")
		})
		t.Logf("answer after the restart: %q", firstLine(e.Body()))
	}

	step(t, "kill -9", func(t *testing.T) {
		m.t = t
		m.must("kill -9 " + mainPID)
		sendWhileDown(t, "while-killed")
		d := m.waitUnit("restarted after kill -9", 30*time.Second, func() bool {
			p := m.show("MainPID")
			return p != "0" && p != mainPID && m.show("ActiveState") == "active"
		})
		t.Logf("restarted %.1fs after kill -9", d.Seconds())
		mainPID = m.show("MainPID")
		if n := m.show("NRestarts"); n != "1" {
			t.Errorf("NRestarts %s, want 1", n)
		}
		expectAnswer(t, 30*time.Second)
	})

	step(t, "SIGSTOP: watchdog", func(t *testing.T) {
		m.t = t
		m.must("kill -STOP " + mainPID)
		sendWhileDown(t, "while-stopped")
		d := m.waitUnit("restarted by the watchdog", *watchdog+30*time.Second, func() bool {
			p := m.show("MainPID")
			return p != "0" && p != mainPID && m.show("ActiveState") == "active"
		})
		t.Logf("WATCHDOG restarted %.1fs after SIGSTOP (WatchdogSec %v, RestartSec 5s)", d.Seconds(), *watchdog)
		if d > *watchdog+15*time.Second {
			t.Errorf("restarted %v after SIGSTOP, want within WatchdogSec (%v) plus the restart", d, *watchdog)
		}
		if j := m.must("journalctl -b -u waxmpp --no-pager"); !strings.Contains(j, "Watchdog timeout") {
			t.Errorf("the journal does not tell the watchdog killed it")
		}
		mainPID = m.show("MainPID")
		expectAnswer(t, 30*time.Second)
	})

	step(t, "wrong password", func(t *testing.T) {
		m.t = t
		writeFile("/etc/credstore/waxmpp.password", "0600", "root:root", "not-the-password\n")
		m.sh("systemctl restart waxmpp")
		restarts := m.show("NRestarts") // a restart by hand starts the count again
		m.waitUnit("exit 78 on a refused password", 30*time.Second, func() bool {
			return m.show("ActiveState") == "failed"
		})
		time.Sleep(7 * time.Second)
		if s := m.show("ExecMainStatus"); s != "78" {
			t.Errorf("ExecMainStatus %s, want 78", s)
		}
		if s := m.show("NRestarts"); s != restarts {
			t.Errorf("NRestarts %s after the refusal (was %s): restarted", s, restarts)
		}
		if st := m.must("systemctl status --no-pager -l waxmpp || true"); !strings.Contains(st, "refused the bot's password") {
			t.Errorf("systemctl status does not say the password was refused:\n%s", st)
		}
		writeFile("/etc/credstore/waxmpp.password", "0600", "root:root", prosodytest.Password("bot")+"\n")
		m.must("systemctl reset-failed waxmpp; systemctl start waxmpp")
	})

	dbPath := filepath.Join(m.root, "var/lib/waxmpp/waxmpp.db")
	var kept map[string]string
	step(t, "upgrade", func(t *testing.T) {
		m.t = t
		// A linked device, a chat and a queue in the state file.
		m.must("systemctl stop waxmpp")
		kept = prepareState(t, dbPath)
		m.must("systemctl start waxmpp")
		oldPID := m.show("MainPID")

		serve(t, serveDir, *repo2Flag)
		out := m.must("apt-get update && apt-get upgrade -y")
		v2 := strings.TrimSpace(m.must("dpkg-query -W -f '${Version}' waxmpp"))
		if v2 == v1 {
			t.Fatalf("apt-get upgrade kept %s:\n%s", v1, out)
		}
		m.waitUnit("running after the upgrade", 30*time.Second, func() bool {
			return m.show("ActiveState") == "active" && m.show("MainPID") != oldPID
		})
		if v := m.must("waxmpp version"); !strings.Contains(v, v2) {
			t.Errorf("waxmpp version %q after the upgrade to %s", v, v2)
		}
		m.waitUnit("XMPP connected after the upgrade", 30*time.Second, func() bool {
			return strings.Contains(m.show("StatusText"), "XMPP connected")
		})
		// The newer version answers.
		sendWhileDown(t, "after-upgrade")
		expectAnswer(t, 30*time.Second)
		m.must("systemctl stop waxmpp")
		checkState(t, dbPath, kept)
		m.must("systemctl start waxmpp")
		t.Logf("upgraded %s → %s", v1, v2)
	})

	step(t, "remove keeps config and state", func(t *testing.T) {
		m.t = t
		m.must("apt-get remove -y waxmpp")
		if s := m.show("ActiveState"); s == "active" {
			t.Errorf("still running after remove")
		}
		m.must("test -s /etc/waxmpp/config.toml && test -s /var/lib/waxmpp/waxmpp.db && getent passwd waxmpp")
	})

	step(t, "purge", func(t *testing.T) {
		m.t = t
		out := m.must("apt-get purge -y --autoremove waxmpp")
		if !strings.Contains(out, "Linked devices") {
			t.Errorf("purge does not say to unlink the device on the phone:\n%s", out)
		}
		if out, err := m.sh("getent passwd waxmpp || getent group waxmpp"); err == nil {
			t.Errorf("the user is still there: %s", out)
		}
		// No file of ours anywhere but the repository itself and apt's
		// cache of its lists.
		left := m.must(`find / -xdev \( -path /proc -o -path ` + *aptPath + ` -o -path /var/lib/apt/lists -o -path /var/cache/apt \) -prune -o -iname '*waxmpp*' -print`)
		left += m.must("ls -d /etc/waxmpp /var/lib/waxmpp /etc/credstore/waxmpp.password 2>/dev/null || true")
		if strings.TrimSpace(left) != "" {
			t.Errorf("purge left:\n%s", left)
		}
	})
	t.Logf("TIMING %-28s %6.1fs", "total (without builds)", time.Since(begin).Seconds())
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

// prepareState puts a linked device, a chat and a queue of three items into
// the (stopped) bridge's state file, and returns what must survive: the raw
// records, by bucket path and key.
func prepareState(t *testing.T, path string) map[string]string {
	t.Helper()
	db, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	dev := db.Devices(nil).NewDevice()
	jid := types.NewADJID("491700000001", 0, 7)
	dev.ID = &jid
	dev.PushName = "Install test"
	// A paired device's account signature (the bytes' values do not
	// matter here: nothing reaches WhatsApp).
	dev.Account = &waAdv.ADVSignedDeviceIdentity{
		Details: []byte("details"), AccountSignature: make([]byte, 64),
		AccountSignatureKey: make([]byte, 32), DeviceSignature: make([]byte, 64),
	}
	if err := dev.Save(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := db.PutChat(store.Chat{ID: "491111@s.whatsapp.net", Kind: store.KindDirect, Name: "Alice"}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Queue("installtest").Enqueue([]byte("one"), []byte("two"), []byte("three")); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	kept := dump(t, path, func(p string) bool {
		return strings.HasPrefix(p, "wa_device/") || strings.HasPrefix(p, "chats/") || strings.HasPrefix(p, "queues/installtest/")
	})
	if len(kept) < 5 {
		t.Fatalf("the prepared state has only %d records: %v", len(kept), kept)
	}
	return kept
}

// checkState checks the upgraded state file: the schema moved on, and the
// records prepareState made are there, unchanged.
func checkState(t *testing.T, path string, kept map[string]string) {
	t.Helper()
	now := dump(t, path, func(string) bool { return true })
	schema, _ := binary.Uvarint([]byte(now["meta/schema"]))
	if int(schema) != store.SchemaVersion+1 {
		t.Errorf("schema %d after the upgrade, want %d (the newer version's)", schema, store.SchemaVersion+1)
	}
	if _, ok := now["upgradetest/"]; !ok {
		t.Errorf("the newer version's migration did not run")
	}
	for k, v := range kept {
		if now[k] != v {
			t.Errorf("after the upgrade %s = %q, want %q", k, now[k], v)
		}
	}
}

// dump reads every record of the bbolt file whose path ("bucket/sub/key")
// keep accepts; an empty bucket appears as "bucket/".
func dump(t *testing.T, path string, keep func(string) bool) map[string]string {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	out := map[string]string{}
	var walk func(prefix string, b *bolt.Bucket) error
	walk = func(prefix string, b *bolt.Bucket) error {
		if keep(prefix) {
			out[prefix] = ""
		}
		return b.ForEach(func(k, v []byte) error {
			if v == nil {
				return walk(prefix+string(k)+"/", b.Bucket(k))
			}
			if p := prefix + string(k); keep(p) {
				out[p] = string(v)
			}
			return nil
		})
	}
	err = db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error { return walk(string(name)+"/", b) })
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
