package rpc

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"roster/catalog"
	"roster/internal/testkit"
	"roster/raft"
)

// checkHealthyState says what is wrong with a state of three healthy
// voters led by leaderID, or nil.
func checkHealthyState(st AutopilotStateReply, leaderID string) error {
	if !st.Healthy || st.FailureTolerance != 1 || st.OptimisticFailureTolerance != 1 || st.Leader != leaderID {
		return fmt.Errorf("state %+v, want healthy, tolerance 1, leader %s", st, leaderID)
	}
	if len(st.Servers) != 3 || len(st.Voters) != 3 || st.Voters[0] != leaderID {
		return fmt.Errorf("servers %+v voters %v, want 3 with the leader first", st.Servers, st.Voters)
	}
	for id, s := range st.Servers {
		want := "voter"
		if id == leaderID {
			want = "leader"
		}
		if s.ID != id || s.Status != want || s.NodeStatus != "alive" || s.NodeType != "voter" || !s.Healthy ||
			s.LastTerm == 0 || s.LastIndex == 0 || s.StableSince.IsZero() || s.LastContact == "" {
			return fmt.Errorf("server %s: %+v, want a healthy alive %s", id, s, want)
		}
	}
	return nil
}

// Only the leader tracks the state: a follower forwards the call, ?stale
// too, and both answer the leader's tracked state. Reading it costs no
// probes: many calls add no more Status.RaftStats calls than the rounds
// that ran meanwhile send (two per round in a three-server cluster).
func TestOperator_AutopilotStateLivesOnTheLeader(t *testing.T) {
	c := startEPCluster(t, 3, epOpts{})
	leader, f := c.waitLeader(), c.follower()
	for _, stale := range []bool{false, true} {
		before := f.calls.get("Operator.AutopilotState")
		testkit.WaitFor(t, 5*time.Second, fmt.Sprintf("a healthy autopilot state through a follower (stale %v)", stale), func() error {
			var st AutopilotStateReply
			if err := c.call(f, "Operator.AutopilotState", &DCSpecificRequest{QueryOptions: QueryOptions{AllowStale: stale}}, &st); err != nil {
				return err
			}
			return checkHealthyState(st, leader.id)
		})
		if f.calls.get("Operator.AutopilotState") == before {
			t.Fatalf("the follower answered the state itself (stale %v); only the leader tracks it", stale)
		}
	}
	if f.autopilot.Running() || f.autopilot.Rounds() != 0 {
		t.Fatalf("a follower tracks health: running %v, %d rounds", f.autopilot.Running(), f.autopilot.Rounds())
	}
	rounds, probes := leader.autopilot.Rounds(), leader.autopilot.Probes()
	for range 50 {
		var st AutopilotStateReply
		c.mustCall(f, "Operator.AutopilotState", &DCSpecificRequest{}, &st)
		var h OperatorHealthReply
		c.mustCall(leader, "Operator.AutopilotServerHealth", &DCSpecificRequest{}, &h)
	}
	if dr, dp := leader.autopilot.Rounds()-rounds, leader.autopilot.Probes()-probes; dp > 2*(dr+1) {
		t.Fatalf("100 reads sent %d probes over %d rounds; the rounds alone send at most %d", dp, dr, 2*(dr+1))
	}
}

// stateOf follows raft-autopilot: any unhealthy server (a non-voter too)
// makes the state unhealthy, non-voters are no voters, voters are sorted
// leader first, then healthy, then stable longer.
func TestOperatorStateOf_StatusesAndVoterOrder(t *testing.T) {
	store, err := catalog.New(catalog.Config{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	op := newOperator(&endpointCore{d: EndpointDeps{Datacenter: "dc1", Store: store, Clock: func() time.Time { return now }}.withDefaults()}, nil)
	// b became healthy before a; d is an unhealthy voter; n a non-voter.
	r := autopilotRound{healthy: false, failureTolerance: 0, stable: map[string]stableState{
		"b": {healthy: true, since: now.Add(-time.Hour)}, "a": {healthy: true, since: now.Add(-time.Minute)}}}
	for _, s := range []struct {
		id      string
		voter   bool
		healthy bool
		serf    string
	}{{"d", true, false, "failed"}, {"a", true, true, "alive"}, {"l", true, true, "alive"}, {"b", true, true, "leaving"}, {"n", false, true, "none"}} {
		r.servers = append(r.servers, ServerHealth{ID: s.id, Name: "node-" + s.id, Address: s.id + ":8300", Healthy: s.healthy,
			Leader: s.id == "l", Voter: s.voter, SerfStatus: s.serf, LastContact: "0s"})
	}
	st := op.stateOf(r)
	if want := []string{"l", "b", "a", "d"}; !slices.Equal(st.Voters, want) {
		t.Errorf("voters %v, want %v", st.Voters, want)
	}
	if st.Leader != "l" || st.Healthy || len(st.Servers) != 5 {
		t.Errorf("state %+v", st)
	}
	for id, want := range map[string][2]string{"l": {"leader", "alive"}, "a": {"voter", "alive"},
		"b": {"voter", "alive"}, "d": {"voter", "failed"}, "n": {"non-voter", "left"}} {
		if s := st.Servers[id]; s.Status != want[0] || s.NodeStatus != want[1] || s.Name != "node-"+id || s.NodeType != "voter" {
			t.Errorf("server %s: %+v, want status %s, node status %s", id, s, want[0], want[1])
		}
	}
	if got := st.Servers["b"].StableSince; !got.Equal(now.Add(-time.Hour)) {
		t.Errorf("b stable since %v, want an hour ago", got)
	}
}

// The health reply decodes in Consul's client even for a server that did
// not answer: its LastContact is "0s", never "" or negative.
func TestOperatorJudge_LastContactAlwaysADuration(t *testing.T) {
	op := newOperator(&endpointCore{d: EndpointDeps{Datacenter: "dc1"}.withDefaults()}, nil)
	voter := raft.Server{ID: "f", Address: "f:8300", Suffrage: raft.Voter}
	leader := &RaftStats{LastTerm: 3, LastIndex: 10}
	for _, st := range []*RaftStats{nil, {LastTerm: 3, LastIndex: 10, LastContact: -1}} {
		h := op.judge(voter, st, leader, false, healthThresholds{healthLastContactThreshold, healthMaxTrailingLogs})
		if d, err := time.ParseDuration(h.LastContact); err != nil || d != 0 || h.Healthy {
			t.Errorf("stats %+v: LastContact %q (%v), healthy %v; want \"0s\", unhealthy", st, h.LastContact, err, h.Healthy)
		}
	}
	if h := op.judge(voter, &RaftStats{LastTerm: 3, LastIndex: 10}, nil, false,
		healthThresholds{healthLastContactThreshold, healthMaxTrailingLogs}); h.Healthy {
		t.Error("a server is healthy while the leader's stats are unknown")
	}
}
