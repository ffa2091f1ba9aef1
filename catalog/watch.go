package catalog

import (
	"context"
	"sync"
	"sync/atomic"
)

// Blocking queries. A reader that got index N asks Wait(ctx, w, N) and
// returns as soon as the index of what it watches exceeds N, or when ctx
// ends. No polling: each watched topic has one channel, shared by all its
// waiters and closed by the commit that touches the topic; a commit closes
// only the channels of the topics it touched, so one change wakes only the
// affected waiters however many are blocked.
//
// Topics: a table, a service name (its instances, their nodes and checks), a
// node (the node, its services and checks) and a KV prefix (any key under
// it, deletes included). A change to key "a/b/c" closes the channels of the
// prefixes "", "a", "a/", "a/b", ... — one map lookup per prefix length,
// done only when some KV waiter exists.

// Watch names what a blocking query waits on.
type Watch struct {
	kind watchKind
	key  string
}

type watchKind uint8

const (
	watchTable watchKind = iota + 1
	watchService
	watchNode
	watchKV
	watchKVKey
)

// WatchTable watches a whole table.
func WatchTable(t Table) Watch { return Watch{kind: watchTable, key: tableNames[t%numTables]} }

// WatchService watches one service's instances, their nodes and checks.
// Service names compare case-insensitively, as in Consul's catalog, so the
// topic is the folded name: a change to "web" wakes a waiter on "WEB".
func WatchService(name string) Watch { return Watch{kind: watchService, key: foldName(name)} }

// WatchNode watches one node, its services and checks. Node names compare
// case-insensitively, as in Consul, so the topic is the folded name.
func WatchNode(name string) Watch { return Watch{kind: watchNode, key: foldName(name)} }

// WatchKV watches every key under prefix (a single key is a prefix too).
func WatchKV(prefix string) Watch { return Watch{kind: watchKV, key: prefix} }

// WatchKVKey watches exactly one key; its index is the key's ModifyIndex
// (or its tombstone's, or the KV table's if it never existed), as Consul
// reports for a single-key GET.
func WatchKVKey(key string) Watch { return Watch{kind: watchKVKey, key: key} }

// WatchRegistry watches the delta log (every registry change).
func WatchRegistry() Watch { return WatchTable(TableRegistry) }

// watchSet holds the channels of the topics somebody waits on.
type watchSet struct {
	// mu guards slots and kvSlots. Lock order: Store.mu before watchSet.mu.
	mu      sync.Mutex
	slots   map[Watch]*waitSlot
	kvSlots int // how many slots are KV prefixes
	// waiters counts blocked waiters. It is atomic, not under mu, because
	// every woken waiter decrements it: 10,000 waking at once would
	// otherwise queue on mu just to count themselves out.
	waiters atomic.Int64
}

// waitSlot is one topic's channel and the number of waiters blocked on it.
type waitSlot struct {
	ch      chan struct{}
	waiters int
}

func (ws *watchSet) init() { ws.slots = map[Watch]*waitSlot{} }

func (ws *watchSet) count() int { return int(ws.waiters.Load()) }

// join registers a waiter on w and returns its slot.
func (ws *watchSet) join(w Watch) *waitSlot {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	slot := ws.slots[w]
	if slot == nil {
		slot = &waitSlot{ch: make(chan struct{})}
		ws.slots[w] = slot
		if w.kind == watchKV || w.kind == watchKVKey {
			ws.kvSlots++
		}
	}
	slot.waiters++
	ws.waiters.Add(1)
	return slot
}

// leave unregisters a waiter that gives up (its context ended), dropping the
// slot when it was the last one, so abandoned topics do not accumulate.
func (ws *watchSet) leave(w Watch, slot *waitSlot) {
	ws.waiters.Add(-1)
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if ws.slots[w] != slot {
		return // already woken and removed
	}
	slot.waiters--
	if slot.waiters == 0 {
		ws.remove(w)
	}
}

func (ws *watchSet) remove(w Watch) {
	delete(ws.slots, w)
	if w.kind == watchKV || w.kind == watchKVKey {
		ws.kvSlots--
	}
}

// fire closes and forgets w's channel, if anyone waits on it.
func (ws *watchSet) fire(w Watch) {
	if slot := ws.slots[w]; slot != nil {
		close(slot.ch)
		ws.remove(w)
	}
}

// wake fires every topic transaction t touched.
func (ws *watchSet) wake(t *tx) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if len(ws.slots) == 0 {
		return
	}
	for tbl, touched := range t.tables {
		if touched {
			ws.fire(Watch{kind: watchTable, key: tableNames[tbl]})
		}
	}
	for _, name := range t.services.list() {
		ws.fire(WatchService(name))
	}
	for _, name := range t.nodes.list() {
		ws.fire(WatchNode(name))
	}
	for _, key := range t.kvKeys {
		if ws.kvSlots > 0 {
			ws.fire(Watch{kind: watchKVKey, key: key})
		}
		for i := 0; i <= len(key) && ws.kvSlots > 0; i++ {
			ws.fire(Watch{kind: watchKV, key: key[:i]})
		}
	}
}

// wakeAll fires every topic (after a restore, anything may have changed).
func (ws *watchSet) wakeAll() {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	for w := range ws.slots {
		ws.fire(w)
	}
}

// Index returns the current index of w: what a read of w would report as
// X-Consul-Index.
func (s *Store) Index(w Watch) uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.indexOf(w)
}

func (s *Store) indexOf(w Watch) uint64 {
	st := s.st
	switch w.kind {
	case watchTable:
		for i, name := range tableNames {
			if name == w.key {
				return st.tableIndex[i]
			}
		}
	case watchService:
		if idx, ok := st.serviceIndex[w.key]; ok {
			return idx
		}
		return st.tableIndex[TableServices]
	case watchNode:
		if idx, ok := st.nodeIndex[w.key]; ok {
			return idx
		}
		return st.tableIndex[TableNodes]
	case watchKV:
		return st.kvPrefixIndex(w.key)
	case watchKVKey:
		if p := st.kv[w.key]; p != nil {
			return p.ModifyIndex
		}
		if tomb, ok := st.tombstones[w.key]; ok {
			return tomb
		}
		return st.tableIndex[TableKV]
	}
	return st.index
}

// Wait blocks until the index of w exceeds minIndex or ctx ends, and returns
// w's index. When ctx ends first it returns the (unchanged) index and
// ctx.Err(); a blocking query then answers with the current data, as on a
// Consul wait timeout. Wait(ctx, w, 0) returns at once.
func (s *Store) Wait(ctx context.Context, w Watch, minIndex uint64) (uint64, error) {
	for {
		// Read the index and join the topic under the read lock, so no
		// commit can slip between the check and the registration.
		s.mu.RLock()
		idx := s.indexOf(w)
		if idx > minIndex {
			s.mu.RUnlock()
			return idx, nil
		}
		slot := s.watches.join(w)
		s.mu.RUnlock()

		select {
		case <-slot.ch:
			s.watches.waiters.Add(-1)
		case <-ctx.Done():
			s.watches.leave(w, slot)
			return s.Index(w), ctx.Err()
		}
	}
}
