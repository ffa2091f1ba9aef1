package raft

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"roster/internal/testkit"
)

// socketCluster is three Nodes on 127.0.0.1 with bbolt stores on disk and
// the net/rpc transport: the production stack.
type socketCluster struct {
	t      testing.TB
	dir    string
	cfg    Config
	ids    []string
	addrs  map[string]string
	lns    map[string]net.Listener
	nodes  map[string]*Node
	trans  map[string]*NetTransport
	stores map[string]*BoltStore
	fsms   map[string]*testFSM
	inv    *shellInvariants
}

func newSocketCluster(t testing.TB, n int, cfg Config) *socketCluster {
	t.Helper()
	c := &socketCluster{t: t, dir: t.TempDir(), cfg: cfg, addrs: map[string]string{}, lns: map[string]net.Listener{},
		nodes: map[string]*Node{}, trans: map[string]*NetTransport{}, stores: map[string]*BoltStore{},
		fsms: map[string]*testFSM{}, inv: newShellInvariants()}
	var servers []Server
	for i := 1; i <= n; i++ {
		id := fmt.Sprintf("s%d", i)
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
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
	store, err := OpenBoltStore(filepath.Join(c.dir, id+".db"))
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
	const entries = 1000
	var wg sync.WaitGroup
	errs := make(chan error, entries)
	acked := make(chan [2]any, entries)
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < entries; i += 16 {
				cmd := fmt.Sprint("e", i)
				f := c.nodes[l].Apply([]byte(cmd), 5*time.Second)
				if err := f.Error(); err != nil {
					errs <- err
					return
				}
				acked <- [2]any{f.Index(), cmd}
			}
		}()
	}
	wg.Wait()
	close(errs)
	close(acked)
	if err := <-errs; err != nil {
		t.Fatalf("apply on a healthy cluster: %v", err)
	}
	var top uint64
	for a := range acked {
		c.inv.ack(a[0].(uint64), a[1].(string))
		top = max(top, a[0].(uint64))
	}
	testkit.WaitFor(t, 10*time.Second, "all 1000 entries applied on every server", func() error {
		for _, id := range c.ids {
			if got := c.nodes[id].AppliedIndex(); got < top {
				return fmt.Errorf("%s applied %d of %d", id, got, top)
			}
		}
		return nil
	})
	// Kill the leader; a new one takes over and has everything acknowledged.
	c.stop(l)
	var l2 string
	testkit.WaitFor(t, 10*time.Second, "a new leader after killing "+l, func() error {
		for _, id := range c.ids {
			if n := c.nodes[id]; n != nil && n.State() == Leader {
				l2 = id
				return nil
			}
		}
		return errors.New("no leader")
	})
	store := c.stores[l2]
	c.inv.mu.Lock()
	for idx, cmd := range c.inv.acked {
		e, err := store.GetLog(idx)
		if err != nil || string(e.Data) != cmd {
			t.Errorf("new leader %s lost acknowledged %q at %d: %v", l2, cmd, idx, err)
		}
	}
	c.inv.mu.Unlock()
	f := c.nodes[l2].Apply([]byte("after-failover"), 5*time.Second)
	if err := f.Error(); err != nil {
		t.Fatalf("apply after failover: %v", err)
	}
	// The old leader restarts from its bbolt file and catches up.
	c.start(l, nil)
	testkit.WaitFor(t, 10*time.Second, "restarted "+l+" catching up", func() error {
		if got := c.nodes[l].AppliedIndex(); got < f.Index() {
			return fmt.Errorf("applied %d of %d", got, f.Index())
		}
		return nil
	})
	c.inv.mu.Lock()
	defer c.inv.mu.Unlock()
	if len(c.inv.violations) > 0 {
		t.Fatalf("invariants: %v", c.inv.violations)
	}
}

// A bolt store reopened on the same file resumes term, vote and log.
func TestBoltStore_ResumesAfterReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "raft.db")
	s, err := OpenBoltStore(path)
	if err != nil {
		t.Fatal(err)
	}
	es := []Entry{{Index: 1, Term: 1, Type: EntryConfiguration, Data: []byte("{}")}, {Index: 2, Term: 3, Type: EntryCommand, Data: []byte("a")}, {Index: 3, Term: 3, Type: EntryCommand, Data: []byte("b")}}
	if err := s.StoreLogsAndState(es, keyHardState, encodeHardState(HardState{Term: 4, Vote: "x"})); err != nil {
		t.Fatal(err)
	}
	// Replace the suffix from 3 on, as a follower repairing its log does.
	if err := s.StoreLogs([]Entry{{Index: 3, Term: 4, Type: EntryCommand, Data: []byte("c")}}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = OpenBoltStore(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	hs, got, err := loadState(s, s)
	if err != nil {
		t.Fatal(err)
	}
	if hs != (HardState{Term: 4, Vote: "x"}) || len(got) != 3 || string(got[2].Data) != "c" || got[2].Term != 4 {
		t.Fatalf("reopened: %+v %+v", hs, got)
	}
	if err := s.DeleteRange(1, 2); err != nil {
		t.Fatal(err)
	}
	if first, _ := s.FirstIndex(); first != 3 {
		t.Fatalf("first index after DeleteRange = %d, want 3", first)
	}
}
