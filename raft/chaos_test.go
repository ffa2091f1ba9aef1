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
		// Now and then the leader hands over to a random voter.
		if l := s.leader(); l != "" && rng.IntN(200) == 0 {
			if s.nodes[l].core.TransferLeadership(ids[rng.IntN(len(ids))]) == nil {
				s.flush(s.nodes[l])
			}
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
	idx := s.commitFinal(3000)
	if !s.run(3000, func() bool { return allApplied(s, idx) }) {
		s.fail("seed %d: final proposal %d not applied everywhere after healing", seed, idx)
	}
}

// TestPartition_RandomMembershipSchedule is the random schedule with
// single-server membership changes mixed in: servers are added, demoted,
// removed (the leader included) while crashes and partitions go on.
// Election Safety, State Machine Safety, Leader Completeness and read
// linearizability are checked throughout.
func TestPartition_RandomMembershipSchedule(t *testing.T) {
	seed := testkit.Seed(t)
	for i := range testkit.ChaosRuns(4) {
		s := seed + uint64(i)
		t.Run(fmt.Sprint(s), func(t *testing.T) { runMembershipChaos(t, s, 3000) })
	}
}

func runMembershipChaos(t *testing.T, seed uint64, steps int) {
	cfg := defaultSimConfig()
	cfg.ElectionTicks, cfg.HeartbeatTicks = 30, 6
	cfg.CheckQuorum = seed%2 == 0
	ids := []string{"n1", "n2", "n3", "n4", "n5"}
	s := newSimVoters(t, seed, cfg, ids[:3], ids...)
	rng := rand.New(rand.NewPCG(seed, 77))
	s.minLatency, s.maxLatency = 0, 3
	for step := range steps {
		if step%20 == 0 {
			chaosAction(s, rng)
		}
		l := s.leader()
		if l != "" && rng.IntN(3) == 0 {
			s.propose(l, fmt.Sprintf("c%d", step))
		}
		if l != "" && step%40 == 0 {
			membershipAction(s, l, rng)
		}
		s.tick()
	}
	s.plan.Heal()
	for _, id := range ids {
		if !s.nodes[id].up {
			s.restart(id)
		}
	}
	idx := s.commitFinal(5000)
	if !s.run(5000, func() bool { return appliedByVoters(s, idx) }) {
		s.fail("seed %d: final proposal %d not applied by the voters after healing", seed, idx)
	}
}

// commitFinal proposes until a proposal is acknowledged (a leader may still
// lose one to a newer leader right after the heal) and returns its index.
func (s *sim) commitFinal(maxTicks int) uint64 {
	for attempt := 0; attempt < 20; attempt++ {
		if !s.run(maxTicks, func() bool { return s.stableLeader() != "" }) {
			s.fail("no stable leader %d ticks after healing", maxTicks)
		}
		idx, term, ok := s.propose(s.stableLeader(), "final")
		if !ok { // e.g. refused during a leadership transfer
			s.run(s.cfg.ElectionTicks, func() bool { return false })
			continue
		}
		if s.run(maxTicks, func() bool { return s.inv.acked[idx] == term }) {
			return idx
		}
	}
	s.fail("no proposal acknowledged after healing")
	return 0
}

// membershipAction proposes one random single-server change on leader l,
// keeping at least one voter.
func membershipAction(s *sim, l string, rng *rand.Rand) {
	c := s.nodes[l].core
	conf := c.conf.Clone()
	target := s.ids[rng.IntN(len(s.ids))]
	var next Configuration
	switch _, in := conf.Server(target); {
	case !in:
		next = upsertServer(conf, Server{ID: target, Address: target, Suffrage: Suffrage(rng.IntN(2))})
	case conf.isVoter(target) && len(conf.voters()) > 1 && rng.IntN(2) == 0:
		for _, srv := range conf.Servers {
			if srv.ID != target {
				next.Servers = append(next.Servers, srv)
			}
		}
	default:
		srv, _ := conf.Server(target)
		srv.Suffrage = 1 - srv.Suffrage
		next = upsertServer(conf, srv)
	}
	if next.Validate() != nil {
		return
	}
	if _, err := c.ProposeConfiguration(next); err == nil {
		s.logf("%s proposes %s", l, formatServers(next.Servers))
		s.flush(s.nodes[l])
	}
}

func appliedByVoters(s *sim, idx uint64) bool {
	l := s.stableLeader()
	if l == "" {
		return false
	}
	for _, id := range s.nodes[l].core.conf.voters() {
		if n := s.nodes[id]; n.up && uint64(len(n.applied)) < idx {
			return false
		}
	}
	return true
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
