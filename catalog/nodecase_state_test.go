package catalog

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"roster/internal/testkit"
)

// dumpState renders every node-keyed map and derived index of st (keys,
// and the few values that name a node), so a test can tell two states
// apart where the registry and hash alone would not: a rename moves a
// node's records under a new key in each of them (nodename.go).
func dumpState(st *state) string {
	var b strings.Builder
	fmt.Fprintf(&b, "nodes=%v\n", sortedKeys(st.nodes))
	for _, n := range sortedKeys(st.nodes) {
		r := st.nodes[n]
		fmt.Fprintf(&b, " node %s %s %s %d/%d\n", r.Node, r.ID, r.Address, r.CreateIndex, r.ModifyIndex)
	}
	fmt.Fprintf(&b, "nodeFold=%v\n", st.nodeFold)
	for _, n := range sortedKeys(st.checks) {
		fmt.Fprintf(&b, "checks[%s]=%v\n", n, sortedKeys(st.checks[n]))
	}
	for _, n := range sortedKeys(st.slots) {
		for _, id := range sortedKeys(st.slots[n]) {
			sl := st.slots[n][id]
			fmt.Fprintf(&b, "slot[%s/%s] svc=%v checks=%d inst=%v\n", n, id, sl.svc != nil, len(sl.checks), sl.hasInst())
		}
	}
	for _, n := range sortedKeys(st.nodeSlots) {
		fmt.Fprintf(&b, "nodeSlot[%s] checks=%d\n", n, len(st.nodeSlots[n].checks))
	}
	for _, s := range sortedKeys(st.byService) {
		fmt.Fprintf(&b, "byService[%s]=%v\n", s, sortedKeys(st.byService[s]))
	}
	for _, n := range sortedKeys(st.sessionsByNode) {
		fmt.Fprintf(&b, "sessionsByNode[%s]=%v\n", n, sortedKeys(st.sessionsByNode[n]))
	}
	var refs []string
	for ref, set := range st.sessionsByCheck {
		refs = append(refs, fmt.Sprintf("%s/%s=%v", ref.node, ref.checkID, sortedKeys(set)))
	}
	slices.Sort(refs)
	fmt.Fprintf(&b, "sessionsByCheck=%v\n", refs)
	for _, id := range sortedKeys(st.sessions) {
		fmt.Fprintf(&b, "session %s node=%s\n", id, st.sessions[id].Node)
	}
	for _, id := range sortedKeys(st.locks) {
		fmt.Fprintf(&b, "locks[%s]=%v\n", id, sortedKeys(st.locks[id]))
	}
	for _, n := range sortedKeys(st.coords) {
		fmt.Fprintf(&b, "coord[%s] node=%s\n", n, st.coords[n].Node)
	}
	fmt.Fprintf(&b, "numInstances=%d hash=%s\n", st.numInstances, st.hash.String())
	return b.String()
}

// dumpIndexes is dumpState plus the per-name watch indexes, which a
// restore does not rebuild (so comparisons with a restored state leave
// them out).
func dumpIndexes(st *state) string {
	return dumpState(st) + fmt.Sprintf("nodeIndex=%v serviceIndex=%v\n", st.nodeIndex, st.serviceIndex)
}

// nodeCaseLocked is nodeCaseSetup with a KV lock held by its session.
func nodeCaseLocked(h *harness) {
	for _, cmd := range nodeCaseSetup() {
		h.ok(cmd)
	}
	h.ok(&KVRequest{Verb: KVLock, Key: "lock/a", Value: []byte("x"), Session: nodeCaseSession})
}

// A transaction that renames its node twice and then fails leaves every
// node-keyed map and index as it was, and the session bound to the node's
// serfHealth still follows that check.
func TestNodeName_FailedRenameRollsBackEveryIndex(t *testing.T) {
	h := newHarness(t, Config{})
	nodeCaseLocked(h)
	before := dumpIndexes(h.s.st)
	res := h.apply(&TxnRequest{Ops: []TxnOp{
		{Node: &TxnNodeOp{Verb: OpSet, Node: Node{ID: nodeCaseIDA, Node: "WEB-1", Address: "10.0.0.2", Datacenter: "dc1"}}},
		{Node: &TxnNodeOp{Verb: OpSet, Node: Node{ID: nodeCaseIDA, Node: "Web-1", Address: "10.0.0.3", Datacenter: "dc1"}}},
		{Service: &TxnServiceOp{Verb: OpSet, Node: "nowhere", Service: NodeService{ID: "x", Service: "x"}}},
	}})
	if res.Txn == nil || len(res.Txn.Errors) == 0 {
		t.Fatalf("txn did not fail: %+v", res)
	}
	if after := dumpIndexes(h.s.st); after != before {
		t.Fatalf("the failed txn changed the state:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	h.ok(regCheck("web-1", serfCheckID, "", HealthCritical))
	if p, _ := h.s.KVGet("lock/a"); p == nil || p.Session != "" {
		t.Fatalf("lock/a after serfHealth went critical: %+v, want released", p)
	}
}

// After a rename the session, its lock and its binding to serfHealth
// follow the node: the check going critical under the new name
// invalidates the session and releases the lock.
func TestNodeName_RenameKeepsSessionLockAndInvalidation(t *testing.T) {
	h := newHarness(t, Config{})
	nodeCaseLocked(h)
	h.ok(&RegisterRequest{Node: Node{ID: nodeCaseIDA, Node: "WEB-1", Address: "10.0.0.2", Datacenter: "dc1"}})
	if p, _ := h.s.KVGet("lock/a"); p == nil || p.Session != nodeCaseSession {
		t.Fatalf("lock/a after the rename: %+v, want held by %s", p, nodeCaseSession)
	}
	if s, _ := h.s.Session(nodeCaseSession); s == nil || s.Node != "WEB-1" {
		t.Fatalf("session after the rename: %+v, want on WEB-1", s)
	}
	h.ok(regCheck("web-1", serfCheckID, "", HealthCritical))
	if s, _ := h.s.Session(nodeCaseSession); s != nil {
		t.Fatalf("session survived its check going critical: %+v", s)
	}
	if p, _ := h.s.KVGet("lock/a"); p == nil || p.Session != "" {
		t.Fatalf("lock/a after serfHealth went critical: %+v, want released", p)
	}
}

// A blocking read of the node under its old case wakes on the rename, and
// both cases answer with the rename's index afterwards.
func TestNodeName_RenameWakesWaitersOnTheOldCase(t *testing.T) {
	h := newHarness(t, Config{})
	nodeCaseLocked(h)
	_, idx := h.s.NodeServices("web-1")
	waiters := h.s.Stats().Waiters
	done := make(chan uint64, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		got, _ := h.s.Wait(ctx, WatchNode("web-1"), idx)
		done <- got
	}()
	testkit.WaitFor(t, 5*time.Second, "the blocking read to wait", func() error {
		if h.s.Stats().Waiters == waiters {
			return errors.New("no new waiter")
		}
		return nil
	})
	h.ok(&RegisterRequest{Node: Node{ID: nodeCaseIDA, Node: "WEB-1", Address: "10.0.0.2", Datacenter: "dc1"}})
	if got := <-done; got <= idx {
		t.Fatalf("waiter on web-1 returned %d, want past %d", got, idx)
	}
	for _, asked := range []string{"web-1", "WEB-1"} {
		if _, got := h.s.NodeServices(asked); got != h.idx {
			t.Fatalf("NodeServices(%s) at %d, want the rename's %d", asked, got, h.idx)
		}
	}
}
