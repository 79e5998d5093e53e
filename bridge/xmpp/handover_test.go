package xmpp

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"math/big"
	"net"
	"testing"
	"time"
)

// selfSigned is a TLS certificate for "example.test" and a pool that
// trusts it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), DNSNames: []string{"example.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(c)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pool
}

// TestHandoverKeepsEveryByte: a TLS stream through the login relay, with
// the server writing without pause and the client's last lines still in
// the relay, is handed over to the dialed socket: both sides then read
// every line, in order, none twice, and the relay's goroutines end.
// Repeated, so that the handover falls at different points of the flow.
func TestHandoverKeepsEveryByte(t *testing.T) {
	if !tlsConnOK() {
		t.Fatal("this Go's tls.Conn has no conn field: the handover is off (update handover.go)")
	}
	cert, pool := selfSigned(t)
	for round := range 20 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		const lines = 20000
		serverGot := make(chan error, 1)
		go func() {
			c, err := ln.Accept()
			ln.Close()
			if err != nil {
				serverGot <- err
				return
			}
			tc := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{cert}})
			defer tc.Close()
			wrote := make(chan struct{})
			go func() {
				defer close(wrote)
				w := bufio.NewWriter(tc)
				for i := range lines {
					fmt.Fprintf(w, "s%06d\n", i)
					if i%50 == 0 {
						w.Flush()
					}
				}
				w.Flush()
			}()
			err = readLines(bufio.NewReader(tc), 'c', 2*lines)
			<-wrote
			serverGot <- err
		}()

		r, tc := relayedTLS(t, ln.Addr().String(), pool)
		br := bufio.NewReader(tc)
		// Read part of the server's stream first (more at each round),
		// write half the client's: the rest of both is in flight.
		if err := readLines(br, 's', round*500); err != nil {
			t.Fatal(err)
		}
		w := bufio.NewWriter(tc)
		for i := range lines {
			fmt.Fprintf(w, "c%06d\n", i)
		}
		w.Flush()
		if !r.handover(tc) {
			t.Fatal("handover refused")
		}
		done := make(chan error, 1)
		go func() {
			for i := lines; i < 2*lines; i++ {
				fmt.Fprintf(w, "c%06d\n", i)
			}
			done <- w.Flush()
		}()
		if err := readLinesFrom(br, 's', round*500, lines); err != nil {
			t.Fatalf("round %d: client: %v", round, err)
		}
		if err := <-done; err != nil {
			t.Fatalf("round %d: client write: %v", round, err)
		}
		if err := <-serverGot; err != nil {
			t.Fatalf("round %d: server: %v", round, err)
		}
		select {
		case <-r.done:
		case <-time.After(5 * time.Second):
			t.Fatalf("round %d: the relay's copies did not end", round)
		}
		if _, ok := (*underlying(tc)).(*handoff); !ok {
			t.Fatalf("round %d: the TLS connection is on %T", round, *underlying(tc))
		}
		tc.Close()
		r.stop()
	}
}

// TestHandoverFailedSocket: the server closes the socket during the
// handover; the client then reads the stream's end, not a hang.
func TestHandoverFailedSocket(t *testing.T) {
	cert, pool := selfSigned(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		c, err := ln.Accept()
		ln.Close()
		if err != nil {
			return
		}
		tc := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{cert}})
		tc.Handshake()
		fmt.Fprintf(tc, "s%06d\n", 0)
		c.Close()
	}()
	r, tc := relayedTLS(t, ln.Addr().String(), pool)
	r.handover(tc)
	tc.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(tc)
	if err := readLines(br, 's', 1); err != nil {
		t.Fatal(err)
	}
	if _, err := br.ReadByte(); err == nil || isDeadline(err) {
		t.Fatalf("read after the server closed: %v, want the stream's end", err)
	}
	tc.Close()
	r.stop()
}

// relayedTLS is a TLS client to addr over a login relay, as go-xmpp's
// is until the handover.
func relayedTLS(t *testing.T, addr string, pool *x509.CertPool) (*relay, *tls.Conn) {
	t.Helper()
	raw, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	r, err := newRelay(raw, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	local, err := net.Dial("tcp", r.addr())
	if err != nil {
		t.Fatal(err)
	}
	tc := tls.Client(local, &tls.Config{RootCAs: pool, ServerName: "example.test", MinVersion: tls.VersionTLS12})
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	return r, tc
}

// readLines reads n lines "<p>%06d", numbered from 0.
func readLines(br *bufio.Reader, p byte, n int) error { return readLinesFrom(br, p, 0, n) }

// readLinesFrom reads lines "<p>%06d" numbered from..to-1.
func readLinesFrom(br *bufio.Reader, p byte, from, to int) error {
	for i := from; i < to; i++ {
		l, err := br.ReadString('\n')
		if err != nil {
			return fmt.Errorf("line %d: %w", i, err)
		}
		if want := fmt.Sprintf("%c%06d\n", p, i); l != want {
			return fmt.Errorf("line %d is %q", i, l)
		}
	}
	return nil
}
