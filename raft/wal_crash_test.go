package raft

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"roster/internal/testkit"
)

// Crash tests for WALStore: a crash is simulated by cutting or damaging
// segment files and reopening. Raft needs every acknowledged write back
// after a restart (hard state before a vote or term is answered, entries
// before AppendEntries success, §5.3 suffix deletes) and an unsynced write
// either whole or gone; damage that is not a torn write must be refused.

// walState is everything a store reads back.
type walState struct {
	first, last uint64
	entries     []Entry
	kv          map[string]string
}

func readWALState(t *testing.T, s *WALStore) walState {
	t.Helper()
	st := walState{kv: map[string]string{}}
	st.first, _ = s.FirstIndex()
	st.last, _ = s.LastIndex()
	for i := st.first; i <= st.last && i != 0; i++ {
		e, err := s.GetLog(i)
		if err != nil {
			t.Fatalf("entry %d of %d..%d: %v", i, st.first, st.last, err)
		}
		st.entries = append(st.entries, e)
	}
	s.mu.Lock()
	for k, v := range s.kv {
		st.kv[k] = string(v)
	}
	s.mu.Unlock()
	return st
}

func (a walState) equal(b walState) bool {
	return a.first == b.first && a.last == b.last && maps.Equal(a.kv, b.kv) &&
		slices.EqualFunc(a.entries, b.entries, func(x, y Entry) bool {
			return x.Index == y.Index && x.Term == y.Term && x.Type == y.Type && bytes.Equal(x.Data, y.Data)
		})
}

func (a walState) String() string {
	return fmt.Sprintf("log %d..%d (%d entries), keys %v", a.first, a.last, len(a.entries), a.kv)
}

// checkTermCoversLog is the check NewCore makes on restart: no stored
// entry has a term above the stored current term.
func checkTermCoversLog(t *testing.T, st walState, what string) {
	t.Helper()
	hs, err := decodeHardState([]byte(st.kv[string(keyHardState)]))
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if n := len(st.entries); n > 0 && st.entries[n-1].Term > hs.Term {
		t.Fatalf("%s: last entry has term %d above the stored term %d; NewCore refuses this", what, st.entries[n-1].Term, hs.Term)
	}
}

func readDir(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	names, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join(dir, n.Name()))
		if err != nil {
			t.Fatal(err)
		}
		files[n.Name()] = b
	}
	return files
}

func writeDir(t *testing.T, files map[string][]byte) string {
	t.Helper()
	dir := t.TempDir()
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// walOp is one store call of a crash script.
type walOp struct {
	name string
	do   func(s *WALStore) error
}

func hsOp(term uint64, vote string, es []Entry) walOp {
	return walOp{fmt.Sprintf("entries %d+%d and term %d", firstIndexOf(es), len(es), term), func(s *WALStore) error {
		return s.StoreLogsAndState(es, keyHardState, encodeHardState(HardState{Term: term, Vote: vote}))
	}}
}

func firstIndexOf(es []Entry) uint64 {
	if len(es) == 0 {
		return 0
	}
	return es[0].Index
}

func logsOp(es []Entry) walOp {
	return walOp{fmt.Sprintf("entries %d..%d", es[0].Index, es[len(es)-1].Index), func(s *WALStore) error { return s.StoreLogs(es) }}
}

func deleteOp(lo, hi uint64) walOp {
	return walOp{fmt.Sprintf("delete %d..%d", lo, hi), func(s *WALStore) error { return s.DeleteRange(lo, hi) }}
}

func setOp(k, v string) walOp {
	return walOp{"set " + k, func(s *WALStore) error { return s.Set([]byte(k), []byte(v)) }}
}

// walCrashScript: appends, §5.3 suffix replacements (by StoreLogs and by
// DeleteRange), compactions, a whole-log delete and hard-state writes,
// with segments small enough that writes roll segments and compactions
// delete them.
func walCrashScript() []walOp {
	ops := []walOp{
		hsOp(1, "", walEntries(1, 3, 1, "a")),
		logsOp(walEntries(4, 9, 1, "a")),
		hsOp(2, "n2", nil),
		setOp("k0", "x"),
		hsOp(3, "", walEntries(5, 8, 3, "b")), // conflicting suffix 5..9 replaced
		deleteOp(1, 4),                        // compaction
		logsOp(walEntries(9, 14, 3, "b")),
		deleteOp(12, 14), // suffix delete
		hsOp(4, "n1", walEntries(12, 13, 4, "c")),
		deleteOp(5, 10),
		logsOp(walEntries(14, 20, 4, "c")),
		deleteOp(11, 20), // whole log (snapshot install)
		hsOp(5, "", walEntries(30, 32, 5, "d")),
		setOp("k1", strings.Repeat("v", 90)),
		logsOp(walEntries(33, 40, 5, "d")),
		deleteOp(30, 38),
	}
	return ops
}

// Every op of the script is cut off by a crash at every byte of its write:
// the reopened store is exactly as before the op, or has just the op's
// stable key, or (when the whole write is on disk) is as after it; and a clean reopen after each op reads back
// what the live store held.
func TestWALCrash_EveryCutOfTheLastWrite(t *testing.T) {
	const segBytes = 400
	dir := t.TempDir()
	s := openWALT(t, dir, segBytes)
	rolled, dropped := false, false
	for step, op := range walCrashScript() {
		preFiles, pre := readDir(t, dir), readWALState(t, s)
		preSeq := s.segs[len(s.segs)-1].seq
		if err := op.do(s); err != nil {
			t.Fatalf("step %d (%s): %v", step, op.name, err)
		}
		post := readWALState(t, s)
		checkTermCoversLog(t, post, op.name)
		seg := s.segs[len(s.segs)-1]
		rolled = rolled || seg.seq != preSeq
		dropped = dropped || s.segs[0].seq > 1
		name := walSegmentName(seg.seq)
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		start := len(data) - len(s.buf)
		for cut := start; cut <= len(data); cut++ {
			files := maps.Clone(preFiles)
			files[name] = data[:cut]
			got := reopenState(t, writeDir(t, files), segBytes)
			// A write that leads with a stable key may keep just the key.
			keyOnly := pre
			keyOnly.kv = post.kv
			if !got.equal(pre) && !got.equal(keyOnly) && (cut < len(data) || !got.equal(post)) {
				t.Fatalf("step %d (%s) cut at byte %d of %d..%d: got %v, want %v", step, op.name, cut, start, len(data), got, pre)
			}
			checkTermCoversLog(t, got, op.name)
		}
		if got := reopenState(t, writeDir(t, readDir(t, dir)), segBytes); !got.equal(post) {
			t.Fatalf("step %d (%s): reopened %v, live store had %v", step, op.name, got, post)
		}
		// An open writes on in a fresh segment (or in the newest, if it
		// holds only stable keys): reopen the live store now and then, so
		// that later writes are cut both in a segment an open started or
		// reused and in ones that filled up and rolled.
		if step%4 == 3 {
			s.Close()
			s = openWALT(t, dir, segBytes)
		}
	}
	if !rolled || !dropped {
		t.Fatalf("the script should roll segments (%v) and delete dead ones (%v)", rolled, dropped)
	}
}

func reopenState(t *testing.T, dir string, segBytes int64) walState {
	t.Helper()
	s, err := openWALStore(dir, segBytes)
	if err != nil {
		t.Fatalf("reopening after a torn write: %v", err)
	}
	defer s.Close()
	return readWALState(t, s)
}

// A write of entries and hard state (a follower's AppendEntries in a new
// term) torn with any one byte of it damaged (its pages reach the disk in
// any order) keeps at most the hard state: never the entries without the
// term they were written in, which NewCore refuses as corruption.
func TestWALCrash_TornEntriesAndHardState(t *testing.T) {
	dir := t.TempDir()
	s := openWALT(t, dir, walSegmentBytes)
	if err := s.StoreLogsAndState(walEntries(1, 2, 1, "a"), keyHardState, encodeHardState(HardState{Term: 1})); err != nil {
		t.Fatal(err)
	}
	pre := readWALState(t, s)
	if err := s.StoreLogsAndState(walEntries(3, 4, 2, "b"), keyHardState, encodeHardState(HardState{Term: 2, Vote: "n1"})); err != nil {
		t.Fatal(err)
	}
	keyOnly := pre
	keyOnly.kv = readWALState(t, s).kv
	path, size := s.segs[0].f.Name(), int(s.segs[0].size)
	start := size - len(s.buf)
	s.Close()
	clean, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	files := readDir(t, dir)
	name := filepath.Base(path)
	for at := start; at < size; at++ {
		bad := slices.Clone(clean)
		bad[at] ^= 0x40
		files[name] = bad
		crashed := writeDir(t, files)
		got := reopenState(t, crashed, walSegmentBytes)
		checkTermCoversLog(t, got, fmt.Sprintf("byte %d of %d..%d damaged", at, start, size))
		if !got.equal(pre) && !got.equal(keyOnly) {
			t.Fatalf("byte %d of %d..%d damaged: got %v, want %v", at, start, size, got, pre)
		}
		// That open cut the torn tail before writing on in a new segment,
		// so the next open (the torn segment now an older one) reads the
		// same state instead of taking the cut-off tail for damage.
		if again := reopenState(t, crashed, walSegmentBytes); !again.equal(got) {
			t.Fatalf("byte %d of %d..%d damaged: reopened %v, then %v", at, start, size, got, again)
		}
	}
}

// walRecordOffsets lists where each whole record of a segment starts.
func walRecordOffsets(t *testing.T, data []byte) []int {
	t.Helper()
	seed, start, err := walReadHeader(data)
	if err != nil {
		t.Fatal(err)
	}
	var offs []int
	for off := start; off < len(data); {
		body, ok := walRecord(data[off:], seed)
		if !ok {
			t.Fatalf("segment has a bad record at %d", off)
		}
		offs = append(offs, off)
		off += walRecHeader + len(body)
	}
	return offs
}

// Damage to any record of the newest segment that a later write follows
// (bit rot, a bad sector: not a torn write) is refused, whether it hits
// the length, the checksum or the body, and the file is left as it was:
// cutting it there would silently drop acknowledged writes.
func TestWALCrash_DamageBeforeLaterWritesIsRefused(t *testing.T) {
	lastWrites := []walOp{
		setOp("k0", "v"),
		hsOp(3, "n2", nil),
		hsOp(3, "n2", walEntries(7, 8, 3, "z")),
		logsOp(walEntries(7, 7, 2, "z")),
		deleteOp(1, 2),
		deleteOp(5, 6),
	}
	for _, last := range lastWrites {
		t.Run(last.name, func(t *testing.T) {
			dir := t.TempDir()
			s := openWALT(t, dir, walSegmentBytes)
			for _, op := range []walOp{setOp("k2", "seed"), hsOp(1, "", walEntries(1, 3, 1, "a")), logsOp(walEntries(4, 6, 2, "a")), setOp("k1", "y")} {
				if err := op.do(s); err != nil {
					t.Fatal(err)
				}
			}
			s.Close()
			// The reopen writes on in a new segment headed by the stable
			// keys: damage to the older segment, and to that header, which
			// the last write follows, are both refused.
			s = openWALT(t, dir, walSegmentBytes)
			if err := last.do(s); err != nil {
				t.Fatal(err)
			}
			if len(s.segs) != 2 {
				t.Fatalf("%d segments after a reopen, want 2", len(s.segs))
			}
			newest := s.segs[1]
			lastStart := int(newest.size) - len(s.buf)
			paths := []string{s.segs[0].f.Name(), newest.f.Name()}
			s.Close()
			for i, path := range paths {
				clean, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				for _, off := range walRecordOffsets(t, clean) {
					if i == 1 && off >= lastStart {
						break
					}
					n := int(binary.LittleEndian.Uint32(clean[off:]))
					for _, at := range []int{off + 1, off + 3, off + 5, off + walRecHeader, off + walRecHeader + n - 1} {
						assertDamageRefused(t, dir, path, clean, at)
					}
				}
				if err := os.WriteFile(path, clean, 0o600); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

func assertDamageRefused(t *testing.T, dir, path string, clean []byte, at int) {
	t.Helper()
	bad := slices.Clone(clean)
	bad[at] ^= 0x10
	if err := os.WriteFile(path, bad, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := openWALStore(dir, walSegmentBytes)
	if err == nil {
		st := readWALState(t, s)
		s.Close()
		t.Fatalf("byte %d damaged: opened as %v", at, st)
	}
	if !strings.Contains(err.Error(), "not a torn write") || !strings.Contains(err.Error(), "backup") {
		t.Fatalf("byte %d damaged: error does not say what happened and what to do: %v", at, err)
	}
	if now, _ := os.ReadFile(path); !bytes.Equal(now, bad) {
		t.Fatalf("byte %d damaged: the refused segment was changed (%d bytes, was %d)", at, len(now), len(bad))
	}
}

// walThreeSegments writes entries 1..20 into small segments (nothing
// compacted, so every segment is live) and returns the files and the
// sequence numbers of the middle and newest segments.
func walThreeSegments(t *testing.T) (files map[string][]byte, mid, newest uint64) {
	t.Helper()
	dir := t.TempDir()
	s := openWALT(t, dir, 200)
	for i := uint64(1); i <= 20; i++ {
		if err := s.StoreLogs(walEntries(i, i, 1, "x")); err != nil {
			t.Fatal(err)
		}
	}
	if len(s.segs) < 3 {
		t.Fatalf("want 3+ segments, have %d", len(s.segs))
	}
	mid, newest = s.segs[1].seq, s.segs[len(s.segs)-1].seq
	s.Close()
	return readDir(t, dir), mid, newest
}

// Segments are deleted oldest first, each delete durable before the next,
// so the files on disk are a contiguous run; a missing one in the middle
// lost live entries and is refused instead of replayed around (which
// reported a log starting after the gap, as if compacted).
func TestWALCrash_MissingSegmentIsRefused(t *testing.T) {
	files, mid, _ := walThreeSegments(t)
	delete(files, walSegmentName(mid))
	s, err := openWALStore(writeDir(t, files), 200)
	if err == nil {
		st := readWALState(t, s)
		s.Close()
		t.Fatalf("opened a log with segment %d missing: %v", mid, st)
	}
	if !strings.Contains(err.Error(), "missing") || !strings.Contains(err.Error(), "backup") {
		t.Fatalf("error does not say what happened and what to do: %v", err)
	}
}

// A new segment is written whole under a temporary name before it gets
// its own: a crash while creating it leaves that file, which open removes
// (nothing was written to the segment yet), never a segment whose header
// of salt and stable keys is cut short.
func TestWALCrash_UnfinishedSegmentIsRemoved(t *testing.T) {
	files, _, newest := walThreeSegments(t)
	tmp := walSegmentName(newest+1) + ".tmp"
	whole, _ := walTestHeader(true)
	for cut := range len(whole) + 1 {
		files[tmp] = whole[:cut]
		dir := writeDir(t, files)
		if st := reopenState(t, dir, 200); st.first != 1 || st.last != 20 {
			t.Fatalf("with an unfinished segment of %d bytes: %v", cut, st)
		}
		if _, err := os.Stat(filepath.Join(dir, tmp)); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("the unfinished segment is still there: %v", err)
		}
	}
	s := openWALT(t, t.TempDir(), 200)
	for i := uint64(1); i <= 20; i++ {
		if err := s.StoreLogs(walEntries(i, i, 1, "x")); err != nil {
			t.Fatal(err)
		}
	}
	for name := range readDir(t, s.dir) {
		if !strings.HasSuffix(name, ".wal") {
			t.Fatalf("rolling segments left %s behind", name)
		}
	}
}

// walBadInput is a file of a TestWALCrash_BadInput case.
type walBadInput struct {
	name    string
	file    string
	data    []byte
	wantErr string // "" opens
}

// walBadInputs are the cases of TestWALCrash_BadInput in segments of the
// current format (salted) or of the first.
func walBadInputs(salted bool) []walBadInput {
	header, seed := walTestHeader(salted)
	frame := func(body []byte) []byte { return finishWALRecord(append(make([]byte, walRecHeader), body...), 0, seed) }
	entry := func(index uint64, dataLen uint32) []byte {
		b := binary.LittleEndian.AppendUint64([]byte{walRecEntries, 1, 0, 0, 0}, index)
		b = binary.LittleEndian.AppendUint64(b, 1)
		return binary.LittleEndian.AppendUint32(append(b, byte(EntryCommand)), dataLen)
	}
	seg := func(recs ...[]byte) []byte { return slices.Concat(append([][]byte{header}, recs...)...) }
	huge := binary.LittleEndian.AppendUint32(nil, 0xfffffff0)
	var files []walBadInput
	if salted { // the files' names and magic: once
		files = []walBadInput{
			{"zero-length segment", walSegmentName(1), nil, "does not start with"},
			{"foreign file", walSegmentName(1), []byte("PK\x03\x04xxxxxxxxxxxxxxxx"), "does not start with"},
			{"format of a newer release", walSegmentName(1), []byte("RSTRWAL9xxxxxxxxxxxx"), "format this release does not know"},
			{"salt cut short", walSegmentName(1), []byte(walMagic + "salt"), "ends before its salt"},
			{"salt but no header-end marker", walSegmentName(1), []byte(walMagic + "saltsalt"), "inside its header"},
			{"misnamed segment", "x.wal", seg(), "unexpected file"},
			{"unrelated file", "notes.txt", []byte("hello"), ""},
		}
	}
	return append(files, []walBadInput{
		{"huge length at the tail", walSegmentName(1), seg(huge, []byte("abcd")), ""},
		{"huge length before a record", walSegmentName(1), seg(frame(entry(1, 0)), huge, []byte("abcd"), frame(entry(2, 0))), "not a torn write"},
		{"huge entry count", walSegmentName(1), seg(frame([]byte{walRecEntries, 0xff, 0xff, 0xff, 0xff})), "shorter than its entries"},
		{"huge entry length", walSegmentName(1), seg(frame(entry(1, 0xffffffff))), "longer than its record"},
		{"entry index 0", walSegmentName(1), seg(frame(entry(0, 0))), "index 0"},
		{"key longer than record", walSegmentName(1), seg(frame([]byte{walRecState, 0xff, 0xff, 'k'})), "shorter than its key"},
		{"bad delete record", walSegmentName(1), seg(frame([]byte{walRecCompact, 1})), "bad delete record"},
		{"unknown kind", walSegmentName(1), seg(frame([]byte{99})), "unknown record kind"},
	}...)
}

// Files that cannot be a segment, and records that pass their checksum but
// do not parse, are refused with an error, never a panic, and never make
// open allocate more than a small multiple of the file.
func TestWALCrash_BadInput(t *testing.T) {
	cases := walBadInputs(true)
	for _, c := range walBadInputs(false) {
		c.name = "first format/" + c.name
		cases = append(cases, c)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := writeDir(t, map[string][]byte{c.file: c.data})
			var s *WALStore
			var err error
			allocs := bytesAllocated(func() { s, err = openWALStore(dir, walSegmentBytes) })
			if limit := uint64(1<<20 + 8*len(c.data)); allocs > limit {
				t.Errorf("open allocated %d bytes for a %d-byte file", allocs, len(c.data))
			}
			switch {
			case c.wantErr == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case c.wantErr == "":
				s.Close()
			case err == nil:
				s.Close()
				t.Fatalf("opened; want an error with %q", c.wantErr)
			case !strings.Contains(err.Error(), c.wantErr):
				t.Fatalf("error %q, want %q", err, c.wantErr)
			}
		})
	}
}

// bytesAllocated is the heap that f allocates, on its own goroutine: the
// bytes of every allocation whose call stack passes through
// walMeasuredCall. The process-wide counters (MemStats.TotalAlloc) also
// count whatever other goroutines allocate meanwhile (a parallel test, a
// node another test left winding down), and an fsync in open gives them
// milliseconds to do it; a stack is only ever f's. While f runs every
// allocation is profiled (MemProfileRate 1, which the runtime honours from
// the next allocation on); runtime.GC publishes the profile. Nothing
// allocates under walMeasuredCall between measurements, so the total
// after one is the next one's starting point: one GC per measurement.
func bytesAllocated(f func()) uint64 {
	walAlloc.Lock()
	defer walAlloc.Unlock()
	if !walAlloc.known {
		walAlloc.total, walAlloc.known = walMeasuredBytes(), true
	}
	before := walAlloc.total
	rate := runtime.MemProfileRate
	runtime.MemProfileRate = 1
	walMeasuredCall(f)
	runtime.MemProfileRate = rate
	walAlloc.total = walMeasuredBytes()
	return walAlloc.total - before
}

// walAlloc serializes measurements (the profile rate is global) and
// guards the profiled total under walMeasuredCall so far.
var walAlloc struct {
	sync.Mutex
	known bool
	total uint64
}

// walMeasuredCall is the frame that marks f's allocations in the profile.
//
//go:noinline
func walMeasuredCall(f func()) { f() }

// walMeasuredBytes sums the published profile over the stacks that pass
// through walMeasuredCall.
func walMeasuredBytes() uint64 {
	runtime.GC()
	entry := runtime.FuncForPC(reflect.ValueOf(walMeasuredCall).Pointer()).Entry()
	var recs []runtime.MemProfileRecord
	n, _ := runtime.MemProfile(nil, true)
	for range 100 {
		recs = make([]runtime.MemProfileRecord, n+64)
		var ok bool
		if n, ok = runtime.MemProfile(recs, true); ok {
			break
		}
	}
	var total uint64
	for _, r := range recs[:n] {
		for _, pc := range r.Stack() {
			if fn := runtime.FuncForPC(pc - 1); fn != nil && fn.Entry() == entry {
				total += uint64(r.AllocBytes)
				break
			}
		}
	}
	return total
}

// bytesAllocated counts what f allocates, however much another goroutine
// allocates meanwhile: the bounds above cannot be tripped (or met) by
// other tests.
func TestWALCrash_AllocationMeasureIgnoresOtherGoroutines(t *testing.T) {
	stop := make(chan struct{})
	done := make(chan int)
	go func() {
		n := 0
		for ; ; n++ {
			select {
			case <-stop:
				done <- n
				return
			default:
				walAllocSink.Store(&[64 << 10]byte{})
			}
		}
	}()
	var own []byte
	quiet := bytesAllocated(func() {})
	busy := bytesAllocated(func() { own = make([]byte, 1<<20) })
	close(stop)
	if n := <-done; n == 0 {
		t.Fatal("the other goroutine allocated nothing; the test proves nothing")
	}
	if quiet > 4<<10 {
		t.Errorf("an empty call measured %d bytes", quiet)
	}
	if busy < uint64(len(own)) || busy > uint64(len(own))+4<<10 {
		t.Errorf("a 1 MiB allocation measured %d bytes", busy)
	}
}

var walAllocSink atomic.Pointer[[64 << 10]byte]

// The disk writer appends (rolling segments) while the raft loop reads
// entries and compacts (deleting segments); run with -race. Every read
// returns the entry that was written, and a reopen reads back the same
// log.
func TestWALCrash_ConcurrentAppendAndCompact(t *testing.T) {
	rng := testkit.Rand(t)
	dir := t.TempDir()
	s := openWALT(t, dir, 1024)
	const last = 1500
	done := make(chan error, 1)
	go func() {
		var err error
		for i := uint64(1); i <= last && err == nil; i += 5 {
			err = s.StoreLogsAndState(walEntries(i, i+4, 1, "w"), keyHardState, encodeHardState(HardState{Term: 1}))
		}
		done <- err
	}()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		walReadAndCompact(t, s, rand.New(rand.NewPCG(rng.Uint64(), 1)), last)
	}()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	want := readWALState(t, s)
	s.Close()
	if got := reopenState(t, dir, 1024); !got.equal(want) {
		t.Fatalf("reopened %v, want %v", got, want)
	}
	if want.last != last {
		t.Fatalf("last index %d, want %d", want.last, last)
	}
}

func walReadAndCompact(t *testing.T, s *WALStore, rng *rand.Rand, last uint64) {
	for round := 0; round < 20000; round++ {
		first, _ := s.FirstIndex()
		hi, _ := s.LastIndex()
		if first == 0 || hi < first {
			continue
		}
		i := first + uint64(rng.IntN(int(hi-first+1)))
		e, err := s.GetLog(i)
		if err != nil && !errors.Is(err, ErrLogNotFound) { // compacted in between
			t.Errorf("entry %d: %v", i, err)
			return
		}
		if err == nil && string(e.Data) != fmt.Sprintf("w-%d", i) {
			t.Errorf("entry %d reads %q", i, e.Data)
			return
		}
		if rng.IntN(50) == 0 && hi > first+20 {
			if err := s.DeleteRange(first, hi-20); err != nil {
				t.Errorf("compacting through %d: %v", hi-20, err)
				return
			}
		}
		if hi == last {
			return
		}
	}
}

// FuzzWALReplay opens a log whose newest segment is the input (raw, or
// its chunks framed as records with good checksums so that the parser
// behind the checksum is reached, salted if the input's length is odd,
// else in the first format): open never panics and never allocates
// more than a small multiple of the input, and a log it accepts reads back
// every entry it reports, and reads the same when opened again.
func FuzzWALReplay(f *testing.F) {
	dir := f.TempDir()
	s, err := openWALStore(dir, walSegmentBytes)
	if err != nil {
		f.Fatal(err)
	}
	s.StoreLogsAndState(walEntries(1, 3, 1, "a"), keyHardState, encodeHardState(HardState{Term: 1}))
	s.StoreLogs(walEntries(3, 4, 2, "b"))
	s.DeleteRange(1, 1)
	s.DeleteRange(4, 4)
	s.Close()
	real, err := os.ReadFile(filepath.Join(dir, walSegmentName(1)))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(real, false)
	f.Add(real[len(walMagic)+walSaltBytes:], true)
	f.Add([]byte{}, false)
	f.Add([]byte{9, walRecEntries, 1, 0, 0, 0, 1, 0, 0, 0}, true)
	f.Fuzz(func(t *testing.T, in []byte, framed bool) {
		data := in
		if framed {
			data = walFrameChunks(in, len(in)%2 == 1)
		}
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, walSegmentName(1)), data, 0o600); err != nil {
			t.Fatal(err)
		}
		var s *WALStore
		var err error
		if n := bytesAllocated(func() { s, err = openWALStore(dir, walSegmentBytes) }); n > uint64(1<<20+16*len(data)) {
			t.Fatalf("open allocated %d bytes for a %d-byte segment", n, len(data))
		}
		if err != nil {
			return
		}
		first := readWALState(t, s)
		s.Close()
		// The open cut any torn tail and wrote on in a new or reused
		// segment; opening again finds the same log.
		if again := reopenState(t, dir, walSegmentBytes); !again.equal(first) {
			t.Fatalf("opened as %v, then as %v", first, again)
		}
	})
}

// walFrameChunks makes a segment of records whose bodies are the chunks of
// in, each prefixed there by its length (one byte), after the header of
// walTestHeader(salted).
func walFrameChunks(in []byte, salted bool) []byte {
	out, seed := walTestHeader(salted)
	for len(in) > 0 {
		n := min(int(in[0]), len(in)-1)
		body := in[1 : 1+n]
		in = in[1+n:]
		if n == 0 {
			continue
		}
		out = binary.LittleEndian.AppendUint32(out, uint32(n))
		out = binary.LittleEndian.AppendUint32(out, crc32.Update(seed, walCRC, body))
		out = append(out, body...)
	}
	return out
}
