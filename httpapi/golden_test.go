package httpapi

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"roster/catalog"
	"roster/internal/testkit"
)

// goldenFixture fills a backend with one of everything, at fixed indexes
// and IDs, so responses are byte-for-byte reproducible.
func goldenFixture(b *storeRPC) {
	b.apply(&catalog.RegisterRequest{
		Node: catalog.Node{ID: "2b3c1a4e-0000-4000-8000-000000000001", Node: "n1", Address: "10.0.0.1", Datacenter: "dc1",
			TaggedAddresses: map[string]string{"lan": "10.0.0.1", "wan": "10.0.0.1"}, Meta: map[string]string{"consul-network-segment": ""}},
		Checks: []catalog.HealthCheck{{CheckID: "serfHealth", Name: "Serf Health Status", Status: "passing", Output: "Agent alive and reachable"}},
	})
	b.apply(&catalog.RegisterRequest{
		Node:    catalog.Node{ID: "2b3c1a4e-0000-4000-8000-000000000001", Node: "n1", Address: "10.0.0.1", Datacenter: "dc1", TaggedAddresses: map[string]string{"lan": "10.0.0.1", "wan": "10.0.0.1"}, Meta: map[string]string{"consul-network-segment": ""}},
		Service: &catalog.NodeService{ID: "web-1", Service: "web", Tags: []string{"v1"}, Port: 8080, Meta: map[string]string{"version": "1"}, Weights: catalog.Weights{Passing: 1, Warning: 1}},
		Checks: []catalog.HealthCheck{{CheckID: "service:web-1", Name: "Service 'web' check", Status: "passing", ServiceID: "web-1", ServiceName: "web",
			ServiceTags: []string{"v1"}, Type: "ttl", Definition: catalog.HealthCheckDefinition{Interval: "10s"}}},
	})
	b.apply(&catalog.KVRequest{Verb: catalog.KVSet, Key: "config/app", Value: []byte("hello"), Flags: 7})
	b.apply(&catalog.SessionRequest{Verb: catalog.SessionCreate, Session: catalog.SessionEntry{
		ID: "5f0c9a3e-0000-4000-8000-00000000000a", Name: "lock", Node: "n1", LockDelay: 15 * time.Second,
		Behavior: catalog.SessionRelease, TTL: "30s", NodeChecks: []string{"serfHealth"}}})
	b.apply(&catalog.CoordinateBatchRequest{Updates: []catalog.CoordinateEntry{{Node: "n1",
		Coord: catalog.Coordinate{Vec: make([]float64, 8), Error: 1.5, Height: 1e-05}}}})
}

// TestGolden_ResponseShapes pins the JSON each endpoint answers: field
// names, nesting, empty values ([] vs null) and types, as Consul's clients
// decode them. Run with -rewrite after an intended change and review the
// diff.
func TestGolden_ResponseShapes(t *testing.T) {
	a := startAPI(t)
	goldenFixture(a.rpc)
	cases := []struct{ name, method, path string }{
		{"kv_get", "GET", "/v1/kv/config/app"},
		{"kv_recurse", "GET", "/v1/kv/config?recurse"},
		{"kv_keys", "GET", "/v1/kv/?keys&separator=/"},
		{"catalog_nodes", "GET", "/v1/catalog/nodes"},
		{"catalog_services", "GET", "/v1/catalog/services"},
		{"catalog_service", "GET", "/v1/catalog/service/web"},
		{"catalog_service_empty", "GET", "/v1/catalog/service/nope"},
		{"catalog_node", "GET", "/v1/catalog/node/n1"},
		{"catalog_node_unknown", "GET", "/v1/catalog/node/nope"},
		{"catalog_node_services", "GET", "/v1/catalog/node-services/n1"},
		{"catalog_datacenters", "GET", "/v1/catalog/datacenters"},
		{"health_node", "GET", "/v1/health/node/n1"},
		{"health_checks", "GET", "/v1/health/checks/web"},
		{"health_service", "GET", "/v1/health/service/web?passing"},
		{"health_state", "GET", "/v1/health/state/any"},
		{"session_info", "GET", "/v1/session/info/5f0c9a3e-0000-4000-8000-00000000000a"},
		{"session_list", "GET", "/v1/session/list"},
		{"session_node", "GET", "/v1/session/node/n1"},
		{"status_leader", "GET", "/v1/status/leader"},
		{"status_peers", "GET", "/v1/status/peers"},
		{"raft_configuration", "GET", "/v1/operator/raft/configuration"},
		{"autopilot_health", "GET", "/v1/operator/autopilot/health"},
		{"coordinate_datacenters", "GET", "/v1/coordinate/datacenters"},
		{"coordinate_nodes", "GET", "/v1/coordinate/nodes"},
		{"roster_registry", "GET", "/v1/roster/registry"},
		{"roster_delta", "GET", "/v1/roster/registry/delta?since=1"},
		{"agent_members", "GET", "/v1/agent/members"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, body := a.do(c.method, c.path, nil)
			if resp.StatusCode != 200 {
				t.Fatalf("%s %s: %d %s", c.method, c.path, resp.StatusCode, body)
			}
			checkGolden(t, c.name, []byte(body))
		})
	}
}

func checkGolden(t *testing.T, name string, body []byte) {
	t.Helper()
	var got bytes.Buffer
	if err := json.Indent(&got, body, "", "  "); err != nil {
		t.Fatalf("response is not JSON: %v\n%s", err, body)
	}
	got.WriteByte('\n')
	testkit.Golden(t, filepath.Join("testdata", "golden", name+".json"), got.Bytes())
}

// TestGolden_AgentServiceShapes pins the agent's view of its own services.
// Consul's AgentService tags CreateIndex and ModifyIndex omitempty and the
// agent's local entries have none, so they are absent here (unlike in the
// catalog and health answers above); unset weights read {1,1}.
func TestGolden_AgentServiceShapes(t *testing.T) {
	a, _ := startLocalAPI(t)
	a.must(200, "PUT", "/v1/agent/service/register", []byte(`{"ID":"web-1","Name":"web","Port":8080,"Check":{"TTL":"10s"}}`))
	a.must(200, "PUT", "/v1/agent/check/pass/service:web-1", nil)
	for _, c := range []struct{ name, path string }{
		{"agent_services", "/v1/agent/services"},
		{"agent_service", "/v1/agent/service/web-1"},
		{"agent_health_service_id", "/v1/agent/health/service/id/web-1?format=json"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, body := a.must(200, "GET", c.path, nil)
			checkGolden(t, c.name, []byte(body))
		})
	}
}
