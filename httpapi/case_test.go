package httpapi

import "testing"

// Service and node names in lookups compare case-insensitively, as in
// Consul (its catalog indexes them lower-cased): /v1/catalog/service/WEB
// answers what /v1/catalog/service/web does, and so on.
func TestCompat_LookupsIgnoreCase(t *testing.T) {
	a := startAPI(t)
	goldenFixture(a.rpc)
	for _, p := range []struct{ lower, other string }{
		{"/v1/catalog/service/web", "/v1/catalog/service/WEB"},
		{"/v1/health/service/web?passing", "/v1/health/service/Web?passing"},
		{"/v1/health/checks/web", "/v1/health/checks/wEB"},
		{"/v1/catalog/node/n1", "/v1/catalog/node/N1"},
		{"/v1/catalog/node-services/n1", "/v1/catalog/node-services/N1"},
		{"/v1/health/node/n1", "/v1/health/node/N1"},
		{"/v1/session/node/n1", "/v1/session/node/N1"},
	} {
		_, want := a.must(200, "GET", p.lower, nil)
		_, got := a.must(200, "GET", p.other, nil)
		if got != want || len(want) < 10 {
			t.Fatalf("GET %s = %s\nwant what GET %s answers: %s", p.other, got, p.lower, want)
		}
	}
}
