package swim

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"
)

// BenchmarkReapMassFailure: one reap of half of a 10,000-member cluster
// that failed at once, before any probe round dropped the dead members
// from the probe order (they are still listed). Reported as ms per reap.
func BenchmarkReapMassFailure(b *testing.B) {
	const n, dead = 10_000, 5_000
	var spent time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		c := reapReadyCore(b, n, dead)
		b.StartTimer()
		start := time.Now()
		c.reap()
		spent += time.Since(start)
		b.StopTimer()
		if len(c.probeOrder) != n-dead {
			b.Fatalf("probe order holds %d slots after the reap, want %d", len(c.probeOrder), n-dead)
		}
	}
	b.ReportMetric(float64(spent.Microseconds())/1000/float64(b.N), "ms/reap")
}

// reapReadyCore is a core that knows n members, the even-numbered first
// dead of which are due to be reaped and still in the probe order.
func reapReadyCore(tb testing.TB, n, failed int) *Core {
	tb.Helper()
	cfg := DefaultLANConfig()
	cfg.Name = "n0"
	c, err := NewCore(cfg, netip.MustParseAddrPort("10.0.0.1:8301"), rand.New(rand.NewPCG(1, 2)), nil)
	if err != nil {
		tb.Fatal(err)
	}
	for i := range n {
		ip := netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)})
		c.handleAlive(alive{Incarnation: 1, Node: fmt.Sprint("m", i), Addr: netip.AddrPortFrom(ip, 8301)})
	}
	for i := range failed {
		c.handleDead(dead{Incarnation: 1, Node: fmt.Sprint("m", 2*i), From: "x"})
	}
	c.now += c.cfg.ticks(cfg.ReapInterval) + 1
	c.Ready()
	return c
}
