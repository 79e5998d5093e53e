// Package prosodytest runs a throwaway Prosody (Debian's package) on loopback
// for tests and benchmarks: a generated config, CA and certificate in a temp
// dir, the accounts bot, owner and stranger, HTTP file share and a MUC
// component, and mod_limits that can be switched on.
//
// Prosody is never optional: when it is missing the test fails, it is not
// skipped, so CI can never pass without having run the XMPP tests.
package prosodytest

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"text/template"
	"time"
)

// Domain is the XMPP domain every test server serves. It resolves nowhere:
// clients connect to Server.Addr and verify the certificate against it.
const Domain = "waxmpp.test"

// Accounts created on every server, each with the password Password(user).
var Accounts = []string{"bot", "owner", "stranger"}

// Password is the password of a test account.
func Password(user string) string { return "pw-" + user }

// Options choose how the server is configured.
type Options struct {
	// Limits turns on mod_limits for c2s at Rate (Prosody syntax, e.g.
	// "10kb/s"; empty means Debian's default of 10kb/s) with a 2 s burst.
	Limits bool
	Rate   string
	// UploadLimit is http_file_share's size limit in bytes (0: 10 MiB).
	UploadLimit int64
}

// Server is one running Prosody.
type Server struct {
	Dir        string // temp dir holding config, certificates, data and log
	CAFile     string // PEM of the CA that signed the server's certificate
	ConfigFile string
	C2SPort    int // STARTTLS
	TLSPort    int // direct TLS (XEP-0368)
	HTTPSPort  int // http_file_share

	tb    testing.TB
	opts  Options
	cmd   *exec.Cmd
	done  chan struct{}
	roots *x509.CertPool
}

// Binary finds prosody or fails the test.
func Binary(tb testing.TB) string {
	tb.Helper()
	p, err := exec.LookPath("prosody")
	if err != nil {
		tb.Fatalf("prosody is not installed (apt-get install prosody): the XMPP tests need a real server and are never skipped")
	}
	return p
}

// Start starts a server and registers Accounts. It is stopped by tb.Cleanup.
func Start(tb testing.TB, opts Options) *Server {
	tb.Helper()
	bin := Binary(tb)
	dir := tb.TempDir()
	s := &Server{Dir: dir, tb: tb, opts: opts}
	if s.opts.UploadLimit == 0 {
		s.opts.UploadLimit = 10 << 20
	}
	ports := freePorts(tb, 3)
	s.C2SPort, s.TLSPort, s.HTTPSPort = ports[0], ports[1], ports[2]
	s.writeCerts(tb)
	s.writeConfig(tb)
	for _, u := range Accounts {
		s.Register(u, Password(u))
	}
	s.start(bin)
	tb.Cleanup(s.Stop)
	return s
}

// Addr is the STARTTLS client address.
func (s *Server) Addr() string { return fmt.Sprintf("127.0.0.1:%d", s.C2SPort) }

// TLSAddr is the direct-TLS client address.
func (s *Server) TLSAddr() string { return fmt.Sprintf("127.0.0.1:%d", s.TLSPort) }

// JID is user's bare JID.
func (s *Server) JID(user string) string { return user + "@" + Domain }

// TLSConfig trusts only the test CA.
func (s *Server) TLSConfig() *tls.Config {
	return &tls.Config{RootCAs: s.roots, ServerName: Domain, MinVersion: tls.VersionTLS12}
}

// Register creates (or re-creates) an account with prosodyctl.
func (s *Server) Register(user, pass string) {
	s.tb.Helper()
	out, err := exec.Command("prosodyctl", "--config", s.ConfigFile, "register", user, Domain, pass).CombinedOutput()
	if err != nil {
		s.tb.Fatalf("prosodyctl register %s: %v\n%s", user, err, out)
	}
}

func (s *Server) start(bin string) {
	s.tb.Helper()
	cmd := exec.Command(bin, "--config", s.ConfigFile)
	cmd.Dir = s.Dir
	logf, err := os.OpenFile(filepath.Join(s.Dir, "stdout.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		s.tb.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		s.tb.Fatalf("start prosody: %v", err)
	}
	s.cmd = cmd
	s.done = make(chan struct{})
	go func() { cmd.Wait(); logf.Close(); close(s.done) }()
	// Ready when both client ports and the HTTPS port accept connections.
	deadline := time.Now().Add(20 * time.Second)
	for _, p := range []int{s.C2SPort, s.TLSPort, s.HTTPSPort} {
		for {
			c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", p), time.Second)
			if err == nil {
				c.Close()
				break
			}
			select {
			case <-s.done:
				s.tb.Fatalf("prosody exited during start-up:\n%s", s.Log())
			default:
			}
			if time.Now().After(deadline) {
				s.tb.Fatalf("prosody did not listen on %d within 20s:\n%s", p, s.Log())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// Kill stops the server at once (SIGKILL), like a crash.
func (s *Server) Kill() {
	if s.cmd == nil {
		return
	}
	syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	<-s.done
	s.cmd = nil
}

// Freeze stops the server process (SIGSTOP): sockets stay open but nothing
// is read or answered, like a hung server or a dead network path.
func (s *Server) Freeze() { syscall.Kill(-s.cmd.Process.Pid, syscall.SIGSTOP) }

// Thaw resumes a frozen server (SIGCONT).
func (s *Server) Thaw() { syscall.Kill(-s.cmd.Process.Pid, syscall.SIGCONT) }

// Stop stops the server gracefully (SIGTERM), killing it after 10 s.
func (s *Server) Stop() {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.done
	}
	s.cmd = nil
}

// Restart starts the server again after Kill or Stop, on the same ports
// and data.
func (s *Server) Restart() {
	s.tb.Helper()
	s.Stop()
	s.start(Binary(s.tb))
}

// Log is Prosody's log so far.
func (s *Server) Log() string {
	var b bytes.Buffer
	for _, f := range []string{"prosody.log", "stdout.log"} {
		data, _ := os.ReadFile(filepath.Join(s.Dir, f))
		b.Write(data)
	}
	return b.String()
}

// LogContains reports whether Prosody logged a line containing sub.
func (s *Server) LogContains(sub string) bool {
	sc := bufio.NewScanner(strings.NewReader(s.Log()))
	for sc.Scan() {
		if strings.Contains(sc.Text(), sub) {
			return true
		}
	}
	return false
}

func freePorts(tb testing.TB, n int) []int {
	var ls []net.Listener
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatal(err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		l.Close()
	}
	return ports
}

// writeCerts makes a CA and a server certificate for Domain, its components
// and 127.0.0.1 (http_file_share URLs point at the loopback address).
func (s *Server) writeCerts(tb testing.TB) {
	caKey, caCert, caDER := newCA(tb, "waxmpp test CA")
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: Domain},
		DNSNames:     []string{Domain, "upload." + Domain, "conference." + Domain, "localhost"},
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

var configTmpl = template.Must(template.New("cfg").Parse(`-- generated by waxmpp's prosodytest
daemonize = false
run_as_root = true
pidfile = "{{.Dir}}/prosody.pid"
data_path = "{{.Dir}}/data"
plugin_paths = { }
interfaces = { "127.0.0.1" }
local_interfaces = { "127.0.0.1" }
c2s_ports = { {{.C2SPort}} }
c2s_direct_tls_ports = { {{.TLSPort}} }
c2s_direct_tls_interfaces = { "127.0.0.1" }
s2s_ports = { }
http_ports = { }
https_ports = { {{.HTTPSPort}} }
https_interfaces = { "127.0.0.1" }
http_interfaces = { "127.0.0.1" }
http_external_url = "https://127.0.0.1:{{.HTTPSPort}}/"
https_ssl = { certificate = "{{.Dir}}/server.crt"; key = "{{.Dir}}/server.key" }
c2s_direct_tls_ssl = { certificate = "{{.Dir}}/server.crt"; key = "{{.Dir}}/server.key" }
ssl = { certificate = "{{.Dir}}/server.crt"; key = "{{.Dir}}/server.key" }
c2s_require_encryption = true
allow_unencrypted_plain_auth = false
authentication = "internal_hashed"
storage = "internal"
admin_socket = "{{.Dir}}/admin.sock"
log = { { levels = { min = "info" }, to = "file", filename = "{{.Dir}}/prosody.log" } }
modules_enabled = {
	"roster"; "saslauth"; "tls"; "disco"; "carbons"; "pep"; "private";
	"blocklist"; "vcard4"; "vcard_legacy"; "version"; "uptime"; "time";
	"ping"; "offline"; "mam"; "csi_simple";{{if .Opts.Limits}} "limits";{{end}}
}
modules_disabled = { "s2s" }
{{if .Opts.Limits}}limits = { c2s = { rate = "{{.Rate}}"; burst = "2s" } }
{{end}}
VirtualHost "` + Domain + `"
Component "upload.` + Domain + `" "http_file_share"
	http_host = "127.0.0.1"
	http_file_share_size_limit = {{.Opts.UploadLimit}}
	http_file_share_daily_quota = {{.Opts.UploadLimit}}0
Component "conference.` + Domain + `" "muc"
`))

func (s *Server) writeConfig(tb testing.TB) {
	rate := s.opts.Rate
	if rate == "" {
		rate = "10kb/s"
	}
	var b bytes.Buffer
	if err := configTmpl.Execute(&b, struct {
		*Server
		Opts Options
		Rate string
	}{s, s.opts, rate}); err != nil {
		tb.Fatal(err)
	}
	s.ConfigFile = filepath.Join(s.Dir, "prosody.cfg.lua")
	if err := os.WriteFile(s.ConfigFile, b.Bytes(), 0o600); err != nil {
		tb.Fatal(err)
	}
}
