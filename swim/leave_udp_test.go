package swim

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"roster/internal/testkit"
)

// startUDPPool starts n members on loopback UDP/TCP sockets joined to the
// first, and waits until all see each other alive.
func startUDPPool(t *testing.T, n int) []*Node {
	t.Helper()
	var nodes []*Node
	all := map[string]State{}
	for i := range n {
		cfg := fastConfig(fmt.Sprintf("u%d", i))
		node := startUDPNode(t, cfg)
		t.Cleanup(func() { node.Shutdown() })
		nodes = append(nodes, node)
		all[cfg.Name] = StateAlive
	}
	seed := nodes[0].LocalMember().AddrPort().String()
	for _, node := range nodes[1:] {
		if _, err := node.Join([]string{seed}); err != nil {
			t.Fatal(err)
		}
	}
	testkit.WaitFor(t, 10*time.Second, "every member alive everywhere", func() error { return agree(nodes, all) })
	return nodes
}

// kindsAbout lists the kinds of o's buffered events about name, in order.
func kindsAbout(es []Event, name string) []EventKind {
	var out []EventKind
	for _, e := range es {
		if e.Member.Name == name {
			out = append(out, e.Kind)
		}
	}
	return out
}

// TestUDP_ForceLeaveOfAliveMemberRefutes: on real sockets, force-leave of
// an alive member is accepted (as Serf accepts it); the forcer reports it
// leaving, the member refutes with a higher incarnation and every member
// sees it alive again, without it ever being left or failed.
func TestUDP_ForceLeaveOfAliveMemberRefutes(t *testing.T) {
	nodes := startUDPPool(t, 3)
	obs := nodes[0].Subscribe(0)
	defer obs.Close()
	if err := nodes[0].ForceLeave("u2"); err != nil {
		t.Fatalf("force-leave of an alive member: %v", err)
	}
	testkit.WaitFor(t, 10*time.Second, "u2 alive again at a higher incarnation", func() error {
		for _, n := range nodes {
			if m, _ := memberOf(n, "u2"); m.State != StateAlive || m.Incarnation == 0 {
				return fmt.Errorf("%s sees u2 %v at incarnation %d", n.cfg.Name, m.State, m.Incarnation)
			}
		}
		return nil
	})
	kinds := kindsAbout(drain(obs), "u2")
	leaving, alive := slices.Index(kinds, EventLeaving), slices.Index(kinds, EventAlive)
	if leaving < 0 || alive < leaving || slices.Contains(kinds, EventLeft) || slices.Contains(kinds, EventDead) {
		t.Fatalf("u0's events about u2: %v; want leaving, then alive, never left or dead", kinds)
	}
	if nodes[2].Stats().Refutations == 0 {
		t.Fatal("u2 came back without refuting")
	}
}

// TestUDP_GracefulLeaveIsLeavingThenLeft: a graceful leave reaches the
// others as Serf's does, "leaving" first (the intent) and then "left".
func TestUDP_GracefulLeaveIsLeavingThenLeft(t *testing.T) {
	nodes := startUDPPool(t, 3)
	obs := nodes[0].Subscribe(0)
	defer obs.Close()
	if err := nodes[2].Leave(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	nodes[2].Shutdown()
	testkit.WaitFor(t, 10*time.Second, "u2 left", func() error {
		return agree(nodes[:2], map[string]State{"u2": StateLeft})
	})
	kinds := kindsAbout(drain(obs), "u2")
	leaving, left := slices.Index(kinds, EventLeaving), slices.Index(kinds, EventLeft)
	if leaving < 0 || left < leaving || slices.Contains(kinds, EventDead) {
		t.Fatalf("u0's events about u2: %v; want leaving, then left, never dead", kinds)
	}
}

// TestUDP_ForceLeavePruneForgetsAFailedMember: -prune makes the member
// that handles the force-leave forget a failed member at once (left, then
// an EventReap), and the others forget it as soon as the pruning intent
// reaches them, long before ReapInterval; an alive member refutes its
// prune and stays.
func TestUDP_ForceLeavePruneForgetsAFailedMember(t *testing.T) {
	nodes := startUDPPool(t, 3)
	if err := nodes[0].ForceLeavePrune("u1"); err != nil {
		t.Fatalf("prune of an alive member: %v", err)
	}
	testkit.WaitFor(t, 10*time.Second, "u1 refutes its prune", func() error {
		if m, ok := memberOf(nodes[0], "u1"); !ok || m.State != StateAlive || m.Incarnation == 0 {
			return fmt.Errorf("u0 holds u1 as %+v (listed %v), want alive above incarnation 0", m, ok)
		}
		return nil
	})
	nodes[2].Shutdown()
	testkit.WaitFor(t, 20*time.Second, "u2 dead", func() error {
		return agree(nodes[:2], map[string]State{"u2": StateDead})
	})
	obs := nodes[0].Subscribe(0)
	defer obs.Close()
	if err := nodes[0].ForceLeavePrune("u2"); err != nil {
		t.Fatal(err)
	}
	if m, ok := memberOf(nodes[0], "u2"); ok {
		t.Fatalf("u2 still listed after -prune: %+v", m)
	}
	if kinds := kindsAbout(drain(obs), "u2"); !slices.Equal(kinds, []EventKind{EventLeft, EventReap}) {
		t.Fatalf("u0's events about u2: %v, want left then reap", kinds)
	}
	testkit.WaitFor(t, 10*time.Second, "u1 forgets u2", func() error {
		if m, ok := memberOf(nodes[1], "u2"); ok {
			return fmt.Errorf("u1 still holds u2 %v", m.State)
		}
		return nil
	})
}
