package httpapi

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// FuzzRequest throws arbitrary methods, paths, query strings and bodies at
// the whole router. Whatever comes in: no panic (a recovered handler panic
// counts as a failure here), and every 4xx carries a message, except the
// documented empty-bodied 404 of a missing KV key.
func FuzzRequest(f *testing.F) {
	seeds := []struct{ method, path, query, body string }{
		{"GET", "/v1/kv/a", "recurse&index=3&wait=10ms", ""},
		{"PUT", "/v1/kv/a", "cas=x&flags=1", "v"},
		{"DELETE", "/v1/kv/", "recurse&cas=1", ""},
		{"PUT", "/v1/txn", "", `[{"KV":{"Verb":"set","Key":"k","Value":"dg=="}}]`},
		{"PUT", "/v1/txn", "", `[{"Node":{"Verb":"get"}},{"Check":{}}]`},
		{"PUT", "/v1/catalog/register", "", `{"Node":"n","Address":"a","Service":{"Service":"s"},"Checks":[{"CheckID":"c"}]}`},
		{"PUT", "/v1/catalog/deregister", "dc=x", `{"Node":"n"}`},
		{"PUT", "/v1/session/create", "", `{"LockDelay":1e400,"NodeChecks":null}`},
		{"PUT", "/v1/session/create", "", `{"LockDelay":"-5s","TTL":"x"}`},
		{"GET", "/v1/health/service/web", "passing=maybe&tag=a&near=_agent&node-meta=a:b", ""},
		{"GET", "/v1/health/state/%ff", "filter=Status%20==", ""},
		{"GET", "/v1/roster/registry/delta", "since=18446744073709551615&wait=1ms", ""},
		{"DELETE", "/v1/operator/raft/peer", "id=&address=", ""},
		{"GET", "/v1/agent/metrics", "format=prometheus", ""},
		{"PUT", "/v1/agent/join/", "wan=1", ""},
		{"POST", "/v1/operator/raft/transfer-leader", "id=%00", ""},
		{"PUT", "/v1/snapshot", "dc=x", "\x1f\x8bnot-a-snapshot"},
		{"GET", "/v1/snapshot", "stale&consistent", ""},
		{"GET", "/v1/operator/autopilot/configuration", "wait=x", ""},
		{"PUT", "/v1/agent/force-leave/", "prune=1&wan=1", ""},
	}
	for _, s := range seeds {
		f.Add(s.method, s.path, s.query, []byte(s.body))
	}
	srv, err := New(Config{Agent: testAgent(), RPC: newStoreRPC()})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, method, path, query string, body []byte) {
		if !validMethod(method) {
			return
		}
		req := httptest.NewRequest("GET", "/", bytes.NewReader(body))
		req.Method = method
		req.URL.Path = "/" + strings.TrimLeft(path, "/")
		req.URL.RawQuery = query
		// Blocking reads end with the request: keep each run short.
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		req = req.WithContext(ctx)
		rec := httptest.NewRecorder()
		before := srv.panics.Load()
		aborted := serveAsNetHTTP(srv, rec, req)
		if srv.panics.Load() != before {
			t.Fatalf("%s %s?%s panicked", method, req.URL.Path, query)
		}
		if aborted {
			return // our deadline passed first: no answer to check
		}
		code := rec.Code
		if code >= 400 && code < 500 && rec.Body.Len() == 0 && !(code == 404 && strings.HasPrefix(req.URL.Path, "/v1/kv/")) {
			t.Fatalf("%s %s?%s: %d with an empty body", method, req.URL.Path, query, code)
		}
	})
}

// serveAsNetHTTP calls srv.ServeHTTP and, as net/http's server does,
// swallows http.ErrAbortHandler, reporting that the request was aborted.
// The router aborts (by design) any request whose context has ended by
// the time its handler returns, and each run here has a 20ms deadline,
// so on a loaded machine any handler, not only a blocking read, can
// outlive it. Called directly, ServeHTTP lets that panic escape and it
// failed the test. Any other panic, or an abort while the context is
// still live, still escapes.
func serveAsNetHTTP(srv *Server, w http.ResponseWriter, req *http.Request) (aborted bool) {
	defer func() {
		if p := recover(); p != nil {
			if p != http.ErrAbortHandler || req.Context().Err() == nil {
				panic(p)
			}
			aborted = true
		}
	}()
	srv.ServeHTTP(w, req)
	return false
}

func validMethod(m string) bool {
	switch m {
	case http.MethodGet, http.MethodPut, http.MethodDelete, http.MethodPost, http.MethodOptions, http.MethodHead:
		return true
	}
	return false
}
