package media

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fetchServer serves files on loopback over TLS; its CA is in the
// returned Fetcher.
func fetchServer(t *testing.T, h http.Handler) (*httptest.Server, *Fetcher) {
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the unknown-CA test's handshake errors
	srv.StartTLS()
	t.Cleanup(srv.Close)
	pool := srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	return srv, &Fetcher{Dir: t.TempDir(), MaxSize: 1 << 20, Timeout: 5 * time.Second, RootCAs: pool}
}

func leftovers(t *testing.T, dir string) {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(dir, "*"))
	if len(m) > 0 {
		t.Errorf("left in the temp dir: %v", m)
	}
}

func TestFetch(t *testing.T) {
	photo := readTestdata(t, "photo.jpg")
	big := make([]byte, 2<<20)
	mux := http.NewServeMux()
	mux.HandleFunc("/share/abc/Holiday%20photo.jpg", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream") // the bytes say better
		w.Write(photo)
	})
	mux.HandleFunc("/notes.md", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/markdown; charset=utf-8")
		w.Write([]byte("# hi\n"))
	})
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(len(big)))
		w.Write(big)
	})
	mux.HandleFunc("/big-chunked", func(w http.ResponseWriter, r *http.Request) {
		w.(http.Flusher).Flush() // no Content-Length: the cap must count
		for i := 0; i < len(big); i += 64 << 10 {
			w.Write(big[i : i+64<<10])
		}
	})
	mux.HandleFunc("/gone", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "gone", http.StatusGone) })
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("a"))
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	})
	mux.HandleFunc("/redir-same", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/share/abc/Holiday%20photo.jpg", http.StatusFound)
	})
	srv, f := fetchServer(t, mux)
	ctx := context.Background()

	got, err := f.Fetch(ctx, srv.URL+"/share/abc/Holiday%20photo.jpg")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(got.Path)
	if !bytes.Equal(b, photo) || got.Type != "image/jpeg" || got.Name != "Holiday photo.jpg" || got.Size != int64(len(photo)) {
		t.Errorf("got %+v (same bytes %v)", got, bytes.Equal(b, photo))
	}
	if filepath.Dir(got.Path) != f.Dir || !strings.HasPrefix(filepath.Base(got.Path), TempPrefix) {
		t.Errorf("temp file %s not in %s with prefix %s", got.Path, f.Dir, TempPrefix)
	}
	got.Remove()

	got, err = f.Fetch(ctx, srv.URL+"/redir-same")
	if err != nil || got.Type != "image/jpeg" {
		t.Errorf("redirect on the same host: %+v %v", got, err)
	}
	got.Remove()

	got, err = f.Fetch(ctx, srv.URL+"/notes.md")
	if err != nil || got.Type != "text/markdown" || got.Name != "notes.md" {
		t.Errorf("notes: %+v %v", got, err)
	}
	got.Remove()

	var tl *TooLargeError
	if _, err := f.Fetch(ctx, srv.URL+"/big"); !errors.As(err, &tl) || tl.Size != int64(len(big)) {
		t.Errorf("big: %v", err)
	}
	if _, err := f.Fetch(ctx, srv.URL+"/big-chunked"); !errors.As(err, &tl) || tl.Size != -1 {
		t.Errorf("big, chunked: %v", err)
	}
	var se *StatusError
	if _, err := f.Fetch(ctx, srv.URL+"/gone"); !errors.As(err, &se) || se.Code != 410 {
		t.Errorf("gone: %v", err)
	}
	f.Timeout = 300 * time.Millisecond
	start := time.Now()
	if _, err := f.Fetch(ctx, srv.URL+"/slow"); err == nil || time.Since(start) > 3*time.Second {
		t.Errorf("slow: %v after %v", err, time.Since(start))
	}
	leftovers(t, f.Dir)
}

func TestFetchRefuses(t *testing.T) {
	other := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("elsewhere")) }))
	defer other.Close()
	srv, f := fetchServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/x", http.StatusFound)
	}))
	ctx := context.Background()
	if _, err := f.Fetch(ctx, srv.URL+"/y"); !errors.Is(err, ErrRefusedURL) {
		t.Errorf("redirect to another host: %v", err)
	}
	for _, u := range []string{
		"http://example.org/x.jpg", "ftp://127.0.0.1/x", "file:///etc/passwd", "https:///x", "http://10.0.0.1/x",
		"gopher://127.0.0.1/", "aesgcm://h/x#00",
	} {
		if _, err := f.Fetch(ctx, u); !errors.Is(err, ErrRefusedURL) && !errors.Is(err, ErrBadAESGCM) {
			t.Errorf("Fetch(%s): %v", u, err)
		}
	}
	// The server's certificate is checked.
	g := &Fetcher{Dir: f.Dir}
	if _, err := g.Fetch(ctx, srv.URL+"/y"); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("unknown CA: %v", err)
	}
	leftovers(t, f.Dir)
}

func TestFetchPlainLoopback(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("plain")) }))
	defer srv.Close()
	f := &Fetcher{Dir: t.TempDir()}
	for _, u := range []string{srv.URL + "/a.txt", strings.Replace(srv.URL, "127.0.0.1", "localhost", 1) + "/a.txt"} {
		got, err := f.Fetch(context.Background(), u)
		if err != nil || got.Size != 5 || got.Type != "text/plain" {
			t.Errorf("%s: %+v %v", u, got, err)
		}
		got.Remove()
	}
}

func TestFetchAESGCM(t *testing.T) {
	plain := make([]byte, 300_000)
	rand.Read(plain)
	copy(plain, readTestdata(t, "voice.m4a"))
	key, iv := make([]byte, 32), make([]byte, 12)
	rand.Read(key)
	rand.Read(iv)
	ct := seal(t, key, iv, plain)
	bad := bytes.Clone(ct)
	bad[1000] ^= 1
	mux := http.NewServeMux()
	mux.HandleFunc("/f/voice.m4a", func(w http.ResponseWriter, r *http.Request) { w.Write(ct) })
	mux.HandleFunc("/f/bad.m4a", func(w http.ResponseWriter, r *http.Request) { w.Write(bad) })
	srv, f := fetchServer(t, mux)
	frag := hex.EncodeToString(iv) + hex.EncodeToString(key)
	u := "aesgcm://" + strings.TrimPrefix(srv.URL, "https://")
	got, err := f.Fetch(context.Background(), u+"/f/voice.m4a#"+frag)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(got.Path)
	if sha256.Sum256(b) != sha256.Sum256(plain) || got.Type != "audio/mp4" || got.Size != int64(len(plain)) || got.Name != "voice.m4a" {
		t.Errorf("got %+v", got)
	}
	got.Remove()
	if _, err := f.Fetch(context.Background(), u+"/f/bad.m4a#"+frag); !errors.Is(err, ErrBadTag) {
		t.Errorf("changed ciphertext: %v", err)
	}
	leftovers(t, f.Dir)
}

func TestSweep(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{TempPrefix + "1", TempPrefix + "2", "waxmpp.db"} {
		os.WriteFile(filepath.Join(dir, n), nil, 0o600)
	}
	n, err := Sweep(dir)
	if err != nil || n != 2 {
		t.Errorf("Sweep: %d %v", n, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "waxmpp.db")); err != nil {
		t.Error(fmt.Errorf("swept the state file: %w", err))
	}
}
