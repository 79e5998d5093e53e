package setup

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"waxmpp/bridge"
	"waxmpp/bridge/config"
	pt "waxmpp/bridge/prosodytest"
)

// TestFirstRun walks the whole flow on a server with open registration:
// the owner's address, a new bot account, the owner accepting it in their
// app, WhatsApp linked by a QR code that rotates, and what Finish writes.
func TestFirstRun(t *testing.T) {
	e := newEnv(t, pt.Options{Registration: pt.RegisterOpen})
	e.storeConfig()
	f := e.flow()
	ctx := context.Background()
	if s := f.State(); s.Step != StepOwner || s.Configured != nil {
		t.Fatalf("start: %+v", s)
	}
	// An xmpp: URI from the app's share button is fine.
	if err := f.Owner(ctx, " xmpp:Owner@"+pt.Domain+"?roster "); err != nil {
		t.Fatal(err)
	}
	s := f.State()
	if s.Step != StepBot || s.Owner != "owner@"+pt.Domain || s.Server != pt.Domain || s.Name != "owner.whatsapp" {
		t.Fatalf("after the owner: %+v", s)
	}
	owner := e.srv.Dial(t, "owner")
	if err := f.CreateAccount(ctx, "", s.Name); err != nil {
		t.Fatal(err)
	}
	bot := "owner.whatsapp@" + pt.Domain
	s = waitFor(t, f, "the subscription request", func(s State) bool { return s.Step == StepSubscribe && s.Waiting })
	if s.Bot != bot || !s.Created {
		t.Fatalf("bot %q created %v", s.Bot, s.Created)
	}
	accept(t, owner, bot)
	waitFor(t, f, "the WhatsApp step", func(s State) bool { return s.Step == StepWhatsApp })
	if err := f.Link(ctx, ""); err != nil {
		t.Fatal(err)
	}
	e.link(f)
	s = waitFor(t, f, "done", func(s State) bool { return s.Step == StepDone })
	if s.Done.Linked != "+491701234567 (Alice)" || !strings.Contains(s.Done.Next, "/help to "+bot) || s.Done.Service != "active" {
		t.Errorf("done: %+v", s.Done)
	}
	if c := e.svc.Calls(); c != "enable,restart" {
		t.Errorf("service calls %q, want enable,restart", c)
	}

	// What was written: the config without the password, the password
	// in the credential, the modes.
	cfg, err := os.ReadFile(e.paths.Config)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"jid = '" + bot + "'", "owner = 'owner@" + pt.Domain + "'", "ca_file = ", "path = "} {
		if !strings.Contains(string(cfg), want) {
			t.Errorf("config lacks %q:\n%s", want, cfg)
		}
	}
	if strings.Contains(string(cfg), "password") && strings.Contains(string(cfg), "password =") {
		t.Errorf("config names the password:\n%s", cfg)
	}
	pw, err := os.ReadFile(e.paths.Credential)
	if err != nil {
		t.Fatal(err)
	}
	password := strings.TrimSpace(string(pw))
	if len(password) != 24 || bytes.Contains(cfg, []byte(password)) {
		t.Errorf("password %d characters (want 24), in the config: %v", len(password), bytes.Contains(cfg, []byte(password)))
	}
	if m := mode(t, e.paths.Config); m != "-rw-r-----" {
		t.Errorf("config mode %s, want 0640", m)
	}
	if m := mode(t, e.paths.Credential); m != "-rw-------" {
		t.Errorf("credential mode %s, want 0600", m)
	}
	// The password was never in the flow's state a front end shows.
	if strings.Contains(fmtState(f.State()), password) {
		t.Errorf("the state shows the password")
	}
	// The config loads (with the credential) and the account works.
	t.Setenv("CREDENTIALS_DIRECTORY", strings.TrimSuffix(e.paths.Credential, "/waxmpp.password"))
	got, err := config.Load(e.paths.Config)
	if err != nil || got.XMPP.Password != password {
		t.Fatalf("config.Load: %v (password from the credential: %v)", err, got.XMPP.Password == password)
	}
	loginAs(t, e, bot, password)
}

func fmtState(s State) string {
	return strings.ReplaceAll(strings.TrimSpace(strings.Join([]string{s.Owner, s.Bot, s.Problem, s.Note, s.Busy}, " ")), "\n", " ")
}

func loginAs(t *testing.T, e *env, jid, password string) {
	t.Helper()
	f := e.flow()
	a, err := f.login(context.Background(), jid, password)
	if err != nil {
		t.Fatalf("login %s: %v", jid, err)
	}
	a.Close()
}

// TestOwnerChecks: an address that is not one, and a server that does
// not exist, are refused in plain words; the step stays.
func TestOwnerChecks(t *testing.T) {
	e := newEnv(t, pt.Options{})
	f := e.flow()
	ctx := context.Background()
	for _, tc := range []struct{ addr, want string }{
		{"me", "That is not an XMPP address"},
		{"me@nowhere.invalid", "There is no server called nowhere.invalid"},
		{"me@exa mple.org", "That is not an XMPP address"},
	} {
		err := f.Owner(ctx, tc.addr)
		s := f.State()
		if err == nil || s.Step != StepOwner || !strings.Contains(s.Problem, tc.want) {
			t.Errorf("Owner(%q): %v, step %s, problem %q; want %q", tc.addr, err, s.Step, s.Problem, tc.want)
		}
	}
}

// TestGivenAccount: a wrong password is refused (tried for real), the
// right one passes, and an owner who accepted earlier passes the
// subscription step at once.
func TestGivenAccount(t *testing.T) {
	e := newEnv(t, pt.Options{})
	e.storeConfig()
	f := e.flow()
	ctx := context.Background()
	if err := f.Owner(ctx, e.srv.JID("owner")); err != nil {
		t.Fatal(err)
	}
	err := f.UseAccount(ctx, e.srv.JID("bot"), "wrong")
	if s := f.State(); err == nil || s.Step != StepBot || !strings.Contains(s.Problem, "refused the password") {
		t.Fatalf("wrong password: %v, %+v", err, s)
	}
	if err := f.UseAccount(ctx, e.srv.JID("owner"), pt.Password("owner")); err == nil || !strings.Contains(f.State().Problem, "your own address") {
		t.Fatalf("the owner's own account as the bot: %v", err)
	}
	if err := f.UseAccount(ctx, "bot@nowhere.invalid", "x"); err == nil || !strings.Contains(f.State().Problem, "There is no server called nowhere.invalid") {
		t.Fatalf("unknown server: %v, %q", err, f.State().Problem)
	}
	owner := e.srv.Dial(t, "owner")
	if err := f.UseAccount(ctx, e.srv.JID("bot"), pt.Password("bot")); err != nil {
		t.Fatal(err)
	}
	accept(t, owner, e.srv.JID("bot"))
	waitFor(t, f, "the WhatsApp step", func(s State) bool { return s.Step == StepWhatsApp })
	if s := f.State(); s.Created {
		t.Errorf("a given account is marked created")
	}

	// A second run (a new flow) on the same accounts: the roster says the
	// owner accepted, so the step passes without asking.
	f.Close()
	e2 := *e
	e2.svc = &fakeService{}
	e2.opts.Service = e2.svc
	g := e2.flow()
	g.Owner(ctx, e.srv.JID("owner"))
	if err := g.UseAccount(ctx, e.srv.JID("bot"), pt.Password("bot")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, g, "the WhatsApp step without asking", func(s State) bool { return s.Step == StepWhatsApp })
}

// TestOwnerNeverAccepts: the flow waits; skipping moves on; declining says
// so and can ask again.
func TestOwnerNeverAccepts(t *testing.T) {
	e := newEnv(t, pt.Options{})
	e.storeConfig()
	f := e.flow()
	ctx := context.Background()
	f.Owner(ctx, e.srv.JID("owner"))
	owner := e.srv.Dial(t, "owner")
	if err := f.UseAccount(ctx, e.srv.JID("bot"), pt.Password("bot")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, f, "waiting", func(s State) bool { return s.Waiting })
	owner.Next(t, 20*time.Second, func(e *pt.Elem) bool { return e.Attr("type") == "subscribe" })
	owner.Send("<presence to='" + e.srv.JID("bot") + "' type='unsubscribed'/>")
	s := waitFor(t, f, "declined", func(s State) bool { return s.Declined })
	if !strings.Contains(s.Problem, "declined") || s.Step != StepSubscribe {
		t.Errorf("declined: %+v", s)
	}
	if err := f.AskAgain(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, f, "waiting again", func(s State) bool { return s.Waiting })
	owner.Next(t, 20*time.Second, func(e *pt.Elem) bool { return e.Attr("type") == "subscribe" })
	// Never accepting: skip.
	time.Sleep(500 * time.Millisecond)
	if s := f.State(); s.Step != StepSubscribe || !s.Waiting {
		t.Fatalf("not waiting: %+v", s)
	}
	if err := f.SkipSubscription(); err != nil {
		t.Fatal(err)
	}
	s = f.State()
	if s.Step != StepWhatsApp || !strings.Contains(s.Note, "asks you again") {
		t.Fatalf("after skipping: %+v", s)
	}
}

// TestRegistrationClosed: the server does not allow it; the flow says so
// and stays at the bot step.
func TestRegistrationClosed(t *testing.T) {
	e := newEnv(t, pt.Options{})
	f := e.flow()
	ctx := context.Background()
	f.Owner(ctx, e.srv.JID("owner"))
	err := f.CreateAccount(ctx, "", "mybot")
	s := f.State()
	if err == nil || s.Step != StepBot || !strings.Contains(s.Problem, "does not let apps create accounts") || !strings.Contains(s.Problem, "I have an account") {
		t.Fatalf("closed: %v, %+v", err, s)
	}
}

// TestRegistrationFields: the server asks for an email address; the flow
// shows the field, refuses it empty, and creates the account with it.
func TestRegistrationFields(t *testing.T) {
	e := newEnv(t, pt.Options{Registration: pt.RegisterFields})
	e.storeConfig()
	f := e.flow()
	ctx := context.Background()
	f.Owner(ctx, e.srv.JID("owner"))
	if err := f.CreateAccount(ctx, "", "formbot"); err != nil {
		t.Fatal(err)
	}
	s := f.State()
	if s.Step != StepRegister || s.Form == nil {
		t.Fatalf("want the form: %+v", s)
	}
	var names []string
	for _, fl := range s.Form.Fields {
		names = append(names, fl.Name)
	}
	if strings.Join(names, ",") != "email,name" || !s.Form.Fields[0].Required {
		t.Fatalf("form fields %v (%+v)", names, s.Form.Fields)
	}
	if err := f.SubmitForm(ctx, map[string]string{"email": ""}); err == nil || !strings.Contains(f.State().Problem, "Email") {
		t.Fatalf("empty email: %v, %q", err, f.State().Problem)
	}
	if err := f.SubmitForm(ctx, map[string]string{"email": "me@example.org", "name": "Me"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, f, "subscription", func(s State) bool { return s.Step == StepSubscribe && s.Bot == "formbot@"+pt.Domain })
	// The name is taken now: asking for it again says so.
	f.Close()
	g := e.flow()
	g.Owner(ctx, e.srv.JID("owner"))
	g.CreateAccount(ctx, "", "formbot")
	if err := g.SubmitForm(ctx, map[string]string{"email": "me@example.org"}); err == nil || !strings.Contains(g.State().Problem, "is taken") || g.State().Step != StepBot {
		t.Fatalf("taken: %v, %+v", err, g.State())
	}
}

// TestQRExpiry: no code scanned in time ends the attempt with what to do;
// a new attempt works.
func TestQRExpiry(t *testing.T) {
	e := newEnv(t, pt.Options{})
	e.storeConfig()
	f := e.flow()
	ctx := context.Background()
	f.Owner(ctx, e.srv.JID("owner"))
	if err := f.UseAccount(ctx, e.srv.JID("bot"), pt.Password("bot")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, f, "waiting", func(s State) bool { return s.Waiting })
	f.SkipSubscription()
	if err := f.Link(ctx, ""); err != nil {
		t.Fatal(err)
	}
	waitFor(t, f, "a code", func(s State) bool { return s.Pair != nil })
	c := e.sim()
	c.Inject(&bridge.PairResult{Err: "no QR code was scanned in time"})
	s := waitFor(t, f, "the expiry", func(s State) bool { return s.Pair == nil && s.Problem != "" })
	if !strings.Contains(s.Problem, "expired") || s.Step != StepWhatsApp || s.Busy != "" {
		t.Fatalf("expired: %+v", s)
	}
	// The phone number way: a bad number is refused, a good one gives a code.
	if err := f.Link(ctx, "0170 123"); err == nil || !strings.Contains(f.State().Problem, "country code") {
		t.Fatalf("bad number: %v %q", err, f.State().Problem)
	}
	if err := f.Link(ctx, "+49 170 1234567"); err != nil {
		t.Fatal(err)
	}
	s = waitFor(t, f, "a link code", func(s State) bool { return s.Pair != nil && s.Pair.Phone })
	if s.Pair.Code != "SIMW-A123" {
		t.Errorf("link code %q", s.Pair.Code)
	}
	// Each attempt has a WhatsApp connection of its own.
	acts, err := e.sim().Actions(1, 5*time.Second, "pair")
	if err != nil || len(acts) != 1 || acts[0].Phone != "+49 170 1234567" {
		t.Fatalf("pair actions %+v, %v", acts, err)
	}
}

// TestCtrlC: closing the flow at any step (what Ctrl-C does) writes
// nothing; a configured system keeps its config byte for byte.
func TestCtrlC(t *testing.T) {
	e := newEnv(t, pt.Options{Registration: pt.RegisterOpen})
	ctx := context.Background()
	// A configured system.
	e.storeConfig()
	f := e.flow()
	f.Owner(ctx, e.srv.JID("owner"))
	f.UseAccount(ctx, e.srv.JID("bot"), pt.Password("bot"))
	waitFor(t, f, "waiting", func(s State) bool { return s.Waiting })
	f.SkipSubscription()
	f.SkipWhatsApp()
	waitFor(t, f, "done", func(s State) bool { return s.Step == StepDone })
	f.Close()
	before, _ := os.ReadFile(e.paths.Config)
	beforePW, _ := os.ReadFile(e.paths.Credential)
	beforeMode := mode(t, e.paths.Config)

	t.Setenv("CREDENTIALS_DIRECTORY", strings.TrimSuffix(e.paths.Credential, "/waxmpp.password"))
	for _, stop := range []string{"menu", "owner", "bot", "register", "subscribe", "whatsapp"} {
		t.Run(stop, func(t *testing.T) {
			g := e.flow()
			if s := g.State(); s.Step != StepMenu || s.Configured == nil || s.Configured.Owner != e.srv.JID("owner") || s.Configured.Password != "credential" {
				t.Fatalf("re-run: %+v %+v", s, s.Configured)
			}
			switch stop {
			case "owner":
				g.Change("owner")
				g.Owner(ctx, e.srv.JID("stranger"))
				waitFor(t, g, "asking the new owner", func(s State) bool { return s.Step == StepSubscribe })
			case "bot", "register":
				g.Change("bot")
				if stop == "register" {
					g.CreateAccount(ctx, "", "ctrlc")
					waitFor(t, g, "asking", func(s State) bool { return s.Step == StepSubscribe })
				}
			case "subscribe":
				g.Change("owner")
				g.Owner(ctx, e.srv.JID("stranger"))
				waitFor(t, g, "waiting", func(s State) bool { return s.Waiting })
			case "whatsapp":
				g.Change("whatsapp")
				g.Link(ctx, "")
				waitFor(t, g, "a code", func(s State) bool { return s.Pair != nil })
			}
			g.Close()
			after, _ := os.ReadFile(e.paths.Config)
			afterPW, _ := os.ReadFile(e.paths.Credential)
			if !bytes.Equal(before, after) || !bytes.Equal(beforePW, afterPW) || mode(t, e.paths.Config) != beforeMode {
				t.Errorf("stopped at %s: the config or password changed:\n%s\n---\n%s", stop, before, after)
			}
		})
	}
}

// TestReRun: a configured system shows what is set up; changing only the
// owner keeps the bot, its password and every other setting.
func TestReRun(t *testing.T) {
	e := newEnv(t, pt.Options{})
	ctx := context.Background()
	e.storeConfig()
	// Someone's own settings: kept by the re-run.
	cfgText, _ := os.ReadFile(e.paths.Config)
	os.WriteFile(e.paths.Config, append([]byte("[log]\nlevel = \"debug\"\n"), cfgText...), 0o640)
	f := e.flow()
	f.Owner(ctx, e.srv.JID("owner"))
	f.UseAccount(ctx, e.srv.JID("bot"), pt.Password("bot"))
	waitFor(t, f, "waiting", func(s State) bool { return s.Waiting })
	f.SkipSubscription()
	f.SkipWhatsApp()
	waitFor(t, f, "done", func(s State) bool { return s.Step == StepDone })
	f.Close()
	pwBefore, _ := os.ReadFile(e.paths.Credential)

	t.Setenv("CREDENTIALS_DIRECTORY", strings.TrimSuffix(e.paths.Credential, "/waxmpp.password"))
	e.svc = &fakeService{state: "active"}
	e.opts.Service = e.svc
	g := e.flow()
	s := g.State()
	if s.Step != StepMenu || s.Configured.Bot != e.srv.JID("bot") || s.Configured.Service != "active" {
		t.Fatalf("menu: %+v %+v", s, s.Configured)
	}
	// Nothing asked: nothing written.
	if err := g.Finish(ctx); err != nil {
		t.Fatal(err)
	}
	if d := g.State().Done; d == nil || d.Changed || e.svc.Calls() != "" {
		t.Fatalf("finish without changes: %+v, calls %q", d, e.svc.Calls())
	}
	g.Close()

	h := e.flow()
	stranger := e.srv.Dial(t, "stranger")
	h.Change("owner")
	if err := h.Owner(ctx, e.srv.JID("stranger")); err != nil {
		t.Fatal(err)
	}
	accept(t, stranger, e.srv.JID("bot"))
	s = waitFor(t, h, "back at the menu", func(s State) bool { return s.Step == StepMenu })
	if strings.Join(s.Changes, ",") != "owner" {
		t.Fatalf("changes %v", s.Changes)
	}
	if err := h.Finish(ctx); err != nil {
		t.Fatal(err)
	}
	cfg, _ := os.ReadFile(e.paths.Config)
	pw, _ := os.ReadFile(e.paths.Credential)
	if !strings.Contains(string(cfg), "owner = '"+e.srv.JID("stranger")+"'") || !strings.Contains(string(cfg), "level = 'debug'") ||
		!strings.Contains(string(cfg), "jid = '"+e.srv.JID("bot")+"'") || !bytes.Equal(pw, pwBefore) {
		t.Fatalf("after changing the owner:\n%s", cfg)
	}
	if c := e.svc.Calls(); c != "enable,restart" {
		t.Errorf("service calls %q", c)
	}
}

// TestServiceFails: the config is written but the service does not start:
// the flow says what systemd says.
func TestServiceFails(t *testing.T) {
	e := newEnv(t, pt.Options{})
	e.storeConfig()
	e.svc.failOn = "restart"
	f := e.flow()
	ctx := context.Background()
	f.Owner(ctx, e.srv.JID("owner"))
	f.UseAccount(ctx, e.srv.JID("bot"), pt.Password("bot"))
	waitFor(t, f, "waiting", func(s State) bool { return s.Waiting })
	f.SkipSubscription()
	f.SkipWhatsApp()
	s := waitFor(t, f, "the failure", func(s State) bool { return s.Problem != "" && s.Busy == "" })
	if s.Step != StepWhatsApp || !strings.Contains(s.Problem, "did not start") || !strings.Contains(s.Problem, "waxmpp.service: failed") {
		t.Fatalf("%+v", s)
	}
}

// TestRegistrationCaptcha: ejabberd protects registration with a CAPTCHA;
// the flow shows its picture (for the page) and its web address (for the
// terminal); a wrong answer gets a new picture, the right one the account.
func TestRegistrationCaptcha(t *testing.T) {
	e := newEnv(t, pt.Options{Kind: pt.Ejabberd, Registration: pt.RegisterCaptcha, NoShaper: true})
	e.storeConfig()
	f := e.flow()
	ctx := context.Background()
	if err := f.Owner(ctx, e.srv.JID("owner")); err != nil {
		t.Fatal(err)
	}
	if err := f.CreateAccount(ctx, "", "capbot"); err != nil {
		t.Fatal(err)
	}
	s := f.State()
	if s.Step != StepRegister || s.Form == nil || s.Form.Captcha == nil {
		t.Fatalf("want the CAPTCHA: %+v", s)
	}
	c := s.Form.Captcha
	if !strings.HasPrefix(c.Image, "data:image/png;base64,") || !strings.HasPrefix(c.URL, "https://127.0.0.1:") {
		t.Fatalf("captcha image %.40q, url %q", c.Image, c.URL)
	}
	first := c.Image
	if err := f.SubmitForm(ctx, map[string]string{c.Field: "nope"}); err == nil || !strings.Contains(f.State().Problem, "not right") {
		t.Fatalf("a wrong answer: %v, %q", err, f.State().Problem)
	}
	s = f.State()
	if s.Step != StepRegister || s.Form.Captcha == nil || s.Form.Captcha.Image == first {
		t.Fatalf("no new picture after a wrong answer: %+v", s)
	}
	answers := e.srv.CaptchaAnswers()
	if err := f.SubmitForm(ctx, map[string]string{s.Form.Captcha.Field: answers[len(answers)-1]}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, f, "subscription", func(s State) bool { return s.Step == StepSubscribe && s.Bot == "capbot@"+pt.Domain && s.Created })
}

// TestRegistrationRedirect: a server that creates accounts only on its
// web page: the flow gives the page.
func TestRegistrationRedirect(t *testing.T) {
	e := newEnv(t, pt.Options{Kind: pt.Ejabberd, Registration: pt.RegisterRedirect, NoShaper: true})
	f := e.flow()
	ctx := context.Background()
	f.Owner(ctx, e.srv.JID("owner"))
	err := f.CreateAccount(ctx, "", "webbot")
	s := f.State()
	if err == nil || s.Step != StepBot || s.Redirect != pt.RedirectURL || !strings.Contains(s.Problem, pt.RedirectURL) {
		t.Fatalf("redirect: %v, %+v", err, s)
	}
}

// TestPasskeyAdvice: when WhatsApp asks for the passkey, the advice is the
// way of linking not used (WhatsApp asks per way; the QR code cannot be
// the cure after scanning it), and never this page or a terminal.
func TestPasskeyAdvice(t *testing.T) {
	msg := "WhatsApp asked to confirm this link with your passkey, which only WhatsApp's own apps and web site can answer"
	byQR, byPhone := pairFailure(msg, false), pairFailure(msg, true)
	if !strings.Contains(byQR, "phone number instead") || strings.Contains(byQR, "QR code") {
		t.Errorf("after a QR code: %q", byQR)
	}
	if !strings.Contains(byPhone, "scanning the QR code") || strings.Contains(byPhone, "phone number instead") {
		t.Errorf("after a link code: %q", byPhone)
	}
	for _, s := range []string{byQR, byPhone} {
		if strings.Contains(s, "setup page") || !strings.Contains(s, "only WhatsApp's own apps") {
			t.Errorf("advice %q", s)
		}
	}
}

// TestPairFailureWords: the adapter's reason, ended once, with "Try again"
// only where it does not say so already (the SD image's page said "…and
// try again Try again.").
func TestPairFailureWords(t *testing.T) {
	for in, want := range map[string]string{
		"waxmpp could not reach WhatsApp; check the network connection and try again": "waxmpp could not reach WhatsApp; check the network connection and try again.",
		"WhatsApp refused the link.": "WhatsApp refused the link. Try again.",
		"WhatsApp refused the link":  "WhatsApp refused the link. Try again.",
	} {
		if got := pairFailure(in, false); got != want {
			t.Errorf("pairFailure(%q) = %q, want %q", in, got, want)
		}
	}
}
