package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"roster/catalog"
)

// codedErr is an error carrying its HTTP status, as the agent's local
// state errors do.
type codedErr struct {
	code int
	msg  string
}

func (e *codedErr) Error() string   { return e.msg }
func (e *codedErr) HTTPStatus() int { return e.code }

// fakeLocal is an in-memory LocalState: a service's content hash is its
// revision, and TTL updates are allowed on every check.
type fakeLocal struct {
	mu       sync.Mutex // guards everything below
	services map[string]catalog.NodeService
	revs     map[string]int
	checks   map[string]catalog.HealthCheck
	changed  chan struct{}
	replace  bool // the last registration's replace-existing-checks
}

func newFakeLocal() *fakeLocal {
	return &fakeLocal{services: map[string]catalog.NodeService{}, revs: map[string]int{},
		checks: map[string]catalog.HealthCheck{}, changed: make(chan struct{})}
}

func (f *fakeLocal) touchLocked() {
	close(f.changed)
	f.changed = make(chan struct{})
}

func (f *fakeLocal) Services() map[string]catalog.NodeService {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]catalog.NodeService{}
	for id, s := range f.services {
		out[id] = s.Clone()
	}
	return out
}

func (f *fakeLocal) Service(id string) (catalog.NodeService, string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.services[id]
	return s.Clone(), fmt.Sprintf("h%d", f.revs[id]), ok
}

func (f *fakeLocal) WaitServiceHash(ctx context.Context, id, hash string) (catalog.NodeService, string, bool) {
	for {
		f.mu.Lock()
		changed := f.changed
		f.mu.Unlock()
		svc, h, ok := f.Service(id)
		if h != hash {
			return svc, h, ok
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return svc, h, ok
		}
	}
}

func (f *fakeLocal) Checks() map[string]catalog.HealthCheck {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]catalog.HealthCheck{}
	for id, c := range f.checks {
		out[id] = c.Clone()
	}
	return out
}

func (f *fakeLocal) RegisterServiceJSON(body []byte, replace bool) error {
	var def struct {
		ID, Name string
		Port     int
		Tags     []string
		Check    *struct{ TTL string }
	}
	if err := json.Unmarshal(body, &def); err != nil {
		return &codedErr{400, "Request decode failed: " + err.Error()}
	}
	if def.Name == "" {
		return &codedErr{400, "Missing service name"}
	}
	if def.ID == "" {
		def.ID = def.Name
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.replace = replace
	f.services[def.ID] = catalog.NodeService{ID: def.ID, Service: def.Name, Port: def.Port, Tags: def.Tags}
	f.revs[def.ID]++
	if def.Check != nil {
		id := "service:" + def.ID
		f.checks[id] = catalog.HealthCheck{Node: "n1", CheckID: id, Name: "Service '" + def.Name + "' check",
			Status: catalog.HealthCritical, ServiceID: def.ID, ServiceName: def.Name, Type: "ttl"}
	}
	f.touchLocked()
	return nil
}

func (f *fakeLocal) RegisterCheckJSON(body []byte) error {
	var def struct{ ID, Name, ServiceID, Status string }
	if err := json.Unmarshal(body, &def); err != nil {
		return &codedErr{400, "Request decode failed: " + err.Error()}
	}
	if def.Name == "" {
		return &codedErr{400, "Missing check name"}
	}
	if def.ID == "" {
		def.ID = def.Name
	}
	if def.Status == "" {
		def.Status = catalog.HealthCritical
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.checks[def.ID] = catalog.HealthCheck{Node: "n1", CheckID: def.ID, Name: def.Name, Status: def.Status, ServiceID: def.ServiceID}
	f.touchLocked()
	return nil
}

func (f *fakeLocal) RemoveService(id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.services[id]; !ok {
		return &codedErr{404, fmt.Sprintf("Unknown service ID %q", id)}
	}
	delete(f.services, id)
	for cid, c := range f.checks {
		if c.ServiceID == id {
			delete(f.checks, cid)
		}
	}
	f.touchLocked()
	return nil
}

func (f *fakeLocal) RemoveCheck(id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.checks[id]; !ok {
		return &codedErr{404, fmt.Sprintf("Unknown check ID %q", id)}
	}
	delete(f.checks, id)
	f.touchLocked()
	return nil
}

func (f *fakeLocal) UpdateTTL(id, status, output string) error {
	switch status {
	case catalog.HealthPassing, catalog.HealthWarning, catalog.HealthCritical:
	default:
		return &codedErr{400, "Invalid check status: '" + status + "'"}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.checks[id]
	if !ok {
		return &codedErr{404, fmt.Sprintf("Unknown check ID %q", id)}
	}
	c.Status, c.Output = status, output
	f.checks[id] = c
	f.touchLocked()
	return nil
}

func (f *fakeLocal) EnableNodeMaintenance(reason string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.checks[nodeMaintCheckID] = catalog.HealthCheck{CheckID: nodeMaintCheckID, Status: catalog.HealthCritical, Notes: reason}
	return nil
}

func (f *fakeLocal) DisableNodeMaintenance() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.checks, nodeMaintCheckID)
	return nil
}

func (f *fakeLocal) EnableServiceMaintenance(id, reason string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.services[id]; !ok {
		return &codedErr{404, fmt.Sprintf("Unknown service ID %q", id)}
	}
	cid := serviceMaintCheckPrefix + id
	f.checks[cid] = catalog.HealthCheck{CheckID: cid, ServiceID: id, Status: catalog.HealthCritical, Notes: reason}
	return nil
}

func (f *fakeLocal) DisableServiceMaintenance(id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.services[id]; !ok {
		return &codedErr{404, fmt.Sprintf("Unknown service ID %q", id)}
	}
	delete(f.checks, serviceMaintCheckPrefix+id)
	return nil
}

func startLocalAPI(t *testing.T) (*api, *fakeLocal) {
	fl := newFakeLocal()
	return startAPI(t, func(c *Config) { c.LocalState = fl }), fl
}

func TestAgentLocal_RegisterListAndDeregisterServices(t *testing.T) {
	a, fl := startLocalAPI(t)
	if _, b := a.must(200, "GET", "/v1/agent/services", nil); strings.TrimSpace(b) != "{}" {
		t.Fatalf("no services = %s, want {}", b)
	}
	a.must(200, "PUT", "/v1/agent/service/register?replace-existing-checks", []byte(`{"Name":"web","Port":80,"Tags":["a"]}`))
	a.must(200, "PUT", "/v1/agent/service/register", []byte(`{"ID":"db1","Name":"db","Port":5432}`))
	if fl.replace {
		t.Fatal("replace-existing-checks leaked into the next registration")
	}
	_, b := a.must(200, "GET", "/v1/agent/services", nil)
	var svcs map[string]map[string]any
	if err := json.Unmarshal([]byte(b), &svcs); err != nil {
		t.Fatal(err)
	}
	if len(svcs) != 2 || svcs["web"]["Service"] != "web" || svcs["db1"]["Port"] != float64(5432) || svcs["web"]["ContentHash"] == "" {
		t.Fatalf("services = %s", b)
	}
	_, b = a.must(200, "GET", `/v1/agent/services?filter=`+urlQueryEscape(`Service == "db"`), nil)
	svcs = nil
	if err := json.Unmarshal([]byte(b), &svcs); err != nil || len(svcs) != 1 || svcs["db1"] == nil {
		t.Fatalf("filtered services = %s", b)
	}
	a.must(400, "GET", "/v1/agent/services?filter="+urlQueryEscape("Nope == 1"), nil)
	a.must(400, "PUT", "/v1/agent/service/register", []byte(`{"Port":1}`))
	a.must(400, "PUT", "/v1/agent/service/register", []byte(`{`))
	a.must(200, "PUT", "/v1/agent/service/deregister/db1", nil)
	a.must(404, "PUT", "/v1/agent/service/deregister/db1", nil)
	a.must(405, "GET", "/v1/agent/service/register", nil)
	a.must(500, "PUT", "/v1/agent/reload", nil) // the fake cannot reload
}

func TestAgentLocal_ServiceHashBlockingWakesOnChange(t *testing.T) {
	a, _ := startLocalAPI(t)
	a.must(404, "GET", "/v1/agent/service/web", nil)
	a.must(200, "PUT", "/v1/agent/service/register", []byte(`{"Name":"web","Port":80}`))
	resp, b := a.must(200, "GET", "/v1/agent/service/web", nil)
	hash := resp.Header.Get("X-Consul-ContentHash")
	if hash == "" || !strings.Contains(b, `"ContentHash":"`+hash+`"`) {
		t.Fatalf("hash header %q, body %s", hash, b)
	}
	// An unchanged hash blocks until ?wait= runs out and returns the same.
	resp, _ = a.must(200, "GET", "/v1/agent/service/web?hash="+hash+"&wait=50ms", nil)
	if resp.Header.Get("X-Consul-ContentHash") != hash {
		t.Fatal("a timed-out hash wait changed the hash")
	}
	done := make(chan string, 1)
	go func() {
		resp, _ := a.do("GET", "/v1/agent/service/web?hash="+hash+"&wait=20s", nil)
		done <- resp.Header.Get("X-Consul-ContentHash")
	}()
	a.must(200, "PUT", "/v1/agent/service/register", []byte(`{"Name":"web","Port":81}`))
	select {
	case h := <-done:
		if h == hash || h == "" {
			t.Fatalf("woken with hash %q, want a new one (old %q)", h, hash)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("hash-blocking read did not wake on the change")
	}
	a.must(400, "GET", "/v1/agent/service/web?hash=x&wait=soon", nil)
}

func TestAgentLocal_ChecksTTLUpdatesAndErrors(t *testing.T) {
	a, _ := startLocalAPI(t)
	a.must(200, "PUT", "/v1/agent/service/register", []byte(`{"Name":"web","Check":{"TTL":"10s"}}`))
	a.must(200, "PUT", "/v1/agent/check/register", []byte(`{"Name":"disk","Status":"passing"}`))
	a.must(400, "PUT", "/v1/agent/check/register", []byte(`{"ID":"x"}`))
	a.must(200, "PUT", "/v1/agent/check/warn/service:web?note=slow", nil)
	checks := func() map[string]catalog.HealthCheck {
		_, b := a.must(200, "GET", "/v1/agent/checks", nil)
		var out map[string]catalog.HealthCheck
		if err := json.Unmarshal([]byte(b), &out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	if c := checks()["service:web"]; c.Status != "warning" || c.Output != "slow" {
		t.Fatalf("after warn: %+v", c)
	}
	a.must(200, "PUT", "/v1/agent/check/update/service:web", []byte(`{"Status":"passing","Output":"fine"}`))
	if c := checks()["service:web"]; c.Status != "passing" || c.Output != "fine" {
		t.Fatalf("after update: %+v", c)
	}
	_, b := a.must(400, "PUT", "/v1/agent/check/update/service:web", []byte(`{"Status":"great"}`))
	if !strings.Contains(b, "Invalid check status") {
		t.Fatalf("bad status body %q", b)
	}
	a.must(404, "PUT", "/v1/agent/check/pass/nope", nil)
	_, b = a.must(200, "GET", "/v1/agent/checks?filter="+urlQueryEscape(`Status == "passing"`), nil)
	if !strings.Contains(b, "disk") || !strings.Contains(b, "service:web") {
		t.Fatalf("filtered checks = %s", b)
	}
	a.must(200, "PUT", "/v1/agent/check/deregister/disk", nil)
	a.must(404, "PUT", "/v1/agent/check/deregister/disk", nil)
	if _, ok := checks()["disk"]; ok {
		t.Fatal("deregistered check still listed")
	}
}

func TestAgentLocal_HealthStatusCodesAndMaintenance(t *testing.T) {
	a, _ := startLocalAPI(t)
	a.must(404, "GET", "/v1/agent/health/service/id/web", nil)
	a.mustText(404, "/v1/agent/health/service/name/web?format=text", "ServiceName web Not Found")
	a.must(200, "PUT", "/v1/agent/service/register", []byte(`{"ID":"web1","Name":"web","Check":{"TTL":"10s"}}`))
	a.must(200, "PUT", "/v1/agent/service/register", []byte(`{"ID":"web2","Name":"web"}`))
	a.mustText(503, "/v1/agent/health/service/id/web1?format=text", "critical")
	a.must(200, "GET", "/v1/agent/health/service/id/web2", nil)
	a.must(503, "GET", "/v1/agent/health/service/name/web", nil) // worst of both
	a.must(200, "PUT", "/v1/agent/check/warn/service:web1", nil)
	_, b := a.must(429, "GET", "/v1/agent/health/service/name/web", nil)
	var infos []AgentServiceChecksInfo
	if err := json.Unmarshal([]byte(b), &infos); err != nil || len(infos) != 2 ||
		infos[0].AggregatedStatus != "warning" || infos[1].AggregatedStatus != "passing" {
		t.Fatalf("by name = %s", b)
	}
	a.must(400, "PUT", "/v1/agent/service/maintenance/web2", nil)
	a.must(400, "PUT", "/v1/agent/service/maintenance/web2?enable=maybe", nil)
	a.must(404, "PUT", "/v1/agent/service/maintenance/nope?enable=true", nil)
	a.must(200, "PUT", "/v1/agent/service/maintenance/web2?enable=true&reason=deploy", nil)
	a.mustText(503, "/v1/agent/health/service/id/web2?format=text", "maintenance")
	a.must(200, "PUT", "/v1/agent/service/maintenance/web2?enable=false", nil)
	a.must(200, "PUT", "/v1/agent/check/pass/service:web1", nil)
	a.must(200, "GET", "/v1/agent/health/service/name/web", nil)
	a.must(200, "PUT", "/v1/agent/maintenance?enable=true", nil)
	a.mustText(503, "/v1/agent/health/service/id/web2?format=text", "maintenance")
	a.must(400, "PUT", "/v1/agent/maintenance", nil)
	a.must(200, "PUT", "/v1/agent/maintenance?enable=false", nil)
	a.must(200, "GET", "/v1/agent/health/service/id/web2", nil)
}

func TestAgentLocal_WithoutLocalStateIs500AndHostAnswers(t *testing.T) {
	a := startAPI(t)
	a.must(http.StatusInternalServerError, "GET", "/v1/agent/services", nil)
	a.must(http.StatusInternalServerError, "PUT", "/v1/agent/check/pass/x", nil)
	_, b := a.must(200, "GET", "/v1/agent/host", nil)
	var host map[string]any
	if err := json.Unmarshal([]byte(b), &host); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"Memory", "CPU", "Host", "CollectionTime"} {
		if _, ok := host[k]; !ok {
			t.Fatalf("host lacks %s: %s", k, b)
		}
	}
}

// mustText GETs path and checks the status code and the text body (the
// ?format=text answers of the agent health endpoints).
func (a *api) mustText(code int, path, want string) {
	a.t.Helper()
	if _, b := a.must(code, "GET", path, nil); b != want {
		a.t.Fatalf("GET %s = %q, want %q", path, b, want)
	}
}

func urlQueryEscape(s string) string {
	r := strings.NewReplacer(" ", "%20", `"`, "%22", "=", "%3D")
	return r.Replace(s)
}

// Bad input found by a local-state handler itself keeps its 400: it must
// not be mistaken for a LocalState error without a status (500).
func TestAgentLocal_BadInputIs400(t *testing.T) {
	a, _ := startLocalAPI(t)
	a.must(400, "PUT", "/v1/agent/service/register?replace-existing-checks=maybe", []byte(`{"Name":"web"}`))
	a.must(400, "PUT", "/v1/agent/check/update/x", []byte(`{not json`))
	a.must(400, "PUT", "/v1/agent/service/deregister/", nil)
}
