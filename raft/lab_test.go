package raft

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// The classic lab-style suite, on real Nodes over the in-memory network.
// Every wait checks the invariants; a failure dumps the event trace.

func TestNode_InitialElection(t *testing.T) {
	c := newCluster(t, 3)
	l := c.leader()
	term := c.node(l).Term()
	// Ten round trips through the log: a healthy cluster keeps its leader.
	for i := range 10 {
		c.applied(c.apply(fmt.Sprint("x", i), 5*time.Second))
	}
	if got := c.node(l).Term(); got != term || c.leader() != l {
		t.Fatalf("leader %s term %d changed to %s term %d without any failure", l, term, c.leader(), got)
	}
}

func TestPartition_ReElectionAfterLeaderLoss(t *testing.T) {
	c := newCluster(t, 3)
	l1 := c.leader()
	c.net.Isolate(l1)
	l2 := c.leader(others(c.ids, l1)...)
	if l2 == l1 {
		t.Fatalf("isolated %s is still the leader", l1)
	}
	c.apply("after-failover", 5*time.Second)
	c.net.Heal()
	l3 := c.leader()
	c.applied(c.apply("after-heal", 5*time.Second))
	t.Logf("leaders: %s -> %s -> %s", l1, l2, l3)
}

func TestPartition_NoLeaderWithoutMajority(t *testing.T) {
	c := newCluster(t, 3)
	l := c.leader()
	for _, id := range others(c.ids, l) {
		c.net.Isolate(id)
	}
	// Check-quorum: the leader, alone, steps down and refuses writes.
	c.waitFor(5*time.Second, "the lone leader to step down", func() error {
		if s := c.node(l).State(); s == Leader {
			return errors.New("still leader")
		}
		return nil
	})
	err := c.node(l).Apply([]byte("nope"), time.Second).Error()
	if !errors.Is(err, ErrNotLeader) {
		t.Fatalf("Apply on a minority: %v, want ErrNotLeader", err)
	}
	for _, id := range c.ids {
		if c.node(id).State() == Leader {
			t.Fatalf("%s leads without a majority", id)
		}
	}
	c.net.Heal()
	c.leader()
	c.applied(c.apply("healed", 5*time.Second))
}

func TestNode_AgreementWithFollowerFailure(t *testing.T) {
	c := newCluster(t, 3)
	l := c.leader()
	f := others(c.ids, l)[0]
	c.crash(f)
	idx := c.apply("while-down", 5*time.Second)
	c.applied(idx, others(c.ids, f)...)
	c.start(f)
	c.applied(c.apply("after-restart", 5*time.Second))
}

func TestNode_ConcurrentStarts(t *testing.T) {
	c := newCluster(t, 3)
	c.leader()
	const clients, each = 8, 20
	var wg sync.WaitGroup
	indexes := make(chan uint64, clients*each)
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range each {
				indexes <- c.apply(fmt.Sprintf("c%d-%d", i, j), 10*time.Second)
			}
		}()
	}
	wg.Wait()
	close(indexes)
	seen, top := map[uint64]bool{}, uint64(0)
	for idx := range indexes {
		if seen[idx] {
			t.Fatalf("index %d acknowledged twice", idx)
		}
		seen[idx], top = true, max(top, idx)
	}
	c.applied(top)
}

func TestPartition_RejoinOfPartitionedLeader(t *testing.T) {
	c := newCluster(t, 3)
	l1 := c.leader()
	c.apply("before", 5*time.Second)
	c.net.Isolate(l1)
	// The old leader accepts commands it can never commit.
	futures := []ApplyFuture{c.node(l1).Apply([]byte("orphan1"), time.Second), c.node(l1).Apply([]byte("orphan2"), time.Second)}
	l2 := c.leader(others(c.ids, l1)...)
	c.apply("new-leader", 5*time.Second)
	c.net.Heal()
	c.leader()
	for _, f := range futures {
		if err := f.Error(); err == nil {
			t.Fatalf("orphaned command was acknowledged at %d", f.Index())
		}
	}
	idx := c.apply("converged", 5*time.Second)
	c.applied(idx)
	for _, cmd := range c.fsm(l1).commands() {
		if cmd == "orphan1" || cmd == "orphan2" {
			t.Fatalf("old leader %s applied its uncommitted %q (new leader %s)", l1, cmd, l2)
		}
	}
}

// Lab 2B "backup": a leader partitioned with one follower appends 50
// uncommitted entries; the majority moves on with 50 of its own; after the
// heal the 50 conflicting entries are repaired quickly (fast back-off).
func TestPartition_BackupOverConflictingEntries(t *testing.T) {
	c := newCluster(t, 5)
	l1 := c.leader()
	c.apply("base", 5*time.Second)
	f1 := others(c.ids, l1)[0]
	minority := []string{l1, f1}
	majority := others(c.ids, l1, f1)
	c.net.Partition(minority, majority)
	for i := range 50 {
		c.node(l1).Apply([]byte(fmt.Sprint("stale", i)), time.Second)
	}
	c.leader(majority...)
	var idx uint64
	for i := range 50 {
		idx = c.apply(fmt.Sprint("fresh", i), 5*time.Second)
	}
	c.net.Heal()
	c.applied(idx)
	for _, id := range c.ids {
		for _, cmd := range c.fsm(id).commands() {
			if len(cmd) > 5 && cmd[:5] == "stale" {
				t.Fatalf("%s applied %q from the partitioned leader", id, cmd)
			}
		}
	}
}

func TestNode_PersistenceAcrossRestarts(t *testing.T) {
	c := newCluster(t, 3)
	l := c.leader()
	idx := c.apply("durable", 5*time.Second)
	c.applied(idx)
	termBefore := c.node(l).Term()
	for _, id := range c.ids {
		c.crash(id)
	}
	for _, id := range c.ids {
		c.start(id)
	}
	c.leader()
	for _, id := range c.ids {
		if c.node(id).Term() < termBefore {
			t.Fatalf("%s restarted in term %d, below %d", id, c.node(id).Term(), termBefore)
		}
	}
	c.applied(c.apply("after-restart", 5*time.Second))
	if cmds := c.fsm(l).commands(); len(cmds) == 0 || cmds[0] != "durable" {
		t.Fatalf("restarted FSM replayed %v, want durable first", cmds)
	}
}

// Lab 2C "Figure 8 (unreliable)": the leader crashes over and over at
// random moments while the network loses, duplicates and reorders
// messages; afterwards everything acknowledged survives.
func TestPartition_Figure8Unreliable(t *testing.T) {
	figure8(t, true)
}

func TestPartition_Figure8Reliable(t *testing.T) {
	figure8(t, false)
}

func figure8(t *testing.T, unreliable bool) {
	c := newCluster(t, 5)
	rng := testRandFromCluster(c)
	if unreliable {
		c.net.Drop("*", "*", 0.1)
		c.net.Duplicate(0.05)
		c.net.Reorder(0.2)
	}
	up := len(c.ids)
	for round := range 12 {
		for _, id := range c.ids {
			if n := c.node(id); n != nil && n.State() == Leader {
				n.Apply([]byte(fmt.Sprint("r", round)), 100*time.Millisecond)
				if rng.IntN(2) == 0 {
					c.crash(id)
					up--
				}
				break
			}
		}
		waitTicks(c, 5+rng.IntN(30))
		if up < 3 {
			for _, id := range c.ids {
				if c.node(id) == nil {
					c.start(id)
					up++
					break
				}
			}
		}
	}
	for _, id := range c.ids {
		if c.node(id) == nil {
			c.start(id)
		}
	}
	c.net.Heal()
	c.applied(c.apply("final", 10*time.Second))
}

// waitTicks lets the cluster run for about k ticks, by waiting for k
// ticker periods' worth of a node's progress rather than sleeping blindly.
func waitTicks(c *cluster, k int) {
	deadline := time.Now().Add(time.Duration(k) * c.cfg.TickInterval)
	_ = pollUntil(deadline)
}

func TestPartition_UnreliableChurn(t *testing.T) {
	c := newCluster(t, 5)
	rng := testRandFromCluster(c)
	c.net.Drop("*", "*", 0.1)
	c.net.Reorder(0.2)
	c.net.Duplicate(0.05)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; ; j++ {
				select {
				case <-stop:
					return
				default:
				}
				for _, id := range c.ids {
					if n := c.node(id); n != nil && n.State() == Leader {
						cmd := fmt.Sprintf("w%d-%d", i, j)
						if f := n.Apply([]byte(cmd), 100*time.Millisecond); f.Error() == nil {
							c.inv.ack(f.Index(), cmd)
						}
						break
					}
				}
				waitTicks(c, 1)
			}
		}()
	}
	for range 15 {
		id := c.ids[rng.IntN(len(c.ids))]
		if c.node(id) != nil && rng.IntN(2) == 0 {
			c.crash(id)
		} else if c.node(id) == nil {
			c.start(id)
		}
		waitTicks(c, 10+rng.IntN(40))
	}
	close(stop)
	wg.Wait()
	for _, id := range c.ids {
		if c.node(id) == nil {
			c.start(id)
		}
	}
	c.net.Heal()
	c.applied(c.apply("final", 10*time.Second))
}
