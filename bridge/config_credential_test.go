package bridge

import (
	"errors"
	"path/filepath"
	"testing"
)

// TestLoadConfigCredential: without password and password_file the
// password is the systemd credential; a config's own password wins.
func TestLoadConfigCredential(t *testing.T) {
	dir := t.TempDir()
	creds := filepath.Join(dir, "credentials")
	writeFile(t, filepath.Join(creds, PasswordCredential), "from-credential\n", 0o600)
	noPassword := "[xmpp]\njid = \"bot@example.org\"\nowner = \"me@example.org\"\n"
	path := filepath.Join(dir, "config.toml")
	writeFile(t, path, noPassword, 0o600)

	t.Setenv("CREDENTIALS_DIRECTORY", creds)
	cfg, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.XMPP.Password != "from-credential" || cfg.XMPP.PasswordFile != filepath.Join(creds, PasswordCredential) {
		t.Errorf("password %q from %q, want the credential's", cfg.XMPP.Password, cfg.XMPP.PasswordFile)
	}

	writeFile(t, path, configDoc(`password = "own"`, ""), 0o600)
	if cfg, err := LoadConfig(path); err != nil || cfg.XMPP.Password != "own" {
		t.Errorf("config with its own password: %q, %v; want it to win over the credential", cfg.XMPP.Password, err)
	}

	// Outside the service (no $CREDENTIALS_DIRECTORY): the credential store.
	writeFile(t, path, noPassword, 0o600)
	t.Setenv("CREDENTIALS_DIRECTORY", "")
	defer func(old string) { credstore = old }(credstore)
	credstore = filepath.Join(dir, "credstore")
	writeFile(t, filepath.Join(credstore, PasswordCredential), "from-credstore\n", 0o600)
	if cfg, err := LoadConfig(path); err != nil || cfg.XMPP.Password != "from-credstore" {
		t.Errorf("outside the service: %q, %v; want the credential store's password", cfg.XMPP.Password, err)
	}

	// No credential either: not configured.
	credstore = filepath.Join(dir, "none")
	if _, err := LoadConfig(path); !errors.Is(err, ErrNotConfigured) {
		t.Errorf("no password anywhere: %v, want ErrNotConfigured", err)
	}
}
