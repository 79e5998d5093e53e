package simwa

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"waxmpp/bridge"
)

// Client is a Go client of the control socket, for tests. It sends one
// request at a time and waits for its reply. Other languages speak the
// protocol directly (see the package documentation).
type Client struct {
	mu sync.Mutex
	c  net.Conn
	r  *bufio.Reader
}

// Dial connects to a simulator's control socket, retrying until timeout
// (the binary may still be starting).
func Dial(path string, timeout time.Duration) (*Client, error) {
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.Dial("unix", path)
		if err == nil {
			return &Client{c: c, r: bufio.NewReaderSize(c, 64<<10)}, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("simwa: dial %s: %w", path, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Close closes the connection.
func (c *Client) Close() error { return c.c.Close() }

// Do sends req and returns its reply; a reply with ok false is an error
// (the reply is returned too).
func (c *Client) Do(req Request) (Reply, error) {
	b, err := json.Marshal(req)
	if err != nil {
		return Reply{}, err
	}
	rep, err := c.Raw(b)
	if err == nil && !rep.OK {
		err = fmt.Errorf("simwa %s: %s", req.Op, rep.Error)
	}
	return rep, err
}

// Raw sends one line as it is and decodes the reply.
func (c *Client) Raw(line []byte) (Reply, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.c.SetDeadline(time.Now().Add(10 * time.Minute))
	if _, err := c.c.Write(append(line, '\n')); err != nil {
		return Reply{}, fmt.Errorf("simwa: write: %w", err)
	}
	l, err := c.r.ReadBytes('\n')
	if err != nil {
		return Reply{}, fmt.Errorf("simwa: read: %w", err)
	}
	var rep Reply
	if err := json.Unmarshal(l, &rep); err != nil {
		return Reply{}, fmt.Errorf("simwa: reply %q: %w", l, err)
	}
	return rep, nil
}

// Inject sends events in order (op events); it returns once the core's
// channel accepted them all.
func (c *Client) Inject(evs ...bridge.Event) error {
	wire := make([]Event, len(evs))
	for i, ev := range evs {
		w, err := FromBridge(ev)
		if err != nil {
			return err
		}
		wire[i] = w
	}
	_, err := c.Do(Request{Op: "events", Events: wire})
	return err
}

// Actions returns the actions recorded since this connection last asked
// (op actions), waiting up to timeout for at least wait of them.
func (c *Client) Actions(wait int, timeout time.Duration, types ...string) ([]Action, error) {
	rep, err := c.Do(Request{Op: "actions", Wait: wait, Timeout: Duration(timeout), Types: types})
	return rep.Actions, err
}

// Script adds a rule.
func (c *Client) Script(r Rule) error {
	_, err := c.Do(Request{Op: "script", Rule: &r})
	return err
}

// State reports the simulator's state.
func (c *Client) State() (State, error) {
	rep, err := c.Do(Request{Op: "state"})
	if err != nil {
		return State{}, err
	}
	if rep.State == nil {
		return State{}, errors.New("simwa: state reply without state")
	}
	return *rep.State, nil
}

// Watcher receives every action of one simulator process as it happens,
// and, from WatchAll, the core's acknowledgements.
type Watcher struct {
	// C and Handled are closed when the connection ends (the process
	// died). Handled is nil from Watch. A WatchAll reader must read both.
	C       <-chan Action
	Handled <-chan Event
	c       net.Conn
	done    chan struct{}
	err     error
}

// Watch opens a watching connection (op watch) from the start of the
// process's log, so nothing the process did is missed.
func Watch(path string, timeout time.Duration, types ...string) (*Watcher, error) {
	return openWatch(path, timeout, false, types)
}

// WatchAll is Watch with the core's acknowledgements on Handled.
func WatchAll(path string, timeout time.Duration) (*Watcher, error) {
	return openWatch(path, timeout, true, nil)
}

func openWatch(path string, timeout time.Duration, handled bool, types []string) (*Watcher, error) {
	c, err := Dial(path, timeout)
	if err != nil {
		return nil, err
	}
	var zero uint64
	b, _ := json.Marshal(Request{Op: "watch", Since: &zero, Types: types, Handled: handled})
	if _, err := c.c.Write(append(b, '\n')); err != nil {
		c.Close()
		return nil, err
	}
	l, err := c.r.ReadBytes('\n')
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("simwa: watch: %w", err)
	}
	var rep Reply
	if err := json.Unmarshal(l, &rep); err != nil || !rep.OK {
		c.Close()
		return nil, fmt.Errorf("simwa: watch: %s %v", l, err)
	}
	ch := make(chan Action, 1024)
	w := &Watcher{C: ch, c: c.c, done: make(chan struct{})}
	var hch chan Event
	if handled {
		hch = make(chan Event, 1024)
		w.Handled = hch
	}
	go func() {
		defer close(w.done)
		defer close(ch)
		if hch != nil {
			defer close(hch)
		}
		for {
			l, err := c.r.ReadBytes('\n')
			if err != nil {
				w.err = err
				return
			}
			var p Pushed
			if err := json.Unmarshal(l, &p); err != nil {
				continue
			}
			switch {
			case p.Action != nil:
				ch <- *p.Action
			case p.Handled != nil && hch != nil:
				hch <- *p.Handled
			}
			// Anything else is a reply to a request on this connection.
		}
	}()
	return w, nil
}

// Close ends the watch.
func (w *Watcher) Close() error {
	err := w.c.Close()
	go func() {
		for range w.C {
		}
	}()
	if w.Handled != nil {
		go func() {
			for range w.Handled {
			}
		}()
	}
	<-w.done
	return err
}
