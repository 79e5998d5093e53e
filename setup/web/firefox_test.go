package web

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"waxmpp/bridge"
	pt "waxmpp/bridge/prosodytest"
)

// Firefox is driven through Marionette, its own remote protocol (Firefox
// no longer speaks the DevTools protocol chromedp needs): messages are
// "length:json", a command [0, id, name, params], an answer
// [1, id, error, result]. A small client is enough for filling forms and
// reading the page.

type marionette struct {
	t  *testing.T
	c  net.Conn
	r  *bufio.Reader
	id int
}

// firefox starts headless Firefox ESR (Debian's firefox-esr) with a
// profile of its own that reaches nothing but loopback: every other
// address goes to a proxy that does not exist, and its own background
// traffic (updates, telemetry, safe browsing, captive portal checks) is
// off.
func firefox(t *testing.T, width, height int) *marionette {
	t.Helper()
	bin := "/usr/bin/firefox-esr"
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("Debian's firefox-esr is not installed (apt-get install firefox-esr): the setup page's tests need it and are never skipped")
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	prof := t.TempDir()
	prefs := map[string]any{
		"marionette.port":                                port,
		"network.proxy.type":                             1,
		"network.proxy.http":                             "127.0.0.1",
		"network.proxy.http_port":                        9,
		"network.proxy.ssl":                              "127.0.0.1",
		"network.proxy.ssl_port":                         9,
		"network.proxy.no_proxies_on":                    "127.0.0.1",
		"network.proxy.allow_hijacking_localhost":        false,
		"network.dns.disablePrefetch":                    true,
		"network.prefetch-next":                          false,
		"network.captive-portal-service.enabled":         false,
		"network.connectivity-service.enabled":           false,
		"app.update.disabledForTesting":                  true,
		"app.normandy.enabled":                           false,
		"browser.safebrowsing.malware.enabled":           false,
		"browser.safebrowsing.phishing.enabled":          false,
		"browser.safebrowsing.downloads.enabled":         false,
		"browser.shell.checkDefaultBrowser":              false,
		"browser.startup.homepage_override.mstone":       "ignore",
		"browser.newtabpage.enabled":                     false,
		"browser.startup.page":                           0,
		"datareporting.policy.dataSubmissionEnabled":     false,
		"datareporting.healthreport.uploadEnabled":       false,
		"toolkit.telemetry.enabled":                      false,
		"toolkit.telemetry.unified":                      false,
		"extensions.update.enabled":                      false,
		"extensions.getAddons.cache.enabled":             false,
		"services.settings.server":                       "http://127.0.0.1:9/",
		"browser.region.network.url":                     "",
		"geo.provider.network.url":                       "",
		"identity.fxaccounts.enabled":                    false,
		"remote.prefs.recommended":                       true,
		"browser.aboutwelcome.enabled":                   false,
		"trailhead.firstrun.didSeeAboutWelcome":          true,
		"browser.contentblocking.report.monitor.enabled": false,
	}
	var b strings.Builder
	for k, v := range prefs {
		js, _ := json.Marshal(v)
		fmt.Fprintf(&b, "user_pref(%q, %s);\n", k, js)
	}
	if err := os.WriteFile(filepath.Join(prof, "user.js"), []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--headless", "--marionette", "--no-remote", "--profile", prof,
		"--width", strconv.Itoa(width), "--height", strconv.Itoa(height))
	cmd.Env = append(os.Environ(), "MOZ_HEADLESS=1", "HOME="+prof)
	logf, _ := os.Create(filepath.Join(prof, "firefox.log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			out, _ := os.ReadFile(logf.Name())
			t.Logf("firefox's output:\n%s", out)
		}
	})
	var c net.Conn
	deadline := time.Now().Add(60 * time.Second)
	for {
		var err error
		c, err = net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Firefox's Marionette did not answer: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Cleanup(func() { c.Close() })
	m := &marionette{t: t, c: c, r: bufio.NewReader(c)}
	m.read() // the greeting
	m.do("WebDriver:NewSession", map[string]any{"capabilities": map[string]any{"alwaysMatch": map[string]any{"acceptInsecureCerts": false}}})
	return m
}

func (m *marionette) read() json.RawMessage {
	m.t.Helper()
	m.c.SetReadDeadline(time.Now().Add(60 * time.Second))
	n, err := m.r.ReadString(':')
	if err != nil {
		m.t.Fatalf("marionette: %v", err)
	}
	size, err := strconv.Atoi(strings.TrimSuffix(n, ":"))
	if err != nil {
		m.t.Fatalf("marionette: length %q", n)
	}
	buf := make([]byte, size)
	if _, err := io.ReadFull(m.r, buf); err != nil {
		m.t.Fatalf("marionette: %v", err)
	}
	return buf
}

// do sends a command and returns its result; an error fails the test.
func (m *marionette) do(name string, params any) json.RawMessage {
	m.t.Helper()
	res, err := m.try(name, params)
	if err != nil {
		m.t.Fatalf("%s: %v", name, err)
	}
	return res
}

func (m *marionette) try(name string, params any) (json.RawMessage, error) {
	m.t.Helper()
	m.id++
	b, _ := json.Marshal([]any{0, m.id, name, params})
	fmt.Fprintf(m.c, "%d:%s", len(b), b)
	for {
		var msg []json.RawMessage
		if err := json.Unmarshal(m.read(), &msg); err != nil || len(msg) != 4 {
			return nil, fmt.Errorf("bad answer %v", err)
		}
		var id int
		json.Unmarshal(msg[1], &id)
		if id != m.id {
			continue
		}
		if string(msg[2]) != "null" {
			return nil, fmt.Errorf("%s", msg[2])
		}
		return msg[3], nil
	}
}

func (m *marionette) navigate(url string) {
	m.t.Helper()
	m.do("WebDriver:Navigate", map[string]any{"url": url})
}

// js runs a script (its body returns a value) and decodes the value.
func (m *marionette) js(script string, v any) {
	m.t.Helper()
	res := m.do("WebDriver:ExecuteScript", map[string]any{"script": script, "args": []any{}})
	var out struct {
		Value json.RawMessage `json:"value"`
	}
	json.Unmarshal(res, &out)
	if v != nil {
		if err := json.Unmarshal(out.Value, v); err != nil {
			m.t.Fatalf("script result %s: %v", out.Value, err)
		}
	}
}

// element finds the element sel (a CSS selector), waiting for it.
func (m *marionette) element(sel string) string {
	m.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := m.try("WebDriver:FindElement", map[string]any{"using": "css selector", "value": sel})
		if err == nil {
			var v struct {
				Value map[string]string `json:"value"`
			}
			json.Unmarshal(res, &v)
			for _, id := range v.Value {
				var visible bool
				r, err := m.try("WebDriver:IsElementDisplayed", map[string]any{"id": id})
				if err == nil {
					var d struct {
						Value bool `json:"value"`
					}
					json.Unmarshal(r, &d)
					visible = d.Value
				}
				if visible {
					return id
				}
			}
		}
		if time.Now().After(deadline) {
			var body string
			m.js(`return document.body ? document.body.innerText : ""`, &body)
			m.t.Fatalf("no visible %s; the page says:\n%s", sel, body)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (m *marionette) typeInto(sel, text string) {
	m.t.Helper()
	id := m.element(sel)
	m.do("WebDriver:ElementClear", map[string]any{"id": id})
	m.do("WebDriver:ElementSendKeys", map[string]any{"id": id, "text": text})
}

func (m *marionette) click(sel string) {
	m.t.Helper()
	m.do("WebDriver:ElementClick", map[string]any{"id": m.element(sel)})
}

func (m *marionette) text(sel string) string {
	m.t.Helper()
	res := m.do("WebDriver:GetElementText", map[string]any{"id": m.element(sel)})
	var v struct {
		Value string `json:"value"`
	}
	json.Unmarshal(res, &v)
	return v.Value
}

func (m *marionette) shot(name string) {
	m.t.Helper()
	res := m.do("WebDriver:TakeScreenshot", map[string]any{"full": true})
	var v struct {
		Value string `json:"value"`
	}
	json.Unmarshal(res, &v)
	b, err := base64.StdEncoding.DecodeString(v.Value)
	if err != nil {
		m.t.Fatal(err)
	}
	os.MkdirAll("testdata/screenshots", 0o755)
	os.WriteFile(filepath.Join("testdata/screenshots", name+".png"), b, 0o644)
}

// TestWebFirefox: the same page works in Firefox: the code, the owner, a
// bot account of the owner's, the QR code rotating in place, the link.
func TestWebFirefox(t *testing.T) {
	e := newEnv(t, pt.Options{})
	ff := firefox(t, 1000, 900)
	ff.navigate(e.url)
	ff.typeInto("#code", "k7wq 3mxp 9trd")
	ff.click(`form.card button`)
	ff.typeInto("#owner-addr", "owner@"+pt.Domain)
	ff.click("#owner button")
	ff.typeInto("#bot-jid", "bot@"+pt.Domain)
	ff.typeInto("#bot-password", pt.Password("bot"))
	ff.click("#use button")
	ff.element("#subscribe")
	ff.shot("firefox-01-subscribe")
	ff.click(`#subscribe form:last-of-type button`)
	ff.click("#show-qr")
	ff.element("#qr")
	var loaded bool
	for end := time.Now().Add(10 * time.Second); !loaded && time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		ff.js(`var q = document.getElementById("qr"); return !!q && q.complete && q.naturalWidth > 100`, &loaded)
	}
	if !loaded {
		t.Fatal("the QR image did not load in Firefox")
	}
	e.sim().Inject(&bridge.PairCode{QR: "2@rotated-code", Expires: time.Now().Add(20 * time.Second)})
	var rotated bool
	for end := time.Now().Add(15 * time.Second); !rotated && time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		ff.js(`var q = document.getElementById("qr"); return !!q && q.src.endsWith("n=2") && document.getElementById("qr-n").textContent === "2"`, &rotated)
	}
	if !rotated {
		t.Fatal("the QR code did not rotate in place in Firefox")
	}
	ff.shot("firefox-02-qr")
	e.sim().Inject(&bridge.PairResult{OK: true, ID: "491701234567@s.whatsapp.net", Name: "Alice"}, &bridge.Status{State: bridge.Connected})
	if next := ff.text("#next"); !strings.Contains(next, "/help to bot@"+pt.Domain) {
		t.Errorf("Firefox shows %q at the end", next)
	}
	ff.shot("firefox-03-done")
}
