package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"
)

// autopilotState is /v1/operator/autopilot/state's body with the field
// order of Consul's api.AutopilotState, so -format=json prints what
// Consul's CLI prints. roster has no read replicas, redundancy zones or
// upgrades (Consul's community edition has none either): those fields
// are never present.
type autopilotState struct {
	Healthy                    bool
	FailureTolerance           int
	OptimisticFailureTolerance int
	Servers                    map[string]autopilotServer
	Leader                     string
	Voters                     []string
}

// autopilotServer is Consul's api.AutopilotServer without the enterprise
// fields (RedundancyZone, UpgradeVersion), which its JSON omits when empty.
type autopilotServer struct {
	ID          string
	Name        string
	Address     string
	NodeStatus  string
	Version     string
	LastContact string
	LastTerm    uint64
	LastIndex   uint64
	Healthy     bool
	StableSince time.Time
	ReadReplica bool
	Status      string
	Meta        map[string]string
	NodeType    string
}

// runAutopilotState prints autopilot's view of the servers, as Consul's
// `operator autopilot state`: pretty (Consul's layout, line for line) or
// -format=json. With -stale the receiving server answers.
func runAutopilotState(args []string, stdout, stderr io.Writer) int {
	fs, client := newCmdFlags("operator autopilot state", "Prints autopilot's view of the servers: health, failure tolerance, leader, voters.", stderr)
	format := fs.String("format", "pretty", "Output format {pretty|json}")
	if err := fs.Parse(args); err != nil {
		return exitUsage(err)
	}
	if *format != "pretty" && *format != "json" {
		fmt.Fprintf(stderr, "Unknown format: %s\n", *format)
		return 1
	}
	var st autopilotState
	if err := client().do("GET", "/v1/operator/autopilot/state", nil, &st); err != nil {
		return fail(stderr, "querying Autopilot state: %s", err)
	}
	if *format == "json" {
		out, _ := json.MarshalIndent(st, "", "    ") // plain fields: cannot fail
		fmt.Fprintln(stdout, string(out))
		return 0
	}
	fmt.Fprint(stdout, formatAutopilotState(st))
	return 0
}

// formatAutopilotState is Consul's pretty formatter for the fields roster
// has: the summary, the voters in the server's order, then each server
// by ID with its meta sorted by key.
func formatAutopilotState(st autopilotState) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Healthy:                      %t\n", st.Healthy)
	fmt.Fprintf(&b, "Failure Tolerance:            %d\n", st.FailureTolerance)
	fmt.Fprintf(&b, "Optimistic Failure Tolerance: %d\n", st.OptimisticFailureTolerance)
	fmt.Fprintf(&b, "Leader:                       %s\n", st.Leader)
	b.WriteString("Voters:\n")
	for _, id := range st.Voters {
		fmt.Fprintf(&b, "   %s\n", id)
	}
	b.WriteString("Servers:\n")
	for _, id := range slices.Sorted(maps.Keys(st.Servers)) {
		s := st.Servers[id]
		lastContact := s.LastContact
		if d, err := time.ParseDuration(lastContact); err == nil || lastContact == "" {
			lastContact = d.String()
		}
		fmt.Fprintf(&b, "   %s\n", s.ID)
		fmt.Fprintf(&b, "      Name:            %s\n", s.Name)
		fmt.Fprintf(&b, "      Address:         %s\n", s.Address)
		fmt.Fprintf(&b, "      Version:         %s\n", s.Version)
		fmt.Fprintf(&b, "      Status:          %s\n", s.Status)
		fmt.Fprintf(&b, "      Node Type:       %s\n", s.NodeType)
		fmt.Fprintf(&b, "      Node Status:     %s\n", s.NodeStatus)
		fmt.Fprintf(&b, "      Healthy:         %t\n", s.Healthy)
		fmt.Fprintf(&b, "      Last Contact:    %s\n", lastContact)
		fmt.Fprintf(&b, "      Last Term:       %d\n", s.LastTerm)
		fmt.Fprintf(&b, "      Last Index:      %d\n", s.LastIndex)
		if s.ReadReplica {
			fmt.Fprintf(&b, "      Read Replica:    %t\n", s.ReadReplica)
		}
		if len(s.Meta) > 0 {
			b.WriteString("      Meta\n")
			for _, k := range slices.Sorted(maps.Keys(s.Meta)) {
				fmt.Fprintf(&b, "         %q: %q\n", k, s.Meta[k])
			}
		}
	}
	return b.String()
}
