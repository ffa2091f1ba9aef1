package raft

import (
	"math/rand/v2"
	"testing"
)

// Unit tests of the core, one paper rule each, driven message by message.

func testCore(t *testing.T, id string, hs HardState, entries []Entry, peers ...string) *Core {
	t.Helper()
	conf := Configuration{Servers: []Server{{ID: id, Address: id}}}
	for _, p := range peers {
		conf.Servers = append(conf.Servers, Server{ID: p, Address: p})
	}
	if len(entries) == 0 {
		entries = []Entry{{Index: 1, Term: 1, Type: EntryConfiguration, Data: encodeConfiguration(conf)}}
	}
	if hs.Term == 0 {
		hs.Term = entries[len(entries)-1].Term
	}
	cfg := CoreConfig{ID: id, ElectionTicks: 10, HeartbeatTicks: 1, MaxEntriesPerMsg: 100, MaxInflight: 8}
	c, err := NewCore(cfg, hs, entries, rand.New(rand.NewPCG(1, 2)))
	if err != nil {
		t.Fatal(err)
	}
	c.Ready()
	return c
}

func confEntry(ids ...string) Entry {
	conf := Configuration{}
	for _, id := range ids {
		conf.Servers = append(conf.Servers, Server{ID: id, Address: id})
	}
	return Entry{Index: 1, Term: 1, Type: EntryConfiguration, Data: encodeConfiguration(conf)}
}

func msgsOfType(rd Ready, typ MessageType) []Message {
	var out []Message
	for _, m := range rd.Messages {
		if m.Type == typ {
			out = append(out, m)
		}
	}
	return out
}

// Raft §5.2: a follower that hears nothing for an election timeout becomes
// a candidate, increments its term, votes for itself and asks the others.
func TestCore_Election_TimeoutStartsElection(t *testing.T) {
	c := testCore(t, "a", HardState{}, nil, "b", "c")
	for range 20 {
		c.Tick()
	}
	if c.State() != Candidate || c.Term() != 2 || c.vote != "a" {
		t.Fatalf("after timeout: %s vote=%q, want Candidate in term 2 voting for itself", c, c.vote)
	}
	rd := c.Ready()
	if !rd.HardStateSet || rd.HardState.Vote != "a" {
		t.Fatalf("self-vote not persisted in the same Ready: %+v", rd.HardState)
	}
	if got := len(msgsOfType(rd, MsgVote)); got != 2 {
		t.Fatalf("sent %d RequestVotes, want 2", got)
	}
}

// Raft §5.2: at most one vote per term, first come first served.
func TestCore_Vote_OncePerTerm(t *testing.T) {
	c := testCore(t, "a", HardState{}, nil, "b", "c")
	c.Step(Message{Type: MsgVote, From: "b", Term: 2, Index: 1, LogTerm: 1})
	if rd := c.Ready(); len(rd.Messages) != 1 || rd.Messages[0].Reject || !rd.HardStateSet || rd.HardState.Vote != "b" {
		t.Fatalf("first vote: %+v", rd)
	}
	c.Step(Message{Type: MsgVote, From: "c", Term: 2, Index: 1, LogTerm: 1})
	if rd := c.Ready(); len(rd.Messages) != 1 || !rd.Messages[0].Reject {
		t.Fatalf("second vote in the same term granted: %+v", rd.Messages)
	}
	// A duplicate request from the same candidate is granted again.
	c.Step(Message{Type: MsgVote, From: "b", Term: 2, Index: 1, LogTerm: 1})
	if rd := c.Ready(); rd.Messages[0].Reject {
		t.Fatal("duplicate vote request from the candidate we voted for was rejected")
	}
}

// Raft §5.4.1: votes only go to candidates at least as up-to-date.
func TestCore_Vote_UpToDateCheck(t *testing.T) {
	log := []Entry{confEntry("a", "b", "c"), {Index: 2, Term: 2}, {Index: 3, Term: 2}}
	cases := []struct {
		name           string
		lastIdx, lastT uint64
		grant          bool
	}{
		{"lower last term", 5, 1, false},
		{"same term shorter", 2, 2, false},
		{"same term same length", 3, 2, true},
		{"higher last term shorter", 2, 3, true},
	}
	for _, tc := range cases {
		c := testCore(t, "a", HardState{Term: 2}, log, "b", "c")
		c.Step(Message{Type: MsgVote, From: "b", Term: 3, Index: tc.lastIdx, LogTerm: tc.lastT})
		rd := c.Ready()
		if got := !rd.Messages[0].Reject; got != tc.grant {
			t.Errorf("%s: granted=%v, want %v", tc.name, got, tc.grant)
		}
	}
}

// Raft §5.1: a higher term in any message makes us a follower of that term;
// the new term is persisted before the answer leaves.
func TestCore_Term_HigherTermPersistedBeforeAnswer(t *testing.T) {
	c := testCore(t, "a", HardState{}, nil, "b", "c")
	c.Step(Message{Type: MsgApp, From: "b", Term: 5, Index: 1, LogTerm: 1})
	rd := c.Ready()
	if !rd.HardStateSet || rd.HardState.Term != 5 {
		t.Fatalf("term 5 not in the Ready that answers: %+v", rd.HardState)
	}
	if c.Leader() != "b" || c.State() != Follower {
		t.Fatalf("%s, want follower of b", c)
	}
}

// Raft §5.1: a request from a stale term is rejected with our term.
func TestCore_Term_StaleRequestRejected(t *testing.T) {
	c := testCore(t, "a", HardState{Term: 4}, nil, "b", "c")
	c.Step(Message{Type: MsgApp, From: "b", Term: 3, Index: 1, LogTerm: 1})
	rd := c.Ready()
	if len(rd.Messages) != 1 || !rd.Messages[0].Reject || rd.Messages[0].Term != 4 {
		t.Fatalf("stale append answered with %+v, want a rejection carrying term 4", rd.Messages)
	}
}

// Raft §5.3: AppendEntries is rejected unless the log holds prevIndex with
// prevTerm; a conflicting suffix is replaced.
func TestCore_Append_ConsistencyCheckAndTruncate(t *testing.T) {
	log := []Entry{confEntry("a", "b", "c"), {Index: 2, Term: 1}, {Index: 3, Term: 2}, {Index: 4, Term: 2}}
	c := testCore(t, "a", HardState{Term: 2}, log, "b", "c")
	c.Step(Message{Type: MsgApp, From: "b", Term: 3, Index: 5, LogTerm: 3})
	rd := c.Ready()
	if m := msgsOfType(rd, MsgAppResp); len(m) != 1 || !m[0].Reject {
		t.Fatalf("append past our log accepted: %+v", rd.Messages)
	}
	c.Step(Message{Type: MsgApp, From: "b", Term: 3, Index: 2, LogTerm: 1,
		Entries: []Entry{{Index: 3, Term: 3}}, Commit: 3})
	rd = c.Ready()
	if len(rd.Entries) != 1 || rd.Entries[0].Index != 3 || rd.Entries[0].Term != 3 {
		t.Fatalf("Ready.Entries = %+v, want the replacement of 3", rd.Entries)
	}
	if c.LastIndex() != 3 || c.CommitIndex() != 3 {
		t.Fatalf("%s, want last=3 commit=3 (conflicting 4 removed)", c)
	}
}

// Raft §5.3 fast back-off: the rejection hint skips a whole term.
func TestCore_Append_RejectHintSkipsTerm(t *testing.T) {
	log := []Entry{confEntry("a", "b", "c")}
	for i := uint64(2); i <= 30; i++ {
		log = append(log, Entry{Index: i, Term: 2})
	}
	c := testCore(t, "a", HardState{Term: 2}, log, "b", "c")
	// Leader (term 4) probes at 40/t4; we only have up to 30 from term 2.
	c.Step(Message{Type: MsgApp, From: "b", Term: 4, Index: 40, LogTerm: 4})
	m := msgsOfType(c.Ready(), MsgAppResp)[0]
	if !m.Reject || m.RejectHint != 30 || m.LogTerm != 2 {
		t.Fatalf("reject = %+v, want hint 30/t2", m)
	}
}

// Raft §5.4.2 / Figure 8: a leader never commits an entry of an earlier
// term by counting replicas; only its own term's entries.
func TestCore_Commit_OnlyCurrentTerm(t *testing.T) {
	log := []Entry{confEntry("a", "b", "c"), {Index: 2, Term: 2}}
	c := testCore(t, "a", HardState{Term: 3}, log, "b", "c")
	c.Campaign()
	c.Step(Message{Type: MsgVoteResp, From: "b", Term: 4})
	if c.State() != Leader {
		t.Fatalf("%s, want leader", c)
	}
	c.Ready()
	// b acknowledges only up to 2 (the term-2 entry): no commit yet.
	c.Step(Message{Type: MsgAppResp, From: "b", Term: 4, Index: 2})
	if c.CommitIndex() != 0 {
		t.Fatalf("committed %d by counting a term-2 entry", c.CommitIndex())
	}
	c.Step(Message{Type: MsgAppResp, From: "b", Term: 4, Index: 3}) // the term-4 no-op
	if c.CommitIndex() != 3 {
		t.Fatalf("commit = %d, want 3 once the current-term no-op is on a majority", c.CommitIndex())
	}
}

// Thesis §9.6: pre-vote changes no term; a pre-candidate that cannot win
// stays in its term.
func TestCore_PreVote_NoTermChange(t *testing.T) {
	c := testCore(t, "a", HardState{}, nil, "b", "c")
	c.cfg.PreVote = true
	c.Campaign()
	if c.State() != PreCandidate || c.Term() != 1 {
		t.Fatalf("%s, want PreCandidate still in term 1", c)
	}
	rd := c.Ready()
	if rd.HardStateSet {
		t.Fatal("pre-vote persisted a hard state change")
	}
	for _, m := range msgsOfType(rd, MsgPreVote) {
		if m.Term != 2 {
			t.Fatalf("pre-vote asks about term %d, want 2", m.Term)
		}
	}
	c.Step(Message{Type: MsgPreVoteResp, From: "b", Term: 1, Reject: true})
	c.Step(Message{Type: MsgPreVoteResp, From: "c", Term: 1, Reject: true})
	if c.State() != Follower || c.Term() != 1 {
		t.Fatalf("%s, want Follower in term 1 after losing the pre-vote", c)
	}
}

// Thesis §4.2.3 with check-quorum: a follower that recently heard from its
// leader ignores a vote request with a higher term.
func TestCore_CheckQuorum_LeaderLeaseIgnoresVotes(t *testing.T) {
	c := testCore(t, "a", HardState{}, nil, "b", "c")
	c.cfg.CheckQuorum = true
	c.Step(Message{Type: MsgHeartbeat, From: "b", Term: 1})
	c.Ready()
	c.Step(Message{Type: MsgVote, From: "c", Term: 9, Index: 1, LogTerm: 1})
	rd := c.Ready()
	if c.Term() != 1 || rd.HardStateSet || !rd.Messages[0].Reject {
		t.Fatalf("vote in lease changed state: %s %+v", c, rd.Messages)
	}
}

// Thesis §6.2: a leader that hears from no majority for an election
// timeout steps down.
func TestCore_CheckQuorum_IsolatedLeaderStepsDown(t *testing.T) {
	c := testCore(t, "a", HardState{}, nil, "b", "c")
	c.cfg.CheckQuorum = true
	c.Campaign()
	c.Step(Message{Type: MsgVoteResp, From: "b", Term: 2})
	if c.State() != Leader {
		t.Fatal("not leader")
	}
	for range 2*c.cfg.ElectionTicks + 1 {
		c.Tick()
	}
	if c.State() != Follower {
		t.Fatalf("%s, want a step-down after losing the quorum", c)
	}
}

// A single voter leads as soon as it campaigns.
func TestCore_SingleVoter_LeadsImmediately(t *testing.T) {
	c := testCore(t, "a", HardState{}, nil)
	c.cfg.PreVote = true
	c.Campaign()
	if c.State() != Leader {
		t.Fatalf("%s, want leader", c)
	}
	rd := c.Ready()
	if len(rd.Committed) != 2 {
		t.Fatalf("committed %d entries, want config + no-op", len(rd.Committed))
	}
}

// Malformed messages are dropped and reported, never a panic.
func TestCore_MalformedMessageDropped(t *testing.T) {
	c := testCore(t, "a", HardState{}, nil, "b")
	bad := []Message{
		{Type: 99, From: "b", Term: 1},
		{Type: MsgApp, Term: 1},
		{Type: MsgApp, From: "b", Term: 1, Index: 1, Entries: []Entry{{Index: 7, Term: 1}}},
		{Type: MsgVote, From: "b", Term: 2, Entries: []Entry{{Index: 1}}},
		{Type: MsgApp, From: "b", Term: 1, Index: 1, LogTerm: 1, Entries: []Entry{{Index: 2, Term: 5}}},
	}
	for _, m := range bad {
		if err := c.Step(m); err == nil {
			t.Errorf("accepted malformed %+v", m)
		}
	}
	if c.Term() != 1 || c.LastIndex() != 1 {
		t.Fatalf("malformed input changed state: %s", c)
	}
}

func testRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 3)) }
