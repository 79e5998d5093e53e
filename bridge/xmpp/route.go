package xmpp

import (
	"context"
	"strings"
	"sync"
)

// bareJID lower-cases a JID and drops its resource. Localpart and domain
// compare case-insensitively in practice (RFC 7622 maps them to lower case).
func bareJID(jid string) string {
	if i := strings.IndexByte(jid, '/'); i >= 0 {
		jid = jid[:i]
	}
	return strings.ToLower(jid)
}

var (
	botInfoOnce sync.Once
	botInfo     DiscoInfo
	botCapsVal  *Caps
)

// botCaps is computed once: the features never change at run time.
func botCaps() *Caps {
	botInfoOnce.Do(func() {
		botInfo = BotDiscoInfo()
		botCapsVal = botInfo.Caps()
	})
	return botCapsVal
}

// route handles one decoded stanza. Only the owner's bare JID is served;
// the bot's own server may answer our IQs and push the roster. Everything
// else is dropped and counted, never surfaced: a stranger can never reach
// the core.
func (s *Session) route(ctx context.Context, c *conn, st Stanza) error {
	switch v := st.(type) {
	case *InIQ:
		return s.routeIQ(ctx, c, v)
	case *InPresence:
		return s.routePresence(ctx, c, v)
	case *Inbound:
		return s.routeMessage(ctx, c, v)
	}
	return nil
}

// fromServer: no from, our domain, our bare JID or our own full JID.
func (s *Session) fromServer(c *conn, from string) bool {
	b := bareJID(from)
	return from == "" || b == s.domain || b == s.bare
}

func (s *Session) drop(kind, from string) {
	s.dropped.Add(1)
	s.log.Debug("dropped stanza", "kind", kind, "from", from)
}

func (s *Session) routeIQ(ctx context.Context, c *conn, iq *InIQ) error {
	switch iq.Type {
	case "result", "error":
		if strings.HasPrefix(iq.ID, "p-") && s.fromServer(c, iq.From) {
			// Any answer to a ping, even an error, proves the server
			// processed everything written before it.
			select {
			case c.pongs <- iq.ID:
			case <-ctx.Done():
				return context.Cause(ctx)
			}
			return nil
		}
		s.mu.Lock()
		p, ok := s.pending[iq.ID]
		// Only the addressee may answer (RFC 6120 §8.1.2.1): a request
		// to no one is answered by our server or our own account.
		ok = ok && (bareJID(iq.From) == bareJID(p.to) || p.to == "" && s.fromServer(c, iq.From))
		if ok {
			delete(s.pending, iq.ID)
		}
		s.mu.Unlock()
		if !ok {
			s.drop("iq-"+iq.Type, iq.From)
			return nil
		}
		p.ch <- iq // capacity 1, one answer per id
		return nil
	}
	owner := bareJID(iq.From) == s.owner
	if !owner && !s.fromServer(c, iq.From) {
		s.drop("iq", iq.From)
		return nil
	}
	var reply IQ
	switch {
	case iq.Payload.Space == NSPing && iq.Type == "get":
		reply = Result(iq)
	case iq.Payload.Space == NSDiscoInfo && iq.Type == "get":
		var q struct {
			Node string `xml:"node,attr"`
		}
		iq.Unmarshal(&q)
		botCaps()
		reply = DiscoInfoResult(iq, q.Node, botInfo)
	case owner && iq.Payload.Space == NSDiscoItems && iq.Type == "get":
		var q struct {
			Node string `xml:"node,attr"`
		}
		iq.Unmarshal(&q)
		if q.Node != NSCommands {
			reply = IQ{ID: iq.ID, To: iq.From, Type: "result", Payload: Inner{[]byte(`<query xmlns="` + NSDiscoItems + `"/>`)}}
			break
		}
		reply = s.commandItems(iq)
	case owner && iq.Payload.Space == NSCommands && iq.Type == "set":
		r, now := s.command(ctx, iq)
		if !now {
			return nil // answered when the core has
		}
		reply = r
	case iq.Payload.Space == NSRoster && iq.Type == "set" && s.fromServer(c, iq.From):
		// Roster push (RFC 6121 §2.1.6): acknowledge.
		s.rosterPush(iq)
		reply = Result(iq)
	default:
		reply = ErrorReply(iq, CondServiceUnavailable)
	}
	b, err := EncodeIQ(reply)
	if err != nil {
		s.log.Warn("cannot answer iq", "err", err)
		return nil
	}
	return s.sendCtrl(ctx, c, b)
}

func (s *Session) routePresence(ctx context.Context, c *conn, p *InPresence) error {
	from := bareJID(p.From)
	if s.isRoom(from) {
		return s.routeRoomPresence(ctx, p) // muc.go
	}
	switch {
	case from == s.bare:
		return nil // our own other resources, or our own presence reflected
	case from == s.owner:
		s.ownerPresence(p)
		switch p.Type {
		case "subscribe":
			return s.sendCtrl(ctx, c, mustPresence(Subscribed(s.cfg.Owner)))
		case "unsubscribe":
			s.log.Warn("the owner unsubscribed from the bot's presence")
		case "":
			s.ownerBack() // what was set aside goes now
			s.noteOwner(ownerNote{presence: p})
		case "unavailable":
			s.noteOwner(ownerNote{presence: p})
		}
		return nil
	case p.Type == "subscribe":
		// Refuse strangers' subscription requests: only the owner sees
		// the bot's presence.
		s.drop("subscribe", p.From)
		return s.sendCtrl(ctx, c, mustPresence(Unsubscribed(from)))
	default:
		s.drop("presence", p.From)
		return nil
	}
}

func (s *Session) routeMessage(ctx context.Context, c *conn, m *Inbound) error {
	if room := s.roomMessage(m); room != "" {
		return s.routeRoomMessage(ctx, c, room, m) // muc.go
	}
	if m.Archived != nil {
		// Only our own archive, answering our own query, is trusted.
		q, _ := s.mamQuery.Load().(string)
		pos, _ := s.mamPos.Load().(string)
		if a := bareJID(m.Archived.From); a != "" && a != s.bare {
			s.drop("archive", m.Archived.From)
			return nil
		}
		switch m.Archived.QueryID {
		case "":
			return nil
		case pos:
			s.noteResult(m) // the archive's last item: its time
			return nil
		case q:
			s.noteResult(m)
		default:
			return nil // an answer to a query no longer running
		}
		if s.replaying.Load() && s.liveFirst != "" && m.Archived.ID == s.liveFirst {
			// The replay reached the first message this link got live:
			// all that follows came live too (see catchUp).
			s.caughtUp.Store(true)
		}
		if bareJID(m.From) == s.bare {
			return nil // the bot's own messages to the owner, archived too
		}
	}
	if m.Archived == nil && s.stripLiveIDs {
		m.StanzaIDs = nil // a test's server that adds none (see mam.go)
	}
	if m.Carbon != CarbonNone {
		// The bot never enables carbons; a carbon is either one of ours
		// or forged.
		s.drop("carbon", m.CarbonFrom)
		return nil
	}
	if bareJID(m.From) != s.owner {
		s.drop("message", m.From)
		return nil
	}
	if m.Type == "error" {
		s.bounced(m)
		return nil
	}
	if key := m.OriginID; key != "" || m.ID != "" {
		if key == "" {
			key = m.ID
		}
		if s.recent.seen(key) {
			s.duplicates.Add(1)
			return nil
		}
	}
	// Numbered before the send: the consumer may report it handled at once.
	k := s.number(m)
	s.delivered(c.sm, c.seq)
	select {
	case s.in <- m:
		return nil
	case <-ctx.Done():
		s.unnumber(k)
		s.undeliver()
		return context.Cause(ctx)
	}
}

// recentIDs is a bounded set of the latest ids, oldest forgotten first.
// Across restarts the core drops what it already handled, by id.
type recentIDs struct {
	set  map[string]struct{}
	ring []string
	next int
}

const recentMax = 4096

// seen records id and reports whether it was already there.
func (r *recentIDs) seen(id string) bool {
	if _, ok := r.set[id]; ok {
		return true
	}
	if r.set == nil {
		r.set = make(map[string]struct{}, recentMax)
		r.ring = make([]string, recentMax)
	}
	// A copy: id is a part of its stanza's string, which it would
	// otherwise keep in memory (4,096 stanzas, a megabyte or more).
	id = strings.Clone(id)
	delete(r.set, r.ring[r.next])
	r.ring[r.next] = id
	r.next = (r.next + 1) % recentMax
	r.set[id] = struct{}{}
	return false
}
