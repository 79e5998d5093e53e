package setup

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"unicode"

	"waxmpp/bridge/config"
	"waxmpp/bridge/xmpp"
)

// Change, at StepMenu, starts changing one part of a configured system:
// "owner" (the owner's address), "bot" (the bot account) or "whatsapp"
// (link again). The part's steps end back at the menu.
func (f *Flow) Change(part string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.st.Busy != "" {
		return ErrBusy
	}
	if f.st.Step != StepMenu {
		return ErrWrongStep
	}
	f.st.Problem = ""
	switch part {
	case "owner":
		f.st.Step = StepOwner
	case "bot":
		f.st.Step = StepBot
		f.prepareBot()
	case "whatsapp":
		f.st.Step = StepWhatsApp
		f.linked = false
		f.st.Linked = ""
	default:
		return fmt.Errorf("setup: nothing called %q to change; want owner, bot or whatsapp", part)
	}
	f.touch()
	return nil
}

// Owner takes the owner's address.
func (f *Flow) Owner(ctx context.Context, addr string) error {
	if err := f.begin("Checking "+strings.TrimSpace(addr)+" …", StepOwner); err != nil {
		return err
	}
	f.mu.Lock()
	bot := f.st.Bot
	f.mu.Unlock()
	jid, err := f.checkOwner(ctx, addr, bot)
	return f.finish(err, func() {
		if f.menu && !strings.EqualFold(jid, f.st.Owner) {
			f.changes["owner"] = true
		}
		f.st.Owner = jid
		if f.menu && !f.changes["owner"] {
			f.st.Step = StepMenu
			return
		}
		if f.menu {
			// A new owner must accept the bot again.
			f.enterSubscribe()
			return
		}
		f.st.Step = StepBot
		f.prepareBot()
	})
}

// prepareBot fills in the bot step's suggestions; f.mu is held.
func (f *Flow) prepareBot() {
	local, domain, _ := strings.Cut(f.st.Owner, "@")
	if f.st.Server == "" {
		f.st.Server = domain
	}
	if f.st.Name == "" {
		f.st.Name = suggestName(local)
	}
	f.st.Redirect = ""
	f.st.Note = ""
}

// suggestName makes a bot name from the owner's: "alice" → "alice.whatsapp".
func suggestName(local string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(local) {
		if r < 0x80 && (unicode.IsLetter(r) || unicode.IsDigit(r) || r == '.' || r == '-' || r == '_') {
			b.WriteRune(r)
		}
	}
	if b.Len() == 0 {
		return "whatsapp-bridge"
	}
	return b.String() + ".whatsapp"
}

// cleanJID trims what people paste around an address: spaces, an xmpp:
// URI's scheme and query.
func cleanJID(s string) string {
	s = strings.TrimSpace(s)
	if len(s) >= 5 && strings.EqualFold(s[:5], "xmpp:") {
		s = s[5:]
		if u, err := url.PathUnescape(s); err == nil {
			s = u
		}
		s, _, _ = strings.Cut(s, "?")
	}
	s = strings.TrimPrefix(s, "//")
	return strings.TrimSpace(s)
}

// checkJID returns what is wrong with jid as the field (xmpp.owner or
// xmpp.jid), in the config's own words, or "".
func checkJID(field, jid string) string {
	c := config.Default()
	c.XMPP.Owner, c.XMPP.JID, c.XMPP.Password = "owner@example.org", "bot@example.org", "x"
	if field == "xmpp.owner" {
		c.XMPP.Owner = jid
	} else {
		c.XMPP.JID = jid
	}
	for _, e := range config.Errors(c.Validate()) {
		if e.Field == field {
			p := e.Problem
			if i := strings.Index(p, "; want"); i > 0 {
				p = p[:i]
			}
			return p
		}
	}
	return ""
}

func (f *Flow) checkOwner(ctx context.Context, addr, bot string) (string, error) {
	jid := cleanJID(addr)
	if p := checkJID("xmpp.owner", jid); p != "" {
		return "", problem(nil, "That is not an XMPP address (%s). It looks like name@example.org; your app shows it in its settings or account page.", p)
	}
	jid = strings.ToLower(jid)
	if bot != "" && strings.EqualFold(jid, bot) {
		return "", problem(nil, "%s is the bot account; give your own address, the one you chat from.", jid)
	}
	_, domain, _ := strings.Cut(jid, "@")
	if err := f.checkDomain(ctx, domain); err != nil {
		return "", err
	}
	return jid, nil
}

// checkDomain checks that domain's XMPP server exists in DNS: an SRV
// record, else an address. A configured Server skips the lookup.
func (f *Flow) checkDomain(ctx context.Context, domain string) error {
	if f.server() != "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, f.opts.DialTimeout)
	defer cancel()
	for _, svc := range []string{"xmpp-client", "xmpps-client"} {
		if _, srvs, err := f.opts.Resolver.LookupSRV(ctx, svc, "tcp", domain); err == nil && len(srvs) > 0 {
			return nil
		}
	}
	addrs, err := f.opts.Resolver.LookupHost(ctx, domain)
	if err == nil && len(addrs) > 0 {
		return nil
	}
	var de *net.DNSError
	if errors.As(err, &de) && de.IsNotFound {
		return problem(err, "There is no server called %s: DNS knows no such name. Check the spelling of the part after the @.", domain)
	}
	if ctx.Err() != nil && errors.Is(err, context.DeadlineExceeded) || errors.As(err, &de) && (de.IsTimeout || de.IsTemporary) {
		return problem(err, "%s could not be looked up (DNS did not answer). Is this machine online? Check its network, then try again.", domain)
	}
	return problem(err, "There is no XMPP server at %s (no DNS records for it). Check the spelling of the part after the @.", domain)
}

// server is where every XMPP connection goes: the option, else what the
// existing config says, else "" (DNS).
func (f *Flow) server() string {
	if f.opts.Server != "" {
		return f.opts.Server
	}
	if f.old != nil && f.old.XMPP.Server != "" && f.old.XMPP.JID != "" {
		return f.old.XMPP.Server
	}
	return ""
}

// xmppConfig is the login of jid with password, as the bridge would do it.
func (f *Flow) xmppConfig(jid, password string) xmpp.Config {
	return xmpp.Config{
		JID: jid, Password: password, Resource: "waxmpp-setup",
		Server: f.server(), RootCAs: f.roots, Resolver: f.opts.Resolver,
		DialTimeout: f.opts.DialTimeout,
		Log:         f.log.With("component", "xmpp"),
	}
}

// UseAccount takes a bot account the owner has: it is tried for real.
func (f *Flow) UseAccount(ctx context.Context, jid, password string) error {
	jid = strings.ToLower(cleanJID(jid))
	if err := f.begin("Logging in as "+jid+" …", StepBot); err != nil {
		return err
	}
	acct, err := f.checkAccount(ctx, jid, password)
	return f.finish(err, func() { f.botReady(jid, password, acct, false) })
}

func (f *Flow) checkAccount(ctx context.Context, jid, password string) (*xmpp.Account, error) {
	if p := checkJID("xmpp.jid", jid); p != "" {
		return nil, problem(nil, "That is not an XMPP address (%s). Give the bot account's address, such as mybot@example.org.", p)
	}
	f.mu.Lock()
	owner := f.st.Owner
	f.mu.Unlock()
	if strings.EqualFold(jid, owner) {
		return nil, problem(nil, "%s is your own address. The bot needs an account of its own, so that its messages appear as a conversation in your app: give another one, or let setup create one.", jid)
	}
	if password == "" {
		return nil, problem(nil, "Give the bot account's password.")
	}
	_, domain, _ := strings.Cut(jid, "@")
	if err := f.checkDomain(ctx, domain); err != nil {
		return nil, err
	}
	return f.login(ctx, jid, password)
}

// login logs jid in, telling failures in plain words.
func (f *Flow) login(ctx context.Context, jid, password string) (*xmpp.Account, error) {
	acct, err := xmpp.Login(ctx, f.xmppConfig(jid, password))
	if err == nil {
		return acct, nil
	}
	return nil, loginProblem(jid, err)
}

// loginProblem says why a login failed, for a person.
func loginProblem(jid string, err error) error {
	_, domain, _ := strings.Cut(jid, "@")
	msg := err.Error()
	switch {
	case errors.Is(err, xmpp.ErrAuth):
		return problem(err, "The server %s refused the password for %s. Check the password (and the address); it is the one you log in with in your XMPP app.", domain, jid)
	case errors.Is(err, context.Canceled):
		return err
	case strings.Contains(msg, "x509:") || strings.Contains(msg, "certificate"):
		return problem(err, "The server %s presented a certificate that could not be verified, so waxmpp did not log in. If the clock of this machine is wrong, correct it (waxmpp doctor checks it); otherwise the server's certificate is at fault.", domain)
	case strings.Contains(msg, "no such host") || strings.Contains(msg, "offers no client service"):
		return problem(err, "There is no XMPP server at %s. Check the part after the @.", domain)
	case strings.Contains(msg, "connection refused") || strings.Contains(msg, "no answer") || strings.Contains(msg, "timeout") || strings.Contains(msg, "not done within"):
		return problem(err, "The server %s could not be reached. Is this machine online? Try again in a moment.", domain)
	}
	return problem(err, "Logging in to %s failed: %s", domain, msg)
}

// botReady records a bot account that logged in and moves on to the
// subscription; f.mu is held.
func (f *Flow) botReady(jid, password string, acct *xmpp.Account, created bool) {
	if f.acct != nil {
		f.acct.Close()
	}
	if f.menu && (!strings.EqualFold(jid, f.st.Bot) || password != f.password) {
		f.changes["bot"] = true
	}
	f.acct = acct
	f.st.Bot, f.password, f.st.Created = jid, password, created
	f.st.Form, f.st.Redirect, f.st.Note = nil, "", ""
	f.enterSubscribe()
}

// CreateAccount creates a bot account named name on server (the owner's
// domain when ""), by in-band registration. When the server asks only for
// a name and a password it is done at once; otherwise the flow goes to
// StepRegister with the rest of the form.
func (f *Flow) CreateAccount(ctx context.Context, server, name string) error {
	f.mu.Lock()
	if server = strings.ToLower(strings.TrimSpace(server)); server == "" {
		server = f.st.Server
	}
	f.mu.Unlock()
	name = strings.ToLower(strings.TrimSpace(name))
	if err := f.begin("Asking "+server+" for a new account …", StepBot); err != nil {
		return err
	}
	reg, err := f.openRegistration(ctx, server, name)
	if err != nil {
		return f.finishWith(err, func() { f.st.Server, f.st.Name = server, name })
	}
	if form := formFor(reg); form != nil {
		return f.finish(nil, func() {
			f.reg, f.regName = reg, name
			f.st.Server, f.st.Name = server, name
			f.st.Form = form
			f.st.Step = StepRegister
		})
	}
	acct, jid, password, err := f.register(ctx, reg, name, nil)
	reg.Close()
	return f.finishWith(err, func() {
		f.st.Server, f.st.Name = server, name
		if err == nil {
			f.botReady(jid, password, acct, true)
		}
	})
}

// openRegistration opens a registration on server, telling what servers
// answer in plain words.
func (f *Flow) openRegistration(ctx context.Context, server, name string) (*xmpp.Registration, error) {
	f.mu.Lock()
	owner := f.st.Owner
	f.mu.Unlock()
	if p := checkJID("xmpp.jid", name+"@"+server); p != "" {
		return nil, problem(nil, "%s@%s cannot be an XMPP address (%s). Choose a name of letters, digits, dots and dashes.", name, server, p)
	}
	if strings.EqualFold(name+"@"+server, owner) {
		return nil, problem(nil, "That is your own address; choose another name for the bot.")
	}
	if err := f.checkDomain(ctx, server); err != nil {
		return nil, err
	}
	reg, err := xmpp.OpenRegistration(ctx, xmpp.RegisterConfig{
		Domain: server, Server: f.server(), RootCAs: f.roots, Resolver: f.opts.Resolver, Timeout: f.opts.DialTimeout,
	})
	switch {
	case err == nil:
	case errors.Is(err, xmpp.ErrRegistrationClosed):
		return nil, problem(err, "%s does not let apps create accounts. Create the bot account yourself, in your XMPP app (add an account) or on the web page of a server that allows it (https://providers.xmpp.net lists some), then choose “I have an account” and give its address and password.", server)
	case errors.Is(err, xmpp.ErrTooManyAccounts):
		return nil, problem(err, "%s allows no more new accounts from this address for now. Try again later, or create the account yourself and choose “I have an account”.", server)
	default:
		return nil, loginProblem(name+"@"+server, err)
	}
	if reg.Redirect != "" && len(reg.Fields) == 0 || reg.Redirect != "" && !hasField(reg, "username") {
		reg.Close()
		f.mu.Lock()
		f.st.Redirect = reg.Redirect
		f.mu.Unlock()
		return nil, problem(nil, "%s creates accounts only on its web page: open %s, create the bot account there, then choose “I have an account” and give its address and password.", server, reg.Redirect)
	}
	if !hasField(reg, "username") || !hasField(reg, "password") {
		reg.Close()
		return nil, problem(nil, "%s asks for an account in a way setup does not know (no name and password fields). Create the bot account in your XMPP app, then choose “I have an account”.", server)
	}
	return reg, nil
}

func hasField(r *xmpp.Registration, v string) bool {
	_, ok := r.Field(v)
	return ok
}

// formFor is what the person must fill in beyond name and password, or nil.
func formFor(r *xmpp.Registration) *Form {
	form := &Form{Instructions: r.Instructions}
	for _, rf := range r.Fields {
		if rf.Hidden() || rf.Var == "username" || rf.Var == "password" || rf.Var == "FORM_TYPE" {
			continue
		}
		if strings.HasPrefix(rf.Var, "captcha-fallback") {
			continue // the URL is in Captcha.URL
		}
		fl := Field{Name: rf.Var, Label: rf.Label, Desc: rf.Desc, Required: rf.Required, Value: rf.Value, Secret: rf.Type == "text-private"}
		if fl.Label == "" {
			fl.Label = legacyLabel(rf.Var)
		}
		for _, o := range rf.Options {
			fl.Options = append(fl.Options, Option{Label: o.Label, Value: o.Value})
		}
		if len(rf.Media) > 0 {
			c := &Captcha{Field: rf.Var, URL: r.CaptchaURL()}
			for _, m := range rf.Media {
				if len(m.Data) > 0 && strings.HasPrefix(m.Type, "image/") && c.Image == "" {
					c.Image = "data:" + m.Type + ";base64," + base64.StdEncoding.EncodeToString(m.Data)
				}
			}
			form.Captcha = c
			if fl.Label == "" || fl.Label == rf.Var {
				fl.Label = "The text in the picture"
			}
		}
		form.Fields = append(form.Fields, fl)
	}
	if len(form.Fields) == 0 {
		return nil
	}
	return form
}

func legacyLabel(v string) string {
	switch v {
	case "email":
		return "Email address"
	case "name":
		return "Full name"
	case "nick":
		return "Nickname"
	case "phone":
		return "Telephone number"
	}
	return v
}

// SubmitForm answers the rest of a registration form (StepRegister):
// values by Field.Name.
func (f *Flow) SubmitForm(ctx context.Context, values map[string]string) error {
	if err := f.begin("Creating the account …", StepRegister); err != nil {
		return err
	}
	f.mu.Lock()
	reg, name, server, form := f.reg, f.regName, f.st.Server, f.st.Form
	f.mu.Unlock()
	for _, fl := range form.Fields {
		if fl.Required && strings.TrimSpace(values[fl.Name]) == "" {
			return f.finish(problem(nil, "Fill in “%s”: the server requires it.", fl.Label), nil)
		}
	}
	acct, jid, password, err := f.register(ctx, reg, name, values)
	if err == nil {
		return f.finish(nil, func() {
			f.reg = nil
			reg.Close()
			f.botReady(jid, password, acct, true)
		})
	}
	// A CAPTCHA is used up by any answer: fetch a new one with the form.
	if form.Captcha != nil || errors.Is(err, xmpp.ErrCaptchaFailed) {
		reg.Close()
		nreg, oerr := f.openRegistration(ctx, server, name)
		if oerr != nil {
			return f.finishWith(oerr, func() { f.reg = nil; f.st.Form = nil; f.st.Step = StepBot })
		}
		nform := formFor(nreg)
		return f.finishWith(err, func() {
			f.reg = nreg
			if nform != nil {
				for i := range nform.Fields {
					if v, ok := values[nform.Fields[i].Name]; ok && (nform.Captcha == nil || nform.Fields[i].Name != nform.Captcha.Field) {
						nform.Fields[i].Value = v
					}
				}
				f.st.Form = nform
			}
		})
	}
	if errors.Is(err, xmpp.ErrNameTaken) {
		return f.finishWith(err, func() {
			f.reg = nil
			reg.Close()
			f.st.Form = nil
			f.st.Step = StepBot
		})
	}
	return f.finishWith(err, func() {
		for i := range f.st.Form.Fields {
			f.st.Form.Fields[i].Value = values[f.st.Form.Fields[i].Name]
		}
	})
}

// register submits the registration with a generated password, then logs
// the new account in.
func (f *Flow) register(ctx context.Context, reg *xmpp.Registration, name string, values map[string]string) (*xmpp.Account, string, string, error) {
	password, err := f.newPassword()
	if err != nil {
		return nil, "", "", err
	}
	v := map[string]string{"username": name, "password": password}
	for k, val := range values {
		if k != "username" && k != "password" {
			v[k] = strings.TrimSpace(val)
		}
	}
	jid := name + "@" + reg.Domain
	err = reg.Submit(ctx, v)
	switch {
	case err == nil:
	case errors.Is(err, xmpp.ErrNameTaken):
		return nil, "", "", problem(err, "The name %s is taken on %s. Choose another name.", name, reg.Domain)
	case errors.Is(err, xmpp.ErrCaptchaFailed):
		return nil, "", "", problem(err, "The answer to the picture was not right. Here is a new one.")
	case errors.Is(err, xmpp.ErrTooManyAccounts):
		return nil, "", "", problem(err, "%s allows no more new accounts from this address for now. Try again later, or create the account yourself and choose “I have an account”.", reg.Domain)
	case errors.Is(err, xmpp.ErrRegistrationClosed):
		return nil, "", "", problem(err, "%s refused to create the account (%s). Create it yourself in your XMPP app, then choose “I have an account”.", reg.Domain, serverWords(err))
	case errors.Is(err, xmpp.ErrNotAcceptable):
		return nil, "", "", problem(err, "%s did not accept the form: %s", reg.Domain, serverWords(err))
	default:
		return nil, "", "", problem(err, "Creating the account on %s failed: %v", reg.Domain, err)
	}
	f.log.Info("bot account created", "jid", jid)
	acct, err := f.login(ctx, jid, password)
	if err != nil {
		return nil, "", "", err
	}
	return acct, jid, password, nil
}

// serverWords is what the server said about a refused registration.
func serverWords(err error) string {
	var re *xmpp.RegisterError
	if errors.As(err, &re) && re.Text != "" {
		return re.Text
	}
	if errors.As(err, &re) {
		return re.Condition
	}
	return err.Error()
}

// passwordAlphabet: letters and digits only, which every server and every
// config file takes as they are.
const passwordAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// newPassword makes a 24-character password (about 143 bits).
func (f *Flow) newPassword() (string, error) {
	var b strings.Builder
	buf := make([]byte, 1)
	for b.Len() < 24 {
		if _, err := f.opts.Rand.Read(buf); err != nil {
			return "", fmt.Errorf("setup: password: %w", err)
		}
		// Rejection sampling keeps every character equally likely.
		if int(buf[0]) >= 256/len(passwordAlphabet)*len(passwordAlphabet) {
			continue
		}
		b.WriteByte(passwordAlphabet[int(buf[0])%len(passwordAlphabet)])
	}
	return b.String(), nil
}

// Back returns from a registration form to the bot step, or from the
// bot step to the owner step (or to the menu on a re-run).
func (f *Flow) Back() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.st.Busy != "" {
		return ErrBusy
	}
	f.st.Problem = ""
	switch f.st.Step {
	case StepRegister:
		if f.reg != nil {
			f.reg.Close()
			f.reg = nil
		}
		f.st.Form = nil
		f.st.Step = StepBot
	case StepBot, StepOwner, StepWhatsApp:
		if f.st.Step == StepWhatsApp && f.stopPair != nil {
			return errors.New("setup: linking is under way; stop it first")
		}
		switch {
		case f.menu:
			f.st.Step = StepMenu
		case f.st.Step == StepBot:
			f.st.Step = StepOwner
		default:
			return ErrWrongStep
		}
	default:
		return ErrWrongStep
	}
	f.touch()
	return nil
}
