package xmpp

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"reflect"
	"sync"
	"time"
	"unsafe"
)

// The relay is needed only while go-xmpp logs in (dialEndpoint). Once it
// has, every byte of the link crossing a loopback connection and two more
// goroutines costs three system calls and three wake-ups per read where
// one would do; on ejabberd, which writes each stanza by itself, that was
// about a third of what the binary spent per owner message. So a logged-in
// link hands its TLS connection over to the socket waxmpp dialed: the TLS
// state stays in go-xmpp's *tls.Conn, whose underlying connection is
// replaced (reached via reflection, as go-xmpp's internals are; a Go whose
// tls.Conn differs keeps the relay, checked at start by tlsConnOK).
//
// Nothing in flight may be lost or reordered, and the boundary is exact
// because it is marked by end-of-stream, not by timing:
//   - towards the server, go-xmpp's end of the loopback is shut for
//     writing: the relay forwards what was written before, then reads its
//     end; only then do writes go to the socket directly;
//   - from the server, the relay stops reading the socket (a read deadline
//     in the past), writes what it had read, and shuts the loopback for
//     writing: reads drain go-xmpp's end of the loopback to its end, then
//     read the socket directly.
//
// The session starts reading and writing at once; reads and writes that
// reach the socket before the relay has stopped wait for it.

// tlsConnField is the offset of crypto/tls.Conn's underlying connection,
// ok false when this Go's tls.Conn has no such field.
var tlsConnField = func() (f struct {
	offset uintptr
	ok     bool
}) {
	sf, found := reflect.TypeFor[tls.Conn]().FieldByName("conn")
	if found && sf.Type == reflect.TypeFor[net.Conn]() {
		f.offset, f.ok = sf.Offset, true
	}
	return f
}()

// tlsConnOK reports whether handover can reach a tls.Conn's connection.
func tlsConnOK() bool { return tlsConnField.ok }

// underlying is the connection tc reads and writes.
func underlying(tc *tls.Conn) *net.Conn {
	return (*net.Conn)(unsafe.Add(unsafe.Pointer(tc), tlsConnField.offset))
}

// handover takes the relay out of a logged-in link whose TLS connection
// tc nobody is using yet. It reports false (the relay stays) where it
// cannot; then nothing has changed.
func (r *relay) handover(tc *tls.Conn) bool {
	if !tlsConnOK() {
		return false
	}
	r.mu.Lock()
	local, closed := r.local, r.closed
	r.mu.Unlock()
	conn := underlying(tc)
	dialed, ok1 := (*conn).(*net.TCPConn) // go-xmpp's end of the loopback
	accepted, ok2 := local.(*net.TCPConn) // the relay's end
	if closed || !ok1 || !ok2 {
		return false
	}
	h := &handoff{drain: dialed, raw: r.raw, done: make(chan struct{})}
	r.handing.Store(true)
	*conn = h
	// go-xmpp wrote nothing after this: the relay forwards the rest, then
	// reads the end.
	dialed.CloseWrite()
	r.raw.SetReadDeadline(time.Unix(1, 0))
	go func() {
		defer close(h.done)
		inErr := <-r.in // everything read from the socket is on the loopback
		accepted.CloseWrite()
		outErr := <-r.out
		h.mu.Lock()
		h.raw.SetReadDeadline(h.readBy)
		h.raw.SetWriteDeadline(h.writeBy)
		h.switched = true
		h.mu.Unlock()
		if !isDeadline(inErr) || !errors.Is(outErr, io.EOF) {
			// The socket failed (or the server ended the stream) while
			// the relay had it: what was written is lost, so is the link.
			r.raw.Close()
		}
	}()
	return true
}

func isDeadline(err error) bool { return errors.Is(err, os.ErrDeadlineExceeded) }

// handoff is a logged-in link's connection under its TLS: the loopback
// until the relay has stopped (reads drain it to its end), then the
// socket waxmpp dialed.
type handoff struct {
	drain *net.TCPConn
	raw   net.Conn
	done  chan struct{} // closed once the relay has stopped

	drained bool // the loopback read to its end (tls.Conn reads one at a time)

	mu       sync.Mutex
	switched bool      // deadlines now go to raw
	readBy   time.Time // the deadlines set, for raw once switched
	writeBy  time.Time
}

func (h *handoff) Read(b []byte) (int, error) {
	if !h.drained {
		n, err := h.drain.Read(b)
		if n > 0 || !errors.Is(err, io.EOF) {
			return n, err
		}
		h.drained = true
		h.drain.Close()
		<-h.done
	}
	return h.raw.Read(b)
}

func (h *handoff) Write(b []byte) (int, error) {
	<-h.done
	return h.raw.Write(b)
}

func (h *handoff) Close() error {
	h.drain.Close()
	return h.raw.Close()
}

func (h *handoff) LocalAddr() net.Addr  { return h.raw.LocalAddr() }
func (h *handoff) RemoteAddr() net.Addr { return h.raw.RemoteAddr() }

func (h *handoff) SetDeadline(t time.Time) error {
	h.SetReadDeadline(t)
	return h.SetWriteDeadline(t)
}

func (h *handoff) SetReadDeadline(t time.Time) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.readBy = t
	h.drain.SetReadDeadline(t)
	if h.switched {
		return h.raw.SetReadDeadline(t)
	}
	return nil
}

func (h *handoff) SetWriteDeadline(t time.Time) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.writeBy = t
	if h.switched {
		return h.raw.SetWriteDeadline(t)
	}
	return nil
}
