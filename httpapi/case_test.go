package httpapi

import "testing"

// Service names in lookups compare case-insensitively, as in Consul (its
// catalog indexes them lower-cased): /v1/catalog/service/WEB answers what
// /v1/catalog/service/web does, and so do the health reads.
func TestCompat_ServiceLookupsIgnoreCase(t *testing.T) {
	a := startAPI(t)
	goldenFixture(a.rpc)
	for _, p := range []struct{ lower, other string }{
		{"/v1/catalog/service/web", "/v1/catalog/service/WEB"},
		{"/v1/health/service/web?passing", "/v1/health/service/Web?passing"},
		{"/v1/health/checks/web", "/v1/health/checks/wEB"},
	} {
		_, want := a.must(200, "GET", p.lower, nil)
		_, got := a.must(200, "GET", p.other, nil)
		if got != want || len(want) < 10 {
			t.Fatalf("GET %s = %s\nwant what GET %s answers: %s", p.other, got, p.lower, want)
		}
	}
}
