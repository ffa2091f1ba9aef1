package raft

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"roster/internal/testkit"
)

// socketCluster is three Nodes on 127.0.0.1 with stores on disk (the WAL;
// bbolt with ROSTER_RAFT_STORE=bolt, to compare) and the net/rpc
// transport: the production stack.
type socketCluster struct {
	t      testing.TB
	dir    string
	cfg    Config
	ids    []string
	addrs  map[string]string
	lns    map[string]net.Listener
	nodes  map[string]*Node
	trans  map[string]*NetTransport
	stores map[string]diskStore
	fsms   map[string]*testFSM
	inv    *shellInvariants
}

func newSocketCluster(t testing.TB, n int, cfg Config) *socketCluster {
	t.Helper()
	c := &socketCluster{t: t, dir: t.TempDir(), cfg: cfg, addrs: map[string]string{}, lns: map[string]net.Listener{},
		nodes: map[string]*Node{}, trans: map[string]*NetTransport{}, stores: map[string]diskStore{},
		fsms: map[string]*testFSM{}, inv: newShellInvariants()}
	var servers []Server
	for i := 1; i <= n; i++ {
		id := fmt.Sprintf("s%d", i)
		// A stopped node is restarted on its address (start).
		l := testkit.ListenStable(t)
		c.ids = append(c.ids, id)
		c.lns[id], c.addrs[id] = l, l.Addr().String()
		servers = append(servers, Server{ID: id, Address: c.addrs[id]})
	}
	for _, id := range c.ids {
		c.start(id, c.lns[id])
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

func (c *socketCluster) start(id string, l net.Listener) {
	c.t.Helper()
	if l == nil {
		var err error
		if l, err = net.Listen("tcp", c.addrs[id]); err != nil {
			c.t.Fatalf("relisten %s: %v", c.addrs[id], err)
		}
	}
	store, err := openDiskStore(filepath.Join(c.dir, id))
	if err != nil {
		c.t.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	trans, err := ListenNetTransport(l, NetTransportConfig{Logger: quiet})
	if err != nil {
		c.t.Fatal(err)
	}
	cfg := c.cfg
	cfg.ID = id
	fsm := &testFSM{id: id, inv: c.inv}
	n, err := NewNode(cfg, fsm, store, store, trans)
	if err != nil {
		c.t.Fatal(err)
	}
	c.nodes[id], c.trans[id], c.stores[id], c.fsms[id] = n, trans, store, fsm
}

// diskStore is a log and stable store on disk.
type diskStore interface {
	LogStore
	StableStore
	Close() error
}

// openDiskStore opens the store the socket tests and benchmarks run on at
// path: the WALStore, or the BoltStore with ROSTER_RAFT_STORE=bolt.
func openDiskStore(path string) (diskStore, error) {
	if os.Getenv("ROSTER_RAFT_STORE") == "bolt" {
		return OpenBoltStore(path + ".db")
	}
	return OpenWALStore(path + ".wal")
}

func (c *socketCluster) stop(id string) {
	if n := c.nodes[id]; n != nil {
		n.Shutdown()
		c.trans[id].Close()
		c.stores[id].Close()
		delete(c.nodes, id)
	}
}

func (c *socketCluster) leader() string {
	c.t.Helper()
	var leader string
	testkit.WaitFor(c.t, 10*time.Second, "a socket-cluster leader", func() error {
		for _, id := range c.ids {
			if n := c.nodes[id]; n != nil && n.State() == Leader {
				leader = id
				return nil
			}
		}
		return errors.New("no leader")
	})
	return leader
}

func TestSocket_ThreeNodesReplicateAndFailOver(t *testing.T) {
	c := newSocketCluster(t, 3, labConfig())
	l := c.leader()
	top := c.applyMany(l, 1000, 16)
	c.waitApplied(top, c.ids...)
	// Kill the leader; a new one takes over and has everything acknowledged.
	c.stop(l)
	l2 := c.leader()
	c.checkAckedIn(l2)
	f := c.nodes[l2].Apply([]byte("after-failover"), 5*time.Second)
	if err := f.Error(); err != nil {
		t.Fatalf("apply after failover: %v", err)
	}
	// The old leader restarts from its log on disk and catches up.
	c.start(l, nil)
	c.waitApplied(f.Index(), l)
	c.inv.mu.Lock()
	defer c.inv.mu.Unlock()
	if len(c.inv.violations) > 0 {
		t.Fatalf("invariants: %v", c.inv.violations)
	}
}

// applyMany applies n commands through leader l from workers goroutines,
// records them as acknowledged and returns the highest index.
func (c *socketCluster) applyMany(l string, n, workers int) uint64 {
	c.t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	var mu sync.Mutex
	var top uint64
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				cmd := fmt.Sprint("e", i)
				f := c.nodes[l].Apply([]byte(cmd), 5*time.Second)
				if err := f.Error(); err != nil {
					errs <- err
					return
				}
				c.inv.ack(f.Index(), cmd)
				mu.Lock()
				top = max(top, f.Index())
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		c.t.Fatalf("apply on a healthy cluster: %v", err)
	}
	return top
}

func (c *socketCluster) waitApplied(index uint64, ids ...string) {
	c.t.Helper()
	testkit.WaitFor(c.t, 10*time.Second, fmt.Sprintf("index %d applied on %v", index, ids), func() error {
		for _, id := range ids {
			if got := c.nodes[id].AppliedIndex(); got < index {
				return fmt.Errorf("%s applied %d", id, got)
			}
		}
		return nil
	})
}

// checkAckedIn verifies Leader Completeness on id's durable log.
func (c *socketCluster) checkAckedIn(id string) {
	c.t.Helper()
	c.inv.mu.Lock()
	defer c.inv.mu.Unlock()
	for idx, cmd := range c.inv.acked {
		e, err := c.stores[id].GetLog(idx)
		if err != nil || string(e.Data) != cmd {
			c.t.Errorf("new leader %s lost acknowledged %q at %d: %v", id, cmd, idx, err)
		}
	}
}

// A bolt store reopened on the same file resumes term, vote and log.
func TestBoltStore_ResumesAfterReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "raft.db")
	testStoreResumesAfterReopen(t, func() durableStore {
		s, err := OpenBoltStore(path)
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}
