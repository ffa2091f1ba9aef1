package catalog

import (
	"reflect"
	"testing"
)

// TestCheckRec_RoundTripsEveryField proves that the compact form keeps
// every field of a check: a HealthCheck built back from it equals the one
// stored, empty and long strings included.
func TestCheckRec_RoundTripsEveryField(t *testing.T) {
	svc := &NodeService{ID: "web1", Service: "web", Tags: []string{"a", "b"}}
	long := string(make([]byte, 300)) // a length that takes two varint bytes
	c := HealthCheck{Node: "n1", CheckID: "c1", Name: "name", Status: HealthWarning, Notes: "notes",
		Output: long, ServiceID: "web1", ServiceName: "web", ServiceTags: []string{"a", "b"}, Type: "http",
		Interval: "1s", Timeout: "2s", ExposedPort: 21000, CreateIndex: 7, ModifyIndex: 9,
		Definition: HealthCheckDefinition{HTTP: "http://x/", Header: map[string][]string{"H": {"v1", "v2"}},
			Method: "GET", Body: "b", TLSServerName: "tls", TLSSkipVerify: true, TCP: "t:1", TCPUseTLS: true,
			UDP: "u:1", GRPC: "g:1", GRPCUseTLS: true, OSService: "os", Interval: "3s", Timeout: "4s",
			DeregisterCriticalServiceAfter: "5m"}}
	rec := newCheckRec(&c, svc, true)
	if got := rec.check("n1"); !reflect.DeepEqual(got, c) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, c)
	}
	if !rec.sameContent(&c, svc) {
		t.Fatal("sameContent is false for the check the record was made from")
	}
	other := c
	other.Definition.Timeout = "6s"
	if rec.sameContent(&other, svc) {
		t.Fatal("sameContent is true for a check with another definition timeout")
	}
	node := HealthCheck{Node: "n1", CheckID: "serfHealth", Status: HealthPassing, CreateIndex: 1, ModifyIndex: 1}
	if got := newCheckRec(&node, nil, false).check("n1"); !reflect.DeepEqual(got, node) {
		t.Fatalf("node check round trip:\n got %+v\nwant %+v", got, node)
	}
}

// TestCheckCell_HugeCreateIndex proves that a create index too large for
// a cell's packed word is still kept: a status update at such an index
// keeps the check's create index and moves its status.
func TestCheckCell_HugeCreateIndex(t *testing.T) {
	s, _ := New(Config{})
	idx := uint64(1)<<56 + 5
	apply := func(cmd Command) {
		idx++
		if r := s.ApplyCommand(idx, cmd); r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	apply(regService("n1", "web1", "web", 80))
	apply(regCheck("n1", "c1", "web1", HealthPassing))
	created := idx
	apply(regCheck("n1", "c1", "web1", HealthCritical))
	checks, _ := s.NodeChecks("n1")
	if len(checks) != 1 || checks[0].CreateIndex != created || checks[0].ModifyIndex != idx || checks[0].Status != HealthCritical {
		t.Fatalf("checks %+v, want c1 critical created at %d, modified at %d", checks, created, idx)
	}
}
