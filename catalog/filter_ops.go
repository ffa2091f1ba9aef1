package catalog

import (
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
)

// The match operators, applied where a selector ends. Which operator applies
// to which kind follows go-bexpr:
//
//	==, !=            strings, bools, integers, unsigned, floats
//	is (not) empty    strings, lists, maps (length zero)
//	in / contains     strings (substring), lists of scalars (element
//	                  equality), maps (key present)
//	matches           strings (Go regexp, RE2 syntax)
//
// Anything else is a planning error, so Validate reports it up front.

// filterLiteral is the value written in the expression, kept as text until
// planning converts it to the kind of the field it meets.
type filterLiteral struct {
	raw    string
	offset int
}

func newFilterLiteral(raw string, offset int) *filterLiteral {
	return &filterLiteral{raw: raw, offset: offset}
}

// planTerminal plans the operator for a value of type t (never a pointer
// or interface: planFrom has followed those).
func (m *filterMatch) planTerminal(t reflect.Type) (filterEvalFn, error) {
	var positive func(reflect.Value) bool
	var err error
	switch m.op {
	case filterOpEqual, filterOpNotEqual:
		positive, err = m.planEqual(t)
	case filterOpIsEmpty, filterOpIsNotEmpty:
		positive, err = m.planEmpty(t)
	case filterOpIn, filterOpNotIn:
		positive, err = m.planContains(t)
	case filterOpMatches, filterOpNotMatches:
		positive, err = m.planMatches(t)
	}
	if err != nil {
		return nil, err
	}
	if m.op.negated() {
		return func(v reflect.Value) (bool, error) { return !positive(v), nil }, nil
	}
	return func(v reflect.Value) (bool, error) { return positive(v), nil }, nil
}

func (m *filterMatch) planEqual(t reflect.Type) (func(reflect.Value) bool, error) {
	if !filterIsScalar(t.Kind()) {
		hint := ""
		if k := t.Kind(); k == reflect.Slice || k == reflect.Array || k == reflect.Map {
			hint = `; to test membership write "<value> in <selector>" or "<selector> contains <value>"`
		}
		return nil, m.terminalErr().because("its type is %s, and %q compares strings, numbers and bools%s", t, m.op, hint)
	}
	want, err := m.coerceLiteral(t)
	if err != nil {
		return nil, err
	}
	return filterEqualFn(want), nil
}

func (m *filterMatch) planEmpty(t reflect.Type) (func(reflect.Value) bool, error) {
	switch t.Kind() {
	case reflect.String, reflect.Slice, reflect.Array, reflect.Map:
		return func(v reflect.Value) bool { return v.Len() == 0 }, nil
	}
	return nil, m.terminalErr().because("its type is %s, and %q needs a string, list or map", t, m.op)
}

func (m *filterMatch) planMatches(t reflect.Type) (func(reflect.Value) bool, error) {
	if t.Kind() != reflect.String {
		return nil, m.terminalErr().because("its type is %s, and %q needs a string", t, m.op)
	}
	re := m.re
	return func(v reflect.Value) bool { return re.MatchString(v.String()) }, nil
}

// planContains plans "in"/"contains": substring for strings, element
// equality for lists, key presence for maps.
func (m *filterMatch) planContains(t reflect.Type) (func(reflect.Value) bool, error) {
	switch t.Kind() {
	case reflect.String:
		sub := m.lit.raw
		return func(v reflect.Value) bool { return strings.Contains(v.String(), sub) }, nil
	case reflect.Map:
		key, err := m.coerceLiteral(t.Key())
		if err != nil {
			return nil, err
		}
		return func(v reflect.Value) bool { return v.MapIndex(key).IsValid() }, nil
	case reflect.Slice, reflect.Array:
		return m.planListContains(t.Elem())
	}
	return nil, m.terminalErr().because("its type is %s, and %q needs a string, list or map", t, m.op)
}

// planListContains plans membership in a list whose elements have type
// elem (pointers to scalars are followed; nil ones never match).
func (m *filterMatch) planListContains(elem reflect.Type) (func(reflect.Value) bool, error) {
	base := elem
	for hops := 0; base.Kind() == reflect.Pointer && hops < filterMaxHops; hops++ {
		base = base.Elem()
	}
	if base.Kind() == reflect.Interface {
		return m.containsDynamic, nil
	}
	if !filterIsScalar(base.Kind()) {
		return nil, m.terminalErr().because("it is a list of %s, and %q needs a list of strings, numbers or bools; select a field of the elements instead (e.g. %s.<Field>)",
			elem, m.op, m.selectorText(len(m.selector)))
	}
	want, err := m.coerceLiteral(base)
	if err != nil {
		return nil, err
	}
	equal := filterEqualFn(want)
	return func(v reflect.Value) bool {
		n := v.Len()
		for i := 0; i < n; i++ {
			e, ok := filterDeref(v.Index(i))
			if ok && equal(e) {
				return true
			}
		}
		return false
	}, nil
}

// containsDynamic is membership in a list of interface values ([]any): each
// element is compared in its own kind, and elements the literal cannot be
// converted to (the literal "web" against the number 3) simply do not
// match, as in go-bexpr.
func (m *filterMatch) containsDynamic(v reflect.Value) bool {
	n := v.Len()
	for i := 0; i < n; i++ {
		e, ok := filterDeref(v.Index(i))
		if !ok || !filterIsScalar(e.Kind()) {
			continue
		}
		want, err := filterCoerce(m.lit.raw, e.Type())
		if err == nil && filterEqualFn(want)(e) {
			return true
		}
	}
	return false
}

// filterDeref follows pointers and interfaces; ok is false on nil.
func filterDeref(v reflect.Value) (reflect.Value, bool) {
	for hops := 0; hops < filterMaxHops; hops++ {
		switch v.Kind() {
		case reflect.Pointer, reflect.Interface:
			if v.IsNil() {
				return v, false
			}
			v = v.Elem()
		default:
			return v, true
		}
	}
	return v, false
}

// coerceLiteral converts the literal to type t, reporting failure at the
// literal's position.
func (m *filterMatch) coerceLiteral(t reflect.Type) (reflect.Value, error) {
	want, err := filterCoerce(m.lit.raw, t)
	if err != nil {
		return reflect.Value{}, filterErrorf(m.expr, m.lit.offset, "cannot compare %s with %q",
			m.pathText(len(m.selector)), m.lit.raw).because("%v", err)
	}
	return want, nil
}

// terminalErr reports, at the selector, that the operator does not apply
// to the selected value; the caller adds why.
func (m *filterMatch) terminalErr() *FilterError {
	return filterErrorf(m.expr, m.offset, "%q cannot be applied to %s", m.op, m.pathText(len(m.selector)))
}

func filterIsScalar(k reflect.Kind) bool {
	switch k {
	case reflect.String, reflect.Bool,
		reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64:
		return true
	}
	return false
}

// filterCoerce converts the text raw into a value of scalar type t: "8080"
// for a uint16 port, "true" for a bool, anything for a string. Range is
// checked against t itself, so 300 is not a uint8.
func filterCoerce(raw string, t reflect.Type) (reflect.Value, error) {
	out := reflect.New(t).Elem()
	switch t.Kind() {
	case reflect.String:
		out.SetString(raw)
	case reflect.Bool:
		b, err := strconv.ParseBool(raw)
		if err != nil {
			return out, fmt.Errorf("the field's type is %s; write true or false", t)
		}
		out.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		i, err := strconv.ParseInt(raw, 10, t.Bits())
		if err != nil {
			return out, filterNumberErr(err, "an integer", t)
		}
		out.SetInt(i)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		u, err := strconv.ParseUint(raw, 10, t.Bits())
		if err != nil {
			return out, filterNumberErr(err, "an unsigned integer", t)
		}
		out.SetUint(u)
	case reflect.Float32, reflect.Float64:
		f, err := strconv.ParseFloat(raw, t.Bits())
		if err != nil {
			return out, filterNumberErr(err, "a number", t)
		}
		out.SetFloat(f)
	default:
		return out, fmt.Errorf("values of type %s cannot be compared", t)
	}
	return out, nil
}

// filterNumberErr explains a failed strconv parse of a literal for type t.
func filterNumberErr(err error, what string, t reflect.Type) error {
	if errors.Is(err, strconv.ErrRange) {
		return fmt.Errorf("out of range for the field's type %s", t)
	}
	return fmt.Errorf("not %s (the field's type is %s)", what, t)
}

// filterEqualFn returns a predicate comparing a value of want's kind with
// want. want has exactly the field's type, so float32 fields compare at
// float32 precision (0.1 == 0.1 holds).
func filterEqualFn(want reflect.Value) func(reflect.Value) bool {
	switch want.Kind() {
	case reflect.String:
		s := want.String()
		return func(v reflect.Value) bool { return v.String() == s }
	case reflect.Bool:
		b := want.Bool()
		return func(v reflect.Value) bool { return v.Bool() == b }
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		i := want.Int()
		return func(v reflect.Value) bool { return v.Int() == i }
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		u := want.Uint()
		return func(v reflect.Value) bool { return v.Uint() == u }
	default: // floats; filterCoerce admits nothing else
		f := want.Float()
		return func(v reflect.Value) bool { return v.Float() == f }
	}
}
