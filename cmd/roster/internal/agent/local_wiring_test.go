package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"roster/cmd/roster/internal/local"
	"roster/internal/testkit"
)

// agentHTTP is a tiny client for one agent's HTTP API.
type agentHTTP struct {
	t    *testing.T
	base string
}

func (c agentHTTP) do(method, path string, body any) (int, []byte) {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			c.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

func (c agentHTTP) mustPut(path string, body any) {
	c.t.Helper()
	if code, out := c.do("PUT", path, body); code != 200 {
		c.t.Fatalf("PUT %s = %d %s", path, code, out)
	}
}

// passingNodes returns the nodes /v1/health/service/<name>?passing lists.
func (c agentHTTP) passingNodes(name string) ([]string, error) {
	code, out := c.do("GET", "/v1/health/service/"+name+"?passing", nil)
	if code != 200 {
		return nil, fmt.Errorf("health = %d %s", code, out)
	}
	var entries []struct{ Node struct{ Node string } }
	if err := json.Unmarshal(out, &entries); err != nil {
		return nil, err
	}
	var nodes []string
	for _, e := range entries {
		nodes = append(nodes, e.Node.Node)
	}
	return nodes, nil
}

func localTestConfig(t *testing.T) Config {
	cfg := testConfig(t)
	cfg.Local.SyncRetryInterval = 200 * time.Millisecond
	return cfg
}

// A TTL check registered with the service over /v1/agent/service/register
// reaches the catalog through anti-entropy: passing after /pass, gone from
// ?passing after /fail.
func TestAgentLocal_TTLCheckStatusReachesCatalog(t *testing.T) {
	a := startAgent(t, localTestConfig(t))
	c := agentHTTP{t: t, base: "http://" + a.HTTPAddrs()[0]}
	c.mustPut("/v1/agent/service/register", map[string]any{
		"Name": "web", "Port": 8080, "Check": map[string]any{"TTL": "30s"},
	})
	c.mustPut("/v1/agent/check/pass/service:web?note=ok", nil)
	testkit.WaitFor(t, 15*time.Second, "web passing in the catalog", func() error {
		nodes, err := c.passingNodes("web")
		if err != nil {
			return err
		}
		if len(nodes) != 1 || nodes[0] != "test-node" {
			return fmt.Errorf("passing nodes = %v", nodes)
		}
		return nil
	})
	c.mustPut("/v1/agent/check/fail/service:web?note=down", nil)
	testkit.WaitFor(t, 15*time.Second, "web gone from ?passing", func() error {
		nodes, err := c.passingNodes("web")
		if err != nil {
			return err
		}
		if len(nodes) != 0 {
			return fmt.Errorf("passing nodes = %v", nodes)
		}
		return nil
	})
	code, out := c.do("GET", "/v1/agent/health/service/name/web", nil)
	if code != http.StatusServiceUnavailable {
		t.Fatalf("agent health of a failing service = %d %s, want 503", code, out)
	}
}

// An HTTP check against a live server passes, then turns critical in the
// catalog once the server stops.
func TestAgentLocal_HTTPCheckTurnsCriticalWhenTargetStops(t *testing.T) {
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "fine") }))
	defer target.Close()
	a := startAgent(t, localTestConfig(t))
	c := agentHTTP{t: t, base: "http://" + a.HTTPAddrs()[0]}
	c.mustPut("/v1/agent/service/register", map[string]any{
		"Name": "api", "Port": 9090,
		"Check": map[string]any{"HTTP": target.URL, "Interval": "1s", "Timeout": "1s"},
	})
	testkit.WaitFor(t, 15*time.Second, "api passing in the catalog", func() error {
		nodes, err := c.passingNodes("api")
		if err != nil || len(nodes) != 1 {
			return fmt.Errorf("passing nodes = %v, err %v", nodes, err)
		}
		return nil
	})
	target.Close()
	testkit.WaitFor(t, 15*time.Second, "api critical in the catalog", func() error {
		code, out := c.do("GET", "/v1/health/checks/api", nil)
		var checks []struct{ Status string }
		if err := json.Unmarshal(out, &checks); err != nil || code != 200 {
			return fmt.Errorf("checks = %d %s", code, out)
		}
		if len(checks) != 1 || checks[0].Status != "critical" {
			return fmt.Errorf("checks = %s", out)
		}
		return nil
	})
}

// Services from the config files are registered at start and synced;
// deleting the node's service from the catalog behind the agent's back is
// repaired by the next full sync.
func TestAgentLocal_ConfigServicesSyncAndDriftIsRepaired(t *testing.T) {
	cfg := localTestConfig(t)
	def, err := local.DecodeServiceDefinition([]byte(`{"name":"db","port":5432,"tags":["primary"]}`))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Local.Services = []local.ServiceDefinition{def}
	a := startAgent(t, cfg)
	c := agentHTTP{t: t, base: "http://" + a.HTTPAddrs()[0]}
	inCatalog := func() error {
		code, out := c.do("GET", "/v1/catalog/service/db", nil)
		var svcs []struct{ ServiceID string }
		if err := json.Unmarshal(out, &svcs); err != nil || code != 200 || len(svcs) != 1 {
			return fmt.Errorf("catalog = %d %s", code, out)
		}
		return nil
	}
	testkit.WaitFor(t, 15*time.Second, "db in the catalog", inCatalog)
	c.mustPut("/v1/catalog/deregister", map[string]any{"Node": "test-node", "ServiceID": "db"})
	ctx, cancel := contextWithTimeout(10 * time.Second)
	defer cancel()
	if err := a.SyncNow(ctx); err != nil {
		t.Fatalf("full sync: %v", err)
	}
	if err := inCatalog(); err != nil {
		t.Fatalf("after a full sync: %v", err)
	}
}

func contextWithTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}

// A client agent's registrations reach the servers' catalog through its
// forwarded RPCs, survive a restart from its data dir, and are repaired
// after its node is deleted from the catalog behind its back.
func TestAgentLocal_ClientSyncsThroughServersAndRestoresFromDataDir(t *testing.T) {
	tc := newTestCluster(t, 1)
	tc.startAll()
	tc.leader(10 * time.Second)
	ccfg := tc.clientConfig("c1")
	ccfg.Local.SyncRetryInterval = 200 * time.Millisecond
	ci := tc.add(ccfg)
	client := agentHTTP{t: t, base: "http://" + tc.agents[ci].HTTPAddrs()[0]}
	server := agentHTTP{t: t, base: "http://" + tc.agents[0].HTTPAddrs()[0]}
	client.mustPut("/v1/agent/service/register", map[string]any{
		"ID": "api1", "Name": "api", "Port": 7000, "Check": map[string]any{"TTL": "1m", "Status": "passing"},
	})
	onServer := func() error {
		nodes, err := server.passingNodes("api")
		if err != nil {
			return err
		}
		if len(nodes) != 1 || nodes[0] != "c1" {
			return fmt.Errorf("passing api nodes on the server = %v", nodes)
		}
		return nil
	}
	testkit.WaitFor(t, 20*time.Second, "api on c1 passing through the server", onServer)

	tc.kill(ci)
	tc.start(ci)
	client.base = "http://" + tc.agents[ci].HTTPAddrs()[0]
	code, out := client.do("GET", "/v1/agent/service/api1", nil)
	if code != 200 {
		t.Fatalf("after restart the client lost its service: %d %s", code, out)
	}
	code, out = client.do("GET", "/v1/agent/checks", nil)
	var checks map[string]struct{ Status string }
	if err := json.Unmarshal(out, &checks); err != nil || code != 200 || checks["service:api1"].Status != "passing" {
		t.Fatalf("after restart checks = %d %s", code, out)
	}

	server.mustPut("/v1/catalog/deregister", map[string]any{"Node": "c1"})
	ctx, cancel := contextWithTimeout(20 * time.Second)
	defer cancel()
	testkit.WaitFor(t, 20*time.Second, "c1's service re-registered by anti-entropy", func() error {
		if err := tc.agents[ci].SyncNow(ctx); err != nil {
			return err
		}
		return onServer()
	})
}

// A client started before any server keeps its registrations and syncs
// them as soon as a server appears in its LAN pool, not at the next retry
// (set to a minute here).
func TestAgentLocal_ClientStartedBeforeServersSyncsWhenOneAppears(t *testing.T) {
	tc := newTestCluster(t, 1)
	tc.agents = make([]*Agent, 1)
	ccfg := tc.clientConfig("early")
	ccfg.Local.SyncRetryInterval = time.Minute
	// The server, on a port not bound yet, joins the client: either way
	// round it appears in the client's LAN pool.
	ccfg.RetryJoin = nil
	ci := tc.add(ccfg)
	client := agentHTTP{t: t, base: "http://" + tc.agents[ci].HTTPAddrs()[0]}
	client.mustPut("/v1/agent/service/register", map[string]any{"Name": "early-svc", "Port": 1})
	tc.cfgs[0].RetryJoin = []string{lanOf(ci)}
	tc.start(0) // single-server cluster: elects itself
	server := agentHTTP{t: t, base: "http://" + tc.agents[0].HTTPAddrs()[0]}
	testkit.WaitFor(t, 20*time.Second, "early-svc in the catalog", func() error {
		nodes, err := server.passingNodes("early-svc")
		if err != nil {
			return err
		}
		if len(nodes) != 1 || nodes[0] != "early" {
			return fmt.Errorf("nodes = %v", nodes)
		}
		return nil
	})
}

// PUT /v1/agent/reload makes the re-read config services the current set
// and leaves HTTP registrations alone.
func TestAgentLocal_ReloadReplacesConfigServicesKeepsHTTPOnes(t *testing.T) {
	decode := func(js string) local.ServiceDefinition {
		def, err := local.DecodeServiceDefinition([]byte(js))
		if err != nil {
			t.Fatal(err)
		}
		return def
	}
	cfg := localTestConfig(t)
	cfg.Local.Services = []local.ServiceDefinition{decode(`{"name":"old"}`)}
	next := []local.ServiceDefinition{decode(`{"name":"new"}`)}
	cfg.Local.Reload = func() ([]local.ServiceDefinition, []local.CheckDefinition, error) { return next, nil, nil }
	a := startAgent(t, cfg)
	c := agentHTTP{t: t, base: "http://" + a.HTTPAddrs()[0]}
	c.mustPut("/v1/agent/service/register", map[string]any{"Name": "api"})
	c.mustPut("/v1/agent/reload", nil)
	_, out := c.do("GET", "/v1/agent/services", nil)
	var svcs map[string]any
	if err := json.Unmarshal(out, &svcs); err != nil {
		t.Fatal(err)
	}
	if len(svcs) != 2 || svcs["new"] == nil || svcs["api"] == nil {
		t.Fatalf("after reload services = %s, want new and api", out)
	}
}
