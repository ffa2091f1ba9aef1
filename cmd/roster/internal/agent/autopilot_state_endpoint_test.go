package agent

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"roster/internal/testkit"
	"roster/rpc"
)

// getJSON GETs path from agent i's HTTP API and decodes the body into out,
// returning the status code.
func (tc *testCluster) getJSON(i int, path string, out any) (int, error) {
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d%s", tc.cfgs[i].Ports.HTTP, path))
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	return resp.StatusCode, json.NewDecoder(resp.Body).Decode(out)
}

// Autopilot's state through the HTTP API of a real cluster: first three
// healthy voters with their node names, build version and catalog meta;
// after one server crashes (cleanup off, so it stays in Raft), that
// server is failed and unhealthy, the cluster unhealthy with no failure
// tolerance left, and the health endpoint says 429 with a body whose
// every LastContact is a duration, which Consul's client can decode.
func TestAutopilotState_CrashedServerIsFailedAndUnhealthy(t *testing.T) {
	tc := newTestCluster(t, 3)
	for i := range tc.cfgs {
		tc.cfgs[i].Autopilot.DisableCleanupDeadServers = true
		tc.cfgs[i].Autopilot.ServerHealthInterval = 100 * time.Millisecond
	}
	l := tc.startSettled()
	leaderID, down := tc.agents[l].nodeID(), (l+1)%3
	downID := tc.agents[down].nodeID()
	testkit.WaitFor(t, 10*time.Second, "a healthy state of three voters", func() error {
		var st rpc.AutopilotStateReply
		if code, err := tc.getJSON(l, "/v1/operator/autopilot/state", &st); code != 200 || err != nil {
			return fmt.Errorf("status %d, %v", code, err)
		}
		if !st.Healthy || st.FailureTolerance != 1 || st.Leader != leaderID || len(st.Voters) != 3 {
			return fmt.Errorf("state %+v", st)
		}
		for i, cfg := range tc.cfgs {
			s := st.Servers[tc.agents[i].nodeID()]
			if _, ok := s.Meta[segmentMetaKey]; s.Name != cfg.NodeName || s.Version != cfg.Version || !ok || s.NodeStatus != "alive" {
				return fmt.Errorf("server %s: %+v", cfg.NodeName, s)
			}
		}
		return nil
	})
	tc.kill(down)
	testkit.WaitFor(t, 15*time.Second, "the crashed server failed in the state", func() error {
		var st rpc.AutopilotStateReply
		if code, err := tc.getJSON(l, "/v1/operator/autopilot/state", &st); code != 200 || err != nil {
			return fmt.Errorf("status %d, %v", code, err)
		}
		s := st.Servers[downID]
		if st.Healthy || st.FailureTolerance != 0 || len(st.Servers) != 3 || s.NodeStatus != "failed" || s.Healthy ||
			s.Status != "voter" || st.Servers[leaderID].Status != "leader" || st.Voters[len(st.Voters)-1] != downID {
			return fmt.Errorf("state %+v", st)
		}
		return nil
	})
	var h rpc.OperatorHealthReply
	if code, err := tc.getJSON(l, "/v1/operator/autopilot/health", &h); code != 429 || err != nil || h.Healthy {
		t.Fatalf("health: status %d, %v, %+v; want 429 unhealthy", code, err, h)
	}
	for _, s := range h.Servers {
		if _, err := time.ParseDuration(s.LastContact); err != nil {
			t.Errorf("server %s LastContact %q: %v", s.Name, s.LastContact, err)
		}
	}
}
