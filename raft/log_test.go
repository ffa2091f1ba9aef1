package raft

import (
	"errors"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"
	"time"
	"weak"

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

// Compaction leaves no compacted entry reachable from the log, not even
// those before the first live one in its chunk (with the zero-copy codec
// each pins a whole AppendEntries frame), and views taken before it keep
// their contents.
func TestLog_CompactReleasesTheDeadPrefixOfItsChunk(t *testing.T) {
	var l raftLog
	var dead weak.Pointer[[64]byte]
	for i := uint64(1); i <= logChunk+100; i++ {
		data := new([64]byte)
		data[0] = byte(i)
		if i == 10 {
			dead = weak.Make(data)
		}
		l.append(Entry{Index: i, Term: 1, Data: data[:]})
	}
	view := l.slice(2000, 2010)
	l.compact(3000)
	if l.off != 3000 {
		t.Fatalf("off = %d, want 3000 (the test wants a dead prefix in chunk 0)", l.off)
	}
	for p, e := range l.chunks[0][:l.off] {
		if e.Data != nil {
			t.Fatalf("compacted entry %d still holds its data in chunk 0", p+1)
		}
	}
	for k, e := range view {
		if want := uint64(2000 + k); e.Index != want || e.Data[0] != byte(want) {
			t.Fatalf("a view taken before compaction changed: %+v at %d", e, k)
		}
	}
	for _, i := range []uint64{3001, logChunk, logChunk + 100} {
		if e, ok := l.entry(i); !ok || e.Index != i || e.Data[0] != byte(i) {
			t.Fatalf("entry %d after compaction: %+v %v", i, e, ok)
		}
	}
	l.append(Entry{Index: logChunk + 101, Term: 1})
	if e, _ := l.entry(logChunk + 101); e.Index != logChunk+101 {
		t.Fatalf("append after compaction: %+v", e)
	}
	runtime.KeepAlive(view)
	testkit.WaitFor(t, 5*time.Second, "compacted entry 10's data collected", func() error {
		runtime.GC()
		if dead.Value() != nil {
			return errors.New("still reachable")
		}
		return nil
	})
}
