package store

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	waAdv "go.mau.fi/whatsmeow/proto/waAdv"
	"go.mau.fi/whatsmeow/types"
)

func TestMain(m *testing.M) {
	if path := os.Getenv("WAXMPP_CRASH_CHILD"); path != "" {
		crashChild(path, os.Getenv("WAXMPP_CRASH_ROUND"))
		return
	}
	os.Exit(m.Run())
}

// checkInvariants checks what must hold in every file, even right after a
// crash: bbolt's own page check, every record decodes, references resolve.
func checkInvariants(db *DB) error {
	return db.bolt.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			return fmt.Errorf("bbolt check: %w", err)
		}
		chats, aliases, handles := tx.Bucket(bucketChats), tx.Bucket(bucketAliases), tx.Bucket(bucketHandles)
		err := chats.ForEach(func(k, v []byte) error {
			c, err := decodeChat(bucketChats, k, v)
			if err != nil {
				return err
			}
			if owner := handles.Get([]byte(c.Handle)); string(owner) != c.ID {
				return fmt.Errorf("chat %s has handle %q, which belongs to %q", k, c.Handle, owner)
			}
			if aliases.Get(k) != nil {
				return fmt.Errorf("%s is both a chat and an alias", k)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, b := range []*bolt.Bucket{aliases, handles} {
			err := b.ForEach(func(k, v []byte) error {
				if chats.Get(v) == nil {
					return fmt.Errorf("%q points to %q, which is not a chat", k, v)
				}
				return nil
			})
			if err != nil {
				return err
			}
		}
		qs := tx.Bucket(bucketQueues)
		err = qs.ForEachBucket(func(name []byte) error {
			q := qs.Bucket(name)
			var last uint64
			return q.ForEach(func(k, v []byte) error {
				seq, ok := keySeq(k)
				if !ok || seq <= last || seq > q.Sequence() {
					return fmt.Errorf("queue %s: key %x after %d (sequence %d)", name, k, last, q.Sequence())
				}
				last = seq
				return nil
			})
		})
		if err != nil {
			return err
		}
		err = tx.Bucket(bucketSettings).ForEach(func(k, v []byte) error {
			_, err := decodeSetting(k, v)
			return err
		})
		if err != nil {
			return err
		}
		// Every record decodes under a seq the sequence gave, and the
		// index finds it by each of its ids.
		msgs := tx.Bucket(bucketMsgmap)
		ix := db.msgs
		ix.mu.RLock()
		defer ix.mu.RUnlock()
		n := 0
		err = msgs.ForEach(func(k, v []byte) error {
			seq, ok := keySeq(k)
			if !ok || seq > msgs.Sequence() {
				return fmt.Errorf("message map: key %x (sequence %d)", k, msgs.Sequence())
			}
			m, err := decodeMessage(bucketMsgmap, k, v)
			if err != nil {
				return err
			}
			n++
			if m.WA.ID != "" && !slices.Contains(ix.wa.seqs(nil, ix.hash(m.WA.ID)), seq) {
				return fmt.Errorf("message map: %d not indexed by WhatsApp id %q", seq, m.WA.ID)
			}
			for _, id := range []string{m.XMPPID, roomKey(m)} {
				if id != "" && !slices.Contains(ix.xmpp.seqs(nil, ix.hash(id)), seq) {
					return fmt.Errorf("message map: %d not indexed by XMPP id %q", seq, id)
				}
			}
			if _, found := slices.BinarySearch(ix.chats[chatKey(m.WA.Chat)], seq); !found {
				return fmt.Errorf("message map: %d not indexed by chat %q", seq, m.WA.Chat)
			}
			return nil
		})
		if err != nil {
			return err
		}
		indexed := 0
		for _, s := range ix.chats {
			indexed += len(s)
		}
		if indexed != n {
			return fmt.Errorf("message map: %d records, %d indexed by chat", n, indexed)
		}
		return nil
	})
}

// crashChild writes to the file at path from several goroutines until it is
// killed, printing each write once it is acknowledged (and, for acks, the
// intent before it is made). Lines:
//
//	Q seq tag len        enqueued tag+len×"x"
//	a seq / A seq        about to ack / acked through seq
//	C id handle          chat put
//	L alias id           alias added
//	M xmpp chat wa       message mapped
//	P n                  setting "counter" set to n
func crashChild(path, round string) {
	db, err := Open(path, Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var mu sync.Mutex
	say := func(format string, args ...any) {
		mu.Lock()
		fmt.Fprintf(os.Stdout, format+"\n", args...)
		mu.Unlock()
	}
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(3)
	}
	say("ready")
	r, _ := strconv.ParseInt(round, 10, 64)
	counter := r * 1_000_000 // settings only grow, across rounds too
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(w)))
			q := db.Queue("q")
			for i := 0; ; i++ {
				tag := fmt.Sprintf("r%s.w%d.i%d", round, w, i)
				switch rng.IntN(5) {
				case 0:
					n := 1 + rng.IntN(20)
					var data [][]byte
					var lens []int
					for j := range n {
						l := rng.IntN(5000)
						lens = append(lens, l)
						data = append(data, []byte(fmt.Sprintf("%s.%d", tag, j)+strings.Repeat("x", l)))
					}
					seqs, err := q.Enqueue(data...)
					if err != nil {
						fail(err)
					}
					for j, s := range seqs {
						say("Q %d %s.%d %d", s, tag, j, lens[j])
					}
					if rng.IntN(3) == 0 && seqs[0] > 10 {
						through := seqs[0] - uint64(rng.IntN(10))
						say("a %d", through)
						if err := q.AckThrough(through); err != nil {
							fail(err)
						}
						say("A %d", through)
					}
				case 1:
					pn, lid := "pn-"+tag, "lid-"+tag
					c, err := db.PutChat(Chat{ID: pn, Kind: KindDirect, Name: []string{"Alice", "Bob", "Ča", ""}[rng.IntN(4)]})
					if err != nil {
						fail(err)
					}
					say("C %s %s", pn, c.Handle)
					if rng.IntN(2) == 0 {
						c, err := db.PutChat(Chat{ID: lid, Kind: KindDirect, Name: "Alice"})
						if err != nil {
							fail(err)
						}
						say("C %s %s", lid, c.Handle)
					}
					if err := db.AddAlias(pn, lid); err != nil {
						fail(err)
					}
					say("L %s %s", lid, pn)
				case 2:
					var ms []Message
					for j := range 1 + rng.IntN(30) {
						ms = append(ms, Message{WA: MessageKey{Chat: "chat" + strconv.Itoa(rng.IntN(5)), Sender: "s", ID: fmt.Sprintf("W%s.%d", tag, j)}, XMPPID: fmt.Sprintf("X%s.%d", tag, j), Excerpt: tag, Time: time.Now()})
					}
					if err := db.PutMessages(ms...); err != nil {
						fail(err)
					}
					for _, m := range ms {
						say("M %s %s %s", m.XMPPID, m.WA.Chat, m.WA.ID)
					}
				case 3:
					mu.Lock()
					counter++
					n := counter
					mu.Unlock()
					if err := PutSetting(db, "counter"+strconv.Itoa(w), n); err != nil {
						fail(err)
					}
					say("P %d %d", w, n)
				case 4:
					if _, err := db.Chats(); err != nil {
						fail(err)
					}
				}
			}
		}()
	}
	wg.Wait()
}

// TestCrash SIGKILLs a writing child process at random moments, many times,
// and checks after each reopen that every invariant holds and nothing the
// child saw acknowledged is missing.
func TestCrash(t *testing.T) {
	rounds := 30
	if testing.Short() {
		rounds = 8
	}
	path := filepath.Join(t.TempDir(), "crash.db")
	type item struct {
		tag string
		n   int
	}
	queue := map[uint64]item{}
	var maxSeq, maxAckIntent uint64
	chats := map[string]string{}   // id → handle
	aliases := map[string]string{} // alias → canonical id
	msgs := map[string][2]string{} // xmpp id → chat, wa id
	settings := map[string]int64{}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	totalLines := 0
	for round := range rounds {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		if wrap := os.Getenv("WAXMPP_TEST_EXEC"); wrap != "" {
			// A cross-compiled test binary under qemu-user: the child
			// needs the emulator too (qemu passes exec to the host).
			cmd = exec.Command(wrap, os.Args[0], "-test.run=^$")
		}
		cmd.Env = append(os.Environ(), "WAXMPP_CRASH_CHILD="+path, "WAXMPP_CRASH_ROUND="+strconv.Itoa(round))
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			if errors.Is(err, syscall.ENOEXEC) {
				t.Fatalf("%v: under qemu-user, set WAXMPP_TEST_EXEC=qemu-arm-static (or the emulator for %s)", err, runtime.GOARCH)
			}
			t.Fatal(err)
		}
		lines := make(chan []string, 1)
		first := make(chan struct{})
		go func() {
			var ls []string
			r := bufio.NewReader(out)
			for {
				l, err := r.ReadString('\n')
				if err != nil { // a line cut by the kill is not acknowledged
					lines <- ls
					return
				}
				if len(ls) == 0 {
					close(first)
				}
				ls = append(ls, strings.TrimSuffix(l, "\n"))
			}
		}()
		// Kill at a random moment: in one round of four at any time (maybe
		// during Open), otherwise while writing. Waiting for the first
		// acknowledged write keeps this meaningful where start-up is slow
		// (the ARM binary under qemu-user takes most of a second).
		if round%4 != 0 {
			select {
			case <-first:
			case <-time.After(30 * time.Second):
			}
		}
		time.Sleep(time.Duration(rng.IntN(300)) * time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		ls := <-lines
		err = cmd.Wait()
		if ee := (*exec.ExitError)(nil); !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Fatalf("round %d: child ended with %v, not by our kill; stderr:\n%s", round, err, stderr.String())
		}
		totalLines += len(ls)
		roundMin := maxSeq
		for _, l := range ls {
			f := strings.Fields(l)
			switch f[0] {
			case "Q":
				seq, _ := strconv.ParseUint(f[1], 10, 64)
				n, _ := strconv.Atoi(f[3])
				if seq <= roundMin {
					t.Fatalf("round %d: seq %d reused (max before this run %d)", round, seq, roundMin)
				}
				queue[seq] = item{f[2], n}
				maxSeq = max(maxSeq, seq)
			case "a":
				seq, _ := strconv.ParseUint(f[1], 10, 64)
				maxAckIntent = max(maxAckIntent, seq)
			case "C":
				chats[f[1]] = f[2]
			case "L":
				aliases[f[1]] = f[2]
			case "M":
				msgs[f[1]] = [2]string{f[2], f[3]}
			case "P":
				n, _ := strconv.ParseInt(f[2], 10, 64)
				settings[f[1]] = max(settings[f[1]], n)
			}
		}

		db, err := Open(path, Options{})
		if err != nil {
			t.Fatalf("round %d: reopen: %v", round, err)
		}
		if err := checkInvariants(db); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		items, err := db.Queue("q").Peek(0, 1<<30)
		if err != nil {
			t.Fatal(err)
		}
		have := map[uint64][]byte{}
		for _, it := range items {
			have[it.Seq] = it.Data
			maxSeq = max(maxSeq, it.Seq) // committed but not printed: still never reuse
		}
		for seq, it := range queue {
			if seq <= maxAckIntent {
				delete(queue, seq)
				continue
			}
			want := it.tag + strings.Repeat("x", it.n)
			if got, ok := have[seq]; !ok || string(got) != want {
				t.Fatalf("round %d: acknowledged item %d: got %d bytes (present %v), want %d", round, seq, len(got), ok, len(want))
			}
		}
		for id, h := range chats {
			c, err := db.Chat(id)
			if err != nil {
				t.Fatalf("round %d: acknowledged chat %s: %v", round, id, err)
			}
			if canon, ok := aliases[id]; ok && c.ID != canon {
				t.Fatalf("round %d: alias %s resolves to %s, want %s", round, id, c.ID, canon)
			}
			if hc, err := db.ChatByHandle(h); err != nil || hc.ID != c.ID {
				t.Fatalf("round %d: handle %s of %s: %s, %v", round, h, id, hc.ID, err)
			}
		}
		for alias, id := range aliases {
			if c, err := db.Chat(alias); err != nil || c.ID != id {
				t.Fatalf("round %d: alias %s: %s, %v; want %s", round, alias, c.ID, err, id)
			}
		}
		for x, wa := range msgs {
			m, err := db.MessageByXMPP(x)
			if err != nil || m.WA.Chat != wa[0] || m.WA.ID != wa[1] {
				t.Fatalf("round %d: message %s: %+v, %v", round, x, m, err)
			}
			if m, err := db.MessageByWA(MessageKey{Chat: wa[0], Sender: "s", ID: wa[1]}); err != nil || m.XMPPID != x {
				t.Fatalf("round %d: message %s by WhatsApp key: %+v, %v", round, wa[1], m, err)
			}
		}
		for w, n := range settings {
			if got, _, err := GetSetting[int64](db, "counter"+w); err != nil || got < n {
				t.Fatalf("round %d: setting counter%s = %d, %v; want >= %d", round, w, got, err, n)
			}
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%d rounds, %d acknowledged writes checked", rounds, totalLines)
	if totalLines < rounds {
		t.Errorf("children acknowledged only %d writes in %d rounds; the test checks little", totalLines, rounds)
	}
}

// writeBytes is this process's bytes sent to the storage layer so far.
func writeBytes(b *testing.B) int64 {
	raw, err := os.ReadFile("/proc/self/io")
	if err != nil {
		b.Fatal(err)
	}
	for _, l := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(l, "write_bytes: "); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			return n
		}
	}
	b.Fatal("no write_bytes in /proc/self/io")
	return 0
}

// fillMessages maps n messages in bursts of 100, with random-looking ids
// as WhatsApp and XMPP clients make them.
func fillMessages(tb testing.TB, db *DB, n int, t0 time.Time) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < n; {
		var ms []Message
		for ; len(ms) < 100 && i < n; i++ {
			ms = append(ms, relayMessage(rng, i, t0.Add(time.Duration(i)*time.Second)))
		}
		if err := db.PutMessages(ms...); err != nil {
			tb.Fatal(err)
		}
	}
}

func relayMessage(rng *rand.Rand, i int, t time.Time) Message {
	return Message{
		WA:      MessageKey{Chat: fmt.Sprintf("4917%07d@s.whatsapp.net", i%40), Sender: fmt.Sprintf("4917%07d@s.whatsapp.net", i%40), ID: fmt.Sprintf("3EB0%016X", rng.Uint64())},
		XMPPID:  fmt.Sprintf("%016x-%08x", rng.Uint64(), i),
		Excerpt: "see you at the station at eight, the train is late again",
		Time:    t,
	}
}

// BenchmarkRelay measures what the core's relay of one message costs on
// disk: one enqueue, one message map entry, one ack, done for bursts of
// messages at a time as the core does (a burst is one transaction each).
// The file already holds 20k mapped messages and 40 chats.
func BenchmarkRelay(b *testing.B) {
	payload := bytes.Repeat([]byte("<message to='owner@example.org' id='x'><body>see you at the station</body></message>"), 4) // ~370 bytes
	for _, burst := range []int{1, 10, 100} {
		b.Run(fmt.Sprint("burst=", burst), func(b *testing.B) {
			db, err := Open(filepath.Join(b.TempDir(), "w.db"), Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			t0 := time.Now()
			fillMessages(b, db, 20000, t0)
			q := db.Queue("xmpp-out")
			rng := rand.New(rand.NewPCG(3, 4))
			var parts [3]int64 // enqueue, map, ack
			commits0, w0 := db.group.commits.Load(), writeBytes(b)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				data := make([][]byte, burst)
				ms := make([]Message, burst)
				for j := range burst {
					data[j] = payload
					ms[j] = relayMessage(rng, i*burst+j, t0)
				}
				w := writeBytes(b)
				seqs, err := q.Enqueue(data...)
				if err != nil {
					b.Fatal(err)
				}
				w2 := writeBytes(b)
				if err := db.PutMessages(ms...); err != nil {
					b.Fatal(err)
				}
				w3 := writeBytes(b)
				if err := q.AckThrough(seqs[len(seqs)-1]); err != nil {
					b.Fatal(err)
				}
				w4 := writeBytes(b)
				parts[0] += w2 - w
				parts[1] += w3 - w2
				parts[2] += w4 - w3
			}
			b.StopTimer()
			msgs := float64(b.N * burst)
			b.ReportMetric(float64(writeBytes(b)-w0)/msgs, "diskB/msg")
			b.ReportMetric(float64(parts[0])/msgs, "enqB/msg")
			b.ReportMetric(float64(parts[1])/msgs, "mapB/msg")
			b.ReportMetric(float64(parts[2])/msgs, "ackB/msg")
			b.ReportMetric(float64(db.group.commits.Load()-commits0)/msgs, "commits/msg")
			b.ReportMetric(b.Elapsed().Seconds()*1e6/msgs, "µs/msg")
		})
	}
}

// BenchmarkConcurrentEnqueue shows the group committer at work: many
// goroutines each appending to a queue share commits.
func BenchmarkConcurrentEnqueue(b *testing.B) {
	db, err := Open(filepath.Join(b.TempDir(), "w.db"), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	c0 := db.group.commits.Load()
	var n int64
	var mu sync.Mutex
	b.SetParallelism(16)
	b.RunParallel(func(pb *testing.PB) {
		mu.Lock()
		n++
		w := n
		mu.Unlock()
		for i := 0; pb.Next(); i++ {
			if _, err := db.Queue("q").Enqueue(fmt.Append(nil, w, "-", i)); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(db.group.commits.Load()-c0)/float64(b.N), "commits/op")
}

// BenchmarkMessageMapSize maps 100k messages, prunes them all, maps 100k
// more: pruned pages are reused, so the file does not grow the second time.
func BenchmarkMessageMapSize(b *testing.B) {
	for i := 0; i < b.N; i++ {
		path := filepath.Join(b.TempDir(), "w.db")
		db, err := Open(path, Options{NoSync: true, MessageMaxAge: time.Hour})
		if err != nil {
			b.Fatal(err)
		}
		size := func() float64 {
			fi, err := os.Stat(path)
			if err != nil {
				b.Fatal(err)
			}
			return float64(fi.Size()) / 1e6
		}
		t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		fillMessages(b, db, 100000, t0)
		full := size()
		// What the index costs: the heap of a fresh open of the file,
		// and the time to read it.
		db.Close()
		var m0, m1 runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m0)
		t1 := time.Now()
		db, err = Open(path, Options{NoSync: true, MessageMaxAge: time.Hour})
		if err != nil {
			b.Fatal(err)
		}
		openTime := time.Since(t1)
		runtime.GC()
		runtime.ReadMemStats(&m1)
		b.ReportMetric(float64(m1.HeapAlloc-m0.HeapAlloc)/100000, "indexB/msg")
		b.ReportMetric(float64(openTime.Milliseconds()), "open-ms_100k")
		b.ReportMetric(full*1e6/100000, "fileB/msg")
		n, err := db.PruneMessages(t0.Add(100*24*time.Hour + 2*time.Hour))
		if err != nil || n != 100000 {
			b.Fatalf("pruned %d, %v; want 100000", n, err)
		}
		// Pruning frees pages; they are reused by the next writes.
		st := db.bolt.Stats()
		free := float64(st.FreePageN+st.PendingPageN) * float64(db.bolt.Info().PageSize) / 1e6
		pruned := size()
		fillMessages(b, db, 100000, t0.Add(200*24*time.Hour))
		refilled := size()
		db.Close()
		b.ReportMetric(full, "MB_100k")
		b.ReportMetric(free, "MBfree_pruned")
		b.ReportMetric(pruned, "MB_pruned")
		b.ReportMetric(refilled, "MB_refilled")
	}
}

// BenchmarkLookup100k looks up ids in a map of 100k messages: the oldest,
// and one that is not there (before schema 6 it walked every generation).
func BenchmarkLookup100k(b *testing.B) {
	db, err := Open(filepath.Join(b.TempDir(), "w.db"), Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	fillMessages(b, db, 100000, time.Now())
	rng := rand.New(rand.NewPCG(1, 2))
	first := relayMessage(rng, 0, time.Now())
	b.Run("oldest", func(b *testing.B) {
		for b.Loop() {
			if _, err := db.MessageByXMPP(first.XMPPID); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("miss", func(b *testing.B) {
		for b.Loop() {
			if _, err := db.MessageByWA(MessageKey{Chat: "c", Sender: "s", ID: "nope"}); !errors.Is(err, ErrNotFound) {
				b.Fatal(err)
			}
		}
	})
}

// TestReadOnlyDevices: a read-only open reads the linked device (waxmpp
// doctor, setup); before, the device store's first use tried to write and
// failed with "database is in read-only mode".
func TestReadOnlyDevices(t *testing.T) {
	path := filepath.Join(t.TempDir(), "waxmpp.db")
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	dev := db.Devices(nil).NewDevice()
	jid := types.NewADJID("491700000001", 0, 7)
	dev.ID = &jid
	dev.Account = &waAdv.ADVSignedDeviceIdentity{Details: []byte("d"), AccountSignature: make([]byte, 64),
		AccountSignatureKey: make([]byte, 32), DeviceSignature: make([]byte, 64)}
	if err := dev.Save(context.Background()); err != nil {
		t.Fatal(err)
	}
	db.Close()
	ro, err := Open(path, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	devs, err := ro.Devices(nil).GetAllDevices(context.Background())
	if err != nil || len(devs) != 1 || devs[0].ID.User != "491700000001" {
		t.Fatalf("read-only GetAllDevices: %d devices, %v", len(devs), err)
	}
}

// TestDevicesWriteNothing: a device container made on an open file (the
// bridge's /status checks make one) reads without a write transaction;
// before, its first use committed one, which an idle bridge must not.
func TestDevicesWriteNothing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "waxmpp.db")
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var meta [2]uint64
	db.bolt.View(func(tx *bolt.Tx) error { meta[0] = uint64(tx.ID()); return nil })
	db.Devices(nil).GetAllDevices(context.Background())
	db.bolt.View(func(tx *bolt.Tx) error { meta[1] = uint64(tx.ID()); return nil })
	if meta[0] != meta[1] {
		t.Errorf("reading the devices committed a transaction (txid %d → %d)", meta[0], meta[1])
	}
}
