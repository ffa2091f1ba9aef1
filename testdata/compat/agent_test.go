package compat

import (
	"bytes"
	"fmt"
	"net"
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

// freePorts returns n distinct loopback ports free for TCP and UDP.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	var held []net.Listener
	defer func() {
		for _, l := range held {
			l.Close()
		}
	}()
	for len(ports) < n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, l)
		p := l.Addr().(*net.TCPAddr).Port
		if u, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", p)); err == nil {
			u.Close()
			ports = append(ports, p)
		}
	}
	return ports
}

// devAgent starts `roster agent -dev` and returns a Consul client for it.
func devAgent(t *testing.T, node string, extraArgs ...string) *api.Client {
	t.Helper()
	p := freePorts(t, 5)
	var stderr bytes.Buffer
	args := append([]string{"agent", "-dev", "-node", node,
		"-http-port", fmt.Sprint(p[0]), "-dns-port", fmt.Sprint(p[1]), "-server-port", fmt.Sprint(p[2]),
		"-serf-lan-port", fmt.Sprint(p[3]), "-serf-wan-port", fmt.Sprint(p[4])}, extraArgs...)
	cmd := exec.Command(rosterBin, args...)
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("agent log:\n%s", stderr.String())
		}
	})
	cfg := api.DefaultConfig()
	cfg.Address = fmt.Sprintf("127.0.0.1:%d", p[0])
	client, err := api.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "agent HTTP API", func() error {
		_, err := client.Agent().Self()
		return err
	})
	// Sessions need their node in the catalog; like Consul's test server,
	// hand the agent out once the leader or anti-entropy registered it.
	waitFor(t, 10*time.Second, "agent's node in the catalog", func() error {
		n, _, err := client.Catalog().Node(node, nil)
		if err == nil && (n == nil || n.Node == nil) {
			err = fmt.Errorf("node %q not registered yet", node)
		}
		return err
	})
	return client
}

// waitFor polls cond until it returns nil or the deadline passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s: %v", what, err)
		}
		time.Sleep(10 * time.Millisecond)
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
