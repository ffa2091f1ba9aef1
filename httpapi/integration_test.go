package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"roster/catalog"
	"roster/httpapi/client"
	"roster/internal/testkit"
)

// Integration tests: the HTTP API over the real rpc endpoints, Raft and
// catalog (stack_test.go). They prove the whole request path agrees on
// the contract: parameters, gob round trips, errors and headers.

func stackAPI(t *testing.T) (*api, *stack) {
	st := startStack(t)
	return &api{t: t, base: st.base}, st
}

func TestStack_KVRoundTripCASAndMissingKey(t *testing.T) {
	a, _ := stackAPI(t)
	a.must(200, "PUT", "/v1/kv/app/a?flags=9", []byte("one"))
	resp, body := a.must(200, "GET", "/v1/kv/app/a", nil)
	idx := index(t, resp)
	if !strings.Contains(body, `"Flags":9`) || !strings.Contains(body, `"Value":"b25l"`) {
		t.Fatalf("GET = %s", body)
	}
	if _, b := a.must(200, "PUT", "/v1/kv/app/a?cas="+strconv.FormatUint(idx+100, 10), []byte("x")); b != "false" {
		t.Fatalf("stale cas = %s", b)
	}
	if _, b := a.must(200, "PUT", "/v1/kv/app/a?cas="+strconv.FormatUint(idx, 10), []byte("two")); b != "true" {
		t.Fatalf("cas = %s", b)
	}
	if _, keys := a.must(200, "GET", "/v1/kv/?keys", nil); keys != `["app/a"]` {
		t.Fatalf("keys = %s", keys)
	}
	a.must(200, "DELETE", "/v1/kv/app/a", nil)
	if resp, body := a.do("GET", "/v1/kv/app/a", nil); resp.StatusCode != 404 || body != "" {
		t.Fatalf("deleted key: %d %q", resp.StatusCode, body)
	}
}

func TestStack_CatalogHealthAndSessionLock(t *testing.T) {
	a, _ := stackAPI(t)
	a.registerNode("n1", true)
	a.registerService("web", "n1", "passing")
	a.registerService("web", "n2", "critical")
	if _, b := a.must(200, "GET", "/v1/health/service/web?passing", nil); strings.Count(b, `"Service":{`) != 1 {
		t.Fatalf("passing = %s", b)
	}
	if _, b := a.must(200, "GET", "/v1/catalog/services", nil); !strings.Contains(b, `"web":[]`) {
		t.Fatalf("services = %s", b)
	}
	_, body := a.must(200, "PUT", "/v1/session/create", []byte(`{"TTL":"30s"}`))
	var sess struct{ ID string }
	json.Unmarshal([]byte(body), &sess)
	if _, b := a.must(200, "PUT", "/v1/kv/lock?acquire="+sess.ID, nil); b != "true" {
		t.Fatalf("acquire = %s", b)
	}
	if _, b := a.must(200, "PUT", "/v1/session/renew/"+sess.ID, nil); !strings.Contains(b, sess.ID) {
		t.Fatalf("renew = %s", b)
	}
	a.must(200, "PUT", "/v1/session/destroy/"+sess.ID, nil)
	if resp, _ := a.do("PUT", "/v1/session/renew/"+sess.ID, nil); resp.StatusCode != 404 {
		t.Fatalf("renew after destroy: %d, want 404", resp.StatusCode)
	}
	if _, b := a.must(200, "GET", "/v1/kv/lock", nil); strings.Contains(b, `"Session"`) {
		t.Fatalf("lock still held after destroy: %s", b)
	}
}

func TestStack_TxnStatusOperatorAndErrors(t *testing.T) {
	a, _ := stackAPI(t)
	a.must(200, "PUT", "/v1/txn", []byte(`[{"KV":{"Verb":"set","Key":"t","Value":"YQ=="}}]`))
	if _, b := a.must(409, "PUT", "/v1/txn", []byte(`[{"KV":{"Verb":"cas","Key":"t","Index":99999,"Value":"YQ=="}}]`)); !strings.Contains(b, `"OpIndex":0`) {
		t.Fatalf("409 body = %s", b)
	}
	if _, b := a.must(200, "GET", "/v1/status/leader", nil); !strings.Contains(b, "127.0.0.1:") {
		t.Fatalf("leader = %s", b)
	}
	if _, b := a.must(200, "GET", "/v1/operator/raft/configuration", nil); !strings.Contains(b, `"Leader":true`) {
		t.Fatalf("raft configuration = %s", b)
	}
	a.must(200, "GET", "/v1/operator/autopilot/health", nil)
	resp, b := a.do("GET", "/v1/catalog/nodes?filter="+urlEscape("Node =="), nil)
	if resp.StatusCode != 400 {
		t.Fatalf("bad filter through the real endpoint: %d %s", resp.StatusCode, b)
	}
	if resp, b := a.do("GET", "/v1/catalog/nodes?dc=elsewhere", nil); resp.StatusCode != 500 || !strings.Contains(b, "No path to datacenter") {
		t.Fatalf("unknown dc: %d %s", resp.StatusCode, b)
	}
	if _, b := a.must(200, "GET", "/v1/catalog/datacenters", nil); b != `["dc1"]` {
		t.Fatalf("datacenters = %s", b)
	}
}

func TestStack_BlockingReadWakesOnWrite(t *testing.T) {
	a, _ := stackAPI(t)
	a.must(200, "PUT", "/v1/kv/w", []byte("1"))
	resp, _ := a.must(200, "GET", "/v1/kv/w?consistent", nil)
	idx := index(t, resp)
	done := make(chan uint64, 1)
	go func() {
		r, _ := a.do("GET", "/v1/kv/w?wait=20s&index="+strconv.FormatUint(idx, 10), nil)
		done <- index(t, r)
	}()
	a.must(200, "PUT", "/v1/kv/w", []byte("2"))
	select {
	case got := <-done:
		if got <= idx {
			t.Fatalf("woke at index %d, not past %d", got, idx)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("blocking read did not wake within 15s of the write")
	}
}

func TestStack_DeltaWatcherFollowsRegistrations(t *testing.T) {
	a, st := stackAPI(t)
	rnd := testkit.Rand(t)
	w, err := client.New(client.Config{Address: a.base, Wait: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	for round := range 10 {
		for i := range 5 {
			status := []string{"passing", "warning", "critical"}[rnd.IntN(3)]
			a.registerService(fmt.Sprintf("svc%d", rnd.IntN(4)), fmt.Sprintf("node%d", round*5+i), status)
		}
		want := st.store.Registry()
		testkit.WaitFor(t, 10*time.Second, "the mirror to reach the registry", func() error {
			if _, err := w.Sync(context.Background()); err != nil && !strings.Contains(err.Error(), "delta unusable") {
				return err
			}
			if w.Index() < want.Index {
				return fmt.Errorf("mirror at %d, registry at %d", w.Index(), want.Index)
			}
			return nil
		})
		if got := st.store.Registry(); w.Hash() != got.Hash || w.Index() != got.Index {
			t.Fatalf("round %d: mirror hash %s, server %s at index %d", round, w.Hash(), got.Hash, got.Index)
		}
	}
	if m := w.Metrics(); m.FullPulls != 1 || m.Fallbacks != 0 {
		t.Fatalf("metrics %+v: want exactly the initial full pull", m)
	}
}

// TestStack_MirrorOf1000InstancesUnderChurnEndsOnTheServerHash follows a
// registry of 1,000 instances through random registrations, health flips
// and deregistrations sent over HTTP, with forced delta-ring overflows: the
// mirror always ends on the server's hashcode, and full pulls are exactly
// one initial pull plus one per overflow.
func TestStack_MirrorOf1000InstancesUnderChurnEndsOnTheServerHash(t *testing.T) {
	const ring = 256
	st := startStackWith(t, catalog.Config{DeltaCapacity: ring})
	a := &api{t: t, base: st.base}
	rnd := testkit.Rand(t)
	register := func(i int, status string) {
		body := fmt.Sprintf(`{"Node":"node-%03d","Address":"10.0.%d.%d","Service":{"ID":"web-%d","Service":"web","Port":%d},
			"Check":{"CheckID":"c-%d","Name":"c","Status":%q,"ServiceID":"web-%d"}}`, i/10, i/10/256, i/10%256, i, 8000+i, i, status, i)
		a.must(200, "PUT", "/v1/catalog/register", []byte(body))
	}
	for i := range 1000 {
		register(i, "passing")
	}
	w, err := client.New(client.Config{Address: st.base, Wait: 20 * time.Millisecond, Seed: testkit.Seed(t)})
	if err != nil {
		t.Fatal(err)
	}
	overflows := 0
	for round := range 12 {
		n := 1 + rnd.IntN(ring/8)
		if round%4 == 3 {
			n, overflows = ring*3, overflows+1 // more changes than the ring holds
		}
		for range n {
			i := rnd.IntN(1000)
			switch rnd.IntN(5) {
			case 0:
				a.must(200, "PUT", "/v1/catalog/deregister", []byte(fmt.Sprintf(`{"Node":"node-%03d","ServiceID":"web-%d"}`, i/10, i)))
			default:
				register(i, []string{"passing", "warning", "critical"}[rnd.IntN(3)])
			}
		}
		want := st.store.Registry()
		testkit.WaitFor(t, 20*time.Second, "the mirror to reach the registry", func() error {
			w.Sync(context.Background())
			if w.Index() < want.Index {
				return fmt.Errorf("mirror at %d, registry at %d", w.Index(), want.Index)
			}
			return nil
		})
		if w.Hash() != want.Hash {
			t.Fatalf("round %d: mirror hash %s, server %s", round, w.Hash(), want.Hash)
		}
	}
	if m := w.Metrics(); m.FullPulls != uint64(1+overflows) || m.HashMismatches != 0 || m.Gaps != 0 {
		t.Fatalf("metrics %+v: want %d full pulls (1 + %d overflows) and no mismatch", m, 1+overflows, overflows)
	}
}
