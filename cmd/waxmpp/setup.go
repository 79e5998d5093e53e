package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/user"
	"path/filepath"
	"strings"

	"golang.org/x/term"

	"waxmpp/setup"
	setupterm "waxmpp/setup/term"
)

func init() {
	commands["setup"] = struct{ synopsis, about string }{
		"setup [--owner ADDRESS] [--jid BOT] [--password-file FILE | --register] [--web [--listen ADDR]]",
		`Set waxmpp up, or change what is set up: your XMPP address, the bot
account (yours, or a new one created on your server), the bot's
subscription, the WhatsApp link; then write the config and the password
credential and start the service. Run it as root: sudo waxmpp setup.
Ctrl-C at any step leaves the previous config untouched.

Flags answer the questions for scripts; without a terminal every answer
must come as a flag, and WhatsApp is linked later (/pair in the bot chat).
--web serves the same steps as a web page on this machine's LAN addresses
(loopback, private and link-local only), behind the setup code.`,
	}
}

// setupFlags are setup's flags.
type setupFlags struct {
	owner, jid, passwordFile string
	register                 bool
	server, caFile           string
	web                      bool
	listen, codeFile         string
	simulator                string // test builds (-tags simwa)
}

func (s *setupFlags) define(fs *flag.FlagSet) {
	fs.StringVar(&s.owner, "owner", "", "your own XMPP address (the account you chat from)")
	fs.StringVar(&s.jid, "jid", "", "the bot account's address: one you have (with --password-file), or the one to create (with --register)")
	fs.StringVar(&s.passwordFile, "password-file", "", "a file holding the bot account's password")
	fs.BoolVar(&s.register, "register", false, "create the bot account (XEP-0077 in-band registration) on your server, or as --jid names")
	fs.StringVar(&s.server, "server", "", "connect to this host:port (or tls://host:port) instead of what DNS says; written to the config")
	fs.StringVar(&s.caFile, "ca-file", "", "a PEM file of CA certificates to trust beside the system's (a self-hosted server); written to the config")
	fs.BoolVar(&s.web, "web", false, "serve setup as a web page on this machine's LAN addresses instead of asking here")
	fs.StringVar(&s.listen, "listen", ":80", "with --web: the address to serve on; a port alone means every loopback, private and link-local address")
	fs.StringVar(&s.codeFile, "code-file", setup.DefaultPaths.SetupCode, "with --web: the setup code's file (made if missing)")
	simSetupFlag(fs, &s.simulator)
}

// runSetup runs the setup flow in this terminal, or with --web as a page.
func (m *Main) runSetup(ctx context.Context) error {
	if os.Geteuid() != 0 && m.ConfigPath == DefaultConfigPath {
		return errors.New("setup writes /etc/waxmpp and starts the service: run it as root (sudo waxmpp setup)")
	}
	s := m.Setup
	if s.passwordFile != "" && s.jid == "" {
		return &usageError{"setup: --password-file needs --jid (the account it is the password of)"}
	}
	var password string
	if s.passwordFile != "" {
		b, err := os.ReadFile(s.passwordFile)
		if err != nil {
			return fmt.Errorf("setup: --password-file: %w", err)
		}
		password = strings.TrimRight(string(b), "\r\n")
		if password == "" {
			return fmt.Errorf("setup: --password-file %s is empty", s.passwordFile)
		}
	}
	// Logs are for diagnosis; the person reads the questions. Warnings go
	// to stderr, the rest is not shown (journal under the web unit).
	level := slog.LevelWarn
	if s.web {
		level = slog.LevelInfo
	}
	log := slog.New(slog.NewTextHandler(m.Stderr, &slog.HandlerOptions{Level: level})).With("component", "setup")
	paths := setup.DefaultPaths
	paths.Config = m.ConfigPath
	if m.ConfigPath != DefaultConfigPath {
		// A config elsewhere (tests, a second instance): no credential
		// store but a password file, and the setup code, beside it.
		paths.Credential = ""
		paths.SetupCode = filepath.Join(filepath.Dir(m.ConfigPath), "setup-code")
	}
	if s.web {
		paths.SetupCode = s.codeFile
	}
	open, err := setupWhatsApp(ctx, s.simulator)
	if err != nil {
		return err
	}
	f, err := setup.New(setup.Options{
		Paths:        paths,
		Server:       s.server,
		CAFile:       s.caFile,
		OpenWhatsApp: open,
		Service:      setupService(m.ConfigPath),
		ServiceUser:  serviceUser(m.ConfigPath),
		Log:          log,
	})
	if err != nil {
		return err
	}
	defer f.Close()
	if s.web {
		return m.runSetupWeb(ctx, f, s, paths.SetupCode, log)
	}
	fd := -1
	interactive := false
	if file, ok := m.Stdin.(*os.File); ok && term.IsTerminal(int(file.Fd())) {
		fd, interactive = int(file.Fd()), true
	}
	err = setupterm.Run(ctx, f, setupterm.Options{
		In: m.Stdin, Out: m.Stdout, Interactive: interactive, Fd: fd,
		Answers: setupterm.Answers{Owner: s.owner, Bot: s.jid, Password: password, Register: s.register},
	})
	if setupterm.ErrLeft(err) {
		return nil
	}
	if ctx.Err() != nil {
		fmt.Fprintln(m.Stdout)
		return errors.New("setup stopped; nothing was changed")
	}
	return err
}

// setupService is the service setup starts: systemd's waxmpp.service for
// the real config; none for a config elsewhere (tests, a by-hand install).
func setupService(configPath string) setup.Service {
	if configPath != DefaultConfigPath {
		return noService{}
	}
	return setup.Systemd{Unit: "waxmpp.service"}
}

// serviceUser is the user the bridge runs as: waxmpp for the real config,
// whoever runs setup for a config elsewhere.
func serviceUser(configPath string) string {
	if configPath != DefaultConfigPath {
		if u, err := user.Current(); err == nil {
			return u.Username
		}
	}
	return "waxmpp"
}

// noService is no service manager.
type noService struct{}

func (noService) Present() bool                         { return false }
func (noService) Enable(context.Context) error          { return nil }
func (noService) Restart(context.Context) error         { return nil }
func (noService) Stop(context.Context) error            { return nil }
func (noService) State(context.Context) (string, error) { return "", nil }
func (noService) Status(context.Context) string         { return "" }
