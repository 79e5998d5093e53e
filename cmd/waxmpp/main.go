// Waxmpp bridges one person's WhatsApp account to their XMPP account.
//
// Usage:
//
//	waxmpp run [--config FILE]   run the bridge until SIGINT or SIGTERM
//	waxmpp pair [--phone +NUMBER]        link WhatsApp in the terminal (bridge stopped)
//	waxmpp backup [--config FILE] FILE   copy the state file, also while running
//	waxmpp bootconfig            apply waxmpp.txt from the boot partition (SD image)
//	waxmpp version               print the version, Go version and platform
//	waxmpp help [COMMAND]        print this usage, or COMMAND's (also COMMAND --help)
//
// The config file is --config, else $WAXMPP_CONFIG, else
// /etc/waxmpp/config.toml. Logs go to stderr (the journal, under systemd).
//
// Exit codes, for systemd (the unit sets RestartPreventExitStatus=78):
//
//	0   success, a clean stop on SIGINT/SIGTERM, or help asked for
//	1   runtime failure; systemd restarts the service
//	2   usage: unknown command, flag or argument
//	78  EX_CONFIG: not configured yet, or the config is invalid;
//	    restarting cannot help, so systemd does not
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"

	"waxmpp/bridge/config"
	"waxmpp/bridge/store"
	"waxmpp/setup/doctor"
)

// version is set at build time: go build -ldflags "-X main.version=1.2.3".
var version = "dev"

// DefaultConfigPath is where the config lives when neither --config nor
// $WAXMPP_CONFIG says otherwise.
const DefaultConfigPath = "/etc/waxmpp/config.toml"

// Exit codes; see the package documentation.
const (
	exitOK       = 0
	exitFailure  = 1
	exitUsage    = 2
	exitExConfig = 78 // sysexits.h EX_CONFIG
)

const usage = `usage: waxmpp <command> [flags]

commands:
  run [--config FILE]   run the bridge until SIGINT or SIGTERM
                        (FILE defaults to $WAXMPP_CONFIG, else /etc/waxmpp/config.toml)
` + simUsage + `  pair [--config FILE] [--phone +NUMBER]
                        link WhatsApp in this terminal (QR code, or a link
                        code for NUMBER); the bridge must be stopped
  backup [--config FILE] FILE
                        write a consistent copy of the state file, also
                        while the bridge runs
  setup [--web]         set waxmpp up (as root): your address, the bot account,
                        WhatsApp; then write the config and start the service
  doctor [--json]       check everything that can go wrong, and say what to do
  bootconfig [--boot DIR] [--root DIR]
                        apply waxmpp.txt from the SD image's boot partition
                        (DIR: /boot/firmware, /); the image runs it at boot
  version               print the version
  help [COMMAND]        print this help, or COMMAND's own (also COMMAND --help)
`

func main() {
	doctor.RunChild() // doctor's state reader, when started as one
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// After the first signal, restore the default action: a second Ctrl-C
	// or SIGTERM kills a shutdown that hangs.
	go func() {
		<-ctx.Done()
		stop()
	}()
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}

// run is main without the process: it parses args, runs the command, closes
// what it opened, reports the error on stderr and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	m := NewMain()
	m.Stdout, m.Stderr, m.Getenv = stdout, stderr, getenv
	err := m.ParseFlags(ctx, args)
	if err == nil {
		err = m.Run(ctx)
	}
	if cerr := m.Close(); err == nil {
		err = cerr
	}
	m.report(err)
	if m.Command == "run" {
		m.notifyState("STATUS=" + stopStatus(err))
	}
	return exitCode(err)
}

// Main is the program: ParseFlags, then Run, then Close. End-to-end tests
// drive it in-process the way main does.
type Main struct {
	Stdin  io.Reader // setup's answers
	Stdout io.Writer
	Stderr io.Writer // logs and error reports
	// Getenv reads the environment (os.Getenv); tests replace it.
	Getenv func(string) string

	// Command is the subcommand chosen by ParseFlags: "run" or "version".
	Command string
	// ConfigPath is the config file for run and backup.
	ConfigPath string
	// BackupFile is where backup writes the copy.
	BackupFile string
	// Phone is pair's --phone: a link code for this number, not a QR code.
	Phone string
	// Setup and Doctor are those commands' flags (setup.go, doctor.go).
	Setup  setupFlags
	Doctor doctorFlags
	// Simulator is run's --simulator, in a test build (-tags simwa) only:
	// the control socket of the simulated WhatsApp that replaces WhatsApp.
	Simulator string
	// Boot holds bootconfig's flags.
	Boot bootFlags

	// Config is the loaded configuration, once Run has read it.
	Config config.Config

	log     *slog.Logger // the "main" component's; runBridge derives the others from the root
	db      *store.DB
	journal bool // stderr is the journal (journal.go)
}

// NewMain returns a Main writing to the process's stdout and stderr.
func NewMain() *Main {
	return &Main{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv}
}

// usageError is a command line that makes no sense; exit code 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

// helpRequest is help asked for: `waxmpp help [COMMAND]`, `waxmpp --help`
// or `waxmpp COMMAND --help`. report prints it on stdout and the exit code
// is 0; cmd is "" for the overview.
type helpRequest struct{ cmd string }

func (h *helpRequest) Error() string { return "help requested" }

// commands describes each command for its own --help.
var commands = map[string]struct{ synopsis, about string }{
	"run": {"run [--config FILE]", `Run the bridge until SIGINT or SIGTERM. FILE defaults to $WAXMPP_CONFIG,
else /etc/waxmpp/config.toml.`},
	"pair": {"pair [--config FILE] [--phone +NUMBER]", `Link WhatsApp in this terminal: a QR code to scan with the phone, or with
--phone a link code to type on it. The bridge must be stopped (or send
/pair to the bot instead).`},
	"backup": {"backup [--config FILE] FILE", `Write a consistent copy of the state file to FILE (mode 0600), also while
the bridge runs.`},
	"version":    {"version", "Print the version, the Go version and the platform."},
	"bootconfig": {"bootconfig [--boot DIR] [--root DIR]", bootconfigAbout},
}

// flagSet returns cmd's flags, bound to m's fields; false for a command
// that does not exist.
func (m *Main) flagSet(cmd string) (*flag.FlagSet, bool) {
	if _, ok := commands[cmd]; !ok {
		return nil, false
	}
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // report prints the error and the usage once
	fs.Usage = func() {}
	switch cmd {
	case "version":
		return fs, true
	case "bootconfig":
		m.Boot.register(fs)
		return fs, true
	}
	def := DefaultConfigPath
	if p := m.Getenv("WAXMPP_CONFIG"); p != "" {
		def = p
	}
	fs.StringVar(&m.ConfigPath, "config", def, "config file")
	switch cmd {
	case "run":
		simFlag(fs, &m.Simulator)
	case "pair":
		fs.StringVar(&m.Phone, "phone", "", "link with an 8-character code for this number instead of a QR code")
	case "setup":
		m.Setup.define(fs) // setup.go
	case "doctor":
		m.Doctor.define(fs) // doctor.go
	}
	return fs, true
}

// ParseFlags parses the command line, without the program name.
func (m *Main) ParseFlags(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return &usageError{"no command given"}
	}
	cmd, args := args[0], args[1:]
	switch cmd {
	case "help", "-h", "-help", "--help":
		if len(args) == 0 {
			return &helpRequest{}
		}
		if _, ok := commands[args[0]]; !ok || len(args) > 1 {
			return &usageError{fmt.Sprintf("help: unknown command %q", strings.Join(args, " "))}
		}
		return &helpRequest{cmd: args[0]}
	}
	fs, ok := m.flagSet(cmd)
	if !ok {
		return &usageError{fmt.Sprintf("unknown command %q", cmd)}
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return &helpRequest{cmd: cmd}
		}
		return &usageError{fmt.Sprintf("%s: %v", cmd, err)}
	}
	if cmd == "backup" {
		if fs.NArg() != 1 {
			return &usageError{"backup: name the file to write, e.g. waxmpp backup /root/waxmpp-backup.db"}
		}
		m.BackupFile = fs.Arg(0)
	} else if fs.NArg() > 0 {
		return &usageError{fmt.Sprintf("%s: unexpected argument %q", cmd, fs.Arg(0))}
	}
	if cmd == "run" && m.ConfigPath == "" {
		return &usageError{"run: --config must name a file"}
	}
	if p := checkSimulator(m.Simulator); p != "" {
		return &usageError{"run --simulator: " + p}
	}
	m.Command = cmd
	return nil
}

// Run runs the command chosen by ParseFlags. For run it blocks until ctx is
// cancelled (a clean stop, nil) or the bridge fails.
func (m *Main) Run(ctx context.Context) error {
	switch m.Command {
	case "version":
		_, err := fmt.Fprintf(m.Stdout, "waxmpp %s %s %s/%s\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
		return err
	case "run":
		return m.run(ctx)
	case "backup":
		return m.backup(ctx)
	case "pair":
		return m.runPair(ctx, m.Phone)
	case "setup":
		return m.runSetup(ctx)
	case "doctor":
		return m.runDoctor(ctx)
	case "bootconfig":
		return m.bootconfig()
	}
	return &usageError{"no command given"}
}

func (m *Main) run(ctx context.Context) error {
	// The collector runs once the heap has grown by half of what was
	// live at the last collection, not by all of it (Go's default): on
	// a board with 512 MB or less the heap peaks a third lower (after
	// 100k mapped messages 25 MB instead of 33), for collections that
	// took under 1 % of the processor in the burst benchmark. GOGC in
	// the environment still decides, as it does for any Go program.
	if m.Getenv("GOGC") == "" {
		debug.SetGCPercent(50)
	}
	m.journal = isJournal(m.Stderr, m.Getenv("JOURNAL_STREAM"))
	m.notifyState("STATUS=starting")
	cfg, err := config.Load(m.ConfigPath)
	if err != nil {
		return err
	}
	m.Config = cfg
	root := newLogger(m.Stderr, cfg.Log, m.journal)
	m.log = root.With("component", "main")
	log := m.log
	log.Info("config loaded", "path", m.ConfigPath, "config", cfg.Redacted())
	warnReadable(log, m.ConfigPath, cfg)

	db, err := store.Open(cfg.Store.Path, store.Options{MessageMaxAge: time.Duration(cfg.Store.Retention)})
	if err != nil {
		return err
	}
	m.db = db
	stopControl, err := serveControl(ctx, db, log)
	if err != nil {
		return err
	}
	defer stopControl()

	log.Info("started", "version", version)
	// READY=1 comes from supervise, once the core's loop answers.
	err = m.runBridge(ctx, root, db)
	notify(log, daemon.SdNotifyStopping)
	if ctx.Err() != nil && (err == nil || errors.Is(err, context.Canceled)) {
		log.Info("stopping", "cause", context.Cause(ctx))
		return nil
	}
	if err == nil {
		return errors.New("bridge stopped on its own")
	}
	return err
}

// Close releases what Run opened. It is safe to call more than once and
// when Run was never called.
func (m *Main) Close() error {
	if m.db == nil {
		return nil
	}
	err := m.db.Close()
	m.db = nil
	if m.log != nil && err == nil {
		m.log.Info("stopped")
	}
	return err
}

// report prints err for a person: the error itself, then what to do.
func (m *Main) report(err error) {
	if err == nil {
		return
	}
	var help *helpRequest
	if errors.As(err, &help) {
		m.help(help.cmd)
		return
	}
	prefix := "waxmpp: "
	if m.journal {
		prefix = "<3>waxmpp: " // priority err (journal.go)
	}
	for line := range strings.SplitSeq(err.Error(), "\n") {
		fmt.Fprintf(m.Stderr, "%s%s\n", prefix, line)
	}
	var ue *usageError
	switch {
	case errors.As(err, &ue):
		fmt.Fprint(m.Stderr, usage)
	case errors.Is(err, config.ErrNotConfigured):
		fmt.Fprintf(m.Stderr, "waxmpp: run sudo waxmpp setup (or write %s by hand; see README)\n", m.ConfigPath)
	}
}

// help prints the overview, or cmd's own usage with its flags, on stdout.
func (m *Main) help(cmd string) {
	if cmd == "" {
		fmt.Fprint(m.Stdout, usage)
		return
	}
	c := commands[cmd]
	fmt.Fprintf(m.Stdout, "usage: waxmpp %s\n\n%s\n", c.synopsis, c.about)
	fs, _ := (&Main{Getenv: m.Getenv}).flagSet(cmd)
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	if n > 0 {
		fmt.Fprint(m.Stdout, "\nflags:\n")
		fs.SetOutput(m.Stdout)
		fs.PrintDefaults()
	}
}

// exitCode maps an error from ParseFlags, Run or Close to the process's
// exit status; see the package documentation.
func exitCode(err error) int {
	var ue *usageError
	var ce *config.Error
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, new(*helpRequest)):
		return exitOK
	case errors.As(err, &ue):
		return exitUsage
	case errors.Is(err, config.ErrNotConfigured), errors.As(err, &ce):
		return exitExConfig
	default:
		return exitFailure
	}
}

// newLogger builds the root logger. Under systemd (journal) the journal
// stamps each line, so the handler's own time is left out, and each line
// starts with its priority (journal.go).
func newLogger(w io.Writer, c config.Log, journal bool) *slog.Logger {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.Level)); err != nil {
		level = slog.LevelInfo // unreachable: Validate admits only valid levels
	}
	opts := &slog.HandlerOptions{Level: level}
	if journal {
		opts.ReplaceAttr = func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		}
	}
	if journal {
		return slog.New(newJournalHandler(w, c.Format == "json", opts))
	}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// notify tells systemd about a state change (Type=notify). Without
// $NOTIFY_SOCKET it does nothing.
func notify(log *slog.Logger, state string) {
	if _, err := daemon.SdNotify(false, state); err != nil {
		log.Warn("sd_notify failed", "state", state, "err", err)
	}
}

// warnReadable warns when the file holding the password can be read by
// users other than the service's: others at all, or a group that is not
// the process's own (root:waxmpp 0640 is the intended packaging).
func warnReadable(log *slog.Logger, configPath string, cfg config.Config) {
	path := configPath
	if cfg.XMPP.PasswordFile != "" {
		path = cfg.XMPP.PasswordFile
	}
	fi, err := os.Stat(path)
	if err != nil {
		return // it was just read; nothing useful to say
	}
	if exposed(fi) {
		log.Warn("the file holding the password is readable by other users; chmod 600 it (or 640 with the service's group)",
			"path", path, "mode", fi.Mode().Perm().String())
	}
}

func exposed(fi fs.FileInfo) bool {
	perm := fi.Mode().Perm()
	if perm&0o004 != 0 {
		return true
	}
	if perm&0o040 == 0 {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return !ok || int(st.Gid) != os.Getgid()
}
