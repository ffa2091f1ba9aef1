package httpapi

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"roster/catalog"
	"roster/httpapi/client"
	"roster/internal/testkit"
)

// churn applies n random registry changes: new instances, moved ports,
// health flips and deregistrations over a pool of nodes and services. A
// node keeps its address (a new one would touch every instance on it).
func churn(b *storeRPC, rnd *rand.Rand, n int) {
	for range n {
		n := rnd.IntN(20)
		node := fmt.Sprintf("node%d", n)
		svc := fmt.Sprintf("svc%d", rnd.IntN(5))
		id := fmt.Sprintf("%s-%d", svc, rnd.IntN(10))
		switch rnd.IntN(4) {
		case 0:
			b.apply(&catalog.DeregisterRequest{Node: node, ServiceID: id})
		default:
			status := []string{"passing", "warning", "critical"}[rnd.IntN(3)]
			b.apply(&catalog.RegisterRequest{
				Node:    catalog.Node{Node: node, Address: "10.0.0." + fmt.Sprint(n)},
				Service: &catalog.NodeService{ID: id, Service: svc, Port: 1000 + rnd.IntN(100), Tags: []string{"t" + fmt.Sprint(rnd.IntN(3))}},
				Checks:  []catalog.HealthCheck{{CheckID: "chk-" + id, Name: "c", Status: status, ServiceID: id}},
			})
		}
	}
}

func newWatcher(t *testing.T, base string) *client.Watcher {
	t.Helper()
	w, err := client.New(client.Config{Address: base, Wait: 20 * time.Millisecond, Seed: testkit.Seed(t)})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// syncTo pulls until the watcher is at the store's registry index.
func syncTo(t *testing.T, w *client.Watcher, b *storeRPC) {
	t.Helper()
	want := b.store.LastIndex()
	for i := 0; i < 50 && w.Index() < want; i++ {
		if _, err := w.Sync(context.Background()); err != nil && !strings.Contains(err.Error(), "delta unusable") {
			t.Fatalf("sync: %v", err)
		}
	}
	if w.Index() < want {
		t.Fatalf("watcher stuck at index %d, store at %d", w.Index(), want)
	}
}

func TestDelta_MirrorFollowsChurnAndPullsFullOncePerOverflow(t *testing.T) {
	rnd := testkit.Rand(t)
	const ring = 64
	b := newStoreRPCWith(catalog.Config{DeltaCapacity: ring})
	a := &api{t: t, rpc: b}
	a.base = startServer(t, Config{Agent: testAgent(), RPC: b})
	churn(b, rnd, 200)
	w := newWatcher(t, a.base)
	overflows := 0
	for round := range 60 {
		if round%15 == 14 {
			churn(b, rnd, ring*3) // more than the ring holds: the next pull gets 410
			overflows++
		} else {
			churn(b, rnd, 1+rnd.IntN(ring/4))
		}
		syncTo(t, w, b)
		if got, want := w.Hash(), b.store.Registry().Hash; got != want {
			t.Fatalf("round %d: mirror hash %s, server %s", round, got, want)
		}
	}
	m := w.Metrics()
	if m.FullPulls != uint64(1+overflows) || m.Fallbacks != uint64(overflows) || m.Truncated != uint64(overflows) {
		t.Fatalf("metrics %+v: want %d full pulls (1 initial + %d overflows)", m, 1+overflows, overflows)
	}
	if m.HashMismatches != 0 || m.Gaps != 0 {
		t.Fatalf("unexpected mismatches: %+v", m)
	}
	if got, want := len(w.Instances("")), len(b.store.Registry().Instances); got != want {
		t.Fatalf("mirror holds %d instances, server %d", got, want)
	}
}

func TestDelta_HashMismatchCostsExactlyOneFullPull(t *testing.T) {
	b := newStoreRPC()
	s, err := New(Config{Agent: testAgent(), RPC: b})
	if err != nil {
		t.Fatal(err)
	}
	var tampered atomic.Bool
	// The first delta after the change is replaced by one that claims a
	// different hash, as a buggy or corrupted answer would.
	h := http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/delta") && b.store.LastIndex() > 1 && tampered.CompareAndSwap(false, true) {
			rw.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(rw, `{"From":%s,"To":%d,"Hash":"bogus","HashScheme":%d,"Changes":[]}`, r.URL.Query().Get("since"), b.store.LastIndex(), catalog.HashScheme)
			return
		}
		s.ServeHTTP(rw, r)
	})
	base := serveHandler(t, h)
	churn(b, rand.New(rand.NewPCG(1, 2)), 1)
	w := newWatcher(t, base)
	if _, err := w.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	churn(b, rand.New(rand.NewPCG(3, 4)), 5)
	syncTo(t, w, b)
	m := w.Metrics()
	if !tampered.Load() || m.HashMismatches != 1 || m.Fallbacks != 1 || m.FullPulls != 2 {
		t.Fatalf("metrics %+v, tampered=%v: want 1 mismatch, 1 fallback, 2 full pulls", m, tampered.Load())
	}
	if w.Hash() != b.store.Registry().Hash {
		t.Fatal("mirror did not recover the server's hash")
	}
}

func serveHandler(t *testing.T, h http.Handler) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return "http://" + l.Addr().String()
}

func TestRosterEndpoints_ETag304And410(t *testing.T) {
	b := newStoreRPCWith(catalog.Config{DeltaCapacity: 4})
	a := &api{t: t, rpc: b}
	a.base = startServer(t, Config{Agent: testAgent(), RPC: b})
	churn(b, rand.New(rand.NewPCG(5, 6)), 3)
	resp, body := a.must(200, "GET", "/v1/roster/registry", nil)
	tag := resp.Header.Get("ETag")
	if tag != `"`+b.store.Registry().Hash+`"` || !strings.Contains(body, `"Instances":[`) {
		t.Fatalf("ETag %q body %.100s", tag, body)
	}
	if resp, _ := a.do("GET", "/v1/roster/registry", nil, "If-None-Match", tag); resp.StatusCode != 304 {
		t.Fatalf("If-None-Match with the current hash: %d, want 304", resp.StatusCode)
	}
	idx := fmt.Sprint(b.store.LastIndex())
	if resp, _ := a.do("GET", "/v1/roster/registry/delta?since="+idx, nil, "If-None-Match", tag); resp.StatusCode != 304 {
		t.Fatalf("delta with nothing new: %d, want 304", resp.StatusCode)
	}
	churn(b, rand.New(rand.NewPCG(7, 8)), 40)
	if resp, body := a.do("GET", "/v1/roster/registry/delta?since=1", nil); resp.StatusCode != 410 || !strings.Contains(body, "/v1/roster/registry") {
		t.Fatalf("delta from before the ring: %d %q, want 410", resp.StatusCode, body)
	}
	for _, bad := range []string{"", "?since=", "?since=-1", "?since=x"} {
		if resp, _ := a.do("GET", "/v1/roster/registry/delta"+bad, nil); resp.StatusCode != 400 {
			t.Fatalf("delta%s: %d, want 400", bad, resp.StatusCode)
		}
	}
}

func TestDelta_WatchDeliversAChangeToABlockedWatcher(t *testing.T) {
	b := newStoreRPC()
	a := &api{t: t, rpc: b}
	a.base = startServer(t, Config{Agent: testAgent(), RPC: b})
	churn(b, rand.New(rand.NewPCG(9, 10)), 5)
	w, err := client.New(client.Config{Address: a.base, Wait: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	updates := make(chan client.Update, 16)
	go w.Watch(ctx, func(u client.Update) { updates <- u })
	if u := <-updates; !u.Full {
		t.Fatalf("first update %+v, want the full pull", u)
	}
	b.apply(&catalog.RegisterRequest{Node: catalog.Node{Node: "late", Address: "10.1.1.1"},
		Service: &catalog.NodeService{ID: "late", Service: "late"}})
	select {
	case u := <-updates:
		added := 0
		for _, c := range u.Changes {
			if c.Kind == catalog.InstanceAdded && c.Instance != nil && c.Instance.Service == "late" {
				added++
			}
		}
		if u.Full || added != 1 {
			t.Fatalf("update %+v, want the one new instance", u)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("blocked watcher did not see the change within 10s")
	}
}
