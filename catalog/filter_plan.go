package catalog

import (
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// Planning specialises a parsed expression for one Go type: every selector
// is resolved to field indexes, map keys (already converted to the map's
// key type) and list steps, and every literal is converted to the kind of
// the field it is compared with. The result is a tree of closures that only
// reads fields and compares; it is built once per type (Filter.plans) and
// reused for every value. Everything that can be wrong with an expression
// for a type is found here, which is what makes Filter.Validate possible.

// filterMaxHops bounds the steps a plan may take without consuming a
// selector segment (following a pointer, fanning out over a list), so that
// a type such as `type L []*L` cannot make planning recurse forever.
const filterMaxHops = 32

func (n *filterAnd) plan(t reflect.Type) (filterEvalFn, error) {
	left, right, err := planFilterPair(n.left, n.right, t)
	if err != nil {
		return nil, err
	}
	return func(v reflect.Value) (bool, error) {
		ok, err := left(v)
		if err != nil || !ok {
			return false, err
		}
		return right(v)
	}, nil
}

func (n *filterOr) plan(t reflect.Type) (filterEvalFn, error) {
	left, right, err := planFilterPair(n.left, n.right, t)
	if err != nil {
		return nil, err
	}
	return func(v reflect.Value) (bool, error) {
		ok, err := left(v)
		if err != nil || ok {
			return ok, err
		}
		return right(v)
	}, nil
}

func planFilterPair(l, r filterNode, t reflect.Type) (filterEvalFn, filterEvalFn, error) {
	left, err := l.plan(t)
	if err != nil {
		return nil, nil, err
	}
	right, err := r.plan(t)
	if err != nil {
		return nil, nil, err
	}
	return left, right, nil
}

func (n *filterNot) plan(t reflect.Type) (filterEvalFn, error) {
	operand, err := n.operand.plan(t)
	if err != nil {
		return nil, err
	}
	return func(v reflect.Value) (bool, error) {
		ok, err := operand(v)
		return !ok && err == nil, err
	}, nil
}

func (m *filterMatch) plan(t reflect.Type) (filterEvalFn, error) { return m.planFrom(t, 0, 0) }

// planFrom plans the selector from segment depth on, for a value of type t.
// hops counts steps since the last consumed segment (see filterMaxHops).
func (m *filterMatch) planFrom(t reflect.Type, depth, hops int) (filterEvalFn, error) {
	if hops > filterMaxHops {
		return nil, m.selectorErr(depth, "cannot resolve selector %s", m.pathText(len(m.selector))).
			because("type %s nests pointers or lists more than %d deep", t, filterMaxHops)
	}
	switch t.Kind() {
	case reflect.Pointer:
		return m.planPointer(t, depth, hops)
	case reflect.Interface:
		return m.planInterface(depth), nil
	}
	if depth == len(m.selector) {
		return m.planTerminal(t)
	}
	seg := m.selector[depth]
	switch t.Kind() {
	case reflect.Struct:
		return m.planField(t, depth)
	case reflect.Map:
		return m.planMapKey(t, depth)
	case reflect.Slice, reflect.Array:
		if seg.index {
			return m.planIndex(t, depth)
		}
		return m.planEach(t, depth, hops)
	}
	return nil, m.selectorErr(depth, "unknown selector %s", m.pathText(depth+1)).
		because("%s has type %s, which has no fields", m.pathText(depth), t)
}

// planPointer follows a pointer; a nil one is a missing value.
func (m *filterMatch) planPointer(t reflect.Type, depth, hops int) (filterEvalFn, error) {
	next, err := m.planFrom(t.Elem(), depth, hops+1)
	if err != nil {
		return nil, err
	}
	missing := m.op.missingResult()
	return func(v reflect.Value) (bool, error) {
		if v.IsNil() {
			return missing, nil
		}
		return next(v.Elem())
	}, nil
}

// filterDynamicKey identifies a plan made at Match time for the concrete
// type found inside an interface value at a selector depth.
type filterDynamicKey struct {
	t     reflect.Type
	depth int
}

// planInterface defers planning to Match time, when the concrete type in the
// interface is known (e.g. map[string]any decoded from JSON). Such plans
// are cached on the match node per concrete type, so a selector through
// interfaces is still planned once per type, not per value. Errors (an
// unknown field of the concrete type) surface from Match.
func (m *filterMatch) planInterface(depth int) filterEvalFn {
	missing := m.op.missingResult()
	return func(v reflect.Value) (bool, error) {
		if v.IsNil() {
			return missing, nil
		}
		inner := v.Elem()
		key := filterDynamicKey{t: inner.Type(), depth: depth}
		cached, ok := m.dynamic.Load(key)
		if !ok {
			eval, err := m.planFrom(inner.Type(), depth, 0)
			cached, _ = m.dynamic.LoadOrStore(key, &filterPlanned{eval: eval, err: err})
		}
		p := cached.(*filterPlanned)
		if p.err != nil {
			return false, p.err
		}
		return p.eval(inner)
	}
}

// planField selects a struct field by its exported name or bexpr alias.
func (m *filterMatch) planField(t reflect.Type, depth int) (filterEvalFn, error) {
	seg := m.selector[depth]
	fields := filterStructFields(t)
	index, ok := fields[seg.name]
	if !ok {
		return nil, m.selectorErr(depth, "unknown selector %s", m.pathText(depth+1)).
			because("%s has no field %q (fields: %s)", t, seg.name, filterFieldList(fields))
	}
	next, err := m.planFrom(t.FieldByIndex(index).Type, depth+1, 0)
	if err != nil {
		return nil, err
	}
	if len(index) == 1 {
		i := index[0]
		return func(v reflect.Value) (bool, error) { return next(v.Field(i)) }, nil
	}
	// A promoted field of an embedded struct; a nil embedded pointer on the
	// way makes it missing.
	missing := m.op.missingResult()
	return func(v reflect.Value) (bool, error) {
		f, err := v.FieldByIndexErr(index)
		if err != nil {
			return missing, nil
		}
		return next(f)
	}, nil
}

// planMapKey looks a key up in a map; an absent key is a missing value.
func (m *filterMatch) planMapKey(t reflect.Type, depth int) (filterEvalFn, error) {
	seg := m.selector[depth]
	key, err := filterCoerce(seg.name, t.Key())
	if err != nil {
		return nil, m.selectorErr(depth, "invalid map key %q in %s", seg.name, m.pathText(depth+1)).
			because("the map has %s keys: %v", t.Key(), err)
	}
	next, err := m.planFrom(t.Elem(), depth+1, 0)
	if err != nil {
		return nil, err
	}
	missing := m.op.missingResult()
	return func(v reflect.Value) (bool, error) {
		e := v.MapIndex(key)
		if !e.IsValid() {
			return missing, nil
		}
		return next(e)
	}, nil
}

// planIndex selects one list element by position (Checks.0.Status); an
// index past the end is a missing value.
func (m *filterMatch) planIndex(t reflect.Type, depth int) (filterEvalFn, error) {
	seg := m.selector[depth]
	i, err := strconv.Atoi(seg.name)
	if err != nil {
		return nil, m.selectorErr(depth, "list index %q is out of range", seg.name).because("%v", err)
	}
	next, err := m.planFrom(t.Elem(), depth+1, 0)
	if err != nil {
		return nil, err
	}
	missing := m.op.missingResult()
	return func(v reflect.Value) (bool, error) {
		if i >= v.Len() {
			return missing, nil
		}
		return next(v.Index(i))
	}, nil
}

// planEach applies the rest of the selector to every element of a list and
// is true when any element matches (go-bexpr's implicit "any"). The same
// segment is then resolved against the element type, so Checks.Status
// reads Status of each check.
func (m *filterMatch) planEach(t reflect.Type, depth, hops int) (filterEvalFn, error) {
	next, err := m.planFrom(t.Elem(), depth, hops+1)
	if err != nil {
		return nil, err
	}
	return func(v reflect.Value) (bool, error) {
		n := v.Len()
		for i := 0; i < n; i++ {
			ok, err := next(v.Index(i))
			if err != nil || ok {
				return ok, err
			}
		}
		return false, nil
	}, nil
}

// pathText renders the first n selector segments.
func (m *filterMatch) pathText(n int) string {
	if n == 0 {
		return "the value"
	}
	return strconv.Quote(m.selectorText(n))
}

// selectorErr reports a problem at selector segment depth (or at the
// selector's start when depth is past the end).
func (m *filterMatch) selectorErr(depth int, format string, args ...any) *FilterError {
	offset := m.offset
	if depth < len(m.selector) {
		offset = m.selector[depth].offset
	}
	return filterErrorf(m.expr, offset, format, args...)
}

// filterFieldCache maps a struct reflect.Type to its selectable fields
// (map[string][]int, name → index path). Types are few and fixed, so the
// cache is bounded by the program's types and never evicted.
var filterFieldCache sync.Map

// filterStructFields returns the selectable names of struct type t: every
// exported field visible through t (including promoted fields of embedded
// structs) under its Go name, or under the names in its `bexpr:"a,b"` tag;
// `bexpr:"-"` hides a field.
func filterStructFields(t reflect.Type) map[string][]int {
	if cached, ok := filterFieldCache.Load(t); ok {
		return cached.(map[string][]int)
	}
	fields := make(map[string][]int)
	for _, f := range reflect.VisibleFields(t) {
		if !f.IsExported() {
			continue
		}
		names := []string{f.Name}
		if tag, ok := f.Tag.Lookup("bexpr"); ok && tag != "" {
			if tag == "-" {
				continue
			}
			names = strings.Split(tag, ",")
		}
		for _, name := range names {
			if _, taken := fields[name]; !taken {
				fields[name] = f.Index
			}
		}
	}
	cached, _ := filterFieldCache.LoadOrStore(t, fields)
	return cached.(map[string][]int)
}

// filterFieldList renders field names for an error message, sorted and
// capped so a huge struct does not produce a huge message.
func filterFieldList(fields map[string][]int) string {
	const maxListed = 30
	names := make([]string, 0, len(fields))
	for name := range fields {
		names = append(names, name)
	}
	sort.Strings(names)
	if len(names) > maxListed {
		return strings.Join(names[:maxListed], ", ") + fmt.Sprintf(", … (%d more)", len(names)-maxListed)
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}
