package raft

import "testing"

func snapMsg(from string, term, index, snapTerm uint64, conf Configuration) Message {
	return Message{Type: MsgSnap, From: from, To: "a", Term: term,
		Snapshot: &SnapshotMeta{Index: index, Term: snapTerm, Configuration: conf, ConfigurationIndex: 1}}
}

// Raft §7 on a follower whose uncommitted suffix diverges from the
// leader's: the snapshot replaces the whole log, and the same snapshot
// delivered again (a retry after a lost answer) is acknowledged without
// being installed twice, so the leader always makes progress.
func TestCore_Snapshot_ReplacesDivergentLogAndRepeatsIdempotently(t *testing.T) {
	conf := confEntry("a", "b", "c")
	c := testCore(t, "a", HardState{Term: 2}, []Entry{conf,
		{Index: 2, Term: 1, Type: EntryCommand}, {Index: 3, Term: 2, Type: EntryCommand},
		{Index: 4, Term: 2, Type: EntryCommand}, {Index: 5, Term: 2, Type: EntryCommand}}, "b", "c")
	cfg, _ := decodeConfiguration(conf.Data)
	for round := range 3 {
		if err := c.Step(snapMsg("b", 3, 4, 3, cfg)); err != nil {
			t.Fatal(err)
		}
		rd := c.Ready()
		if (rd.Snapshot != nil) != (round == 0) {
			t.Fatalf("round %d: Ready.Snapshot = %+v, want it only the first time", round, rd.Snapshot)
		}
		resp := msgsOfType(rd, MsgSnapResp)
		if len(resp) != 1 || resp[0].Reject || resp[0].Index != 4 {
			t.Fatalf("round %d: responses %v, want one SnapResp idx=4", round, rd.Messages)
		}
		if c.FirstIndex() != 5 || c.LastIndex() != 4 || c.CommitIndex() != 4 || len(rd.Committed) != 0 {
			t.Fatalf("round %d: log [%d,%d] commit %d committed %d, want empty log after 4, commit 4",
				round, c.FirstIndex(), c.LastIndex(), c.CommitIndex(), len(rd.Committed))
		}
	}
	if got := c.Status().Config; len(got.Servers) != 3 {
		t.Fatalf("configuration after install = %+v, want the snapshot's", got)
	}
	// The log continues from the snapshot.
	c.Step(Message{Type: MsgApp, From: "b", To: "a", Term: 3, Index: 4, LogTerm: 3, Commit: 5,
		Entries: []Entry{{Index: 5, Term: 3, Type: EntryCommand}}})
	rd := c.Ready()
	if r := msgsOfType(rd, MsgAppResp); len(r) != 1 || r[0].Reject || r[0].Index != 5 || len(rd.Committed) != 1 {
		t.Fatalf("App after snapshot: %v committed %v", rd.Messages, rd.Committed)
	}
}

// A snapshot that is a prefix of the follower's log only advances commit:
// entries after it are kept.
func TestCore_Snapshot_PrefixOfLogKeepsEntries(t *testing.T) {
	conf := confEntry("a", "b")
	c := testCore(t, "a", HardState{Term: 2}, []Entry{conf,
		{Index: 2, Term: 2, Type: EntryCommand}, {Index: 3, Term: 2, Type: EntryCommand}}, "b")
	cfg, _ := decodeConfiguration(conf.Data)
	c.Step(snapMsg("b", 2, 2, 2, cfg))
	rd := c.Ready()
	if rd.Snapshot != nil || c.LastIndex() != 3 || c.CommitIndex() != 2 {
		t.Fatalf("snapshot %+v, last %d commit %d; want no install, last 3, commit 2", rd.Snapshot, c.LastIndex(), c.CommitIndex())
	}
}

// A leader compacts behind a snapshot and offers it to a follower that
// needs a compacted entry; once acknowledged, replication resumes from the
// log (Raft §7).
func TestCore_Snapshot_LeaderSendsSnapshotToLaggingFollower(t *testing.T) {
	c := testCore(t, "a", HardState{}, nil, "b", "c")
	c.Campaign()
	c.Step(Message{Type: MsgVoteResp, From: "b", To: "a", Term: 2})
	if c.State() != Leader {
		t.Fatalf("not leader: %s", c)
	}
	c.Propose(make([]Entry, 10))
	c.Step(Message{Type: MsgAppResp, From: "b", To: "a", Term: 2, Index: c.LastIndex()})
	if c.CommitIndex() != 12 {
		t.Fatalf("commit %d, want 12", c.CommitIndex())
	}
	c.Ready()
	drop := c.SnapshotTaken(SnapshotMeta{Index: 10, Term: 2, Configuration: c.conf.Clone(), ConfigurationIndex: 1}, 2)
	if drop != 8 || c.FirstIndex() != 9 {
		t.Fatalf("SnapshotTaken compacted to %d (first %d), want 8 (first 9)", drop, c.FirstIndex())
	}
	// c never answered; its probe was for prev=1. It rejects with hint 1.
	c.Step(Message{Type: MsgAppResp, From: "c", To: "a", Term: 2, Index: 1, Reject: true, RejectHint: 0})
	rd := c.Ready()
	snaps := msgsOfType(rd, MsgSnap)
	if len(snaps) != 1 || snaps[0].Snapshot.Index != 10 {
		t.Fatalf("messages %v, want a Snap of index 10 to c", rd.Messages)
	}
	// Heartbeat answers while streaming send nothing else.
	c.Step(Message{Type: MsgHeartbeatResp, From: "c", To: "a", Term: 2})
	if rd := c.Ready(); len(msgsOfType(rd, MsgApp)) != 0 {
		t.Fatalf("sent %v while a snapshot is in flight", rd.Messages)
	}
	c.Step(Message{Type: MsgSnapResp, From: "c", To: "a", Term: 2, Index: 10})
	rd = c.Ready()
	apps := msgsOfType(rd, MsgApp)
	if len(apps) != 1 || apps[0].Index != 10 || len(apps[0].Entries) != 2 {
		t.Fatalf("after SnapResp: %v, want App prev=10 with entries 11-12", rd.Messages)
	}
	// A failed transfer goes back to probing, and the next heartbeat
	// answer offers the snapshot again.
	c.progress["c"].becomeSnapshot(10)
	c.ReportSnapshot("c", true)
	c.progress["c"].match, c.progress["c"].next = 0, 1
	c.Step(Message{Type: MsgHeartbeatResp, From: "c", To: "a", Term: 2})
	if rd := c.Ready(); len(msgsOfType(rd, MsgSnap)) != 1 {
		t.Fatalf("after a failed transfer: %v, want the snapshot offered again", rd.Messages)
	}
}

// A crash after a received snapshot became durable but before the
// sender's term was: the core adopts the snapshot's term on restart
// instead of refusing to start, and persists it.
func TestCore_Snapshot_RestartAdoptsSnapshotTerm(t *testing.T) {
	cfg := CoreConfig{ID: "a", ElectionTicks: 10, HeartbeatTicks: 1, MaxEntriesPerMsg: 10, MaxInflight: 2}
	snap := SnapshotMeta{Index: 50, Term: 4, Configuration: Configuration{Servers: []Server{{ID: "a", Address: "a"}, {ID: "b", Address: "b"}}}}
	c, err := NewCoreFromSnapshot(cfg, HardState{Term: 2, Vote: "b"}, snap, nil, testRand(1))
	if err != nil {
		t.Fatal(err)
	}
	rd := c.Ready()
	if c.Term() != 4 || !rd.HardStateSet || rd.HardState.Term != 4 || rd.HardState.Vote != "" {
		t.Fatalf("term %d, ready %+v; want term 4 persisted with no vote", c.Term(), rd.HardState)
	}
	if c.CommitIndex() != 50 || c.LastIndex() != 50 || len(c.Status().Config.Servers) != 2 {
		t.Fatalf("commit %d last %d conf %+v; want the snapshot's", c.CommitIndex(), c.LastIndex(), c.Status().Config)
	}
}
