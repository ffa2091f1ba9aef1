package raft

import "slices"

// Leader lease reads (thesis §6.4.1), off by default (CoreConfig.LeaseTicks
// = 0; Config.LeaseReads turns them on).
//
// ReadIndex costs a heartbeat round per batch of reads. A lease saves even
// that: with check-quorum on, a follower that heard from its leader within
// the minimum election timeout refuses to vote for anyone else (leader
// stickiness, thesis §4.2.3). So once a majority acknowledged a heartbeat
// the leader sent at tick s, no other leader can be elected before s plus
// an election timeout as those followers count it. Shortened by a bound
// on how much faster their clocks may run than ours (the clock-drift
// bound) and by one tick for rounding, that is the lease: until it ends,
// the leader answers reads at its commit index at once.
//
// What the lease trusts, and ReadIndex does not: that clocks drift by no
// more than the bound, and that a server does not forget it heard from
// the leader. A restarted server has forgotten, so with leases on a server
// refuses votes for its first election timeout after starting. A
// leadership transfer waives stickiness on purpose (TimeoutNow), so a
// leader that started one uses no lease for the rest of its term.

// roundSent is when a heartbeat round went out, in core ticks.
type roundSent struct{ round, tick uint64 }

// newRound starts a heartbeat round for reads; with leases, it also notes
// when it was sent and forgets rounds too old to extend any lease.
func (c *Core) newRound() {
	c.reads.round++
	if c.cfg.LeaseTicks <= 0 {
		return
	}
	sent := c.reads.sent
	for len(sent) > 0 && sent[0].tick+uint64(c.cfg.LeaseTicks) <= c.ticks {
		sent = sent[1:]
	}
	c.reads.sent = append(sent, roundSent{round: c.reads.round, tick: c.ticks})
}

// leaseAcked records that from acknowledged round: its lease support now
// starts at that round's send tick.
func (c *Core) leaseAcked(from string, round uint64) {
	if c.cfg.LeaseTicks <= 0 {
		return
	}
	i, ok := slices.BinarySearchFunc(c.reads.sent, round, func(r roundSent, round uint64) int {
		switch {
		case r.round < round:
			return -1
		case r.round > round:
			return 1
		}
		return 0
	})
	if !ok {
		return // too old to matter, or not a round of this term
	}
	if c.reads.leaseFrom == nil {
		c.reads.leaseFrom = map[string]uint64{}
	}
	if t := c.reads.sent[i].tick; t > c.reads.leaseFrom[from] {
		c.reads.leaseFrom[from] = t
	}
}

// leaseValid reports whether the leader holds a lease now: a majority of
// voters (counting itself, now) acknowledged a round sent less than
// LeaseTicks ago.
func (c *Core) leaseValid() bool {
	if c.cfg.LeaseTicks <= 0 || c.state != Leader || c.reads.leaseRevoked || c.transferee != "" {
		return false
	}
	var buf [8]uint64
	starts := buf[:0]
	for _, s := range c.conf.Servers {
		switch {
		case s.Suffrage != Voter:
		case s.ID == c.cfg.ID:
			starts = append(starts, c.ticks)
		default:
			starts = append(starts, c.reads.leaseFrom[s.ID])
		}
	}
	if len(starts) == 0 {
		return false
	}
	slices.Sort(starts)
	slices.Reverse(starts)
	start := starts[len(starts)/2] // the latest tick a majority confirmed
	return start > 0 && c.ticks < start+uint64(c.cfg.LeaseTicks)
}

// startupSticky: with leases on, a server refuses votes for its first
// election timeout, as if it had just heard from a leader (it may have,
// before it restarted).
func (c *Core) startupSticky() bool {
	return c.cfg.LeaseTicks > 0 && c.ticks < uint64(c.cfg.ElectionTicks)
}
