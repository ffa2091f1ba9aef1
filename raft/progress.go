package raft

// progressState is how a leader currently replicates to one follower.
type progressState uint8

const (
	// probe: we do not know where the follower's log matches ours; send
	// one MsgApp at a time and walk next back on rejection (Raft §5.3).
	probe progressState = iota
	// replicate: the follower matched; stream MsgApps optimistically,
	// up to maxInflight unacknowledged ones.
	replicate
	// snapshotState: a snapshot is being streamed to the follower (Raft
	// §7); send nothing else until it is acknowledged or reported failed.
	snapshotState
)

// progress is the leader's view of one follower (Raft Figure 2's
// nextIndex and matchIndex, plus flow control).
//
// Invariant: match < next; entries 1..match are identical on both sides.
type progress struct {
	match, next uint64
	state       progressState
	probeSent   bool     // probe: a MsgApp is outstanding; wait for an answer or heartbeat
	inflight    []uint64 // replicate: last index of each unacknowledged MsgApp, ascending
	maxInflight int
	// recentActive: the follower answered since the last check-quorum
	// round (thesis §6.2).
	recentActive bool
	// pendingSnapshot: snapshotState only, the index of the snapshot sent.
	pendingSnapshot uint64
	// sentCommit is the commit index the last MsgApp carried.
	sentCommit uint64
	// quietBeats counts heartbeat answers since the last MsgApp answer
	// while MsgApps are in flight (PipelineFullOnly's loss detector).
	quietBeats int
}

func newProgress(next uint64, maxInflight int) *progress {
	return &progress{next: next, maxInflight: maxInflight, recentActive: true}
}

// paused reports whether sending another MsgApp would exceed flow control.
func (p *progress) paused() bool {
	switch p.state {
	case probe:
		return p.probeSent
	case snapshotState:
		return true
	}
	return len(p.inflight) >= p.maxInflight
}

// sent records a MsgApp whose last entry is last (n entries).
func (p *progress) sent(last uint64, n int) {
	if p.state == probe {
		p.probeSent = true
		return
	}
	if n > 0 {
		p.next = last + 1
		p.inflight = append(p.inflight, last)
	}
}

// acked records a success up to index; it reports whether match moved.
// Responses may arrive reordered or duplicated: only progress counts.
func (p *progress) acked(index uint64) bool {
	p.probeSent = false
	p.quietBeats = 0
	i := 0
	for i < len(p.inflight) && p.inflight[i] <= index {
		i++
	}
	p.inflight = p.inflight[i:]
	if index <= p.match {
		return false
	}
	p.match = index
	if p.next <= index {
		p.next = index + 1
	}
	if p.state == probe || (p.state == snapshotState && index >= p.pendingSnapshot) {
		p.state, p.next, p.inflight = replicate, index+1, nil
	}
	return true
}

// rejected handles a rejection of the MsgApp whose prevIndex was
// rejectedIndex; hint is the highest index that might still match. It
// reports false for a stale rejection that should be ignored.
func (p *progress) rejected(rejectedIndex, hint uint64) bool {
	if p.state == snapshotState {
		return false // an answer to an AppendEntries sent before the snapshot
	}
	if p.state == replicate {
		if rejectedIndex <= p.match {
			return false // about an index we already know matches
		}
		p.state, p.inflight, p.probeSent = probe, nil, false
		p.next = p.match + 1
		return true
	}
	if p.next-1 != rejectedIndex {
		return false // answer to an older probe
	}
	p.next = max(min(rejectedIndex, hint+1), p.match+1)
	p.probeSent = false
	return true
}

// becomeSnapshot pauses replication while snapshot index is streamed.
func (p *progress) becomeSnapshot(index uint64) {
	p.state, p.pendingSnapshot, p.probeSent, p.inflight = snapshotState, index, false, nil
}

// heartbeatAcked unblocks a probe whose MsgApp or answer was lost, and in
// replicate frees a slot in case an in-flight MsgApp was lost, so that a
// lost message can never stall replication while heartbeats flow.
func (p *progress) heartbeatAcked() {
	p.recentActive = true
	p.probeSent = false
	if p.state == replicate && len(p.inflight) >= p.maxInflight {
		p.inflight = p.inflight[1:]
	}
}
