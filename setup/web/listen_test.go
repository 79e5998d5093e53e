package web

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestLAN(t *testing.T) {
	for _, tc := range []struct {
		addr string
		lan  bool
	}{
		{"127.0.0.1", true}, {"::1", true}, {"10.1.2.3", true}, {"172.16.0.9", true}, {"192.168.178.20", true},
		{"169.254.10.1", true}, {"fe80::1", true}, {"fd00::5", true}, {"::ffff:192.168.1.2", true},
		{"8.8.8.8", false}, {"203.0.113.5", false}, {"2001:db8::1", false}, {"172.32.0.1", false}, {"100.64.0.1", false},
	} {
		if got := LAN(netip.MustParseAddr(tc.addr)); got != tc.lan {
			t.Errorf("LAN(%s) = %v, want %v", tc.addr, got, tc.lan)
		}
	}
}

// TestListenLANOnly: a public address is refused; with a port alone only
// the machine's LAN addresses are bound.
func TestListenLANOnly(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	if _, err := listen(context.Background(), "8.8.8.8:0", log); err == nil || !strings.Contains(err.Error(), "not a loopback, private or link-local") {
		t.Fatalf("listen on a public address: %v", err)
	}
	l := &listeners{port: "0", log: log, conns: make(chan net.Conn), done: make(chan struct{}), bound: map[string]net.Listener{},
		interfaceAddrs: func() ([]netip.Addr, []string, error) {
			return []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("198.51.100.7")}, []string{"lo", "eth0"}, nil
		}}
	defer l.Close()
	if err := l.scan(); err != nil {
		t.Fatal(err)
	}
	if a := l.Addrs(); len(a) != 1 || !strings.HasPrefix(a[0], "127.0.0.1:") {
		t.Fatalf("bound %v, want 127.0.0.1 only", a)
	}
}

// fakeLn hands out connections that claim to come from the given peers.
type fakeLn struct {
	peers []string
	conns chan net.Conn
	done  chan struct{}
}

type peerConn struct {
	net.Conn
	from net.Addr
}

func (c peerConn) RemoteAddr() net.Addr { return c.from }

func (f *fakeLn) Accept() (net.Conn, error) {
	if len(f.peers) == 0 {
		<-f.done
		return nil, net.ErrClosed
	}
	p := f.peers[0]
	f.peers = f.peers[1:]
	a, b := net.Pipe()
	f.conns <- b
	return peerConn{a, net.TCPAddrFromAddrPort(netip.MustParseAddrPort(p))}, nil
}
func (f *fakeLn) Close() error   { return nil }
func (f *fakeLn) Addr() net.Addr { return &net.TCPAddr{} }

// TestRefusePeersOutsideLAN: a connection from a public address (a port
// forwarded by the router) is closed; one from the LAN is served.
func TestRefusePeersOutsideLAN(t *testing.T) {
	l := &listeners{log: slog.New(slog.DiscardHandler), conns: make(chan net.Conn), done: make(chan struct{}), bound: map[string]net.Listener{}}
	fl := &fakeLn{peers: []string{"203.0.113.5:40000", "192.168.1.20:40001"}, conns: make(chan net.Conn, 2), done: make(chan struct{})}
	defer close(fl.done)
	go l.accept(fl)
	c, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	if got := c.RemoteAddr().String(); got != "192.168.1.20:40001" {
		t.Fatalf("served %s", got)
	}
	public := <-fl.conns
	public.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := public.Read(make([]byte, 1)); err == nil {
		t.Fatal("the public peer's connection is open")
	}
	close(l.done)
}
