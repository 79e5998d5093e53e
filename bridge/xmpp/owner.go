package xmpp

import "slices"

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
