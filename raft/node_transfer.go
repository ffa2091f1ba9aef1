package raft

import "time"

// LeadershipTransfer hands leadership to voter id ("" picks the most
// up-to-date one), as a leader leaving gracefully does (thesis §3.10). New
// commands are refused with ErrLeadershipTransferInProgress meanwhile. The
// future resolves once this node is no longer the leader, or fails with
// ErrLeadershipTransferFailed after an election timeout.
func (n *Node) LeadershipTransfer(id string, timeout time.Duration) Future {
	if err := n.stopped(); err != nil {
		return errorFuture{err}
	}
	f := newApplyFuture(0, []byte(id))
	var timer <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		timer = t.C
	}
	select {
	case n.transferCh <- f:
		return f
	case <-timer:
		return errorFuture{ErrEnqueueTimeout}
	case <-n.doneCh:
		return errorFuture{ErrShutdown}
	}
}

// startTransfer runs on the raft loop.
func (n *Node) startTransfer(f *applyFuture) {
	if n.core.State() != Leader {
		f.finish(nil, n.notLeader())
		return
	}
	if n.transfer != nil {
		f.finish(nil, ErrLeadershipTransferInProgress)
		return
	}
	id := string(f.data)
	if id == "" {
		id = n.core.MostUpToDateVoter()
	}
	if err := n.core.TransferLeadership(id); err != nil {
		f.finish(nil, err)
		return
	}
	n.transfer = f
}

// checkTransfer resolves the transfer future after a Ready.
func (n *Node) checkTransfer() {
	switch {
	case n.transfer == nil:
	case n.core.State() != Leader:
		n.transfer.finish(nil, nil)
		n.transfer = nil
	case n.core.Transferring() == "":
		n.transfer.finish(nil, ErrLeadershipTransferFailed)
		n.transfer = nil
	}
}
