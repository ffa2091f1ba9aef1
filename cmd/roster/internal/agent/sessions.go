package agent

import (
	"log/slog"
	"sync"
	"time"

	"roster/catalog"
)

// sessionTTLMultiplier: a TTL session is invalidated only after twice its
// TTL without a renewal, as Consul does (structs.SessionTTLMultiplier), so
// a client renewing at the TTL never races its own expiry.
const sessionTTLMultiplier = 2

// sessionTimers are the leader's TTL clocks, one per TTL session. They
// live only on the leader and only for one term: a new leader starts every
// clock afresh from the full TTL (it cannot know when the last renewal
// was), which errs on the side of keeping sessions.
type sessionTimers struct {
	a       *Agent
	expired chan string   // session IDs whose clock ran out, read by the leader loop
	done    chan struct{} // closed by stopAll

	// mu guards timers and stopped.
	mu      sync.Mutex
	timers  map[string]*time.Timer
	stopped bool
}

func newSessionTimers(a *Agent) *sessionTimers {
	return &sessionTimers{a: a, expired: make(chan string, 64), done: make(chan struct{}), timers: map[string]*time.Timer{}}
}

// resetAll starts a clock for every TTL session in the catalog that has
// none, and drops clocks of sessions that no longer exist.
func (st *sessionTimers) resetAll() {
	sessions, _ := st.a.srv.store.Sessions()
	live := map[string]bool{}
	for _, s := range sessions {
		live[s.ID] = true
		st.mu.Lock()
		_, has := st.timers[s.ID]
		st.mu.Unlock()
		if !has {
			st.reset(s.ID, s.TTL)
		}
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	for id, t := range st.timers {
		if !live[id] {
			t.Stop()
			delete(st.timers, id)
		}
	}
}

// reset (re)starts session id's clock; a session without a TTL has none.
func (st *sessionTimers) reset(id, ttl string) {
	d, err := time.ParseDuration(ttl)
	if ttl == "" || err != nil || d <= 0 {
		return
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.stopped {
		return
	}
	if t, ok := st.timers[id]; ok {
		t.Stop()
	}
	st.timers[id] = time.AfterFunc(d*sessionTTLMultiplier, func() {
		select {
		case st.expired <- id:
		case <-st.done:
		}
	})
}

// invalidate destroys an expired session through Raft (releasing or
// deleting its locks per its Behavior).
func (st *sessionTimers) invalidate(id string) {
	st.mu.Lock()
	delete(st.timers, id)
	st.mu.Unlock()
	if s, _ := st.a.srv.store.Session(id); s == nil {
		return
	}
	st.a.log.Info("leader: session TTL expired; invalidating", nodeAttr(st.a.cfg.NodeName), slog.String("session", id))
	err := st.a.applyCatalog(&catalog.SessionRequest{Verb: catalog.SessionDestroy, Session: catalog.SessionEntry{ID: id}})
	st.a.logApplyErr("invalidate session "+id, err)
}

func (st *sessionTimers) stopAll() {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.stopped {
		return
	}
	st.stopped = true
	close(st.done)
	for _, t := range st.timers {
		t.Stop()
	}
	clear(st.timers)
}

// SessionRenewed restarts a session's TTL clock; the Session endpoint
// calls it after a renew (and a create) committed on the leader. On a
// follower it does nothing: only the leader keeps clocks.
func (a *Agent) SessionRenewed(id, ttl string) {
	if st := a.sessions.Load(); st != nil {
		st.reset(id, ttl)
	}
}
