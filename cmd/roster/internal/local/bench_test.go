package local

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// BenchmarkFullSync_InSync1000 measures a full sync of an agent with 1000
// services (one TTL check each) whose catalog view is already in sync: the
// steady-state cost every agent pays each ae interval (two reads, no writes).
func BenchmarkFullSync_InSync1000(b *testing.B) {
	f := &storeRPC{}
	st, err := New(Config{NodeName: "n1", Address: "127.0.0.1"})
	if err != nil {
		b.Fatal(err)
	}
	f.store = mustStore(b)
	for i := range 1000 {
		if err := st.AddService(ServiceDefinition{Name: fmt.Sprintf("s%d", i), Port: i, Tags: []string{"a"},
			Check: &CheckDefinition{TTL: Duration(time.Minute)}}, false); err != nil {
			b.Fatal(err)
		}
	}
	sy, err := NewSyncer(st, f, SyncConfig{})
	if err != nil {
		b.Fatal(err)
	}
	if err := sy.SyncFull(context.Background()); err != nil {
		b.Fatal(err)
	}
	initial := sy.Stats().Writes
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := sy.SyncFull(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if w := sy.Stats().Writes; w != initial {
		b.Fatalf("steady-state full syncs made %d writes, want none", w-initial)
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "µs/fullsync")
}

// BenchmarkUpdateCheck measures a runner's report (output-only change,
// deferred), the hot path of busy HTTP checks.
func BenchmarkUpdateCheck(b *testing.B) {
	st, err := New(Config{NodeName: "n1", Address: "127.0.0.1"})
	if err != nil {
		b.Fatal(err)
	}
	if err := st.AddCheck(CheckDefinition{Name: "c", TTL: Duration(time.Hour)}); err != nil {
		b.Fatal(err)
	}
	outputs := []string{"HTTP GET http://x: 200 OK Output: a", "HTTP GET http://x: 200 OK Output: b"}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		st.UpdateCheck("c", "passing", outputs[i%2])
		i++
	}
}
