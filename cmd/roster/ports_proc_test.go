package main

import (
	"fmt"
	"net"
	"regexp"
	"strconv"
	"time"

	"roster/internal/testkit"
)

// Agents under test bind port 0 where they can: the kernel picks each
// port at the agent's own bind and the agent logs it on its "serving"
// line, where the test reads it back. A port picked free by the test and
// released before the agent binds it can be taken meanwhile by any other
// process ("address already in use"). The "serving" lines are logged at
// info level in text format: an agent run with -log-level warn or
// -log-json is given named ports instead.

// portFlags are the agent's port flags in the order tests index ports:
// http, dns, server, serf-lan, serf-wan. portComponents are the names
// the agent's "serving" lines give the same listeners.
var (
	portFlags      = []string{"-http-port", "-dns-port", "-server-port", "-serf-lan-port", "-serf-wan-port"}
	portComponents = []string{"http", "dns", "rpc", "serf_lan", "serf_wan"}
)

// servingLine matches the agent's log line for one bound listener, and
// pprofServingLine the one for its profiling listener (pprof_env.go).
var (
	servingLine      = regexp.MustCompile(`msg=serving .*component=(\S+) addr=(\S+)`)
	pprofServingLine = regexp.MustCompile(`msg="serving profiling endpoints" addr=(\S+)`)
)

// portArgs sets every port flag to p's ports, or to 0 if p is nil.
func portArgs(p []int) []string {
	var args []string
	for i, f := range portFlags {
		port := 0
		if p != nil {
			port = p[i]
		}
		args = append(args, f, strconv.Itoa(port))
	}
	return args
}

// agentPortsTimeout bounds the wait for a started agent to log its ports.
// It bounds a hang, not the speed: an agent logs them within a second.
const agentPortsTimeout = 30 * time.Second

// waitLoggedPorts waits until a server agent started with portArgs(nil)
// has logged all five ports. It returns an error at once if the agent
// exits first (done receives its exit; the value is put back for later
// readers).
func waitLoggedPorts(log *testkit.LockedBuffer, done chan error) ([]int, error) {
	deadline := time.NewTimer(agentPortsTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		ports, err := loggedPorts(log.String())
		if err == nil {
			return ports, nil
		}
		select {
		case exit := <-done:
			done <- exit
			return nil, fmt.Errorf("the agent exited (%v) before serving", exit)
		case <-deadline.C:
			return nil, fmt.Errorf("the agent did not log its ports within %v: %v", agentPortsTimeout, err)
		case <-tick.C:
		}
	}
}

// loggedPorts reads a server agent's ports from its log, in portFlags
// order, or says which one it has not logged yet.
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
