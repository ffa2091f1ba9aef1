package raft

import (
	"errors"
	"math/rand/v2"
	"testing"
	"time"
)

func leaseCore(t *testing.T, id string) *Core {
	t.Helper()
	cfg := CoreConfig{ID: id, ElectionTicks: 10, HeartbeatTicks: 1, CheckQuorum: true, LeaseTicks: 8,
		MaxEntriesPerMsg: 100, MaxInflight: 8}
	c, err := NewCore(cfg, HardState{Term: 1}, []Entry{confEntry("a", "b", "c")}, rand.New(rand.NewPCG(1, 2)))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// leaseLeader is a leader of a, b, c that committed its no-op and holds a
// lease: b acknowledged a heartbeat round sent at its latest tick.
func leaseLeader(t *testing.T) *Core {
	t.Helper()
	c := leaseCore(t, "a")
	c.Campaign()
	c.Step(Message{Type: MsgVoteResp, From: "b", Term: 2})
	c.Step(Message{Type: MsgAppResp, From: "b", Term: 2, Index: 2})
	c.Ready()
	c.Tick() // heartbeat: a new round
	hb := msgsOfType(c.Ready(), MsgHeartbeat)
	if c.State() != Leader || c.CommitIndex() != 2 || len(hb) != 2 {
		t.Fatalf("setup: %s, heartbeats %+v", c, hb)
	}
	c.Step(Message{Type: MsgHeartbeatResp, From: "b", Term: 2, Context: hb[0].Context})
	c.Ready()
	return c
}

// Thesis §6.4.1: while a majority's acknowledgement is younger than the
// lease, a read needs no heartbeat round; once it is older, it does.
func TestCore_Lease_ReadsWithoutRoundUntilLeaseEnds(t *testing.T) {
	c := leaseLeader(t)
	c.ReadIndex(1)
	rd := c.Ready()
	if len(rd.ReadStates) != 1 || rd.ReadStates[0] != (ReadState{ID: 1, Index: 2}) || len(msgsOfType(rd, MsgHeartbeat)) != 0 {
		t.Fatalf("read under lease: states %+v, messages %+v; want answered at once", rd.ReadStates, rd.Messages)
	}
	for range 8 { // heartbeats go out, nobody answers
		c.Tick()
	}
	c.Ready()
	c.ReadIndex(2)
	if rd := c.Ready(); len(rd.ReadStates) != 0 || len(msgsOfType(rd, MsgHeartbeat)) != 2 {
		t.Fatalf("read after the lease ended: states %+v; want a heartbeat round", rd.ReadStates)
	}
}

// A transfer waives followers' stickiness (TimeoutNow), so the leader gives
// up its lease for the rest of its term.
func TestCore_Lease_TransferRevokesLease(t *testing.T) {
	c := leaseLeader(t)
	if err := c.TransferLeadership("b"); err != nil {
		t.Fatal(err)
	}
	c.Ready()
	c.ReadIndex(1)
	if rd := c.Ready(); len(rd.ReadStates) != 0 {
		t.Fatalf("read answered from a lease during a transfer: %+v", rd.ReadStates)
	}
}

// With leases on, a server that just started refuses votes for an election
// timeout: it may have heard from the leader just before it restarted.
func TestCore_Lease_RestartedServerRefusesVotesAtFirst(t *testing.T) {
	c := leaseCore(t, "b")
	c.Step(Message{Type: MsgVote, From: "c", Term: 5, Index: 9, LogTerm: 4})
	if rd := c.Ready(); len(rd.Messages) != 1 || !rd.Messages[0].Reject || c.Term() != 1 {
		t.Fatalf("vote at startup: %+v term %d; want refused without a term change", rd.Messages, c.Term())
	}
	for range 10 { // it may campaign itself meanwhile: no leader, no stickiness
		c.Tick()
	}
	c.Ready()
	c.Step(Message{Type: MsgVote, From: "c", Term: 5, Index: 9, LogTerm: 4})
	if resp := msgsOfType(c.Ready(), MsgVoteResp); len(resp) != 1 || resp[0].Reject {
		t.Fatalf("vote after an election timeout: %+v; want granted", resp)
	}
}

func TestConfig_LeaseReadsNeedCheckQuorum(t *testing.T) {
	cfg := Config{ID: "a", LeaseReads: true, DisableCheckQuorum: true}
	if err := cfg.Validate(); err == nil {
		t.Fatal("LeaseReads without check-quorum validated")
	}
	cfg = DefaultConfig("a")
	cfg.LeaseReads = true
	if err := cfg.Validate(); err != nil || cfg.coreConfig().LeaseTicks != 26 {
		t.Fatalf("default lease: %v, %d ticks; want 26 (300 ms less 10%% and a tick)", err, cfg.coreConfig().LeaseTicks)
	}
	if got := DefaultConfig("a").coreConfig().LeaseTicks; got != 0 {
		t.Fatalf("leases on by default (%d ticks)", got)
	}
}

// On real nodes, a lease read after a write sees the write.
func TestLease_ShellReadSeesAcknowledgedWrite(t *testing.T) {
	cfg := labConfig()
	cfg.LeaseReads = true
	c := newClusterWith(t, 3, cfg, nil)
	defer c.shutdown()
	l := c.leader()
	idx := c.apply("x", 5*time.Second)
	for range 20 {
		got, err := c.node(l).ReadIndex(2 * time.Second)
		if errors.Is(err, ErrNotLeader) || errors.Is(err, ErrLeadershipLost) {
			break // leadership moved on a loaded machine; nothing to check
		}
		if err != nil || got < idx || c.node(l).AppliedIndex() < idx {
			t.Fatalf("lease read = %d, %v (applied %d); want >= %d", got, err, c.node(l).AppliedIndex(), idx)
		}
	}
}
