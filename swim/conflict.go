package swim

import "net/netip"

// Name conflicts: two processes claiming one name with different
// addresses (a cloned VM, a copy-pasted config). Resolved as memberlist
// and Serf do:
//
//   - A member that holds the name for one address ignores an alive
//     claim from another address while the holder is alive or suspect
//     (memberlist's aliveNode; only a dead or left holder can be
//     replaced). If the holder is alive it emits EventConflict and tells
//     the claimant directly with a conflict message; a suspect holder
//     (leaving or not: a crashed member force-left while suspected) may
//     be the claimant's previous life, restarted at a new address, which
//     takes the name over once the old record is declared dead or left.
//   - The claimant counts the distinct members telling it so. Once they
//     are a majority of the live members it knows, it is the newcomer the
//     cluster does not recognise: it yields (EventConflict with Yielded),
//     stops probing, gossiping and refuting, and leaves the name to the
//     holder. This is Serf's resolveNodeConflict, with the votes arriving
//     unasked instead of through a query. The shell reports it through
//     Node.Conflict so the agent can stop, as Serf's agent does.
//
// The older registration wins because the members that knew it first keep
// it; a claimant only yields to a majority, so the holder, whom most
// members recognise, never does.

// nameConflicts is the local bookkeeping of conflicts.
type nameConflicts struct {
	// told remembers whom we notified about which claim, so a claimant's
	// repeated gossip does not make us send a notice per copy.
	told map[netip.AddrPort]uint32 // claimant address -> its incarnation
	// votes are the members that told us they hold our name elsewhere.
	votes   map[string]netip.AddrPort
	yielded bool
}

// conflictSeen handles an alive claim a for a name we hold as m at
// another address.
func (c *Core) conflictSeen(m *memberState, a alive) {
	if c.names.told == nil {
		c.names.told = map[netip.AddrPort]uint32{}
	}
	if inc, ok := c.names.told[a.Addr]; ok && inc >= a.Incarnation {
		return
	}
	if len(c.names.told) >= 1024 {
		clear(c.names.told) // bounded; at worst a notice is repeated
	}
	c.names.told[a.Addr] = a.Incarnation
	c.stats.NameConflicts++
	c.out.Events = append(c.out.Events, Event{
		Kind: EventConflict, Node: c.cfg.Name, Member: c.export(m), From: a.Node,
		ConflictAddr: a.Addr, Tick: c.now,
	})
	c.sendRaw(a.Addr, encodeConflict(nil, conflict{Node: m.name, Holder: m.addr, HolderIncarnation: m.incarnation, From: c.cfg.Name}))
}

// claimedElsewhere handles gossip that shows another process holding our
// name: we only record it; the votes decide (handleConflict).
func (c *Core) claimedElsewhere(a alive) {
	c.stats.NameConflicts++
	c.out.Events = append(c.out.Events, Event{
		Kind: EventConflict, Node: c.cfg.Name, Member: c.export(c.self), From: a.Node,
		ConflictAddr: a.Addr, Tick: c.now,
	})
}

// handleConflict counts a member telling us it holds our name for another
// address, and yields once a majority of the live members we know did.
func (c *Core) handleConflict(m conflict) {
	if m.Node != c.cfg.Name || m.Holder == c.self.addr || m.From == "" || c.names.yielded {
		return
	}
	if c.names.votes == nil {
		c.names.votes = map[string]netip.AddrPort{}
	}
	if _, ok := c.names.votes[m.From]; ok || len(c.names.votes) >= 1024 {
		return
	}
	c.names.votes[m.From] = m.Holder
	others := c.numAlive - 1 // live members besides us
	if len(c.names.votes)*2 <= others {
		return
	}
	c.names.yielded = true
	c.leaving = true // stop probing, refuting and syncing; announce nothing
	c.probe, c.late = probeState{}, probeState{}
	c.out.Events = append(c.out.Events, Event{
		Kind: EventConflict, Node: c.cfg.Name, Member: c.export(c.self), From: m.From,
		ConflictAddr: m.Holder, Yielded: true, Tick: c.now,
	})
}

// Yielded reports whether this member gave its name up to another
// process that a majority of the cluster recognises.
func (c *Core) Yielded() bool { return c.names.yielded }
