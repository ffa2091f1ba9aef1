package swim

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"slices"
)

// Core is the pure SWIM + Lifeguard state machine of one member. Time
// enters only through Tick (one TickInterval each), packets through Step
// and the push-pull methods, randomness through the seeded generator given
// to NewCore. Everything it wants done comes out of Ready. It has no
// goroutines, sockets or clocks, and is not safe for concurrent use: the
// shell (Node) or the simulator owns it.
type Core struct {
	cfg   Config
	rng   *rand.Rand
	frame *framer
	now   int64 // ticks since start

	self *memberState
	// table holds every known member by slot, iterated in slot order so
	// seeded runs replay exactly (see table.go).
	table    memberTable
	numAlive int // members alive or suspect, self included
	// gone lists the slots of members that became dead or left, the only
	// reap candidates.
	gone []int32
	// firstAccuser names who suspected a member first in its current or
	// last suspicion episode, so a dead verdict can be traced to it.
	firstAccuser map[string]string

	probe      probeState
	late       probeState // previous period's probe still waiting for a late ack
	probeOrder []int32    // slots of live members; the round is [probeIndex:] (SWIM §4.3)
	probeIndex int
	nextSeq    uint32
	relays     []relay // ping-reqs we are serving for others

	suspicions map[string]*suspicion
	// suspicionDue is no later than the earliest suspicion deadline, so
	// Tick looks at the suspicions only when one may have expired.
	suspicionDue int64
	health       awareness
	queue        broadcastQueue

	nextProbeTick    int64
	nextGossipTick   int64
	nextPushPullTick int64
	nextReconnTick   int64
	nextReapTick     int64

	// Graceful leave (leave.go): intending while the leave intent goes
	// out, then leaving once the "left" announcement is queued.
	intending bool
	// intentDue is the tick after the first gossip round that carried
	// the intent (0: none yet); the left announcement goes out then.
	intentDue  int64
	leaving    bool
	leaveBcast uint64 // broadcast id of our leave announcement

	// prunes holds pending prunes of live members and the tombstones of
	// pruned ones (prune.go).
	prunes pruneState

	events userEvents
	names  nameConflicts

	out   Ready
	stats Stats
}

// Ready is what the core wants done since the last call to Ready: packets
// to send, push-pull exchanges to start and events to publish.
type Ready struct {
	Packets   []OutPacket
	PushPulls []PushPullRequest
	Events    []Event
}

// Empty reports whether there is nothing to do.
func (r *Ready) Empty() bool {
	return len(r.Packets) == 0 && len(r.PushPulls) == 0 && len(r.Events) == 0
}

// OutPacket is one UDP datagram to send.
type OutPacket struct {
	To   netip.AddrPort
	Data []byte
}

// PushPullRequest asks the shell to open a stream to To, send Frame, read
// the peer's reply frame and hand it to MergePushPull.
type PushPullRequest struct {
	To    netip.AddrPort
	Join  bool
	Frame []byte
}

// NewCore builds a core for a member at addr. rng drives every random
// choice; nonce supplies AES-GCM nonces (crypto/rand.Reader in production)
// and may be nil when cfg.SecretKey is empty.
func NewCore(cfg Config, addr netip.AddrPort, rng *rand.Rand, nonce io.Reader) (*Core, error) {
	return newCore(cfg, addr, rng, nonce, newDirectory(false))
}

// newCore is NewCore with a given name directory (the simulator shares one
// among all its cores).
func newCore(cfg Config, addr netip.AddrPort, rng *rand.Rand, nonce io.Reader, dir *directory) (*Core, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if !addr.IsValid() {
		return nil, fmt.Errorf("swim: member address %v is invalid; pass the advertised ip:port", addr)
	}
	if len(cfg.SecretKey) > 0 && nonce == nil {
		return nil, errors.New("swim: encryption needs a nonce source (crypto/rand.Reader)")
	}
	f, err := newFramer(cfg.Label, cfg.SecretKey, nonce)
	if err != nil {
		return nil, err
	}
	c := &Core{
		cfg:          cfg,
		rng:          rng,
		frame:        f,
		table:        memberTable{dir: dir},
		firstAccuser: map[string]string{},
		suspicions:   map[string]*suspicion{},
		health:       awareness{max: cfg.AwarenessMaxMultiplier},
		events:       newUserEvents(cfg.UserEventBuffer),
	}
	c.self = c.addMember(&identity{name: cfg.Name, addr: addr, tags: cloneTags(cfg.Tags)}, StateAlive, 0)
	c.nextProbeTick = 1 + c.rng.Int64N(c.cfg.ticks(cfg.ProbeInterval))
	c.nextGossipTick = 1 + c.rng.Int64N(c.cfg.ticks(cfg.GossipInterval))
	c.nextPushPullTick = -1 // scheduled on the first tick, once N is known
	if cfg.ReconnectInterval > 0 {
		c.nextReconnTick = c.cfg.ticks(cfg.ReconnectInterval)
	}
	c.nextReapTick = c.reapCheckTicks()
	// Announce ourselves so anyone we reach learns us without push-pull.
	c.broadcastAlive(c.self)
	return c, nil
}

// Name is the local member's name.
func (c *Core) Name() string { return c.cfg.Name }

// Now is the core's tick count.
func (c *Core) Now() int64 { return c.now }

// Tick advances time by one TickInterval and runs whatever timers are due:
// probe rounds, relay deadlines, suspicion timeouts, gossip, push-pull and
// reaping. Each check is O(1) unless something is due.
func (c *Core) Tick() {
	c.now++
	if len(c.relays) > 0 {
		c.expireRelays()
	}
	if c.probe.active || c.late.active {
		c.checkProbe()
	}
	if c.now >= c.nextProbeTick {
		c.startProbe()
	}
	if len(c.suspicions) > 0 && c.now >= c.suspicionDue {
		c.expireSuspicions()
	}
	if len(c.prunes.pending) > 0 && c.now >= c.prunes.dueMin {
		c.runPrunes()
	}
	if c.now >= c.nextGossipTick {
		c.nextGossipTick = c.now + c.cfg.ticks(c.cfg.GossipInterval)
		c.gossip()
	}
	if c.nextPushPullTick < 0 {
		// Stagger the first sync over a whole (scaled) interval so members
		// started together do not all sync at once.
		c.nextPushPullTick = c.now + c.rng.Int64N(c.pushPullTicks())
	}
	if c.cfg.PushPullInterval > 0 && c.now >= c.nextPushPullTick {
		c.nextPushPullTick = c.now + c.pushPullTicks()
		c.startPushPull(false)
	}
	if c.cfg.ReconnectInterval > 0 && c.now >= c.nextReconnTick {
		c.nextReconnTick = c.now + c.cfg.ticks(c.cfg.ReconnectInterval)
		c.startPushPull(true)
	}
	if c.now >= c.nextReapTick {
		c.nextReapTick = c.now + c.reapCheckTicks()
		c.reap()
	}
	if c.intending && !c.leaving && c.intentSent() {
		c.announceLeft()
	}
}

// Ready returns and clears everything the core wants done.
func (c *Core) Ready() Ready {
	if c.out.Empty() {
		return Ready{}
	}
	r := c.out
	c.out = Ready{}
	return r
}

// Step handles one received UDP packet from addr. Bad packets are dropped
// and counted in Stats; Step never panics on any input.
func (c *Core) Step(from netip.AddrPort, pkt []byte) {
	c.stats.PacketsReceived++
	c.stats.BytesReceived += uint64(len(pkt))
	if len(pkt) > c.cfg.PacketBytes {
		c.stats.DroppedMalformed++
		return
	}
	body, err := c.frame.open(pkt)
	if err != nil {
		c.countDrop(err)
		return
	}
	msgs, err := decodeBody(body)
	if err != nil {
		c.stats.DroppedMalformed++
		return
	}
	for _, m := range msgs {
		c.handle(from, m)
	}
}

func (c *Core) countDrop(err error) {
	switch {
	case errors.Is(err, errLabelMismatch):
		c.stats.DroppedLabel++
	case errors.Is(err, errDecrypt), errors.Is(err, errEncrypted), errors.Is(err, errNotEncrypted):
		c.stats.DroppedCrypto++
	case errors.Is(err, errBadVersion):
		c.stats.DroppedVersion++
	default:
		c.stats.DroppedMalformed++
	}
}

// handle dispatches one decoded message.
func (c *Core) handle(from netip.AddrPort, m any) {
	switch m := m.(type) {
	case ping:
		c.handlePing(from, m)
	case pingReq:
		c.handlePingReq(from, m)
	case ack:
		c.handleAck(m)
	case nack:
		c.handleNack(m)
	case alive:
		c.handleAlive(m)
	case suspect:
		c.handleSuspect(m)
	case dead:
		c.handleDead(m)
	case userMsg:
		c.handleUser(m)
	case conflict:
		c.handleConflict(m)
	case leaving:
		c.handleLeaving(m)
	}
}

// ---- local operations ----

// Members returns copies of every known member, self included, in a
// stable order.
func (c *Core) Members() []Member {
	out := make([]Member, 0, c.table.count)
	c.table.each(func(m *memberState) { out = append(out, c.export(m)) })
	slices.SortFunc(out, func(a, b Member) int {
		switch {
		case a.Name < b.Name:
			return -1
		case a.Name > b.Name:
			return 1
		}
		return 0
	})
	return out
}

// Member returns a copy of the named member.
func (c *Core) Member(name string) (Member, bool) {
	m := c.table.get(name)
	if m == nil {
		return Member{}, false
	}
	return c.export(m), true
}

// LocalMember returns a copy of the local member.
func (c *Core) LocalMember() Member { return c.export(c.self) }

// export copies m for callers.
func (c *Core) export(m *memberState) Member { return m.member(c.firstAccuser[m.name]) }

// NumAlive is the number of members alive or suspect, self included.
func (c *Core) NumAlive() int { return c.numAlive }

// SetTags replaces the local member's tags and announces them with a new
// incarnation (an alive message with a higher incarnation overrides every
// older one, SWIM §4.2).
func (c *Core) SetTags(tags map[string]string) error {
	if err := checkTags(tags); err != nil {
		return fmt.Errorf("swim: SetTags: %w", err)
	}
	c.self = c.table.own(c.self)
	c.self.identity = &identity{name: c.self.name, addr: c.self.addr, tags: cloneTags(tags)}
	c.self.incarnation++
	c.broadcastAlive(c.self)
	c.emit(EventUpdate, c.self, c.cfg.Name, 0)
	return nil
}

// Stats returns a copy of the counters.
func (c *Core) Stats() Stats {
	s := c.stats
	s.HealthScore = c.health.score
	s.Members = c.table.count
	s.Alive = c.numAlive
	s.BroadcastsQueued = c.queue.len()
	return s
}

// ---- membership table ----

// addMember records a member not known before and returns its record.
func (c *Core) addMember(id *identity, state State, inc uint32) *memberState {
	m := c.table.add(id, state, inc, c.now)
	if !m.gone() {
		c.numAlive++
	}
	if c.self != nil && !m.gone() { // self is added first and never probed
		c.insertProbeOrder(m)
	}
	return m
}

// insertProbeOrder adds a member (new, or alive again) to the probe
// order. It lands among the members not yet probed this round, at a
// random position in effect since each pick is random, as memberlist does:
// a joiner is probed within one round without disturbing the round-robin
// guarantee for the others.
func (c *Core) insertProbeOrder(m *memberState) {
	if m.inProbeOrder {
		return
	}
	c.table.own(m).inProbeOrder = true
	c.probeOrder = append(c.probeOrder, m.slot)
}

// setState changes m's state keeping numAlive and stateTick right. m must
// be owned (memberTable.own).
func (c *Core) setState(m *memberState, s State) {
	wasGone := m.gone()
	m.state = s
	m.stateTick = c.now
	switch {
	case wasGone && !m.gone():
		c.numAlive++
	case !wasGone && m.gone():
		c.numAlive--
		c.gone = append(c.gone, m.slot)
	}
}

// reap forgets dead and left members after ReapInterval. Only members
// on the gone list are looked at, so a quiet large cluster costs nothing.
// Members still in the probe order (no probe round has dropped them yet)
// leave it in one pass at the end: removing them one by one costs a scan
// of the order each, O(N·D) after a mass failure.
func (c *Core) reap() {
	limit := c.cfg.ticks(c.cfg.ReapInterval)
	kept := c.gone[:0]
	listed := false
	for _, slot := range c.gone {
		m := c.table.at(slot)
		switch {
		case m == nil || !m.gone():
			// Forgotten already, or alive again: no longer a candidate.
		case c.now-m.stateTick < limit:
			kept = append(kept, slot)
		default:
			c.emit(EventReap, m, "", 0)
			delete(c.firstAccuser, m.name)
			listed = listed || m.inProbeOrder
			c.table.remove(m)
		}
	}
	c.gone = kept
	if listed {
		c.dropForgottenFromProbeOrder()
	}
	c.expireTombs()
}

// dropForgottenFromProbeOrder takes every forgotten slot out of the probe
// order in one pass, for reap and prune as they forget members still
// listed: nextProbeTarget drops a slot only when it finds it gone or
// forgotten, and by then the slot may hold the member again, or a
// newcomer (a private directory reuses slots), then listed twice. The
// round stays a round: the order is compacted in place, so the members
// probed this round stay before probeIndex and the others after it.
func (c *Core) dropForgottenFromProbeOrder() {
	kept, index := c.probeOrder[:0], c.probeIndex
	for i, slot := range c.probeOrder {
		if c.table.at(slot) == nil {
			if i < c.probeIndex {
				index--
			}
			continue
		}
		kept = append(kept, slot)
	}
	c.probeOrder, c.probeIndex = kept, index
}

func (c *Core) reapCheckTicks() int64 {
	return min(c.cfg.ticks(c.cfg.ReapInterval), c.cfg.ticks(10*c.cfg.ProbeInterval))
}

// applyHealth changes the local health score (Lifeguard §IV-A) and
// reports a change as an EventHealth.
func (c *Core) applyHealth(delta int) {
	before := c.health.score
	c.health.apply(delta)
	if c.health.score != before {
		c.out.Events = append(c.out.Events, Event{
			Kind: EventHealth, Node: c.cfg.Name, Member: c.export(c.self),
			HealthScore: c.health.score, Tick: c.now,
		})
	}
}

// emit records an event about m.
func (c *Core) emit(kind EventKind, m *memberState, from string, confirmations int) {
	c.out.Events = append(c.out.Events, Event{
		Kind:          kind,
		Node:          c.cfg.Name,
		Member:        c.export(m),
		From:          from,
		Confirmations: confirmations,
		Tick:          c.now,
	})
}

// ---- sending ----

// send frames body (already holding the primary messages), fills the rest
// of the packet with broadcasts and queues it for to.
func (c *Core) send(to netip.AddrPort, body []byte) {
	body = c.queue.fill(body, c.broadcastRoom(), retransmitLimit(c.cfg.RetransmitMult, c.numAlive))
	c.sendRaw(to, body)
}

// broadcastRoom is the most body a packet can carry: a broadcast longer
// than this is never sent.
func (c *Core) broadcastRoom() int { return c.cfg.PacketBytes - c.frame.overheadBytes() }

func (c *Core) sendRaw(to netip.AddrPort, body []byte) {
	pkt, err := c.frame.seal(body)
	if err != nil {
		return // nonce source failed; nothing sensible to send
	}
	c.stats.PacketsSent++
	c.stats.BytesSent += uint64(len(pkt))
	c.out.Packets = append(c.out.Packets, OutPacket{To: to, Data: pkt})
}

// gossip sends pending broadcasts to GossipNodes random members (SWIM
// §4.1's infection-style dissemination, done on its own faster timer as
// memberlist does). Recently dead members are included so that a member
// wrongly declared dead hears it and refutes. Nothing is sent when the
// queue is empty, which keeps a quiet cluster's load at one probe round.
func (c *Core) gossip() {
	if c.queue.len() == 0 {
		return
	}
	deadTicks := c.cfg.ticks(c.cfg.GossipToDeadTime)
	targets := c.randomMembers(c.cfg.GossipNodes, func(m *memberState) bool {
		switch m.state {
		case StateAlive, StateSuspect, StateLeaving:
			return true
		case StateDead:
			return c.now-m.stateTick < deadTicks
		}
		return false
	})
	if c.intending && c.intentDue == 0 && len(targets) > 0 {
		c.intentDue = c.now + 1 // our leave intent is in this round (leave.go)
	}
	for _, m := range targets {
		if c.queue.len() == 0 {
			return
		}
		c.send(m.addr, nil)
	}
}

// randomMembers picks up to k distinct members other than self that match
// ok, by bounded random sampling and then a bounded scan, so the cost does
// not grow with N in the common case.
func (c *Core) randomMembers(k int, ok func(*memberState) bool) []*memberState {
	var picked []*memberState
	has := func(m *memberState) bool { return slices.Contains(picked, m) }
	n := int(c.table.slots())
	for tries := 0; len(picked) < k && tries < 4*k+4 && n > 1; tries++ {
		m := c.table.at(int32(c.rng.IntN(n)))
		if m != nil && m != c.self && ok(m) && !has(m) {
			picked = append(picked, m)
		}
	}
	if len(picked) < k && c.table.count <= 64 {
		start := c.rng.IntN(max(n, 1))
		for i := 0; i < n && len(picked) < k; i++ {
			m := c.table.at(int32((start + i) % n))
			if m != nil && m != c.self && ok(m) && !has(m) {
				picked = append(picked, m)
			}
		}
	}
	return picked
}

func cloneTags(t map[string]string) map[string]string {
	if len(t) == 0 {
		return nil
	}
	out := make(map[string]string, len(t))
	for k, v := range t {
		out[k] = v
	}
	return out
}
