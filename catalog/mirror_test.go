package catalog

import (
	"encoding/json"
	"errors"
	"testing"
)

// roundTrip sends v through JSON, as the HTTP delta endpoints will.
func roundTrip[T any](t *testing.T, v T) T {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out T
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestMirror_FollowsOverJSON checks the hash survives the wire: empty tags
// and meta come back nil, which must not change any digest.
func TestMirror_FollowsOverJSON(t *testing.T) {
	h := newHarness(t, Config{})
	r := regService("n1", "web1", "web", 80)
	r.Service.Tags = []string{} // empty, not nil: omitted on the wire
	r.Service.Meta = map[string]string{}
	h.ok(r)
	h.ok(regService("n2", "web2", "web", 81, "v1"))
	m := NewMirror()
	if err := m.Load(roundTrip(t, h.s.Registry())); err != nil {
		t.Fatalf("Load over JSON: %v", err)
	}
	h.ok(regCheck("n1", "serfHealth", "", HealthCritical))  // health change
	h.ok(regService("n2", "web2", "web", 82, "v2"))         // update
	h.ok(&DeregisterRequest{Node: "n1", ServiceID: "web1"}) // removal
	h.ok(regService("n3", "api", "api", 90))                // node + instance added
	d := roundTrip(t, mustSince(t, h.s, m.Index()))
	if err := m.Apply(d); err != nil {
		t.Fatalf("Apply over JSON: %v", err)
	}
	if m.Hash() != h.s.Hash() || m.Len() != 2 {
		t.Fatalf("mirror %s with %d instances, server %s", m.Hash(), m.Len(), h.s.Hash())
	}
	if err := m.Apply(d); !errors.Is(err, ErrGap) {
		t.Fatalf("re-applying the same delta: %v, want ErrGap", err)
	}
	kinds := map[ChangeKind]int{}
	for _, c := range d.Changes {
		kinds[c.Kind]++
	}
	want := map[ChangeKind]int{HealthChanged: 1, InstanceUpdated: 1, InstanceRemoved: 1, NodeAdded: 1, InstanceAdded: 1}
	for k, n := range want {
		if kinds[k] != n {
			t.Fatalf("change kinds %v, want %v", kinds, want)
		}
	}
}
