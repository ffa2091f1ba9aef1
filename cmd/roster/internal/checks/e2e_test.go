package checks

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"roster/catalog"
	"roster/cmd/roster/internal/local"
	"roster/internal/testkit"
	"roster/rpc"
)

// catalogRPC answers the syncer's four calls from a catalog.Store.
type catalogRPC struct {
	mu    sync.Mutex // serializes applies, guards idx
	store *catalog.Store
	idx   uint64
}

func (f *catalogRPC) RPC(_ context.Context, method string, args, reply any) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch method {
	case "Catalog.NodeServices":
		reply.(*rpc.IndexedNodeServices).NodeServices, _ = f.store.NodeServices(args.(*rpc.NodeSpecificRequest).Node)
	case "Health.NodeChecks":
		reply.(*rpc.IndexedHealthChecks).HealthChecks, _ = f.store.NodeChecks(args.(*rpc.NodeSpecificRequest).Node)
	case "Catalog.Register":
		f.idx++
		r := args.(*rpc.RegisterRequest).Register
		return f.store.ApplyCommand(f.idx, &r).Err
	case "Catalog.Deregister":
		f.idx++
		r := args.(*rpc.DeregisterRequest).Deregister
		return f.store.ApplyCommand(f.idx, &r).Err
	default:
		return fmt.Errorf("unexpected %s", method)
	}
	return nil
}

// TestEndToEnd_HTTPCheckStatusReachesCatalog: a service registered with
// the agent, with an HTTP check against a test server, shows up healthy in
// the catalog; stopping the test server turns it critical there.
func TestEndToEnd_HTTPCheckStatusReachesCatalog(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	st := startManager(t, time.Now, Config{})
	store, err := catalog.New(catalog.Config{})
	if err != nil {
		t.Fatal(err)
	}
	sy, err := local.NewSyncer(st, &catalogRPC{store: store}, local.SyncConfig{PartialSyncMinGap: time.Millisecond, Rand: testkit.Rand(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); sy.Run(ctx) }()
	defer func() { cancel(); <-done }()

	err = st.AddService(local.ServiceDefinition{Name: "web", Port: 8080,
		Check: &local.CheckDefinition{HTTP: srv.URL, Interval: local.Duration(time.Second)}}, false)
	if err != nil {
		t.Fatal(err)
	}
	catalogStatus := func(want string) func() error {
		return func() error {
			entries, _ := store.CheckServiceNodes("web", nil, false)
			if len(entries) != 1 || len(entries[0].Checks) != 1 || entries[0].Checks[0].Status != want {
				return fmt.Errorf("catalog has %+v", entries)
			}
			return nil
		}
	}
	testkit.WaitFor(t, 15*time.Second, "web passing in the catalog", catalogStatus(catalog.HealthPassing))
	srv.Close()
	testkit.WaitFor(t, 15*time.Second, "web critical in the catalog", catalogStatus(catalog.HealthCritical))
}
