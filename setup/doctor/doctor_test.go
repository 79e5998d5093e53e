package doctor

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	waAdv "go.mau.fi/whatsmeow/proto/waAdv"
	"go.mau.fi/whatsmeow/types"

	pt "waxmpp/bridge/prosodytest"
	"waxmpp/bridge/store"
)

type dns struct{ port int }

// dns answers for the test domain; port 0 knows no name at all.
func (d dns) LookupSRV(ctx context.Context, service, proto, name string) (string, []*net.SRV, error) {
	if d.port != 0 && name == pt.Domain && service == "xmpp-client" {
		return "", []*net.SRV{{Target: "127.0.0.1.", Port: uint16(d.port)}}, nil
	}
	return "", nil, &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
}

func (d dns) LookupHost(ctx context.Context, host string) ([]string, error) {
	if d.port != 0 && host == pt.Domain {
		return []string{"127.0.0.1"}, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

type service struct{ state string }

func (s service) Present() bool                         { return true }
func (s service) Enable(context.Context) error          { return nil }
func (s service) Restart(context.Context) error         { return nil }
func (s service) Stop(context.Context) error            { return nil }
func (s service) State(context.Context) (string, error) { return s.state, nil }
func (s service) Status(context.Context) string         { return "waxmpp.service - " + s.state }

// machine is a set-up waxmpp: config, password file, a linked state file.
type machine struct {
	t    *testing.T
	srv  *pt.Server
	dir  string
	cfg  string
	db   string
	opts Options
}

func newMachine(t *testing.T, o ...pt.Options) *machine {
	srv := pt.Start(t, append(o, pt.Options{})[0])
	dir := t.TempDir()
	m := &machine{t: t, srv: srv, dir: dir, cfg: filepath.Join(dir, "config.toml"), db: filepath.Join(dir, "waxmpp.db")}
	m.writeConfig("")
	os.WriteFile(filepath.Join(dir, "password"), []byte(pt.Password("bot")+"\n"), 0o600)
	m.link(time.Now().Add(-time.Hour))
	m.opts = Options{
		ConfigPath: m.cfg,
		Resolver:   dns{srv.C2SPort},
		Clock:      func() ClockState { return ClockState{Now: time.Now(), Synced: true, Known: true} },
		Service:    service{"active"},
		Enabled:    func(context.Context) (bool, error) { return true, nil },
		LookPath:   func(string) (string, error) { return "/usr/bin/ffmpeg", nil },
		Timeout:    5 * time.Second,
	}
	return m
}

func (m *machine) writeConfig(extra string) {
	m.t.Helper()
	body := fmt.Sprintf("[xmpp]\njid = %q\nowner = %q\npassword_file = \"password\"\nca_file = %q\n%s[store]\npath = %q\n",
		m.srv.JID("bot"), m.srv.JID("owner"), m.srv.CAFile, extra, m.db)
	if err := os.WriteFile(m.cfg, []byte(body), 0o640); err != nil {
		m.t.Fatal(err)
	}
	// Written "before" every clock the tests use.
	old := time.Now().Add(-48 * time.Hour)
	os.Chtimes(m.cfg, old, old)
}

// link makes the state file a linked device whose phone was seen at seen.
func (m *machine) link(seen time.Time) {
	m.t.Helper()
	db, err := store.Open(m.db, store.Options{})
	if err != nil {
		m.t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	dev, _ := db.Devices(nil).GetFirstDevice(ctx)
	if dev == nil || dev.ID == nil {
		dev = db.Devices(nil).NewDevice()
		jid := types.NewADJID("491701234567", 0, 7)
		dev.ID = &jid
		dev.PushName = "Alice"
		dev.Account = &waAdv.ADVSignedDeviceIdentity{Details: []byte("d"), AccountSignature: make([]byte, 64), AccountSignatureKey: make([]byte, 32), DeviceSignature: make([]byte, 64)}
		if err := dev.Save(ctx); err != nil {
			m.t.Fatal(err)
		}
	}
	b, _ := seen.UTC().MarshalText()
	if err := db.PutBlob("whatsapp.phone_last_seen", b); err != nil {
		m.t.Fatal(err)
	}
}

func (m *machine) run() map[string]Finding {
	m.t.Helper()
	out := map[string]Finding{}
	var order []string
	for _, f := range Run(context.Background(), m.opts) {
		out[f.Check] = f
		order = append(order, f.Check)
	}
	if got := strings.Join(order, ","); got != "clock,config,dns,tls,login,subscription,server,whatsapp,state,service,ffmpeg" {
		m.t.Errorf("checks %s", got)
	}
	return out
}

func want(t *testing.T, fs map[string]Finding, check string, st Status, words string) {
	t.Helper()
	f := fs[check]
	if f.Status != st || !strings.Contains(f.Message+" "+f.Fix, words) {
		t.Errorf("%s: %s %q (fix %q); want %s with %q", check, f.Status, f.Message, f.Fix, st, words)
	}
	if st == Problem && f.Fix == "" && check != "service" {
		t.Errorf("%s: a problem without what to do", check)
	}
}

// TestHealthy: a set-up machine whose owner accepted the bot.
func TestHealthy(t *testing.T) {
	m := newMachine(t)
	owner := m.srv.Dial(t, "owner")
	owner.Send("<presence to='" + m.srv.JID("bot") + "' type='subscribe'/>")
	bot := m.srv.Dial(t, "bot")
	bot.Send("<presence to='" + m.srv.JID("owner") + "' type='subscribed'/><presence to='" + m.srv.JID("owner") + "' type='subscribe'/>")
	owner.Next(t, 10*time.Second, func(e *pt.Elem) bool { return e.Attr("type") == "subscribe" })
	owner.Send("<presence to='" + m.srv.JID("bot") + "' type='subscribed'/>")
	time.Sleep(300 * time.Millisecond)
	fs := m.run()
	for _, f := range fs {
		// The test CA's certificates live a day: the expiry warning.
		if f.Check == "tls" && f.Status == Warning && strings.Contains(f.Fix, "expires") {
			continue
		}
		if f.Status != OK {
			t.Errorf("%s: %s %q", f.Check, f.Status, f.Message)
		}
	}
	want(t, fs, "whatsapp", OK, "+491701234567 (Alice)")
	want(t, fs, "subscription", OK, "see each other's presence")
	if !strings.Contains(fs["tls"].Message, "STARTTLS") {
		t.Errorf("tls: %q", fs["tls"].Message)
	}
	if !Healthy(Run(context.Background(), m.opts)) {
		t.Error("not healthy")
	}
}

// TestServerPromises: doctor says what the bot's server can promise: on a
// server with an archive that nothing is lost; on one with neither an
// archive nor stream management (Prosody before 0.12 as shipped, or an
// admin's choice), that a message can be lost, and what would help.
func TestServerPromises(t *testing.T) {
	for _, c := range []struct {
		name  string
		opts  pt.Options
		st    Status
		words string
	}{
		{"archive and stream management", pt.Options{}, OK, "nothing you send is lost"},
		{"stream management only (as shipped)", pt.Options{NoArchive: true}, OK, "stored for it"},
		{"neither", pt.Options{NoArchive: true, NoStreamManagement: true}, Warning, "can be lost"},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := newMachine(t, c.opts)
			want(t, m.run(), "server", c.st, c.words)
		})
	}
}

// TestBroken: each thing that can go wrong, one at a time, says so.
func TestBroken(t *testing.T) {
	m := newMachine(t)
	base := m.opts
	cases := []struct {
		name  string
		setup func()
		undo  func()
		check string
		st    Status
		words string
	}{
		{"clock in 1970", func() {
			m.opts.Clock = func() ClockState { return ClockState{Now: time.Unix(0, 0), Known: true} }
		}, nil, "clock", Problem, "cannot be right"},
		{"clock not synchronised", func() {
			m.opts.Clock = func() ClockState { return ClockState{Now: time.Now(), Known: true} }
		}, nil, "clock", Warning, "not synchronised"},
		{"config world-readable", func() { os.Chmod(filepath.Join(m.dir, "password"), 0o644) },
			func() { os.Chmod(filepath.Join(m.dir, "password"), 0o600) }, "config", Problem, "every user"},
		{"config typo", func() { m.writeConfig("pasword = \"x\"\n") }, func() { m.writeConfig("") }, "config", Problem, "pasword"},
		{"not set up", func() { os.Rename(m.cfg, m.cfg+".away") }, func() { os.Rename(m.cfg+".away", m.cfg) }, "config", Problem, "sudo waxmpp setup"},
		{"unknown server", func() { m.opts.Resolver = dns{} }, nil, "dns", Problem, "does not know waxmpp.test"},
		{"server unreachable", func() { m.opts.Resolver = dns{port: 1} }, nil, "tls", Problem, "could not be reached"},
		{"certificate not trusted", func() {
			other := filepath.Join(m.dir, "other-ca.pem")
			os.WriteFile(other, otherCA(t), 0o644)
			body, _ := os.ReadFile(m.cfg)
			os.WriteFile(m.cfg, []byte(strings.Replace(string(body), m.srv.CAFile, other, 1)), 0o640)
		}, func() { m.writeConfig("") }, "tls", Problem, "could not be verified"},
		{"wrong password", func() { os.WriteFile(filepath.Join(m.dir, "password"), []byte("wrong\n"), 0o600) },
			func() { os.WriteFile(filepath.Join(m.dir, "password"), []byte(pt.Password("bot")+"\n"), 0o600) }, "login", Problem, "refused the bot's password"},
		{"owner never accepted", nil, nil, "subscription", Warning, "has not accepted"},
		{"phone offline 12 days", func() { m.link(time.Now().Add(-12 * 24 * time.Hour)) }, func() { m.link(time.Now()) }, "whatsapp", Warning, "last seen"},
		{"phone offline 20 days", func() { m.link(time.Now().Add(-20 * 24 * time.Hour)) }, func() { m.link(time.Now()) }, "whatsapp", Problem, "14 days"},
		{"not linked", func() { os.Rename(m.db, m.db+".away") }, func() { os.Rename(m.db+".away", m.db) }, "whatsapp", Problem, "/pair"},
		{"state damaged", func() {
			b, _ := os.ReadFile(m.db)
			os.WriteFile(m.db+".good", b, 0o600)
			// Every page after the two meta pages gets a header no page
			// has (bbolt's page flags at offset 8).
			for i := 2 * 4096; i+16 < len(b); i += 4096 {
				b[i+8], b[i+9] = 0xff, 0xff
			}
			os.WriteFile(m.db, b, 0o600)
		}, func() { os.Rename(m.db+".good", m.db) }, "state", Problem, "damaged"},
		{"service failed", func() { m.opts.Service = service{"failed"} }, nil, "service", Problem, "failed"},
		{"service stopped", func() { m.opts.Service = service{"inactive"} }, nil, "service", Problem, "systemctl enable --now waxmpp"},
		{"no ffmpeg", func() { m.opts.LookPath = func(string) (string, error) { return "", os.ErrNotExist } }, nil, "ffmpeg", Warning, "apt install ffmpeg"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m.t = t
			m.opts = base
			if tc.setup != nil {
				tc.setup()
			}
			if tc.undo != nil {
				defer tc.undo()
			}
			fs := m.run()
			want(t, fs, tc.check, tc.st, tc.words)
			if tc.st == Problem && Healthy(Run(context.Background(), m.opts)) {
				t.Errorf("healthy with %s", tc.name)
			}
		})
	}
}

// otherCA is a CA certificate that signed nothing of the test server's.
func otherCA(t *testing.T) []byte {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "other CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func TestMain(m *testing.M) {
	RunChild()
	os.Exit(m.Run())
}
