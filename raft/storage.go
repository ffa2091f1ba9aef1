package raft

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// ErrLogNotFound is returned by LogStore.GetLog for an absent index.
var ErrLogNotFound = errors.New("raft: log entry not found")

// LogStore is durable storage for log entries. Implementations: WALStore
// (segment files, what servers run on), BoltStore (one bbolt file, data
// dirs that have one) and MemStore (tests, -dev).
type LogStore interface {
	// FirstIndex is the lowest stored index (0 if empty).
	FirstIndex() (uint64, error)
	// LastIndex is the highest stored index (0 if empty).
	LastIndex() (uint64, error)
	// GetLog returns the entry at index or ErrLogNotFound.
	GetLog(index uint64) (Entry, error)
	// StoreLogs durably writes contiguous entries, first deleting every
	// stored entry with an index >= entries[0].Index (a follower replacing
	// a conflicting suffix, Raft §5.3), atomically and with one sync.
	StoreLogs(entries []Entry) error
	// DeleteRange removes entries in [min, max] (log compaction, Raft II).
	DeleteRange(min, max uint64) error
}

// StableStore is durable key/value storage for the hard state (and, in
// Raft II, snapshot metadata).
type StableStore interface {
	Set(key, val []byte) error
	// Get returns nil, nil for an absent key.
	Get(key []byte) ([]byte, error)
}

// hardStateWriter is implemented by stores that keep both the log and the
// hard state and can write them in one transaction (one fsync per Ready).
type hardStateWriter interface {
	StoreLogsAndState(entries []Entry, key, val []byte) error
}

var keyHardState = []byte("hardstate")

// encodeHardState is term (8 bytes, big-endian) followed by the vote.
func encodeHardState(hs HardState) []byte {
	b := make([]byte, 8, 8+len(hs.Vote))
	binary.BigEndian.PutUint64(b, hs.Term)
	return append(b, hs.Vote...)
}

func decodeHardState(b []byte) (HardState, error) {
	if len(b) == 0 {
		return HardState{}, nil
	}
	if len(b) < 8 {
		return HardState{}, fmt.Errorf("raft: stored hard state is %d bytes, want >= 8; the stable store is corrupt", len(b))
	}
	return HardState{Term: binary.BigEndian.Uint64(b), Vote: string(b[8:])}, nil
}

// entryHeaderLen is the stored entry's fixed part: term (8) | type (1).
const entryHeaderLen = 9

// appendEntry appends e's stored form to b: term (8) | type (1) | data;
// the index is the key.
func appendEntry(b []byte, e Entry) []byte {
	b = binary.BigEndian.AppendUint64(b, e.Term)
	b = append(b, byte(e.Type))
	return append(b, e.Data...)
}

func decodeEntry(index uint64, b []byte) (Entry, error) {
	if len(b) < 9 {
		return Entry{}, fmt.Errorf("raft: stored entry %d is %d bytes, want >= 9; the log store is corrupt", index, len(b))
	}
	return Entry{Index: index, Term: binary.BigEndian.Uint64(b), Type: EntryType(b[8]),
		Data: append([]byte(nil), b[9:]...)}, nil
}

// loadState reads everything the core needs to resume: hard state and the
// log entries that follow snap (the snapshot the FSM was restored from;
// zero if none).
func loadState(logs LogStore, stable StableStore, snap SnapshotMeta) (HardState, []Entry, error) {
	raw, err := stable.Get(keyHardState)
	if err != nil {
		return HardState{}, nil, fmt.Errorf("raft: reading hard state: %w", err)
	}
	hs, err := decodeHardState(raw)
	if err != nil {
		return HardState{}, nil, err
	}
	first, err := logs.FirstIndex()
	if err != nil {
		return HardState{}, nil, fmt.Errorf("raft: reading first log index: %w", err)
	}
	last, err := logs.LastIndex()
	if err != nil {
		return HardState{}, nil, fmt.Errorf("raft: reading last log index: %w", err)
	}
	if first > snap.Index+1 {
		return HardState{}, nil, fmt.Errorf("raft: log starts at %d but the newest usable snapshot ends at %d; "+
			"entries in between are lost (wrong or damaged data dir?)", first, snap.Index)
	}
	if snap.Index > 0 && last >= snap.Index && snap.Index >= first {
		// The snapshot holds only committed state. If our entry at its
		// index has another term, what follows is an uncommitted suffix
		// from a deposed leader: drop it and resume from the snapshot.
		e, err := logs.GetLog(snap.Index)
		if err != nil {
			return HardState{}, nil, fmt.Errorf("raft: reading log entry %d: %w", snap.Index, err)
		}
		if e.Term != snap.Term {
			last = snap.Index
		}
	}
	first = max(first, snap.Index+1)
	var entries []Entry
	for i := first; i <= last && i != 0; i++ {
		e, err := logs.GetLog(i)
		if err != nil {
			return HardState{}, nil, fmt.Errorf("raft: reading log entry %d: %w", i, err)
		}
		entries = append(entries, e)
	}
	return hs, entries, nil
}
