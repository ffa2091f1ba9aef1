package swim

import "fmt"

// Leaving, as Serf does it on top of memberlist. A graceful leave has two
// steps, so that peers report "leaving" and then "left":
//
//  1. Leave broadcasts a leave intent (msgLeaving) at a raised
//     incarnation; every member that hears it marks the leaver "leaving",
//     which is still a live member (probed, gossiped to, counted).
//  2. One tick after a gossip round has carried the intent to GossipNodes
//     members (Serf waits for the intent's broadcast, bounded by a
//     timeout; one round keeps a leave about as quick as before while the
//     members told first, and those they relay to, see "leaving" first),
//     Tick gossips the "left" announcement at once (a dead message naming the leaver as its own
//     source), which turns "leaving" (or anything short of gone) into
//     "left". LeaveSent reports when that has gone out.
//
// ForceLeave reuses both messages: a failed member is marked left at once
// (Serf's RemoveFailedNode on a failed member); an alive or suspect
// member is marked leaving, and since it is not leaving it refutes with a
// higher incarnation and is alive everywhere again, exactly as Serf's
// member refutes a leave intent about itself by re-broadcasting its join.
//
// Merge rules for the intent (i is the local incarnation of the member):
// leaving(j) overrides alive(i) iff j >= i and suspect(i) iff j > i;
// alive(j) overrides leaving(i) iff j > i (the member refuted: Serf's
// newer join intent turning StatusLeaving back into StatusAlive); left
// applies to a leaving member as to an alive one, and so does suspect,
// except that at the intent's incarnation the member stays leaving while
// the suspicion runs (Serf's StatusLeaving is untouched by memberlist's
// suspicion), and leaving(i) makes suspect(i) leaving with its suspicion
// kept. A left member ignores the intent. A suspicion of a leaver that
// went silent so runs its course instead of being reset by relayed
// intents, whichever order they come in.
//
// A leaver that dies before its "left" is heard is recorded left, not
// failed, as in Serf (leaverDied in state.go): Serf's handleNodeLeave
// turns StatusLeaving into StatusLeft, not StatusFailed, when memberlist
// reports the member gone, and its handleNodeLeaveIntent turns a
// StatusFailed member left when the intent comes after the death. Here
// the intent is remembered through a suspicion at its incarnation (also
// when it arrives during the suspicion), a dead verdict at that
// incarnation becomes "left", and an intent at a dead member's
// incarnation makes it left. An intent at a higher incarnation than a
// death we hold means the member was alive after that death, and nobody
// has convicted it since: it becomes leaving at that incarnation, as any
// newer word revives a dead member, and is probed again. So force-leave of a member that has crashed
// but is still seen alive ends with it left everywhere once failure
// detection catches up.

// Leave announces a graceful departure: first the leave intent, then
// (from Tick, once the intent is out) the "left" announcement. The core
// keeps probing and answering until the second step, and stops probing,
// refuting and syncing after it.
func (c *Core) Leave() {
	if c.intending || c.leaving {
		return
	}
	c.intending = true
	c.self = c.table.own(c.self)
	c.self.incarnation++
	c.setState(c.self, StateLeaving)
	l := leaving{Incarnation: c.self.incarnation, Node: c.cfg.Name, From: c.cfg.Name}
	c.queue.push(c.cfg.Name, encodeLeaving(nil, l))
	c.emit(EventLeaving, c.self, c.cfg.Name, 0)
	if c.intentSent() {
		c.announceLeft()
	}
}

// intentSent reports whether a gossip round has carried the leave intent
// (trivially so with nobody else alive to tell). Piggy-backing on a probe
// is not enough: that reaches one member.
func (c *Core) intentSent() bool {
	return c.numAlive <= 1 || (c.intentDue > 0 && c.now >= c.intentDue)
}

// announceLeft is the second step of Leave: the local member becomes left
// at the intent's incarnation and broadcasts a dead message naming
// itself, which others record as "left" rather than "failed".
func (c *Core) announceLeft() {
	c.leaving = true
	c.self = c.table.own(c.self)
	c.setState(c.self, StateLeft)
	d := dead{Incarnation: c.self.incarnation, Node: c.cfg.Name, From: c.cfg.Name}
	c.leaveBcast = c.queue.push(c.cfg.Name, encodeDead(nil, d))
	c.emit(EventLeft, c.self, c.cfg.Name, 0)
	c.probe, c.late = probeState{}, probeState{}
	// Gossip it now rather than at the next gossip tick: the intent
	// already cost one round, and a leave should take no longer than it
	// did before intents existed.
	c.gossip()
}

// LeaveSent reports whether Leave's "left" announcement has been
// transmitted. With nobody left to tell it is trivially sent.
func (c *Core) LeaveSent() bool {
	return c.leaving && (c.numAlive == 0 || c.queue.transmitted(c.leaveBcast))
}

// ForceLeave is `consul force-leave` (Serf's RemoveFailedNode, which
// sends a leave intent about the member and applies it locally first).
// What it does depends on the member's state, as Serf's
// handleNodeLeaveIntent decides it:
//
//   - dead (failed): it becomes "left" at its current incarnation and the
//     left announcement is broadcast, so every member (and the agent,
//     which deregisters left nodes) stops treating it as a failure to
//     recover from.
//   - alive, suspect or leaving (all "alive" to Serf, for which a
//     suspicion is memberlist's business): it becomes "leaving" and the
//     intent is gossiped and sent to the member itself. A member that is
//     in fact alive refutes with a higher incarnation and is alive again
//     everywhere (force-leave never evicts a healthy member for good); one
//     that has crashed is declared dead while leaving, and so becomes
//     "left" (leaverDied). A running suspicion is kept: a suspect forced
//     out is leaving until its suspicion ends, left or alive.
//   - left: nothing to do, not an error.
func (c *Core) ForceLeave(name string) error {
	m, err := c.forceLeaveTarget("ForceLeave", name)
	if err != nil || m.state == StateLeft {
		return err
	}
	c.stats.ForcedLeaves++
	if m.state == StateDead {
		c.handleDead(dead{Incarnation: m.incarnation, Node: name, From: name})
		return nil
	}
	c.forceIntent(m, leaving{Incarnation: m.incarnation, Node: name, From: c.cfg.Name})
	return nil
}

// forceLeaveTarget finds the member a force-leave names, or says why not.
func (c *Core) forceLeaveTarget(op, name string) (*memberState, error) {
	m := c.table.get(name)
	switch {
	case name == c.cfg.Name:
		return nil, fmt.Errorf("swim: %s(%q) names the local member; call Leave instead", op, name)
	case m == nil:
		return nil, fmt.Errorf("swim: %s: no member named %q is known", op, name)
	}
	return m, nil
}

// forceIntent applies a forced leave intent about a live member here and
// tells the member itself at once: its refutation is what ends the
// episode if it is alive, and gossip might pick it only later.
func (c *Core) forceIntent(m *memberState, l leaving) {
	c.handleLeaving(l)
	c.sendRaw(m.addr, encodeLeaving(nil, l))
}

// intentOf is the leave intent m is leaving by, for relaying. It prunes
// only if the pending prune is at m's incarnation: one m refuted (it is
// leaving again at a higher incarnation by a plain intent) must not turn
// that intent into a prune, or the members that hear it would erase m
// while this one keeps it.
func (c *Core) intentOf(m *memberState) leaving {
	p, ok := c.prunes.pending[m.name]
	prune := ok && p.incarnation == m.incarnation
	return leaving{Incarnation: m.incarnation, Node: m.name, From: c.cfg.Name, Prune: prune}
}

// handleLeaving applies a leave intent (Serf's handleNodeLeaveIntent).
func (c *Core) handleLeaving(l leaving) {
	m := c.table.get(l.Node)
	if l.Prune && m != nil && m != c.self && m.gone() && l.Incarnation >= m.incarnation {
		c.handlePrune(m, l)
		return
	}
	if m == nil || l.Incarnation < m.incarnation || m.state == StateLeft {
		return
	}
	same := l.Incarnation == m.incarnation
	switch {
	case m == c.self:
		// An intent about us that we did not send (a force-leave, or a
		// previous life's): we are not leaving, so refute.
		if !c.intending && !c.leaving {
			c.refute(l.Incarnation)
		}
		return
	case m.state == StateDead && same:
		// Heard after its death: Serf's handleNodeLeaveIntent turns a
		// StatusFailed member left, as leaverDied does when the order
		// is the other way round. Only at the incarnation it died at:
		// a newer intent was sent about a member alive after that
		// death, and "left" at an incarnation no one convicted would
		// evict it from every member that holds it alive there.
		c.leaverDied(m, l.Incarnation, l.From)
		return
	case m.state == StateLeaving && same:
		// Leaving already. A pruning intent still has work to do (Serf
		// prunes a StatusLeaving member) and news to spread.
		if l.Prune && c.schedulePrune(m, l) {
			c.pushIntent(m, l)
		}
		return
	}
	revived := m.state == StateDead // at a newer incarnation (above)
	m = c.table.own(m)
	if !(m.state == StateSuspect && same) {
		m.incarnation = l.Incarnation
		delete(c.suspicions, m.name)
	}
	// A suspect at the intent's incarnation is StatusAlive to Serf (the
	// suspicion is memberlist's), so the intent makes it leaving and its
	// suspicion runs on (leaverDied decides if it expires); pushIntent
	// sends the two together.
	c.setState(m, StateLeaving)
	if revived {
		c.insertProbeOrder(m)
	}
	if l.Prune {
		c.schedulePrune(m, l)
	}
	c.pushIntent(m, l)
	c.emit(EventLeaving, m, l.From, 0)
}

// pushIntent queues leave intent l about m for gossip, with m's running
// suspicion if it has one.
func (c *Core) pushIntent(m *memberState, l leaving) {
	if c.suspected(m) {
		c.pushSuspicion(m, c.suspicionOf(m))
		return
	}
	c.queue.push(m.name, encodeLeaving(nil, l))
}
