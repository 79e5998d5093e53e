package web

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"
)

// LAN reports whether a is an address of the local network: loopback,
// private (RFC 1918, RFC 4193) or link-local. The page is served only on
// such addresses, and only to peers from such addresses.
func LAN(a netip.Addr) bool {
	a = a.Unmap()
	return a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast()
}

// listeners binds the page's port on every LAN address of the machine (or
// on one given address), and keeps binding addresses that appear later: a
// Pi's Wi-Fi address often comes after the service starts.
type listeners struct {
	host, port string
	log        *slog.Logger
	conns      chan net.Conn // accepted LAN connections; unbuffered: Accept takes them one by one
	done       chan struct{}
	once       sync.Once

	mu    sync.Mutex
	bound map[string]net.Listener // by address
	wg    sync.WaitGroup
	// interfaceAddrs lists the machine's addresses; tests replace it.
	interfaceAddrs func() ([]netip.Addr, []string, error)
}

// listen starts the listeners for addr ("host:port", or ":port" for every
// LAN address). A host that is not a LAN address is refused.
func listen(ctx context.Context, addr string, log *slog.Logger) (*listeners, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("web: listen %q: %w", addr, err)
	}
	l := &listeners{host: host, port: port, log: log, conns: make(chan net.Conn), done: make(chan struct{}),
		bound: map[string]net.Listener{}, interfaceAddrs: interfaceAddrs}
	if host != "" {
		a, err := netip.ParseAddr(host)
		if err != nil {
			return nil, fmt.Errorf("web: listen %q: give an IP address (or only :port for every LAN address)", addr)
		}
		if !LAN(a) {
			return nil, fmt.Errorf("web: refusing to serve the setup page on %s: it is not a loopback, private or link-local address", host)
		}
		if err := l.bind(net.JoinHostPort(host, port)); err != nil {
			return nil, err
		}
		return l, nil
	}
	if err := l.scan(); err != nil {
		return nil, err
	}
	l.mu.Lock()
	n := len(l.bound)
	l.mu.Unlock()
	if n == 0 {
		return nil, fmt.Errorf("web: no LAN address to serve on (port %s)", port)
	}
	l.wg.Go(func() {
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				if err := l.scan(); err != nil {
					l.log.Warn("listing addresses failed", "err", err)
				}
			case <-l.done:
				return
			case <-ctx.Done():
				return
			}
		}
	})
	return l, nil
}

// interfaceAddrs lists the machine's addresses with their zones (the
// interface name, for link-local IPv6).
func interfaceAddrs() ([]netip.Addr, []string, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, nil, err
	}
	var addrs []netip.Addr
	var zones []string
	for _, ifc := range ifs {
		if ifc.Flags&net.FlagUp == 0 {
			continue
		}
		as, err := ifc.Addrs()
		if err != nil {
			continue
		}
		for _, a := range as {
			pfx, err := netip.ParsePrefix(a.String())
			if err != nil {
				continue
			}
			addrs = append(addrs, pfx.Addr())
			zones = append(zones, ifc.Name)
		}
	}
	return addrs, zones, nil
}

// scan binds every LAN address not bound yet.
func (l *listeners) scan() error {
	addrs, zones, err := l.interfaceAddrs()
	if err != nil {
		return err
	}
	var errs []error
	for i, a := range addrs {
		if !LAN(a) {
			continue
		}
		host := a.String()
		if a.Is6() && a.IsLinkLocalUnicast() {
			host = a.WithZone(zones[i]).String()
		}
		hp := net.JoinHostPort(host, l.port)
		l.mu.Lock()
		_, ok := l.bound[hp]
		l.mu.Unlock()
		if ok {
			continue
		}
		if err := l.bind(hp); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		l.mu.Lock()
		n := len(l.bound)
		l.mu.Unlock()
		if n == 0 {
			return errors.Join(errs...)
		}
		for _, e := range errs {
			l.log.Debug("address not bound", "err", e)
		}
	}
	return nil
}

func (l *listeners) bind(hp string) error {
	ln, err := net.Listen("tcp", hp)
	if err != nil {
		return fmt.Errorf("web: listen on %s: %w", hp, err)
	}
	l.mu.Lock()
	select {
	case <-l.done:
		l.mu.Unlock()
		ln.Close()
		return nil
	default:
	}
	l.bound[hp] = ln
	l.mu.Unlock()
	l.log.Info("setup page listening", "addr", ln.Addr().String())
	l.wg.Go(func() { l.accept(ln) })
	return nil
}

// accept takes connections from ln; those from outside the LAN are closed
// at once.
func (l *listeners) accept(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			select {
			case <-l.done:
			default:
				l.log.Warn("listener failed", "addr", ln.Addr().String(), "err", err)
				l.mu.Lock()
				delete(l.bound, ln.Addr().String())
				l.mu.Unlock()
			}
			return
		}
		ap, err := netip.ParseAddrPort(c.RemoteAddr().String())
		if err != nil || !LAN(ap.Addr()) {
			l.log.Warn("refused a connection from outside the LAN", "from", c.RemoteAddr().String())
			c.Close()
			continue
		}
		select {
		case l.conns <- c:
		case <-l.done:
			c.Close()
			return
		}
	}
}

// Addrs are the addresses being served.
func (l *listeners) Addrs() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, ln := range l.bound {
		out = append(out, ln.Addr().String())
	}
	return out
}

// Accept implements net.Listener for http.Server: one stream of all the
// listeners' LAN connections.
func (l *listeners) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close closes every listener and waits for their goroutines.
func (l *listeners) Close() error {
	l.once.Do(func() {
		close(l.done)
		l.mu.Lock()
		for _, ln := range l.bound {
			ln.Close()
		}
		l.mu.Unlock()
		l.wg.Wait()
	})
	return nil
}

// Addr is the first listener's address (net.Listener).
func (l *listeners) Addr() net.Addr {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, ln := range l.bound {
		return ln.Addr()
	}
	return &net.TCPAddr{}
}
