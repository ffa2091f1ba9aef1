package swim

import (
	"math"
	"net/netip"
	"slices"
	"time"
)

// Pruning is `consul force-leave -prune` (Serf's RemoveFailedNodePrune):
// the member is not only forced to leave but erased from the member list
// everywhere, instead of lingering as left until ReapInterval. The intent
// carries a Prune flag, and each member that hears it does what Serf's
// handleNodeLeaveIntent and handlePrune do there:
//
//   - failed (dead) or left: it is recorded left if it was failed, then
//     forgotten at once (an EventReap), and the intent is passed on.
//   - alive, suspect or leaving: it becomes leaving as for any intent,
//     and is forgotten pruneDelay later, the time the intent needs to
//     spread and a live member's refutation to come back (Serf sleeps
//     BroadcastTimeout + LeavePropagateDelay before erasing). A member
//     that refuted meanwhile (alive at a higher incarnation) is kept.
//
// A forgotten member leaves a tombstone for recentPruneTime (Serf keeps
// intents about unknown members as long, RecentIntentTimeout): alive news
// about it at the pruned incarnation or older is stale (a relay that had
// not heard of the prune, a push-pull from a member that had not) and
// would only resurrect it, so it is dropped. A member that is in fact
// alive and missed its own prune (it was cut off) and then reaches us
// (its own push-pull, a ping) is told of the prune on the spot, refutes
// with a higher incarnation, and that newer word rejoins it everywhere.

// recentPruneTime is how long a tombstone lasts (Serf's default
// RecentIntentTimeout), bounded by ReapInterval.
const recentPruneTime = 5 * time.Minute

// pruneState is a core's pending prunes and tombstones.
type pruneState struct {
	// pending: live members that heard a pruning intent, forgotten at
	// due unless they refuted; dueMin is no later than the earliest due.
	pending map[string]pendingPrune
	dueMin  int64
	// tombs: members forgotten by a prune, by name.
	tombs map[string]tombstone
}

type pendingPrune struct {
	incarnation uint32
	due         int64
}

type tombstone struct {
	incarnation uint32
	until       int64 // tick it expires at
	told        int64 // last tick the member was told of its prune (0: never)
}

// ForceLeavePrune is ForceLeave with Serf's prune: every member that
// hears the intent forgets the member, a failed or left one at once, a
// live one once the intent has had time to spread and it to refute.
func (c *Core) ForceLeavePrune(name string) error {
	m, err := c.forceLeaveTarget("ForceLeavePrune", name)
	if err != nil {
		return err
	}
	c.stats.ForcedLeaves++
	l := leaving{Incarnation: m.incarnation, Node: name, From: c.cfg.Name, Prune: true}
	if m.gone() {
		c.handlePrune(m, l)
		return nil
	}
	c.forceIntent(m, l)
	return nil
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
	c.prune(m, l)
}

// prune forgets m for good (Serf's eraseNode), leaves a tombstone and
// queues the pruning intent, which replaces any other news about m: it
// says more. A member pruned while still live (leaving) leaves numAlive
// and the probe order here, as setState and nextProbeTarget do for one
// that goes gone: otherwise Lifeguard would wait for confirmations from
// a member that no longer exists, and a rejoin under the same slot would
// be probed twice a round.
func (c *Core) prune(m *memberState, l leaving) {
	c.emit(EventReap, m, l.From, 0)
	if !m.gone() {
		c.numAlive--
	}
	delete(c.firstAccuser, m.name)
	delete(c.suspicions, m.name)
	delete(c.prunes.pending, m.name)
	if c.prunes.tombs == nil {
		c.prunes.tombs = map[string]tombstone{}
	}
	c.prunes.tombs[m.name] = tombstone{
		incarnation: m.incarnation,
		until:       c.now + c.cfg.ticks(min(recentPruneTime, c.cfg.ReapInterval)),
	}
	listed := m.inProbeOrder
	c.table.remove(m)
	if listed {
		c.dropForgottenFromProbeOrder()
	}
	c.queue.push(l.Node, encodeLeaving(nil, l))
}

// pruneDelay is how long a live member that heard a pruning intent is
// kept (as leaving) before it is forgotten: a probe period, in which the
// member hears the intent on a probe if gossip has not brought it, plus
// the gossip rounds that carry the intent its full retransmit count.
func (c *Core) pruneDelay() int64 {
	rounds := int64(retransmitLimit(c.cfg.RetransmitMult, c.numAlive))
	return c.cfg.ticks(c.cfg.ProbeInterval) + rounds*c.cfg.ticks(c.cfg.GossipInterval)
}

// schedulePrune arranges for m, leaving by pruning intent l, to be
// forgotten after pruneDelay. It reports whether this is news (no prune
// was pending for m at that incarnation).
func (c *Core) schedulePrune(m *memberState, l leaving) bool {
	if p, ok := c.prunes.pending[m.name]; ok && p.incarnation >= l.Incarnation {
		return false
	}
	if c.prunes.pending == nil {
		c.prunes.pending = map[string]pendingPrune{}
	}
	due := c.now + c.pruneDelay()
	if len(c.prunes.pending) == 0 {
		c.prunes.dueMin = due
	}
	c.prunes.pending[m.name] = pendingPrune{incarnation: l.Incarnation, due: due}
	c.prunes.dueMin = min(c.prunes.dueMin, due)
	return true
}

// runPrunes forgets the members whose prune is due, in name order so
// seeded runs replay exactly: those still leaving at the pruned
// incarnation, and those gone (left or failed) meanwhile at any
// incarnation. A member alive or suspect again, or leaving at a higher
// incarnation, refuted or spoke since, and is kept.
func (c *Core) runPrunes() {
	var due []string
	next := int64(math.MaxInt64)
	for name, p := range c.prunes.pending {
		if c.now >= p.due {
			due = append(due, name)
		} else {
			next = min(next, p.due)
		}
	}
	c.prunes.dueMin = next
	slices.Sort(due)
	for _, name := range due {
		p := c.prunes.pending[name]
		delete(c.prunes.pending, name)
		m := c.table.get(name)
		if m == nil || m == c.self || m.incarnation < p.incarnation {
			continue
		}
		if m.gone() || (m.state == StateLeaving && m.incarnation == p.incarnation) {
			c.prune(m, leaving{Incarnation: m.incarnation, Node: name, From: c.cfg.Name, Prune: true})
		}
	}
}

// prunedNews reports whether alive news about a member we do not know
// is stale news about one we pruned (see the tombstones above), and if
// so tells the member of its prune at addr, at most once a probe period:
// if it is alive it refutes, and its newer incarnation gets past the
// tombstone.
func (c *Core) prunedNews(name string, inc uint32, addr netip.AddrPort) bool {
	t, ok := c.prunes.tombs[name]
	if !ok || inc > t.incarnation {
		return false
	}
	c.stats.StalePruned++
	if t.told == 0 || c.now-t.told >= c.cfg.ticks(c.cfg.ProbeInterval) {
		t.told = c.now
		c.prunes.tombs[name] = t
		c.sendRaw(addr, encodeLeaving(nil, c.tombIntent(name, t)))
	}
	return true
}

func (c *Core) tombIntent(name string, t tombstone) leaving {
	return leaving{Incarnation: t.incarnation, Node: name, From: c.cfg.Name, Prune: true}
}

// expireTombs drops tombstones past their time; called from reap.
func (c *Core) expireTombs() {
	for name, t := range c.prunes.tombs {
		if c.now >= t.until {
			delete(c.prunes.tombs, name)
		}
	}
}
