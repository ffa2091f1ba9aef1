package compat

import (
	"bytes"
	"fmt"
	"net"
	"os/exec"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"
)

// agentProc is one `roster agent` process started with every port 0.
//
// Ports are not chosen here: a port found free and released again is
// open to any other process on the machine until the agent binds it (an
// outgoing connection takes it as its source port, another test's
// listener takes it), and the agent then fails with "address already in
// use". With port 0 the kernel picks each port at the agent's own bind,
// and the agent logs it on its "serving" line, where the test reads it.
type agentProc struct {
	cmd    *exec.Cmd
	log    *lockedBuffer
	exited chan struct{} // closed once the process has exited
	ports  []int         // in portComponents order, as the agent logged them
}

// portFlags and portComponents name each port: the flag that sets it and
// the component the agent's "serving" line reports it under.
var (
	portFlags      = []string{"-http-port", "-dns-port", "-server-port", "-serf-lan-port", "-serf-wan-port"}
	portComponents = []string{"http", "dns", "rpc", "serf_lan", "serf_wan"}
)

// servingLine matches the agent's log line for one bound listener.
var servingLine = regexp.MustCompile(`msg=serving .*component=(\S+) addr=(\S+)`)

// agentStartTimeout bounds the wait for a started agent to log its ports.
// It bounds a hang, not the speed: an agent logs them within a second.
const agentStartTimeout = 30 * time.Second

// startAgent starts `roster agent args...` with every port 0, waits until
// it has logged all five ports, and kills it when the test ends (showing
// its log if the test failed). It fails the test at once if the agent
// exits first.
func startAgent(t *testing.T, name string, args ...string) *agentProc {
	t.Helper()
	for _, f := range portFlags {
		args = append(args, f, "0")
	}
	p := &agentProc{cmd: exec.Command(rosterBin, append([]string{"agent"}, args...)...), log: &lockedBuffer{}, exited: make(chan struct{})}
	p.cmd.Stderr = p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.exited
		if t.Failed() {
			t.Logf("%s log:\n%s", name, p.log.String())
		}
	})
	deadline := time.NewTimer(agentStartTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		ports, err := loggedPorts(p.log.String())
		if err == nil {
			p.ports = ports
			return p
		}
		select {
		case <-p.exited:
			t.Fatalf("%s exited before serving: %v\n%s", name, p.cmd.ProcessState, p.log.String())
		case <-deadline.C:
			t.Fatalf("%s did not log its ports within %v: %v", name, agentStartTimeout, err)
		case <-tick.C:
		}
	}
}

// loggedPorts reads the port of every component in portComponents from
// the agent's log, or says which one has not been logged yet.
func loggedPorts(log string) ([]int, error) {
	byComponent := map[string]int{}
	for _, m := range servingLine.FindAllStringSubmatch(log, -1) {
		_, port, err := net.SplitHostPort(m[2])
		if err != nil {
			return nil, fmt.Errorf("serving line for %s: %v", m[1], err)
		}
		if byComponent[m[1]], err = strconv.Atoi(port); err != nil {
			return nil, fmt.Errorf("serving line for %s: %v", m[1], err)
		}
	}
	ports := make([]int, len(portComponents))
	for i, c := range portComponents {
		if ports[i] = byComponent[c]; ports[i] == 0 {
			return nil, fmt.Errorf("no port logged for %s yet", c)
		}
	}
	return ports, nil
}

// lockedBuffer collects a process's output while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
