package raft

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"roster/internal/testkit"
)

// kvFSM is the replicated map of registers the linearizability tests drive:
// commands are JSON kvInputs (put, cas); reads happen outside the log.
type kvFSM struct {
	// mu guards data.
	mu   sync.Mutex
	data map[string]string
}

func newKVFSM() *kvFSM { return &kvFSM{data: map[string]string{}} }

// Apply returns whether the command took effect (a cas may not), or an
// error for a command it cannot decode.
func (f *kvFSM) Apply(e Entry) any {
	var in kvInput
	if err := json.Unmarshal(e.Data, &in); err != nil {
		return fmt.Errorf("kv command at %d: %w", e.Index, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	switch in.Op {
	case kvPut:
		f.data[in.Key] = in.Value
		return true
	case kvCAS:
		if f.data[in.Key] != in.Expect {
			return false
		}
		f.data[in.Key] = in.Value
		return true
	}
	return fmt.Errorf("kv command at %d: op %d is not a write", e.Index, in.Op)
}

func (f *kvFSM) get(key string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.data[key]
}

func (f *kvFSM) Snapshot() (FSMSnapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return kvSnapshot(maps.Clone(f.data)), nil
}

func (f *kvFSM) Restore(r io.Reader) error {
	data := map[string]string{}
	if err := json.NewDecoder(r).Decode(&data); err != nil {
		return fmt.Errorf("kv snapshot: %w", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.data = data
	return nil
}

type kvSnapshot map[string]string

func (s kvSnapshot) Persist(w io.Writer) error {
	return json.NewEncoder(w).Encode(map[string]string(s))
}
func (s kvSnapshot) Release() {}

// linServer is one running incarnation of a server: its node and the FSM
// that node applies to (a restart brings a new FSM, rebuilt from the
// snapshot and the log).
type linServer struct {
	id    string
	node  *Node
	fsm   *kvFSM
	trans *MemTransport
}

// linCluster runs kvFSM servers on the in-memory network; logs and
// snapshot stores outlive crashes, as disks do. Snapshots are taken every
// few dozen entries, so followers that fall behind catch up by
// InstallSnapshot and restarted servers restore from one.
type linCluster struct {
	t     testing.TB
	net   *MemNetwork
	cfg   Config
	ids   []string
	logs  map[string]*MemStore
	snaps map[string]*MemSnapshotStore
	// mu guards servers.
	mu      sync.Mutex
	servers map[string]*linServer
}

// linConfig is labConfig with a snapshot every 64 entries.
func linConfig() Config {
	cfg := labConfig()
	cfg.SnapshotThreshold, cfg.TrailingLogs, cfg.SnapshotChunkBytes = 64, 16, 1<<10
	return cfg
}

func newLinCluster(t testing.TB, seed uint64, n int, cfg Config) *linCluster {
	t.Helper()
	c := &linCluster{t: t, net: NewMemNetwork(seed), cfg: cfg, logs: map[string]*MemStore{},
		snaps: map[string]*MemSnapshotStore{}, servers: map[string]*linServer{}}
	var conf []Server
	for i := 1; i <= n; i++ {
		id := fmt.Sprintf("n%d", i)
		c.ids = append(c.ids, id)
		conf = append(conf, Server{ID: id, Address: id})
		c.logs[id], c.snaps[id] = NewMemStore(), NewMemSnapshotStore(2)
	}
	for _, id := range c.ids {
		c.start(id)
		if err := c.server(id).node.BootstrapCluster(conf); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for _, id := range c.ids {
			c.crash(id)
		}
	})
	return c
}

func (c *linCluster) start(id string) {
	cfg := c.cfg
	cfg.ID, cfg.Snapshots = id, c.snaps[id]
	s := &linServer{id: id, fsm: newKVFSM(), trans: c.net.Transport(id)}
	n, err := NewNode(cfg, s.fsm, c.logs[id], c.logs[id], s.trans)
	if err != nil {
		c.t.Fatalf("start %s: %v", id, err)
	}
	s.node = n
	c.mu.Lock()
	c.servers[id] = s
	c.mu.Unlock()
}

// crash stops id abruptly (no-op if it is down).
func (c *linCluster) crash(id string) {
	c.mu.Lock()
	s := c.servers[id]
	delete(c.servers, id)
	c.mu.Unlock()
	if s != nil {
		s.trans.Close()
		s.node.Shutdown()
	}
}

// server returns the running incarnation of id, nil if it is down.
func (c *linCluster) server(id string) *linServer {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.servers[id]
}

// down lists the servers that are not running.
func (c *linCluster) down() []string {
	var out []string
	for _, id := range c.ids {
		if c.server(id) == nil {
			out = append(out, id)
		}
	}
	return out
}

// leaders lists the running servers that believe they lead: during a
// partition a deposed leader may still be among them, which is the point.
func (c *linCluster) leaders() []*linServer {
	var out []*linServer
	for _, id := range c.ids {
		if s := c.server(id); s != nil && s.node.State() == Leader {
			out = append(out, s)
		}
	}
	return out
}

// newestLeader is the self-believed leader of the highest term, "" if none.
func (c *linCluster) newestLeader() string {
	var best *linServer
	for _, s := range c.leaders() {
		if best == nil || s.node.Term() > best.node.Term() {
			best = s
		}
	}
	if best == nil {
		return ""
	}
	return best.id
}

// awaitLeader returns a random self-believed leader, waiting up to d for
// an election to produce one; nil if none appears.
func (c *linCluster) awaitLeader(rng *rand.Rand, d time.Duration) *linServer {
	var ls []*linServer
	testkit.Poll(d, func() error {
		if ls = c.leaders(); len(ls) == 0 {
			return errors.New("no leader")
		}
		return nil
	})
	if len(ls) == 0 {
		return nil
	}
	return ls[rng.IntN(len(ls))]
}

// leaderOf waits for a leader among ids that all of them follow.
func (c *linCluster) leaderOf(ids ...string) *linServer {
	c.t.Helper()
	var l *linServer
	testkit.WaitFor(c.t, 10*time.Second, fmt.Sprintf("a leader of %v", ids), func() error {
		l = nil
		for _, id := range ids {
			if s := c.server(id); s != nil && s.node.State() == Leader && (l == nil || s.node.Term() > l.node.Term()) {
				l = s
			}
		}
		if l == nil {
			return errors.New("no leader")
		}
		for _, id := range ids {
			if s := c.server(id); s != nil {
				if _, lid := s.node.Leader(); lid != l.id {
					return fmt.Errorf("%s follows %q, not %s", id, lid, l.id)
				}
			}
		}
		return nil
	})
	return l
}
