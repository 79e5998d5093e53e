//go:build imagetest

package boottest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"waxmpp/bridge/prosodytest"
)

var (
	imageFlag = flag.String("image", "", "the image to boot: waxmpp-VERSION-arm64.img.xz (with its .sha256 beside it)")
	keepFlag  = flag.String("keep", "", "keep serial logs and disks in this directory")
)

// diskSize is the size of the "SD card" the image is written to: larger
// than the image, so that the first boot grows the root file system.
const diskSize = 3 << 30

// Timeouts for a TCG guest on a shared machine.
const (
	bootTimeout     = 6 * time.Minute
	shutdownTimeout = 2 * time.Minute
)

// guestXMPP is where the guest finds the host's Prosody (guestfwd).
const guestXMPP = "10.0.2.100:5222"

// TestBoot boots the image three times under QEMU and checks what issue
// "The SD image" asks: card A with a filled-in waxmpp.txt (with one
// mistake), rebooted with a setup without the page; card B, a fresh copy
// with a broken waxmpp.txt and no SSH key.
func TestBoot(t *testing.T) {
	if *imageFlag == "" {
		t.Fatal("no image: run make image-test (go test -tags imagetest ./image/boottest -image dist/waxmpp-VERSION-arm64.img.xz)")
	}
	for _, tool := range []string{"qemu-system-aarch64", "xz", "mcopy", "mdir", "debugfs", "socat", "ssh", "ssh-keygen"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is missing (apt-get install qemu-system-arm xz-utils mtools e2fsprogs socat openssh-client)", tool)
		}
	}
	dir := t.TempDir()
	if *keepFlag != "" {
		dir = *keepFlag
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// A raw .img (image/build.sh's intermediate) boots as well, for
	// developing the image; what ships, and what CI tests, is the .img.xz.
	raw := *imageFlag
	if strings.HasSuffix(raw, ".xz") {
		raw = unpack(t, *imageFlag, filepath.Join(dir, "image.raw"))
	}
	img, err := OpenDisk(raw)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(*imageFlag)
	rawSize := img.Root.Offset + img.Root.Size
	t.Logf("image: %s, %.0f MiB compressed, %.0f MiB raw (boot %d MiB, root %d MiB)", filepath.Base(*imageFlag),
		float64(st.Size())/(1<<20), float64(rawSize)/(1<<20), img.Boot.Size>>20, img.Root.Size>>20)

	t.Run("contents", func(t *testing.T) { checkContents(t, img) })
	kernel, initrd, cmdline := bootFiles(t, img, dir)

	prosody := prosodytest.Start(t, prosodytest.Options{})
	caPEM, err := os.ReadFile(prosody.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	sshKey := filepath.Join(dir, "id_ed25519")
	os.Remove(sshKey)
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "boottest", "-f", sshKey).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v %s", err, out)
	}
	pub, err := os.ReadFile(sshKey + ".pub")
	if err != nil {
		t.Fatal(err)
	}

	a := &card{t: t, top: t, name: "a", dir: filepath.Join(dir, "a"), kernel: kernel, initrd: initrd, cmdline: cmdline, prosody: prosody}
	a.copyFrom(raw, caPEM)
	aTxt := fmt.Sprintf("# filled in on a laptop\r\nwifi_name = Home Net\r\nwifi_password = correct horse\r\nwifi_country = de\r\n"+
		"ssh_key = %s\r\nsetup_code = boot-test-code\r\nfavourite_colour = blue\r\n", strings.TrimSpace(string(pub)))
	if err := a.disk.WriteBoot("waxmpp.txt", []byte(aTxt)); err != nil {
		t.Fatal(err)
	}
	b := &card{t: t, top: t, name: "b", dir: filepath.Join(dir, "b"), kernel: kernel, initrd: initrd, cmdline: cmdline, prosody: prosody}
	b.copyFrom(raw, caPEM)
	if err := b.disk.WriteBoot("waxmpp.txt", []byte("wifi_name = Home\nhostname = my_pi\nthis is not a setting\n")); err != nil {
		t.Fatal(err)
	}

	var aID, bID identity
	t.Run("card A first boot", func(t *testing.T) {
		a.t = t
		aID = a.firstBoot(sshKey)
	})
	t.Run("card A setup without the page", func(t *testing.T) {
		a.t = t
		a.pagelessSetup()
	})
	t.Run("card B broken waxmpp.txt", func(t *testing.T) {
		b.t = t
		bID = b.brokenConfig()
	})
	t.Run("identities differ", func(t *testing.T) {
		if aID.machineID == "" || bID.machineID == "" {
			t.Fatalf("missing identities: A %+v, B %+v", aID, bID)
		}
		if aID.machineID == bID.machineID {
			t.Errorf("both cards have machine-id %s", aID.machineID)
		}
		if aID.hostKey == bID.hostKey {
			t.Errorf("both cards have the SSH host key %s", aID.hostKey)
		}
		if aID.setupCode == bID.setupCode {
			t.Errorf("both cards have the setup code %s", aID.setupCode)
		}
	})
}

type identity struct{ machineID, hostKey, setupCode string }

// unpack checks the image against its .sha256 and decompresses it.
func unpack(t *testing.T, xzPath, raw string) string {
	t.Helper()
	sum, err := os.ReadFile(xzPath + ".sha256")
	if err != nil {
		t.Fatalf("checksum file: %v", err)
	}
	f, err := os.Open(xzPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	fields := strings.Fields(string(sum))
	if len(fields) != 2 || fields[0] != hex.EncodeToString(h.Sum(nil)) || fields[1] != filepath.Base(xzPath) {
		t.Fatalf("%s.sha256 = %q does not match the image (sha256 %x)", xzPath, sum, h.Sum(nil))
	}
	out, err := os.Create(raw)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("xz", "-dc", xzPath)
	cmd.Stdout = out
	if err := cmd.Run(); err != nil {
		t.Fatalf("xz -d: %v", err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	return raw
}

// checkContents looks into the image without booting it.
func checkContents(t *testing.T, img *Disk) {
	if !img.Boot.Boot || img.Boot.Type != 0x0c || img.Root.Type != 0x83 {
		t.Errorf("partitions %+v: want a bootable FAT32 (0x0c) then Linux (0x83)", []Partition{img.Boot, img.Root})
	}
	if img.Boot.Offset%(4<<20) != 0 || img.Root.Offset%(4<<20) != 0 {
		t.Errorf("partitions not aligned to 4 MiB (SD erase blocks): %+v", []Partition{img.Boot, img.Root})
	}
	files, err := img.BootFiles()
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, f := range files {
		have[strings.ToLower(f)] = true
	}
	// The Pi's firmware and the device trees of every supported board.
	for _, f := range []string{"bootcode.bin", "start.elf", "start4.elf", "fixup.dat", "fixup4.dat", "config.txt", "cmdline.txt", "waxmpp.txt",
		// Debian's kernel has the upstream device trees (config.txt sets
		// upstream_kernel=1, so the firmware picks these names).
		"bcm2837-rpi-3-b.dtb", "bcm2837-rpi-3-b-plus.dtb", "bcm2837-rpi-3-a-plus.dtb", "bcm2837-rpi-cm3-io3.dtb",
		"bcm2711-rpi-4-b.dtb", "bcm2711-rpi-400.dtb", "bcm2711-rpi-cm4-io.dtb", "bcm2837-rpi-zero-2-w.dtb"} {
		if !have[f] {
			t.Errorf("boot partition lacks %s (has %v)", f, files)
		}
	}
	cfg, err := img.ReadBoot("config.txt")
	if err != nil || !bytes.Contains(cfg, []byte("arm_64bit=1")) {
		t.Errorf("config.txt without arm_64bit=1: %v\n%s", err, cfg)
	}
	// Nothing that must be unique per card.
	if id, err := img.ReadRoot("/etc/machine-id"); err != nil || strings.TrimSpace(string(id)) != "uninitialized" {
		t.Errorf("/etc/machine-id = %q (%v), want uninitialized", id, err)
	}
	for _, p := range []string{"/var/lib/dbus/machine-id", "/var/lib/systemd/random-seed"} {
		if _, err := img.StatRoot(p); err == nil {
			t.Errorf("the image ships %s", p)
		}
	}
	ssh, err := img.ListRoot("/etc/ssh")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range ssh {
		if strings.HasPrefix(f, "ssh_host_") {
			t.Errorf("the image ships the SSH host key %s", f)
		}
	}
	// No private key at all (such as ssl-cert's snakeoil key), in /etc or
	// in any package's state: every card would share it.
	dump := t.TempDir()
	for _, d := range []string{"/etc", "/var/lib"} {
		if err := img.DumpRoot(d, dump); err != nil {
			t.Fatal(err)
		}
	}
	filepath.WalkDir(dump, func(path string, e os.DirEntry, err error) error {
		if err != nil || !e.Type().IsRegular() {
			return nil
		}
		if b, err := os.ReadFile(path); err == nil && bytes.Contains(b, []byte("PRIVATE KEY-----")) {
			t.Errorf("the image ships a private key: %s", strings.TrimPrefix(path, dump))
		}
		return nil
	})
	if _, err := img.StatRoot("/etc/ssh/sshd_not_to_be_run"); err != nil {
		t.Error("SSH is not off in the image")
	}
	// The example config that the config written from waxmpp.txt points to
	// (the image leaves out every other package's documentation).
	if _, err := img.StatRoot("/usr/share/doc/waxmpp/examples/config.toml"); err != nil {
		t.Errorf("the image lacks waxmpp's example config: %v", err)
	}
	// avahi on IPv4 only (image/customize.sh: IPv6 address changes made
	// it rename the Pi NAME-2.local).
	if conf, err := img.ReadRoot("/etc/avahi/avahi-daemon.conf"); err != nil {
		t.Errorf("the image lacks avahi-daemon.conf: %v", err)
	} else {
		for _, line := range []string{"use-ipv6=no", "publish-aaaa-on-ipv4=no"} {
			if !bytes.Contains(conf, []byte("\n"+line+"\n")) {
				t.Errorf("avahi-daemon.conf does not say %s", line)
			}
		}
	}
	// No password anywhere: root's is locked, no other account has one.
	shadow, err := img.ReadRoot("/etc/shadow")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(strings.TrimSpace(string(shadow)), "\n") {
		f := strings.Split(l, ":")
		if len(f) > 1 && f[1] != "*" && f[1] != "!" && f[1] != "!*" {
			t.Errorf("account %s has a password in /etc/shadow (%q)", f[0], f[1][:min(len(f[1]), 3)])
		}
	}
}

// bootFiles takes the image's own kernel and initrd from its boot
// partition, and its kernel command line with the console on QEMU's serial
// port (the last console= is /dev/console).
func bootFiles(t *testing.T, img *Disk, dir string) (kernel, initrd, cmdline string) {
	t.Helper()
	files, err := img.BootFiles()
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := img.ReadBoot("config.txt")
	if err != nil {
		t.Fatal(err)
	}
	// The firmware loads kernel= and initramfs (config.txt), so do we.
	kname := configValue(string(cfg), "kernel")
	iname := strings.Fields(configValue(string(cfg), "initramfs") + " ")[0]
	if kname == "" || iname == "" {
		t.Fatalf("config.txt names no kernel/initramfs (files %v):\n%s", files, cfg)
	}
	for _, f := range []struct{ name, dst string }{{kname, "vmlinuz"}, {iname, "initrd.img"}} {
		data, err := img.ReadBoot(f.name)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f.dst), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	line, err := img.ReadBoot("cmdline.txt")
	if err != nil {
		t.Fatal(err)
	}
	args := strings.Fields(string(line))
	if !slicesContains(args, "root=LABEL=waxmpp-root") {
		t.Errorf("cmdline.txt %q: root is not LABEL=waxmpp-root", line)
	}
	return filepath.Join(dir, "vmlinuz"), filepath.Join(dir, "initrd.img"), strings.Join(args, " ") + " console=ttyAMA0"
}

func configValue(cfg, key string) string {
	for _, l := range strings.Split(cfg, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(l), "="); ok && k == key {
			return strings.TrimSpace(v)
		}
	}
	for _, l := range strings.Split(cfg, "\n") {
		// "initramfs initrd.img-6.1 followkernel" is the other syntax.
		if f := strings.Fields(l); len(f) >= 2 && f[0] == key {
			return strings.Join(f[1:], " ")
		}
	}
	return ""
}

func slicesContains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// card is one SD card with the image written to it.
type card struct {
	t       *testing.T // the current subtest
	top     *testing.T // owns the VM: it outlives subtests (A reboots)
	name    string
	dir     string
	disk    *Disk
	kernel  string
	initrd  string
	cmdline string
	prosody *prosodytest.Server
	ports   map[string]int
	vm      *VM
	ssh     SSH
}

// copyFrom writes the image to a new card of diskSize and makes the test
// Prosody reachable under its domain from the guest: a hosts entry and its
// CA among the system's roots, as for a self-hosted server with its own CA.
func (c *card) copyFrom(raw string, caPEM []byte) {
	t := c.t
	if err := os.MkdirAll(c.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(c.dir, "sd.img")
	if out, err := exec.Command("cp", "--sparse=always", raw, path).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	if err := os.Truncate(path, diskSize); err != nil {
		t.Fatal(err)
	}
	d, err := OpenDisk(path)
	if err != nil {
		t.Fatal(err)
	}
	c.disk = d
	hosts, err := d.ReadRoot("/etc/hosts")
	if err != nil {
		t.Fatal(err)
	}
	hosts = append(hosts, fmt.Sprintf("%s\t%s\n", strings.Split(guestXMPP, ":")[0], prosodytest.Domain)...)
	if err := d.WriteRoot("/etc/hosts", hosts, 0o644); err != nil {
		t.Fatal(err)
	}
	roots, err := d.ReadRoot("/etc/ssl/certs/ca-certificates.crt")
	if err != nil {
		t.Fatal(err)
	}
	if err := d.WriteRoot("/etc/ssl/certs/ca-certificates.crt", append(roots, caPEM...), 0o644); err != nil {
		t.Fatal(err)
	}
}

func (c *card) boot() {
	t := c.t
	ports, err := FreePorts(2)
	if err != nil {
		t.Fatal(err)
	}
	c.ports = map[string]int{"ssh": ports[0], "http": ports[1]}
	vm, err := StartVM(VMConfig{
		Disk: c.disk.Path, Kernel: c.kernel, Initrd: c.initrd, Cmdline: c.cmdline, Dir: c.dir,
		HostFwd:  map[int]int{22: ports[0], 80: ports[1]},
		GuestFwd: map[string]string{guestXMPP: c.prosody.Addr()},
	})
	if err != nil {
		t.Fatal(err)
	}
	c.vm = vm
	c.top.Cleanup(func() {
		vm.Kill()
		if c.top.Failed() {
			c.top.Logf("card %s serial console (last 6000 bytes):\n%s", c.name, tail(vm.Serial(), 6000))
		}
	})
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// guest runs a command in the guest and fails the test if it fails.
func (c *card) guest(command string) string {
	c.t.Helper()
	out, err := c.ssh.Run(command)
	if err != nil {
		c.t.Fatalf("%v\n%s", err, out)
	}
	return out
}

// firstBoot: card A, a filled-in waxmpp.txt with one unknown setting.
func (c *card) firstBoot(sshKey string) identity {
	t := c.t
	c.boot()
	c.ssh = SSH{Port: c.ports["ssh"], Key: sshKey, KnownHosts: filepath.Join(c.dir, "known_hosts")}
	os.Remove(c.ssh.KnownHosts)
	if err := c.ssh.WaitSSH(c.vm, bootTimeout); err != nil {
		t.Fatal(err)
	}
	t.Logf("card A: SSH login %.0f s after QEMU started", time.Since(c.vm.Started()).Seconds())
	state := strings.TrimSpace(c.ssh.runIgnore("systemctl is-system-running --wait"))
	if state != "running" {
		t.Errorf("system state %q; failed units:\n%s", state, c.ssh.runIgnore("systemctl --failed --no-legend"))
	}
	if out := strings.TrimSpace(c.guest("systemctl is-active multi-user.target")); out != "active" {
		t.Errorf("multi-user.target %s", out)
	}
	t.Logf("card A: %s", strings.TrimSpace(c.guest("systemd-analyze time")))
	t.Logf("card A: blame:\n%s", c.guest("systemd-analyze blame | head -8"))

	// The root file system fills the card.
	sizes := strings.Fields(c.guest("echo $(cat /sys/block/vda/size) $(cat /sys/block/vda/vda2/start) $(cat /sys/block/vda/vda2/size) $(stat -f -c '%b %S' /)"))
	n := atoi(t, sizes)
	diskEnd, partEnd := n[0]*512, (n[1]+n[2])*512
	fsBytes := n[3] * n[4]
	if diskEnd != diskSize || diskEnd-partEnd > 1<<20 {
		t.Errorf("root partition ends at %d, disk is %d bytes: not grown", partEnd, diskEnd)
	}
	if float64(fsBytes) < 0.9*float64(n[2]*512) {
		t.Errorf("root file system has %d bytes of %d in its partition: not grown", fsBytes, n[2]*512)
	}

	// waxmpp.txt applied.
	if h := strings.TrimSpace(c.guest("hostname")); h != "waxmpp" {
		t.Errorf("hostname %q, want the default waxmpp", h)
	}
	wifi := c.guest("cat /etc/wpa_supplicant/wpa_supplicant-wlan0.conf; stat -c %a /etc/wpa_supplicant/wpa_supplicant-wlan0.conf")
	for _, want := range []string{"country=DE", "ssid=" + hex.EncodeToString([]byte("Home Net")), "psk=", "\n600\n"} {
		if !strings.Contains(wifi, want) {
			t.Errorf("Wi-Fi profile lacks %q:\n%s", want, wifi)
		}
	}
	if out := strings.TrimSpace(c.guest("systemctl is-active ssh.service")); out != "active" {
		t.Errorf("ssh.service %s", out)
	}
	if out := c.guest("cat /root/.ssh/authorized_keys"); !strings.Contains(out, "boottest") {
		t.Errorf("authorized_keys:\n%s", out)
	}
	txt := c.guest("cat /boot/firmware/waxmpp.txt")
	for _, secret := range []string{"correct horse", "boot-test-code"} {
		if strings.Contains(txt, secret) {
			t.Errorf("waxmpp.txt still holds %q:\n%s", secret, txt)
		}
	}
	if !strings.Contains(txt, "# applied: wifi_name = Home Net\r\n") || !strings.Contains(txt, "favourite_colour = blue") {
		t.Errorf("waxmpp.txt after boot:\n%s", txt)
	}
	// The mistake: console, journal, file beside waxmpp.txt.
	mistake := `"favourite_colour" is not a setting waxmpp knows`
	if !strings.Contains(c.vm.Serial(), mistake) {
		t.Errorf("the console does not show the mistake %q", mistake)
	}
	if out := c.guest("journalctl -b -p err -u waxmpp-bootconfig.service --no-pager -o cat"); !strings.Contains(out, mistake) {
		t.Errorf("the journal (priority err) lacks the mistake:\n%s", out)
	}
	if out := c.guest("cat /boot/firmware/waxmpp-errors.txt"); !strings.Contains(out, "line 7: "+mistake) {
		t.Errorf("waxmpp-errors.txt:\n%s", out)
	}
	// The setup code from waxmpp.txt, for the page.
	if out := c.guest("cat /var/lib/waxmpp/setup-code; stat -c '%a %U' /var/lib/waxmpp/setup-code; cat /boot/firmware/waxmpp-setup-code.txt"); !strings.Contains(out, "boot-test-code\n600 waxmpp\n") || !strings.Contains(out, "http://waxmpp.local/") {
		t.Errorf("setup code files:\n%s", out)
	}
	if _, err := c.vm.WaitSerial(regexp.MustCompile(`enter the setup code:\s+boot-test-code`), time.Minute); err != nil {
		t.Errorf("console login screen: %v", err)
	}

	c.checkAppliance()
	c.checkMDNS("waxmpp.local")
	if p := c.openSetupPage("boot-test-code"); p != nil {
		c.walkSetup(p)
	}

	id := identity{
		machineID: strings.TrimSpace(c.guest("cat /etc/machine-id")),
		hostKey:   strings.TrimSpace(c.guest("cut -d' ' -f2 /etc/ssh/ssh_host_ed25519_key.pub")),
		setupCode: "boot-test-code",
	}
	if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(id.machineID) {
		t.Errorf("machine-id %q", id.machineID)
	}
	return id
}

func (s SSH) runIgnore(command string) string {
	out, _ := s.Run(command)
	return out
}

func atoi(t *testing.T, fields []string) []int64 {
	t.Helper()
	var n []int64
	for _, f := range fields {
		v, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			t.Fatalf("not numbers: %q", fields)
		}
		n = append(n, v)
	}
	return n
}

// checkAppliance: the packages and settings an appliance needs.
func (c *card) checkAppliance() {
	t := c.t
	for _, unit := range []string{"avahi-daemon.service", "systemd-timesyncd.service", "systemd-networkd.service", "systemd-resolved.service",
		"fake-hwclock.service", "waxmpp-bootconfig.service", "waxmpp-growroot.service", "apt-daily-upgrade.timer", "waxmpp-fake-hwclock.timer"} {
		if out := strings.TrimSpace(c.ssh.runIgnore("systemctl is-active " + unit)); out != "active" {
			t.Errorf("%s is %s", unit, out)
		}
	}
	for _, pkg := range []string{"waxmpp", "ffmpeg", "raspi-firmware", "linux-image-arm64", "firmware-brcm80211", "wpasupplicant", "wireless-regdb",
		"avahi-daemon", "libnss-mdns", "fake-hwclock", "systemd-timesyncd", "unattended-upgrades", "openssh-server"} {
		if out := strings.TrimSpace(c.ssh.runIgnore("dpkg-query -W -f '${Status}' " + pkg)); out != "install ok installed" {
			t.Errorf("package %s: %q", pkg, out)
		}
	}
	// Upgrades: Debian-Security and our repository, unattended.
	aptcfg := c.guest("apt-config dump Unattended-Upgrade::Origins-Pattern; apt-config dump APT::Periodic")
	for _, want := range []string{"label=Debian-Security", "origin=waxmpp", `APT::Periodic::Unattended-Upgrade "1"`} {
		if !strings.Contains(aptcfg, want) {
			t.Errorf("unattended-upgrades config lacks %q:\n%s", want, aptcfg)
		}
	}
	sources := c.ssh.runIgnore("cat /etc/apt/sources.list /etc/apt/sources.list.d/*")
	for _, want := range []string{"bookworm-security", "waxmpp"} {
		if !strings.Contains(sources, want) {
			t.Errorf("apt sources lack %q:\n%s", want, sources)
		}
	}
	// Kind to the SD card.
	mounts := c.guest("findmnt -n -o FSTYPE,OPTIONS /; findmnt -n -o FSTYPE /tmp; cat /proc/swaps | wc -l; find /var/log/journal -type f 2>/dev/null | wc -l; journalctl --header | grep -c '^File path: /run/log/journal' || true")
	lines := strings.Split(strings.TrimSpace(mounts), "\n")
	if len(lines) != 5 || !strings.Contains(lines[0], "noatime") || lines[1] != "tmpfs" || lines[2] != "1" || lines[3] != "0" || lines[4] == "0" {
		t.Errorf("want / noatime, /tmp tmpfs, no swap (1 line in /proc/swaps), no journal file in /var/log/journal, the journal in /run; got:\n%s", mounts)
	}
	// The watchdog: systemd drives the hardware watchdog.
	if out := c.guest("cat /sys/class/watchdog/watchdog0/state; systemctl show -p RuntimeWatchdogUSec --value"); !strings.HasPrefix(out, "active\n15s") {
		t.Errorf("watchdog: %q", out)
	}
	// No password anywhere, and SSH by key only.
	if out := c.guest("sshd -T | grep -E '^(passwordauthentication|kbdinteractiveauthentication|permitrootlogin) '"); !strings.Contains(out, "passwordauthentication no") || !strings.Contains(out, "kbdinteractiveauthentication no") || !strings.Contains(out, "permitrootlogin without-password") {
		t.Errorf("sshd settings:\n%s", out)
	}
}

// checkMDNS asks for name on the guest's network the way a laptop
// resolves http://waxmpp.local: an mDNS query to 224.0.0.251:5353 (a
// "legacy unicast" one, from another port, so avahi answers the asker
// directly). It is sent from inside the guest, on eth0 (restricted user
// networking gives no default route, carries no multicast and drops the
// guest's UDP). The name service switch (nss-mdns) must find it too.
func (c *card) checkMDNS(name string) {
	t := c.t
	q, err := buildQuery(0x5741, name, 1)
	if err != nil {
		t.Fatal(err)
	}
	py := fmt.Sprintf(`python3 -c 'import socket, binascii
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(3)
s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton("10.0.2.15"))
s.sendto(binascii.unhexlify("%x"), ("224.0.0.251", 5353))
print(binascii.hexlify(s.recv(9000)).decode())'`, q)
	var ips []net.IP
	for range 10 { // avahi may still be probing the name
		var out string
		if out, err = c.ssh.Run(py); err == nil {
			var msg []byte
			if msg, err = hex.DecodeString(strings.TrimSpace(out)); err == nil {
				if ips, err = parseA(msg, 0x5741, name); err == nil {
					break
				}
			}
		}
		time.Sleep(3 * time.Second)
	}
	if err != nil {
		// Seen now and then (2 checks of 6 in three runs), and not when
		// the card was booted by hand: say what avahi and the network saw.
		t.Errorf("mDNS: no answer for %s: %v\navahi and eth0:\n%s", name, err,
			c.ssh.runIgnore("journalctl -b -u avahi-daemon --no-pager -o short-monotonic | tail -25; ip addr show eth0; hostname"))
	} else if !ips[0].Equal(net.IPv4(10, 0, 2, 15)) {
		t.Errorf("mDNS: %s is %v, want the guest's 10.0.2.15", name, ips)
	}
	if out := c.ssh.runIgnore("getent ahostsv4 " + name); !strings.HasPrefix(out, "10.0.2.15 ") {
		t.Errorf("getent ahostsv4 %s (nss-mdns): %q", name, out)
	}
}

// page is a browser's session with the setup page through the forward.
type page struct {
	t      *testing.T
	base   string
	client *http.Client
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([0-9a-f]{64})"`)

func (p *page) get(path string) (int, string) {
	p.t.Helper()
	resp, err := p.client.Get(p.base + path)
	if err != nil {
		p.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// post sends a form as the page's own would (same Origin), following the
// redirect.
func (p *page) post(path string, form url.Values) (int, string) {
	p.t.Helper()
	req, err := http.NewRequest("POST", p.base+path, strings.NewReader(form.Encode()))
	if err != nil {
		p.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", strings.TrimSuffix(p.base, "/"))
	resp, err := p.client.Do(req)
	if err != nil {
		p.t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (p *page) csrf(html string) string {
	p.t.Helper()
	m := csrfRE.FindStringSubmatch(html)
	if m == nil {
		p.t.Fatalf("no CSRF token in the page:\n%s", tail(html, 2000))
	}
	return m[1]
}

// pageState is the page's /state answer.
type pageState struct {
	Step    string `json:"step"`
	Busy    string `json:"busy"`
	Problem string `json:"problem"`
	Waiting bool   `json:"waiting"`
}

func (p *page) state() pageState {
	p.t.Helper()
	code, body := p.get("state")
	var st pageState
	if code != http.StatusOK || json.Unmarshal([]byte(body), &st) != nil {
		p.t.Fatalf("GET /state: %d %s", code, body)
	}
	return st
}

// settle waits until the flow is not busy and returns its state.
func (p *page) settle(timeout time.Duration) pageState {
	p.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		st := p.state()
		if st.Busy == "" || time.Now().After(deadline) {
			return st
		}
		time.Sleep(2 * time.Second)
	}
}

// answer posts one of the page's step forms.
func (p *page) answer(action string, fields ...string) pageState {
	p.t.Helper()
	_, html := p.get("")
	form := url.Values{"csrf": {p.csrf(html)}, "action": {action}}
	for i := 0; i+1 < len(fields); i += 2 {
		form.Set(fields[i], fields[i+1])
	}
	p.post("answer", form)
	return p.settle(3 * time.Minute)
}

// openSetupPage checks the setup page as a visitor without the code, then
// with a wrong one, then enters the right one; it returns the page, signed
// in, or nil when nothing answers (an error is reported).
func (c *card) openSetupPage(code string) *page {
	t := c.t
	jar, _ := cookiejar.New(nil)
	p := &page{t: t, base: fmt.Sprintf("http://127.0.0.1:%d/", c.ports["http"]),
		client: &http.Client{Jar: jar, Timeout: 4 * time.Minute}}
	var err error
	for range 10 {
		var resp *http.Response
		if resp, err = (&http.Client{Timeout: 30 * time.Second}).Get(p.base); err == nil {
			resp.Body.Close()
			break
		}
		time.Sleep(3 * time.Second)
	}
	if err != nil {
		t.Errorf("setup page: nothing answers on the guest's port 80 (%v); waxmpp-setup.service says:\n%s", err,
			c.ssh.runIgnore("systemctl status --no-pager -n 10 waxmpp-setup.service"))
		return nil
	}
	// Without the code: the code form, nothing else.
	status, html := p.get("")
	if status != http.StatusOK || !strings.Contains(html, `action="/code"`) || strings.Contains(html, `name="owner"`) {
		t.Errorf("the page without the code: %d, want the code form alone:\n%s", status, tail(html, 1500))
	}
	if status, _ := p.get("state"); status != http.StatusUnauthorized {
		t.Errorf("GET /state without the code: %d, want 401", status)
	}
	if status, html := p.post("answer", url.Values{"action": {"owner"}, "owner": {"mallory@example.org"}}); status != http.StatusOK || !strings.Contains(html, `action="/code"`) {
		t.Errorf("an answer without the code: %d, want the code form again", status)
	}
	status, html = p.post("code", url.Values{"csrf": {p.csrf(html)}, "code": {"not-the-code"}})
	if status != http.StatusForbidden || !strings.Contains(html, "That is not the setup code") {
		t.Errorf("a wrong code: %d, want 403 and why:\n%s", status, tail(html, 1500))
	}
	// The code as a person types it: lower case, spaces for dashes.
	typed := strings.ToLower(strings.ReplaceAll(code, "-", " "))
	status, html = p.post("code", url.Values{"csrf": {p.csrf(html)}, "code": {typed}})
	if status != http.StatusOK || !strings.Contains(html, `name="owner"`) {
		t.Errorf("the right code (typed %q): %d, want the first step:\n%s", typed, status, tail(html, 1500))
		return nil
	}
	return p
}

// walkSetup walks the setup against the Prosody on the host, as far as
// the network allows: owner, bot account (logged in for real), the owner
// accepting the bot's subscription, then WhatsApp, which cannot be
// reached from here.
func (c *card) walkSetup(p *page) {
	t := c.t
	owner := c.prosody.Dial(t, "owner")
	defer owner.Close()
	if st := p.answer("owner", "owner", c.prosody.JID("owner")); st.Step != "bot" {
		t.Fatalf("after the owner's address: %+v, want the bot step", st)
	}
	st := p.answer("use", "jid", c.prosody.JID("bot"), "password", "wrong password")
	if st.Step != "bot" || st.Problem == "" {
		t.Errorf("a wrong bot password: %+v, want a problem on the bot step", st)
	}
	st = p.answer("use", "jid", c.prosody.JID("bot"), "password", prosodytest.Password("bot"))
	if st.Step != "subscribe" {
		t.Fatalf("after the bot account: %+v, want the subscription step", st)
	}
	sub, err := owner.Wait(3*time.Minute, func(e *prosodytest.Elem) bool {
		return e.XMLName.Local == "presence" && e.Attr("type") == "subscribe" && strings.HasPrefix(e.Attr("from"), c.prosody.JID("bot"))
	})
	if err != nil {
		t.Fatalf("no subscription request from the bot during setup: %v (page %+v)", err, p.state())
	}
	owner.Send(fmt.Sprintf(`<presence to='%s' type='subscribed'/>`, prosodytest.Esc(sub.Attr("from"))))
	deadline := time.Now().Add(3 * time.Minute)
	for st = p.settle(time.Minute); st.Step == "subscribe" && time.Now().Before(deadline); st = p.settle(time.Minute) {
		time.Sleep(3 * time.Second)
	}
	if st.Step != "whatsapp" {
		t.Fatalf("after the owner accepted the bot: %+v, want the WhatsApp step", st)
	}
	st = p.answer("link-qr")
	for deadline = time.Now().Add(3 * time.Minute); st.Problem == "" && time.Now().Before(deadline); st = p.settle(time.Minute) {
		time.Sleep(3 * time.Second)
	}
	t.Logf("card %s: the setup page's WhatsApp step says: %q", c.name, st.Problem)
	low := strings.ToLower(st.Problem)
	if st.Step != "whatsapp" || !strings.Contains(low, "whatsapp") || !(strings.Contains(low, "reach") || strings.Contains(low, "connect")) {
		t.Errorf("the WhatsApp step, with WhatsApp out of reach: %+v; want it to say plainly that WhatsApp cannot be reached", st)
	}
}

// pagelessSetup: owner and bot added to waxmpp.txt over SSH, rebooted:
// the bridge logs in to the Prosody on the host and asks the owner for a
// subscription; its service runs hardened.
func (c *card) pagelessSetup() {
	t := c.t
	hostKey := c.guest("cat /etc/ssh/ssh_host_ed25519_key.pub")
	owner := c.prosody.Dial(t, "owner")
	defer owner.Close()
	add := fmt.Sprintf("hostname = kitchen\nowner = %s\nbot = %s\nbot_password = %s\n", c.prosody.JID("owner"), c.prosody.JID("bot"), prosodytest.Password("bot"))
	c.guest(fmt.Sprintf("printf '%%s' '%s' >> /boot/firmware/waxmpp.txt && systemctl reboot", add))
	c.vm.WaitSerial(regexp.MustCompile(`(?s)reboot: Restarting system.*`), shutdownTimeout)
	time.Sleep(5 * time.Second)
	if err := c.ssh.WaitSSH(c.vm, bootTimeout); err != nil { // the same host key, or ssh refuses
		t.Fatal(err)
	}
	if state := strings.TrimSpace(c.ssh.runIgnore("systemctl is-system-running --wait")); state != "running" {
		t.Errorf("system state %q once set up; failed units:\n%s", state, c.ssh.runIgnore("systemctl --failed --no-legend"))
	}
	if got := c.guest("cat /etc/ssh/ssh_host_ed25519_key.pub"); got != hostKey {
		t.Errorf("host key changed across a reboot")
	}
	if h := strings.TrimSpace(c.guest("hostname; grep 127.0.1.1 /etc/hosts")); h != "kitchen\n127.0.1.1\tkitchen" {
		t.Errorf("hostname and hosts: %q, want kitchen", h)
	}
	c.checkMDNS("kitchen.local")
	conf := c.guest("cat /etc/waxmpp/config.toml; stat -c '%a %U:%G' /etc/waxmpp/config.toml /etc/credstore/waxmpp.password")
	if !strings.Contains(conf, `jid = "`+c.prosody.JID("bot")+`"`) || !strings.Contains(conf, "640 root:waxmpp\n600 root:root") {
		t.Errorf("config:\n%s", conf)
	}
	if txt := c.guest("cat /boot/firmware/waxmpp.txt"); strings.Contains(txt, prosodytest.Password("bot")) {
		t.Errorf("the bot's password stays in waxmpp.txt:\n%s", txt)
	}
	if out := c.ssh.runIgnore("ls /var/lib/waxmpp/setup-code /boot/firmware/waxmpp-setup-code.txt 2>&1"); !strings.Contains(out, "No such file") || strings.Contains(out, "\n/") {
		t.Errorf("setup code left on a configured card:\n%s", out)
	}
	// The bridge, from the card, through guestfwd: it answers the owner.
	var reply *prosodytest.Elem
	for deadline := time.Now().Add(4 * time.Minute); reply == nil && time.Now().Before(deadline); {
		owner.Send(fmt.Sprintf(`<message to='%s' type='chat' id='bt%d'><body>/help</body></message>`, c.prosody.JID("bot"), time.Now().UnixNano()))
		reply, _ = owner.Wait(20*time.Second, func(e *prosodytest.Elem) bool {
			return prosodytest.Messages(e) && strings.HasPrefix(e.Attr("from"), c.prosody.JID("bot"))
		})
	}
	if reply == nil {
		t.Errorf("the bridge on the card did not answer /help; waxmpp says:\n%s", c.ssh.runIgnore("journalctl -b -u waxmpp --no-pager -n 30"))
	} else {
		t.Logf("card A: the bridge answered /help: %q", clip(reply.Body(), 80))
	}
	if out := strings.TrimSpace(c.ssh.runIgnore("systemctl is-active waxmpp.service")); out != "active" {
		t.Errorf("waxmpp.service %s", out)
	}
	sec := c.guest("systemd-analyze security --no-pager waxmpp.service | tail -1")
	m := regexp.MustCompile(`exposure level for waxmpp.service: ([0-9.]+)`).FindStringSubmatch(sec)
	if m == nil {
		t.Fatalf("systemd-analyze security: %s", sec)
	}
	t.Logf("card A: systemd-analyze security waxmpp.service on the booted card: %s", strings.TrimSpace(sec))
	if v, _ := strconv.ParseFloat(m[1], 64); v > 1.2 {
		t.Errorf("waxmpp.service exposure %s, want at most 1.2", m[1])
	}
	if out := c.guest("ps -o user= -C waxmpp"); strings.TrimSpace(out) != "waxmpp" {
		t.Errorf("waxmpp runs as %q", out)
	}
	if err := c.vm.Powerdown(shutdownTimeout); err != nil {
		t.Error(err)
	}
}

// brokenConfig: card B, a waxmpp.txt with mistakes and no SSH key, checked
// from outside only: the console, the network, and the card afterwards.
func (c *card) brokenConfig() identity {
	t := c.t
	c.boot()
	m, err := c.vm.WaitSerial(regexp.MustCompile(`enter the setup code:\s+([A-Z0-9]{4}-[A-Z0-9]{4}-[A-Z0-9]{4})`), bootTimeout)
	if err != nil {
		t.Fatal(err)
	}
	code := m[1]
	t.Logf("card B: the console shows setup code %s, %.0f s after QEMU started", code, time.Since(c.vm.Started()).Seconds())
	serial := c.vm.Serial()
	for _, want := range []string{
		"line 1 (wifi_password): is missing", "line 1 (wifi_country): is missing",
		"line 2 (hostname): contains '_'", "line 3: is not a setting",
	} {
		if !strings.Contains(serial, want) {
			t.Errorf("the console does not show %q", want)
		}
	}
	// SSH is off: nothing answers on port 22 (QEMU accepts, the guest resets).
	if conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", c.ports["ssh"]), 5*time.Second); err == nil {
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		banner := make([]byte, 64)
		n, _ := conn.Read(banner)
		conn.Close()
		if bytes.HasPrefix(banner[:n], []byte("SSH-")) {
			t.Errorf("SSH answers without a key in waxmpp.txt: %q", banner[:n])
		}
	}
	c.openSetupPage(code)
	if err := c.vm.Powerdown(shutdownTimeout); err != nil {
		t.Fatal(err)
	}
	// The card, read on "another computer".
	codeFile, err := c.disk.ReadBoot("waxmpp-setup-code.txt")
	if err != nil || !strings.Contains(string(codeFile), code) {
		t.Errorf("waxmpp-setup-code.txt = %q (%v), want the code %s", codeFile, err, code)
	}
	errs, err := c.disk.ReadBoot("waxmpp-errors.txt")
	if err != nil || !strings.Contains(string(errs), "line 2 (hostname): contains '_'; use only letters (a to z), digits and dashes, such as my-pi") {
		t.Errorf("waxmpp-errors.txt = %q (%v)", errs, err)
	}
	txt, err := c.disk.ReadBoot("waxmpp.txt")
	if err != nil || !strings.Contains(string(txt), "# waxmpp: hostname contains '_'") || !strings.Contains(string(txt), "\nhostname = my_pi\n") {
		t.Errorf("waxmpp.txt = %q (%v)", txt, err)
	}
	id := identity{setupCode: code}
	mid, err := c.disk.ReadRoot("/etc/machine-id")
	if err != nil {
		t.Fatal(err)
	}
	id.machineID = strings.TrimSpace(string(mid))
	key, err := c.disk.ReadRoot("/etc/ssh/ssh_host_ed25519_key.pub")
	if err != nil {
		t.Fatalf("card B has no SSH host key after its first boot: %v", err)
	}
	if f := strings.Fields(string(key)); len(f) >= 2 {
		id.hostKey = f[1]
	}
	return id
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
