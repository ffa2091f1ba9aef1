package catalog

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

// kvStep is one KV command and the outcome it must have.
type kvStep struct {
	cmd    Command
	wantOK bool
	errHas string
}

// TestKV_Semantics runs Consul's KV rules step by step; each case starts
// from a store with node n1 (with a passing serfHealth) and sessions s1, s2.
func TestKV_Semantics(t *testing.T) {
	lock := func(key, sess string) *KVRequest {
		return &KVRequest{Verb: KVLock, Key: key, Session: sess, Value: []byte(sess)}
	}
	unlock := func(key, sess string) *KVRequest { return &KVRequest{Verb: KVUnlock, Key: key, Session: sess} }
	cas := func(key string, idx uint64) *KVRequest {
		return &KVRequest{Verb: KVCAS, Key: key, Index: idx, Value: []byte("c")}
	}
	cases := []struct {
		name  string
		steps []kvStep
		check func(t *testing.T, h *harness)
	}{{
		name:  "cas 0 creates only if absent",
		steps: []kvStep{{cmd: cas("k", 0), wantOK: true}, {cmd: cas("k", 0), wantOK: false}},
	}, {
		name: "cas with a stale index conflicts, with the current one succeeds",
		// setup used indexes 1..4, so the set lands at 5.
		steps: []kvStep{{cmd: kvSet("k", "v"), wantOK: true}, {cmd: cas("k", 4), wantOK: false}, {cmd: cas("k", 5), wantOK: true}},
	}, {
		name: "lock: free key is acquired, held key refused to another session, re-acquire keeps LockIndex",
		steps: []kvStep{
			{cmd: lock("k", "s1"), wantOK: true}, {cmd: lock("k", "s2"), wantOK: false},
			{cmd: lock("k", "s1"), wantOK: true},
		},
		check: func(t *testing.T, h *harness) {
			p, _ := h.s.KVGet("k")
			if p.Session != "s1" || p.LockIndex != 1 {
				t.Fatalf("pair %+v, want held by s1 with LockIndex 1", p)
			}
		},
	}, {
		name: "unlock by a non-holder fails; by the holder clears Session; a new holder bumps LockIndex",
		steps: []kvStep{
			{cmd: lock("k", "s1"), wantOK: true}, {cmd: unlock("k", "s2"), wantOK: false},
			{cmd: unlock("k", "s1"), wantOK: true}, {cmd: lock("k", "s2"), wantOK: true},
		},
		check: func(t *testing.T, h *harness) {
			p, _ := h.s.KVGet("k")
			if p.Session != "s2" || p.LockIndex != 2 {
				t.Fatalf("pair %+v, want held by s2 with LockIndex 2", p)
			}
		},
	}, {
		name:  "lock with an unknown session is an error",
		steps: []kvStep{{cmd: lock("k", "nope"), errHas: "invalid session"}},
	}, {
		name:  "set keeps the lock holder",
		steps: []kvStep{{cmd: lock("k", "s1"), wantOK: true}, {cmd: kvSet("k", "new"), wantOK: true}},
		check: func(t *testing.T, h *harness) {
			if p, _ := h.s.KVGet("k"); p.Session != "s1" || string(p.Value) != "new" {
				t.Fatalf("pair %+v, want value new still held by s1", p)
			}
		},
	}, {
		name: "delete-cas: stale index refused, absent key answers true",
		steps: []kvStep{
			{cmd: kvSet("k", "v"), wantOK: true},
			{cmd: &KVRequest{Verb: KVDeleteCAS, Key: "k", Index: 1}, wantOK: false},
			{cmd: &KVRequest{Verb: KVDeleteCAS, Key: "k", Index: 5}, wantOK: true},
			{cmd: &KVRequest{Verb: KVDeleteCAS, Key: "k", Index: 5}, wantOK: true},
		},
		check: func(t *testing.T, h *harness) {
			if p, _ := h.s.KVGet("k"); p != nil {
				t.Fatalf("k still there: %+v", p)
			}
		},
	}, {
		name: "delete-tree removes the prefix only and the prefix index still moves",
		steps: []kvStep{
			{cmd: kvSet("a/1", "x"), wantOK: true}, {cmd: kvSet("a/2", "x"), wantOK: true},
			{cmd: kvSet("b", "x"), wantOK: true}, {cmd: &KVRequest{Verb: KVDeleteTree, Key: "a/"}, wantOK: true},
		},
		check: func(t *testing.T, h *harness) {
			list, idx := h.s.KVList("a/")
			if len(list) != 0 || idx != 8 {
				t.Fatalf("a/ holds %+v at index %d; want empty at the delete's index 8 (tombstones)", list, idx)
			}
			if list, _ := h.s.KVList(""); len(list) != 1 || list[0].Key != "b" {
				t.Fatalf("whole store %+v, want only b", list)
			}
		},
	}, {
		name:  "value over the limit is refused",
		steps: []kvStep{{cmd: &KVRequest{Verb: KVSet, Key: "big", Value: make([]byte, MaxValueBytes+1)}, errHas: "limit"}},
	}, {
		name:  "read verbs are refused outside a transaction",
		steps: []kvStep{{cmd: &KVRequest{Verb: KVGet, Key: "k"}, errHas: "transaction"}},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newKVHarness(t)
			for i, st := range tc.steps {
				res := h.apply(st.cmd)
				if st.errHas != "" {
					if res.Err == nil || !strings.Contains(res.Err.Error(), st.errHas) {
						t.Fatalf("step %d: error %v, want one containing %q", i, res.Err, st.errHas)
					}
					continue
				}
				if res.Err != nil || res.OK != st.wantOK {
					t.Fatalf("step %d (%+v): ok=%v err=%v, want ok=%v", i, st.cmd, res.OK, res.Err, st.wantOK)
				}
			}
			if tc.check != nil {
				tc.check(t, h)
			}
		})
	}
}

// newKVHarness registers node n1 with serfHealth and sessions s1, s2
// (indexes 1..4).
func newKVHarness(t testing.TB) *harness {
	h := newHarness(t, Config{})
	h.ok(regNode("n1", "10.0.0.1"))
	h.ok(regCheck("n1", "serfHealth", "", HealthPassing))
	for _, id := range []string{"s1", "s2"} {
		h.ok(&SessionRequest{Verb: SessionCreate, Session: SessionEntry{ID: id, Node: "n1",
			NodeChecks: []string{"serfHealth"}, LockDelay: 15 * time.Second}})
	}
	return h
}

// TestSession_InvalidationReleasesOrDeletes covers each trigger with each
// behavior: the held key is released (Session cleared, ModifyIndex bumped,
// LockIndex kept) or deleted, and a lock delay is recorded.
func TestSession_InvalidationReleasesOrDeletes(t *testing.T) {
	triggers := map[string]Command{
		"destroy":            &SessionRequest{Verb: SessionDestroy, Session: SessionEntry{ID: "s"}},
		"node deregistered":  &DeregisterRequest{Node: "n1"},
		"check critical":     regCheck("n1", "serfHealth", "", HealthCritical),
		"check deregistered": &DeregisterRequest{Node: "n1", CheckID: "serfHealth"},
		"txn session delete": &TxnRequest{Ops: []TxnOp{{Session: &TxnSessionOp{Verb: OpDelete, Session: SessionEntry{ID: "s"}}}}},
	}
	for name, trigger := range triggers {
		for _, behavior := range []string{SessionRelease, SessionDelete} {
			t.Run(name+"/"+behavior, func(t *testing.T) {
				h := newKVHarness(t)
				h.ok(&SessionRequest{Verb: SessionCreate, Session: SessionEntry{ID: "s", Node: "n1",
					NodeChecks: []string{"serfHealth"}, Behavior: behavior, LockDelay: 10 * time.Second}})
				h.ok(&KVRequest{Verb: KVLock, Key: "lock", Session: "s"})
				h.ok(trigger)
				if sess, _ := h.s.Session("s"); sess != nil {
					t.Fatalf("session survived: %+v", sess)
				}
				p, _ := h.s.KVGet("lock")
				switch {
				case behavior == SessionDelete && p != nil:
					t.Fatalf("delete behavior left the key: %+v", p)
				case behavior == SessionRelease && (p == nil || p.Session != "" || p.LockIndex != 1 || p.ModifyIndex != h.idx):
					t.Fatalf("release behavior: pair %+v, want Session cleared, LockIndex 1, ModifyIndex %d", p, h.idx)
				}
				if until, delayed := h.s.LockDelayed("lock"); !delayed || !until.Equal(h.clock.Now().Add(10*time.Second)) {
					t.Fatalf("lock delay %v %v, want until now+10s", until, delayed)
				}
				h.clock.Advance(10 * time.Second)
				if _, delayed := h.s.LockDelayed("lock"); delayed {
					t.Fatalf("lock delay still active after it elapsed")
				}
			})
		}
	}
}

// TestSession_CreateValidation covers Consul's create-time rules.
func TestSession_CreateValidation(t *testing.T) {
	h := newKVHarness(t)
	h.ok(regCheck("n1", "bad", "", HealthCritical))
	cases := map[string]SessionEntry{
		"unknown node":    {ID: "x", Node: "ghost"},
		"critical check":  {ID: "x", Node: "n1", NodeChecks: []string{"bad"}},
		"missing check":   {ID: "x", Node: "n1", NodeChecks: []string{"nope"}},
		"bad behavior":    {ID: "x", Node: "n1", Behavior: "explode"},
		"ttl too short":   {ID: "x", Node: "n1", TTL: "1s"},
		"ttl not a dur":   {ID: "x", Node: "n1", TTL: "soon"},
		"duplicate ID":    {ID: "s1", Node: "n1"},
		"missing ID":      {Node: "n1"},
		"negative delays": {ID: "x", Node: "n1", LockDelay: -1},
	}
	for name, sess := range cases {
		if res := h.apply(&SessionRequest{Verb: SessionCreate, Session: sess}); res.Err == nil {
			t.Errorf("%s: create succeeded, want an error", name)
		}
	}
	res := h.ok(&SessionRequest{Verb: SessionCreate, Session: SessionEntry{ID: "ok", Node: "n1", TTL: "15s", LockDelay: time.Hour}})
	if res.Session == nil || res.Session.Behavior != SessionRelease || res.Session.LockDelay != MaxLockDelay {
		t.Fatalf("created %+v, want default behavior release and lock delay capped at %v", res.Session, MaxLockDelay)
	}
	if res := h.apply(&SessionRequest{Verb: SessionRenew, Session: SessionEntry{ID: "ok"}}); res.Err != nil || res.Session.ID != "ok" {
		t.Fatalf("renew of a live session: %+v", res)
	}
	if res := h.apply(&SessionRequest{Verb: SessionRenew, Session: SessionEntry{ID: "gone"}}); !errors.Is(res.Err, ErrNotFound) {
		t.Fatalf("renew of an unknown session: err %v, want ErrNotFound", res.Err)
	}
	if list, _ := h.s.NodeSessions("n1"); len(list) != 3 {
		t.Fatalf("node sessions %+v, want s1, s2, ok", list)
	}
}

// TestKV_KeysWithSeparator checks the ls-like rollup.
func TestKV_KeysWithSeparator(t *testing.T) {
	h := newHarness(t, Config{})
	for _, k := range []string{"app/a", "app/b/c", "app/b/d", "apple", "z"} {
		h.ok(kvSet(k, "v"))
	}
	keys, _ := h.s.KVKeys("app/", "/")
	if want := []string{"app/a", "app/b/"}; !slices.Equal(keys, want) {
		t.Fatalf("keys %v, want %v", keys, want)
	}
	keys, _ = h.s.KVKeys("", "/")
	if want := []string{"app/", "apple", "z"}; !slices.Equal(keys, want) {
		t.Fatalf("root keys %v, want %v", keys, want)
	}
	keys, _ = h.s.KVKeys("app", "")
	if len(keys) != 4 {
		t.Fatalf("keys under app without separator: %v, want 4", keys)
	}
}

func TestSession_TTLDuration(t *testing.T) {
	if d, err := (SessionEntry{TTL: "15s"}).TTLDuration(); err != nil || d != 15*time.Second {
		t.Fatalf("TTLDuration(15s) = %v, %v", d, err)
	}
	if d, err := (SessionEntry{}).TTLDuration(); err != nil || d != 0 {
		t.Fatalf("TTLDuration(none) = %v, %v", d, err)
	}
	if _, err := (SessionEntry{TTL: "x"}).TTLDuration(); err == nil {
		t.Fatalf("TTLDuration(x) succeeded")
	}
}
