package rpc

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"

	"roster/catalog"
)

// Result shaping shared by the read endpoints: ?filter=, ?node-meta= and
// ?near=, applied to a result read from the local catalog, in that order
// of cost (the filter was compiled and validated before anything was read).

// filterErrPrefix starts every bad-expression error, as in Consul; the
// HTTP layer answers such errors with 400.
const filterErrPrefix = "Failed to create boolean expression evaluator"

// compileFilter compiles expr and checks it against the element type of the
// result (sample), so an unknown selector fails before any data is read.
// An empty expression is a nil filter (keep everything).
func compileFilter(expr string, sample any) (*catalog.Filter, error) {
	if expr == "" {
		return nil, nil
	}
	f, err := catalog.CompileFilter(expr)
	if err == nil {
		err = f.Validate(sample)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", filterErrPrefix, err)
	}
	return f, nil
}

// applyFilter keeps the items that match f.
func applyFilter[T any](f *catalog.Filter, items []T) ([]T, error) {
	out, err := catalog.FilterSlice(f, items)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", filterErrPrefix, err)
	}
	if out == nil {
		out = []T{} // "[]" rather than "null" in JSON, as Consul answers
	}
	return out, nil
}

// metaMatches reports whether meta has every pair of want (?node-meta=).
func metaMatches(meta, want map[string]string) bool {
	for k, v := range want {
		if got, ok := meta[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// keepByNodeMeta drops the items whose node's Meta lacks a wanted pair.
func keepByNodeMeta[T any](items []T, want map[string]string, nodeMeta func(*T) map[string]string) []T {
	if len(want) == 0 {
		return items
	}
	out := items[:0:0]
	for i := range items {
		if metaMatches(nodeMeta(&items[i]), want) {
			out = append(out, items[i])
		}
	}
	return out
}

// sortByNear orders items by estimated round-trip time from node near,
// using the Vivaldi coordinates in the catalog (Consul's ?near=). Items
// whose node has no coordinate go last, in their previous order; without a
// coordinate for near itself the order is left as is.
//
// Node names are matched ignoring case, as Consul matches them: near may
// be the agent's configured name (?near=_agent), which keeps its case
// after a write renamed the catalog node to another case of it (catalog
// nodename.go). The catalog holds no two nodes whose names differ only in
// case, so the lower-cased names are still unique.
func sortByNear[T any](store *catalog.Store, near string, items []T, nodeOf func(*T) string) {
	if near == "" || len(items) < 2 {
		return
	}
	coords, _ := store.Coordinates()
	byNode := make(map[string]catalog.Coordinate, len(coords))
	for _, c := range coords {
		byNode[strings.ToLower(c.Node)] = c.Coord
	}
	from, ok := byNode[strings.ToLower(near)]
	if !ok {
		return
	}
	// Each item's distance is computed once, not at every comparison.
	type ranked struct {
		rtt  float64
		item T
	}
	rs := make([]ranked, len(items))
	for i := range items {
		rs[i] = ranked{rtt: math.Inf(1), item: items[i]}
		if c, ok := byNode[strings.ToLower(nodeOf(&items[i]))]; ok {
			rs[i].rtt = rttSeconds(from, c)
		}
	}
	slices.SortStableFunc(rs, func(a, b ranked) int { return cmp.Compare(a.rtt, b.rtt) })
	for i := range rs {
		items[i] = rs[i].item
	}
}

// rttSeconds is the Vivaldi distance between two coordinates: Euclidean
// distance plus both heights, plus the adjustments when that stays
// positive (Dabek et al., "Vivaldi", §5; Consul's lib/coordinate).
func rttSeconds(a, b catalog.Coordinate) float64 {
	var sum float64
	for i := range min(len(a.Vec), len(b.Vec)) {
		d := a.Vec[i] - b.Vec[i]
		sum += d * d
	}
	rtt := math.Sqrt(sum) + a.Height + b.Height
	if adjusted := rtt + a.Adjustment + b.Adjustment; adjusted > 0 {
		rtt = adjusted
	}
	return rtt
}
