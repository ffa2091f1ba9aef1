package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"roster/catalog"
	"roster/internal/testkit"
	"roster/raft"
	"roster/swim"
)

// The whole-cluster harness: real agents in-process, each with its own
// loopback ports, data dir, Raft on bbolt and gossip on UDP/TCP. Gossip
// and reconcile timers are shortened (through Config) so failures are
// detected in well under a second; Raft keeps its shipped timing.

// syncBuffer collects the agents' logs; the test dumps them on failure.
type syncBuffer struct {
	mu  sync.Mutex // guards buf
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

type testCluster struct {
	t      *testing.T
	logs   *syncBuffer
	cfgs   []Config
	agents []*Agent // nil while stopped
}

// fastGossip makes failure detection take a few hundred milliseconds.
func fastGossip(c *swim.Config, wan bool) {
	c.ProbeInterval = 200 * time.Millisecond
	c.ProbeTimeout = 100 * time.Millisecond
	c.LateAckGrace = 50 * time.Millisecond
	c.GossipInterval = 50 * time.Millisecond
}

// newTestCluster configures n servers with -bootstrap-expect n; servers
// after the first join the first one's LAN port.
func newTestCluster(t *testing.T, n int) *testCluster {
	t.Helper()
	tc := &testCluster{t: t, logs: &syncBuffer{}}
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

func (tc *testCluster) serverConfig(i, expect int) Config {
	cfg := DefaultConfig()
	cfg.NodeName = fmt.Sprintf("s%d", i+1)
	cfg.Server, cfg.BootstrapExpect = true, expect
	cfg.DataDir = tc.t.TempDir()
	cfg.BindAddr = "127.0.0.1"
	p := testkit.FreePorts(tc.t, 5)
	cfg.Ports = Ports{HTTP: p[0], DNS: -1, Server: p[1], SerfLAN: p[2], SerfWAN: p[3]}
	cfg.Version, cfg.Revision = "0.0.0-test", "abc123"
	cfg.RetryJoinInterval = 100 * time.Millisecond
	cfg.ReconcileInterval = time.Second
	cfg.ServerStabilizationTime = 300 * time.Millisecond
	cfg.GossipTuning = fastGossip
	cfg.Logger = slog.New(slog.NewTextHandler(tc.logs, &slog.HandlerOptions{Level: slog.LevelDebug})).With("agent", cfg.NodeName)
	if i > 0 {
		cfg.RetryJoin = []string{net.JoinHostPort("127.0.0.1", strconv.Itoa(tc.cfgs[0].Ports.SerfLAN))}
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

func (tc *testCluster) start(i int) {
	tc.t.Helper()
	a, err := New(tc.cfgs[i])
	if err != nil {
		tc.t.Fatal(err)
	}
	if err := a.Start(context.Background()); err != nil {
		tc.t.Fatalf("starting %s: %v", tc.cfgs[i].NodeName, err)
	}
	tc.agents[i] = a
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

// waitSerfHealth waits until every running agent's catalog has node with
// serfHealth in status.
func (tc *testCluster) waitSerfHealth(node, status string, timeout time.Duration) {
	tc.t.Helper()
	testkit.WaitFor(tc.t, timeout, node+" serfHealth "+status+" everywhere", func() error {
		for _, a := range tc.running() {
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
	tc.startAll()
	l := tc.leader(10 * time.Second)
	for _, cfg := range tc.cfgs {
		tc.waitSerfHealth(cfg.NodeName, catalog.HealthPassing, 10*time.Second)
	}
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
	tc.startAll()
	old := tc.leader(10 * time.Second)
	for _, cfg := range tc.cfgs {
		tc.waitSerfHealth(cfg.NodeName, catalog.HealthPassing, 10*time.Second)
	}
	killedAt := time.Now()
	tc.kill(old)
	next := tc.leader(10 * time.Second)
	t.Logf("new leader %s after %v", tc.cfgs[next].NodeName, time.Since(killedAt).Round(time.Millisecond))
	// The new leader records the crash: the old leader's node turns critical.
	tc.waitSerfHealth(tc.cfgs[old].NodeName, catalog.HealthCritical, 10*time.Second)

	// The restarted server keeps its identity and Raft log, rejoins and
	// catches up on everything it missed.
	tc.cfgs[old].RetryJoin = []string{net.JoinHostPort("127.0.0.1", strconv.Itoa(tc.cfgs[next].Ports.SerfLAN))}
	tc.start(old)
	tc.waitSerfHealth(tc.cfgs[old].NodeName, catalog.HealthPassing, 10*time.Second)
	tc.leader(10 * time.Second)
	tc.waitConverged(10 * time.Second)
}
