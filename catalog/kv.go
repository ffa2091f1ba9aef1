package catalog

import (
	"errors"
	"fmt"
	"strings"
)

// KV writes (Consul's KVS.Apply). Conditional verbs that do not apply return
// false, not an error: "the key changed under you" is an answer. Errors are
// for requests that could never succeed as sent.

// ErrInvalidSession is wrapped when a lock names an unknown session.
var ErrInvalidSession = errors.New("invalid session")

// applyKV applies one write verb and reports whether it took effect.
func (t *tx) applyKV(r *KVRequest, maxValueBytes int) (bool, error) {
	if r.Key == "" && r.Verb != KVDeleteTree {
		return false, fmt.Errorf("catalog: kv %s: Missing key name", r.Verb)
	}
	if len(r.Value) > maxValueBytes {
		return false, fmt.Errorf("catalog: kv %s %q: value is %d bytes, the limit is %d; store less or split it",
			r.Verb, r.Key, len(r.Value), maxValueBytes)
	}
	old := t.st.kv[r.Key]
	switch r.Verb {
	case KVSet:
		t.kvWrite(r, old, old.session())
		return true, nil
	case KVCAS:
		if !casMatches(old, r.Index) {
			return false, nil
		}
		t.kvWrite(r, old, old.session())
		return true, nil
	case KVLock:
		return t.kvLock(r, old)
	case KVUnlock:
		if old == nil || old.Session != r.Session {
			return false, nil
		}
		t.kvWrite(r, old, "")
		return true, nil
	case KVDelete:
		t.removeKV(r.Key)
		return true, nil
	case KVDeleteCAS:
		if old == nil {
			return true, nil // nothing to delete: Consul answers true
		}
		if old.ModifyIndex != r.Index {
			return false, nil
		}
		t.removeKV(r.Key)
		return true, nil
	case KVDeleteTree:
		for _, key := range t.st.kvKeysWithPrefix(r.Key) {
			t.removeKV(key)
		}
		return true, nil
	case KVGet, KVGetOrEmpty, KVGetTree, KVCheckIndex, KVCheckSession, KVCheckNotExists:
		return false, fmt.Errorf("catalog: kv verb %q only reads; use it inside a transaction", r.Verb)
	}
	return false, fmt.Errorf("catalog: kv verb %q is unknown", r.Verb)
}

func (p *KVPair) session() string {
	if p == nil {
		return ""
	}
	return p.Session
}

// casMatches is Consul's check-and-set rule: index 0 means "only if absent",
// otherwise the stored ModifyIndex must equal it.
func casMatches(old *KVPair, index uint64) bool {
	if index == 0 {
		return old == nil
	}
	return old != nil && old.ModifyIndex == index
}

// kvWrite stores r's value and flags under session, keeping CreateIndex and
// LockIndex of an existing key.
func (t *tx) kvWrite(r *KVRequest, old *KVPair, session string) {
	rec := &KVPair{Key: r.Key, Flags: r.Flags, Value: r.Value, Session: session,
		CreateIndex: t.index, ModifyIndex: t.index}
	if old != nil {
		rec.CreateIndex, rec.LockIndex = old.CreateIndex, old.LockIndex
	}
	t.setKV(rec)
}

// kvLock acquires r.Key for r.Session: it succeeds if the key is free or
// already held by the same session; LockIndex counts changes of holder.
// The lock-delay window is the leader's to enforce before proposing
// (Store.LockDelayed), not Apply's.
func (t *tx) kvLock(r *KVRequest, old *KVPair) (bool, error) {
	if r.Session == "" || t.st.sessions[r.Session] == nil {
		return false, fmt.Errorf("catalog: kv lock %q: %w %q (create it first; it may have expired)", r.Key, ErrInvalidSession, r.Session)
	}
	if old != nil && old.Session != "" && old.Session != r.Session {
		return false, nil
	}
	rec := &KVPair{Key: r.Key, Flags: r.Flags, Value: r.Value, Session: r.Session,
		CreateIndex: t.index, ModifyIndex: t.index, LockIndex: 1}
	if old != nil {
		rec.CreateIndex, rec.LockIndex = old.CreateIndex, old.LockIndex
		if old.Session != r.Session {
			rec.LockIndex++
		}
	}
	t.setKV(rec)
	return true, nil
}

// kvKeysWithPrefix returns the live keys under prefix, sorted. The ordered
// index makes it O(log n + m) for m keys (and tombstones) under prefix.
func (st *state) kvKeysWithPrefix(prefix string) []string {
	var keys []string
	st.kvOrder.ascendPrefix(prefix, func(k string) bool {
		if st.kv[k] != nil {
			keys = append(keys, k)
		}
		return true
	})
	return keys
}

// kvKeysRolledUp lists the live keys under prefix, each rolled up to the
// first separator after the prefix ("dir/"), as `ls` would, in order and
// without repeats. A rolled-up key skips the rest of its subtree with one
// seek, so a directory of many keys costs one step, not one per key.
func (st *state) kvKeysRolledUp(prefix, separator string) []string {
	out := []string{}
	from, more := prefix, true
	for more {
		more = false
		st.kvOrder.ascend(from, func(k string) bool {
			if !strings.HasPrefix(k, prefix) {
				return false
			}
			if st.kv[k] == nil {
				return true // a tombstone
			}
			if i := strings.Index(k[len(prefix):], separator); separator != "" && i >= 0 {
				dir := k[:len(prefix)+i+len(separator)]
				out = append(out, dir)
				from, more = prefixEnd(dir)
				return false
			}
			out = append(out, k)
			return true
		})
	}
	return out
}

// kvPrefixIndex is the blocking index of a prefix: the highest ModifyIndex
// of a key under it, tombstones included, or the KV table index if nothing
// is under it. O(log n + m), like the list it guards.
func (st *state) kvPrefixIndex(prefix string) uint64 {
	var idx uint64
	st.kvOrder.ascendPrefix(prefix, func(k string) bool {
		if p := st.kv[k]; p != nil {
			idx = max(idx, p.ModifyIndex)
		} else {
			idx = max(idx, st.tombstones[k])
		}
		return true
	})
	if idx == 0 {
		idx = st.tableIndex[TableKV]
	}
	return idx
}
