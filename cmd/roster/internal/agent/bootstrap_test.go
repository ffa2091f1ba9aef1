package agent

import (
	"net/netip"
	"strings"
	"testing"

	"roster/catalog"
	"roster/raft"
	"roster/swim"
)

func servers(expects ...int) []serverInfo {
	var out []serverInfo
	for i, e := range expects {
		name := string(rune('c' - i)) // c, b, a: unsorted on purpose
		out = append(out, serverInfo{Name: "s-" + name, ID: "id-" + name, RPCAddr: "10.0.0." + name + ":8300", Expect: e, Datacenter: "dc1"})
	}
	return out
}

func TestExpectPlan_WaitsForTheExpectedCountThenBootstrapsAllAsVotersSortedByID(t *testing.T) {
	if _, ready, problem := expectPlan(servers(3, 3), 3); ready || problem != "" {
		t.Fatalf("two of three: ready=%v problem=%q, want wait", ready, problem)
	}
	conf, ready, problem := expectPlan(servers(3, 3, 3), 3)
	if !ready || problem != "" {
		t.Fatalf("three of three: ready=%v problem=%q", ready, problem)
	}
	want := []string{"id-a", "id-b", "id-c"}
	for i, s := range conf {
		if s.ID != want[i] || s.Suffrage != raft.Voter {
			t.Fatalf("configuration %v, want voters %v in ID order", conf, want)
		}
	}
}

func TestExpectPlan_MismatchedExpectationIsRefusedNamingTheServers(t *testing.T) {
	_, ready, problem := expectPlan(servers(3, 5, 3), 3)
	if ready || !strings.Contains(problem, "mismatch") || !strings.Contains(problem, "s-b expects 5") || !strings.Contains(problem, "refusing") {
		t.Fatalf("ready=%v problem=%q", ready, problem)
	}
	s := servers(3, 3, 3)
	s[1].Bootstrap = true
	if _, ready, problem := expectPlan(s, 3); ready || !strings.Contains(problem, "-bootstrap") {
		t.Fatalf("bootstrap-mode server: ready=%v problem=%q", ready, problem)
	}
	// A server that announces no expectation (a later server started without
	// -bootstrap-expect) does not block the others.
	if _, ready, problem := expectPlan(servers(3, 0, 3), 3); !ready || problem != "" {
		t.Fatalf("expect 0 peer: ready=%v problem=%q", ready, problem)
	}
}

func member(name string, state swim.State, tags map[string]string) swim.Member {
	return swim.Member{Name: name, Addr: netip.MustParseAddr("10.0.0.7"), Port: 8301, Tags: tags, State: state}
}

func TestParseServer_ReadsTagsAndRejectsClientsAndIncompleteTags(t *testing.T) {
	s, ok := parseServer(member("s1", swim.StateAlive, map[string]string{"role": "consul", "id": "x", "port": "8300", "dc": "dc1", "expect": "3"}))
	if !ok || s.RPCAddr != "10.0.0.7:8300" || s.Expect != 3 || s.Datacenter != "dc1" {
		t.Fatalf("parseServer = %+v, %v", s, ok)
	}
	for _, tags := range []map[string]string{
		{"role": "node", "id": "x", "port": "8300"},
		{"role": "consul", "id": "x", "port": "nope"},
		{"role": "consul", "port": "8300"},
	} {
		if _, ok := parseServer(member("m", swim.StateAlive, tags)); ok {
			t.Fatalf("tags %v accepted as a server", tags)
		}
	}
}

func TestRegistration_ServerGetsConsulServiceAndUpToDateSkipsRewrites(t *testing.T) {
	m := member("s1", swim.StateAlive, map[string]string{"role": "consul", "id": "id-1", "port": "8300", "dc": "dc1", "build": "1.2.3:abc", "raft_vsn": "3"})
	want := memberRegistration(m, "dc1", catalog.HealthPassing, nil)
	if want.Service == nil || want.Service.Service != "consul" || want.Service.Port != 8300 || want.Service.Meta["version"] != "1.2.3" {
		t.Fatalf("service %+v", want.Service)
	}
	if c := want.Checks[0]; c.CheckID != "serfHealth" || c.Output != "Agent alive and reachable" || c.Name != "Serf Health Status" {
		t.Fatalf("check %+v", c)
	}
	store, err := catalog.New(catalog.Config{})
	if err != nil {
		t.Fatal(err)
	}
	ns, _ := store.NodeServices("s1")
	if registrationUpToDate(want, ns, nil) {
		t.Fatal("an unknown node counted as up to date")
	}
	if r := store.ApplyCommand(1, &want); r.Err != nil {
		t.Fatal(r.Err)
	}
	ns, _ = store.NodeServices("s1")
	checks, _ := store.NodeChecks("s1")
	if !registrationUpToDate(want, ns, checks) {
		t.Fatal("registration not up to date right after applying it")
	}
	failed := memberRegistration(m, "dc1", catalog.HealthCritical, &ns.Node)
	if registrationUpToDate(failed, ns, checks) || failed.Checks[0].Output != "Agent not live or unreachable" {
		t.Fatal("a failed member's registration counted as up to date with the passing one")
	}
	client := memberRegistration(member("c1", swim.StateAlive, map[string]string{"role": "node", "id": "id-2", "dc": "dc1"}), "dc1", catalog.HealthPassing, nil)
	if client.Service != nil {
		t.Fatalf("client registered with service %+v", client.Service)
	}
}
