package raft

import (
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"
)

// Regression scenarios for failures seen in widely used Raft libraries.

// A follower whose log holds 60 entries from a term the cluster never
// committed rejects every AppendEntries at first. Replication must not
// stop silently while heartbeats keep it "healthy": the leader probes back
// past the conflict and repairs the follower.
func TestPartition_FollowerRejectingAppendsIsRepaired(t *testing.T) {
	cfg := labConfig()
	c := newClusterWith(t, 3, cfg, func(id string, s *MemStore) {
		if id != "n3" {
			return
		}
		var ghost []Entry
		for i := uint64(2); i <= 61; i++ {
			ghost = append(ghost, Entry{Index: i, Term: 5, Type: EntryCommand, Data: []byte(fmt.Sprint("ghost", i))})
		}
		s.StoreLogsAndState(ghost, keyHardState, encodeHardState(HardState{Term: 5, Vote: "ghost"}))
	})
	// n3's log is the most up-to-date, so it could legitimately win and
	// commit the ghost entries; keep it from campaigning so that the point
	// of the test — repairing a rejecting follower — is what happens.
	c.crash("n3")
	cfg.ElectionTimeout = time.Hour
	c.cfg = cfg
	c.start("n3")
	c.cfg = labConfig()
	c.leader("n1", "n2")
	idx := c.apply("after-repair", 10*time.Second)
	c.applied(idx)
	for _, cmd := range c.fsm("n3").commands() {
		if len(cmd) > 5 && cmd[:5] == "ghost" {
			t.Fatalf("n3 applied its uncommitted %q", cmd)
		}
	}
}

// A leader whose disk hangs stops persisting, hence stops heartbeating;
// the others must elect a new leader instead of waiting for it forever,
// and the old leader rejoins once its disk recovers.
func TestPartition_LeaderDiskStallDoesNotBlockElection(t *testing.T) {
	c := newCluster(t, 3)
	l1 := c.leader()
	resume := c.stores[l1].Stall()
	defer resume()
	stuck := c.node(l1).Apply([]byte("stuck"), time.Second) // the write that hangs
	l2 := c.leader(others(c.ids, l1)...)
	idx := c.apply("while-stalled", 5*time.Second)
	resume()
	c.applied(idx)
	if l2 == l1 {
		t.Fatal("stalled leader still leads")
	}
	if err := stuck.Error(); err == nil {
		// It may legitimately commit if it reached a follower before the
		// stall; then it must be applied everywhere, which applied(idx)
		// above already implies for every index <= idx.
		t.Logf("stalled command committed at %d", stuck.Index())
	}
}

// Pre-vote must never leave the cluster leaderless after a partition heals
// (a pre-candidate that cannot win must not block others). Several
// partition shapes in a row, each healed.
func TestPartition_PreVoteNeverLeavesClusterLeaderless(t *testing.T) {
	c := newCluster(t, 5)
	c.leader()
	shapes := [][][]string{
		{{"n1", "n2"}, {"n3", "n4", "n5"}},
		{{"n1"}, {"n2"}, {"n3", "n4", "n5"}},
		{{"n1", "n2", "n3"}, {"n4", "n5"}},
		{{"n1", "n2"}, {"n3", "n4"}, {"n5"}},
	}
	for i, shape := range shapes {
		c.net.Partition(shape...)
		waitTicks(c, 2*int(c.cfg.ElectionTimeout/c.cfg.TickInterval))
		c.net.Heal()
		c.leader()
		c.applied(c.apply(fmt.Sprint("after-shape", i), 5*time.Second))
	}
}

// A server that was partitioned away for many election timeouts rejoins
// without disturbing the stable cluster: pre-vote kept its term from
// growing, and check-quorum's lease makes the others ignore it.
func TestPartition_RejoiningNodeDoesNotDisrupt(t *testing.T) {
	c := newCluster(t, 3)
	l := c.leader()
	term := c.node(l).Term()
	f := others(c.ids, l)[0]
	obs := c.node(l).Subscribe(1024)
	defer obs.Close()
	c.net.Isolate(f)
	waitTicks(c, 10*int(c.cfg.ElectionTimeout/c.cfg.TickInterval))
	if got := c.node(f).Term(); got != term {
		t.Fatalf("isolated %s moved from term %d to %d despite pre-vote", f, term, got)
	}
	c.net.Heal()
	c.applied(c.apply("after-rejoin", 5*time.Second))
	if c.leader() != l || c.node(l).Term() != term {
		t.Fatalf("rejoin disrupted the cluster: leader %s term %d, was %s term %d", c.leader(), c.node(c.leader()).Term(), l, term)
	}
	for {
		select {
		case e := <-obs.C:
			if e.Type == EventStepDown || e.Type == EventTermChanged {
				t.Fatalf("leader saw %s after the rejoin", e)
			}
			continue
		default:
		}
		break
	}
}

// A server with no state cannot campaign; BootstrapCluster on it works once
// and is refused afterwards; a single voter leads at once.
func TestNode_BootstrapSingleNode(t *testing.T) {
	net := NewMemNetwork(1)
	store := NewMemStore()
	cfg := labConfig()
	cfg.ID = "solo"
	n, err := NewNode(cfg, &testFSM{id: "solo", inv: newShellInvariants()}, store, store, net.Transport("solo"))
	if err != nil {
		t.Fatal(err)
	}
	defer n.Shutdown()
	if n.HasExistingState() {
		t.Fatal("fresh node reports existing state")
	}
	start := time.Now()
	if err := n.BootstrapCluster([]Server{{ID: "solo", Address: "solo"}}); err != nil {
		t.Fatal(err)
	}
	if n.State() != Leader {
		t.Fatalf("single voter is %s right after bootstrap, want Leader", n.State())
	}
	t.Logf("leader %v after bootstrap", time.Since(start))
	if err := n.BootstrapCluster([]Server{{ID: "solo", Address: "solo"}}); !errors.Is(err, ErrCantBootstrap) {
		t.Fatalf("second bootstrap: %v, want ErrCantBootstrap", err)
	}
	f := n.Apply([]byte("one"), time.Second)
	if err := f.Error(); err != nil || f.Response() != f.Index() {
		t.Fatalf("apply: %v resp=%v index=%d", err, f.Response(), f.Index())
	}
	if err := n.Barrier(time.Second).Error(); err != nil {
		t.Fatal(err)
	}
	st := n.Stats()
	for _, k := range []string{"state", "term", "commit_index", "applied_index", "last_log_index", "last_log_term", "num_peers", "last_contact"} {
		if st[k] == "" {
			t.Errorf("Stats()[%q] missing", k)
		}
	}
	if st["state"] != "Leader" || st["num_peers"] != "0" || st["last_contact"] != "0" {
		t.Errorf("stats = %v", st)
	}
	// After a write, the latency averages say where its time went.
	for _, k := range []string{"disk_write_us", "apply_latency_us"} {
		if us, err := strconv.ParseUint(st[k], 10, 64); err != nil || us == 0 {
			t.Errorf("Stats()[%q] = %q after a write, want a positive number of µs", k, st[k])
		}
	}
}

// A follower answers Apply with the leader's identity so callers can forward.
func TestNode_ApplyOnFollowerNamesLeader(t *testing.T) {
	c := newCluster(t, 3)
	l := c.leader()
	f := others(c.ids, l)[0]
	err := c.node(f).Apply([]byte("x"), time.Second).Error()
	var nle *NotLeaderError
	if !errors.As(err, &nle) || nle.LeaderID != l || nle.LeaderAddress != l {
		t.Fatalf("Apply on follower: %v, want NotLeaderError naming %s", err, l)
	}
	if !c.node(f).LastContact().After(time.Now().Add(-time.Second)) {
		t.Fatalf("follower LastContact %v is stale", c.node(f).LastContact())
	}
}
