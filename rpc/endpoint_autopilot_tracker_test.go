package rpc

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"roster/catalog"
	"roster/internal/testkit"
	"roster/raft"
)

// trackerWorld is a leader "me" with two followers whose probe answers a
// test sets, and a clock it moves.
type trackerWorld struct {
	fakeOperator
	mu      sync.Mutex // guards conf, answers, now
	conf    raft.Configuration
	answers map[string]*RaftStats // by address; nil or missing: no answer
	now     time.Time
}

func (w *trackerWorld) Configuration() (raft.Configuration, uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.conf, 1
}

func (w *trackerWorld) Call(ctx context.Context, addr, method string, args, reply any) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	st := w.answers[addr]
	if method != "Status.RaftStats" || st == nil {
		return errors.New("no answer")
	}
	*reply.(*RaftStats) = *st
	return nil
}

func (w *trackerWorld) clock() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.now
}

func (w *trackerWorld) set(f func()) {
	w.mu.Lock()
	defer w.mu.Unlock()
	f()
}

func newTrackerWorld() *trackerWorld {
	w := &trackerWorld{fakeOperator: fakeOperator{stats: map[string]string{"term": "3", "last_log_index": "100",
		"last_contact": "0", "state": "Leader"}}, now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	w.conf.Servers = []raft.Server{{ID: "me", Address: "me:8300", Suffrage: raft.Voter},
		{ID: "f1", Address: "f1:8300", Suffrage: raft.Voter}, {ID: "f2", Address: "f2:8300", Suffrage: raft.Voter}}
	current := &RaftStats{LastTerm: 3, LastIndex: 100, LastContact: 10 * time.Millisecond}
	w.answers = map[string]*RaftStats{"f1:8300": current, "f2:8300": current}
	return w
}

func (w *trackerWorld) operator(t *testing.T) *Operator {
	store, err := catalog.New(catalog.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return newOperator(&endpointCore{d: EndpointDeps{Datacenter: "dc1", Store: store, Operator: w, Caller: w,
		Clock: w.clock}.withDefaults()}, nil)
}

// StableSince is the start of the round in which a server's health last
// changed, not of any read: it holds while the health holds, moves when a
// server stops answering and again when it answers once more, and a
// server that left the configuration and came back starts afresh. Each
// round probes each other server once.
func TestAutopilotAssess_StableSinceMovesOnlyWithHealth(t *testing.T) {
	w := newTrackerWorld()
	op := w.operator(t)
	var probes atomic.Uint64
	var prev map[string]stableState
	round := func(at time.Duration) map[string]ServerHealth {
		w.set(func() { w.now = w.now.Add(at) })
		r := op.assess(context.Background(), prev, time.Second, &probes)
		prev = r.stable
		out := map[string]ServerHealth{}
		for _, h := range r.servers {
			out[h.ID] = h
		}
		return out
	}
	since := func(d time.Duration) string {
		return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).Add(d).Format(time.RFC3339)
	}
	check := func(step string, got map[string]ServerHealth, want map[string]string, healthy map[string]bool) {
		t.Helper()
		for id, s := range want {
			if got[id].StableSince != s || got[id].Healthy != healthy[id] {
				t.Errorf("%s: %s is %+v, want healthy %v since %s", step, id, got[id], healthy[id], s)
			}
		}
	}
	all := map[string]bool{"me": true, "f1": true, "f2": true}
	check("first round", round(0), map[string]string{"me": since(0), "f1": since(0), "f2": since(0)}, all)
	check("unchanged", round(2*time.Second), map[string]string{"me": since(0), "f1": since(0), "f2": since(0)}, all)
	w.set(func() { delete(w.answers, "f1:8300") })
	f1Down := map[string]bool{"me": true, "f1": false, "f2": true}
	check("f1 silent", round(2*time.Second), map[string]string{"me": since(0), "f1": since(4 * time.Second), "f2": since(0)}, f1Down)
	check("f1 still silent", round(2*time.Second), map[string]string{"f1": since(4 * time.Second)}, f1Down)
	w.set(func() { w.answers["f1:8300"] = w.answers["f2:8300"] })
	check("f1 back", round(2*time.Second), map[string]string{"me": since(0), "f1": since(8 * time.Second)}, all)
	full := w.conf
	w.set(func() { w.conf.Servers = full.Servers[:2] })
	if got := round(2 * time.Second); len(got) != 2 {
		t.Fatalf("round without f2: %v", got)
	}
	w.set(func() { w.conf = full })
	check("f2 re-added", round(2*time.Second), map[string]string{"f2": since(12 * time.Second), "f1": since(8 * time.Second)}, all)
	if n := probes.Load(); n != 13 {
		t.Errorf("%d probes in 7 rounds, want 13 (two per round, one while f2 was out)", n)
	}
}

// A server that gossip says has left, or does not know, is not probed
// (raft-autopilot asks only servers that have not left) and is unhealthy;
// a failed one is still asked, since it may only be cut off from gossip.
func TestAutopilotAssess_LeftServersAreNotProbed(t *testing.T) {
	w := newTrackerWorld()
	op := w.operator(t)
	status := map[string]string{"me": "alive", "f1": "left", "f2": "failed"}
	op.c.d.SerfStatus = func(id string) string { return status[id] }
	var probes atomic.Uint64
	r := op.assess(context.Background(), nil, time.Second, &probes)
	if n := probes.Load(); n != 1 {
		t.Errorf("%d probes, want 1 (f2 only)", n)
	}
	for _, h := range r.servers {
		if h.Healthy != (h.ID == "me") {
			t.Errorf("%s: %+v", h.ID, h)
		}
	}
	status["f1"] = "none"
	op.assess(context.Background(), nil, time.Second, &probes)
	if n := probes.Load(); n != 2 {
		t.Errorf("%d probes after a second round, want 2: a server gossip does not know was asked", n)
	}
}

// The tracker's life: empty before it leads (HTTP answers an unhealthy,
// empty state), a state from the first round on, one Lead at a time, and
// empty again once Lead returns.
func TestAutopilotTracker_LeadLifecycle(t *testing.T) {
	w := newTrackerWorld()
	tr := NewAutopilotTracker(10 * time.Millisecond)
	if err := tr.Lead(context.Background()); err == nil {
		t.Fatal("Lead ran unbound to a server")
	}
	op := w.operator(t)
	op.tracker = tr
	tr.op.Store(op)
	checkEmpty := func(when string) {
		t.Helper()
		st, h := tr.state(), tr.health()
		if st.Healthy || st.Leader != "" || len(st.Servers) != 0 || st.Servers == nil || st.Voters == nil || h.Healthy || len(h.Servers) != 0 {
			t.Fatalf("%s: state %+v, health %+v; want empty and unhealthy", when, st, h)
		}
	}
	checkEmpty("before Lead")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tr.Lead(ctx) }()
	testkit.WaitFor(t, 5*time.Second, "two rounds", func() error {
		if n := tr.Rounds(); n < 2 {
			return fmt.Errorf("%d rounds", n)
		}
		return nil
	})
	if st := tr.state(); !st.Healthy || len(st.Servers) != 3 || st.Leader != "me" || st.FailureTolerance != 1 {
		t.Fatalf("tracked state %+v", st)
	}
	if healthy, tolerance, ok := tr.Summary(); !healthy || tolerance != 1 || !ok {
		t.Fatalf("summary %v, %d, %v; want healthy, tolerance 1", healthy, tolerance, ok)
	}
	copied := tr.state()
	copied.Voters[0] = "mutated"
	if tr.state().Voters[0] != "me" {
		t.Fatal("a reader changed the tracked state")
	}
	if err := tr.Lead(context.Background()); err == nil {
		t.Fatal("a second Lead ran alongside the first")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Lead: %v", err)
	}
	if tr.Running() {
		t.Fatal("still running after Lead returned")
	}
	checkEmpty("after Lead")
	if _, _, ok := tr.Summary(); ok {
		t.Fatal("a summary without a tracked state")
	}
}
