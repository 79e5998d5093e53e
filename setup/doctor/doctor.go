// Package doctor is `waxmpp doctor`: it checks everything that can go
// wrong with a waxmpp installation, in the order a person would look, and
// says for each what is wrong and what to do. The running bridge runs the
// same checks for /status (Checker).
//
// The checks, in order (a check that needs an earlier one's result is
// skipped when that one failed):
//
//	clock         the clock is plausible and synchronised: a Pi has no clock
//	              battery and boots in the past; TLS and WhatsApp fail until
//	              NTP answers (kernel's adjtimex, else systemd-timesyncd's
//	              /run/systemd/timesync/synchronized)
//	config        the config loads and validates; it and the password's file
//	              are not readable by other users
//	dns           the bot's server in DNS: SRV _xmpps-client / _xmpp-client
//	              records, else an address
//	tls           TCP reach and a TLS certificate valid for the domain (and
//	              not about to expire)
//	login         the bot's login, for real
//	subscription  the owner accepted the bot's subscription request
//	whatsapp      WhatsApp linked, and when the phone was last seen (WhatsApp
//	              unlinks companions after about 14 days without the phone)
//	state         the state file's structure (bbolt's check) and free disk
//	service       waxmpp.service under systemd: enabled, running, its last exit
//	ffmpeg        present (voice notes are converted) or not
//
// Statuses: ok, warning (works, but look at it), problem (something does
// not work) and skipped. `waxmpp doctor` exits 1 when there is a problem,
// 0 otherwise.
package doctor

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"waxmpp/bridge/config"
	"waxmpp/bridge/xmpp"
	"waxmpp/setup"
)

// Status is a finding's verdict.
type Status string

const (
	OK      Status = "ok"
	Warning Status = "warning"
	Problem Status = "problem"
	Skipped Status = "skipped"
)

// Finding is one check's result.
type Finding struct {
	Check   string `json:"check"`
	Status  Status `json:"status"`
	Message string `json:"message"`       // what is so, in plain words
	Fix     string `json:"fix,omitempty"` // what to do, when not ok
}

// Healthy says no finding is a problem.
func Healthy(fs []Finding) bool {
	for _, f := range fs {
		if f.Status == Problem {
			return false
		}
	}
	return true
}

// ClockState is what the clock check reads.
type ClockState struct {
	Now    time.Time
	Synced bool // the kernel (or timesyncd) says an NTP server set it
	Known  bool // Synced could be read at all
}

// StateInfo is what the state file says.
type StateInfo struct {
	Linked    string    // the WhatsApp account, "" when not linked
	PhoneSeen time.Time // zero when never recorded
	// Damaged says what bbolt's check found wrong, "" when the file is
	// intact; Unchecked says the check was not made (inside the bridge).
	Damaged   string
	Unchecked bool
}

// ReadState reads the state file at path. The default (ReadStateChild)
// reads it in a child process; cmd/waxmpp's also asks a running bridge for
// a snapshot first; inside the bridge it reads the open file.
type ReadState func(ctx context.Context, path string) (StateInfo, error)

// Options configure Run. Zero values are those of a real system.
type Options struct {
	ConfigPath string
	// Resolver: nil means net.DefaultResolver.
	Resolver interface {
		xmpp.Resolver
		LookupHost(ctx context.Context, host string) ([]string, error)
	}
	Clock     func() ClockState
	ReadState ReadState
	// Service is waxmpp.service; nil means systemd's.
	Service setup.Service
	// Enabled reports whether the service starts at boot; nil asks
	// systemctl.
	Enabled  func(ctx context.Context) (bool, error)
	LookPath func(string) (string, error)
	// Resource is the login's resource, so as not to replace the running
	// bridge's session ("waxmpp-doctor").
	Resource string
	Timeout  time.Duration // each network check; default 15 s
	// InService says the checks run inside the service (/status): the
	// service check reports on itself.
	InService bool
	// Connected, when set, replaces the login check with the running
	// bridge's own connection (a second login every few minutes would show
	// in the owner's app); the subscription is then left to waxmpp doctor.
	Connected func() bool
}

// Run runs every check.
func Run(ctx context.Context, o Options) []Finding {
	if o.Resolver == nil {
		o.Resolver = net.DefaultResolver
	}
	if o.Clock == nil {
		o.Clock = systemClock
	}
	if o.Service == nil {
		o.Service = setup.Systemd{Unit: "waxmpp.service"}
	}
	if o.Enabled == nil {
		o.Enabled = func(ctx context.Context) (bool, error) {
			out, err := exec.CommandContext(ctx, "systemctl", "is-enabled", "waxmpp.service").Output()
			s := strings.TrimSpace(string(out))
			if s == "" && err != nil {
				return false, err
			}
			return s == "enabled" || s == "static" || s == "alias", nil
		}
	}
	if o.LookPath == nil {
		o.LookPath = exec.LookPath
	}
	if o.Resource == "" {
		o.Resource = "waxmpp-doctor"
	}
	if o.Timeout == 0 {
		o.Timeout = 15 * time.Second
	}
	r := &runner{o: o}
	r.clock()
	cfg, ok := r.config()
	if ok {
		reached := r.dns(ctx, cfg)
		if reached {
			reached = r.tls(ctx, cfg)
		} else {
			r.add("tls", Skipped, "Not checked: the server is not in DNS.", "")
		}
		r.account(ctx, cfg, reached)
		r.state(ctx, cfg)
	} else {
		for _, c := range []string{"dns", "tls", "login", "subscription", "server", "whatsapp", "state"} {
			r.add(c, Skipped, "Not checked: the config could not be read.", "")
		}
	}
	r.service(ctx)
	r.ffmpeg()
	return r.out
}

type runner struct {
	o       Options
	out     []Finding
	clockOK bool
	roots   *x509.CertPool
}

func (r *runner) add(check string, s Status, msg, fix string) {
	r.out = append(r.out, Finding{Check: check, Status: s, Message: msg, Fix: fix})
}

// minTime is a time the clock is surely after: a clock before it is wrong
// whatever NTP says.
var minTime = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func systemClock() ClockState {
	cs := ClockState{Now: time.Now()}
	var tx unix.Timex // modes 0: read only
	if _, err := unix.Adjtimex(&tx); err == nil {
		cs.Known = true
		cs.Synced = tx.Status&unix.STA_UNSYNC == 0
		return cs
	}
	// The service's sandbox (ProtectClock) forbids adjtimex even to read;
	// systemd-timesyncd leaves this file once it synchronised.
	if _, err := os.Stat("/run/systemd/timesync/synchronized"); err == nil {
		cs.Known, cs.Synced = true, true
	}
	return cs
}

func (r *runner) clock() {
	cs := r.o.Clock()
	now := cs.Now.UTC()
	// A file written when the clock was right, later than "now", proves
	// the clock is behind.
	floor := minTime
	if fi, err := os.Stat(r.o.ConfigPath); err == nil && fi.ModTime().After(floor) {
		floor = fi.ModTime()
	}
	switch {
	case now.Before(floor.Add(-time.Hour)):
		r.add("clock", Problem, fmt.Sprintf("The clock says %s, which cannot be right (the config was written %s). TLS and WhatsApp fail until it is.", now.Format("2 Jan 2006 15:04 MST"), floor.Format("2 Jan 2006")),
			"This machine has no clock battery and sets its time from the network: check that it is online, and that systemd-timesyncd runs (timedatectl). It corrects itself once a time server answers.")
	case cs.Known && !cs.Synced:
		r.clockOK = true
		r.add("clock", Warning, "The clock is not synchronised with a time server (it says "+now.Format("2 Jan 2006 15:04 MST")+").",
			"Install or start an NTP client (systemd-timesyncd; timedatectl shows its state). A clock that drifts makes TLS and WhatsApp fail.")
	default:
		r.clockOK = true
		msg := "The clock is synchronised (" + now.Format("2 Jan 2006 15:04 MST") + ")."
		if !cs.Known {
			msg = "The clock looks right (" + now.Format("2 Jan 2006 15:04 MST") + "); whether NTP set it cannot be read here."
		}
		r.add("clock", OK, msg, "")
	}
}

func (r *runner) config() (config.Config, bool) {
	path := r.o.ConfigPath
	cfg, err := config.Load(path)
	if errors.Is(err, config.ErrNotConfigured) {
		detail := err.Error()
		if i := strings.Index(detail, config.ErrNotConfigured.Error()+": "); i >= 0 {
			detail = detail[i+len(config.ErrNotConfigured.Error())+2:]
		}
		r.add("config", Problem, "waxmpp is not set up yet ("+path+": "+detail+").", "Run sudo waxmpp setup.")
		return cfg, false
	}
	if err != nil {
		r.add("config", Problem, "The config is not valid: "+err.Error(), "Correct "+path+" (or run sudo waxmpp setup to write it again).")
		return cfg, false
	}
	var bad []string
	for _, p := range []string{path, cfg.XMPP.PasswordFile} {
		if p == "" {
			continue
		}
		if m := exposed(p, cfg.XMPP.Credential() && p == cfg.XMPP.PasswordFile); m != "" {
			bad = append(bad, m)
		}
	}
	roots, err := rootCAs(cfg.XMPP.CAFile)
	if err != nil {
		r.add("config", Problem, err.Error(), "Correct xmpp.ca_file in "+path+".")
		return cfg, false
	}
	r.roots = roots
	if len(bad) > 0 {
		r.add("config", Problem, "The config is valid, but "+strings.Join(bad, "; ")+".",
			"Keep the password readable by waxmpp only: chmod 640 "+path+" && chown root:waxmpp "+path+" (the credential: chmod 600, root's).")
		return cfg, true
	}
	where := "the systemd credential"
	if !cfg.XMPP.Credential() {
		where = "the config file"
		if cfg.XMPP.PasswordFile != "" {
			where = cfg.XMPP.PasswordFile
		}
	}
	r.add("config", OK, fmt.Sprintf("The config is valid: bot %s serving %s, the password in %s.", cfg.XMPP.JID, cfg.XMPP.Owner, where), "")
	return cfg, true
}

// exposed says what is wrong with a secret file's owner and mode, or "".
// credential: the systemd credential, which only root may read.
func exposed(path string, credential bool) string {
	fi, err := os.Stat(path)
	if err != nil {
		return ""
	}
	perm := fi.Mode().Perm()
	st, _ := fi.Sys().(*syscall.Stat_t)
	switch {
	case perm&0o004 != 0:
		return fmt.Sprintf("%s can be read by every user (mode %04o)", path, perm)
	case credential && perm&0o077 != 0:
		return fmt.Sprintf("%s can be read by its group (mode %04o); only root should", path, perm)
	case perm&0o040 != 0 && st != nil && !serviceGroup(st.Gid):
		return fmt.Sprintf("%s can be read by group %d, not waxmpp's (mode %04o)", path, st.Gid, perm)
	}
	return ""
}

func serviceGroup(gid uint32) bool {
	g, err := lookupGroup("waxmpp")
	return err == nil && g == gid || gid == 0
}

func (r *runner) domainOf(cfg config.Config) string {
	_, d, _ := strings.Cut(cfg.XMPP.JID, "@")
	return d
}

func (r *runner) dns(ctx context.Context, cfg config.Config) bool {
	ctx, cancel := context.WithTimeout(ctx, r.o.Timeout)
	defer cancel()
	domain := r.domainOf(cfg)
	if cfg.XMPP.Server != "" {
		host, _, err := net.SplitHostPort(strings.TrimPrefix(cfg.XMPP.Server, "tls://"))
		if err != nil {
			host = cfg.XMPP.Server
		}
		if net.ParseIP(host) != nil {
			r.add("dns", OK, "The config names the server's address ("+cfg.XMPP.Server+"): no DNS needed.", "")
			return true
		}
		if addrs, err := r.o.Resolver.LookupHost(ctx, host); err != nil || len(addrs) == 0 {
			r.add("dns", Problem, fmt.Sprintf("%s (xmpp.server in the config) is not in DNS: %v.", host, err), "Check xmpp.server in the config, or leave it out to use the domain's SRV records.")
			return false
		}
		r.add("dns", OK, fmt.Sprintf("%s (xmpp.server) is in DNS.", host), "")
		return true
	}
	var found []string
	for _, svc := range []string{"xmpps-client", "xmpp-client"} {
		_, srvs, err := r.o.Resolver.LookupSRV(ctx, svc, "tcp", domain)
		if err == nil {
			for _, s := range srvs {
				found = append(found, fmt.Sprintf("_%s → %s:%d", svc, strings.TrimSuffix(s.Target, "."), s.Port))
			}
		}
	}
	if len(found) > 0 {
		r.add("dns", OK, fmt.Sprintf("%s's XMPP server is in DNS: %s.", domain, strings.Join(found, ", ")), "")
		return true
	}
	addrs, err := r.o.Resolver.LookupHost(ctx, domain)
	if err == nil && len(addrs) > 0 {
		r.add("dns", OK, fmt.Sprintf("%s has no SRV records; its address %s is used, port 5222.", domain, addrs[0]), "")
		return true
	}
	var de *net.DNSError
	if errors.As(err, &de) && de.IsNotFound {
		r.add("dns", Problem, fmt.Sprintf("DNS does not know %s (the bot's server).", domain), "Check the bot's address in the config (xmpp.jid).")
	} else {
		r.add("dns", Problem, fmt.Sprintf("%s could not be looked up in DNS: %v.", domain, err), "Check that this machine is online and has a working DNS server (resolvectl status).")
	}
	return false
}

func (r *runner) tls(ctx context.Context, cfg config.Config) bool {
	domain := r.domainOf(cfg)
	reach, err := xmpp.Probe(ctx, domain, xmpp.RegisterConfig{Server: cfg.XMPP.Server, RootCAs: r.roots, Resolver: r.o.Resolver, Timeout: r.o.Timeout})
	if err != nil {
		bad, timeBad := xmpp.CertError(err)
		switch {
		case timeBad && !r.clockOK:
			r.add("tls", Problem, "The server's certificate is not valid at the time this machine's clock says.", "Correct the clock first (see clock).")
		case timeBad:
			r.add("tls", Problem, fmt.Sprintf("%s's certificate has expired: %v.", domain, err), "Tell the server's admin; until it is renewed the bot cannot log in.")
		case bad:
			r.add("tls", Problem, fmt.Sprintf("%s's certificate could not be verified: %v.", domain, err), "If the server uses its own CA, put its certificate in a file and name it as xmpp.ca_file in the config.")
		default:
			r.add("tls", Problem, fmt.Sprintf("%s's XMPP server could not be reached: %v.", domain, err), "Check that this machine is online and that no firewall blocks ports 5222/5223.")
		}
		return false
	}
	how := "STARTTLS"
	if reach.DirectTLS {
		how = "direct TLS"
	}
	left := time.Until(reach.NotAfter)
	msg := fmt.Sprintf("%s answers at %s (%s); its certificate is valid until %s.", domain, reach.Addr, how, reach.NotAfter.Format("2 Jan 2006"))
	if left < 14*24*time.Hour {
		r.add("tls", Warning, msg, "The certificate expires in less than two weeks: the server's admin should renew it.")
	} else {
		r.add("tls", OK, msg, "")
	}
	return true
}

func (r *runner) account(ctx context.Context, cfg config.Config, reached bool) {
	if !reached {
		r.add("login", Skipped, "Not checked: the server could not be reached.", "")
		r.add("subscription", Skipped, "Not checked: the server could not be reached.", "")
		r.add("server", Skipped, "Not checked: the server could not be reached.", "")
		return
	}
	if r.o.Connected != nil {
		if r.o.Connected() {
			r.add("login", OK, "The bridge is logged in as "+cfg.XMPP.JID+".", "")
		} else {
			r.add("login", Warning, "The bridge is not connected to XMPP right now; it keeps trying.", "If it lasts, run sudo waxmpp doctor on the machine; journalctl -u waxmpp says why.")
		}
		r.add("subscription", Skipped, "Not checked inside the bridge (waxmpp doctor checks it).", "")
		r.add("server", Skipped, "Not checked inside the bridge (/status says what the server cannot promise).", "")
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 2*r.o.Timeout)
	defer cancel()
	acct, err := xmpp.Login(ctx, xmpp.Config{JID: cfg.XMPP.JID, Password: cfg.XMPP.Password, Resource: r.o.Resource,
		Server: cfg.XMPP.Server, RootCAs: r.roots, Resolver: r.o.Resolver, DialTimeout: r.o.Timeout})
	if err != nil {
		if errors.Is(err, xmpp.ErrAuth) {
			r.add("login", Problem, "The server refused the bot's password ("+cfg.XMPP.JID+").", "Run sudo waxmpp setup and give the bot account's current password (or change it in the account first).")
		} else {
			r.add("login", Problem, "The bot could not log in: "+err.Error(), "See the message; run waxmpp doctor again when it is fixed.")
		}
		r.add("subscription", Skipped, "Not checked: the bot could not log in.", "")
		r.add("server", Skipped, "Not checked: the bot could not log in.", "")
		return
	}
	defer acct.Close()
	r.add("login", OK, "The bot logs in as "+acct.JID()+".", "")
	sub, err := acct.SubscriptionOf(ctx, cfg.XMPP.Owner)
	switch {
	case err != nil:
		r.add("subscription", Warning, "The bot's contact list could not be read: "+err.Error(), "")
	case sub.Sub == "both":
		r.add("subscription", OK, cfg.XMPP.Owner+" and the bot see each other's presence.", "")
	case sub.Accepted():
		r.add("subscription", OK, cfg.XMPP.Owner+" accepted the bot; the bot's presence is not shown to them yet.", "")
	default:
		r.add("subscription", Warning, cfg.XMPP.Owner+" has not accepted the bot's contact request.",
			"Accept the request from "+cfg.XMPP.JID+" in your XMPP app (the bot asks once; if you see no request, add "+cfg.XMPP.JID+" to your contacts); without it you do not see whether the bridge works.")
	}
	r.promises(ctx, acct)
}

// promises says what the bot's server can promise for the owner's
// messages (xmpp.Stats.Caveat): an archive, stream management, or neither.
func (r *runner) promises(ctx context.Context, acct *xmpp.Account) {
	st, err := acct.Promises(ctx)
	switch {
	case err != nil:
		r.add("server", Warning, "What the bot's server keeps could not be asked: "+err.Error(), "")
	case st.Caveat() != "":
		r.add("server", Warning, "The bot's server cannot promise everything: "+st.Caveat()+".",
			"Ask the server's admin to enable the message archive (XEP-0313: Prosody's mod_mam, ejabberd's mod_mam) or stream management (XEP-0198), or use a bot account on a server that has them.")
	case st.Archive && st.StreamManagement:
		r.add("server", OK, "The bot's server keeps a message archive and acknowledges what it delivers (stream management): nothing you send is lost while waxmpp restarts.", "")
	case st.Archive:
		r.add("server", OK, "The bot's server keeps a message archive: what you send while waxmpp restarts is fetched from it.", "")
	default:
		r.add("server", OK, "The bot's server acknowledges what it delivers (stream management): what waxmpp did not take in is stored for it while it restarts (as long as the server's offline storage has room).", "")
	}
}

func (r *runner) state(ctx context.Context, cfg config.Config) {
	path := cfg.Store.Path
	free, ferr := freeBytes(filepath.Dir(path))
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		r.add("whatsapp", Problem, "WhatsApp is not linked: there is no state file yet ("+path+").", "Send /pair to the bot in your XMPP app (or run sudo waxmpp setup).")
		r.addDisk(path, free, ferr, nil, true)
		return
	}
	read := r.o.ReadState
	if read == nil {
		read = ReadStateChild
	}
	info, err := read(ctx, path)
	if err != nil {
		r.add("whatsapp", Skipped, "Not checked: the state file could not be read.", "")
		r.addDisk(path, free, ferr, err, false)
		return
	}
	if info.Damaged != "" {
		r.add("whatsapp", Skipped, "Not checked: the state file is damaged (see state).", "")
		r.addDisk(path, free, ferr, errors.New(info.Damaged), false)
		return
	}
	linked, seen := info.Linked, info.PhoneSeen
	if linked == "" {
		r.add("whatsapp", Problem, "WhatsApp is not linked.", "Send /pair to the bot in your XMPP app (or run sudo waxmpp setup), and scan the QR code with the phone.")
	} else {
		switch {
		case seen.IsZero():
			r.add("whatsapp", OK, "WhatsApp is linked to "+linked+".", "")
		case time.Since(seen) > 14*24*time.Hour:
			r.add("whatsapp", Problem, fmt.Sprintf("WhatsApp is linked to %s, but the phone was last seen %s: WhatsApp unlinks companions after about 14 days.", linked, seen.Local().Format("2 Jan 2006")), "Open WhatsApp on the phone, with a network; if waxmpp was unlinked, send /pair to the bot.")
		case time.Since(seen) > 10*24*time.Hour:
			r.add("whatsapp", Warning, fmt.Sprintf("WhatsApp is linked to %s; the phone was last seen %s.", linked, seen.Local().Format("2 Jan 2006")), "Open WhatsApp on the phone soon: WhatsApp unlinks companions after about 14 days without it.")
		default:
			r.add("whatsapp", OK, fmt.Sprintf("WhatsApp is linked to %s; the phone was last seen %s.", linked, seen.Local().Format("2 Jan 2006 15:04")), "")
		}
	}
	r.addDisk(path, free, ferr, nil, info.Unchecked)
}

func (r *runner) addDisk(path string, free uint64, ferr, checkErr error, unchecked bool) {
	var parts []string
	st := OK
	fix := ""
	if checkErr != nil {
		st = Problem
		parts = append(parts, "the state file is damaged: "+checkErr.Error())
		fix = "Stop waxmpp (systemctl stop waxmpp), put a backup in its place (waxmpp backup makes them) or move it away and link again with /pair."
	} else if unchecked {
		parts = append(parts, "the state file was not checked")
	} else {
		parts = append(parts, "the state file is intact")
	}
	switch {
	case ferr != nil:
		parts = append(parts, "free space unknown ("+ferr.Error()+")")
	case free < 50<<20:
		st = Problem
		parts = append(parts, fmt.Sprintf("only %d MB free on its disk", free>>20))
		fix = strings.TrimSpace(fix + " Free space on the disk (apt clean, old logs): waxmpp stops writing when it is full.")
	case free < 200<<20:
		if st == OK {
			st = Warning
		}
		parts = append(parts, fmt.Sprintf("%d MB free on its disk", free>>20))
		fix = strings.TrimSpace(fix + " Free some space on the disk soon.")
	default:
		parts = append(parts, fmt.Sprintf("%d MB free", free>>20))
	}
	msg := strings.ToUpper(parts[0][:1]) + parts[0][1:] + " (" + path + "); " + strings.Join(parts[1:], "; ") + "."
	r.add("state", st, msg, fix)
}

func freeBytes(dir string) (uint64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return st.Bavail * uint64(st.Bsize), nil
}

func (r *runner) service(ctx context.Context) {
	svc := r.o.Service
	if r.o.InService {
		r.add("service", OK, "The bridge runs (this answer comes from it).", "")
		return
	}
	if !svc.Present() {
		r.add("service", Skipped, "This system does not run systemd: nothing to check.", "")
		return
	}
	state, err := svc.State(ctx)
	if err != nil {
		r.add("service", Problem, "systemd's view of waxmpp.service could not be read: "+err.Error(), "")
		return
	}
	enabled, _ := r.o.Enabled(ctx)
	switch {
	case state == "active" && enabled:
		r.add("service", OK, "waxmpp.service runs, and starts at boot.", "")
	case state == "active":
		r.add("service", Warning, "waxmpp.service runs, but does not start at boot.", "systemctl enable waxmpp")
	case state == "failed":
		r.add("service", Problem, "waxmpp.service failed:\n"+svc.Status(ctx), "Correct what it says (journalctl -u waxmpp shows more), then systemctl restart waxmpp.")
	default:
		r.add("service", Problem, "waxmpp.service is "+state+".", "systemctl enable --now waxmpp")
	}
}

func (r *runner) ffmpeg() {
	if p, err := r.o.LookPath("ffmpeg"); err == nil {
		r.add("ffmpeg", OK, "ffmpeg is installed ("+p+"): voice messages are converted for the other side.", "")
		return
	}
	r.add("ffmpeg", Warning, "ffmpeg is not installed: voice messages from your XMPP app reach WhatsApp as audio files, not voice notes.", "sudo apt install ffmpeg")
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
		return nil, fmt.Errorf("the CA file %s cannot be read: %v", file, err)
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificate", file)
	}
	return pool, nil
}

func lookupGroup(name string) (uint32, error) {
	g, err := user.LookupGroup(name)
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseUint(g.Gid, 10, 32)
	return uint32(n), err
}
