package swim

import (
	"fmt"
	"math"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// Simulation benchmarks. Each iteration is one full simulated experiment
// (seed = iteration number); the figures are reported as metrics and the
// tables printed. A 10,000-member run takes 15–25 s of CPU and under
// 1.6 GB (the shared copy-on-write member table; 33–45 s wall on a busy
// 2-core machine); -short leaves them out.

// printTable writes a benchmark's summary table to stdout, where it lands
// in bench.txt next to the metrics (a parent benchmark's log is not shown
// once it has sub-benchmarks).
func printTable(b *testing.B, title string, table *strings.Builder) {
	fmt.Printf("--- %s: %s%s\n", b.Name(), title, table.String())
}

// scaleSizes are the cluster sizes of the detection and load curves.
func scaleSizes() []int {
	if testing.Short() {
		return []int{100, 300, 1000}
	}
	return []int{100, 300, 1000, 3000, 10000}
}

// BenchmarkSimDetection: kill 10 members at once and time the verdicts,
// with and without Lifeguard, from 100 to 10,000 members. The table
// divides the median time until every member marks a victim dead by
// log10 N: a column that stays flat or falls means detection grows no
// faster than log N (the suspicion timeout is SuspicionMult × log10 N
// probe intervals, SWIM §4.2, and gossip spreads in O(log N) rounds).
func BenchmarkSimDetection(b *testing.B) {
	var table strings.Builder
	fmt.Fprintf(&table, "\n%-9s %6s %14s %12s %12s %14s", "lifeguard", "N", "suspect p50 s", "dead p50 s", "dead p99 s", "p50/log10(N)")
	for _, lifeguard := range []bool{true, false} {
		for _, n := range scaleSizes() {
			if !lifeguard && n > 1000 {
				continue // the curve is the Lifeguard one; plain SWIM for contrast
			}
			b.Run(fmt.Sprintf("lifeguard=%v/N=%d", lifeguard, n), func(b *testing.B) {
				cfg := DefaultLANConfig()
				cfg.Lifeguard = lifeguard
				var all detection
				for i := 0; b.Loop(); i++ {
					d := measureDetection(n, 10, cfg, uint64(i+1), 120*time.Second)
					all.firstSuspect = append(all.firstSuspect, d.firstSuspect...)
					all.firstDead = append(all.firstDead, d.firstDead...)
					all.allDead = append(all.allDead, d.allDead...)
					all.undetected += d.undetected
				}
				p50 := quantile(all.allDead, .5)
				b.ReportMetric(quantile(all.firstSuspect, .5), "suspect-p50-s")
				b.ReportMetric(p50, "alldead-p50-s")
				b.ReportMetric(quantile(all.allDead, .99), "alldead-p99-s")
				b.ReportMetric(float64(all.undetected), "undetected")
				b.Logf("detection lifeguard=%v N=%d: %v", lifeguard, n, all)
				fmt.Fprintf(&table, "\n%-9v %6d %14.1f %12.1f %12.1f %14.2f", lifeguard, n,
					quantile(all.firstSuspect, .5), p50, quantile(all.allDead, .99), p50/math.Log10(float64(n)))
			})
		}
	}
	printTable(b, "detection of 10 killed members (all members mark each dead)", &table)
}

// BenchmarkSimLoad: steady per-member load of a quiet cluster from 100 to
// 10,000 members, and the push-pull cost curve: the size of one full-state
// frame, the scaled interval, and what that costs per member per second
// (each member starts one exchange per interval; an exchange moves a
// frame each way).
func BenchmarkSimLoad(b *testing.B) {
	var table strings.Builder
	fmt.Fprintf(&table, "\n%6s %10s %10s %8s | %14s %12s %22s %18s", "N", "pkts/m/s", "B/m/s", "vs N=100",
		"pp frame B", "pp every s", "pp B/member/s (calc)", "pp B/m/s (meas)")
	base := 0.0
	for _, n := range scaleSizes() {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) {
			window := 60 * time.Second
			if n >= 3000 {
				window = 20 * time.Second // same rates, a third of the CPU
			}
			var l load
			for i := 0; b.Loop(); i++ {
				l = measureLoad(n, DefaultLANConfig(), uint64(i+1), window)
			}
			if base == 0 {
				base = l.bytesPerMemberSec
			}
			b.ReportMetric(l.packetsPerMemberSec, "pkts/member/s")
			b.ReportMetric(l.bytesPerMemberSec, "B/member/s")
			b.ReportMetric(l.pushPullBytesPerMemberSec, "pushpull-B/member/s")
			b.ReportMetric(float64(l.pushPullFrameBytes), "pushpull-frame-B")
			b.ReportMetric(l.pushPullCalcBytesPerMemberSec, "pushpull-calc-B/member/s")
			b.Logf("load N=%d: %.2f packets, %.1f bytes per member per second (UDP); push-pull %.1f B/member/s measured, %.1f calculated, frame %d B every %.0fs",
				n, l.packetsPerMemberSec, l.bytesPerMemberSec, l.pushPullBytesPerMemberSec, l.pushPullCalcBytesPerMemberSec, l.pushPullFrameBytes, l.pushPullIntervalSecs)
			fmt.Fprintf(&table, "\n%6d %10.2f %10.1f %7.0f%% | %14d %12.0f %22.1f %18.1f", n, l.packetsPerMemberSec, l.bytesPerMemberSec,
				100*(l.bytesPerMemberSec/base-1), l.pushPullFrameBytes, l.pushPullIntervalSecs, l.pushPullCalcBytesPerMemberSec, l.pushPullBytesPerMemberSec)
		})
	}
	printTable(b, "quiet-cluster load per member (UDP) and the push-pull cost curve", &table)
}

// plainSWIM is the baseline Lifeguard is compared with: SWIM with its
// suspicion subprotocol and a fixed timeout (§4.2), without Lifeguard and
// without our late-ack grace.
func plainSWIM() Config {
	cfg := DefaultLANConfig()
	cfg.Lifeguard = false
	cfg.LateAckGrace = 0
	return cfg
}

// fpScenario is one false-positive experiment, repeated runs times (small
// clusters need many runs to see plain SWIM's rare false verdicts).
type fpScenario struct {
	n        int
	slowFrac float64
	dur      time.Duration
	runs     int
}

// fpBatch runs sc.runs seeded experiments over the available cores and
// sums them.
func fpBatch(sc fpScenario, cfg Config, seed0 uint64) falsePositives {
	var mu sync.Mutex
	var sum falsePositives
	var wg sync.WaitGroup
	next := make(chan uint64)
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seed := range next {
				fp := measureFalsePositives(sc.n, sc.slowFrac, 0.01, 300*time.Millisecond, 1500*time.Millisecond, cfg, seed, sc.dur)
				mu.Lock()
				sum.suspicions += fp.suspicions
				sum.deadVerdicts += fp.deadVerdicts
				sum.membersDead += fp.membersDead
				mu.Unlock()
			}
		}()
	}
	for i := range sc.runs {
		next <- seed0 + uint64(i)
	}
	close(next)
	wg.Wait()
	return sum
}

// BenchmarkSimFalsePositives: 10% of members slowed 300–1500ms with 1%
// loss for 120s, Lifeguard (shipped defaults) vs plain SWIM, at N=3, 5,
// 50 and 100, and the 5%-slow variant at N=1,000. The table gives false
// dead verdicts summed over all runs and their ratio; with none under
// Lifeguard the ratio is a lower bound (plain SWIM's count over 1).
func BenchmarkSimFalsePositives(b *testing.B) {
	scenarios := []fpScenario{
		{3, 0.1, 120 * time.Second, 150}, {5, 0.1, 120 * time.Second, 150},
		{50, 0.1, 120 * time.Second, 3}, {100, 0.1, 120 * time.Second, 8},
		{1000, 0.05, 60 * time.Second, 1},
	}
	var table strings.Builder
	fmt.Fprintf(&table, "\n%5s %5s %5s | %12s %11s | %12s %11s | %9s", "N", "slow", "runs",
		"LG susp/run", "LG false", "SWIM susp/run", "SWIM false", "ratio")
	for _, sc := range scenarios {
		b.Run(fmt.Sprintf("N=%d/slow=%.0f%%", sc.n, sc.slowFrac*100), func(b *testing.B) {
			var lg, plain falsePositives
			runs := 0
			for i := 0; b.Loop(); i++ {
				seed := uint64(i*sc.runs + 1)
				l, p := fpBatch(sc, DefaultLANConfig(), seed), fpBatch(sc, plainSWIM(), seed)
				lg.suspicions, lg.deadVerdicts, lg.membersDead = lg.suspicions+l.suspicions, lg.deadVerdicts+l.deadVerdicts, lg.membersDead+l.membersDead
				plain.suspicions, plain.deadVerdicts, plain.membersDead = plain.suspicions+p.suspicions, plain.deadVerdicts+p.deadVerdicts, plain.membersDead+p.membersDead
				runs += sc.runs
			}
			per := func(v int) float64 { return float64(v) / float64(runs) }
			ratio := float64(plain.deadVerdicts) / float64(max(lg.deadVerdicts, 1))
			b.ReportMetric(per(lg.suspicions), "lifeguard-suspicions/run")
			b.ReportMetric(per(lg.deadVerdicts), "lifeguard-false-dead/run")
			b.ReportMetric(per(plain.suspicions), "swim-suspicions/run")
			b.ReportMetric(per(plain.deadVerdicts), "swim-false-dead/run")
			b.ReportMetric(ratio, "swim/lifeguard-false-dead")
			bound := ""
			if lg.deadVerdicts == 0 {
				bound = ">="
			}
			fmt.Fprintf(&table, "\n%5d %4.0f%% %5d | %12.1f %11d | %12.1f %11d | %2s%6.0fx", sc.n, sc.slowFrac*100, runs,
				per(lg.suspicions), lg.deadVerdicts, per(plain.suspicions), plain.deadVerdicts, bound, ratio)
		})
	}
	printTable(b, "false positives, slowed members 300-1500ms, 1% loss (false = dead verdicts on live members, all runs)", &table)
}

// BenchmarkSimDissemination: time for a tag update to reach 99.99% of
// 1,000 members, without and with 10% packet loss.
func BenchmarkSimDissemination(b *testing.B) {
	for _, loss := range []float64{0, 0.1} {
		b.Run(fmt.Sprintf("N=1000/loss=%.0f%%", loss*100), func(b *testing.B) {
			var secs []float64
			failed := 0
			for i := 0; b.Loop(); i++ {
				s, ok := disseminationSecs(1000, loss, DefaultLANConfig(), uint64(i+1))
				if !ok {
					failed++
				}
				secs = append(secs, s)
			}
			b.ReportMetric(quantile(secs, .5), "p50-s")
			b.ReportMetric(quantile(secs, .99), "p99-s")
			b.ReportMetric(float64(failed), "not-reached")
			b.Logf("dissemination N=1000 loss=%.0f%%: p50 %.2fs p99 %.2fs over %d runs", loss*100, quantile(secs, .5), quantile(secs, .99), len(secs))
		})
	}
}
