package checks

import (
	"context"
	"fmt"
	"net"
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

func TestStatusFilter_Thresholds(t *testing.T) {
	const P, W, C = catalog.HealthPassing, catalog.HealthWarning, catalog.HealthCritical
	for _, tc := range []struct {
		name             string
		succ, warn, crit int
		in               []string
		want             []string // "" = nothing reported
	}{
		{"no thresholds", 0, 0, 0, []string{P, C, W}, []string{P, C, W}},
		{"success before passing", 2, 0, 0, []string{P, P, C, P, P}, []string{"", P, C, "", P}},
		{"failures before critical", 0, 0, 3, []string{C, C, C, P, C}, []string{"", "", C, P, ""}},
		{"warning then critical", 0, 1, 3, []string{C, C, C}, []string{W, W, C}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newStatusFilter(tc.succ, tc.warn, tc.crit)
			for i, st := range tc.in {
				got, ok := f.observe(st)
				if !ok {
					got = ""
				}
				if got != tc.want[i] {
					t.Fatalf("result %d (%s): reported %q, want %q", i, st, got, tc.want[i])
				}
			}
		})
	}
}

// recorder collects a runner's reports.
type recorder struct {
	mu     sync.Mutex
	status string
	output string
	n      int
}

func (r *recorder) report(_, status, output string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.status, r.output, r.n = status, output, r.n+1
}

func (r *recorder) get() (string, string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.status, r.output
}

// runFast runs a probe every few milliseconds, reporting into a recorder.
func runFast(t *testing.T, p probe, succ, warn, crit int) *recorder {
	t.Helper()
	rec := &recorder{}
	r := &runner{id: "c", probe: p, interval: 5 * time.Millisecond, timeout: 2 * time.Second,
		filter: newStatusFilter(succ, warn, crit), report: rec.report}
	r.launch(context.Background())
	t.Cleanup(r.stop)
	return rec
}

func waitStatus(t *testing.T, rec *recorder, want string, outputHas string) {
	t.Helper()
	testkit.WaitFor(t, 10*time.Second, "status "+want, func() error {
		st, out := rec.get()
		if st != want || !strings.Contains(out, outputHas) {
			return fmt.Errorf("status %q output %q", st, out)
		}
		return nil
	})
}

func TestHTTPProbe_StatusCodesAndOutput(t *testing.T) {
	var code atomic.Int32
	code.Store(200)
	var gotMethod, gotHeader, gotBody atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b := make([]byte, 64)
		n, _ := r.Body.Read(b)
		gotMethod.Store(r.Method)
		gotHeader.Store(r.Header.Get("X-Probe"))
		gotBody.Store(string(b[:n]))
		w.WriteHeader(int(code.Load()))
		fmt.Fprint(w, "hello "+strings.Repeat("x", 10000))
	}))
	defer srv.Close()
	def := local.CheckDefinition{HTTP: srv.URL + "/health", Method: "POST", Body: "ping",
		Header: map[string][]string{"X-Probe": {"yes"}}}
	rec := runFast(t, httpProbe(def), 0, 0, 0)
	waitStatus(t, rec, catalog.HealthPassing, "HTTP POST "+srv.URL+"/health: 200 OK Output: hello")
	if _, out := rec.get(); len(out) > local.MaxCheckOutputBytes+200 {
		t.Fatalf("output not truncated: %d bytes", len(out))
	}
	if gotMethod.Load() != "POST" || gotHeader.Load() != "yes" || gotBody.Load() != "ping" {
		t.Fatalf("request: %v %v %v", gotMethod.Load(), gotHeader.Load(), gotBody.Load())
	}
	code.Store(429)
	waitStatus(t, rec, catalog.HealthWarning, "429 Too Many Requests")
	code.Store(503)
	waitStatus(t, rec, catalog.HealthCritical, "503 Service Unavailable")
	srv.Close()
	code.Store(200)
	waitStatus(t, rec, catalog.HealthCritical, "connect")
}

func TestHTTPProbe_TimeoutIsCritical(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	st, out := httpProbe(local.CheckDefinition{HTTP: srv.URL})(ctx)
	if st != catalog.HealthCritical || !strings.Contains(out, "deadline exceeded") {
		t.Fatalf("%s %q", st, out)
	}
}

func TestTCPProbe_PassingThenCritical(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	addr := ln.Addr().String()
	rec := runFast(t, tcpProbe(addr), 0, 0, 2)
	waitStatus(t, rec, catalog.HealthPassing, "TCP connect "+addr+": Success")
	ln.Close()
	waitStatus(t, rec, catalog.HealthCritical, "refused")
}

func TestScriptProbe_ExitCodes(t *testing.T) {
	for _, tc := range []struct {
		script, status, output string
	}{
		{"echo fine; exit 0", catalog.HealthPassing, "fine"},
		{"echo meh >&2; exit 1", catalog.HealthWarning, "meh"},
		{"echo bad; exit 2", catalog.HealthCritical, "bad"},
	} {
		st, out := scriptProbe([]string{"/bin/sh", "-c", tc.script}, time.Second)(context.Background())
		if st != tc.status || !strings.Contains(out, tc.output) {
			t.Fatalf("%q: %s %q, want %s %q", tc.script, st, out, tc.status, tc.output)
		}
	}
	st, out := scriptProbe([]string{"/nonexistent/probe"}, time.Second)(context.Background())
	if st != catalog.HealthCritical || out == "" {
		t.Fatalf("missing binary: %s %q", st, out)
	}
}

func TestScriptProbe_TimeoutKillsProcessGroup(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	// The background sleep holds the output pipe; only a group kill ends it.
	st, out := scriptProbe([]string{"/bin/sh", "-c", "sleep 30 & sleep 30"}, 200*time.Millisecond)(ctx)
	if st != catalog.HealthCritical || !strings.Contains(out, "Timed out (200ms) running check") {
		t.Fatalf("%s %q", st, out)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("timed-out script took %v to stop", took)
	}
}

func TestScriptProbe_OutputCapped(t *testing.T) {
	_, out := scriptProbe([]string{"/bin/sh", "-c", "head -c 100000 /dev/zero | tr '\\0' a"}, time.Second)(context.Background())
	if len(out) > local.MaxCheckOutputBytes+100 || !strings.HasSuffix(out, "(truncated)") {
		t.Fatalf("output %d bytes", len(out))
	}
}

func TestHTTPProbe_TLSSkipVerifyAndRedirects(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/moved" {
			http.Redirect(w, r, "/missing", http.StatusFound)
			return
		}
		http.NotFound(w, r)
	}))
	defer srv.Close()
	ctx := context.Background()
	if st, out := httpProbe(local.CheckDefinition{HTTP: srv.URL + "/missing"})(ctx); st != catalog.HealthCritical || !strings.Contains(out, "certificate") {
		t.Fatalf("unverified TLS: %s %q", st, out)
	}
	if st, out := httpProbe(local.CheckDefinition{HTTP: srv.URL + "/missing", TLSSkipVerify: true})(ctx); st != catalog.HealthCritical || !strings.Contains(out, "404 Not Found") {
		t.Fatalf("skip verify: %s %q", st, out)
	}
	// Without redirects the 302 itself is the answer (critical, not 2xx).
	if st, out := httpProbe(local.CheckDefinition{HTTP: srv.URL + "/moved", TLSSkipVerify: true, DisableRedirects: true})(ctx); st != catalog.HealthCritical || !strings.Contains(out, "302 Found") {
		t.Fatalf("disable redirects: %s %q", st, out)
	}
}
