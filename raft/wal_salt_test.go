package raft

import (
	"bytes"
	"encoding/binary"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// Tests of the per-segment salt in every record's CRC: bytes a client
// stores and stale blocks of other segments never pass as a later write.
// Reading segments of the first, unsalted format: wal_compat_test.go.

// walTestHeader returns the header of a segment of the current format
// (magic, a fixed salt, the header-end marker) if salted, else of the
// first format (the magic alone), and the seed its records are framed
// with.
func walTestHeader(salted bool) ([]byte, uint32) {
	if !salted {
		return []byte(walMagicV1), 0
	}
	b := append([]byte(walMagic), "testsalt"...)
	seed := walSeed(b[len(walMagic):])
	b = appendWALState(b, seed, []byte(walHeaderEnd), binary.LittleEndian.AppendUint64(nil, uint64(len(b))))
	return b, seed
}

// walAsFirstFormat rewrites a segment of whole records in the first
// format, as a release before the salt wrote it: no salt, every record's
// CRC of its body alone, the header-end marker naming its new offset.
func walAsFirstFormat(t *testing.T, data []byte) []byte {
	t.Helper()
	seed, start, err := walReadHeader(data)
	if err != nil {
		t.Fatal(err)
	}
	out := []byte(walMagicV1)
	for off := start; off < len(data); {
		body, ok := walRecord(data[off:], seed)
		if !ok {
			t.Fatalf("bad record at offset %d", off)
		}
		rec := append(make([]byte, walRecHeader), body...)
		if walHeaderEndAt(body, off) {
			binary.LittleEndian.PutUint64(rec[len(rec)-8:], uint64(len(out)))
		}
		out = append(out, finishWALRecord(rec, 0, 0)...)
		off += walRecHeader + len(body)
	}
	return out
}

// openRefused opens dir and fails the test unless open refuses it with
// an error containing want.
func openRefused(t *testing.T, dir, want string) {
	t.Helper()
	s, err := openWALStore(dir, walSegmentBytes)
	if err == nil {
		st := readWALState(t, s)
		s.Close()
		t.Fatalf("opened as %v; want it refused (%q)", st, want)
	}
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("open: %v; want %q", err, want)
	}
}

// openCutBack opens dir and fails the test unless the log reads as pre,
// then and after another open.
func openCutBack(t *testing.T, dir string, pre walState) {
	t.Helper()
	if got := reopenState(t, dir, walSegmentBytes); !got.equal(pre) {
		t.Fatalf("opened as %v, want %v", got, pre)
	}
	if again := reopenState(t, dir, walSegmentBytes); !again.equal(pre) {
		t.Fatalf("reopened as %v, want %v", again, pre)
	}
}

// walForgedTail is one segment, salted or of the first format, holding
// term 2 (vote n1), entries 4..8 and key k0, and then a write of entries
// 9..11 whose middle entry's data is forge(at), at being the offset that
// data is stored at, cut just after it: a client's value framing a
// record, torn by a crash. It returns the segment without the write, and
// with it torn.
func walForgedTail(salted bool, forge func(at int) []byte) (pre, torn []byte) {
	b, seed := walTestHeader(salted)
	b = appendWALState(b, seed, keyHardState, encodeHardState(HardState{Term: 2, Vote: "n1"}))
	b = appendWALEntries(b, seed, walRecEntries, walEntries(1, 8, 2, "a"))
	b = appendWALDelete(b, seed, walRecCompact, 3)
	b = appendWALState(b, seed, []byte("k0"), []byte("x"))
	es := walEntries(9, 11, 2, "b")
	at := len(b) + walRecHeader + 5 + 2*walEntryHeader + len(es[0].Data)
	value := forge(at)
	es[1].Data = value
	write := appendWALEntries(slices.Clone(b), seed, walRecEntries, es)
	if string(write[at:at+len(value)]) != string(value) {
		panic("the forged value is not where it was forged for")
	}
	return b, write[:at+len(value)]
}

// A torn write whose surviving bytes hold a record a client's value
// framed, with a CRC computed without the salt (the client cannot know
// it), is cut back in a salted segment: the record does not check there,
// so it is no evidence of a later write, whatever it says — a later hard
// state, later entries, a compaction, or a header-end marker at its own
// offset (which would say the bad record is inside a header). In a
// segment of the first format, as in every segment before the salt,
// those bytes check and open refuses the log: an outage any client
// could arm.
func TestWALCrash_ForgedRecordInAValueIsNotALaterWrite(t *testing.T) {
	forgeries := map[string]func(at int) []byte{
		"later hard state": func(int) []byte {
			return appendWALState(nil, 0, keyHardState, encodeHardState(HardState{Term: 9, Vote: "n3"}))
		},
		"later entries":  func(int) []byte { return appendWALEntries(nil, 0, walRecEntries, walEntries(12, 13, 2, "f")) },
		"compaction":     func(int) []byte { return appendWALDelete(nil, 0, walRecCompact, 6) },
		"new stable key": func(int) []byte { return appendWALState(nil, 0, []byte("k9"), []byte("f")) },
		"header-end mark": func(at int) []byte {
			return appendWALState(nil, 0, []byte(walHeaderEnd), binary.LittleEndian.AppendUint64(nil, uint64(at)))
		},
	}
	for name, forge := range forgeries {
		t.Run(name, func(t *testing.T) {
			for _, salted := range []bool{true, false} {
				clean, torn := walForgedTail(salted, forge)
				pre := reopenState(t, writeDir(t, map[string][]byte{walSegmentName(1): clean}), walSegmentBytes)
				openForgedTail(t, writeDir(t, map[string][]byte{walSegmentName(1): torn}), pre, salted)
			}
		})
	}
}

// openForgedTail opens dir, whose torn tail holds records that were not
// written by this segment: a salted log cuts the tail back to pre, a
// first-format one takes them for a later write and refuses to open.
func openForgedTail(t *testing.T, dir string, pre walState, salted bool) {
	t.Helper()
	if salted {
		openCutBack(t, dir, pre)
	} else {
		openRefused(t, dir, "not a torn write")
	}
}

// A torn write whose unsynced tail holds stale blocks of a deleted
// segment — there, entries a §5.3 replacement discarded, at indexes the
// log still holds — is cut back: those records were checksummed with
// the deleted segment's salt and do not check in the newest one. In the
// first format they check, and, as entries at or above the first index
// that are not stored, count as a later write: open refused.
func TestWALCrash_StaleBlocksOfAnotherSegmentAreNotALaterWrite(t *testing.T) {
	dir := t.TempDir()
	s := openWALT(t, dir, walSegmentBytes)
	replaced := walEntries(7, 10, 2, "a")
	for _, op := range []walOp{hsOp(2, "n1", walEntries(1, 6, 2, "a")), logsOp(replaced)} {
		if err := op.do(s); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	s = openWALT(t, dir, walSegmentBytes) // writes on in segment 2
	old, err := os.ReadFile(filepath.Join(dir, walSegmentName(1)))
	if err != nil {
		t.Fatal(err)
	}
	for _, op := range []walOp{hsOp(3, "", walEntries(5, 6, 3, "b")), deleteOp(1, 4)} {
		if err := op.do(s); err != nil {
			t.Fatal(err)
		}
	}
	if names := walSegmentFiles(t, dir); len(names) != 1 {
		t.Fatalf("segments %v; want segment 1 deleted (it holds no stored entry)", names)
	}
	if s.segs[0].seed == walSeed(old[len(walMagic):len(walMagic)+walSaltBytes]) {
		t.Fatal("two segments drew the same salt")
	}
	pre, preFiles := readWALState(t, s), readDir(t, dir)
	if err := s.StoreLogs(walEntries(7, 9, 3, "b")); err != nil {
		t.Fatal(err)
	}
	name, data := closeAndReadNewest(t, dir, s)
	start := len(data) - len(s.buf)
	staleLen := len(appendWALEntries(nil, 0, walRecEntries, replaced))
	for _, salted := range []bool{true, false} {
		files, newest, stale, at := maps.Clone(preFiles), data, old, start
		if !salted {
			for n, b := range files {
				files[n] = walAsFirstFormat(t, b)
			}
			newest, stale, at = walAsFirstFormat(t, data), walAsFirstFormat(t, old), start-walSaltBytes
		}
		// The write's first page reached the disk; the next one holds
		// what the deleted segment's last write left in that block.
		files[name] = slices.Concat(newest[:at+walRecHeader+5], stale[len(stale)-staleLen:])
		openForgedTail(t, writeDir(t, files), pre, salted)
	}
}

// A crash at any point of writing a new segment's header loses nothing
// and, but for damage, never stops the log from opening. The header
// (magic, salt, stable keys, marker) is written and synced under a
// temporary name, then renamed: before the rename the temporary file may
// hold any prefix of it, and open removes it; after the rename the
// segment holds the whole header, which open reuses. A segment under its
// own name with a shorter header cannot come from a crash (it was synced
// before the rename): it is damage, refused and left as it is, since
// the salt or keys it lost cannot be told from the rest.
func TestWALCrash_EveryCrashPointOfASegmentHeader(t *testing.T) {
	dir := t.TempDir()
	s := openWALT(t, dir, walSegmentBytes)
	for _, op := range []walOp{hsOp(2, "n1", walEntries(1, 3, 2, "a")), setOp("k0", "x"), logsOp(walEntries(4, 5, 2, "a"))} {
		if err := op.do(s); err != nil {
			t.Fatal(err)
		}
	}
	want := readWALState(t, s)
	s.Close()
	preFiles := readDir(t, dir)
	openWALT(t, dir, walSegmentBytes).Close() // starts segment 2, as newSegment writes it
	name := walSegmentName(2)
	header := readDir(t, dir)[name]
	if len(header) <= len(walMagic)+walSaltBytes || len(preFiles) != 1 {
		t.Fatalf("segment 2 of %d bytes after %d segments; want a header of keys after one", len(header), len(preFiles))
	}
	for cut := 0; cut <= len(header); cut++ {
		files := maps.Clone(preFiles)
		files[name+".tmp"] = header[:cut]
		crashed := writeDir(t, files)
		if got := reopenState(t, crashed, walSegmentBytes); !got.equal(want) {
			t.Fatalf("%d bytes of the header under the temporary name: opened as %v, want %v", cut, got, want)
		}
		if _, err := os.Stat(filepath.Join(crashed, name+".tmp")); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%d bytes of the header under the temporary name: the file is still there (%v)", cut, err)
		}
		files = maps.Clone(preFiles)
		files[name] = header[:cut]
		crashed = writeDir(t, files)
		if cut == len(header) {
			if got := reopenState(t, crashed, walSegmentBytes); !got.equal(want) {
				t.Fatalf("the whole header renamed: opened as %v, want %v", got, want)
			}
			if got := walSegmentFiles(t, crashed); len(got) != 2 {
				t.Fatalf("the whole header renamed: segments %v, want it reused", got)
			}
			continue
		}
		s, err := openWALStore(crashed, walSegmentBytes)
		if err == nil {
			st := readWALState(t, s)
			s.Close()
			t.Fatalf("segment %s of %d header bytes: opened as %v, want it refused", name, cut, st)
		}
		if !strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), "backup") {
			t.Fatalf("segment %s of %d header bytes: error does not say which file and what to do: %v", name, cut, err)
		}
		if now := readDir(t, crashed); !maps.EqualFunc(now, files, bytes.Equal) {
			t.Fatalf("segment %s of %d header bytes: the refused log was changed", name, cut)
		}
	}
}
