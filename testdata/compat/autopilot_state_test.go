package compat

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
)

// api.Operator().AutopilotState, as `consul operator autopilot state`
// calls it, decodes against a real three-server cluster: three healthy
// voters tolerate one failure, the leader is the one the Raft
// configuration names and has Status "leader", and every server carries
// its node name, build version, gossip status and catalog meta. Sent to
// a follower, the call is forwarded to the leader, which tracks the
// state, with ?stale as well.
func TestAutopilotState_ThreeServerClusterThroughAFollower(t *testing.T) {
	servers := startCluster(t, 3)
	var leaderID string
	var follower *clusterServer
	waitFor(t, 30*time.Second, "a leader in the Raft configuration", func() error {
		conf, err := servers[0].client.Operator().RaftGetConfiguration(nil)
		if err != nil {
			return err
		}
		for _, s := range conf.Servers {
			if s.Leader {
				leaderID = s.ID
			}
		}
		for _, s := range servers {
			if id := nodeID(s); id != "" && id != leaderID {
				follower = s
			}
		}
		if leaderID == "" || follower == nil || len(conf.Servers) != 3 {
			return fmt.Errorf("configuration %+v", conf.Servers)
		}
		return nil
	})
	version := agentVersion(t, follower.client)
	for _, opts := range []*api.QueryOptions{nil, {AllowStale: true}} {
		waitFor(t, 30*time.Second, "a healthy state of three voters", func() error {
			st, err := follower.client.Operator().AutopilotState(opts)
			if err != nil {
				return err
			}
			return checkClusterState(st, leaderID, version)
		})
	}
}

// checkClusterState says what is wrong with st for three healthy voters
// of build version led by leaderID, or nil.
func checkClusterState(st *api.AutopilotState, leaderID, version string) error {
	if !st.Healthy || st.FailureTolerance != 1 || st.OptimisticFailureTolerance != 1 || st.Leader != leaderID ||
		len(st.Servers) != 3 || len(st.Voters) != 3 || st.Voters[0] != leaderID {
		return fmt.Errorf("state %+v, want healthy, tolerance 1, leader %s first of 3 voters", st, leaderID)
	}
	if st.ReadReplicas != nil || st.RedundancyZones != nil || st.Upgrade != nil {
		return fmt.Errorf("enterprise fields set: %+v", st)
	}
	var names []string
	for id, s := range st.Servers {
		want := api.AutopilotServerVoter
		if id == leaderID {
			want = api.AutopilotServerLeader
		}
		if s.ID != id || s.Status != want || s.NodeType != api.AutopilotTypeVoter || s.NodeStatus != "alive" ||
			!s.Healthy || s.Version != version || s.LastContact == nil || s.LastTerm == 0 || s.LastIndex == 0 ||
			s.StableSince.IsZero() || s.Address == "" {
			return fmt.Errorf("server %s = %+v, want a healthy %s of version %s", id, s, want, version)
		}
		if _, ok := s.Meta["consul-network-segment"]; !ok {
			return fmt.Errorf("server %s meta %v, want its catalog node meta", id, s.Meta)
		}
		names = append(names, s.Name)
	}
	if slices.Sort(names); !slices.Equal(names, []string{"compat-s1", "compat-s2", "compat-s3"}) {
		return fmt.Errorf("server names %v", names)
	}
	return nil
}

// nodeID is the server's node ID (its Raft ID), "" if not answering yet.
func nodeID(s *clusterServer) string {
	self, err := s.client.Agent().Self()
	if err != nil {
		return ""
	}
	id, _ := self["Config"]["NodeID"].(string)
	return id
}

// agentVersion is the build version an agent reports in /v1/agent/self.
func agentVersion(t *testing.T, c *api.Client) string {
	self, err := c.Agent().Self()
	if err != nil {
		t.Fatal(err)
	}
	v, _ := self["Config"]["Version"].(string)
	if v == "" {
		t.Fatalf("agent/self Config.Version missing: %v", self["Config"])
	}
	return v
}
