package raft

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"roster/internal/faults"
)

// sim runs a cluster of pure cores in virtual time: one tick is simTick of
// simulated time, messages travel through a faults.Plan, and every Ready is
// checked against the safety invariants. Nothing here sleeps, so thousands
// of election timeouts take milliseconds and every run replays from its
// seed.
type sim struct {
	t       testing.TB
	rng     *rand.Rand
	plan    *faults.Plan
	cfg     CoreConfig
	ids     []string
	nodes   map[string]*simNode
	now     int // ticks
	inbox   []simMsg
	manual  bool // scenario mode: messages move only on "deliver"
	inv     *invariants
	trace   []string
	traceOn bool
	out     *strings.Builder // scenario transcript (nil: none)
	// minLatency/maxLatency: message latency in ticks, drawn uniformly.
	minLatency, maxLatency int
	// tickJitter: probability that a node's clock skips or doubles a
	// tick (timer jitter, a stalled process, a slow scheduler).
	tickJitter float64
}

const simTick = time.Millisecond

type simNode struct {
	id      string
	core    *Core
	up      bool
	hs      HardState // what is on "disk"
	log     []Entry
	applied []Entry // what this incarnation's FSM received
	seed    uint64
}

type simMsg struct {
	at  int
	seq int
	m   Message
}

func newSim(t testing.TB, seed uint64, cfg CoreConfig, ids ...string) *sim {
	return newSimVoters(t, seed, cfg, ids, ids...)
}

// newSimVoters bootstraps only voters; the other servers start empty and
// join when a leader adds them.
func newSimVoters(t testing.TB, seed uint64, cfg CoreConfig, voters []string, ids ...string) *sim {
	s := &sim{t: t, rng: rand.New(rand.NewPCG(seed, 7)), plan: faults.New(seed), cfg: cfg,
		ids: ids, nodes: map[string]*simNode{}, inv: newInvariants(), minLatency: 0, maxLatency: 1}
	conf := Configuration{}
	for _, id := range voters {
		conf.Servers = append(conf.Servers, Server{ID: id, Address: id})
	}
	for i, id := range ids {
		n := &simNode{id: id, seed: seed + uint64(i)*7919}
		if conf.isVoter(id) {
			n.log = []Entry{{Index: 1, Term: 1, Type: EntryConfiguration, Data: encodeConfiguration(conf)}}
			n.hs = HardState{Term: 1}
		}
		s.nodes[id] = n
		s.start(n)
	}
	return s
}

// defaultSimConfig: 1 ms ticks, 150–300 ms election timeouts (the range
// the Raft paper measured failover with), 30 ms heartbeats.
func defaultSimConfig() CoreConfig {
	return CoreConfig{ElectionTicks: 150, HeartbeatTicks: 30, PreVote: true, CheckQuorum: true,
		MaxEntriesPerMsg: 64, MaxInflight: 16}
}

func (s *sim) start(n *simNode) {
	cfg := s.cfg
	cfg.ID = n.id
	n.seed++
	c, err := NewCore(cfg, n.hs, n.log, rand.New(rand.NewPCG(n.seed, 1)))
	if err != nil {
		s.t.Fatalf("restart %s: %v", n.id, err)
	}
	n.core, n.up, n.applied = c, true, nil
}

func (s *sim) logf(format string, args ...any) {
	line := fmt.Sprintf("%6d ", s.now) + fmt.Sprintf(format, args...)
	s.trace = append(s.trace, line)
	if len(s.trace) > 4000 {
		s.trace = s.trace[1000:]
	}
}

// fail reports an invariant violation with the recent trace.
func (s *sim) fail(format string, args ...any) {
	s.t.Helper()
	tail := s.trace
	if len(tail) > 200 {
		tail = tail[len(tail)-200:]
	}
	var status []string
	for _, id := range s.ids {
		n := s.nodes[id]
		status = append(status, fmt.Sprintf("%s up=%v vote=%q conf@%d=%s", n.core, n.up, n.core.vote, n.core.confIndex, formatServers(n.core.conf.Servers)))
	}
	s.t.Fatalf("%s\n--- last %d trace lines ---\n%s\n--- servers ---\n%s", fmt.Sprintf(format, args...), len(tail),
		strings.Join(tail, "\n"), strings.Join(status, "\n"))
}

// flush drains n's Ready: persist, record, enqueue messages, check.
func (s *sim) flush(n *simNode) {
	for n.up && n.core.HasReady() {
		rd := n.core.Ready()
		if rd.HardStateSet {
			n.hs = rd.HardState
		}
		if len(rd.Entries) > 0 {
			first := rd.Entries[0].Index
			n.log = append(n.log[:first-1:first-1], rd.Entries...)
		}
		for _, e := range rd.Events {
			s.logf("%s", e)
			if s.out != nil && e.Type != EventCommitted {
				fmt.Fprintf(s.out, "  %s\n", e)
			}
			if err := s.inv.event(e, n.core); err != nil {
				s.fail("%v", err)
			}
		}
		for _, m := range rd.Messages {
			s.send(m)
		}
		for _, rs := range rd.ReadStates {
			if err := s.inv.readConfirmed(n.id, rs); err != nil {
				s.fail("%v", err)
			}
		}
		for _, e := range rd.Committed {
			n.applied = append(n.applied, e)
			if err := s.inv.committed(n.id, e, len(n.applied)); err != nil {
				s.fail("%v", err)
			}
		}
	}
}

func (s *sim) send(m Message) {
	fate := s.plan.Decide(m.From, m.To)
	if s.traceOn {
		s.logf("send %s", m)
	}
	if !fate.Deliver {
		return
	}
	lat := s.minLatency
	if s.maxLatency > s.minLatency {
		lat += s.rng.IntN(s.maxLatency - s.minLatency + 1)
	}
	lat += int(fate.Delay / simTick)
	if fate.Reorder {
		lat += s.rng.IntN(5)
	}
	for range fate.Copies {
		m2 := m
		m2.Entries = slices.Clone(m.Entries)
		s.inbox = append(s.inbox, simMsg{at: s.now + lat, seq: s.rng.IntN(1 << 30), m: m2})
	}
}

// deliverOnce delivers only the messages queued now, not the ones they
// cause (a scenario's "step").
func (s *sim) deliverOnce() {
	due := s.inbox
	s.inbox = nil
	for _, sm := range due {
		s.deliver(sm.m)
	}
}

// deliverDue hands every message due by now to its receiver, including
// ones generated while doing so (bounded).
func (s *sim) deliverDue() {
	for round := 0; round < 1000; round++ {
		var due, later []simMsg
		for _, sm := range s.inbox {
			if sm.at <= s.now {
				due = append(due, sm)
			} else {
				later = append(later, sm)
			}
		}
		if len(due) == 0 {
			return
		}
		s.inbox = later
		if !s.manual {
			sort.SliceStable(due, func(i, j int) bool {
				return due[i].at < due[j].at || (due[i].at == due[j].at && due[i].seq < due[j].seq)
			})
		}
		for _, sm := range due {
			s.deliver(sm.m)
		}
	}
	s.fail("message storm: deliveries did not settle in 1000 rounds")
}

func (s *sim) deliver(m Message) {
	n := s.nodes[m.To]
	if n == nil || !n.up {
		return
	}
	if s.out != nil {
		fmt.Fprintf(s.out, "  %s\n", m)
	}
	if err := n.core.Step(m); err != nil {
		s.logf("step %s: %v", m, err)
	}
	s.flush(n)
}

// tick advances virtual time by one tick on every live node.
func (s *sim) tick() {
	s.now++
	for _, id := range s.ids {
		n := s.nodes[id]
		if !n.up {
			continue
		}
		ticks := 1
		if s.tickJitter > 0 {
			switch r := s.rng.Float64(); {
			case r < s.tickJitter/2:
				ticks = 0
			case r < s.tickJitter:
				ticks = 2
			}
		}
		for range ticks {
			n.core.Tick()
			s.flush(n)
		}
	}
	s.deliverDue()
}

// run ticks until cond holds or maxTicks pass; it reports success.
func (s *sim) run(maxTicks int, cond func() bool) bool {
	for range maxTicks {
		if cond() {
			return true
		}
		s.tick()
	}
	return cond()
}

func (s *sim) crash(id string) {
	n := s.nodes[id]
	n.up = false
	s.logf("crash %s", id)
}

func (s *sim) restart(id string) {
	n := s.nodes[id]
	s.start(n)
	s.logf("restart %s", id)
	s.flush(n)
}

// leader returns the live leader with the highest term ("" if none).
func (s *sim) leader() string {
	best, bestTerm := "", uint64(0)
	for _, id := range s.ids {
		n := s.nodes[id]
		if n.up && n.core.State() == Leader && n.core.Term() >= bestTerm {
			best, bestTerm = id, n.core.Term()
		}
	}
	return best
}

// stableLeader reports a leader that every live node connected to it
// follows in its term.
func (s *sim) stableLeader() string {
	l := s.leader()
	if l == "" {
		return ""
	}
	term := s.nodes[l].core.Term()
	for _, id := range s.ids {
		n := s.nodes[id]
		if _, member := s.nodes[l].core.conf.Server(id); !member || !n.up || !s.plan.Connected(l, id) {
			continue
		}
		if n.core.Term() != term || n.core.Leader() != l {
			return ""
		}
	}
	return l
}

func (s *sim) propose(id string, data string) (uint64, uint64, bool) {
	n := s.nodes[id]
	if !n.up || n.core.State() != Leader {
		return 0, 0, false
	}
	idx, err := n.core.Propose([]Entry{{Type: EntryCommand, Data: []byte(data)}})
	if err != nil {
		return 0, 0, false
	}
	term := n.core.Term()
	s.inv.proposed(id, idx, term)
	s.flush(n)
	if !s.manual {
		s.deliverDue()
	}
	return idx, term, true
}

// invariants checks Raft's safety properties (Figure 3) as events and
// commits stream by.
type invariants struct {
	leaders   map[uint64]string // term -> leader (Election Safety)
	commits   map[uint64]Entry  // index -> the one entry ever committed there
	proposals map[[2]uint64]string
	acked     map[uint64]uint64 // index -> term of entries acknowledged to a client
	maxAcked  uint64
	reads     map[uint64]uint64 // read ID -> highest acknowledged index when issued
	readID    uint64
}

// readIssued records a ReadIndex request and what it must at least see.
func (v *invariants) readIssued() uint64 {
	v.readID++
	v.reads[v.readID] = v.maxAcked
	return v.readID
}

// readConfirmed checks linearizability of ReadIndex: the read point covers
// every write acknowledged before the read was issued.
func (v *invariants) readConfirmed(id string, rs ReadState) error {
	floor, ok := v.reads[rs.ID]
	if !ok {
		return fmt.Errorf("%s confirmed unknown read %d", id, rs.ID)
	}
	delete(v.reads, rs.ID)
	if rs.Index < floor {
		return fmt.Errorf("stale read: %s confirmed read %d at index %d, but %d was acknowledged before it was issued", id, rs.ID, rs.Index, floor)
	}
	return nil
}

func newInvariants() *invariants {
	return &invariants{leaders: map[uint64]string{}, commits: map[uint64]Entry{},
		proposals: map[[2]uint64]string{}, acked: map[uint64]uint64{}, reads: map[uint64]uint64{}}
}

func (v *invariants) event(e Event, c *Core) error {
	if e.Type != EventStateChanged || e.State != Leader {
		return nil
	}
	if prev, ok := v.leaders[e.Term]; ok && prev != e.Node {
		return fmt.Errorf("election safety: two leaders in term %d: %s and %s", e.Term, prev, e.Node)
	}
	v.leaders[e.Term] = e.Node
	// Leader Completeness: every acknowledged entry is in the new
	// leader's log.
	for idx, term := range v.acked {
		if !c.log.matchTerm(idx, term) {
			return fmt.Errorf("leader completeness: new leader %s (t%d) lacks acknowledged entry %d/t%d", e.Node, e.Term, idx, term)
		}
	}
	return nil
}

func (v *invariants) proposed(id string, idx, term uint64) { v.proposals[[2]uint64{idx, term}] = id }

// committed checks State Machine Safety: whatever any server applies at an
// index is the same entry, and each server applies indexes in order.
func (v *invariants) committed(id string, e Entry, n int) error {
	if uint64(n) != e.Index {
		return fmt.Errorf("%s applied entry %d as its %dth: gap or reorder", id, e.Index, n)
	}
	if prev, ok := v.commits[e.Index]; ok {
		if prev.Term != e.Term || string(prev.Data) != string(e.Data) || prev.Type != e.Type {
			return fmt.Errorf("state machine safety: %s applied %d/t%d %q, another server applied %d/t%d %q",
				id, e.Index, e.Term, e.Data, prev.Index, prev.Term, prev.Data)
		}
	} else {
		v.commits[e.Index] = e
	}
	if v.proposals[[2]uint64{e.Index, e.Term}] == id {
		v.acked[e.Index] = e.Term
		v.maxAcked = max(v.maxAcked, e.Index)
	}
	return nil
}
