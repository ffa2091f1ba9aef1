package raft

import (
	"testing"
	"time"
)

// lingerNode is just enough of a leader's shell to drive node_linger.go.
func lingerNode(t *testing.T, lastWrite time.Duration) *Node {
	t.Helper()
	c := testCore(t, "a", HardState{}, nil)
	c.Campaign()
	if c.State() != Leader {
		t.Fatalf("%s, want leader", c)
	}
	return &Node{cfg: Config{MaxApplyBatch: 1024}, core: c, diskState: diskState{lastWrite: lastWrite}}
}

func queue(n *Node, k int) {
	for range k {
		n.queued = append(n.queued, newApplyFuture(EntryCommand, nil))
	}
}

// After a commit releases k commands, proposals wait until k callers are
// back, then all go together; a lone caller is never held.
func TestLinger_HoldsUntilCallersReturn(t *testing.T) {
	n := lingerNode(t, time.Hour) // the timer cannot end the wait here
	n.expectCallers(3)
	queue(n, 2)
	if !n.holdProposals() {
		t.Fatal("2 of 3 callers back: want proposals held")
	}
	queue(n, 1)
	if n.holdProposals() {
		t.Fatal("3 of 3 callers back: want proposals released")
	}
	if n.linger.expect != 0 || n.linger.fire != nil {
		t.Fatalf("after release: expect %d, timer armed %v; want the wait over", n.linger.expect, n.linger.fire != nil)
	}

	n.queued = nil
	n.expectCallers(1)
	queue(n, 1)
	if n.holdProposals() {
		t.Fatal("a lone caller was held")
	}
}

// A full batch goes at once, however many callers are expected.
func TestLinger_FullBatchNotHeld(t *testing.T) {
	n := lingerNode(t, time.Hour)
	n.cfg.MaxApplyBatch = 4
	n.expectCallers(10)
	queue(n, 4)
	if n.holdProposals() {
		t.Fatal("a full batch was held")
	}
}

// Callers that never come back cost at most the linger time: the timer
// ends the wait.
func TestLinger_TimerEndsWait(t *testing.T) {
	n := lingerNode(t, time.Microsecond)
	n.expectCallers(5)
	queue(n, 1)
	if !n.holdProposals() {
		t.Fatal("1 of 5 callers back: want proposals held")
	}
	select {
	case <-n.linger.fire:
		n.endLinger()
	case <-time.After(10 * time.Second):
		t.Fatal("linger timer never fired")
	}
	if n.holdProposals() {
		t.Fatal("after the linger timer: proposals still held")
	}
}

// A server that is not the leader never holds proposals: they fail at
// once with the leader's address instead.
func TestLinger_FollowerNeverHolds(t *testing.T) {
	n := lingerNode(t, time.Hour)
	n.expectCallers(4)
	n.core.StepDown("test")
	queue(n, 1)
	if n.holdProposals() {
		t.Fatal("a follower held proposals")
	}
	n.expectCallers(4)
	if n.linger.expect != 0 {
		t.Fatalf("a follower expects %d callers", n.linger.expect)
	}
}

// Commands queued beyond MaxApplyBatch (a burst, or a held batch that
// grew) go in appends of at most MaxApplyBatch, and the loop is told to
// come back for the rest without waiting for new input.
func TestPropose_TakesAtMostMaxApplyBatch(t *testing.T) {
	n := lingerNode(t, time.Hour)
	n.cfg.MaxApplyBatch = 4
	queue(n, 10)
	for i, want := range []int{4, 8, 10} {
		first := n.core.LastIndex() + 1
		n.propose()
		if len(n.pending) != want || n.core.LastIndex()+1-first > 4 {
			t.Fatalf("propose %d: %d pending, %d entries appended; want %d pending, at most 4 appended",
				i, len(n.pending), n.core.LastIndex()+1-first, want)
		}
		if more := n.moreToPropose() != nil; more != (want < 10) {
			t.Fatalf("propose %d: %d still queued, loop told to come back: %v", i, len(n.queued), more)
		}
	}
}
