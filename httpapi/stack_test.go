package httpapi

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"roster/catalog"
	"roster/internal/testkit"
	"roster/raft"
	"roster/rpc"
)

// The real in-process stack the integration tests run against: one Raft
// voter over raft's in-memory transport, the catalog behind rpc's dedup
// FSM, the rpc endpoints on a loopback net/rpc server, and the HTTP API
// calling them through a connection pool, as a server agent does. Only
// gossip is missing.
//
// (This test file imports raft to build the stack; the package itself
// does not.)

type stack struct {
	store *catalog.Store
	node  *raft.Node
	addr  string
	base  string     // the HTTP API, with Local
	rpc   RPC        // through the pool to the server
	local LocalIndex // the server's store and raft view
	// autopilot tracks server health; the one server leads it for the
	// whole test, as the agent's leader routine does.
	autopilot *rpc.AutopilotTracker
}

// stackCluster is rpc.Cluster over the raft node, as the agent's view.
type stackCluster struct{ node *raft.Node }

func (c stackCluster) IsLeader() bool { return c.node.State() == raft.Leader }
func (c stackCluster) LeaderAddr() string {
	addr, _ := c.node.Leader()
	return addr
}
func (c stackCluster) LastContact() time.Duration {
	if c.IsLeader() {
		return 0
	}
	return time.Since(c.node.LastContact())
}
func (c stackCluster) ConsistentRead(ctx context.Context) error {
	_, err := c.node.ReadIndex(5 * time.Second)
	if errors.Is(err, raft.ErrNotLeader) {
		return rpc.ErrNoLeader
	}
	return err
}
func (c stackCluster) Peers() ([]string, error) {
	conf, _ := c.node.Configuration()
	var out []string
	for _, s := range conf.Servers {
		out = append(out, s.Address)
	}
	return out, nil
}

type oneServer string

func (s oneServer) Servers(dc string) []string {
	if dc == "dc1" {
		return []string{string(s)}
	}
	return nil
}

// stackLocal is the LocalIndex a server agent passes: its store and raft
// view.
type stackLocal struct {
	*catalog.Store
	stackCluster
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// startStack builds and starts the stack and an HTTP API on it; all is
// stopped when the test ends.
func startStack(t testing.TB) *stack { return startStackWith(t, catalog.Config{}) }

// startStackWith is startStack with a catalog configuration (a small delta
// ring, to force overflows).
func startStackWith(t testing.TB, ccfg catalog.Config) *stack {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	st := &stack{addr: ln.Addr().String()}
	if st.store, err = catalog.New(ccfg); err != nil {
		t.Fatal(err)
	}
	fsm := rpc.NewDedupFSM(st.store, 0, 0)
	mem := raft.NewMemStore()
	rcfg := raft.DefaultConfig("server-1")
	rcfg.Seed, rcfg.Logger = testkit.Seed(t), quiet()
	if st.node, err = raft.NewNode(rcfg, fsm, mem, mem, raft.NewMemNetwork(1).Transport(st.addr)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.node.Shutdown)
	if err := st.node.BootstrapCluster([]raft.Server{{ID: "server-1", Address: st.addr, Suffrage: raft.Voter}}); err != nil {
		t.Fatal(err)
	}
	cluster := stackCluster{node: st.node}
	pool, err := rpc.NewPool(rpc.PoolConfig{Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Shutdown)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	startRPCServer(t, ctx, st, cluster, pool, ln)
	st.rpc = RPCFunc(func(ctx context.Context, method string, args, reply any) error {
		return pool.Call(ctx, st.addr, method, args, reply)
	})
	st.local = stackLocal{Store: st.store, stackCluster: cluster}
	st.base = startServer(t, Config{Agent: testAgent(), RPC: st.rpc, Local: st.local, Logger: quiet()})
	testkit.WaitFor(t, 10*time.Second, "a raft leader", func() error {
		if !cluster.IsLeader() {
			return errors.New("not leader yet")
		}
		return nil
	})
	leading := make(chan struct{})
	go func() { defer close(leading); st.autopilot.Lead(ctx) }()
	t.Cleanup(func() { cancel(); <-leading })
	testkit.WaitFor(t, 10*time.Second, "a first autopilot round", func() error {
		if st.autopilot.Rounds() == 0 {
			return errors.New("no round yet")
		}
		return nil
	})
	return st
}

func startRPCServer(t testing.TB, ctx context.Context, st *stack, cluster stackCluster, pool *rpc.Pool, ln net.Listener) {
	t.Helper()
	fwd, err := rpc.NewForwarder(rpc.ForwardConfig{Datacenter: "dc1", Cluster: cluster, Router: oneServer(st.addr), Caller: pool, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	blocker, err := rpc.NewBlocker(rpc.BlockingConfig{Cluster: cluster})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := rpc.NewServer(rpc.Config{Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	adapter := rpc.NewRaftAdapter(st.node, "server-1")
	st.autopilot = rpc.NewAutopilotTracker(50 * time.Millisecond)
	err = rpc.RegisterEndpoints(srv, rpc.EndpointDeps{Datacenter: "dc1", NodeName: "n1", Store: st.store,
		Raft: adapter, Operator: adapter, Cluster: cluster, Forwarder: fwd, Blocker: blocker, Caller: pool,
		Autopilot: st.autopilot, Logger: quiet(), Ctx: ctx})
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	<-srv.Ready()
	t.Cleanup(func() {
		sctx, c := context.WithTimeout(context.Background(), 2*time.Second)
		defer c()
		srv.Shutdown(sctx)
		<-served
	})
}
