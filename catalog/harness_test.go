package catalog

import (
	"sync"
	"testing"
	"time"

	"roster/raft"
)

// harness drives a Store through raft.Entry values, so every test also goes
// through the command codec, as production does.
type harness struct {
	t     testing.TB
	s     *Store
	idx   uint64
	clock *fakeClock
}

// fakeClock is a settable Config.Clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func newHarness(t testing.TB, cfg Config) *harness {
	t.Helper()
	clock := &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	if cfg.Clock == nil {
		cfg.Clock = clock.Now
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return &harness{t: t, s: s, clock: clock}
}

// apply proposes cmd at the next index and returns the result.
func (h *harness) apply(cmd Command) Result {
	h.t.Helper()
	h.idx++
	res, ok := h.s.Apply(raft.Entry{Index: h.idx, Term: 1, Type: raft.EntryCommand, Data: EncodeCommand(cmd)}).(Result)
	if !ok {
		h.t.Fatalf("Apply returned a %T, want Result", res)
	}
	return res
}

// ok applies cmd and fails the test unless it applied without error.
func (h *harness) ok(cmd Command) Result {
	h.t.Helper()
	res := h.apply(cmd)
	if res.Err != nil {
		h.t.Fatalf("apply %T at %d: %v", cmd, h.idx, res.Err)
	}
	return res
}

func regNode(name, addr string) *RegisterRequest {
	return &RegisterRequest{Node: Node{Node: name, Address: addr, Datacenter: "dc1"}}
}

func regService(node, id, name string, port int, tags ...string) *RegisterRequest {
	return &RegisterRequest{
		Node:    Node{Node: node, Address: "10.0.0." + node, Datacenter: "dc1"},
		Service: &NodeService{ID: id, Service: name, Port: port, Tags: tags, Weights: Weights{Passing: 1, Warning: 1}},
	}
}

func regCheck(node, checkID, serviceID, status string) *RegisterRequest {
	return &RegisterRequest{
		Node:           Node{Node: node},
		SkipNodeUpdate: true,
		Checks:         []HealthCheck{{Node: node, CheckID: checkID, Name: checkID, ServiceID: serviceID, Status: status}},
	}
}

func kvSet(key, value string) *KVRequest {
	return &KVRequest{Verb: KVSet, Key: key, Value: []byte(value)}
}

func rawEntry(idx uint64, data []byte) raft.Entry {
	return raft.Entry{Index: idx, Term: 1, Type: raft.EntryCommand, Data: data}
}
