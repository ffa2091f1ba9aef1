package swim

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"sync"
	"testing"
	"time"

	"roster/internal/fanout"
	"roster/internal/testkit"
)

// startUDPCluster starts n shells on 127.0.0.1 with cfg (Name set per
// member), joins them through the first, and waits until everyone sees n
// alive members.
func startUDPCluster(b *testing.B, n int, cfg Config, wrap func(i int, t Transport) Transport) []*Node {
	b.Helper()
	nodes := make([]*Node, n)
	for i := range n {
		c := cfg
		c.Name = fmt.Sprintf("m%03d", i)
		c.Seed = uint64(i + 1)
		pc, ln := listenUDPTCP(b)
		tr, err := NewNetTransport(pc, ln)
		if err != nil {
			b.Fatal(err)
		}
		var t Transport = tr
		if wrap != nil {
			t = wrap(i, tr)
		}
		if nodes[i], err = New(c, t); err != nil {
			b.Fatal(err)
		}
	}
	seed := nodes[0].LocalMember().AddrPort().String()
	for _, nd := range nodes[1:] {
		if _, err := nd.Join([]string{seed}); err != nil {
			b.Fatal(err)
		}
	}
	err := testkit.Poll(60*time.Second, func() error {
		for _, nd := range nodes {
			if k := nd.NumAlive(); k != n {
				return fmt.Errorf("%s sees %d alive of %d", nd.cfg.Name, k, n)
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	return nodes
}

// BenchmarkUDPDetection: 100 shells on loopback with the shipped LAN
// defaults; members are killed one at a time and we time until every live
// member has declared the victim dead.
func BenchmarkUDPDetection(b *testing.B) {
	const n, killsPerRun = 100, 10
	var allDead, firstSuspect []float64
	for b.Loop() {
		nodes := startUDPCluster(b, n, DefaultLANConfig(), nil)
		obs := make([]*fanout.Observer[Event], n)
		for i, nd := range nodes {
			obs[i] = nd.Subscribe(4096)
		}
		alive := make([]bool, n)
		for i := range alive {
			alive[i] = true
		}
		rng := rand.New(rand.NewPCG(uint64(len(allDead)+1), 9))
		for range killsPerRun {
			victim := 1 + rng.IntN(n-1)
			for !alive[victim] {
				victim = 1 + rng.IntN(n-1)
			}
			alive[victim] = false
			name := nodes[victim].cfg.Name
			start := time.Now()
			nodes[victim].Shutdown()
			sus, dead := waitVerdicts(b, obs, alive, name, start)
			firstSuspect = append(firstSuspect, sus)
			allDead = append(allDead, dead)
		}
		for _, nd := range nodes {
			nd.Shutdown()
		}
	}
	b.ReportMetric(quantile(firstSuspect, .5), "suspect-p50-s")
	b.ReportMetric(quantile(allDead, .5), "alldead-p50-s")
	b.ReportMetric(quantile(allDead, .99), "alldead-p99-s")
	b.Logf("UDP N=%d: first suspicion p50 %.2fs; all members mark dead p50 %.2fs p99 %.2fs (%d kills)",
		n, quantile(firstSuspect, .5), quantile(allDead, .5), quantile(allDead, .99), len(allDead))
}

// waitVerdicts reads every live member's events until all declared name
// dead; it returns seconds to the first suspicion and to the last verdict.
func waitVerdicts(b *testing.B, obs []*fanout.Observer[Event], alive []bool, name string, start time.Time) (float64, float64) {
	pending := map[int]bool{}
	for i, a := range alive {
		if a {
			pending[i] = true
		}
	}
	firstSus := -1.0
	deadline := time.After(60 * time.Second)
	for len(pending) > 0 {
		for i := range pending {
			select {
			case e := <-obs[i].C:
				if e.Member.Name != name {
					continue
				}
				if e.Kind == EventSuspect && firstSus < 0 {
					firstSus = time.Since(start).Seconds()
				}
				if e.Kind == EventDead {
					delete(pending, i)
				}
			case <-deadline:
				b.Fatalf("%d members never declared %s dead", len(pending), name)
			default:
			}
		}
		select {
		case <-time.After(time.Millisecond):
		case <-deadline:
			b.Fatalf("%d members never declared %s dead", len(pending), name)
		}
	}
	return firstSus, time.Since(start).Seconds()
}

// slowTransport delays every received packet of a slow member by a random
// 300–1500ms and drops 1% of everything sent (memberlist's slow-member
// experiment).
type slowTransport struct {
	Transport
	slow    bool
	out     chan InPacket
	mu      sync.Mutex // guards closed and rng
	closed  bool
	rng     *rand.Rand
	minD    time.Duration
	spreadD time.Duration
	loss    float64
}

func newSlowTransport(t Transport, slow bool, seed uint64) *slowTransport {
	s := &slowTransport{Transport: t, slow: slow, out: make(chan InPacket, inboxPackets),
		rng: rand.New(rand.NewPCG(seed, 1)), minD: 300 * time.Millisecond, spreadD: 1200 * time.Millisecond, loss: 0.01}
	go s.pump()
	return s
}

func (s *slowTransport) pump() {
	for p := range s.Transport.Packets() {
		if !s.slow {
			s.put(p)
			continue
		}
		s.mu.Lock()
		d := s.minD + time.Duration(s.rng.Int64N(int64(s.spreadD)))
		s.mu.Unlock()
		time.AfterFunc(d, func() { s.put(p) })
	}
	s.mu.Lock()
	s.closed = true
	close(s.out)
	s.mu.Unlock()
}

func (s *slowTransport) put(p InPacket) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	select {
	case s.out <- p:
	default:
	}
}

func (s *slowTransport) Packets() <-chan InPacket { return s.out }

func (s *slowTransport) WriteTo(b []byte, to netip.AddrPort) error {
	s.mu.Lock()
	lost := s.rng.Float64() < s.loss
	s.mu.Unlock()
	if lost {
		return nil
	}
	return s.Transport.WriteTo(b, to)
}

var _ Transport = (*slowTransport)(nil)

// isSlowMember picks every tenth member as slow.
func isSlowMember(i int) bool { return i%10 == 5 }

// BenchmarkUDPSlowMembers: 50 shells on loopback, 10% of them slowed
// 300–1500ms, 1% loss, for 120s: suspicions raised and false dead verdicts.
func BenchmarkUDPSlowMembers(b *testing.B) {
	const n = 50
	dur := 120 * time.Second
	var suspicions, falseDead, slowRefutes int
	runs := 0
	for b.Loop() {
		nodes := startUDPCluster(b, n, DefaultLANConfig(), func(i int, t Transport) Transport {
			return newSlowTransport(t, isSlowMember(i), uint64(i+1))
		})
		obs := make([]*fanout.Observer[Event], n)
		slowNames := map[string]bool{}
		for i, nd := range nodes {
			obs[i] = nd.Subscribe(1 << 16)
			if isSlowMember(i) {
				slowNames[nd.cfg.Name] = true
			}
		}
		end := time.After(dur)
		counting := true
		for counting {
			for i := range obs {
				for drained := false; !drained; {
					select {
					case e := <-obs[i].C:
						if e.Kind == EventSuspect && e.From == e.Node {
							suspicions++
						}
						if e.Kind == EventDead && e.From == e.Node {
							falseDead++
							b.Logf("false dead verdict: %v confirmations=%d", e, e.Confirmations)
						}
						if e.Kind == EventRefute && slowNames[e.Node] {
							slowRefutes++
						}
					default:
						drained = true
					}
				}
			}
			select {
			case <-end:
				counting = false
			case <-time.After(50 * time.Millisecond):
			}
		}
		for _, nd := range nodes {
			nd.Shutdown()
		}
		runs++
	}
	b.ReportMetric(float64(suspicions)/float64(runs), "suspicions/run")
	b.ReportMetric(float64(falseDead)/float64(runs), "false-dead/run")
	b.Logf("UDP N=%d, 10%% slowed 300-1500ms, 1%% loss, %v: %.1f suspicions, %.1f false dead verdicts, %.1f refutations by slow members per run",
		n, dur, float64(suspicions)/float64(runs), float64(falseDead)/float64(runs), float64(slowRefutes)/float64(runs))
}
