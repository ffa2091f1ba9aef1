package swim

import (
	"maps"
	"math"
	"slices"
)

// The merge rules of SWIM §4.2, with Serf's "left". For a member M with
// local incarnation i:
//
//	alive(j)   overrides suspect/dead/left(i) and alive(i) iff j > i
//	suspect(j) overrides alive(i) iff j >= i; confirms suspect(i) iff j >= i
//	dead(j)    overrides alive/suspect(i) iff j >= i; left wins over dead
//
// except that dead(i) about a member whose leave intent at i was heard
// (it is leaving at i, suspected or not) makes it left, not dead: Serf's
// rule for a leaving member that fails (leaverDied); and a suspicion at i
// of a member leaving at i runs without changing its state (leave.go).
//
// Only M itself ever raises its incarnation (to refute, or to announce new
// tags), so "higher incarnation" means "newer word from M itself".

// handleAlive applies an alive message.
func (c *Core) handleAlive(a alive) {
	if a.Node == c.cfg.Name {
		c.aliveAboutSelf(a)
		return
	}
	if a.Node == "" || !a.Addr.IsValid() || a.Addr.Port() == 0 || a.Addr.Addr().IsUnspecified() {
		c.stats.DroppedMalformed++ // nameless or unreachable: nothing we could probe
		return
	}
	m := c.table.get(a.Node)
	if m == nil {
		if c.prunedNews(a.Node, a.Incarnation, a.Addr) {
			return
		}
		delete(c.prunes.tombs, a.Node) // newer word: it rejoins
		m = c.addMember(&identity{name: a.Node, addr: a.Addr, tags: a.Tags}, StateAlive, a.Incarnation)
		c.broadcastAlive(m)
		c.emit(EventJoin, m, a.Node, 0)
		return
	}
	if a.Addr != m.addr && !m.gone() {
		// Two addresses for one name. A suspect holder may be the
		// claimant's own previous life (restarted elsewhere): its claim
		// wins once the old record is dead (or left). So may a suspected
		// leaver, such as a crashed member force-left while suspected:
		// telling its replacement otherwise would make it yield for good.
		// An alive holder is a conflict, and so is an unsuspected leaving
		// one: it is still up until it has left.
		if (m.state == StateAlive || m.state == StateLeaving) && !c.suspected(m) {
			c.conflictSeen(m, a)
		}
		return
	}
	if a.Incarnation <= m.incarnation {
		return
	}
	m = c.table.own(m)
	changed := m.addr != a.Addr || !maps.Equal(m.tags, a.Tags)
	wasState := m.state
	if changed {
		m.identity = &identity{name: m.name, addr: a.Addr, tags: a.Tags}
	}
	m.incarnation = a.Incarnation
	delete(c.suspicions, m.name)
	if wasState != StateAlive {
		c.setState(m, StateAlive)
		if wasState == StateDead || wasState == StateLeft {
			c.insertProbeOrder(m)
		}
	}
	c.broadcastAlive(m)
	if wasState != StateAlive {
		c.emit(EventAlive, m, a.Node, 0)
	}
	if changed {
		c.emit(EventUpdate, m, a.Node, 0)
	}
}

// aliveAboutSelf refutes a rumour that carries a newer incarnation of us
// than we hold (a previous life of this member before a restart), so our
// current record wins everywhere.
func (c *Core) aliveAboutSelf(a alive) {
	if c.leaving {
		return
	}
	if a.Addr != c.self.addr {
		c.claimedElsewhere(a)
		return
	}
	if a.Incarnation > c.self.incarnation ||
		(a.Incarnation == c.self.incarnation && (a.Addr != c.self.addr || !maps.Equal(a.Tags, c.self.tags))) {
		c.refute(a.Incarnation)
	}
}

// handleSuspect applies a suspect message (SWIM §4.2) and, for a member
// already suspected, counts an independent confirmation (Lifeguard §IV-B).
func (c *Core) handleSuspect(s suspect) {
	m := c.table.get(s.Node)
	if m == nil || s.Incarnation < m.incarnation || m.gone() {
		return
	}
	if m == c.self {
		if !c.leaving {
			c.refute(s.Incarnation)
		}
		return
	}
	if s.First == "" {
		s.First = s.From
	}
	if c.suspected(m) && s.Incarnation == m.incarnation {
		sus := c.suspicions[m.name]
		if sus.confirm(s.From) {
			c.suspicionDue = min(c.suspicionDue, sus.deadline)
			c.stats.Confirmations++
			s.First = sus.first
			c.pushSuspicion(m, s)
			c.emit(EventConfirm, m, s.From, sus.confirmations())
		}
		return
	}
	// Alive, or suspect at a lower incarnation: the member refuted the old
	// suspicion (we may have missed the alive) and this is a new one, with
	// a fresh timer, not a confirmation of the refuted one.
	// A member leaving at the suspicion's incarnation stays leaving while
	// it is suspected, as Serf's StatusLeaving is untouched by
	// memberlist's suspicion; the suspicion runs all the same
	// (expireSuspicions). At a higher incarnation the member spoke since
	// its intent: it refuted it.
	stillLeaving := m.state == StateLeaving && s.Incarnation == m.incarnation
	m = c.table.own(m)
	m.incarnation = s.Incarnation
	c.firstAccuser[m.name] = s.First
	if !stillLeaving {
		c.setState(m, StateSuspect)
	}
	c.stats.Suspicions++
	sus := c.newSuspicionFor(s.First)
	sus.confirm(s.From) // the relayed accuser counts too, if another
	c.suspicions[m.name] = sus
	if len(c.suspicions) == 1 {
		c.suspicionDue = sus.deadline
	}
	c.suspicionDue = min(c.suspicionDue, sus.deadline)
	c.pushSuspicion(m, s)
	c.emit(EventSuspect, m, s.From, 0)
}

// suspected reports whether a suspicion of m is running: m is suspect, or
// leaving and suspected (a leave intent does not stop a suspicion).
func (c *Core) suspected(m *memberState) bool {
	if len(c.suspicions) == 0 || (m.state != StateSuspect && m.state != StateLeaving) {
		return false
	}
	return c.suspicions[m.name] != nil
}

// pushSuspicion queues suspicion s of m for gossip. The queue keeps one
// broadcast per member, so for a member that is leaving as well the
// broadcast carries both the suspicion and the leave intent: neither
// displaces the other, and every member that hears it ends up with both.
// If the pair cannot fit in a packet (long names, a label, encryption),
// it would never be sent: the suspicion goes alone then, as it must keep
// spreading, and the intent's outcome follows with the verdict (left,
// which wins over dead, or the member's refutation).
func (c *Core) pushSuspicion(m *memberState, s suspect) {
	msg := encodeSuspect(nil, s)
	if m.state == StateLeaving {
		if both := encodeLeaving(msg, c.intentOf(m)); len(both) <= c.broadcastRoom() {
			msg = both
		}
	}
	c.queue.push(m.name, msg)
}

// suspicionOf is the suspect message for m's running suspicion, in the
// name of its first accuser (so relaying it confirms nothing).
func (c *Core) suspicionOf(m *memberState) suspect {
	first := c.firstAccuser[m.name]
	return suspect{Incarnation: m.incarnation, Node: m.name, From: first, First: first}
}

func (c *Core) newSuspicionFor(first string) *suspicion {
	minTicks, maxTicks := c.cfg.suspicionTimeouts(c.numAlive)
	k := 0
	if c.cfg.Lifeguard {
		// A member that has reason to think it is the slow one (Lifeguard
		// §IV-A) is also slower to convict: it may simply not have
		// processed the suspect's refutation yet.
		minTicks, maxTicks = c.health.scale(minTicks), c.health.scale(maxTicks)
		// Confirmations can only come from members other than the suspect
		// and the first accuser; capping K keeps small clusters (N=3–5)
		// reaching the minimum timeout too.
		k = min(c.cfg.SuspicionConfirmations, c.numAlive-2)
	} else {
		maxTicks = minTicks
	}
	return newSuspicion(first, c.now, minTicks, maxTicks, k)
}

// expireSuspicions declares dead every suspect whose timer ran out, in name
// order so seeded runs replay exactly.
func (c *Core) expireSuspicions() {
	var due []string
	next := int64(math.MaxInt64)
	for name, s := range c.suspicions {
		if c.now >= s.deadline {
			due = append(due, name)
		} else {
			next = min(next, s.deadline)
		}
	}
	c.suspicionDue = next
	slices.Sort(due)
	for _, name := range due {
		m := c.table.get(name)
		if m == nil || !c.suspected(m) {
			delete(c.suspicions, name)
			continue
		}
		c.handleDead(dead{Incarnation: m.incarnation, Node: name, From: c.cfg.Name, First: c.firstAccuser[name]})
	}
}

// handleDead applies a dead message: a failure verdict, or a graceful
// leave when From is the member itself.
func (c *Core) handleDead(d dead) {
	m := c.table.get(d.Node)
	if m == nil || d.Incarnation < m.incarnation {
		return
	}
	left := d.From == d.Node
	if m.state == StateLeft || (m.state == StateDead && !left) {
		return
	}
	if m == c.self {
		// A "left" about us that we did not send is a force-leave (or the
		// record of a previous life that left): we are alive, so refute,
		// as memberlist and Serf do.
		if !c.leaving {
			c.refute(d.Incarnation)
		}
		return
	}
	if !left && m.state == StateLeaving && d.Incarnation == m.incarnation {
		c.leaverDied(m, m.incarnation, d.From)
		return
	}
	conf := 0
	if sus := c.suspicions[m.name]; sus != nil {
		conf = sus.confirmations()
		delete(c.suspicions, m.name)
	}
	m = c.table.own(m)
	m.incarnation = d.Incarnation
	switch {
	case left:
	case d.First != "":
		c.firstAccuser[m.name] = d.First
	case c.firstAccuser[m.name] == "" || m.state == StateAlive:
		c.firstAccuser[m.name] = d.From
	}
	if !left {
		d.First = c.firstAccuser[m.name]
	}
	c.queue.push(m.name, encodeDead(nil, d))
	if left {
		c.setState(m, StateLeft)
		c.emit(EventLeft, m, d.From, 0)
		return
	}
	c.setState(m, StateDead)
	c.stats.DeadVerdicts++
	c.emit(EventDead, m, d.From, conf)
}

// leaverDied records as left, at incarnation inc, a member that was
// leaving when it was declared dead (its suspicion expired here, or a dead
// verdict about it arrived), or that was dead when its leave intent
// arrived. This is Serf's handleNodeLeave: when memberlist reports a
// member gone, a member in StatusLeaving becomes StatusLeft and only one
// in StatusAlive becomes StatusFailed (and handleNodeLeaveIntent turns a
// StatusFailed member StatusLeft). It meant to leave (gracefully, or by
// force-leave while still seen alive), so it is not reconnected to, it is
// reaped as left, and the agent deregisters it, exactly as after a
// completed leave. The "left" announcement goes out in the leaver's name,
// as ForceLeave's does, so members that never heard the intent agree
// (left wins over dead). from, who declared it dead or sent the intent,
// is what the EventLeft reports.
func (c *Core) leaverDied(m *memberState, inc uint32, from string) {
	delete(c.suspicions, m.name)
	m = c.table.own(m)
	m.incarnation = inc
	c.setState(m, StateLeft)
	c.queue.push(m.name, encodeDead(nil, dead{Incarnation: m.incarnation, Node: m.name, From: m.name}))
	c.emit(EventLeft, m, from, 0)
}

// refute answers a suspicion or death verdict about ourselves by raising
// our incarnation above the accusation and broadcasting alive (SWIM §4.2).
// Having to refute is also a sign that we may be the slow one, so it
// raises the local health score (Lifeguard §IV-A).
func (c *Core) refute(accusedInc uint32) {
	c.self = c.table.own(c.self)
	c.self.incarnation = max(c.self.incarnation, accusedInc) + 1
	c.stats.Refutations++
	if c.cfg.Lifeguard {
		c.applyHealth(1)
	}
	c.broadcastAlive(c.self)
	c.emit(EventRefute, c.self, c.cfg.Name, 0)
	if c.cfg.Lifeguard {
		c.refuteBurst()
	}
}

// refuteBurstMembers is how many members a refutation is sent to at once:
// everyone in clusters up to that size (measured: 12 was not enough to
// beat the timers at N=50 with 1.5s-slow members, 48 was), and enough
// seeds beyond it that the epidemic finishes in a round or two.
const refuteBurstMembers = 64

// refuteBurst sends the refutation straight to a batch of random members
// instead of waiting for the next gossip round. Every member runs its own
// suspicion timer, so the refutation races all of them; a member slow
// enough to be suspected has already lost time before it could refute.
// Refutations are rare, so the burst costs little (at most 64 small
// packets each). An extension of ours, in the spirit of Lifeguard's buddy
// system (§IV-C): both shorten the path between accusation and answer.
func (c *Core) refuteBurst() {
	targets := c.randomMembers(refuteBurstMembers, func(m *memberState) bool { return !m.gone() })
	msg := encodeAlive(nil, alive{Incarnation: c.self.incarnation, Node: c.cfg.Name, Addr: c.self.addr, Tags: c.self.tags})
	for _, m := range targets {
		c.sendRaw(m.addr, msg)
	}
}

func (c *Core) broadcastAlive(m *memberState) {
	c.queue.push(m.name, encodeAlive(nil, alive{Incarnation: m.incarnation, Node: m.name, Addr: m.addr, Tags: m.tags}))
}
