package swim

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"roster/internal/testkit"
)

// forgotten reports whether every live member other than subject has
// forgotten it.
func (s *sim) forgotten(subject int) bool {
	for i := range s.cores {
		if i != subject && !s.down[i] && s.cores[i].table.get(s.names[subject]) != nil {
			return false
		}
	}
	return true
}

// TestCore_PruneOfSuspectIsLeavingThenForgotten: force-leave -prune of a
// crashed member still only suspected marks it leaving (Serf: it is
// alive to Serf), and every member then forgets it, as Serf's handlePrune
// erases a leaving member; it stays forgotten through push-pulls and
// reconnects, which still carry it from members that had not pruned yet.
func TestCore_PruneOfSuspectIsLeavingThenForgotten(t *testing.T) {
	s := newSim(5, DefaultLANConfig(), testkit.Seed(t))
	crashSuspect(t, s, 3)
	reaps := map[string]int{}
	s.onEvent = func(e Event) {
		if e.Member.Name == "n3" && e.Kind == EventReap {
			reaps[e.Node]++
		}
	}
	if err := s.cores[0].ForceLeavePrune("n3"); err != nil {
		t.Fatal(err)
	}
	if got := s.stateOf(0, 3); got != StateLeaving {
		t.Fatalf("n0 sees n3 %v right after -prune, want leaving", got)
	}
	s.drain(0)
	if !s.runUntil(30*time.Second, func() bool { return s.forgotten(3) }) {
		t.Fatalf("n3 not forgotten everywhere: %s | %s", s.view(0), s.view(1))
	}
	s.drainAll()
	for _, n := range []string{"n0", "n1", "n2", "n4"} {
		if reaps[n] != 1 {
			t.Fatalf("reap events about n3: %v, want one per live member", reaps)
		}
	}
	s.run(45 * time.Second) // push-pull (30s) and reconnect (10s) rounds
	if !s.forgotten(3) {
		t.Fatalf("pruned n3 came back: %s", s.view(0))
	}
}

// TestCore_PruneOfAliveMemberThatRefutesKeepsIt: a member that is alive
// hears its pruning intent and refutes before anyone erases it; it is
// alive at a higher incarnation everywhere, never forgotten.
func TestCore_PruneOfAliveMemberThatRefutesKeepsIt(t *testing.T) {
	s := newSim(5, DefaultLANConfig(), testkit.Seed(t))
	if !s.runUntil(10*time.Second, func() bool { return s.allSee(3, StateAlive) }) {
		t.Fatalf("n3 not alive everywhere: %s", s.view(0))
	}
	inc := s.cores[0].table.get("n3").incarnation
	kinds := eventsAbout(s, "n3")
	if err := s.cores[0].ForceLeavePrune("n3"); err != nil {
		t.Fatal(err)
	}
	s.drain(0)
	delay := time.Duration(s.cores[0].pruneDelay()) * s.cfg.TickInterval
	s.run(2 * delay)
	s.drainAll()
	for i := range 5 {
		if m := s.cores[i].table.get("n3"); i != 3 && (m == nil || m.state != StateAlive || m.incarnation <= inc) {
			t.Fatalf("n%d holds n3 as %+v after the prune delay, want alive above %d", i, m, inc)
		}
	}
	if kinds[EventReap] != 0 || kinds[EventLeaving] == 0 {
		t.Fatalf("events about n3 %v: want leaving, and no reap", kinds)
	}
	if len(s.cores[0].prunes.pending) != 0 {
		t.Fatalf("a prune is still pending: %v", s.cores[0].prunes.pending)
	}
}

// TestPartition_PrunedMemberThatIsAliveRejoins: a member cut off by a
// partition is pruned (it looks alive, then suspect) and forgotten by
// every member; it never heard of its prune. After the heal it reaches
// the others, is told, refutes, and rejoins everywhere at a higher
// incarnation, as Serf says of force-leave: a member that is still alive
// comes back.
func TestPartition_PrunedMemberThatIsAliveRejoins(t *testing.T) {
	s := newSim(5, DefaultLANConfig(), testkit.Seed(t))
	if !s.runUntil(10*time.Second, func() bool { return s.allSee(4, StateAlive) }) {
		t.Fatalf("n4 not alive everywhere: %s", s.view(0))
	}
	inc := s.cores[0].table.get("n4").incarnation
	s.plan.Isolate("n4")
	if err := s.cores[1].ForceLeavePrune("n4"); err != nil {
		t.Fatal(err)
	}
	if !s.runUntil(30*time.Second, func() bool { return s.forgotten(4) }) {
		t.Fatalf("isolated n4 not forgotten: %s", s.view(0))
	}
	s.plan.Heal()
	if !s.runUntil(60*time.Second, func() bool {
		for i := range 4 {
			if m := s.cores[i].table.get("n4"); m == nil || m.state != StateAlive || m.incarnation <= inc {
				return false
			}
		}
		return true
	}) {
		t.Fatalf("n4 did not rejoin after heal: %s | n4: %s", s.view(0), s.view(4))
	}
	if s.cores[4].Stats().Refutations == 0 {
		t.Fatal("n4 came back without refuting")
	}
	if !s.runUntil(30*time.Second, func() bool {
		for i := range 4 {
			if s.stateOf(4, i) != StateAlive {
				return false
			}
		}
		return true
	}) {
		t.Fatalf("n4 does not see the others alive again: %s", s.view(4))
	}
}

// TestCore_StaleAliveAboutAPrunedMemberIsDropped: alive news at the
// pruned incarnation (a relay that had not heard of the prune) does not
// bring the member back, and the member is told of its prune at the
// address the news gives; newer news (its refutation) rejoins it.
func TestCore_StaleAliveAboutAPrunedMemberIsDropped(t *testing.T) {
	s := newSim(4, DefaultLANConfig(), testkit.Seed(t))
	c := s.cores[0]
	c.handleDead(dead{Incarnation: 0, Node: "n2", From: "n1"})
	if err := c.ForceLeavePrune("n2"); err != nil {
		t.Fatal(err)
	}
	c.Ready()
	c.handleAlive(alive{Incarnation: 0, Node: "n2", Addr: s.addrs[2]})
	if _, ok := c.Member("n2"); ok {
		t.Fatal("stale alive news resurrected the pruned n2")
	}
	if got := c.Stats().StalePruned; got != 1 {
		t.Fatalf("StalePruned = %d, want 1", got)
	}
	told := false
	for _, p := range c.Ready().Packets {
		told = told || p.To == s.addrs[2]
	}
	if !told {
		t.Fatal("n2 was not told of its prune")
	}
	c.handleAlive(alive{Incarnation: 1, Node: "n2", Addr: s.addrs[2]})
	if m, ok := c.Member("n2"); !ok || m.State != StateAlive || m.Incarnation != 1 {
		t.Fatalf("n2 after its refutation: %+v (known %v), want alive at 1", m, ok)
	}
	if _, ok := c.prunes.tombs["n2"]; ok {
		t.Fatal("the tombstone outlived the rejoin")
	}
}

// TestCore_PrunedMemberThatLeavesMeanwhileIsForgotten: a member that
// refutes its prune but then leaves gracefully before the prune is due
// is gone when it is due, so it is forgotten then (Serf erases it after
// its delay whatever happened meanwhile); one that only refuted is kept
// (TestCore_PruneOfAliveMemberThatRefutesKeepsIt).
func TestCore_PrunedMemberThatLeavesMeanwhileIsForgotten(t *testing.T) {
	s := newSim(5, DefaultLANConfig(), testkit.Seed(t))
	if !s.runUntil(10*time.Second, func() bool { return s.allSee(3, StateAlive) }) {
		t.Fatalf("n3 not alive everywhere: %s", s.view(0))
	}
	if err := s.cores[0].ForceLeavePrune("n3"); err != nil {
		t.Fatal(err)
	}
	s.drain(0)
	if !s.runUntil(time.Second, func() bool { return s.cores[3].Stats().Refutations > 0 }) {
		t.Fatal("n3 did not refute its prune")
	}
	s.cores[3].Leave()
	if !s.runUntil(5*time.Second, func() bool { return s.cores[3].LeaveSent() }) {
		t.Fatal("n3's leave never went out")
	}
	s.kill(3)
	if !s.runUntil(30*time.Second, func() bool { return s.cores[0].table.get("n3") == nil }) {
		t.Fatalf("n0 keeps the pruned n3 that left: %s", s.view(0))
	}
	if len(s.cores[0].prunes.pending) != 0 {
		t.Fatalf("prunes still pending: %v", s.cores[0].prunes.pending)
	}
}

// TestMem_PrunedMemberThatIsAliveRejoins runs the shells (goroutines,
// timers, push-pull streams) on the memory network: a member cut off and
// pruned is forgotten by the others, and rejoins once the cut heals.
func TestMem_PrunedMemberThatIsAliveRejoins(t *testing.T) {
	mem := NewMemNetwork(testkit.Seed(t))
	var nodes []*Node
	for i := range 3 {
		tr, err := mem.Transport(netip.MustParseAddrPort(fmt.Sprintf("10.0.3.%d:8301", i+1)))
		if err != nil {
			t.Fatal(err)
		}
		n, err := New(fastConfig(fmt.Sprintf("p%d", i)), tr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Shutdown() })
		nodes = append(nodes, n)
	}
	for _, n := range nodes[1:] {
		if _, err := n.Join([]string{"10.0.3.1:8301"}); err != nil {
			t.Fatal(err)
		}
	}
	all := map[string]State{"p0": StateAlive, "p1": StateAlive, "p2": StateAlive}
	testkit.WaitFor(t, 10*time.Second, "all alive", func() error { return agree(nodes, all) })
	mem.Isolate("10.0.3.3:8301")
	if err := nodes[0].ForceLeavePrune("p2"); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 10*time.Second, "p2 forgotten", func() error {
		for _, n := range nodes[:2] {
			if m, ok := memberOf(n, "p2"); ok {
				return fmt.Errorf("%s holds p2 as %v", n.cfg.Name, m.State)
			}
		}
		return nil
	})
	mem.Heal()
	testkit.WaitFor(t, 20*time.Second, "p2 back", func() error {
		for _, n := range nodes[:2] {
			if m, ok := memberOf(n, "p2"); !ok || m.State != StateAlive || m.Incarnation == 0 {
				return fmt.Errorf("%s holds p2 as %+v (listed %v)", n.cfg.Name, m, ok)
			}
		}
		return agree(nodes, all)
	})
}

// TestCore_PrunedMemberRestartedRejoins: a crashed member is pruned and
// then restarted (incarnation 0 again, as a fresh process): its join
// carries no newer word than the prune, so it is told of the prune,
// refutes, and is alive everywhere.
func TestCore_PrunedMemberRestartedRejoins(t *testing.T) {
	s := newSim(5, DefaultLANConfig(), testkit.Seed(t))
	s.kill(3)
	if !s.runUntil(30*time.Second, func() bool { return s.allSee(3, StateDead) }) {
		t.Fatalf("n3 not dead everywhere: %s", s.view(0))
	}
	if err := s.cores[0].ForceLeavePrune("n3"); err != nil {
		t.Fatal(err)
	}
	s.drain(0)
	if !s.runUntil(10*time.Second, func() bool { return s.forgotten(3) }) {
		t.Fatalf("n3 not forgotten: %s", s.view(1))
	}
	s.restart(3, 1)
	if !s.runUntil(30*time.Second, func() bool { return s.allSee(3, StateAlive) }) {
		t.Fatalf("restarted n3 not alive everywhere: %s | n3: %s", s.view(0), s.view(3))
	}
}
