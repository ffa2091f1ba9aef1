package swim

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"roster/internal/testkit"
)

// TestCore_BooksHoldUnderRandomTransitions drives a real core (private
// directory, so reaped and pruned slots are reused) through random
// messages, force-leaves, prunes, merges, reaps and its own leave, and
// checks its books after every step: numAlive is the number of live
// members held; the probe order lists each live member once, flags
// agree, no forgotten slot is listed and probeIndex is in range. In half
// of the runs the test makes every probe pick itself, and checks the
// round (SWIM §4.3): no member is probed twice in a round, and every
// member live through a whole round is probed in it.
func TestCore_BooksHoldUnderRandomTransitions(t *testing.T) {
	base := testkit.Seed(t)
	runs := 200
	if testing.Short() {
		runs = 40
	}
	for i := range runs {
		seed := base + uint64(i)
		if msg := runBooks(seed, i%2 == 1); msg != "" {
			t.Fatalf("run %d (its seed %d; -seed %d replays), probing by hand %v: %s", i, seed, base, i%2 == 1, msg)
		}
	}
}

// books is one random run; picked and eligible follow the current probe
// round when the test picks the probes (byHand).
type books struct {
	c        *Core
	rng      *rand.Rand
	byHand   bool
	names    []string
	picked   map[string]bool
	eligible map[string]bool
	log      []string
}

func runBooks(seed uint64, byHand bool) (fail string) {
	cfg := DefaultLANConfig()
	cfg.Name = "n0"
	cfg.ReapInterval = 3 * time.Second
	c, err := NewCore(cfg, netip.MustParseAddrPort("10.0.0.1:8301"), rand.New(rand.NewPCG(seed, 9)), nil)
	if err != nil {
		return err.Error()
	}
	b := &books{c: c, rng: rand.New(rand.NewPCG(seed, 7)), byHand: byHand,
		names:  []string{"n1", "n2", "n3", "n4", "n5", "n6", "n7"},
		picked: map[string]bool{}, eligible: map[string]bool{}}
	defer func() {
		if r := recover(); r != nil {
			fail = fmt.Sprintf("panic %v", r)
		}
		if fail != "" {
			fail += fmt.Sprintf("\nlast steps:\n  %v", b.log[max(0, len(b.log)-25):])
		}
	}()
	for step := range 300 {
		msg := b.step()
		if msg == "" {
			msg = b.check()
		}
		if msg != "" {
			return fmt.Sprintf("step %d: %s", step, msg)
		}
		c.Ready()
	}
	return ""
}

func (b *books) addr(i, k int) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, byte(k), byte(i + 2)}), 8301)
}

// from is a random sender: a member, the core itself, or a stranger.
func (b *books) from() string {
	return append(b.names, "n0", "zz")[b.rng.IntN(len(b.names)+2)]
}

func (b *books) live(m *memberState) bool { return m != nil && m != b.c.self && !m.gone() }

// step applies one random transition; a non-empty result is a failure.
func (b *books) step() string {
	c, rng := b.c, b.rng
	i := rng.IntN(len(b.names))
	n, inc := b.names[i], uint32(rng.IntN(5))
	switch rng.IntN(13) {
	case 0, 1:
		a := alive{Incarnation: inc, Node: n, Addr: b.addr(i, rng.IntN(2))}
		b.note(a)
		c.handleAlive(a)
	case 2:
		s := suspect{Incarnation: inc, Node: n, From: b.from()}
		b.note(s)
		c.handleSuspect(s)
	case 3:
		d := dead{Incarnation: inc, Node: n, From: b.from()}
		if rng.IntN(2) == 0 {
			d.From = n // a leave
		}
		b.note(d)
		c.handleDead(d)
	case 4:
		l := leaving{Incarnation: inc, Node: n, From: b.from(), Prune: rng.IntN(3) == 0}
		b.note(l)
		c.handleLeaving(l)
	case 5:
		b.log = append(b.log, "ForceLeave "+n)
		_ = c.ForceLeave(n)
	case 6:
		b.log = append(b.log, "ForceLeavePrune "+n)
		_ = c.ForceLeavePrune(n)
	case 7, 8:
		b.advance(int64(rng.IntN(400)))
	case 9:
		b.merge()
	case 10, 11:
		if b.byHand {
			return b.pick()
		}
	case 12:
		if !b.byHand && rng.IntN(20) == 0 {
			b.log = append(b.log, "self Leave")
			c.Leave()
		}
	}
	return ""
}

// note logs a message about to be applied.
func (b *books) note(m any) { b.log = append(b.log, fmt.Sprintf("%T%+v", m, m)) }

// advance moves time on by d ticks: by hand (timers, prunes and reap, but
// no probes, which the test picks) or by Tick.
func (b *books) advance(d int64) {
	c := b.c
	b.log = append(b.log, fmt.Sprintf("advance %d", d))
	if !b.byHand {
		for range d {
			c.Tick()
		}
		return
	}
	c.now += d
	if len(c.suspicions) > 0 {
		c.expireSuspicions()
	}
	if len(c.prunes.pending) > 0 {
		c.runPrunes()
	}
	c.reap()
}

// merge folds in a random push-pull of up to three records.
func (b *books) merge() {
	st := pushPullState{Sender: b.from()}
	for range b.rng.IntN(4) {
		j := b.rng.IntN(len(b.names))
		st.Members = append(st.Members, memberRecord{Name: b.names[j], Addr: b.addr(j, b.rng.IntN(2)),
			State: State(b.rng.IntN(5)), Incarnation: uint32(b.rng.IntN(5)), First: b.from()})
	}
	b.log = append(b.log, fmt.Sprintf("merge%+v", st.Members))
	b.c.mergeState(st, false)
}

// pick takes the next probe target and checks the round: when a pick
// starts a new round, every member live through the last one was probed.
func (b *books) pick() string {
	c := b.c
	newRound := true
	for _, s := range c.probeOrder[c.probeIndex:] {
		if b.live(c.table.at(s)) {
			newRound = false
		}
	}
	if newRound {
		for n := range b.eligible {
			if !b.picked[n] {
				return fmt.Sprintf("%s live all round, never probed", n)
			}
		}
		clear(b.picked)
		clear(b.eligible)
		c.table.each(func(m *memberState) {
			if b.live(m) {
				b.eligible[m.name] = true
			}
		})
	}
	m := c.nextProbeTarget()
	b.log = append(b.log, fmt.Sprintf("pick %v", m != nil))
	if m == nil {
		return ""
	}
	if b.picked[m.name] {
		return fmt.Sprintf("%s probed twice in one round", m.name)
	}
	b.picked[m.name] = true
	return ""
}

// check verifies the books, and forgets round bookkeeping about members
// that are no longer live or listed.
func (b *books) check() string {
	c := b.c
	if n := countLive(c); c.numAlive != n {
		return fmt.Sprintf("numAlive %d, live members held %d", c.numAlive, n)
	}
	if msg := b.checkProbeOrder(); msg != "" {
		return msg
	}
	for n := range b.eligible {
		if !b.live(c.table.get(n)) {
			delete(b.eligible, n)
		}
	}
	for n := range b.picked {
		if m := c.table.get(n); m == nil || !m.inProbeOrder {
			delete(b.picked, n)
		}
	}
	return ""
}

func (b *books) checkProbeOrder() string {
	c := b.c
	if c.probeIndex < 0 || c.probeIndex > len(c.probeOrder) {
		return fmt.Sprintf("probeIndex %d of %d", c.probeIndex, len(c.probeOrder))
	}
	seen := map[int32]bool{}
	for _, s := range c.probeOrder {
		m := c.table.at(s)
		switch {
		case seen[s]:
			return fmt.Sprintf("slot %d twice in probe order %v", s, c.probeOrder)
		case m == nil:
			return fmt.Sprintf("forgotten slot %d in probe order", s)
		case !m.inProbeOrder:
			return fmt.Sprintf("%s listed, flag clear", m.name)
		}
		seen[s] = true
	}
	msg := ""
	c.table.each(func(m *memberState) {
		switch {
		case msg != "":
		case m.inProbeOrder && !seen[m.slot]:
			msg = fmt.Sprintf("%s flagged, not listed", m.name)
		case b.live(m) && !m.inProbeOrder:
			msg = fmt.Sprintf("live %s (%v) not in probe order", m.name, m.state)
		}
	})
	return msg
}
