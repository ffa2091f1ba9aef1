package raft

import "fmt"

// Campaign starts an election now (through pre-vote if enabled). The shell
// calls it when this server is the only voter, so that a fresh single-node
// cluster leads at once instead of after an election timeout.
func (c *Core) Campaign() {
	if !c.promotable() || c.state == Leader {
		return
	}
	c.campaign(c.cfg.PreVote)
}

// campaign runs one election round. With pre-vote (thesis §9.6) the first
// round asks for votes at term+1 without anyone moving to that term; only
// if a majority would grant does the real election (Raft §5.2) begin. A
// server cut off from the majority thus never inflates its term, and
// rejoins without deposing anyone.
func (c *Core) campaign(preVote bool) {
	c.votes = map[string]bool{}
	c.setLeader("")
	var typ MessageType
	var term uint64
	transfer := c.transferToVote
	c.transferToVote = false
	if preVote {
		c.setState(PreCandidate)
		c.resetElectionTimer()
		typ, term = MsgPreVote, c.term+1
	} else {
		c.setTerm(c.term + 1)
		c.vote = c.cfg.ID // vote for self, persisted before any request leaves
		c.hardStateSet = true
		c.setState(Candidate)
		c.resetElectionTimer()
		c.emit(Event{Type: EventVoted, Peer: c.cfg.ID})
		typ, term = MsgVote, c.term
	}
	c.votes[c.cfg.ID] = true
	if c.tallyVotes(preVote) {
		return
	}
	for _, id := range c.conf.voters() {
		if id == c.cfg.ID {
			continue
		}
		c.send(Message{Type: typ, To: id, Term: term, Index: c.log.lastIndex(), LogTerm: c.log.lastTerm(), Transfer: transfer})
	}
}

// tallyVotes counts the round so far and acts on a decided outcome. It
// reports whether the round is over.
func (c *Core) tallyVotes(preVote bool) bool {
	granted, rejected := 0, 0
	for _, id := range c.conf.voters() {
		g, ok := c.votes[id]
		switch {
		case !ok:
		case g:
			granted++
		default:
			rejected++
		}
	}
	q := c.quorum()
	switch {
	case granted >= q && preVote:
		c.campaign(false)
		return true
	case granted >= q:
		c.becomeLeader()
		return true
	case rejected >= q:
		// Lost: wait out a fresh timeout as a follower (Raft §5.2).
		c.becomeFollower(c.term, "")
		return true
	}
	return false
}

// quorum is the size of a majority of voters.
func (c *Core) quorum() int {
	n := 0
	for _, s := range c.conf.Servers {
		if s.Suffrage == Voter {
			n++
		}
	}
	return n/2 + 1
}

// handleVoteRequest decides RequestVote and PreVote (same term already
// reconciled by Step). A vote is granted at most once per term (Raft §5.2)
// and only to a candidate whose log is at least as up-to-date as ours
// (§5.4.1). A pre-vote is granted on the same log rule without recording
// anything, if the candidate's proposed term is ahead of ours.
func (c *Core) handleVoteRequest(m Message) {
	upToDate := c.log.isUpToDate(m.Index, m.LogTerm)
	var grant bool
	if m.Type == MsgPreVote {
		grant = upToDate && (m.Term > c.term || (c.vote == "" && c.leader == ""))
	} else {
		canVote := c.vote == m.From || (c.vote == "" && c.leader == "")
		grant = canVote && upToDate
	}
	if !grant {
		c.send(Message{Type: m.Type.Response(), To: m.From, Reject: true})
		return
	}
	if m.Type == MsgVote {
		c.electionElapsed = 0 // granting a vote resets our timer (Figure 2)
		if c.vote != m.From {
			c.vote = m.From
			c.hardStateSet = true // persisted before the response leaves
			c.emit(Event{Type: EventVoted, Peer: m.From})
		}
	}
	// A granted response carries the term asked about so that a
	// pre-candidate (still at the old term) counts it.
	c.send(Message{Type: m.Type.Response(), To: m.From, Term: m.Term})
}

// stepCandidate handles messages while (pre-)campaigning.
func (c *Core) stepCandidate(m Message) {
	switch m.Type {
	case MsgApp, MsgHeartbeat, MsgSnap:
		// Someone won this term (Raft §5.2): follow them.
		c.becomeFollower(m.Term, m.From)
		c.stepFollower(m)
	case MsgPreVoteResp:
		if c.state == PreCandidate {
			c.recordVote(m, true)
		}
	case MsgVoteResp:
		if c.state == Candidate {
			c.recordVote(m, false)
		}
	}
}

func (c *Core) recordVote(m Message, preVote bool) {
	if !c.conf.isVoter(m.From) {
		return
	}
	if _, dup := c.votes[m.From]; dup {
		return // duplicated or reordered response
	}
	c.votes[m.From] = !m.Reject
	c.tallyVotes(preVote)
}

// becomeLeader takes office (Raft §5.2) and appends a no-op in the new term:
// entries from earlier terms are only committed indirectly, through an
// entry of the current term (§5.4.2, §8), so the no-op commits them.
func (c *Core) becomeLeader() {
	c.setState(Leader)
	c.setLeader(c.cfg.ID)
	c.votes = nil
	c.resetElectionTimer()
	c.progress = map[string]*progress{}
	for _, s := range c.conf.Servers {
		if s.ID != c.cfg.ID {
			c.progress[s.ID] = newProgress(c.log.lastIndex()+1, c.cfg.MaxInflight)
		}
	}
	c.appendLocal([]Entry{{Type: EntryNoop}})
	c.broadcastAppend()
}

// String is a one-line summary used in traces.
func (c *Core) String() string {
	return fmt.Sprintf("%s t%d %s leader=%q last=%d/%d commit=%d", c.cfg.ID, c.term, c.state,
		c.leader, c.log.lastIndex(), c.log.lastTerm(), c.log.committed)
}
