package catalog

import "unsafe"

// Apply's result must be an `any` (raft.FSM), and converting a Result to
// one allocates a 48-byte copy per command: one of the few allocations a
// registration had left. resultBoxes hands out those copies from chunks
// instead, one allocation per resultChunk commands.
//
// An interface holding a non-pointer type is a type word and a pointer to
// an immutable copy of the value; the runtime neither writes through that
// pointer nor needs it to point at the start of an allocation (small
// integers point into a static array, zero-sized values at one shared
// word). A box is written once, before it is handed out, and never again,
// so a Result boxed here behaves exactly like one boxed by the compiler:
// callers still write `res.(catalog.Result)`. The chunk is typed
// ([]Result), so the collector scans the boxes' pointers and keeps a chunk
// alive while any of its results is.

// resultChunk is the number of Results per chunk (3 KiB).
const resultChunk = 64

// eface is the layout of an empty interface value.
type eface struct {
	typ  unsafe.Pointer
	data unsafe.Pointer
}

// resultType is the type word of an `any` holding a Result.
var resultType = func() unsafe.Pointer {
	var v any = Result{}
	return (*eface)(unsafe.Pointer(&v)).typ
}()

// resultBoxes is the unused rest of the newest chunk. It belongs to the
// store's writer (guarded by Store.mu).
type resultBoxes struct {
	rest []Result
}

// box returns r as an `any`, as `any(r)` would.
func (b *resultBoxes) box(r Result) any {
	if len(b.rest) == 0 {
		b.rest = make([]Result, resultChunk)
	}
	p := &b.rest[0]
	b.rest = b.rest[1:]
	*p = r
	var v any
	e := (*eface)(unsafe.Pointer(&v))
	e.typ, e.data = resultType, unsafe.Pointer(p)
	return v
}
