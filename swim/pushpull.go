package swim

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
)

// Push-pull (memberlist's anti-entropy, not in the SWIM paper): two
// members exchange their whole tables over a stream and merge them. It
// lets a joiner learn everyone at once and heals what gossip missed, e.g.
// a partition that outlived the broadcasts about it.
//
// Stream frame body (inside the same versioned, labelled, optionally
// encrypted envelope as packets):
//
//	join u8 | sender str8 | eventLTime u64 | count u32 | count × member
//	member = name str8 | addr | tags | state u8 | incarnation u32 | first str8
//
// where first is who suspected the member first (suspect and dead records,
// and leaving ones whose suspicion is running; empty otherwise), so a
// verdict learnt by sync is still traceable and a suspected leaver
// arrives as both leaving and suspected.

// MaxPushPullBytes bounds a push-pull frame; a larger one is rejected.
const MaxPushPullBytes = 16 << 20

type pushPullState struct {
	Join       bool
	Sender     string
	EventLTime uint64
	Members    []memberRecord
}

type memberRecord struct {
	Name        string
	Addr        netip.AddrPort
	Tags        map[string]string
	State       State
	Incarnation uint32
	First       string
}

// pushPullTicks scales PushPullInterval with cluster size as memberlist
// does: beyond 32 members each doubling adds one interval, so the rate of
// syncs per member falls as their size grows and the per-member cost
// stays nearly flat.
func (c *Core) pushPullTicks() int64 {
	base := c.cfg.ticks(c.cfg.PushPullInterval)
	if c.numAlive <= 32 {
		return base
	}
	mult := math.Ceil(math.Log2(float64(c.numAlive))-math.Log2(32)) + 1
	return int64(float64(base) * mult)
}

// startPushPull asks the shell to sync with a random live member, or with
// a random dead one when reconnecting (so healed partitions find each
// other again; a dead member is otherwise never contacted).
func (c *Core) startPushPull(reconnect bool) {
	if c.leaving {
		return
	}
	want := func(m *memberState) bool { return m.state == StateAlive }
	if reconnect {
		want = func(m *memberState) bool { return m.state == StateDead }
	}
	targets := c.randomMembers(1, want)
	if len(targets) == 0 {
		return
	}
	c.out.PushPulls = append(c.out.PushPulls, PushPullRequest{To: targets[0].addr, Frame: c.LocalState(false)})
}

// JoinRequests returns push-pull requests for each address, for the
// shell's Join. Invalid addresses are reported.
func (c *Core) JoinRequests(addrs []netip.AddrPort) []PushPullRequest {
	frame := c.LocalState(true)
	out := make([]PushPullRequest, 0, len(addrs))
	for _, a := range addrs {
		out = append(out, PushPullRequest{To: a, Join: true, Frame: frame})
	}
	return out
}

// LocalState encodes this member's table as a push-pull frame.
func (c *Core) LocalState(join bool) []byte {
	w := writer{b: make([]byte, 0, 64+c.table.count*24)}
	w.u8(boolByte(join))
	w.str8(c.cfg.Name)
	w.u64(c.events.clock)
	w.u32(uint32(c.table.count))
	c.table.each(func(m *memberState) {
		w.str8(m.name)
		w.addr(m.addr)
		w.tags(m.tags)
		w.u8(uint8(m.state))
		w.u32(m.incarnation)
		// A suspected leaver goes out as leaving with its first accuser:
		// the peer needs both, the intent (so the expired suspicion
		// makes it left, not failed) and the suspicion (so a claim of
		// its name from a new address is no conflict). Releases that
		// predate this read and ignore first on a leaving record.
		if m.state == StateSuspect || m.state == StateDead || c.suspected(m) {
			w.str8(c.firstAccuser[m.name])
		} else {
			w.u8(0)
		}
	})
	frame, err := c.frame.seal(w.b)
	if err != nil {
		return nil
	}
	c.stats.PushPulls++
	c.stats.PushPullBytesSent += uint64(len(frame))
	return frame
}

// HandlePushPull answers a push-pull opened by a peer: it merges the
// peer's state first and then replies with its own, so a refutation the
// merge provoked (the peer thought us dead) travels back at once.
func (c *Core) HandlePushPull(frame []byte) ([]byte, error) {
	st, err := c.decodePushPull(frame)
	if err != nil {
		return nil, err
	}
	c.mergeState(st, false)
	return c.LocalState(false), nil
}

// MergePushPull merges the reply to a push-pull we started; join is the
// request's Join flag (a joiner does not replay user events older than its
// join, as Serf's ignoreOld).
func (c *Core) MergePushPull(frame []byte, join bool) error {
	st, err := c.decodePushPull(frame)
	if err != nil {
		return err
	}
	c.mergeState(st, join)
	return nil
}

func (c *Core) decodePushPull(frame []byte) (pushPullState, error) {
	if len(frame) > MaxPushPullBytes {
		c.stats.DroppedMalformed++
		return pushPullState{}, fmt.Errorf("swim: push-pull frame of %d bytes exceeds %d", len(frame), MaxPushPullBytes)
	}
	body, err := c.frame.open(frame)
	if err != nil {
		c.countDrop(err)
		return pushPullState{}, fmt.Errorf("swim: push-pull: %w", err)
	}
	st, err := decodePushPullBody(body)
	if err != nil {
		c.stats.DroppedMalformed++
		return pushPullState{}, err
	}
	return st, nil
}

func decodePushPullBody(body []byte) (pushPullState, error) {
	r := reader{b: body}
	st := pushPullState{Join: r.u8() != 0, Sender: r.str8(), EventLTime: r.u64()}
	n := int(r.u32())
	// Each record takes at least 11 bytes: reject absurd counts before
	// allocating for them.
	if r.err == nil && n > len(r.b)/11 {
		return st, fmt.Errorf("swim: push-pull claims %d members in %d bytes", n, len(r.b))
	}
	st.Members = make([]memberRecord, 0, n)
	for i := 0; i < n && r.err == nil; i++ {
		rec := memberRecord{Name: r.str8(), Addr: r.addr(), Tags: r.tags(), State: State(r.u8()), Incarnation: r.u32(), First: r.str8()}
		if r.err == nil && (rec.State < StateAlive || rec.State > StateLeaving || rec.Name == "") {
			return st, fmt.Errorf("swim: push-pull member %q has bad state %d", rec.Name, rec.State)
		}
		st.Members = append(st.Members, rec)
	}
	if r.err == nil && len(r.b) != 0 {
		r.err = fmt.Errorf("%d trailing bytes", len(r.b))
	}
	if r.err != nil {
		return st, fmt.Errorf("swim: decoding push-pull: %w", r.err)
	}
	if st.Sender == "" {
		return st, errors.New("swim: push-pull without a sender name")
	}
	return st, nil
}

// mergeState folds a peer's table into ours (memberlist's mergeState). A
// peer's "dead" becomes only a suspicion here: we give the member the
// chance to refute rather than trusting a possibly stale verdict.
func (c *Core) mergeState(st pushPullState, join bool) {
	c.events.witness(st.EventLTime)
	if join {
		c.events.ignoreBefore(st.EventLTime)
	}
	for _, r := range st.Members {
		switch r.State {
		case StateAlive:
			c.handleAlive(alive{Incarnation: r.Incarnation, Node: r.Name, Addr: r.Addr, Tags: r.Tags})
		case StateSuspect, StateDead:
			c.handleSuspect(suspect{Incarnation: r.Incarnation, Node: r.Name, From: st.Sender, First: r.First})
		case StateLeft:
			c.handleDead(dead{Incarnation: r.Incarnation, Node: r.Name, From: r.Name})
		case StateLeaving:
			c.handleLeaving(leaving{Incarnation: r.Incarnation, Node: r.Name, From: st.Sender})
			if r.First != "" { // suspected there: the intent, then the suspicion
				c.handleSuspect(suspect{Incarnation: r.Incarnation, Node: r.Name, From: st.Sender, First: r.First})
			}
		}
	}
}
