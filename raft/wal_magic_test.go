package raft

import (
	"bytes"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"roster/internal/testkit"
)

// Tests that damage to a segment's magic, salt or header is refused, never
// read as a shorter log. "RSTRWAL2" is two bits from "RSTRWAL1": a salted
// segment read as one of the first format has no whole record, and cut
// back as a torn write it would take with it the newest hard state and
// entries, leaving an older segment's stale hard state (a vote cast twice,
// acknowledged entries lost).

// walKnownLog writes a salted log whose every segment was started by its
// own open: with three segments, term 1 and entries 1..3; term 2 (vote
// n1), entries 4..6 and key k0; term 3 (vote n2) and entries 7..8. With
// one, the first two writes alone. It returns the files and the state
// they read as.
func walKnownLog(t *testing.T, segs int) (map[string][]byte, walState) {
	t.Helper()
	dir := t.TempDir()
	opens := [][]walOp{
		{hsOp(1, "", walEntries(1, 3, 1, "a"))},
		{hsOp(2, "n1", walEntries(4, 6, 2, "b")), setOp("k0", "x")},
		{hsOp(3, "n2", walEntries(7, 8, 3, "c"))},
	}
	if segs == 1 {
		opens = [][]walOp{slices.Concat(opens[:2]...)}
	}
	var want walState
	for _, ops := range opens {
		s := openWALT(t, dir, walSegmentBytes)
		for _, op := range ops {
			if err := op.do(s); err != nil {
				t.Fatal(err)
			}
		}
		want = readWALState(t, s)
		s.Close()
	}
	files := readDir(t, dir)
	if len(files) != segs {
		t.Fatalf("%d segments, want %d", len(files), segs)
	}
	return files, want
}

// walHeaderLen is the length of a segment's header: magic, salt (if
// salted), stable keys and the header-end marker.
func walHeaderLen(t *testing.T, data []byte) int {
	t.Helper()
	seed, _, err := walReadHeader(data)
	if err != nil {
		t.Fatal(err)
	}
	for _, off := range walRecordOffsets(t, data) {
		if body, _ := walRecord(data[off:], seed); walHeaderEndAt(body, off) {
			return off + walRecHeader + len(body)
		}
	}
	t.Fatal("no header-end marker")
	return 0
}

// checkNoSilentLoss opens dir, whose file name holds damage, and fails
// the test unless open refuses it and leaves every file as it was, or it
// reads as want or a longer log with the same stable keys: never a
// shorter log or an older hard state.
func checkNoSilentLoss(t *testing.T, dir string, files map[string][]byte, want walState, what string) (refused bool) {
	t.Helper()
	s, err := openWALStore(dir, walSegmentBytes)
	if err != nil {
		if now := readDir(t, dir); !maps.EqualFunc(now, files, bytes.Equal) {
			t.Fatalf("%s: refused (%v), but the log was changed", what, err)
		}
		return true
	}
	got := readWALState(t, s)
	s.Close()
	n := len(want.entries)
	if !maps.Equal(got.kv, want.kv) || got.first != want.first || got.last < want.last || len(got.entries) < n ||
		!(walState{first: got.first, last: want.last, entries: got.entries[:n], kv: got.kv}).equal(want) {
		t.Fatalf("%s: opened as %v, want %v (or refused)", what, got, want)
	}
	return false
}

// A salted segment whose magic was damaged into the first format's is
// refused, and left as it is, wherever it is in the log: as the only
// segment, the newest, or an older one.
func TestWALStore_SaltedSegmentWithFirstFormatMagicIsRefused(t *testing.T) {
	for _, segs := range []int{1, 3} {
		files, _ := walKnownLog(t, segs)
		for _, name := range slices.Sorted(maps.Keys(files)) {
			bad := maps.Clone(files)
			bad[name] = slices.Concat([]byte(walMagicV1), files[name][len(walMagic):])
			dir := writeDir(t, bad)
			s, err := openWALStore(dir, walSegmentBytes)
			if err == nil {
				st := readWALState(t, s)
				s.Close()
				t.Fatalf("%d segments, %s with magic %q: opened as %v, want refused", segs, name, walMagicV1, st)
			}
			if !strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), walRepairHint) {
				t.Fatalf("%d segments, %s with magic %q: error does not say which file and what to do: %v", segs, name, walMagicV1, err)
			}
			if now := readDir(t, dir); !maps.EqualFunc(now, bad, bytes.Equal) {
				t.Fatalf("%d segments, %s with magic %q: the refused log was changed", segs, name, walMagicV1)
			}
		}
	}
}

// A segment of the first format after a salted one is refused: the
// writer never writes in that order (a first-format segment is only
// read), so its magic was damaged, even if its records check unsalted.
func TestWALStore_FirstFormatSegmentAfterASaltedOneIsRefused(t *testing.T) {
	files, _ := walKnownLog(t, 3)
	names := slices.Sorted(maps.Keys(files))
	for _, i := range []int{1, 2} {
		bad := maps.Clone(files)
		bad[names[i]] = walAsFirstFormat(t, files[names[i]])
		openRefused(t, writeDir(t, bad), "follows "+names[i-1])
	}
}

// A version digit one bit from the current one reads as a format this
// release does not know; the error says it may be damage too, and what
// to do then.
func TestWALStore_UnknownFormatMaySayDamage(t *testing.T) {
	files, _ := walKnownLog(t, 1)
	name := walSegmentName(1)
	for bit := range 8 {
		bad := slices.Clone(files[name])
		bad[len(walMagic)-1] ^= 1 << bit
		if !strings.HasPrefix(string(bad), walMagicPrefix) {
			continue
		}
		dir := writeDir(t, map[string][]byte{name: bad})
		openRefused(t, dir, "format this release does not know")
		openRefused(t, dir, "damaged")
		openRefused(t, dir, walRepairHint)
	}
}

// Every one-bit flip in a segment's magic and salt, a seeded sample of
// them in the stable-key records and marker of its header (a quarter),
// and every header byte changed in a seeded random way, in a salted log
// of one segment or of three and in the golden log of the first format,
// is refused or opens as the same log: never as a shorter one with an
// older hard state. The magic is also set to the other format's (two
// bits away).
func TestWALCrash_HeaderDamageNeverLosesWrites(t *testing.T) {
	rng := testkit.Rand(t)
	for _, segs := range []int{1, 3, 0} {
		var files map[string][]byte
		var want walState
		if segs == 0 { // the golden log of the first format
			files, want = walGoldenFiles(t), walGoldenState(3, 9)
		} else {
			files, want = walKnownLog(t, segs)
		}
		dir := writeDir(t, files)
		opened, tried := 0, 0
		for _, name := range slices.Sorted(maps.Keys(files)) {
			clean := files[name]
			path := filepath.Join(dir, name)
			try := func(bad []byte, what string) {
				tried++
				if err := os.WriteFile(path, bad, 0o600); err != nil {
					t.Fatal(err)
				}
				cur := maps.Clone(files)
				cur[name] = bad
				if !checkNoSilentLoss(t, dir, cur, want, fmt.Sprintf("%d segments, %s: %s", segs, name, what)) {
					opened++
					dir = writeDir(t, files) // the open wrote a segment
					return
				}
				if err := os.WriteFile(path, clean, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			other := walMagicV1
			if segs == 0 {
				other = walMagic
			}
			try(slices.Concat([]byte(other), clean[len(walMagic):]), "magic "+other)
			_, records, _ := walReadHeader(clean)
			for at := range walHeaderLen(t, clean) {
				for bit := range 8 {
					// Every bit of the magic and salt; two of each
					// byte of the records (a CRC tells any one).
					if at >= records && rng.IntN(4) != 0 {
						continue
					}
					bad := slices.Clone(clean)
					bad[at] ^= 1 << bit
					try(bad, fmt.Sprintf("bit %d of byte %d flipped", bit, at))
				}
				bad := slices.Clone(clean)
				x := byte(1 + rng.IntN(255))
				bad[at] ^= x
				try(bad, fmt.Sprintf("byte %d ^%#x", at, x))
			}
		}
		t.Logf("%d segments (0: first format): %d damaged logs, %d opened (as the same log)", segs, tried, opened)
	}
}
