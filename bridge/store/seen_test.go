package store

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestSeen(t *testing.T) {
	db := openTest(t)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	steps := []struct {
		kind, id string
		at       time.Time
		want     bool
	}{
		{"wa", "A", t0, false},
		{"wa", "A", t0.Add(time.Hour), true},
		{"xmpp", "A", t0, false}, // kinds are separate
		{"wa", "B", t0.Add(48 * time.Hour), false},
	}
	for _, s := range steps {
		got, err := db.Seen(s.kind, s.id, s.at)
		if err != nil {
			t.Fatal(err)
		}
		if got != s.want {
			t.Errorf("Seen(%s, %s) = %v, want %v", s.kind, s.id, got, s.want)
		}
	}
	n, err := db.PruneSeen(t0.Add(24 * time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Errorf("PruneSeen removed %d, want 2", n)
	}
	db = reopen(t, db)
	for _, s := range []struct {
		kind, id string
		want     bool
	}{{"wa", "A", false}, {"wa", "B", true}} {
		if got, _ := db.Seen(s.kind, s.id, t0); got != s.want {
			t.Errorf("after prune and reopen: Seen(%s, %s) = %v, want %v", s.kind, s.id, got, s.want)
		}
	}
	if _, err := db.Seen("", "x", t0); err == nil {
		t.Errorf("Seen with empty kind: no error")
	}
}

// TestSeenConcurrent: of many concurrent calls with one id, exactly one is new.
func TestSeenConcurrent(t *testing.T) {
	db := openTest(t)
	var fresh atomic.Int32
	var wg sync.WaitGroup
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dup, err := db.Seen("wa", "same", time.Now())
			if err != nil {
				t.Error(err)
			}
			if !dup {
				fresh.Add(1)
			}
		}()
	}
	wg.Wait()
	if got := fresh.Load(); got != 1 {
		t.Errorf("%d calls saw the id as new, want 1", got)
	}
}
