package raft

// Linearizable reads without writing to the log: ReadIndex (thesis §6.4).
//
// A leader records its commit index as the read index, then proves it was
// still the leader after the read arrived by collecting heartbeat
// acknowledgements from a majority for a heartbeat round started after the
// request. Once the FSM has applied the read index, a read of it reflects
// every write acknowledged before the read began. Concurrent reads share a
// round, so a burst of reads costs one heartbeat exchange; and while a
// round is in flight, new reads wait and go out together in the next one
// when it completes, so a steady stream of reads costs one heartbeat
// exchange per round trip, not one per read.
//
// A new leader does not know which entries of earlier terms are committed
// until it commits an entry of its own term (its no-op, §8), so reads wait
// for that first.

// ReadState is a confirmed read: serve it once Index is applied.
type ReadState struct {
	ID    uint64 // the caller's request ID
	Index uint64 // the read index
}

type pendingRead struct {
	id, index, round uint64
}

// readIndexState is the leader's bookkeeping of reads in flight.
type readIndexState struct {
	round   uint64            // latest heartbeat round started for reads
	acked   map[string]uint64 // follower -> latest round it acknowledged
	pending []pendingRead     // ascending round
	blocked []uint64          // IDs waiting for the leader's first commit

	// Leases (lease.go): rounds sent recently, each voter's latest
	// acknowledged send tick, and whether a transfer ruled leases out.
	sent         []roundSent
	leaseFrom    map[string]uint64
	leaseRevoked bool
	waiting      []uint64    // IDs that arrived while a round was in flight
	ready        []ReadState // confirmed, for the next Ready
}

func (r *readIndexState) reset() {
	*r = readIndexState{}
}

// ReadIndex asks for a linearizable read point under the caller's id. The
// answer arrives as a ReadState in a later Ready; it fails at once on a
// non-leader. If leadership is lost first, no answer ever comes: the shell
// fails the waiting callers when it sees the step-down.
func (c *Core) ReadIndex(id uint64) error {
	if c.state != Leader {
		return errProposeNotLeader
	}
	if t, _ := c.log.term(c.log.committed); t != c.term {
		c.reads.blocked = append(c.reads.blocked, id)
		return nil
	}
	if c.leaseValid() {
		c.reads.ready = append(c.reads.ready, ReadState{ID: id, Index: c.log.committed})
		return nil
	}
	c.startRead([]uint64{id})
	return nil
}

// startRead registers reads at the current commit index and starts one
// heartbeat round for them.
func (c *Core) startRead(ids []uint64) {
	if c.quorum() == 1 {
		for _, id := range ids {
			c.reads.ready = append(c.reads.ready, ReadState{ID: id, Index: c.log.committed})
		}
		return
	}
	if len(c.reads.pending) > 0 {
		c.reads.waiting = append(c.reads.waiting, ids...)
		return
	}
	c.newRound()
	for _, id := range ids {
		c.reads.pending = append(c.reads.pending, pendingRead{id: id, index: c.log.committed, round: c.reads.round})
	}
	c.broadcastHeartbeat()
}

// releaseBlockedReads starts the reads that waited for a commit in this term.
func (c *Core) releaseBlockedReads() {
	if len(c.reads.blocked) == 0 {
		return
	}
	if t, _ := c.log.term(c.log.committed); t != c.term {
		return
	}
	ids := c.reads.blocked
	c.reads.blocked = nil
	c.startRead(ids)
}

// readAcked records that from acknowledged heartbeat round and confirms
// every pending read whose round a majority has now acknowledged.
func (c *Core) readAcked(from string, round uint64) {
	if round == 0 {
		return
	}
	c.leaseAcked(from, round)
	if len(c.reads.pending) == 0 {
		return
	}
	if c.reads.acked == nil {
		c.reads.acked = map[string]uint64{}
	}
	if round > c.reads.acked[from] {
		c.reads.acked[from] = round
	}
	for len(c.reads.pending) > 0 {
		p := c.reads.pending[0]
		n := 0
		for _, s := range c.conf.Servers {
			if s.Suffrage == Voter && (s.ID == c.cfg.ID || c.reads.acked[s.ID] >= p.round) {
				n++
			}
		}
		if n < c.quorum() {
			return
		}
		c.reads.ready = append(c.reads.ready, ReadState{ID: p.id, Index: p.index})
		c.reads.pending = c.reads.pending[1:]
	}
	if len(c.reads.waiting) > 0 {
		ids := c.reads.waiting
		c.reads.waiting = nil
		c.startRead(ids)
	}
}
