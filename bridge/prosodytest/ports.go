package prosodytest

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// A server's ports are chosen by the test and bound by the server a moment
// later, and again after each restart. Two things could take a port in
// between: an outgoing connection, which the kernel gives a local port from
// its ephemeral range (the tests make thousands), and another test process
// choosing the same port at the same time (go test runs packages in
// parallel). So the ports come from below the ephemeral range, and each is
// reserved with a lock (flock) on a file named after it in portDir, held
// until the test ends: a process that dies releases its locks with it.
// A port something else listens on is skipped.

// portDir holds one lock file per reserved port.
var portDir = filepath.Join(os.TempDir(), "waxmpp-test-ports")

// portLow is the lowest port chosen.
const portLow = 10000

func freePorts(tb testing.TB, n int) []int {
	tb.Helper()
	high := ephemeralLow()
	if high-portLow < 1000 {
		tb.Fatalf("prosodytest: the ephemeral port range starts at %d, leaving no ports for test servers below it (net.ipv4.ip_local_port_range)", high)
	}
	if err := os.MkdirAll(portDir, 0o700); err != nil {
		tb.Fatal(err)
	}
	var ports []int
	for tries := 0; len(ports) < n; tries++ {
		if tries == 1000 {
			tb.Fatalf("prosodytest: no free port found in %d tries between %d and %d", tries, portLow, high)
		}
		p := portLow + rand.IntN(high-portLow)
		if f := reserve(p); f != nil {
			tb.Cleanup(func() { f.Close() })
			ports = append(ports, p)
		}
	}
	return ports
}

// reserve locks port p's file and checks that nothing listens on p; the
// lock lasts while the file stays open.
func reserve(p int) *os.File {
	f, err := os.OpenFile(filepath.Join(portDir, strconv.Itoa(p)), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil
	}
	if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) != nil {
		f.Close()
		return nil
	}
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
	if err != nil {
		f.Close()
		return nil
	}
	l.Close()
	return f
}

// ephemeralLow is where the kernel's ephemeral ports begin (32768 when it
// cannot be read).
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	if f := strings.Fields(string(b)); len(f) == 2 {
		if lo, err := strconv.Atoi(f[0]); err == nil {
			return lo
		}
	}
	return 32768
}
