package xmpp

// Which clients the owner uses, and whether the owner sees the bot's
// presence: the session notes the owner's presences (with their XEP-0115
// caps) and roster item; the Bot asks each new client for its XEP-0030
// identity and tells the core (bridge.OwnerClient, bridge.OwnerRoster),
// which writes its hints for that client.

import (
	"context"
	"strings"
	"sync"
	"time"

	"waxmpp/bridge"
)

// ownerNote is something the session learned of the owner outside their
// messages: one of the owner's presences, or the owner's roster item.
type ownerNote struct {
	presence *InPresence
	roster   *RosterItem
}

// noteOwner hands n to the Bot without blocking the reader: a note that finds
// the channel full is dropped (it only tunes hints).
func (s *Session) noteOwner(n ownerNote) {
	select {
	case s.fits <- n:
	default:
		s.log.Debug("owner note dropped: channel full")
	}
}

// rosterPush notes the owner's roster item from a roster push.
func (s *Session) rosterPush(iq *InIQ) {
	var q rosterQuery
	if iq.Unmarshal(&q) != nil {
		return
	}
	for _, it := range q.Items {
		if strings.EqualFold(it.JID, s.owner) {
			s.noteOwner(ownerNote{roster: &RosterItem{JID: s.owner, Subscription: it.Subscription, Ask: it.Ask}})
		}
	}
}

// boundJID is the bot's full JID on the current link (what ad-hoc
// commands are asked of), or the configured one.
func (s *Session) boundJID() string {
	s.mu.Lock()
	c := s.cur
	s.mu.Unlock()
	if c != nil && c.jid != "" {
		return c.jid
	}
	return s.cfg.JID + "/" + s.cfg.Resource
}

// resourceOf is the resource of a full JID, "" for a bare one.
func resourceOf(jid string) string {
	_, r, _ := strings.Cut(jid, "/")
	return r
}

// fitTracker is the Bot's record of the owner's clients. Only Bot.Run
// touches it.
type fitTracker struct {
	// names are the identity names learned, by caps node#ver: a client's
	// caps hash names its features, the same on every resource.
	names map[string]string
	// seen are the resources and what was last told of each.
	seen map[string]bridge.OwnerClient
	// asked are the disco#info requests under way or done, by resource
	// and node, so that each is asked once.
	asked map[string]bool
	// latest is each resource's caps key (node#ver, "" without caps) as
	// its latest presence said: an answer for an older one is stale.
	latest map[string]string
	// found carries the answers of the requests. Backpressure: each
	// request's goroutine waits to deliver or gives up when Run ends.
	found chan found
}

// found is the answer to a disco#info request of one of the owner's
// resources.
type found struct {
	resource, node, key, name string
}

// discoTimeout bounds a disco#info request of an owner's client.
const discoTimeout = 20 * time.Second

// fitNote turns a session note into the event for the core (nil for
// none), starting a disco#info request of a new client on wg.
func (b *Bot) fitNote(ctx context.Context, wg *sync.WaitGroup, n ownerNote) bridge.OwnerEvent {
	if r := n.roster; r != nil {
		return &bridge.OwnerRoster{
			OwnerMeta: bridge.OwnerMeta{Time: time.Now()},
			Bot:       b.s.cfg.JID,
			SeesBot:   r.Subscription == "from" || r.Subscription == "both",
			Accepted:  r.Subscription == "to" || r.Subscription == "both",
		}
	}
	p := n.presence
	res := resourceOf(p.From)
	if res == "" {
		return nil
	}
	if p.Type == "unavailable" {
		for k := range b.fit.asked {
			if strings.HasPrefix(k, res+"\x00") {
				delete(b.fit.asked, k)
			}
		}
		if _, ok := b.fit.seen[res]; !ok {
			return nil
		}
		delete(b.fit.seen, res)
		delete(b.fit.latest, res)
		return &bridge.OwnerClient{OwnerMeta: bridge.OwnerMeta{Resource: res, Time: time.Now()}, Bot: b.s.boundJID()}
	}
	node, key := "", ""
	if p.Caps != nil && p.Caps.Node != "" {
		node, key = p.Caps.Node, p.Caps.Node+"#"+p.Caps.Ver
	}
	b.fit.latest[res] = key
	if name, ok := b.fit.names[key]; ok && key != "" {
		return b.client(res, node, name)
	}
	b.ask(ctx, wg, p.From, node, key)
	return nil
}

// fitMessage starts a disco#info request of a resource the owner writes
// from without the bot having seen its presence (the owner has not
// accepted the bot's subscription).
func (b *Bot) fitMessage(ctx context.Context, wg *sync.WaitGroup, from string) {
	res := resourceOf(from)
	if res == "" {
		return
	}
	if _, ok := b.fit.latest[res]; ok {
		return // known from its presence
	}
	b.fit.latest[res] = ""
	b.ask(ctx, wg, from, "", "")
}

// ask requests the identity of the owner's full JID at caps key (node#ver,
// or "" for the entity), once per resource and key.
func (b *Bot) ask(ctx context.Context, wg *sync.WaitGroup, full, node, key string) {
	res := resourceOf(full)
	if b.fit.asked[res+"\x00"+key] {
		return
	}
	b.fit.asked[res+"\x00"+key] = true // forgotten when res goes offline
	wg.Go(func() {
		qctx, cancel := context.WithTimeout(ctx, discoTimeout)
		defer cancel()
		name, err := b.s.discoIdentity(qctx, full, key)
		if err != nil {
			// The caps node alone often names the client.
			b.s.log.Debug("owner's client did not say its name", "resource", res, "err", err)
		}
		select {
		case b.fit.found <- found{resource: res, node: node, key: key, name: name}:
		case <-ctx.Done():
		}
	})
}

// fitFound turns a disco#info answer into the event for the core.
func (b *Bot) fitFound(f found) bridge.OwnerEvent {
	if f.key != "" && f.name != "" {
		b.fit.names[f.key] = f.name
	}
	if k, ok := b.fit.latest[f.resource]; !ok || k != f.key {
		return nil // the resource went offline or changed since
	}
	return b.client(f.resource, f.node, f.name)
}

// client is the event telling the core what res runs, nil when it was
// told so already.
func (b *Bot) client(res, node, name string) bridge.OwnerEvent {
	ev := bridge.OwnerClient{OwnerMeta: bridge.OwnerMeta{Resource: res}, Online: true, Node: node, Name: name, Bot: b.s.boundJID()}
	if b.fit.seen[res] == ev {
		return nil
	}
	b.fit.seen[res] = ev
	ev.Time = time.Now()
	return &ev
}
