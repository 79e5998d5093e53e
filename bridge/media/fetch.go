package media

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"waxmpp/bridge"
)

// Fetcher downloads the files the owner's client uploaded and sends as a
// link: https only (http only to a loopback address, where tests run),
// capped in size and time, never following a redirect to another host,
// streamed into a temporary file in Dir.
type Fetcher struct {
	Dir     string        // where temporary files go: beside the state file
	MaxSize int64         // bytes; 0: DefaultMaxSize
	Timeout time.Duration // for the whole download; 0: DefaultTimeout
	RootCAs *x509.CertPool
}

// Defaults for a Fetcher. WhatsApp takes documents up to 2 GB, but a Pi's
// SD card and uplink make 100 MB a sane default.
const (
	DefaultMaxSize = 100 << 20
	DefaultTimeout = 10 * time.Minute
)

// File is a downloaded or converted file in a temporary place. Remove it
// when done.
type File struct {
	Path string
	Name string // the name it had (URL path, WhatsApp's file name); may be ""
	Type string // MIME type (base type)
	Size int64
}

// Remove deletes the file; a file already gone is no error.
func (f *File) Remove() error {
	if f == nil || f.Path == "" {
		return nil
	}
	if err := os.Remove(f.Path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// TooLargeError is a file over a size limit.
type TooLargeError struct {
	Size  int64 // -1 when unknown (the server did not say; the download passed the limit)
	Limit int64
}

// Unwrap makes the error bridge.ErrFetchTooLarge.
func (e *TooLargeError) Unwrap() error { return bridge.ErrFetchTooLarge }

func (e *TooLargeError) Error() string {
	if e.Size < 0 {
		return fmt.Sprintf("media: file is larger than the limit of %d bytes", e.Limit)
	}
	return fmt.Sprintf("media: file is %d bytes, more than the limit of %d", e.Size, e.Limit)
}

// StatusError is an HTTP answer other than 200.
type StatusError struct {
	Code   int
	Status string
}

func (e *StatusError) Error() string { return "media: the server answered " + e.Status }

// HTTPStatus is the status code (the core tells 4xx, which trying again
// does not mend, from the rest).
func (e *StatusError) HTTPStatus() int { return e.Code }

// ErrRefusedURL means a URL waxmpp will not fetch (scheme, host).
var ErrRefusedURL = fmt.Errorf("media: refusing to fetch this URL: %w", bridge.ErrBadURL)

// Fetch downloads raw (https://, aesgcm://, or http:// to loopback) into a
// temporary file. Its type is what the bytes say, else the server's
// Content-Type, else the name's extension.
func (f *Fetcher) Fetch(ctx context.Context, raw string) (*File, error) {
	var enc *AESGCM
	target := raw
	if strings.HasPrefix(strings.ToLower(raw), "aesgcm:") {
		a, err := ParseAESGCM(raw)
		if err != nil {
			return nil, err
		}
		enc, target = &a, a.URL
	}
	u, err := url.Parse(target)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRefusedURL, err)
	}
	if err := AllowedURL(u); err != nil {
		return nil, err
	}
	timeout := f.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	limit := f.MaxSize
	if limit <= 0 {
		limit = DefaultMaxSize
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRefusedURL, err)
	}
	resp, err := f.client().Do(req)
	if err != nil {
		return nil, fmt.Errorf("media: download: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, &StatusError{Code: resp.StatusCode, Status: resp.Status}
	}
	if resp.ContentLength > limit {
		return nil, &TooLargeError{Size: resp.ContentLength, Limit: limit}
	}
	tmp, err := NewTemp(f.Dir)
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	body := &capped{r: resp.Body, left: limit}
	var n int64
	if enc != nil {
		n, err = DecryptAESGCM(tmp, body, enc.Key, enc.IV)
	} else {
		n, err = io.Copy(tmp, body)
	}
	if body.over {
		return nil, &TooLargeError{Size: -1, Limit: limit}
	}
	if err == nil && ctx.Err() != nil {
		// Cut off at the deadline: the body may end as if complete.
		err = ctx.Err()
	}
	if err != nil {
		if errors.Is(err, ErrBadTag) {
			return nil, err
		}
		return nil, fmt.Errorf("media: download: %w", err)
	}
	if resp.ContentLength >= 0 && enc == nil && n != resp.ContentLength {
		return nil, fmt.Errorf("media: download: got %d of %d bytes", n, resp.ContentLength)
	}
	head := make([]byte, 512)
	k, _ := tmp.ReadAt(head, 0)
	if err := tmp.Close(); err != nil {
		return nil, fmt.Errorf("media: download: %w", err)
	}
	name, _ := url.PathUnescape(path.Base(u.EscapedPath()))
	if name == "/" || name == "." {
		name = ""
	}
	typ := Sniff(head[:k])
	if typ == "" {
		typ = BaseType(resp.Header.Get("Content-Type"))
	}
	if typ == "" || typ == "application/octet-stream" {
		if t := TypeByName(name); t != "" {
			typ = t
		}
	}
	if typ == "" {
		typ = "application/octet-stream"
	}
	ok = true
	return &File{Path: tmp.Name(), Name: name, Type: typ, Size: n}, nil
}

// capped reads at most left bytes and notes when there was more.
type capped struct {
	r    io.Reader
	left int64
	over bool
}

func (c *capped) Read(p []byte) (int, error) {
	if c.left <= 0 {
		var one [1]byte
		n, err := c.r.Read(one[:])
		if n > 0 {
			c.over = true
			return 0, errors.New("over the size limit")
		}
		if err == nil {
			err = io.ErrNoProgress
		}
		return 0, err
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	return n, err
}

// AllowedURL says whether u may be fetched: https anywhere, http only to a
// loopback host (a test's server). The WhatsApp adapter's picture downloads
// follow it too; the error wraps ErrRefusedURL.
func AllowedURL(u *url.URL) error {
	switch strings.ToLower(u.Scheme) {
	case "https":
		if u.Host == "" {
			return fmt.Errorf("%w: no host", ErrRefusedURL)
		}
		return nil
	case "http":
		if loopbackHost(u.Hostname()) {
			return nil
		}
	}
	return fmt.Errorf("%w: only https (%s://%s)", ErrRefusedURL, u.Scheme, u.Hostname())
}

func loopbackHost(h string) bool {
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

func (f *Fetcher) client() *http.Client {
	tr := &http.Transport{
		Proxy:                  http.ProxyFromEnvironment,
		DialContext:            (&net.Dialer{Timeout: 30 * time.Second}).DialContext,
		TLSClientConfig:        &tls.Config{RootCAs: f.RootCAs, MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:    15 * time.Second,
		ResponseHeaderTimeout:  60 * time.Second,
		MaxResponseHeaderBytes: 64 << 10,
		IdleConnTimeout:        30 * time.Second,
		// The bytes as stored: the size limit counts them, and a
		// compressed body cannot unfold past it unseen.
		DisableCompression: true,
	}
	return &http.Client{
		Transport: &plainGuard{tr},
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 5 {
				return errors.New("too many redirects")
			}
			first := via[0].URL
			if !strings.EqualFold(req.URL.Host, first.Host) || req.URL.Scheme != first.Scheme {
				return fmt.Errorf("%w: redirect off %s to %s", ErrRefusedURL, first.Host, req.URL.Host)
			}
			return nil
		},
	}
}

// plainGuard refuses an http request whose connection would not be to
// loopback: it resolves the host itself and pins the request to a
// loopback address.
type plainGuard struct{ rt *http.Transport }

func (g *plainGuard) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme != "http" {
		return g.rt.RoundTrip(req)
	}
	host := req.URL.Hostname()
	if ip := net.ParseIP(host); ip != nil {
		if !ip.IsLoopback() {
			return nil, fmt.Errorf("%w: http to %s", ErrRefusedURL, host)
		}
		return g.rt.RoundTrip(req)
	}
	if !strings.EqualFold(host, "localhost") {
		return nil, fmt.Errorf("%w: http to %s", ErrRefusedURL, host)
	}
	// "localhost" is 127.0.0.1 whatever /etc/hosts says.
	r2 := req.Clone(req.Context())
	port := req.URL.Port()
	if port == "" {
		port = "80"
	}
	r2.URL.Host = net.JoinHostPort("127.0.0.1", port)
	r2.Host = req.Host
	return g.rt.RoundTrip(r2)
}

// NewTemp creates a private temporary file in dir, named so that Sweep
// finds it after a crash.
func NewTemp(dir string) (*os.File, error) {
	if dir == "" {
		return nil, errors.New("media: no directory for temporary files")
	}
	f, err := os.CreateTemp(dir, TempPrefix+"*")
	if err != nil {
		return nil, fmt.Errorf("media: temporary file: %w", err)
	}
	return f, nil
}

// TempPrefix starts the name of every temporary file of a media transfer
// (the WhatsApp adapter's downloads too).
const TempPrefix = ".waxmpp-media-"

// Sweep removes what transfers cut short by a crash left in dir. Call it
// at start-up, before any transfer starts.
func Sweep(dir string) (int, error) {
	matches, err := filepath.Glob(filepath.Join(dir, TempPrefix+"*"))
	if err != nil {
		return 0, err
	}
	n := 0
	for _, m := range matches {
		if os.Remove(m) == nil {
			n++
		}
	}
	return n, nil
}
