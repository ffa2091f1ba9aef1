package raft

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// asyncLeader is a leader of a, b, c whose shell writes in the background.
func asyncLeader(t *testing.T) *Core {
	t.Helper()
	cfg := CoreConfig{ID: "a", ElectionTicks: 10, HeartbeatTicks: 1, MaxEntriesPerMsg: 100, MaxInflight: 8, AsyncStorage: true}
	c, err := NewCore(cfg, HardState{Term: 1}, []Entry{confEntry("a", "b", "c")}, rand.New(rand.NewPCG(1, 2)))
	if err != nil {
		t.Fatal(err)
	}
	c.Campaign()
	c.Step(Message{Type: MsgVoteResp, From: "b", Term: 2})
	if c.State() != Leader {
		t.Fatalf("%s, want leader", c)
	}
	return c
}

// Thesis §10.2.1: the leader sends entries before its own write is durable
// and counts its own copy only once Persisted says so; until then one
// follower is not a quorum.
func TestCore_AsyncStorage_LeaderCountsItselfOnlyWhenDurable(t *testing.T) {
	c := asyncLeader(t)
	rd := c.Ready() // no-op at 2, sent to b and c while it is being written
	if len(rd.Entries) != 1 || len(msgsOfType(rd, MsgApp)) != 2 {
		t.Fatalf("ready = %+v, want the no-op to persist and two MsgApps", rd)
	}
	c.Step(Message{Type: MsgAppResp, From: "b", Term: 2, Index: 2})
	if c.CommitIndex() != 0 {
		t.Fatalf("committed %d with only b durable", c.CommitIndex())
	}
	c.Persisted(2, 2)
	if c.CommitIndex() != 2 {
		t.Fatalf("commit = %d after our own write landed, want 2", c.CommitIndex())
	}
	if rd := c.Ready(); len(rd.Committed) != 2 {
		t.Fatalf("committed handed out = %+v, want entries 1-2", rd.Committed)
	}
}

// Two durable followers are a majority without the leader's disk: the
// entry commits and is applied while the leader's own write is in flight
// (thesis §10.2.1).
func TestCore_AsyncStorage_FollowersCommitWithoutLeaderDisk(t *testing.T) {
	c := asyncLeader(t)
	c.Ready()
	c.Step(Message{Type: MsgAppResp, From: "b", Term: 2, Index: 2})
	c.Step(Message{Type: MsgAppResp, From: "c", Term: 2, Index: 2})
	if c.CommitIndex() != 2 {
		t.Fatalf("commit = %d, want 2 (b and c are a majority)", c.CommitIndex())
	}
	if rd := c.Ready(); len(rd.Committed) != 2 {
		t.Fatalf("handed out %d entries, want 2", len(rd.Committed))
	}
}

// A write report about entries a follower has since overwritten must not
// count them as durable.
func TestCore_AsyncStorage_StaleReportAfterTruncationIgnored(t *testing.T) {
	cfg := CoreConfig{ID: "b", ElectionTicks: 10, HeartbeatTicks: 1, MaxEntriesPerMsg: 100, MaxInflight: 8, AsyncStorage: true}
	c, err := NewCore(cfg, HardState{Term: 1}, []Entry{confEntry("a", "b", "c")}, rand.New(rand.NewPCG(1, 2)))
	if err != nil {
		t.Fatal(err)
	}
	c.Step(Message{Type: MsgApp, From: "a", Term: 2, Index: 1, LogTerm: 1, Entries: []Entry{{Index: 2, Term: 2}, {Index: 3, Term: 2}}})
	c.Ready()
	// A new leader of term 3 overwrites 3 before the first write landed.
	c.Step(Message{Type: MsgApp, From: "c", Term: 3, Index: 2, LogTerm: 2, Entries: []Entry{{Index: 3, Term: 3}}, Commit: 3})
	c.Ready()
	c.Persisted(3, 2) // the first write: entry 3 of term 2, since replaced
	if got := c.durableIndex(); got != 1 {
		t.Fatalf("durable = %d after a stale report, want 1", got)
	}
	c.Persisted(3, 3)
	if got := c.durableIndex(); got != 3 {
		t.Fatalf("durable = %d, want 3", got)
	}
}

// Writes queued together merge with StoreLogs' replace-the-suffix rule.
func TestDiskWriter_MergeEntries(t *testing.T) {
	e := func(i, t uint64) Entry { return Entry{Index: i, Term: t} }
	run := mergeEntries(nil, []Entry{e(5, 1), e(6, 1), e(7, 1)})
	run = mergeEntries(run, []Entry{e(8, 1)})
	run = mergeEntries(run, []Entry{e(7, 2), e(8, 2)})
	want := []Entry{e(5, 1), e(6, 1), e(7, 2), e(8, 2)}
	if len(run) != len(want) {
		t.Fatalf("merged %+v, want %+v", run, want)
	}
	for i := range want {
		if run[i].Index != want[i].Index || run[i].Term != want[i].Term {
			t.Fatalf("merged %+v, want %+v", run, want)
		}
	}
	if run = mergeEntries(run, []Entry{e(3, 3)}); len(run) != 1 || run[0].Index != 3 {
		t.Fatalf("a write from before the run must replace it: %+v", run)
	}
}

// Thesis §10.2.1: a leader may commit through its followers before its own
// write lands. Writes acknowledged that way must survive losing the leader
// while its write is still in flight: the next leader's stored log holds
// them all (the cluster's invariants check every new leader's store).
func TestPartition_AckedBeforeLeaderWriteSurviveLeaderLoss(t *testing.T) {
	c := newCluster(t, 3)
	defer c.shutdown()
	l := c.leader()
	// The invariants check a new leader's store when its event is
	// observed; let that happen before its store starts lagging on purpose.
	term := c.node(l).Term()
	c.waitFor(5*time.Second, "leadership observed", func() error {
		c.inv.mu.Lock()
		defer c.inv.mu.Unlock()
		if c.inv.leaders[term] != l {
			return fmt.Errorf("observed leader of term %d: %q", term, c.inv.leaders[term])
		}
		return nil
	})
	resume := c.stores[l].Stall()
	defer resume()
	var top uint64
	for i := range 20 {
		cmd := fmt.Sprint("w", i)
		f := c.node(l).Apply([]byte(cmd), time.Second)
		if err := waitFuture(f, 5*time.Second); err != nil {
			t.Fatalf("apply %s with the leader's disk stalled: %v", cmd, err)
		}
		c.inv.ack(f.Index(), cmd)
		top = f.Index()
	}
	if last, _ := c.stores[l].LastIndex(); last >= top {
		t.Fatalf("leader's store holds %d, want < %d: the writes were not acknowledged ahead of its disk", last, top)
	}
	c.net.Isolate(l)
	c.leader(others(c.ids, l)...)
	c.applied(top, others(c.ids, l)...)
	c.net.Heal()
	resume()
	c.applied(top)
}
