package agent

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"roster/catalog"
	"roster/internal/faults"
	"roster/internal/testkit"
	"roster/rpc"
	"roster/swim"
)

// Partition tests on the whole server stack: real agents on loopback
// whose links are cut by a shared faults.Plan (see NetFaults).

// withFaults gives every agent of tc the same plan. Its address book is
// the cluster's (nodeAt): the ports are picked as each agent starts, known
// only then, and no link is cut before they all have.
func (tc *testCluster) withFaults() *faults.Plan {
	plan := faults.New(testkit.Seed(tc.t))
	var nodes []string
	for _, cfg := range tc.cfgs {
		nodes = append(nodes, cfg.NodeName)
	}
	nf := &NetFaults{Plan: plan, Names: tc.nodeAt, Nodes: nodes}
	for i := range tc.cfgs {
		tc.cfgs[i].Faults = nf
		tc.cfgs[i].RPCHoldTimeout = 500 * time.Millisecond
		tc.cfgs[i].GossipTuning = func(c *swim.Config, wan bool) {
			fastGossip(c, wan)
			// After the heal, members declared dead merge back through
			// push-pull with a dead member (Serf's reconnect).
			c.ReconnectInterval = 300 * time.Millisecond
		}
	}
	return plan
}

// leaderAmong waits until exactly one of the agents idx leads and all of
// them name it.
func (tc *testCluster) leaderAmong(idx []int, timeout time.Duration) int {
	tc.t.Helper()
	l := -1
	testkit.WaitFor(tc.t, timeout, fmt.Sprintf("one leader among %v", idx), func() error {
		l = -1
		for _, i := range idx {
			if tc.agents[i].isLeader() {
				if l >= 0 {
					return fmt.Errorf("%s and %s both lead", tc.cfgs[l].NodeName, tc.cfgs[i].NodeName)
				}
				l = i
			}
		}
		if l < 0 {
			return errors.New("no leader")
		}
		for _, i := range idx {
			if got, _ := tc.agents[i].srv.raft.Leader(); got != tc.agents[l].rpcAddr() {
				return fmt.Errorf("%s names leader %q", tc.cfgs[i].NodeName, got)
			}
		}
		return nil
	})
	return l
}

func TestPartition_IsolatedLeaderStepsDownMajorityLeadsHealedCatalogsConverge(t *testing.T) {
	tc := newTestCluster(t, 3)
	plan := tc.withFaults()
	old := tc.startSettled()
	var majority []int
	for i := range tc.agents {
		if i != old {
			majority = append(majority, i)
		}
	}
	plan.Isolate(tc.cfgs[old].NodeName)
	t.Logf("isolated the leader %s", tc.cfgs[old].NodeName)

	next := tc.leaderAmong(majority, 10*time.Second)
	testkit.WaitFor(t, 10*time.Second, "the isolated leader to step down (check-quorum)", func() error {
		if tc.agents[old].isLeader() {
			return errors.New("still leader")
		}
		return nil
	})
	// The minority refuses writes with Consul's error; the majority takes them.
	err := putKV(tc.agents[old], "minority", "lost")
	if !rpc.IsNoLeader(err) {
		t.Fatalf("write on the isolated server: %v, want %q", err, rpc.ErrNoLeader)
	}
	req, _ := http.NewRequest("PUT", "http://"+tc.agents[old].HTTPAddrs()[0]+"/v1/kv/minority-http", strings.NewReader("lost"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 500 || !strings.Contains(string(body), "No cluster leader") {
		t.Fatalf("HTTP write on the isolated server: %s %q, want 500 No cluster leader", resp.Status, body)
	}
	if err := putKV(tc.agents[majority[0]], "majority", "kept"); err != nil {
		t.Fatalf("write on the majority: %v", err)
	}
	// The majority's leader records the isolated server as failed.
	testkit.WaitFor(t, 10*time.Second, "the majority to mark the isolated server critical", func() error {
		checks, _ := tc.agents[next].srv.store.NodeChecks(tc.cfgs[old].NodeName)
		for _, c := range checks {
			if c.CheckID == serfCheckID && c.Status == catalog.HealthCritical {
				return nil
			}
		}
		return fmt.Errorf("checks %v", checks)
	})

	plan.Heal()
	t.Log("healed")
	tc.leader(10 * time.Second)
	tc.waitSerfHealth(tc.cfgs[old].NodeName, catalog.HealthPassing, 15*time.Second)
	tc.waitConverged(10 * time.Second)
	if got, err := getKV(tc.agents[old], "majority", "stale"); err != nil || got != "kept" {
		t.Fatalf("healed server's copy of the majority's write = %q, %v", got, err)
	}
	for _, key := range []string{"minority", "minority-http"} {
		if _, err := getKV(tc.agents[old], key, "stale"); err == nil {
			t.Fatalf("the write of %s refused during the partition exists after the heal", key)
		}
	}
}
