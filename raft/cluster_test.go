package raft

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"roster/internal/testkit"
)

// testFSM records what it applies and checks State Machine Safety against
// the cluster's shared record as it goes.
type testFSM struct {
	id  string
	inv *shellInvariants
	// mu guards applied.
	mu sync.Mutex
	// applied holds every applied entry in chunks of fsmChunk, so that a
	// long benchmark never copies the whole history to grow it.
	applied [][]Entry
}

const fsmChunk = 4096

func (f *testFSM) Apply(e Entry) any {
	f.mu.Lock()
	if n := len(f.applied); n == 0 || len(f.applied[n-1]) == fsmChunk {
		f.applied = append(f.applied, make([]Entry, 0, fsmChunk))
	}
	f.applied[len(f.applied)-1] = append(f.applied[len(f.applied)-1], e)
	f.mu.Unlock()
	f.inv.applied(f.id, e)
	return e.Index
}

func (f *testFSM) Snapshot() (FSMSnapshot, error) {
	return nil, errors.New("snapshots arrive with Raft II")
}
func (f *testFSM) Restore(io.Reader) error { return errors.New("snapshots arrive with Raft II") }

func (f *testFSM) commands() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, chunk := range f.applied {
		for _, e := range chunk {
			out = append(out, string(e.Data))
		}
	}
	return out
}

// shellInvariants is the shell-level counterpart of invariants: fed by
// every node's event stream and FSM, checked continuously, reported at the
// end of the test (and by cluster.check at every wait).
type shellInvariants struct {
	// mu guards every field.
	mu         sync.Mutex
	leaders    map[uint64]string
	commands   map[uint64]string // index -> command applied there (any server)
	acked      map[uint64]string // index -> command acknowledged to a client
	ackedAt    map[uint64]time.Time
	violations []string
	trace      []string
}

func newShellInvariants() *shellInvariants {
	return &shellInvariants{leaders: map[uint64]string{}, commands: map[uint64]string{}, acked: map[uint64]string{},
		ackedAt: map[uint64]time.Time{}}
}

func (v *shellInvariants) violate(format string, args ...any) {
	v.violations = append(v.violations, fmt.Sprintf(format, args...))
}

func (v *shellInvariants) applied(id string, e Entry) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if prev, ok := v.commands[e.Index]; ok {
		if prev != string(e.Data) {
			v.violate("state machine safety: %s applied %q at %d, another server applied %q", id, e.Data, e.Index, prev)
		}
		return // the first server to apply it recorded it; comparing does not copy
	}
	v.commands[e.Index] = string(e.Data)
}

func (v *shellInvariants) ack(index uint64, cmd string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.acked[index] = cmd
	v.ackedAt[index] = time.Now()
}

// leader checks Election Safety and Leader Completeness for a new leader,
// reading its durable log.
func (v *shellInvariants) leader(e Event, store LogStore) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if prev, ok := v.leaders[e.Term]; ok && prev != e.Node {
		v.violate("election safety: two leaders in term %d: %s and %s", e.Term, prev, e.Node)
	}
	v.leaders[e.Term] = e.Node
	for idx, cmd := range v.acked {
		if v.ackedAt[idx].After(e.Time) {
			// Acknowledged after this leader took office (the observer
			// runs behind): it may have committed on the followers while
			// the leader's own write was in flight (thesis §10.2.1).
			continue
		}
		got, err := store.GetLog(idx)
		if err != nil || string(got.Data) != cmd {
			v.violate("leader completeness: leader %s of term %d lacks acknowledged %q at %d", e.Node, e.Term, cmd, idx)
		}
	}
}

func (v *shellInvariants) record(e Event) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if e.Type == EventCommitted {
		return
	}
	v.trace = append(v.trace, e.Time.Format("15:04:05.000")+" "+e.String())
	if len(v.trace) > 3000 {
		v.trace = v.trace[1000:]
	}
}

// cluster is a set of Nodes on a MemNetwork with MemStores that survive
// crashes.
type cluster struct {
	t      testing.TB
	net    *MemNetwork
	ids    []string
	cfg    Config
	inv    *shellInvariants
	mu     sync.Mutex // guards the maps below
	nodes  map[string]*Node
	stores map[string]*MemStore
	fsms   map[string]*testFSM
	obsWG  sync.WaitGroup
}

// labConfig: fast timing for tests that run on a loaded machine under the
// race detector: 10 ms ticks, 30 ms heartbeats, 150–300 ms elections.
func labConfig() Config {
	return Config{TickInterval: 10 * time.Millisecond, HeartbeatTimeout: 30 * time.Millisecond,
		ElectionTimeout: 150 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
}

func newCluster(t testing.TB, n int) *cluster {
	return newClusterWith(t, n, labConfig(), nil)
}

// newClusterWith starts n nodes; prep may preload a server's store before
// its node starts.
func newClusterWith(t testing.TB, n int, cfg Config, prep func(id string, s *MemStore)) *cluster {
	t.Helper()
	c := &cluster{t: t, net: NewMemNetwork(testkit.Seed(t)), cfg: cfg, inv: newShellInvariants(),
		nodes: map[string]*Node{}, stores: map[string]*MemStore{}, fsms: map[string]*testFSM{}}
	var servers []Server
	for i := 1; i <= n; i++ {
		id := fmt.Sprintf("n%d", i)
		c.ids = append(c.ids, id)
		servers = append(servers, Server{ID: id, Address: id})
	}
	for _, id := range c.ids {
		s := NewMemStore()
		boot, err := NewCore(CoreConfig{ID: id, ElectionTicks: 2, HeartbeatTicks: 1, MaxEntriesPerMsg: 1, MaxInflight: 1},
			HardState{}, nil, testRand(0))
		if err != nil {
			t.Fatal(err)
		}
		if err := boot.Bootstrap(Configuration{Servers: servers}); err != nil {
			t.Fatal(err)
		}
		rd := boot.Ready()
		s.StoreLogsAndState(rd.Entries, keyHardState, encodeHardState(rd.HardState))
		if prep != nil {
			prep(id, s)
		}
		c.stores[id] = s
		c.start(id)
	}
	t.Cleanup(c.shutdown)
	return c
}

func (c *cluster) start(id string) {
	c.t.Helper()
	cfg := c.cfg
	cfg.ID = id
	fsm := &testFSM{id: id, inv: c.inv}
	trans := c.net.Transport(id)
	c.mu.Lock()
	store := c.stores[id]
	c.mu.Unlock()
	n, err := NewNode(cfg, fsm, store, store, trans)
	if err != nil {
		c.t.Fatalf("start %s: %v", id, err)
	}
	obs := n.Subscribe(4096)
	c.obsWG.Add(1)
	go func() {
		defer c.obsWG.Done()
		for e := range obs.C {
			c.inv.record(e)
			if e.Type == EventStateChanged && e.State == Leader {
				c.inv.leader(e, store)
			}
		}
	}()
	c.mu.Lock()
	c.nodes[id], c.fsms[id] = n, fsm
	c.mu.Unlock()
}

// crash stops id abruptly; its store keeps exactly what it had persisted.
func (c *cluster) crash(id string) {
	c.mu.Lock()
	n := c.nodes[id]
	delete(c.nodes, id)
	c.mu.Unlock()
	if n == nil {
		return
	}
	n.trans.(*MemTransport).Close()
	n.Shutdown()
}

func (c *cluster) restart(id string) {
	c.crash(id)
	c.start(id)
}

func (c *cluster) node(id string) *Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[id]
}

func (c *cluster) fsm(id string) *testFSM {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.fsms[id]
}

func (c *cluster) shutdown() {
	for _, id := range c.ids {
		c.crash(id)
	}
	c.obsWG.Wait()
	c.check()
}

// check fails the test on any invariant violation, dumping the trace.
func (c *cluster) check() {
	c.t.Helper()
	c.inv.mu.Lock()
	defer c.inv.mu.Unlock()
	if len(c.inv.violations) > 0 {
		tail := c.inv.trace
		if len(tail) > 300 {
			tail = tail[len(tail)-300:]
		}
		c.t.Fatalf("invariant violated:\n  %s\n--- event trace ---\n%s",
			strings.Join(c.inv.violations, "\n  "), strings.Join(tail, "\n"))
	}
}

// waitFor is testkit.WaitFor that also checks invariants and dumps the
// trace on timeout.
func (c *cluster) waitFor(timeout time.Duration, what string, cond func() error) {
	c.t.Helper()
	err := testkit.Poll(timeout, func() error {
		c.check()
		return cond()
	})
	if err != nil {
		c.inv.mu.Lock()
		tail := c.inv.trace
		if len(tail) > 100 {
			tail = tail[len(tail)-100:]
		}
		c.inv.mu.Unlock()
		c.t.Fatalf("timed out after %v waiting for %s: %v\n--- event trace ---\n%s", timeout, what, err, strings.Join(tail, "\n"))
	}
}

// leader waits for exactly one leader among the live, mutually connected
// servers in ids (all if empty) that they all follow, and returns it.
func (c *cluster) leader(ids ...string) string {
	c.t.Helper()
	if len(ids) == 0 {
		ids = c.ids
	}
	var leader string
	c.waitFor(5*time.Second, "a leader followed by "+strings.Join(ids, ","), func() error {
		leader = ""
		var term uint64
		for _, id := range ids {
			n := c.node(id)
			if n == nil {
				continue
			}
			if n.State() == Leader && n.Term() >= term {
				leader, term = id, n.Term()
			}
		}
		if leader == "" {
			return errors.New("no leader")
		}
		for _, id := range ids {
			n := c.node(id)
			if n == nil {
				continue
			}
			if _, lid := n.Leader(); lid != leader || n.Term() != term {
				return fmt.Errorf("%s follows %q in term %d, not %s in %d", id, lid, n.Term(), leader, term)
			}
		}
		return nil
	})
	return leader
}

// apply submits cmd to the leader of the highest term, retrying across
// leader changes until it is acknowledged; it returns the index. A stuck
// node (a stalled disk) may still call itself leader, so each attempt is
// bounded.
func (c *cluster) apply(cmd string, within time.Duration) uint64 {
	c.t.Helper()
	var index uint64
	c.waitFor(within, "apply "+cmd, func() error {
		var leader *Node
		for _, id := range c.ids {
			if n := c.node(id); n != nil && n.State() == Leader && (leader == nil || n.Term() > leader.Term()) {
				leader = n
			}
		}
		if leader == nil {
			return errors.New("no leader to apply to")
		}
		f := leader.Apply([]byte(cmd), time.Second)
		if err := waitFuture(f, 2*time.Second); err != nil {
			return err
		}
		index = f.Index()
		c.inv.ack(index, cmd)
		return nil
	})
	return index
}

// waitFuture waits at most d for f.
func waitFuture(f Future, d time.Duration) error {
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		return fmt.Errorf("no outcome within %v", d)
	}
}

// applied waits until every live server in ids (all if empty) applied index.
func (c *cluster) applied(index uint64, ids ...string) {
	c.t.Helper()
	if len(ids) == 0 {
		ids = c.ids
	}
	c.waitFor(10*time.Second, fmt.Sprintf("index %d applied on %v", index, ids), func() error {
		for _, id := range ids {
			if n := c.node(id); n != nil && n.AppliedIndex() < index {
				return fmt.Errorf("%s applied %d", id, n.AppliedIndex())
			}
		}
		return nil
	})
}

func others(ids []string, not ...string) []string {
	var out []string
outer:
	for _, id := range ids {
		for _, n := range not {
			if id == n {
				continue outer
			}
		}
		out = append(out, id)
	}
	return out
}

// testRandFromCluster derives a generator from the network's seeded plan so
// that a test's random choices replay with -seed.
func testRandFromCluster(c *cluster) *rand.Rand {
	s := uint64(c.net.Float64() * (1 << 53))
	return rand.New(rand.NewPCG(s, 11))
}

// pollUntil waits until deadline without busy-looping; it is the one
// place tests let wall time pass on purpose (to let a chaotic cluster run),
// always bounded.
func pollUntil(deadline time.Time) error {
	return testkit.Poll(time.Until(deadline), func() error {
		if time.Now().Before(deadline) {
			return errors.New("running")
		}
		return nil
	})
}
