package raft

import (
	"fmt"
	"slices"
)

// Propose appends commands to the leader's log (Raft §5.3) and returns the
// index of the last one. Each entry's Type and Data are used; Index and Term
// are assigned here, in es itself (the log keeps its own copy). It fails on
// a non-leader.
func (c *Core) Propose(es []Entry) (uint64, error) {
	if c.state != Leader {
		return 0, errProposeNotLeader
	}
	if c.transferee != "" {
		return 0, ErrLeadershipTransferInProgress
	}
	c.appendLocal(es)
	c.broadcastAppend()
	return c.log.lastIndex(), nil
}

// appendLocal stamps es with this term and the next indexes and appends
// them to the leader's own log. The leader's own copy counts toward the
// commit quorum once it is durable (durableIndex): at once without
// AsyncStorage, after the shell's Persisted report with it.
func (c *Core) appendLocal(es []Entry) {
	last := c.log.lastIndex()
	for i := range es {
		es[i] = Entry{Index: last + 1 + uint64(i), Term: c.term, Type: es[i].Type, Data: es[i].Data}
	}
	c.appendEntries(es)
	c.maybeCommit()
}

// broadcastAppend sends new entries (or just the commit index) to every
// follower that flow control allows.
func (c *Core) broadcastAppend() {
	for _, id := range c.peerIDs() {
		c.sendAppend(id, true)
	}
}

func (c *Core) broadcastHeartbeat() {
	for _, id := range c.peerIDs() {
		pr := c.progress[id]
		// Commit capped at match: the follower may not yet hold what we
		// committed, and must never commit an entry it has not matched.
		c.send(Message{Type: MsgHeartbeat, To: id, Commit: min(pr.match, c.log.committed), Context: c.reads.round})
	}
}

// peerIDs lists the followers in a stable order so that the core's output
// is deterministic.
func (c *Core) peerIDs() []string {
	ids := make([]string, 0, len(c.progress))
	for id := range c.progress {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// sendAppend sends the follower the entries from its next index on,
// preceded by (prevIndex, prevTerm) for the consistency check (Raft §5.3).
// With allowEmpty it sends even when there is nothing new, which carries
// the commit index and, in replicate state, exposes a gap left by a lost
// message (the follower rejects and we fall back to probing).
func (c *Core) sendAppend(to string, allowEmpty bool) {
	pr := c.progress[to]
	if pr == nil || pr.paused() {
		return
	}
	prevIndex := pr.next - 1
	prevTerm, ok := c.log.term(prevIndex)
	if !ok {
		// The entry the follower needs was compacted into a snapshot.
		c.sendSnapshot(to, pr)
		return
	}
	es := c.entriesForMsg(pr.next)
	if len(es) == 0 && !allowEmpty {
		return
	}
	if c.cfg.PipelineFullOnly && pr.state == replicate && len(pr.inflight) > 0 && !c.fullMsg(es) {
		return // an answer is due: what accumulates until then goes out with it
	}
	c.send(Message{Type: MsgApp, To: to, Index: prevIndex, LogTerm: prevTerm, Entries: es, Commit: c.log.committed})
	pr.sent(prevIndex+uint64(len(es)), len(es))
	pr.sentCommit = c.log.committed
}

// fullMsg reports whether es fills a MsgApp (by count or bytes).
func (c *Core) fullMsg(es []Entry) bool {
	if len(es) >= c.cfg.MaxEntriesPerMsg {
		return true
	}
	var size uint64
	for _, e := range es {
		size += uint64(len(e.Data))
	}
	return c.cfg.MaxBytesPerMsg > 0 && size >= c.cfg.MaxBytesPerMsg/2
}

// entriesForMsg returns entries from lo, capped by count and bytes (at
// least one entry if any exist, however big).
func (c *Core) entriesForMsg(lo uint64) []Entry {
	hi := min(c.log.lastIndex()+1, lo+uint64(c.cfg.MaxEntriesPerMsg))
	var size uint64
	for i := lo; i < hi; i++ {
		e, _ := c.log.entry(i)
		size += uint64(len(e.Data))
		if c.cfg.MaxBytesPerMsg > 0 && size > c.cfg.MaxBytesPerMsg && i > lo {
			hi = i
			break
		}
	}
	return c.log.slice(lo, hi)
}

// stepLeader handles answers from followers.
func (c *Core) stepLeader(m Message) {
	pr := c.progress[m.From]
	if pr == nil {
		return // not (or no longer) in the configuration
	}
	switch m.Type {
	case MsgAppResp:
		pr.recentActive = true
		if m.Reject {
			c.handleAppReject(m, pr)
			return
		}
		moved := pr.acked(m.Index)
		c.maybeSendTimeoutNow(m.From)
		if moved && c.maybeCommit() {
			c.broadcastAppend() // tell followers the new commit index
			return
		}
		// Send what accumulated, or at least a commit index it has not seen.
		c.sendAppend(m.From, c.cfg.PipelineFullOnly && pr.sentCommit < c.log.committed)
	case MsgSnapResp:
		pr.recentActive = true
		c.handleSnapResp(m, pr)
	case MsgHeartbeatResp:
		pr.heartbeatAcked()
		if c.cfg.PipelineFullOnly && pr.state == replicate && len(pr.inflight) > 0 {
			if pr.quietBeats++; pr.quietBeats >= 2 {
				// The follower answers heartbeats but not our MsgApps:
				// count them lost, so the next send exposes the gap.
				pr.inflight, pr.quietBeats = nil, 0
			}
		}
		c.readAcked(m.From, m.Context)
		if pr.match < c.log.lastIndex() {
			c.sendAppend(m.From, true)
		}
	}
}

// handleAppReject walks the follower's next index back. The follower's
// hint (RejectHint, LogTerm) names its last entry with a term <= the term
// we probed; we jump to our last entry of a term <= that, skipping a whole
// conflicting term per round trip instead of one entry (Raft §5.3).
func (c *Core) handleAppReject(m Message, pr *progress) {
	hint := m.RejectHint
	if m.LogTerm > 0 && hint > c.log.snapIndex {
		// Below our log start we cannot compare terms: keep the hint, so
		// that the next send finds the entry compacted and offers the
		// snapshot instead of probing the log start forever.
		hint, _ = c.log.findConflictByTerm(m.RejectHint, m.LogTerm)
	}
	if pr.rejected(m.Index, hint) {
		c.sendAppend(m.From, true)
	}
}

// maybeCommit advances the commit index to the highest index stored on a
// majority of voters — but only if that entry is from the current term
// (Raft §5.4.2, Figure 8): counting replicas of an older term's entry is
// not safe, committing a current-term entry commits its predecessors.
func (c *Core) maybeCommit() bool {
	var buf [8]uint64 // no allocation for clusters of up to 8 voters
	matches := buf[:0]
	for _, s := range c.conf.Servers {
		if s.Suffrage != Voter {
			continue
		}
		switch id := s.ID; {
		case id == c.cfg.ID:
			// Our own copy counts once it is on our disk (thesis §10.2.1).
			matches = append(matches, c.durableIndex())
		case c.progress[id] != nil:
			matches = append(matches, c.progress[id].match)
		default:
			matches = append(matches, 0)
		}
	}
	if len(matches) == 0 {
		return false
	}
	slices.Sort(matches)
	slices.Reverse(matches)
	mci := matches[len(matches)/2] // the highest index a majority holds
	if t, _ := c.log.term(mci); mci > c.log.committed && t == c.term {
		c.commitTo(mci)
		return true
	}
	return false
}

func (c *Core) commitTo(i uint64) {
	if i <= c.log.committed {
		return
	}
	c.log.committed = i
	c.emit(Event{Type: EventCommitted, Index: i})
	if c.state == Leader {
		c.releaseBlockedReads()
		c.maybeStepDownRemoved()
	}
}

// quorumActive reports whether a majority of voters (counting us) answered
// since the last check.
func (c *Core) quorumActive() bool {
	n := 0
	for _, id := range c.conf.voters() {
		if id == c.cfg.ID || (c.progress[id] != nil && c.progress[id].recentActive) {
			n++
		}
	}
	return n >= c.quorum()
}

// handleAppend is the follower side of AppendEntries (Raft §5.3): reject
// unless we hold the entry preceding the new ones; otherwise delete any
// conflicting suffix, append what is new and advance commit.
func (c *Core) handleAppend(m Message) {
	if m.Index < c.log.committed {
		// Everything up to commit is already agreed; say where we are.
		c.send(Message{Type: MsgAppResp, To: m.From, Index: c.log.committed})
		return
	}
	if !c.log.matchTerm(m.Index, m.LogTerm) {
		hintIndex := min(m.Index, c.log.lastIndex())
		hintIndex, hintTerm := c.log.findConflictByTerm(hintIndex, m.LogTerm)
		c.send(Message{Type: MsgAppResp, To: m.From, Index: m.Index, Reject: true,
			RejectHint: hintIndex, LogTerm: hintTerm})
		return
	}
	lastNew := m.Index + uint64(len(m.Entries))
	if ci := c.log.findConflict(m.Entries); ci != 0 {
		if ci <= c.log.committed {
			// A leader contradicting a committed entry breaks Leader
			// Completeness: refuse rather than lose committed data.
			err := fmt.Sprintf("App from %s would overwrite committed entry %d", m.From, ci)
			c.emit(Event{Type: EventDropped, Detail: err})
			c.send(Message{Type: MsgAppResp, To: m.From, Index: m.Index, Reject: true, RejectHint: c.log.committed})
			return
		}
		truncated := ci <= c.log.lastIndex()
		c.log.truncateFrom(ci)
		c.stable = min(c.stable, ci-1)
		if truncated && ci <= c.confIndex {
			c.reloadConfiguration()
		}
		c.appendEntries(m.Entries[ci-m.Index-1:])
	}
	c.commitTo(min(m.Commit, lastNew))
	c.send(Message{Type: MsgAppResp, To: m.From, Index: lastNew})
}

// handleHeartbeat advances commit as far as the leader says we match.
func (c *Core) handleHeartbeat(m Message) {
	c.commitTo(min(m.Commit, c.log.lastIndex()))
	c.send(Message{Type: MsgHeartbeatResp, To: m.From, Context: m.Context})
}
