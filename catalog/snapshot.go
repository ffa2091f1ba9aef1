package catalog

import (
	"bufio"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"

	"roster/raft"
)

// Snapshots. Snapshot copies the pointers of the current records under the
// read lock — cheap, because records are never modified in place (state.go)
// — and Persist encodes and writes them later without any lock, while Apply
// goes on. Restore reads a whole stream into a fresh state, rebuilds the
// derived indexes and the hashcode, and only then swaps it in.
//
// Stream: the magic "roster-catalog-snapshot", a version byte, the applied
// index and the table indexes, then records [tag][uvarint length][body] in
// the codec of codec.go, ending with tag 0. Records are written in sorted
// order, so equal states give byte-identical snapshots.

const snapshotMagic = "roster-catalog-snapshot"

const snapshotVersion byte = 1

// maxSnapshotRecord bounds one record (a KV value is at most 512 KiB), so a
// corrupt length cannot make Restore allocate gigabytes.
const maxSnapshotRecord = 16 << 20

// Snapshot record tags.
const (
	recEnd byte = iota
	recNode
	recService
	recCheck
	recKV
	recTombstone
	recSession
	recCoordinate
	recServiceIndex
	recNodeIndex
)

// snapshot is a frozen copy of the records' pointers.
type snapshot struct {
	index        uint64
	tableIndex   [numTables]uint64
	nodes        []*Node
	services     []svcRef
	checks       []checkOn
	kv           []*KVPair
	tombstones   map[string]uint64
	sessions     []*SessionEntry
	coords       []*CoordinateEntry
	serviceIndex map[string]uint64
	nodeIndex    map[string]uint64
}

type svcRef struct {
	node string
	svc  *NodeService
}

// checkOn is a check with its node.
type checkOn struct {
	node string
	rec  *checkRec
}

var _ raft.FSMSnapshot = (*snapshot)(nil)

// Snapshot implements raft.FSM.
func (s *Store) Snapshot() (raft.FSMSnapshot, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	st := s.st
	snap := &snapshot{
		index:        st.index,
		tableIndex:   st.tableIndex,
		nodes:        mapValues(st.nodes),
		kv:           mapValues(st.kv),
		sessions:     mapValues(st.sessions),
		coords:       mapValues(st.coords),
		tombstones:   cloneMap(st.tombstones),
		serviceIndex: cloneMap(st.serviceIndex),
		nodeIndex:    cloneMap(st.nodeIndex),
	}
	for node, m := range st.slots {
		for _, slot := range m {
			if slot.svc != nil {
				snap.services = append(snap.services, svcRef{node, slot.svc})
			}
		}
	}
	for node, m := range st.checks {
		for _, cell := range m {
			snap.checks = append(snap.checks, checkOn{node, cell.rec})
		}
	}
	return snap, nil
}

func mapValues[K comparable, V any](m map[K]V) []V {
	out := make([]V, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

func cloneMap[K comparable, V any](m map[K]V) map[K]V {
	out := make(map[K]V, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// Release implements raft.FSMSnapshot.
func (snap *snapshot) Release() {}

// Persist implements raft.FSMSnapshot: it writes the stream without holding
// any store lock.
func (snap *snapshot) Persist(w io.Writer) error {
	snap.sort()
	bw := bufio.NewWriterSize(w, 64<<10)
	e := &encoder{}
	e.buf = append(e.buf, snapshotMagic...)
	e.byte1(snapshotVersion)
	e.uvarint(snap.index)
	for _, idx := range snap.tableIndex {
		e.uvarint(idx)
	}
	if _, err := bw.Write(e.buf); err != nil {
		return fmt.Errorf("catalog: write snapshot header: %w", err)
	}
	rw := recordWriter{w: bw}
	for _, n := range snap.nodes {
		rw.write(recNode, func(e *encoder) { encNode(e, n) })
	}
	for _, r := range snap.services {
		rw.write(recService, func(e *encoder) { e.str(r.node); encService(e, r.svc) })
	}
	for _, c := range snap.checks {
		rw.write(recCheck, func(e *encoder) { v := c.rec.view(c.node); encCheck(e, &v) })
	}
	for _, p := range snap.kv {
		rw.write(recKV, func(e *encoder) { encKVPair(e, p) })
	}
	writeIndexMap(&rw, recTombstone, snap.tombstones)
	for _, sess := range snap.sessions {
		rw.write(recSession, func(e *encoder) { encSession(e, sess) })
	}
	for _, c := range snap.coords {
		rw.write(recCoordinate, func(e *encoder) { encCoordinate(e, c) })
	}
	writeIndexMap(&rw, recServiceIndex, snap.serviceIndex)
	writeIndexMap(&rw, recNodeIndex, snap.nodeIndex)
	rw.write(recEnd, func(*encoder) {})
	if rw.err != nil {
		return fmt.Errorf("catalog: write snapshot: %w", rw.err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("catalog: write snapshot: %w", err)
	}
	return nil
}

func (snap *snapshot) sort() {
	slices.SortFunc(snap.nodes, func(a, b *Node) int { return cmp.Compare(a.Node, b.Node) })
	slices.SortFunc(snap.services, func(a, b svcRef) int {
		return cmp.Or(cmp.Compare(a.node, b.node), cmp.Compare(a.svc.ID, b.svc.ID))
	})
	slices.SortFunc(snap.checks, func(a, b checkOn) int {
		return cmp.Or(cmp.Compare(a.node, b.node), cmp.Compare(a.rec.checkID(), b.rec.checkID()))
	})
	slices.SortFunc(snap.kv, func(a, b *KVPair) int { return cmp.Compare(a.Key, b.Key) })
	slices.SortFunc(snap.sessions, func(a, b *SessionEntry) int { return cmp.Compare(a.ID, b.ID) })
	slices.SortFunc(snap.coords, func(a, b *CoordinateEntry) int { return cmp.Compare(a.Node, b.Node) })
}

func writeIndexMap(rw *recordWriter, tag byte, m map[string]uint64) {
	for _, k := range sortedKeys(m) {
		rw.write(tag, func(e *encoder) { e.str(k); e.uvarint(m[k]) })
	}
}

// recordWriter frames records; the first write error sticks.
type recordWriter struct {
	w   *bufio.Writer
	e   encoder
	hdr [binary.MaxVarintLen64 + 1]byte
	err error
}

func (rw *recordWriter) write(tag byte, body func(e *encoder)) {
	if rw.err != nil {
		return
	}
	rw.e.buf = rw.e.buf[:0]
	body(&rw.e)
	rw.hdr[0] = tag
	n := 1 + binary.PutUvarint(rw.hdr[1:], uint64(len(rw.e.buf)))
	if _, err := rw.w.Write(rw.hdr[:n]); err != nil {
		rw.err = err
		return
	}
	_, rw.err = rw.w.Write(rw.e.buf)
}

// Restore implements raft.FSM: it replaces the whole state with the
// snapshot in r. The delta log restarts empty at the restored index, so
// clients behind it pull the full registry once; every waiter is woken.
func (s *Store) Restore(r io.Reader) error {
	st, err := readSnapshot(bufio.NewReaderSize(r, 64<<10))
	if err != nil {
		return err
	}
	st.rebuildInstances()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st = st
	s.ring = newDeltaRing(s.cfg.DeltaCapacity, st.index)
	clear(s.lockDelay)
	s.watches.wakeAll()
	s.publish(Event{Kind: EventRestored, Index: st.index})
	return nil
}

// ErrBadSnapshot wraps every snapshot decoding failure.
var ErrBadSnapshot = errors.New("catalog: bad snapshot")

func readSnapshot(r *bufio.Reader) (*state, error) {
	magic := make([]byte, len(snapshotMagic)+1)
	if _, err := io.ReadFull(r, magic); err != nil {
		return nil, fmt.Errorf("%w: reading header: %v", ErrBadSnapshot, err)
	}
	if string(magic[:len(snapshotMagic)]) != snapshotMagic {
		return nil, fmt.Errorf("%w: not a catalog snapshot (bad magic)", ErrBadSnapshot)
	}
	if v := magic[len(snapshotMagic)]; v != snapshotVersion {
		return nil, fmt.Errorf("%w: version %d, this server reads version %d", ErrBadSnapshot, v, snapshotVersion)
	}
	st := newState()
	var err error
	if st.index, err = binary.ReadUvarint(r); err != nil {
		return nil, fmt.Errorf("%w: reading index: %v", ErrBadSnapshot, err)
	}
	for i := range st.tableIndex {
		if st.tableIndex[i], err = binary.ReadUvarint(r); err != nil {
			return nil, fmt.Errorf("%w: reading table indexes: %v", ErrBadSnapshot, err)
		}
	}
	var buf []byte
	for n := 0; ; n++ {
		tag, body, err := readRecord(r, buf)
		if err != nil {
			return nil, fmt.Errorf("%w: record %d: %v", ErrBadSnapshot, n, err)
		}
		if tag == recEnd {
			return st, nil
		}
		buf = body[:0]
		if err := st.restoreRecord(tag, body); err != nil {
			return nil, fmt.Errorf("%w: record %d: %v", ErrBadSnapshot, n, err)
		}
	}
}

func readRecord(r *bufio.Reader, buf []byte) (byte, []byte, error) {
	tag, err := r.ReadByte()
	if err != nil {
		return 0, nil, err
	}
	n, err := binary.ReadUvarint(r)
	if err != nil {
		return 0, nil, err
	}
	if n > maxSnapshotRecord {
		return 0, nil, fmt.Errorf("record of %d bytes exceeds the %d-byte limit", n, maxSnapshotRecord)
	}
	buf = slices.Grow(buf[:0], int(n))[:n]
	if _, err := io.ReadFull(r, buf); err != nil {
		return 0, nil, err
	}
	return tag, buf, nil
}

func (st *state) restoreRecord(tag byte, body []byte) error {
	d := &decoder{b: body}
	switch tag {
	case recNode:
		n := &Node{}
		decNode(d, n)
		st.putNode(n)
	case recService:
		node := d.str()
		svc := &NodeService{}
		decService(d, svc)
		st.putService(node, svc, nil)
	case recCheck:
		c := &HealthCheck{}
		decCheck(d, c)
		if d.err != nil {
			break // reported by d.done below
		}
		rec, err := st.restoredCheck(c)
		if err != nil {
			return err
		}
		st.putCheck(c.Node, rec)
	case recKV:
		p := &KVPair{}
		decKVPair(d, p)
		st.putKV(p)
	case recTombstone:
		k := d.str()
		st.putTombstone(k, d.uvarint())
	case recSession:
		s := &SessionEntry{}
		decSession(d, s)
		st.putSession(s)
	case recCoordinate:
		c := &CoordinateEntry{}
		decCoordinate(d, c)
		st.coords[c.Node] = c
	case recServiceIndex:
		k := d.str()
		st.serviceIndex[k] = d.uvarint()
	case recNodeIndex:
		k := d.str()
		st.nodeIndex[k] = d.uvarint()
	default:
		return fmt.Errorf("unknown record tag %d", tag)
	}
	return d.done(fmt.Sprintf("snapshot record tag %d", tag))
}

// rebuildInstances recomputes every instance's content, its two digests
// and the hashcode from the tables (the one full scan, at restore).
func (st *state) rebuildInstances() {
	for node, m := range st.slots {
		for id, slot := range m {
			slot.clearInst()
			st.dropIfEmpty(InstanceKey{Node: node, ID: id}, slot)
		}
	}
	st.numInstances = 0
	st.hash = sum256{}
	var scratch []byte
	for node, m := range st.slots {
		n := st.nodes[node]
		if n == nil {
			continue
		}
		for _, slot := range m {
			if slot.svc == nil {
				continue
			}
			health := st.instanceHealth(InstanceKey{Node: node, ID: slot.svc.ID}, slot)
			in := buildInstance(n, slot.svc, health)
			slot.instNode, slot.instSvc, slot.health = n, slot.svc, health
			slot.content, slot.digest, scratch = digestInstance(scratch, &in)
			st.numInstances++
			st.hash.add(&slot.digest)
		}
	}
}
