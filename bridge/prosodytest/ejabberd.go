package prosodytest

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"text/template"
	"time"
)

// ejabberd runs ejabberd through ejabberdctl foreground as the ejabberd
// user, in its own process group.
type ejabberd struct {
	s        *Server
	ctl      string
	uid, gid uint32
	distPort int
	node     string
	cookie   string
	cmd      *exec.Cmd
	done     chan struct{}
}

func newEjabberd(tb testing.TB, s *Server) *ejabberd {
	tb.Helper()
	e := &ejabberd{s: s, ctl: binary(tb, "ejabberdctl", "ejabberd")}
	u, err := user.Lookup("ejabberd")
	if err != nil {
		tb.Fatalf("no ejabberd user (apt-get install ejabberd): %v", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	e.uid, e.gid = uint32(uid), uint32(gid)
	if os.Getuid() != 0 && os.Getuid() != uid {
		tb.Fatalf("ejabberd runs as the ejabberd user: run the tests as root (as CI does)")
	}
	// Not t.TempDir: its parents are private to root, and ejabberd must
	// reach its files.
	dir, err := os.MkdirTemp("", "wxejd")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if tb.Failed() {
			tb.Logf("kept ejabberd's dir %s", dir)
			return
		}
		os.RemoveAll(dir)
	})
	s.Dir = dir
	b := make([]byte, 8)
	rand.Read(b)
	e.cookie = hex.EncodeToString(b)
	e.distPort = freePorts(tb, 1)[0]
	e.node = fmt.Sprintf("wxtest%d@localhost", e.distPort)
	return e
}

func (e *ejabberd) start(tb testing.TB) {
	tb.Helper()
	if e.s.ConfigFile == "" {
		e.writeConfig(tb)
	}
	os.Remove(filepath.Join(e.s.Dir, "ejabberd.pid"))
	starts := strings.Count(e.s.Log(), startedLine)
	cmd := e.command("foreground")
	logf, err := os.OpenFile(filepath.Join(e.s.Dir, "stdout.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		tb.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr.Setpgid = true
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start ejabberd: %v", err)
	}
	e.cmd = cmd
	e.done = make(chan struct{})
	go func() { cmd.Wait(); logf.Close(); close(e.done) }()
	e.s.waitListening(tb, e.done, e.s.C2SPort, e.s.TLSPort, e.s.HTTPSPort)
	// The listeners open before every module has started.
	deadline := time.Now().Add(30 * time.Second)
	for strings.Count(e.s.Log(), startedLine) == starts {
		select {
		case <-e.done:
			tb.Fatalf("ejabberd exited during start-up:\n%s", e.s.Log())
		default:
		}
		if time.Now().After(deadline) {
			tb.Fatalf("ejabberd did not start within 30s:\n%s", e.s.Log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// startedLine is what ejabberd logs once every module has started.
const startedLine = "is started in the node"

// command runs ejabberdctl with our config dir, as the ejabberd user, with
// a home of its own (no cookie file of the system's is read or written).
func (e *ejabberd) command(args ...string) *exec.Cmd {
	dir := e.s.Dir
	cmd := exec.Command(e.ctl, append([]string{"--config-dir", dir, "--spool", filepath.Join(dir, "spool"), "--logs", filepath.Join(dir, "log")}, args...)...)
	cmd.Dir = dir
	cmd.Env = []string{"HOME=" + dir, "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8"}
	cmd.SysProcAttr = &syscall.SysProcAttr{}
	if os.Getuid() != int(e.uid) {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: e.uid, Gid: e.gid}
	}
	return cmd
}

func (e *ejabberd) register(tb testing.TB, user, pass string) {
	tb.Helper()
	out, err := e.command("register", user, Domain, pass).CombinedOutput()
	if err != nil && strings.Contains(string(out), "already registered") {
		out, err = e.command("change_password", user, Domain, pass).CombinedOutput()
	}
	if err != nil {
		tb.Fatalf("ejabberdctl register %s: %v\n%s", user, err, out)
	}
}

// registerAll registers users, all through one Erlang VM that asks the
// server's node (an ejabberdctl call starts a VM of its own per user,
// about a second each).
func (e *ejabberd) registerAll(tb testing.TB, users []string) {
	tb.Helper()
	var calls []string
	for _, u := range users {
		calls = append(calls, fmt.Sprintf(`rpc:call(N, ejabberd_auth, try_register, [<<"%s">>, <<"%s">>, <<"%s">>])`, u, Domain, Password(u)))
	}
	eval := fmt.Sprintf(`N = '%s', R = [%s], io:format("~p~n", [R]), halt(case lists:all(fun(X) -> X =:= ok end, R) of true -> 0; false -> 1 end).`,
		e.node, strings.Join(calls, ", "))
	cmd := exec.Command("erl", "-noshell", "-hidden", "-sname", fmt.Sprintf("wxreg%d", e.distPort), "-setcookie", e.cookie,
		"-erl_epmd_port", strconv.Itoa(e.distPort), "-start_epmd", "false", "-dist_listen", "false", "-eval", eval)
	cmd.Dir = e.s.Dir
	cmd.Env = []string{"HOME=" + e.s.Dir, "PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	if os.Getuid() != int(e.uid) {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: e.uid, Gid: e.gid}}
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("register %v on ejabberd: %v\n%s", users, err, out)
	}
}

// pid is the Erlang VM's, as ejabberd wrote it.
func (e *ejabberd) pid() int {
	b, err := os.ReadFile(filepath.Join(e.s.Dir, "ejabberd.pid"))
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

func (e *ejabberd) signal(sig syscall.Signal) {
	if e.cmd == nil {
		return
	}
	if pid := e.pid(); pid > 0 {
		syscall.Kill(pid, sig)
	}
	syscall.Kill(-e.cmd.Process.Pid, sig)
}

func (e *ejabberd) stop(kill bool) {
	if e.cmd == nil {
		return
	}
	pid := e.pid()
	if pid > 0 && !kill {
		syscall.Kill(pid, syscall.SIGCONT)
		syscall.Kill(pid, syscall.SIGTERM) // the VM stops cleanly on SIGTERM
		select {
		case <-e.done:
		case <-time.After(10 * time.Second):
		}
	}
	if pid > 0 {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	syscall.Kill(-e.cmd.Process.Pid, syscall.SIGKILL)
	<-e.done
	e.cmd = nil
}

func (e *ejabberd) logFiles() []string {
	d := filepath.Join(e.s.Dir, "log")
	// error.log repeats ejabberd.log's warnings and errors: left out.
	// (stdout.log, what ejabberdctl foreground prints, repeats it too, but
	// also says why a start failed; count lines with Server.LogCount.)
	return []string{filepath.Join(d, "ejabberd.log"), filepath.Join(e.s.Dir, "stdout.log")}
}

func (e *ejabberd) writeConfig(tb testing.TB) {
	tb.Helper()
	s := e.s
	for _, d := range []string{"spool", "log", "upload"} {
		if err := os.MkdirAll(filepath.Join(s.Dir, d), 0o700); err != nil {
			tb.Fatal(err)
		}
	}
	crt, err1 := os.ReadFile(filepath.Join(s.Dir, "server.crt"))
	key, err2 := os.ReadFile(filepath.Join(s.Dir, "server.key"))
	if err1 != nil || err2 != nil {
		tb.Fatal(err1, err2)
	}
	write := func(name string, data []byte) {
		if err := os.WriteFile(filepath.Join(s.Dir, name), data, 0o600); err != nil {
			tb.Fatal(err)
		}
	}
	write("server.pem", append(crt, key...))
	inetrc, err := os.ReadFile("/etc/ejabberd/inetrc")
	if err != nil {
		inetrc = []byte("{lookup,[\"file\",\"native\"]}.\n{host,{127,0,0,1}, [\"localhost\",\"hostalias\"]}.\n{file, resolv, \"/etc/resolv.conf\"}.\n")
	}
	write("inetrc", inetrc)
	// Distribution on 127.0.0.1 at a fixed port, no epmd; the cookie on
	// the command line, not in a file.
	switch s.opts.Registration {
	case RegisterClosed, RegisterOpen, RegisterCaptcha, RegisterRedirect:
	default:
		tb.Fatalf("prosodytest: ejabberd has no registration %q here", s.opts.Registration)
	}
	// The CAPTCHA: ejabberd's example script draws the text it is given;
	// the wrapper also notes the text for the test, which plays the
	// person reading the image.
	if s.opts.Registration == RegisterCaptcha {
		write("captcha.sh", fmt.Appendf(nil, "#!/bin/sh\necho \"$1\" >>%s\nexec /usr/share/ejabberd/captcha.sh \"$1\"\n", filepath.Join(s.Dir, "captcha-answers")))
		if err := os.Chmod(filepath.Join(s.Dir, "captcha.sh"), 0o755); err != nil {
			tb.Fatal(err)
		}
	}
	write("ejabberdctl.cfg", fmt.Appendf(nil, `ERLANG_NODE=%s
INET_DIST_INTERFACE=127.0.0.1
ERL_EPMD_ADDRESS=127.0.0.1
ERL_DIST_PORT=%d
EJABBERD_PID_PATH=%s
ERL_OPTIONS="-env ERL_CRASH_DUMP_BYTES 0 -setcookie %s"
`, e.node, e.distPort, filepath.Join(s.Dir, "ejabberd.pid"), e.cookie))
	// The VM (and every ejabberdctl VM) halts when the test process is
	// gone, so that a test binary that dies leaves no server behind.
	// Backslashes quote the spaces and quotes of an args file.
	watch := fmt.Sprintf(`spawn(fun W() -> timer:sleep(1000), case file:read_file_info("/proc/%d") of {ok, _} -> W(); _ -> erlang:halt(1) end end)`, os.Getpid())
	write("vm.args", []byte("-eval "+strings.NewReplacer(" ", `\ `, `"`, `\"`).Replace(watch)+"\n"))
	var b bytes.Buffer
	if err := ejabberdTmpl.Execute(&b, struct {
		*Server
		Opts Options
	}{s, s.opts}); err != nil {
		tb.Fatal(err)
	}
	s.ConfigFile = filepath.Join(s.Dir, "ejabberd.yml")
	write("ejabberd.yml", b.Bytes())
	if err := os.Chmod(s.Dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	filepath.Walk(s.Dir, func(path string, _ os.FileInfo, err error) error {
		if err == nil {
			os.Lchown(path, int(e.uid), int(e.gid))
		}
		return nil
	})
}

// ejabberdTmpl is Debian's shipped ejabberd.yml (23.01) with its listeners
// on 127.0.0.1 and our ports, our host and certificate, and those
// listeners that would open ports of their own (BOSH/API/web admin, STUN,
// MQTT) left out. HTTP upload and the archive (mod_mam) are on, as the
// shipped file's commented examples have them, the archive in SQLite as
// they advise (Mnesia's is slow: a replay held the bot's pings for
// seconds); the SASL configuration and the shaper are as shipped.
var ejabberdTmpl = template.Must(template.New("ejabberd").Parse(`# generated by waxmpp's prosodytest
loglevel: info
log_rotate_count: 0
hosts:
  - "` + Domain + `"
certfiles:
  - "{{.Dir}}/server.pem"
define_macro:
  'TLS_CIPHERS': "HIGH:!aNULL:!eNULL:!3DES:@STRENGTH"
  'TLS_OPTIONS':
    - "no_sslv3"
    - "no_tlsv1"
    - "no_tlsv1_1"
    - "cipher_server_preference"
    - "no_compression"
c2s_ciphers: 'TLS_CIPHERS'
s2s_ciphers: 'TLS_CIPHERS'
c2s_protocol_options: 'TLS_OPTIONS'
s2s_protocol_options: 'TLS_OPTIONS'
listen:
  -
    port: {{.C2SPort}}
    ip: "127.0.0.1"
    module: ejabberd_c2s
    max_stanza_size: {{if .Opts.StanzaLimit}}{{.Opts.StanzaLimit}}{{else}}262144{{end}}
    shaper: c2s_shaper
    access: c2s
    starttls_required: true
    protocol_options: 'TLS_OPTIONS'
  -
    port: {{.TLSPort}}
    ip: "127.0.0.1"
    module: ejabberd_c2s
    max_stanza_size: {{if .Opts.StanzaLimit}}{{.Opts.StanzaLimit}}{{else}}262144{{end}}
    shaper: c2s_shaper
    access: c2s
    tls: true
    protocol_options: 'TLS_OPTIONS'
  -
    port: {{.HTTPSPort}}
    ip: "127.0.0.1"
    module: ejabberd_http
    tls: true
    protocol_options: 'TLS_OPTIONS'
    request_handlers:
      /upload: mod_http_upload
{{- if eq .Opts.Registration "captcha"}}
      /captcha: ejabberd_captcha
captcha_cmd: "{{.Dir}}/captcha.sh"
captcha_url: "https://127.0.0.1:{{.HTTPSPort}}/captcha"
{{- end}}
{{- if .Opts.Registration}}
registration_timeout: infinity
{{- end}}
disable_sasl_mechanisms:
  - "digest-md5"
  - "X-OAUTH2"
s2s_use_starttls: required
auth_password_format: scram
sql_type: sqlite
sql_database: "{{.Dir}}/spool/archive.db"
acl:
  admin:
     user:
       - "{{with .Opts.Admin}}{{.}}@` + Domain + `{{end}}"
  local:
    user_regexp: ""
  loopback:
    ip:
      - 127.0.0.0/8
      - ::1/128
access_rules:
  local:
    allow: local
  c2s:
    deny: blocked
    allow: all
  announce:
    allow: admin
  configure:
    allow: admin
  muc_create:
    allow: local
  pubsub_createnode:
    allow: local
  register:
    allow: all
  trusted_network:
    allow: loopback
api_permissions:
  "console commands":
    from:
      - ejabberd_ctl
    who: all
    what: "*"
shaper:
  normal:
    rate: 3000
    burst_size: 20000
  fast: 200000
shaper_rules:
  max_user_sessions: 10
  max_user_offline_messages:
    5000: admin
    100: all
  c2s_shaper:
{{- if .Opts.NoShaper}}
    none: all
{{- else}}
    none: admin
    normal: all
{{- end}}
  s2s_shaper: fast
modules:
  mod_adhoc: {}
  mod_admin_extra: {}
  mod_announce:
    access: announce
  mod_avatar: {}
  mod_blocking: {}
  mod_caps: {}
  mod_carboncopy: {}
  mod_client_state: {}
  mod_configure: {}
  mod_disco: {}
  mod_fail2ban: {}
  mod_http_upload:
    put_url: "https://127.0.0.1:{{.HTTPSPort}}/upload"
    docroot: "{{.Dir}}/upload"
    max_size: {{.Opts.UploadLimit}}
  mod_last: {}
{{- if not .Opts.NoArchive}}
  mod_mam:
    db_type: sql
    assume_mam_usage: true
    default: {{if .Opts.ArchiveOnRequest}}never{{else}}always{{end}}
{{- end}}
{{- if ne .Opts.Rooms 1}}
  mod_muc:
    host: "conference.` + Domain + `"
    access:
      - allow
    access_admin:
      - allow: admin
    access_create: {{if eq .Opts.Rooms 2}}configure{{else}}muc_create{{end}}
    access_persistent: muc_create
    access_mam:
      - allow
    default_room_options:
      mam: true
  mod_muc_admin: {}
{{- end}}
  mod_offline:
    access_max_user_messages: max_user_offline_messages
  mod_ping: {}
  mod_pres_counter:
    count: 5
    interval: 60
  mod_privacy: {}
  mod_private: {}
  mod_pubsub:
    access_createnode: pubsub_createnode
    plugins:
      - flat
      - pep
    force_node_config:
      "eu.siacs.conversations.axolotl.*":
        access_model: open
      storage:bookmarks:
        access_model: whitelist
  mod_push: {}
  mod_push_keepalive: {}
  mod_roster:
    versioning: true
  mod_s2s_dialback: {}
  mod_shared_roster: {}
  mod_sic: {}
{{- if not .Opts.NoStreamManagement}}
  mod_stream_mgmt:
    resend_on_timeout: if_offline
{{- end}}
{{- if .Opts.Registration}}
  mod_register:
    access: register
{{- if eq .Opts.Registration "captcha"}}
    captcha_protected: true
{{- end}}
{{- if eq .Opts.Registration "redirect"}}
    redirect_url: "` + RedirectURL + `"
{{- end}}
{{- end}}
  mod_vcard:
    search: false
  mod_vcard_xupdate: {}
  mod_version: {}
`))
