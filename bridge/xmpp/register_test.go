package xmpp

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	pt "waxmpp/bridge/prosodytest"
)

func regConfig(t *testing.T, srv *pt.Server) RegisterConfig {
	return RegisterConfig{Domain: pt.Domain, Server: srv.Addr(), RootCAs: roots(t, srv), Timeout: 10 * time.Second}
}

func openReg(t *testing.T, srv *pt.Server) *Registration {
	t.Helper()
	r, err := OpenRegistration(context.Background(), regConfig(t, srv))
	if err != nil {
		t.Fatalf("OpenRegistration: %v", err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// loginAs proves that the account exists with that password.
func loginAs(t *testing.T, srv *pt.Server, jid, pass string) {
	t.Helper()
	cfg := botConfig(t, srv)
	cfg.JID, cfg.Password = jid, pass
	a, err := Login(context.Background(), cfg)
	if err != nil {
		t.Fatalf("login as %s: %v", jid, err)
	}
	a.Close()
}

func TestRegisterOpen(t *testing.T) {
	for _, kind := range pt.Kinds {
		t.Run(string(kind), func(t *testing.T) {
			srv := pt.Start(t, pt.Options{Kind: kind, Registration: pt.RegisterOpen, NoShaper: true})
			r := openReg(t, srv)
			if !r.Offered {
				t.Errorf("the server did not advertise registration")
			}
			if _, ok := r.Field("username"); !ok {
				t.Fatalf("no username field in %+v", r.Fields)
			}
			if _, ok := r.Field("password"); !ok {
				t.Fatalf("no password field in %+v", r.Fields)
			}
			// A name that exists is refused as taken; the stream stays usable.
			err := r.Submit(context.Background(), map[string]string{"username": "owner", "password": "x-long-password-1"})
			if !errors.Is(err, ErrNameTaken) {
				t.Fatalf("registering owner again: %v, want ErrNameTaken", err)
			}
			if err := r.Submit(context.Background(), map[string]string{"username": "newbot", "password": "a-long-generated-password"}); err != nil {
				t.Fatalf("Submit: %v", err)
			}
			loginAs(t, srv, "newbot@"+pt.Domain, "a-long-generated-password")
		})
	}
}

func TestRegisterClosed(t *testing.T) {
	srv := pt.Start(t, pt.Options{})
	_, err := OpenRegistration(context.Background(), regConfig(t, srv))
	if !errors.Is(err, ErrRegistrationClosed) {
		t.Fatalf("OpenRegistration on a closed server: %v, want ErrRegistrationClosed", err)
	}
	t.Logf("closed: %v", err)
}

func TestRegisterFields(t *testing.T) {
	srv := pt.Start(t, pt.Options{Registration: pt.RegisterFields})
	r := openReg(t, srv)
	if !r.Form {
		t.Fatalf("want a data form, got legacy fields %+v", r.Fields)
	}
	email, ok := r.Field("email")
	if !ok || !email.Required {
		t.Fatalf("email field %+v (found %v), want required", email, ok)
	}
	if name, ok := r.Field("name"); !ok || name.Required {
		t.Fatalf("name field %+v (found %v), want optional", name, ok)
	}
	err := r.Submit(context.Background(), map[string]string{"username": "formbot", "password": "a-long-generated-password"})
	if !errors.Is(err, ErrNotAcceptable) {
		t.Fatalf("Submit without the required email: %v, want ErrNotAcceptable", err)
	}
	var re *RegisterError
	if !errors.As(err, &re) || !strings.Contains(strings.ToLower(re.Text), "email") {
		t.Errorf("the error %v does not say the email is missing", err)
	}
	if err := r.Submit(context.Background(), map[string]string{"username": "formbot", "password": "a-long-generated-password", "email": "me@example.org"}); err != nil {
		t.Fatalf("Submit with email: %v", err)
	}
	loginAs(t, srv, "formbot@"+pt.Domain, "a-long-generated-password")
}

func TestRegisterCaptcha(t *testing.T) {
	srv := pt.Start(t, pt.Options{Kind: pt.Ejabberd, Registration: pt.RegisterCaptcha, NoShaper: true})
	r := openReg(t, srv)
	if !r.Captcha || !r.Form {
		t.Fatalf("want a CAPTCHA form, got %+v", r)
	}
	ocr, ok := r.Field("ocr")
	if !ok || !ocr.Required {
		t.Fatalf("no required ocr field in %+v", r.Fields)
	}
	var img, url bool
	for _, m := range ocr.Media {
		if strings.HasPrefix(m.URI, "cid:") && bytes.HasPrefix(m.Data, []byte("\x89PNG")) {
			img = true
		}
		if strings.HasPrefix(m.URI, "https://") {
			url = true
		}
	}
	if !img {
		t.Errorf("the CAPTCHA image did not come with the form: %+v", ocr.Media)
	}
	if !url {
		t.Logf("no https URI in the media element (ejabberd 23.01 sends a cid: URI only)")
	}
	if u := r.CaptchaURL(); !strings.HasPrefix(u, "https://127.0.0.1:") || !strings.Contains(u, "/captcha/") {
		t.Errorf("CaptchaURL %q, want the server's https page", u)
	} else {
		// What the terminal shows: a page the person opens in a browser.
		hc := &http.Client{Transport: &http.Transport{TLSClientConfig: srv.TLSConfig()}, Timeout: 10 * time.Second}
		resp, err := hc.Get(u)
		if err != nil {
			t.Fatalf("GET %s: %v", u, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !bytes.HasPrefix(body, []byte("\x89PNG")) {
			t.Errorf("GET %s: %s %q…", u, resp.Status, body[:min(len(body), 40)])
		}
	}
	// ejabberd draws one image when it starts (to check the script works),
	// then one per challenge; the page draws the same text again.
	answers := srv.CaptchaAnswers()
	if len(answers) < 2 {
		t.Fatalf("CAPTCHA answers %q, want the start-up check's and the form's", answers)
	}
	err := r.Submit(context.Background(), map[string]string{"username": "capbot", "password": "a-long-generated-password", "ocr": "wrong" + answers[len(answers)-1]})
	if !errors.Is(err, ErrCaptchaFailed) {
		t.Fatalf("a wrong CAPTCHA answer: %v, want ErrCaptchaFailed", err)
	}
	t.Logf("wrong answer: %v", err)
	r.Close()

	r = openReg(t, srv)
	answers = srv.CaptchaAnswers()
	if err := r.Submit(context.Background(), map[string]string{"username": "capbot", "password": "a-long-generated-password", "ocr": answers[len(answers)-1]}); err != nil {
		t.Fatalf("the right CAPTCHA answer: %v", err)
	}
	loginAs(t, srv, "capbot@"+pt.Domain, "a-long-generated-password")
}

func TestRegisterRedirect(t *testing.T) {
	srv := pt.Start(t, pt.Options{Kind: pt.Ejabberd, Registration: pt.RegisterRedirect, NoShaper: true})
	r, err := OpenRegistration(context.Background(), regConfig(t, srv))
	if err != nil {
		t.Fatalf("OpenRegistration: %v", err)
	}
	defer r.Close()
	if r.Redirect != pt.RedirectURL {
		t.Fatalf("Redirect %q, want %q (fields %+v)", r.Redirect, pt.RedirectURL, r.Fields)
	}
}

func TestAccount(t *testing.T) {
	for _, kind := range pt.Kinds {
		t.Run(string(kind), func(t *testing.T) {
			srv := pt.Start(t, pt.Options{Kind: kind, NoShaper: true})
			cfg := botConfig(t, srv)
			bad := cfg
			bad.Password = "not-the-password"
			if _, err := Login(context.Background(), bad); !errors.Is(err, ErrAuth) {
				t.Fatalf("Login with a wrong password: %v, want ErrAuth", err)
			}
			a, err := Login(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			owner := srv.Dial(t, "owner")
			if s, err := a.SubscriptionOf(ctx, srv.JID("owner")); err != nil || s.Accepted() {
				t.Fatalf("before: %+v, %v", s, err)
			}
			if err := a.AskSubscription(srv.JID("owner")); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- a.WaitAccepted(ctx, srv.JID("owner")) }()
			subscribed(t, owner, srv.JID("bot"))
			if err := <-done; err != nil {
				t.Fatalf("WaitAccepted: %v", err)
			}
			if s, err := a.SubscriptionOf(ctx, srv.JID("owner")); err != nil || !s.Accepted() {
				t.Fatalf("after: %+v, %v", s, err)
			}
			// The stranger declines.
			stranger := srv.Dial(t, "stranger")
			if err := a.AskSubscription(srv.JID("stranger")); err != nil {
				t.Fatal(err)
			}
			go func() { done <- a.WaitAccepted(ctx, srv.JID("stranger")) }()
			stranger.Next(t, 10*time.Second, func(e *pt.Elem) bool {
				return e.XMLName.Local == "presence" && e.Attr("type") == "subscribe"
			})
			stranger.Send("<presence to='" + srv.JID("bot") + "' type='unsubscribed'/>")
			if err := <-done; !errors.Is(err, ErrDeclined) {
				t.Fatalf("WaitAccepted after a refusal: %v, want ErrDeclined", err)
			}
		})
	}
}
