package local

import (
	"context"
	"testing"
	"time"

	"roster/catalog"
)

// Once a write under another case of the node's name renames the catalog
// node (it changed the node: here its datacenter, which the agent does not
// compare), the catalog's checks name the node "N1" while the agent's say
// "n1". Node names are case-insensitive, as Consul's HealthCheck.IsSame
// compares them, so the agent's checks are in sync and a sync writes
// nothing; compared exactly, every sync rewrote every check.
func TestAntiEntropy_NodeRenamedInAnotherCaseStaysInSync(t *testing.T) {
	f := newStoreRPC(t)
	s := newState(t, "", newClock())
	must(t, s.AddService(ServiceDefinition{Name: "web", Check: &CheckDefinition{TTL: Duration(time.Minute)}}, false))
	must(t, s.AddCheck(CheckDefinition{Name: "node-ttl", TTL: Duration(time.Minute), Status: "passing"}))
	sy := newSyncer(t, s, f, SyncConfig{})
	must(t, sy.SyncFull(context.Background()))
	must(t, f.apply(&catalog.RegisterRequest{Node: catalog.Node{ID: "id-1", Node: "N1", Address: "127.0.0.1", Datacenter: "dc9"}}))
	if ns, _ := f.store.NodeServices("n1"); ns == nil || ns.Node.Node != "N1" {
		t.Fatalf("catalog node %+v, want it renamed N1", ns)
	}
	before := sy.Stats().Writes
	for range 2 {
		must(t, sy.SyncFull(context.Background()))
	}
	if w := sy.Stats().Writes - before; w != 0 {
		t.Fatalf("syncs of an in-sync agent wrote %d times", w)
	}
}
