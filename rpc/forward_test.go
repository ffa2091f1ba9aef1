package rpc

import (
	"context"
	"errors"
	"fmt"
	"net/rpc"
	"slices"
	"strings"
	"testing"
	"time"

	"roster/internal/testkit"
)

func TestRouteFor_Table(t *testing.T) {
	q := func(o QueryOptions) Info { return &GetRequest{QueryOptions: o} }
	w := func(dc string) Info { return &PutRequest{WriteRequest: WriteRequest{Datacenter: dc}} }
	cases := []struct {
		name        string
		info        Info
		leader      bool
		lastContact time.Duration
		want        route
	}{
		{"write on follower goes to leader", w(""), false, 0, routeLeader},
		{"write on leader is local", w("dc1"), true, 0, routeLocal},
		{"write for other dc", w("dc2"), true, 0, routeDatacenter},
		{"default read on follower goes to leader", q(QueryOptions{}), false, 0, routeLeader},
		{"consistent read on follower goes to leader", q(QueryOptions{RequireConsistent: true}), false, 0, routeLeader},
		{"consistent read on leader is local", q(QueryOptions{RequireConsistent: true}), true, 0, routeLocal},
		{"stale read on follower is local", q(QueryOptions{AllowStale: true}), false, time.Hour, routeLocal},
		{"stale read within max_stale is local", q(QueryOptions{AllowStale: true, MaxStaleDuration: time.Second}), false, time.Millisecond, routeLocal},
		{"stale read beyond max_stale goes to leader", q(QueryOptions{AllowStale: true, MaxStaleDuration: time.Second}), false, 2 * time.Second, routeLeader},
		{"stale read for other dc", q(QueryOptions{AllowStale: true, Datacenter: "dc9"}), false, 0, routeDatacenter},
	}
	for _, c := range cases {
		if got := routeFor("dc1", c.info, c.leader, c.lastContact); got != c.want {
			t.Errorf("%s: route %d, want %d", c.name, got, c.want)
		}
	}
}

func TestBackoffDelay_BoundedAndJittered(t *testing.T) {
	rnd := testkit.Rand(t)
	for attempt := range 40 {
		d := backoffDelay(attempt, 10*time.Millisecond, 400*time.Millisecond, rnd)
		ceiling := min(10*time.Millisecond<<min(attempt, 20), 400*time.Millisecond)
		if d < ceiling/2 || d > ceiling {
			t.Fatalf("attempt %d: delay %v outside [%v, %v]", attempt, d, ceiling/2, ceiling)
		}
	}
}

func TestForward_FollowerWriteReachesLeader(t *testing.T) {
	tc := startCluster(t, 3, clusterOpts{})
	client := newClient(t, PoolConfig{})
	var reply PutResponse
	err := client.Call(ctxTimeout(t, 5*time.Second), tc.w.addrs[2], "KV.Put", &PutRequest{Key: "a", Value: "1"}, &reply)
	if err != nil {
		t.Fatal(err)
	}
	if reply.Index != 1 || tc.w.kv.count() != 1 {
		t.Fatalf("reply %+v, applies %d; want index 1 and one apply", reply, tc.w.kv.count())
	}
}

// The leader commits the write, then crashes before replying; leadership
// moves to node 1. The forwarding follower retries with the same
// RequestID on the new leader, whose FSM recognises it: applied once.
func TestForward_LeaderChangeMidCallAppliesWriteOnce(t *testing.T) {
	tc := startCluster(t, 3, clusterOpts{})
	crashed := false
	tc.kvs[0].onApply = func(node int) {
		if crashed {
			return
		}
		crashed = true
		tc.w.setLeader(1)
		go tc.servers[0].Shutdown(context.Background())
		// Wait until the connections are closed so the reply cannot escape.
		testkit.WaitFor(t, 5*time.Second, "leader 0 to close its connections", func() error {
			if !tc.servers[0].isClosed() {
				return errors.New("still open")
			}
			return nil
		})
	}
	events := tc.w.events.Subscribe(64)
	client := newClient(t, PoolConfig{})
	var reply PutResponse
	err := client.Call(ctxTimeout(t, 10*time.Second), tc.w.addrs[2], "KV.Put", &PutRequest{Key: "k", Value: "v"}, &reply)
	if err != nil {
		t.Fatalf("write failed across the leader change: %v", err)
	}
	events.Close()
	var kinds []string
	for e := range events.C {
		kinds = append(kinds, e.Kind.String())
	}
	if !slices.Contains(kinds, "conn-evicted") || !slices.Contains(kinds, "forward-retry") {
		t.Fatalf("events %v, want the broken connection evicted and the write retried", kinds)
	}
	if n := tc.w.kv.count(); n != 1 {
		t.Fatalf("the write was applied %d times, want exactly once", n)
	}
	if st := tc.w.fsm.Stats(); st.Duplicates != 1 {
		t.Fatalf("dedup stats %+v, want one duplicate suppressed", st)
	}
	if reply.Index != 1 || reply.Result != "applied k at 1" {
		t.Fatalf("reply %+v, want the first application's outcome (index 1)", reply)
	}
	if st := tc.pools[2].Stats(); st.TransportErrs == 0 {
		t.Fatalf("pool stats %+v: expected the forwarding call to have failed once", st)
	}
}

func TestForward_WaitsForElectionWithinHoldTimeout(t *testing.T) {
	tc := startCluster(t, 3, clusterOpts{holdTimeout: 5 * time.Second})
	tc.w.setLeader(-1)
	done := make(chan error, 1)
	go func() {
		var reply PutResponse
		done <- newClient(t, PoolConfig{}).Call(ctxTimeout(t, 10*time.Second), tc.w.addrs[0], "KV.Put", &PutRequest{Key: "a", Value: "1"}, &reply)
	}()
	// Elect node 2 once the request is known to be waiting (it retried).
	testkit.WaitFor(t, 5*time.Second, "the write to be retrying for a leader", func() error {
		if n := tc.nodes[0].leaderQueries.Load(); n < 3 {
			return fmt.Errorf("node 0 asked for the leader %d times", n)
		}
		return nil
	})
	if tc.w.kv.count() != 0 {
		t.Fatal("applied without a leader")
	}
	tc.w.setLeader(2)
	if err := <-done; err != nil {
		t.Fatalf("write after election: %v", err)
	}
	if tc.w.kv.count() != 1 {
		t.Fatalf("applies = %d, want 1", tc.w.kv.count())
	}
}

func TestForward_NoLeaderAfterHoldTimeoutIsConsulError(t *testing.T) {
	tc := startCluster(t, 2, clusterOpts{holdTimeout: 200 * time.Millisecond})
	tc.w.setLeader(-1)
	start := time.Now()
	var reply PutResponse
	err := newClient(t, PoolConfig{}).Call(ctxTimeout(t, 10*time.Second), tc.w.addrs[1], "KV.Put", &PutRequest{Key: "a"}, &reply)
	if err == nil || err.Error() != "No cluster leader" || !IsNoLeader(err) {
		t.Fatalf("err = %v, want exactly %q", err, "No cluster leader")
	}
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Fatalf("gave up after %v; the hold timeout is 200ms", elapsed)
	}
}

type staticRouter map[string][]string

func (r staticRouter) Servers(dc string) []string { return r[dc] }

func TestForward_OtherDatacenter(t *testing.T) {
	remote := startCluster(t, 2, clusterOpts{dc: "dc2"})
	local := startCluster(t, 1, clusterOpts{router: staticRouter{"dc2": remote.w.addrs}})
	client := newClient(t, PoolConfig{})
	var reply PutResponse
	req := &PutRequest{WriteRequest: WriteRequest{Datacenter: "dc2"}, Key: "x", Value: "y"}
	if err := client.Call(ctxTimeout(t, 5*time.Second), local.w.addrs[0], "KV.Put", req, &reply); err != nil {
		t.Fatal(err)
	}
	if remote.w.kv.count() != 1 || local.w.kv.count() != 0 {
		t.Fatalf("applies remote=%d local=%d, want 1/0", remote.w.kv.count(), local.w.kv.count())
	}
	req = &PutRequest{WriteRequest: WriteRequest{Datacenter: "dc3"}}
	err := client.Call(ctxTimeout(t, 5*time.Second), local.w.addrs[0], "KV.Put", req, &reply)
	if err == nil || err.Error() != "No path to datacenter" || !IsNoPathToDatacenter(err) {
		t.Fatalf("err = %v, want exactly %q", err, "No path to datacenter")
	}
}

func TestForward_ReadModes(t *testing.T) {
	tc := startCluster(t, 3, clusterOpts{})
	client := newClient(t, PoolConfig{})
	get := func(o QueryOptions) GetResponse {
		t.Helper()
		var reply GetResponse
		if err := client.Call(ctxTimeout(t, 5*time.Second), tc.w.addrs[2], "KV.Get", &GetRequest{QueryOptions: o}, &reply); err != nil {
			t.Fatal(err)
		}
		return reply
	}
	if r := get(QueryOptions{AllowStale: true}); r.Server != 2 || r.Consistency != ConsistencyStale || r.LastContact == 0 || !r.KnownLeader {
		t.Fatalf("stale read %+v: want served by node 2 with its last contact", r)
	}
	if r := get(QueryOptions{}); r.Server != 0 || r.Consistency != ConsistencyLeader || r.LastContact != 0 || r.Index != 1 {
		t.Fatalf("default read %+v: want served by the leader, index rewritten 0->1", r)
	}
	if r := get(QueryOptions{RequireConsistent: true}); r.Server != 0 || tc.nodes[0].consistentReads.Load() != 1 {
		t.Fatalf("consistent read %+v, leader ReadIndex rounds %d; want 1", r, tc.nodes[0].consistentReads.Load())
	}
	var reply GetResponse
	err := client.Call(ctxTimeout(t, 5*time.Second), tc.w.addrs[2], "KV.Get",
		&GetRequest{QueryOptions: QueryOptions{AllowStale: true, RequireConsistent: true}}, &reply)
	if err == nil {
		t.Fatal("stale+consistent accepted; Consul refuses it")
	}
}

func TestForward_EndpointErrorReturnedVerbatim(t *testing.T) {
	tc := startCluster(t, 2, clusterOpts{})
	var reply PutResponse
	err := newClient(t, PoolConfig{}).Call(ctxTimeout(t, 5*time.Second), tc.w.addrs[1], "KV.Fail", &PutRequest{}, &reply)
	var se rpc.ServerError
	if !errors.As(err, &se) || string(se) != "Missing key name" {
		t.Fatalf("err = %#v, want rpc.ServerError(%q)", err, "Missing key name")
	}
}

func TestStatus_LeaderPeersPing(t *testing.T) {
	tc := startCluster(t, 3, clusterOpts{})
	client := newClient(t, PoolConfig{})
	ctx := ctxTimeout(t, 5*time.Second)
	if err := client.Call(ctx, tc.w.addrs[1], "Status.Ping", struct{}{}, &struct{}{}); err != nil {
		t.Fatal(err)
	}
	var leader string
	if err := client.Call(ctx, tc.w.addrs[1], "Status.Leader", &DCSpecificRequest{}, &leader); err != nil || leader != tc.w.addrs[0] {
		t.Fatalf("Status.Leader = %q, %v; want %q", leader, err, tc.w.addrs[0])
	}
	tc.w.setLeader(-1)
	if err := client.Call(ctx, tc.w.addrs[1], "Status.Leader", &DCSpecificRequest{}, &leader); err != nil || leader != "" {
		t.Fatalf("Status.Leader during an election = %q, %v; want \"\" and no error", leader, err)
	}
	var peers []string
	if err := client.Call(ctx, tc.w.addrs[2], "Status.Peers", &DCSpecificRequest{}, &peers); err != nil || len(peers) != 3 {
		t.Fatalf("Status.Peers = %v, %v; want the 3 servers", peers, err)
	}
}

func TestForwardConfig_ValidateNamesField(t *testing.T) {
	for _, c := range []struct {
		cfg  ForwardConfig
		want string
	}{
		{ForwardConfig{}, "Datacenter"},
		{ForwardConfig{Datacenter: "dc1"}, "Cluster"},
		{ForwardConfig{Datacenter: "dc1", Cluster: &fakeNode{}}, "Caller"},
		{ForwardConfig{Datacenter: "dc1", Cluster: &fakeNode{}, Caller: &Pool{}, HoldTimeout: -1}, "HoldTimeout"},
	} {
		if err := c.cfg.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Validate(%+v) = %v, want it to name %s", c.cfg, err, c.want)
		}
	}
}

// One server of the other datacenter is down: the forwarder retries on
// another one within the hold time.
func TestForward_OtherDatacenterSkipsDeadServer(t *testing.T) {
	remote := startCluster(t, 1, clusterOpts{dc: "dc2"})
	dead, _ := silentServer(t, true)
	deadThenLive := staticRouter{"dc2": {dead, remote.w.addrs[0]}}
	local := startCluster(t, 1, clusterOpts{router: deadThenLive, holdTimeout: 5 * time.Second})
	// Calls to the dead server must fail fast for the retry to matter.
	local.kvs[0].fwd.cfg.CallTimeout = 100 * time.Millisecond
	client := newClient(t, PoolConfig{})
	for i := range 5 {
		var reply PutResponse
		req := &PutRequest{WriteRequest: WriteRequest{Datacenter: "dc2"}, Key: fmt.Sprint(i), Value: "v"}
		if err := client.Call(ctxTimeout(t, 10*time.Second), local.w.addrs[0], "KV.Put", req, &reply); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
	}
	if remote.w.kv.count() != 5 {
		t.Fatalf("remote applies %d, want 5", remote.w.kv.count())
	}
}

// During an election two servers may each believe the other is leader.
// The hop bound turns the bounce into "No cluster leader" within the hold
// time instead of a chain of calls that lasts until the call deadline.
func TestForward_StaleLeaderViewsDoNotBounceForever(t *testing.T) {
	tc := startCluster(t, 2, clusterOpts{holdTimeout: 300 * time.Millisecond})
	tc.nodes[0].believes.Store(&tc.w.addrs[1])
	tc.nodes[1].believes.Store(&tc.w.addrs[0])
	start := time.Now()
	var reply PutResponse
	err := newClient(t, PoolConfig{}).Call(ctxTimeout(t, 30*time.Second), tc.w.addrs[0], "KV.Put", &PutRequest{Key: "a"}, &reply)
	if !IsNoLeader(err) {
		t.Fatalf("err = %v, want No cluster leader", err)
	}
	if elapsed := time.Since(start); elapsed > 10*time.Second {
		t.Fatalf("took %v with a 300ms hold time", elapsed)
	}
	if tc.w.kv.count() != 0 {
		t.Fatal("applied without a leader")
	}
	// Once the views agree, the same kind of write goes through.
	tc.nodes[0].believes.Store(nil)
	tc.nodes[1].believes.Store(nil)
	if err := newClient(t, PoolConfig{}).Call(ctxTimeout(t, 10*time.Second), tc.w.addrs[1], "KV.Put", &PutRequest{Key: "a"}, &reply); err != nil {
		t.Fatal(err)
	}
}

// A caller that retries a write whose reply was lost must send the same
// RequestID again, so the ID is stamped in the caller's args by the pool,
// before the first attempt, not only on the server's decoded copy.
func TestPool_StampsRequestIDSoCallerRetriesAreDeduplicated(t *testing.T) {
	tc := startCluster(t, 1, clusterOpts{})
	client := newClient(t, PoolConfig{})
	req := &PutRequest{Key: "k", Value: "v"}
	var first, retry PutResponse
	if err := client.Call(ctxTimeout(t, 5*time.Second), tc.w.addrs[0], "KV.Put", req, &first); err != nil {
		t.Fatal(err)
	}
	if req.RequestID == "" {
		t.Fatal("the caller's write request has no RequestID after Call")
	}
	// The caller saw a TransportError (say) and retries the same args.
	if err := client.Call(ctxTimeout(t, 5*time.Second), tc.w.addrs[0], "KV.Put", req, &retry); err != nil {
		t.Fatal(err)
	}
	if n := tc.w.kv.count(); n != 1 || retry.Index != first.Index {
		t.Fatalf("applied %d times (indexes %d, %d), want once at the first index", n, first.Index, retry.Index)
	}
}

// An oversized caller-supplied RequestID is refused before it reaches the
// log, where every replica would skip it as malformed.
func TestForward_RejectsOversizedRequestID(t *testing.T) {
	tc := startCluster(t, 2, clusterOpts{})
	client := newClient(t, PoolConfig{})
	req := &PutRequest{WriteRequest: WriteRequest{RequestID: strings.Repeat("x", maxRequestIDBytes+1)}, Key: "k", Value: "v"}
	for _, addr := range tc.w.addrs { // leader and follower
		err := client.Call(ctxTimeout(t, 5*time.Second), addr, "KV.Put", req, &PutResponse{})
		if err == nil || !strings.Contains(err.Error(), "RequestID") {
			t.Fatalf("put via %s: %v, want the RequestID refused", addr, err)
		}
	}
	if st := tc.w.fsm.Stats(); st.Malformed != 0 || tc.w.kv.count() != 0 {
		t.Fatalf("dedup stats %+v, applies %d: the write reached the log", st, tc.w.kv.count())
	}
}
