package swim

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	"roster/internal/testkit"
)

// Serf's handleNodeLeave: a member that is leaving (StatusLeaving) when
// it is declared gone becomes left, not failed. These tests pin that rule
// and its edges: a leaver that dies.

// eventsAbout counts by kind the events about name that the other
// members emit from now on (it takes over s.onEvent).
func eventsAbout(s *sim, name string) map[EventKind]int {
	kinds := map[EventKind]int{}
	s.onEvent = func(e Event) {
		if e.Member.Name == name && e.Node != name {
			kinds[e.Kind]++
		}
	}
	return kinds
}

// leaveLog records, per observer, the kinds of the events about one
// member.
type leaveLog map[string][]EventKind

// checkLeftNotFailed: every observer records the member left exactly once,
// and none that had heard it was leaving ever records it dead. (One that
// missed the intent may convict it first, as in Serf; the "left" that
// follows wins over its "dead".)
func (l leaveLog) checkLeftNotFailed(t *testing.T, observers int) {
	t.Helper()
	if len(l) != observers {
		t.Fatalf("events about the leaver from %d members, want %d: %v", len(l), observers, l)
	}
	for node, kinds := range l {
		heard, lefts := false, 0
		for _, k := range kinds {
			switch k {
			case EventLeaving:
				heard = true
			case EventDead:
				if heard {
					t.Fatalf("%s heard the leave intent and then recorded the leaver dead: %v", node, kinds)
				}
			case EventLeft:
				lefts++
			}
		}
		if lefts != 1 {
			t.Fatalf("%s recorded the leaver left %d times, want once: %v", node, lefts, kinds)
		}
	}
}

// TestCore_ForceLeftMemberThatCrashedEndsLeft: force-leave of a member
// that has crashed but is still seen alive (what `roster force-leave`
// does for a node the local agent has not yet noticed) marks it leaving;
// once failure detection convicts it, every member records it left, not
// dead: left events only, "left" in push-pull, reaped as left.
func TestCore_ForceLeftMemberThatCrashedEndsLeft(t *testing.T) {
	cfg := DefaultLANConfig()
	cfg.ReapInterval = 40 * time.Second
	s := newSim(5, cfg, testkit.Seed(t))
	if !s.runUntil(10*time.Second, func() bool { return s.allSee(3, StateAlive) }) {
		t.Fatalf("n3 not alive everywhere: %s", s.view(0))
	}
	log := leaveLog{}
	s.onEvent = func(e Event) {
		if e.Member.Name == "n3" {
			log[e.Node] = append(log[e.Node], e.Kind)
		}
	}
	s.kill(3)
	if err := s.cores[0].ForceLeave("n3"); err != nil {
		t.Fatalf("force-leave of a member still seen alive: %v", err)
	}
	if got := s.stateOf(0, 3); got != StateLeaving {
		t.Fatalf("n0 sees n3 %v right after force-leave, want leaving", got)
	}
	s.drain(0)
	if !s.runUntil(60*time.Second, func() bool { return s.allSee(3, StateLeft) }) {
		t.Fatalf("crashed n3 not left everywhere: %s | %s", s.view(0), s.view(4))
	}
	s.drainAll()
	log.checkLeftNotFailed(t, 4)
	if !slices.Contains(log["n0"], EventSuspect) {
		t.Fatalf("n0's events about n3 %v: never suspected, so the rule under test did not run", log["n0"])
	}
	st, err := s.cores[1].decodePushPull(s.cores[1].LocalState(false))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range st.Members {
		if r.Name == "n3" && r.State != StateLeft {
			t.Fatalf("push-pull reports n3 %v, want left", r.State)
		}
	}
	if !s.runUntil(2*cfg.ReapInterval, func() bool {
		for i := range 5 {
			if i != 3 && s.cores[i].table.get("n3") != nil {
				return false
			}
		}
		return true
	}) {
		t.Fatalf("left n3 not reaped within %v: %s", 2*cfg.ReapInterval, s.view(0))
	}
	for node, kinds := range log {
		if k := kinds[len(kinds)-1]; k != EventReap {
			t.Fatalf("%s's last event about n3 is %v, want reap: %v", node, k, kinds)
		}
	}
}

// TestCore_GracefulLeaverThatCrashesEndsLeft: a member that sent its
// leave intent and crashed before its "left" announcement went out is
// recorded left too (Serf: the intent was heard, so it is StatusLeaving
// when memberlist reports it gone).
func TestCore_GracefulLeaverThatCrashesEndsLeft(t *testing.T) {
	s := newSim(5, DefaultLANConfig(), testkit.Seed(t))
	if !s.runUntil(10*time.Second, func() bool { return s.allSee(4, StateAlive) }) {
		t.Fatalf("n4 not alive everywhere: %s", s.view(0))
	}
	log := leaveLog{}
	s.onEvent = func(e Event) {
		if e.Member.Name != "n4" || e.Node == "n4" {
			return
		}
		log[e.Node] = append(log[e.Node], e.Kind)
		// Crash n4 as soon as its intent lands. Within a step every
		// member handles its packets before any ticks, and n4 ticks
		// last, so it dies before the tick that would announce "left".
		if e.Kind == EventLeaving {
			s.kill(4)
		}
	}
	s.cores[4].Leave()
	if !s.runUntil(5*time.Second, func() bool { return s.down[4] }) {
		t.Fatalf("n4's leave intent never arrived: %s", s.view(0))
	}
	if s.cores[4].leaving {
		t.Fatal("n4 announced left before it crashed: the test would not test a crashed leaver")
	}
	if !s.runUntil(60*time.Second, func() bool { return s.allSee(4, StateLeft) }) {
		t.Fatalf("crashed leaver n4 not left everywhere: %s", s.view(0))
	}
	s.drainAll()
	log.checkLeftNotFailed(t, 4)
}

// TestCore_ForceLeftMemberThatRefutesThenCrashesFails: a member forced to
// leave while alive refutes (alive at a higher incarnation: Serf's newer
// join intent turns StatusLeaving back into StatusAlive), so it is no
// longer leaving; when it later crashes it has failed, as any member.
func TestCore_ForceLeftMemberThatRefutesThenCrashesFails(t *testing.T) {
	s := newSim(5, DefaultLANConfig(), testkit.Seed(t))
	if !s.runUntil(10*time.Second, func() bool { return s.allSee(3, StateAlive) }) {
		t.Fatalf("n3 not alive everywhere: %s", s.view(0))
	}
	inc := s.cores[0].table.get("n3").incarnation
	kinds := eventsAbout(s, "n3")
	if err := s.cores[0].ForceLeave("n3"); err != nil {
		t.Fatal(err)
	}
	s.drain(0)
	if !s.runUntil(10*time.Second, func() bool { return s.refuted(3, inc) }) {
		t.Fatalf("n3 did not refute: %s", s.view(1))
	}
	if kinds[EventLeaving] == 0 || kinds[EventAlive] == 0 {
		t.Fatalf("events about n3 %v: want leaving, then alive", kinds)
	}
	s.kill(3)
	if !s.runUntil(60*time.Second, func() bool { return s.allSee(3, StateDead) }) {
		t.Fatalf("n3 not dead after it refuted and crashed: %s", s.view(0))
	}
	if kinds[EventLeft] != 0 {
		t.Fatalf("events about n3 %v: a member that refuted its leave was recorded left", kinds)
	}
}

// TestCore_ForceLeaveOfFailedMemberStillLeft: the other order, failed
// first and then forced out, still ends left (Serf's RemoveFailedNode).
func TestCore_ForceLeaveOfFailedMemberStillLeft(t *testing.T) {
	s := newSim(4, DefaultLANConfig(), testkit.Seed(t))
	s.kill(2)
	if !s.runUntil(30*time.Second, func() bool { return s.allSee(2, StateDead) }) {
		t.Fatalf("n2 not dead: %s", s.view(0))
	}
	if err := s.cores[1].ForceLeave("n2"); err != nil {
		t.Fatal(err)
	}
	s.drain(1)
	if !s.runUntil(10*time.Second, func() bool { return s.allSee(2, StateLeft) }) {
		t.Fatalf("failed n2 not left after force-leave: %s", s.view(0))
	}
}

// TestCore_LeaveIntentRules drives one core's handlers directly through
// the orders that decide between left and dead.
func TestCore_LeaveIntentRules(t *testing.T) {
	type step struct {
		kind string // leaving, suspect, dead, alive
		inc  uint32
	}
	cases := []struct {
		name  string
		steps []step
		want  State
	}{
		{"leaving then dead", []step{{"leaving", 0}, {"dead", 0}}, StateLeft},
		{"leaving, suspect, dead", []step{{"leaving", 0}, {"suspect", 0}, {"dead", 0}}, StateLeft},
		{"leaving, suspect, expiry", []step{{"leaving", 0}, {"suspect", 0}, {"expire", 0}}, StateLeft},
		{"suspect then dead: no intent", []step{{"suspect", 0}, {"dead", 0}}, StateDead},
		{"suspect, leaving, dead", []step{{"suspect", 0}, {"leaving", 0}, {"dead", 0}}, StateLeft},
		{"suspect, leaving: leaving, still suspected", []step{{"suspect", 0}, {"leaving", 0}}, StateLeaving},
		{"leaving, suspect: still leaving", []step{{"leaving", 0}, {"suspect", 0}}, StateLeaving},
		{"suspect, leaving, expiry", []step{{"suspect", 0}, {"leaving", 0}, {"expire", 0}}, StateLeft},
		{"suspect, leaving, refuted", []step{{"suspect", 0}, {"leaving", 0}, {"alive", 1}}, StateAlive},
		{"suspect, leaving, refuted, dead", []step{{"suspect", 0}, {"leaving", 0}, {"alive", 1}, {"dead", 1}}, StateDead},
		{"leaving, suspect at a newer incarnation, dead", []step{{"leaving", 0}, {"suspect", 1}, {"dead", 1}}, StateDead},
		{"leaving, dead at a newer incarnation", []step{{"leaving", 0}, {"dead", 1}}, StateDead},
		{"leaving, refuted, dead", []step{{"leaving", 0}, {"alive", 1}, {"dead", 1}}, StateDead},
		{"leaving, refuted", []step{{"leaving", 0}, {"alive", 1}}, StateAlive},
		{"dead, then leaving", []step{{"dead", 0}, {"leaving", 0}}, StateLeft},
		{"dead, then an older leaving", []step{{"alive", 2}, {"dead", 2}, {"leaving", 1}}, StateDead},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newSim(4, DefaultLANConfig(), testkit.Seed(t))
			c := s.cores[0]
			addr := s.addrs[2]
			for _, st := range tc.steps {
				applyStep(c, st.kind, st.inc, addr)
			}
			m, ok := c.Member("n2")
			if !ok || m.State != tc.want {
				t.Fatalf("n2 is %v (known %v), want %v", m.State, ok, tc.want)
			}
		})
	}
}

// applyStep feeds core c one message about n2 (from n1), or expires n2's
// suspicion.
func applyStep(c *Core, kind string, inc uint32, addr netip.AddrPort) {
	switch kind {
	case "leaving":
		c.handleLeaving(leaving{Incarnation: inc, Node: "n2", From: "n1"})
	case "suspect":
		c.handleSuspect(suspect{Incarnation: inc, Node: "n2", From: "n1"})
	case "dead":
		c.handleDead(dead{Incarnation: inc, Node: "n2", From: "n1"})
	case "alive":
		c.handleAlive(alive{Incarnation: inc, Node: "n2", Addr: addr})
	case "expire":
		if sus := c.suspicions["n2"]; sus != nil {
			c.now = sus.deadline
			c.expireSuspicions()
		}
	}
}

// An intent at a higher incarnation than a death a member holds was sent
// about a member seen alive after that death, which nobody convicted at
// the newer incarnation: it makes the member leaving there, never left,
// so no "left" in its name evicts it from members that hold it alive.
func TestCore_NewerIntentThanAStaleDeathDoesNotForgeLeft(t *testing.T) {
	s := newSim(4, DefaultLANConfig(), 1)
	c0, c3 := s.cores[0], s.cores[3]
	c0.handleDead(dead{Incarnation: 0, Node: "n2", From: "n1"}) // a stale verdict
	c3.handleAlive(alive{Incarnation: 1, Node: "n2", Addr: s.addrs[2]})
	c0.handleLeaving(leaving{Incarnation: 1, Node: "n2", From: "n1"})
	if m, _ := c0.Member("n2"); m.State != StateLeaving || m.Incarnation != 1 {
		t.Fatalf("n0 holds n2 as %v at %d, want leaving at 1", m.State, m.Incarnation)
	}
	relayed := 0
	for _, it := range c0.queue.items {
		if it.key != "n2" {
			continue
		}
		msgs, err := decodeBody(it.msg)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			c3.handle(c0.self.addr, m)
			relayed++
		}
	}
	if relayed == 0 {
		t.Fatal("n0 queued nothing about n2")
	}
	if m, _ := c3.Member("n2"); m.State == StateLeft {
		t.Fatalf("n3 holds n2 (alive at 1, never suspected at 1) %v after n0's gossip", m.State)
	}
}

// TestCore_GracefulLeaverSuspectedReachesAPeerByPushPullAndEndsLeft: a
// member begins its own Leave and goes silent, so n0 holds it leaving and
// suspected. A peer that missed the intent and is repaired by push-pull
// must learn both the intent and the suspicion: when the suspicion
// expires there it records the member left (leaverDied), not failed, and
// gossips "left".
func TestCore_GracefulLeaverSuspectedReachesAPeerByPushPullAndEndsLeft(t *testing.T) {
	c := newBareCore(t, "web", "y")
	c.handleLeaving(leaving{Incarnation: 2, Node: "web", From: "web"}) // web's own Leave
	c.handleSuspect(suspect{Incarnation: 2, Node: "web", From: "y"})   // then it went silent
	if m := c.table.get("web"); m.state != StateLeaving || !c.suspected(m) {
		t.Fatalf("setup: n0 holds web %v, suspected %v; want leaving and suspected", m.state, c.suspected(m))
	}
	peer := newBareCoreAs(t, "p", netip.MustParseAddrPort("10.0.0.50:8301"), "web", "y")
	peer.handleAlive(alive{Incarnation: 1, Node: "n0", Addr: c.self.addr})
	peer.Ready()
	if err := peer.MergePushPull(c.LocalState(false), false); err != nil {
		t.Fatal(err)
	}
	m := peer.table.get("web")
	if m.state != StateLeaving || !peer.suspected(m) || peer.firstAccuser["web"] != "y" {
		t.Fatalf("after the push-pull the peer holds web %v, suspected %v, first accuser %q; want leaving, suspected by y",
			m.state, peer.suspected(m), peer.firstAccuser["web"])
	}
	var kinds []EventKind
	for i := 0; i < 100_000 && !peer.table.get("web").gone(); i++ { // no gossip reaches the peer
		peer.Tick()
		for _, e := range peer.Ready().Events {
			if e.Member.Name == "web" {
				kinds = append(kinds, e.Kind)
			}
		}
	}
	if st := peer.table.get("web").state; st != StateLeft {
		t.Fatalf("the peer ends with web %v (events %v), want left", st, kinds)
	}
	if n := peer.Stats().DeadVerdicts; n != 0 || slices.Contains(kinds, EventDead) {
		t.Fatalf("the peer counted %d dead verdicts about a graceful leaver (events %v)", n, kinds)
	}
}
