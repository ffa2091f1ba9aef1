package catalog

import (
	"errors"
	"reflect"
	"testing"

	"roster/raft"
)

// TestResultBoxes checks that a Result boxed from a chunk behaves like one
// the compiler boxes: assertions, type switches, reflection and equality
// see the same value, and later boxes never overwrite earlier ones.
func TestResultBoxes(t *testing.T) {
	var b resultBoxes
	errX := errors.New("x")
	var boxed []any
	for i := range 3*resultChunk + 5 {
		r := Result{Index: uint64(i) + 1, OK: i%2 == 0}
		if i%7 == 0 {
			r.Err = errX
		}
		boxed = append(boxed, b.box(r))
	}
	for i, v := range boxed {
		want := Result{Index: uint64(i) + 1, OK: i%2 == 0}
		if i%7 == 0 {
			want.Err = errX
		}
		got, ok := v.(Result)
		if !ok || got != want {
			t.Fatalf("box %d holds %#v (%v), want %#v", i, v, ok, want)
		}
		if v != any(want) {
			t.Fatalf("box %d does not compare equal to any(%#v)", i, want)
		}
		if reflect.TypeOf(v) != reflect.TypeFor[Result]() || !reflect.DeepEqual(v, any(want)) {
			t.Fatalf("box %d: reflection sees %T %#v", i, v, v)
		}
		switch v.(type) {
		case Result:
		default:
			t.Fatalf("box %d: type switch misses Result", i)
		}
	}
}

// TestApplyResultIsAResult checks the raft.FSM contract callers rely on:
// Apply's result asserts to Result with the entry's index.
func TestApplyResultIsAResult(t *testing.T) {
	s, _ := New(Config{})
	for i := range 100 {
		e := raft.Entry{Index: uint64(i) + 1, Type: raft.EntryCommand, Data: EncodeCommand(benchRegister(i))}
		r, ok := s.Apply(e).(Result)
		if !ok || r.Err != nil || r.Index != uint64(i)+1 {
			t.Fatalf("Apply(%d) = %#v (%v)", i+1, r, ok)
		}
	}
}
