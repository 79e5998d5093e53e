package setup

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"waxmpp/bridge"
	"waxmpp/bridge/config"
	"waxmpp/bridge/store"
	"waxmpp/bridge/xmpp"
)

// Step is where the flow is.
type Step string

// The steps, in order (see the package documentation).
const (
	StepMenu      Step = "menu" // a configured system: what to change
	StepOwner     Step = "owner"
	StepBot       Step = "bot"
	StepRegister  Step = "register"
	StepSubscribe Step = "subscribe"
	StepWhatsApp  Step = "whatsapp"
	StepDone      Step = "done"
)

// Paths are the files setup reads and writes.
type Paths struct {
	Config string // /etc/waxmpp/config.toml
	// Credential is the systemd credential's file; "" means a password
	// file beside the config instead.
	Credential string // /etc/credstore/waxmpp.password
	SetupCode  string // /var/lib/waxmpp/setup-code
}

// DefaultPaths are those of the Debian package.
var DefaultPaths = Paths{
	Config:     "/etc/waxmpp/config.toml",
	Credential: "/etc/credstore/" + config.PasswordCredential,
	SetupCode:  "/var/lib/waxmpp/setup-code",
}

// Resolver is the DNS the checks use; *net.Resolver is one, tests give
// their own.
type Resolver interface {
	LookupSRV(ctx context.Context, service, proto, name string) (string, []*net.SRV, error)
	LookupHost(ctx context.Context, host string) ([]string, error)
}

// WhatsApp is what linking needs of the WhatsApp side: the adapter
// (bridge/whatsapp), or the simulated one in a test build.
type WhatsApp interface {
	// Run runs it until ctx ends; events go to the channel it was made with.
	Run(ctx context.Context) error
	// Pair starts linking (bridge.WhatsApp's Pair): PairCode and
	// PairResult events follow.
	Pair(ctx context.Context, phone string) error
	// Logout unlinks the device.
	Logout(ctx context.Context) error
	// Handled acknowledges an event taken off the events channel.
	Handled(ev bridge.Event)
}

// OpenWhatsApp makes the WhatsApp side on the state file db; its events go
// to events. cmd/waxmpp provides it.
type OpenWhatsApp func(ctx context.Context, db *store.DB, log *slog.Logger, events chan<- bridge.Event) (WhatsApp, error)

// Options configure a Flow. Zero values are the defaults of a real system.
type Options struct {
	Paths Paths
	// Resolver: nil means net.DefaultResolver.
	Resolver Resolver
	// Server, when set, is where to connect for every XMPP domain
	// ("host:port" or "tls://host:port", as xmpp.server): tests, or a
	// server that DNS does not name. It is written to the config.
	Server string
	// CAFile is a PEM bundle trusted beside the system's roots (a
	// self-hosted server, tests); it is written to the config.
	CAFile string
	// OpenWhatsApp is required for the WhatsApp step.
	OpenWhatsApp OpenWhatsApp
	// Service is the bridge's service; nil means systemd (systemctl).
	Service Service
	// ServiceUser owns the state and reads the config; default "waxmpp".
	ServiceUser string
	// DialTimeout bounds each XMPP login and registration; default 30 s.
	DialTimeout time.Duration
	// SettleTimeout bounds the wait for WhatsApp's first connection after
	// a link; default 30 s.
	SettleTimeout time.Duration
	Rand          io.Reader // nil: crypto/rand
	Log           *slog.Logger
}

// State is a snapshot of the flow, for a front end to show. Fields that do
// not apply to the current step are zero.
type State struct {
	Step Step
	// Version counts changes; a front end that waits for the next one
	// compares it (Flow.Changed).
	Version int
	// Busy says what the flow is doing right now ("Checking …"); answers
	// are refused until it is done.
	Busy string
	// Problem is what went wrong with the last answer, in plain words,
	// with what to do; "" when nothing did.
	Problem string
	// Note is a plain remark about the current step ("Your server does not
	// let apps create accounts …").
	Note string

	Owner string // the owner's address, once given
	Bot   string // the bot's address, once given or created
	// Created says setup created the bot account (its password was
	// generated and is never shown).
	Created bool
	// Server is where a new bot account would be created: the owner's
	// domain unless the owner named another.
	Server string
	// Name is the suggested name of a new bot account.
	Name string
	// Redirect is a web page where the server creates accounts instead.
	Redirect string

	Form *Form // StepRegister

	// Waiting: StepSubscribe, the request is out and the flow waits.
	Waiting bool
	// Declined: StepSubscribe, the owner refused; AskAgain or skip.
	Declined bool

	// Linking: StepWhatsApp, an attempt runs (its first code may not be
	// there yet).
	Linking bool
	Pair    *Pair  // StepWhatsApp: the code to scan or type, while linking
	Linked  string // the WhatsApp account once linked ("+491701234567 (Alice)")

	// Configured is what the existing config says (StepMenu); nil on a
	// first run.
	Configured *Configured
	// Changes lists what the owner chose to change so far (StepMenu).
	Changes []string

	Done *Done // StepDone
}

// Form is the part of a server's registration form the person fills in.
type Form struct {
	Instructions string
	Fields       []Field
	// Captcha is the CAPTCHA to answer, if any.
	Captcha *Captcha
}

// Field is one field to fill in.
type Field struct {
	Name     string // what to submit it as
	Label    string
	Desc     string
	Required bool
	Secret   bool // a password: do not echo
	Value    string
	Options  []Option
}

// Option is one choice of a list field.
type Option struct{ Label, Value string }

// Captcha is a CAPTCHA challenge: Field is the answer's field.
type Captcha struct {
	Field string
	// Image is the picture (data: URI ready for <img src>), "" if the
	// server sent none.
	Image string
	// URL is a web page showing it, for a terminal.
	URL string
}

// Pair is the current linking code.
type Pair struct {
	// Phone: a link code to type on the phone; else a QR code to scan.
	Phone bool
	// QR is the QR code's content (to draw), Code the link code.
	QR      string
	Code    string
	Expires time.Time
	// N counts the codes of this attempt: it grows as WhatsApp rotates them.
	N int
}

// Configured is what an existing config says.
type Configured struct {
	Owner    string
	Bot      string
	Linked   string // "" when not linked (or unknown)
	Service  string // systemd's ActiveState, or "" without systemd
	Password string // where the password is: "credential", a file name, or "config file"
}

// Done is the end.
type Done struct {
	Owner, Bot string
	Linked     string
	// Service is the service's state after the start ("active"), or ""
	// without systemd.
	Service string
	// Next says what to do now, in plain words.
	Next string
	// Changed is false when a re-run changed nothing.
	Changed bool
}

// Flow is one run of setup. Its methods may be called from any goroutine;
// an answer given while another is being checked is refused (State.Busy).
//
// Goroutines: the subscription wait and the WhatsApp linking run on
// goroutines the Flow owns, each with a context that Close cancels and a
// WaitGroup that Close waits for.
type Flow struct {
	opts  Options
	log   *slog.Logger
	roots *x509.CertPool

	mu      sync.Mutex
	st      State
	changed chan struct{} // closed and replaced at every change
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup

	// What the flow holds between steps (under mu).
	old      *config.Config // the existing config, if any
	password string         // the bot's password, once checked
	acct     *xmpp.Account  // the bot's login, for the subscription step
	reg      *xmpp.Registration
	stopSub  context.CancelFunc // ends the subscription task
	regName  string
	stopPair context.CancelFunc // ends the linking task
	pairDone chan struct{}      // closed when the linking task has ended
	linked   bool               // WhatsApp linked (or already was)
	menu     bool               // a re-run: steps return to the menu
	changes  map[string]bool
	closed   bool
}

// New starts a flow: at StepMenu when a valid config exists, else at
// StepOwner. An existing config that does not load (a typo) is an error:
// setup does not overwrite what it cannot read.
func New(opts Options) (*Flow, error) {
	if opts.Paths == (Paths{}) {
		opts.Paths = DefaultPaths
	}
	if opts.Resolver == nil {
		opts.Resolver = net.DefaultResolver
	}
	if opts.ServiceUser == "" {
		opts.ServiceUser = "waxmpp"
	}
	if opts.Service == nil {
		opts.Service = Systemd{Unit: "waxmpp.service"}
	}
	if opts.DialTimeout == 0 {
		opts.DialTimeout = 30 * time.Second
	}
	if opts.SettleTimeout == 0 {
		opts.SettleTimeout = 30 * time.Second
	}
	if opts.Rand == nil {
		opts.Rand = rand.Reader
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	f := &Flow{opts: opts, log: opts.Log, changed: make(chan struct{}), changes: map[string]bool{}}
	roots, err := rootCAs(opts.CAFile)
	if err != nil {
		return nil, err
	}
	f.roots = roots
	f.ctx, f.cancel = context.WithCancel(context.Background())
	f.st.Step = StepOwner

	cfg, err := config.Load(opts.Paths.Config)
	switch {
	case err == nil:
		f.old = &cfg
		f.menu = true
		f.st.Step = StepMenu
		f.st.Owner, f.st.Bot = cfg.XMPP.Owner, cfg.XMPP.JID
		f.password = cfg.XMPP.Password
		f.st.Configured = f.configured(cfg)
		if f.st.Configured.Linked != "" {
			f.linked = true
			f.st.Linked = f.st.Configured.Linked
		}
	case errors.Is(err, config.ErrNotConfigured):
		if _, serr := os.Stat(opts.Paths.Config); serr == nil {
			// A file without the accounts (written by hand, or the
			// example): setup fills it in and keeps what else it says.
			c, derr := config.LoadSettings(opts.Paths.Config)
			if derr != nil {
				return nil, fmt.Errorf("setup: %s cannot be read, so setup leaves it alone; correct it (or move it away) and run setup again: %w", opts.Paths.Config, derr)
			}
			f.old = &c
		}
	default:
		return nil, fmt.Errorf("setup: %s cannot be read, so setup leaves it alone; correct it (or move it away) and run setup again: %w", opts.Paths.Config, err)
	}
	return f, nil
}

// configured describes an existing config.
func (f *Flow) configured(cfg config.Config) *Configured {
	c := &Configured{Owner: cfg.XMPP.Owner, Bot: cfg.XMPP.JID}
	switch {
	case cfg.XMPP.Credential():
		c.Password = "credential"
	case cfg.XMPP.PasswordFile != "":
		c.Password = cfg.XMPP.PasswordFile
	default:
		c.Password = "config file"
	}
	c.Linked = linkedIn(cfg.Store.Path)
	if f.opts.Service.Present() {
		c.Service, _ = f.opts.Service.State(context.Background())
	}
	return c
}

// linkedIn reads the WhatsApp account linked in the state file at path, ""
// when none is or the file cannot be read. A running bridge holds the
// file; then it asks the running bridge's copy (a snapshot through the
// control socket is doctor's business): "" here.
func linkedIn(path string) string {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return ""
	}
	db, err := store.Open(path, store.Options{ReadOnly: true, Timeout: 200 * time.Millisecond})
	if err != nil {
		if errors.Is(err, store.ErrLocked) {
			return "(the running bridge holds the state file)"
		}
		return ""
	}
	defer db.Close()
	return LinkedAccount(db)
}

// LinkedAccount is the WhatsApp account the state file is linked to
// ("+491701234567 (Alice)"), or "".
func LinkedAccount(db *store.DB) string {
	dev, err := db.Devices(nil).GetFirstDevice(context.Background())
	if err != nil || dev == nil || dev.ID == nil {
		return ""
	}
	s := "+" + dev.ID.User
	if dev.PushName != "" {
		s += " (" + dev.PushName + ")"
	}
	return s
}

// State returns a snapshot.
func (f *Flow) State() State {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.st
	s.Linking = f.stopPair != nil
	s.Changes = nil
	for _, c := range []string{"owner", "bot", "whatsapp"} {
		if f.changes[c] {
			s.Changes = append(s.Changes, c)
		}
	}
	return s
}

// Changed returns a channel that is closed at the next change of State.
func (f *Flow) Changed() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.changed
}

// touch records a change; f.mu is held.
func (f *Flow) touch() {
	f.st.Version++
	close(f.changed)
	f.changed = make(chan struct{})
}

// ErrBusy: an answer came while the flow was still checking another.
var ErrBusy = errors.New("setup: still busy with the previous answer")

// ErrWrongStep: an answer for another step than the current one (a
// stale page).
var ErrWrongStep = errors.New("setup: that answer belongs to another step")

// Problem is an answer that cannot be taken, in plain words (the same
// text as State.Problem).
type Problem struct {
	Msg string
	Err error // what failed underneath, for the log; may be nil
}

func (p *Problem) Error() string { return p.Msg }
func (p *Problem) Unwrap() error { return p.Err }

func problem(err error, format string, args ...any) *Problem {
	return &Problem{Msg: fmt.Sprintf(format, args...), Err: err}
}

// begin starts handling an answer for one of steps: it refuses when the
// flow is busy or elsewhere, and marks it busy with what. The caller runs
// the work without the lock and ends with finish.
func (f *Flow) begin(what string, steps ...Step) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return errors.New("setup: the flow is closed")
	}
	if f.st.Busy != "" {
		return ErrBusy
	}
	ok := false
	for _, s := range steps {
		ok = ok || f.st.Step == s
	}
	if !ok {
		return ErrWrongStep
	}
	f.st.Busy = what
	f.st.Problem = ""
	f.touch()
	return nil
}

// finish ends an answer begun with begin: on success apply runs under the
// lock (nil: nothing to change); err becomes State.Problem.
func (f *Flow) finish(err error, apply func()) error {
	if err != nil {
		return f.finishWith(err, nil)
	}
	return f.finishWith(nil, apply)
}

// finishWith is finish whose apply runs also after an error.
func (f *Flow) finishWith(err error, apply func()) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.st.Busy = ""
	if apply != nil {
		apply()
	}
	if err != nil {
		var p *Problem
		if errors.As(err, &p) {
			f.st.Problem = p.Msg
			if p.Err != nil {
				f.log.Info("answer refused", "step", f.st.Step, "problem", p.Msg, "err", p.Err)
			}
		} else {
			f.st.Problem = "Something went wrong: " + err.Error()
			f.log.Warn("step failed", "step", f.st.Step, "err", err)
		}
	}
	f.touch()
	return err
}

// Close ends the flow: background work stops, the logins end. Nothing is
// written; a flow that did not Finish leaves the system as it found it.
func (f *Flow) Close() error {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return nil
	}
	f.closed = true
	f.cancel()
	acct, reg := f.acct, f.reg
	f.acct, f.reg = nil, nil
	f.mu.Unlock()
	f.wg.Wait()
	if acct != nil {
		acct.Close()
	}
	if reg != nil {
		reg.Close()
	}
	return nil
}

// rootCAs is the system's roots plus the PEM certificates in file.
func rootCAs(file string) (*x509.CertPool, error) {
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if file == "" {
		return pool, nil
	}
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("setup: CA file: %w", err)
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("setup: %s holds no PEM certificate", file)
	}
	return pool, nil
}
