//go:build simwa

package main

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"waxmpp/bridge/simwa"
)

// BenchmarkSimMedia measures media through the whole binary: the growth of
// its resident memory while it relays a 100 MB document each way (goal:
// at most 32 MiB above idle; a Pi Zero 2 W has 512 MB), and the time a
// 20 MB video takes from WhatsApp to the owner's upload service against a
// plain HTTP PUT of the same file to the same service (ratio: bridge time
// over PUT time; the bridge also downloads it from the simulator first).
// Memory is VmHWM (peak RSS, reset through /proc/PID/clear_refs before
// each transfer) and RssAnon sampled every 20 ms (without the page cache of
// the mapped state file).
func BenchmarkSimMedia(b *testing.B) {
	for range b.N {
		e := newSimEnv(b, envOptions{uploadLimit: 128 << 20, pingInterval: time.Minute, pingTimeout: 20 * time.Second})
		e.addressBook()
		e.command("/to alice")
		dir := b.TempDir()
		doc, docSum := randomFile(b, filepath.Join(dir, "big.pdf"), 100<<20, "%PDF-1.4\n")
		video, _ := randomFile(b, filepath.Join(dir, "video.mp4"), 20<<20, "\x00\x00\x00\x18ftypisom")
		pid := e.cmd.Process.Pid
		time.Sleep(2 * time.Second) // settled: logged in, caches warm

		// WhatsApp → owner.
		idle, stop := memWatch(b, pid)
		m := e.mark()
		t0 := time.Now()
		e.waMedia("BIG1", "document", "application/pdf", "big.pdf", "", doc, 100<<20, 0)
		file := e.fileMessage(m, 10*time.Minute)
		inTime := time.Since(t0)
		inPeak, inAnon := stop()
		if got := downloadSum(b, e, file.Body()); got != docSum {
			b.Fatalf("the owner's copy of the document differs")
		}

		// Owner → WhatsApp.
		put, get, h := e.ownerSlot("big.pdf", "application/pdf", 100<<20)
		f, err := os.Open(doc)
		if err != nil {
			b.Fatal(err)
		}
		e.put(put, h, "application/pdf", 100<<20, bufio.NewReader(f))
		f.Close()
		idle2, stop := memWatch(b, pid)
		m = e.mark()
		t0 = time.Now()
		e.sendFile(get)
		a := e.action(m, 10*time.Minute, "send_media of the document", func(a simwa.Action) bool { return a.Type == "send_media" })
		outTime := time.Since(t0)
		outPeak, outAnon := stop()
		if a.Media.SHA256 != docSum {
			b.Fatalf("WhatsApp's copy of the document differs")
		}

		// 20 MB video: through the bridge, then a plain PUT.
		m = e.mark()
		t0 = time.Now()
		e.waMedia("VID20", "video", "video/mp4", "", "", video, 20<<20, 10*time.Second)
		e.fileMessage(m, 5*time.Minute)
		viaBridge := time.Since(t0)
		put, _, h = e.ownerSlot("video.mp4", "video/mp4", 20<<20)
		f, err = os.Open(video)
		if err != nil {
			b.Fatal(err)
		}
		t0 = time.Now()
		e.put(put, h, "video/mp4", 20<<20, f)
		plain := time.Since(t0)
		f.Close()

		mib := func(kb float64) float64 { return kb / 1024 }
		b.ReportMetric(mib(idle), "idle-RSS-MiB")
		b.ReportMetric(mib(inPeak-idle), "doc-in-peak-RSS-growth-MiB")
		b.ReportMetric(mib(inAnon.peak-inAnon.idle), "doc-in-RssAnon-growth-MiB")
		b.ReportMetric(mib(outPeak-idle2), "doc-out-peak-RSS-growth-MiB")
		b.ReportMetric(mib(outAnon.peak-outAnon.idle), "doc-out-RssAnon-growth-MiB")
		b.ReportMetric(inTime.Seconds(), "doc-in-s")
		b.ReportMetric(outTime.Seconds(), "doc-out-s")
		b.ReportMetric(viaBridge.Seconds(), "video-bridge-s")
		b.ReportMetric(plain.Seconds(), "video-put-s")
		b.ReportMetric(viaBridge.Seconds()/plain.Seconds(), "video-ratio")
		b.Logf("100 MB document in %v (peak RSS +%.1f MiB), out %v (+%.1f MiB); 20 MB video %v through the bridge, %v by a plain PUT",
			inTime.Round(time.Millisecond), mib(inPeak-idle), outTime.Round(time.Millisecond), mib(outPeak-idle2), viaBridge.Round(time.Millisecond), plain.Round(time.Millisecond))
	}
}

// randomFile writes size bytes (prefix, then pseudo-random: nothing
// compresses) and returns its path and SHA-256 (hex).
func randomFile(tb testing.TB, path string, size int64, prefix string) (string, string) {
	tb.Helper()
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	h := sha256.New()
	w := io.MultiWriter(f, h)
	w.Write([]byte(prefix))
	rng := mrand.NewChaCha8([32]byte{1})
	if _, err := io.CopyN(w, rng, size-int64(len(prefix))); err != nil {
		tb.Fatal(err)
	}
	if err := f.Close(); err != nil {
		tb.Fatal(err)
	}
	return path, hex.EncodeToString(h.Sum(nil))
}

func downloadSum(tb testing.TB, e *simEnv, url string) string {
	tb.Helper()
	resp, err := e.httpClient().Get(url)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	h := sha256.New()
	if _, err := io.Copy(h, resp.Body); err != nil {
		tb.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

type anonPeak struct{ idle, peak float64 }

// memWatch resets the process's peak RSS and samples RssAnon until stop,
// which returns the peak RSS (VmHWM) and the RssAnon seen, in kB.
func memWatch(tb testing.TB, pid int) (idle float64, stop func() (float64, anonPeak)) {
	tb.Helper()
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0); err != nil {
		tb.Fatalf("reset peak RSS: %v", err)
	}
	idle = rss(tb, pid, "VmRSS")
	a := anonPeak{idle: rss(tb, pid, "RssAnon")}
	a.peak = a.idle
	done := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	wg.Go(func() {
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				v, ok := procField(pid, "RssAnon")
				if !ok {
					continue
				}
				mu.Lock()
				a.peak = max(a.peak, v)
				mu.Unlock()
			}
		}
	})
	return idle, func() (float64, anonPeak) {
		close(done)
		wg.Wait()
		return rss(tb, pid, "VmHWM"), a
	}
}

// procField is rss without failing (for a sampling goroutine).
func procField(pid int, field string) (float64, bool) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, false
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb, err == nil
		}
	}
	return 0, false
}
