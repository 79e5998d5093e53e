package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"syscall"
)

// Under systemd, stderr is a stream to the journal, which stamps every line
// with the time and reads a "<N>" prefix as the line's syslog priority
// (sd-daemon(3)). So there, log lines carry no time of their own and start
// with their level's priority, and `journalctl -p warning` finds warnings.

// isJournal tells whether w is the journal's stream: systemd sets
// $JOURNAL_STREAM to the device and inode ("dev:ino") of the stream it
// connected, and a child whose stderr was redirected elsewhere inherits the
// variable but not the stream, so the file itself is checked.
func isJournal(w io.Writer, stream string) bool {
	f, ok := w.(*os.File)
	if !ok || stream == "" {
		return false
	}
	var dev, ino uint64
	if n, err := fmt.Sscanf(stream, "%d:%d", &dev, &ino); n != 2 || err != nil {
		return false
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		return false
	}
	return uint64(st.Dev) == dev && st.Ino == ino
}

// Syslog priorities (sd-daemon(3): SD_ERR, SD_WARNING, SD_INFO, SD_DEBUG).
const (
	prioErr     = 3
	prioWarning = 4
	prioInfo    = 6
	prioDebug   = 7
)

// priority maps a slog level to a syslog priority; levels between the
// named ones take the priority of the next lower named level.
func priority(l slog.Level) int {
	switch {
	case l >= slog.LevelError:
		return prioErr
	case l >= slog.LevelWarn:
		return prioWarning
	case l >= slog.LevelInfo:
		return prioInfo
	default:
		return prioDebug
	}
}

// journalHandler prefixes each record's line with its priority. The inner
// handler (slog's text or JSON handler) writes one line per record in one
// Write, to out; the prefix goes into the same Write.
type journalHandler struct {
	inner slog.Handler
	out   *prefixWriter
}

// prefixWriter writes prefix before each Write's bytes, in one write.
// mu serialises records: a record's prefix and line belong together.
type prefixWriter struct {
	mu     sync.Mutex
	w      io.Writer
	prefix []byte
	buf    []byte
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.buf = append(append(p.buf[:0], p.prefix...), b...)
	if _, err := p.w.Write(p.buf); err != nil {
		return 0, err
	}
	return len(b), nil
}

// newJournalHandler returns a handler writing to w with opts, as text or
// JSON, each line prefixed by its priority.
func newJournalHandler(w io.Writer, json bool, opts *slog.HandlerOptions) slog.Handler {
	out := &prefixWriter{w: w}
	if json {
		return &journalHandler{inner: slog.NewJSONHandler(out, opts), out: out}
	}
	return &journalHandler{inner: slog.NewTextHandler(out, opts), out: out}
}

func (h *journalHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.inner.Enabled(ctx, l)
}

func (h *journalHandler) Handle(ctx context.Context, r slog.Record) error {
	h.out.mu.Lock()
	defer h.out.mu.Unlock()
	h.out.prefix = strconv.AppendInt(append(h.out.prefix[:0], '<'), int64(priority(r.Level)), 10)
	h.out.prefix = append(h.out.prefix, '>')
	return h.inner.Handle(ctx, r)
}

func (h *journalHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &journalHandler{inner: h.inner.WithAttrs(as), out: h.out}
}

func (h *journalHandler) WithGroup(name string) slog.Handler {
	return &journalHandler{inner: h.inner.WithGroup(name), out: h.out}
}
