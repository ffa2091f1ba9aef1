package raft

import (
	"math/rand/v2"
	"slices"
	"testing"

	"roster/internal/testkit"
)

// TestLog_ChunksMatchFlatModel drives the chunked log and a flat slice with
// the same random appends, truncations and compactions across chunk
// boundaries and checks that every read agrees, and that views handed out
// by slice never change afterwards (the disk writer and the transport read
// them while the loop goes on).
func TestLog_ChunksMatchFlatModel(t *testing.T) {
	seed := testkit.Seed(t)
	rng := rand.New(rand.NewPCG(seed, 1))
	var l raftLog
	var flat []Entry // the model: entries after snap
	var snap, term uint64 = 0, 1
	type view struct {
		got, want []Entry
	}
	var views []view
	for step := range 3000 {
		last := snap + uint64(len(flat))
		switch op := rng.IntN(10); {
		case op < 6: // append a batch, sometimes crossing a chunk boundary
			n := 1 + rng.IntN(logChunk/3)
			if rng.IntN(4) == 0 {
				term++
			}
			es := make([]Entry, n)
			for i := range es {
				es[i] = Entry{Index: last + 1 + uint64(i), Term: term, Data: []byte{byte(step)}}
			}
			l.append(es...)
			flat = append(flat, es...)
		case op < 8 && len(flat) > 0: // truncate a suffix
			i := snap + 1 + uint64(rng.IntN(len(flat)))
			l.truncateFrom(i)
			flat = slices.Clone(flat[:i-snap-1])
		case op < 9 && len(flat) > 0: // compact a prefix
			i := snap + 1 + uint64(rng.IntN(len(flat)))
			snapTerm := flat[i-snap-1].Term
			l.compact(i)
			flat = slices.Clone(flat[i-snap:])
			snap = i
			if l.snapIndex != snap || l.snapTerm != snapTerm {
				t.Fatalf("step %d: compact(%d) left snap (%d,%d), want (%d,%d)", step, i, l.snapIndex, l.snapTerm, snap, snapTerm)
			}
		default: // take a view
			lo := snap + 1 + uint64(rng.IntN(len(flat)+1))
			hi := lo + uint64(rng.IntN(logChunk+2))
			got := l.slice(lo, hi)
			want := slices.Clone(flat[min(lo-snap-1, uint64(len(flat))):min(hi-snap-1, uint64(len(flat)))])
			views = append(views, view{got, want})
		}
		if l.firstIndex() != snap+1 || l.lastIndex() != snap+uint64(len(flat)) {
			t.Fatalf("step %d: log spans [%d,%d], model [%d,%d]", step, l.firstIndex(), l.lastIndex(), snap+1, snap+uint64(len(flat)))
		}
		if len(flat) > 0 {
			i := snap + 1 + uint64(rng.IntN(len(flat)))
			if e, ok := l.entry(i); !ok || e.Term != flat[i-snap-1].Term || e.Data[0] != flat[i-snap-1].Data[0] {
				t.Fatalf("step %d: entry(%d) = %+v, %v; want %+v", step, i, e, ok, flat[i-snap-1])
			}
		}
		for k, v := range views {
			if !slices.EqualFunc(v.got, v.want, func(a, b Entry) bool {
				return a.Index == b.Index && a.Term == b.Term && a.Data[0] == b.Data[0]
			}) {
				t.Fatalf("step %d: view %d changed after it was handed out", step, k)
			}
		}
		if len(views) > 20 {
			views = views[1:]
		}
	}
}

// TestLog_SliceAppendDoesNotWriteIntoLog: a caller appending to a view
// must get a copy, not write over the log's next slots.
func TestLog_SliceAppendDoesNotWriteIntoLog(t *testing.T) {
	var l raftLog
	l.append(Entry{Index: 1, Term: 1}, Entry{Index: 2, Term: 1})
	v := l.slice(1, 2)
	_ = append(v, Entry{Index: 99, Term: 9})
	if e, _ := l.entry(2); e.Index != 2 || e.Term != 1 {
		t.Fatalf("entry 2 = %+v after appending to a view of entry 1", e)
	}
}
