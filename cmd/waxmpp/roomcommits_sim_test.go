//go:build simwa

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"waxmpp/bridge/store"
)

// diskCopy opens a copy of the state file as it is on disk now.
func (e *simEnv) diskCopy() *store.DB {
	e.tb.Helper()
	raw, err := os.ReadFile(filepath.Join(e.dir, "waxmpp.db"))
	if err != nil {
		e.tb.Fatal(err)
	}
	p := filepath.Join(e.tb.TempDir(), "copy.db")
	if err := os.WriteFile(p, raw, 0o600); err != nil {
		e.tb.Fatal(err)
	}
	db, err := store.Open(p, store.Options{ReadOnly: true})
	if err != nil {
		e.tb.Fatal(err)
	}
	e.tb.Cleanup(func() { db.Close() })
	return db
}

// commitsOnDisk is how many transactions the state file has committed.
func (e *simEnv) commitsOnDisk() uint64 { return e.diskCopy().Commits() }

// blobOnDisk waits until setting name on disk holds want.
func (e *simEnv) blobOnDisk(name, want string) {
	e.tb.Helper()
	deadline := time.Now().Add(wait)
	for {
		v, _, err := e.diskCopy().Blob(name)
		if err != nil {
			e.tb.Fatal(err)
		}
		if strings.Contains(string(v), want) {
			return
		}
		if time.Now().After(deadline) {
			e.tb.Fatalf("setting %s on disk never held %q: %q", name, want, v)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestSimLoneRoomCommits counts the commits of a lone message in a room
// each way: a WhatsApp message the bot writes in the room (the core's
// batch; the room's echo of it gives its room id, then the room's cursor
// moves) and the owner's answer there (the core's batch; the cursor
// moves again), and the stop (2 commits, the last one Close's for what
// waits). The room id and the moved cursors go with the next commit: 4
// commits (6 before: the echo's room id and the cursors had their own).
func TestSimLoneRoomCommits(t *testing.T) {
	e := newSimEnv(t, envOptions{})
	e.addressBook()
	o := newRoomOwner(e)
	ra := o.room("alice")
	m := e.mark()
	e.inject(textMsg(alice, alice, "WARM1", "warming up", "Alice"))
	e.inRoom(m, ra, "warming up")
	m = e.mark()
	o.say(ra, "warm answer", "")
	e.action(m, wait, "the warm answer", sendTo(alice, "warm answer"))
	// The core saves the names and anchors it learnt 5 s after the
	// first (the anchors last): not in the count.
	e.blobOnDisk("core.oldest", `"HELLO-F"`)

	c0 := e.commitsOnDisk()
	m = e.mark()
	e.inject(textMsg(alice, alice, "LONE1", "a lone message in the room", "Alice"))
	s := e.inRoom(m, ra, "a lone message in the room")
	lone := roomID(s, ra)
	m = e.mark()
	o.say(ra, "a lone answer", "<reply xmlns='"+nsReply+"' to='"+ra+"/Alice' id='"+lone+"'/>")
	a := e.action(m, wait, "the lone answer", sendTo(alice, "a lone answer"))
	if a.ReplyTo == nil || a.ReplyTo.ID != "LONE1" {
		t.Errorf("the answer went as %+v, want a reply to LONE1 (found by the room's id)", a)
	}
	e.stop()
	n := e.commitsOnDisk() - c0
	t.Logf("a message each way in a room and the stop: %d commits", n)
	if n != 4 {
		t.Errorf("%d commits; want 4 (the message's batch, the answer's, the stop's 2)", n)
	}
}
