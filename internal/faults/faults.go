package faults

import (
	"math/rand/v2"
	"sync"
	"time"
)

// Any matches every node in Drop and Delay.
const Any = "*"

// Fate is what happens to one message.
type Fate struct {
	Deliver bool          // false: the message is lost
	Delay   time.Duration // extra latency before delivery
	Copies  int           // 1 normally, 2 when duplicated
	Reorder bool          // the network should let later messages overtake it
}

type link struct{ from, to string }

// Plan decides the fate of messages. The zero value is not usable; call New.
// All methods are safe for concurrent use.
type Plan struct {
	// mu guards every field below.
	mu        sync.Mutex
	rng       *rand.Rand
	group     map[string]int // node -> partition group; absent = group 0
	isolated  map[string]bool
	drop      map[link]float64
	delay     map[link]time.Duration
	duplicate float64
	reorder   float64
}

// New returns a healthy plan whose random choices follow seed.
func New(seed uint64) *Plan {
	p := &Plan{}
	p.Seed(seed)
	p.Heal()
	return p
}

// Seed restarts the plan's random source.
func (p *Plan) Seed(n uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rng = rand.New(rand.NewPCG(n, n^0xda3e39cb94b95bdb))
}

// Heal removes every fault.
func (p *Plan) Heal() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.group = map[string]int{}
	p.isolated = map[string]bool{}
	p.drop = map[link]float64{}
	p.delay = map[link]time.Duration{}
	p.duplicate, p.reorder = 0, 0
}

// Partition splits the named nodes into groups; nodes in different groups
// cannot talk. Nodes not named form one more group of their own.
func (p *Plan) Partition(groups ...[]string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.group = map[string]int{}
	for i, g := range groups {
		for _, id := range g {
			p.group[id] = i + 1
		}
	}
}

// Isolate cuts id off from every other node until Heal.
func (p *Plan) Isolate(id string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.isolated[id] = true
}

// Drop loses messages from -> to with probability prob (0 removes the fault).
func (p *Plan) Drop(from, to string, prob float64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.drop[link{from, to}] = prob
}

// Delay adds d of latency to messages from -> to.
func (p *Plan) Delay(from, to string, d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.delay[link{from, to}] = d
}

// Duplicate delivers a message twice with probability prob.
func (p *Plan) Duplicate(prob float64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.duplicate = prob
}

// Reorder marks a message as overtakable with probability prob.
func (p *Plan) Reorder(prob float64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.reorder = prob
}

// Connected reports whether from and to can talk at all (ignoring random
// drops): same partition group and neither isolated.
func (p *Plan) Connected(from, to string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.connected(from, to)
}

func (p *Plan) connected(from, to string) bool {
	if from == to {
		return true
	}
	if p.isolated[from] || p.isolated[to] {
		return false
	}
	return p.group[from] == p.group[to]
}

// Decide draws the fate of one message from -> to.
func (p *Plan) Decide(from, to string) Fate {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.connected(from, to) {
		return Fate{}
	}
	if prob := p.lookupDrop(from, to); prob > 0 && p.rng.Float64() < prob {
		return Fate{}
	}
	f := Fate{Deliver: true, Copies: 1, Delay: p.lookupDelay(from, to)}
	if p.duplicate > 0 && p.rng.Float64() < p.duplicate {
		f.Copies = 2
	}
	if p.reorder > 0 && p.rng.Float64() < p.reorder {
		f.Reorder = true
	}
	return f
}

// Float64 exposes the plan's seeded randomness so that a network can draw
// jitter from the same reproducible source.
func (p *Plan) Float64() float64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.rng.Float64()
}

func (p *Plan) lookupDrop(from, to string) float64 {
	for _, l := range []link{{from, to}, {from, Any}, {Any, to}, {Any, Any}} {
		if v, ok := p.drop[l]; ok {
			return v
		}
	}
	return 0
}

func (p *Plan) lookupDelay(from, to string) time.Duration {
	for _, l := range []link{{from, to}, {from, Any}, {Any, to}, {Any, Any}} {
		if v, ok := p.delay[l]; ok {
			return v
		}
	}
	return 0
}
