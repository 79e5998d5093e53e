package xmpp

import (
	"crypto/tls"
	"fmt"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	goxmpp "github.com/xmppo/go-xmpp"

	pt "waxmpp/bridge/prosodytest"
	"waxmpp/bridge/store"
)

// relayRun is what one run measured: the owner receiving n messages.
type relayRun struct {
	rate      float64 // messages per second, first send to last receive
	latencies []time.Duration
	allocs    float64 // heap allocations per message in this process
}

// measure sends n messages with send(i) (which records its own send time
// in sent[i]) and waits for the owner to receive them all. The body of
// message i starts with "#i ".
func measure(b *testing.B, owner *pt.Client, n int, send func(i int) error, sent []time.Time) relayRun {
	b.Helper()
	var ms0, ms1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms0)
	start := time.Now()
	errc := make(chan error, 1)
	go func() {
		for i := range n {
			if err := send(i); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	lat := make([]time.Duration, 0, n)
	got := make([]bool, n)
	for len(lat) < n {
		e, err := owner.Wait(60*time.Second, pt.Messages)
		if err != nil {
			b.Fatalf("owner received %d of %d: %v", len(lat), n, err)
		}
		num, _, _ := strings.Cut(strings.TrimPrefix(e.Body(), "#"), " ")
		i, err := strconv.Atoi(num)
		if err != nil || i < 0 || i >= n || got[i] {
			continue // a resent duplicate, or not ours
		}
		got[i] = true
		lat = append(lat, e.Received.Sub(sent[i]))
	}
	elapsed := time.Since(start)
	if err := <-errc; err != nil {
		b.Fatal(err)
	}
	runtime.ReadMemStats(&ms1)
	return relayRun{rate: float64(n) / elapsed.Seconds(), latencies: lat, allocs: float64(ms1.Mallocs-ms0.Mallocs) / float64(n)}
}

func percentile(d []time.Duration, p float64) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[int(float64(len(s)-1)*p)]
}

// BenchmarkRelayToOwner: on each server with its default throttle on
// (Prosody's mod_limits, 10 kB/s; ejabberd's shaper, 3,000 B/s), the owner
// receives N messages sent through a Session (durable bbolt outbox, the
// default pace ceiling and ping settings, ping-confirmed), and, in the same
// run through the same server under the same throttle, N sent by a direct
// go-xmpp client. Reported: both rates, their ratio, p50/p99
// send→receive latency of both, and allocations per message in this
// process for each (the owner's parsing is in both, so the difference is
// the bridge's cost).
func BenchmarkRelayToOwner(b *testing.B) {
	for _, kind := range pt.Kinds {
		b.Run(string(kind), func(b *testing.B) { benchRelay(b, kind) })
	}
}

func benchRelay(b *testing.B, kind pt.Kind) {
	// About 45 s of the slower server's rate per side.
	n := 1500
	if kind == pt.Ejabberd {
		n = 500
	}
	srv := pt.Start(b, pt.Options{Kind: kind, Limits: true})
	owner := srv.Dial(b, "owner")
	body := strings.Repeat("lorem ipsum ", 8)

	db, err := store.Open(filepath.Join(b.TempDir(), "waxmpp.db"), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	cfg := botConfig(b, srv)
	cfg.Rate, cfg.Burst = 0, 0 // the defaults
	cfg.PingInterval, cfg.PingTimeout = 0, 0
	cfg.Outbox = db.Queue("bench-out")
	s := startSession(b, cfg)

	direct, err := goxmpp.Options{
		Host: srv.Addr(), User: srv.JID("stranger"), Password: pt.Password("stranger"),
		NoTLS: true, StartTLS: true, Resource: "bench",
		Mechanism: "SCRAM-SHA-1", // ejabberd 23.01 refuses go-xmpp's -PLUS
		TLSConfig: &tls.Config{RootCAs: roots(b, srv), ServerName: pt.Domain},
	}.NewClient()
	if err != nil {
		b.Fatal(err)
	}
	defer direct.Close()
	go func() { // go-xmpp needs its stream read
		for {
			if _, err := direct.Recv(); err != nil {
				return
			}
		}
	}()

	for range b.N {
		sent := make([]time.Time, n)
		d := measure(b, owner, n, func(i int) error {
			sent[i] = time.Now()
			_, err := direct.Send(goxmpp.Chat{Remote: srv.JID("owner"), Type: "chat", Text: fmt.Sprintf("#%d %s", i, body)})
			return err
		}, sent)

		// The bridge gets bursts as the core will hand them over: up to
		// 100 messages per durable write (one fsync).
		sent = make([]time.Time, n)
		const burst = 100
		batch := make([]Message, 0, burst)
		w := measure(b, owner, n, func(i int) error {
			sent[i] = time.Now()
			batch = append(batch, Message{Body: fmt.Sprintf("#%d %s", i, body)})
			if len(batch) == burst || i == n-1 {
				_, err := s.SendBatch(batch)
				batch = batch[:0]
				return err
			}
			return nil
		}, sent)
		// Unloaded latency: one message at a time, each waited for.
		const one = 50
		oneLat := func(send func(i int) error) time.Duration {
			var lat []time.Duration
			for i := range one {
				t0 := time.Now()
				if err := send(i); err != nil {
					b.Fatal(err)
				}
				if _, err := owner.Wait(10*time.Second, pt.Messages); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(t0))
			}
			return percentile(lat, 0.5)
		}
		dOne := oneLat(func(i int) error {
			_, err := direct.Send(goxmpp.Chat{Remote: srv.JID("owner"), Type: "chat", Text: fmt.Sprintf("#%d %s", i, body)})
			return err
		})
		wOne := oneLat(func(i int) error {
			_, err := s.Send(Message{Body: fmt.Sprintf("#%d %s", i, body)})
			return err
		})
		b.ReportMetric(float64(dOne.Microseconds())/1000, "direct-single-p50-ms")
		b.ReportMetric(float64(wOne.Microseconds())/1000, "bridge-single-p50-ms")
		b.ReportMetric(d.rate, "direct-msg/s")
		b.ReportMetric(w.rate, "bridge-msg/s")
		b.ReportMetric(w.rate/d.rate, "ratio")
		b.ReportMetric(float64(percentile(d.latencies, 0.5).Microseconds())/1000, "direct-p50-ms")
		b.ReportMetric(float64(percentile(d.latencies, 0.99).Microseconds())/1000, "direct-p99-ms")
		b.ReportMetric(float64(percentile(w.latencies, 0.5).Microseconds())/1000, "bridge-p50-ms")
		b.ReportMetric(float64(percentile(w.latencies, 0.99).Microseconds())/1000, "bridge-p99-ms")
		b.ReportMetric(d.allocs, "direct-allocs/msg")
		b.ReportMetric(w.allocs, "bridge-allocs/msg")
	}
	waitFor(b, 30*time.Second, "outbox confirmed", func() bool { l, _ := cfg.Outbox.Len(); return l == 0 })
}
