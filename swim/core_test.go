package swim

import (
	"testing"
	"time"

	"roster/internal/testkit"
)

// TestUserEvents_LamportDedup: each (ltime, name, payload) is delivered
// once; events older than the ring or than our join are dropped.
func TestUserEvents_LamportDedup(t *testing.T) {
	u := newUserEvents(4)
	m := userMsg{LTime: 5, Name: "deploy", Payload: []byte("v1")}
	u.witness(m.LTime)
	if !u.record(m) || u.record(m) {
		t.Fatal("first copy must be new, second a duplicate")
	}
	other := userMsg{LTime: 5, Name: "deploy", Payload: []byte("v2")}
	if !u.record(other) {
		t.Fatal("same Lamport time, different payload is a different event")
	}
	if u.clock != 6 {
		t.Fatalf("clock %d, want 6 after witnessing 5", u.clock)
	}
	u.witness(20)
	if u.record(userMsg{LTime: 10, Name: "late"}) {
		t.Fatal("an event older than the de-duplication window was accepted")
	}
	u.ignoreBefore(19)
	if u.record(userMsg{LTime: 18, Name: "before-join"}) {
		t.Fatal("an event from before our join was accepted")
	}
}

// TestCore_MembersAreCopies: changing what Members returns changes
// nothing inside the core.
func TestCore_MembersAreCopies(t *testing.T) {
	s := newSim(3, DefaultLANConfig(), 1)
	if err := s.cores[1].SetTags(map[string]string{"role": "server"}); err != nil {
		t.Fatal(err)
	}
	s.run(2 * time.Second)
	ms := s.cores[0].Members()
	for i := range ms {
		if ms[i].Name == "n1" {
			ms[i].Tags["role"] = "mutated"
			ms[i].State = StateDead
		}
	}
	m, _ := s.cores[0].Member("n1")
	if m.Tags["role"] != "server" || m.State != StateAlive {
		t.Fatalf("core state changed through a returned copy: %+v", m)
	}
}

// TestCore_DeadMembersAreReaped: after ReapInterval a dead member is
// forgotten (with an event) and no longer listed.
func TestCore_DeadMembersAreReaped(t *testing.T) {
	cfg := DefaultLANConfig()
	cfg.ReapInterval = 30 * time.Second
	s := newSim(5, cfg, testkit.Seed(t))
	reaped := 0
	s.onEvent = func(e Event) {
		if e.Kind == EventReap && e.Member.Name == "n4" {
			reaped++
		}
	}
	s.kill(4)
	if !s.runUntil(20*time.Second, func() bool { return s.allSee(4, StateDead) }) {
		t.Fatal("n4 not declared dead")
	}
	if !s.runUntil(60*time.Second, func() bool { return reaped == 4 }) {
		t.Fatalf("n4 reaped by %d of 4 members", reaped)
	}
	if _, ok := s.cores[0].Member("n4"); ok || len(s.cores[0].Members()) != 4 {
		t.Fatalf("reaped member still listed: %s", s.view(0))
	}
}

// TestCore_CountersTrackTheProtocol: a suspicion that is refuted shows in
// the suspecters' and the suspect's counters. (Confirmations are pinned by
// the suspect_dead golden trace, missed nacks raising the health score by
// TestPartition_OneWayLoss.)
func TestCore_CountersTrackTheProtocol(t *testing.T) {
	s := newSim(5, DefaultLANConfig(), testkit.Seed(t))
	s.plan.Isolate("n2")
	suspected := func() bool {
		for i := range s.cores {
			if i != 2 && s.stateOf(i, 2) == StateSuspect {
				return true
			}
		}
		return false
	}
	if !s.runUntil(20*time.Second, suspected) {
		t.Fatal("isolated n2 was never suspected")
	}
	s.plan.Heal()
	if !s.runUntil(20*time.Second, func() bool { return s.allSee(2, StateAlive) && s.cores[0].table.get("n2").incarnation > 0 }) {
		t.Fatalf("n2 never refuted: %s", s.view(0))
	}
	var suspicions uint64
	for i, c := range s.cores {
		if i != 2 {
			suspicions += c.Stats().Suspicions
		}
	}
	st2 := s.cores[2].Stats()
	if suspicions == 0 || st2.Refutations == 0 || st2.IndirectProbes+st2.ProbesSent == 0 {
		t.Fatalf("suspicions %d, n2: %+v", suspicions, st2)
	}
}
