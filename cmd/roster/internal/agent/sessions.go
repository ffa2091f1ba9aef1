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
		if d, err := time.ParseDuration(s.TTL); !has && err == nil {
			st.reset(s.ID, d)
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
func (st *sessionTimers) reset(id string, d time.Duration) {
	if d <= 0 {
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

// clear stops session id's clock (the session was destroyed).
func (st *sessionTimers) clear(id string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if t, ok := st.timers[id]; ok {
		t.Stop()
		delete(st.timers, id)
	}
}

// leaderSessionTimers is what the Session endpoint sees: the clocks of the
// current leadership term, or nothing on a follower (only the leader keeps
// clocks; a new leader re-arms them from the catalog).
type leaderSessionTimers struct{ a *Agent }

// Reset (re)arms session id's clock after a create or renew.
func (l leaderSessionTimers) Reset(id string, ttl time.Duration) {
	if st := l.a.sessions.Load(); st != nil {
		st.reset(id, ttl)
	}
}

// Clear stops session id's clock after a destroy.
func (l leaderSessionTimers) Clear(id string) {
	if st := l.a.sessions.Load(); st != nil {
		st.clear(id)
	}
}
