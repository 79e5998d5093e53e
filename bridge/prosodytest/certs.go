package prosodytest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// writeCerts makes a CA and a server certificate for the domain, its components
// and 127.0.0.1 (http_file_share URLs point at the loopback address).
func (s *Server) writeCerts(tb testing.TB) {
	caKey, caCert, caDER := newCA(tb, "waxmpp test CA")
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: s.Domain},
		DNSNames:     []string{s.Domain, "upload." + s.Domain, "conference." + s.Domain, "localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		tb.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		tb.Fatal(err)
	}
	s.CAFile = filepath.Join(s.Dir, "ca.pem")
	writePEM(tb, s.CAFile, "CERTIFICATE", caDER)
	writePEM(tb, filepath.Join(s.Dir, "server.crt"), "CERTIFICATE", der)
	writePEM(tb, filepath.Join(s.Dir, "server.key"), "EC PRIVATE KEY", keyDER)
	s.roots = x509.NewCertPool()
	s.roots.AddCert(caCert)
}

// OtherCA writes a CA unrelated to the server's into dir and returns its
// file: trusting only it must make the TLS handshake fail.
func OtherCA(tb testing.TB) string {
	_, _, der := newCA(tb, "unrelated CA")
	f := filepath.Join(tb.TempDir(), "other-ca.pem")
	writePEM(tb, f, "CERTIFICATE", der)
	return f
}

func newCA(tb testing.TB, name string) (*ecdsa.PrivateKey, *x509.Certificate, []byte) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		tb.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	return key, cert, der
}

func writePEM(tb testing.TB, path, typ string, der []byte) {
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		tb.Fatal(err)
	}
}
