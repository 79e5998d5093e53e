//go:build simwa

package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// fileWrites counts what the binary hands the kernel for one file: the
// bytes of its pwrite64 calls and its fdatasync calls, logged by strace
// running it (envOptions.traceWrites). /proc/PID/io's write_bytes counts
// the page cache's folios that the writes dirtied instead (on this
// kernel one 4,096-byte pwrite64 can count 16 KiB or more), which says
// little about what bbolt wrote. bbolt writes the state file only with
// pwrite64 (File.WriteAt) and syncs it with fdatasync. strace's
// seccomp-bpf filter stops the binary at those calls only, so its pace
// barely changes; still only the disk benchmark runs it, never the
// throughput one.
type fileWrites struct {
	log string
}

// wrap is cmd run by strace, which follows its threads and logs their
// writes and syncs to w.log, each with its file's path.
func (w *fileWrites) wrap(tb testing.TB, cmd *exec.Cmd) *exec.Cmd {
	tb.Helper()
	bin, err := exec.LookPath("strace")
	if err != nil {
		tb.Fatalf("the disk benchmark counts the state file's writes with strace: %v (Debian: strace)", err)
	}
	args := []string{"-f", "--seccomp-bpf", "-qq", "-e", "trace=pwrite64,fdatasync", "-e", "status=successful",
		"-y", "-s", "0", "-A", "-o", w.log, "--", cmd.Path}
	return exec.Command(bin, append(args, cmd.Args[1:]...)...)
}

// tracee is the pid of strace's child: the binary. strace first forks
// children of its own that test what the kernel offers (seccomp-bpf);
// those still run strace's executable, the binary's child has exec'd.
func tracee(tb testing.TB, strace int) int {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	self, _ := os.Readlink(filepath.Join("/proc", strconv.Itoa(strace), "exe"))
	for {
		raw, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(strace), "task", strconv.Itoa(strace), "children"))
		for _, f := range strings.Fields(string(raw)) {
			pid, err := strconv.Atoi(f)
			if err != nil {
				tb.Fatal(err)
			}
			if exe, err := os.Readlink(filepath.Join("/proc", f, "exe")); err == nil && exe != self {
				return pid
			}
		}
		if time.Now().After(deadline) {
			tb.Fatalf("strace (pid %d) started no binary within 10s", strace)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// traceCall is one line of strace's log: a call, or the start of one
// (<unfinished ...>), or its end (<... pwrite64 resumed>).
var traceCall = regexp.MustCompile(`^(\d+)\s+(?:(pwrite64|fdatasync)\((\d+)<([^>]*)>.*?|<\.\.\. (pwrite64|fdatasync) resumed>.*?)(?:= (\d+)|<unfinished \.\.\.>)\s*$`)

// count is the bytes written to path and its fdatasyncs so far.
func (w *fileWrites) count(tb testing.TB, path string) (written, syncs int64) {
	tb.Helper()
	raw, err := os.ReadFile(w.log)
	if err != nil {
		tb.Fatal(err)
	}
	return countWrites(raw, path)
}

// countWrites reads a strace log: the bytes pwrite64 wrote to path and
// the fdatasyncs of it. With several threads a call may be split over
// two lines; the thread's pending call says which file the end is for. A
// last line still being written is left for the next count.
func countWrites(log []byte, path string) (written, syncs int64) {
	open := map[string]bool{} // thread → its unfinished call is on path
	for len(log) > 0 {
		i := bytes.IndexByte(log, '\n')
		if i < 0 {
			break
		}
		line := string(log[:i])
		log = log[i+1:]
		m := traceCall.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		tid, call, file, res := m[1], m[2], m[4], m[6]
		if call == "" { // resumed
			call = m[5]
			if !open[tid] {
				continue
			}
			delete(open, tid)
		} else if file != path {
			continue
		} else if res == "" && strings.HasSuffix(line, "<unfinished ...>") {
			open[tid] = true
			continue
		}
		n, err := strconv.ParseInt(res, 10, 64)
		if err != nil {
			continue
		}
		if call == "pwrite64" {
			written += n
		} else {
			syncs++
		}
	}
	return written, syncs
}

// TestCountWrites: strace's lines for the state file count, split calls
// included; other files, failed calls and a last line cut short do not.
func TestCountWrites(t *testing.T) {
	const log = `101 pwrite64(7</s/waxmpp.db>, ""..., 4096, 8192) = 4096
101 fdatasync(7</s/waxmpp.db>) = 0
102 pwrite64(9</s/other.log>, ""..., 512, 0) = 512
103 pwrite64(7</s/waxmpp.db>, ""..., 8192, 12288 <unfinished ...>
102 pwrite64(9</s/other.log>, ""..., 100, 512 <unfinished ...>
101 fdatasync(7</s/waxmpp.db> <unfinished ...>
103 <... pwrite64 resumed>) = 8192
102 <... pwrite64 resumed>) = 100
101 <... fdatasync resumed>) = 0
104 pwrite64(7</s/waxmpp.db>, ""..., 4096, 0) = 40`
	written, syncs := countWrites([]byte(log), "/s/waxmpp.db")
	if written != 4096+8192 || syncs != 2 {
		t.Errorf("got %d bytes, %d syncs; want %d, 2", written, syncs, 4096+8192)
	}
	written, _ = countWrites([]byte(log+"\n"), "/s/waxmpp.db")
	if written != 4096+8192+40 {
		t.Errorf("with the last line ended: %d bytes, want %d", written, 4096+8192+40)
	}
}
