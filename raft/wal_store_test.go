package raft

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"roster/internal/testkit"
)

func openWALT(t *testing.T, dir string, segBytes int64) *WALStore {
	t.Helper()
	s, err := openWALStore(dir, segBytes)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func walEntries(first, last, term uint64, tag string) []Entry {
	var es []Entry
	for i := first; i <= last; i++ {
		es = append(es, Entry{Index: i, Term: term, Type: EntryCommand, Data: []byte(fmt.Sprintf("%s-%d", tag, i))})
	}
	return es
}

// A reopened WAL resumes term, vote and log, including a replaced suffix
// and a compacted prefix.
func TestWALStore_ResumesAfterReopen(t *testing.T) {
	dir := t.TempDir()
	testStoreResumesAfterReopen(t, func() durableStore { return openWALT(t, dir, walSegmentBytes) })
}

// durableStore is a log and hard-state store kept on disk (WALStore,
// BoltStore).
type durableStore interface {
	LogStore
	StableStore
	hardStateWriter
	Close() error
}

// testStoreResumesAfterReopen checks that a store reopened by open (on
// the same files each call) resumes term, vote and log, entry types
// included, after a write of entries with the hard state and a suffix
// replacement (a follower repairing its log, Raft §5.3), and keeps a
// compacted prefix gone across a reopen.
func testStoreResumesAfterReopen(t *testing.T, open func() durableStore) {
	t.Helper()
	s := open()
	es := []Entry{{Index: 1, Term: 1, Type: EntryConfiguration, Data: []byte("{}")}, {Index: 2, Term: 3, Type: EntryCommand, Data: []byte("a")}, {Index: 3, Term: 3, Type: EntryCommand, Data: []byte("b")}}
	if err := s.StoreLogsAndState(es, keyHardState, encodeHardState(HardState{Term: 4, Vote: "x"})); err != nil {
		t.Fatal(err)
	}
	if err := s.StoreLogs([]Entry{{Index: 3, Term: 4, Type: EntryCommand, Data: []byte("c")}}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = open()
	hs, got, err := loadState(s, s, SnapshotMeta{})
	if err != nil {
		t.Fatal(err)
	}
	if hs != (HardState{Term: 4, Vote: "x"}) || len(got) != 3 || string(got[2].Data) != "c" || got[2].Term != 4 || got[0].Type != EntryConfiguration {
		t.Fatalf("reopened: %+v %+v", hs, got)
	}
	if err := s.DeleteRange(1, 2); err != nil {
		t.Fatal(err)
	}
	if first, _ := s.FirstIndex(); first != 3 {
		t.Fatalf("first index after DeleteRange = %d, want 3", first)
	}
	s.Close()
	s = open()
	defer s.Close()
	if first, _ := s.FirstIndex(); first != 3 {
		t.Fatalf("first index after DeleteRange and reopen = %d, want 3", first)
	}
}

// A write cut short by a crash (a partial record at the end of the newest
// segment) is dropped on open; everything before it survives, and the
// store keeps appending after it.
func TestWALStore_TornTailIsCutOff(t *testing.T) {
	for _, extra := range []int64{3, walRecHeader + 5} {
		dir := t.TempDir()
		s := openWALT(t, dir, walSegmentBytes)
		if err := s.StoreLogs(walEntries(1, 5, 1, "a")); err != nil {
			t.Fatal(err)
		}
		path, good := s.segs[0].f.Name(), s.segs[0].size
		if err := s.StoreLogs(walEntries(6, 8, 1, "a")); err != nil {
			t.Fatal(err)
		}
		s.Close()
		if err := os.Truncate(path, good+extra); err != nil {
			t.Fatal(err)
		}
		s = openWALT(t, dir, walSegmentBytes)
		if last, _ := s.LastIndex(); last != 5 {
			t.Fatalf("cut %d bytes into a record: last index %d, want 5", extra, last)
		}
		if err := s.StoreLogs(walEntries(6, 6, 2, "b")); err != nil {
			t.Fatal(err)
		}
		s.Close()
		s = openWALT(t, dir, walSegmentBytes)
		if e, err := s.GetLog(6); err != nil || string(e.Data) != "b-6" || e.Term != 2 {
			t.Fatalf("entry 6 written after the torn write: %+v, %v", e, err)
		}
		if last, _ := s.LastIndex(); last != 6 {
			t.Fatalf("last index %d, want 6", last)
		}
	}
}

// A damaged record in a segment that a newer one follows is corruption,
// not a torn write: opening fails with an error naming the file.
func TestWALStore_DamagedOlderSegmentIsAnError(t *testing.T) {
	dir := t.TempDir()
	s := openWALT(t, dir, 256)
	for i := uint64(1); i <= 20; i++ {
		if err := s.StoreLogs(walEntries(i, i, 1, "x")); err != nil {
			t.Fatal(err)
		}
	}
	if len(s.segs) < 2 {
		t.Fatalf("want several segments, have %d", len(s.segs))
	}
	path := s.segs[0].f.Name()
	s.Close()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)-2] ^= 0xff
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := openWALStore(dir, 256); err == nil {
		t.Fatal("opened a log with a damaged older segment")
	}
}

// Refused writes leave the store as it was.
func TestWALStore_RefusesGapsAndMiddleDeletes(t *testing.T) {
	s := openWALT(t, t.TempDir(), walSegmentBytes)
	if err := s.StoreLogs(walEntries(1, 5, 1, "a")); err != nil {
		t.Fatal(err)
	}
	if err := s.StoreLogs(walEntries(7, 8, 1, "a")); err == nil {
		t.Fatal("stored entry 7 after 5")
	}
	if err := s.StoreLogs([]Entry{{Index: 6, Term: 1}, {Index: 8, Term: 1}}); err == nil {
		t.Fatal("stored non-consecutive entries")
	}
	if err := s.DeleteRange(2, 3); err == nil {
		t.Fatal("deleted from the middle")
	}
	if first, last := s.first, s.last; first != 1 || last != 5 {
		t.Fatalf("log %d..%d after refused writes, want 1..5", first, last)
	}
}

// Randomized against MemStore: appends, suffix replacements, compactions,
// whole-log deletes and stable keys, with small segments (so segments roll
// and old ones are deleted) and reopens in between; the WAL always reads
// back what MemStore holds.
func TestWALStore_MatchesMemStore(t *testing.T) {
	rng := testkit.Rand(t)
	dir := t.TempDir()
	s := openWALT(t, dir, 512)
	m := NewMemStore()
	term := uint64(1)
	for step := range 600 {
		last, _ := m.LastIndex()
		first, _ := m.FirstIndex()
		switch op := rng.IntN(10); {
		case op < 5: // append, or replace a suffix
			from := last + 1
			if last > first && rng.IntN(3) == 0 {
				from = first + 1 + uint64(rng.IntN(int(last-first)))
				term++
			}
			es := walEntries(from, from+uint64(rng.IntN(4)), term, fmt.Sprint(step))
			mustBoth(t, s.StoreLogs(es), m.StoreLogs(es))
		case op < 6 && last > first: // compact a prefix
			hi := first + uint64(rng.IntN(int(last-first)))
			mustBoth(t, s.DeleteRange(first, hi), m.DeleteRange(first, hi))
		case op < 7 && rng.IntN(4) == 0: // delete everything (snapshot install)
			mustBoth(t, s.DeleteRange(first, last), m.DeleteRange(first, last))
		case op < 9:
			k, v := []byte(fmt.Sprint("k", rng.IntN(3))), []byte(fmt.Sprint(step))
			mustBoth(t, s.Set(k, v), m.Set(k, v))
		default:
			s.Close()
			s = openWALT(t, dir, 512)
		}
		compareStores(t, step, s, m)
	}
	if s.segs[len(s.segs)-1].seq < 4 {
		t.Errorf("only %d segments written; the test should roll several", s.segs[len(s.segs)-1].seq)
	}
	// Dead segments go oldest first, so what is kept starts at the segment
	// holding the first stored entry. (A count bound is wrong: one old
	// entry still stored keeps every segment after its own.)
	if len(s.segs) > 1 && s.segs[0].live == 0 {
		t.Errorf("%d segments kept, the oldest (%d) holding no entry; dead ones should have been deleted", len(s.segs), s.segs[0].seq)
	}
}

func mustBoth(t *testing.T, errWAL, errMem error) {
	t.Helper()
	if errWAL != nil || errMem != nil {
		t.Fatalf("wal: %v, mem: %v", errWAL, errMem)
	}
}

func compareStores(t *testing.T, step int, s *WALStore, m *MemStore) {
	t.Helper()
	wf, _ := s.FirstIndex()
	wl, _ := s.LastIndex()
	mf, _ := m.FirstIndex()
	ml, _ := m.LastIndex()
	if wf != mf || wl != ml {
		t.Fatalf("step %d: wal log %d..%d, mem %d..%d", step, wf, wl, mf, ml)
	}
	for i := mf; i <= ml && i != 0; i++ {
		we, err := s.GetLog(i)
		me, _ := m.GetLog(i)
		if err != nil || we.Term != me.Term || we.Type != me.Type || string(we.Data) != string(me.Data) {
			t.Fatalf("step %d: entry %d: wal %+v (%v), mem %+v", step, i, we, err, me)
		}
	}
	for k := range 3 {
		key := []byte(fmt.Sprint("k", k))
		wv, _ := s.Get(key)
		mv, _ := m.Get(key)
		if string(wv) != string(mv) {
			t.Fatalf("step %d: key %s: wal %q, mem %q", step, key, wv, mv)
		}
	}
}

// Files that are not segments are not silently ignored.
func TestWALStore_RefusesStrangeFiles(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "7.wal"), []byte(walMagic), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenWALStore(dir); err == nil {
		t.Fatal("opened a directory with a misnamed segment")
	}
}

// A crash while a segment was being started (its header not yet synced)
// leaves a short file under the segment's temporary name; opening removes
// it and loses nothing.
func TestWALStore_CrashWhileStartingASegment(t *testing.T) {
	dir := t.TempDir()
	s := openWALT(t, dir, walSegmentBytes)
	if err := s.StoreLogsAndState(walEntries(1, 3, 1, "a"), keyHardState, encodeHardState(HardState{Term: 1, Vote: "s1"})); err != nil {
		t.Fatal(err)
	}
	next := s.segs[len(s.segs)-1].seq + 1
	s.Close()
	if err := os.WriteFile(filepath.Join(dir, walSegmentName(next)+".tmp"), []byte(walMagic[:3]), 0o600); err != nil {
		t.Fatal(err)
	}
	s = openWALT(t, dir, walSegmentBytes)
	hs, es, err := loadState(s, s, SnapshotMeta{})
	if err != nil || hs.Vote != "s1" || len(es) != 3 {
		t.Fatalf("after reopening: %+v, %d entries, %v", hs, len(es), err)
	}
	// The key outlives the segments that held it once compaction deletes them.
	if err := s.StoreLogs(walEntries(4, 4, 1, "a")); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteRange(1, 3); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = openWALT(t, dir, walSegmentBytes)
	if v, _ := s.Get(keyHardState); string(v) != string(encodeHardState(HardState{Term: 1, Vote: "s1"})) {
		t.Fatalf("hard state after compaction and reopen: %q", v)
	}
}

// After a failed write the store refuses every later one, even once the
// file works again: a failed fdatasync may have dropped the pages it was
// syncing, and a retry that succeeds would claim they are durable. The
// log stored before the failure replays on reopen.
func TestWALStore_AFailedWriteStopsAllLaterWrites(t *testing.T) {
	dir := t.TempDir()
	s := openWALT(t, dir, walSegmentBytes)
	if err := s.StoreLogs(walEntries(1, 3, 1, "a")); err != nil {
		t.Fatal(err)
	}
	seg := s.segs[len(s.segs)-1]
	good := seg.f
	ro, err := os.Open(good.Name()) // read-only: WriteAt fails
	if err != nil {
		t.Fatal(err)
	}
	seg.f = ro
	if err := s.StoreLogs(walEntries(4, 4, 1, "a")); err == nil {
		t.Fatal("a write to a read-only segment succeeded")
	}
	seg.f = good
	ro.Close()
	if err := s.StoreLogs(walEntries(4, 4, 1, "a")); err == nil {
		t.Fatal("a write after a failed one succeeded")
	}
	if err := s.Set([]byte("k"), []byte("v")); err == nil {
		t.Fatal("a stable write after a failed one succeeded")
	}
	s.Close()
	s = openWALT(t, dir, walSegmentBytes)
	if last, _ := s.LastIndex(); last != 3 {
		t.Fatalf("last index after reopen = %d, want 3", last)
	}
}

func walSegmentFiles(t *testing.T, dir string) []string {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "*.wal*"))
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// A server that restarts in a loop (nothing written, or only its hard
// state, as an election bumps it) adds no segment files: an open writes
// on in a newest segment that holds only every stable key. What is
// written between the opens all replays.
func TestWALStore_RestartsWithoutWritesAddNoSegments(t *testing.T) {
	dir := t.TempDir()
	m := NewMemStore()
	s := openWALT(t, dir, walSegmentBytes)
	es := walEntries(1, 3, 1, "a")
	mustBoth(t, s.StoreLogs(es), m.StoreLogs(es))
	mustBoth(t, s.Set([]byte("k0"), []byte("v0")), m.Set([]byte("k0"), []byte("v0")))
	s.Close()
	s = openWALT(t, dir, walSegmentBytes) // the entries' segment is followed by a header-only one
	s.Close()
	files := walSegmentFiles(t, dir)
	if len(files) != 2 {
		t.Fatalf("after one restart: %v, want the first segment and one header-only one", files)
	}
	for i := range 20 {
		s = openWALT(t, dir, walSegmentBytes)
		if i%2 == 1 { // only stable keys written: still nothing else in the segment
			k, v := []byte(fmt.Sprint("k", i%3)), []byte(fmt.Sprint("v", i))
			mustBoth(t, s.Set(k, v), m.Set(k, v))
		}
		compareStores(t, i, s, m)
		s.Close()
		if got := walSegmentFiles(t, dir); !slices.Equal(got, files) {
			t.Fatalf("restart %d: segments %v, were %v", i, got, files)
		}
	}
	// Entries written between restarts replay; an open after them starts
	// a segment again, which the next restarts reuse.
	next := uint64(4)
	for i := range 6 {
		s = openWALT(t, dir, walSegmentBytes)
		compareStores(t, 100+i, s, m)
		if i%3 == 0 {
			es := walEntries(next, next, 2, "b")
			next++
			mustBoth(t, s.StoreLogs(es), m.StoreLogs(es))
		}
		s.Close()
	}
	if got := walSegmentFiles(t, dir); len(got) != 4 {
		t.Fatalf("after two writes of entries, restarts left %d segments (%v), want 4", len(got), got)
	}
	s = openWALT(t, dir, walSegmentBytes)
	compareStores(t, 200, s, m)
}

// A write to a reused segment that a crash tears is cut off like any
// other: the next open has the state before it, or after it when it is
// whole, and still adds no segment.
func TestWALCrash_TornWriteToAReusedSegment(t *testing.T) {
	dir := t.TempDir()
	s := openWALT(t, dir, walSegmentBytes)
	if err := s.StoreLogsAndState(walEntries(1, 2, 1, "a"), keyHardState, encodeHardState(HardState{Term: 1})); err != nil {
		t.Fatal(err)
	}
	s.Close()
	openWALT(t, dir, walSegmentBytes).Close()
	s = openWALT(t, dir, walSegmentBytes)
	if n := len(s.segs); n != 2 {
		t.Fatalf("%d segments open, want the first one and the reused header-only one", n)
	}
	preFiles, pre := readDir(t, dir), readWALState(t, s)
	if err := s.StoreLogsAndState(walEntries(3, 3, 2, "b"), keyHardState, encodeHardState(HardState{Term: 2, Vote: "n1"})); err != nil {
		t.Fatal(err)
	}
	post := readWALState(t, s)
	name, data := closeAndReadNewest(t, dir, s)
	keyOnly := pre
	keyOnly.kv = post.kv
	for cut := len(data) - len(s.buf); cut <= len(data); cut++ {
		files := maps.Clone(preFiles)
		files[name] = data[:cut]
		crashed := writeDir(t, files)
		got := reopenState(t, crashed, walSegmentBytes)
		if !got.equal(pre) && !got.equal(keyOnly) && (cut < len(data) || !got.equal(post)) {
			t.Fatalf("cut at byte %d of %d: got %v, want %v", cut, len(data), got, pre)
		}
		// A segment whose tail was cut is not reused: the first open may
		// add one, the second adds none.
		n := len(walSegmentFiles(t, crashed))
		if again := reopenState(t, crashed, walSegmentBytes); !again.equal(got) {
			t.Fatalf("cut at byte %d of %d: reopened %v, then %v", cut, len(data), got, again)
		}
		if n2 := len(walSegmentFiles(t, crashed)); (n2 != 2 && n2 != 3) || n2 != n {
			t.Fatalf("cut at byte %d of %d: %d segments after one open, %d after two, want 2 or 3 both times", cut, len(data), n, n2)
		}
	}
}
