// Package prosodytest runs a throwaway XMPP server on loopback for tests and
// benchmarks: Prosody or ejabberd, from Debian's packages, with a generated
// config, CA and certificate in a temp dir, the accounts bot, owner and
// stranger, HTTP file upload, and each server's own throttle that can be
// switched on (Prosody's mod_limits; ejabberd's c2s shaper, on as shipped).
//
// A server is never optional: when it is missing the test fails, it is not
// skipped, so CI can never pass without having run the XMPP tests.
//
// Every socket a server opens is bound to 127.0.0.1. ejabberd runs as the
// ejabberd user (ejabberdctl run as root would start it through su, in a
// session of its own), without epmd (a fixed distribution port on
// 127.0.0.1), and is stopped by the PID it writes; its VM also ends by
// itself when the test process is gone.
package prosodytest

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Domain is the XMPP domain every test server serves. It resolves nowhere:
// clients connect to Server.Addr and verify the certificate against it.
const Domain = "waxmpp.test"

// Accounts created on every server, each with the password Password(user).
var Accounts = []string{"bot", "owner", "stranger"}

// Password is the password of a test account.
func Password(user string) string { return "pw-" + user }

// Kind is a server implementation.
type Kind string

const (
	Prosody  Kind = "prosody"  // Debian bookworm: 0.12
	Ejabberd Kind = "ejabberd" // Debian bookworm: 23.01
)

// Kinds are the servers every XMPP-side test runs against.
var Kinds = []Kind{Prosody, Ejabberd}

// EnvKind is the server named by $WAXMPP_TEST_SERVER ("prosody" or
// "ejabberd"; unset: Prosody), for the suites that run once per server
// (make test runs the end-to-end suite with each).
func EnvKind(tb testing.TB) Kind {
	switch k := Kind(os.Getenv("WAXMPP_TEST_SERVER")); k {
	case "":
		return Prosody
	case Prosody, Ejabberd:
		return k
	default:
		tb.Fatalf("WAXMPP_TEST_SERVER=%q: want prosody or ejabberd", k)
		return ""
	}
}

// Options choose how the server is configured.
type Options struct {
	// Kind is the server; "" means Prosody.
	Kind Kind
	// Limits turns on the server's c2s throttle at its default: Prosody's
	// mod_limits at Rate (Prosody syntax, e.g. "10kb/s"; empty means
	// Debian's default of 10kb/s) with a 2 s burst. ejabberd's shaper
	// (3,000 B/s, 20,000 B burst as shipped) is on unless NoShaper: the
	// tests that are not about throttling switch it off.
	Limits   bool
	Rate     string
	NoShaper bool
	// NoArchive leaves the message archive (XEP-0313) out, as both
	// servers ship (Prosody's mod_mam is commented out in Debian's
	// config, ejabberd's too). XEP-0198 is on either way, as shipped.
	NoArchive bool
	// NoStreamManagement leaves XEP-0198 out (Prosody before 0.12 had
	// none; an admin may switch it off): what a dying link never handled
	// is then not stored again, only the archive has it.
	NoStreamManagement bool
	// ArchiveOnRequest keeps ejabberd's mod_mam at its module default,
	// "default: never": a user's messages are archived only once the user
	// asks (XEP-0313 preferences). ejabberd only.
	ArchiveOnRequest bool
	// ArchiveItemLimit is Prosody's storage_archive_item_limit, the most
	// messages one account's archive keeps (0: the module's 10,000; over
	// it Prosody deletes the oldest, rewriting the archive's file every
	// hundred or so messages). Prosody only.
	ArchiveItemLimit int
	// ArchiveExpiry is Prosody's archive_expires_after (e.g. "1w", or
	// seconds: "5"); see ExpireArchive. Prosody only.
	ArchiveExpiry string
	// UploadLimit is the HTTP upload size limit in bytes (0: 10 MiB).
	UploadLimit int64
	// Registration is how in-band registration (XEP-0077) is set up.
	Registration Registration
	// Rooms is how the server offers group chats (XEP-0045): RoomsOpen
	// (the zero value: a MUC service, with an archive of each room,
	// where every local user may create rooms), NoRooms (no MUC service
	// at all), or RoomsRestricted (a MUC service that refuses to create
	// rooms for anyone but the server's admins).
	Rooms RoomPolicy
	// RoomPictures gives Prosody's MUC service room pictures (vCards of
	// rooms, XEP-0054) with the community module mod_vcard_muc (Debian's
	// package prosody-modules). ejabberd's mod_muc keeps them always.
	RoomPictures bool
	// Admin, when set, is an account of Accounts made the server's admin:
	// it may enter and reconfigure any room (the stranger "the server
	// lets in").
	Admin string
	// NoUpload leaves the HTTP upload service (XEP-0363) out. Prosody
	// only.
	NoUpload bool
	// StanzaLimit is the largest stanza in bytes a client may send (0:
	// the server's shipped limit, 256 KiB on both); neither server states
	// it in its stream features (XEP-0478).
	StanzaLimit int
	// Domain is the XMPP domain the server serves ("": Domain). Prosody
	// only. It must end in .test: see Federate.
	Domain string
	// S2S, when set, opens the server-to-server listener on this
	// loopback address, port 5269; Peers names the other servers' domains
	// and their S2S addresses. Prosody only: use Federate.
	S2S   string
	Peers map[string]string
}

// Registration is a server's in-band registration (XEP-0077) setting.
type Registration string

const (
	// RegisterClosed (the zero value): Prosody loads mod_register with
	// allow_registration = false, as Debian ships it; ejabberd has no
	// mod_register.
	RegisterClosed Registration = ""
	// RegisterOpen lets anyone create an account (no per-address limit).
	RegisterOpen Registration = "open"
	// RegisterFields asks for more than a name and a password: Prosody's
	// additional_registration_fields, a required email and an optional
	// name, sent as a data form.
	RegisterFields Registration = "fields"
	// RegisterCaptcha (ejabberd) protects registration with a CAPTCHA
	// (XEP-0158): ejabberd's own captcha.sh draws the image (ImageMagick),
	// served at /captcha on the HTTPS port; CaptchaAnswers tells a test
	// what it showed.
	RegisterCaptcha Registration = "captcha"
	// RegisterRedirect (ejabberd) sends clients to a web page instead
	// (mod_register's redirect_url): RedirectURL.
	RegisterRedirect Registration = "redirect"
)

// RedirectURL is the web page a RegisterRedirect server names.
const RedirectURL = "https://register.waxmpp.test/new"

// CaptchaAnswers are the texts of the CAPTCHA images the server drew so
// far, oldest first: what a person would read off them.
func (s *Server) CaptchaAnswers() []string {
	b, _ := os.ReadFile(filepath.Join(s.Dir, "captcha-answers"))
	return strings.Fields(string(b))
}

// RoomPolicy is how a test server offers group chats.
type RoomPolicy int

const (
	RoomsOpen RoomPolicy = iota
	NoRooms
	RoomsRestricted
)

// MUC is the JID of the servers' group chat service (when Options.Rooms
// offers one).
const MUC = "conference." + Domain

// Server is one running server.
type Server struct {
	Kind       Kind
	Domain     string // the XMPP domain it serves: Domain unless Options.Domain
	Dir        string // temp dir holding config, certificates, data and log
	CAFile     string // PEM of the CA that signed the server's certificate
	ConfigFile string
	C2SPort    int // STARTTLS
	TLSPort    int // direct TLS (XEP-0368)
	HTTPSPort  int // HTTP upload

	tb    testing.TB
	opts  Options
	proc  process
	roots *x509.CertPool
}

// process is how one kind of server is run.
type process interface {
	start(tb testing.TB)
	register(tb testing.TB, user, pass string)
	// signal sends sig to every process of the server.
	signal(sig syscall.Signal)
	// stop ends the server gracefully (kill: at once) and waits for it.
	stop(kill bool)
	logFiles() []string
	// pid is the server's main process, 0 when it is not running.
	pid() int
}

// Start starts a server and registers Accounts. It is stopped by tb.Cleanup.
func Start(tb testing.TB, opts Options) *Server {
	tb.Helper()
	if opts.Kind == "" {
		opts.Kind = Prosody
	}
	if opts.UploadLimit == 0 {
		opts.UploadLimit = 10 << 20
	}
	s := &Server{Kind: opts.Kind, Domain: Domain, tb: tb, opts: opts}
	if opts.Domain != "" {
		s.Domain = opts.Domain
	}
	if opts.Kind != Prosody && (opts.Domain != "" || opts.S2S != "") {
		tb.Fatalf("prosodytest: Options.Domain and S2S are for Prosody only")
	}
	switch opts.Kind {
	case Prosody:
		s.Dir = tb.TempDir()
		s.proc = &prosody{s: s, bin: binary(tb, "prosody", "prosody")}
	case Ejabberd:
		s.proc = newEjabberd(tb, s)
	default:
		tb.Fatalf("unknown server kind %q", opts.Kind)
	}
	ports := freePorts(tb, 3)
	s.C2SPort, s.TLSPort, s.HTTPSPort = ports[0], ports[1], ports[2]
	s.writeCerts(tb)
	s.proc.start(tb)
	tb.Cleanup(s.Stop)
	if e, ok := s.proc.(*ejabberd); ok {
		e.registerAll(tb, Accounts)
		return s
	}
	for _, u := range Accounts {
		s.Register(u, Password(u))
	}
	return s
}

// binary finds a server's program or fails the test.
func binary(tb testing.TB, name, pkg string) string {
	tb.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		tb.Fatalf("%s is not installed (apt-get install %s): the XMPP tests need a real server and are never skipped", name, pkg)
	}
	return p
}

// Addr is the STARTTLS client address.
func (s *Server) Addr() string { return fmt.Sprintf("127.0.0.1:%d", s.C2SPort) }

// TLSAddr is the direct-TLS client address.
func (s *Server) TLSAddr() string { return fmt.Sprintf("127.0.0.1:%d", s.TLSPort) }

// JID is user's bare JID.
func (s *Server) JID(user string) string { return user + "@" + s.Domain }

// TLSConfig trusts only the test CA.
func (s *Server) TLSConfig() *tls.Config {
	return &tls.Config{RootCAs: s.roots, ServerName: s.Domain, MinVersion: tls.VersionTLS12}
}

// Register creates (or re-creates) an account.
func (s *Server) Register(user, pass string) {
	s.tb.Helper()
	s.proc.register(s.tb, user, pass)
}

// Kill stops the server at once (SIGKILL), like a crash. ejabberd then
// loses what its Mnesia tables took in the last minutes (disc_only tables
// are dets files, saved every 3 minutes), accounts included: tests that
// need a server to keep its data over a crash use Prosody.
func (s *Server) Kill() { s.proc.stop(true) }

// Freeze stops the server's processes (SIGSTOP): sockets stay open but
// nothing is read or answered, like a hung server or a dead network path.
func (s *Server) Freeze() {
	s.proc.signal(syscall.SIGSTOP)
	// Signals are asynchronous: wait until the main process has stopped.
	for range 200 {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", s.proc.pid()))
		if _, rest, ok := strings.Cut(string(b), ") "); err != nil || ok && strings.HasPrefix(rest, "T") {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// CPU is the processor time the server's main process has used so far:
// a benchmark reads what a phase cost the server, which on a 2-core
// machine is often what bounds it. 0 when it cannot tell.
func (s *Server) CPU() time.Duration { return ProcessCPU(s.proc.pid()) }

// ProcessCPU is the processor time process pid has used (user and
// system, /proc/PID/stat, in clock ticks of 10 ms); 0 when it cannot
// tell.
func ProcessCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	_, rest, ok := strings.Cut(string(b), ") ")
	f := strings.Fields(rest)
	if !ok || len(f) < 13 {
		return 0
	}
	// After the name: state is field 3 of stat, utime 14 and stime 15.
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0
	}
	return time.Duration(u+st) * 10 * time.Millisecond
}

// ExpireArchive restarts Prosody with its daily archive clean-up due, as
// after a day: it deletes the messages older than Options.ArchiveExpiry
// (Prosody's own expiry, mod_mam through mod_cron, which runs a second
// after start) and returns once it has. Prosody only.
func (s *Server) ExpireArchive() {
	s.tb.Helper()
	if s.Kind != Prosody || s.opts.ArchiveExpiry == "" {
		s.tb.Fatalf("ExpireArchive needs Prosody with Options.ArchiveExpiry")
	}
	s.Stop()
	// mod_cron's record of the task's last run (a map store of the host):
	// long ago, so that it runs at once.
	dir := filepath.Join(s.Dir, "data", strings.ReplaceAll(s.Domain, ".", "%2e"))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		s.tb.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "cron.dat"), []byte("return {\n\t[\"mam/remove_expired_messages\"] = 1;\n};\n"), 0o600); err != nil {
		s.tb.Fatal(err)
	}
	before := s.LogCount("expired messages")
	s.proc.start(s.tb)
	deadline := time.Now().Add(20 * time.Second)
	for s.LogCount("expired messages") == before {
		if time.Now().After(deadline) {
			s.tb.Fatalf("Prosody did not expire its archive within 20s:\n%s", s.Log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Thaw resumes a frozen server (SIGCONT).
func (s *Server) Thaw() { s.proc.signal(syscall.SIGCONT) }

// Stop stops the server gracefully, killing it after 10 s.
func (s *Server) Stop() { s.proc.stop(false) }

// Restart starts the server again after Kill or Stop, on the same ports
// and data.
func (s *Server) Restart() {
	s.tb.Helper()
	s.Stop()
	s.proc.start(s.tb)
}

// Log is the server's log so far.
func (s *Server) Log() string {
	var b bytes.Buffer
	for _, f := range s.proc.logFiles() {
		data, _ := os.ReadFile(f)
		b.Write(data)
	}
	return b.String()
}

// LogContains reports whether the server logged a line containing sub.
func (s *Server) LogContains(sub string) bool {
	sc := bufio.NewScanner(strings.NewReader(s.Log()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if strings.Contains(sc.Text(), sub) {
			return true
		}
	}
	return false
}

// LogCount is how many distinct lines of the server's log contain sub (a
// line both in a log file and on the console counts once).
func (s *Server) LogCount(sub string) int {
	seen := map[string]bool{}
	for line := range strings.SplitSeq(s.Log(), "\n") {
		if strings.Contains(line, sub) {
			seen[line] = true
		}
	}
	return len(seen)
}

// waitListening waits until every port accepts connections, failing the
// test if exited is closed first or after 30 s.
func (s *Server) waitListening(tb testing.TB, exited <-chan struct{}, ports ...int) {
	tb.Helper()
	var addrs []string
	for _, p := range ports {
		addrs = append(addrs, fmt.Sprintf("127.0.0.1:%d", p))
	}
	if s.opts.S2S != "" {
		addrs = append(addrs, net.JoinHostPort(s.opts.S2S, "5269"))
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, p := range addrs {
		for {
			c, err := net.DialTimeout("tcp", p, time.Second)
			if err == nil {
				c.Close()
				break
			}
			select {
			case <-exited:
				tb.Fatalf("%s exited during start-up:\n%s", s.Kind, s.Log())
			default:
			}
			if time.Now().After(deadline) {
				tb.Fatalf("%s did not listen on %s within 30s:\n%s", s.Kind, p, s.Log())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}
