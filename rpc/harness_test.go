package rpc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"roster/internal/fanout"
	"roster/raft"
)

// The harness: a "world" of n in-process rpc servers on loopback that
// share one replicated state (a DedupFSM over a map), with a leader the
// test moves at will. It stands in for raft + catalog.

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

type world struct {
	mu      sync.Mutex // guards leader, addrs, index, trace
	leader  int        // -1: no leader
	addrs   []string
	index   uint64
	trace   []string
	fsm     *DedupFSM
	kv      *memFSM
	changed chan struct{} // closed and replaced on every apply
	events  fanout.Hub[Event]
}

func (w *world) setLeader(i int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.leader = i
	w.trace = append(w.trace, fmt.Sprintf("leader -> %d", i))
}

func (w *world) logf(format string, args ...any) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.trace = append(w.trace, fmt.Sprintf(format, args...))
}

// apply "commits" a command through the shared FSM.
func (w *world) apply(requestID string, cmd []byte) (uint64, any) {
	w.mu.Lock()
	w.index++
	idx := w.index
	w.mu.Unlock()
	res := w.fsm.Apply(raft.Entry{Index: idx, Term: 1, Type: raft.EntryCommand, Data: EncodeCommand(requestID, time.Now(), cmd)})
	w.mu.Lock()
	close(w.changed)
	w.changed = make(chan struct{})
	w.trace = append(w.trace, fmt.Sprintf("apply idx=%d id=%s cmd=%s", idx, requestID, cmd))
	w.mu.Unlock()
	return idx, res
}

func (w *world) dump(t *testing.T) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if t.Failed() {
		t.Logf("event trace:\n  %s", strings.Join(w.trace, "\n  "))
	}
}

// memFSM is a key/value map; commands are "key=value".
type memFSM struct {
	mu      sync.Mutex // guards data, applies
	data    map[string]string
	applies int
}

func (m *memFSM) Apply(e raft.Entry) any {
	m.mu.Lock()
	defer m.mu.Unlock()
	k, v, _ := strings.Cut(string(e.Data), "=")
	m.data[k] = v
	m.applies++
	return fmt.Sprintf("applied %s at %d", k, e.Index)
}

func (m *memFSM) Snapshot() (raft.FSMSnapshot, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var b strings.Builder
	for k, v := range m.data {
		fmt.Fprintf(&b, "%s=%s\n", k, v)
	}
	return memSnap(b.String()), nil
}

func (m *memFSM) Restore(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.data = map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			m.data[k] = v
		}
	}
	return nil
}

func (m *memFSM) count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.applies
}

type memSnap string

func (s memSnap) Persist(w io.Writer) error { _, err := io.WriteString(w, string(s)); return err }
func (s memSnap) Release()                  {}

// fakeNode is one server's view of the world: a Cluster.
type fakeNode struct {
	w               *world
	id              int
	consistentReads atomic.Int64
	leaderQueries   atomic.Int64 // LeaderAddr calls, to see a forwarder retrying
	// believes, if set, overrides the world's leader in this node's view
	// (a stale view during an election).
	believes    atomic.Pointer[string]
	lastContact time.Duration
}

func (n *fakeNode) IsLeader() bool {
	if b := n.believes.Load(); b != nil {
		return false
	}
	n.w.mu.Lock()
	defer n.w.mu.Unlock()
	return n.w.leader == n.id
}

func (n *fakeNode) LeaderAddr() string {
	n.leaderQueries.Add(1)
	if b := n.believes.Load(); b != nil {
		return *b
	}
	n.w.mu.Lock()
	defer n.w.mu.Unlock()
	if n.w.leader < 0 {
		return ""
	}
	return n.w.addrs[n.w.leader]
}

func (n *fakeNode) LastContact() time.Duration {
	if n.IsLeader() {
		return 0
	}
	return n.lastContact
}

func (n *fakeNode) ConsistentRead(ctx context.Context) error {
	if !n.IsLeader() {
		return errors.New("not leader")
	}
	n.consistentReads.Add(1)
	return nil
}

func (n *fakeNode) Peers() ([]string, error) {
	n.w.mu.Lock()
	defer n.w.mu.Unlock()
	return append([]string(nil), n.w.addrs...), nil
}

var _ Cluster = (*fakeNode)(nil)

// Test endpoint types, shaped like real ones.
type PutRequest struct {
	WriteRequest
	Key, Value string
}

type PutResponse struct {
	WriteMeta
	Result string
}

type GetRequest struct {
	QueryOptions
	Key string
}

type GetResponse struct {
	QueryMeta
	Value  string
	Server int
}

// testKV is the endpoint "KV" on one server.
type testKV struct {
	node    *fakeNode
	fwd     *Forwarder
	blocker *Blocker
	// onApply, if set, runs on the leader after the write committed and
	// before the reply is sent (to crash the leader mid-call).
	onApply func(node int)
}

func (k *testKV) Put(args *PutRequest, reply *PutResponse) error {
	if done, err := k.fwd.Forward(context.Background(), "KV.Put", args, args, reply); done {
		return err
	}
	k.node.w.logf("node %d applies %s", k.node.id, args.RequestID)
	idx, res := k.node.w.apply(args.RequestID, []byte(args.Key+"="+args.Value))
	reply.Index = idx
	switch r := res.(type) {
	case string:
		reply.Result = r
	case Duplicate:
		reply.Index, reply.Result = r.Index, "duplicate"
		if r.ResultKnown {
			reply.Result = r.Result.(string)
		}
	}
	if k.onApply != nil {
		k.onApply(k.node.id)
	}
	return nil
}

func (k *testKV) Get(args *GetRequest, reply *GetResponse) error {
	if done, err := k.fwd.Forward(context.Background(), "KV.Get", args, args, reply); done {
		return err
	}
	return k.blocker.Query(context.Background(), &args.QueryOptions, &reply.QueryMeta, func() (uint64, <-chan struct{}, error) {
		w := k.node.w
		w.mu.Lock()
		idx, ch := w.index, w.changed
		w.mu.Unlock()
		w.kv.mu.Lock()
		reply.Value = w.kv.data[args.Key]
		w.kv.mu.Unlock()
		reply.Server = k.node.id
		return idx, ch, nil
	})
}

func (k *testKV) Fail(args *PutRequest, reply *PutResponse) error {
	if done, err := k.fwd.Forward(context.Background(), "KV.Fail", args, args, reply); done {
		return err
	}
	return errors.New("Missing key name")
}

type testCluster struct {
	w       *world
	nodes   []*fakeNode
	servers []*Server
	pools   []*Pool
	kvs     []*testKV
}

type clusterOpts struct {
	holdTimeout time.Duration
	router      Router
	dc          string
}

// startCluster starts n servers on 127.0.0.1:0 with node 0 as leader.
func startCluster(t *testing.T, n int, o clusterOpts) *testCluster {
	t.Helper()
	if o.holdTimeout == 0 {
		o.holdTimeout = 2 * time.Second
	}
	if o.dc == "" {
		o.dc = "dc1"
	}
	kv := &memFSM{data: map[string]string{}}
	w := &world{leader: 0, kv: kv, fsm: NewDedupFSM(kv, 0, 0), changed: make(chan struct{})}
	tc := &testCluster{w: w}
	t.Cleanup(func() { w.dump(t) })
	lns := make([]net.Listener, n)
	for i := range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns[i] = l
		w.addrs = append(w.addrs, l.Addr().String())
	}
	for i := range n {
		tc.startNode(t, i, lns[i], o)
	}
	return tc
}

func (tc *testCluster) startNode(t *testing.T, i int, l net.Listener, o clusterOpts) {
	t.Helper()
	node := &fakeNode{w: tc.w, id: i, lastContact: 50 * time.Millisecond}
	pool, err := NewPool(PoolConfig{Logger: quietLogger(), Events: &tc.w.events})
	if err != nil {
		t.Fatal(err)
	}
	fwd, err := NewForwarder(ForwardConfig{Datacenter: o.dc, Cluster: node, Router: o.router, Caller: pool,
		HoldTimeout: o.holdTimeout, Seed: uint64(i + 1), Logger: quietLogger(), Events: &tc.w.events})
	if err != nil {
		t.Fatal(err)
	}
	blocker, err := NewBlocker(BlockingConfig{Cluster: node, Seed: uint64(i + 1)})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := NewServer(Config{Logger: quietLogger(), Events: &tc.w.events})
	if err != nil {
		t.Fatal(err)
	}
	kv := &testKV{node: node, fwd: fwd, blocker: blocker}
	if err := srv.Register("KV", kv); err != nil {
		t.Fatal(err)
	}
	if err := srv.Register("Status", NewStatus(context.Background(), node, fwd)); err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	<-srv.Ready()
	t.Cleanup(func() {
		pool.Shutdown()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	tc.nodes = append(tc.nodes, node)
	tc.servers = append(tc.servers, srv)
	tc.pools = append(tc.pools, pool)
	tc.kvs = append(tc.kvs, kv)
}

// newClient returns a pool for the test itself to call servers with.
func newClient(t *testing.T, cfg PoolConfig) *Pool {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = quietLogger()
	}
	p, err := NewPool(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Shutdown)
	return p
}

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
