package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"waxmpp/bridge/config"
	"waxmpp/bridge/store"
)

// controlPath is the daemon's control socket, in a directory "control"
// beside the state file that only the daemon's user may enter (see
// privateDir), so that no other user can ever connect, whatever the umask
// and whatever the mode of the state file's directory.
func controlPath(dbPath string) string {
	return filepath.Join(filepath.Dir(dbPath), "control", "control.sock")
}

// privateDir makes dir a directory that only this process's user may
// enter: created if missing; an existing one must be a directory (not a
// symlink) owned by this user. Its mode is set to 0700 explicitly, through
// the opened directory, so neither the umask nor an earlier mode counts.
func privateDir(dir string) error {
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	f, err := os.OpenFile(dir, os.O_RDONLY|syscall.O_DIRECTORY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return fmt.Errorf("%s is not a directory waxmpp can use: %w", dir, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); !ok || int(st.Uid) != os.Geteuid() {
		return fmt.Errorf("%s belongs to another user; remove it", dir)
	}
	return f.Chmod(0o700)
}

// backup writes a consistent copy of the state file to file. When no daemon
// runs, it reads the file itself; while one runs (it holds the file's
// lock), the daemon streams a snapshot over its control socket.
//
// It never creates a state file: a backup of a file that does not exist
// (a wrong [store] path) is an error naming the path.
func (m *Main) backup(ctx context.Context) error {
	st, err := config.LoadStore(m.ConfigPath)
	if err != nil {
		return err
	}
	// Read-only: the copy is the file as it is, not migrated, and a
	// missing file stays missing.
	db, err := store.Open(st.Path, store.Options{ReadOnly: true, Timeout: 500 * time.Millisecond})
	var n int64
	switch {
	case err == nil:
		n, err = db.BackupFile(m.BackupFile)
		if cerr := db.Close(); err == nil {
			err = cerr
		}
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("backup: there is no state file at %s (the [store] path of %s); nothing was written", st.Path, m.ConfigPath)
	case errors.Is(err, store.ErrLocked):
		n, err = fetchBackup(ctx, controlPath(st.Path), m.BackupFile)
	}
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(m.Stdout, "wrote %s (%d bytes)\n", m.BackupFile, n)
	return err
}

func fetchBackup(ctx context.Context, sock, file string) (int64, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", sock)
	if err != nil {
		return 0, fmt.Errorf("backup: the state file is in use, and its daemon does not answer at %s: %w", sock, err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Minute))
	if _, err := conn.Write([]byte("backup\n")); err != nil {
		return 0, fmt.Errorf("backup: %w", err)
	}
	r := bufio.NewReader(conn)
	status, err := r.ReadString('\n')
	if err != nil {
		return 0, fmt.Errorf("backup: no answer from the daemon: %w", err)
	}
	if status != "ok\n" {
		return 0, fmt.Errorf("backup: the daemon says: %s", strings.TrimSpace(status))
	}
	return store.ReceiveBackup(file, r)
}

// serveControl answers requests on the control socket until ctx ends.
// One request per connection, one line: "backup" streams a snapshot after
// an "ok" line; "stages" answers the stage timings (stages.go). Requests
// are served one at a time (a backup is large and rare; a second waits).
func serveControl(ctx context.Context, db *store.DB, log *slog.Logger) (func(), error) {
	path := controlPath(db.Path())
	if err := privateDir(filepath.Dir(path)); err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	os.Remove(path) // a stale socket of a crashed daemon; we hold the file lock
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	// The directory already keeps others out; the socket's own mode
	// (umask-dependent until this chmod) is a second fence.
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return nil, fmt.Errorf("control socket: %w", err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			handleControl(conn, db, log)
		}
	}()
	stop := func() {
		l.Close()
		<-done
		os.Remove(path)
	}
	return stop, nil
}

func handleControl(conn net.Conn, db *store.DB, log *slog.Logger) {
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Minute))
	line, err := bufio.NewReader(&limitedConn{conn, 64}).ReadString('\n')
	if err != nil {
		return
	}
	req := strings.TrimSpace(line)
	if arg, ok := strings.CutPrefix(req, "stages"); ok && (arg == "" || arg[0] == ' ') {
		answerStages(conn, strings.TrimSpace(arg)) // stages.go
		return
	}
	switch req {
	case "backup":
		conn.Write([]byte("ok\n"))
		n, err := db.Backup(conn)
		if err != nil {
			log.Warn("backup failed", "err", err)
			return
		}
		log.Info("backup sent", "bytes", n)
	default:
		fmt.Fprintf(conn, "unknown request %q; known: backup, stages\n", req)
	}
}

// limitedConn reads at most n bytes: a request line is short.
type limitedConn struct {
	c net.Conn
	n int
}

func (l *limitedConn) Read(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, errors.New("request too long")
	}
	p = p[:min(len(p), l.n)]
	k, err := l.c.Read(p)
	l.n -= k
	return k, err
}
