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

// Tests that a data dir written in the first WAL format (no salt) opens,
// keeps its torn-write and damage rules, and is written on in salted
// segments. testdata/wal_v1 was written by the release before the salt:
// term 1, entries 1..6 (1..3 term 1 "a"), key k0, then term 2 (vote n2)
// with entries 5..6 replaced ("b"); reopened (segment 2), entries 7..9
// ("c", term 2), then 1..2 compacted.

// walGoldenState is the golden log with entries first..last stored.
func walGoldenState(first, last uint64) walState {
	st := walState{first: first, last: last, kv: map[string]string{
		string(keyHardState): string(encodeHardState(HardState{Term: 2, Vote: "n2"})),
		"k0":                 "x",
	}}
	for i := first; i <= last; i++ {
		term, tag := uint64(1), "a"
		switch {
		case i >= 7:
			term, tag = 2, "c"
		case i >= 5:
			term, tag = 2, "b"
		}
		st.entries = append(st.entries, Entry{Index: i, Term: term, Type: EntryCommand, Data: fmt.Appendf(nil, "%s-%d", tag, i)})
	}
	return st
}

// walGoldenFiles returns the golden data dir's files.
func walGoldenFiles(t *testing.T) map[string][]byte {
	t.Helper()
	files := readDir(t, filepath.Join("testdata", "wal_v1"))
	for name, b := range files {
		if string(b[:len(walMagicV1)]) != walMagicV1 {
			t.Fatalf("golden %s is not of the first format", name)
		}
	}
	return files
}

// A data dir of the first format opens with its log; the open writes on
// in a new, salted segment (the old ones are only read), which later
// restarts reuse while it holds only stable keys; writes and reopens go
// on from there, and compacting past the old segments deletes them.
func TestWALStore_OpensFirstFormatDataDir(t *testing.T) {
	dir := writeDir(t, walGoldenFiles(t))
	for open := range 2 {
		s := openWALT(t, dir, walSegmentBytes)
		if got, want := readWALState(t, s), walGoldenState(3, 9); !got.equal(want) {
			t.Fatalf("open %d: %v, want %v", open, got, want)
		}
		s.Close()
		names := walSegmentFiles(t, dir)
		if len(names) != 3 || !walSalted(t, names[2]) {
			t.Fatalf("open %d: segments %v, want the two old ones and one salted", open, names)
		}
	}
	s := openWALT(t, dir, walSegmentBytes)
	want := walGoldenState(3, 9)
	es := walEntries(10, 11, 3, "d")
	hs := encodeHardState(HardState{Term: 3})
	if err := s.StoreLogsAndState(es, keyHardState, hs); err != nil {
		t.Fatal(err)
	}
	want.last, want.entries, want.kv[string(keyHardState)] = 11, append(want.entries, es...), string(hs)
	s.Close()
	s = openWALT(t, dir, walSegmentBytes)
	if got := readWALState(t, s); !got.equal(want) {
		t.Fatalf("after a write: %v, want %v", got, want)
	}
	if err := s.DeleteRange(1, 9); err != nil {
		t.Fatal(err)
	}
	want.first, want.entries = 10, want.entries[7:]
	s.Close()
	for _, name := range walSegmentFiles(t, dir) {
		if !walSalted(t, name) {
			t.Errorf("%s is still there after the log was compacted past it", name)
		}
	}
	if got := reopenState(t, dir, walSegmentBytes); !got.equal(want) {
		t.Fatalf("after compaction: %v, want %v", got, want)
	}
}

func walSalted(t *testing.T, path string) bool {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	seed, _, err := walReadHeader(b)
	return err == nil && seed != 0
}

// A torn last write in a segment of the first format is cut back as it
// always was: a crash at every byte of the golden's last two writes
// (entries 7..9, then a compaction) opens as the log before the write
// torn, and the next open (now in a salted segment) agrees.
func TestWALCrash_FirstFormatTornTailIsCutBack(t *testing.T) {
	files := walGoldenFiles(t)
	name := walSegmentName(2)
	data := files[name]
	offs := walRecordOffsets(t, data)
	entriesAt, compactAt := offs[len(offs)-2], offs[len(offs)-1]
	for cut := entriesAt; cut <= len(data); cut++ {
		want := walGoldenState(1, 6)
		switch {
		case cut == len(data):
			want = walGoldenState(3, 9)
		case cut >= compactAt:
			want = walGoldenState(1, 9)
		}
		files[name] = data[:cut]
		dir := writeDir(t, files)
		if got := reopenState(t, dir, walSegmentBytes); !got.equal(want) {
			t.Fatalf("cut at %d of %d: %v, want %v", cut, len(data), got, want)
		}
		if got := reopenState(t, dir, walSegmentBytes); !got.equal(want) {
			t.Fatalf("cut at %d of %d, reopened: %v, want %v", cut, len(data), got, want)
		}
	}
}

// Damage at random bytes anywhere but in the last write is refused, in
// a salted log (whose last write, a higher term, continues the log after
// any of its prefixes) and in the golden one of the first format (whose
// last write compacts through 2, which continues it after any prefix):
// the salt leaves bit rot in the middle as it was, refused.
func TestWALCrash_RandomDamageInTheMiddleIsRefused(t *testing.T) {
	rng := testkit.Rand(t)
	salted := t.TempDir()
	s := openWALT(t, salted, walSegmentBytes)
	for _, op := range []walOp{hsOp(1, "", walEntries(1, 4, 1, "a")), setOp("k0", "x"), logsOp(walEntries(5, 9, 1, "a"))} {
		if err := op.do(s); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	s = openWALT(t, salted, walSegmentBytes)
	for _, op := range []walOp{hsOp(2, "n1", walEntries(6, 7, 2, "b")), deleteOp(1, 3), hsOp(9, "n1", nil)} {
		if err := op.do(s); err != nil {
			t.Fatal(err)
		}
	}
	lastWrite := len(s.buf)
	s.Close()
	for what, files := range map[string]map[string][]byte{"salted": readDir(t, salted), "first format": walGoldenFiles(t)} {
		last := lastWrite
		if what == "first format" {
			last = len(appendWALDelete(nil, 0, walRecCompact, 2))
		}
		names := slices.Sorted(maps.Keys(files))
		dir := writeDir(t, files)
		for range 30 {
			i := rng.IntN(len(names))
			clean := files[names[i]]
			end := len(clean)
			if i == len(names)-1 {
				end -= last
			}
			at := len(walMagic) + rng.IntN(end-len(walMagic)) // the magic's own damage: TestWALCrash_BadInput
			bad := slices.Clone(clean)
			bad[at] ^= byte(1 + rng.IntN(255))
			path := filepath.Join(dir, names[i])
			if err := os.WriteFile(path, bad, 0o600); err != nil {
				t.Fatal(err)
			}
			if s, err := openWALStore(dir, walSegmentBytes); err == nil {
				st := readWALState(t, s)
				s.Close()
				t.Fatalf("%s: byte %d of %s damaged (^%#x): opened as %v", what, at, names[i], bad[at]^clean[at], st)
			}
			if err := os.WriteFile(path, clean, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
}
