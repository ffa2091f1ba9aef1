package raft

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"roster/internal/testkit"
)

// listFSM keeps every applied command. Its snapshot is a point-in-time
// view of the (append-only) slice, so Persist can run while Apply goes on.
type listFSM struct {
	// mu guards cmds, restores and failPersistAt.
	mu       sync.Mutex
	cmds     []string
	restores int
	// failPersistAt > 0 makes the Persist of a snapshot with at least that
	// many commands fail half way (a crash or a full disk mid-write).
	failPersistAt int
}

func (f *listFSM) Apply(e Entry) any {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cmds = append(f.cmds, string(e.Data))
	return len(f.cmds)
}

func (f *listFSM) Snapshot() (FSMSnapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := len(f.cmds)
	return &listSnap{cmds: f.cmds[:n:n], fail: f.failPersistAt > 0 && n >= f.failPersistAt}, nil
}

func (f *listFSM) Restore(r io.Reader) error {
	var cmds []string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		cmds = append(cmds, sc.Text())
	}
	if err := sc.Err(); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cmds, f.restores = cmds, f.restores+1
	return nil
}

func (f *listFSM) state() ([]string, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.cmds), f.restores
}

type listSnap struct {
	cmds []string
	fail bool
}

func (s *listSnap) Persist(w io.Writer) error {
	bw := bufio.NewWriter(w)
	for i, c := range s.cmds {
		if s.fail && i == len(s.cmds)/2 {
			bw.Flush()
			return errors.New("simulated crash half way through the snapshot")
		}
		fmt.Fprintln(bw, c)
	}
	return bw.Flush()
}

func (s *listSnap) Release() {}

// snapCluster is a small harness for snapshot scenarios on the in-memory
// network: every server has a MemStore and a MemSnapshotStore that outlive
// its Node, as a disk outlives a crash.
type snapCluster struct {
	t     *testing.T
	net   *MemNetwork
	cfg   Config
	ids   []string
	nodes map[string]*Node
	fsms  map[string]*listFSM
	logs  map[string]*MemStore
	snaps map[string]*MemSnapshotStore
	addrs map[string]string
	// transport attaches a server to the network (default: the MemNetwork).
	transport func(id string) Transport
	trans     map[string]Transport
	lossy     bool // laggingFollowerScenario degrades the link to the lagger
}

func newSnapCluster(t *testing.T, n int, cfg Config) *snapCluster {
	return newSnapClusterOn(t, n, cfg, nil, nil)
}

// newSnapClusterOn starts n servers at addrs (default: their IDs) attached
// by transport (default: the MemNetwork).
func newSnapClusterOn(t *testing.T, n int, cfg Config, addrs map[string]string, transport func(id string) Transport) *snapCluster {
	c := &snapCluster{t: t, net: NewMemNetwork(testkit.Seed(t)), cfg: cfg, nodes: map[string]*Node{},
		fsms: map[string]*listFSM{}, logs: map[string]*MemStore{}, snaps: map[string]*MemSnapshotStore{},
		addrs: addrs, transport: transport, trans: map[string]Transport{}}
	if c.transport == nil {
		c.transport = func(id string) Transport { return c.net.Transport(id) }
	}
	var servers []Server
	for i := 1; i <= n; i++ {
		id := fmt.Sprintf("n%d", i)
		c.ids = append(c.ids, id)
		addr := id
		if a, ok := addrs[id]; ok {
			addr = a
		}
		servers = append(servers, Server{ID: id, Address: addr})
		c.logs[id], c.snaps[id] = NewMemStore(), NewMemSnapshotStore(2)
	}
	for _, id := range c.ids {
		c.start(id)
		if err := c.nodes[id].BootstrapCluster(servers); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for _, id := range c.ids {
			c.stop(id)
		}
	})
	return c
}

func (c *snapCluster) start(id string) {
	cfg := c.cfg
	cfg.ID, cfg.Snapshots = id, c.snaps[id]
	fsm := &listFSM{}
	trans := c.transport(id)
	n, err := NewNode(cfg, fsm, c.logs[id], c.logs[id], trans)
	if err != nil {
		c.t.Fatalf("start %s: %v", id, err)
	}
	c.nodes[id], c.fsms[id], c.trans[id] = n, fsm, trans
}

func (c *snapCluster) stop(id string) {
	if n := c.nodes[id]; n != nil {
		c.trans[id].(io.Closer).Close()
		n.Shutdown()
		delete(c.nodes, id)
	}
}

func (c *snapCluster) leader() *Node {
	var leader *Node
	testkit.WaitFor(c.t, 10*time.Second, "a leader", func() error {
		for _, n := range c.nodes {
			if n.State() == Leader {
				leader = n
				return nil
			}
		}
		return errors.New("no leader")
	})
	return leader
}

// applyMany applies count commands named prefix-i, many in flight at once.
func applyMany(t *testing.T, n *Node, prefix string, count int) uint64 {
	t.Helper()
	var last uint64
	const window = 256
	for lo := 0; lo < count; lo += window {
		var fs []ApplyFuture
		for i := lo; i < min(lo+window, count); i++ {
			fs = append(fs, n.Apply([]byte(fmt.Sprintf("%s-%d", prefix, i)), 5*time.Second))
		}
		for _, f := range fs {
			if err := waitFuture(f, 10*time.Second); err != nil {
				t.Fatalf("apply: %v", err)
			}
			last = max(last, f.Index())
		}
	}
	return last
}

func snapTestConfig() Config {
	cfg := labConfig()
	cfg.SnapshotThreshold, cfg.TrailingLogs, cfg.SnapshotChunkBytes = 1000, 100, 16<<10
	return cfg
}

// Raft §7: a follower that was down while 10,000 entries were committed
// and compacted away catches up by InstallSnapshot (in several chunks) and
// then by the log, ending with exactly the leader's state.
func TestSnapshot_LaggingFollowerCatchesUpBySnapshot(t *testing.T) {
	laggingFollowerScenario(t, newSnapCluster(t, 3, snapTestConfig()), 10000)
}

// The same over net/rpc on loopback: the chunks travel as
// Raft.InstallSnapshot calls. Each node's first listener is bound
// up front and held until the node starts, so its address is known to
// all before any starts; the restarted follower binds its address again,
// which testkit.ListenStable keeps out of the ports outgoing connections
// are handed meanwhile.
func TestSocket_LaggingFollowerCatchesUpBySnapshot(t *testing.T) {
	addrs := map[string]string{}
	bound := map[string]net.Listener{}
	for i := 1; i <= 3; i++ {
		l := testkit.ListenStable(t)
		id := fmt.Sprintf("n%d", i)
		addrs[id], bound[id] = l.Addr().String(), l
	}
	t.Cleanup(func() {
		for _, l := range bound { // those no node took
			l.Close()
		}
	})
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	c := newSnapClusterOn(t, 3, snapTestConfig(), addrs, func(id string) Transport {
		l, ok := bound[id]
		delete(bound, id)
		if !ok {
			var err error
			if l, err = net.Listen("tcp", addrs[id]); err != nil {
				t.Fatalf("listen %s: %v", addrs[id], err)
			}
		}
		tr, err := ListenNetTransport(l, NetTransportConfig{Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		return tr
	})
	laggingFollowerScenario(t, c, 3000)
}

// The same with a lossy, duplicating, reordering link to the follower
// while the snapshot streams: a lost chunk or answer fails the transfer,
// which is retried from the start until it gets through.
func TestPartition_SnapshotOverLossyLink(t *testing.T) {
	c := newSnapCluster(t, 3, snapTestConfig())
	c.lossy = true
	laggingFollowerScenario(t, c, 3000)
}

func laggingFollowerScenario(t *testing.T, c *snapCluster, entries int) {
	leader := c.leader()
	lagger := "n1"
	if leader.cfg.ID == lagger {
		lagger = "n2"
	}
	c.stop(lagger)
	last := applyMany(t, leader, "cmd", entries)
	testkit.WaitFor(t, 10*time.Second, "leader compacted its log", func() error {
		if first, _ := c.logs[leader.cfg.ID].FirstIndex(); first < uint64(entries)/2 {
			return fmt.Errorf("leader log starts at %d", first)
		}
		return nil
	})
	if c.lossy {
		for _, pair := range [][2]string{{leader.cfg.ID, lagger}, {lagger, leader.cfg.ID}} {
			c.net.Drop(pair[0], pair[1], 0.1)
		}
		c.net.Duplicate(0.1)
		c.net.Reorder(0.2)
	}
	c.start(lagger)
	testkit.WaitFor(t, 30*time.Second, "lagging follower caught up", func() error {
		if got := c.nodes[lagger].AppliedIndex(); got < last {
			return fmt.Errorf("%s applied %d of %d", lagger, got, last)
		}
		return nil
	})
	want, _ := c.fsms[leader.cfg.ID].state()
	got, restores := c.fsms[lagger].state()
	if restores == 0 {
		t.Fatalf("%s caught up without a snapshot; the test did not exercise InstallSnapshot", lagger)
	}
	if len(got) < len(want) || !slices.Equal(got[:len(want)], want) {
		t.Fatalf("%s state differs from the leader's after catching up", lagger)
	}
	if len(got) < entries {
		t.Fatalf("%s holds %d commands, want >= %d", lagger, len(got), entries)
	}
}

// Regression: a deposed leader whose log holds an uncommitted suffix that
// the new leader never had, and whose matching prefix the new leader has
// compacted away, gets a snapshot that replaces its whole log (Raft §7);
// its uncommitted commands are never applied and it ends with exactly the
// new leader's state.
func TestPartition_SnapshotReplacesDivergentLog(t *testing.T) {
	c := newSnapCluster(t, 3, snapTestConfig())
	old := c.leader()
	applyMany(t, old, "before", 10)
	c.net.Isolate(old.cfg.ID)
	var lost []ApplyFuture
	for i := range 5 {
		lost = append(lost, old.Apply([]byte(fmt.Sprintf("lost-%d", i)), time.Second))
	}
	var leader *Node
	testkit.WaitFor(t, 10*time.Second, "a new leader in the majority", func() error {
		for id, n := range c.nodes {
			if id != old.cfg.ID && n.State() == Leader {
				leader = n
				return nil
			}
		}
		return errors.New("none yet")
	})
	last := applyMany(t, leader, "after", 3000)
	testkit.WaitFor(t, 10*time.Second, "new leader compacted past the divergence", func() error {
		if first, _ := c.logs[leader.cfg.ID].FirstIndex(); first < 1000 {
			return fmt.Errorf("log starts at %d", first)
		}
		return nil
	})
	c.net.Heal()
	testkit.WaitFor(t, 20*time.Second, "old leader caught up", func() error {
		if got := old.AppliedIndex(); got < last {
			return fmt.Errorf("applied %d of %d", got, last)
		}
		return nil
	})
	for _, f := range lost {
		if f.Error() == nil {
			t.Fatalf("a command proposed in a minority was acknowledged at %d", f.Index())
		}
	}
	want, _ := c.fsms[leader.cfg.ID].state()
	got, restores := c.fsms[old.cfg.ID].state()
	if restores == 0 {
		t.Fatalf("old leader caught up without a snapshot; the test did not exercise the install")
	}
	if len(got) < len(want) || !slices.Equal(got[:len(want)], want) {
		t.Fatalf("old leader's state differs from the new leader's")
	}
	for _, cmd := range got {
		if strings.HasPrefix(cmd, "lost-") {
			t.Fatalf("old leader applied its uncommitted %q", cmd)
		}
	}
}
