package testkit

import (
	"errors"
	"testing"
	"time"
)

func TestFreePorts_Distinct(t *testing.T) {
	ports := FreePorts(t, 5)
	seen := map[int]bool{}
	for _, p := range ports {
		if p <= 0 || seen[p] {
			t.Fatalf("bad or duplicate port %d in %v", p, ports)
		}
		seen[p] = true
	}
}

func TestPoll_ReturnsOnceConditionHolds(t *testing.T) {
	calls := 0
	err := Poll(time.Second, func() error {
		calls++
		if calls < 3 {
			return errors.New("not yet")
		}
		return nil
	})
	if err != nil || calls != 3 {
		t.Fatalf("Poll = %v after %d calls, want nil after 3", err, calls)
	}
}

func TestPoll_ReturnsLastErrorAtDeadline(t *testing.T) {
	want := errors.New("never")
	if err := Poll(30*time.Millisecond, func() error { return want }); err != want {
		t.Fatalf("Poll = %v, want %v", err, want)
	}
}

func TestRand_SameSeedSameSequence(t *testing.T) {
	old := *seedFlag
	defer func() { *seedFlag = old }()
	*seedFlag = 42
	a, b := Rand(t), Rand(t)
	for i := 0; i < 10; i++ {
		if x, y := a.Uint64(), b.Uint64(); x != y {
			t.Fatalf("draw %d differs: %d vs %d", i, x, y)
		}
	}
}

func TestChaosRuns_DefaultsToQuickAndHonoursEnv(t *testing.T) {
	t.Setenv(ChaosEnv, "")
	if got := ChaosRuns(3); got != 3 || Chaos() {
		t.Fatalf("ChaosRuns(3) = %d, Chaos() = %v without env", got, Chaos())
	}
	t.Setenv(ChaosEnv, "200")
	if got := ChaosRuns(3); got != 200 || !Chaos() {
		t.Fatalf("ChaosRuns(3) = %d, Chaos() = %v with %s=200", got, Chaos(), ChaosEnv)
	}
}
