package config

import (
	"fmt"
	"os"
	"path/filepath"
)

// UseCredential makes the bot's password the systemd credential
// PasswordCredential, stored at file (normally /etc/credstore/waxmpp.password):
// Write then writes neither xmpp.password nor xmpp.password_file, and Load
// reads the credential, as for a file that names neither. password is
// what the credential holds; it stays in x for Validate and for this
// process. The setup wizard writes the credential file itself.
func (x *XMPP) UseCredential(password, file string) {
	x.Password = password
	x.PasswordFile = file
	x.credential = true
}

// Credential reports whether the password is the systemd credential
// (UseCredential, or a file that names neither password nor password_file).
func (x XMPP) Credential() bool { return x.credential }

// LoadSettings reads the config file at path like Load, but also when it
// does not name the accounts yet (a file written by hand before setup, or
// the example): the setup wizard fills the accounts in and keeps every
// other setting. Problems with anything but the accounts are errors, as in
// Load; the password is not read.
func LoadSettings(path string) (Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return Config{}, fmt.Errorf("config %s: %w", path, &Error{Problem: "cannot open the file", Err: err})
	}
	defer f.Close()
	cfg, lines, err := decode(f, "")
	if err != nil {
		return Config{}, fmt.Errorf("config %s: %w", path, err)
	}
	var bad []*Error
	for _, e := range Errors(cfg.Validate()) {
		switch e.Field {
		case "xmpp.jid", "xmpp.owner", "xmpp.password":
			if cfg.notConfigured() != nil {
				continue
			}
		}
		bad = append(bad, e)
	}
	if len(bad) > 0 {
		return Config{}, fmt.Errorf("config %s: %w", path, withLines(bad, lines))
	}
	dir := filepath.Dir(path)
	cfg.XMPP.PasswordFile = resolve(dir, cfg.XMPP.PasswordFile)
	cfg.XMPP.CAFile = resolve(dir, cfg.XMPP.CAFile)
	cfg.Store.Path = resolve(dir, cfg.Store.Path)
	return cfg, nil
}
