//go:build simwa

package main

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"waxmpp/bridge"
	pt "waxmpp/bridge/prosodytest"
	"waxmpp/bridge/simwa"
)

// The end-to-end harness for the simulated WhatsApp: the real binary,
// built with -tags simwa, runs as a separate process against a real
// Prosody; the test is WhatsApp (through the control socket) and the owner
// (a raw XMPP client). Run with: go test -tags simwa ./cmd/waxmpp/

var (
	simBuildOnce sync.Once
	simBinPath   string
	simBuildErr  error
)

// simBinary builds waxmpp with -tags simwa once per test run, beside the
// binary of the untagged tests (TestMain removes that directory);
// benchmarks build their own into a temp dir.
func simBinary(tb testing.TB) string {
	tb.Helper()
	t, ok := tb.(*testing.T)
	if !ok {
		p := filepath.Join(tb.TempDir(), "waxmpp-simwa")
		if err := buildSim(p); err != nil {
			tb.Fatal(err)
		}
		return p
	}
	dir := filepath.Dir(binary(t))
	simBuildOnce.Do(func() {
		simBinPath = filepath.Join(dir, "waxmpp-simwa")
		simBuildErr = buildSim(simBinPath)
	})
	if simBuildErr != nil {
		tb.Fatal(simBuildErr)
	}
	return simBinPath
}

func buildSim(path string) error {
	gotool, err := exec.LookPath("go")
	if err != nil {
		return err
	}
	cmd := exec.Command(gotool, "build", "-tags", "simwa", "-o", path, "-ldflags", "-X main.version="+testVersion, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build -tags simwa: %v\n%s", err, out)
	}
	return nil
}

// simEnv is one Prosody, one owner client, and the binary (restartable)
// with its simulated WhatsApp.
type simEnv struct {
	tb    testing.TB
	srv   *pt.Server
	owner *pt.Client
	bot   string // the bot's bare JID
	runs  int    // the benchmark's direct runs so far, for their ids
	dir   string
	conf  string
	sock  string

	cmd     *exec.Cmd
	pid     int         // the binary's: cmd's, or strace's child's (writes)
	writes  *fileWrites // envOptions.traceWrites
	exited  chan error
	stderr  *syncBuffer
	logFile *os.File // the binary's whole log, kept with the dir when a test fails
	sim     *simwa.Client
	watch   *simwa.Watcher
	// watchDone is closed when the watcher has recorded all the process's
	// actions (its connection ended).
	watchDone chan struct{}
	starts    int
	noFFmpeg  bool
	arch      string // envOptions.arch
	bin       string // the binary built for arch
	profiles  string // where its allocation profiles go (bench_stages_sim_test.go)

	mu       sync.Mutex
	actions  []simwa.Action // every action of every process, in order
	stanzas  []*pt.Elem     // everything the owner received
	changed  chan struct{}
	ownerSeq int
	// discard counts messages the owner receives instead of keeping them
	// (a benchmark's load phase).
	discard   bool
	discarded int
	// acked counts the core's acknowledgements of messages, by WhatsApp id.
	acked map[string]int
}

// unacked returns the messages of evs the core has not acknowledged.
func (e *simEnv) unacked(evs []*bridge.Message) []bridge.Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []bridge.Event
	for _, m := range evs {
		if e.acked[m.Ref.ID] == 0 {
			out = append(out, m)
		}
	}
	return out
}

// counted is how many messages were discarded.
func (e *simEnv) counted() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.discarded
}

// Well-known people and chats of the simulated address book.
const (
	alice  = "491701111111@s.whatsapp.net"
	bob    = "491702222222@s.whatsapp.net"
	carol  = "491703333333@s.whatsapp.net"
	family = "120363000000000001@g.us"
)

type envOptions struct {
	rate   int  // xmpp.rate; 0: 10 MB/s (the server's throttle is off)
	limits bool // the server's default throttle on (and xmpp.rate's default)
	// ping is xmpp.ping_interval and ping_timeout; zero: 5s and 3s, so
	// that tests notice a dead link fast. A loaded Prosody may answer
	// slower than 3s.
	pingInterval, pingTimeout time.Duration
	uploadLimit               int64 // Prosody's upload size limit; 0: its harness default
	noFFmpeg                  bool  // run the binary with a PATH that has no ffmpeg
	// rooms is how the server offers group chats; roomsAuto is [rooms]
	// auto; strangerAdmin makes the stranger the server's admin, who may
	// enter any room (rooms_sim_test.go).
	rooms         pt.RoomPolicy
	roomsAuto     bool
	strangerAdmin bool
	// roomPictures gives Prosody's rooms pictures (mod_vcard_muc);
	// ejabberd's have them always (room_picture_sim_test.go).
	roomPictures bool
	// noSubscribe: the test owner leaves the bot's subscription request
	// unanswered (a real client in the test answers it).
	noSubscribe bool
	// arch runs the binary built for a Pi under qemu-user (benchArches).
	arch string
	// traceWrites runs the binary under strace, which logs its writes
	// to the state file (fileWrites: the disk benchmark only).
	traceWrites bool
	// logLevel is [log] level; "": debug, which tests read.
	logLevel string
	// archiveItemLimit is Prosody's storage_archive_item_limit (0: its
	// default, 10,000).
	archiveItemLimit int
}

func newSimEnv(tb testing.TB, o envOptions) *simEnv {
	tb.Helper()
	e := &simEnv{tb: tb, changed: make(chan struct{}), acked: map[string]int{}}
	// The server: $WAXMPP_TEST_SERVER (make test runs this suite on
	// each); its throttle only where a test asks for it.
	srvOpts := pt.Options{Kind: pt.EnvKind(tb), Limits: o.limits, NoShaper: !o.limits, UploadLimit: o.uploadLimit, Rooms: o.rooms, RoomPictures: o.roomPictures,
		ArchiveItemLimit: o.archiveItemLimit}
	if o.strangerAdmin {
		srvOpts.Admin = "stranger"
	}
	e.srv = pt.Start(tb, srvOpts)
	e.noFFmpeg = o.noFFmpeg
	e.arch = o.arch
	if o.traceWrites {
		e.writes = &fileWrites{log: filepath.Join(tb.TempDir(), "strace.log")}
	}
	e.owner = e.srv.Dial(tb, "owner")
	e.bot = e.srv.JID("bot")
	// Unix socket paths must be short; t.TempDir's can be long.
	dir, err := os.MkdirTemp("", "wxs")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if tb.Failed() {
			tb.Logf("kept %s (config, state, waxmpp.log)", dir)
			return
		}
		os.RemoveAll(dir)
	})
	e.dir = dir
	e.sock = filepath.Join(dir, "sim.sock")
	rate := o.rate
	if rate == 0 {
		rate = 10_000_000
	}
	burst := max(rate, 1<<20)
	if o.limits {
		rate, burst = 8000, 16000 // xmpp.rate's and xmpp.burst's defaults
	}
	doc := fmt.Sprintf(`[xmpp]
jid = %q
password = %q
owner = %q
server = %q
ca_file = %q
rate = %d
burst = %d
ping_interval = %q
ping_timeout = %q
[store]
path = %q
[rooms]
auto = %v
[log]
level = %q
`, e.bot, pt.Password("bot"), e.srv.JID("owner"), e.srv.Addr(), e.srv.CAFile, rate, burst,
		cmp.Or(o.pingInterval, 5*time.Second).String(), cmp.Or(o.pingTimeout, 3*time.Second).String(), filepath.Join(dir, "waxmpp.db"), o.roomsAuto,
		cmp.Or(o.logLevel, "debug"))
	e.conf = filepath.Join(dir, "config.toml")
	if err := os.WriteFile(e.conf, []byte(doc), 0o600); err != nil {
		tb.Fatal(err)
	}
	go e.collect()
	e.start()
	tb.Cleanup(e.shutdown)
	if o.noSubscribe {
		return e
	}
	// The bot asks for the owner's subscription; grant it and ask back, so
	// the owner sees the bot's presence.
	e.waitStanza(15*time.Second, func(s *pt.Elem) bool {
		return s.XMLName.Local == "presence" && s.Attr("type") == "subscribe" && s.Attr("from") == e.bot
	})
	e.owner.Send("<presence to='" + e.bot + "' type='subscribed'/><presence to='" + e.bot + "' type='subscribe'/>")
	return e
}

// collect keeps everything the owner receives, so that no expectation
// drops a stanza another one waits for.
func (e *simEnv) collect() {
	for {
		s, err := e.owner.Wait(24*time.Hour, nil)
		if err != nil {
			return
		}
		e.mu.Lock()
		if !e.discard {
			e.stanzas = append(e.stanzas, s)
		} else if s.XMLName.Local == "message" {
			e.discarded++
		}
		close(e.changed)
		e.changed = make(chan struct{})
		e.mu.Unlock()
	}
}

// start starts the binary and connects to its simulator: the request
// client and a watcher that records every action.
func (e *simEnv) start() {
	e.tb.Helper()
	e.starts++
	e.cmd = e.runCmd("run", "--config", e.conf, "--simulator", e.sock) // bench_arch_sim_test.go
	if e.writes != nil {
		e.cmd = e.writes.wrap(e.tb, e.cmd)
	}
	// A finer allocation profile than the default 512 KiB, for the
	// benchmarks' (bench_stages_sim_test.go).
	e.cmd.Env = append(os.Environ(), "NOTIFY_SOCKET=", "GODEBUG=memprofilerate=16384")
	if e.noFFmpeg {
		e.cmd.Env = append(e.cmd.Env, "PATH="+e.dir) // nothing to run there
	}
	if e.stderr == nil {
		e.stderr = &syncBuffer{}
		f, err := os.OpenFile(filepath.Join(e.dir, "waxmpp.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
		if err != nil {
			e.tb.Fatal(err)
		}
		e.tb.Cleanup(func() { f.Close() })
		e.logFile = f
	}
	fmt.Fprintf(e.stderr, "=== start %d ===\n", e.starts)
	fmt.Fprintf(e.logFile, "=== start %d ===\n", e.starts)
	e.cmd.Stderr = io.MultiWriter(e.stderr, e.logFile)
	e.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := e.cmd.Start(); err != nil {
		e.tb.Fatal(err)
	}
	e.pid = e.cmd.Process.Pid
	if e.writes != nil {
		e.pid = tracee(e.tb, e.pid)
	}
	e.exited = make(chan error, 1)
	go func(cmd *exec.Cmd, ch chan error) { ch <- cmd.Wait() }(e.cmd, e.exited)
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := e.probe()
		if err == nil {
			break
		}
		select {
		case err := <-e.exited:
			e.tb.Fatalf("waxmpp exited during start-up: %v\n%s", err, e.stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			e.tb.Fatalf("the simulator socket did not come up: %v\n%s", err, e.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	w, err := simwa.WatchAll(e.sock, 5*time.Second)
	if err != nil {
		e.tb.Fatal(err)
	}
	e.watch = w
	e.watchDone = make(chan struct{})
	go func(w *simwa.Watcher, done chan struct{}) {
		defer close(done)
		acts, acks := w.C, w.Handled
		for acts != nil || acks != nil {
			select {
			case a, ok := <-acts:
				if !ok {
					acts = nil
					continue
				}
				e.mu.Lock()
				e.actions = append(e.actions, a)
				close(e.changed)
				e.changed = make(chan struct{})
				e.mu.Unlock()
			case h, ok := <-acks:
				if !ok {
					acks = nil
					continue
				}
				e.mu.Lock()
				if h.Type == "message" {
					e.acked[h.ID]++
				}
				close(e.changed) // a state waitLogs' callers may wait for
				e.changed = make(chan struct{})
				e.mu.Unlock()
			}
		}
	}(e.watch, e.watchDone)
	c, err := simwa.Dial(e.sock, 5*time.Second)
	if err != nil {
		e.tb.Fatal(err)
	}
	e.sim = c
}

// probe checks that the socket answers and belongs to the new process
// (not a dead one's leftover file).
func (e *simEnv) probe() error {
	c, err := simwa.Dial(e.sock, 50*time.Millisecond)
	if err != nil {
		return err
	}
	defer c.Close()
	st, err := c.State()
	if err == nil && st.PID != e.pid {
		err = fmt.Errorf("socket of pid %d, want %d", st.PID, e.pid)
	}
	return err
}

// kill SIGKILLs the binary, like a power cut.
func (e *simEnv) kill() {
	e.tb.Helper()
	syscall.Kill(e.pid, syscall.SIGKILL)
	<-e.exited
	e.cmd = nil
	e.sim.Close()
	// The watcher records what the dead process wrote, then ends.
	<-e.watchDone
}

// stop SIGTERMs the binary and expects a clean exit.
func (e *simEnv) stop() {
	e.tb.Helper()
	syscall.Kill(e.pid, syscall.SIGTERM)
	select {
	case err := <-e.exited:
		if err != nil {
			e.tb.Errorf("exit after SIGTERM: %v\n%s", err, e.stderr.String())
		}
	case <-time.After(15 * time.Second):
		syscall.Kill(e.pid, syscall.SIGKILL)
		e.cmd.Process.Kill()
		<-e.exited
		e.tb.Errorf("still running 15s after SIGTERM\n%s", e.stderr.String())
	}
	e.cmd = nil
	e.sim.Close()
	<-e.watchDone
}

func (e *simEnv) shutdown() {
	if e.cmd != nil {
		syscall.Kill(e.pid, syscall.SIGTERM)
		select {
		case <-e.exited:
		case <-time.After(10 * time.Second):
			syscall.Kill(e.pid, syscall.SIGKILL)
			e.cmd.Process.Kill()
			<-e.exited
		}
		e.sim.Close()
		e.watch.Close()
	}
	if e.tb.Failed() {
		e.tb.Logf("waxmpp's log:\n%s", tail(e.stderr.String(), 200))
	}
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// inject sends events through the control socket.
func (e *simEnv) inject(evs ...bridge.Event) {
	e.tb.Helper()
	if err := e.sim.Inject(evs...); err != nil {
		e.tb.Fatal(err)
	}
}

// injectJSON sends one raw event object, as another language would.
func (e *simEnv) injectJSON(event string) {
	e.tb.Helper()
	rep, err := e.sim.Raw([]byte(`{"op":"event","event":` + event + `}`))
	if err != nil || !rep.OK {
		e.tb.Fatalf("event %s: %v %s", event, err, rep.Error)
	}
}

func (e *simEnv) script(r simwa.Rule) {
	e.tb.Helper()
	if err := e.sim.Script(r); err != nil {
		e.tb.Fatal(err)
	}
}

// Marks: positions in the action and stanza logs, so that an expectation
// looks only at what happened after its cause.
type mark struct{ actions, stanzas int }

func (e *simEnv) mark() mark {
	e.mu.Lock()
	defer e.mu.Unlock()
	return mark{len(e.actions), len(e.stanzas)}
}

// waitFor waits until scan finds what it wants in the logs.
func (e *simEnv) waitLogs(timeout time.Duration, scan func(actions []simwa.Action, stanzas []*pt.Elem) bool) bool {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		e.mu.Lock()
		ok := scan(e.actions, e.stanzas)
		ch := e.changed
		e.mu.Unlock()
		if ok {
			return true
		}
		select {
		case <-ch:
		case <-deadline.C:
			return false
		}
	}
}

// action waits for an action after m that match accepts.
func (e *simEnv) action(m mark, timeout time.Duration, what string, match func(a simwa.Action) bool) simwa.Action {
	e.tb.Helper()
	var got simwa.Action
	if !e.waitLogs(timeout, func(as []simwa.Action, _ []*pt.Elem) bool {
		for _, a := range as[m.actions:] {
			if match(a) {
				got = a
				return true
			}
		}
		return false
	}) {
		e.tb.Fatalf("no WhatsApp action %s within %v; actions since: %s", what, timeout, e.describeActions(m))
	}
	return got
}

// noAction checks that no action after m matches within d.
func (e *simEnv) noAction(m mark, d time.Duration, what string, match func(a simwa.Action) bool) {
	e.tb.Helper()
	var got simwa.Action
	if e.waitLogs(d, func(as []simwa.Action, _ []*pt.Elem) bool {
		for _, a := range as[m.actions:] {
			if match(a) {
				got = a
				return true
			}
		}
		return false
	}) {
		b, _ := json.Marshal(got)
		e.tb.Fatalf("unexpected WhatsApp action (%s): %s", what, b)
	}
}

func (e *simEnv) describeActions(m mark) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var b strings.Builder
	for _, a := range e.actions[m.actions:] {
		j, _ := json.Marshal(a)
		b.WriteString("\n  " + string(j))
	}
	if b.Len() == 0 {
		return "none"
	}
	return b.String()
}

func (e *simEnv) describeStanzas(m mark) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var b strings.Builder
	for _, s := range e.stanzas[m.stanzas:] {
		if s.XMLName.Local == "presence" {
			continue
		}
		b.WriteString("\n  " + s.String())
	}
	if b.Len() == 0 {
		return "none"
	}
	return b.String()
}

// waitStanza waits for any stanza (from the start of the log).
func (e *simEnv) waitStanza(timeout time.Duration, match func(*pt.Elem) bool) *pt.Elem {
	e.tb.Helper()
	return e.stanza(mark{}, timeout, "", match)
}

// stanza waits for a stanza after m that match accepts.
func (e *simEnv) stanza(m mark, timeout time.Duration, what string, match func(*pt.Elem) bool) *pt.Elem {
	e.tb.Helper()
	var got *pt.Elem
	if !e.waitLogs(timeout, func(_ []simwa.Action, ss []*pt.Elem) bool {
		for _, s := range ss[m.stanzas:] {
			if match(s) {
				got = s
				return true
			}
		}
		return false
	}) {
		e.tb.Fatalf("the owner received no %s within %v; received since: %s", what, timeout, e.describeStanzas(m))
	}
	return got
}

// fromBot matches message stanzas from the bot.
func (e *simEnv) fromBot(s *pt.Elem) bool {
	return s.XMLName.Local == "message" && strings.HasPrefix(s.Attr("from"), e.bot)
}

// msg waits for a message from the bot, after m, whose body contains
// every one of parts.
func (e *simEnv) msg(m mark, parts ...string) *pt.Elem {
	e.tb.Helper()
	return e.stanza(m, 15*time.Second, fmt.Sprintf("message containing %q", parts), func(s *pt.Elem) bool {
		if !e.fromBot(s) || s.Child("", "body") == nil {
			return false
		}
		for _, p := range parts {
			if !strings.Contains(s.Body(), p) {
				return false
			}
		}
		return true
	})
}

// reply waits for the bot's next message with a body after m (a command's
// answer).
func (e *simEnv) reply(m mark) string {
	e.tb.Helper()
	return e.stanza(m, 15*time.Second, "answer", func(s *pt.Elem) bool {
		return e.fromBot(s) && s.Child("", "body") != nil
	}).Body()
}

// child waits for a message from the bot after m carrying child
// space:local whose attribute attr (if attr != "") is val.
func (e *simEnv) child(m mark, space, local, attr, val string) *pt.Elem {
	e.tb.Helper()
	return e.stanza(m, 15*time.Second, fmt.Sprintf("<%s xmlns='%s' %s='%s'/>", local, space, attr, val), func(s *pt.Elem) bool {
		if !e.fromBot(s) {
			return false
		}
		c := s.Child(space, local)
		return c != nil && (attr == "" || c.Attr(attr) == val)
	})
}

// send sends a message from the owner to the bot: id, body (may be "")
// and extra raw XML children. It returns the id.
func (e *simEnv) send(body, extra string) string {
	e.tb.Helper()
	e.mu.Lock()
	e.ownerSeq++
	id := fmt.Sprintf("own-%d-%d", time.Now().UnixNano(), e.ownerSeq)
	e.mu.Unlock()
	e.sendID(id, body, extra)
	return id
}

func (e *simEnv) sendID(id, body, extra string) {
	e.tb.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "<message to='%s' type='chat' id='%s'>", e.bot, id)
	if body != "" {
		b.WriteString("<body>" + pt.Esc(body) + "</body>")
	}
	b.WriteString(extra)
	b.WriteString("<origin-id xmlns='urn:xmpp:sid:0' id='" + id + "'/></message>")
	if err := e.owner.Send(b.String()); err != nil {
		e.tb.Fatal(err)
	}
}

// command sends a command and returns the bot's answer.
func (e *simEnv) command(text string) string {
	e.tb.Helper()
	m := e.mark()
	e.send(text, "")
	return e.reply(m)
}

// sendTo is an action matcher: send_text to chat with text.
func sendTo(chat, text string) func(simwa.Action) bool {
	return func(a simwa.Action) bool { return a.Type == "send_text" && a.Chat == chat && a.Text == text }
}

// relayed injects a text message and returns the XMPP id the owner got it
// under.
func (e *simEnv) relayed(m *bridge.Message, parts ...string) string {
	e.tb.Helper()
	mk := e.mark()
	e.inject(m)
	if len(parts) == 0 {
		parts = []string{m.Text}
	}
	return e.msg(mk, parts...).Attr("id")
}

func textMsg(chat, sender, id, text, push string) *bridge.Message {
	return &bridge.Message{Ref: bridge.MsgRef{Chat: bridge.ChatID(chat), Sender: bridge.UserID(sender), ID: id},
		Kind: bridge.Text, Text: text, PushName: push, Time: time.Now()}
}

// addressBook injects the contacts and the group used by the tests, and
// a first message from each chat, so that the chats exist (have handles).
func (e *simEnv) addressBook() {
	e.tb.Helper()
	e.inject(
		&bridge.ContactInfo{User: alice, FullName: "Alice"},
		&bridge.ContactInfo{User: bob, FullName: "Bob"},
		&bridge.ContactInfo{User: carol, FullName: "Carol"},
		&bridge.ChatInfo{Chat: family, Kind: bridge.Group, Name: "Family"},
	)
	e.relayed(textMsg(alice, alice, "HELLO-A", "hello from alice", "Alice"))
	e.relayed(textMsg(bob, bob, "HELLO-B", "hello from bob", "Bob"))
	e.relayed(textMsg(family, carol, "HELLO-F", "hello from the family", "Carol"))
}

var choiceRE = regexp.MustCompile(`(\d+)\)\s*\*?([^0-9?*]+)`)

// choice finds the number a "Send to 1) Alice 2) Family?" question gives
// name.
func choice(tb testing.TB, question, name string) string {
	tb.Helper()
	for _, m := range choiceRE.FindAllStringSubmatch(question, -1) {
		if strings.Contains(m[2], name) {
			return m[1]
		}
	}
	tb.Fatalf("the question %q offers no %s", question, name)
	return ""
}
