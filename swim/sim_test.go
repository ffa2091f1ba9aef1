package swim

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
	"time"

	"roster/internal/faults"
)

// sim steps many cores over an in-memory network in virtual time: no
// goroutines, no clocks, one seeded generator, so a run replays exactly
// from its seed and 1,000 members simulate faster than real time.
//
// Each virtual tick: deliver the packets due, tick every live core, then
// collect what each core wants sent and schedule it with the fault plan's
// verdict plus base latency (and extra delay into slow members).
type sim struct {
	cfg   Config
	rng   *rand.Rand
	plan  *faults.Plan
	now   int64
	cores []*Core
	names []string
	addrs []netip.AddrPort
	index map[netip.AddrPort]int
	dir   *directory // shared by every core: one slot per name
	down  []bool     // killed: neither ticks nor receives

	// slowMin/slowMax: extra inbound delay in ticks for slow members.
	slow             []bool
	slowMin, slowMax int64
	latencyTicks     int64

	buckets [][]simPacket // calendar queue indexed by tick % len
	onEvent func(Event)
	onSend  func(from, to int, data []byte)

	packets, bytes uint64 // delivered or not, everything sent
}

type simPacket struct {
	from netip.AddrPort
	to   int
	data []byte
}

const simBuckets = 1 << 12 // longest delay the calendar holds, in ticks

// newSim builds n members named n0..n{n-1} that already know each other
// (as if a join had completed), with cfg as the template.
func newSim(n int, cfg Config, seed uint64) *sim {
	s := &sim{
		cfg:          cfg,
		rng:          rand.New(rand.NewPCG(seed, seed^0x5157)),
		plan:         faults.New(seed),
		index:        map[netip.AddrPort]int{},
		dir:          newDirectory(true),
		latencyTicks: 1,
		buckets:      make([][]simPacket, simBuckets),
	}
	for i := range n {
		s.names = append(s.names, fmt.Sprintf("n%d", i))
		s.addrs = append(s.addrs, simAddr(i))
	}
	for i := range n {
		s.cores = append(s.cores, s.newCore(i))
		s.down = append(s.down, false)
		s.slow = append(s.slow, false)
		s.index[s.addrs[i]] = i
	}
	s.fillTables()
	for _, c := range s.cores {
		c.queue = broadcastQueue{} // everyone knows everyone: nothing to announce
		c.Ready()
	}
	return s
}

// fillTables makes every core know every member, alive at incarnation 0,
// as if a join had completed. The records are built once and copied
// chunk by chunk, sharing the identities, so 10,000 members (10^8
// records) take seconds rather than minutes; the first probe round
// shuffles them.
func (s *sim) fillTables() {
	n := len(s.cores)
	tmpl := memberTable{dir: s.dir}
	for j := range n {
		tmpl.add(&identity{name: s.names[j], addr: s.addrs[j]}, StateAlive, 0, 0)
	}
	order := make([]int32, n)
	for j := range n {
		tmpl.at(int32(j)).inProbeOrder = true
		order[j] = int32(j)
	}
	for i, c := range s.cores {
		c.table.share(tmpl.chunks, n, c.self)
		c.self = c.table.at(int32(i))
		c.numAlive = n
		c.probeOrder = append(append(make([]int32, 0, n-1), order[:i]...), order[i+1:]...)
	}
}

func simAddr(i int) netip.AddrPort {
	ip := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
	return netip.AddrPortFrom(ip, 8301)
}

func (s *sim) newCore(i int) *Core {
	cfg := s.cfg
	cfg.Name = s.names[i]
	seed := s.rng.Uint64()
	c, err := newCore(cfg, s.addrs[i], rand.New(rand.NewPCG(seed, uint64(i))), nil, s.dir)
	if err != nil {
		panic(err)
	}
	return c
}

// run advances virtual time by d.
func (s *sim) run(d time.Duration) {
	for range s.cfg.ticks(d) {
		s.step()
	}
}

// runUntil advances until cond holds or limit passes; it reports whether
// cond held. cond is checked every tick, so keep it cheap.
func (s *sim) runUntil(limit time.Duration, cond func() bool) bool {
	for range s.cfg.ticks(limit) {
		if cond() {
			return true
		}
		s.step()
	}
	return cond()
}

func (s *sim) step() {
	s.now++
	b := &s.buckets[s.now%simBuckets]
	due := *b
	*b = nil
	for _, p := range due {
		if !s.down[p.to] {
			s.cores[p.to].Step(p.from, p.data)
		}
	}
	for i, c := range s.cores {
		if s.down[i] {
			continue
		}
		c.Tick()
		s.drain(i)
	}
}

// drain moves one core's output into the network.
func (s *sim) drain(i int) {
	c := s.cores[i]
	r := c.Ready()
	if r.Empty() {
		return
	}
	for _, p := range r.Packets {
		s.sendPacket(i, p)
	}
	for _, pp := range r.PushPulls {
		s.pushPull(i, pp)
	}
	if s.onEvent != nil {
		for _, e := range r.Events {
			s.onEvent(e)
		}
	}
}

// drainAll drains every live core: what a push-pull merge produced after
// its core's drain in the last step (events included) is out.
func (s *sim) drainAll() {
	for i := range s.cores {
		if !s.down[i] {
			s.drain(i)
		}
	}
}

func (s *sim) sendPacket(from int, p OutPacket) {
	s.packets++
	s.bytes += uint64(len(p.Data))
	to, ok := s.index[p.To]
	if !ok {
		return
	}
	if s.onSend != nil {
		s.onSend(from, to, p.Data)
	}
	fate := s.plan.Decide(s.names[from], s.names[to])
	if !fate.Deliver {
		return
	}
	delay := s.latencyTicks
	if fate.Delay > 0 {
		delay += s.cfg.ticks(fate.Delay)
	}
	if s.slow[to] {
		delay += s.slowMin + s.rng.Int64N(s.slowMax-s.slowMin+1)
	}
	delay = min(max(delay, 1), simBuckets-1)
	for range fate.Copies {
		b := &s.buckets[(s.now+delay)%simBuckets]
		*b = append(*b, simPacket{from: s.addrs[from], to: to, data: p.Data})
	}
}

// pushPull runs a stream exchange at once if both directions connect. The
// reply is merged immediately: streams are rare and their latency does not
// matter to what the simulations measure.
func (s *sim) pushPull(from int, req PushPullRequest) {
	to, ok := s.index[req.To]
	if !ok || s.down[to] || !s.plan.Connected(s.names[from], s.names[to]) {
		return
	}
	reply, err := s.cores[to].HandlePushPull(req.Frame)
	s.drain(to)
	if err != nil {
		return
	}
	_ = s.cores[from].MergePushPull(reply, req.Join)
}

func (s *sim) kill(i int) { s.down[i] = true }

// spawn starts a new member named name at a fresh address that joins
// through via, and returns its index; the name may already be taken.
func (s *sim) spawn(name string, via int) int {
	i := len(s.cores)
	s.names = append(s.names, name)
	s.addrs = append(s.addrs, simAddr(i))
	s.index[s.addrs[i]] = i
	s.down = append(s.down, false)
	s.slow = append(s.slow, false)
	s.cores = append(s.cores, s.newCore(i))
	for _, req := range s.cores[i].JoinRequests([]netip.AddrPort{s.addrs[via]}) {
		s.pushPull(i, req)
	}
	s.drain(i)
	return i
}

// restart replaces member i with a fresh core (incarnation 0) that joins
// through member via.
func (s *sim) restart(i, via int) {
	s.down[i] = false
	s.cores[i] = s.newCore(i)
	for _, req := range s.cores[i].JoinRequests([]netip.AddrPort{s.addrs[via]}) {
		s.pushPull(i, req)
	}
	s.drain(i)
}

func (s *sim) id(name string) int {
	for i, n := range s.names {
		if n == name {
			return i
		}
	}
	panic("sim: no member " + name)
}

// stateOf is what observer believes about subject.
func (s *sim) stateOf(observer, subject int) State {
	m := s.cores[observer].table.get(s.names[subject])
	if m == nil {
		return 0
	}
	return m.state
}

// view renders observer's table as "n0:alive/0 n1:dead/2 ...".
func (s *sim) view(observer int) string {
	var b strings.Builder
	for _, m := range s.cores[observer].Members() {
		fmt.Fprintf(&b, "%s:%s/%d ", m.Name, m.State, m.Incarnation)
	}
	return strings.TrimSpace(b.String())
}

// allSee reports whether every live member (other than the subject)
// believes subject is in state want.
func (s *sim) allSee(subject int, want State) bool {
	for i := range s.cores {
		if i != subject && !s.down[i] && s.stateOf(i, subject) != want {
			return false
		}
	}
	return true
}

// refuted reports whether every member, the subject too, holds subject
// alive at an incarnation above inc.
func (s *sim) refuted(subject int, inc uint32) bool {
	for i := range s.cores {
		if m := s.cores[i].table.get(s.names[subject]); m.state != StateAlive || m.incarnation <= inc {
			return false
		}
	}
	return true
}

// crashSuspect crashes member i of s once everyone sees it alive and
// waits until n0 suspects it.
func crashSuspect(t *testing.T, s *sim, i int) {
	t.Helper()
	if !s.runUntil(10*time.Second, func() bool { return s.allSee(i, StateAlive) }) {
		t.Fatalf("n%d not alive everywhere: %s", i, s.view(0))
	}
	s.kill(i)
	if !s.runUntil(20*time.Second, func() bool { return s.stateOf(0, i) == StateSuspect }) {
		t.Fatalf("n0 never suspected the crashed n%d: %s", i, s.view(0))
	}
}
