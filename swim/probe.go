package swim

import "net/netip"

// probeState is the one probe in flight (SWIM §3.1: one protocol period,
// one target). Deadlines are absolute ticks.
type probeState struct {
	active        bool
	seq           uint32
	target        *identity // looked up by name again for the verdict
	timeoutTick   int64     // direct ack deadline; then ping-req
	endTick       int64     // end of the protocol period; then verdict
	indirectSent  bool
	expectedNacks int
	nacks         int
	acked         bool
}

// relay is a ping we sent on behalf of a ping-req (SWIM §3.1).
type relay struct {
	seq          uint32 // our ping's seq to the target
	requester    netip.AddrPort
	requesterSeq uint32
	nack         bool
	deadlineTick int64
}

// startProbe closes the previous protocol period — its verdict is given
// now, or after LateAckGrace if it is still unanswered — and probes the
// next member in round-robin order (SWIM §4.3). The interval is stretched
// by the local health multiplier (Lifeguard §IV-A).
func (c *Core) startProbe() {
	if c.late.active {
		c.finishProbe(&c.late)
	}
	if c.probe.active {
		if c.probe.acked || c.cfg.LateAckGrace <= 0 {
			c.finishProbe(&c.probe)
		} else {
			// Keep listening for a late ack while the next period runs.
			c.late = c.probe
			c.late.endTick = c.now + c.cfg.ticks(c.cfg.LateAckGrace)
		}
	}
	interval := c.health.scale(c.cfg.ticks(c.cfg.ProbeInterval))
	c.nextProbeTick = c.now + interval
	if c.leaving {
		return
	}
	target := c.nextProbeTarget()
	if target == nil {
		return
	}
	c.nextSeq++
	c.probe = probeState{
		active:      true,
		seq:         c.nextSeq,
		target:      target.identity,
		timeoutTick: c.now + c.health.scale(c.cfg.ticks(c.cfg.ProbeTimeout)),
		endTick:     c.now + interval,
	}
	c.stats.ProbesSent++
	body := encodePing(nil, ping{Seq: c.nextSeq, Target: target.name, Source: c.cfg.Name})
	if c.cfg.Lifeguard && c.suspected(target) {
		// Buddy system (Lifeguard §IV-C): tell a suspect it is suspected
		// on the probe itself, so it can refute at once instead of waiting
		// for the rumour to reach it by chance.
		s := suspect{Incarnation: target.incarnation, Node: target.name, From: c.cfg.Name, First: c.firstAccuser[target.name]}
		body = encodeSuspect(body, s)
	}
	c.send(target.addr, body)
}

// nextProbeTarget walks the probe order with an incremental Fisher-Yates
// shuffle: each pick is uniform among the members not yet probed this
// round, so every live member is probed once per round and each round is
// a fresh random permutation, and a failure is detected within one round
// in the worst case, not just in expectation (SWIM §4.3). Picking costs
// O(1), where reshuffling the whole list each round would cost O(N) at
// once. Members found dead, left or forgotten are dropped on the way.
func (c *Core) nextProbeTarget() *memberState {
	for range 2 {
		for c.probeIndex < len(c.probeOrder) {
			i := c.probeIndex
			j := i + c.rng.IntN(len(c.probeOrder)-i)
			c.probeOrder[i], c.probeOrder[j] = c.probeOrder[j], c.probeOrder[i]
			m := c.table.at(c.probeOrder[i])
			if m != nil && m != c.self && !m.gone() {
				c.probeIndex++
				return m
			}
			if m != nil {
				c.table.own(m).inProbeOrder = false
			}
			last := len(c.probeOrder) - 1
			c.probeOrder[i] = c.probeOrder[last]
			c.probeOrder = c.probeOrder[:last]
		}
		c.probeIndex = 0 // a new round
		if len(c.probeOrder) == 0 {
			return nil
		}
	}
	return nil
}

// checkProbe runs the probe's deadlines: at the probe timeout, fall back
// to indirect probes; at the end of the period, give the verdict.
func (c *Core) checkProbe() {
	if c.late.active && c.now >= c.late.endTick {
		c.finishProbe(&c.late)
	}
	p := &c.probe
	if !p.active || p.acked {
		return
	}
	if !p.indirectSent && c.now >= p.timeoutTick {
		c.sendIndirect()
	}
	if c.now >= p.endTick && c.cfg.LateAckGrace <= 0 {
		c.finishProbe(p)
	}
}

// sendIndirect asks k random live members to probe the target for us
// (SWIM §3.1 ping-req), asking for nacks under Lifeguard.
func (c *Core) sendIndirect() {
	p := &c.probe
	p.indirectSent = true
	helpers := c.randomMembers(c.cfg.IndirectChecks, func(m *memberState) bool {
		return m.state == StateAlive && m.name != p.target.name
	})
	for _, h := range helpers {
		req := pingReq{Seq: p.seq, Target: p.target.name, TargetAddr: p.target.addr, Nack: c.cfg.Lifeguard, Source: c.cfg.Name}
		c.stats.IndirectProbes++
		if c.cfg.Lifeguard {
			p.expectedNacks++
		}
		c.send(h.addr, encodePingReq(nil, req))
	}
}

// finishProbe closes the protocol period. No ack means the target is
// suspected (SWIM §4.2). Under Lifeguard the verdict also feeds the local
// health score: a success lowers it; a failure raises it by the number of
// nacks that did not come back, since silent helpers suggest that we,
// not the target, are the one not hearing (Lifeguard §IV-A).
func (c *Core) finishProbe(pp *probeState) {
	p := *pp
	*pp = probeState{}
	if p.acked {
		return
	}
	c.stats.ProbesFailed++
	if c.cfg.Lifeguard {
		delta := 1
		if p.expectedNacks > 0 {
			delta = p.expectedNacks - p.nacks
			c.stats.MissedNacks += uint64(delta)
		}
		c.applyHealth(delta)
	}
	t := c.table.get(p.target.name)
	if t == nil || t.gone() {
		return
	}
	c.handleSuspect(suspect{Incarnation: t.incarnation, Node: t.name, From: c.cfg.Name})
}

func (c *Core) handlePing(from netip.AddrPort, m ping) {
	if m.Target != c.cfg.Name {
		// A restarted process under another name, or a stale address.
		c.stats.DroppedMalformed++
		return
	}
	body := encodeAck(nil, ack{Seq: m.Seq})
	src := c.table.get(m.Source)
	if c.cfg.Lifeguard && src != nil && c.suspected(src) {
		// The buddy system in reverse: a member we suspect is plainly
		// alive enough to probe us, so tell it, and it will refute. This
		// matters for a suspicion we raised while we were the unhealthy
		// one: our stretched probe interval may not reach it in time.
		body = encodeSuspect(body, suspect{Incarnation: src.incarnation, Node: src.name, From: c.cfg.Name, First: c.firstAccuser[src.name]})
	}
	if t, ok := c.prunes.tombs[m.Source]; ok && src == nil {
		// A member we pruned is probing us: it is alive and missed its
		// prune, so tell it; it refutes and rejoins (prune.go).
		body = encodeLeaving(body, c.tombIntent(m.Source, t))
	}
	c.send(from, body)
}

func (c *Core) handlePingReq(from netip.AddrPort, m pingReq) {
	if !m.TargetAddr.IsValid() || m.TargetAddr.Port() == 0 {
		c.stats.DroppedMalformed++
		return
	}
	c.nextSeq++
	c.relays = append(c.relays, relay{
		seq:          c.nextSeq,
		requester:    from,
		requesterSeq: m.Seq,
		nack:         m.Nack,
		deadlineTick: c.now + c.cfg.ticks(c.cfg.ProbeTimeout),
	})
	c.send(m.TargetAddr, encodePing(nil, ping{Seq: c.nextSeq, Target: m.Target, Source: c.cfg.Name}))
}

func (c *Core) handleAck(m ack) {
	for _, p := range []*probeState{&c.probe, &c.late} {
		if p.active && m.Seq == p.seq && !p.acked {
			p.acked = true
			if c.cfg.Lifeguard {
				c.applyHealth(-1)
			}
			return
		}
	}
	for i, r := range c.relays {
		if r.seq == m.Seq {
			c.relays = append(c.relays[:i], c.relays[i+1:]...)
			c.send(r.requester, encodeAck(nil, ack{Seq: r.requesterSeq}))
			return
		}
	}
	// A late ack for a finished probe: harmless.
}

// handleNack counts a helper's report that it could not reach our probe
// target either (Lifeguard §IV-A): evidence that the target, not we, is
// in trouble. Each is also an EventNack naming the helper.
func (c *Core) handleNack(m nack) {
	c.stats.NacksReceived++
	for _, p := range []*probeState{&c.probe, &c.late} {
		if p.active && m.Seq == p.seq {
			p.nacks++
			e := Event{Kind: EventNack, Node: c.cfg.Name, From: m.From, Tick: c.now}
			if t := c.table.get(p.target.name); t != nil {
				e.Member = c.export(t)
			} else {
				e.Member = Member{Name: p.target.name}
			}
			c.out.Events = append(c.out.Events, e)
		}
	}
}

// expireRelays sends nacks for relayed pings whose target stayed silent
// (Lifeguard §IV-A): the requester learns we are alive and listening.
func (c *Core) expireRelays() {
	kept := c.relays[:0]
	for _, r := range c.relays {
		if c.now < r.deadlineTick {
			kept = append(kept, r)
			continue
		}
		if r.nack {
			c.stats.NacksSent++
			c.send(r.requester, encodeNack(nil, nack{Seq: r.requesterSeq, From: c.cfg.Name}))
		}
	}
	c.relays = kept
}
