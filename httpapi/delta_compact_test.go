package httpapi

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"roster/catalog"
	"roster/httpapi/client"
	"roster/internal/testkit"
)

func TestRosterDelta_CompactFormCarriesTheJSONFormsChangesWithLeanHeaders(t *testing.T) {
	b := newStoreRPC()
	a := &api{t: t, rpc: b}
	a.base = startServer(t, Config{Agent: testAgent(), RPC: b})
	churn(b, rand.New(rand.NewPCG(11, 12)), 5)
	since := b.store.LastIndex()
	churn(b, rand.New(rand.NewPCG(13, 14)), 30)
	path := fmt.Sprintf("/v1/roster/registry/delta?since=%d", since)
	jresp, jbody := a.must(200, "GET", path, nil)
	cresp, cbody := a.must(200, "GET", path+"&format=compact", nil)
	var want catalog.Delta
	if err := json.Unmarshal([]byte(jbody), &want); err != nil {
		t.Fatal(err)
	}
	got, err := client.DecodeCompactDelta([]byte(cbody))
	if err != nil {
		t.Fatal(err)
	}
	gj, _ := json.Marshal(got)
	wj, _ := json.Marshal(want)
	if string(gj) != string(wj) || len(want.Changes) == 0 {
		t.Fatalf("compact form decodes to\n%s\nJSON form is\n%s", gj, wj)
	}
	if jresp.Header.Get("X-Consul-Index") == "" || jresp.Header.Get("ETag") == "" {
		t.Fatalf("JSON form lost its headers: %v", jresp.Header)
	}
	for _, h := range []string{"X-Consul-Index", "X-Consul-Knownleader", "Etag", "Content-Type"} {
		if v, ok := cresp.Header[h]; ok {
			t.Errorf("compact form sent %s: %q", h, v)
		}
	}
	if len(cbody)*3 > len(jbody) {
		t.Errorf("compact body %d bytes, JSON %d: want at least 3× smaller", len(cbody), len(jbody))
	}
	if resp, body := a.do("GET", path+"&format=xml", nil); resp.StatusCode != 400 || !strings.Contains(body, "compact") {
		t.Fatalf("format=xml: %d %q, want 400 naming the forms", resp.StatusCode, body)
	}
}

func TestRosterDelta_LeaderAnswersARepeatedPullFromTheCacheWithoutAnRPC(t *testing.T) {
	b := newStoreRPC()
	a := &api{t: t, rpc: b}
	a.base = startServer(t, Config{Agent: testAgent(), RPC: b, Local: storeLocal{Store: b.store, leader: true}})
	since := b.store.LastIndex()
	churn(b, rand.New(rand.NewPCG(15, 16)), 10)
	path := fmt.Sprintf("/v1/roster/registry/delta?since=%d&format=compact", since)
	_, first := a.must(200, "GET", path, nil)
	calls := b.callCount("Roster.Delta")
	for range 5 {
		if _, body := a.must(200, "GET", path+"&wait=1s", nil); body != first {
			t.Fatal("a repeated pull got a different answer")
		}
	}
	if n := b.callCount("Roster.Delta"); n != calls {
		t.Fatalf("%d more Roster.Delta RPCs for repeated pulls at one index, want 0", n-calls)
	}
}

func TestDelta_JSONWatcherFollowsChurnToo(t *testing.T) {
	b := newStoreRPC()
	base := startServer(t, Config{Agent: testAgent(), RPC: b})
	w, err := client.New(client.Config{Address: base, Wait: 20e6, JSONDeltas: true})
	if err != nil {
		t.Fatal(err)
	}
	rnd := rand.New(rand.NewPCG(17, 18))
	for range 10 {
		churn(b, rnd, 1+rnd.IntN(10))
		syncTo(t, w, b)
	}
	if m := w.Metrics(); w.Hash() != b.store.Registry().Hash || m.FullPulls != 1 || m.DeltaWireBytes <= m.DeltaBytes {
		t.Fatalf("metrics %+v: want the server's hash after one full pull, wire bytes above body bytes", m)
	}
}

func TestWakeJitter_GrowsWithWaitersAndIsCapped(t *testing.T) {
	if d := wakeJitter(0); d != 0 {
		t.Fatalf("no waiters: %v", d)
	}
	for range 100 {
		if d := wakeJitter(1); d < 0 || d >= wakeJitterPerWaiter {
			t.Fatalf("one waiter: %v, want below %v", d, wakeJitterPerWaiter)
		}
		if d := wakeJitter(1 << 30); d < 0 || d >= maxWakeJitter {
			t.Fatalf("a billion waiters: %v, want below %v", d, maxWakeJitter)
		}
	}
}

func TestRosterDelta_LeaderWakesManyBlockedPullsWithOneRPC(t *testing.T) {
	const pulls = 20
	b := newStoreRPC()
	a := &api{t: t, rpc: b}
	a.base = startServer(t, Config{Agent: testAgent(), RPC: b, Local: storeLocal{Store: b.store, leader: true}})
	churn(b, rand.New(rand.NewPCG(19, 20)), 5)
	since := b.store.LastIndex()
	path := fmt.Sprintf("/v1/roster/registry/delta?since=%d&format=compact&wait=30s", since)
	bodies := make(chan string, pulls)
	for range pulls {
		go func() { _, body := a.must(200, "GET", path, nil); bodies <- body }()
	}
	testkit.WaitFor(t, 10*time.Second, "the pulls to block", func() error {
		if n := b.store.Stats().Waiters; n < pulls {
			return fmt.Errorf("%d of %d pulls waiting", n, pulls)
		}
		return nil
	})
	calls := b.callCount("Roster.Delta")
	b.apply(&catalog.RegisterRequest{Node: catalog.Node{Node: "late", Address: "10.1.1.1"},
		Service: &catalog.NodeService{ID: "late", Service: "late"}})
	var first string
	for i := range pulls {
		body := <-bodies
		d, err := client.DecodeCompactDelta([]byte(body))
		if err != nil || d.From != since || len(d.Changes) == 0 {
			t.Fatalf("pull %d: %+v, %v", i, d, err)
		}
		if i == 0 {
			first = body
		} else if body != first {
			t.Fatal("pulls woken by one change got different answers")
		}
	}
	if n := b.callCount("Roster.Delta") - calls; n != 1 {
		t.Fatalf("%d Roster.Delta RPCs for %d woken pulls, want 1", n, pulls)
	}
}
