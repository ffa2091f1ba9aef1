package agent

import (
	"fmt"
	"net"
	"strconv"
	"testing"
	"time"

	"roster/catalog"
)

// A server that was down while the others compacted their logs catches up
// from a snapshot of the catalog (with the request-ID table beside it),
// and a server restarted from its own snapshot plus log has the same data.
func TestCluster_StoppedServerCatchesUpFromACatalogSnapshot(t *testing.T) {
	tc := newTestCluster(t, 3)
	for i := range tc.cfgs {
		tc.cfgs[i].Raft.SnapshotThreshold = 40
		tc.cfgs[i].Raft.TrailingLogs = 5
	}
	tc.startAll()
	l := tc.leader(10 * time.Second)
	for _, cfg := range tc.cfgs {
		tc.waitSerfHealth(cfg.NodeName, catalog.HealthPassing, 10*time.Second)
	}
	down := (l + 1) % 3
	tc.kill(down)
	const writes = 200
	for i := 0; i < writes; i++ {
		if err := putKV(tc.agents[l], fmt.Sprintf("snap/%03d", i), strconv.Itoa(i)); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
	}
	if st := tc.agents[l].srv.raft.Stats(); st["last_snapshot_index"] == "0" {
		t.Fatalf("the leader took no snapshot after %d writes: %v", writes, st)
	}
	tc.cfgs[down].RetryJoin = []string{net.JoinHostPort("127.0.0.1", strconv.Itoa(tc.cfgs[l].Ports.SerfLAN))}
	tc.start(down)
	tc.waitConverged(15 * time.Second)
	for _, i := range []int{0, writes / 2, writes - 1} {
		if got, err := getKV(tc.agents[down], fmt.Sprintf("snap/%03d", i), "stale"); err != nil || got != strconv.Itoa(i) {
			t.Fatalf("restarted server's copy of snap/%03d = %q, %v", i, got, err)
		}
	}
}
