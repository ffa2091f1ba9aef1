package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"roster/catalog"
	"roster/httpapi"
	"roster/internal/testkit"
	"roster/raft"
	"roster/rpc"
	"roster/swim"
)

// The whole-cluster harness: real agents in-process, each with its own
// loopback ports, data dir, Raft on bbolt and gossip on UDP/TCP. Gossip
// and reconcile timers are shortened (through Config) so failures are
// detected in well under a second; Raft keeps its shipped timing.

type testCluster struct {
	t    testing.TB
	logs *testkit.LockedBuffer
	// cfgs are the agents' configurations. Their ports are 0 until an
	// agent first starts; start then picks them and records the ports it
	// bound, so a restart binds the same ones, as a restarted server must
	// keep its address (Raft knows it by it).
	cfgs   []Config
	agents []*Agent // nil while stopped

	// bookMu guards book, which node each bound LAN gossip and RPC
	// address belongs to; start adds to it, and withFaults' address
	// lookups read it from the agents' goroutines.
	bookMu sync.Mutex
	book   map[string]string
}

// fastGossip makes failure detection take a few hundred milliseconds.
func fastGossip(c *swim.Config, wan bool) {
	c.ProbeInterval = 200 * time.Millisecond
	c.ProbeTimeout = 100 * time.Millisecond
	c.LateAckGrace = 50 * time.Millisecond
	c.GossipInterval = 50 * time.Millisecond
}

// newTestCluster configures n servers with -bootstrap-expect n; servers
// after the first retry-join the first one's LAN address.
func newTestCluster(t testing.TB, n int) *testCluster {
	t.Helper()
	tc := &testCluster{t: t, logs: &testkit.LockedBuffer{}, book: map[string]string{}}
	t.Cleanup(func() {
		tc.stopAll()
		if t.Failed() {
			t.Logf("agent logs:\n%s", tc.logs.String())
		}
	})
	for i := range n {
		tc.cfgs = append(tc.cfgs, tc.serverConfig(i, n))
	}
	return tc
}

// lanOf and wanOf stand for member i's LAN or WAN gossip address in a
// join list (RetryJoin, StartJoin, StartJoinWAN). An agent's ports are
// picked as it first starts, so the address exists only once member i
// has started: start puts it in place when it starts the agent that joins.
func lanOf(i int) string { return "lan-of-" + strconv.Itoa(i) }
func wanOf(i int) string { return "wan-of-" + strconv.Itoa(i) }

// lanAddr and wanAddr are member i's gossip addresses; i must have
// started (its ports are bound).
func (tc *testCluster) lanAddr(i int) string { return tc.boundAddr(i, "LAN", tc.cfgs[i].Ports.SerfLAN) }
func (tc *testCluster) wanAddr(i int) string { return tc.boundAddr(i, "WAN", tc.cfgs[i].Ports.SerfWAN) }

func (tc *testCluster) boundAddr(i int, what string, port int) string {
	tc.t.Helper()
	if port <= 0 {
		tc.t.Fatalf("%s has no %s address yet: start it before an agent that joins it", tc.cfgs[i].NodeName, what)
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
}

// resolveJoins returns addrs with each lanOf or wanOf replaced by the
// member's address.
func (tc *testCluster) resolveJoins(addrs []string) []string {
	tc.t.Helper()
	var out []string
	for _, addr := range addrs {
		if s, ok := strings.CutPrefix(addr, "lan-of-"); ok {
			i, _ := strconv.Atoi(s)
			addr = tc.lanAddr(i)
		} else if s, ok := strings.CutPrefix(addr, "wan-of-"); ok {
			i, _ := strconv.Atoi(s)
			addr = tc.wanAddr(i)
		}
		out = append(out, addr)
	}
	return out
}

// nodeAt names the member whose LAN gossip or RPC address addr is, or
// "" for an address no started member has bound.
func (tc *testCluster) nodeAt(addr string) string {
	tc.bookMu.Lock()
	defer tc.bookMu.Unlock()
	return tc.book[addr]
}

func (tc *testCluster) serverConfig(i, expect int) Config {
	cfg := DefaultConfig()
	cfg.NodeName = fmt.Sprintf("s%d", i+1)
	cfg.Server, cfg.BootstrapExpect = true, expect
	cfg.DataDir = tc.t.TempDir()
	cfg.BindAddr = "127.0.0.1"
	cfg.Ports = Ports{DNS: -1} // the others chosen when it first starts
	cfg.Version, cfg.Revision = "0.0.0-test", "abc123"
	cfg.RetryJoinInterval = 100 * time.Millisecond
	cfg.ReconcileInterval = time.Second
	cfg.ServerStabilizationTime = 300 * time.Millisecond
	cfg.GossipTuning = fastGossip
	cfg.Logger = slog.New(slog.NewTextHandler(tc.logs, &slog.HandlerOptions{Level: slog.LevelDebug})).With("agent", cfg.NodeName)
	if i > 0 {
		cfg.RetryJoin = []string{lanOf(0)}
	}
	return cfg
}

func (tc *testCluster) startAll() {
	tc.t.Helper()
	tc.agents = make([]*Agent, len(tc.cfgs))
	for i := range tc.cfgs {
		tc.start(i)
	}
}

// startSettled starts every agent and waits for a leader and for every
// node's serfHealth to pass on every server; it returns the leader.
func (tc *testCluster) startSettled() int {
	tc.t.Helper()
	tc.startAll()
	l := tc.leader(10 * time.Second)
	for _, cfg := range tc.cfgs {
		tc.waitSerfHealth(cfg.NodeName, catalog.HealthPassing, 10*time.Second)
	}
	return l
}

// start starts agent i, on the ports it had before if it ran already.
//
// A restart binds them again right after the test shut the old agent
// down. Its TCP connections' TIME_WAIT does not block that, as Go's
// listeners set SO_REUSEADDR, and UDP keeps no such state; but a port of
// the kernel's ephemeral range, free for that moment, may be taken by any
// outgoing connection on the machine as its source port. So an agent's
// first start takes its ports from testkit.FreePorts, below that range,
// rather than port 0: a member may be restarted by the test, and which
// one is not known up front. Each start binds before the next one picks,
// so the members' ports stay distinct.
func (tc *testCluster) start(i int) {
	tc.t.Helper()
	tc.pickPorts(&tc.cfgs[i].Ports)
	cfg := tc.cfgs[i]
	cfg.RetryJoin, cfg.StartJoin, cfg.StartJoinWAN = tc.resolveJoins(cfg.RetryJoin), tc.resolveJoins(cfg.StartJoin), tc.resolveJoins(cfg.StartJoinWAN)
	a, err := New(cfg)
	if err != nil {
		tc.t.Fatal(err)
	}
	if err := a.Start(context.Background()); err != nil {
		tc.t.Fatalf("starting %s: %v", tc.cfgs[i].NodeName, err)
	}
	p := a.Ports()
	tc.cfgs[i].Ports = p
	tc.bookMu.Lock()
	for _, port := range []int{p.SerfLAN, p.Server} {
		tc.book[net.JoinHostPort("127.0.0.1", strconv.Itoa(port))] = cfg.NodeName
	}
	tc.bookMu.Unlock()
	tc.agents[i] = a
}

// pickPorts gives each port of p still at 0 (the kernel's pick) a free
// port below the ephemeral range (see start).
func (tc *testCluster) pickPorts(p *Ports) {
	free := testkit.FreePorts(tc.t, 4)
	for k, port := range []*int{&p.HTTP, &p.Server, &p.SerfLAN, &p.SerfWAN} {
		if *port == 0 {
			*port = free[k]
		}
	}
}

// kill stops agent i without leaving, as a crash would look to the others.
func (tc *testCluster) kill(i int) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := tc.agents[i].Shutdown(ctx); err != nil {
		tc.t.Errorf("shutdown %s: %v", tc.cfgs[i].NodeName, err)
	}
	tc.agents[i] = nil
}

func (tc *testCluster) stopAll() {
	for i, a := range tc.agents {
		if a != nil {
			tc.kill(i)
		}
	}
}

func (tc *testCluster) running() []*Agent {
	var out []*Agent
	for _, a := range tc.agents {
		if a != nil {
			out = append(out, a)
		}
	}
	return out
}

// leader waits until exactly one running agent leads and every running
// agent names its address as leader, and returns its index.
func (tc *testCluster) leader(timeout time.Duration) int {
	tc.t.Helper()
	idx := -1
	testkit.WaitFor(tc.t, timeout, "one leader known to every server", func() error {
		idx = -1
		for i, a := range tc.agents {
			if a != nil && a.isLeader() {
				if idx >= 0 {
					return fmt.Errorf("%s and %s both lead", tc.cfgs[idx].NodeName, tc.cfgs[i].NodeName)
				}
				idx = i
			}
		}
		if idx < 0 {
			return errors.New("no leader yet")
		}
		want := tc.agents[idx].rpcAddr()
		for i, a := range tc.agents {
			if a == nil {
				continue
			}
			if got, _ := a.srv.raft.Leader(); got != want {
				return fmt.Errorf("%s believes the leader is %q, want %q", tc.cfgs[i].NodeName, got, want)
			}
		}
		return nil
	})
	return idx
}

// waitSerfHealth waits until every running server's catalog has node
// with serfHealth in status.
func (tc *testCluster) waitSerfHealth(node, status string, timeout time.Duration) {
	tc.t.Helper()
	testkit.WaitFor(tc.t, timeout, node+" serfHealth "+status+" on every server", func() error {
		for _, a := range tc.servers() {
			checks, _ := a.srv.store.NodeChecks(node)
			got := "missing"
			for _, c := range checks {
				if c.CheckID == serfCheckID {
					got = c.Status
				}
			}
			if got != status {
				return fmt.Errorf("%s sees %s serfHealth %s", a.cfg.NodeName, node, got)
			}
		}
		return nil
	})
}

// waitConverged waits until every running server applied the same index
// and has the same catalog hashcode.
func (tc *testCluster) waitConverged(timeout time.Duration) {
	tc.t.Helper()
	testkit.WaitFor(tc.t, timeout, "catalogs converge", func() error {
		var idx uint64
		var hash string
		for i, a := range tc.running() {
			gotIdx, gotHash := a.srv.store.LastIndex(), a.srv.store.Hash()
			if i == 0 {
				idx, hash = gotIdx, gotHash
				continue
			}
			if gotIdx != idx || gotHash != hash {
				return fmt.Errorf("%s at index %d hash %.8s, first server at %d %.8s", a.cfg.NodeName, gotIdx, gotHash, idx, hash)
			}
		}
		return nil
	})
}

func TestCluster_BootstrapExpectElectsOneLeaderAndRegistersEveryServer(t *testing.T) {
	tc := newTestCluster(t, 3)
	l := tc.startSettled()
	conf, _ := tc.agents[l].srv.raft.Configuration()
	if len(conf.Servers) != 3 {
		t.Fatalf("raft configuration %v, want the three servers", conf.Servers)
	}
	for _, s := range conf.Servers {
		if s.Suffrage != raft.Voter {
			t.Fatalf("server %s is %v after bootstrap-expect, want a voter", s.ID, s.Suffrage)
		}
	}
	for _, a := range tc.agents {
		nodes, _ := a.srv.store.ServiceNodes(consulServiceName, nil)
		if len(nodes) != 3 {
			t.Fatalf("%s lists %d instances of the consul service, want 3", a.cfg.NodeName, len(nodes))
		}
	}
	tc.waitConverged(5 * time.Second)
}

func TestCluster_LeaderKilledNewLeaderElectedAndRestartedServerCatchesUp(t *testing.T) {
	tc := newTestCluster(t, 3)
	old := tc.startSettled()
	killedAt := time.Now()
	tc.kill(old)
	next := tc.leader(10 * time.Second)
	t.Logf("new leader %s after %v", tc.cfgs[next].NodeName, time.Since(killedAt).Round(time.Millisecond))
	for i, a := range tc.agents {
		if a != nil {
			if err := putKV(a, fmt.Sprintf("after-crash/%d", i), "x"); err != nil {
				t.Fatalf("write through %s after the crash: %v", a.cfg.NodeName, err)
			}
		}
	}
	// The new leader records the crash: the old leader's node turns critical.
	tc.waitSerfHealth(tc.cfgs[old].NodeName, catalog.HealthCritical, 10*time.Second)

	// The restarted server keeps its identity and Raft log, rejoins and
	// catches up on everything it missed.
	tc.cfgs[old].RetryJoin = []string{lanOf(next)}
	tc.start(old)
	tc.waitSerfHealth(tc.cfgs[old].NodeName, catalog.HealthPassing, 10*time.Second)
	tc.leader(10 * time.Second)
	tc.waitConverged(10 * time.Second)
	for i := range tc.agents {
		if i == old {
			continue
		}
		if got, err := getKV(tc.agents[old], fmt.Sprintf("after-crash/%d", i), "stale"); err != nil || got != "x" {
			t.Fatalf("restarted server's own copy of after-crash/%d = %q, %v", i, got, err)
		}
	}
}

// clientConfig configures a client agent that joins server 0.
func (tc *testCluster) clientConfig(name string) Config {
	cfg := tc.serverConfig(len(tc.cfgs), 0)
	cfg.NodeName = name
	cfg.Server, cfg.BootstrapExpect = false, 0
	cfg.Logger = slog.New(slog.NewTextHandler(tc.logs, &slog.HandlerOptions{Level: slog.LevelDebug})).With("agent", name)
	cfg.RetryJoin = []string{lanOf(0)}
	return cfg
}

func (tc *testCluster) add(cfg Config) int {
	tc.cfgs = append(tc.cfgs, cfg)
	tc.agents = append(tc.agents, nil)
	tc.start(len(tc.cfgs) - 1)
	return len(tc.cfgs) - 1
}

// servers returns the running server agents.
func (tc *testCluster) servers() []*Agent {
	var out []*Agent
	for _, a := range tc.running() {
		if a.srv != nil {
			out = append(out, a)
		}
	}
	return out
}

func TestCluster_ClientFindsServersByGossipAndRotatesWhenOneDies(t *testing.T) {
	tc := newTestCluster(t, 3)
	tc.startAll()
	l := tc.leader(10 * time.Second)
	c := tc.add(tc.clientConfig("c1"))
	client := tc.agents[c]
	tc.waitSerfHealth("c1", catalog.HealthPassing, 10*time.Second)
	// Every server's pool must know the client before one dies: a leader
	// elected on a server that never heard of c1 would rightly treat its
	// catalog entry as reaped.
	testkit.WaitFor(t, 10*time.Second, "every server's LAN pool to list c1", func() error {
		for _, a := range tc.servers() {
			if n := len(a.Members(false)); n != 4 {
				return fmt.Errorf("%s lists %d members", a.cfg.NodeName, n)
			}
		}
		return nil
	})
	want := tc.agents[l].rpcAddr()
	testkit.WaitFor(t, 10*time.Second, "the client to learn the leader over RPC", func() error {
		var leader string
		if err := client.RPC(context.Background(), "Status.Leader", &rpc.DCSpecificRequest{}, &leader); err != nil {
			return err
		}
		if leader != want {
			return fmt.Errorf("client says leader %q, want %q", leader, want)
		}
		return nil
	})
	// Kill the server the client uses; its next calls move on.
	used := client.router.Servers("dc1")[client.clientServer.Load()%3]
	for i, a := range tc.agents {
		if a != nil && a.srv != nil && a.rpcAddr() == used {
			tc.kill(i)
		}
	}
	testkit.WaitFor(t, 10*time.Second, "the client to reach another server", func() error {
		var peers []string
		return client.RPC(context.Background(), "Status.Peers", &rpc.DCSpecificRequest{}, &peers)
	})
	if got := len(client.Members(false)); got != 4 {
		t.Fatalf("client lists %d LAN members, want 4", got)
	}
	// A crashed client turns critical in the catalog.
	tc.kill(c)
	tc.waitSerfHealth("c1", catalog.HealthCritical, 10*time.Second)
}

func TestCluster_LeaderLeavesGracefullyHandsOverAndIsRemoved(t *testing.T) {
	tc := newTestCluster(t, 3)
	old := tc.startSettled()
	oldID := tc.agents[old].nodeID()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := tc.agents[old].Leave(ctx); err != nil {
		t.Fatalf("leave: %v", err)
	}
	tc.agents[old] = nil
	tc.leader(10 * time.Second)
	testkit.WaitFor(t, 10*time.Second, "the server that left to leave the raft configuration and the catalog", func() error {
		for _, a := range tc.running() {
			conf, _ := a.srv.raft.Configuration()
			for _, s := range conf.Servers {
				if s.ID == oldID {
					return fmt.Errorf("%s still has %s in %v", a.cfg.NodeName, oldID, conf.Servers)
				}
			}
			if ns, _ := a.srv.store.NodeServices(tc.cfgs[old].NodeName); ns != nil {
				return fmt.Errorf("%s still lists node %s", a.cfg.NodeName, tc.cfgs[old].NodeName)
			}
		}
		return nil
	})
}

func TestCluster_NewServerJoinsAsNonvoterAndIsPromoted(t *testing.T) {
	tc := newTestCluster(t, 3)
	tc.startAll()
	tc.leader(10 * time.Second)
	cfg := tc.serverConfig(3, 3)
	cfg.NodeName = "s4"
	cfg.Logger = slog.New(slog.NewTextHandler(tc.logs, &slog.HandlerOptions{Level: slog.LevelDebug})).With("agent", "s4")
	i := tc.add(cfg)
	id := tc.agents[i].nodeID()
	testkit.WaitFor(t, 10*time.Second, "s4 to become a voter", func() error {
		l := -1
		for j, a := range tc.agents {
			if a.isLeader() {
				l = j
			}
		}
		if l < 0 {
			return errors.New("no leader")
		}
		conf, _ := tc.agents[l].srv.raft.Configuration()
		for _, s := range conf.Servers {
			if s.ID == id && s.Suffrage == raft.Voter {
				return nil
			}
		}
		return fmt.Errorf("configuration %v", conf.Servers)
	})
	if strings.Contains(tc.logs.String(), "bootstrapping raft") && strings.Count(tc.logs.String(), "found the expected servers") > 3 {
		t.Fatalf("a server bootstrapped a second time:\n%s", tc.logs)
	}
	if !strings.Contains(tc.logs.String(), "adding server to raft as a nonvoter") {
		t.Fatal("s4 was not added as a nonvoter first")
	}
	tc.waitSerfHealth("s4", catalog.HealthPassing, 10*time.Second)
	tc.waitConverged(10 * time.Second)
}

func TestCluster_LeaderInvalidatesSessionWhoseTTLRanOut(t *testing.T) {
	tc := newTestCluster(t, 3)
	tc.startAll()
	l := tc.leader(10 * time.Second)
	leader := tc.agents[l]
	tc.waitSerfHealth(tc.cfgs[l].NodeName, catalog.HealthPassing, 10*time.Second)
	id := newUUID()
	create := &catalog.SessionRequest{Verb: catalog.SessionCreate, Session: catalog.SessionEntry{
		ID: id, Node: tc.cfgs[l].NodeName, TTL: "10s", NodeChecks: []string{serfCheckID}}}
	if err := leader.applyCatalog(create); err != nil {
		t.Fatal(err)
	}
	for _, a := range tc.agents {
		// Followers keep no clocks: this must not expire anything.
		if a != leader {
			leaderSessionTimers{a}.Reset(id, time.Millisecond)
		}
	}
	if s, _ := leader.srv.store.Session(id); s == nil {
		t.Fatal("a follower's timer expired the session")
	}
	// Shorten the leader's clock (the real minimum TTL is 10s, doubled).
	leaderSessionTimers{leader}.Reset(id, 5*time.Millisecond)
	testkit.WaitFor(t, 10*time.Second, "the expired session to be gone everywhere", func() error {
		for _, a := range tc.agents {
			if s, _ := a.srv.store.Session(id); s != nil {
				return fmt.Errorf("%s still has session %s", a.cfg.NodeName, id)
			}
		}
		return nil
	})
}

func TestCluster_RequestForAnotherDatacenterTravelsTheWANPool(t *testing.T) {
	tc := newTestCluster(t, 2)
	for i := range tc.cfgs {
		tc.cfgs[i].BootstrapExpect, tc.cfgs[i].Bootstrap, tc.cfgs[i].RetryJoin = 0, true, nil
	}
	tc.cfgs[1].Datacenter = "dc2"
	tc.cfgs[1].StartJoinWAN = []string{wanOf(0)}
	tc.startAll()
	dc1, dc2 := tc.agents[0], tc.agents[1]
	if got := len(dc1.Members(false)); got != 1 {
		t.Fatalf("dc1's LAN pool has %d members; datacenters must not share a LAN pool", got)
	}
	testkit.WaitFor(t, 10*time.Second, "dc1 to reach dc2's leader through the WAN pool", func() error {
		var leader string
		if err := dc1.RPC(context.Background(), "Status.Leader", &rpc.DCSpecificRequest{QueryOptions: rpc.QueryOptions{Datacenter: "dc2"}}, &leader); err != nil {
			return err
		}
		if leader != dc2.rpcAddr() {
			return fmt.Errorf("dc2's leader according to dc1: %q, want %q", leader, dc2.rpcAddr())
		}
		return nil
	})
	var leader string
	err := dc1.RPC(context.Background(), "Status.Leader", &rpc.DCSpecificRequest{QueryOptions: rpc.QueryOptions{Datacenter: "dc9"}}, &leader)
	if !rpc.IsNoPathToDatacenter(err) {
		t.Fatalf("unknown datacenter: %v, want No path to datacenter", err)
	}
	if got := dc1.Self().Stats["consul"]["known_datacenters"]; got != "2" {
		t.Fatalf("known_datacenters = %s", got)
	}
}

func TestCluster_EncryptedGossipJoinsOnlyWithTheSameKey(t *testing.T) {
	const key = "pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s="
	tc := newTestCluster(t, 3)
	for i := range tc.cfgs {
		tc.cfgs[i].BootstrapExpect, tc.cfgs[i].RetryJoin = 0, nil
		tc.cfgs[i].Encrypt = key
	}
	tc.cfgs[0].Bootstrap = true
	tc.cfgs[2].Encrypt = "Xx8tCH9vHdbXhcJ3fKBVYLsUSq3xd86ROoXrCfFi1aE="
	tc.startAll()
	lan := tc.lanAddr(0)
	if _, err := tc.agents[1].Join([]string{lan}, false); err != nil {
		t.Fatalf("join with the same key: %v", err)
	}
	if _, err := tc.agents[2].Join([]string{lan}, false); err == nil {
		t.Fatal("join with another key succeeded")
	}
	if got := tc.agents[0].Self().Stats["serf_lan"]["encrypted"]; got != "true" {
		t.Fatalf("serf_lan encrypted = %s", got)
	}
	testkit.WaitFor(t, 10*time.Second, "two members on the first server", func() error {
		if n := len(tc.agents[0].Members(false)); n != 2 {
			return fmt.Errorf("%d members", n)
		}
		return nil
	})
}

// putKV writes key=value through agent a's RPC path (forwarded to the
// leader when a is a follower or a client).
func putKV(a *Agent, key, value string) error {
	var ok bool
	args := &rpc.KVSRequest{Op: catalog.KVRequest{Verb: catalog.KVSet, Key: key, Value: []byte(value)}}
	if err := a.RPC(context.Background(), "KVS.Apply", args, &ok); err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("KVS.Apply %s through %s answered false", key, a.cfg.NodeName)
	}
	return nil
}

// getKV reads key through a with the given consistency ("", "stale",
// "consistent").
func getKV(a *Agent, key, mode string) (string, error) {
	args := &rpc.KeyRequest{Key: key}
	args.AllowStale, args.RequireConsistent = mode == "stale", mode == "consistent"
	var reply rpc.IndexedDirEntries
	if err := a.RPC(context.Background(), "KVS.Get", args, &reply); err != nil {
		return "", err
	}
	if len(reply.Entries) == 0 {
		return "", fmt.Errorf("%s: %s not found (%s read)", a.cfg.NodeName, key, mode)
	}
	return string(reply.Entries[0].Value), nil
}

func TestCluster_WritesThroughAnyServerAreReadConsistentlyEverywhere(t *testing.T) {
	tc := newTestCluster(t, 3)
	tc.startAll()
	tc.leader(10 * time.Second)
	for i, a := range tc.agents {
		if err := putKV(a, fmt.Sprintf("k/%d", i), fmt.Sprintf("v%d", i)); err != nil {
			t.Fatalf("write through %s: %v", a.cfg.NodeName, err)
		}
	}
	for _, a := range tc.agents {
		for i := range tc.agents {
			for _, mode := range []string{"", "consistent"} {
				got, err := getKV(a, fmt.Sprintf("k/%d", i), mode)
				if err != nil || got != fmt.Sprintf("v%d", i) {
					t.Fatalf("%s read of k/%d through %s = %q, %v", mode, i, a.cfg.NodeName, got, err)
				}
			}
		}
	}
	// Stale reads are served locally; each server catches up quickly.
	testkit.WaitFor(t, 5*time.Second, "stale reads to see every write on every server", func() error {
		for _, a := range tc.agents {
			for i := range tc.agents {
				if got, err := getKV(a, fmt.Sprintf("k/%d", i), "stale"); err != nil || got != fmt.Sprintf("v%d", i) {
					return fmt.Errorf("stale k/%d on %s = %q, %v", i, a.cfg.NodeName, got, err)
				}
			}
		}
		return nil
	})
	// The same through the HTTP API of a follower and of another server.
	f := (tc.leader(time.Second) + 1) % 3
	req, _ := http.NewRequest("PUT", "http://"+tc.agents[f].HTTPAddrs()[0]+"/v1/kv/web", strings.NewReader("hello"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || strings.TrimSpace(string(body)) != "true" {
		t.Fatalf("PUT /v1/kv/web on a follower: %s %s", resp.Status, body)
	}
	resp, err = http.Get("http://" + tc.agents[(f+1)%3].HTTPAddrs()[0] + "/v1/kv/web?raw&consistent")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "hello" || resp.Header.Get("X-Consul-Index") == "" {
		t.Fatalf("GET /v1/kv/web?raw&consistent: %s %q headers %v", resp.Status, body, resp.Header)
	}
	tc.waitConverged(5 * time.Second)
}

func TestCluster_UserEventsReachEveryAgentMatchingTheNodeFilter(t *testing.T) {
	tc := newTestCluster(t, 3)
	tc.startAll()
	tc.leader(10 * time.Second)
	testkit.WaitFor(t, 10*time.Second, "every pool to know all three", func() error {
		for _, a := range tc.agents {
			if n := len(a.Members(false)); n != 3 {
				return fmt.Errorf("%s lists %d members", a.cfg.NodeName, n)
			}
		}
		return nil
	})
	fire := func(id, name, filter string) {
		if err := tc.agents[0].userEvents.Fire(httpapi.UserEvent{ID: id, Name: name, Payload: []byte("p"), NodeFilter: filter, Version: 1}); err != nil {
			t.Fatal(err)
		}
	}
	fire("11111111-1111-4111-8111-111111111111", "deploy", "")
	fire("22222222-2222-4222-8222-222222222222", "only-s2", "^s2$")
	testkit.WaitFor(t, 10*time.Second, "the events on every agent", func() error {
		for _, a := range tc.agents {
			events, _ := a.userEvents.Events()
			want := 1
			if a.cfg.NodeName == "s2" {
				want = 2
			}
			deploy := slices.IndexFunc(events, func(e httpapi.UserEvent) bool { return e.Name == "deploy" })
			if len(events) != want || deploy < 0 || string(events[deploy].Payload) != "p" {
				return fmt.Errorf("%s has %+v, want %d events", a.cfg.NodeName, events, want)
			}
		}
		return nil
	})
}

func TestCluster_MismatchedBootstrapExpectIsRefusedWithAClearLog(t *testing.T) {
	tc := newTestCluster(t, 2)
	tc.cfgs[1].BootstrapExpect = 3
	tc.startAll()
	testkit.WaitFor(t, 10*time.Second, "both servers to log the mismatch", func() error {
		logs := tc.logs.String()
		for _, want := range []string{"-bootstrap-expect mismatch: this server expects 2 but s2 expects 3; refusing",
			"-bootstrap-expect mismatch: this server expects 3 but s1 expects 2; refusing"} {
			if !strings.Contains(logs, want) {
				return fmt.Errorf("no log line %q", want)
			}
		}
		return nil
	})
	for _, a := range tc.agents {
		if a.srv.raft.HasExistingState() {
			t.Fatalf("%s bootstrapped despite the mismatch", a.cfg.NodeName)
		}
	}
}
