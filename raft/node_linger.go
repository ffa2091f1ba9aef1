package raft

import "time"

// Cohort merging for group commit.
//
// With callers that send their next command as soon as the last one
// returns, group commit on its own splits them into two cohorts that
// alternate: while one batch is being written and replicated, the callers
// of the batch before it come back and form the next batch, which starts
// as soon as the disk and the follower's pipeline are free — before the
// callers of the batch now committing have returned. Every caller then
// waits about two disk writes per command, and every batch carries only
// half of them: twice the fsyncs per command, half the throughput of
// appliers/(F+R).
//
// So when a commit releases k commands proposed here, the leader expects
// their callers back and holds new proposals until k have arrived or the
// linger time has passed since the commit, whichever is first; then they
// all go into one log append, one fsync and one AppendEntries per
// follower. A lone caller (k = 1) is never held: its own next command
// completes the count. Callers that do not come back cost at most the
// linger time: the last disk write's duration, capped at maxLinger —
// never more than the split would have cost them (waiting out a whole
// write). Commands already in the log and the commit index are not
// delayed.

// maxLinger caps how long proposals wait for the callers of a commit to
// return: enough for a few scheduling delays on a busy machine.
const maxLinger = time.Millisecond

// lingerState is owned by run.
type lingerState struct {
	expect int // commands whose callers are expected back (0: not holding)
	timer  *time.Timer
	fire   <-chan time.Time // non-nil while the timer is armed
}

// expectCallers notes that k commands proposed here just committed.
func (n *Node) expectCallers(k int) {
	if k == 0 || n.core.State() != Leader {
		return
	}
	n.linger.expect += k
	if n.linger.fire != nil {
		return
	}
	d := min(maxLinger, n.lastWrite)
	if n.linger.timer == nil {
		n.linger.timer = time.NewTimer(d)
	} else {
		n.linger.timer.Reset(d)
	}
	n.linger.fire = n.linger.timer.C
}

// holdProposals reports whether queued commands should wait for more
// callers of the last commit; it ends the wait once enough have come.
func (n *Node) holdProposals() bool {
	if n.linger.expect == 0 {
		return false
	}
	if len(n.queued) < n.linger.expect && n.core.State() == Leader {
		return true
	}
	n.endLinger()
	return false
}

// endLinger stops holding proposals.
func (n *Node) endLinger() {
	n.linger.expect = 0
	if n.linger.fire != nil {
		n.linger.timer.Stop()
		n.linger.fire = nil
	}
}
