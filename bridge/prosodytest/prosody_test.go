package prosodytest

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestServerRoundTrip proves the harness itself, for each server: two
// accounts log in over STARTTLS with the test CA and exchange a message,
// also across a restart; the server listens on 127.0.0.1 only.
func TestServerRoundTrip(t *testing.T) {
	for _, kind := range Kinds {
		t.Run(string(kind), func(t *testing.T) {
			s := Start(t, Options{Kind: kind})
			owner := s.Dial(t, "owner")
			stranger := s.Dial(t, "stranger")
			stranger.Send("<message to='owner@" + Domain + "' type='chat' id='m1'><body>a &lt; b</body></message>")
			got := owner.Next(t, 5*time.Second, Messages)
			if got.Body() != "a < b" || got.Attr("id") != "m1" {
				t.Fatalf("got %s, want body %q id m1", got, "a < b")
			}
			for _, a := range listening(t, s.proc.pid()) {
				if !strings.HasPrefix(a, "127.0.0.1:") {
					t.Errorf("%s listens on %s, beyond loopback", kind, a)
				}
			}
			if kind == Ejabberd {
				s.Stop() // Kill loses ejabberd's latest writes (see Kill)
			} else {
				s.Kill()
			}
			s.Restart()
			o2 := s.Dial(t, "owner")
			if o2.JID == "" {
				t.Fatal("no JID after restart")
			}
		})
	}
}

// TestStreamManagementClient proves the harness's client with stream
// management (the benchmark's direct client), on each server: the server
// asks it for acknowledgements and takes its counts, so messages keep
// arriving after many answers (a count 3 too high: ejabberd ends the
// stream at once; Prosody 0.12 goes on).
func TestStreamManagementClient(t *testing.T) {
	for _, kind := range Kinds {
		t.Run(string(kind), func(t *testing.T) {
			s := Start(t, Options{Kind: kind, NoShaper: true})
			owner := s.Dial(t, "owner")
			c := s.DialWith(t, "stranger", ClientOptions{StreamManagement: true})
			const n = 200
			round := func(from int) {
				for i := from; i < from+n; i++ {
					owner.Send(fmt.Sprintf("<message to='stranger@%s' type='chat' id='m%d'><body>%d</body></message>", Domain, i, i))
				}
				for i := from; i < from+n; i++ {
					got := c.Next(t, 10*time.Second, Messages)
					if got.Body() != fmt.Sprint(i) {
						t.Fatalf("got %s, want body %d", got, i)
					}
				}
			}
			round(0)
			if c.Acks() == 0 {
				t.Fatalf("%s asked for no acknowledgement in %d messages", kind, n)
			}
			acks := c.Acks()
			round(n)
			t.Logf("%s: %d acknowledgements requested for %d messages", kind, c.Acks(), 2*n)
			if c.Acks() == acks {
				t.Fatalf("%s asked for no acknowledgement after the first %d answers", kind, acks)
			}
		})
	}
}

// listening lists the TCP addresses pid listens on (IPv4 and IPv6).
func listening(t *testing.T, pid int) []string {
	t.Helper()
	inodes := map[string]bool{}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, fd := range fds {
		l, err := os.Readlink(filepath.Join(fmt.Sprintf("/proc/%d/fd", pid), fd.Name()))
		if err == nil && strings.HasPrefix(l, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")] = true
		}
	}
	var out []string
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		fh, err := os.Open(f)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			fs := strings.Fields(sc.Text())
			if len(fs) < 10 || fs[3] != "0A" || !inodes[fs[9]] {
				continue
			}
			out = append(out, hexAddr(fs[1]))
		}
		fh.Close()
	}
	if len(out) == 0 {
		t.Fatalf("pid %d listens nowhere", pid)
	}
	return out
}

// hexAddr turns /proc/net/tcp's "0100007F:1F90" into "127.0.0.1:8080"
// (IPv6 addresses are left in hex: they are never loopback-only here).
func hexAddr(s string) string {
	ip, port, _ := strings.Cut(s, ":")
	var p int
	fmt.Sscanf(port, "%X", &p)
	if len(ip) == 8 {
		var b [4]int
		for i := range 4 {
			fmt.Sscanf(ip[6-2*i:8-2*i], "%X", &b[i])
		}
		return fmt.Sprintf("%d.%d.%d.%d:%d", b[0], b[1], b[2], b[3], p)
	}
	return "[" + ip + "]:" + fmt.Sprint(p)
}

// TestFederate proves the federating pair: a message each way between
// owner@a and bot@b goes server to server (the two are separate
// processes), each server listens on loopback only (its s2s listener on
// its own 127/8 address), and after one is stopped and started again they
// federate again.
func TestFederate(t *testing.T) {
	a, b := Federate(t, Options{NoUpload: true, Rooms: NoRooms}, Options{NoUpload: true, Rooms: NoRooms})
	owner := a.Dial(t, "owner")
	bot := b.Dial(t, "bot")
	exchange := func(id string) {
		t.Helper()
		owner.Send("<message to='" + b.JID("bot") + "' type='chat' id='" + id + "-a'><body>to b</body></message>")
		if got := bot.Next(t, 20*time.Second, Messages); got.Attr("id") != id+"-a" || got.Attr("from") != owner.JID {
			t.Fatalf("bot got %s, want %s-a from %s", got, id, owner.JID)
		}
		bot.Send("<message to='" + a.JID("owner") + "' type='chat' id='" + id + "-b'><body>to a</body></message>")
		if got := owner.Next(t, 20*time.Second, Messages); got.Attr("id") != id+"-b" || got.Attr("from") != bot.JID {
			t.Fatalf("owner got %s, want %s-b from %s", got, id, bot.JID)
		}
	}
	exchange("m1")
	for _, s := range []*Server{a, b} {
		if s.LogCount("Server-to-server connection failed") > 0 {
			t.Errorf("%s logged a failed s2s connection:\n%s", s.Domain, s.Log())
		}
		var s2s bool
		for _, l := range listening(t, s.proc.pid()) {
			ip, _, _ := strings.Cut(l, ":")
			if l == s.opts.S2S+":5269" {
				s2s = true
			}
			if !strings.HasPrefix(ip, "127.") {
				t.Errorf("%s listens on %s, beyond loopback", s.Domain, l)
			}
		}
		if !s2s {
			t.Errorf("%s does not listen on %s:5269", s.Domain, s.opts.S2S)
		}
	}
	a.Restart()
	owner = a.Dial(t, "owner")
	exchange("m2")
}
