//go:build simwa

package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The Pi's own architectures: a benchmark can run the binary built as the
// Pi's packages are (CGO_ENABLED=0; GOARCH=arm64, or GOARCH=arm GOARM=6
// for a Pi Zero or 1) under qemu-user, the emulator called explicitly (no
// binfmt_misc handler is assumed), while the test process and the XMPP
// server stay native. qemu-user runs the program inside its own process:
// /proc/PID/io of that process counts the emulated program's disk
// writes, and getpid() there is that PID. Times under emulation mean
// nothing; counts (bytes written, allocations, commits) do.

// simArch is one build of the binary.
type simArch struct {
	env  []string // go build's
	qemu string   // the emulator that runs it; "" natively
}

var simArches = map[string]simArch{
	"native": {},
	// amd64 built as the packages are: what the Pi's builds compare with.
	"amd64": {env: []string{"CGO_ENABLED=0", "GOARCH=amd64"}},
	"arm64": {env: []string{"CGO_ENABLED=0", "GOARCH=arm64"}, qemu: "qemu-aarch64-static"},
	"armv6": {env: []string{"CGO_ENABLED=0", "GOARCH=arm", "GOARM=6"}, qemu: "qemu-arm-static"},
}

// benchArches is $WAXMPP_BENCH_ARCH, the builds a benchmark runs, in
// order (words of simArches; make bench-arm: "amd64 arm64 armv6"), or
// just native.
func benchArches(tb testing.TB) []string {
	tb.Helper()
	as := strings.Fields(os.Getenv("WAXMPP_BENCH_ARCH"))
	if len(as) == 0 {
		return []string{"native"}
	}
	for _, a := range as {
		if _, ok := simArches[a]; !ok {
			tb.Fatalf("WAXMPP_BENCH_ARCH: unknown %q; known: native, amd64, arm64, armv6", a)
		}
	}
	return as
}

// runCmd is the binary with args: the test build of this run, or e.arch's
// build under its emulator.
func (e *simEnv) runCmd(args ...string) *exec.Cmd {
	e.tb.Helper()
	a, ok := simArches[e.arch]
	if !ok || a.env == nil {
		return exec.Command(simBinary(e.tb), args...)
	}
	if e.bin == "" {
		e.bin = filepath.Join(e.tb.TempDir(), "waxmpp-simwa-"+e.arch)
		if err := buildSimFor(e.bin, a.env); err != nil {
			e.tb.Fatal(err)
		}
	}
	if a.qemu == "" {
		return exec.Command(e.bin, args...)
	}
	qemu, err := exec.LookPath(a.qemu)
	if err != nil {
		e.tb.Fatalf("%s runs the %s build: %v (Debian: qemu-user-static)", a.qemu, e.arch, err)
	}
	return exec.Command(qemu, append([]string{e.bin}, args...)...)
}

// buildSimFor is buildSim with go build's environment added to.
func buildSimFor(path string, env []string) error {
	gotool, err := exec.LookPath("go")
	if err != nil {
		return err
	}
	cmd := exec.Command(gotool, "build", "-tags", "simwa", "-trimpath", "-o", path, "-ldflags", "-X main.version="+testVersion, ".")
	cmd.Env = append(os.Environ(), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s go build -tags simwa: %v\n%s", strings.Join(env, " "), err, out)
	}
	return nil
}
