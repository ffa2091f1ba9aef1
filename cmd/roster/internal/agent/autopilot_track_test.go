package agent

import (
	"fmt"
	"net"
	"strconv"
	"testing"
	"time"

	"roster/internal/testkit"
	"roster/rpc"
)

// trackedCluster is a three-server cluster whose leader tracks health
// every interval. Cleanup is off so a crashed server stays in Raft, and
// the contact threshold is loose so load on the test machine cannot make
// a live server look unhealthy: only a crash does.
func trackedCluster(t *testing.T, interval time.Duration) *testCluster {
	tc := newTestCluster(t, 3)
	for i := range tc.cfgs {
		tc.cfgs[i].Autopilot.DisableCleanupDeadServers = true
		tc.cfgs[i].Autopilot.ServerHealthInterval = interval
		tc.cfgs[i].Autopilot.LastContactThreshold = 5 * time.Second
	}
	return tc
}

// waitState polls agent i's /v1/operator/autopilot/state until check
// accepts it, and returns it.
func (tc *testCluster) waitState(i int, what string, check func(rpc.AutopilotStateReply) error) rpc.AutopilotStateReply {
	tc.t.Helper()
	var st rpc.AutopilotStateReply
	testkit.WaitFor(tc.t, 15*time.Second, what, func() error {
		st = rpc.AutopilotStateReply{}
		if code, err := tc.getJSON(i, "/v1/operator/autopilot/state", &st); code != 200 || err != nil {
			return fmt.Errorf("status %d, %v", code, err)
		}
		return check(st)
	})
	return st
}

// waitRounds waits until a's tracker completed n more rounds than it had.
func waitRounds(t *testing.T, a *Agent, n uint64) {
	t.Helper()
	want := a.srv.autopilot.Rounds() + n
	testkit.WaitFor(t, 10*time.Second, fmt.Sprintf("%d health rounds", n), func() error {
		if got := a.srv.autopilot.Rounds(); got < want {
			return fmt.Errorf("%d rounds, want %d", got, want)
		}
		return nil
	})
}

// healthyServers accepts a state of n healthy servers led by leaderID.
func healthyServers(n int, leaderID string) func(rpc.AutopilotStateReply) error {
	return func(st rpc.AutopilotStateReply) error {
		if !st.Healthy || len(st.Servers) != n || st.Leader != leaderID {
			return fmt.Errorf("state %+v, want %d healthy servers led by %s", st, n, leaderID)
		}
		return nil
	}
}

// sameSince fails the test if server id's StableSince moved from was's.
func sameSince(t *testing.T, when string, was, now rpc.AutopilotStateReply, ids ...string) {
	t.Helper()
	for _, id := range ids {
		if a, b := was.Servers[id].StableSince, now.Servers[id].StableSince; !a.Equal(b) {
			t.Errorf("%s: %s stable since %v, was %v: it moved without a change of health", when, id, b, a)
		}
	}
}

// StableSince is when a server's health last changed, as the leader's
// rounds saw it, not when someone first asked: the leader is stable since
// before the first read; repeated reads over many rounds leave every
// server's StableSince alone; a crashed follower turns unhealthy with a
// StableSince after the crash, and once restarted is healthy again with a
// StableSince after the restart, while the others' never move.
func TestAutopilotTracking_StableSinceFollowsHealthNotReads(t *testing.T) {
	tc := trackedCluster(t, 50*time.Millisecond)
	l := tc.startSettled()
	leader := tc.agents[l]
	leaderID, down, other := leader.nodeID(), (l+1)%3, (l+2)%3
	downID, otherID := tc.agents[down].nodeID(), tc.agents[other].nodeID()
	waitRounds(t, leader, 3)
	firstRead := time.Now()
	before := tc.waitState(l, "three healthy servers", healthyServers(3, leaderID))
	if since := before.Servers[leaderID].StableSince; !since.Before(firstRead) {
		t.Fatalf("the leader is stable since %v, not before the first read at %v", since, firstRead)
	}
	waitRounds(t, leader, 5)
	for i := range 10 {
		st := tc.waitState((l+i)%3, "the state", func(rpc.AutopilotStateReply) error { return nil })
		sameSince(t, "repeated reads", before, st, leaderID, downID, otherID)
	}

	crashed := time.Now()
	tc.kill(down)
	failed := tc.waitState(l, "the crashed server unhealthy", func(st rpc.AutopilotStateReply) error {
		if s := st.Servers[downID]; s.Healthy || st.Healthy {
			return fmt.Errorf("crashed server %+v", s)
		}
		return nil
	})
	if since := failed.Servers[downID].StableSince; since.Before(crashed) {
		t.Fatalf("the crashed server is unhealthy since %v, before the crash at %v", since, crashed)
	}
	sameSince(t, "after the crash", before, failed, leaderID, otherID)
	waitRounds(t, leader, 3)
	still := tc.waitState(l, "the state", func(rpc.AutopilotStateReply) error { return nil })
	sameSince(t, "while the server stays down", failed, still, leaderID, downID, otherID)

	restarted := time.Now()
	tc.cfgs[down].RetryJoin = []string{net.JoinHostPort("127.0.0.1", strconv.Itoa(tc.cfgs[l].Ports.SerfLAN))}
	tc.start(down)
	back := tc.waitState(l, "the restarted server healthy", healthyServers(3, leaderID))
	if since := back.Servers[downID].StableSince; since.Before(restarted) {
		t.Fatalf("the restarted server is healthy since %v, before its restart at %v", since, restarted)
	}
	sameSince(t, "after the restart", before, back, leaderID, otherID)
}

// Reads cost no probes: with an interval too long for a second round, 60
// reads of the state and health, on the leader and through followers,
// leave the leader's probe and round counters (and their metric) where
// they were, and the followers send none.
func TestAutopilotTracking_ReadsSendNoProbes(t *testing.T) {
	tc := trackedCluster(t, time.Hour)
	l := tc.startSettled()
	leader := tc.agents[l]
	testkit.WaitFor(t, 10*time.Second, "the first round", func() error {
		if leader.srv.autopilot.Rounds() == 0 {
			return fmt.Errorf("no round yet")
		}
		return nil
	})
	rounds, probes := leader.srv.autopilot.Rounds(), leader.srv.autopilot.Probes()
	for i := range 20 {
		var st rpc.AutopilotStateReply
		if code, err := tc.getJSON(i%3, "/v1/operator/autopilot/state", &st); code != 200 || err != nil || len(st.Servers) == 0 {
			t.Fatalf("state through s%d: %d, %v, %+v", i%3+1, code, err, st)
		}
		var h rpc.OperatorHealthReply
		if code, err := tc.getJSON(i%3, "/v1/operator/autopilot/health", &h); (code != 200 && code != 429) || err != nil || len(h.Servers) == 0 {
			t.Fatalf("health through s%d: %d, %v, %+v", i%3+1, code, err, h)
		}
	}
	if r, p := leader.srv.autopilot.Rounds(), leader.srv.autopilot.Probes(); r != rounds || p != probes {
		t.Fatalf("40 reads moved the leader to %d rounds, %d probes from %d, %d", r, p, rounds, probes)
	}
	if probes != 2*rounds {
		t.Errorf("%d probes in %d rounds of three servers, want two per round", probes, rounds)
	}
	if got := metricValues(leader, "roster.autopilot.probes"); len(got) != 1 || got[0] != float64(probes) {
		t.Errorf("metric roster.autopilot.probes = %v, want [%d]", got, probes)
	}
	for i, a := range tc.agents {
		if i != l && (a.srv.autopilot.Probes() != 0 || a.srv.autopilot.Running()) {
			t.Errorf("follower s%d tracks health: %d probes", i+1, a.srv.autopilot.Probes())
		}
	}
}

// A new leader tracks afresh and the old one stops: after a leadership
// transfer the state, read through the old leader, is the new leader's,
// every StableSince from after the transfer; the old leader's tracker has
// stopped and sends no more probes.
func TestAutopilotTracking_LeadershipChangeRestartsTracking(t *testing.T) {
	tc := trackedCluster(t, 50*time.Millisecond)
	l := tc.startSettled()
	old := tc.agents[l]
	tc.waitState(l, "three healthy servers", healthyServers(3, old.nodeID()))
	changed := time.Now()
	if err := old.srv.raft.LeadershipTransfer("", 5*time.Second).Error(); err != nil {
		t.Fatalf("leadership transfer: %v", err)
	}
	n := tc.leader(10 * time.Second)
	if n == l {
		t.Fatalf("s%d still leads after the transfer", l+1)
	}
	st := tc.waitState(l, "the new leader's healthy state", healthyServers(3, tc.agents[n].nodeID()))
	for id, s := range st.Servers {
		if s.StableSince.Before(changed) {
			t.Errorf("server %s stable since %v, before the leadership change at %v", id, s.StableSince, changed)
		}
	}
	testkit.WaitFor(t, 5*time.Second, "the old leader's tracker to stop", func() error {
		if old.srv.autopilot.Running() {
			return fmt.Errorf("still running")
		}
		return nil
	})
	probes := old.srv.autopilot.Probes()
	waitRounds(t, tc.agents[n], 3)
	if p := old.srv.autopilot.Probes(); p != probes {
		t.Fatalf("the old leader sent %d probes after it stopped leading", p-probes)
	}
	if got := metricValues(old, "roster.autopilot.healthy"); len(got) != 0 {
		t.Errorf("the old leader reports autopilot health %v; only the leader does", got)
	}
	if got := metricValues(tc.agents[n], "roster.autopilot.healthy"); len(got) != 1 || got[0] != 1 {
		t.Errorf("the new leader reports autopilot health %v, want [1]", got)
	}
}

// metricValues are the values a's metrics report under name.
func metricValues(a *Agent, name string) []float64 {
	var out []float64
	for _, m := range a.Metrics() {
		if m.Name == name {
			out = append(out, m.Value)
		}
	}
	return out
}
