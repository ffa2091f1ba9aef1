package swim

import (
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"roster/internal/testkit"
)

// TestTrace_EveryDeadVerdictNamesAnOriginalAccuser: in a 20-member
// cluster two members crash; every dead verdict, on every member (most of
// which only heard the verdict by gossip), names as first accuser a member
// that itself originated a suspicion of the victim, and nacks, health
// changes and confirmations show up as events and counters along the way.
func TestTrace_EveryDeadVerdictNamesAnOriginalAccuser(t *testing.T) {
	s := newSim(20, DefaultLANConfig(), testkit.Seed(t))
	s.run(2 * time.Second)
	originated := map[string]map[string]bool{} // victim -> members that suspected it first-hand
	var deads []Event
	kinds := map[EventKind]int{}
	s.onEvent = func(e Event) {
		kinds[e.Kind]++
		switch {
		case e.Kind == EventSuspect && e.From == e.Node:
			if originated[e.Member.Name] == nil {
				originated[e.Member.Name] = map[string]bool{}
			}
			originated[e.Member.Name][e.Node] = true
		case e.Kind == EventDead:
			deads = append(deads, e)
		}
	}
	s.kill(7)
	s.kill(13)
	if !s.runUntil(30*time.Second, func() bool { return s.allSee(7, StateDead) && s.allSee(13, StateDead) }) {
		t.Fatalf("victims not dead everywhere: %s", s.view(0))
	}
	if len(deads) != 2*18 {
		t.Fatalf("%d dead events, want 36", len(deads))
	}
	declaredElsewhere := 0
	for _, e := range deads {
		first := e.Member.SuspectedBy
		if !originated[e.Member.Name][first] {
			t.Fatalf("%v: first accuser %q never suspected %s itself (originators %v)", e, first, e.Member.Name, originated[e.Member.Name])
		}
		if e.From != first {
			declaredElsewhere++
		}
	}
	if declaredElsewhere == 0 {
		t.Fatal("every verdict was declared by its first accuser; the trace was not put to the test")
	}
	for _, k := range []EventKind{EventNack, EventConfirm} {
		if kinds[k] == 0 {
			t.Errorf("no %v events", k)
		}
	}
	var st Stats
	for i, c := range s.cores {
		if i != 7 && i != 13 {
			cs := c.Stats()
			st.NacksReceived += cs.NacksReceived
			st.NacksSent += cs.NacksSent
			st.Confirmations += cs.Confirmations
		}
	}
	if st.NacksReceived == 0 || st.NacksSent == 0 || st.Confirmations == 0 {
		t.Fatalf("counters: %d nacks received, %d sent, %d confirmations", st.NacksReceived, st.NacksSent, st.Confirmations)
	}
}

// TestTrace_DeadVerdictHeardOnlyByGossipKeepsFirstAccuser: a member that
// never saw the suspicion learns who started it from the dead message.
func TestTrace_DeadVerdictHeardOnlyByGossipKeepsFirstAccuser(t *testing.T) {
	cfg := DefaultLANConfig()
	cfg.Name = "a"
	c, err := NewCore(cfg, netip.MustParseAddrPort("10.0.0.1:8301"), rand.New(rand.NewPCG(1, 2)), nil)
	if err != nil {
		t.Fatal(err)
	}
	from := netip.MustParseAddrPort("10.0.0.2:8301")
	seal := func(body []byte) []byte { p, _ := c.frame.seal(body); return p }
	c.Step(from, seal(encodeAlive(nil, alive{Node: "b", Addr: from})))
	c.Step(from, seal(encodeDead(nil, dead{Node: "b", From: "d", First: "s"})))
	m, _ := c.Member("b")
	if m.State != StateDead || m.SuspectedBy != "s" {
		t.Fatalf("b: %+v, want dead and first suspected by s", m)
	}
	var dead *Event
	for _, e := range c.Ready().Events {
		if e.Kind == EventDead {
			dead = &e
		}
	}
	if dead == nil || dead.From != "d" || dead.Member.SuspectedBy != "s" {
		t.Fatalf("dead event %+v: want From d and first accuser s", dead)
	}
}

// TestStats_MetricsListsLifeguardSignals: the exporter view carries the
// observability signals by name and value.
func TestStats_MetricsListsLifeguardSignals(t *testing.T) {
	st := Stats{HealthScore: 2, Confirmations: 3, Refutations: 4, NacksReceived: 5, NacksSent: 6}
	got := map[string]float64{}
	for _, m := range st.Metrics() {
		if _, dup := got[m.Name]; dup {
			t.Fatalf("metric %s listed twice", m.Name)
		}
		got[m.Name] = m.Value
	}
	want := map[string]float64{"health_score": 2, "confirmations": 3, "refutations": 4, "nacks_received": 5, "nacks_sent": 6}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
}
