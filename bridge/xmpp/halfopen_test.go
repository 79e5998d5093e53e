package xmpp

import (
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	pt "waxmpp/bridge/prosodytest"
)

// pathProxy is a TCP proxy on loopback the bot dials through. Freeze makes
// the connections open at that moment stop forwarding either way while
// their sockets stay open: a half-open path, as a NAT that forgot the
// connection or a Wi-Fi that dropped leaves it. The server goes on writing
// into its socket; nothing it writes arrives. Later connections pass.
type pathProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	frozen []chan struct{} // one per open connection, closed by Freeze
	conns  []net.Conn
}

func newPathProxy(t *testing.T, target string) *pathProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &pathProxy{ln: ln, target: target}
	go p.serve()
	t.Cleanup(p.close)
	return p
}

func (p *pathProxy) Addr() string { return p.ln.Addr().String() }

func (p *pathProxy) serve() {
	for {
		a, err := p.ln.Accept()
		if err != nil {
			return
		}
		b, err := net.Dial("tcp", p.target)
		if err != nil {
			a.Close()
			continue
		}
		stop := make(chan struct{})
		p.mu.Lock()
		p.frozen = append(p.frozen, stop)
		p.conns = append(p.conns, a, b)
		p.mu.Unlock()
		go pipe(a, b, stop)
		go pipe(b, a, stop)
	}
}

// pipe copies from src to dst until either fails; once stop is closed it
// forwards nothing more (what it reads is dropped, as in a dead path) and
// keeps both open.
func pipe(dst, src net.Conn, stop chan struct{}) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		select {
		case <-stop:
			if err != nil {
				return
			}
			continue
		default:
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			dst.Close()
			return
		}
	}
}

// Freeze stops the open connections (see pathProxy).
func (p *pathProxy) Freeze() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.frozen {
		close(c)
	}
	p.frozen = nil
}

func (p *pathProxy) close() {
	p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
}

// TestHalfOpenNothingLost: the bot's path to its server goes dead without
// a close (the test's proxy stops forwarding) while the owner writes. The
// server writes the owner's messages into a socket nobody reads. The bot
// notices by its ping, logs in again on a new path, and gets each message
// once: on a server with an archive from its replay (Prosody's XEP-0198
// stores nothing offline for a session that used the archive), without
// one from what the server kept offline because the bot never
// acknowledged it (XEP-0198).
func TestHalfOpenNothingLost(t *testing.T) {
	for _, noArchive := range []bool{false, true} {
		name := "archive"
		if noArchive {
			name = "no-archive"
		}
		t.Run(name, func(t *testing.T) {
			forServers(t, pt.Kinds, pt.Options{NoArchive: noArchive}, func(t *testing.T, srv *pt.Server) {
				owner := srv.Dial(t, "owner")
				bot := srv.JID("bot")
				proxy := newPathProxy(t, srv.Addr())
				cfg := botConfig(t, srv)
				cfg.Server = proxy.Addr()
				cur := &memCursor{}
				cfg.Cursor = cur
				s := startSession(t, cfg)
				waitFor(t, 5*time.Second, "cursor initialised", func() bool { id, _ := cur.LoadCursor(); return id != "" || noArchive })
				ownerSays(owner, bot, "h0")
				if m := next(t, s); m.ID != "h0" {
					t.Fatalf("got %s, want h0", m.ID)
				}
				s.handled()

				proxy.Freeze()
				const n = 5
				for i := 1; i <= n; i++ {
					ownerSays(owner, bot, fmt.Sprintf("h%d", i))
				}
				seen := map[string]int{}
				deadline := time.After(30 * time.Second)
				for len(seen) < n {
					select {
					case m := <-s.Inbound():
						seen[m.ID]++
						s.handled()
					case <-deadline:
						t.Fatalf("after the path went dead got %v, want h1…h%d (reconnects: %d)", seen, n, s.reconnects.Load())
					}
				}
				none(t, s, 2*time.Second)
				for id, c := range seen {
					if c != 1 {
						t.Errorf("%s delivered %d times", id, c)
					}
				}
				if s.reconnects.Load() == 0 {
					t.Error("the messages came without a new login: the path was not dead")
				}
			})
		})
	}
}
