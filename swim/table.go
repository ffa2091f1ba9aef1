package swim

import "net/netip"

// The member table is laid out for clusters of tens of thousands: each
// member costs one 32-byte record, reached by a slot number, with no map
// of records and no per-member allocation. Names are interned to slots by
// a directory; records live in fixed-size chunks.
//
// The simulator gives many cores one shared directory, so every core uses
// the same slot for the same name, and starts them all on the same
// read-only chunks: a core copies a chunk the first time it writes to it
// (own). 10,000 simulated members, each knowing the 10,000 others, then
// cost hundreds of MB instead of 3 GB. The rule that makes this safe: a
// record pointer is used only until the next write to the table, and a
// handler that writes calls own first. A real node has a private directory
// and owns every chunk; reaped slots are reused.

// identity is what a member says about itself: name, address and tags.
// It is immutable once stored; an update replaces the pointer, so one
// identity can be shared by many records (and many simulated cores).
type identity struct {
	name string
	addr netip.AddrPort
	tags map[string]string
}

// directory interns member names to slot numbers.
type directory struct {
	slots  map[string]int32
	names  []string
	free   []int32 // reusable slots (private directories only)
	shared bool    // used by several cores: slots are never reused
}

func newDirectory(shared bool) *directory {
	return &directory{slots: map[string]int32{}, shared: shared}
}

func (d *directory) lookup(name string) (int32, bool) {
	s, ok := d.slots[name]
	return s, ok
}

func (d *directory) intern(name string) int32 {
	if s, ok := d.slots[name]; ok {
		return s
	}
	var s int32
	if n := len(d.free); n > 0 {
		s, d.free = d.free[n-1], d.free[:n-1]
		d.names[s] = name
	} else {
		s = int32(len(d.names))
		d.names = append(d.names, name)
	}
	d.slots[name] = s
	return s
}

// release forgets a reaped name so its slot can be reused, unless other
// cores share the directory.
func (d *directory) release(slot int32) {
	if d.shared {
		return
	}
	delete(d.slots, d.names[slot])
	d.names[slot] = ""
	d.free = append(d.free, slot)
}

const (
	chunkShift = 6
	chunkSize  = 1 << chunkShift
)

// memberTable holds one core's records, indexed by directory slot. A
// record with a nil identity is a slot this core does not know.
type memberTable struct {
	dir    *directory
	chunks []*[chunkSize]memberState
	owned  []bool // chunks this table may write; the others are shared
	count  int    // known records
}

// get returns the record for name, or nil if unknown.
func (t *memberTable) get(name string) *memberState {
	s, ok := t.dir.lookup(name)
	if !ok {
		return nil
	}
	return t.at(s)
}

// at returns the record in slot s, or nil if this core does not know it.
func (t *memberTable) at(s int32) *memberState {
	c := int(s >> chunkShift)
	if c >= len(t.chunks) || t.chunks[c] == nil {
		return nil
	}
	m := &t.chunks[c][s&(chunkSize-1)]
	if m.identity == nil {
		return nil
	}
	return m
}

// add stores a new record for id and returns it; id.name must be unknown.
func (t *memberTable) add(id *identity, state State, inc uint32, now int64) *memberState {
	s := t.dir.intern(id.name)
	m := t.ownSlot(s)
	*m = memberState{identity: id, state: state, incarnation: inc, stateTick: now, slot: s}
	t.count++
	return m
}

// own returns a writable pointer to m's record, copying its chunk first
// if it is shared. Callers must use the returned pointer from then on.
func (t *memberTable) own(m *memberState) *memberState { return t.ownSlot(m.slot) }

func (t *memberTable) ownSlot(s int32) *memberState {
	c := int(s >> chunkShift)
	for len(t.chunks) <= c {
		t.chunks = append(t.chunks, nil)
		t.owned = append(t.owned, false)
	}
	switch {
	case t.chunks[c] == nil:
		t.chunks[c] = new([chunkSize]memberState)
	case !t.owned[c]:
		cp := *t.chunks[c]
		t.chunks[c] = &cp
	}
	t.owned[c] = true
	return &t.chunks[c][s&(chunkSize-1)]
}

// share makes this table start from shared, read-only chunks (the
// simulator's common starting table), keeping the chunk that holds keep.
func (t *memberTable) share(chunks []*[chunkSize]memberState, count int, keep *memberState) {
	own := *keep
	t.chunks = append(t.chunks[:0], chunks...)
	t.owned = make([]bool, len(chunks))
	*t.ownSlot(own.slot) = own
	t.count = count
}

// remove forgets m.
func (t *memberTable) remove(m *memberState) {
	s := m.slot
	*t.own(m) = memberState{}
	t.count--
	t.dir.release(s)
}

// slots is one past the highest slot that may hold a record.
func (t *memberTable) slots() int32 { return int32(len(t.dir.names)) }

// each calls f for every known record in slot order (deterministic).
func (t *memberTable) each(f func(*memberState)) {
	for ci, ch := range t.chunks {
		if ch == nil {
			continue
		}
		for i := range ch {
			if ch[i].identity != nil {
				f(&t.chunks[ci][i])
			}
		}
	}
}
