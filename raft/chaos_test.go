package raft

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"roster/internal/testkit"
)

// TestPartition_RandomSchedule drives a 5-server cluster of cores in
// virtual time through a seeded random schedule of crashes, restarts,
// partitions, message loss, duplication and reordering, proposing all the
// while; the invariants are checked on every Ready. After the chaos the
// network heals and the cluster must elect a leader and commit again.
// `make chaos` runs 200 seeds; a normal run a few.
func TestPartition_RandomSchedule(t *testing.T) {
	seed := testkit.Seed(t)
	runs := testkit.ChaosRuns(4)
	for i := range runs {
		s := seed + uint64(i)
		t.Run(fmt.Sprint(s), func(t *testing.T) { runChaos(t, s, 3000) })
	}
}

func runChaos(t *testing.T, seed uint64, steps int) {
	cfg := defaultSimConfig()
	cfg.ElectionTicks, cfg.HeartbeatTicks = 30, 6
	// Small messages make partial replication (the Figure 8 setting) common.
	cfg.MaxEntriesPerMsg = 1 + int(seed%4)
	// Half the seeds run without check-quorum: safety must not depend on
	// leases (a deposed leader then lingers, the hard case for reads).
	cfg.CheckQuorum = seed%2 == 0
	ids := []string{"n1", "n2", "n3", "n4", "n5"}
	s := newSim(t, seed, cfg, ids...)
	rng := rand.New(rand.NewPCG(seed, 99))
	s.minLatency, s.maxLatency, s.tickJitter = 0, 3, 0.02
	for step := range steps {
		if step%20 == 0 {
			chaosAction(s, rng)
		}
		if l := s.leader(); l != "" && rng.IntN(3) == 0 {
			s.propose(l, fmt.Sprintf("c%d", step))
		}
		// Reads go to any server that believes it leads, stale or not.
		if id := ids[rng.IntN(len(ids))]; s.nodes[id].up && rng.IntN(4) == 0 {
			if s.nodes[id].core.ReadIndex(s.inv.readIssued()) == nil {
				s.flush(s.nodes[id])
			}
		}
		s.tick()
	}
	// Heal everything and require progress.
	s.plan.Heal()
	for _, id := range ids {
		if !s.nodes[id].up {
			s.restart(id)
		}
	}
	if !s.run(3000, func() bool { return s.stableLeader() != "" }) {
		s.fail("seed %d: no stable leader 3000 ticks after healing", seed)
	}
	idx, _, ok := s.propose(s.stableLeader(), "final")
	if !ok || !s.run(3000, func() bool { return allApplied(s, idx) }) {
		s.fail("seed %d: final proposal %d not applied everywhere after healing", seed, idx)
	}
}

func allApplied(s *sim, idx uint64) bool {
	for _, id := range s.ids {
		if n := s.nodes[id]; n.up && uint64(len(n.applied)) < idx {
			return false
		}
	}
	return true
}

func chaosAction(s *sim, rng *rand.Rand) {
	ids := s.ids
	pick := ids[rng.IntN(len(ids))]
	switch rng.IntN(9) {
	case 0:
		if s.nodes[pick].up && downCount(s) < 2 {
			s.crash(pick)
		}
	case 1, 2:
		for _, id := range ids {
			if !s.nodes[id].up {
				s.restart(id)
				break
			}
		}
	case 3:
		perm := rng.Perm(len(ids))
		cut := 1 + rng.IntN(len(ids)-1)
		var a, b []string
		for i, p := range perm {
			if i < cut {
				a = append(a, ids[p])
			} else {
				b = append(b, ids[p])
			}
		}
		s.plan.Partition(a, b)
		s.logf("partition %v | %v", a, b)
	case 4:
		s.plan.Isolate(pick)
		s.logf("isolate %s", pick)
	case 5:
		s.plan.Heal()
		s.logf("heal")
	case 6:
		s.plan.Drop("*", "*", rng.Float64()*0.3)
		s.plan.Duplicate(rng.Float64() * 0.2)
		s.plan.Reorder(rng.Float64() * 0.3)
		s.logf("lossy")
	case 7:
		s.plan.Delay(pick, "*", time.Duration(rng.IntN(20))*simTick)
	case 8:
		s.plan.Drop("*", "*", 0)
	}
}

func downCount(s *sim) int {
	n := 0
	for _, id := range s.ids {
		if !s.nodes[id].up {
			n++
		}
	}
	return n
}
