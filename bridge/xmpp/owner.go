package xmpp

import (
	"context"
	"slices"
	"time"
)

// ownerPresence keeps track of the owner's online resources and their
// caps nodes (XEP-0115), which say which client each is ("http://monal.im/",
// "https://siskin.im", "http://conversations.im"…).
func (s *Session) ownerPresence(p *InPresence) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch p.Type {
	case "":
		if s.ownerCaps == nil {
			s.ownerCaps = map[string]string{}
		}
		node := ""
		if p.Caps != nil {
			node = p.Caps.Node
		}
		if len(s.ownerCaps) < 64 || s.ownerCaps[p.From] != "" {
			s.ownerCaps[p.From] = node
		}
		if s.ownerSeen != nil {
			select {
			case <-s.ownerSeen:
			default:
				close(s.ownerSeen)
			}
		}
	case "unavailable":
		delete(s.ownerCaps, p.From)
	}
}

// OwnerClients returns the caps nodes of the owner's online resources
// (those that sent caps), sorted.
func (s *Session) OwnerClients() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, n := range s.ownerCaps {
		if n != "" {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

// awaitOwner waits, at most d, until this link has seen the owner's
// presence; at once when it has.
func (s *Session) awaitOwner(ctx context.Context, d time.Duration) {
	s.mu.Lock()
	seen := s.ownerSeen
	s.mu.Unlock()
	if seen == nil {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-seen:
	case <-t.C:
	case <-ctx.Done():
	}
}
