package swim

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
	"time"

	"roster/internal/testkit"
)

// The books erasing a member must keep: one pruned while still live
// (leaving) leaves numAlive and the probe order as one that goes gone
// does, and a forgotten member's slot is never left in the probe order.

// countLive recounts the members alive, suspect or leaving (what numAlive
// counts), self included.
func countLive(c *Core) int {
	n := 0
	c.table.each(func(m *memberState) {
		if !m.gone() {
			n++
		}
	})
	return n
}

// newBareCore is a real core n0 (private directory, reused slots) that
// knows the named members alive at incarnation 1.
func newBareCore(t *testing.T, members ...string) *Core {
	t.Helper()
	return newBareCoreAs(t, "n0", netip.MustParseAddrPort("10.0.0.1:8301"), members...)
}

// newBareCoreAs is newBareCore for a core of another name and address.
func newBareCoreAs(t *testing.T, name string, addr netip.AddrPort, members ...string) *Core {
	t.Helper()
	cfg := DefaultLANConfig()
	cfg.Name = name
	c, err := NewCore(cfg, addr, rand.New(rand.NewPCG(1, 2)), nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, name := range members {
		addr := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 0, byte(i + 2)}), 8301)
		c.handleAlive(alive{Incarnation: 1, Node: name, Addr: addr})
	}
	return c
}

// TestCore_PruneOfSuspectKeepsNumAliveEverywhere: a crashed member pruned
// while only suspected is erased as leaving; every member's numAlive
// drops with it (Lifeguard's confirmations min(K, numAlive-2) and the
// retransmit limit are taken from it). The suspicion is made long enough
// to outlast the prune's delay, so the member is erased as leaving, never
// declared dead first.
func TestCore_PruneOfSuspectKeepsNumAliveEverywhere(t *testing.T) {
	cfg := DefaultLANConfig()
	cfg.SuspicionMult = 10
	s := newSim(5, cfg, testkit.Seed(t))
	pruneCrashedSuspect(t, s, 3)
	s.drain(0)
	if !s.runUntil(30*time.Second, func() bool { return s.forgotten(3) }) {
		t.Fatalf("n3 not forgotten everywhere: %s", s.view(0))
	}
	for i, c := range s.cores {
		if i == 3 {
			continue
		}
		if got, want := c.NumAlive(), countLive(c); got != want || got != 4 {
			t.Errorf("n%d: NumAlive() = %d, holding %d live members (self included), want 4", i, got, want)
		}
	}
}

// pruneCrashedSuspect crashes member i of s (crashSuspect) and has n0
// force-leave it with prune.
func pruneCrashedSuspect(t *testing.T, s *sim, i int) {
	t.Helper()
	crashSuspect(t, s, i)
	if err := s.cores[0].ForceLeavePrune(fmt.Sprintf("n%d", i)); err != nil {
		t.Fatal(err)
	}
}

// TestCore_PruneOfAliveMemberThatNeverRefutesLowersNumAlive: the same on
// one core whose clock alone runs, so the pruned member cannot refute.
func TestCore_PruneOfAliveMemberThatNeverRefutesLowersNumAlive(t *testing.T) {
	c := newBareCore(t, "x", "y", "z")
	if err := c.ForceLeavePrune("x"); err != nil {
		t.Fatal(err)
	}
	c.now += c.pruneDelay() + 1
	c.runPrunes()
	if c.table.get("x") != nil {
		t.Fatal("x not pruned")
	}
	if got := c.NumAlive(); got != 3 || got != countLive(c) {
		t.Fatalf("NumAlive() = %d after pruning x, want 3 (live members held: %d)", got, countLive(c))
	}
}

// TestCore_LastMemberLeavesAtOnceAfterPruningTheOther: in a two-member
// cluster n1 crashes and n0 prunes it while it is only suspected. n0 is
// then alone, and its Leave completes at once (nobody left to tell), as
// it does once n1 is reaped. (A long suspicion: n1 is erased as leaving.)
func TestCore_LastMemberLeavesAtOnceAfterPruningTheOther(t *testing.T) {
	cfg := DefaultLANConfig()
	cfg.SuspicionMult = 10
	s := newSim(2, cfg, testkit.Seed(t))
	pruneCrashedSuspect(t, s, 1)
	if !s.runUntil(30*time.Second, func() bool { return s.cores[0].table.get("n1") == nil }) {
		t.Fatalf("n1 not pruned: %s", s.view(0))
	}
	s.cores[0].Leave()
	if !s.runUntil(5*time.Second, func() bool { return s.cores[0].LeaveSent() }) {
		t.Fatalf("alone after the prune, n0's Leave never completes (NumAlive=%d)", s.cores[0].NumAlive())
	}
}

// TestCore_PrunedLiveMemberThatRejoinsIsProbedOncePerRound: a real core
// (whose slots are reused) prunes a live member, and the member rejoins
// after refuting: its slot is in the probe order once, not twice.
func TestCore_PrunedLiveMemberThatRejoinsIsProbedOncePerRound(t *testing.T) {
	c := newBareCore(t, "x", "y")
	if err := c.ForceLeavePrune("x"); err != nil {
		t.Fatal(err)
	}
	c.now += c.pruneDelay() + 1
	c.runPrunes()
	if c.table.get("x") != nil {
		t.Fatal("x not pruned")
	}
	rejoinProbedOnce(t, c)
	if got := c.NumAlive(); got != 3 {
		t.Fatalf("NumAlive() = %d, want 3", got)
	}
}

// rejoinProbedOnce has x, forgotten by c, rejoin at incarnation 2 and
// checks that its slot is in c's probe order once.
func rejoinProbedOnce(t *testing.T, c *Core) {
	t.Helper()
	c.handleAlive(alive{Incarnation: 2, Node: "x", Addr: netip.MustParseAddrPort("10.0.0.2:8301")})
	m := c.table.get("x")
	if n := countSlot(c.probeOrder, m.slot); n != 1 {
		t.Fatalf("x's slot %d is %d times in the probe order %v", m.slot, n, c.probeOrder)
	}
}

func countSlot(order []int32, slot int32) int {
	n := 0
	for _, s := range order {
		if s == slot {
			n++
		}
	}
	return n
}

// TestCore_PruneKeepsTheProbeRound: a member pruned in the middle of a
// probe round leaves it without disturbing the others: those probed this
// round stay probed, those not yet probed are still to come, once each.
func TestCore_PruneKeepsTheProbeRound(t *testing.T) {
	names := []string{"a", "b", "c", "d", "e", "f"}
	for _, victim := range []int{0, 2, 5} { // probed, first unprobed, later unprobed
		t.Run(fmt.Sprint(victim), func(t *testing.T) {
			c := newBareCore(t, names...)
			for range 2 {
				if c.nextProbeTarget() == nil {
					t.Fatal("no probe target")
				}
			}
			probed := slices.Clone(c.probeOrder[:c.probeIndex])
			rest := slices.Clone(c.probeOrder[c.probeIndex:])
			order := slices.Concat(probed, rest)
			gone := c.table.at(order[victim])
			slot := gone.slot
			if err := c.ForceLeavePrune(gone.name); err != nil {
				t.Fatal(err)
			}
			c.now += c.pruneDelay() + 1
			c.runPrunes()
			checkProbeRound(t, c, probed, rest, func(s int32) bool { return s == slot }, fmt.Sprintf("pruning slot %d", slot))
		})
	}
}

// TestCore_RefutedPruneDoesNotTurnALaterPlainForceLeaveIntoAPrune: x
// refutes a force-leave -prune (incarnation 2), then is force-left
// without -prune and suspected. The broadcast carrying the suspicion and
// the plain intent must not say Prune: the prune pending here is at
// incarnation 1, refuted, and the members that heard it would erase x
// while this one keeps it.
func TestCore_RefutedPruneDoesNotTurnALaterPlainForceLeaveIntoAPrune(t *testing.T) {
	c := newBareCore(t, "x", "y")
	if err := c.ForceLeavePrune("x"); err != nil {
		t.Fatal(err)
	}
	c.handleAlive(alive{Incarnation: 2, Node: "x", Addr: c.table.get("x").addr}) // x refutes
	if err := c.ForceLeave("x"); err != nil {
		t.Fatal(err)
	}
	c.handleSuspect(suspect{Incarnation: 2, Node: "x", From: "y"})
	intents := 0
	for _, b := range c.queue.items {
		if b.key != "x" {
			continue
		}
		msgs, err := decodeBody(b.msg)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			if l, ok := m.(leaving); ok {
				intents++
				if l.Prune || l.Incarnation != 2 {
					t.Fatalf("queued about x: %+v; want the plain intent at incarnation 2", msgs)
				}
			}
		}
	}
	if intents != 1 {
		t.Fatalf("%d leave intents about x queued, want 1 (with the suspicion)", intents)
	}
}

// TestCore_ReapedMemberThatRejoinsIsProbedOncePerRound: the same for a
// dead member reaped before any probe round dropped its slot (a short
// ReapInterval): the slot leaves the probe order with it.
func TestCore_ReapedMemberThatRejoinsIsProbedOncePerRound(t *testing.T) {
	c := newBareCore(t, "x", "y")
	c.cfg.ReapInterval = time.Second
	c.handleDead(dead{Incarnation: 1, Node: "x", From: "y"})
	c.now += c.cfg.ticks(c.cfg.ReapInterval) + 1
	c.reap()
	if c.table.get("x") != nil {
		t.Fatal("x not reaped")
	}
	rejoinProbedOnce(t, c)
}

// TestCore_ReapOfManyKeepsTheProbeRound: members reaped together in the
// middle of a probe round, some probed already and some not, while still
// in the probe order, leave it in one go without disturbing the others:
// those probed this round stay probed, those still to come still come.
func TestCore_ReapOfManyKeepsTheProbeRound(t *testing.T) {
	names := []string{"a", "b", "c", "d", "e", "f", "g", "h"}
	c := newBareCore(t, names...)
	c.cfg.ReapInterval = time.Second
	for range 3 {
		if c.nextProbeTarget() == nil {
			t.Fatal("no probe target")
		}
	}
	probed := slices.Clone(c.probeOrder[:c.probeIndex])
	rest := slices.Clone(c.probeOrder[c.probeIndex:])
	victims := []int32{probed[0], probed[2], rest[0], rest[3], rest[len(rest)-1]}
	for _, s := range victims {
		c.handleDead(dead{Incarnation: 1, Node: c.table.at(s).name, From: "y"})
	}
	c.now += c.cfg.ticks(c.cfg.ReapInterval) + 1
	c.reap()
	for _, s := range victims {
		if c.table.at(s) != nil {
			t.Fatalf("slot %d not reaped", s)
		}
	}
	reaped := func(s int32) bool { return slices.Contains(victims, s) }
	checkProbeRound(t, c, probed, rest, reaped, fmt.Sprintf("reaping slots %v", victims))
}

// checkProbeRound checks that c's probe round, after forgetting the slots
// gone reports, is the one it was: probed and rest (the slots probed this
// round and those to come, before) less the forgotten ones, in any order.
func checkProbeRound(t *testing.T, c *Core, probed, rest []int32, gone func(int32) bool, after string) {
	t.Helper()
	probed, rest = slices.DeleteFunc(probed, gone), slices.DeleteFunc(rest, gone)
	slices.Sort(probed)
	slices.Sort(rest)
	gotProbed := slices.Sorted(slices.Values(c.probeOrder[:c.probeIndex]))
	gotRest := slices.Sorted(slices.Values(c.probeOrder[c.probeIndex:]))
	if !slices.Equal(gotProbed, probed) || !slices.Equal(gotRest, rest) {
		t.Fatalf("after %s: probed %v, to come %v; want %v, %v", after, gotProbed, gotRest, probed, rest)
	}
}
