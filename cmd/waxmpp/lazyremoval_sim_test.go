//go:build simwa

package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"waxmpp/bridge/store"
)

// laterRemoval is what the binary logs when the server confirmed
// stanzas whose removal from the outbox waits for the next commit.
const laterRemoval = "confirmed stanzas out of the outbox, on disk with the next commit"

// removedLater waits until the binary's log since its last start says
// that the outbox's stanzas through seq or later were confirmed and
// wait for the next commit to leave the disk.
func (e *simEnv) removedLater(seq uint64) {
	e.tb.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		log := e.stderr.String()
		if i := strings.LastIndex(log, "=== start "); i >= 0 {
			log = log[i:]
		}
		for line := range strings.SplitSeq(log, "\n") {
			if !strings.Contains(line, laterRemoval) {
				continue
			}
			if m := throughAttr.FindStringSubmatch(line); m != nil {
				if n, _ := strconv.ParseUint(m[1], 10, 64); n >= seq {
					return
				}
			}
		}
		if time.Now().After(deadline) {
			e.tb.Fatalf("the binary did not log %q through %d within 30s", laterRemoval, seq)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

var throughAttr = regexp.MustCompile(`through=(\d+)`)

// outboxOnDisk is the seqs of the stanzas the state file's outbox holds
// on disk now whose text has s: what a power cut would leave (read from
// a copy of the file).
func (e *simEnv) outboxOnDisk(s string) []uint64 {
	e.tb.Helper()
	raw, err := os.ReadFile(filepath.Join(e.dir, "waxmpp.db"))
	if err != nil {
		e.tb.Fatal(err)
	}
	p := filepath.Join(e.tb.TempDir(), "crash.db")
	if err := os.WriteFile(p, raw, 0o600); err != nil {
		e.tb.Fatal(err)
	}
	db, err := store.Open(p, store.Options{ReadOnly: true})
	if err != nil {
		e.tb.Fatal(err)
	}
	defer db.Close()
	items, err := db.Queue("xmpp-out").Peek(0, 1000)
	if err != nil {
		e.tb.Fatal(err)
	}
	var seqs []uint64
	for _, it := range items {
		if strings.Contains(string(it.Data), s) {
			seqs = append(seqs, it.Seq)
		}
	}
	return seqs
}

// confirmedNotCommitted waits until the outbox's stanza with text is
// confirmed and out of the outbox for the writer, while still on disk.
func (e *simEnv) confirmedNotCommitted(text string) {
	e.tb.Helper()
	seqs := e.outboxOnDisk(text)
	if len(seqs) != 1 {
		e.tb.Fatalf("the outbox holds %d stanzas with %q on disk once the server had it; want it there (its removal waiting for the next commit)", len(seqs), text)
	}
	e.removedLater(seqs[0])
	if n := len(e.outboxOnDisk(text)); n != 1 {
		e.tb.Fatalf("confirmed, the outbox holds %d stanzas with %q on disk; want it still there until the next commit", n, text)
	}
}

// TestSimLoneRemovalKilled: a lone message's confirmed stanza leaves the
// outbox on disk with the next commit, not one of its own; a kill -9
// before that commit sends it again with its id (the owner's clients
// drop it by id).
func TestSimLoneRemovalKilled(t *testing.T) {
	e := newSimEnv(t, envOptions{})
	e.addressBook()
	m := e.mark()
	e.inject(textMsg(alice, alice, "LONE1", "a lone message", "Alice"))
	first := e.msg(m, "a lone message")
	e.confirmedNotCommitted("a lone message")
	e.kill()
	m = e.mark()
	e.start()
	again := e.msg(m, "a lone message")
	if again.Attr("id") != first.Attr("id") {
		t.Errorf("sent again as %q; want its id %q", again.Attr("id"), first.Attr("id"))
	}
}
