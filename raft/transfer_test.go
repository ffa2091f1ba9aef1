package raft

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// Thesis §3.10: the leader sends TimeoutNow once the target has its whole
// log, refuses new commands meanwhile, and the target's election is
// honoured by voters that are still inside the leader's lease.
func TestCore_Transfer_TimeoutNowAndLeaseWaiver(t *testing.T) {
	c := leaderCore(t) // a leads term 2, b has matched the no-op
	if err := c.TransferLeadership("b"); err != nil {
		t.Fatal(err)
	}
	rd := c.Ready()
	if len(msgsOfType(rd, MsgTimeoutNow)) != 1 {
		t.Fatalf("no TimeoutNow to the caught-up target: %+v", rd.Messages)
	}
	if _, err := c.Propose([]Entry{{Type: EntryCommand}}); !errors.Is(err, ErrLeadershipTransferInProgress) {
		t.Fatalf("Propose during transfer: %v", err)
	}
	// The target campaigns without pre-vote, flagging its requests.
	b := testCore(t, "b", HardState{Term: 2}, []Entry{confEntry("a", "b", "c"), {Index: 2, Term: 2}}, "a", "c")
	b.cfg.PreVote, b.cfg.CheckQuorum = true, true
	b.Step(Message{Type: MsgTimeoutNow, From: "a", Term: 2})
	votes := msgsOfType(b.Ready(), MsgVote)
	if b.State() != Candidate || len(votes) != 2 || !votes[0].Transfer {
		t.Fatalf("target after TimeoutNow: %s, votes %+v", b, votes)
	}
	// A voter that just heard from the leader still grants it.
	v := testCore(t, "c", HardState{Term: 2}, []Entry{confEntry("a", "b", "c"), {Index: 2, Term: 2}}, "a", "b")
	v.cfg.CheckQuorum = true
	v.Step(Message{Type: MsgHeartbeat, From: "a", Term: 2})
	v.Ready()
	v.Step(votes[1])
	if m := msgsOfType(v.Ready(), MsgVoteResp); len(m) != 1 || m[0].Reject {
		t.Fatalf("voter in lease refused a transfer election: %+v", m)
	}
}

// Under a steady write load, with pre-vote on, leadership moves to the
// chosen server and no acknowledged write is lost (the invariants check
// Leader Completeness on the new leader).
func TestNode_LeadershipTransferUnderLoad(t *testing.T) {
	c := newCluster(t, 3)
	l1 := c.leader()
	target := others(c.ids, l1)[1]
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				for _, id := range c.ids {
					if n := c.node(id); n != nil && n.State() == Leader {
						cmd := fmt.Sprintf("w%d-%d", w, i)
						f := n.Apply([]byte(cmd), time.Second)
						if waitFuture(f, 2*time.Second) == nil {
							c.inv.ack(f.Index(), cmd)
						}
						break
					}
				}
			}
		}()
	}
	c.apply("before", 5*time.Second)
	if err := waitFuture(c.node(l1).LeadershipTransfer(target, time.Second), 5*time.Second); err != nil {
		t.Fatalf("LeadershipTransfer: %v", err)
	}
	if l2 := c.leader(); l2 != target {
		t.Fatalf("leader after transfer is %s, want %s", l2, target)
	}
	idx := c.apply("after", 5*time.Second)
	close(stop)
	wg.Wait()
	c.applied(idx)
}

// A transfer to a server that cannot answer is abandoned after an election
// timeout; the leader keeps leading and accepts commands again.
func TestPartition_LeadershipTransferToUnreachableAborts(t *testing.T) {
	c := newCluster(t, 3)
	l := c.leader()
	target := others(c.ids, l)[0]
	c.net.Isolate(target)
	err := waitFuture(c.node(l).LeadershipTransfer(target, time.Second), 5*time.Second)
	if !errors.Is(err, ErrLeadershipTransferFailed) {
		t.Fatalf("transfer to an isolated server: %v, want ErrLeadershipTransferFailed", err)
	}
	c.applied(c.apply("still-leading", 5*time.Second), others(c.ids, target)...)
	c.net.Heal()
}
