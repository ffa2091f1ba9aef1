package rpc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"roster/catalog"
	"roster/internal/faults"
	"roster/internal/testkit"
	"roster/raft"
)

// The endpoint harness: n real servers in one process. Each has a
// raft.Node (on raft's in-memory network, addressed by its RPC address so
// the leader's Raft address is where requests are forwarded), a DedupFSM
// over a catalog.Store, and an rpc.Server on 127.0.0.1 with every endpoint
// registered. Server-to-server RPC goes through a Caller that consults the
// same faults.Plan as the Raft network, so a partition cuts both.

type epServer struct {
	id      string
	addr    string
	node    *raft.Node
	store   *catalog.Store
	fsm     *DedupFSM
	srv     *Server
	view    *raftClusterView
	timers  *fakeTimers
	applies *countingApplier
	calls   *methodCounter // calls this server sent to others
	// autopilot tracks server health while this server leads
	// (followLeadership), as the agent's leader routine runs it.
	autopilot *AutopilotTracker
}

type epCluster struct {
	t       testing.TB
	net     *raft.MemNetwork
	servers []*epServer
	client  *Pool

	// mu guards trace: every server's raft events, dumped on failure.
	mu    sync.Mutex
	trace []string
}

// tracef appends a line to the event trace.
func (c *epCluster) tracef(format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.trace = append(c.trace, time.Now().Format("15:04:05.000 ")+fmt.Sprintf(format, args...))
}

// dumpOnFailure logs the event trace if the test failed.
func (c *epCluster) dumpOnFailure() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.t.Failed() {
		c.t.Logf("event trace:\n  %s", strings.Join(c.trace, "\n  "))
	}
}

// epPool returns a pool closed at the end of the test.
func epPool(tb testing.TB) *Pool {
	p, err := NewPool(PoolConfig{Logger: quietLogger()})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(p.Shutdown)
	return p
}

// raftClusterView is the Cluster of one test server (the agent has its own).
type raftClusterView struct{ node *raft.Node }

func (v *raftClusterView) IsLeader() bool { return v.node.State() == raft.Leader }
func (v *raftClusterView) LeaderAddr() string {
	addr, _ := v.node.Leader()
	return addr
}
func (v *raftClusterView) LastContact() time.Duration {
	if v.IsLeader() {
		return 0
	}
	t := v.node.LastContact()
	if t.IsZero() {
		return time.Duration(1<<63 - 1)
	}
	return time.Since(t)
}
func (v *raftClusterView) ConsistentRead(ctx context.Context) error {
	_, err := v.node.ReadIndex(2 * time.Second)
	if errors.Is(err, raft.ErrNotLeader) {
		return ErrNoLeader
	}
	return err
}
func (v *raftClusterView) Peers() ([]string, error) {
	conf, _ := v.node.Configuration()
	var out []string
	for _, s := range conf.Servers {
		out = append(out, s.Address)
	}
	return out, nil
}

// faultCaller refuses calls across links the plan cuts, as a real network
// would time out, so forwarding sees the partition too.
type faultCaller struct {
	from  string
	plan  *faults.Plan
	next  Caller
	calls *methodCounter // calls sent, by method
}

// methodCounter counts calls by method.
type methodCounter struct {
	mu sync.Mutex // guards n
	n  map[string]int
}

func (m *methodCounter) add(method string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.n[method]++
}

func (m *methodCounter) get(method string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.n[method]
}

// readIndexView is raftClusterView that also serves follower reads.
type readIndexView struct{ *raftClusterView }

func (v readIndexView) ReadIndex(ctx context.Context) (uint64, error) {
	idx, err := v.node.ReadIndex(2 * time.Second)
	if errors.Is(err, raft.ErrNotLeader) {
		return 0, ErrNoLeader
	}
	return idx, err
}

func (v readIndexView) WaitApplied(ctx context.Context, index uint64) error {
	return v.node.WaitApplied(ctx, index)
}

func (f *faultCaller) Call(ctx context.Context, addr, method string, args, reply any) error {
	if f.calls != nil {
		f.calls.add(method)
	}
	if !f.plan.Decide(f.from, addr).Deliver {
		return &TransportError{Addr: addr, Method: method, Err: errors.New("link cut by the test's fault plan")}
	}
	return f.next.Call(ctx, addr, method, args, reply)
}

// countingApplier counts proposals made through the endpoints.
type countingApplier struct {
	next RaftApplier
	mu   sync.Mutex // guards n
	n    int
}

func (c *countingApplier) Apply(cmd []byte, timeout time.Duration) (uint64, any, error) {
	c.mu.Lock()
	c.n++
	c.mu.Unlock()
	return c.next.Apply(cmd, timeout)
}

// ApplyAsync counts too, so batched proposals (KVS.ApplyBatch) are seen.
func (c *countingApplier) ApplyAsync(cmd []byte, timeout time.Duration) func() (uint64, any, error) {
	c.mu.Lock()
	c.n++
	c.mu.Unlock()
	return c.next.(AsyncApplier).ApplyAsync(cmd, timeout)
}

func (c *countingApplier) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// fakeTimers records the session clock calls.
type fakeTimers struct {
	mu     sync.Mutex // guards resets, clears
	resets map[string]int
	clears map[string]int
}

func (f *fakeTimers) Reset(id string, ttl time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.resets[id]++
}

func (f *fakeTimers) Clear(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.clears[id]++
}

func (f *fakeTimers) resetCount(id string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.resets[id]
}

type epOpts struct {
	holdTimeout time.Duration
	// socketRaft runs Raft over its net/rpc transport on each server's own
	// listener (protocol byte ProtoRaft), as the agent does, instead of the
	// in-memory network; the fault plan then cuts only forwarded RPCs.
	socketRaft bool
	// followerReads serves ?consistent reads on followers (the Cluster
	// implements ReadIndexCluster), as the agent does.
	followerReads bool
}

// startEPCluster starts n servers and waits for a leader.
func startEPCluster(t testing.TB, n int, o epOpts) *epCluster {
	t.Helper()
	if o.holdTimeout == 0 {
		o.holdTimeout = 2 * time.Second
	}
	seed := testkit.Seed(t)
	c := &epCluster{t: t, net: raft.NewMemNetwork(seed)}
	t.Cleanup(c.dumpOnFailure)
	lns := make([]net.Listener, n)
	var conf []raft.Server
	for i := range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns[i] = l
		conf = append(conf, raft.Server{ID: fmt.Sprintf("s%d", i), Address: l.Addr().String()})
	}
	for i := range n {
		c.servers = append(c.servers, c.startServer(conf[i], lns[i], seed+uint64(i), o))
	}
	for _, s := range c.servers {
		if err := s.node.BootstrapCluster(conf); err != nil {
			t.Fatal(err)
		}
	}
	c.client = epPool(t)
	c.waitLeader()
	return c
}

func (c *epCluster) startServer(me raft.Server, l net.Listener, seed uint64, o epOpts) *epServer {
	t := c.t
	s := &epServer{id: me.ID, addr: me.Address,
		timers: &fakeTimers{resets: map[string]int{}, clears: map[string]int{}}}
	var err error
	if s.store, err = catalog.New(catalog.Config{}); err != nil {
		t.Fatal(err)
	}
	s.fsm = NewDedupFSM(s.store, 0, 0)
	if s.srv, err = NewServer(Config{Logger: quietLogger()}); err != nil {
		t.Fatal(err)
	}
	mem := raft.NewMemStore()
	rcfg := raft.Config{ID: me.ID, Seed: seed, Logger: quietLogger()}
	if s.node, err = raft.NewNode(rcfg, s.fsm, mem, mem, c.raftTransport(s.srv, me.Address, o)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.node.Shutdown)
	obs := s.node.Subscribe(1024)
	go func() {
		for e := range obs.C {
			c.tracef("raft %s", e)
		}
	}()
	s.view = &raftClusterView{node: s.node}
	var cluster Cluster = s.view
	if o.followerReads {
		cluster = readIndexView{s.view}
	}
	pool := epPool(t)
	s.calls = &methodCounter{n: map[string]int{}}
	caller := &faultCaller{from: me.Address, plan: c.net.Plan, next: pool, calls: s.calls}
	fwd, err := NewForwarder(ForwardConfig{Datacenter: "dc1", Cluster: cluster, Caller: caller,
		HoldTimeout: o.holdTimeout, Seed: seed, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	blocker, err := NewBlocker(BlockingConfig{Cluster: cluster, Seed: seed})
	if err != nil {
		t.Fatal(err)
	}
	adapter := NewRaftAdapter(s.node, me.ID)
	s.applies = &countingApplier{next: adapter}
	s.autopilot = NewAutopilotTracker(epHealthInterval)
	ctx, cancel := context.WithCancel(context.Background())
	err = RegisterEndpoints(s.srv, EndpointDeps{Datacenter: "dc1", NodeName: me.ID, Store: s.store,
		Raft: s.applies, Operator: adapter, Cluster: cluster, Forwarder: fwd, Blocker: blocker,
		Caller: caller, Sessions: s.timers, Autopilot: s.autopilot, Logger: quietLogger(), Ctx: ctx})
	if err != nil {
		t.Fatal(err)
	}
	go s.srv.Serve(l)
	<-s.srv.Ready()
	following := make(chan struct{})
	go func() { defer close(following); s.followLeadership(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-following
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer scancel()
		s.srv.Shutdown(sctx)
	})
	return s
}

// epHealthInterval is the test servers' autopilot probe interval.
const epHealthInterval = 50 * time.Millisecond

// followLeadership runs the autopilot tracker while this server leads and
// stops it when it no longer does, until ctx ends (the agent does the
// same from its leader routine).
func (s *epServer) followLeadership(ctx context.Context) {
	var cancel context.CancelFunc
	var done chan struct{}
	stop := func() {
		if cancel != nil {
			cancel()
			<-done
			cancel = nil
		}
	}
	defer stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		switch leading := s.view.IsLeader(); {
		case leading && cancel == nil:
			lctx, lcancel := context.WithCancel(ctx)
			cancel, done = lcancel, make(chan struct{})
			go func() { defer close(done); s.autopilot.Lead(lctx) }()
		case !leading:
			stop()
		}
	}
}

// raftTransport is the in-memory network's endpoint for addr, or a socket
// transport sharing srv's listener.
func (c *epCluster) raftTransport(srv *Server, addr string, o epOpts) raft.Transport {
	if !o.socketRaft {
		return c.net.Transport(addr)
	}
	trans, err := raft.NewNetTransport(raft.NetTransportConfig{LocalAddr: addr, Logger: quietLogger(),
		Dial: func(ctx context.Context, to string) (net.Conn, error) {
			return DialProtocol(ctx, nil, to, ProtoRaft)
		}})
	if err != nil {
		c.t.Fatal(err)
	}
	if err := srv.Handle(ProtoRaft, trans.ServeConn); err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { trans.Close() })
	return trans
}

// waitLeader waits until exactly one server leads and all agree on it.
func (c *epCluster) waitLeader() *epServer {
	c.t.Helper()
	var leader *epServer
	testkit.WaitFor(c.t, 10*time.Second, "a leader known to every server", func() error {
		leader = nil
		for _, s := range c.servers {
			if s.view.IsLeader() {
				leader = s
			}
		}
		if leader == nil {
			return errors.New("no leader yet")
		}
		for _, s := range c.servers {
			if got := s.view.LeaderAddr(); got != leader.addr {
				return fmt.Errorf("%s thinks the leader is %q, not %s", s.id, got, leader.addr)
			}
		}
		return nil
	})
	return leader
}

// follower returns some server that is not the leader.
func (c *epCluster) follower() *epServer {
	for _, s := range c.servers {
		if !s.view.IsLeader() {
			return s
		}
	}
	c.t.Fatal("no follower")
	return nil
}

func (c *epCluster) call(s *epServer, method string, args, reply any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err := c.client.Call(ctx, s.addr, method, args, reply)
	c.tracef("call %s on %s: err=%v", method, s.id, err)
	return err
}

func (c *epCluster) mustCall(s *epServer, method string, args, reply any) {
	c.t.Helper()
	if err := c.call(s, method, args, reply); err != nil {
		c.t.Fatalf("%s on %s: %v", method, s.id, err)
	}
}

// waitApplied waits until every server's catalog reached index.
func (c *epCluster) waitApplied(index uint64) {
	c.t.Helper()
	testkit.WaitFor(c.t, 5*time.Second, fmt.Sprintf("every server at index %d", index), func() error {
		for _, s := range c.servers {
			if got := s.store.LastIndex(); got < index {
				return fmt.Errorf("%s at %d", s.id, got)
			}
		}
		return nil
	})
}

// register puts node (with address 10.0.0.x) and optionally a service.
func (c *epCluster) register(s *epServer, node string, svc *catalog.NodeService, checks ...catalog.HealthCheck) {
	c.t.Helper()
	args := RegisterRequest{Register: catalog.RegisterRequest{
		Node:    catalog.Node{Node: node, Address: "10.0.0.1", Meta: map[string]string{"rack": node[len(node)-1:]}},
		Service: svc, Checks: checks}}
	c.mustCall(s, "Catalog.Register", &args, &struct{}{})
}

func containsErr(err error, text string) bool {
	return err != nil && strings.Contains(err.Error(), text)
}
