package rpc

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"roster/raft"
)

// A DedupFSM snapshot is the request-ID table followed by the inner FSM's
// own snapshot bytes:
//
//	"RDD1" uvarint(count) { uvarint(len(id)) id varint(proposedAtNanos) uvarint(index) }*count
//	<inner snapshot>

var dedupSnapshotMagic = [4]byte{'R', 'D', 'D', '1'}

type dedupSnapshotEntry struct {
	key        reqKey
	proposedAt int64
	index      uint64
}

type dedupSnapshot struct {
	entries []dedupSnapshotEntry
	inner   raft.FSMSnapshot
}

// Snapshot implements raft.FSM: a copy of the live table plus the inner
// FSM's snapshot, both taken under mu so no Apply falls between them (see
// Apply). The inner Snapshot is cheap by the raft.FSM contract; the
// expensive Persist runs later, outside the lock.
func (d *DedupFSM) Snapshot() (raft.FSMSnapshot, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	entries := make([]dedupSnapshotEntry, 0, d.order.len())
	d.order.each(func(e tableEntry) {
		entries = append(entries, dedupSnapshotEntry{key: e.key, proposedAt: e.proposedAt, index: d.table[e.key].index})
	})
	inner, err := d.inner.Snapshot()
	if err != nil {
		return nil, err
	}
	return &dedupSnapshot{entries: entries, inner: inner}, nil
}

func (s *dedupSnapshot) Persist(w io.Writer) error {
	bw := bufio.NewWriter(w)
	bw.Write(dedupSnapshotMagic[:])
	var buf [3*binary.MaxVarintLen64 + maxRequestIDBytes]byte
	var text [maxRequestIDBytes]byte
	bw.Write(binary.AppendUvarint(buf[:0], uint64(len(s.entries))))
	for _, e := range s.entries {
		id := e.key.appendText(text[:0])
		b := binary.AppendUvarint(buf[:0], uint64(len(id)))
		b = append(b, id...)
		b = binary.AppendVarint(b, e.proposedAt)
		b = binary.AppendUvarint(b, e.index)
		if _, err := bw.Write(b); err != nil {
			return fmt.Errorf("rpc: writing request-ID table: %w", err)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("rpc: writing request-ID table: %w", err)
	}
	return s.inner.Persist(w)
}

func (s *dedupSnapshot) Release() { s.inner.Release() }

// Restore implements raft.FSM. Outcomes are not in snapshots, so a
// duplicate of a restored ID returns Duplicate{Index}.
func (d *DedupFSM) Restore(r io.Reader) error {
	br := bufio.NewReader(r)
	entries, err := d.readTable(br)
	if err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.inner.Restore(br); err != nil {
		return err
	}
	d.table = make(map[reqKey]appliedWrite, len(entries))
	d.order = entryQueue{}
	for _, e := range entries {
		d.table[e.key] = appliedWrite{index: e.index}
		d.order.push(tableEntry{key: e.key, proposedAt: e.proposedAt})
	}
	return nil
}

// maxSnapshotTableEntries bounds the table a snapshot may carry, whatever
// this server's own MaxEntries: servers may be configured differently.
const maxSnapshotTableEntries = 1 << 24

// readTable reads the request-ID table and keeps its newest d.maxEntries
// entries. A snapshot from a server with a larger MaxEntries must still
// restore here (refusing it would leave this replica unable to catch up
// at all); dropping the oldest IDs is what this server's own Apply would
// have done with the same log.
func (d *DedupFSM) readTable(br *bufio.Reader) ([]dedupSnapshotEntry, error) {
	var magic [4]byte
	if _, err := io.ReadFull(br, magic[:]); err != nil || magic != dedupSnapshotMagic {
		return nil, errors.New("rpc: snapshot does not start with the request-ID table (RDD1); was it written by a DedupFSM?")
	}
	count, err := binary.ReadUvarint(br)
	if err != nil || count > maxSnapshotTableEntries {
		return nil, fmt.Errorf("rpc: snapshot request-ID table has a bad entry count (%d, limit %d)", count, maxSnapshotTableEntries)
	}
	// Capacity from the count only up to our own limit: the count is
	// untrusted input until the entries have been read.
	// Once full, entries is a ring whose oldest element is at next.
	entries := make([]dedupSnapshotEntry, 0, min(count, uint64(d.maxEntries)))
	next := 0
	for i := uint64(0); i < count; i++ {
		e, err := readTableEntry(br)
		if err != nil {
			return nil, fmt.Errorf("rpc: snapshot request-ID table entry %d: %w", i, err)
		}
		if len(entries) < d.maxEntries {
			entries = append(entries, e)
			continue
		}
		entries[next] = e
		next = (next + 1) % len(entries)
	}
	return append(entries[next:], entries[:next]...), nil
}

func readTableEntry(br *bufio.Reader) (dedupSnapshotEntry, error) {
	idLen, err := binary.ReadUvarint(br)
	if err != nil || idLen > maxRequestIDBytes {
		return dedupSnapshotEntry{}, fmt.Errorf("bad request ID length %d", idLen)
	}
	id := make([]byte, idLen)
	if _, err := io.ReadFull(br, id); err != nil {
		return dedupSnapshotEntry{}, err
	}
	proposedAt, err := binary.ReadVarint(br)
	if err != nil {
		return dedupSnapshotEntry{}, err
	}
	index, err := binary.ReadUvarint(br)
	if err != nil {
		return dedupSnapshotEntry{}, err
	}
	if idLen == 0 {
		return dedupSnapshotEntry{}, errors.New("empty request ID")
	}
	return dedupSnapshotEntry{key: keyOf(id), proposedAt: proposedAt, index: index}, nil
}
