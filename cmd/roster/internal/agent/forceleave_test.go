package agent

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"roster/catalog"
	"roster/httpapi"
	"roster/internal/testkit"
	"roster/swim"
)

// force-leave -prune on the leader: the crashed server is forgotten by
// the leader's pool at once, and the leader, which then only sees it
// reaped, still deregisters it and removes it from Raft (by the catalog
// node's ID, the server's Raft ID).
func TestForceLeave_PruneOnTheLeaderRemovesACrashedServer(t *testing.T) {
	tc := newTestCluster(t, 3)
	l := tc.startSettled()
	down := (l + 1) % 3
	name := tc.cfgs[down].NodeName
	tc.kill(down)
	tc.waitSerfHealth(name, catalog.HealthCritical, 15*time.Second)
	leader := tc.agents[l]
	if err := (membership{leader}).ForceLeave(name, true, false); err != nil {
		t.Fatal(err)
	}
	for _, m := range leader.lanNode().Members() {
		if m.Name == name {
			t.Fatalf("the leader still lists %s after -prune: %+v", name, m)
		}
	}
	testkit.WaitFor(t, 10*time.Second, name+" out of raft and the catalog", func() error {
		if n := raftServerCount(leader); n != 2 {
			return fmt.Errorf("%d servers in raft", n)
		}
		if ns, _ := leader.srv.store.NodeServices(name); ns != nil {
			return fmt.Errorf("%s still in the catalog", name)
		}
		return nil
	})
}

// The catalog node is writable by anyone through /v1/catalog/register: a
// node that claims a live server's ID, reaped from the leader's point of
// view, is deregistered but must not get that server removed from Raft,
// whether its address differs or it copies the server's address while the
// server is still in the pool.
func TestReconcile_ReapedNodeWithALiveServersIDKeepsTheServer(t *testing.T) {
	tc := newTestCluster(t, 3)
	for i := range tc.cfgs {
		tc.cfgs[i].ReconcileInterval = time.Hour // only the name-driven pass acts
	}
	l := tc.startSettled()
	live := (l + 1) % 3
	leader := tc.agents[l]
	id := tc.agents[live].nodeID()
	for _, c := range []struct{ name, addr string }{{"crafted-other-addr", "127.0.0.2"}, {"crafted-same-addr", "127.0.0.1"}} {
		reg := catalog.RegisterRequest{
			Node: catalog.Node{ID: id, Node: c.name, Address: c.addr, Datacenter: tc.cfgs[l].Datacenter},
			Service: &catalog.NodeService{
				ID: consulServiceName, Service: consulServiceName, Port: tc.cfgs[live].Ports.Server,
			},
			Checks: []catalog.HealthCheck{{Node: c.name, CheckID: serfCheckID, Name: serfCheckName, Status: catalog.HealthPassing}},
		}
		if err := leader.applyCatalog(&reg); err != nil {
			t.Fatal(err)
		}
		leader.lanWatch.notify(c.name)
		testkit.WaitFor(t, 10*time.Second, c.name+" deregistered", func() error {
			if ns, _ := leader.srv.store.NodeServices(c.name); ns != nil {
				return fmt.Errorf("%s still in the catalog", c.name)
			}
			return nil
		})
		if n := raftServerCount(leader); n != 3 {
			t.Fatalf("%s: %d servers in raft, want 3", c.name, n)
		}
	}
}

// httpDo sends method path to agent a's HTTP API (agentHTTP) and returns
// the status and body.
func httpDo(t *testing.T, a *Agent, method, path string) (int, string) {
	t.Helper()
	code, body := agentHTTP{t: t, base: "http://" + a.HTTPAddrs()[0]}.do(method, path, nil)
	return code, string(body)
}

// membersOverHTTP is GET /v1/agent/members[?wan=1] on a, by name.
func membersOverHTTP(t *testing.T, a *Agent, wan bool) map[string]httpapi.Member {
	t.Helper()
	path := "/v1/agent/members"
	if wan {
		path += "?wan=1"
	}
	code, body := httpDo(t, a, "GET", path)
	if code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, code, body)
	}
	var list []httpapi.Member
	if err := json.Unmarshal([]byte(body), &list); err != nil {
		t.Fatalf("GET %s: %v in %s", path, err, body)
	}
	out := map[string]httpapi.Member{}
	for _, m := range list {
		out[m.Name] = m
	}
	return out
}

// PUT /v1/agent/force-leave/<node>?prune, as `consul force-leave -prune`
// sends it, on a crashed client: the agent that serves it lists the node
// no more at once, every server forgets it as the pruning intent spreads,
// and the leader deregisters it.
func TestForceLeave_PruneOverHTTPForgetsACrashedClient(t *testing.T) {
	tc := newTestCluster(t, 3)
	tc.startSettled()
	c := tc.add(tc.clientConfig("c1"))
	tc.waitSerfHealth("c1", catalog.HealthPassing, 15*time.Second)
	tc.kill(c)
	tc.waitSerfHealth("c1", catalog.HealthCritical, 15*time.Second)
	s := tc.agents[0]
	if code, body := httpDo(t, s, "PUT", "/v1/agent/force-leave/c1?prune"); code != http.StatusOK {
		t.Fatalf("force-leave ?prune: %d %s", code, body)
	}
	if m, ok := membersOverHTTP(t, s, false)["c1"]; ok {
		t.Fatalf("c1 still listed by the agent that pruned it: %+v", m)
	}
	testkit.WaitFor(t, 15*time.Second, "c1 forgotten and deregistered everywhere", func() error {
		for _, a := range tc.servers() {
			if m, ok := membersOverHTTP(t, a, false)["c1"]; ok {
				return fmt.Errorf("%s still lists c1 (status %d)", a.cfg.NodeName, m.Status)
			}
			if ns, _ := a.srv.store.NodeServices("c1"); ns != nil {
				return fmt.Errorf("%s's catalog still has c1", a.cfg.NodeName)
			}
		}
		return nil
	})
	code, body := httpDo(t, s, "PUT", "/v1/agent/force-leave/c1?prune")
	if code != http.StatusInternalServerError || !strings.Contains(body, "No node found with name 'c1'") {
		t.Fatalf("force-leave of the pruned c1 again: %d %q, want 500 No node found", code, body)
	}
}

// On a server, force-leave without -wan acts on the WAN pool too, where
// the server is NODE.DC, and with -wan on the WAN pool only (Consul's
// removeFailedNode).
func TestForceLeave_OnAServerActsOnTheWANPoolToo(t *testing.T) {
	tc := newTestCluster(t, 3)
	for i := 1; i < 3; i++ {
		tc.cfgs[i].StartJoinWAN = []string{wanOf(0)}
	}
	l := tc.startSettled()
	down := (l + 1) % 3
	name := tc.cfgs[down].NodeName
	wanName := name + "." + tc.cfgs[down].Datacenter
	leader := tc.agents[l]
	testkit.WaitFor(t, 10*time.Second, "3 servers in the WAN pool", func() error {
		if n := len(membersOverHTTP(t, leader, true)); n != 3 {
			return fmt.Errorf("%d WAN members", n)
		}
		return nil
	})
	tc.kill(down)
	testkit.WaitFor(t, 15*time.Second, name+" failed in both pools", func() error {
		lan, wan := membersOverHTTP(t, leader, false)[name], membersOverHTTP(t, leader, true)[wanName]
		if lan.Status != swim.SerfStatusFailed || wan.Status != swim.SerfStatusFailed {
			return fmt.Errorf("LAN status %d, WAN status %d", lan.Status, wan.Status)
		}
		return nil
	})
	if code, body := httpDo(t, leader, "PUT", "/v1/agent/force-leave/"+name); code != http.StatusOK {
		t.Fatalf("force-leave: %d %s", code, body)
	}
	lan, wan := membersOverHTTP(t, leader, false)[name], membersOverHTTP(t, leader, true)[wanName]
	if lan.Status != swim.SerfStatusLeft || wan.Status != swim.SerfStatusLeft {
		t.Fatalf("after force-leave: LAN status %d, WAN status %d, want left (3) in both", lan.Status, wan.Status)
	}
	if code, body := httpDo(t, leader, "PUT", "/v1/agent/force-leave/"+wanName+"?wan&prune"); code != http.StatusOK {
		t.Fatalf("force-leave -wan -prune: %d %s", code, body)
	}
	if _, ok := membersOverHTTP(t, leader, true)[wanName]; ok {
		t.Fatalf("%s still in the WAN pool after -wan -prune", wanName)
	}
	if m := membersOverHTTP(t, leader, false)[name]; m.Status != swim.SerfStatusLeft {
		t.Fatalf("-wan touched the LAN pool: %s has status %d there", name, m.Status)
	}
}
