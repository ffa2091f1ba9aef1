package catalog

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
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

// TestMirror_PatchesCarryOnlyWhatMoved checks the InstanceUpdated patch:
// it names exactly the changed fields, a field cleared to empty survives
// JSON (named, though omitted), the mirror ends equal to the server, and a
// patch naming an unknown field is reported, not half-applied silently.
func TestMirror_PatchesCarryOnlyWhatMoved(t *testing.T) {
	h := newHarness(t, Config{})
	r := regService("n1", "web1", "web", 80, "v1")
	r.Service.Address = "10.9.9.9"
	r.Service.Meta = map[string]string{"version": "1"}
	h.ok(r)
	m := NewMirror()
	if err := m.Load(roundTrip(t, h.s.Registry())); err != nil {
		t.Fatal(err)
	}
	h.ok(regService("n1", "web1", "web", 81)) // port moves; tags, address, meta cleared
	d := roundTrip(t, mustSince(t, h.s, m.Index()))
	if len(d.Changes) != 1 || d.Changes[0].Kind != InstanceUpdated {
		t.Fatalf("changes %+v, want one InstanceUpdated", d.Changes)
	}
	c := d.Changes[0]
	if want := []string{"Tags", "Address", "Port", "Meta"}; !slices.Equal(c.Fields, want) {
		t.Fatalf("patch fields %q, want %q", c.Fields, want)
	}
	if c.Instance.NodeAddress != "" || c.Instance.Health != "" || c.Instance.Service != "web" {
		t.Fatalf("patch carries unchanged content: %+v", *c.Instance)
	}
	if err := m.Apply(d); err != nil {
		t.Fatalf("Apply patch: %v", err)
	}
	if !sameInstances(m.Instances(""), h.s.Registry().Instances) {
		t.Fatalf("mirror %+v, server %+v", m.Instances(""), h.s.Registry().Instances)
	}

	bad := copyMirror(m)
	idx := bad.Index()
	h.ok(regService("n1", "web1", "web", 82))
	d = mustSince(t, h.s, idx)
	d.Changes[0].Fields = []string{"Port", "Bogus"}
	if err := bad.Apply(d); !errors.Is(err, ErrHashMismatch) {
		t.Fatalf("patch with an unknown field: %v, want ErrHashMismatch", err)
	}
}

// TestMirror_RefusesAnotherHashScheme checks the scheme gate: the store
// stamps its responses with HashScheme, they survive JSON, a mirror takes
// them; a response of another scheme, or of none (a server predating the
// field), is refused with ErrHashScheme telling to upgrade, before any
// hash is compared, and leaves the mirror as it was.
func TestMirror_RefusesAnotherHashScheme(t *testing.T) {
	h := newHarness(t, Config{})
	h.ok(regService("n1", "web1", "web", 80))
	reg := roundTrip(t, h.s.Registry())
	if reg.HashScheme != HashScheme {
		t.Fatalf("registry carries scheme %d, want %d", reg.HashScheme, HashScheme)
	}
	m := NewMirror()
	if err := m.Load(reg); err != nil {
		t.Fatalf("Load of the same scheme: %v", err)
	}
	index, hash := m.Index(), m.Hash()
	h.ok(regService("n2", "web2", "web", 81))
	d := roundTrip(t, mustSince(t, h.s, index))
	if d.HashScheme != HashScheme {
		t.Fatalf("delta carries scheme %d, want %d", d.HashScheme, HashScheme)
	}
	for _, scheme := range []int{0, 1, HashScheme + 1} {
		other := d
		other.HashScheme = scheme
		err := m.Apply(other)
		if !errors.Is(err, ErrHashScheme) || errors.Is(err, ErrHashMismatch) || !strings.Contains(err.Error(), "upgrade the older side") {
			t.Fatalf("Apply of scheme %d: %v, want ErrHashScheme saying to upgrade", scheme, err)
		}
		r := reg
		r.HashScheme = scheme
		if err := m.Load(r); !errors.Is(err, ErrHashScheme) {
			t.Fatalf("Load of scheme %d: %v, want ErrHashScheme", scheme, err)
		}
		if m.Index() != index || m.Hash() != hash || m.Len() != 1 {
			t.Fatalf("refused scheme %d moved the mirror to index %d, %d instances", scheme, m.Index(), m.Len())
		}
	}
	if err := m.Apply(d); err != nil || m.Hash() != h.s.Hash() {
		t.Fatalf("Apply of the same scheme after refusals: %v (mirror %s, server %s)", err, m.Hash(), h.s.Hash())
	}
}
