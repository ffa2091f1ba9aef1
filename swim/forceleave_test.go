package swim

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"roster/internal/testkit"
)

// TestCore_ForceLeaveTurnsFailedIntoLeft: a crashed member, dead
// everywhere, is forced to leave by one member and every member records
// "left" (what the agent deregisters), with an event.
func TestCore_ForceLeaveTurnsFailedIntoLeft(t *testing.T) {
	s := newSim(5, DefaultLANConfig(), testkit.Seed(t))
	s.kill(4)
	if !s.runUntil(30*time.Second, func() bool { return s.allSee(4, StateDead) }) {
		t.Fatalf("n4 not dead everywhere: %s", s.view(0))
	}
	leftEvents := 0
	s.onEvent = func(e Event) {
		if e.Kind == EventLeft && e.Member.Name == "n4" {
			leftEvents++
		}
	}
	inc := s.cores[0].table.get("n4").incarnation
	if err := s.cores[0].ForceLeave("n4"); err != nil {
		t.Fatal(err)
	}
	s.drain(0)
	if !s.runUntil(10*time.Second, func() bool { return s.allSee(4, StateLeft) }) {
		t.Fatalf("force-leave did not spread: %s", s.view(1))
	}
	if leftEvents != 4 {
		t.Fatalf("%d left events, want one per live member (4)", leftEvents)
	}
	if m, _ := s.cores[2].Member("n4"); m.Incarnation != inc {
		t.Fatalf("left at incarnation %d, want the member's own %d", m.Incarnation, inc)
	}
	if got := s.cores[0].Stats().ForcedLeaves; got != 1 {
		t.Fatalf("ForcedLeaves = %d, want 1", got)
	}
	if err := s.cores[0].ForceLeave("n4"); err != nil {
		t.Fatalf("force-leave of a member already left: %v", err)
	}
}

// TestCore_ForceLeaveRefusesUnknownAndSelf: the errors say why.
func TestCore_ForceLeaveRefusesUnknownAndSelf(t *testing.T) {
	s := newSim(3, DefaultLANConfig(), testkit.Seed(t))
	s.run(2 * time.Second)
	for name, want := range map[string]string{"nobody": "no member named", "n0": "local member"} {
		err := s.cores[0].ForceLeave(name)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ForceLeave(%q) = %v, want an error containing %q", name, err, want)
		}
	}
}

// TestCore_ForceLeaveOfAliveMemberRefutes: Serf accepts force-leave of an
// alive member. It is "leaving" (Consul's serf status 2) where the intent
// arrives, then refutes with a higher incarnation and is alive everywhere
// again; nobody ever records it left or dead.
func TestCore_ForceLeaveOfAliveMemberRefutes(t *testing.T) {
	s := newSim(5, DefaultLANConfig(), testkit.Seed(t))
	if !s.runUntil(10*time.Second, func() bool { return s.allSee(3, StateAlive) }) {
		t.Fatalf("n3 not alive everywhere: %s", s.view(0))
	}
	inc := s.cores[0].table.get("n3").incarnation
	kinds := map[EventKind]int{}
	s.onEvent = func(e Event) {
		if e.Member.Name == "n3" {
			kinds[e.Kind]++
		}
	}
	if err := s.cores[0].ForceLeave("n3"); err != nil {
		t.Fatalf("force-leave of an alive member: %v", err)
	}
	if m, _ := s.cores[0].Member("n3"); m.State != StateLeaving || m.State.SerfStatus() != SerfStatusLeaving {
		t.Fatalf("n0 sees n3 %v right after force-leave, want leaving (serf status 2)", m.State)
	}
	s.drain(0)
	if !s.runUntil(10*time.Second, func() bool {
		for i := range 5 {
			if m, _ := s.cores[i].Member("n3"); m.State != StateAlive || m.Incarnation <= inc {
				return false
			}
		}
		return true
	}) {
		t.Fatalf("n3 did not come back alive at a higher incarnation: %s", s.view(1))
	}
	if s.cores[3].Stats().Refutations == 0 || kinds[EventLeaving] == 0 || kinds[EventAlive] == 0 {
		t.Fatalf("refutations %d, events %v: want a refutation, leaving and alive events", s.cores[3].Stats().Refutations, kinds)
	}
	if kinds[EventLeft] != 0 || kinds[EventDead] != 0 {
		t.Fatalf("events %v: an alive member forced out was recorded left or dead", kinds)
	}
}

// TestPartition_ForceLeftMemberThatIsAliveRefutes: a member cut off by a
// partition is declared dead and forced out; after the partition heals it
// hears of its "leave", refutes with a higher incarnation and is alive
// everywhere again: force-leave cannot evict a healthy member for good.
func TestPartition_ForceLeftMemberThatIsAliveRefutes(t *testing.T) {
	s := newSim(5, DefaultLANConfig(), testkit.Seed(t))
	s.plan.Isolate("n4")
	if !s.runUntil(30*time.Second, func() bool { return s.allSee(4, StateDead) }) {
		t.Fatalf("isolated n4 not dead: %s", s.view(0))
	}
	if err := s.cores[1].ForceLeave("n4"); err != nil {
		t.Fatal(err)
	}
	if !s.runUntil(10*time.Second, func() bool { return s.allSee(4, StateLeft) }) {
		t.Fatalf("n4 not left: %s", s.view(0))
	}
	s.plan.Heal()
	if !s.runUntil(60*time.Second, func() bool { return s.allSee(4, StateAlive) }) {
		t.Fatalf("n4 did not come back after heal: %s", s.view(0))
	}
	if s.cores[4].Stats().Refutations == 0 {
		t.Fatal("n4 came back without refuting")
	}
}

// TestMem_NodeForceLeave drives ForceLeave through the shell, as the
// agent's force-leave endpoint does.
func TestMem_NodeForceLeave(t *testing.T) {
	mem := NewMemNetwork(testkit.Seed(t))
	var nodes []*Node
	for i := range 3 {
		tr, err := mem.Transport(netip.MustParseAddrPort(fmt.Sprintf("10.0.2.%d:8301", i+1)))
		if err != nil {
			t.Fatal(err)
		}
		n, err := New(fastConfig(fmt.Sprintf("f%d", i)), tr)
		if err != nil {
			t.Fatal(err)
		}
		defer n.Shutdown()
		nodes = append(nodes, n)
	}
	for _, n := range nodes[1:] {
		if _, err := n.Join([]string{"10.0.2.1:8301"}); err != nil {
			t.Fatal(err)
		}
	}
	all := map[string]State{"f0": StateAlive, "f1": StateAlive, "f2": StateAlive}
	testkit.WaitFor(t, 10*time.Second, "all alive", func() error { return agree(nodes, all) })
	if err := nodes[0].ForceLeave("f2"); err != nil {
		t.Fatalf("force-leave of an alive member: %v", err)
	}
	testkit.WaitFor(t, 10*time.Second, "f2 alive again", func() error {
		if m, ok := memberOf(nodes[1], "f2"); !ok || m.Incarnation == 0 {
			return fmt.Errorf("f2 at incarnation %d: not refuted yet", m.Incarnation)
		}
		return agree(nodes, all)
	})
	nodes[2].Shutdown()
	testkit.WaitFor(t, 20*time.Second, "f2 dead", func() error { return agree(nodes[:2], map[string]State{"f2": StateDead}) })
	if err := nodes[0].ForceLeave("f2"); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 10*time.Second, "f2 left", func() error { return agree(nodes[:2], map[string]State{"f2": StateLeft}) })
	if err := nodes[0].ForceLeave("nobody"); err == nil {
		t.Fatal("force-leave of an unknown member succeeded")
	}
}

// memberOf is n's record of name.
func memberOf(n *Node, name string) (Member, bool) {
	for _, m := range n.Members() {
		if m.Name == name {
			return m, true
		}
	}
	return Member{}, false
}

// TestCore_LeavingHolderOfANameIsAConflict: a member that is leaving is
// still up, so an alive claim for its name from another address is a name
// conflict (reported, and the claimant told), as for an alive holder.
func TestCore_LeavingHolderOfANameIsAConflict(t *testing.T) {
	s := newSim(5, DefaultLANConfig(), testkit.Seed(t))
	if !s.runUntil(10*time.Second, func() bool { return s.allSee(3, StateAlive) }) {
		t.Fatalf("n3 not alive everywhere: %s", s.view(0))
	}
	if err := s.cores[0].ForceLeave("n3"); err != nil {
		t.Fatal(err)
	}
	m := s.cores[0].table.get("n3")
	if m.state != StateLeaving {
		t.Fatalf("n0 sees n3 %v, want leaving", m.state)
	}
	before := s.cores[0].Stats().NameConflicts
	other := netip.MustParseAddrPort("127.0.0.99:7946")
	s.cores[0].handleAlive(alive{Incarnation: m.incarnation + 5, Node: "n3", Addr: other})
	if n := s.cores[0].Stats().NameConflicts - before; n != 1 {
		t.Fatalf("%d name conflicts counted for a claim on a leaving member's name, want 1", n)
	}
	if got := s.cores[0].table.get("n3"); got.addr == other {
		t.Fatal("the claimant took the leaving member's address")
	}
}

// TestCore_ForceLeaveOfSuspectIsLeavingThenLeft: force-leave of a crashed
// member that is only suspected yet does not forge "left" at once. As in
// Serf, where a member memberlist suspects is still StatusAlive, the
// intent makes it leaving (serf status 2) and its suspicion runs on; when
// the suspicion ends it is left, not failed, on every member.
func TestCore_ForceLeaveOfSuspectIsLeavingThenLeft(t *testing.T) {
	s := newSim(5, DefaultLANConfig(), testkit.Seed(t))
	crashSuspect(t, s, 3)
	log := leaveLog{}
	s.onEvent = func(e Event) {
		if e.Member.Name == "n3" {
			log[e.Node] = append(log[e.Node], e.Kind)
		}
	}
	inc := s.cores[0].table.get("n3").incarnation
	if err := s.cores[0].ForceLeave("n3"); err != nil {
		t.Fatal(err)
	}
	m, _ := s.cores[0].Member("n3")
	if m.State != StateLeaving || m.State.SerfStatus() != SerfStatusLeaving || m.Incarnation != inc {
		t.Fatalf("n0 sees n3 %v/%d right after force-leave, want leaving/%d", m.State, m.Incarnation, inc)
	}
	if s.cores[0].suspicions["n3"] == nil {
		t.Fatal("the force-leave ended n0's suspicion of n3")
	}
	s.drain(0)
	if !s.runUntil(30*time.Second, func() bool { return s.allSee(3, StateLeft) }) {
		t.Fatalf("n3 not left everywhere: %s", s.view(1))
	}
	s.drainAll()
	log.checkLeftNotFailed(t, 4)
	changes := slices.DeleteFunc(slices.Clone(log["n0"]), func(k EventKind) bool {
		return k != EventAlive && k != EventSuspect && k != EventDead && k != EventLeaving && k != EventLeft
	})
	if !slices.Equal(changes, []EventKind{EventLeaving, EventLeft}) {
		t.Fatalf("n0's events about n3: %v, want leaving then left", log["n0"])
	}
	heard := 0
	for node, kinds := range log {
		if node != "n0" && slices.Contains(kinds, EventLeaving) {
			heard++
		}
	}
	if heard == 0 {
		t.Fatalf("no other member heard the intent before n3 was left: %v", log)
	}
}

// TestCore_ForceLeaveOfSuspectThatIsAliveRefutes: a member that is
// suspected but alive, forced out, hears the intent and refutes: alive
// everywhere at a higher incarnation, never left or dead, and the
// suspicion that was running ends with the refutation.
func TestCore_ForceLeaveOfSuspectThatIsAliveRefutes(t *testing.T) {
	s := newSim(5, DefaultLANConfig(), testkit.Seed(t))
	if !s.runUntil(10*time.Second, func() bool { return s.allSee(3, StateAlive) }) {
		t.Fatalf("n3 not alive everywhere: %s", s.view(0))
	}
	c0 := s.cores[0]
	inc := c0.table.get("n3").incarnation
	c0.handleSuspect(suspect{Incarnation: inc, Node: "n3", From: "n1"}) // a false suspicion
	kinds := eventsAbout(s, "n3")
	if err := c0.ForceLeave("n3"); err != nil {
		t.Fatal(err)
	}
	if got := s.stateOf(0, 3); got != StateLeaving {
		t.Fatalf("n0 sees the suspect n3 %v after force-leave, want leaving", got)
	}
	s.drain(0)
	if !s.runUntil(10*time.Second, func() bool { return s.refuted(3, inc) }) {
		t.Fatalf("n3 did not refute: %s", s.view(0))
	}
	if kinds[EventLeft] != 0 || kinds[EventDead] != 0 || kinds[EventAlive] == 0 {
		t.Fatalf("events about n3 %v: want it back alive, never left or dead", kinds)
	}
	if c0.suspicions["n3"] != nil {
		t.Fatal("n0 still suspects n3 after its refutation")
	}
}

// forceLeftSuspect is a core n0 that knows y and web, suspects web (it
// crashed) and has force-left it: web is leaving, its suspicion running.
func forceLeftSuspect(t *testing.T) *Core {
	t.Helper()
	c := newBareCore(t, "web", "y")
	c.handleSuspect(suspect{Incarnation: 1, Node: "web", From: "y"})
	if err := c.ForceLeave("web"); err != nil {
		t.Fatal(err)
	}
	if m := c.table.get("web"); m.state != StateLeaving || !c.suspected(m) {
		t.Fatalf("web is %v after force-leave, suspected %v; want leaving and suspected", m.state, c.suspected(m))
	}
	c.Ready() // discard the intent packets
	return c
}

// TestCore_ReplacementOfAForceLeftSuspectIsNoConflict: web crashed and is
// suspected; the operator force-leaves it and starts its replacement at
// a new address. The suspect holder may be the claimant's previous life
// (conflict.go), leaving or not: no conflict notice may go to the
// replacement, or a majority of them makes it yield (stop) for good.
func TestCore_ReplacementOfAForceLeftSuspectIsNoConflict(t *testing.T) {
	c := forceLeftSuspect(t)
	c.handleAlive(alive{Incarnation: 0, Node: "web", Addr: netip.MustParseAddrPort("10.0.0.99:8301")})
	if n := c.Stats().NameConflicts; n != 0 {
		t.Fatalf("the replacement of a force-left suspect got %d conflict notice(s)", n)
	}
	for _, p := range c.Ready().Packets {
		t.Fatalf("a packet went to %v after the replacement's claim", p.To)
	}
}

// TestCore_PushPullCarriesTheSuspicionOfAForceLeftSuspect: a member that
// learns of the force-left suspect by push-pull learns the suspicion (the
// leaving record names its first accuser), so it too leaves the name to
// the replacement.
func TestCore_PushPullCarriesTheSuspicionOfAForceLeftSuspect(t *testing.T) {
	c := forceLeftSuspect(t)
	peer := newBareCoreAs(t, "p", netip.MustParseAddrPort("10.0.0.50:8301"), "web", "y")
	peer.handleAlive(alive{Incarnation: 1, Node: "n0", Addr: c.self.addr})
	if err := peer.MergePushPull(c.LocalState(false), false); err != nil {
		t.Fatal(err)
	}
	m := peer.table.get("web")
	if !peer.suspected(m) || peer.firstAccuser["web"] != "y" {
		t.Fatalf("after the push-pull the peer holds web %v, suspected %v, first accuser %q; want suspected by y",
			m.state, peer.suspected(m), peer.firstAccuser["web"])
	}
	peer.handleAlive(alive{Incarnation: 0, Node: "web", Addr: netip.MustParseAddrPort("10.0.0.99:8301")})
	if n := peer.Stats().NameConflicts; n != 0 {
		t.Fatalf("the peer told the replacement of a force-left suspect %d time(s) it conflicts", n)
	}
}

// TestCore_ForceLeftSuspectWithLongNamesIsStillGossiped: with names at
// their longest and a cluster label, the suspicion and the leave intent
// of a force-left suspect do not fit in one packet together. The
// suspicion must still go out (alone), not wait forever for room.
func TestCore_ForceLeftSuspectWithLongNamesIsStillGossiped(t *testing.T) {
	long := func(c byte) string { return strings.Repeat(string(c), maxNameBytes) }
	cfg := DefaultLANConfig()
	cfg.Name, cfg.Label = long('n'), long('l')
	c, err := NewCore(cfg, netip.MustParseAddrPort("10.0.0.1:8301"), rand.New(rand.NewPCG(1, 2)), nil)
	if err != nil {
		t.Fatal(err)
	}
	x, y := long('x'), long('y')
	c.handleAlive(alive{Incarnation: 1, Node: x, Addr: netip.MustParseAddrPort("10.0.0.2:8301")})
	c.handleAlive(alive{Incarnation: 1, Node: y, Addr: netip.MustParseAddrPort("10.0.0.3:8301")})
	c.handleSuspect(suspect{Incarnation: 1, Node: x, From: y})
	if err := c.ForceLeave(x); err != nil {
		t.Fatal(err)
	}
	c.Ready() // the intent sent to x itself
	c.gossip()
	sent := 0
	for _, p := range c.Ready().Packets {
		body, err := c.frame.open(p.Data)
		if err != nil {
			t.Fatal(err)
		}
		msgs, err := decodeBody(body)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			if s, ok := m.(suspect); ok && s.Node == x && s.First == y {
				sent++
			}
		}
	}
	if sent == 0 {
		for _, b := range c.queue.items {
			t.Logf("queued: %d bytes (a packet has room for %d)", len(b.msg), c.broadcastRoom())
		}
		t.Fatal("the suspicion of the force-left x was not gossiped")
	}
}
