package whatsapp

import (
	"bufio"
	"bytes"
	"compress/zlib"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/proto/waCommon"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/proto/waHistorySync"
	"go.mau.fi/whatsmeow/proto/waWeb"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"waxmpp/bridge"
)

// writeSyntheticHistory writes a zlib-compressed ON_DEMAND history sync of
// at least size compressed bytes to w, record by record, the way the
// phone's blob is laid out (conversations holding messages). Message texts
// are random, so the blob barely compresses. It returns the message count.
func writeSyntheticHistory(t testing.TB, w io.Writer, size int64) int {
	cw := &countWriter{w: w}
	z, _ := zlib.NewWriterLevel(cw, zlib.BestSpeed)
	bw := bufio.NewWriter(z)
	rng := rand.New(rand.NewPCG(1, 2))
	raw := make([]byte, 1500)
	var b []byte
	b = protowire.AppendTag(b[:0], hsSyncType, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(waHistorySync.HistorySync_ON_DEMAND))
	bw.Write(b)
	msgs := 0
	for c := 0; cw.n < size; c++ {
		chat := fmt.Sprintf("4917%08d@s.whatsapp.net", c)
		var conv []byte
		conv = protowire.AppendTag(conv, convID, protowire.BytesType)
		conv = protowire.AppendString(conv, chat)
		for i := 0; i < 400; i++ {
			for j := range raw {
				raw[j] = byte(rng.Uint32())
			}
			wm := &waWeb.WebMessageInfo{
				Key:              &waCommon.MessageKey{RemoteJID: proto.String(chat), ID: proto.String(fmt.Sprintf("H%d-%d", c, i)), FromMe: proto.Bool(i%3 == 0)},
				Message:          &waE2E.Message{Conversation: proto.String(base64.StdEncoding.EncodeToString(raw))},
				MessageTimestamp: proto.Uint64(uint64(t0.Unix()) - uint64(i)),
			}
			hm, err := proto.Marshal(&waHistorySync.HistorySyncMsg{Message: wm, MsgOrderID: proto.Uint64(uint64(i))})
			if err != nil {
				t.Fatal(err)
			}
			conv = protowire.AppendTag(conv, convMessages, protowire.BytesType)
			conv = protowire.AppendBytes(conv, hm)
			msgs++
		}
		conv = protowire.AppendTag(conv, convName, protowire.BytesType)
		conv = protowire.AppendString(conv, fmt.Sprintf("Chat %d", c))
		b = protowire.AppendTag(b[:0], hsConversations, protowire.BytesType)
		b = protowire.AppendBytes(b, conv)
		bw.Write(b)
	}
	if err := bw.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := z.Close(); err != nil {
		t.Fatal(err)
	}
	return msgs
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// TestHistoryMemory processes a synthetic 50 MB history sync in a child
// process and checks its peak RSS stays under 150 MB (a Raspberry Pi has
// 512 MB and more to do).
func TestHistoryMemory(t *testing.T) {
	if path := os.Getenv("WAXMPP_HISTORY_CHILD"); path != "" {
		historyMemoryChild(t, path) // this process is the child
		return
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "history.zlib")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	const size = 50 << 20
	msgs := writeSyntheticHistory(t, f, size)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	exe := os.Getenv("WAXMPP_TEST_EXEC") // e.g. an ARM binary under qemu
	args := []string{"-test.run=^TestHistoryMemory$", "-test.v"}
	var cmd *exec.Cmd
	if exe != "" {
		cmd = exec.Command(exe, append([]string{os.Args[0]}, args...)...)
	} else {
		cmd = exec.Command(os.Args[0], args...)
	}
	cmd.Env = append(os.Environ(), "WAXMPP_HISTORY_CHILD="+path)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	var rss, got int64
	for _, line := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "history-child "); ok {
			fmt.Sscanf(v, "maxrss_kb=%d messages=%d", &rss, &got)
		}
	}
	if got != int64(msgs) {
		t.Fatalf("child relayed %d messages, want %d\n%s", got, msgs, out)
	}
	st, _ := os.Stat(path)
	t.Logf("history sync: %d MB compressed, %d messages; child peak RSS %d MB", st.Size()>>20, msgs, rss>>10)
	if rss > 150<<10 {
		t.Errorf("peak RSS %d MB, want ≤ 150 MB", rss>>10)
	}
}

// historyMemoryChild is TestHistoryMemory in its child process: it runs
// the adapter's history path (stream parse, ParseWebMessage, conversion,
// the durable inbox) on the file at path with a reader handling events
// like the core.
func historyMemoryChild(t *testing.T, path string) {
	h := newHarness(t, true)
	h.run()
	c := h.client()
	count := make(chan int)
	stop := make(chan struct{})
	go func() {
		n := 0
		for {
			select {
			case e := <-h.events:
				h.a.Handled(e)
				if m, ok := e.(*bridge.Message); ok && m.History {
					n++
				}
			case <-stop:
				count <- n
				return
			}
		}
	}()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	z, err := zlib.NewReader(bufio.NewReaderSize(f, 64<<10))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.a.readHistory(context.Background(), c, z, true); err != nil {
		t.Fatal(err)
	}
	// Let the drain goroutine empty the FIFO.
	for i := 0; i < 1000; i++ {
		if h.a.Pending() == 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	close(stop)
	n := <-count
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	fmt.Printf("history-child maxrss_kb=%d messages=%d\n", ru.Maxrss, n)
}

func TestReadHistoryErrors(t *testing.T) {
	var buf bytes.Buffer
	writeSyntheticHistory(t, &buf, 1)
	zr, _ := zlib.NewReader(bytes.NewReader(buf.Bytes()))
	full, _ := io.ReadAll(zr)
	n := 0
	if _, err := readHistory(bytes.NewReader(full), historySink{message: func(string, *waWeb.WebMessageInfo) { n++ }}); err != nil || n != 400 {
		t.Fatalf("whole blob: %d messages, %v", n, err)
	}
	// A truncated blob is an error, never a panic or a hang.
	for _, cut := range []int{1, 5, 100, len(full) / 2, len(full) - 1} {
		if _, err := readHistory(bytes.NewReader(full[:cut]), historySink{}); err == nil {
			t.Errorf("cut at %d: no error", cut)
		}
	}
	if _, err := readHistory(strings.NewReader(strconv.Itoa(7)), historySink{}); err == nil {
		t.Error("garbage: no error")
	}
}
