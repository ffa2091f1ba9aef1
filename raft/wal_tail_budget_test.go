package raft

import (
	"maps"
	"os"
	"path/filepath"
	"testing"
)

// Crash tests for the work budget of the torn-tail search.

// withTornScanBudget lowers the search budget for one test, so that
// writes larger than it stay small enough for a fast test.
func withTornScanBudget(t *testing.T, budget int) {
	t.Helper()
	old := walTornScanBudget
	walTornScanBudget = budget
	t.Cleanup(func() { walTornScanBudget = old })
}

// A group commit of a hard state and entries larger than the search
// budget, torn so that the hard state's page never landed while the
// entries record did, is cut back to the state before it: that entries
// record, ending the file, may be the torn write's own, and its checksum
// is not charged to the budget.
func TestWALCrash_TornGroupCommitLargerThanBudgetIsCutBack(t *testing.T) {
	withTornScanBudget(t, 1<<20)
	dir, s := walTornTailLog(t)
	pre, preFiles := readWALState(t, s), readDir(t, dir)
	val := make([]byte, 512<<10)
	for i := range val {
		val[i] = byte(i*7 + i>>9)
	}
	es := walEntries(9, 16, 3, "") // 4 MiB: four times the budget
	for i := range es {
		es[i].Data = val
	}
	hs := encodeHardState(HardState{Term: 3})
	if err := s.StoreLogsAndState(es, keyHardState, hs); err != nil {
		t.Fatal(err)
	}
	seg := s.segs[len(s.segs)-1]
	name := walSegmentName(seg.seq)
	s.Close()
	data, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	write := len(appendWALState(nil, keyHardState, hs)) + len(appendWALEntries(nil, walRecEntriesWithState, es))
	hsOff := len(data) - write
	if data[hsOff+walRecHeader] != walRecState {
		t.Fatalf("no stable-key record at offset %d", hsOff)
	}
	clear(data[hsOff : hsOff+len(appendWALState(nil, keyHardState, hs))]) // its page never landed
	files := maps.Clone(preFiles)
	files[name] = data
	st := reopenState(t, writeDir(t, files), walSegmentBytes)
	if !st.equal(pre) {
		t.Errorf("opened as %v, want %v", st, pre)
	}
}
