package main

import (
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
)

// The cluster commands: members, info, join, leave, operator raft. Their
// output follows Consul's CLI, column for column.

// newCmdFlags builds a command's FlagSet with -http-addr and usage text.
func newCmdFlags(name, synopsis string, stderr io.Writer) (*flag.FlagSet, func() *apiClient) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	client := httpAddrFlag(fs)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: roster %s [options]\n\n%s Options:\n", name, synopsis)
		fs.PrintDefaults()
	}
	return fs, client
}

// fail prints err as Consul's CLI does and returns exit code 1.
func fail(stderr io.Writer, format string, args ...any) int {
	fmt.Fprintf(stderr, "Error "+format+"\n", args...)
	return 1
}

// member is /v1/agent/members' element.
type member struct {
	Name   string
	Addr   string
	Port   uint16
	Tags   map[string]string
	Status int
}

var memberStatus = map[int]string{0: "none", 1: "alive", 2: "leaving", 3: "left", 4: "failed"}

func runMembers(args []string, stdout, stderr io.Writer) int {
	fs, client := newCmdFlags("members", "Lists the members of the gossip pool.", stderr)
	wan := fs.Bool("wan", false, "List the WAN pool of servers instead of the LAN pool.")
	detailed := fs.Bool("detailed", false, "Show every tag of each member.")
	status := fs.String("status", ".*", "Regular expression: list only members whose status matches (alive, left, failed, ...).")
	if err := fs.Parse(args); err != nil {
		return exitUsage(err)
	}
	statusRE, err := regexp.Compile(*status)
	if err != nil {
		return fail(stderr, "compiling status regexp: %v", err)
	}
	q := url.Values{}
	if *wan {
		q.Set("wan", "1")
	}
	var all []member
	if err := client().do("GET", "/v1/agent/members", q, &all); err != nil {
		return fail(stderr, "retrieving members: %v", err)
	}
	var ms []member
	for _, m := range all {
		if statusRE.MatchString(memberStatus[m.Status]) {
			ms = append(ms, m)
		}
	}
	if len(ms) == 0 {
		return 2 // nothing matched, as Consul signals it
	}
	// Servers first, then by name, as Consul's CLI lists them.
	sort.Slice(ms, func(i, j int) bool {
		si, sj := ms[i].Tags["role"] == "consul", ms[j].Tags["role"] == "consul"
		if si != sj {
			return si
		}
		return ms[i].Name < ms[j].Name
	})
	printMembers(stdout, ms, *detailed)
	return 0
}

func printMembers(stdout io.Writer, ms []member, detailed bool) {
	w := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	defer w.Flush()
	if detailed {
		fmt.Fprintln(w, "Node\tAddress\tStatus\tTags")
		for _, m := range ms {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", m.Name, memberAddr(m), memberStatus[m.Status], formatTags(m.Tags))
		}
		return
	}
	fmt.Fprintln(w, "Node\tAddress\tStatus\tType\tBuild\tProtocol\tDC\tPartition\tSegment")
	for _, m := range ms {
		typ, segment := "client", "<default>"
		if m.Tags["role"] == "consul" {
			typ, segment = "server", "<all>"
		}
		build, _, _ := strings.Cut(m.Tags["build"], ":")
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", m.Name, memberAddr(m), memberStatus[m.Status],
			typ, build, m.Tags["vsn"], m.Tags["dc"], "default", segment)
	}
}

func memberAddr(m member) string { return net.JoinHostPort(m.Addr, strconv.Itoa(int(m.Port))) }

func formatTags(tags map[string]string) string {
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + tags[k]
	}
	return strings.Join(parts, ",")
}

func runInfo(args []string, stdout, stderr io.Writer) int {
	fs, client := newCmdFlags("info", "Prints the agent's runtime statistics (raft, serf_lan, ...).", stderr)
	if err := fs.Parse(args); err != nil {
		return exitUsage(err)
	}
	var self struct{ Stats map[string]map[string]string }
	if err := client().do("GET", "/v1/agent/self", nil, &self); err != nil {
		return fail(stderr, "querying agent: %v", err)
	}
	for _, section := range sortedKeys(self.Stats) {
		fmt.Fprintf(stdout, "%s:\n", section)
		for _, k := range sortedKeys(self.Stats[section]) {
			fmt.Fprintf(stdout, "\t%s = %s\n", k, self.Stats[section][k])
		}
	}
	return 0
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func runJoin(args []string, stdout, stderr io.Writer) int {
	fs, client := newCmdFlags("join", "Joins the agent to a cluster: roster join [options] address ...", stderr)
	wan := fs.Bool("wan", false, "Join the WAN pool (servers only).")
	if err := fs.Parse(args); err != nil {
		return exitUsage(err)
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(stderr, "At least one address to join must be specified.")
		return 1
	}
	q := url.Values{}
	if *wan {
		q.Set("wan", "1")
	}
	c, joined := client(), 0
	for _, addr := range fs.Args() {
		if err := c.do("PUT", "/v1/agent/join/"+url.PathEscape(addr), q, nil); err != nil {
			fmt.Fprintf(stderr, "Error joining address '%s': %v\n", addr, err)
			continue
		}
		joined++
	}
	if joined == 0 {
		fmt.Fprintln(stderr, "Failed to join any nodes.")
		return 1
	}
	fmt.Fprintf(stdout, "Successfully joined cluster by contacting %d nodes.\n", joined)
	return 0
}

func runLeave(args []string, stdout, stderr io.Writer) int {
	fs, client := newCmdFlags("leave", "Makes the agent leave the cluster gracefully and shut down.", stderr)
	if err := fs.Parse(args); err != nil {
		return exitUsage(err)
	}
	if err := client().do("PUT", "/v1/agent/leave", nil, nil); err != nil {
		return fail(stderr, "leaving cluster: %v", err)
	}
	fmt.Fprintln(stdout, "Graceful leave complete")
	return 0
}

// runOperator dispatches `operator raft list-peers|remove-peer|transfer-leader`
// and `operator autopilot get-config|set-config|state` (autopilot_cmds.go,
// autopilot_state_cmd.go).
func runOperator(args []string, stdout, stderr io.Writer) int {
	usage := "Usage: roster operator raft <list-peers|remove-peer|transfer-leader> [options]\n       roster operator autopilot <get-config|set-config|state> [options]"
	type cmdFunc = func([]string, io.Writer, io.Writer) int
	group := func(name string, subs map[string]cmdFunc) cmdFunc {
		return func(args []string, stdout, stderr io.Writer) int {
			return runSubcommand("operator "+name, usage, subs, args, stdout, stderr)
		}
	}
	return runSubcommand("operator", usage, map[string]cmdFunc{
		"raft": group("raft", map[string]cmdFunc{
			"list-peers": runListPeers, "remove-peer": runRemovePeer, "transfer-leader": runTransferLeader,
		}),
		"autopilot": group("autopilot", map[string]cmdFunc{"get-config": runAutopilotGetConfig, "set-config": runAutopilotSetConfig,
			"state": runAutopilotState}),
	}, args, stdout, stderr)
}

// raftServer is /v1/operator/raft/configuration's element.
type raftServer struct {
	ID, Node, Address, ProtocolVersion string
	Leader, Voter                      bool
	LastIndex                          uint64
}

func runListPeers(args []string, stdout, stderr io.Writer) int {
	fs, client := newCmdFlags("operator raft list-peers", "Lists the servers of the Raft configuration.", stderr)
	if err := fs.Parse(args); err != nil {
		return exitUsage(err)
	}
	var conf struct {
		Servers []raftServer
		Index   uint64
	}
	if err := client().do("GET", "/v1/operator/raft/configuration", nil, &conf); err != nil {
		return fail(stderr, "getting peers: %v", err)
	}
	var leaderIndex uint64
	for _, s := range conf.Servers {
		if s.Leader {
			leaderIndex = s.LastIndex
		}
	}
	w := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	defer w.Flush()
	fmt.Fprintln(w, "Node\tID\tAddress\tState\tVoter\tRaftProtocol\tCommit Index\tTrails Leader By")
	for _, s := range conf.Servers {
		state, trails := "follower", fmt.Sprintf("%d commits", leaderIndex-min(leaderIndex, s.LastIndex))
		if s.Leader {
			state, trails = "leader", "-"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%t\t%s\t%d\t%s\n", s.Node, s.ID, s.Address, state, s.Voter, s.ProtocolVersion, s.LastIndex, trails)
	}
	return 0
}

func runRemovePeer(args []string, stdout, stderr io.Writer) int {
	fs, client := newCmdFlags("operator raft remove-peer", "Removes a server from the Raft configuration.", stderr)
	id := fs.String("id", "", "ID of the server to remove.")
	address := fs.String("address", "", "Address (ip:port) of the server to remove.")
	if err := fs.Parse(args); err != nil {
		return exitUsage(err)
	}
	if (*id == "") == (*address == "") {
		fmt.Fprintln(stderr, "Error removing peer: exactly one of -id and -address must be given")
		return 1
	}
	q, what, val := url.Values{}, "id", *id
	if *address != "" {
		what, val = "address", *address
	}
	q.Set(what, val)
	if err := client().do("DELETE", "/v1/operator/raft/peer", q, nil); err != nil {
		return fail(stderr, "removing peer: %v", err)
	}
	fmt.Fprintf(stdout, "Removed peer with %s %q\n", what, val)
	return 0
}

// runTransferLeader asks the leader to hand leadership to another voter
// (-id), or to the most up-to-date one.
func runTransferLeader(args []string, stdout, stderr io.Writer) int {
	fs, client := newCmdFlags("operator raft transfer-leader", "Transfers Raft leadership to another server.", stderr)
	id := fs.String("id", "", "ID of the server to transfer leadership to (default: the most up-to-date voter).")
	if err := fs.Parse(args); err != nil {
		return exitUsage(err)
	}
	q := url.Values{}
	if *id != "" {
		q.Set("id", *id)
	}
	var reply struct{ Success bool }
	if err := client().do("POST", "/v1/operator/raft/transfer-leader", q, &reply); err != nil {
		return fail(stderr, "transferring leadership: %v", err)
	}
	if !reply.Success {
		return fail(stderr, "transferring leadership: the leader did not step down")
	}
	fmt.Fprintln(stdout, "Success")
	return 0
}

// runForceLeave moves a failed member to "left" so the leader deregisters
// it (and, for a server, removes it from Raft); a live one is "leaving"
// until it refutes or is declared dead. -prune erases it from every
// member's list; -wan acts on the WAN pool alone.
func runForceLeave(args []string, stdout, stderr io.Writer) int {
	fs, client := newCmdFlags("force-leave", "Forces a failed member to leave: roster force-leave [options] NODE", stderr)
	prune := fs.Bool("prune", false, "Remove the member completely from the list of members (a live one once the intent has spread; it rejoins if it is alive).")
	wan := fs.Bool("wan", false, "Act on the WAN pool only (servers), where NODE is NODE.DC. Without it a server acts on both pools.")
	if err := fs.Parse(args); err != nil {
		return exitUsage(err)
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "A single node name must be specified to force leave.")
		return 1
	}
	q := url.Values{}
	if *prune {
		q.Set("prune", "1")
	}
	if *wan {
		q.Set("wan", "1")
	}
	if err := client().do("PUT", "/v1/agent/force-leave/"+url.PathEscape(fs.Arg(0)), q, nil); err != nil {
		return fail(stderr, "force leaving: %v", err)
	}
	return 0
}
