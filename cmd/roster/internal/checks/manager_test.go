package checks

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"roster/catalog"
	"roster/cmd/roster/internal/local"
	"roster/internal/testkit"
)

type clock struct {
	mu  sync.Mutex
	now time.Time
}

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

// startManager runs a Manager over a fresh State until the test ends.
func startManager(t *testing.T, clk func() time.Time, cfg Config) *local.State {
	t.Helper()
	st, err := local.New(local.Config{NodeName: "n1", Address: "127.0.0.1", Clock: clk, EnableScriptChecks: cfg.EnableScriptChecks})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Clock = clk
	cfg.Rand = testkit.Rand(t)
	m, err := New(st, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); m.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return st
}

func waitCheck(t *testing.T, st *local.State, id, status, outputHas string) {
	t.Helper()
	testkit.WaitFor(t, 15*time.Second, fmt.Sprintf("check %s %s", id, status), func() error {
		c, ok := st.Check(id)
		if !ok || c.Status != status || !strings.Contains(c.Output, outputHas) {
			return fmt.Errorf("check %s: %+v", id, c)
		}
		return nil
	})
}

func TestManager_HTTPCheckFollowsServer(t *testing.T) {
	var code atomic.Int32
	code.Store(200)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(int(code.Load()))
	}))
	defer srv.Close()
	st := startManager(t, time.Now, Config{})
	err := st.AddService(local.ServiceDefinition{Name: "web", Check: &local.CheckDefinition{
		HTTP: srv.URL, Interval: local.Duration(time.Millisecond), FailuresBeforeCritical: 2}}, false)
	if err != nil {
		t.Fatal(err)
	}
	waitCheck(t, st, "service:web", catalog.HealthPassing, "200 OK")
	code.Store(500)
	waitCheck(t, st, "service:web", catalog.HealthCritical, "500 Internal Server Error")
}

func TestManager_TTLExpires(t *testing.T) {
	st := startManager(t, time.Now, Config{})
	if err := st.AddCheck(local.CheckDefinition{Name: "ttl", TTL: local.Duration(100 * time.Millisecond)}); err != nil {
		t.Fatal(err)
	}
	if err := st.UpdateTTL("ttl", catalog.HealthPassing, "alive"); err != nil {
		t.Fatal(err)
	}
	waitCheck(t, st, "ttl", catalog.HealthCritical, "TTL expired")
}

func TestManager_ReapsServiceCriticalTooLong(t *testing.T) {
	clk := &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	st := startManager(t, clk.Now, Config{ReapInterval: 5 * time.Millisecond})
	err := st.AddService(local.ServiceDefinition{Name: "web", Check: &local.CheckDefinition{
		TTL: local.Duration(time.Hour), DeregisterCriticalServiceAfter: local.Duration(time.Minute)}}, false)
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(61 * time.Second)
	testkit.WaitFor(t, 10*time.Second, "web reaped", func() error {
		if _, _, ok := st.Service("web"); ok {
			return fmt.Errorf("web still registered")
		}
		return nil
	})
}

func TestManager_ScriptCheckRunsWhenEnabled(t *testing.T) {
	st := startManager(t, time.Now, Config{EnableScriptChecks: true})
	err := st.AddCheck(local.CheckDefinition{Name: "sh", ScriptArgs: []string{"/bin/sh", "-c", "echo ok"}, Interval: local.Duration(time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	waitCheck(t, st, "sh", catalog.HealthPassing, "ok")
}

func TestManager_RemovedCheckStopsProbing(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer srv.Close()
	st := startManager(t, time.Now, Config{})
	if err := st.AddCheck(local.CheckDefinition{Name: "h", HTTP: srv.URL, Interval: local.Duration(time.Second)}); err != nil {
		t.Fatal(err)
	}
	waitCheck(t, st, "h", catalog.HealthPassing, "")
	if err := st.RemoveCheck("h"); err != nil {
		t.Fatal(err)
	}
	// Re-registering with another URL restarts the runner against it.
	var hits2 atomic.Int64
	srv2 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits2.Add(1)
		w.WriteHeader(429)
	}))
	defer srv2.Close()
	if err := st.AddCheck(local.CheckDefinition{Name: "h", HTTP: srv2.URL, Interval: local.Duration(time.Second)}); err != nil {
		t.Fatal(err)
	}
	waitCheck(t, st, "h", catalog.HealthWarning, "429")
	before := hits.Load()
	waitHits := hits2.Load() + 2
	testkit.WaitFor(t, 10*time.Second, "two more probes of the new URL", func() error {
		if hits2.Load() < waitHits {
			return fmt.Errorf("%d probes", hits2.Load())
		}
		return nil
	})
	if hits.Load() != before {
		t.Fatalf("old URL still probed after its check was replaced")
	}
}
