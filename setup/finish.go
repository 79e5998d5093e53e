package setup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"waxmpp/bridge/config"
)

// Finish writes what the flow gathered and starts the service (see the
// package documentation). On a re-run (StepMenu) it writes only when
// something changed. It ends at StepDone.
func (f *Flow) Finish(ctx context.Context) error {
	if err := f.begin("Writing the configuration and starting waxmpp …", StepMenu); err != nil {
		return err
	}
	done, err := f.write(ctx)
	return f.finish(err, func() { f.st.Step, f.st.Done = StepDone, done })
}

// startFinish runs Finish on a goroutine the flow owns: the end of a first
// run, right after the WhatsApp step; f.mu is held.
func (f *Flow) startFinish() {
	f.st.Busy = "Writing the configuration and starting waxmpp …"
	f.st.Problem = ""
	f.wg.Go(func() {
		done, err := f.write(f.ctx)
		f.mu.Lock()
		defer f.mu.Unlock()
		f.st.Busy = ""
		if err != nil {
			f.st.Problem = problemText(err)
			f.log.Warn("setup could not finish", "err", err)
			f.st.Step = StepWhatsApp
			f.linked = f.st.Linked != ""
			f.touch()
			return
		}
		f.st.Step, f.st.Done = StepDone, done
		f.touch()
	})
}

// Retry runs Finish again after it failed (StepWhatsApp with a problem).
func (f *Flow) Retry() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.st.Step != StepWhatsApp || f.menu || f.st.Busy != "" || f.stopPair != nil {
		return ErrWrongStep
	}
	f.startFinish()
	f.touch()
	return nil
}

// write is Finish's work.
func (f *Flow) write(ctx context.Context) (*Done, error) {
	f.mu.Lock()
	owner, bot, password, linked := f.st.Owner, f.st.Bot, f.password, f.st.Linked
	changed := !f.menu || len(f.changes) > 0
	botChanged := !f.menu || f.changes["bot"]
	old := f.old
	f.mu.Unlock()
	done := &Done{Owner: owner, Bot: bot, Linked: linked, Changed: changed}
	if !changed {
		if f.opts.Service.Present() {
			done.Service, _ = f.opts.Service.State(ctx)
		}
		done.Next = "Nothing was changed."
		return done, nil
	}

	uid, gid, err := lookupUser(f.opts.ServiceUser)
	if err != nil {
		return nil, problem(err, "The system user %s does not exist (is the waxmpp package installed?): %v", f.opts.ServiceUser, err)
	}
	cfg := config.Default()
	if old != nil {
		cfg = *old
	}
	cfg.XMPP.JID, cfg.XMPP.Owner = bot, owner
	if f.opts.Server != "" {
		cfg.XMPP.Server = f.opts.Server
	}
	if f.opts.CAFile != "" {
		cfg.XMPP.CAFile = f.opts.CAFile
	}
	// The password: into the credential, unless the old config keeps it
	// in a file of its own (then into that file) or inline (then the
	// credential, and the inline copy goes).
	var secretPath string
	var secretUID int
	switch {
	case old != nil && old.XMPP.PasswordFile != "" && !old.XMPP.Credential():
		secretPath, secretUID = old.XMPP.PasswordFile, uid
		cfg.XMPP.Password = password
	case f.opts.Paths.Credential == "":
		// No credential store (a config outside /etc/waxmpp): a password
		// file beside the config, the service user's own.
		secretPath, secretUID = filepath.Join(filepath.Dir(f.opts.Paths.Config), "password"), uid
		cfg.XMPP.Password, cfg.XMPP.PasswordFile = password, secretPath
	default:
		secretPath, secretUID = f.opts.Paths.Credential, 0
		cfg.XMPP.UseCredential(password, f.opts.Paths.Credential)
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("setup: the new config does not validate: %w", err)
	}
	var body bytes.Buffer
	if err := config.Write(&body, cfg); err != nil {
		return nil, err
	}

	// The state directory: linking as root made files there.
	if dir := filepath.Dir(cfg.Store.Path); dirExists(dir) {
		if err := chownTree(dir, uid, gid); err != nil {
			return nil, fmt.Errorf("setup: give %s to %s: %w", dir, f.opts.ServiceUser, err)
		}
	}
	if botChanged || !fileExists(secretPath) {
		if err := os.MkdirAll(filepath.Dir(secretPath), 0o700); err != nil {
			return nil, fmt.Errorf("setup: %w", err)
		}
		if err := writeAtomic(secretPath, []byte(password+"\n"), 0o600, secretUID, -1); err != nil {
			return nil, fmt.Errorf("setup: write the password: %w", err)
		}
	}
	if err := os.MkdirAll(filepath.Dir(f.opts.Paths.Config), 0o750); err != nil {
		return nil, fmt.Errorf("setup: %w", err)
	}
	if err := writeAtomic(f.opts.Paths.Config, body.Bytes(), 0o640, 0, gid); err != nil {
		return nil, fmt.Errorf("setup: write the config: %w", err)
	}
	f.log.Info("config written", "path", f.opts.Paths.Config, "owner", owner, "bot", bot)
	if f.opts.Paths.SetupCode != "" {
		if err := os.Remove(f.opts.Paths.SetupCode); err != nil && !errors.Is(err, fs.ErrNotExist) {
			f.log.Warn("could not remove the setup code", "err", err)
		}
	}

	done.Next = fmt.Sprintf("Write /help to %s in your XMPP app.", bot)
	if linked == "" {
		done.Next = fmt.Sprintf("Write /pair to %s in your XMPP app to link WhatsApp (or /help to see what the bot does).", bot)
	}
	svc := f.opts.Service
	if !svc.Present() {
		done.Next = "This system has no systemd: start the bridge with waxmpp run --config " + f.opts.Paths.Config + ". Then " + lowerFirst(done.Next)
		return done, nil
	}
	if err := svc.Enable(ctx); err != nil {
		return nil, problem(err, "The configuration is written, but enabling the service failed: %v", err)
	}
	serr := svc.Restart(ctx)
	state, _ := svc.State(ctx)
	done.Service = state
	if serr != nil || state != "active" {
		status := svc.Status(ctx)
		return nil, problem(serr, "The configuration is written, but waxmpp did not start (%s). What systemd says:\n%s\nCorrect what it says, then run sudo waxmpp setup again (or systemctl restart waxmpp).", state, status)
	}
	return done, nil
}

func lowerFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToLower(s[:1]) + s[1:]
}

// lookupUser returns name's uid and gid.
func lookupUser(name string) (int, int, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return 0, 0, err
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("user %s has ids %q:%q", name, u.Uid, u.Gid)
	}
	return uid, gid, nil
}

func fileExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}

func dirExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

// chownTree gives dir and everything under it to uid:gid, without
// following symlinks. A file that goes away meanwhile needs no owner: a
// process still running there (the simulator's socket in tests, a
// bbolt lock) may remove its files while the walk passes.
func chownTree(dir string, uid, gid int) error {
	if os.Geteuid() != 0 {
		return nil // only root can, and only root made files for another user
	}
	return walkChown(dir, uid, gid, os.Lchown)
}

func walkChown(dir string, uid, gid int, lchown func(string, int, int) error) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil {
			err = lchown(p, uid, gid)
		}
		if errors.Is(err, fs.ErrNotExist) && p != dir {
			return nil
		}
		return err
	})
}

// writeAtomic replaces path with data, mode perm, owned by uid:gid (-1
// keeps the writer's): config.ReplaceFile.
func writeAtomic(path string, data []byte, perm fs.FileMode, uid, gid int) error {
	return config.ReplaceFile(path, data, perm, uid, gid)
}

// Service is the bridge's service under the service manager.
type Service interface {
	// Present says a service manager runs the bridge here (systemd is
	// PID 1); without one the other methods are not called.
	Present() bool
	Enable(ctx context.Context) error
	// Restart starts the service, or restarts it when it runs; it returns
	// when the service is up or has failed.
	Restart(ctx context.Context) error
	Stop(ctx context.Context) error
	// State is the unit's ActiveState: active, inactive, failed, …
	State(ctx context.Context) (string, error)
	// Status is a few lines a person can read about a failure.
	Status(ctx context.Context) string
}

// Systemd is the Service on a systemd system, through systemctl.
type Systemd struct{ Unit string }

// Present is true when systemd runs the system (sd_booted(3)).
func (s Systemd) Present() bool {
	fi, err := os.Lstat("/run/systemd/system")
	return err == nil && fi.IsDir()
}

func (s Systemd) systemctl(ctx context.Context, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	out, err := execOutput(ctx, "systemctl", args...)
	out = strings.TrimSpace(out)
	if err != nil {
		if out != "" {
			return out, fmt.Errorf("systemctl %s: %s", strings.Join(args, " "), out)
		}
		return out, fmt.Errorf("systemctl %s: %w", strings.Join(args, " "), err)
	}
	return out, nil
}

func (s Systemd) Enable(ctx context.Context) error {
	_, err := s.systemctl(ctx, "enable", "--quiet", s.Unit)
	return err
}

func (s Systemd) Restart(ctx context.Context) error {
	// A unit that failed (exit 78 before setup) starts again only once its
	// failed state is reset.
	s.systemctl(ctx, "reset-failed", s.Unit)
	_, err := s.systemctl(ctx, "restart", s.Unit)
	return err
}

func (s Systemd) Stop(ctx context.Context) error {
	_, err := s.systemctl(ctx, "stop", s.Unit)
	return err
}

func (s Systemd) State(ctx context.Context) (string, error) {
	return s.systemctl(ctx, "show", "-p", "ActiveState", "--value", s.Unit)
}

func (s Systemd) Status(ctx context.Context) string {
	out, _ := s.systemctl(ctx, "status", "--no-pager", "--lines=8", s.Unit)
	return out
}

// execOutput runs a command and returns its combined output.
func execOutput(ctx context.Context, name string, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	return string(out), err
}
