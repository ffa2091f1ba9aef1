package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"roster/internal/testkit"
)

// afterAll runs after every test and benchmark (shared clusters stop here).
var afterAll []func()

// rosterBin is the binary under test, built once by TestMain with a known
// version and commit so `roster version` can be checked.
var rosterBin string

const (
	testVersion = "9.8.7-test"
	testCommit  = "feedbeef"
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "roster-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	rosterBin = filepath.Join(dir, "roster")
	ldflags := fmt.Sprintf("-X main.version=%s -X main.commit=%s", testVersion, testCommit)
	build := exec.Command("go", "build", "-ldflags", ldflags, "-o", rosterBin, ".")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building roster for tests:", err)
		os.Exit(1)
	}
	code := m.Run()
	for _, f := range afterAll {
		f()
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

// runRoster runs the binary to completion and returns exit code and output.
func runRoster(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	cmd := exec.Command(rosterBin, args...)
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

func TestAgentCmd_InvalidCombinationsFailWithOneLineNamingTheFlag(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"agent", "-bootstrap-expect", "3"}, "-bootstrap-expect requires -server"},
		{[]string{"agent", "-server"}, "-data-dir is required"},
		{[]string{"agent", "-dev", "-log-level", "loud"}, "-log-level"},
		{[]string{"agent", "-dev", "stray"}, "unexpected argument"},
		{[]string{"agent", "-dev", "-node-meta", "consul-segment:x"}, "node_meta invalid: Couldn't load metadata pair ('consul-segment', 'x'): Key prefix 'consul-' is reserved"},
		{[]string{"agent", "-dev", "-node-meta", "bad key:x"}, "Key contains invalid characters"},
	}
	for _, tc := range cases {
		code, _, stderr := runRoster(t, tc.args...)
		if code != 1 {
			t.Errorf("%v: exit %d, want 1", tc.args, code)
		}
		lines := strings.Split(strings.TrimSpace(stderr), "\n")
		if len(lines) != 1 || !strings.Contains(lines[0], tc.want) {
			t.Errorf("%v: stderr %q, want one line containing %q", tc.args, stderr, tc.want)
		}
	}
}

// A second agent on the ports the first one logged finds them taken: the
// logged ports are the ones the agent holds.
func TestAgentCmd_PortInUseFailsNamingTheFlag(t *testing.T) {
	a := startDevAgent(t)
	defer stopAgent(t, a, syscall.SIGTERM)
	code, _, stderr := runRoster(t, devArgs(a.ports)...)
	// Gossip binds first, so its port is the one reported.
	if code != 1 || !strings.Contains(stderr, "-serf-lan-port: cannot listen") {
		t.Fatalf("second agent on the same ports: exit %d, stderr %q", code, stderr)
	}
}

func TestVersion_PrintsVersionAndCommit(t *testing.T) {
	code, out, _ := runRoster(t, "version")
	if code != 0 || !strings.Contains(out, "roster v"+testVersion) || !strings.Contains(out, "Revision "+testCommit) {
		t.Fatalf("exit %d, output %q", code, out)
	}
}

func TestHelp_ListsCommandsAndEachCommandHasUsage(t *testing.T) {
	code, out, _ := runRoster(t, "help")
	if code != 0 || !strings.Contains(out, "agent") || !strings.Contains(out, "version") {
		t.Fatalf("help: exit %d, output %q", code, out)
	}
	code, _, stderr := runRoster(t, "agent", "-h")
	if code != 0 || !strings.Contains(stderr, "-bootstrap-expect") {
		t.Fatalf("agent -h: exit %d, stderr %q", code, stderr)
	}
	code, _, _ = runRoster(t, "nosuchcommand")
	if code != 2 {
		t.Fatalf("unknown command: exit %d, want 2", code)
	}
}

// devNode is the node name of the dev agents tests start.
const devNode = "proc-test"

// devArgs are the arguments of a dev agent on ports p (nil: every port 0).
func devArgs(p []int) []string {
	return append([]string{"agent", "-dev", "-node", devNode}, portArgs(p)...)
}

type agentProc struct {
	cmd    *exec.Cmd
	stderr *testkit.LockedBuffer
	base   string
	ports  []int // http, dns, server, serf-lan, serf-wan
	done   chan error
}

// startDevAgent starts `roster agent -dev`, with further agent arguments
// extra, on ports the kernel picks (read back from its log,
// ports_proc_test.go), and waits until its HTTP API answers.
func startDevAgent(t *testing.T, extra ...string) *agentProc {
	t.Helper()
	args := append(devArgs(nil), extra...)
	a := &agentProc{cmd: exec.Command(rosterBin, args...), stderr: new(testkit.LockedBuffer), done: make(chan error, 1)}
	a.cmd.Stderr = a.stderr
	if err := a.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { a.done <- a.cmd.Wait() }()
	t.Cleanup(func() { a.cmd.Process.Kill() })
	var err error
	if a.ports, err = waitLoggedPorts(a.stderr, a.done); err != nil {
		t.Fatalf("dev agent: %v; stderr:\n%s", err, a.stderr)
	}
	a.base = fmt.Sprintf("http://127.0.0.1:%d", a.ports[0])
	testkit.WaitFor(t, 10*time.Second, "the dev agent's HTTP API", func() error {
		resp, err := http.Get(a.base + "/v1/agent/self")
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	})
	// Until the leader has registered the agent's own node with its
	// serfHealth check, a session create fails ("Missing check
	// 'serfHealth' registration"), in roster as in Consul.
	testkit.WaitFor(t, 10*time.Second, "the agent's serfHealth check", func() error {
		return serfHealth(devNode, "passing")(a.base)
	})
	return a
}

// stopAgent signals the agent and waits for it to exit; it must exit 0.
func stopAgent(t *testing.T, a *agentProc, sig syscall.Signal) {
	t.Helper()
	a.cmd.Process.Signal(sig)
	select {
	case err := <-a.done:
		if err != nil {
			t.Fatalf("agent exited with %v after %v; stderr:\n%s", err, sig, a.stderr)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("agent still running 10s after %v; stderr:\n%s", sig, a.stderr)
	}
}

func TestAgentCmd_DevServesSelfAndSIGINTLeavesCleanly(t *testing.T) {
	a := startDevAgent(t)
	resp, err := http.Get(a.base + "/v1/agent/self")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`"NodeName": "proc-test"`, `"Datacenter": "dc1"`, `"Server": true`, `"Member"`} {
		if !strings.Contains(string(body), want) {
			t.Fatalf("agent/self lacks %s:\n%s", want, body)
		}
	}
	stopAgent(t, a, syscall.SIGINT)
	if log := a.stderr.String(); !strings.Contains(log, "msg=leaving") || !strings.Contains(log, "msg=shutdown") {
		t.Fatalf("SIGINT did not leave and shut down:\n%s", log)
	}
}
