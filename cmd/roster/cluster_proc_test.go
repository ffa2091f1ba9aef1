package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"roster/internal/testkit"
)

// Process-level tests: the real binary, started as a user would.

// serverProc is one `roster agent -server` process (or a client agent's,
// cluster_clients_proc_test.go).
type serverProc struct {
	name    string
	ports   []int // http, dns, server, serf-lan, serf-wan
	dataDir string
	cmd     *exec.Cmd
	stderr  *testkit.LockedBuffer
	done    chan error
}

func (p *serverProc) base() string { return fmt.Sprintf("http://127.0.0.1:%d", p.ports[0]) }

// startServerProcs starts n servers with -bootstrap-expect n, each joining
// the first one's LAN port with -retry-join, and stops them at cleanup.
func startServerProcs(t *testing.T, n int) []*serverProc {
	t.Helper()
	procs := startServerProcsTB(t, n)
	t.Cleanup(func() {
		stopProcs(procs)
		if t.Failed() {
			for _, p := range procs {
				t.Logf("%s stderr:\n%s", p.name, p.stderr)
			}
		}
	})
	return procs
}

// startServerProcsTB starts the servers on ports the kernel picks, read
// back from each one's log (ports_proc_test.go) before the next starts,
// since the others join the first one's LAN port.
func startServerProcsTB(tb testing.TB, n int) []*serverProc {
	tb.Helper()
	var procs []*serverProc
	fail := func(err error) {
		tb.Helper()
		stopProcs(procs)
		for _, p := range procs {
			tb.Logf("%s stderr:\n%s", p.name, p.stderr)
		}
		tb.Fatal(err)
	}
	for i := range n {
		dir, err := os.MkdirTemp("", "roster-proc-")
		if err != nil {
			fail(err)
		}
		p := &serverProc{name: fmt.Sprintf("proc-s%d", i+1), dataDir: dir, stderr: new(testkit.LockedBuffer), done: make(chan error, 1)}
		args := append([]string{"agent", "-server", "-bootstrap-expect", fmt.Sprint(n), "-node", p.name,
			"-bind", "127.0.0.1", "-data-dir", dir}, portArgs(nil)...)
		if i > 0 {
			args = append(args, "-retry-join", fmt.Sprintf("127.0.0.1:%d", procs[0].ports[3]), "-retry-interval", "100ms")
		}
		p.cmd = exec.Command(rosterBin, args...)
		if serverProcEnv != nil {
			p.cmd.Env = append(os.Environ(), serverProcEnv(i)...)
		}
		p.cmd.Stderr = p.stderr
		if err := p.cmd.Start(); err != nil {
			os.RemoveAll(dir)
			fail(err)
		}
		go func() { p.done <- p.cmd.Wait() }()
		procs = append(procs, p)
		if p.ports, err = waitLoggedPorts(p.stderr, p.done); err != nil {
			fail(fmt.Errorf("%s: %v", p.name, err))
		}
	}
	return procs
}

// stopProcs kills every process and removes its data dir.
func stopProcs(procs []*serverProc) {
	for _, p := range procs {
		p.cmd.Process.Kill()
		err := <-p.done
		p.done <- err
		os.RemoveAll(p.dataDir)
	}
}

// statusLeader returns what /v1/status/leader answers ("" while none).
func statusLeader(base string) (string, error) {
	c := &http.Client{Timeout: time.Second}
	resp, err := c.Get(base + "/v1/status/leader")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return "", fmt.Errorf("%s: %s", resp.Status, body)
	}
	return strings.Trim(strings.TrimSpace(string(body)), `"`), nil
}

func TestProcess_ThreeServersBootstrapExpectAnswerStatusLeader(t *testing.T) {
	procs := startServerProcs(t, 3)
	start := time.Now()
	testkit.WaitFor(t, 10*time.Second, "/v1/status/leader to name the same leader on all three servers", func() error {
		var first string
		for i, p := range procs {
			leader, err := statusLeader(p.base())
			if err != nil {
				return fmt.Errorf("%s: %v", p.name, err)
			}
			if leader == "" {
				return fmt.Errorf("%s knows no leader yet", p.name)
			}
			if i == 0 {
				first = leader
			} else if leader != first {
				return fmt.Errorf("%s names %s, %s names %s", procs[0].name, first, p.name, leader)
			}
		}
		return nil
	})
	t.Logf("all three servers named the leader %v after start", time.Since(start).Round(time.Millisecond))
	testkit.WaitFor(t, 10*time.Second, "roster members to list three alive servers", func() error {
		code, out, stderr := runRosterEnv(t, []string{"CONSUL_HTTP_ADDR=" + procs[1].base()}, "members")
		if code != 0 {
			return fmt.Errorf("exit %d: %s", code, stderr)
		}
		if n := strings.Count(out, " alive "); n != 3 || !strings.Contains(out, "server") || !strings.HasPrefix(out, "Node ") {
			return fmt.Errorf("members output:\n%s", out)
		}
		return nil
	})
	victim := checkOperatorCommands(t, procs)
	for _, p := range procs {
		if p != victim {
			p.cmd.Process.Signal(syscall.SIGINT)
		}
	}
	for _, p := range procs {
		if p == victim {
			continue
		}
		select {
		case err := <-p.done:
			p.done <- err // for stopProcs
			if err != nil {
				t.Errorf("%s exited with %v after SIGINT", p.name, err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("%s still running 10s after SIGINT", p.name)
		}
	}
}

func TestProcess_DevElectsItselfAndAnswersStatusLeader(t *testing.T) {
	a := startDevAgent(t)
	p := a.ports
	testkit.WaitFor(t, 5*time.Second, "the dev agent to know its leader", func() error {
		leader, err := statusLeader(a.base)
		if err != nil {
			return err
		}
		if want := fmt.Sprintf("127.0.0.1:%d", p[2]); leader != want {
			return fmt.Errorf("leader %q, want %q", leader, want)
		}
		return nil
	})
	stopAgent(t, a, syscall.SIGTERM)
}

// checkOperatorCommands runs list-peers, remove-peer and info against the
// cluster; it removes (and kills) one follower, which it returns.
func checkOperatorCommands(t *testing.T, procs []*serverProc) *serverProc {
	t.Helper()
	env := []string{"ROSTER_HTTP_ADDR=" + procs[2].base()}
	code, out, stderr := runRosterEnv(t, env, "operator", "raft", "list-peers")
	if code != 0 || !strings.HasPrefix(out, "Node ") || strings.Count(out, "leader") != 1 || strings.Count(out, "follower") != 2 {
		t.Fatalf("list-peers: exit %d, stderr %q, output:\n%s", code, stderr, out)
	}
	checkTransferLeader(t, procs)
	// Remove a follower by address; the other two keep a leader.
	var victim *serverProc
	for _, p := range procs[1:] {
		if l, _ := statusLeader(p.base()); l != fmt.Sprintf("127.0.0.1:%d", p.ports[2]) {
			victim = p
			break
		}
	}
	addr := fmt.Sprintf("127.0.0.1:%d", victim.ports[2])
	code, out, stderr = runRosterEnv(t, []string{"ROSTER_HTTP_ADDR=" + procs[0].base()}, "operator", "raft", "remove-peer", "-address", addr)
	if code != 0 || !strings.Contains(out, "Removed peer with address") {
		t.Fatalf("remove-peer: exit %d, stderr %q, output %q", code, stderr, out)
	}
	victim.cmd.Process.Kill()
	code, out, _ = runRosterEnv(t, []string{"ROSTER_HTTP_ADDR=" + procs[0].base()}, "operator", "raft", "list-peers")
	if code != 0 || strings.Contains(out, addr) || strings.Count(out, "\n") != 3 {
		t.Fatalf("list-peers after remove-peer: exit %d, output:\n%s", code, out)
	}
	code, out, _ = runRosterEnv(t, []string{"ROSTER_HTTP_ADDR=" + procs[0].base()}, "info")
	if code != 0 || !strings.Contains(out, "serf_lan:") || !strings.Contains(out, "latest_configuration") {
		t.Fatalf("info: exit %d, output:\n%s", code, out)
	}
	return victim
}

// runRosterEnv is runRoster with extra environment variables.
func runRosterEnv(t *testing.T, env []string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	cmd := exec.Command(rosterBin, args...)
	cmd.Env = append(cmd.Environ(), env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), out.String(), errOut.String()
	} else if err != nil {
		t.Fatal(err)
	}
	return 0, out.String(), errOut.String()
}

func TestCLI_InfoMembersJoinLeaveAgainstDevAgent(t *testing.T) {
	a := startDevAgent(t)
	p := a.ports
	addr := fmt.Sprintf("127.0.0.1:%d", p[0])
	code, out, stderr := runRoster(t, "info", "-http-addr", addr)
	if code != 0 || !strings.Contains(out, "raft:\n") || !strings.Contains(out, "\tstate = Leader\n") || !strings.Contains(out, "serf_lan:\n") {
		t.Fatalf("info: exit %d, stderr %q, output:\n%s", code, stderr, out)
	}
	code, out, stderr = runRoster(t, "members", "-detailed", "-http-addr", addr)
	if code != 0 || !strings.Contains(out, "proc-test") || !strings.Contains(out, "role=consul") {
		t.Fatalf("members -detailed: exit %d, stderr %q, output:\n%s", code, stderr, out)
	}
	code, out, stderr = runRoster(t, "join", "-http-addr", addr, fmt.Sprintf("127.0.0.1:%d", p[3]))
	if code != 0 || !strings.Contains(out, "Successfully joined cluster by contacting 1 nodes.") {
		t.Fatalf("join: exit %d, stderr %q, output %q", code, stderr, out)
	}
	code, _, stderr = runRoster(t, "join", "-http-addr", addr, "127.0.0.1:1")
	if code != 1 || !strings.Contains(stderr, "Failed to join any nodes.") {
		t.Fatalf("join of a dead address: exit %d, stderr %q", code, stderr)
	}
	code, out, stderr = runRoster(t, "leave", "-http-addr", addr)
	if code != 0 || !strings.Contains(out, "Graceful leave complete") {
		t.Fatalf("leave: exit %d, stderr %q, output %q", code, stderr, out)
	}
	select {
	case err := <-a.done:
		if err != nil {
			t.Fatalf("agent exited with %v after leave; stderr:\n%s", err, a.stderr)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("agent still running 10s after leave")
	}
	code, _, stderr = runRoster(t, "members", "-http-addr", addr)
	if code != 1 || !strings.Contains(stderr, "cannot reach the agent") {
		t.Fatalf("members with no agent: exit %d, stderr %q", code, stderr)
	}
}

func TestDevCluster_ThreeServersOnLoopbackAliasesElectALeader(t *testing.T) {
	// Port 0 everywhere: each server binds the kernel's picks, and
	// dev-cluster prints every server's HTTP address once all have started.
	cmd := exec.Command(rosterBin, "dev-cluster", "-ip", "127.0.0.2", "-log-level", "warn", "-dns-port", "-1",
		"-http-port", "0", "-server-port", "0", "-serf-lan-port", "0", "-serf-wan-port", "0")
	stdout, stderr := new(testkit.LockedBuffer), new(testkit.LockedBuffer)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	defer func() {
		cmd.Process.Kill()
		if t.Failed() {
			t.Logf("stdout:\n%s\nstderr:\n%s", stdout, stderr)
		}
	}()
	var bases []string
	testkit.WaitFor(t, 10*time.Second, "dev-cluster to print its three HTTP addresses", func() error {
		bases = devClusterBases(stdout.String())
		if len(bases) != 3 {
			return fmt.Errorf("HTTP addresses %v", bases)
		}
		return nil
	})
	for i, b := range bases {
		if want := fmt.Sprintf("http://127.0.0.%d:", i+2); !strings.HasPrefix(b, want) {
			t.Fatalf("server %d serves HTTP on %s, want an address %s...", i+1, b, want)
		}
	}
	testkit.WaitFor(t, 10*time.Second, "every server of the dev cluster to name one leader", func() error {
		var first string
		for i, b := range bases {
			leader, err := statusLeader(b)
			if err != nil {
				return err
			}
			if leader == "" {
				return fmt.Errorf("%s knows no leader", b)
			}
			if i == 0 {
				first = leader
			} else if leader != first {
				return fmt.Errorf("%s names %s, the first names %s", b, leader, first)
			}
		}
		var n, port int
		if _, err := fmt.Sscanf(first, "127.0.0.%d:%d", &n, &port); err != nil || n < 2 || n > 4 {
			return fmt.Errorf("leader %q is not one of the servers (%v)", first, err)
		}
		return nil
	})
	cmd.Process.Signal(syscall.SIGINT)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("dev-cluster exited with %v after SIGINT", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("dev-cluster still running 10s after SIGINT")
	}
}

// devClusterBases reads the HTTP base URLs dev-cluster prints, one per
// server ("    roster-s1  http://127.0.0.2:8500"), in server order.
func devClusterBases(stdout string) []string {
	var bases []string
	for _, line := range strings.Split(stdout, "\n") {
		f := strings.Fields(line)
		if len(f) == 2 && strings.HasPrefix(f[0], "roster-s") && strings.HasPrefix(f[1], "http://") {
			bases = append(bases, f[1])
		}
	}
	return bases
}

// raftConfig reads /v1/operator/raft/configuration from base.
func raftConfig(t *testing.T, base string) []raftServer {
	t.Helper()
	resp, err := http.Get(base + "/v1/operator/raft/configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var conf struct{ Servers []raftServer }
	if err := json.NewDecoder(resp.Body).Decode(&conf); err != nil {
		t.Fatal(err)
	}
	return conf.Servers
}

// checkTransferLeader moves leadership to a named follower with
// `operator raft transfer-leader -id`, then lets the leader pick one.
func checkTransferLeader(t *testing.T, procs []*serverProc) {
	t.Helper()
	var target raftServer
	for _, s := range raftConfig(t, procs[0].base()) {
		if !s.Leader {
			target = s
		}
	}
	code, out, stderr := runRosterEnv(t, []string{"CONSUL_HTTP_ADDR=" + procs[0].base()}, "operator", "raft", "transfer-leader", "-id", target.ID)
	if code != 0 || out != "Success\n" {
		t.Fatalf("transfer-leader -id %s: exit %d, stdout %q, stderr %q", target.ID, code, out, stderr)
	}
	testkit.WaitFor(t, 10*time.Second, "every server to name "+target.Address+" leader", func() error {
		for _, p := range procs {
			if l, err := statusLeader(p.base()); err != nil || l != target.Address {
				return fmt.Errorf("%s names %q (%v)", p.name, l, err)
			}
		}
		return nil
	})
	code, out, stderr = runRosterEnv(t, []string{"CONSUL_HTTP_ADDR=" + procs[1].base()}, "operator", "raft", "transfer-leader")
	if code != 0 || out != "Success\n" {
		t.Fatalf("transfer-leader: exit %d, stdout %q, stderr %q", code, out, stderr)
	}
	testkit.WaitFor(t, 10*time.Second, "a new leader other than "+target.Address, func() error {
		l, err := statusLeader(procs[2].base())
		if err != nil || l == "" || l == target.Address {
			return fmt.Errorf("leader %q (%v)", l, err)
		}
		return nil
	})
	code, _, stderr = runRosterEnv(t, []string{"CONSUL_HTTP_ADDR=" + procs[1].base()}, "operator", "raft", "transfer-leader", "-id", "no-such-server")
	if code != 1 || !strings.Contains(stderr, "not a voter") {
		t.Fatalf("transfer-leader to an unknown ID: exit %d, stderr %q", code, stderr)
	}
}
