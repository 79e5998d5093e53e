package main

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
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
}

func (f *fakePairer) Run(ctx context.Context) error {
	<-ctx.Done()
	return nil
}

func (f *fakePairer) Handled(bridge.Event) {}

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
		}, wantOut: []string{"Scan this QR code", "▀", "Code 1, valid for", "Code 2", "Success: waxmpp is linked to WhatsApp account +491701111111 (Owner)"}},
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
