package main

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"waxmpp/bridge"
	"waxmpp/bridge/store"
)

// fakePairer plays a scripted pairing: the events it sends after Pair.
type fakePairer struct {
	events  chan<- bridge.Event
	script  []bridge.Event
	pairErr error
	phone   chan string
	synced  chan struct{} // closed: InitialSync returns

	mu      sync.Mutex
	handled []bridge.Event
}

func (f *fakePairer) Run(ctx context.Context) error {
	<-ctx.Done()
	return nil
}

func (f *fakePairer) Handled(ev bridge.Event) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.handled = append(f.handled, ev)
}

func (f *fakePairer) InitialSync(ctx context.Context, progress func(string)) error {
	progress("Your name and address book: received.")
	if f.synced != nil {
		select {
		case <-f.synced:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func (f *fakePairer) Pair(ctx context.Context, phone string) error {
	f.phone <- phone
	if f.pairErr != nil {
		return f.pairErr
	}
	go func() {
		for _, e := range f.script {
			select {
			case f.events <- e:
			case <-ctx.Done():
				return
			}
		}
	}()
	return nil
}

func TestRunPair(t *testing.T) {
	soon := time.Now().Add(time.Minute)
	ok := &bridge.PairResult{OK: true, ID: "491701111111@s.whatsapp.net", Name: "Owner"}
	tests := []struct {
		name    string
		phone   string
		script  []bridge.Event
		pairErr error
		wantOut []string
		wantErr string
	}{
		{name: "qr", script: []bridge.Event{
			&bridge.Status{State: bridge.NotPaired},
			&bridge.PairCode{QR: "2@first", Expires: soon},
			&bridge.PairCode{QR: "2@second", Expires: soon},
			ok, &bridge.Status{State: bridge.Connected},
		}, wantOut: []string{"Scan this QR code", "▀", "Code 1, valid for", "Code 2", "Your name and address book: received.", "Success: waxmpp is linked to WhatsApp account +491701111111 (Owner)"}},
		{name: "link code", phone: "+49 170 1111111", script: []bridge.Event{
			&bridge.PairCode{LinkCode: "ABCD-EFGH", Expires: soon}, ok, &bridge.Status{State: bridge.Connected},
		}, wantOut: []string{"Your link code: ABCD-EFGH", "Link with phone number instead", "Success"}},
		{name: "expired", script: []bridge.Event{
			&bridge.PairCode{QR: "2@first", Expires: soon},
			&bridge.PairResult{Err: "no QR code was scanned in time. Send /pair again for new codes."},
		}, wantErr: "pairing failed: no QR code was scanned in time"},
		{name: "already linked", pairErr: bridge.ErrAlreadyPaired, wantErr: "already linked"},
		{name: "bad number", phone: "0170 1234567", wantErr: "international form"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			var out, errs bytes.Buffer
			m := &Main{Stdout: &out, Stderr: &errs, ConfigPath: writeConfig(t, dir, "", "")}
			f := &fakePairer{script: tt.script, pairErr: tt.pairErr, phone: make(chan string, 1)}
			old := newPairer
			newPairer = func(ctx context.Context, db *store.DB, log *slog.Logger, ev chan<- bridge.Event) (pairer, error) {
				f.events = ev
				return f, nil
			}
			t.Cleanup(func() { newPairer = old })
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err := m.runPair(ctx, tt.phone)
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("runPair: %v, want error containing %q", err, tt.wantErr)
			}
			for _, w := range tt.wantOut {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
			if tt.name == "link code" {
				if got := <-f.phone; got != tt.phone {
					t.Errorf("Pair got %q", got)
				}
			}
		})
	}
}

func TestRunPairWhileRunning(t *testing.T) {
	dir := t.TempDir()
	m := &Main{Stdout: &bytes.Buffer{}, Stderr: &bytes.Buffer{}, ConfigPath: writeConfig(t, dir, "", "")}
	db, err := store.Open(filepath.Join(dir, "state", "waxmpp.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = m.runPair(context.Background(), "")
	if err == nil || !strings.Contains(err.Error(), "send /pair to the bot") {
		t.Fatalf("got %v", err)
	}
	var ue *usageError
	if errors.As(err, &ue) {
		t.Error("a running daemon is not a usage error")
	}
}

// TestRunPairWaitsForTheFirstSync: after linking, waxmpp pair stays until
// the adapter says the first sync is done, and what arrives meanwhile
// (names, identities) stays in the adapter's inbox for the bridge: it is
// not marked handled here.
func TestRunPairWaitsForTheFirstSync(t *testing.T) {
	dir := t.TempDir()
	var out, errs bytes.Buffer
	m := &Main{Stdout: &out, Stderr: &errs, ConfigPath: writeConfig(t, dir, "", "")}
	code := &bridge.PairCode{QR: "2@first", Expires: time.Now().Add(time.Minute)}
	ok := &bridge.PairResult{OK: true, ID: "491701111111@s.whatsapp.net"}
	name := &bridge.ContactInfo{User: "491709999999@s.whatsapp.net", PushName: "Alice"}
	f := &fakePairer{script: []bridge.Event{code, ok, &bridge.Status{State: bridge.Connected}, name},
		phone: make(chan string, 1), synced: make(chan struct{})}
	old := newPairer
	newPairer = func(ctx context.Context, db *store.DB, log *slog.Logger, ev chan<- bridge.Event) (pairer, error) {
		f.events = ev
		return f, nil
	}
	t.Cleanup(func() { newPairer = old })
	done := make(chan error, 1)
	go func() { done <- m.runPair(context.Background(), "") }()
	select {
	case err := <-done:
		t.Fatalf("runPair returned before the sync was done: %v\n%s", err, out.String())
	case <-time.After(300 * time.Millisecond):
	}
	close(f.synced)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "Success") {
		t.Errorf("output:\n%s", out.String())
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, ev := range f.handled {
		if ev == name {
			t.Error("a name learned after linking was marked handled by waxmpp pair")
		}
	}
	if len(f.handled) != 2 {
		t.Errorf("handled %d events, want the code and the result", len(f.handled))
	}
}
