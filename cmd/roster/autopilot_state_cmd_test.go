package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"roster/internal/testkit"
)

// The pretty layout is Consul's formatter's, line for line: summary,
// voters in the given order, servers by ID, meta sorted by key, and a
// missing LastContact printed as "0s".
func TestFormatAutopilotState_ConsulLayout(t *testing.T) {
	st := autopilotState{Healthy: true, FailureTolerance: 1, OptimisticFailureTolerance: 1, Leader: "b-id",
		Voters: []string{"b-id", "a-id"},
		Servers: map[string]autopilotServer{
			"b-id": {ID: "b-id", Name: "two", Address: "10.0.0.2:8300", NodeStatus: "alive", Version: "1.2.3",
				LastContact: "0s", LastTerm: 4, LastIndex: 90, Healthy: true, Status: "leader", NodeType: "voter",
				Meta: map[string]string{"zone": "b", "consul-network-segment": ""}},
			"a-id": {ID: "a-id", Name: "one", Address: "10.0.0.1:8300", NodeStatus: "alive", Version: "1.2.3",
				LastTerm: 4, LastIndex: 88, Status: "voter", NodeType: "voter"},
		}}
	want := `Healthy:                      true
Failure Tolerance:            1
Optimistic Failure Tolerance: 1
Leader:                       b-id
Voters:
   b-id
   a-id
Servers:
   a-id
      Name:            one
      Address:         10.0.0.1:8300
      Version:         1.2.3
      Status:          voter
      Node Type:       voter
      Node Status:     alive
      Healthy:         false
      Last Contact:    0s
      Last Term:       4
      Last Index:      88
   b-id
      Name:            two
      Address:         10.0.0.2:8300
      Version:         1.2.3
      Status:          leader
      Node Type:       voter
      Node Status:     alive
      Healthy:         true
      Last Contact:    0s
      Last Term:       4
      Last Index:      90
      Meta
         "consul-network-segment": ""
         "zone": "b"
`
	if got := formatAutopilotState(st); got != want {
		t.Fatalf("got:\n%s\nwant:\n%s", got, want)
	}
}

// operator autopilot state against a dev agent: the one server is the
// healthy leader; -format=json is the JSON of Consul's api.AutopilotState;
// an unknown format is refused.
func TestCLI_AutopilotStateShowsTheLeader(t *testing.T) {
	addr := strings.TrimPrefix(startDevAgent(t).base, "http://")
	var out string
	testkit.WaitFor(t, 10*time.Second, "a healthy autopilot state", func() error {
		code, stdout, stderr := runRoster(t, "operator", "autopilot", "state", "-http-addr", addr)
		if code != 0 || !strings.Contains(stdout, "Healthy:                      true\n") {
			return fmt.Errorf("exit %d: %s%s", code, stdout, stderr)
		}
		out = stdout
		return nil
	})
	for _, want := range []string{"Failure Tolerance:            0\n", "      Name:            " + devNode + "\n",
		"      Status:          leader\n", "      Node Status:     alive\n", "      Last Contact:    0s\n"} {
		if !strings.Contains(out, want) {
			t.Fatalf("state lacks %q:\n%s", want, out)
		}
	}
	code, stdout, stderr := runRoster(t, "operator", "autopilot", "state", "-http-addr", addr, "-stale", "-format", "json")
	var st autopilotState
	if err := json.Unmarshal([]byte(stdout), &st); code != 0 || err != nil || len(st.Voters) != 1 || st.Leader != st.Voters[0] ||
		st.Servers[st.Leader].Name != devNode {
		t.Fatalf("-format json: exit %d, %v: %s%s", code, err, stdout, stderr)
	}
	if code, _, stderr := runRoster(t, "operator", "autopilot", "state", "-http-addr", addr, "-format", "yaml"); code != 1 ||
		!strings.Contains(stderr, "Unknown format: yaml") {
		t.Fatalf("-format yaml: exit %d, %q", code, stderr)
	}
}
