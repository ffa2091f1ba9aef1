package raft

import (
	"fmt"
	"testing"

	"roster/internal/testkit"
)

// TestPartition_StabilityIdleWithRejoins runs an idle 5-server cluster in
// virtual time with the shipped timing (10 ms ticks, 50 ms heartbeats,
// 300–600 ms election timeouts), jittery clocks (5% of ticks skipped or
// doubled) and 0–20 ms message latency. Every 20 s of virtual time one
// follower is isolated for 2–15 s and then rejoins. Required: not one
// election, term change or step-down after the first leader — pre-vote
// keeps the isolated server's term still and check-quorum's lease keeps the
// rest from listening to it. Ten virtual minutes take a fraction of a
// second, so every run covers them; `make chaos` runs 200 seeds.
func TestPartition_StabilityIdleWithRejoins(t *testing.T) {
	seed := testkit.Seed(t)
	for i := range testkit.ChaosRuns(2) {
		s := seed + uint64(i)
		t.Run(fmt.Sprint(s), func(t *testing.T) { stabilityRun(t, s, 10) })
	}
}

func stabilityRun(t *testing.T, seed uint64, minutes int) {
	cfg := defaultSimConfig()
	cfg.ElectionTicks, cfg.HeartbeatTicks = 30, 5
	s := newSim(t, seed, cfg, "n1", "n2", "n3", "n4", "n5")
	s.minLatency, s.maxLatency, s.tickJitter = 0, 2, 0.05
	if !s.run(1000, func() bool { return s.stableLeader() != "" }) {
		s.fail("no initial leader")
	}
	leader := s.stableLeader()
	term := s.nodes[leader].core.Term()
	const ticksPerSecond = 100
	for sec := 0; sec < minutes*60; sec += 20 {
		victim := s.ids[int(seed+uint64(sec))%len(s.ids)]
		if victim == leader {
			victim = s.ids[(int(seed+uint64(sec))+1)%len(s.ids)]
		}
		down := (2 + int(seed+uint64(sec))%14) * ticksPerSecond // 2–15 s, then at least 5 s to settle
		s.plan.Isolate(victim)
		s.run(down, func() bool { return false })
		s.plan.Heal()
		s.run(20*ticksPerSecond-down, func() bool { return false })
		for _, id := range s.ids {
			n := s.nodes[id].core
			if n.Term() != term {
				s.fail("second %d: %s is in term %d, want %d (isolated %s for %d ticks)", sec, id, n.Term(), term, victim, down)
			}
		}
		if s.stableLeader() != leader {
			s.fail("second %d: leader changed from %s to %q", sec, leader, s.stableLeader())
		}
	}
}
