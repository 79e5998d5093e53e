package store

import (
	"slices"
	"sync"

	bolt "go.etcd.io/bbolt"
)

// readCache holds what the core reads for every relayed message (the
// chat's record, its invite record, the route) as last committed, so that
// such a read is a map lookup rather than a bbolt read transaction and a
// decoding (about 25 allocations each, several times per message).
//
// Every commit that changes chats, aliases, invites or the route empties
// it (changed, through tx.OnCommit: a transaction that rolls back changes
// nothing). A read that ran while such a commit was finishing may have
// seen the old state: it fills the cache only if no commit emptied it
// since the read began (gen). bbolt runs commit handlers after the
// writer's lock is released, so a read may see new data before the
// handler ran; it is then only not kept.
type readCache struct {
	mu      sync.Mutex
	gen     uint64
	chats   map[string]cachedChat   // by the id asked for (an alias too)
	invites map[string]cachedInvite // likewise
	route   *cachedRoute
}

// maxCached bounds each map: past it the map starts over.
const maxCached = 4096

type cachedChat struct {
	c  Chat
	ok bool // false: no such chat
}

type cachedInvite struct {
	inv Invite
	ok  bool
}

type cachedRoute struct {
	id string
	ok bool
}

// generation is where a read starts: pass it to the put that keeps what
// the read found.
func (rc *readCache) generation() uint64 {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.gen
}

// reset forgets everything.
func (rc *readCache) reset() {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.gen++
	rc.chats, rc.invites, rc.route = nil, nil, nil
}

// changed empties the cache when tx commits. Every write of chats,
// aliases, invites or the route calls it.
func (rc *readCache) changed(tx *bolt.Tx) { tx.OnCommit(rc.reset) }

func (rc *readCache) chat(id string) (cachedChat, bool) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	c, ok := rc.chats[id]
	return c, ok
}

func (rc *readCache) putChat(gen uint64, id string, c cachedChat) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if gen != rc.gen {
		return
	}
	if rc.chats == nil || len(rc.chats) >= maxCached {
		rc.chats = map[string]cachedChat{}
	}
	rc.chats[id] = c
}

// invite returns a copy: the caller may change its Sent.
func (rc *readCache) invite(id string) (cachedInvite, bool) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	inv, ok := rc.invites[id]
	inv.inv.Sent = slices.Clone(inv.inv.Sent)
	return inv, ok
}

func (rc *readCache) putInvite(gen uint64, id string, inv cachedInvite) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if gen != rc.gen {
		return
	}
	if rc.invites == nil || len(rc.invites) >= maxCached {
		rc.invites = map[string]cachedInvite{}
	}
	inv.inv.Sent = slices.Clone(inv.inv.Sent)
	rc.invites[id] = inv
}

func (rc *readCache) getRoute() (cachedRoute, bool) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.route == nil {
		return cachedRoute{}, false
	}
	return *rc.route, true
}

func (rc *readCache) putRoute(gen uint64, r cachedRoute) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if gen == rc.gen {
		rc.route = &r
	}
}
