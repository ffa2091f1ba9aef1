package testkit

import (
	"errors"
	"path/filepath"
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

func TestGolden_ComparesAndRewrites(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "x.golden")
	old := *rewriteFlag
	defer func() { *rewriteFlag = old }()
	*rewriteFlag = true
	Golden(t, path, []byte("a\nb\n"))
	*rewriteFlag = false
	Golden(t, path, []byte("a\nb\n")) // equal: passes
	if d := FirstDiff("a\nb\n", "a\nc\n"); d != "line 2:\n  want: \"b\"\n  got:  \"c\"" {
		t.Fatalf("FirstDiff = %q", d)
	}
	if d := FirstDiff("a", "a"); d != "(no difference)" {
		t.Fatalf("FirstDiff of equal text = %q", d)
	}
}
