package catalog

import (
	"bytes"
	"testing"
)

// TestTxn_AllOrNothing proves a failing op rolls back everything before and
// after it, reports every failing op, and that nothing else moved.
func TestTxn_AllOrNothing(t *testing.T) {
	h := newKVHarness(t)
	h.ok(kvSet("keep", "old"))
	h.ok(regService("n2", "web2", "web", 80))
	before := stateBytes(t, h.s)
	hashBefore, ring := h.s.Hash(), mustSince(t, h.s, 0)

	res := h.apply(&TxnRequest{Ops: []TxnOp{
		{KV: kvSet("keep", "new")},
		{KV: &KVRequest{Verb: KVDelete, Key: "keep"}},
		{Node: &TxnNodeOp{Verb: OpSet, Node: Node{Node: "n3", Address: "x"}}},
		{Service: &TxnServiceOp{Verb: OpDelete, Node: "n2", Service: NodeService{ID: "web2"}}},
		{Check: &TxnCheckOp{Verb: OpSet, Check: HealthCheck{Node: "n1", CheckID: "serfHealth", Status: HealthCritical}}},
		{KV: &KVRequest{Verb: KVCAS, Key: "keep", Index: 999}}, // fails
		{KV: &KVRequest{Verb: KVCheckNotExists, Key: "s1-lock"}},
		{Node: &TxnNodeOp{Verb: OpGet, Node: Node{Node: "ghost"}}}, // fails
	}})
	if res.Err != nil || res.OK || res.Txn == nil || len(res.Txn.Errors) != 2 || res.Txn.Results != nil {
		t.Fatalf("txn result %+v (txn %+v), want a rollback with 2 errors and no results", res, res.Txn)
	}
	if res.Txn.Errors[0].OpIndex != 5 || res.Txn.Errors[1].OpIndex != 7 {
		t.Fatalf("errors %+v, want ops 5 and 7", res.Txn.Errors)
	}
	if after := stateBytes(t, h.s); !bytes.Equal(before, after) {
		t.Fatalf("state changed after a rolled-back txn")
	}
	if h.s.Hash() != hashBefore || len(mustSince(t, h.s, 0).Changes) != len(ring.Changes) {
		t.Fatalf("hashcode or delta log moved after a rolled-back txn")
	}
	if sess, _ := h.s.Session("s1"); sess == nil {
		t.Fatalf("session s1 was invalidated by a rolled-back critical check")
	}
}

// TestTxn_AppliesInOrderWithResults checks a successful mixed txn.
func TestTxn_AppliesInOrderWithResults(t *testing.T) {
	h := newKVHarness(t)
	res := h.ok(&TxnRequest{Ops: []TxnOp{
		{KV: kvSet("a", "1")},
		{KV: &KVRequest{Verb: KVCAS, Key: "a", Index: 5, Value: []byte("2")}}, // sees the set at this index
		{KV: &KVRequest{Verb: KVGet, Key: "a"}},
		{KV: &KVRequest{Verb: KVLock, Key: "l", Session: "s1"}},
		{KV: &KVRequest{Verb: KVCheckSession, Key: "l", Session: "s1"}},
		{Node: &TxnNodeOp{Verb: OpSet, Node: Node{Node: "n9", Address: "9.9.9.9"}}},
		{Service: &TxnServiceOp{Verb: OpSet, Node: "n9", Service: NodeService{Service: "db", Port: 5432}}},
		{Check: &TxnCheckOp{Verb: OpSet, Check: HealthCheck{Node: "n9", CheckID: "db-alive", ServiceID: "db", Status: HealthPassing}}},
	}})
	if !res.OK || len(res.Txn.Results) != 8 {
		t.Fatalf("txn %+v, want OK with one result per op", res.Txn)
	}
	if r := res.Txn.Results[0].KV; r.Value != nil {
		t.Fatalf("write result carries a value %q; Consul returns null", r.Value)
	}
	if r := res.Txn.Results[2].KV; string(r.Value) != "2" {
		t.Fatalf("get result %+v, want value 2", r)
	}
	entries, idx := h.s.CheckServiceNodes("db", nil, true)
	if len(entries) != 1 || idx != 5 || entries[0].Service.ID != "db" {
		t.Fatalf("db entries %+v at %d, want one passing at index 5", entries, idx)
	}
}

func mustSince(t *testing.T, s *Store, idx uint64) Delta {
	t.Helper()
	d, err := s.Since(idx)
	if err != nil {
		t.Fatalf("Since(%d): %v", idx, err)
	}
	return d
}

func snapshotBytes(t testing.TB, s *Store) []byte {
	t.Helper()
	snap, err := s.Snapshot()
	if err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	defer snap.Release()
	var buf bytes.Buffer
	if err := snap.Persist(&buf); err != nil {
		t.Fatalf("Persist: %v", err)
	}
	return buf.Bytes()
}

// stateBytes is the snapshot encoding without the applied index, which
// moves even for a command that changes nothing.
func stateBytes(t testing.TB, s *Store) []byte {
	t.Helper()
	snap, err := s.Snapshot()
	if err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	snap.(*snapshot).index = 0
	var buf bytes.Buffer
	if err := snap.Persist(&buf); err != nil {
		t.Fatalf("Persist: %v", err)
	}
	return buf.Bytes()
}
