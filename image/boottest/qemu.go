package boottest

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"
)

// VMConfig is one boot of a disk image.
type VMConfig struct {
	Disk    string // raw disk image, changed by the guest
	Kernel  string // the image's own kernel and initrd, from its boot partition
	Initrd  string
	Cmdline string
	Dir     string // serial log and QMP socket
	// HostFwd are guest TCP ports reachable at 127.0.0.1:port on the host,
	// guest port -> host port. (No UDP: restrict=on drops the guest's UDP.)
	HostFwd map[int]int
	// GuestFwd maps a guest address "10.0.2.100:5222" to a host TCP
	// address on loopback; each guest connection runs socat to it.
	GuestFwd map[string]string
}

// VM is a running QEMU.
type VM struct {
	cfg    VMConfig
	cmd    *exec.Cmd
	serial string
	qmp    string
	done   chan struct{}
	err    error
	start  time.Time
}

// Started is when QEMU was started.
func (vm *VM) Started() time.Time { return vm.start }

// Args are QEMU's arguments for cfg: -M virt under TCG (an arm64 guest on
// an amd64 host), virtio disk, network, RNG (a Pi has a hardware RNG) and an
// i6300esb watchdog (a Pi has bcm2835-wdt), user networking restricted to
// the forwards.
func (c VMConfig) Args() []string {
	netdev := "user,id=net0,restrict=on,net=10.0.2.0/24"
	for g, h := range c.HostFwd {
		netdev += fmt.Sprintf(",hostfwd=tcp:127.0.0.1:%d-:%d", h, g)
	}
	for g, h := range c.GuestFwd {
		netdev += fmt.Sprintf(",guestfwd=tcp:%s-cmd:socat - TCP:%s", g, h)
	}
	return []string{
		"-M", "virt", "-cpu", "cortex-a72", "-smp", "2", "-m", "1024",
		"-accel", "tcg,thread=multi",
		"-nographic", "-monitor", "none",
		"-kernel", c.Kernel, "-initrd", c.Initrd, "-append", c.Cmdline,
		"-drive", "file=" + c.Disk + ",format=raw,if=none,id=disk0,cache=unsafe",
		"-device", "virtio-blk-pci,drive=disk0",
		"-netdev", netdev, "-device", "virtio-net-pci,netdev=net0",
		"-device", "virtio-rng-pci",
		"-device", "i6300esb",
		"-chardev", "file,id=ser0,path=" + filepath.Join(c.Dir, "serial.log"),
		"-serial", "chardev:ser0",
		"-qmp", "unix:" + filepath.Join(c.Dir, "qmp.sock") + ",server=on,wait=off",
	}
}

// StartVM starts QEMU. Stop it with Kill or Powerdown.
func StartVM(cfg VMConfig) (*VM, error) {
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, err
	}
	vm := &VM{cfg: cfg, serial: filepath.Join(cfg.Dir, "serial.log"), qmp: filepath.Join(cfg.Dir, "qmp.sock"), done: make(chan struct{})}
	os.Remove(vm.serial)
	os.Remove(vm.qmp)
	log, err := os.Create(filepath.Join(cfg.Dir, "qemu.log"))
	if err != nil {
		return nil, err
	}
	vm.cmd = exec.Command("qemu-system-aarch64", cfg.Args()...)
	vm.cmd.Stdout, vm.cmd.Stderr = log, log
	// Its own process group, so that Kill takes the socat children too;
	// killed with the test process if that dies first.
	vm.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	vm.start = time.Now()
	if err := vm.cmd.Start(); err != nil {
		log.Close()
		return nil, err
	}
	go func() {
		vm.err = vm.cmd.Wait()
		log.Close()
		close(vm.done)
	}()
	return vm, nil
}

// Serial is what the guest wrote to its serial console so far.
func (vm *VM) Serial() string {
	b, _ := os.ReadFile(vm.serial)
	return string(b)
}

// WaitSerial waits until the serial console output matches re and returns
// the match's submatches.
func (vm *VM) WaitSerial(re *regexp.Regexp, timeout time.Duration) ([]string, error) {
	deadline := time.Now().Add(timeout)
	for {
		if m := re.FindStringSubmatch(vm.Serial()); m != nil {
			return m, nil
		}
		select {
		case <-vm.done:
			return nil, fmt.Errorf("QEMU exited (%v) before the console showed %q", vm.err, re)
		case <-time.After(500 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("the console did not show %q within %s", re, timeout)
		}
	}
}

// Exited reports whether QEMU has exited.
func (vm *VM) Exited() bool {
	select {
	case <-vm.done:
		return true
	default:
		return false
	}
}

// Wait waits for QEMU to exit by itself.
func (vm *VM) Wait(timeout time.Duration) error {
	select {
	case <-vm.done:
		return nil
	case <-time.After(timeout):
		return fmt.Errorf("QEMU still runs after %s", timeout)
	}
}

// Powerdown presses the virtual power button (QMP system_powerdown:
// systemd-logind shuts the guest down) and waits for QEMU to exit.
func (vm *VM) Powerdown(timeout time.Duration) error {
	if err := vm.qmpCommand("system_powerdown"); err != nil {
		return err
	}
	return vm.Wait(timeout)
}

// Kill stops QEMU at once (a pulled plug) and waits for it.
func (vm *VM) Kill() {
	if vm.Exited() {
		return
	}
	syscall.Kill(-vm.cmd.Process.Pid, syscall.SIGKILL)
	<-vm.done
}

func (vm *VM) qmpCommand(cmd string) error {
	conn, err := net.DialTimeout("unix", vm.qmp, 5*time.Second)
	if err != nil {
		return fmt.Errorf("qmp: %w", err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(conn)
	if _, err := r.ReadBytes('\n'); err != nil { // greeting
		return fmt.Errorf("qmp greeting: %w", err)
	}
	for _, c := range []string{"qmp_capabilities", cmd} {
		if err := json.NewEncoder(conn).Encode(map[string]string{"execute": c}); err != nil {
			return fmt.Errorf("qmp %s: %w", c, err)
		}
		for {
			line, err := r.ReadBytes('\n')
			if err != nil {
				return fmt.Errorf("qmp %s: %w", c, err)
			}
			var resp map[string]json.RawMessage
			if json.Unmarshal(line, &resp) != nil {
				continue
			}
			if e, ok := resp["error"]; ok {
				return fmt.Errorf("qmp %s: %s", c, e)
			}
			if _, ok := resp["return"]; ok {
				break
			}
		}
	}
	return nil
}

// FreePorts returns n TCP ports free on 127.0.0.1 (also used for UDP).
func FreePorts(n int) ([]int, error) {
	var ports []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for len(ports) < n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue
		}
		u.Close()
		ports = append(ports, port)
	}
	return ports, nil
}

// SSH runs commands in the guest as root over the forwarded port.
type SSH struct {
	Port       int
	Key        string // private key file
	KnownHosts string // the guest's host key is recorded here at first contact
}

// Run runs a shell command line in the guest and returns its stdout.
func (s SSH) Run(command string) (string, error) {
	cmd := exec.Command("ssh", "-F", "none", "-i", s.Key, "-p", fmt.Sprint(s.Port),
		"-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-o", "ConnectTimeout=20",
		"-o", "StrictHostKeyChecking=accept-new", "-o", "UserKnownHostsFile="+s.KnownHosts,
		"-o", "LogLevel=ERROR", "root@127.0.0.1", command)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("ssh %q: %w: %s", command, err, strings.TrimSpace(stderr.String()))
	}
	return string(out), nil
}

// WaitSSH waits until the guest accepts the key.
func (s SSH) WaitSSH(vm *VM, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var err error
	for time.Now().Before(deadline) {
		if vm.Exited() {
			return errors.New("QEMU exited")
		}
		if _, err = s.Run("true"); err == nil {
			return nil
		}
		time.Sleep(2 * time.Second)
	}
	return fmt.Errorf("no SSH login within %s: %w", timeout, err)
}
