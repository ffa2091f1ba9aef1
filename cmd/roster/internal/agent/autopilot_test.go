package agent

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"roster/internal/testkit"
	"roster/rpc"
)

func TestAutopilot_PickDeadServersKeepsAQuorum(t *testing.T) {
	const grace = time.Minute
	dead := func(id string, voter bool) raftMember {
		return raftMember{ID: id, Voter: voter, Failed: true, FailedFor: 2 * grace}
	}
	up := func(id string) raftMember { return raftMember{ID: id, Voter: true} }
	cases := []struct {
		name      string
		servers   []raftMember
		minQuorum int
		remove    []string
		held      []string
	}{
		{"one of three dead", []raftMember{up("a"), up("b"), dead("c", true)}, 2, []string{"c"}, nil},
		{"within grace", []raftMember{up("a"), up("b"), {ID: "c", Voter: true, Failed: true, FailedFor: grace / 2}}, 0, nil, nil},
		{"min quorum 3 of 3", []raftMember{up("a"), up("b"), dead("c", true)}, 3, nil, []string{"c"}},
		{"two of five dead", []raftMember{up("a"), up("b"), up("c"), dead("d", true), dead("e", true)}, 3, []string{"d", "e"}, nil},
		{"three of five dead: no quorum", []raftMember{up("a"), up("b"), dead("c", true), dead("d", true), dead("e", true)}, 0, []string{"c", "d"}[:0], []string{"c", "d", "e"}},
		{"two of four dead", []raftMember{up("a"), up("b"), dead("c", true), dead("d", true)}, 0, []string{"c"}, []string{"d"}},
		{"nonvoters always go", []raftMember{up("a"), dead("n1", false), dead("n2", false)}, 1, []string{"n1", "n2"}, nil},
		{"the leader is never removed", []raftMember{dead("a", true), up("b"), up("c")}, 0, nil, nil},
		{"two servers, one dead", []raftMember{up("a"), dead("b", true)}, 0, nil, []string{"b"}},
	}
	for _, tc := range cases {
		remove, held := pickDeadServers(tc.servers, "a", grace, tc.minQuorum)
		if !slices.Equal(remove, tc.remove) || !slices.Equal(held, tc.held) {
			t.Errorf("%s: remove %v held %v, want remove %v held %v", tc.name, remove, held, tc.remove, tc.held)
		}
	}
}

// raftServerCount is how many servers the agent's Raft configuration has.
func raftServerCount(a *Agent) int {
	conf, _ := a.srv.raft.Configuration()
	return len(conf.Servers)
}

// A crashed server is removed from Raft and from the catalog once it has
// been failed for the grace period; the two left keep working.
func TestAutopilot_DeadServerRemovedAfterGrace(t *testing.T) {
	tc := newTestCluster(t, 3)
	for i := range tc.cfgs {
		tc.cfgs[i].Autopilot.DeadServerGrace = 300 * time.Millisecond
	}
	l := tc.startSettled()
	down := (l + 1) % 3
	tc.kill(down)
	testkit.WaitFor(t, 15*time.Second, "the dead server out of raft and the catalog", func() error {
		a := tc.agents[tc.leader(5*time.Second)]
		if n := raftServerCount(a); n != 2 {
			return fmt.Errorf("%d servers in raft", n)
		}
		if ns, _ := a.srv.store.NodeServices(tc.cfgs[down].NodeName); ns != nil {
			return fmt.Errorf("%s still in the catalog", tc.cfgs[down].NodeName)
		}
		return nil
	})
	if err := putKV(tc.agents[(l+2)%3], "after/cleanup", "ok"); err != nil {
		t.Fatalf("write after cleanup: %v", err)
	}
}

// With MinQuorum 3 a three-server cluster never drops below three voters:
// the leader holds the removal back (and counts that it did).
func TestAutopilot_MinQuorumHoldsRemovalBack(t *testing.T) {
	tc := newTestCluster(t, 3)
	for i := range tc.cfgs {
		tc.cfgs[i].Autopilot.DeadServerGrace = 100 * time.Millisecond
		tc.cfgs[i].Autopilot.MinQuorum = 3
	}
	tc.startAll()
	l := tc.leader(10 * time.Second)
	down := (l + 1) % 3
	tc.kill(down)
	testkit.WaitFor(t, 15*time.Second, "the leader to hold the removal back", func() error {
		if n := tc.agents[l].autopilotHeld.Load(); n == 0 {
			return fmt.Errorf("no removal held back yet")
		}
		return nil
	})
	if n := raftServerCount(tc.agents[l]); n != 3 || tc.agents[l].autopilotRemoved.Load() != 0 {
		t.Fatalf("raft has %d servers, %d removed; want 3 and none", n, tc.agents[l].autopilotRemoved.Load())
	}
}

// A runtime set-config of ServerStabilizationTime changes the leader's
// promote interval within the current term, not only after an election.
func TestAutopilot_SetConfigChangesThePromoteIntervalInTheSameTerm(t *testing.T) {
	tc := newTestCluster(t, 1)
	l := tc.startSettled()
	a := tc.agents[l]
	want := promoteInterval(tc.cfgs[l].ServerStabilizationTime)
	testkit.WaitFor(t, 5*time.Second, "the configured promote interval", func() error {
		if got := time.Duration(a.promoteEvery.Load()); got != want {
			return fmt.Errorf("promote interval %v, want %v", got, want)
		}
		return nil
	})
	term := a.srv.raft.Term()
	conf := a.autopilotSettings()
	conf.ServerStabilizationTime = 2 * time.Second
	data := rpc.EncodeCommand("", time.Now(), encodeAutopilot(autopilotSet, conf))
	if err := a.srv.raft.Apply(data, leaderApplyWait).Error(); err != nil {
		t.Fatal(err)
	}
	want = promoteInterval(conf.ServerStabilizationTime)
	testkit.WaitFor(t, 5*time.Second, "the new promote interval", func() error {
		if got := time.Duration(a.promoteEvery.Load()); got != want {
			return fmt.Errorf("promote interval %v, want %v", got, want)
		}
		return nil
	})
	if now := a.srv.raft.Term(); now != term {
		t.Fatalf("term changed from %d to %d: the test did not measure a change within one term", term, now)
	}
}
