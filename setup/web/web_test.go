package web

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"waxmpp/bridge"
	pt "waxmpp/bridge/prosodytest"
)

// TestWebSetup walks the page in Chromium as a person would, on a
// desktop-sized window: the code (a wrong one first), the owner, a new
// bot account, the owner accepting it in their app (the page moves on by
// itself), the QR code rotating in place with its time left, the
// simulated phone scanning it, the end; then the page is gone.
func TestWebSetup(t *testing.T) {
	e := newEnv(t, pt.Options{Registration: pt.RegisterOpen})
	ctx := browser(t, 1100, 900, false)
	owner := e.srv.Dial(t, "owner")

	run(t, ctx, "open the page", chromedp.Navigate(e.url), chromedp.WaitVisible("#code"))
	forms := eval[int](t, ctx, `document.forms.length`)
	if forms != 1 || strings.Contains(text(t, ctx, "body"), "address") {
		t.Fatalf("without the code the page offers %d forms: %s", forms, text(t, ctx, "body"))
	}
	shot(t, ctx, "01-code")
	run(t, ctx, "a wrong code", chromedp.SendKeys("#code", "AAAA-BBBB-CCCC"), chromedp.Submit("#code"),
		chromedp.WaitVisible(".problem"))
	if p := text(t, ctx, ".problem"); !strings.Contains(p, "not the setup code") {
		t.Fatalf("wrong code: %q", p)
	}
	shot(t, ctx, "02-wrong-code")
	e.enterCode(ctx)
	shot(t, ctx, "03-owner")

	run(t, ctx, "an address without a server", chromedp.SendKeys("#owner-addr", "owner@nowhere.invalid"),
		chromedp.Submit("#owner-addr"), chromedp.WaitVisible("#problem"))
	if p := text(t, ctx, "#problem"); !strings.Contains(p, "no server called nowhere.invalid") {
		t.Fatalf("unknown server: %q", p)
	}
	shot(t, ctx, "04-unknown-server")
	run(t, ctx, "the owner", chromedp.SetValue("#owner-addr", "owner@"+pt.Domain),
		chromedp.Submit("#owner-addr"), chromedp.WaitVisible("#bot"))
	name := get(t, ctx, "the suggested name", chromedp.Value("#bot-name"))
	if name != "owner.whatsapp" {
		t.Errorf("suggested bot name %q", name)
	}
	shot(t, ctx, "05-bot")
	run(t, ctx, "create the bot", chromedp.Submit("#bot-name"), chromedp.WaitVisible("#subscribe"))
	shot(t, ctx, "06-subscribe")
	owner.Next(t, 20*time.Second, func(el *pt.Elem) bool { return el.Attr("type") == "subscribe" })
	owner.Send("<presence to='owner.whatsapp@" + pt.Domain + "' type='subscribed'/>")
	// No click: the page follows the flow.
	run(t, ctx, "the WhatsApp step", chromedp.WaitVisible("#whatsapp"))
	if phoneFirst(t, ctx) {
		t.Errorf("a desktop window shows the phone number first")
	}
	shot(t, ctx, "07-whatsapp")
	run(t, ctx, "show the QR code", chromedp.Click("#show-qr"), chromedp.WaitVisible("#qr"))
	src := get(t, ctx, "the QR image", chromedp.AttributeValue("#qr", "src")).Value
	get(t, ctx, "the QR image loaded", chromedp.Poll[bool](`document.getElementById("qr").complete && document.getElementById("qr").naturalWidth > 100`, chromedp.WithPollingTimeout(10*time.Second)))
	if !strings.HasSuffix(src, "n=1") {
		t.Fatalf("first QR image %q", src)
	}
	left1 := text(t, ctx, "#left")
	time.Sleep(2200 * time.Millisecond)
	if left2 := text(t, ctx, "#left"); left2 == left1 {
		t.Errorf("the time left does not count down: %s then %s", left1, left2)
	}
	shot(t, ctx, "08-qr")
	// WhatsApp rotates the code: the image changes in place.
	c := e.sim()
	c.Inject(&bridge.PairCode{QR: "2@rotated-code", Expires: time.Now().Add(20 * time.Second)})
	get(t, ctx, "the rotated QR", chromedp.Poll[bool](`document.getElementById("qr").src.endsWith("n=2") && document.getElementById("qr-n").textContent === "2"`, chromedp.WithPollingTimeout(15*time.Second)))
	if l, _ := strconv.Atoi(text(t, ctx, "#left")); l > 20 {
		t.Errorf("time left %d after the rotation, want at most 20", l)
	}
	shot(t, ctx, "09-qr-rotated")
	// The phone scans it.
	c.Inject(&bridge.PairResult{OK: true, ID: "491701234567@s.whatsapp.net", Name: "Alice"}, &bridge.Status{State: bridge.Connected})
	run(t, ctx, "done", chromedp.WaitVisible("#done"))
	if next := text(t, ctx, "#next"); !strings.Contains(next, "/help to owner.whatsapp@"+pt.Domain) {
		t.Errorf("next step: %q", next)
	}
	shot(t, ctx, "10-done")
	// Closed for good.
	deadline := time.Now().Add(10 * time.Second)
	for !e.gone() {
		if time.Now().After(deadline) {
			t.Fatal("the page still answers after setup is done")
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err := <-e.done; err != nil {
		t.Errorf("Serve: %v", err)
	}
	e.done <- nil
	if _, err := os.Stat(filepath.Join(e.dir, "setup-code")); !os.IsNotExist(err) {
		t.Errorf("the setup code is still there: %v", err)
	}
	cfg, _ := os.ReadFile(filepath.Join(e.dir, "config.toml"))
	if !strings.Contains(string(cfg), "jid = 'owner.whatsapp@"+pt.Domain+"'") {
		t.Errorf("config:\n%s", cfg)
	}
}

// phoneFirst says whether the phone-number way is above the QR code.
func phoneFirst(t *testing.T, ctx context.Context) bool {
	t.Helper()
	return eval[bool](t, ctx, `document.getElementById("way-phone").getBoundingClientRect().top < document.getElementById("way-qr").getBoundingClientRect().top`)
}

// TestWebPhone: on a phone-sized screen the page offers the phone number
// first, and the link code shows large.
func TestWebPhone(t *testing.T) {
	e := newEnv(t, pt.Options{})
	ctx := browser(t, 390, 844, true)
	run(t, ctx, "open the page", chromedp.Navigate(e.url), chromedp.WaitVisible("#code"))
	shot(t, ctx, "phone-01-code")
	e.enterCode(ctx)
	run(t, ctx, "the owner", chromedp.SendKeys("#owner-addr", "owner@"+pt.Domain),
		chromedp.Submit("#owner-addr"), chromedp.WaitVisible("#bot"))
	shot(t, ctx, "phone-02-bot")
	run(t, ctx, "an account of mine", chromedp.SendKeys("#bot-jid", "bot@"+pt.Domain),
		chromedp.SendKeys("#bot-password", pt.Password("bot")), chromedp.Submit("#bot-password"),
		chromedp.WaitVisible("#subscribe"))
	run(t, ctx, "skip", chromedp.Click(`#subscribe form:last-of-type button`), chromedp.WaitVisible("#whatsapp"))
	if !phoneFirst(t, ctx) {
		t.Fatal("a phone-sized screen shows the QR code first")
	}
	if eval[bool](t, ctx, `document.documentElement.scrollWidth > window.innerWidth`) {
		t.Errorf("the page is wider than the phone's screen")
	}
	shot(t, ctx, "phone-03-whatsapp")
	run(t, ctx, "a bad number", chromedp.SendKeys("#phone", "0170 1234567"), chromedp.Submit("#phone"),
		chromedp.WaitVisible("#problem"))
	if p := text(t, ctx, "#problem"); !strings.Contains(p, "country code") {
		t.Fatalf("bad number: %q", p)
	}
	run(t, ctx, "the number", chromedp.SetValue("#phone", "+49 170 1234567"), chromedp.Submit("#phone"),
		chromedp.WaitVisible("#code"))
	if code := text(t, ctx, "#code"); code != "SIMW-A123" {
		t.Fatalf("link code %q", code)
	}
	shot(t, ctx, "phone-04-link-code")
	// The code expires unused: the page says so and offers both ways again.
	e.sim().Inject(&bridge.PairResult{Err: "the link code was not entered in time"})
	run(t, ctx, "the expiry", chromedp.WaitVisible("#problem"), chromedp.WaitVisible("#get-code"))
	if p := text(t, ctx, "#problem"); !strings.Contains(p, "expired") {
		t.Fatalf("expiry: %q", p)
	}
	shot(t, ctx, "phone-05-expired")
}

// TestPasskeyNotFromThisPage: why the page does not take WhatsApp's
// passkey request. A browser makes a WebAuthn assertion only for the
// page's own domain (or a parent of it): asked for relying party
// whatsapp.com, Chromium refuses on this page at once.
func TestPasskeyNotFromThisPage(t *testing.T) {
	e := newEnv(t, pt.Options{})
	ctx := browser(t, 800, 600, false)
	run(t, ctx, "open the page", chromedp.Navigate(e.url), chromedp.WaitVisible("#code"))
	await := true
	name := get(t, ctx, "ask for a whatsapp.com assertion",
		chromedp.Evaluate[string](`navigator.credentials.get({publicKey: {challenge: new Uint8Array(32), rpId: "whatsapp.com", timeout: 5000}}).then(() => "granted", err => err.name)`,
			func(p *runtime.EvaluateParams) { p.AwaitPromise = &await }))
	if name != "SecurityError" {
		t.Fatalf("navigator.credentials.get for rpId whatsapp.com: %q, want SecurityError", name)
	}
}

// TestCodeLimitsAndCSRF: the code form and the answers, without a browser.
func TestCodeLimitsAndCSRF(t *testing.T) {
	e := newEnv(t, pt.Options{})
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func() string {
		resp, err := c.Get(e.url)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return string(b)
	}
	csrf := func(page string) string {
		i := strings.Index(page, `name="csrf" value="`)
		if i < 0 {
			t.Fatalf("no csrf token in %s", page)
		}
		rest := page[i+len(`name="csrf" value="`):]
		return rest[:strings.IndexByte(rest, '"')]
	}
	post := func(path string, v url.Values, hdr map[string]string) *http.Response {
		req, _ := http.NewRequest("POST", e.url+strings.TrimPrefix(path, "/"), strings.NewReader(v.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for k, val := range hdr {
			req.Header.Set(k, val)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	// An answer without a session goes nowhere; a code without the form's
	// token, or from another site, is refused.
	if r := post("/answer", url.Values{"action": {"owner"}, "owner": {"x@y.z"}}, nil); r.StatusCode != http.StatusSeeOther || e.flow.State().Owner != "" {
		t.Fatalf("answer without a session: %s", r.Status)
	}
	get()
	if r := post("/code", url.Values{"code": {testCode}}, nil); r.StatusCode != http.StatusForbidden {
		t.Fatalf("code without its token: %s", r.Status)
	}
	tok := csrf(get())
	if r := post("/code", url.Values{"code": {testCode}, "csrf": {tok}}, map[string]string{"Origin": "http://evil.example"}); r.StatusCode != http.StatusForbidden {
		t.Fatalf("code from another site: %s", r.Status)
	}
	// Five wrong codes are free; the sixth waits.
	for i := 0; i < 5; i++ {
		tok = csrf(get())
		if r := post("/code", url.Values{"code": {"WRONG-CODE"}, "csrf": {tok}}, nil); r.StatusCode != http.StatusForbidden {
			t.Fatalf("wrong code %d: %s", i+1, r.Status)
		}
	}
	tok = csrf(get())
	if r := post("/code", url.Values{"code": {testCode}, "csrf": {tok}}, nil); r.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("a code right after five wrong ones: %s, want 429", r.Status)
	}
	time.Sleep(2100 * time.Millisecond)
	tok = csrf(get())
	if r := post("/code", url.Values{"code": {strings.ToLower(testCode)}, "csrf": {tok}}, nil); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("the right code after the wait: %s", r.Status)
	}
	page := get()
	if !strings.Contains(page, `id="owner"`) {
		t.Fatalf("after the code: %s", page)
	}
	// Inside, an answer without the session's token is refused.
	if r := post("/answer", url.Values{"action": {"owner"}, "owner": {"owner@" + pt.Domain}}, nil); r.StatusCode != http.StatusForbidden {
		t.Fatalf("answer without its token: %s", r.Status)
	}
	if r := post("/answer", url.Values{"action": {"owner"}, "owner": {"owner@" + pt.Domain}, "csrf": {csrf(page)}}, nil); r.StatusCode != http.StatusSeeOther || e.flow.State().Step != "bot" {
		t.Fatalf("answer with its token: %s, step %s", r.Status, e.flow.State().Step)
	}
	// A page that knows nothing: the security headers.
	resp, _ := c.Get(e.url)
	resp.Body.Close()
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || resp.Header.Get("X-Frame-Options") != "DENY" {
		t.Errorf("headers %v", resp.Header)
	}
}

// TestWebCaptcha: ejabberd asks for a CAPTCHA; the page shows the
// picture; a wrong answer brings a new one, the right one the account.
func TestWebCaptcha(t *testing.T) {
	e := newEnv(t, pt.Options{Kind: pt.Ejabberd, Registration: pt.RegisterCaptcha, NoShaper: true})
	ctx := browser(t, 1000, 900, false)
	e.enterCode(ctx)
	run(t, ctx, "the owner", chromedp.SendKeys("#owner-addr", "owner@"+pt.Domain), chromedp.Submit("#owner-addr"), chromedp.WaitVisible("#bot"))
	run(t, ctx, "create", chromedp.SetValue("#bot-name", "capbot"), chromedp.Submit("#bot-name"), chromedp.WaitVisible("#captcha"))
	get(t, ctx, "the picture", chromedp.Poll[bool](`document.getElementById("captcha").complete && document.getElementById("captcha").naturalWidth > 50`, chromedp.WithPollingTimeout(10*time.Second)))
	shot(t, ctx, "captcha-01")
	first := get(t, ctx, "the picture", chromedp.AttributeValue("#captcha", "src")).Value
	run(t, ctx, "a wrong answer", chromedp.SendKeys("#f-ocr", "nope"), chromedp.Submit("#f-ocr"), chromedp.WaitVisible("#problem"))
	if p := text(t, ctx, "#problem"); !strings.Contains(p, "not right") {
		t.Fatalf("wrong answer: %q", p)
	}
	if src := get(t, ctx, "the new picture", chromedp.AttributeValue("#captcha", "src")).Value; src == first {
		t.Fatal("the same picture after a wrong answer")
	}
	shot(t, ctx, "captcha-02-wrong")
	answers := e.srv.CaptchaAnswers()
	run(t, ctx, "the right answer", chromedp.SetValue("#f-ocr", answers[len(answers)-1]), chromedp.Submit("#f-ocr"), chromedp.WaitVisible("#subscribe"))
	if s := e.flow.State(); s.Bot != "capbot@"+pt.Domain || !s.Created {
		t.Fatalf("after the CAPTCHA: %+v", s)
	}
}
