package agent

import (
	"context"
	"testing"
	"time"

	"roster/catalog"
)

// A write that changes a node under another case of its name gives the
// catalog node that case (catalog/nodename.go): here "S1" for the member
// "s1". The leader's reaper matches catalog nodes to gossip members
// ignoring case, as Consul's reconcile does, so it keeps the node; matched
// exactly, "S1" was no member and the leader deregistered a live node with
// everything on it.
func TestReconcile_NodeRenamedInAnotherCaseIsNotReaped(t *testing.T) {
	tc := newTestCluster(t, 1)
	tc.cfgs[0].ReconcileInterval = time.Hour // only the pass below acts
	l := tc.startSettled()
	a := tc.agents[l]
	ns, _ := a.srv.store.NodeServices("s1")
	if ns == nil {
		t.Fatal("s1 is not in the catalog")
	}
	renamed := ns.Node
	renamed.Node, renamed.Datacenter = "S1", "elsewhere" // a change the agent's sync does not undo
	if err := a.applyCatalog(&catalog.RegisterRequest{Node: renamed}); err != nil {
		t.Fatal(err)
	}
	if ns, _ := a.srv.store.NodeServices("s1"); ns == nil || ns.Node.Node != "S1" {
		t.Fatalf("catalog node %+v, want it renamed S1", ns)
	}
	a.reconcileAll(context.Background())
	checks, _ := a.srv.store.NodeChecks("s1")
	if ns, _ := a.srv.store.NodeServices("s1"); ns == nil || len(checks) == 0 {
		t.Fatalf("the leader reaped its own live node renamed S1: %+v, checks %+v", ns, checks)
	}
}
