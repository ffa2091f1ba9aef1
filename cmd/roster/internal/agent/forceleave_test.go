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
