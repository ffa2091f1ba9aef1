package swim

import (
	"testing"
	"time"

	"roster/internal/testkit"
)

// TestCore_NameConflictOlderMemberKeepsName: a second process named n2
// joins at another address. The members holding n2 ignore its claim, say
// so in an event and tell it; told by a majority, the newcomer yields
// (an event, Yielded) and the original n2 stays alive at its address
// everywhere.
func TestCore_NameConflictOlderMemberKeepsName(t *testing.T) {
	s := newSim(5, DefaultLANConfig(), testkit.Seed(t))
	s.run(2 * time.Second)
	var detected, yielded []Event
	s.onEvent = func(e Event) {
		if e.Kind != EventConflict {
			return
		}
		if e.Yielded {
			yielded = append(yielded, e)
		} else {
			detected = append(detected, e)
		}
	}
	dup := s.spawn("n2", 0)
	if !s.runUntil(20*time.Second, func() bool { return s.cores[dup].Yielded() }) {
		t.Fatalf("the newcomer never yielded; %d conflict events", len(detected))
	}
	s.run(10 * time.Second)
	if len(yielded) != 1 || yielded[0].Node != "n2" || yielded[0].ConflictAddr != s.addrs[2] {
		t.Fatalf("want one yield by the newcomer naming the holder %v, got %v", s.addrs[2], yielded)
	}
	sawClaimant := false
	for _, e := range detected {
		if e.ConflictAddr == s.addrs[dup] && e.Member.AddrPort() == s.addrs[2] {
			sawClaimant = true
		}
	}
	if !sawClaimant {
		t.Fatalf("no member reported the claimant at %v: %v", s.addrs[dup], detected)
	}
	if s.cores[2].Yielded() {
		t.Fatal("the original holder yielded")
	}
	for i := range 5 {
		if i == 2 {
			continue
		}
		m, ok := s.cores[i].Member("n2")
		if !ok || m.State != StateAlive || m.AddrPort() != s.addrs[2] {
			t.Fatalf("n%d sees n2 as %+v, want alive at %v", i, m, s.addrs[2])
		}
	}
}

// TestCore_RestartAtNewAddressIsNoConflict: a member that crashed and
// comes back under its name at another address takes the name over once
// its old record is dead, with no conflict and no yielding.
func TestCore_RestartAtNewAddressIsNoConflict(t *testing.T) {
	s := newSim(5, DefaultLANConfig(), testkit.Seed(t))
	s.run(2 * time.Second)
	s.kill(2)
	if !s.runUntil(30*time.Second, func() bool { return s.allSee(2, StateDead) }) {
		t.Fatalf("n2 not dead: %s", s.view(0))
	}
	conflicts := 0
	s.onEvent = func(e Event) {
		if e.Kind == EventConflict {
			conflicts++
		}
	}
	again := s.spawn("n2", 0)
	moved := func() bool {
		for _, i := range []int{0, 1, 3, 4} {
			m, ok := s.cores[i].Member("n2")
			if !ok || m.State != StateAlive || m.AddrPort() != s.addrs[again] {
				return false
			}
		}
		return true
	}
	if !s.runUntil(30*time.Second, moved) {
		t.Fatalf("n2 did not take its name back at %v: %s", s.addrs[again], s.view(0))
	}
	if conflicts != 0 || s.cores[again].Yielded() {
		t.Fatalf("%d conflict events, yielded=%v", conflicts, s.cores[again].Yielded())
	}
}
