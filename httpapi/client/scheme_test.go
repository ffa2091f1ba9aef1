package client

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"roster/catalog"
)

// schemeServer serves /v1/roster/registry and /v1/roster/registry/delta
// for a fixed set of instances, stamped with chosen hash schemes, and
// counts what it answers. Deltas are empty and move the index by one.
type schemeServer struct {
	t *testing.T

	mu                          sync.Mutex
	reg                         catalog.Registry // Hash and HashScheme as served
	deltaScheme                 int
	fullBodies, full304, deltas int
}

func newSchemeServer(t *testing.T, regScheme, deltaScheme int) (*schemeServer, string) {
	insts := []catalog.Instance{
		{Node: "n1", ID: "web-1", Service: "web", Port: 80, Health: "passing"},
		{Node: "n2", ID: "web-2", Service: "web", Port: 80, Health: "critical"},
	}
	s := &schemeServer{t: t, deltaScheme: deltaScheme,
		reg: catalog.Registry{Index: 10, Hash: catalog.HashInstances(insts), HashScheme: regScheme, Instances: insts}}
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/roster/registry", s.registry)
	mux.HandleFunc("/v1/roster/registry/delta", s.delta)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return s, srv.URL
}

// setRegistry changes what the registry endpoint serves (an upgrade).
func (s *schemeServer) setRegistry(hash string, scheme int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reg.Hash, s.reg.HashScheme = hash, scheme
}

func (s *schemeServer) counts() (fullBodies, full304, deltas int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fullBodies, s.full304, s.deltas
}

func (s *schemeServer) registry(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.Header.Get("If-None-Match") == `"`+s.reg.Hash+`"` {
		s.full304++
		w.WriteHeader(http.StatusNotModified)
		return
	}
	s.fullBodies++
	json.NewEncoder(w).Encode(s.reg)
}

func (s *schemeServer) delta(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deltas++
	since, err := strconv.ParseUint(r.URL.Query().Get("since"), 10, 64)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	d := catalog.Delta{From: since, To: since + 1, Hash: s.reg.Hash, HashScheme: s.deltaScheme}
	if r.URL.Query().Get("format") != "compact" {
		json.NewEncoder(w).Encode(d)
		return
	}
	b, err := AppendCompactDelta(nil, &d)
	if err != nil {
		s.t.Errorf("encoding the delta: %v", err)
	}
	w.Write(b)
}

// watchUntilErrors runs Watch until OnError has seen n errors (or 10s
// pass) and returns them.
func watchUntilErrors(t *testing.T, w *Watcher, n int) []error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var errs []error
	w.cfg.OnError = func(err error) {
		if errs = append(errs, err); len(errs) == n {
			cancel()
		}
	}
	w.Watch(ctx, nil)
	if len(errs) < n {
		t.Fatalf("Watch reported %d errors in 10s, want %d", len(errs), n)
	}
	return errs
}

func newSchemeWatcher(t *testing.T, url string) *Watcher {
	w, err := New(Config{Address: url, MinBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func TestWatcher_SameSchemeFollows(t *testing.T) {
	for _, jsonDeltas := range []bool{false, true} {
		srv, url := newSchemeServer(t, catalog.HashScheme, catalog.HashScheme)
		w := newSchemeWatcher(t, url)
		w.cfg.JSONDeltas = jsonDeltas
		for i := range 3 {
			if _, err := w.Sync(context.Background()); err != nil {
				t.Fatalf("json %v, sync %d: %v", jsonDeltas, i, err)
			}
		}
		m := w.Metrics()
		if full, _, deltas := srv.counts(); full != 1 || deltas != 2 || m.SchemeMismatches != 0 || w.Index() != 12 || len(w.Instances("web")) != 2 {
			t.Fatalf("json %v: %d full and %d delta pulls served, metrics %+v, index %d", jsonDeltas, full, deltas, m, w.Index())
		}
	}
}

// checkSchemeErrors checks every error is the scheme refusal, telling to
// upgrade.
func checkSchemeErrors(t *testing.T, errs []error) {
	t.Helper()
	for i, err := range errs {
		if !errors.Is(err, catalog.ErrHashScheme) || !strings.Contains(err.Error(), "upgrade the older side") {
			t.Fatalf("error %d: %v, want catalog.ErrHashScheme telling to upgrade", i, err)
		}
	}
}

// TestWatcher_OtherSchemeFullPullIsNotRepeated: against a server of
// another scheme (or none: older than the field) the first full pull is
// refused, and the retries, backed off, send its hash as If-None-Match and
// get 304s rather than the registry again. Once the server answers in the
// client's scheme, the next pull loads.
func TestWatcher_OtherSchemeFullPullIsNotRepeated(t *testing.T) {
	for _, scheme := range []int{0, 1} {
		const oldHash = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
		srv, url := newSchemeServer(t, scheme, scheme)
		good := srv.reg.Hash
		srv.setRegistry(oldHash, scheme)
		w := newSchemeWatcher(t, url)
		checkSchemeErrors(t, watchUntilErrors(t, w, 6))
		full, full304, deltas := srv.counts()
		m := w.Metrics()
		if full != 1 || full304 != 5 || deltas != 0 || m.FullPulls != 1 || m.SchemeMismatches != 6 || m.HashMismatches != 0 {
			t.Fatalf("scheme %d: served %d full, %d 304, %d deltas; metrics %+v", scheme, full, full304, deltas, m)
		}
		if w.Index() != 0 || len(w.Instances("")) != 0 {
			t.Fatalf("scheme %d: refused registry reached the mirror (index %d)", scheme, w.Index())
		}
		srv.setRegistry(good, catalog.HashScheme) // the server is upgraded
		if up, err := w.Sync(context.Background()); err != nil || !up.Full || len(w.Instances("web")) != 2 {
			t.Fatalf("scheme %d: after the upgrade: %+v, %v", scheme, up, err)
		}
	}
}

// TestWatcher_OtherSchemeDeltaDoesNotFallBack: a delta of another scheme
// is refused without the fallback to a full pull (which could only be
// refused too); the mirror keeps what it has and Watch retries deltas,
// backed off.
func TestWatcher_OtherSchemeDeltaDoesNotFallBack(t *testing.T) {
	for _, scheme := range []int{0, catalog.HashScheme + 1} {
		srv, url := newSchemeServer(t, catalog.HashScheme, scheme)
		w := newSchemeWatcher(t, url)
		if _, err := w.Sync(context.Background()); err != nil {
			t.Fatal(err)
		}
		checkSchemeErrors(t, watchUntilErrors(t, w, 5))
		full, full304, deltas := srv.counts()
		m := w.Metrics()
		if full != 1 || full304 != 0 || deltas != 5 || m.Fallbacks != 0 || m.SchemeMismatches != 5 || m.HashMismatches != 0 {
			t.Fatalf("scheme %d: served %d full, %d 304, %d deltas; metrics %+v", scheme, full, full304, deltas, m)
		}
		if w.Index() != 10 || len(w.Instances("web")) != 2 {
			t.Fatalf("scheme %d: mirror moved to index %d with %d instances", scheme, w.Index(), len(w.Instances("web")))
		}
	}
}
