// Package web is the web front end of setup: the page that `waxmpp setup
// --web` serves (on the SD image, waxmpp-setup.service at
// http://waxmpp.local/) while waxmpp is not set up. It drives the same
// setup.Flow as the terminal.
//
// What it guarantees:
//   - LAN only: it listens on the machine's loopback, private (RFC 1918,
//     RFC 4193) and link-local addresses, binding new ones as they appear,
//     refuses to listen anywhere else, and closes connections from peers
//     outside those ranges.
//   - The setup code: nothing but the code form is offered without it. The
//     code compares ignoring case, spaces and dashes; wrong codes are
//     limited for everyone together (five free, then waits doubling from 2 s
//     to 10 minutes, and none after 100), so the first visitor does not
//     simply win. A right code gives a session cookie (HttpOnly,
//     SameSite=Strict, 24 hours).
//   - CSRF: every form carries a per-session token (the code form a
//     pre-session one, double-submitted with a cookie), and a POST whose
//     Origin is another site is refused.
//   - Plain HTML forms that work without JavaScript (waiting pages refresh
//     themselves); a little JavaScript (setup.js) updates the QR code, the
//     time left and waiting steps in place. Everything is embedded in the
//     binary: no build step, no external resource (a Content-Security-Policy
//     of 'self' says so to the browser).
//   - Phone-sized screens get the phone-number way of linking WhatsApp
//     first (CSS): a phone cannot scan its own screen.
//   - When setup is done the page says what to do next, and the server
//     closes for good a few seconds later.
package web

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"waxmpp/setup"
)

//go:embed page.html static
var files embed.FS

var page = template.Must(template.New("page.html").Funcs(template.FuncMap{
	// imageURL passes a CAPTCHA picture's data: URI (made by setup from
	// the server's Bits of Binary) to <img src>; anything else is dropped.
	"imageURL": func(s string) template.URL {
		if strings.HasPrefix(s, "data:image/png;base64,") || strings.HasPrefix(s, "data:image/jpeg;base64,") || strings.HasPrefix(s, "data:image/gif;base64,") {
			return template.URL(s)
		}
		return ""
	},
	"has": func(list []string, s string) bool {
		for _, x := range list {
			if x == s {
				return true
			}
		}
		return false
	},
}).ParseFS(files, "page.html"))

// Options configure a Server.
type Options struct {
	Flow *setup.Flow
	// Code is the setup code people must enter.
	Code string
	// Listen is "host:port", or ":port" for every LAN address.
	Listen string
	// QR draws a QR code's content as a PNG (bridge/qr.PNG).
	QR  func(content string) ([]byte, error)
	Log *slog.Logger
	// Linger is how long the page stays after setup is done (the last
	// answer's page still loads its parts); default 5 s.
	Linger time.Duration
	Now    func() time.Time
}

// Server serves the page.
type Server struct {
	o     Options
	log   *slog.Logger
	ln    *listeners
	limit limiter

	mu       sync.Mutex
	sessions map[string]session
}

type session struct {
	csrf    string
	expires time.Time
}

// New binds the listeners; Serve serves them.
func New(ctx context.Context, o Options) (*Server, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Linger == 0 {
		o.Linger = 5 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Code == "" {
		return nil, errors.New("web: no setup code")
	}
	ln, err := listen(ctx, o.Listen, o.Log)
	if err != nil {
		return nil, err
	}
	s := &Server{o: o, log: o.Log, ln: ln, sessions: map[string]session{}}
	s.limit.now = o.Now
	return s, nil
}

// Addrs are the addresses served.
func (s *Server) Addrs() []string { return s.ln.Addrs() }

// Serve serves until ctx ends (an error) or setup is done (nil, after
// Linger), then closes every listener.
func (s *Server) Serve(ctx context.Context) error {
	hs := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       60 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(s.ln) }()
	err := s.waitDone(ctx)
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	hs.Shutdown(sctx)
	hs.Close()
	s.ln.Close()
	<-served
	if err == nil {
		s.log.Info("setup done; the setup page is closed")
	}
	return err
}

// waitDone returns when setup is done (after Linger) or ctx ends.
func (s *Server) waitDone(ctx context.Context) error {
	for {
		ch := s.o.Flow.Changed()
		if s.o.Flow.State().Step == setup.StepDone {
			t := time.NewTimer(s.o.Linger)
			defer t.Stop()
			select {
			case <-t.C:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Handler is the page's HTTP handler.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	static, _ := fs.Sub(files, "static")
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	mux.HandleFunc("GET /{$}", s.index)
	mux.HandleFunc("POST /code", s.code)
	mux.HandleFunc("POST /answer", s.answer)
	mux.HandleFunc("GET /state", s.state)
	mux.HandleFunc("GET /qr.png", s.qr)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "Not here: the setup page is at /.", http.StatusNotFound)
	})
	return headers(mux)
}

// headers sets what every answer carries: no caching (codes and state
// change), no framing, no resource from elsewhere.
func headers(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Cache-Control", "no-store")
		hd.Set("X-Content-Type-Options", "nosniff")
		// same-origin, not no-referrer: with no-referrer a browser sends
		// "Origin: null" on the page's own POSTs, which sameOrigin refuses.
		hd.Set("Referrer-Policy", "same-origin")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Content-Security-Policy", "default-src 'none'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		h.ServeHTTP(w, r)
	})
}

const (
	sessionCookie = "waxmpp_setup"
	preCookie     = "waxmpp_pre"
	sessionLife   = 24 * time.Hour
)

func token() string {
	b := make([]byte, 32)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// session returns the request's session, if it has a valid one.
func (s *Server) session(r *http.Request) (session, bool) {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return session{}, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ss, ok := s.sessions[c.Value]
	if !ok || s.o.Now().After(ss.expires) {
		delete(s.sessions, c.Value)
		return session{}, false
	}
	return ss, true
}

// sameOrigin refuses a POST another site's page made: a browser sends
// Origin with every POST, and Sec-Fetch-Site where it knows it.
func sameOrigin(r *http.Request) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
		return false
	}
	o := r.Header.Get("Origin")
	if o == "" || o == "null" {
		return o == ""
	}
	u, err := url.Parse(o)
	return err == nil && u.Host == r.Host
}

// view is what the template shows.
type view struct {
	setup.State
	Authed   bool
	CSRF     string
	Message  string // the code form's message
	Wait     int    // seconds to wait before the next code
	Locked   bool
	Now      time.Time
	QRExpiry int
}

func (s *Server) render(w http.ResponseWriter, v view) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := page.Execute(w, v); err != nil {
		s.log.Warn("page failed", "err", err)
	}
}

func (s *Server) index(w http.ResponseWriter, r *http.Request) {
	ss, ok := s.session(r)
	if !ok {
		s.codeForm(w, r, "", http.StatusOK)
		return
	}
	st := s.o.Flow.State()
	v := view{State: st, Authed: true, CSRF: ss.csrf, Now: s.o.Now()}
	if st.Pair != nil {
		v.QRExpiry = max(0, int(st.Pair.Expires.Sub(v.Now).Seconds()))
	}
	s.render(w, v)
}

// codeForm shows the code form with a fresh pre-session token.
func (s *Server) codeForm(w http.ResponseWriter, r *http.Request, msg string, status int) {
	// One token per browser: a second tab (or the favicon's request)
	// must not make the first tab's form stale.
	pre := token()
	if c, err := r.Cookie(preCookie); err == nil && len(c.Value) == 64 {
		if _, err := hex.DecodeString(c.Value); err == nil {
			pre = c.Value
		}
	}
	http.SetCookie(w, &http.Cookie{Name: preCookie, Value: pre, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode, MaxAge: 3600})
	v := view{CSRF: pre, Message: msg}
	if d, err := s.limit.allow(); err != nil {
		v.Locked = true
	} else if d > 0 {
		v.Wait = int(d.Seconds()) + 1
	}
	w.WriteHeader(status)
	s.render(w, v)
}

func (s *Server) code(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 4096)
	pre, err := r.Cookie(preCookie)
	if !sameOrigin(r) || err != nil || r.ParseForm() != nil ||
		subtle.ConstantTimeCompare([]byte(pre.Value), []byte(r.PostFormValue("csrf"))) != 1 {
		s.log.Debug("code form refused", "same_origin", sameOrigin(r), "origin", r.Header.Get("Origin"), "site", r.Header.Get("Sec-Fetch-Site"), "cookie", err == nil)
		s.codeForm(w, r, "The form was too old or came from elsewhere; enter the code again.", http.StatusForbidden)
		return
	}
	if d, err := s.limit.allow(); err != nil {
		s.codeForm(w, r, "", http.StatusTooManyRequests)
		return
	} else if d > 0 {
		s.codeForm(w, r, fmt.Sprintf("Too many wrong codes: wait %d seconds, then try again.", int(d.Seconds())+1), http.StatusTooManyRequests)
		return
	}
	if !codeMatches(s.o.Code, r.PostFormValue("code")) {
		s.limit.failed()
		s.log.Warn("wrong setup code entered", "from", r.RemoteAddr)
		s.codeForm(w, r, "That is not the setup code. It is shown on a screen connected to the machine, and in waxmpp-setup-code.txt on the SD card's WAXMPP-BOOT drive.", http.StatusForbidden)
		return
	}
	id := token()
	s.mu.Lock()
	s.sessions[id] = session{csrf: token(), expires: s.o.Now().Add(sessionLife)}
	s.mu.Unlock()
	s.log.Info("setup code accepted", "from", r.RemoteAddr)
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: id, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode, MaxAge: int(sessionLife.Seconds())})
	http.SetCookie(w, &http.Cookie{Name: preCookie, Value: "", Path: "/", MaxAge: -1})
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// answer takes one form of a step and calls the flow; the answer's
// problem, if any, shows on the page that follows (post, redirect, get).
func (s *Server) answer(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	ss, ok := s.session(r)
	if !ok {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	if !sameOrigin(r) || r.ParseForm() != nil || subtle.ConstantTimeCompare([]byte(ss.csrf), []byte(r.PostFormValue("csrf"))) != 1 {
		http.Error(w, "This form was not sent by the setup page; reload the page.", http.StatusForbidden)
		return
	}
	f := s.o.Flow
	ctx := context.WithoutCancel(r.Context()) // a closed tab must not cancel a half-done step
	v := r.PostFormValue
	var err error
	switch v("action") {
	case "owner":
		err = f.Owner(ctx, v("owner"))
	case "use":
		err = f.UseAccount(ctx, v("jid"), v("password"))
	case "create":
		err = f.CreateAccount(ctx, v("server"), v("name"))
	case "form":
		values := map[string]string{}
		for k, vs := range r.PostForm {
			if name, ok := strings.CutPrefix(k, "f."); ok && len(vs) > 0 {
				values[name] = vs[0]
			}
		}
		err = f.SubmitForm(ctx, values)
	case "skip-subscription":
		err = f.SkipSubscription()
	case "ask-again":
		err = f.AskAgain()
	case "link-qr":
		err = f.Link(ctx, "")
	case "link-phone":
		err = f.Link(ctx, v("phone"))
	case "skip-whatsapp":
		err = f.SkipWhatsApp()
	case "retry":
		err = f.Retry()
	case "back":
		err = f.Back()
	case "change":
		err = f.Change(v("part"))
	case "finish":
		err = f.Finish(ctx)
	default:
		http.Error(w, "unknown action", http.StatusBadRequest)
		return
	}
	if err != nil && !isProblem(err) {
		s.log.Info("answer not taken", "action", v("action"), "err", err)
	}
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func isProblem(err error) bool {
	var p *setup.Problem
	return errors.As(err, &p)
}

// stateJSON is what setup.js polls.
type stateJSON struct {
	Step      setup.Step `json:"step"`
	Version   int        `json:"version"`
	Busy      string     `json:"busy,omitempty"`
	Problem   string     `json:"problem,omitempty"`
	Waiting   bool       `json:"waiting,omitempty"`
	PairN     int        `json:"pair_n,omitempty"`
	PairCode  string     `json:"pair_code,omitempty"`
	ExpiresIn int        `json:"expires_in,omitempty"`
}

// state answers the page's poll: at once when ?v= is not the current
// version, else at the next change or after 25 s.
func (s *Server) state(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.session(r); !ok {
		http.Error(w, "no session", http.StatusUnauthorized)
		return
	}
	f := s.o.Flow
	ch := f.Changed()
	st := f.State()
	if v, err := strconv.Atoi(r.URL.Query().Get("v")); err == nil && v == st.Version {
		t := time.NewTimer(25 * time.Second)
		select {
		case <-ch:
		case <-t.C:
		case <-r.Context().Done():
		}
		t.Stop()
		st = f.State()
	}
	js := stateJSON{Step: st.Step, Version: st.Version, Busy: st.Busy, Problem: st.Problem, Waiting: st.Waiting}
	if st.Pair != nil {
		js.PairN, js.PairCode = st.Pair.N, st.Pair.Code
		js.ExpiresIn = max(0, int(st.Pair.Expires.Sub(s.o.Now()).Seconds()))
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(js)
}

// qr draws the current QR code.
func (s *Server) qr(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.session(r); !ok {
		http.Error(w, "no session", http.StatusUnauthorized)
		return
	}
	st := s.o.Flow.State()
	if st.Pair == nil || st.Pair.QR == "" || s.o.QR == nil {
		http.Error(w, "no QR code now", http.StatusNotFound)
		return
	}
	png, err := s.o.QR(st.Pair.QR)
	if err != nil {
		http.Error(w, "could not draw the QR code", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "image/png")
	w.Write(png)
}
