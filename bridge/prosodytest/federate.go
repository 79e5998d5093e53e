package prosodytest

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// Federation on loopback. Two domains served by one Prosody route to each
// other inside the process, so a federating pair is two processes, each
// with its server-to-server listener on a loopback address of its own
// (127.0.0.0/8 is all local on Linux) at port 5269, where a domain without
// SRV records is reached (mod_s2s.lua's default_port).
//
// Names resolve without touching the machine's /etc/hosts or any DNS
// server: Prosody resolves through lua-unbound (net/unbound.lua, which
// reads no hosts file unless told: builtin_defaults hoststxt = false) and
// the "unbound" option hands libunbound a hosts file of the test's own
// (hoststxt) and a resolv.conf naming only 127.0.0.1. libunbound answers
// every name under .test. itself (a static local zone, RFC 6761): the SRV
// queries for _xmpp-server._tcp.<domain> get NXDOMAIN at once, so mod_s2s
// falls back to the domain's address on port 5269 (net/resolvers/service.lua),
// which the hosts file gives. Nothing leaves the machine, not even a query
// to 127.0.0.1.
//
// The servers authenticate each other by dialback over TLS, as Prosody
// ships (s2s_secure_auth off: each server's certificate is signed by its
// own test CA, which the other does not trust).

// Federate starts two Prosody servers that federate with each other over
// loopback, on the domains a.Domain and b.Domain ("": "a."+Domain and
// "b."+Domain). Both are stopped by tb.Cleanup.
func Federate(tb testing.TB, a, b Options) (*Server, *Server) {
	tb.Helper()
	if a.Domain == "" {
		a.Domain = "a." + Domain
	}
	if b.Domain == "" {
		b.Domain = "b." + Domain
	}
	if a.Domain == b.Domain || !strings.HasSuffix(a.Domain, ".test") || !strings.HasSuffix(b.Domain, ".test") {
		tb.Fatalf("prosodytest: Federate needs two domains under .test, got %q and %q", a.Domain, b.Domain)
	}
	if a.Kind != "" && a.Kind != Prosody || b.Kind != "" && b.Kind != Prosody {
		tb.Fatalf("prosodytest: Federate runs Prosody only")
	}
	unboundInstalled(tb)
	addrs := s2sAddrs(tb, 2)
	a.S2S, b.S2S = addrs[0], addrs[1]
	a.Peers = map[string]string{b.Domain: b.S2S}
	b.Peers = map[string]string{a.Domain: a.S2S}
	return Start(tb, a), Start(tb, b)
}

// unboundInstalled fails the test without lua-unbound: Prosody would then
// resolve with its own DNS code, which reads /etc/resolv.conf and asks the
// machine's DNS servers.
func unboundInstalled(tb testing.TB) {
	tb.Helper()
	if out, err := exec.Command("lua5.4", "-e", `require "lunbound"`).CombinedOutput(); err != nil {
		tb.Fatalf("lua-unbound is not installed (apt-get install lua-unbound): federating test servers resolve each other through it: %v\n%s", err, out)
	}
}

// s2sAddrs picks n loopback addresses, other than 127.0.0.1, where port
// 5269 is free: random ones, so that tests running at the same time on
// one machine do not collide.
func s2sAddrs(tb testing.TB, n int) []string {
	tb.Helper()
	var addrs []string
	for tries := 0; len(addrs) < n; tries++ {
		if tries == 100 {
			tb.Fatalf("prosodytest: port 5269 was taken on 100 loopback addresses: is a server listening on all addresses (the machine's own Prosody or ejabberd)?")
		}
		ip := fmt.Sprintf("127.%d.%d.%d", 1+rand.IntN(254), rand.IntN(256), 1+rand.IntN(254))
		l, err := net.Listen("tcp", net.JoinHostPort(ip, "5269"))
		if err != nil || slices.Contains(addrs, ip) {
			if l != nil {
				l.Close()
			}
			continue
		}
		l.Close()
		addrs = append(addrs, ip)
	}
	return addrs
}

// writeResolver writes the hosts file and resolv.conf handed to
// lua-unbound: the server's own domain and its peers'.
func writeResolver(tb testing.TB, s *Server) {
	tb.Helper()
	var hosts strings.Builder
	fmt.Fprintf(&hosts, "%s %s\n", s.opts.S2S, s.Domain)
	for d, ip := range s.opts.Peers {
		fmt.Fprintf(&hosts, "%s %s\n", ip, d)
	}
	if err := os.WriteFile(filepath.Join(s.Dir, "hosts"), []byte(hosts.String()), 0o600); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(s.Dir, "resolv.conf"), []byte("nameserver 127.0.0.1\n"), 0o600); err != nil {
		tb.Fatal(err)
	}
}
