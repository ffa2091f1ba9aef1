package raft

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"roster/internal/testkit"
)

// BenchmarkFailover_MemNetwork measures time from a leader crash to a new
// stable leader over 200 trials in virtual time on the simulated network:
// 5 servers, 1 ms ticks, 150–300 ms election timeouts, 15 ms heartbeats,
// 0–1 ms latency, pre-vote and check-quorum on. (Raft paper §9.3:
// 287 ms median / 513 ms worst for the same timeout range.)
func BenchmarkFailover_MemNetwork(b *testing.B) {
	const trials = 200
	var all []time.Duration
	for i := 0; b.Loop(); i++ {
		for trial := range trials {
			all = append(all, failoverTrial(b, uint64(i*trials+trial+1)))
		}
	}
	reportDurations(b, all)
}

func failoverTrial(b testing.TB, seed uint64) time.Duration {
	cfg := defaultSimConfig()
	cfg.HeartbeatTicks = 15
	s := newSim(b, seed, cfg, "n1", "n2", "n3", "n4", "n5")
	if !s.run(10000, func() bool { return s.stableLeader() != "" }) {
		b.Fatalf("seed %d: no initial leader", seed)
	}
	// Crash at a random phase of the heartbeat cycle, after a settling period.
	rng := rand.New(rand.NewPCG(seed, 5))
	s.run(500+rng.IntN(cfg.HeartbeatTicks), func() bool { return false })
	old := s.leader()
	s.crash(old)
	start := s.now
	if !s.run(10000, func() bool { l := s.stableLeader(); return l != "" && l != old }) {
		b.Fatalf("seed %d: no new leader within 10 s of virtual time", seed)
	}
	return time.Duration(s.now-start) * simTick
}

func reportDurations(b *testing.B, ds []time.Duration) {
	if len(ds) == 0 {
		return
	}
	slices.Sort(ds)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(ms(ds[len(ds)/2]), "median-ms")
	b.ReportMetric(ms(ds[len(ds)*99/100]), "p99-ms")
	b.ReportMetric(ms(ds[len(ds)-1]), "worst-ms")
	b.ReportMetric(float64(len(ds)), "trials")
}

// BenchmarkFailover_Loopback measures leader replacement on real sockets
// with the shipped defaults (DefaultConfig: 50 ms heartbeats, 300–600 ms
// election timeouts): 3 servers, bbolt, net/rpc on 127.0.0.1. Each trial
// stops the leader and times until another server leads, then restarts it.
func BenchmarkFailover_Loopback(b *testing.B) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg := Config{Logger: quiet}
	c := newSocketCluster(b, 3, cfg)
	var all []time.Duration
	for b.Loop() {
		for range 20 {
			old := c.leader()
			waitStable(b, c)
			c.stop(old)
			start := time.Now()
			var took time.Duration
			testkit.WaitFor(b, 10*time.Second, "new leader", func() error {
				for _, id := range c.ids {
					if n := c.nodes[id]; n != nil && n.State() == Leader {
						took = time.Since(start)
						return nil
					}
				}
				return errors.New("none")
			})
			all = append(all, took)
			c.start(old, nil)
		}
	}
	reportDurations(b, all)
}

// waitStable waits until every live server follows the same leader.
func waitStable(b testing.TB, c *socketCluster) {
	testkit.WaitFor(b, 10*time.Second, "stable leadership", func() error {
		var leader string
		for _, id := range c.ids {
			n := c.nodes[id]
			if n == nil {
				return errors.New("a server is down")
			}
			_, lid := n.Leader()
			if lid == "" || (leader != "" && lid != leader) {
				return fmt.Errorf("%s follows %q", id, lid)
			}
			leader = lid
		}
		return nil
	})
}

// BenchmarkApply_Loopback measures Apply throughput and latency: 3 servers
// on 127.0.0.1, bbolt on disk with fsync, 100-byte commands, with 1 and 64
// concurrent appliers.
func BenchmarkApply_Loopback(b *testing.B) {
	for _, appliers := range []int{1, 64} {
		b.Run(fmt.Sprintf("appliers=%d", appliers), func(b *testing.B) {
			quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
			c := newSocketCluster(b, 3, Config{Logger: quiet})
			l := c.leader()
			waitStable(b, c)
			node := c.nodes[l]
			cmd := make([]byte, 100)
			var mu sync.Mutex
			var lat []time.Duration
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			per := (b.N + appliers - 1) / appliers
			for range appliers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					mine := make([]time.Duration, 0, per)
					for range per {
						t0 := time.Now()
						if err := c.applyRetry(node, cmd); err != nil {
							b.Error(err)
							return
						}
						mine = append(mine, time.Since(t0))
					}
					mu.Lock()
					lat = append(lat, mine...)
					mu.Unlock()
				}()
			}
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			slices.Sort(lat)
			if len(lat) == 0 {
				return
			}
			b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "ops/s")
			b.ReportMetric(float64(lat[len(lat)/2])/1e6, "p50-ms")
			b.ReportMetric(float64(lat[len(lat)*99/100])/1e6, "p99-ms")
		})
	}
}

// BenchmarkReadIndex_Loopback measures linearizable reads through
// ReadIndex on the leader (no log write, no fsync), 64 concurrent readers.
func BenchmarkReadIndex_Loopback(b *testing.B) {
	const readers = 64
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	c := newSocketCluster(b, 3, Config{Logger: quiet})
	l := c.leader()
	waitStable(b, c)
	node := c.nodes[l]
	var mu sync.Mutex
	var lat []time.Duration
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	per := (b.N + readers - 1) / readers
	for range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mine := make([]time.Duration, 0, per)
			for range per {
				t0 := time.Now()
				if err := c.readRetry(node); err != nil {
					b.Error(err)
					return
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	slices.Sort(lat)
	if len(lat) > 0 {
		b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "ops/s")
		b.ReportMetric(float64(lat[len(lat)/2])/1e6, "p50-ms")
		b.ReportMetric(float64(lat[len(lat)*99/100])/1e6, "p99-ms")
	}
}

// applyRetry applies through node, following leader changes (a loaded
// machine can delay heartbeats past an election timeout): the benchmark
// measures the cluster, and a failover is part of its latency.
func (c *socketCluster) applyRetry(node *Node, cmd []byte) error {
	return c.retry(node, func(n *Node) error { return n.Apply(cmd, 5*time.Second).Error() })
}

func (c *socketCluster) readRetry(node *Node) error {
	return c.retry(node, func(n *Node) error { _, err := n.ReadIndex(5 * time.Second); return err })
}

func (c *socketCluster) retry(node *Node, op func(*Node) error) error {
	var err error
	for range 100 {
		if err = op(node); err == nil || !(errors.Is(err, ErrNotLeader) || errors.Is(err, ErrLeadershipLost) || errors.Is(err, ErrReadTimeout)) {
			return err
		}
		_ = testkit.Poll(5*time.Second, func() error {
			for _, id := range c.ids {
				if n := c.nodes[id]; n != nil && n.State() == Leader {
					node = n
					return nil
				}
			}
			return errors.New("no leader")
		})
	}
	return err
}

// BenchmarkDevBootstrap measures what -dev does at start: a node on
// in-memory stores bootstraps a one-server cluster and leads. Reported as
// time from NewNode to the first Apply committed and applied.
func BenchmarkDevBootstrap(b *testing.B) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	var all []time.Duration
	for b.Loop() {
		start := time.Now()
		store := NewMemStore()
		net := NewMemNetwork(1)
		n, err := NewNode(Config{ID: "dev", Logger: quiet}, &testFSM{id: "dev", inv: newShellInvariants()}, store, store, net.Transport("dev"))
		if err != nil {
			b.Fatal(err)
		}
		if err := n.BootstrapCluster([]Server{{ID: "dev", Address: "dev"}}); err != nil {
			b.Fatal(err)
		}
		if err := n.Apply([]byte("x"), time.Second).Error(); err != nil {
			b.Fatal(err)
		}
		all = append(all, time.Since(start))
		n.Shutdown()
	}
	slices.Sort(all)
	b.ReportMetric(float64(all[len(all)/2])/1e6, "median-ms")
	b.ReportMetric(float64(all[len(all)-1])/1e6, "worst-ms")
}
