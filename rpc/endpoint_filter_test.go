package rpc

import (
	"slices"
	"testing"

	"roster/catalog"
)

// ?near= names a node the way its caller spells it: "_agent" resolves to
// the agent's configured name, which stays "s1" after a write renamed the
// catalog node to "S1" (catalog nodename.go). Consul matches the near
// node's coordinate ignoring case, so the sort must still happen, and the
// items' nodes are matched to their coordinates the same way.
func TestSortByNear_MatchesNodeNamesIgnoringCase(t *testing.T) {
	s, err := catalog.New(catalog.Config{})
	if err != nil {
		t.Fatal(err)
	}
	idx := uint64(0)
	apply := func(c catalog.Command) {
		t.Helper()
		idx++
		if r := s.ApplyCommand(idx, c); r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	for i, n := range []string{"s1", "far", "near"} {
		apply(&catalog.RegisterRequest{Node: catalog.Node{Node: n, Address: "10.0.0.1", Datacenter: "dc1"}})
		apply(&catalog.CoordinateBatchRequest{Updates: []catalog.CoordinateEntry{{Node: n,
			Coord: catalog.Coordinate{Vec: []float64{[]float64{0, 10, 1}[i]}}}}})
	}
	// A write that changes the node under another case renames it.
	apply(&catalog.RegisterRequest{Node: catalog.Node{Node: "S1", Address: "10.0.0.1", Datacenter: "dc2"}})
	if nodes, _ := s.Nodes(); !slices.ContainsFunc(nodes, func(n catalog.Node) bool { return n.Node == "S1" }) {
		t.Fatalf("nodes = %+v, want s1 renamed S1", nodes)
	}
	for _, tc := range []struct {
		near  string
		items []string
		want  []string
	}{
		{near: "s1", items: []string{"far", "near"}, want: []string{"near", "far"}},
		{near: "S1", items: []string{"far", "near"}, want: []string{"near", "far"}},
		{near: "s1", items: []string{"FAR", "Near", "gone"}, want: []string{"Near", "FAR", "gone"}},
		{near: "unknown", items: []string{"far", "near"}, want: []string{"far", "near"}},
	} {
		got := slices.Clone(tc.items)
		sortByNear(s, tc.near, got, func(n *string) string { return *n })
		if !slices.Equal(got, tc.want) {
			t.Errorf("?near=%s over %v: order %v, want %v", tc.near, tc.items, got, tc.want)
		}
	}
}
