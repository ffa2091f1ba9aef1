package raft

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Tests of the header-end marker that tells damage inside a segment's
// header (written whole, never torn) from a torn write.

// A segment header-only after the log was emptied (a snapshot install)
// whose hard state is damaged is refused: nothing but the header-end
// marker follows the bad record, and cutting it as a torn write would
// lose the term and vote (the server could vote twice in a term).
func TestWALCrash_DamagedHeaderOfEmptyLogIsRefused(t *testing.T) {
	dir := t.TempDir()
	s := openWALT(t, dir, walSegmentBytes)
	if err := s.StoreLogsAndState(walEntries(1, 3, 7, "a"), keyHardState, encodeHardState(HardState{Term: 7, Vote: "n2"})); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteRange(1, 3); err != nil {
		t.Fatal(err)
	}
	s.Close()
	openWALT(t, dir, walSegmentBytes).Close() // a header-only segment; the old one is dropped
	names := walSegmentFiles(t, dir)
	if len(names) != 1 {
		t.Fatalf("segments %v, want one header-only segment", names)
	}
	path := names[0]
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[len(walMagic)+walSaltBytes+walRecHeader+5] ^= 0xff // inside the hard state record
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if s, err := OpenWALStore(dir); err == nil {
		v, _ := s.Get(keyHardState)
		s.Close()
		t.Fatalf("opened with hard state %q, want the damage refused", v)
	} else if !strings.Contains(err.Error(), "is damaged at offset") {
		t.Fatalf("open: %v, want the damage error", err)
	}
}

// A segment written before the header-end marker existed opens with its
// state; the segment written on is headed by the marker, which is not a
// stable key (Get, Set), and restarts after it add no segments.
func TestWALStore_OpensSegmentsWithoutHeaderEnd(t *testing.T) {
	dir := t.TempDir()
	hs := encodeHardState(HardState{Term: 3, Vote: "n1"})
	old := appendWALState([]byte(walMagicV1), 0, keyHardState, hs)
	old = appendWALState(old, 0, []byte("k0"), []byte("x"))
	if err := os.WriteFile(filepath.Join(dir, walSegmentName(1)), old, 0o600); err != nil {
		t.Fatal(err)
	}
	for open := 1; open <= 3; open++ {
		s := openWALT(t, dir, walSegmentBytes)
		if v, _ := s.Get(keyHardState); string(v) != string(hs) {
			t.Fatalf("open %d: hard state %q, want %q", open, v, hs)
		}
		if v, _ := s.Get([]byte(walHeaderEnd)); v != nil {
			t.Errorf("open %d: the header-end marker is handed out as a key: %q", open, v)
		}
		if err := s.Set([]byte(walHeaderEnd), []byte("x")); err == nil {
			t.Errorf("open %d: setting the reserved key succeeded", open)
		}
		s.mu.Lock()
		keys := len(s.kv)
		s.mu.Unlock()
		s.Close()
		if keys != 2 {
			t.Errorf("open %d: %d stable keys, want 2", open, keys)
		}
		// The unmarked segment is not reused: the first open writes a
		// marked one (and drops the old one, which holds no entries);
		// later opens reuse that.
		if names := walSegmentFiles(t, dir); len(names) != 1 || filepath.Base(names[0]) != walSegmentName(2) {
			t.Fatalf("open %d: segments %v, want only %s", open, names, walSegmentName(2))
		}
	}
}
