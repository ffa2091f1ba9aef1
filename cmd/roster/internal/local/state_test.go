package local

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"roster/catalog"
)

// clock is a settable time source.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func newState(t *testing.T, dir string, clk *clock) *State {
	t.Helper()
	s, err := New(Config{NodeName: "n1", NodeID: "id-1", Address: "127.0.0.1", Datacenter: "dc1", DataDir: dir, Clock: clk.Now})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

func wantCode(t *testing.T, err error, code int, substr string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want %d %q", code, substr)
	}
	if StatusCode(err) != code || !strings.Contains(err.Error(), substr) {
		t.Fatalf("got %d %q, want %d containing %q", StatusCode(err), err, code, substr)
	}
}

func TestAddService_DefaultsIDsAndNames(t *testing.T) {
	s := newState(t, "", newClock())
	err := s.AddService(ServiceDefinition{Name: "web", Port: 80, Tags: []string{"v1"},
		Checks: []*CheckDefinition{{TTL: Duration(time.Second)}, {TTL: Duration(time.Second), CheckID: "own"}}}, false)
	if err != nil {
		t.Fatal(err)
	}
	svc, hash, ok := s.Service("web")
	if !ok || svc.ID != "web" || svc.Weights != (catalog.Weights{Passing: 1, Warning: 1}) || hash == "" {
		t.Fatalf("service = %+v hash %q ok %v", svc, hash, ok)
	}
	c, ok := s.Check("service:web:1")
	if !ok || c.Name != "Service 'web' check" || c.Status != catalog.HealthCritical || c.ServiceName != "web" || c.Type != TypeTTL {
		t.Fatalf("check 1 = %+v", c)
	}
	if _, ok := s.Check("own"); !ok {
		t.Fatal("explicit CheckID not used")
	}
	// A single check is service:<id>.
	if err := s.AddService(ServiceDefinition{Name: "db", Check: &CheckDefinition{TTL: Duration(time.Second)}}, false); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Check("service:db"); !ok {
		t.Fatal("single check not named service:db")
	}
}

func TestAddService_ValidationErrors(t *testing.T) {
	s := newState(t, "", newClock())
	wantCode(t, s.AddService(ServiceDefinition{}, false), 400, "Missing service name")
	wantCode(t, s.AddService(ServiceDefinition{Name: "x", Check: &CheckDefinition{}}, false), 400, "Invalid check: TTL must be > 0 for TTL checks")
	wantCode(t, s.AddService(ServiceDefinition{Name: "x", Check: &CheckDefinition{HTTP: "http://x"}}, false), 400,
		"Invalid check: Interval must be > 0 for Script, HTTP, H2PING, TCP, UDP or GRPC checks")
	wantCode(t, s.AddService(ServiceDefinition{Name: "x", Meta: map[string]string{"consul-x": "1"}}, false), 400, "Invalid Service Meta: Key prefix 'consul-'")
	wantCode(t, s.AddService(ServiceDefinition{Name: "x", Checks: []*CheckDefinition{{ScriptArgs: []string{"/bin/true"}, Interval: Duration(time.Second)}}}, false), 400, "Scripts are disabled")
	wantCode(t, s.AddCheck(CheckDefinition{TTL: Duration(time.Second)}), 400, "Missing check name")
	wantCode(t, s.AddCheck(CheckDefinition{Name: "c", TTL: Duration(time.Second), ServiceID: "nope"}), 400, `ServiceID "nope" does not exist`)
	wantCode(t, s.RemoveService("nope"), 404, `Unknown service ID "nope"`)
	wantCode(t, s.RemoveCheck("nope"), 404, `Unknown check ID "nope"`)
	wantCode(t, s.UpdateTTL("nope", "passing", ""), 404, `Unknown check ID "nope"`)
	wantCode(t, s.UpdateTTL("nope", "bogus", ""), 400, "Invalid check status")
	if err := s.AddCheck(CheckDefinition{Name: "tcp", TCP: "127.0.0.1:1", Interval: Duration(time.Second)}); err != nil {
		t.Fatal(err)
	}
	wantCode(t, s.UpdateTTL("tcp", "passing", ""), 500, `CheckID "tcp" does not have associated TTL`)
	if len(s.Services()) != 0 {
		t.Fatal("a refused registration left a service behind")
	}
}

func TestAddService_ReplaceExistingChecks(t *testing.T) {
	s := newState(t, "", newClock())
	must(t, s.AddService(ServiceDefinition{Name: "web", Checks: []*CheckDefinition{
		{CheckID: "a", TTL: Duration(time.Second)}, {CheckID: "b", TTL: Duration(time.Second)}}}, false))
	must(t, s.AddService(ServiceDefinition{Name: "web", Check: &CheckDefinition{CheckID: "a", TTL: Duration(time.Second)}}, false))
	if _, ok := s.Check("b"); !ok {
		t.Fatal("re-register without replace dropped check b")
	}
	must(t, s.AddService(ServiceDefinition{Name: "web", Check: &CheckDefinition{CheckID: "a", TTL: Duration(time.Second)}}, true))
	if _, ok := s.Check("b"); ok {
		t.Fatal("replace-existing-checks kept check b")
	}
	must(t, s.RemoveService("web"))
	if len(s.Checks()) != 0 {
		t.Fatalf("checks left after service removal: %v", s.Checks())
	}
}

func TestUpdateTTL_PassThenExpire(t *testing.T) {
	clk := newClock()
	s := newState(t, "", clk)
	must(t, s.AddCheck(CheckDefinition{Name: "ttl", TTL: Duration(10 * time.Second)}))
	ch := s.Changed()
	must(t, s.UpdateTTL("ttl", catalog.HealthPassing, "ok"))
	select {
	case <-ch:
	default:
		t.Fatal("UpdateTTL did not signal a change")
	}
	clk.Advance(9 * time.Second)
	if next := s.ExpireTTLs(clk.Now()); !next.Equal(clk.Now().Add(time.Second)) {
		t.Fatalf("next deadline %v", next)
	}
	if c, _ := s.Check("ttl"); c.Status != catalog.HealthPassing || c.Output != "ok" {
		t.Fatalf("before expiry: %+v", c)
	}
	clk.Advance(time.Second)
	s.ExpireTTLs(clk.Now())
	if c, _ := s.Check("ttl"); c.Status != catalog.HealthCritical || c.Output != "TTL expired" {
		t.Fatalf("after expiry: %+v", c)
	}
}

func TestMaintenance_NodeAndService(t *testing.T) {
	s := newState(t, "", newClock())
	must(t, s.AddService(ServiceDefinition{Name: "web"}, false))
	must(t, s.EnableNodeMaintenance(""))
	c, ok := s.Check(NodeMaintCheckID)
	if !ok || c.Name != "Node Maintenance Mode" || c.Status != catalog.HealthCritical || !strings.Contains(c.Notes, "no reason was provided") {
		t.Fatalf("node maintenance check = %+v", c)
	}
	must(t, s.EnableServiceMaintenance("web", "deploy"))
	c, ok = s.Check("_service_maintenance:web")
	if !ok || c.Name != "Service Maintenance Mode" || c.Notes != "deploy" || c.ServiceID != "web" {
		t.Fatalf("service maintenance check = %+v", c)
	}
	if got := AggregatedStatus(s.ServiceChecks("web")); got != catalog.HealthMaintenance {
		t.Fatalf("aggregated = %s", got)
	}
	wantCode(t, s.EnableServiceMaintenance("nope", ""), 404, "Unknown service ID")
	must(t, s.DisableServiceMaintenance("web"))
	must(t, s.DisableNodeMaintenance())
	if len(s.Checks()) != 0 {
		t.Fatalf("maintenance checks left: %v", s.Checks())
	}
	if got := AggregatedStatus(nil); got != catalog.HealthPassing {
		t.Fatalf("no checks aggregated = %s", got)
	}
}

func TestPersistence_SurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	clk := newClock()
	s := newState(t, dir, clk)
	must(t, s.AddService(ServiceDefinition{ID: "web-1", Name: "web", Port: 8080, Meta: map[string]string{"v": "1"},
		Check: &CheckDefinition{TTL: Duration(time.Minute)}}, false))
	must(t, s.AddService(ServiceDefinition{Name: "gone"}, false))
	must(t, s.RemoveService("gone"))
	must(t, s.UpdateTTL("service:web-1", catalog.HealthPassing, "fine"))
	must(t, s.EnableNodeMaintenance("r"))
	_, hash1, _ := s.Service("web-1")

	s2 := newState(t, dir, clk)
	svc, hash2, ok := s2.Service("web-1")
	if !ok || svc.Port != 8080 || svc.Meta["v"] != "1" || hash1 != hash2 {
		t.Fatalf("reloaded service %+v ok %v hash %s vs %s", svc, ok, hash2, hash1)
	}
	if _, _, ok := s2.Service("gone"); ok {
		t.Fatal("removed service came back")
	}
	c, ok := s2.Check("service:web-1")
	if !ok || c.Status != catalog.HealthPassing || c.Output != "fine" {
		t.Fatalf("reloaded TTL check %+v", c)
	}
	if _, ok := s2.Check(NodeMaintCheckID); !ok {
		t.Fatal("node maintenance not restored")
	}
	// The TTL keeps running across the restart.
	clk.Advance(2 * time.Minute)
	s2.ExpireTTLs(clk.Now())
	if c, _ := s2.Check("service:web-1"); c.Status != catalog.HealthCritical {
		t.Fatalf("TTL did not expire after restart: %+v", c)
	}
}

func TestReapCritical_AfterDeregisterInterval(t *testing.T) {
	clk := newClock()
	s := newState(t, "", clk)
	must(t, s.AddService(ServiceDefinition{Name: "web", Check: &CheckDefinition{TTL: Duration(time.Hour),
		DeregisterCriticalServiceAfter: Duration(time.Second)}}, false)) // raised to 1m
	clk.Advance(59 * time.Second)
	if got := s.ReapCritical(clk.Now()); len(got) != 0 {
		t.Fatalf("reaped too early: %v", got)
	}
	clk.Advance(2 * time.Second)
	if got := s.ReapCritical(clk.Now()); len(got) != 1 || got[0] != "web" {
		t.Fatalf("reaped %v", got)
	}
}

func TestDuration_DecodesStringsAndNanos(t *testing.T) {
	var d struct{ A, B, C Duration }
	if err := json.Unmarshal([]byte(`{"A":"10s","B":1000000000,"C":""}`), &d); err != nil {
		t.Fatal(err)
	}
	if d.A != Duration(10*time.Second) || d.B != Duration(time.Second) || d.C != 0 {
		t.Fatalf("%+v", d)
	}
	if err := json.Unmarshal([]byte(`{"A":"ten"}`), &d); err == nil {
		t.Fatal("bad duration accepted")
	}
}

func TestOutputOnlyChange_Deferred(t *testing.T) {
	clk := newClock()
	s, err := New(Config{NodeName: "n1", Address: "a", Clock: clk.Now, CheckUpdateInterval: time.Minute})
	must(t, err)
	must(t, s.AddCheck(CheckDefinition{Name: "c", TTL: Duration(time.Hour)}))
	for _, op := range s.pendingOps() {
		s.markSynced(op)
	}
	s.UpdateCheck("c", catalog.HealthCritical, "new output")
	if ops := s.pendingOps(); len(ops) != 0 {
		t.Fatalf("output-only change synced at once: %+v", ops)
	}
	clk.Advance(time.Minute)
	s.flushDeferred(clk.Now())
	if ops := s.pendingOps(); len(ops) != 1 || ops[0].register.Checks[0].Output != "new output" {
		t.Fatalf("deferred output not synced: %+v", ops)
	}
	s.UpdateCheck("c", catalog.HealthPassing, "new output")
	if ops := s.pendingOps(); len(ops) != 1 {
		t.Fatalf("status change not pending: %+v", ops)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestEvents_RegistrationAndStatusChanges(t *testing.T) {
	s := newState(t, "", newClock())
	obs := s.Subscribe(16)
	defer obs.Close()
	must(t, s.AddService(ServiceDefinition{Name: "web", Check: &CheckDefinition{TTL: Duration(time.Minute)}}, false))
	must(t, s.UpdateTTL("service:web", catalog.HealthPassing, "a"))
	must(t, s.UpdateTTL("service:web", catalog.HealthPassing, "b")) // output only: no status event
	must(t, s.RemoveService("web"))
	var kinds []EventKind
	for len(obs.C) > 0 {
		kinds = append(kinds, (<-obs.C).Kind)
	}
	want := []EventKind{EventServiceRegistered, EventCheckStatus, EventServiceDeregistered}
	if !slices.Equal(kinds, want) {
		t.Fatalf("events %v, want %v", kinds, want)
	}
}

func TestError_HTTPStatusThroughInterface(t *testing.T) {
	s := newState(t, "", newClock())
	err := fmt.Errorf("wrapped: %w", s.RemoveCheck("x"))
	var coded interface{ HTTPStatus() int }
	if !errors.As(err, &coded) || coded.HTTPStatus() != 404 {
		t.Fatalf("%v does not carry 404", err)
	}
}
