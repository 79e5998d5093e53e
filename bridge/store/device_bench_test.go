package store

import (
	"context"
	"crypto/rand"
	"fmt"
	"path/filepath"
	"testing"

	waAdv "go.mau.fi/whatsmeow/proto/waAdv"
	wastore "go.mau.fi/whatsmeow/store"
)

func benchDevice(b *testing.B) *wastore.Device {
	db, err := Open(filepath.Join(b.TempDir(), "waxmpp.db"), Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	dev := db.Devices(nil).NewDevice()
	jid := mustJID("491700000000.0:1@s.whatsapp.net")
	dev.ID = &jid
	dev.Account = &waAdv.ADVSignedDeviceIdentity{
		Details: []byte("details"), AccountSignature: make([]byte, 64),
		AccountSignatureKey: make([]byte, 32), DeviceSignature: make([]byte, 64),
	}
	if err := dev.Save(context.Background()); err != nil {
		b.Fatal(err)
	}
	return dev
}

// BenchmarkSessionPut: one Signal session record (~1.5 kB, typical after a
// few ratchet steps) written per op, each its own durable commit, as
// whatsmeow does outside a decryption transaction.
func BenchmarkSessionPut(b *testing.B) {
	dev := benchDevice(b)
	ctx := context.Background()
	rec := make([]byte, 1500)
	rand.Read(rec)
	b.ResetTimer()
	for i := range b.N {
		if err := dev.Sessions.PutSession(ctx, fmt.Sprintf("4917%08d.0:0", i%500), rec); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "puts/s")
}

// BenchmarkSessionGet reads sessions among 500 stored ones.
func BenchmarkSessionGet(b *testing.B) {
	dev := benchDevice(b)
	ctx := context.Background()
	rec := make([]byte, 1500)
	rand.Read(rec)
	for i := range 500 {
		if err := dev.Sessions.PutSession(ctx, fmt.Sprintf("4917%08d.0:0", i), rec); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for i := range b.N {
		got, err := dev.Sessions.GetSession(ctx, fmt.Sprintf("4917%08d.0:0", i%500))
		if err != nil || len(got) != len(rec) {
			b.Fatalf("get: %d bytes, %v", len(got), err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "gets/s")
}
