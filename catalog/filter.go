package catalog

import (
	"errors"
	"fmt"
	"reflect"
	"sync"
)

// Filter is a compiled ?filter= expression in the language of Consul's
// filtering feature (hashicorp/go-bexpr's grammar):
//
//	Service.Tags contains "primary" and not Service.Meta.env == staging
//	"web" in ServiceTags or Checks.Status != passing
//	Node.Meta["rack-id"] matches `^r1[0-9]$`
//
// Reading order for the implementation: filter_lex.go (tokens),
// filter_parse.go (precedence and the syntax tree), filter_plan.go (how a
// selector is resolved against a Go type, once per type), filter_ops.go
// (the match operators and literal coercion).
//
// Semantics, following go-bexpr as Consul uses it:
//   - Selectors name exported struct fields exactly (a `bexpr:"name"` tag
//     adds an alias, `bexpr:"-"` hides a field), map keys (.key or
//     ["key"]) and list positions (.0). Pointers are followed.
//   - A selector that passes through a list of structs (Checks.Status)
//     asks whether ANY element matches, with the operator as written: so
//     Checks.Status != passing means "some check is not passing", and an
//     empty list matches nothing.
//   - A value that is not there (absent map key, nil pointer, index out of
//     range) equals nothing, contains nothing, matches nothing and is
//     empty; the negated operators are true for it.
//   - The literal is converted to the selected field's kind (string, bool,
//     signed, unsigned, float); a literal that does not convert is an error.
//
// A Filter is safe for concurrent use. The work of resolving selectors
// against a Go type (reflection) is done once per type and cached, so
// evaluating a filter over many values of one type costs only the field
// reads and comparisons.
type Filter struct {
	expr string
	root filterNode

	// plans maps reflect.Type to *filterPlanned: the expression specialised
	// for values of that type.
	plans sync.Map
}

// filterEvalFn evaluates (part of) an expression against one value of the
// type it was planned for.
type filterEvalFn func(v reflect.Value) (bool, error)

// filterPlanned is a cached plan, or the reason the expression does not fit
// the type.
type filterPlanned struct {
	eval filterEvalFn
	err  error
}

// FilterError reports an expression that does not parse, or that does not
// fit the type it is applied to (unknown selector, operator that does not
// apply to the field, literal of the wrong kind). An HTTP handler answers
// it with 400.
type FilterError struct {
	Expr   string // the whole expression
	Column int    // 1-based column (in characters) where the problem is
	Msg    string // what is wrong, without position
	Detail string // why, or what to write instead; may be empty
}

// Error reads "filter: <Msg> at column <Column>[: <Detail>]".
func (e *FilterError) Error() string {
	s := fmt.Sprintf("filter: %s at column %d", e.Msg, e.Column)
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}

// filterErrorf builds a *FilterError pointing at byte offset in expr.
func filterErrorf(expr string, offset int, format string, args ...any) *FilterError {
	return &FilterError{Expr: expr, Column: filterColumn(expr, offset), Msg: fmt.Sprintf(format, args...)}
}

// because adds the explanation that follows the position.
func (e *FilterError) because(format string, args ...any) *FilterError {
	e.Detail = fmt.Sprintf(format, args...)
	return e
}

// CompileFilter parses expr once. Regular expressions are compiled here too,
// so a bad one is reported before any data is read. Whether the selectors
// exist is only known against a type: see Validate.
func CompileFilter(expr string) (*Filter, error) {
	root, err := filterParse(expr)
	if err != nil {
		return nil, err
	}
	return &Filter{expr: expr, root: root}, nil
}

// String returns the expression as written.
func (f *Filter) String() string { return f.expr }

// Validate checks the expression against the type of sample (only its type
// is used; a zero value or a typed nil pointer will do), so an HTTP handler
// can reject an unknown selector with 400 before evaluating anything:
//
//	if err := f.Validate(ServiceNode{}); err != nil { /* 400 */ }
//
// After Validate succeeds, Match on values of that type fails only where the
// selector passes through an interface value, whose concrete type is only
// known at Match time.
func (f *Filter) Validate(sample any) error {
	if sample == nil {
		return errors.New("filter: Validate needs a sample value of the filtered type, got nil")
	}
	_, err := f.planFor(reflect.TypeOf(sample))
	return err
}

// Match reports whether v satisfies the expression. v may be a struct, a
// pointer to one, a map, or any value the selectors can walk.
func (f *Filter) Match(v any) (bool, error) {
	if v == nil {
		return false, errors.New("filter: cannot match a nil value")
	}
	rv := reflect.ValueOf(v)
	eval, err := f.planFor(rv.Type())
	if err != nil {
		return false, err
	}
	return eval(rv)
}

// planFor returns the expression specialised for t, building it on first use.
func (f *Filter) planFor(t reflect.Type) (filterEvalFn, error) {
	if f == nil || f.root == nil {
		return nil, errors.New("filter: not compiled; build Filters with CompileFilter")
	}
	if cached, ok := f.plans.Load(t); ok {
		p := cached.(*filterPlanned)
		return p.eval, p.err
	}
	eval, err := f.root.plan(t)
	// Two goroutines may plan the same type at once; both plans are
	// equivalent, so whichever is stored first wins.
	cached, _ := f.plans.LoadOrStore(t, &filterPlanned{eval: eval, err: err})
	p := cached.(*filterPlanned)
	return p.eval, p.err
}

// FilterSlice returns the items that match f, in order, in a new slice. A nil
// filter means "no ?filter= given" and returns items unchanged. The input is
// never modified.
func FilterSlice[T any](f *Filter, items []T) ([]T, error) {
	if f == nil {
		return items, nil
	}
	eval, err := f.planFor(reflect.TypeFor[T]())
	if err != nil {
		return nil, err
	}
	// Elements of a slice are addressable, so evaluating rv.Index(i) reads
	// them in place with no copy or interface boxing per item.
	rv := reflect.ValueOf(items)
	out := make([]T, 0, len(items))
	for i := range items {
		ok, err := eval(rv.Index(i))
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, items[i])
		}
	}
	return out, nil
}

// FilterMap returns a new map holding the entries of items whose values
// match f (Consul filters maps such as /v1/agent/services by value). A nil
// filter returns items unchanged. The input is never modified.
func FilterMap[K comparable, V any](f *Filter, items map[K]V) (map[K]V, error) {
	if f == nil {
		return items, nil
	}
	eval, err := f.planFor(reflect.TypeFor[V]())
	if err != nil {
		return nil, err
	}
	// One reusable cell: each value is copied into it and evaluated there,
	// instead of boxing every value into an interface.
	var cell V
	rv := reflect.ValueOf(&cell).Elem()
	out := make(map[K]V)
	for k, v := range items {
		cell = v
		ok, err := eval(rv)
		if err != nil {
			return nil, err
		}
		if ok {
			out[k] = v
		}
	}
	return out, nil
}
