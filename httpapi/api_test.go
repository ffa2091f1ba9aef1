package httpapi

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"roster/catalog"
	"roster/internal/testkit"
	"roster/rpc"
)

// api is a Server over the store-backed test RPC, on a loopback socket.
type api struct {
	t    *testing.T
	base string
	rpc  *storeRPC
	srv  *Server
}

func startAPI(t *testing.T, mutate ...func(*Config)) *api {
	t.Helper()
	b := newStoreRPC()
	cfg := Config{Agent: testAgent(), RPC: b}
	for _, m := range mutate {
		m(&cfg)
	}
	a := &api{t: t, rpc: b}
	a.base = startServer(t, cfg)
	return a
}

// do sends a request and returns the response (body read) and body.
func (a *api) do(method, path string, body []byte, hdr ...string) (*http.Response, string) {
	a.t.Helper()
	req, err := http.NewRequest(method, a.base+path, bytes.NewReader(body))
	if err != nil {
		a.t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// must sends a request and fails unless the status is want.
func (a *api) must(want int, method, path string, body []byte) (*http.Response, string) {
	a.t.Helper()
	resp, out := a.do(method, path, body)
	if resp.StatusCode != want {
		a.t.Fatalf("%s %s: status %d (%q), want %d", method, path, resp.StatusCode, out, want)
	}
	return resp, out
}

func index(t *testing.T, resp *http.Response) uint64 {
	t.Helper()
	n, err := strconv.ParseUint(resp.Header.Get("X-Consul-Index"), 10, 64)
	if err != nil || n == 0 {
		t.Fatalf("X-Consul-Index = %q, want a positive integer", resp.Header.Get("X-Consul-Index"))
	}
	return n
}

func TestKV_PutGetListKeysDelete(t *testing.T) {
	a := startAPI(t)
	a.must(200, "PUT", "/v1/kv/app/a?flags=42", []byte("one"))
	a.must(200, "PUT", "/v1/kv/app/dir/b", []byte("two"))
	resp, body := a.must(200, "GET", "/v1/kv/app/a", nil)
	var pairs []catalog.KVPair
	if err := json.Unmarshal([]byte(body), &pairs); err != nil || len(pairs) != 1 ||
		string(pairs[0].Value) != "one" || pairs[0].Flags != 42 {
		t.Fatalf("GET app/a = %s (%v)", body, err)
	}
	if resp.Header.Get("X-Consul-KnownLeader") != "true" || resp.Header.Get("X-Consul-LastContact") != "0" ||
		resp.Header.Get("X-Consul-Effective-Consistency") != "leader" {
		t.Fatalf("meta headers: %v", resp.Header)
	}
	if _, raw := a.must(200, "GET", "/v1/kv/app/a?raw", nil); raw != "one" {
		t.Fatalf("raw = %q", raw)
	}
	if _, keys := a.must(200, "GET", "/v1/kv/app/?keys&separator=/", nil); keys != `["app/a","app/dir/"]` {
		t.Fatalf("keys = %s", keys)
	}
	if _, list := a.must(200, "GET", "/v1/kv/app?recurse", nil); strings.Count(list, `"Key"`) != 2 {
		t.Fatalf("recurse = %s", list)
	}
	a.must(200, "DELETE", "/v1/kv/app?recurse", nil)
	resp, body = a.do("GET", "/v1/kv/app/a", nil)
	if resp.StatusCode != 404 || body != "" {
		t.Fatalf("missing key: %d %q, want 404 with an empty body", resp.StatusCode, body)
	}
	index(t, resp) // meta headers on a 404 too
}

func TestKV_CASAnswersTrueThenFalse(t *testing.T) {
	a := startAPI(t)
	resp, b := a.must(200, "PUT", "/v1/kv/k?cas=0", []byte("v"))
	if b != "true" {
		t.Fatalf("cas=0 on a new key = %s", b)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("a KV write answers Content-Type %q, want application/json as Consul does", ct)
	}
	if _, b := a.must(200, "PUT", "/v1/kv/k?cas=0", []byte("v")); b != "false" {
		t.Fatalf("cas=0 on an existing key = %s", b)
	}
	resp, _ = a.must(200, "GET", "/v1/kv/k", nil)
	idx := index(t, resp)
	if _, b := a.must(200, "DELETE", "/v1/kv/k?cas="+strconv.FormatUint(idx+7, 10), nil); b != "false" {
		t.Fatalf("delete with a wrong cas = %s", b)
	}
	if _, b := a.must(200, "DELETE", "/v1/kv/k?cas="+strconv.FormatUint(idx, 10), nil); b != "true" {
		t.Fatalf("delete with the right cas = %s", b)
	}
}

func TestKV_BadRequestsAre4xxWithConsulMessages(t *testing.T) {
	a := startAPI(t)
	cases := []struct {
		method, path string
		body         []byte
		code         int
		msg          string
	}{
		{"GET", "/v1/kv/", nil, 400, "Missing key name"},
		{"PUT", "/v1/kv/", nil, 400, "Missing key name"},
		{"DELETE", "/v1/kv/", nil, 400, "Missing key name"},
		{"PUT", "/v1/kv/k?cas=1&acquire=x", nil, 400, "Conflicting flags: cas=1&acquire=x"},
		{"DELETE", "/v1/kv/k?recurse&cas=1", nil, 400, "Conflicting flags"},
		{"PUT", "/v1/kv/k?flags=x", nil, 400, "Invalid flags"},
		{"GET", "/v1/kv/k?index=abc", nil, 400, "Invalid index"},
		{"GET", "/v1/kv/k?wait=forever", nil, 400, "Invalid wait time"},
		{"GET", "/v1/kv/k?stale&consistent", nil, 400, "Cannot specify ?stale with ?consistent"},
		{"PUT", "/v1/kv/big", make([]byte, DefaultMaxKVValueBytes+1), 413, "Request body(524289 bytes) too large, max size: 524288 bytes."},
	}
	for _, c := range cases {
		resp, body := a.do(c.method, c.path, c.body)
		if resp.StatusCode != c.code || !strings.Contains(body, c.msg) {
			t.Errorf("%s %s: %d %q, want %d containing %q", c.method, c.path, resp.StatusCode, body, c.code, c.msg)
		}
	}
}

func TestKV_AcquireAndReleaseWithSession(t *testing.T) {
	a := startAPI(t)
	a.registerNode("n1", true)
	_, body := a.must(200, "PUT", "/v1/session/create", []byte(`{"Name":"lock","LockDelay":"1ms","TTL":"15s"}`))
	var sess struct{ ID string }
	if err := json.Unmarshal([]byte(body), &sess); err != nil || sess.ID == "" {
		t.Fatalf("create = %s", body)
	}
	if _, b := a.must(200, "PUT", "/v1/kv/lock?acquire="+sess.ID, []byte("me")); b != "true" {
		t.Fatalf("acquire = %s", b)
	}
	_, got := a.must(200, "GET", "/v1/kv/lock", nil)
	if !strings.Contains(got, `"Session":"`+sess.ID+`"`) || !strings.Contains(got, `"LockIndex":1`) {
		t.Fatalf("locked pair = %s", got)
	}
	if _, b := a.must(200, "PUT", "/v1/kv/lock?release="+sess.ID, nil); b != "true" {
		t.Fatalf("release = %s", b)
	}
	args := a.rpc.lastArgs("Session.Apply").(*rpc.SessionRequest)
	if args.Op.Session.Node != "n1" || args.Op.Session.LockDelay != time.Millisecond ||
		len(args.Op.Session.NodeChecks) != 1 || args.Op.Session.NodeChecks[0] != "serfHealth" {
		t.Fatalf("session defaults: %+v", args.Op.Session)
	}
}

// registerNode registers node with a passing serfHealth check (or none).
func (a *api) registerNode(node string, serf bool) {
	a.t.Helper()
	reg := map[string]any{"Node": node, "Address": "10.0.0.1"}
	if serf {
		reg["Check"] = map[string]any{"CheckID": "serfHealth", "Name": "Serf Health Status", "Status": "passing"}
	}
	body, _ := json.Marshal(reg)
	a.must(200, "PUT", "/v1/catalog/register", body)
}

func TestBlockingQuery_WakesOnChange(t *testing.T) {
	a := startAPI(t)
	resp, _ := a.must(200, "PUT", "/v1/kv/watched", []byte("1"))
	resp, _ = a.must(200, "GET", "/v1/kv/watched", nil)
	idx := index(t, resp)
	type result struct {
		resp *http.Response
		body string
	}
	done := make(chan result, 1)
	go func() {
		r, b := a.do("GET", "/v1/kv/watched?index="+strconv.FormatUint(idx, 10)+"&wait=30s", nil)
		done <- result{r, b}
	}()
	testkit.WaitFor(t, 5*time.Second, "the blocking read to reach the backend", func() error {
		if a.rpc.callCount("KVS.Get") < 2 {
			return io.EOF
		}
		return nil
	})
	select {
	case r := <-done:
		t.Fatalf("blocking read returned before any change: %d %s", r.resp.StatusCode, r.body)
	default:
	}
	a.must(200, "PUT", "/v1/kv/watched", []byte("2"))
	select {
	case r := <-done:
		if got := index(t, r.resp); got <= idx || !strings.Contains(r.body, `"Value":"Mg=="`) {
			t.Fatalf("woke with index %d (was %d), body %s", got, idx, r.body)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("blocking read did not wake within 10s of the change")
	}
}

func TestQueryOptions_TokenPrecedenceAndLocalDC(t *testing.T) {
	a := startAPI(t)
	a.do("GET", "/v1/catalog/nodes?token=q&dc=dc1&stale", nil, "X-Consul-Token", "h", "Authorization", "Bearer b")
	args := a.rpc.lastArgs("Catalog.ListNodes").(*rpc.NodesRequest)
	if args.Token != "q" || args.Datacenter != "" || !args.AllowStale {
		t.Fatalf("args = %+v", args.QueryOptions)
	}
	a.do("GET", "/v1/catalog/nodes?dc=dc2&node-meta=env:prod&node-meta=rack&near=_agent", nil, "X-Consul-Token", "h", "Authorization", "Bearer b")
	args = a.rpc.lastArgs("Catalog.ListNodes").(*rpc.NodesRequest)
	if args.Token != "h" || args.Datacenter != "dc2" || args.NodeMetaFilters["env"] != "prod" ||
		args.NodeMetaFilters["rack"] != "" || len(args.NodeMetaFilters) != 2 || args.Near != "n1" {
		t.Fatalf("args = %+v", args)
	}
	a.do("GET", "/v1/catalog/nodes?wait=250ms&index=7", nil, "Authorization", "bearer  tok extra")
	args = a.rpc.lastArgs("Catalog.ListNodes").(*rpc.NodesRequest)
	if args.Token != "tok" || args.MaxQueryTime != 250*time.Millisecond || args.MinQueryIndex != 7 {
		t.Fatalf("args = %+v", args.QueryOptions)
	}
}

func TestErrors_RPCFailuresMapToConsulStatuses(t *testing.T) {
	a := startAPI(t)
	a.rpc.failWith("Catalog.ListNodes", rpc.ErrNoLeader)
	if resp, body := a.do("GET", "/v1/catalog/nodes", nil); resp.StatusCode != 500 || body != "No cluster leader" {
		t.Fatalf("no leader: %d %q", resp.StatusCode, body)
	}
	resp, body := a.do("GET", "/v1/catalog/services?filter="+urlEscape("Node =="), nil)
	if resp.StatusCode != 400 || !strings.Contains(body, "Failed to create boolean expression evaluator") {
		t.Fatalf("bad filter: %d %q", resp.StatusCode, body)
	}
	if resp, body := a.do("GET", "/v1/health/state/sideways", nil); resp.StatusCode != 400 || !strings.Contains(body, "Invalid state") {
		t.Fatalf("bad state: %d %q", resp.StatusCode, body)
	}
	if resp, body := a.do("GET", "/v1/catalog/service/", nil); resp.StatusCode != 400 || body != "Missing service name" {
		t.Fatalf("missing service: %d %q", resp.StatusCode, body)
	}
	if resp, body := a.do("PUT", "/v1/catalog/register", []byte("{nope")); resp.StatusCode != 400 || !strings.HasPrefix(body, "Request decode failed") {
		t.Fatalf("bad body: %d %q", resp.StatusCode, body)
	}
}

func urlEscape(s string) string {
	return strings.NewReplacer(" ", "%20", "=", "%3D", "\"", "%22").Replace(s)
}

func TestSession_RenewOfUnknownSessionIs404(t *testing.T) {
	a := startAPI(t)
	a.registerNode("n1", true)
	if resp, _ := a.do("PUT", "/v1/session/renew/00000000-0000-0000-0000-000000000000", nil); resp.StatusCode != 404 {
		t.Fatalf("renew unknown: %d, want 404", resp.StatusCode)
	}
	_, body := a.must(200, "PUT", "/v1/session/create", nil)
	var sess struct{ ID string }
	json.Unmarshal([]byte(body), &sess)
	if _, b := a.must(200, "PUT", "/v1/session/renew/"+sess.ID, nil); !strings.Contains(b, `"LockDelay":15000000000`) {
		t.Fatalf("renew = %s", b)
	}
	a.must(200, "PUT", "/v1/session/destroy/"+sess.ID, nil)
	if _, b := a.must(200, "GET", "/v1/session/info/"+sess.ID, nil); b != "[]" {
		t.Fatalf("info after destroy = %s", b)
	}
	if _, b := a.must(200, "PUT", "/v1/session/create", []byte(`{"NodeChecks":[]}`)); !strings.Contains(b, "ID") {
		t.Fatalf("create without checks = %s", b)
	}
	if args := a.rpc.lastArgs("Session.Apply").(*rpc.SessionRequest); len(args.Op.Session.NodeChecks) != 0 {
		t.Fatalf("explicit empty NodeChecks became %v", args.Op.Session.NodeChecks)
	}
}

func TestTxn_AppliedIs200RolledBackIs409(t *testing.T) {
	a := startAPI(t)
	ok := `[{"KV":{"Verb":"set","Key":"t1","Value":"YQ=="}},{"KV":{"Verb":"set","Key":"t2","Value":"Yg=="}}]`
	if _, b := a.must(200, "PUT", "/v1/txn", []byte(ok)); !strings.Contains(b, `"Results":[{"KV":`) || !strings.Contains(b, `"Errors":null`) {
		t.Fatalf("applied txn = %s", b)
	}
	bad := `[{"KV":{"Verb":"set","Key":"t3","Value":"YQ=="}},{"KV":{"Verb":"cas","Key":"t1","Index":999,"Value":"YQ=="}}]`
	if _, b := a.must(409, "PUT", "/v1/txn", []byte(bad)); !strings.Contains(b, `"Results":null`) || !strings.Contains(b, `"OpIndex":1`) {
		t.Fatalf("rolled back txn = %s", b)
	}
	if resp, _ := a.do("GET", "/v1/kv/t3", nil); resp.StatusCode != 404 {
		t.Fatalf("rolled-back write is visible: %d", resp.StatusCode)
	}
	resp, b := a.must(200, "PUT", "/v1/txn", []byte(`[{"KV":{"Verb":"get","Key":"t1"}}]`))
	if !strings.Contains(b, `"Key":"t1"`) || resp.Header.Get("X-Consul-Index") == "" {
		t.Fatalf("read txn = %s, headers %v", b, resp.Header)
	}
	if resp, b := a.do("PUT", "/v1/txn", []byte(`[{}]`)); resp.StatusCode != 400 {
		t.Fatalf("empty op: %d %s", resp.StatusCode, b)
	}
	many := "[" + strings.TrimSuffix(strings.Repeat(`{"KV":{"Verb":"get","Key":"x"}},`, 129), ",") + "]"
	if resp, _ := a.do("PUT", "/v1/txn", []byte(many)); resp.StatusCode != 413 {
		t.Fatalf("129 ops: %d, want 413", resp.StatusCode)
	}
}

func TestHealthService_PassingDropsCriticalAndCacheReusesEncoding(t *testing.T) {
	a := startAPI(t)
	for i, status := range []string{"passing", "critical", "passing"} {
		reg := map[string]any{"Node": "node" + strconv.Itoa(i), "Address": "10.0.0.1",
			"Service": map[string]any{"Service": "web", "Port": 80 + i, "Tags": []string{"v1"}},
			"Check":   map[string]any{"CheckID": "web", "Name": "web", "Status": status, "ServiceID": "web"}}
		body, _ := json.Marshal(reg)
		a.must(200, "PUT", "/v1/catalog/register", body)
	}
	_, all := a.must(200, "GET", "/v1/health/service/web", nil)
	_, passing := a.must(200, "GET", "/v1/health/service/web?passing", nil)
	if strings.Count(all, `"Service":{`) != 3 || strings.Count(passing, `"Service":{`) != 2 {
		t.Fatalf("all = %s\npassing = %s", all, passing)
	}
	hits := a.srvCacheHits()
	_, again := a.must(200, "GET", "/v1/health/service/web?passing=", nil)
	if again != passing || a.srvCacheHits() != hits+1 {
		t.Fatalf("repeat read: equal=%v, cache hits %d -> %d", again == passing, hits, a.srvCacheHits())
	}
	_, tagged := a.must(200, "GET", "/v1/health/service/web?tag=v2", nil)
	if tagged != "[]" {
		t.Fatalf("tag=v2 = %s", tagged)
	}
}

func (a *api) srvCacheHits() uint64 {
	_, body := a.must(200, "GET", "/v1/agent/metrics?format=prometheus", nil)
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, "roster_http_cache_hits "); ok {
			n, _ := strconv.ParseFloat(v, 64)
			return uint64(n)
		}
	}
	a.t.Fatalf("no roster_http_cache_hits in metrics:\n%s", body)
	return 0
}

func TestGzip_LargeBodiesCompressedWhenAccepted(t *testing.T) {
	a := startAPI(t)
	a.must(200, "PUT", "/v1/kv/big", bytes.Repeat([]byte("x"), 8000))
	req, _ := http.NewRequest("GET", a.base+"/v1/kv/big", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.Header.Get("Content-Encoding") != "gzip" || resp.Header.Get("Vary") != "Accept-Encoding" {
		t.Fatalf("headers %v", resp.Header)
	}
	zr, err := gzip.NewReader(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	plain, _ := io.ReadAll(zr)
	if !bytes.Contains(plain, []byte(`"Key":"big"`)) {
		t.Fatalf("decompressed body %.80s", plain)
	}
}

func TestRateLimit_Over429PerClient(t *testing.T) {
	a := startAPI(t, func(c *Config) { c.RateLimit, c.RateBurst = 0.001, 3 })
	codes := []int{}
	for range 5 {
		resp, _ := a.do("GET", "/v1/agent/self", nil)
		codes = append(codes, resp.StatusCode)
	}
	if codes[0] != 200 || codes[2] != 200 || codes[3] != 429 || codes[4] != 429 {
		t.Fatalf("statuses %v, want three 200 then 429", codes)
	}
}

func TestRateLimiter_RefillsAndBoundsClients(t *testing.T) {
	l := newRateLimiter(10, 1)
	t0 := time.Unix(0, 0)
	if !l.allow("a", t0) || l.allow("a", t0) {
		t.Fatal("burst of 1 not enforced")
	}
	if !l.allow("a", t0.Add(100*time.Millisecond)) {
		t.Fatal("a token did not refill after 1/rate")
	}
	for i := range maxRateClients + 10 {
		l.allow(strconv.Itoa(i), t0.Add(time.Hour))
	}
	if n := len(l.buckets); n > maxRateClients {
		t.Fatalf("%d buckets kept, bound is %d", n, maxRateClients)
	}
}

func TestStatusOperatorCoordinate_Shapes(t *testing.T) {
	a := startAPI(t)
	if _, b := a.must(200, "GET", "/v1/status/leader", nil); b != `"127.0.0.1:8300"` {
		t.Fatalf("leader = %s", b)
	}
	a.must(400, "DELETE", "/v1/operator/raft/peer", nil)
	a.must(400, "DELETE", "/v1/operator/raft/peer?id=a&address=b", nil)
	a.must(200, "DELETE", "/v1/operator/raft/peer?id=id-1", nil)
	a.must(500, "DELETE", "/v1/operator/raft/peer?address=10.9.9.9:8300", nil)
	for _, m := range []string{"POST", "PUT"} {
		if _, b := a.must(200, m, "/v1/operator/raft/transfer-leader?id=id-2", nil); b != `{"Success":true}` {
			t.Fatalf("%s transfer-leader = %s", m, b)
		}
	}
	a.must(500, "POST", "/v1/operator/raft/transfer-leader?id=nope", nil)
	a.must(405, "GET", "/v1/operator/raft/transfer-leader", nil)
	a.rpc.failWith("Operator.AutopilotServerHealth", nil)
}

func TestHotRead_ServedWithoutRPCUntilTheIndexMoves(t *testing.T) {
	var a *api
	a = startAPI(t, func(c *Config) { c.Local = storeLocal{Store: c.RPC.(*storeRPC).store, leader: true} })
	a.registerService("web", "n1", "passing")
	resp1, first := a.must(200, "GET", "/v1/health/service/web?passing", nil)
	calls := a.rpc.callCount("Health.ServiceNodes")
	resp2, second := a.must(200, "GET", "/v1/health/service/web?passing", nil)
	if a.rpc.callCount("Health.ServiceNodes") != calls || second != first || index(t, resp2) != index(t, resp1) {
		t.Fatalf("repeat read made an RPC (%d -> %d calls) or differs", calls, a.rpc.callCount("Health.ServiceNodes"))
	}
	a.registerService("web", "n2", "passing")
	_, third := a.must(200, "GET", "/v1/health/service/web?passing", nil)
	if a.rpc.callCount("Health.ServiceNodes") != calls+1 || strings.Count(third, `"Service":{`) != 2 {
		t.Fatalf("read after a change: calls %d, body %s", a.rpc.callCount("Health.ServiceNodes"), third)
	}
	a.must(200, "GET", "/v1/health/service/web?passing&consistent", nil)
	if a.rpc.callCount("Health.ServiceNodes") != calls+2 {
		t.Fatal("?consistent must always go through the RPC (it needs a quorum round)")
	}
}

func (a *api) registerService(name, node, status string) {
	a.t.Helper()
	reg := map[string]any{"Node": node, "Address": "10.0.0.1",
		"Service": map[string]any{"Service": name, "Port": 80},
		"Check":   map[string]any{"CheckID": name, "Name": name, "Status": status, "ServiceID": name}}
	body, _ := json.Marshal(reg)
	a.must(200, "PUT", "/v1/catalog/register", body)
}

func TestHotRead_FollowerServesOnlyStaleReadsLocally(t *testing.T) {
	a := startAPI(t, func(c *Config) { c.Local = storeLocal{Store: c.RPC.(*storeRPC).store, leader: false} })
	a.registerService("web", "n1", "passing")
	a.must(200, "GET", "/v1/health/service/web?stale", nil)
	calls := a.rpc.callCount("Health.ServiceNodes")
	resp, _ := a.must(200, "GET", "/v1/health/service/web?stale", nil)
	if a.rpc.callCount("Health.ServiceNodes") != calls {
		t.Fatal("a repeated ?stale read on a follower made an RPC")
	}
	if resp.Header.Get("X-Consul-LastContact") != "42" || resp.Header.Get("X-Consul-Effective-Consistency") != "stale" {
		t.Fatalf("stale meta from the local short cut: %v", resp.Header)
	}
	a.must(200, "GET", "/v1/health/service/web", nil)
	a.must(200, "GET", "/v1/health/service/web?stale&max_stale=10ms", nil)
	if a.rpc.callCount("Health.ServiceNodes") != calls+2 {
		t.Fatal("default reads, and stale reads beyond ?max_stale, must go through the RPC on a follower")
	}
	a.must(200, "GET", "/v1/health/service/web?stale&near=n1", nil)
	a.must(200, "GET", "/v1/health/service/web?stale&near=n1", nil)
	if a.rpc.callCount("Health.ServiceNodes") != calls+4 {
		t.Fatal("?near answers depend on coordinates, not only the index: they must not be cached")
	}
}

func TestSlowClient_HeadersTimeOutAndBodiesAreBounded(t *testing.T) {
	a := startAPI(t, func(c *Config) { c.ReadHeaderTimeout, c.MaxBodyBytes = 200*time.Millisecond, 1024 })
	conn, err := net.Dial("tcp", strings.TrimPrefix(a.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.Write([]byte("GET /v1/agent/self HTTP/1.1\r\nHost: x\r\n")) // never finishes its headers
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadAll(conn); err != nil {
		t.Fatalf("a client stuck in its headers was not disconnected: %v", err)
	}
	resp, body := a.do("PUT", "/v1/catalog/register", bytes.Repeat([]byte(" "), 2048))
	if resp.StatusCode != 413 || !strings.Contains(body, "max size: 1024 bytes") {
		t.Fatalf("oversized JSON body: %d %q", resp.StatusCode, body)
	}
}
