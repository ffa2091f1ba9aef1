package httpapi

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"roster/catalog"
	"roster/internal/testkit"
	"roster/rpc"
)

// startLeaderAPI is an API on a leading server: blocking reads wait on
// the local catalog (blocking.go).
func startLeaderAPI(t *testing.T, leader bool) *api {
	b := newStoreRPC()
	a := &api{t: t, rpc: b}
	a.base = startServer(t, Config{Agent: testAgent(), RPC: b, Local: storeLocal{Store: b.store, leader: leader}})
	return a
}

func indexOf(t *testing.T, resp *http.Response) uint64 {
	t.Helper()
	idx, err := strconv.ParseUint(resp.Header.Get("X-Consul-Index"), 10, 64)
	if err != nil {
		t.Fatalf("X-Consul-Index %q: %v", resp.Header.Get("X-Consul-Index"), err)
	}
	return idx
}

type answer struct {
	status int
	body   string
	index  string
}

func TestKVBlocking_LeaderParksGetsWithoutRPCsAndWakesThemWithOne(t *testing.T) {
	const gets = 20
	a := startLeaderAPI(t, true)
	a.must(200, "PUT", "/v1/kv/hot", []byte("x"))
	resp, _ := a.must(200, "GET", "/v1/kv/hot", nil)
	path := fmt.Sprintf("/v1/kv/hot?index=%d&wait=30s", indexOf(t, resp))
	calls := a.rpc.callCount("KVS.Get")
	answers := make(chan answer, gets)
	for range gets {
		go func() {
			resp, body := a.do("GET", path, nil)
			answers <- answer{resp.StatusCode, body, resp.Header.Get("X-Consul-Index")}
		}()
	}
	testkit.WaitFor(t, 10*time.Second, "the gets to block", func() error {
		if n := a.rpc.store.Stats().Waiters; n < gets {
			return fmt.Errorf("%d of %d gets waiting", n, gets)
		}
		return nil
	})
	if n := a.rpc.callCount("KVS.Get") - calls; n != 0 {
		t.Fatalf("%d KVS.Get RPCs for %d parked gets, want none: they wait on the local catalog", n, gets)
	}
	a.must(200, "PUT", "/v1/kv/hot", []byte("y"))
	first := <-answers
	if first.status != 200 || first.index == "" {
		t.Fatalf("woken get: %+v", first)
	}
	for range gets - 1 {
		if got := <-answers; got != first {
			t.Fatalf("gets woken by one change got different answers: %+v and %+v", first, got)
		}
	}
	if n := a.rpc.callCount("KVS.Get") - calls; n != 1 {
		t.Fatalf("%d KVS.Get RPCs for %d woken gets, want 1", n, gets)
	}
}

func TestKVBlocking_CachedAnswersKeepStatusAndHeaders(t *testing.T) {
	a := startLeaderAPI(t, true)
	a.must(200, "PUT", "/v1/kv/page", []byte("<script>alert(1)</script>"))
	for i := range 2 { // the second answer comes from the cache
		resp, body := a.do("GET", "/v1/kv/page?raw", nil)
		h := resp.Header
		if resp.StatusCode != 200 || body != "<script>alert(1)</script>" || h.Get("Content-Type") != "text/plain" ||
			h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Content-Security-Policy") != "sandbox" {
			t.Fatalf("raw get %d: %d %q %v", i, resp.StatusCode, body, h)
		}
		resp, body = a.do("GET", "/v1/kv/missing", nil)
		if resp.StatusCode != 404 || body != "" || resp.Header.Get("Content-Type") != "" || indexOf(t, resp) == 0 {
			t.Fatalf("missing key %d: %d %q %v", i, resp.StatusCode, body, resp.Header)
		}
		resp, body = a.do("GET", "/v1/kv/?keys", nil)
		if resp.StatusCode != 200 || body != "[\"page\"]" || resp.Header.Get("Content-Type") != "application/json" {
			t.Fatalf("keys %d: %d %q %v", i, resp.StatusCode, body, resp.Header)
		}
	}
	// A wait that times out answers with the unchanged state and index.
	resp, _ := a.do("GET", "/v1/kv/missing", nil)
	idx := indexOf(t, resp)
	resp, body := a.do("GET", fmt.Sprintf("/v1/kv/missing?index=%d&wait=20ms", idx), nil)
	if resp.StatusCode != 404 || body != "" || indexOf(t, resp) != idx {
		t.Fatalf("timed-out wait: %d %q index %d, want 404 at %d", resp.StatusCode, body, indexOf(t, resp), idx)
	}
}

func TestKVBlocking_FollowerWithoutStaleBlocksAtTheLeader(t *testing.T) {
	a := startLeaderAPI(t, false)
	a.must(200, "PUT", "/v1/kv/k", []byte("x"))
	idx := a.rpc.store.Index(catalog.WatchKVKey("k"))
	resp, _ := a.do("GET", fmt.Sprintf("/v1/kv/k?index=%d&wait=20ms", idx), nil)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	args, ok := a.rpc.lastArgs("KVS.Get").(*rpc.KeyRequest)
	if !ok || args.MinQueryIndex != idx || args.MaxQueryTime != 20*time.Millisecond {
		t.Fatalf("a follower's blocking get sent %+v, want the blocking options for the leader", args)
	}
	// ?stale is answered by this server: it waits locally, then answers
	// from the cache the first read filled, with no RPC at all.
	calls := a.rpc.callCount("KVS.Get")
	resp, _ = a.do("GET", fmt.Sprintf("/v1/kv/k?stale&index=%d&wait=20ms", idx), nil)
	if n := a.rpc.callCount("KVS.Get") - calls; resp.StatusCode != 200 || n != 0 || indexOf(t, resp) != idx {
		t.Fatalf("a stale blocking get on a follower: %d, %d RPCs, index %d; want 200 at %d from the cache", resp.StatusCode, n, indexOf(t, resp), idx)
	}
}

func TestBlockingRead_LeaderParksOtherReadsWithoutRPCs(t *testing.T) {
	a := startLeaderAPI(t, true)
	a.must(200, "PUT", "/v1/catalog/register", []byte(`{"Node":"n1","Address":"10.0.0.1"}`))
	resp, _ := a.must(200, "GET", "/v1/catalog/nodes", nil)
	calls := a.rpc.callCount("Catalog.ListNodes")
	got := make(chan answer, 1)
	go func() {
		resp, body := a.do("GET", fmt.Sprintf("/v1/catalog/nodes?index=%d&wait=30s", indexOf(t, resp)), nil)
		got <- answer{resp.StatusCode, body, resp.Header.Get("X-Consul-Index")}
	}()
	testkit.WaitFor(t, 10*time.Second, "the read to block", func() error {
		if n := a.rpc.store.Stats().Waiters; n < 1 {
			return fmt.Errorf("%d reads waiting", n)
		}
		return nil
	})
	if n := a.rpc.callCount("Catalog.ListNodes") - calls; n != 0 {
		t.Fatalf("%d Catalog.ListNodes RPCs for a parked read, want none", n)
	}
	a.must(200, "PUT", "/v1/catalog/register", []byte(`{"Node":"n2","Address":"10.0.0.2"}`))
	if ans := <-got; ans.status != 200 || !strings.Contains(ans.body, `"n2"`) {
		t.Fatalf("woken read: %+v", ans)
	}
}

// A watch coarser than the read (the KV table for one key) wakes the
// local wait on a change to another key; the read's index has not moved,
// so the read must block in the RPC instead of answering early. Both
// read paths: blockingRead (encoded per request) and cachedRead.
func TestBlockingRead_ACoarseWakeStillWaitsForTheReadsIndex(t *testing.T) {
	coarse := catalog.WatchTable(catalog.TableKV)
	reads := map[string]func(s *Server, r *http.Request, args *rpc.KeyRequest) (uint64, string, error){
		"blockingRead": func(s *Server, r *http.Request, args *rpc.KeyRequest) (uint64, string, error) {
			var reply rpc.IndexedDirEntries
			err := s.blockingRead(httptest.NewRecorder(), r, &args.QueryOptions, coarse, "KVS.Get", args, &reply, &reply.QueryMeta)
			if err != nil || len(reply.Entries) == 0 {
				return 0, "", err
			}
			return reply.Index, string(reply.Entries[0].Value), nil
		},
		"cachedRead": func(s *Server, r *http.Request, args *rpc.KeyRequest) (uint64, string, error) {
			var index uint64
			var value string
			_, err := cachedRead(s, httptest.NewRecorder(), r, &args.QueryOptions, coarse, "", "KVS.Get", args,
				func(reply *rpc.IndexedDirEntries) (*rpc.QueryMeta, any) {
					index, value = reply.Index, string(reply.Entries[0].Value)
					return &reply.QueryMeta, nil
				})
			return index, value, err
		},
	}
	for name, read := range reads {
		t.Run(name, func(t *testing.T) { coarseWakeWaits(t, read) })
	}
}

func coarseWakeWaits(t *testing.T, read func(s *Server, r *http.Request, args *rpc.KeyRequest) (uint64, string, error)) {
	b := newStoreRPC()
	s, err := New(Config{Agent: testAgent(), RPC: b, Local: storeLocal{Store: b.store, leader: true}})
	if err != nil {
		t.Fatal(err)
	}
	b.apply(&catalog.KVRequest{Verb: catalog.KVSet, Key: "a", Value: []byte("1")})
	idx := b.store.Index(catalog.WatchKVKey("a"))
	args := rpc.KeyRequest{QueryOptions: rpc.QueryOptions{MinQueryIndex: idx, MaxQueryTime: 30 * time.Second}, Key: "a"}
	type result struct {
		index uint64
		value string
		err   error
	}
	done := make(chan result, 1)
	go func() {
		index, value, err := read(s, httptest.NewRequest("GET", "/v1/kv/a", nil), &args)
		done <- result{index, value, err}
	}()
	testkit.WaitFor(t, 10*time.Second, "the read to wait locally", func() error {
		if n := b.store.Stats().Waiters; n < 1 {
			return fmt.Errorf("%d reads waiting", n)
		}
		return nil
	})
	b.apply(&catalog.KVRequest{Verb: catalog.KVSet, Key: "b", Value: []byte("1")})
	testkit.WaitFor(t, 10*time.Second, "the read to block in the RPC", func() error {
		// Read at call time: the read may rewrite its args while it blocks.
		if got, ok := b.lastMinIndex("KVS.Get"); !ok || got != idx {
			return fmt.Errorf("last KVS.Get carried MinQueryIndex %d (%v), want %d", got, ok, idx)
		}
		return nil
	})
	select {
	case res := <-done:
		t.Fatalf("answered %+v after a change to another key; want it blocked", res)
	default:
	}
	b.apply(&catalog.KVRequest{Verb: catalog.KVSet, Key: "a", Value: []byte("2")})
	if res := <-done; res.err != nil || res.index <= idx || res.value != "2" {
		t.Fatalf("after the key changed: %+v, want value 2 past index %d", res, idx)
	}
}

// A watcher that hangs up mid-wait is not answered and not logged: when a
// herd of them leaves at once (clients restarting), a 500 and a warning
// each would flood the log. The request is counted as 499.
func TestDeltaBlocking_ClientThatHangsUpIsNeitherAnsweredNorLogged(t *testing.T) {
	b := newStoreRPC()
	log := &testkit.LockedBuffer{}
	s, err := New(Config{Agent: testAgent(), RPC: b, Local: storeLocal{Store: b.store, leader: true},
		Logger: slog.New(slog.NewTextHandler(log, nil))})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	defer srv.Close()
	b.apply(&catalog.RegisterRequest{Node: catalog.Node{Node: "n1", Address: "10.0.0.1"},
		Service: &catalog.NodeService{ID: "web-1", Service: "web"}})
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET",
		fmt.Sprintf("%s/v1/roster/registry/delta?since=%d&wait=30s", srv.URL, b.store.LastIndex()), nil)
	done := make(chan error, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	testkit.WaitFor(t, 10*time.Second, "the pull to block", func() error {
		if n := b.store.Stats().Waiters; n < 1 {
			return fmt.Errorf("%d pulls waiting", n)
		}
		return nil
	})
	cancel()
	if err := <-done; err == nil {
		t.Fatal("the canceled pull got an answer")
	}
	testkit.WaitFor(t, 10*time.Second, "the departed pull to be counted", func() error {
		for _, m := range s.stats.metrics() {
			if m.Name == "roster.http.requests" && m.Labels["code"] == "499" && m.Value == 1 {
				return nil
			}
		}
		return fmt.Errorf("no request counted as 499 yet: %+v", s.stats.metrics())
	})
	if strings.Contains(log.String(), "request failed") {
		t.Fatalf("a client hanging up was logged as a failure:\n%s", log.String())
	}
}
