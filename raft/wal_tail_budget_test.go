package raft

import (
	"encoding/binary"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Tests that opening the log does bounded work: the torn-tail search
// within its budget, replay linear in the log.

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
	name, data := closeAndReadNewest(t, dir, s)
	write := len(appendWALState(nil, 0, keyHardState, hs)) + len(appendWALEntries(nil, 0, walRecEntriesWithState, es))
	hsOff := len(data) - write
	if data[hsOff+walRecHeader] != walRecState {
		t.Fatalf("no stable-key record at offset %d", hsOff)
	}
	clear(data[hsOff : hsOff+len(appendWALState(nil, 0, keyHardState, hs))]) // its page never landed
	files := maps.Clone(preFiles)
	files[name] = data
	st := reopenState(t, writeDir(t, files), walSegmentBytes)
	if !st.equal(pre) {
		t.Errorf("opened as %v, want %v", st, pre)
	}
}

// walHeaderChains is size bytes of interleaved chains of entry headers:
// row after row of c headers, each one's data reaching the same column
// of the next row, with term and type bytes that frame, at every header,
// a candidate entries record whose walk follows its chain. Each of the
// size/21 candidates walks about sqrt(size)/21 headers before it fails.
func walHeaderChains(size int) []byte {
	c := 1
	for 21*c*21*c < size {
		c++
	}
	stride := 21 * c
	data := make([]byte, size)
	for r := 0; r < size/stride-1; r++ {
		for j := range c {
			x := r*stride + j*21
			binary.LittleEndian.PutUint64(data[x:], uint64(j*1000000+r+1))
			binary.LittleEndian.PutUint64(data[x+8:], uint64(size/2))
			data[x+16] = 1
			binary.LittleEndian.PutUint32(data[x+17:], uint32(stride-21))
		}
	}
	return data
}

// Crafted bytes after a bad record whose candidates walk long chains of
// entry headers cost the search no more than its budget: the headers
// walked are charged as checksum work is, and once the budget is spent
// the bad record counts as damage.
func TestWALTail_EntryWalksAreChargedToTheBudget(t *testing.T) {
	_, s := walTornTailLog(t)
	defer s.Close()
	tail := append([]byte{0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0}, walHeaderChains(1<<20)...)
	const budget = 4 << 20
	left := budget
	if s.tailSearch(tail, 0, 0, &left) {
		t.Errorf("crafted header chains: torn, want damage (the budget is spent)")
	}
	if left >= 0 {
		t.Errorf("crafted header chains: %d of %d budget bytes left, want it spent", left, budget)
	}
	// Open, in both formats: a salted segment's tail after its whole
	// header (a bad tail is searched only after it), and the first
	// format's after its magic.
	for _, salted := range []bool{true, false} {
		dir := t.TempDir()
		header, _ := walTestHeader(salted)
		if err := os.WriteFile(filepath.Join(dir, walSegmentName(1)), append(header, tail...), 0o600); err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprintf("is damaged at offset %d (whole records", len(header))
		if _, err := OpenWALStore(dir); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("salted %v: open over crafted header chains: %v, want %q", salted, err, want)
		}
	}
}

// A torn batch of many small commands, whose entry headers frame
// stable-key candidates as long as their indexes, is cut back, and the
// search spends a small part of its budget on it.
func TestWALCrash_TornBatchOfSmallCommandsIsCutBack(t *testing.T) {
	const walBatchLast = 20008
	dir, s := walTornTailLog(t)
	pre, preFiles := readWALState(t, s), readDir(t, dir)
	es := walEntries(9, walBatchLast, 2, "")
	for i := range es {
		es[i].Data = fmt.Appendf(nil, "SET service/web-%d/health passing-%d", i, i*7)
	}
	if err := s.StoreLogs(es); err != nil {
		t.Fatal(err)
	}
	name, data := closeAndReadNewest(t, dir, s)
	torn := data[:len(data)-1]
	start := len(data) - len(appendWALEntries(nil, 0, walRecEntries, es))
	seed, _, err := walReadHeader(data)
	if err != nil {
		t.Fatal(err)
	}
	left := walTornScanBytes // searched with the log as it was before the write
	if !openWALT(t, writeDir(t, preFiles), walSegmentBytes).tailSearch(torn, start, seed, &left) {
		t.Fatalf("torn batch: damage, want torn (%d left)", left)
	}
	if spent := walTornScanBytes - left; spent > walTornScanBytes/4 {
		t.Errorf("torn batch of %d bytes: the search spent %d bytes of work, want at most %d", len(torn)-start, spent, walTornScanBytes/4)
	}
	files := maps.Clone(preFiles)
	files[name] = torn
	if st := reopenState(t, writeDir(t, files), walSegmentBytes); !st.equal(pre) {
		t.Errorf("opened as %v, want %v", st, pre)
	}
}

// Replaying many one-entry compactions costs memory linear in the log,
// not a copy of the index per compaction.
func TestWALStore_ReplayOfManyCompactionsIsLinear(t *testing.T) {
	const n = 20000
	dir := t.TempDir()
	es := make([]Entry, n)
	for i := range es {
		es[i] = Entry{Index: uint64(i + 1), Term: 1, Type: EntryCommand}
	}
	b, seed := walTestHeader(true)
	b = appendWALEntries(b, seed, walRecEntries, es)
	for i := 1; i < n; i++ {
		b = appendWALDelete(b, seed, walRecCompact, uint64(i))
	}
	if err := os.WriteFile(filepath.Join(dir, walSegmentName(1)), b, 0o600); err != nil {
		t.Fatal(err)
	}
	var s *WALStore
	var err error
	allocs := bytesAllocated(func() { s, err = openWALStore(dir, walSegmentBytes) })
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if first, _ := s.FirstIndex(); first != n {
		t.Fatalf("first index %d, want %d", first, n)
	}
	// A copy per compaction would allocate about n*n/2 places (24 bytes each).
	if limit := uint64(1<<20 + 8*len(b)); allocs > limit {
		t.Errorf("replaying %d compactions allocated %d bytes, want at most %d", n-1, allocs, limit)
	}
}
