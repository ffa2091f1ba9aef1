package swim

import (
	"fmt"
	"math"
	"slices"
	"time"

	"roster/internal/faults"
)

// Measurements over the simulator, shared by tests and benchmarks.

type detection struct {
	// Per killed member, seconds from the kill until: the first member
	// suspected it, the first declared it dead, every live member did.
	firstSuspect, firstDead, allDead []float64
	undetected                       int // victims not dead everywhere by the deadline
}

// measureDetection kills `kills` random members of an n-member cluster
// after a warm-up and times the verdicts.
func measureDetection(n, kills int, cfg Config, seed uint64, limit time.Duration) detection {
	s := newSim(n, cfg, seed)
	s.run(5 * time.Second)
	victims := map[string]int{}
	for _, i := range s.rng.Perm(n)[:kills] {
		victims[s.names[i]] = i
		s.kill(i)
	}
	start := s.now
	secs := func() float64 { return float64(s.now-start) * cfg.TickInterval.Seconds() }
	firstSus, firstDead := map[string]float64{}, map[string]float64{}
	deadCount, allDead := map[string]int{}, map[string]float64{}
	live := n - kills
	s.onEvent = func(e Event) {
		if _, ok := victims[e.Member.Name]; !ok {
			return
		}
		switch e.Kind {
		case EventSuspect:
			if _, ok := firstSus[e.Member.Name]; !ok {
				firstSus[e.Member.Name] = secs()
			}
		case EventDead:
			if _, ok := firstDead[e.Member.Name]; !ok {
				firstDead[e.Member.Name] = secs()
			}
			deadCount[e.Member.Name]++
			if deadCount[e.Member.Name] == live {
				allDead[e.Member.Name] = secs()
			}
		}
	}
	s.runUntil(limit, func() bool { return len(allDead) == kills })
	var d detection
	for name := range victims {
		if t, ok := allDead[name]; ok {
			d.allDead = append(d.allDead, t)
			d.firstSuspect = append(d.firstSuspect, firstSus[name])
			d.firstDead = append(d.firstDead, firstDead[name])
		} else {
			d.undetected++
		}
	}
	return d
}

type load struct {
	packetsPerMemberSec, bytesPerMemberSec float64
	pushPullBytesPerMemberSec              float64
	pushPullFrameBytes                     int
	pushPullIntervalSecs                   float64
	// pushPullCalcBytesPerMemberSec is 2 × frame / interval: exact where
	// the measured figure is a sample of a few exchanges per member.
	pushPullCalcBytesPerMemberSec float64
}

// measureLoad runs a quiet cluster and reports the UDP load per member
// per second over window, and the push-pull cost separately.
func measureLoad(n int, cfg Config, seed uint64, window time.Duration) load {
	s := newSim(n, cfg, seed)
	s.run(5 * time.Second)
	p0, b0 := s.packets, s.bytes
	var pp0 uint64
	for _, c := range s.cores {
		pp0 += c.stats.PushPullBytesSent
	}
	s.run(window)
	var pp1 uint64
	for _, c := range s.cores {
		pp1 += c.stats.PushPullBytesSent
	}
	den := float64(n) * window.Seconds()
	l := load{
		packetsPerMemberSec: float64(s.packets-p0) / den,
		bytesPerMemberSec:   float64(s.bytes-b0) / den,
		// Each exchange sends two frames; LocalState counts only the
		// side that built it, so both are already in the sum.
		pushPullBytesPerMemberSec: float64(pp1-pp0) / den,
		pushPullFrameBytes:        len(s.cores[0].LocalState(false)),
		pushPullIntervalSecs:      float64(s.cores[0].pushPullTicks()) * cfg.TickInterval.Seconds(),
	}
	l.pushPullCalcBytesPerMemberSec = 2 * float64(l.pushPullFrameBytes) / l.pushPullIntervalSecs
	return l
}

type falsePositives struct {
	suspicions   int // suspicions raised (by their accuser) of live members
	deadVerdicts int // dead verdicts declared (by their declarer) on live members
	membersDead  int // distinct live members declared dead at least once
}

// measureFalsePositives makes slowFrac of the members slow (every packet
// they receive is handled slowMin..slowMax late) with loss on every link,
// and counts accusations of members that never failed.
func measureFalsePositives(n int, slowFrac, loss float64, slowMin, slowMax time.Duration, cfg Config, seed uint64, dur time.Duration) falsePositives {
	s := newSim(n, cfg, seed)
	nSlow := max(1, int(math.Round(slowFrac*float64(n))))
	for _, i := range s.rng.Perm(n)[:nSlow] {
		s.slow[i] = true
	}
	s.slowMin, s.slowMax = cfg.ticks(slowMin), cfg.ticks(slowMax)
	if loss > 0 {
		s.plan.Drop(faults.Any, faults.Any, loss)
	}
	var fp falsePositives
	deadOnce := map[string]bool{}
	s.onEvent = func(e Event) {
		switch {
		case e.Kind == EventSuspect && e.From == e.Node:
			fp.suspicions++
		case e.Kind == EventDead && e.From == e.Node:
			fp.deadVerdicts++
			deadOnce[e.Member.Name] = true
		}
	}
	s.run(dur)
	fp.membersDead = len(deadOnce)
	return fp
}

// disseminationSecs measures, per run, how long an update (a tag change)
// takes to reach 99.99% of n members under the given loss.
func disseminationSecs(n int, loss float64, cfg Config, seed uint64) (float64, bool) {
	s := newSim(n, cfg, seed)
	s.run(3 * time.Second)
	if loss > 0 {
		s.plan.Drop(faults.Any, faults.Any, loss)
	}
	origin := s.cores[0]
	if err := origin.SetTags(map[string]string{"build": "2"}); err != nil {
		panic(err)
	}
	inc := origin.self.incarnation
	need := int(math.Ceil(0.9999 * float64(n-1)))
	start := s.now
	reached := 0
	s.onEvent = func(e Event) {
		if e.Kind == EventUpdate && e.Member.Name == origin.cfg.Name && e.Member.Incarnation == inc && e.Node != origin.cfg.Name {
			reached++
		}
	}
	ok := s.runUntil(60*time.Second, func() bool { return reached >= need })
	return float64(s.now-start) * cfg.TickInterval.Seconds(), ok
}

func quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[min(max(i, 0), len(s)-1)]
}

func (d detection) String() string {
	return fmt.Sprintf("suspect p50 %.1fs | first dead p50 %.1fs | all dead p50 %.1fs p99 %.1fs | undetected %d",
		quantile(d.firstSuspect, .5), quantile(d.firstDead, .5), quantile(d.allDead, .5), quantile(d.allDead, .99), d.undetected)
}
