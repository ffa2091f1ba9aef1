package compat

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
)

// TestCluster_FollowerServesEveryScenario runs every scenario of
// api_test.go against a follower of a three-server cluster: reads and
// writes sent there must be forwarded to the leader and answered as a
// single dev agent answers them.
func TestCluster_FollowerServesEveryScenario(t *testing.T) {
	servers := startCluster(t, 3)
	var follower *clusterServer
	waitFor(t, 20*time.Second, "a leader known to every server", func() error {
		follower = nil
		var leader string
		for _, s := range servers {
			l, err := s.client.Status().Leader()
			if err != nil {
				return fmt.Errorf("%s: %v", s.name, err)
			}
			if l == "" || (leader != "" && l != leader) {
				return fmt.Errorf("%s names leader %q (others %q)", s.name, l, leader)
			}
			leader = l
		}
		for _, s := range servers {
			if !strings.HasSuffix(leader, fmt.Sprintf(":%d", s.ports[2])) {
				follower = s
			}
		}
		if follower == nil {
			return errors.New("no follower found")
		}
		return nil
	})
	waitFor(t, 20*time.Second, "the follower's serfHealth check", func() error {
		checks, _, err := follower.client.Health().Node(follower.name, nil)
		if err != nil {
			return err
		}
		for _, c := range checks {
			if c.CheckID == "serfHealth" && c.Status == api.HealthPassing {
				return nil
			}
		}
		return fmt.Errorf("checks of %s: %+v", follower.name, checks)
	})
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) { sc.run(t, follower.client, follower.name) })
	}
}

type clusterServer struct {
	name   string
	ports  []int // http, dns, server, serf-lan, serf-wan, as the agent logged them
	client *api.Client
}

// startCluster starts n servers with -bootstrap-expect n joined to the
// first; they are killed (and their data removed) when the test ends.
func startCluster(t *testing.T, n int) []*clusterServer {
	t.Helper()
	var out []*clusterServer
	for i := range n {
		s := &clusterServer{name: fmt.Sprintf("compat-s%d", i+1)}
		args := []string{"-server", "-bootstrap-expect", fmt.Sprint(n), "-node", s.name, "-bind", "127.0.0.1",
			"-data-dir", t.TempDir()}
		if i > 0 {
			args = append(args, "-retry-join", fmt.Sprintf("127.0.0.1:%d", out[0].ports[3]), "-retry-interval", "100ms")
		}
		s.ports = startAgent(t, s.name, args...).ports
		cfg := api.DefaultConfig()
		cfg.Address = fmt.Sprintf("127.0.0.1:%d", s.ports[0])
		c, err := api.NewClient(cfg)
		if err != nil {
			t.Fatal(err)
		}
		s.client = c
		out = append(out, s)
	}
	return out
}
