package local

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"roster/catalog"
	"roster/internal/testkit"
	"roster/rpc"
)

// storeRPC serves the four endpoints anti-entropy uses straight from a
// catalog.Store, standing in for the servers.
type storeRPC struct {
	mu    sync.Mutex // serializes applies (and guards idx)
	store *catalog.Store
	idx   uint64
	fail  atomic.Bool
	calls atomic.Int64
	// duringWrite, if set, runs (once) inside the next catalog write, as
	// an API call racing with an in-flight sync would.
	duringWrite atomic.Pointer[func()]
}

func newStoreRPC(t testing.TB) *storeRPC {
	return &storeRPC{store: mustStore(t)}
}

func mustStore(t testing.TB) *catalog.Store {
	st, err := catalog.New(catalog.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func (f *storeRPC) apply(cmd catalog.Command) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.idx++
	return f.store.ApplyCommand(f.idx, cmd).Err
}

func (f *storeRPC) RPC(_ context.Context, method string, args, reply any) error {
	f.calls.Add(1)
	if f.fail.Load() {
		return errors.New("no cluster leader")
	}
	switch method {
	case "Catalog.NodeServices":
		ns, _ := f.store.NodeServices(args.(*rpc.NodeSpecificRequest).Node)
		reply.(*rpc.IndexedNodeServices).NodeServices = ns
	case "Health.NodeChecks":
		hc, _ := f.store.NodeChecks(args.(*rpc.NodeSpecificRequest).Node)
		reply.(*rpc.IndexedHealthChecks).HealthChecks = hc
	case "Catalog.Register":
		if fn := f.duringWrite.Swap(nil); fn != nil {
			(*fn)()
		}
		r := args.(*rpc.RegisterRequest).Register
		return f.apply(&r)
	case "Catalog.Deregister":
		r := args.(*rpc.DeregisterRequest).Deregister
		return f.apply(&r)
	default:
		return fmt.Errorf("unexpected method %s", method)
	}
	return nil
}

func (f *storeRPC) serviceIDs(node string) []string {
	ns, _ := f.store.NodeServices(node)
	if ns == nil {
		return nil
	}
	var ids []string
	for _, s := range ns.Services {
		ids = append(ids, s.ID)
	}
	slices.Sort(ids)
	return ids
}

func (f *storeRPC) check(node, id string) (catalog.HealthCheck, bool) {
	hc, _ := f.store.NodeChecks(node)
	for _, c := range hc {
		if c.CheckID == id {
			return c, true
		}
	}
	return catalog.HealthCheck{}, false
}

func newSyncer(t *testing.T, s *State, f *storeRPC, cfg SyncConfig) *Syncer {
	t.Helper()
	if cfg.Rand == nil {
		cfg.Rand = rand.New(rand.NewPCG(1, 2)) // the stagger plays no part in these tests
	}
	sy, err := NewSyncer(s, f, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return sy
}

func TestAntiEntropy_FullSyncRegistersEverything(t *testing.T) {
	f := newStoreRPC(t)
	s := newState(t, "", newClock())
	must(t, s.AddService(ServiceDefinition{Name: "web", Port: 80, Check: &CheckDefinition{TTL: Duration(time.Minute)}}, false))
	must(t, s.AddCheck(CheckDefinition{Name: "node-ttl", TTL: Duration(time.Minute), Status: "passing"}))
	sy := newSyncer(t, s, f, SyncConfig{})
	must(t, sy.SyncFull(context.Background()))
	if got := f.serviceIDs("n1"); !slices.Equal(got, []string{"web"}) {
		t.Fatalf("catalog services %v", got)
	}
	c, ok := f.check("n1", "node-ttl")
	if !ok || c.Status != catalog.HealthPassing {
		t.Fatalf("node check %+v", c)
	}
	if _, ok := f.check("n1", "service:web"); !ok {
		t.Fatal("service check missing")
	}
	// A second full sync finds nothing to write.
	before := sy.Stats().Writes
	must(t, sy.SyncFull(context.Background()))
	if w := sy.Stats().Writes; w != before {
		t.Fatalf("in-sync state wrote %d times", w-before)
	}
}

func TestAntiEntropy_NodeDeletedBehindBackIsReRegistered(t *testing.T) {
	f := newStoreRPC(t)
	s := newState(t, "", newClock())
	must(t, s.AddService(ServiceDefinition{Name: "web", Check: &CheckDefinition{TTL: Duration(time.Minute)}}, false))
	sy := newSyncer(t, s, f, SyncConfig{})
	must(t, sy.SyncFull(context.Background()))
	must(t, f.apply(&catalog.DeregisterRequest{Node: "n1"}))
	must(t, sy.SyncFull(context.Background()))
	ns, _ := f.store.NodeServices("n1")
	if ns == nil || ns.Node.Address != "127.0.0.1" || ns.Node.ID != "id-1" {
		t.Fatalf("node not restored: %+v", ns)
	}
	if got := f.serviceIDs("n1"); !slices.Equal(got, []string{"web"}) {
		t.Fatalf("services after one sync: %v", got)
	}
	if _, ok := f.check("n1", "service:web"); !ok {
		t.Fatal("check not restored in one sync")
	}
}

func TestAntiEntropy_CatalogOnlyEntriesRemovedExceptLeaderOwned(t *testing.T) {
	f := newStoreRPC(t)
	s := newState(t, "", newClock())
	must(t, s.AddService(ServiceDefinition{Name: "web"}, false))
	sy := newSyncer(t, s, f, SyncConfig{})
	must(t, sy.SyncFull(context.Background()))
	node := catalog.Node{Node: "n1", Address: "127.0.0.1", ID: "id-1", Datacenter: "dc1"}
	must(t, f.apply(&catalog.RegisterRequest{Node: node, SkipNodeUpdate: true,
		Service: &catalog.NodeService{ID: "rogue", Service: "rogue"},
		Checks:  []catalog.HealthCheck{{Node: "n1", CheckID: "rogue-check", Name: "x", Status: "passing"}}}))
	must(t, f.apply(&catalog.RegisterRequest{Node: node, SkipNodeUpdate: true,
		Service: &catalog.NodeService{ID: ConsulServiceID, Service: "consul"},
		Checks:  []catalog.HealthCheck{{Node: "n1", CheckID: SerfCheckID, Name: "Serf Health Status", Status: "passing"}}}))
	// Drift in a service the agent owns is reverted too.
	must(t, f.apply(&catalog.RegisterRequest{Node: node, SkipNodeUpdate: true, Service: &catalog.NodeService{ID: "web", Service: "web", Port: 9999}}))
	must(t, sy.SyncFull(context.Background()))
	if got := f.serviceIDs("n1"); !slices.Equal(got, []string{"consul", "web"}) {
		t.Fatalf("services %v, want consul and web", got)
	}
	if _, ok := f.check("n1", "rogue-check"); ok {
		t.Fatal("catalog-only check kept")
	}
	if _, ok := f.check("n1", SerfCheckID); !ok {
		t.Fatal("serfHealth removed")
	}
	ns, _ := f.store.NodeServices("n1")
	for _, svc := range ns.Services {
		if svc.ID == "web" && svc.Port != 0 {
			t.Fatalf("drifted port kept: %+v", svc)
		}
	}
}

func TestAntiEntropy_DeregistrationsAndTagOverride(t *testing.T) {
	f := newStoreRPC(t)
	s := newState(t, "", newClock())
	must(t, s.AddService(ServiceDefinition{Name: "web", Tags: []string{"a"}, EnableTagOverride: true}, false))
	must(t, s.AddService(ServiceDefinition{Name: "db"}, false))
	sy := newSyncer(t, s, f, SyncConfig{})
	must(t, sy.SyncFull(context.Background()))
	must(t, s.RemoveService("db"))
	must(t, sy.SyncChanges(context.Background()))
	if got := f.serviceIDs("n1"); !slices.Equal(got, []string{"web"}) {
		t.Fatalf("services %v after removing db", got)
	}
	node := catalog.Node{Node: "n1", Address: "127.0.0.1"}
	must(t, f.apply(&catalog.RegisterRequest{Node: node, SkipNodeUpdate: true,
		Service: &catalog.NodeService{ID: "web", Service: "web", Tags: []string{"b"}, EnableTagOverride: true, Weights: catalog.Weights{Passing: 1, Warning: 1}}}))
	must(t, sy.SyncFull(context.Background()))
	if svc, _, _ := s.Service("web"); !slices.Equal(svc.Tags, []string{"b"}) {
		t.Fatalf("catalog tags not adopted: %v", svc.Tags)
	}
}

func TestAntiEntropy_RunSyncsChangesAndRetriesAfterFailure(t *testing.T) {
	f := newStoreRPC(t)
	s := newState(t, "", newClock())
	sy := newSyncer(t, s, f, SyncConfig{Interval: time.Hour, RetryInterval: 20 * time.Millisecond, PartialSyncMinGap: time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); sy.Run(ctx) }()
	defer func() { cancel(); <-done }()

	must(t, s.AddService(ServiceDefinition{Name: "web"}, false))
	testkit.WaitFor(t, 10*time.Second, "web in the catalog", func() error {
		if !slices.Equal(f.serviceIDs("n1"), []string{"web"}) {
			return fmt.Errorf("catalog has %v", f.serviceIDs("n1"))
		}
		return nil
	})
	f.fail.Store(true)
	must(t, s.AddService(ServiceDefinition{Name: "db"}, false))
	testkit.WaitFor(t, 10*time.Second, "a failed sync", func() error {
		if sy.Stats().Failures == 0 {
			return errors.New("no failure yet")
		}
		return nil
	})
	f.fail.Store(false)
	testkit.WaitFor(t, 10*time.Second, "db synced after the servers came back", func() error {
		if !slices.Equal(f.serviceIDs("n1"), []string{"db", "web"}) {
			return fmt.Errorf("catalog has %v", f.serviceIDs("n1"))
		}
		return nil
	})
	// Deleting the node behind the agent's back is repaired by the next
	// full sync.
	must(t, f.apply(&catalog.DeregisterRequest{Node: "n1"}))
	sy.TriggerFullSync()
	testkit.WaitFor(t, 10*time.Second, "node re-registered", func() error {
		if len(f.serviceIDs("n1")) != 2 {
			return fmt.Errorf("catalog has %v", f.serviceIDs("n1"))
		}
		return nil
	})
}

func TestFullSyncDelay_ScalesAndStaggers(t *testing.T) {
	rng := testkit.Rand(t)
	for _, tc := range []struct{ nodes, factor int }{{1, 1}, {128, 1}, {129, 2}, {256, 2}, {257, 3}, {1024, 4}} {
		if got := scaleFactor(tc.nodes); got != tc.factor {
			t.Fatalf("scaleFactor(%d) = %d, want %d", tc.nodes, got, tc.factor)
		}
		for range 100 {
			d := fullSyncDelay(time.Minute, tc.nodes, rng)
			if d < time.Minute || d >= time.Minute+time.Duration(tc.factor)*time.Minute {
				t.Fatalf("delay %v out of range for %d nodes", d, tc.nodes)
			}
		}
	}
}

func TestAntiEntropy_DeferredOutputReachesCatalog(t *testing.T) {
	f := newStoreRPC(t)
	s, err := New(Config{NodeName: "n1", Address: "127.0.0.1", CheckUpdateInterval: 50 * time.Millisecond})
	must(t, err)
	must(t, s.AddCheck(CheckDefinition{Name: "c", TTL: Duration(time.Hour)}))
	sy := newSyncer(t, s, f, SyncConfig{Interval: time.Hour, PartialSyncMinGap: time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); sy.Run(ctx) }()
	defer func() { cancel(); <-done }()
	must(t, s.UpdateTTL("c", catalog.HealthPassing, "first"))
	output := func(want string) func() error {
		return func() error {
			if c, _ := f.check("n1", "c"); c.Output != want {
				return fmt.Errorf("catalog output %q", c.Output)
			}
			return nil
		}
	}
	testkit.WaitFor(t, 10*time.Second, "status change synced", output("first"))
	must(t, s.UpdateTTL("c", catalog.HealthPassing, "second"))
	testkit.WaitFor(t, 10*time.Second, "deferred output synced", output("second"))
}

func TestAntiEntropy_ChangeDuringInFlightSyncIsNotMissed(t *testing.T) {
	f := newStoreRPC(t)
	s := newState(t, "", newClock())
	sy := newSyncer(t, s, f, SyncConfig{Interval: time.Hour, PartialSyncMinGap: time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); sy.Run(ctx) }()
	defer func() { cancel(); <-done }()
	racing := func() { must(t, s.AddService(ServiceDefinition{Name: "late"}, false)) }
	f.duringWrite.Store(&racing)
	must(t, s.AddService(ServiceDefinition{Name: "web"}, false))
	testkit.WaitFor(t, 10*time.Second, "both services synced without a full sync", func() error {
		if got := f.serviceIDs("n1"); !slices.Equal(got, []string{"late", "web"}) {
			return fmt.Errorf("catalog has %v", got)
		}
		return nil
	})
}
