package local

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"roster/catalog"
	"roster/internal/testkit"
)

// converged reports how the catalog's view of the node differs from local
// state (nil when equal), ignoring the leader-owned serfHealth and consul.
func converged(s *State, f *storeRPC) error {
	ns, _ := f.store.NodeServices(s.NodeName())
	if ns == nil {
		return fmt.Errorf("node %s missing from the catalog", s.NodeName())
	}
	remote := map[string]catalog.NodeService{}
	for _, svc := range ns.Services {
		if svc.ID != ConsulServiceID {
			remote[svc.ID] = svc
		}
	}
	local := s.Services()
	if !slices.Equal(slices.Sorted(maps.Keys(remote)), slices.Sorted(maps.Keys(local))) {
		return fmt.Errorf("services: catalog %v, local %v", slices.Sorted(maps.Keys(remote)), slices.Sorted(maps.Keys(local)))
	}
	for id, l := range local {
		if !sameService(l, remote[id]) {
			return fmt.Errorf("service %s: catalog %+v, local %+v", id, remote[id], l)
		}
	}
	hc, _ := f.store.NodeChecks(s.NodeName())
	rchecks := map[string]catalog.HealthCheck{}
	for _, c := range hc {
		if c.CheckID != SerfCheckID {
			rchecks[c.CheckID] = c
		}
	}
	lchecks := s.Checks()
	if !slices.Equal(slices.Sorted(maps.Keys(rchecks)), slices.Sorted(maps.Keys(lchecks))) {
		return fmt.Errorf("checks: catalog %v, local %v", slices.Sorted(maps.Keys(rchecks)), slices.Sorted(maps.Keys(lchecks)))
	}
	for id, l := range lchecks {
		if !sameCheck(l, rchecks[id], false) {
			return fmt.Errorf("check %s: catalog %+v, local %+v", id, rchecks[id], l)
		}
	}
	return nil
}

// TestPartition_AgentReconcilesAfterHeal drives random local changes and
// catalog-side drift while the servers are intermittently unreachable, and
// checks that one full sync after the heal makes the catalog equal to the
// agent's state, whatever happened before.
func TestPartition_AgentReconcilesAfterHeal(t *testing.T) {
	runs := testkit.ChaosRuns(20)
	rng := testkit.Rand(t)
	for run := range runs {
		f := newStoreRPC(t)
		s, err := New(Config{NodeName: "n1", Address: "127.0.0.1", CheckUpdateInterval: -1})
		must(t, err)
		sy := newSyncer(t, s, f, SyncConfig{})
		ctx := context.Background()
		var trace []string
		step := func(format string, args ...any) { trace = append(trace, fmt.Sprintf(format, args...)) }
		for i := range 60 {
			svc := fmt.Sprintf("s%d", rng.IntN(4))
			switch rng.IntN(9) {
			case 0, 1:
				tags := []string{fmt.Sprint(rng.IntN(3))}
				step("add %s tags %v", svc, tags)
				_ = s.AddService(ServiceDefinition{Name: svc, Tags: tags, Check: &CheckDefinition{TTL: Duration(time.Hour)}}, rng.IntN(2) == 0)
			case 2:
				step("remove %s", svc)
				_ = s.RemoveService(svc)
			case 3:
				st := []string{catalog.HealthPassing, catalog.HealthWarning, catalog.HealthCritical}[rng.IntN(3)]
				step("ttl %s %s", svc, st)
				_ = s.UpdateTTL("service:"+svc, st, fmt.Sprint(i))
			case 4:
				step("catalog: deregister node")
				must(t, f.apply(&catalog.DeregisterRequest{Node: "n1"}))
			case 5:
				step("catalog: register rogue %s", svc)
				_ = f.apply(&catalog.RegisterRequest{Node: catalog.Node{Node: "n1", Address: "127.0.0.1"},
					Service: &catalog.NodeService{ID: svc, Service: "rogue", Port: i}})
			case 6:
				fail := rng.IntN(2) == 0
				step("servers reachable: %v", !fail)
				f.fail.Store(fail)
			case 7:
				step("partial sync: %v", sy.SyncChanges(ctx))
			case 8:
				if rng.IntN(2) == 0 {
					step("node maintenance on: %v", s.EnableNodeMaintenance("x"))
				} else {
					step("node maintenance off: %v", s.DisableNodeMaintenance())
				}
				step("full sync: %v", sy.SyncFull(ctx))
			}
		}
		f.fail.Store(false)
		must(t, sy.SyncFull(ctx))
		if err := converged(s, f); err != nil {
			t.Fatalf("run %d: not converged after heal: %v\ntrace:\n%s", run, err, strings.Join(trace, "\n"))
		}
		// And a second full sync has nothing left to do.
		before := sy.Stats().Writes
		must(t, sy.SyncFull(ctx))
		if w := sy.Stats().Writes - before; w != 0 {
			t.Fatalf("run %d: %d writes after convergence", run, w)
		}
	}
}

func TestPersistence_RestartedAgentResyncs(t *testing.T) {
	dir := t.TempDir()
	f := newStoreRPC(t)
	s := newState(t, dir, newClock())
	must(t, s.AddService(ServiceDefinition{Name: "web", Port: 80, Check: &CheckDefinition{TTL: Duration(time.Minute)}}, false))
	must(t, newSyncer(t, s, f, SyncConfig{}).SyncFull(context.Background()))
	// The agent is down while its node is deleted; a fresh start from the
	// data dir restores the catalog in one full sync.
	must(t, f.apply(&catalog.DeregisterRequest{Node: "n1"}))
	s2 := newState(t, dir, newClock())
	must(t, newSyncer(t, s2, f, SyncConfig{}).SyncFull(context.Background()))
	if err := converged(s2, f); err != nil {
		t.Fatal(err)
	}
}
