package swim

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"roster/internal/faults"
	"roster/internal/testkit"
)

// partitionSim is a 10-member simulation that records its event trace for
// failure dumps.
func partitionSim(t *testing.T, seed uint64) (*sim, *[]Event) {
	t.Helper()
	s := newSim(10, DefaultLANConfig(), seed)
	var trace []Event
	s.onEvent = func(e Event) {
		if e.Kind != EventJoin {
			trace = append(trace, e)
		}
	}
	t.Cleanup(func() {
		if t.Failed() {
			var b strings.Builder
			for i, e := range trace {
				if len(trace)-i > 400 {
					continue // the tail is what explains a failure
				}
				b.WriteString(e.String() + "\n")
			}
			t.Logf("seed %d, last events:\n%s", seed, b.String())
			for i := range s.cores {
				t.Logf("view of %s: %s", s.names[i], s.view(i))
			}
		}
	})
	return s, &trace
}

// TestPartition_SixFourSplitHeals splits ten members 6|4: each side
// declares the other dead; after the heal, reconnects and refutations
// bring every member back to alive everywhere.
func TestPartition_SixFourSplitHeals(t *testing.T) {
	base := testkit.Seed(t)
	for run := range testkit.ChaosRuns(2) {
		seed := base + uint64(run)
		s, _ := partitionSim(t, seed)
		left, right := s.names[:6], s.names[6:]
		s.plan.Partition(left, right)
		crossDead := func() bool {
			for i := range 10 {
				for j := range 10 {
					if (i < 6) != (j < 6) && s.stateOf(i, j) != StateDead {
						return false
					}
				}
			}
			return true
		}
		if !s.runUntil(60*time.Second, crossDead) {
			t.Fatalf("seed %d: sides did not declare each other dead within 60s", seed)
		}
		checkSidesAlive(t, s)
		s.plan.Heal()
		start := s.now
		// Expected: a reconnect within ReconnectInterval (10s) from some
		// member, then refutations spread by gossip in a few seconds; allow
		// several reconnect rounds for unlucky choices.
		allAlive := func() bool {
			for j := range 10 {
				if !s.allSee(j, StateAlive) {
					return false
				}
			}
			return true
		}
		if !s.runUntil(90*time.Second, allAlive) {
			t.Fatalf("seed %d: not converged to all-alive 90s after heal", seed)
		}
		t.Logf("seed %d: converged %.1fs after heal", seed, float64(s.now-start)*s.cfg.TickInterval.Seconds())
	}
}

// checkSidesAlive: while partitioned, nobody declares a member of its own
// side dead (the side's members can still reach each other).
func checkSidesAlive(t *testing.T, s *sim) {
	t.Helper()
	for i := range 10 {
		for j := range 10 {
			if (i < 6) == (j < 6) && s.stateOf(i, j) != StateAlive {
				t.Errorf("%s sees same-side %s as %v", s.names[i], s.names[j], s.stateOf(i, j))
			}
		}
	}
}

// TestPartition_OneWayLoss: n0 hears everyone but nobody hears n0. The
// others must agree n0 is dead and must not wrongly kill each other; n0,
// probing in vain, raises its own health score (Lifeguard §IV-A) instead
// of convicting the healthy majority. After the heal n0 is alive again.
func TestPartition_OneWayLoss(t *testing.T) {
	seed := testkit.Seed(t)
	s, trace := partitionSim(t, seed)
	s.plan.Drop("n0", faults.Any, 1)
	if !s.runUntil(60*time.Second, func() bool { return s.allSee(0, StateDead) }) {
		t.Fatal("the others did not declare the unheard n0 dead")
	}
	for _, e := range *trace {
		if e.Kind == EventDead && e.Member.Name != "n0" && e.Node != "n0" {
			t.Errorf("healthy member convicted: %v", e)
		}
	}
	if hs := s.cores[0].health.score; hs == 0 {
		t.Errorf("n0's health score stayed 0 while none of its probes succeeded")
	}
	s.plan.Heal()
	if !s.runUntil(90*time.Second, func() bool { return s.allSee(0, StateAlive) }) {
		t.Fatal("n0 not alive everywhere 90s after heal")
	}
}

// TestPartition_FlappingLink: the direct link n0<->n1 goes up and down
// every 1.5s. Indirect probes through the other members keep both alive:
// no dead verdict at all.
func TestPartition_FlappingLink(t *testing.T) {
	seed := testkit.Seed(t)
	s, trace := partitionSim(t, seed)
	for flip := range 40 {
		p := 0.0
		if flip%2 == 0 {
			p = 1
		}
		s.plan.Drop("n0", "n1", p)
		s.plan.Drop("n1", "n0", p)
		s.run(1500 * time.Millisecond)
	}
	for _, e := range *trace {
		if e.Kind == EventDead {
			t.Errorf("dead verdict on a flapping link: %v", e)
		}
	}
	for j := range 10 {
		if !s.allSee(j, StateAlive) {
			t.Errorf("%s not alive everywhere after flapping", s.names[j])
		}
	}
}

// TestSwim_RejoinReclaimsName: a member declared dead restarts at
// incarnation 0 and must end up alive everywhere with a higher
// incarnation than the verdict.
func TestSwim_RejoinReclaimsName(t *testing.T) {
	s, _ := partitionSim(t, testkit.Seed(t))
	s.kill(3)
	if !s.runUntil(60*time.Second, func() bool { return s.allSee(3, StateDead) }) {
		t.Fatal("n3 never declared dead")
	}
	deadInc := s.cores[0].table.get("n3").incarnation
	s.restart(3, 0)
	if !s.runUntil(30*time.Second, func() bool { return s.allSee(3, StateAlive) }) {
		t.Fatal("restarted n3 not alive everywhere")
	}
	if got := s.cores[5].table.get("n3").incarnation; got <= deadInc {
		t.Fatalf("n3 alive at incarnation %d, not above the verdict's %d", got, deadInc)
	}
}

// TestSwim_DetectionSmallCluster checks, in virtual time, that a crash in
// 100 members is agreed on by everyone, and prints the figures.
func TestSwim_DetectionSmallCluster(t *testing.T) {
	d := measureDetection(100, 3, DefaultLANConfig(), testkit.Seed(t), 60*time.Second)
	if d.undetected > 0 {
		t.Fatalf("%d crashed members not declared dead by all within 60s: %v", d.undetected, d)
	}
	t.Logf("N=100: %v", d)
	if fmt.Sprint(quantile(d.allDead, 1)) == "NaN" {
		t.Fatal("no detection figures")
	}
}

// TestSimulation_Table1000 is the full simulation experiment at 1,000
// members (kill 10; quiet load; 5% slow members), with and without
// Lifeguard, printed as a table. It takes minutes, so it runs only under
// make chaos; `make bench` reports the same figures per size.
func TestSimulation_Table1000(t *testing.T) {
	if !testkit.Chaos() {
		t.Skip("long simulation; set ROSTER_CHAOS (make chaos) to run")
	}
	seed := testkit.Seed(t)
	var b strings.Builder
	fmt.Fprintf(&b, "\n%-10s | %-92s | %-22s | %s\n", "lifeguard", "detection of 10 killed (all members agree)", "load per member per s", "5% slow, 1% loss, 60s")
	for _, lifeguard := range []bool{true, false} {
		cfg := DefaultLANConfig()
		cfg.Lifeguard = lifeguard
		d := measureDetection(1000, 10, cfg, seed, 120*time.Second)
		l := measureLoad(1000, cfg, seed, 30*time.Second)
		fp := measureFalsePositives(1000, 0.05, 0.01, 300*time.Millisecond, 1500*time.Millisecond, cfg, seed, 60*time.Second)
		fmt.Fprintf(&b, "%-10v | %-92v | %.2f pkts %.1f B (+%.0f B pp) | %d suspicions, %d false dead\n",
			lifeguard, d, l.packetsPerMemberSec, l.bytesPerMemberSec, l.pushPullBytesPerMemberSec, fp.suspicions, fp.deadVerdicts)
		if d.undetected > 0 {
			t.Errorf("lifeguard=%v: %d killed members not detected by all", lifeguard, d.undetected)
		}
	}
	t.Log(b.String())
}
