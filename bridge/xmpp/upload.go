package xmpp

import (
	"context"
	"crypto/tls"
	"encoding/xml"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"waxmpp/bridge"
)

// uploadService is the XEP-0363 component found by disco.
type uploadService struct {
	JID     string
	MaxSize int64 // 0: the service states no limit
}

// ErrNoUpload means the bot's server offers no XEP-0363 upload service.
var ErrNoUpload = fmt.Errorf("xmpp: no HTTP upload (XEP-0363): %w", bridge.ErrNoUpload)

// ErrFileTooLarge means a file exceeds the upload service's max-file-size.
var ErrFileTooLarge = fmt.Errorf("xmpp: %w", bridge.ErrUploadTooLarge)

// ErrQuota means the upload service refused a slot for want of room
// (Prosody's mod_http_file_share: resource-constraint, "quota").
var ErrQuota = fmt.Errorf("xmpp: %w", bridge.ErrUploadQuota)

type discoItems struct {
	XMLName xml.Name `xml:"http://jabber.org/protocol/disco#items query"`
	Items   []struct {
		JID string `xml:"jid,attr"`
	} `xml:"item"`
}

type discoInfoResult struct {
	XMLName    xml.Name `xml:"http://jabber.org/protocol/disco#info query"`
	Identities []struct {
		Category string `xml:"category,attr"`
		Type     string `xml:"type,attr"`
	} `xml:"identity"`
	Features []struct {
		Var string `xml:"var,attr"`
	} `xml:"feature"`
	Forms []struct {
		Fields []struct {
			Var    string   `xml:"var,attr"`
			Values []string `xml:"value"`
		} `xml:"field"`
	} `xml:"jabber:x:data x"`
}

// UploadService finds the upload component among the server's disco items
// (and the server itself), once per session.
func (s *Session) UploadService(ctx context.Context) (uploadService, error) {
	s.mu.Lock()
	u, none := s.upload, !s.noUpload.IsZero() && time.Since(s.noUpload) < noUploadFor
	s.mu.Unlock()
	if u != nil {
		return *u, nil
	}
	if none {
		return uploadService{}, ErrNoUpload
	}
	res, err := s.iq(ctx, IQ{Type: "get", To: s.domain, Payload: struct {
		XMLName xml.Name `xml:"http://jabber.org/protocol/disco#items query"`
	}{}})
	if err != nil {
		return uploadService{}, fmt.Errorf("xmpp: disco#items %s: %w", s.domain, err)
	}
	var items discoItems
	if err := res.Unmarshal(&items); err != nil {
		return uploadService{}, fmt.Errorf("xmpp: disco#items %s: %w", s.domain, err)
	}
	candidates := []string{s.domain}
	for _, it := range items.Items {
		candidates = append(candidates, it.JID)
	}
	for _, jid := range candidates {
		res, err := s.iq(ctx, IQ{Type: "get", To: jid, Payload: struct {
			XMLName xml.Name `xml:"http://jabber.org/protocol/disco#info query"`
		}{}})
		if err != nil {
			continue // an item that does not answer is not our service
		}
		var info discoInfoResult
		if res.Unmarshal(&info) != nil {
			continue
		}
		found := false
		for _, f := range info.Features {
			found = found || f.Var == NSUpload
		}
		if !found {
			continue
		}
		svc := uploadService{JID: jid}
		for _, form := range info.Forms {
			for _, f := range form.Fields {
				if f.Var == "max-file-size" && len(f.Values) > 0 {
					svc.MaxSize, _ = strconv.ParseInt(strings.TrimSpace(f.Values[0]), 10, 64)
				}
			}
		}
		s.mu.Lock()
		s.upload = &svc
		s.mu.Unlock()
		return svc, nil
	}
	s.mu.Lock()
	s.noUpload = time.Now()
	s.mu.Unlock()
	return uploadService{}, ErrNoUpload
}

// noUploadFor is how long a server found without an upload service is
// believed: not looked up again for every file, but a server that gains
// one is found within the hour.
const noUploadFor = time.Hour

// Upload stores size bytes read from r on the server's XEP-0363 service and
// returns the URL to fetch it from. r is streamed, never buffered whole.
// The PUT goes only to https URLs (http only on a loopback address, where
// tests run), verified against the same roots as the XMPP stream.
func (s *Session) Upload(ctx context.Context, name, contentType string, size int64, r io.Reader) (string, error) {
	svc, err := s.UploadService(ctx)
	if err != nil {
		return "", err
	}
	if svc.MaxSize > 0 && size > svc.MaxSize {
		return "", fmt.Errorf("%w: %s is %d bytes, limit %d", ErrFileTooLarge, name, size, svc.MaxSize)
	}
	if contentType == "" {
		contentType = "application/octet-stream"
	}
	res, err := s.iq(ctx, UploadRequest(s.NewID(), svc.JID, name, size, contentType))
	if err != nil {
		if res != nil && res.Error != nil {
			// XEP-0363 §4: not-acceptable (with file-too-large) for
			// the size; resource-constraint is how servers say quota.
			switch c, text := res.Error.Condition, strings.ToLower(res.Error.Text); {
			case c == "resource-constraint" || strings.Contains(text, "quota"):
				return "", fmt.Errorf("%w: %s: %s", ErrQuota, name, res.Error)
			case (c == "not-acceptable" || c == "policy-violation") && strings.Contains(text, "large"):
				return "", fmt.Errorf("%w: %s: %s", ErrFileTooLarge, name, res.Error)
			}
		}
		return "", fmt.Errorf("xmpp: upload slot for %s: %w", name, err)
	}
	var slot UploadSlot
	if err := res.Unmarshal(&slot); err != nil {
		return "", fmt.Errorf("xmpp: upload slot for %s: %w", name, err)
	}
	for _, u := range []string{slot.Put.URL, slot.Get.URL} {
		if err := checkURL(u); err != nil {
			return "", fmt.Errorf("xmpp: upload slot for %s: %w", name, err)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, uploadTimeout(size))
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, slot.Put.URL, r)
	if err != nil {
		return "", fmt.Errorf("xmpp: upload %s: %w", name, err)
	}
	req.ContentLength = size
	req.Header.Set("Content-Type", contentType)
	for _, h := range slot.Put.Headers {
		// XEP-0363 §5: only these three, and never with a line break.
		switch http.CanonicalHeaderKey(h.Name) {
		case "Authorization", "Cookie", "Expires":
			if !strings.ContainsAny(h.Value, "\r\n") {
				req.Header.Set(h.Name, h.Value)
			}
		}
	}
	resp, err := s.httpClient().Do(req)
	if err != nil {
		return "", fmt.Errorf("xmpp: upload %s: %w", name, err)
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusCreated, http.StatusOK:
	case http.StatusRequestEntityTooLarge:
		return "", fmt.Errorf("%w: %s: the upload server answered %s", ErrFileTooLarge, name, resp.Status)
	default:
		return "", fmt.Errorf("xmpp: upload %s: server answered %s", name, resp.Status)
	}
	return slot.Get.URL, nil
}

// uploadTimeout allows a slow uplink (a Pi on home ADSL, ~100 kB/s) plus a
// minute of slack.
func uploadTimeout(size int64) time.Duration {
	return time.Minute + time.Duration(size/(100<<10))*time.Second
}

func checkURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if ip := net.ParseIP(u.Hostname()); ip != nil && ip.IsLoopback() {
			return nil
		}
	}
	return fmt.Errorf("refusing URL %q: only https", raw)
}

func (s *Session) httpClient() *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			Proxy:               http.ProxyFromEnvironment,
			TLSClientConfig:     &tls.Config{RootCAs: s.cfg.RootCAs, MinVersion: tls.VersionTLS12},
			TLSHandshakeTimeout: 15 * time.Second,
			IdleConnTimeout:     30 * time.Second,
		},
		// Never follow a redirect off the slot's URL with our headers.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}
