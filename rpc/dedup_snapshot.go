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
//	"RDD2" uvarint(count) { id varint(proposedAtNanos) uvarint(index) }*count
//	<inner snapshot>
//
// where an id is 0x10 and the 16 bytes of a canonical UUID (reqKey.uuid),
// or 0x00, uvarint(len) and the text of any other ID. Restore also reads
// the first form, "RDD1", in which every id is uvarint(len) and its text:
// a generated ID took 37 bytes there instead of 17.

var (
	dedupSnapshotMagic   = [4]byte{'R', 'D', 'D', '2'}
	dedupSnapshotMagicV1 = [4]byte{'R', 'D', 'D', '1'}
)

// The id tags of an RDD2 entry.
const (
	idTagText = 0x00
	idTagUUID = 0x10
)

type dedupSnapshot struct {
	entries [][]tableEntry // entryQueue.view: shared, read-only
	count   int
	inner   raft.FSMSnapshot
}

// Snapshot implements raft.FSM: a view of the live table plus the inner
// FSM's snapshot, both taken under mu so no Apply falls between them (see
// Apply). The view costs O(chunks), not O(entries): Apply waits for the
// lock while Snapshot holds it, so a copy of the whole table (hundreds of
// thousands of IDs at a few thousand writes a second) stalled every write
// of the server at each snapshot. The inner Snapshot is cheap by the
// raft.FSM contract; the expensive Persist runs later, outside the lock.
func (d *DedupFSM) Snapshot() (raft.FSMSnapshot, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	inner, err := d.inner.Snapshot()
	if err != nil {
		return nil, err
	}
	return &dedupSnapshot{entries: d.order.view(), count: d.order.len(), inner: inner}, nil
}

func (s *dedupSnapshot) Persist(w io.Writer) error {
	bw := bufio.NewWriter(w)
	bw.Write(dedupSnapshotMagic[:])
	var buf [2 + 3*binary.MaxVarintLen64 + maxRequestIDBytes]byte
	bw.Write(binary.AppendUvarint(buf[:0], uint64(s.count)))
	for _, chunk := range s.entries {
		for i := range chunk {
			e := &chunk[i]
			b := appendTableID(buf[:0], &e.key)
			b = binary.AppendVarint(b, e.proposedAt)
			b = binary.AppendUvarint(b, e.index)
			if _, err := bw.Write(b); err != nil {
				return fmt.Errorf("rpc: writing request-ID table: %w", err)
			}
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("rpc: writing request-ID table: %w", err)
	}
	return s.inner.Persist(w)
}

// appendTableID appends k in RDD2's id form.
func appendTableID(b []byte, k *reqKey) []byte {
	if k.text == "" {
		b = append(b, idTagUUID)
		return append(b, k.uuid[:]...)
	}
	b = append(b, idTagText)
	b = binary.AppendUvarint(b, uint64(len(k.text)))
	return append(b, k.text...)
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
	d.resetTable()
	for _, e := range entries {
		d.remember(e)
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
func (d *DedupFSM) readTable(br *bufio.Reader) ([]tableEntry, error) {
	var magic [4]byte
	if _, err := io.ReadFull(br, magic[:]); err != nil || (magic != dedupSnapshotMagic && magic != dedupSnapshotMagicV1) {
		return nil, errors.New("rpc: snapshot does not start with the request-ID table (RDD2 or RDD1); was it written by a DedupFSM?")
	}
	readID := readTableID
	if magic == dedupSnapshotMagicV1 {
		readID = readTableIDV1
	}
	count, err := binary.ReadUvarint(br)
	if err != nil || count > maxSnapshotTableEntries {
		return nil, fmt.Errorf("rpc: snapshot request-ID table has a bad entry count (%d, limit %d)", count, maxSnapshotTableEntries)
	}
	// Capacity from the count only up to our own limit: the count is
	// untrusted input until the entries have been read.
	// Once full, entries is a ring whose oldest element is at next.
	entries := make([]tableEntry, 0, min(count, uint64(d.maxEntries)))
	next := 0
	for i := uint64(0); i < count; i++ {
		e, err := readTableEntry(br, readID)
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

func readTableEntry(br *bufio.Reader, readID func(*bufio.Reader) (reqKey, error)) (tableEntry, error) {
	key, err := readID(br)
	if err != nil {
		return tableEntry{}, err
	}
	proposedAt, err := binary.ReadVarint(br)
	if err != nil {
		return tableEntry{}, err
	}
	index, err := binary.ReadUvarint(br)
	if err != nil {
		return tableEntry{}, err
	}
	return tableEntry{key: key, proposedAt: proposedAt, index: index}, nil
}

// readTableID reads an RDD2 id.
func readTableID(br *bufio.Reader) (reqKey, error) {
	tag, err := br.ReadByte()
	if err != nil {
		return reqKey{}, err
	}
	switch tag {
	case idTagUUID:
		var k reqKey
		_, err := io.ReadFull(br, k.uuid[:])
		return k, err
	case idTagText:
		text, err := readIDText(br)
		if err != nil {
			return reqKey{}, err
		}
		// keyOf, not reqKey{text}: a text that is a canonical UUID must
		// map to the same key Apply gives it.
		return keyOf(text), nil
	}
	return reqKey{}, fmt.Errorf("unknown request ID tag 0x%02x", tag)
}

// readTableIDV1 reads an RDD1 id: its length and text.
func readTableIDV1(br *bufio.Reader) (reqKey, error) {
	text, err := readIDText(br)
	if err != nil {
		return reqKey{}, err
	}
	return keyOf(text), nil
}

func readIDText(br *bufio.Reader) ([]byte, error) {
	idLen, err := binary.ReadUvarint(br)
	if err != nil || idLen == 0 || idLen > maxRequestIDBytes {
		return nil, fmt.Errorf("bad request ID length %d", idLen)
	}
	id := make([]byte, idLen)
	if _, err := io.ReadFull(br, id); err != nil {
		return nil, err
	}
	return id, nil
}
