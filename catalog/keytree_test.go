package catalog

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"roster/internal/testkit"
)

// checkKeyTree verifies the B-tree invariants: keys strictly ascending in
// order, every node but the root between min and max keys, every leaf at
// the same depth, and Len equal to the number of keys.
func checkKeyTree(t *testing.T, tr *keyTree) []string {
	t.Helper()
	var all []string
	leafDepth := -1
	var walk func(n *keyNode, depth int, root bool)
	walk = func(n *keyNode, depth int, root bool) {
		if !root && (len(n.keys) < keyNodeMin || len(n.keys) > keyNodeMax) {
			t.Fatalf("node with %d keys, want %d..%d", len(n.keys), keyNodeMin, keyNodeMax)
		}
		if n.leaf() {
			if leafDepth >= 0 && depth != leafDepth {
				t.Fatalf("leaves at depths %d and %d", leafDepth, depth)
			}
			leafDepth = depth
			all = append(all, n.keys...)
			return
		}
		if len(n.children) != len(n.keys)+1 {
			t.Fatalf("node with %d keys has %d children", len(n.keys), len(n.children))
		}
		for i, c := range n.children {
			walk(c, depth+1, false)
			if i < len(n.keys) {
				all = append(all, n.keys[i])
			}
		}
	}
	if tr.root != nil {
		walk(tr.root, 0, true)
	}
	for i := 1; i < len(all); i++ {
		if all[i-1] >= all[i] {
			t.Fatalf("keys out of order: %q then %q", all[i-1], all[i])
		}
	}
	if len(all) != tr.Len() {
		t.Fatalf("Len %d, tree holds %d keys", tr.Len(), len(all))
	}
	return all
}

// TestKeyTree_MatchesNaiveSet applies random inserts and removes to the tree
// and to a map, and after each batch compares contents, invariants, and
// prefix scans from random points against a sort of the map.
func TestKeyTree_MatchesNaiveSet(t *testing.T) {
	r := testkit.Rand(t)
	var tr keyTree
	naive := map[string]bool{}
	key := func() string {
		// A small alphabet and short keys give many shared prefixes,
		// duplicates and removals of present keys.
		n := 1 + r.IntN(5)
		b := make([]byte, n)
		for i := range b {
			b[i] = "ab/\xff"[r.IntN(4)]
		}
		return string(b)
	}
	for step := range 30_000 {
		k := key()
		if r.IntN(3) == 0 {
			if got, want := tr.remove(k), naive[k]; got != want {
				t.Fatalf("step %d: remove(%q) = %v, want %v", step, k, got, want)
			}
			delete(naive, k)
		} else {
			if got, want := tr.insert(k), !naive[k]; got != want {
				t.Fatalf("step %d: insert(%q) = %v, want %v", step, k, got, want)
			}
			naive[k] = true
		}
		if step%500 != 0 {
			continue
		}
		want := slices.Sorted(maps.Keys(naive))
		if got := checkKeyTree(t, &tr); !slices.Equal(got, want) {
			t.Fatalf("step %d: tree %q, want %q", step, got, want)
		}
		p := key()
		p = p[:r.IntN(len(p)+1)]
		var got []string
		tr.ascendPrefix(p, func(k string) bool { got = append(got, k); return true })
		var wantP []string
		for _, k := range want {
			if strings.HasPrefix(k, p) {
				wantP = append(wantP, k)
			}
		}
		if !slices.Equal(got, wantP) {
			t.Fatalf("step %d: prefix %q: %q, want %q", step, p, got, wantP)
		}
	}
}

// TestKeyTree_GrowsAndShrinksToEmpty inserts enough keys for several
// levels, in order and reversed (the worst cases for splits), then removes
// them all in random order.
func TestKeyTree_GrowsAndShrinksToEmpty(t *testing.T) {
	r := testkit.Rand(t)
	var tr keyTree
	const n = 5000
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("k%05d", i)
	}
	for i := range keys {
		tr.insert(keys[i])
		tr.insert(keys[n-1-i])
	}
	if got := checkKeyTree(t, &tr); !slices.Equal(got, keys) {
		t.Fatalf("tree holds %d keys, want %d in order", len(got), n)
	}
	var ascended []string
	tr.ascend("k02500", func(k string) bool { ascended = append(ascended, k); return len(ascended) < 3 })
	if want := []string{"k02500", "k02501", "k02502"}; !slices.Equal(ascended, want) {
		t.Fatalf("ascend from k02500, stopped after 3: %v, want %v", ascended, want)
	}
	r.Shuffle(n, func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
	for i, k := range keys {
		if !tr.remove(k) {
			t.Fatalf("remove(%q) found nothing", k)
		}
		if i%1000 == 0 {
			checkKeyTree(t, &tr)
		}
	}
	if tr.root != nil || tr.Len() != 0 {
		t.Fatalf("tree not empty after removing everything: len %d", tr.Len())
	}
}

func TestPrefixEnd(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{{"a/", "a0", true}, {"ab", "ac", true}, {"a\xff", "b", true}, {"\xff\xff", "", false}, {"", "", false}} {
		if got, ok := prefixEnd(tc.in); got != tc.want || ok != tc.ok {
			t.Errorf("prefixEnd(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

// naiveKV is the obvious model of the KV prefix queries: a map scanned
// whole, sorted.
type naiveKV struct {
	live  map[string]uint64 // key → ModifyIndex
	tombs map[string]uint64
	index uint64 // KV table index
}

func (m *naiveKV) list(prefix string) []string {
	var out []string
	for k := range m.live {
		if strings.HasPrefix(k, prefix) {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

func (m *naiveKV) keys(prefix, sep string) []string {
	out := []string{}
	for _, k := range m.list(prefix) {
		if i := strings.Index(k[len(prefix):], sep); sep != "" && i >= 0 {
			k = k[:len(prefix)+i+len(sep)]
		}
		if len(out) == 0 || out[len(out)-1] != k {
			out = append(out, k)
		}
	}
	return out
}

func (m *naiveKV) prefixIndex(prefix string) uint64 {
	var idx uint64
	for _, set := range []map[string]uint64{m.live, m.tombs} {
		for k, i := range set {
			if strings.HasPrefix(k, prefix) {
				idx = max(idx, i)
			}
		}
	}
	if idx == 0 {
		return m.index
	}
	return idx
}

// TestKV_PrefixQueriesMatchNaiveModel drives the store with random sets,
// deletes, delete-trees and tombstone reaps, and after each compares list,
// keys with and without separators, and the prefix index against naiveKV.
func TestKV_PrefixQueriesMatchNaiveModel(t *testing.T) {
	r := testkit.Rand(t)
	h := newHarness(t, Config{})
	m := &naiveKV{live: map[string]uint64{}, tombs: map[string]uint64{}}
	part := func() string { return []string{"a", "b", "a/", "/", "ab", "c/d"}[r.IntN(6)] }
	key := func() string { return part() + part() + part()[:r.IntN(2)] }
	for step := range 600 {
		k := key()
		switch op := r.IntN(10); {
		case op < 5:
			h.ok(kvSet(k, "v"))
			m.live[k], m.index = h.idx, h.idx
			delete(m.tombs, k)
		case op < 7:
			h.ok(&KVRequest{Verb: KVDelete, Key: k})
			m.deleteUnder(k, true, h.idx)
		case op < 9:
			p := k[:r.IntN(len(k)+1)]
			h.ok(&KVRequest{Verb: KVDeleteTree, Key: p})
			m.deleteUnder(p, false, h.idx)
		default:
			reap := h.idx - uint64(r.IntN(20))
			h.ok(&TombstoneReapRequest{Index: reap})
			maps.DeleteFunc(m.tombs, func(_ string, i uint64) bool { return i <= reap })
		}
		compareKV(t, step, h.s, m, k[:r.IntN(len(k)+1)])
	}
}

// deleteUnder removes key (exact) or every key under it from the model,
// leaving tombstones at idx; the table index moves only if one existed.
func (m *naiveKV) deleteUnder(key string, exact bool, idx uint64) {
	for k := range m.live {
		if k == key || (!exact && strings.HasPrefix(k, key)) {
			delete(m.live, k)
			m.tombs[k], m.index = idx, idx
		}
	}
}

func compareKV(t *testing.T, step int, s *Store, m *naiveKV, prefix string) {
	t.Helper()
	list, idx := s.KVList(prefix)
	got := make([]string, len(list))
	for i, p := range list {
		got[i] = p.Key
	}
	if want := m.list(prefix); !slices.Equal(got, want) {
		t.Fatalf("step %d: KVList(%q) = %q, want %q", step, prefix, got, want)
	}
	if want := m.prefixIndex(prefix); idx != want || s.Index(WatchKV(prefix)) != want {
		t.Fatalf("step %d: index of prefix %q = %d (watch %d), want %d", step, prefix, idx, s.Index(WatchKV(prefix)), want)
	}
	for _, sep := range []string{"", "/", "b"} {
		if got, _ := s.KVKeys(prefix, sep); !slices.Equal(got, m.keys(prefix, sep)) {
			t.Fatalf("step %d: KVKeys(%q, %q) = %q, want %q", step, prefix, sep, got, m.keys(prefix, sep))
		}
	}
}

// TestKV_PrefixQueriesAreOrdered checks list order, separator rollup with
// deep and sibling directories, and delete-tree leaving siblings alone.
func TestKV_PrefixQueriesAreOrdered(t *testing.T) {
	h := newHarness(t, Config{})
	for _, k := range []string{"web/z", "web/a/1", "web/a/2", "web/b/x/y", "web-other", "web/", "wea", "web/a0"} {
		h.ok(kvSet(k, "v"))
	}
	list, _ := h.s.KVList("web/")
	var got []string
	for _, p := range list {
		got = append(got, p.Key)
	}
	if want := []string{"web/", "web/a/1", "web/a/2", "web/a0", "web/b/x/y", "web/z"}; !slices.Equal(got, want) {
		t.Fatalf("list web/: %q, want %q", got, want)
	}
	if keys, _ := h.s.KVKeys("web/", "/"); !slices.Equal(keys, []string{"web/", "web/a/", "web/a0", "web/b/", "web/z"}) {
		t.Fatalf("keys web/ sep /: %q", keys)
	}
	if keys, _ := h.s.KVKeys("", "/"); !slices.Equal(keys, []string{"wea", "web-other", "web/"}) {
		t.Fatalf("keys '' sep /: %q", keys)
	}
	h.ok(&KVRequest{Verb: KVDeleteTree, Key: "web/a"})
	if keys, _ := h.s.KVKeys("web", ""); !slices.Equal(keys, []string{"web-other", "web/", "web/b/x/y", "web/z"}) {
		t.Fatalf("after delete-tree web/a: %q", keys)
	}
	if idx := h.s.Index(WatchKV("web/a")); idx != h.idx {
		t.Fatalf("index of deleted prefix web/a = %d, want the delete's %d (tombstones)", idx, h.idx)
	}
}
