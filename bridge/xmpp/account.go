package xmpp

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"waxmpp/bridge"
)

// Account is one short login of the bot account, for setup and `waxmpp
// doctor`: it proves that the password works (the same login as the
// bridge's, SRV and TLS included), reads the roster, asks the owner for a
// presence subscription and waits for the answer. It has no outbox and
// never reconnects: a failed stream ends it. Close ends it too.
//
// Goroutines: one reader per Account, started by Login and stopped by
// Close; the methods may be called from one goroutine at a time.
type Account struct {
	l    *link
	bare string
	// in carries the stanzas the reader does not answer itself (presences,
	// IQ results, roster pushes). Backpressure: capacity 64; when full the
	// reader blocks, which only delays this account's own reads.
	in    chan Stanza
	errc  chan error    // the reader's end, capacity 1
	done  chan struct{} // closed by Close
	wmu   sync.Mutex
	wtime time.Duration
	n     int
	once  sync.Once
}

// Login logs the bot account in once, as the bridge would (cfg's JID,
// Password, Resource, Server, RootCAs, Resolver, DialTimeout and
// WriteTimeout; Owner and Outbox are not used). Its errors are those of
// the bridge's logins: ErrAuth (wrapped) for a refused password, others
// for DNS, connection and TLS failures.
func Login(ctx context.Context, cfg Config) (*Account, error) {
	if cfg.Outbox == nil {
		cfg.Outbox = noOutbox{}
	}
	if cfg.Owner == "" {
		cfg.Owner = cfg.JID // required by New; an Account serves no one
	}
	s, err := New(cfg)
	if err != nil {
		return nil, err
	}
	l, err := s.dial(ctx)
	if err != nil {
		return nil, err
	}
	a := &Account{l: l, bare: s.bare, in: make(chan Stanza, 64), errc: make(chan error, 1),
		done: make(chan struct{}), wtime: s.cfg.WriteTimeout}
	go func() { a.errc <- a.read() }()
	return a, nil
}

// JID is the full JID the server bound.
func (a *Account) JID() string { return a.l.jid }

// Close ends the stream and waits for the reader.
func (a *Account) Close() error {
	a.once.Do(func() {
		close(a.done)
		a.l.conn.SetWriteDeadline(time.Now().Add(time.Second))
		a.l.conn.Write([]byte("</stream:stream>"))
		a.l.close()
		<-a.errc
	})
	return nil
}

// read decodes the stream until it ends. Pings and requests are answered
// here (a ping with a result, anything else with service-unavailable);
// everything else goes to in.
func (a *Account) read() error {
	for {
		tok, err := a.l.dec.Token()
		if err != nil {
			return fmt.Errorf("xmpp: read: %w", err)
		}
		switch t := tok.(type) {
		case xml.EndElement:
			return errors.New("xmpp: server closed the stream")
		case xml.StartElement:
			if t.Name.Space == streamsNS && t.Name.Local == "error" {
				var se struct {
					Inner string `xml:",innerxml"`
				}
				a.l.dec.DecodeElement(&se, &t)
				return fmt.Errorf("xmpp: stream error: %s", se.Inner)
			}
			st, err := Decode(a.l.dec, t)
			var de *DecodeError
			if errors.As(err, &de) {
				continue
			}
			if err != nil {
				return fmt.Errorf("xmpp: read: %w", err)
			}
			if iq, ok := st.(*InIQ); ok && (iq.Type == "get" || iq.Type == "set") {
				if iq.Payload.Space == NSPing || iq.Payload.Space == NSRoster && a.fromServer(iq.From) {
					a.write(Result(iq))
					if iq.Payload.Space == NSPing {
						continue
					}
				} else {
					a.write(ErrorReply(iq, CondServiceUnavailable))
					continue
				}
			}
			select {
			case a.in <- st:
			case <-a.done:
				return nil
			}
		}
	}
}

const streamsNS = "http://etherx.jabber.org/streams"

func (a *Account) fromServer(from string) bool {
	b := bareJID(from)
	return from == "" || b == a.bare || b == domainOf(a.bare)
}

func domainOf(bare string) string {
	_, d, _ := strings.Cut(bare, "@")
	return d
}

func (a *Account) write(v any) error {
	var b []byte
	var err error
	switch s := v.(type) {
	case IQ:
		b, err = EncodeIQ(s)
	case Presence:
		b, err = EncodePresence(s)
	default:
		err = fmt.Errorf("xmpp: cannot write %T", v)
	}
	if err != nil {
		return err
	}
	a.wmu.Lock()
	defer a.wmu.Unlock()
	a.l.conn.SetWriteDeadline(time.Now().Add(a.wtime))
	if _, err := a.l.conn.Write(b); err != nil {
		return fmt.Errorf("xmpp: write: %w", err)
	}
	return nil
}

// next returns the next stanza the reader passed on, or why there is none.
func (a *Account) next(ctx context.Context) (Stanza, error) {
	select {
	case st := <-a.in:
		return st, nil
	case err := <-a.errc:
		a.errc <- err
		return nil, err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Roster reads the bot's roster.
func (a *Account) Roster(ctx context.Context) ([]RosterItem, error) {
	a.n++
	id := fmt.Sprintf("acct-roster-%d", a.n)
	if err := a.write(RosterGet(id)); err != nil {
		return nil, err
	}
	for {
		st, err := a.next(ctx)
		if err != nil {
			return nil, fmt.Errorf("xmpp: roster: %w", err)
		}
		iq, ok := st.(*InIQ)
		if !ok || iq.ID != id || !a.fromServer(iq.From) {
			continue
		}
		if iq.Type == "error" {
			return nil, fmt.Errorf("xmpp: roster: %w", iq.Error)
		}
		var r Roster
		if iq.PayloadXML == nil {
			return nil, nil
		}
		if err := iq.Unmarshal(&r); err != nil {
			return nil, err
		}
		return r.Items, nil
	}
}

// Subscription is where the bot stands with one contact (RFC 6121 §2.1.2):
// Sub is none, to, from or both; Asked says the bot's own request waits.
type Subscription struct {
	Sub   string
	Asked bool
}

// Accepted says the contact let the bot see their presence, i.e. accepted
// its subscription request (to or both).
func (s Subscription) Accepted() bool { return s.Sub == "to" || s.Sub == "both" }

// SubscriptionOf reads the roster and returns the bot's subscription with
// jid (a bare JID); none when jid is not in the roster.
func (a *Account) SubscriptionOf(ctx context.Context, jid string) (Subscription, error) {
	items, err := a.Roster(ctx)
	if err != nil {
		return Subscription{}, err
	}
	for _, it := range items {
		if strings.EqualFold(it.JID, jid) {
			return Subscription{Sub: it.Subscription, Asked: it.Ask == "subscribe"}, nil
		}
	}
	return Subscription{Sub: "none"}, nil
}

// AskSubscription asks jid to let the bot see their presence. It does not
// pre-approve jid's own request (RFC 6121 §3.4): not every server offers
// that, and the bridge answers the owner's request at its next login.
// (ejabberd's mod_pres_counter, on as shipped, ignores a contact's
// subscription stanzas after five within a minute: one stanza, not two.)
func (a *Account) AskSubscription(jid string) error {
	return a.write(Presence{To: jid, Type: "subscribe"})
}

// ErrDeclined: the contact refused the bot's subscription request.
var ErrDeclined = errors.New("xmpp: the subscription request was declined")

// WaitAccepted waits until jid accepts the bot's subscription request: a
// presence of type subscribed from jid, or a roster push that says so. It
// returns ErrDeclined when jid refuses (unsubscribed), ctx's error when it
// ends first.
func (a *Account) WaitAccepted(ctx context.Context, jid string) error {
	for {
		st, err := a.next(ctx)
		if err != nil {
			return err
		}
		switch v := st.(type) {
		case *InPresence:
			if !strings.EqualFold(bareJID(v.From), jid) {
				continue
			}
			switch v.Type {
			case "subscribed":
				return nil
			case "unsubscribed":
				return ErrDeclined
			}
		case *InIQ:
			if v.Type != "set" || v.Payload.Space != NSRoster {
				continue
			}
			var r Roster
			if v.Unmarshal(&r) != nil {
				continue
			}
			for _, it := range r.Items {
				if strings.EqualFold(it.JID, jid) && (it.Subscription == "to" || it.Subscription == "both") {
					return nil
				}
			}
		}
	}
}

// noOutbox is the Queue of a Session that only logs in: it holds nothing.
type noOutbox struct{}

func (noOutbox) Enqueue(data ...[]byte) ([]uint64, error) {
	return nil, errors.New("xmpp: an Account has no outbox")
}
func (noOutbox) Peek(after uint64, n int) ([]bridge.QueueItem, error) { return nil, nil }
func (noOutbox) AckThrough(seq uint64) error                          { return nil }
func (noOutbox) Len() (int, error)                                    { return 0, nil }
func (noOutbox) Oldest() (bridge.QueueItem, bool, error)              { return bridge.QueueItem{}, false, nil }

// Promises says what the bot's server offers for keeping the owner's
// messages (see Stats.Caveat): an archive of the bot's messages
// (XEP-0313, the feature on the account's own JID) and stream management
// (XEP-0198, offered at login).
func (a *Account) Promises(ctx context.Context) (Stats, error) {
	st := Stats{StreamManagement: a.l.smOffered}
	a.n++
	id := fmt.Sprintf("acct-disco-%d", a.n)
	if err := a.write(IQ{ID: id, Type: "get", To: a.bare, Payload: struct {
		XMLName xml.Name `xml:"http://jabber.org/protocol/disco#info query"`
	}{}}); err != nil {
		return st, err
	}
	for {
		s, err := a.next(ctx)
		if err != nil {
			return st, fmt.Errorf("xmpp: disco#info %s: %w", a.bare, err)
		}
		iq, ok := s.(*InIQ)
		if !ok || iq.ID != id || !a.fromServer(iq.From) {
			continue
		}
		if iq.Type == "error" || iq.PayloadXML == nil {
			return st, nil // no answer about the account: no archive known
		}
		var info discoInfoResult
		if err := iq.Unmarshal(&info); err != nil {
			return st, fmt.Errorf("xmpp: disco#info %s: %w", a.bare, err)
		}
		for _, f := range info.Features {
			if f.Var == NSMAM {
				st.Archive = true
			}
		}
		return st, nil
	}
}
