package raft

import (
	"encoding/binary"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// Crash tests for telling a torn last write from damage when whole
// records follow the bad one: only records that continue the log are
// evidence of later (acknowledged) writes.

// walOlderRecords are whole, checksummed records that restate what the
// log of walTornTailLog already holds or held: entries below its first
// index, the stored hard state and an older one, deletes of compacted
// indexes, copies of stored entries, and compacted entries that frame a
// later record. A client's value can carry such bytes, and so can the
// stale blocks of a deleted segment; in a salted segment they check only
// if framed with its seed (its own stale blocks; a client cannot know the
// salt), in one of the first format whatever frames them. (Entries at or above the first
// stored index that are not stored copies count as later writes whatever
// their terms: see TestWALCrash_DamageBeforeLowerTermWritesIsRefused.)
func walOlderRecords(seed uint32) [][]byte {
	// A record inside another one's bytes is part of it, not a write:
	// compacted entries whose data frames a later hard state.
	later := appendWALState(nil, seed, keyHardState, encodeHardState(HardState{Term: 9}))
	return [][]byte{
		appendWALEntries(nil, seed, walRecEntries, walEntries(2, 3, 1, "old")),
		appendWALState(nil, seed, keyHardState, encodeHardState(HardState{Term: 2, Vote: "n1"})),
		appendWALState(nil, seed, keyHardState, encodeHardState(HardState{Term: 1})),
		appendWALDelete(nil, seed, walRecCompact, 2),
		appendWALDelete(nil, seed, walRecTruncate, 3),
		appendWALEntries(nil, seed, walRecEntries, walEntries(4, 5, 2, "a")),
		appendWALState(nil, seed, []byte("k0"), []byte("x")),
		appendWALEntries(nil, seed, walRecEntries, walEntries(7, 8, 2, "a")),
		appendWALEntries(nil, seed, walRecEntries, []Entry{{Index: 1, Term: 1, Type: EntryCommand, Data: later}}),
	}
}

// walTornTailLog writes term 2 (vote n1), entries 4..8 (1..3 compacted)
// and key k0, and returns the store's directory and files.
func walTornTailLog(t *testing.T) (string, *WALStore) {
	t.Helper()
	dir := t.TempDir()
	s := openWALT(t, dir, walSegmentBytes)
	for _, op := range []walOp{hsOp(2, "n1", walEntries(1, 6, 2, "a")), deleteOp(1, 3), logsOp(walEntries(7, 8, 2, "a")), setOp("k0", "x")} {
		if err := op.do(s); err != nil {
			t.Fatalf("%s: %v", op.name, err)
		}
	}
	return dir, s
}

// A torn last write whose surviving bytes hold whole records that do not
// continue the log (framed inside an entry's data, or stale blocks the
// crash left in the unsynced tail) is cut back: the store opens with
// everything before that write, and so does the next open.
func TestWALCrash_TornTailWithOlderRecordsIsCutBack(t *testing.T) {
	dir, s := walTornTailLog(t)
	pre, preFiles := readWALState(t, s), readDir(t, dir)
	// Framed with the segment's own seed, so that they check: the rules
	// of continuesLog, not the salt, are what this test is about.
	older := walOlderRecords(s.segs[len(s.segs)-1].seed)
	value := slices.Concat(older...)
	es := walEntries(9, 11, 2, "b")
	es[1].Data = value
	if err := s.StoreLogs(es); err != nil {
		t.Fatal(err)
	}
	name, data := closeAndReadNewest(t, dir, s)
	start := len(data) - len(s.buf)
	at := start + bytesIndex(t, data[start:], value)
	crashes := map[string][]byte{}
	// Cut just after each framed record: it is whole, the write is not.
	end := at
	for i, rec := range older {
		end += len(rec)
		crashes[fmt.Sprintf("cut after framed record %d", i)] = data[:end]
	}
	// Every byte on disk, but the page with the write's header never was.
	unwritten := slices.Clone(data)
	clear(unwritten[start : start+walRecHeader])
	crashes["header page not written"] = unwritten
	// The write's first bytes reached the disk, its later pages hold
	// stale blocks: here, records of this segment older than the log.
	_, hdr, err := walReadHeader(data)
	if err != nil {
		t.Fatal(err)
	}
	stale := slices.Concat(data[:start+walRecHeader+5], data[hdr:start])
	crashes["stale blocks of an older segment"] = stale
	for what, newest := range crashes {
		files := maps.Clone(preFiles)
		files[name] = newest
		crashed := writeDir(t, files)
		s, err := openWALStore(crashed, walSegmentBytes)
		if err != nil {
			t.Errorf("%s: %v", what, err)
			continue
		}
		got := readWALState(t, s)
		s.Close()
		if !got.equal(pre) {
			t.Errorf("%s: opened as %v, want %v", what, got, pre)
		} else if again := reopenState(t, crashed, walSegmentBytes); !again.equal(pre) {
			t.Errorf("%s: reopened as %v, want %v", what, again, pre)
		}
	}
}

// assertDamagedWriteRefused writes setup, then damaged, then latest to a
// new log, and checks that damage at four places in damaged's record
// (its header, its first entry, its end) is refused on open: latest is a
// whole later write.
func assertDamagedWriteRefused(t *testing.T, setup []walOp, damaged, latest walOp) {
	t.Helper()
	dir := t.TempDir()
	s := openWALT(t, dir, walSegmentBytes)
	for _, op := range setup {
		if err := op.do(s); err != nil {
			t.Fatalf("%s: %v", op.name, err)
		}
	}
	damagedAt := int(s.segs[0].size)
	if err := damaged.do(s); err != nil {
		t.Fatal(err)
	}
	damagedEnd := int(s.segs[0].size)
	if err := latest.do(s); err != nil {
		t.Fatal(err)
	}
	path := s.segs[0].f.Name()
	s.Close()
	clean, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, at := range []int{damagedAt + 1, damagedAt + 5, damagedAt + walRecHeader + 5, damagedEnd - 1} {
		assertDamageRefused(t, dir, path, clean, at)
	}
}

func bytesIndex(t *testing.T, b, sub []byte) int {
	t.Helper()
	for i := 0; i+len(sub) <= len(b); i++ {
		if string(b[i:i+len(sub)]) == string(sub) {
			return i
		}
	}
	t.Fatal("the framed records are not in the segment")
	return 0
}

// Damage to a record that later writes continuing the log follow is
// refused, whatever that later write is: entries after those the damaged
// record held (so not right after the stored log), a §5.3 suffix
// replacement, a later hard state, a new key, a compaction, a suffix
// delete.
func TestWALCrash_DamageBeforeRecordsThatContinueIsRefused(t *testing.T) {
	lastWrites := []walOp{
		logsOp(walEntries(10, 11, 2, "z")),
		logsOp(walEntries(5, 6, 3, "z")),
		hsOp(3, "n2", nil),
		hsOp(3, "", walEntries(10, 10, 3, "z")),
		setOp("k9", "v"),
		deleteOp(1, 2),
		deleteOp(8, 9),
	}
	for _, last := range lastWrites {
		t.Run(last.name, func(t *testing.T) {
			assertDamagedWriteRefused(t, []walOp{hsOp(2, "n1", walEntries(1, 3, 1, "a")), logsOp(walEntries(4, 6, 1, "a"))},
				logsOp(walEntries(7, 9, 2, "d")), last)
		})
	}
}

// Damage to a write that a later write follows is refused where the
// later write restates nothing stored, though it may look like an older
// one: a §5.3 replacement installs entries of a lower term than those it
// replaces (the new leader's log holds an older-term entry there), so
// entries after it have a term below the stored entry they follow;
// after a snapshot install discards the log, entries go on from the
// snapshot, below indexes the log held; a write's key record that
// changes nothing does not make its entries the torn write's own; a vote
// in the stored term other than the stored one is not an older state.
func TestWALCrash_DamageBeforeLowerTermWritesIsRefused(t *testing.T) {
	cases := []struct {
		name            string
		setup           []walOp
		damaged, latest walOp
	}{{
		name:    "entries after a lower-term replacement",
		setup:   []walOp{hsOp(5, "", walEntries(1, 3, 3, "a")), logsOp(walEntries(4, 5, 5, "a"))},
		damaged: logsOp(walEntries(4, 4, 3, "r")),
		latest:  logsOp(walEntries(5, 5, 3, "r")),
	}, {
		name:    "entries past the stored log after a lower-term replacement",
		setup:   []walOp{hsOp(5, "", walEntries(1, 3, 3, "a")), logsOp(walEntries(4, 5, 5, "a"))},
		damaged: logsOp(walEntries(4, 6, 3, "r")),
		latest:  logsOp(walEntries(7, 7, 3, "r")),
	}, {
		name:    "lower-term replacement after a damaged hard state",
		setup:   []walOp{hsOp(5, "", walEntries(1, 3, 3, "a")), logsOp(walEntries(4, 5, 5, "a"))},
		damaged: hsOp(6, "n2", nil),
		latest:  logsOp(walEntries(4, 4, 3, "r")),
	}, {
		name:    "entries below the discarded log's end after a snapshot install",
		setup:   []walOp{hsOp(1, "", walEntries(1, 6, 1, "a")), deleteOp(1, 6)},
		damaged: hsOp(2, "n2", walEntries(4, 5, 2, "s")),
		latest:  logsOp(walEntries(6, 7, 2, "s")),
	}, {
		name:    "entries written with an unchanged hard state",
		setup:   []walOp{hsOp(2, "n1", walEntries(1, 3, 2, "a"))},
		damaged: logsOp(walEntries(4, 5, 2, "d")),
		latest:  hsOp(2, "n1", walEntries(6, 6, 2, "z")),
	}, {
		name:    "another vote in the stored term",
		setup:   []walOp{hsOp(2, "n1", walEntries(1, 3, 2, "a"))},
		damaged: logsOp(walEntries(4, 5, 2, "d")),
		latest:  hsOp(2, "n2", nil),
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			assertDamagedWriteRefused(t, c.setup, c.damaged, c.latest)
		})
	}
}

// The search for later writes spends checksum work only on well-formed
// candidates, and once its budget is spent without an answer the bad
// record counts as damage: giving up must not cut back what may be
// durable. Here the candidates are well-formed deletes whose checksums
// fail, costing their length each.
func TestWALTail_SpentScanBudgetCountsAsDamage(t *testing.T) {
	_, s := walTornTailLog(t)
	defer s.Close()
	bad := appendWALDelete(nil, 0, walRecTruncate, 9)
	bad[5] ^= 0xff // the checksum
	tail := slices.Clone(bad)
	for range 10 {
		tail = append(tail, bad...)
	}
	cost := 10 * (len(bad) - walRecHeader)
	if !s.tailIsTorn(tail, 0, 0, cost) {
		t.Errorf("%d bytes of budget: damage, want torn (every candidate checked)", cost)
	}
	if s.tailIsTorn(tail, 0, 0, cost-1) {
		t.Errorf("%d bytes of budget: torn, want damage (the search gave up)", cost-1)
	}
}

// A torn write of high-entropy data (a client's binary values) is cut
// back: its bytes rarely look like well-formed records, so the search
// ends within its budget.
func TestWALCrash_TornWriteOfRandomDataIsCutBack(t *testing.T) {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 2))
	dir, s := walTornTailLog(t)
	pre, preFiles := readWALState(t, s), readDir(t, dir)
	// 32 values of 512 KiB, the largest KV value: a 16 MiB write, twice
	// what the checksum budget would cover if random stable-key
	// candidates were not bounded by walMaxStateBody.
	es := walEntries(9, 40, 2, "")
	for i := range es {
		es[i].Data = make([]byte, 512<<10)
		for j := 0; j < len(es[i].Data); j += 8 {
			binary.LittleEndian.PutUint64(es[i].Data[j:], rng.Uint64())
		}
	}
	if err := s.StoreLogs(es); err != nil {
		t.Fatal(err)
	}
	name, data := closeAndReadNewest(t, dir, s)
	files := maps.Clone(preFiles)
	files[name] = data[:len(data)-1]
	crashed := writeDir(t, files)
	st := reopenState(t, crashed, walSegmentBytes)
	if !st.equal(pre) {
		t.Errorf("opened as %v, want %v", st, pre)
	}
}

// A stable record larger than walMaxStateBody, which the tail search
// would not recognise, is refused when written, alone or with entries,
// and the store keeps working.
func TestWALStore_RefusesOversizedStableRecords(t *testing.T) {
	s := openWALT(t, t.TempDir(), walSegmentBytes)
	defer s.Close()
	big := make([]byte, walMaxStateBody)
	if err := s.Set([]byte("k"), big); err == nil {
		t.Fatal("Set of a walMaxStateBody value: no error")
	}
	if err := s.StoreLogsAndState(walEntries(1, 1, 1, ""), []byte("k"), big); err == nil {
		t.Fatal("StoreLogsAndState with a walMaxStateBody value: no error")
	}
	if err := s.Set([]byte("k"), big[:walMaxStateBody-4]); err != nil {
		t.Fatalf("Set of the largest value: %v", err)
	}
	if v, err := s.Get([]byte("k")); err != nil || len(v) != walMaxStateBody-4 {
		t.Fatalf("Get: %d bytes, %v", len(v), err)
	}
}

// closeAndReadNewest closes s, the store in dir, and returns the name and
// bytes of its newest segment, the one its last write went to.
func closeAndReadNewest(t *testing.T, dir string, s *WALStore) (string, []byte) {
	t.Helper()
	name := walSegmentName(s.segs[len(s.segs)-1].seq)
	s.Close()
	data, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return name, data
}
