// Package term is the terminal front end of setup (`sudo waxmpp setup`): it
// walks the person through the setup.Flow, asking in plain words, one
// question at a time, and draws the WhatsApp QR codes with qrterminal.
//
// Answers given as flags (--owner, --jid, --password-file, --register) are
// taken without asking; without a terminal every answer must come that
// way, and the WhatsApp step is left for later (/pair in the bot chat).
// Ctrl-C cancels the context: Run returns at once and the flow writes
// nothing.
package term

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/mdp/qrterminal/v3"
	"golang.org/x/sys/unix"

	"waxmpp/setup"
)

// Answers are what the flags already answered.
type Answers struct {
	Owner    string // --owner
	Bot      string // --jid: the bot account (to use, or with Register to create)
	Password string // read from --password-file
	Register bool   // --register: create the bot account
	Server   string // where to create it, when Bot does not say
}

// Options configure Run.
type Options struct {
	In  io.Reader
	Out io.Writer
	// Interactive: a person answers on In (a terminal). Otherwise every
	// answer comes from Answers.
	Interactive bool
	// Fd is the terminal's file descriptor, for reading a password without
	// echo; -1 when there is none.
	Fd      int
	Answers Answers
}

// Run drives f until it is done, or ctx ends (Ctrl-C: an error, nothing
// written).
func Run(ctx context.Context, f *setup.Flow, o Options) error {
	t := &ui{f: f, o: o, w: o.Out, in: newLines(o.In)}
	return t.run(ctx)
}

type ui struct {
	f  *setup.Flow
	o  Options
	w  io.Writer
	in *lines

	shownStep setup.Step
	shownNote string
	usedFlags map[string]bool
	asked     bool // the subscription request was announced
	lastCode  int
}

func (t *ui) say(format string, args ...any) { fmt.Fprintf(t.w, format+"\n", args...) }

// errNeedsPerson: a question no flag answered, and nobody to ask.
type errNeedsPerson struct{ what string }

func (e *errNeedsPerson) Error() string {
	return "setup needs " + e.what + "; give it as a flag, or run sudo waxmpp setup in a terminal"
}

func (t *ui) run(ctx context.Context) error {
	t.usedFlags = map[string]bool{}
	s := t.f.State()
	if s.Configured == nil {
		t.say("waxmpp setup: WhatsApp in your XMPP app, through a bot account of its own.")
		t.say("Ctrl-C stops at any step and changes nothing.")
	}
	for {
		s = t.f.State()
		if s.Busy != "" {
			if err := t.waitWhileBusy(ctx, s); err != nil {
				return err
			}
			continue
		}
		if s.Note != "" && s.Note != t.shownNote {
			t.say("%s", s.Note)
			t.shownNote = s.Note
		}
		var err error
		switch s.Step {
		case setup.StepMenu:
			err = t.menu(ctx, s)
		case setup.StepOwner:
			err = t.owner(ctx, s)
		case setup.StepBot:
			err = t.bot(ctx, s)
		case setup.StepRegister:
			err = t.register(ctx, s)
		case setup.StepSubscribe:
			err = t.subscribe(ctx, s)
		case setup.StepWhatsApp:
			err = t.whatsapp(ctx, s)
		case setup.StepDone:
			t.done(s)
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// waitWhileBusy shows what the flow does and waits for it to finish.
func (t *ui) waitWhileBusy(ctx context.Context, s setup.State) error {
	t.say("  %s", s.Busy)
	for {
		ch := t.f.Changed()
		if cur := t.f.State(); cur.Busy != s.Busy || cur.Step != s.Step || cur.Version != s.Version && cur.Busy == "" {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// problem prints the last answer's problem, if any.
func (t *ui) problem(s setup.State) {
	if s.Problem != "" {
		for line := range strings.SplitSeq(s.Problem, "\n") {
			t.say("  ! %s", line)
		}
	}
}

// heading prints a step's heading once.
func (t *ui) heading(s setup.State, text string) {
	if t.shownStep == s.Step {
		return
	}
	t.shownStep = s.Step
	t.say("")
	t.say("%s", text)
}

// ask reads one answer, offering def on an empty line.
func (t *ui) ask(ctx context.Context, prompt, def string) (string, error) {
	if !t.o.Interactive {
		return "", &errNeedsPerson{strings.ToLower(strings.TrimSpace(prompt))}
	}
	if def != "" {
		fmt.Fprintf(t.w, "%s [%s]: ", prompt, def)
	} else {
		fmt.Fprintf(t.w, "%s: ", prompt)
	}
	line, err := t.in.read(ctx)
	if err != nil {
		return "", err
	}
	if line = strings.TrimSpace(line); line == "" {
		return def, nil
	}
	return line, nil
}

// askSecret reads an answer without echo on a terminal.
func (t *ui) askSecret(ctx context.Context, prompt string) (string, error) {
	if !t.o.Interactive {
		return "", &errNeedsPerson{strings.ToLower(strings.TrimSpace(prompt))}
	}
	fmt.Fprintf(t.w, "%s (not shown): ", prompt)
	restore := noEcho(t.o.Fd)
	line, err := t.in.read(ctx)
	restore()
	fmt.Fprintln(t.w)
	return strings.TrimRight(line, "\r\n"), err
}

// flag returns a flag's answer once: a refused answer is asked for next.
func (t *ui) flag(name, v string) (string, bool) {
	if v == "" || t.usedFlags[name] {
		return "", false
	}
	t.usedFlags[name] = true
	return v, true
}

func (t *ui) owner(ctx context.Context, s setup.State) error {
	t.heading(s, "1. Your XMPP address: the account you chat from (Conversations, Dino, Gajim, Monal …).")
	t.problem(s)
	addr, ok := t.flag("owner", t.o.Answers.Owner)
	if !ok && !t.o.Interactive {
		if s.Problem != "" {
			return errors.New("setup: " + s.Problem)
		}
		return &errNeedsPerson{"your XMPP address (--owner)"}
	}
	if !ok {
		var err error
		if addr, err = t.ask(ctx, "   Your address, such as me@example.org", s.Owner); err != nil {
			return err
		}
	}
	return ignoreProblem(t.f.Owner(ctx, addr))
}

// ignoreProblem: a refused answer is shown from State.Problem and asked
// again; other errors end the run.
func ignoreProblem(err error) error {
	var p *setup.Problem
	if err == nil || errors.As(err, &p) || errors.Is(err, setup.ErrBusy) || errors.Is(err, setup.ErrWrongStep) {
		return nil
	}
	return err
}

func (t *ui) bot(ctx context.Context, s setup.State) error {
	t.heading(s, "2. The bot account: waxmpp needs an XMPP account of its own; its messages are your WhatsApp chats.")
	t.problem(s)
	if s.Redirect != "" {
		t.say("   Create the account on that page: %s", s.Redirect)
	}
	if a := t.o.Answers; a.Bot != "" || a.Register {
		if _, ok := t.flag("bot", "x"); ok {
			if a.Register {
				name, server := botName(a.Bot, s)
				if a.Server != "" {
					server = a.Server
				}
				return ignoreProblem(t.f.CreateAccount(ctx, server, name))
			}
			pw := a.Password
			if pw == "" {
				var err error
				if pw, err = t.askSecret(ctx, "   Password of "+a.Bot); err != nil {
					return err
				}
			}
			return ignoreProblem(t.f.UseAccount(ctx, a.Bot, pw))
		}
	}
	if !t.o.Interactive {
		if s.Problem != "" {
			return errors.New("setup: " + s.Problem)
		}
		return &errNeedsPerson{"the bot account (--jid with --password-file, or --register)"}
	}
	t.say("   1) Create a new account %s@%s (the password is made up and kept by waxmpp)", s.Name, s.Server)
	t.say("   2) Create a new account with another name, or on another server")
	t.say("   3) I have an account for the bot")
	if s.Configured != nil {
		t.say("   4) Back: keep the bot account as it is")
	}
	choice, err := t.ask(ctx, "   Choose", "1")
	if err != nil {
		return err
	}
	switch choice {
	case "1":
		return ignoreProblem(t.f.CreateAccount(ctx, s.Server, s.Name))
	case "2":
		name, err := t.ask(ctx, "   Name of the bot", s.Name)
		if err != nil {
			return err
		}
		if n, srv, ok := strings.Cut(name, "@"); ok {
			return ignoreProblem(t.f.CreateAccount(ctx, srv, n))
		}
		server, err := t.ask(ctx, "   Server (the part after the @)", s.Server)
		if err != nil {
			return err
		}
		return ignoreProblem(t.f.CreateAccount(ctx, server, name))
	case "3":
		jid, err := t.ask(ctx, "   The bot account's address", "")
		if err != nil {
			return err
		}
		pw, err := t.askSecret(ctx, "   Its password")
		if err != nil {
			return err
		}
		return ignoreProblem(t.f.UseAccount(ctx, jid, pw))
	case "4":
		if s.Configured != nil {
			return ignoreProblem(t.f.Back())
		}
	}
	t.say("   Answer 1, 2 or 3.")
	return nil
}

// botName splits --jid for --register: name and server (the owner's
// domain when --jid is empty or has no @).
func botName(jid string, s setup.State) (string, string) {
	if n, srv, ok := strings.Cut(jid, "@"); ok {
		return n, srv
	}
	if jid != "" {
		return jid, s.Server
	}
	return s.Name, s.Server
}

func (t *ui) register(ctx context.Context, s setup.State) error {
	t.heading(s, "   "+s.Server+" asks for more to create the account:")
	t.problem(s)
	if s.Form.Instructions != "" {
		t.say("   (%s)", s.Form.Instructions)
	}
	values := map[string]string{}
	for _, fl := range s.Form.Fields {
		label := fl.Label
		if s.Form.Captcha != nil && fl.Name == s.Form.Captcha.Field {
			if s.Form.Captcha.URL != "" {
				t.say("   The server shows a picture to prove a person is asking. Open this page in a browser and read it:")
				t.say("     %s", s.Form.Captcha.URL)
			} else {
				t.say("   The server asks to read a picture that a terminal cannot show. Run the setup on the web page (sudo waxmpp setup --web), or create the account in your XMPP app.")
			}
		}
		if fl.Required {
			label += " (required)"
		}
		if fl.Desc != "" {
			label += " — " + fl.Desc
		}
		for {
			var v string
			var err error
			if fl.Secret {
				v, err = t.askSecret(ctx, "   "+label)
			} else {
				v, err = t.ask(ctx, "   "+label, fl.Value)
			}
			if err != nil {
				return err
			}
			if fl.Required && strings.TrimSpace(v) == "" {
				t.say("  ! Fill in “%s”: the server requires it.", fl.Label)
				continue
			}
			values[fl.Name] = v
			break
		}
	}
	return ignoreProblem(t.f.SubmitForm(ctx, values))
}

func (t *ui) subscribe(ctx context.Context, s setup.State) error {
	t.heading(s, "3. The bot asks to see your presence, and shows you its own: that is how you see whether the bridge works.")
	t.problem(s)
	if s.Declined || !s.Waiting {
		if !t.o.Interactive {
			return t.f.SkipSubscription()
		}
		a, err := t.ask(ctx, "   a) ask again  s) skip", "a")
		if err != nil {
			return err
		}
		if strings.HasPrefix(strings.ToLower(a), "s") {
			return t.f.SkipSubscription()
		}
		return ignoreProblem(t.f.AskAgain())
	}
	if !t.o.Interactive {
		// Scripts do not wait: the request stays pending in the owner's app.
		return t.f.SkipSubscription()
	}
	if !t.asked {
		t.asked = true
		t.say("   Open your XMPP app and accept the request from %s.", s.Bot)
		t.say("   Waiting … (press Enter to skip; the bridge asks when it starts, if this request got lost)")
	}
	return t.waitOrEnter(ctx, s, func() error { return t.f.SkipSubscription() })
}

// waitOrEnter waits for the flow to change, or for the person to press
// Enter (then onEnter).
func (t *ui) waitOrEnter(ctx context.Context, s setup.State, onEnter func() error) error {
	ch := t.f.Changed()
	if t.f.State().Version != s.Version {
		return nil
	}
	enter, err := t.in.next(ctx)
	if err != nil {
		return err
	}
	select {
	case <-ch:
		return nil
	case ln := <-enter:
		t.in.busy = false
		if ln.err != nil {
			return errors.New("setup: the input ended before setup was done")
		}
		return ignoreProblem(onEnter())
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (t *ui) whatsapp(ctx context.Context, s setup.State) error {
	t.heading(s, "4. Link WhatsApp: waxmpp becomes a linked device of your WhatsApp, like WhatsApp Web.")
	if s.Pair != nil {
		t.showCode(s.Pair)
		return t.waitOrEnter(ctx, s, func() error {
			// Enter while codes are shown: the other way, or later.
			return t.whatsappChoice(ctx, s)
		})
	}
	if s.Linking {
		t.say("   Waiting for WhatsApp's code …")
		return t.waitOrEnter(ctx, s, func() error { return t.whatsappChoice(ctx, s) })
	}
	t.problem(s)
	if !t.o.Interactive {
		return t.f.SkipWhatsApp()
	}
	return t.whatsappChoice(ctx, s)
}

func (t *ui) whatsappChoice(ctx context.Context, s setup.State) error {
	t.say("   1) Show a QR code to scan with the phone")
	t.say("   2) Link with the phone number instead (a code to type on the phone)")
	t.say("   3) Later (send /pair to the bot when you are ready)")
	choice, err := t.ask(ctx, "   Choose", "1")
	if err != nil {
		return err
	}
	t.lastCode = 0
	switch choice {
	case "1":
		return ignoreProblem(t.f.Link(ctx, ""))
	case "2":
		phone, err := t.ask(ctx, "   The phone's number, with + and country code", "")
		if err != nil {
			return err
		}
		return ignoreProblem(t.f.Link(ctx, phone))
	case "3":
		return ignoreProblem(t.f.SkipWhatsApp())
	}
	t.say("   Answer 1, 2 or 3.")
	return nil
}

// showCode draws a new code once.
func (t *ui) showCode(p *setup.Pair) {
	if p.N == t.lastCode {
		return
	}
	t.lastCode = p.N
	left := fmt.Sprintf("%ds", max(0, int(time.Until(p.Expires).Round(time.Second).Seconds())))
	if p.Phone {
		t.say("")
		t.say("   Your link code: %s", p.Code)
		t.say("   On the phone: WhatsApp → Settings → Linked devices → Link a device →")
		t.say("   “Link with phone number instead”, then type the code. It is valid for about %s.", left)
		t.say("   (Enter: another way)")
		return
	}
	if t.o.Fd >= 0 {
		io.WriteString(t.w, "\033[H\033[2J")
	}
	t.say("   Scan this with WhatsApp on the phone: Settings → Linked devices → Link a device.")
	t.say("")
	qrterminal.GenerateWithConfig(p.QR, qrterminal.Config{
		Level: qrterminal.L, Writer: t.w, HalfBlocks: true,
		BlackChar: qrterminal.BLACK_BLACK, WhiteBlackChar: qrterminal.WHITE_BLACK,
		WhiteChar: qrterminal.WHITE_WHITE, BlackWhiteChar: qrterminal.BLACK_WHITE,
		QuietZone: 2,
	})
	t.say("")
	t.say("   Code %d, valid for %s; a new one follows. (Enter: another way)", p.N, left)
}

func (t *ui) menu(ctx context.Context, s setup.State) error {
	c := s.Configured
	t.say("")
	t.say("waxmpp is set up:")
	mark := func(part string) string {
		for _, ch := range s.Changes {
			if ch == part {
				return "  (changed, not saved yet)"
			}
		}
		return ""
	}
	t.say("  your address:  %s%s", s.Owner, mark("owner"))
	pw := "its password in the systemd credential"
	switch c.Password {
	case "credential":
	case "config file":
		pw = "its password in the config file"
	default:
		pw = "its password in " + c.Password
	}
	t.say("  bot account:   %s (%s)%s", s.Bot, pw, mark("bot"))
	linked := s.Linked
	if linked == "" {
		linked = "not linked"
	}
	t.say("  WhatsApp:      %s%s", linked, mark("whatsapp"))
	if c.Service != "" {
		t.say("  service:       %s", c.Service)
	}
	t.problem(s)
	if !t.o.Interactive {
		return t.menuFlags(ctx, s)
	}
	t.say("What do you want to change?")
	t.say("  1) your address   2) the bot account   3) link WhatsApp again")
	if len(s.Changes) > 0 {
		t.say("  4) save the changes and restart waxmpp   5) leave without saving")
	} else {
		t.say("  4) nothing: leave it as it is")
	}
	choice, err := t.ask(ctx, "Choose", "4")
	if err != nil {
		return err
	}
	t.shownStep = ""
	t.asked = false
	switch choice {
	case "1":
		return ignoreProblem(t.f.Change("owner"))
	case "2":
		return ignoreProblem(t.f.Change("bot"))
	case "3":
		return ignoreProblem(t.f.Change("whatsapp"))
	case "4":
		return ignoreProblem(t.f.Finish(ctx))
	case "5":
		if len(s.Changes) > 0 {
			t.say("Nothing was changed.")
			return errLeft
		}
	}
	t.say("Answer 1, 2, 3 or 4.")
	return nil
}

// errLeft: the person left the menu without saving.
var errLeft = errors.New("setup: left without saving")

// ErrLeft reports whether err is the person leaving without saving (not a
// failure).
func ErrLeft(err error) bool { return errors.Is(err, errLeft) }

// menuFlags applies the flags to a configured system: each changes its
// part, then everything is saved.
func (t *ui) menuFlags(ctx context.Context, s setup.State) error {
	a := t.o.Answers
	if _, ok := t.flag("menu-owner", a.Owner); ok && !strings.EqualFold(a.Owner, s.Owner) {
		return ignoreProblem(t.f.Change("owner"))
	}
	if _, ok := t.flag("menu-bot", a.Bot+map[bool]string{true: "register"}[a.Register]); ok {
		return ignoreProblem(t.f.Change("bot"))
	}
	if s.Problem != "" {
		return errors.New("setup: " + s.Problem)
	}
	return ignoreProblem(t.f.Finish(ctx))
}

func (t *ui) done(s setup.State) {
	d := s.Done
	t.say("")
	if !d.Changed {
		t.say("Nothing changed; waxmpp stays as it was.")
		return
	}
	t.say("Done. waxmpp is set up:")
	t.say("  your address:  %s", d.Owner)
	t.say("  bot account:   %s", d.Bot)
	if d.Linked != "" {
		t.say("  WhatsApp:      %s", d.Linked)
	} else {
		t.say("  WhatsApp:      not linked yet")
	}
	if d.Service != "" {
		t.say("  service:       %s (systemctl status waxmpp)", d.Service)
	}
	t.say("")
	t.say("%s", d.Next)
}

// lines reads In one line at a time, on demand, from one goroutine, so a
// wait can also watch the flow. A line typed while nothing asks is kept for
// the next question (or taken as "Enter" by a wait).
type lines struct {
	want chan struct{}
	got  chan line
	busy bool
}

type line struct {
	s   string
	err error
}

func newLines(r io.Reader) *lines {
	l := &lines{want: make(chan struct{}), got: make(chan line, 1)}
	br := bufio.NewReader(r)
	go func() {
		// It lives as long as the process: a blocked terminal read cannot
		// be cancelled, and main exits after Run.
		for range l.want {
			s, err := br.ReadString('\n')
			if err != nil && s != "" {
				err = nil
			}
			l.got <- line{s, err}
		}
	}()
	return l
}

// next returns a channel that yields the next line; it asks the reader for
// one unless a read is already under way.
func (l *lines) next(ctx context.Context) (<-chan line, error) {
	if !l.busy {
		select {
		case l.want <- struct{}{}:
			l.busy = true
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return l.got, nil
}

func (l *lines) read(ctx context.Context) (string, error) {
	ch, err := l.next(ctx)
	if err != nil {
		return "", err
	}
	select {
	case ln := <-ch:
		l.busy = false
		if ln.err == io.EOF {
			return "", errors.New("setup: the input ended before setup was done")
		}
		return ln.s, ln.err
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// noEcho turns off the terminal's echo until the returned func runs.
func noEcho(fd int) func() {
	if fd < 0 {
		return func() {}
	}
	old, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return func() {}
	}
	t := *old
	t.Lflag &^= unix.ECHO
	t.Lflag |= unix.ICANON | unix.ISIG
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &t); err != nil {
		return func() {}
	}
	return func() { unix.IoctlSetTermios(fd, unix.TCSETS, old) }
}
