package doctor

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"waxmpp/bridge/store"
	"waxmpp/setup"
)

// A damaged state file can make bbolt panic, and not only where a recover
// could catch it: opening a file read-only rebuilds the free page list on
// a goroutine of bbolt's own (this store keeps no freelist on disk), and
// that walk asserts on bad pages. So doctor reads the state file in a
// child process, this same executable started with childEnv set: a
// crash there is the verdict "damaged", not the end of doctor.

// childEnv names the state file the child reads.
const childEnv = "WAXMPP_DOCTOR_STATE"

// RunChild is the child's side: when this process was started as
// ReadStateChild's child, it reads the file, prints what it found and
// exits. Call it first in main (and in TestMain of tests that run doctor).
func RunChild() {
	path := os.Getenv(childEnv)
	if path == "" {
		return
	}
	info, err := readState(path)
	out := struct {
		StateInfo
		Err string `json:"err,omitempty"`
	}{StateInfo: info}
	if err != nil {
		out.Err = err.Error()
	}
	json.NewEncoder(os.Stdout).Encode(out)
	os.Exit(0)
}

// readState opens the file read-only, checks it and reads the link.
func readState(path string) (StateInfo, error) {
	db, err := store.Open(path, store.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return StateInfo{}, err
	}
	defer db.Close()
	if err := db.Check(); err != nil {
		return StateInfo{Damaged: err.Error()}, nil
	}
	info := StateInfo{Linked: setup.LinkedAccount(db)}
	info.PhoneSeen, _ = PhoneSeen(db)
	return info, nil
}

// PhoneSeen is when the WhatsApp adapter last saw the phone online.
func PhoneSeen(db *store.DB) (time.Time, bool) {
	b, ok, err := db.Blob("whatsapp.phone_last_seen")
	if err != nil || !ok {
		return time.Time{}, false
	}
	var t time.Time
	if t.UnmarshalText(b) != nil {
		return time.Time{}, false
	}
	return t, true
}

// ReadStateChild reads the state file at path in a child process (see
// RunChild). The file must not be held by a running bridge (cmd/waxmpp
// passes a snapshot then).
func ReadStateChild(ctx context.Context, path string) (StateInfo, error) {
	exe, err := os.Executable()
	if err != nil {
		return StateInfo{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe)
	cmd.Env = append(os.Environ(), childEnv+"="+path)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	runErr := cmd.Run()
	var res struct {
		StateInfo
		Err string `json:"err"`
	}
	if jerr := json.Unmarshal(out.Bytes(), &res); jerr != nil || runErr != nil {
		// The child died reading the file: bbolt's assertion is on stderr.
		msg := firstPanic(errb.String())
		if msg == "" {
			msg = fmt.Sprint(runErr)
		}
		return StateInfo{Damaged: "reading it crashed: " + msg}, nil
	}
	if res.Err != "" {
		return StateInfo{}, fmt.Errorf("%s", res.Err)
	}
	return res.StateInfo, nil
}

func firstPanic(stderr string) string {
	for line := range strings.SplitSeq(stderr, "\n") {
		if p, ok := strings.CutPrefix(line, "panic: "); ok {
			return p
		}
	}
	return ""
}
