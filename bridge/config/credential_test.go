package config

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLoadCredential: without password and password_file the
// password is the systemd credential; a config's own password wins.
func TestLoadCredential(t *testing.T) {
	dir := t.TempDir()
	creds := filepath.Join(dir, "credentials")
	writeFile(t, filepath.Join(creds, PasswordCredential), "from-credential\n", 0o600)
	noPassword := "[xmpp]\njid = \"bot@example.org\"\nowner = \"me@example.org\"\n"
	path := filepath.Join(dir, "config.toml")
	writeFile(t, path, noPassword, 0o600)

	t.Setenv("CREDENTIALS_DIRECTORY", creds)
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.XMPP.Password != "from-credential" || cfg.XMPP.PasswordFile != filepath.Join(creds, PasswordCredential) {
		t.Errorf("password %q from %q, want the credential's", cfg.XMPP.Password, cfg.XMPP.PasswordFile)
	}

	writeFile(t, path, configDoc(`password = "own"`, ""), 0o600)
	if cfg, err := Load(path); err != nil || cfg.XMPP.Password != "own" {
		t.Errorf("config with its own password: %q, %v; want it to win over the credential", cfg.XMPP.Password, err)
	}

	// Outside the service (no $CREDENTIALS_DIRECTORY): the credential store.
	writeFile(t, path, noPassword, 0o600)
	t.Setenv("CREDENTIALS_DIRECTORY", "")
	defer func(old string) { credstore = old }(credstore)
	credstore = filepath.Join(dir, "credstore")
	writeFile(t, filepath.Join(credstore, PasswordCredential), "from-credstore\n", 0o600)
	if cfg, err := Load(path); err != nil || cfg.XMPP.Password != "from-credstore" {
		t.Errorf("outside the service: %q, %v; want the credential store's password", cfg.XMPP.Password, err)
	}

	// No credential either: not configured.
	credstore = filepath.Join(dir, "none")
	if _, err := Load(path); !errors.Is(err, ErrNotConfigured) {
		t.Errorf("no password anywhere: %v, want ErrNotConfigured", err)
	}
}

// A config whose password is the credential is written without a password
// and without password_file, so that it keeps using the credential.
func TestWriteCredential(t *testing.T) {
	dir := t.TempDir()
	creds := filepath.Join(dir, "credentials")
	writeFile(t, filepath.Join(creds, PasswordCredential), "from-credential\n", 0o600)
	t.Setenv("CREDENTIALS_DIRECTORY", creds)
	path := filepath.Join(dir, "config.toml")
	writeFile(t, path, "[xmpp]\njid = \"bot@example.org\"\nowner = \"me@example.org\"\n", 0o600)
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := Write(&b, cfg); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "password =") || strings.Contains(b.String(), "password_file") {
		t.Errorf("written config names a password:\n%s", b.String())
	}
	if err := os.WriteFile(path, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	if back, err := Load(path); err != nil || back != cfg {
		t.Errorf("Load after Write = %+v, %v; want %+v", back, err, cfg)
	}
}

// TestUseCredential: a config made in code whose password is the
// credential is written without password and password_file, and reads back
// with the credential's password.
func TestUseCredential(t *testing.T) {
	dir := t.TempDir()
	defer func(old string) { credstore = old }(credstore)
	credstore = filepath.Join(dir, "credstore")
	t.Setenv("CREDENTIALS_DIRECTORY", "")
	writeFile(t, filepath.Join(credstore, PasswordCredential), "generated\n", 0o600)

	c := Default()
	c.XMPP.JID, c.XMPP.Owner = "bot@example.org", "me@example.org"
	c.XMPP.UseCredential("generated", filepath.Join(credstore, PasswordCredential))
	if !c.XMPP.Credential() {
		t.Fatal("Credential() is false after UseCredential")
	}
	var b bytes.Buffer
	if err := Write(&b, c); err != nil {
		t.Fatal(err)
	}
	if s := b.String(); strings.Contains(s, "password =") || strings.Contains(s, "password_file") || strings.Contains(s, "generated") {
		t.Fatalf("written config names the password:\n%s", s)
	}
	path := filepath.Join(dir, "config.toml")
	writeFile(t, path, b.String(), 0o600)
	got, err := Load(path)
	if err != nil || got.XMPP.Password != "generated" || !got.XMPP.Credential() {
		t.Fatalf("Load: %q credential=%v, %v", got.XMPP.Password, got.XMPP.Credential(), err)
	}
}
