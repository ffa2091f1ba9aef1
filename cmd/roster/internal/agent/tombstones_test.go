package agent

import (
	"testing"
	"time"
)

func TestTombstoneGC_ReapsOnlyIndexesOlderThanTheTTL(t *testing.T) {
	g := &tombstoneGC{ttl: 10 * time.Minute}
	t0 := time.Unix(1_000_000, 0)
	if got := g.observe(t0, 5); got != 0 {
		t.Fatalf("first sample reaps up to %d, want nothing", got)
	}
	if got := g.observe(t0.Add(5*time.Minute), 9); got != 0 {
		t.Fatalf("after 5m reaps up to %d, want nothing", got)
	}
	if got := g.observe(t0.Add(10*time.Minute), 12); got != 5 {
		t.Fatalf("after 10m reaps up to %d, want 5 (the index seen 10m ago)", got)
	}
	if got := g.observe(t0.Add(16*time.Minute), 20); got != 9 {
		t.Fatalf("after 16m reaps up to %d, want 9", got)
	}
	if len(g.samples) != 2 {
		t.Fatalf("kept %d samples, want the 2 younger than the TTL", len(g.samples))
	}
}
