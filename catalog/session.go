package catalog

import (
	"errors"
	"fmt"
	"time"
)

// Sessions (Consul's session semantics).
//
// A session belongs to a node and is bound to checks (by default the node's
// serfHealth; the HTTP layer fills that default, since only it knows whether
// the client named checks). It is invalidated when it is destroyed, when its
// node is deregistered, when one of its checks goes critical or is removed,
// and when its TTL expires. Invalidation deletes the session and, by its
// Behavior, releases the locks it holds (clears Session, bumps ModifyIndex,
// keeps LockIndex) or deletes the locked keys.
//
// What is NOT in the replicated state, and why:
//
//   - TTL timers. Only the leader runs them (Consul's session timers): it
//     arms a timer of 2×TTL on create and renew, and proposes a destroy when
//     it fires. A new leader re-arms timers for all sessions. The store only
//     validates TTL and answers renew.
//   - Lock delay. After an invalidation releases key K, Consul refuses to
//     let anyone acquire K for the session's LockDelay, measured on the
//     wall clock of each server. The store records that deadline (with the
//     injected Config.Clock) when it commits the invalidation; the leader
//     calls LockDelayed before proposing an acquire and answers false
//     without proposing while it holds. Apply never consults it, so replicas
//     stay deterministic whatever their clocks say.

// Session TTL bounds and the lock delay cap, as in Consul.
const (
	SessionTTLMin          = 10 * time.Second
	SessionTTLMax          = 24 * time.Hour
	MaxLockDelay           = 60 * time.Second
	DefaultLockDelay       = 15 * time.Second
	DefaultSessionBehavior = SessionRelease
)

func (t *tx) applySession(r *SessionRequest) Result {
	switch r.Verb {
	case SessionCreate:
		s, err := t.createSession(&r.Session)
		return Result{OK: err == nil, Err: err, Session: s}
	case SessionDestroy:
		if r.Session.ID == "" {
			return Result{Err: errors.New("catalog: session destroy: missing session ID")}
		}
		t.invalidateSession(r.Session.ID)
		return Result{OK: true}
	case SessionRenew:
		s := t.st.sessions[r.Session.ID]
		if s == nil {
			return Result{Err: fmt.Errorf("catalog: session renew: session %q is %w (expired or destroyed)", r.Session.ID, ErrNotFound)}
		}
		c := s.Clone()
		return Result{OK: true, Session: &c}
	}
	return Result{Err: fmt.Errorf("catalog: session verb %q is unknown; use create, destroy or renew", r.Verb)}
}

func (t *tx) createSession(in *SessionEntry) (*SessionEntry, error) {
	if err := t.validateSession(in); err != nil {
		return nil, fmt.Errorf("catalog: session create: %w", err)
	}
	rec := *in
	if rec.Behavior == "" {
		rec.Behavior = DefaultSessionBehavior
	}
	rec.LockDelay = min(rec.LockDelay, MaxLockDelay)
	rec.CreateIndex, rec.ModifyIndex = t.index, t.index
	t.setSession(&rec)
	out := rec.Clone()
	return &out, nil
}

func (t *tx) validateSession(s *SessionEntry) error {
	if s.ID == "" {
		return errors.New("missing session ID (the proposer must generate one)")
	}
	if t.st.sessions[s.ID] != nil {
		return fmt.Errorf("session %q already exists", s.ID)
	}
	s.Node = t.st.nodeName(s.Node) // node names are case-insensitive (nodename.go)
	if t.st.nodes[s.Node] == nil {
		return fmt.Errorf("Missing node registration: node %q is %w", s.Node, ErrNotFound)
	}
	switch s.Behavior {
	case "", SessionRelease, SessionDelete:
	default:
		return fmt.Errorf("Invalid Behavior setting %q; use release or delete", s.Behavior)
	}
	if s.LockDelay < 0 {
		return fmt.Errorf("LockDelay %v is negative", s.LockDelay)
	}
	if s.TTL != "" {
		ttl, err := time.ParseDuration(s.TTL)
		if err != nil {
			return fmt.Errorf("Session TTL %q is not a duration: %v", s.TTL, err)
		}
		if ttl != 0 && (ttl < SessionTTLMin || ttl > SessionTTLMax) {
			return fmt.Errorf("Invalid Session TTL %q, must be between [%v=%v]", s.TTL, SessionTTLMin, SessionTTLMax)
		}
	}
	for _, ref := range sessionChecks(s) {
		c := t.st.check(ref.node, ref.checkID)
		if c == nil {
			return fmt.Errorf("Missing check %q registration on node %q", ref.checkID, ref.node)
		}
		if c.status == codeCritical {
			return fmt.Errorf("Check '%s' is in %s state", ref.checkID, HealthCritical)
		}
	}
	return nil
}

// invalidateSession deletes session id and releases or deletes its locks,
// recording a lock delay for each key (applied at commit).
func (t *tx) invalidateSession(id string) {
	s := t.st.sessions[id]
	if s == nil {
		return
	}
	t.releases = append(t.releases[:0], sortedKeys(t.st.locks[id])...)
	t.removeSession(id)
	for _, key := range t.releases {
		old := t.st.kv[key]
		if old == nil || old.Session != id {
			continue
		}
		if s.Behavior == SessionDelete {
			t.removeKV(key)
		} else {
			rec := *old
			rec.Session = ""
			rec.ModifyIndex = t.index
			t.setKV(&rec)
		}
		if s.LockDelay > 0 {
			t.lockDelays = append(t.lockDelays, lockDelayRec{key: key, delay: s.LockDelay})
		}
	}
}

// invalidateCheckSessions invalidates every session bound to a check.
func (t *tx) invalidateCheckSessions(node, checkID string) {
	ids := sortedKeys(t.st.sessionsByCheck[checkRef{node, checkID}])
	for _, id := range ids {
		t.invalidateSession(id)
	}
}

// LockDelayed reports whether key is inside a lock-delay window on this
// server, and until when. The leader calls it before proposing a KV lock
// (acquire) and answers "not acquired" without proposing while it holds.
// See the package comment in session.go for why this is outside raft.
func (s *Store) LockDelayed(key string) (until time.Time, delayed bool) {
	s.mu.RLock()
	until, ok := s.lockDelay[key]
	s.mu.RUnlock()
	if !ok {
		return time.Time{}, false
	}
	if !s.cfg.Clock().Before(until) {
		s.mu.Lock()
		if u, ok := s.lockDelay[key]; ok && u.Equal(until) {
			delete(s.lockDelay, key) // expired: forget it
		}
		s.mu.Unlock()
		return time.Time{}, false
	}
	return until, true
}

// TTLDuration parses the session's TTL; 0 means the session has none. The leader
// arms its invalidation timer at twice this (Consul's grace), re-armed on
// every renew.
func (s SessionEntry) TTLDuration() (time.Duration, error) {
	if s.TTL == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s.TTL)
	if err != nil {
		return 0, fmt.Errorf("catalog: session %q has TTL %q, not a duration: %v", s.ID, s.TTL, err)
	}
	return d, nil
}
