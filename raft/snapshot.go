package raft

// Snapshots and log compaction, the core's half (Raft §7). The core never
// sees snapshot contents: the shell persists the FSM's state, tells the
// core about it (SnapshotTaken), and streams it to followers when the core
// asks with a MsgSnap. What the core owns is the bookkeeping: where the
// log now starts, which snapshot to offer a follower, and how a follower
// replaces its log by one.

// SnapshotTaken records that the shell durably stored snap (a snapshot of
// the FSM after applying snap.Index) and compacts the in-memory log up to
// snap.Index-trailing, keeping a trailing window of entries so that a
// follower slightly behind still catches up from the log rather than by a
// whole snapshot. It returns the new log start minus one: the shell
// deletes stored entries up to and including it (0: nothing to delete).
func (c *Core) SnapshotTaken(snap SnapshotMeta, trailing uint64) uint64 {
	if snap.Index > c.snap.Index {
		c.snap = snap
		c.snap.Configuration = snap.Configuration.Clone()
	}
	if snap.Index > c.log.committed || snap.Index <= trailing {
		return 0 // only committed state is ever snapshotted; nothing to drop
	}
	compactTo := snap.Index - trailing
	if compactTo <= c.log.snapIndex {
		return 0
	}
	c.log.compact(compactTo)
	return compactTo
}

// SnapshotIndex is the index of the newest snapshot the core knows of.
func (c *Core) SnapshotIndex() uint64 { return c.snap.Index }

// FirstIndex is the first index still in the log.
func (c *Core) FirstIndex() uint64 { return c.log.firstIndex() }

// sendSnapshot offers the follower our newest snapshot because the entry
// it needs next was compacted away (Raft §7). The follower's progress
// pauses until the shell reports the transfer's outcome (a MsgSnapResp,
// or ReportSnapshot on failure).
func (c *Core) sendSnapshot(to string, pr *progress) {
	if c.snap.Index == 0 {
		return // cannot happen: the log is only compacted behind a snapshot
	}
	meta := c.snap
	meta.Configuration = c.snap.Configuration.Clone()
	c.send(Message{Type: MsgSnap, To: to, Snapshot: &meta, Commit: c.log.committed})
	pr.becomeSnapshot(meta.Index)
}

// ReportSnapshot tells a leader that streaming a snapshot to the follower
// failed (network, timeout, the follower's disk): it goes back to probing,
// which offers the snapshot again once the follower answers a heartbeat.
func (c *Core) ReportSnapshot(to string, failed bool) {
	pr := c.progress[to]
	if c.state != Leader || pr == nil || pr.state != snapshotState || !failed {
		return
	}
	pr.state, pr.next, pr.probeSent, pr.inflight = probe, pr.match+1, false, nil
}

// handleSnapshot is the follower side of InstallSnapshot (Raft §7). Three
// cases, and each answers with our commit index so that a leader that
// resends the same snapshot (a lost answer, a retry) always makes progress
// instead of livelocking:
//   - the snapshot is not newer than what we committed: nothing to do;
//   - our log holds the snapshot's last entry with the same term: the
//     snapshot is a prefix of our log, so we keep the log (and any entries
//     after it) and only commit up to it;
//   - otherwise our log is behind or diverged: discard all of it and start
//     from the snapshot.
func (c *Core) handleSnapshot(m Message) {
	s := *m.Snapshot
	s.Configuration = m.Snapshot.Configuration.Clone()
	switch {
	case s.Index <= c.log.committed:
	case c.log.matchTerm(s.Index, s.Term):
		c.commitTo(s.Index)
	default:
		c.log.restore(s.Index, s.Term)
		c.stable = s.Index // the shell installs it before anything else in the Ready
		c.snap, c.installSnap = s, &s
		c.handedCommit, c.persistFrom = s.Index, 0
		c.reloadConfiguration()
		c.emit(Event{Type: EventCommitted, Index: s.Index, Detail: "installed snapshot"})
	}
	c.send(Message{Type: MsgSnapResp, To: m.From, Index: c.log.committed})
}

// handleSnapResp is the leader's side: the follower now holds everything
// up to m.Index.
func (c *Core) handleSnapResp(m Message, pr *progress) {
	if m.Reject {
		c.ReportSnapshot(m.From, true)
		return
	}
	moved := pr.acked(m.Index)
	if moved && c.maybeCommit() {
		c.broadcastAppend()
		return
	}
	c.sendAppend(m.From, false)
}
