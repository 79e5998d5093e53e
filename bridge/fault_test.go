package bridge_test

import (
	"bytes"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"waxmpp/bridge"
	"waxmpp/bridge/store"
)

// faultStore is the real store with failures on demand, as a full or
// failing SD card makes them: while fail names a method, it returns that
// error instead of doing its work.
type faultStore struct {
	*store.DB
	mu   sync.Mutex
	fail map[string]error
}

func (f *faultStore) set(method string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail == nil {
		f.fail = map[string]error{}
	}
	if err == nil {
		delete(f.fail, method)
		return
	}
	f.fail[method] = err
}

func (f *faultStore) err(method string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.fail[method]
}

func (f *faultStore) PutChat(c bridge.Chat) (bridge.Chat, error) {
	if err := f.err("PutChat"); err != nil {
		return bridge.Chat{}, err
	}
	return f.DB.PutChat(c)
}

func (f *faultStore) Chat(id string) (bridge.Chat, error) {
	if err := f.err("Chat"); err != nil {
		return bridge.Chat{}, err
	}
	return f.DB.Chat(id)
}

func (f *faultStore) ChatByHandle(h string) (bridge.Chat, error) {
	if err := f.err("ChatByHandle"); err != nil {
		return bridge.Chat{}, err
	}
	return f.DB.ChatByHandle(h)
}

func (f *faultStore) SetHandle(id, h string) (bridge.Chat, error) {
	if err := f.err("SetHandle"); err != nil {
		return bridge.Chat{}, err
	}
	return f.DB.SetHandle(id, h)
}

func (f *faultStore) Chats() ([]bridge.Chat, error) {
	if err := f.err("Chats"); err != nil {
		return nil, err
	}
	return f.DB.Chats()
}

func (f *faultStore) Touch(id string, t time.Time) error {
	if err := f.err("Touch"); err != nil {
		return err
	}
	return f.DB.Touch(id, t)
}

func (f *faultStore) AddAlias(id, alias string) error {
	if err := f.err("AddAlias"); err != nil {
		return err
	}
	return f.DB.AddAlias(id, alias)
}

func (f *faultStore) PutMessages(ms ...bridge.MsgLink) error {
	if err := f.err("PutMessages"); err != nil {
		return err
	}
	return f.DB.PutMessages(ms...)
}

func (f *faultStore) MessageByWA(k bridge.MessageKey) (bridge.MsgLink, error) {
	if err := f.err("MessageByWA"); err != nil {
		return bridge.MsgLink{}, err
	}
	return f.DB.MessageByWA(k)
}

func (f *faultStore) MessageByXMPP(id string) (bridge.MsgLink, error) {
	if err := f.err("MessageByXMPP"); err != nil {
		return bridge.MsgLink{}, err
	}
	return f.DB.MessageByXMPP(id)
}

func (f *faultStore) RecentMessages(chat string, n int) ([]bridge.MsgLink, error) {
	if err := f.err("RecentMessages"); err != nil {
		return nil, err
	}
	return f.DB.RecentMessages(chat, n)
}

func (f *faultStore) Route() (string, bool, error) {
	if err := f.err("Route"); err != nil {
		return "", false, err
	}
	return f.DB.Route()
}

func (f *faultStore) SetRoute(id string) error {
	if err := f.err("SetRoute"); err != nil {
		return err
	}
	return f.DB.SetRoute(id)
}

func (f *faultStore) Blob(name string) ([]byte, bool, error) {
	if err := f.err("Blob"); err != nil {
		return nil, false, err
	}
	return f.DB.Blob(name)
}

func (f *faultStore) PutBlob(name string, v []byte) error {
	if err := f.err("PutBlob"); err != nil {
		return err
	}
	return f.DB.PutBlob(name, v)
}

var _ bridge.Store = (*faultStore)(nil)

// logBuffer collects a core's log lines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// inbox models an adapter's durable inbox, as both adapters keep one: what
// was delivered to the core stays until the core acknowledges it (Handled
// acknowledges it and everything delivered before it), and a restart
// delivers what is left again, in order.
type inbox[T comparable] struct {
	mu    sync.Mutex
	items []T // delivered, not yet acknowledged, in order
	acked []T // every acknowledgement, in order
}

func (b *inbox[T]) delivered(x T) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.items = append(b.items, x)
}

func (b *inbox[T]) handled(x T) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.acked = append(b.acked, x)
	for i, y := range b.items {
		if y == x {
			b.items = b.items[i+1:]
			return
		}
	}
}

// left returns what was delivered and not acknowledged.
func (b *inbox[T]) left() []T {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]T(nil), b.items...)
}

// waitAcked waits until n acknowledgements were made and returns them,
// failing the test after 30 s.
func (b *inbox[T]) waitAcked(t *testing.T, n int, what string) []T {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		b.mu.Lock()
		acked := slices.Clone(b.acked)
		b.mu.Unlock()
		if len(acked) >= n {
			return acked
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d %s acknowledged", len(acked), n, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// errCrash is what a store write returns in a crash: the write never
// happened.
var errCrash = errors.New("store: the power went off")

// writes are the Store methods that write.
var writes = []string{"PutChat", "SetHandle", "Touch", "AddAlias", "PutMessages", "SetRoute", "PutBlob", "PutInvite"}
