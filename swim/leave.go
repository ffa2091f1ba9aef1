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
// (Serf's RemoveFailedNode on a failed member); an alive member is marked
// leaving, and since it is not leaving it refutes with a higher
// incarnation and is alive everywhere again, exactly as Serf's member
// refutes a leave intent about itself by re-broadcasting its join.
//
// Merge rules for the intent (i is the local incarnation of the member):
// leaving(j) overrides alive(i) iff j >= i and suspect(i) iff j > i;
// alive(j) overrides leaving(i) iff j > i (the member refuted: Serf's
// newer join intent turning StatusLeaving back into StatusAlive); suspect
// and left apply to a leaving member as to an alive one. A left member
// ignores the intent. At equal incarnation, then, dead/left > suspect >
// leaving > alive, so a suspicion of a leaver that went silent runs its
// course instead of being reset by relayed intents.
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

// ForceLeave is `consul force-leave` (Serf's RemoveFailedNode). A failed
// member (suspect or dead here) becomes "left" at its current incarnation
// and a left message is broadcast, so every member (and the agent, which
// deregisters left nodes) stops treating it as a failure to recover from.
// An alive member is accepted too, as Serf accepts it: it becomes
// "leaving" and, if it is in fact alive, refutes with a higher
// incarnation and comes back (force-leave never evicts a healthy member
// for good); if it has crashed unnoticed, it is declared dead while
// leaving and so becomes "left" (leaverDied).
// An already left member is not an error.
func (c *Core) ForceLeave(name string) error {
	m := c.table.get(name)
	switch {
	case name == c.cfg.Name:
		return fmt.Errorf("swim: ForceLeave(%q) names the local member; call Leave instead", name)
	case m == nil:
		return fmt.Errorf("swim: ForceLeave: no member named %q is known", name)
	case m.state == StateLeft:
		return nil
	}
	c.stats.ForcedLeaves++
	if m.state == StateAlive || m.state == StateLeaving {
		l := leaving{Incarnation: m.incarnation, Node: name, From: c.cfg.Name}
		c.handleLeaving(l)
		// Tell the member itself at once: its refutation is what ends
		// the episode, and gossip might pick it only later.
		c.sendRaw(m.addr, encodeLeaving(nil, l))
		return nil
	}
	c.handleDead(dead{Incarnation: m.incarnation, Node: name, From: name})
	return nil
}

// handleLeaving applies a leave intent.
func (c *Core) handleLeaving(l leaving) {
	m := c.table.get(l.Node)
	if l.Prune && m != nil && m != c.self && m.gone() && l.Incarnation >= m.incarnation {
		c.handlePrune(m, l)
		return
	}
	if m == nil || l.Incarnation < m.incarnation || m.state == StateLeft {
		return
	}
	switch {
	case m == c.self:
		// An intent about us that we did not send (a force-leave, or a
		// previous life's): we are not leaving, so refute.
		if !c.intending && !c.leaving {
			c.refute(l.Incarnation)
		}
		return
	case m.state == StateDead && l.Incarnation == m.incarnation:
		// Heard after its death: Serf's handleNodeLeaveIntent turns a
		// StatusFailed member left, as leaverDied does when the order
		// is the other way round. Only at the incarnation it died at:
		// a newer intent was sent about a member alive after that
		// death, and "left" at an incarnation no one convicted would
		// evict it from every member that holds it alive there.
		c.leaverDied(m, l.Incarnation, l.From)
		return
	case m.state == StateSuspect && l.Incarnation == m.incarnation:
		// Serf keeps a leave intent through memberlist's suspicion; so
		// do we, without resetting the suspicion (leaverDied decides).
		// The intent is not queued: the queue keeps one broadcast per
		// member, and it would replace the suspicion's, which must go
		// on spreading. The verdict's "left" tells everyone anyway.
		if !m.leaveIntent {
			c.table.own(m).leaveIntent = true
		}
		return
	case m.state != StateAlive && l.Incarnation == m.incarnation:
		return
	}
	revived := m.state == StateDead // at a newer incarnation (above)
	m = c.table.own(m)
	m.incarnation = l.Incarnation
	delete(c.suspicions, m.name)
	c.setState(m, StateLeaving)
	if revived {
		c.insertProbeOrder(m)
	}
	c.queue.push(m.name, encodeLeaving(nil, l))
	c.emit(EventLeaving, m, l.From, 0)
}

// ForceLeavePrune is ForceLeave with Serf's prune: a failed member is
// marked left and forgotten here at once (an EventReap), and a leave
// intent with Prune asks every member that holds it as failed or left to
// forget it too, instead of keeping it until ReapInterval. An alive member
// is only forced to leave (it refutes, and is never pruned).
func (c *Core) ForceLeavePrune(name string) error {
	if err := c.ForceLeave(name); err != nil {
		return err
	}
	m := c.table.get(name)
	if m == nil || !m.gone() {
		return nil
	}
	l := leaving{Incarnation: m.incarnation, Node: name, From: c.cfg.Name, Prune: true}
	c.forget(m)
	c.queue.push(name, encodeLeaving(nil, l)) // replaces the left broadcast: it says more
	return nil
}

// forget drops a gone member from the table at once (Serf's eraseNode).
func (c *Core) forget(m *memberState) {
	c.emit(EventReap, m, c.cfg.Name, 0)
	delete(c.firstAccuser, m.name)
	delete(c.suspicions, m.name)
	c.table.remove(m)
}

// handlePrune applies a pruning intent to a member held as failed or
// left: it is recorded left (if it was failed), then forgotten, and the
// intent is passed on.
func (c *Core) handlePrune(m *memberState, l leaving) {
	if m.state == StateDead {
		m = c.table.own(m)
		c.setState(m, StateLeft)
		c.emit(EventLeft, m, l.From, 0)
	}
	c.forget(m)
	c.queue.push(l.Node, encodeLeaving(nil, l))
}
