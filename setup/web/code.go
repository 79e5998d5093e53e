package web

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"waxmpp/setup/setupcode"
)

// The setup code: the SD image writes it at first boot
// (/var/lib/waxmpp/setup-code, see image/README.md); `waxmpp setup --web`
// makes one (setupcode.New) when there is none.

// LoadCode reads the code from path, or, when there is none, makes one
// and writes it there (0600, owned by the service's user when it exists,
// as the image does). made says the code is new (to be shown).
func LoadCode(path string) (code string, made bool, err error) {
	b, err := os.ReadFile(path)
	if err == nil {
		if c := strings.TrimSpace(string(b)); c != "" {
			return c, false, nil
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", false, fmt.Errorf("web: setup code: %w", err)
	}
	code, err = setupcode.New(nil)
	if err != nil {
		return "", false, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", false, fmt.Errorf("web: setup code: %w", err)
	}
	if err := os.WriteFile(path, []byte(code+"\n"), 0o600); err != nil {
		return "", false, fmt.Errorf("web: setup code: %w", err)
	}
	if u, err := user.Lookup("waxmpp"); err == nil && os.Geteuid() == 0 {
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		os.Chown(path, uid, gid)
	}
	return code, true, nil
}

// normalize makes codes comparable: case, spaces and dashes do not count.
func normalize(s string) string {
	var b strings.Builder
	for _, r := range strings.ToUpper(s) {
		if r != ' ' && r != '-' && r != '\t' {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// codeMatches compares in constant time.
func codeMatches(want, got string) bool {
	w, g := normalize(want), normalize(got)
	return len(w) > 0 && subtle.ConstantTimeCompare([]byte(w), []byte(g)) == 1
}

// limiter bounds the guesses at the code, for everyone together (an
// attacker on the LAN can change addresses): the first freeTries wrong
// codes cost nothing, then each waits twice as long as the one before
// (2 s, 4 s … up to maxWait), and after maxWrong the page takes no code
// until setup restarts. With 12 characters of 31 that is no guessing;
// with a chosen 8-character code still hopeless.
type limiter struct {
	mu    sync.Mutex
	wrong int
	next  time.Time // no attempt before this
	now   func() time.Time
}

const (
	freeTries = 5
	maxWait   = 10 * time.Minute
	maxWrong  = 100
)

// errLocked: too many wrong codes; restart setup.
var errLocked = errors.New("too many wrong codes")

// allow says whether an attempt may be made now, or how long to wait.
func (l *limiter) allow() (time.Duration, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.wrong >= maxWrong {
		return 0, errLocked
	}
	if d := l.next.Sub(l.now()); d > 0 {
		return d, nil
	}
	return 0, nil
}

// failed records a wrong code.
func (l *limiter) failed() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.wrong++
	if l.wrong >= freeTries {
		d := time.Second << min(l.wrong-freeTries+1, 20)
		l.next = l.now().Add(min(d, maxWait))
	}
}
