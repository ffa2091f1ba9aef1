package agent

import (
	"fmt"
	"testing"
	"time"

	"roster/catalog"
	"roster/internal/testkit"
)

// force-leave -prune on the leader: the crashed server is forgotten by
// the leader's pool at once, and the leader, which then only sees it
// reaped, still deregisters it and removes it from Raft (by the catalog
// node's ID, the server's Raft ID).
func TestForceLeave_PruneOnTheLeaderRemovesACrashedServer(t *testing.T) {
	tc := newTestCluster(t, 3)
	l := tc.startSettled()
	down := (l + 1) % 3
	name := tc.cfgs[down].NodeName
	tc.kill(down)
	tc.waitSerfHealth(name, catalog.HealthCritical, 15*time.Second)
	leader := tc.agents[l]
	if err := (membership{leader}).ForceLeave(name, true, false); err != nil {
		t.Fatal(err)
	}
	for _, m := range leader.lanNode().Members() {
		if m.Name == name {
			t.Fatalf("the leader still lists %s after -prune: %+v", name, m)
		}
	}
	testkit.WaitFor(t, 10*time.Second, name+" out of raft and the catalog", func() error {
		if n := raftServerCount(leader); n != 2 {
			return fmt.Errorf("%d servers in raft", n)
		}
		if ns, _ := leader.srv.store.NodeServices(name); ns != nil {
			return fmt.Errorf("%s still in the catalog", name)
		}
		return nil
	})
}

// The catalog node is writable by anyone through /v1/catalog/register: a
// node that claims a live server's ID, reaped from the leader's point of
// view, is deregistered but must not get that server removed from Raft,
// whether its address differs or it copies the server's address while the
// server is still in the pool.
func TestReconcile_ReapedNodeWithALiveServersIDKeepsTheServer(t *testing.T) {
	tc := newTestCluster(t, 3)
	for i := range tc.cfgs {
		tc.cfgs[i].ReconcileInterval = time.Hour // only the name-driven pass acts
	}
	l := tc.startSettled()
	live := (l + 1) % 3
	leader := tc.agents[l]
	id := tc.agents[live].nodeID()
	for _, c := range []struct{ name, addr string }{{"crafted-other-addr", "127.0.0.2"}, {"crafted-same-addr", "127.0.0.1"}} {
		reg := catalog.RegisterRequest{
			Node: catalog.Node{ID: id, Node: c.name, Address: c.addr, Datacenter: tc.cfgs[l].Datacenter},
			Service: &catalog.NodeService{
				ID: consulServiceName, Service: consulServiceName, Port: tc.cfgs[live].Ports.Server,
			},
			Checks: []catalog.HealthCheck{{Node: c.name, CheckID: serfCheckID, Name: serfCheckName, Status: catalog.HealthPassing}},
		}
		if err := leader.applyCatalog(&reg); err != nil {
			t.Fatal(err)
		}
		leader.lanWatch.notify(c.name)
		testkit.WaitFor(t, 10*time.Second, c.name+" deregistered", func() error {
			if ns, _ := leader.srv.store.NodeServices(c.name); ns != nil {
				return fmt.Errorf("%s still in the catalog", c.name)
			}
			return nil
		})
		if n := raftServerCount(leader); n != 3 {
			t.Fatalf("%s: %d servers in raft, want 3", c.name, n)
		}
	}
}
