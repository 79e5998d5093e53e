package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"waxmpp/bridge/store"
	"waxmpp/setup/doctor"
)

func init() {
	commands["doctor"] = struct{ synopsis, about string }{
		"doctor [--config FILE] [--json]",
		`Check everything that can go wrong, in order: the clock, the config and
its file modes, DNS and TLS for the bot's server, the bot's login, your
subscription, the WhatsApp link and when the phone was last seen, the
state file and free disk, the service under systemd, ffmpeg. Each line
says what is wrong and what to do. Exit status 0 when nothing is a
problem (warnings allowed), 1 otherwise. Run it as root to read
everything; it works while the bridge runs.`,
	}
}

// doctorFlags are doctor's flags.
type doctorFlags struct {
	json bool
}

func (d *doctorFlags) define(fs *flag.FlagSet) {
	fs.BoolVar(&d.json, "json", false, "print the findings as JSON, for scripts")
}

// errUnhealthy: doctor found a problem (exit 1).
var errUnhealthy = errors.New("doctor found problems (see above)")

func (m *Main) runDoctor(ctx context.Context) error {
	fs := doctor.Run(ctx, doctor.Options{
		ConfigPath: m.ConfigPath,
		ReadState:  readStateOrSnapshot,
		Service:    setupService(m.ConfigPath),
	})
	healthy := doctor.Healthy(fs)
	if m.Doctor.json {
		enc := json.NewEncoder(m.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(struct {
			Healthy  bool             `json:"healthy"`
			Findings []doctor.Finding `json:"findings"`
		}{healthy, fs}); err != nil {
			return err
		}
	} else {
		for _, f := range fs {
			mark := map[doctor.Status]string{doctor.OK: "ok     ", doctor.Warning: "WARNING", doctor.Problem: "PROBLEM", doctor.Skipped: "skipped"}[f.Status]
			lines := strings.Split(f.Message, "\n")
			fmt.Fprintf(m.Stdout, "%s %-12s %s\n", mark, f.Check, lines[0])
			for _, l := range lines[1:] {
				fmt.Fprintf(m.Stdout, "%21s%s\n", "", l)
			}
			if f.Fix != "" {
				fmt.Fprintf(m.Stdout, "%21s→ %s\n", "", f.Fix)
			}
		}
	}
	if !healthy {
		return errUnhealthy
	}
	return nil
}

// readStateOrSnapshot reads the state file in doctor's child process;
// while the bridge holds it, a consistent snapshot the bridge streams over
// its control socket (as waxmpp backup does), in a temporary file removed
// afterwards.
func readStateOrSnapshot(ctx context.Context, path string) (doctor.StateInfo, error) {
	db, err := store.Open(path, store.Options{ReadOnly: true, Timeout: 300 * time.Millisecond})
	if err == nil {
		db.Close()
		return doctor.ReadStateChild(ctx, path)
	}
	if !errors.Is(err, store.ErrLocked) {
		return doctor.ReadStateChild(ctx, path) // the child says what is wrong
	}
	dir, err := os.MkdirTemp("", "waxmpp-doctor")
	if err != nil {
		return doctor.StateInfo{}, err
	}
	defer os.RemoveAll(dir)
	snap := filepath.Join(dir, "snapshot.db")
	if err := fetchSnapshot(ctx, controlPath(path), snap); err != nil {
		return doctor.StateInfo{}, err
	}
	return doctor.ReadStateChild(ctx, snap)
}

// fetchSnapshot is fetchBackup without its check of the copy: the check
// is the child's (a damaged file may crash the process that opens it).
func fetchSnapshot(ctx context.Context, sock, file string) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", sock)
	if err != nil {
		return fmt.Errorf("the state file is in use, and its daemon does not answer at %s: %w", sock, err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Minute))
	if _, err := conn.Write([]byte("backup\n")); err != nil {
		return err
	}
	r := bufio.NewReader(conn)
	if status, err := r.ReadString('\n'); err != nil || status != "ok\n" {
		return fmt.Errorf("the daemon did not send a snapshot (%q, %v)", strings.TrimSpace(status), err)
	}
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
