package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"waxmpp/bridge"
	"waxmpp/bridge/store"
)

// TestControlStages: "stages on" starts the stage timings from zero, a
// store commit then shows in "stages", and the allocation counters grow.
func TestControlStages(t *testing.T) {
	db, sock := serveTestControl(t, t.TempDir())
	defer controlStages(t, sock, "off")
	controlStages(t, sock, "on")
	r0 := readStages(t, sock)
	if c := stageByName(r0, "store commit").Count; c != 0 {
		t.Fatalf("store commit count %d right after stages on, want 0", c)
	}
	for range 3 {
		if err := db.PutBlob("test", []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	r1 := readStages(t, sock)
	st := stageByName(r1, "store commit")
	if st.Count != 3 || st.Max <= 0 || st.Quantile(0.5) <= 0 {
		t.Errorf("store commit after 3 writes: %+v, want 3 observations", st)
	}
	if len(r1.BucketUpper) < len(st.Buckets) {
		t.Errorf("%d bucket bounds for %d buckets", len(r1.BucketUpper), len(st.Buckets))
	}
	if r1.Allocs <= r0.Allocs || r1.AllocBytes <= r0.AllocBytes {
		t.Errorf("allocations %d (%d B) then %d (%d B): not counted", r0.Allocs, r0.AllocBytes, r1.Allocs, r1.AllocBytes)
	}
	if line := controlLine(t, sock, "stages now"); !strings.Contains(line, "known: stages, stages on, stages off, stages allocs") {
		t.Errorf("stages now: %q", line)
	}
}

// serveTestControl opens a store in dir and serves its control socket
// until the test ends; it returns the store and the socket's path.
func serveTestControl(t *testing.T, dir string) (*store.DB, string) {
	t.Helper()
	db, err := store.Open(filepath.Join(dir, "waxmpp.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	stop, err := serveControl(t.Context(), db, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return db, controlPath(db.Path())
}

// controlLine sends one request to the control socket sock and returns
// the first line of the answer.
func controlLine(tb testing.TB, sock, req string) string {
	tb.Helper()
	conn, err := net.DialTimeout("unix", sock, 5*time.Second)
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := fmt.Fprintf(conn, "%s\n", req); err != nil {
		tb.Fatal(err)
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		tb.Fatalf("control %q: %v", req, err)
	}
	return line
}

// controlStages sends "stages on" or "stages off".
func controlStages(tb testing.TB, sock, arg string) {
	tb.Helper()
	if line := controlLine(tb, sock, "stages "+arg); line != "ok\n" {
		tb.Fatalf("stages %s: %q", arg, line)
	}
}

func readStages(tb testing.TB, sock string) stageReport {
	tb.Helper()
	var r stageReport
	if err := json.Unmarshal([]byte(controlLine(tb, sock, "stages")), &r); err != nil {
		tb.Fatalf("stages: %v", err)
	}
	return r
}

func stageByName(r stageReport, name string) bridge.StageStats {
	for _, s := range r.Stages {
		if s.Name == name {
			return s
		}
	}
	return bridge.StageStats{Name: name}
}
