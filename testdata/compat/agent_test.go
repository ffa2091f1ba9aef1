package compat

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
)

var rosterBin string

func TestMain(m *testing.M) {
	rosterBin = os.Getenv("ROSTER_BIN")
	var tmp string
	if rosterBin == "" {
		var err error
		tmp, err = os.MkdirTemp("", "roster-compat-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		rosterBin = filepath.Join(tmp, "roster")
		build := exec.Command("go", "build", "-o", rosterBin, "./cmd/roster")
		build.Dir = filepath.Join("..", "..")
		build.Stderr = os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "building roster:", err)
			os.Exit(1)
		}
	}
	code := m.Run()
	if tmp != "" {
		os.RemoveAll(tmp)
	}
	os.Exit(code)
}

// devAgent starts `roster agent -dev` and returns a Consul client for it.
func devAgent(t *testing.T, node string, extraArgs ...string) *api.Client {
	t.Helper()
	p := startAgent(t, node, append([]string{"-dev", "-node", node}, extraArgs...)...)
	cfg := api.DefaultConfig()
	cfg.Address = fmt.Sprintf("127.0.0.1:%d", p.ports[0])
	client, err := api.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "agent HTTP API", func() error {
		_, err := client.Agent().Self()
		return err
	})
	// A session is created with the node's serfHealth check unless told
	// otherwise, and fails ("Missing check 'serfHealth' registration")
	// until the leader has registered that check. The node alone is not
	// enough: anti-entropy may register it first, without the check. So,
	// as Consul's test server does (testutil's WaitForSerfCheck), hand
	// the agent out once its serfHealth check is passing.
	waitFor(t, 10*time.Second, "the agent's serfHealth check", func() error {
		checks, _, err := client.Health().Node(node, nil)
		if err != nil {
			return err
		}
		for _, c := range checks {
			if c.CheckID == "serfHealth" && c.Status == api.HealthPassing {
				return nil
			}
		}
		return fmt.Errorf("node %q checks %+v, want serfHealth passing", node, checks)
	})
	return client
}

// waitFor polls cond every 10ms until it returns nil, or fails the test
// with cond's last error once the deadline has passed.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s: %v", timeout, what, err)
		}
		<-tick.C
	}
}

func TestAgentSelf_DecodesAndNodeNameWorks(t *testing.T) {
	c := devAgent(t, "compat-node")
	self, err := c.Agent().Self()
	if err != nil {
		t.Fatal(err)
	}
	if self["Config"]["Datacenter"] != "dc1" || self["Config"]["Server"] != true {
		t.Fatalf("Config = %v", self["Config"])
	}
	name, err := c.Agent().NodeName()
	if err != nil || name != "compat-node" {
		t.Fatalf("NodeName() = %q, %v", name, err)
	}
}

func TestAgentMembers_ShowThisServer(t *testing.T) {
	c := devAgent(t, "compat-members")
	members, err := c.Agent().Members(false)
	if err != nil {
		t.Fatal(err)
	}
	if len(members) != 1 {
		t.Fatalf("members = %+v", members)
	}
	m := members[0]
	if m.Name != "compat-members" || m.Status != 1 || m.Tags["role"] != "consul" || m.Tags["dc"] != "dc1" {
		t.Fatalf("member = %+v", m)
	}
	opts := &api.MembersOpts{WAN: true, Segment: api.AllSegments}
	wan, err := c.Agent().MembersOpts(*opts)
	if err != nil || len(wan) != 1 || wan[0].Name != "compat-members.dc1" {
		t.Fatalf("WAN members = %+v, %v", wan, err)
	}
}
