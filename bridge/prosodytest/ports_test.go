package prosodytest

import (
	"net"
	"os/exec"
	"strconv"
	"testing"
)

// TestPortsReserved: the ports chosen lie below the ephemeral range, are
// distinct, and stay reserved for the test: another process cannot take
// them (flock from the shell), the same process cannot hand them out
// twice, and something listening on a port keeps it from being chosen.
func TestPortsReserved(t *testing.T) {
	ports := freePorts(t, 20)
	seen := map[int]bool{}
	for _, p := range ports {
		if p < portLow || p >= ephemeralLow() {
			t.Errorf("port %d outside [%d, %d)", p, portLow, ephemeralLow())
		}
		if seen[p] {
			t.Errorf("port %d chosen twice", p)
		}
		seen[p] = true
		if f := reserve(p); f != nil {
			f.Close()
			t.Errorf("port %d reserved twice in one process", p)
		}
	}
	// flock(1) is util-linux's, Essential in Debian.
	out, err := exec.Command("flock", "-n", portDir+"/"+strconv.Itoa(ports[0]), "true").CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Errorf("another process's flock -n on port %d's lock: %v %s, want exit 1 (locked)", ports[0], err, out)
	}
	// A port in use by a listener is skipped.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if f := reserve(l.Addr().(*net.TCPAddr).Port); f != nil {
		f.Close()
		t.Error("a port with a listener was reserved")
	}
}
