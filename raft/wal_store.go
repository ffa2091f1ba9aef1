package raft

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
)

// WALStore keeps the log and the stable state in an append-only write-ahead
// log: a directory of segment files, each a run of checksummed records.
// A write appends one buffer and makes it durable with one fdatasync, where
// a bbolt transaction needs two (data pages, then the meta page) plus the
// page writes of its B+tree: on a disk whose fsync takes F, a lone write
// costs about F here and 2F+ in BoltStore, and that is most of what one
// client waits for a commit (the leader's write and a follower's, in
// parallel). The log is short (snapshots compact it), so the store keeps an
// index of every stored entry's place in memory and the stable keys
// themselves.
//
// A segment starts with "RSTRWAL2" and a random 8-byte salt; then come
// records: length (4) | CRC-32C of salt and body (4) | body. The salt is
// why a record can be told from bytes that look like one (see walMagic):
// segments of the first format ("RSTRWAL1", no salt, CRC of the body
// alone) are still read, never written to. Body kinds:
// entries (a StoreLogs: every entry replaces the stored ones from its
// index on, as in Raft §5.3), a stable key, "delete from index i on",
// "delete through index i". Each is defined by log indexes alone, so
// replaying the records of segments k, k+1, ... from an empty log yields
// every entry written in them that is still stored — which is every entry
// once segments before k hold none (then they are deleted). Each segment
// starts with the stable keys as they were when it was created, so
// deleting old segments never loses them; a header-end marker (see
// walHeaderEnd) closes that header, so damage inside it is refused rather
// than cut back as a torn write.
//
// A crash can leave a partly written tail in the newest segment: opening
// the store stops at the first record that is short or fails its checksum
// there and cuts the file back to the last whole record (nothing after it
// was acknowledged, as it was not yet synced, and the cut is synced before
// anything else is written), then writes on in a new segment headed by
// every stable key (or in the newest one if it is salted and holds every
// stable key and nothing else, so restarts without writes add no files).
// A write is one record, or a stable key followed by entries marked as
// written with it, so a crash keeps the key without the entries or both,
// never entries of a term the stored term is below. A bad record that a
// whole record of a later write follows (one that checks under the
// segment's salt, which bytes inside the torn write and stale blocks of
// other segments cannot, and does not merely restate stored or older
// state; see tailIsTorn), a bad record in an older segment or in a salted
// segment's header, a damaged magic (a first-format segment after a salted
// one, or one whose records check under a salt), or a missing segment is
// corruption and an error. Segment files are created
// whole (written under a temporary name, then renamed) and deleted oldest
// first, each delete made durable before the next, so the files on disk
// are always a contiguous run of whole segments, and only the newest can
// end in a torn write: an older one was cut back to its last whole record
// before the next was created.
type WALStore struct {
	dir      string
	segBytes int64

	// mu guards every field below: the disk writer appends while the raft
	// loop compacts and reads indexes.
	mu          sync.Mutex
	segs        []*walSegment // ascending; the last is written to
	first, last uint64        // stored entries (0, 0: none)
	locs        []walLoc      // locs[i] is entry first+i
	// locsDropped counts the places compactThrough dropped from the
	// front of locs' array since it last copied locs out.
	locsDropped int
	// emptiedFrom is the first index the log held when it last became
	// empty: with no stored entry, a later write names no lower index
	// (see continuesLog).
	emptiedFrom uint64
	kv          map[string][]byte
	buf         []byte // the record being written
	closed      bool
	// failed is the first write or sync error: after it the file's state
	// is unknown (a failed fdatasync may have dropped the dirty pages, and
	// a retry would report success for data that is gone), so every later
	// write returns it and the server must restart and replay the log.
	failed error
}

var (
	_ LogStore        = (*WALStore)(nil)
	_ StableStore     = (*WALStore)(nil)
	_ hardStateWriter = (*WALStore)(nil)
)

// walSegment is one file of the log.
type walSegment struct {
	seq  uint64
	f    *os.File
	size int64
	live int // stored entries whose record is in this file
	// seed starts the CRC of each of its records: the CRC-32C of its salt,
	// or 0 in a segment of the first format (walMagicV1), which has none.
	seed uint32
}

// walLoc is where an entry's encoding (index | term | type | length | data)
// sits.
type walLoc struct {
	seg *walSegment
	off int64
	n   uint32
}

const (
	// walSegmentBytes: a new segment starts once the current one holds
	// this much (64k 100-byte writes); whole segments are deleted once the
	// log is compacted past them.
	walSegmentBytes = 32 << 20
	walRecHeader    = 8
	walEntryHeader  = 8 + 8 + 1 + 4 // index, term, type, data length

	walRecEntries  byte = 1
	walRecState    byte = 2
	walRecTruncate byte = 3 // delete entries >= index
	walRecCompact  byte = 4 // delete entries <= index
	// walRecEntriesWithState: entries written in the same write as the
	// stable-key record just before them.
	walRecEntriesWithState byte = 5
	// walTornScanBytes bounds the checksum work spent looking for whole
	// records after a bad one; past it the bad record counts as damage
	// (see tailIsTorn).
	walTornScanBytes = 64 << 20
	// walMaxStateBody bounds a stable-key record's body (kind, key length,
	// key, value). Stable keys hold Raft's hard state and a few small
	// settings; the bound lets the tail search skip any candidate longer
	// than it (walWellFormed) without computing its checksum, so a torn
	// write of megabytes of random values costs no more than its length.
	// Every entry header frames such a candidate (length: the low half of
	// its index; kind: its term's low byte), so a torn batch of many
	// small entries at indexes up to the bound costs up to its square
	// over two: 8 MiB at 4 KiB, where 64 KiB cost 2 GiB, past the budget.
	walMaxStateBody = 4 << 10
	// walRepairHint says what to do with a damaged log.
	walRepairHint = "restore the data dir from a backup, or remove this server from the cluster (roster operator raft remove-peer), delete its data dir and join it again"
)

var walCRC = crc32.MakeTable(crc32.Castagnoli)

// walHeaderEnd is the reserved stable key of the record that ends a
// segment's header (value: the header's length before it). A header is
// written whole (see newSegment), so a bad record before this marker is
// never a torn write, and a whole marker after a bad record, at the
// offset its value names, proves the bad record was inside a header:
// damage. Releases that predate it
// replay it as one more stable key, which nothing reads. It is never
// stored among the keys (Get, newSegment's header) and Set refuses it.
const walHeaderEnd = "\x00wal-header-end"

// walTornScanBudget is the budget open gives tailIsTorn: walTornScanBytes,
// lowered by tests that show what happens past it without writing 64 MiB.
var walTornScanBudget = walTornScanBytes

// OpenWALStore opens (creating if needed) the log in dir, e.g.
// <data-dir>/raft/wal, and replays it.
func OpenWALStore(dir string) (*WALStore, error) {
	return openWALStore(dir, walSegmentBytes)
}

func openWALStore(dir string, segBytes int64) (*WALStore, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("raft: creating the log directory %s: %w", dir, err)
	}
	s := &WALStore{dir: dir, segBytes: segBytes, kv: map[string][]byte{}}
	seqs, err := walSegmentSeqs(dir)
	if err != nil {
		return nil, err
	}
	for i := 1; i < len(seqs); i++ {
		if seqs[i] != seqs[i-1]+1 {
			return nil, fmt.Errorf("raft: log segment %s is missing (%s and %s are present); %s",
				walSegmentName(seqs[i-1]+1), walSegmentName(seqs[i-1]), walSegmentName(seqs[i]), walRepairHint)
		}
	}
	keysOnly := false
	for i, seq := range seqs {
		newest := i == len(seqs)-1
		only, err := s.replaySegment(seq, newest)
		if err != nil {
			s.closeFiles()
			return nil, err
		}
		keysOnly = newest && only
	}
	// Write on in a fresh segment, headed by every stable key. A torn
	// tail of the newest one was cut and synced above, before this new
	// segment can follow it: from here on it is an older segment, where a
	// bad record is damage. If the newest segment is salted and holds
	// nothing but every stable key (it was started by an open that nothing
	// was written after, or only keys), write on in it instead: it is what
	// a fresh one would be, and a server that restarts in a loop adds no
	// files. Its cut, if any, is synced, so a later write's torn tail is
	// the only one. A segment of the first format is never written to, so
	// after an upgrade every torn tail is in a salted segment.
	if !keysOnly {
		next := uint64(1)
		if len(seqs) > 0 {
			next = seqs[len(seqs)-1] + 1
		}
		if err := s.newSegment(next); err != nil {
			s.closeFiles()
			return nil, err
		}
	}
	s.dropDeadSegments()
	return s, nil
}

// walSegmentSeqs lists the segment files in dir by sequence number.
// A segment whose creation a crash interrupted is left under its temporary
// name and removed: nothing was written to it yet.
func walSegmentSeqs(dir string) ([]uint64, error) {
	tmps, _ := filepath.Glob(filepath.Join(dir, "*.wal.tmp"))
	for _, name := range tmps {
		if err := os.Remove(name); err != nil {
			return nil, fmt.Errorf("raft: removing the unfinished log segment %s: %w", name, err)
		}
	}
	names, err := filepath.Glob(filepath.Join(dir, "*.wal"))
	if err != nil {
		return nil, err
	}
	var seqs []uint64
	for _, name := range names {
		var seq uint64
		base := filepath.Base(name)
		if _, err := fmt.Sscanf(base, "%020d.wal", &seq); err != nil || base != walSegmentName(seq) {
			return nil, fmt.Errorf("raft: unexpected file %s in the log directory; remove it", name)
		}
		seqs = append(seqs, seq)
	}
	slices.Sort(seqs)
	return seqs, nil
}

func walSegmentName(seq uint64) string { return fmt.Sprintf("%020d.wal", seq) }

// replaySegment reads one segment's records into the store's state; the
// newest segment's torn tail is cut off. keysOnly reports that the
// segment's whole records are stable keys alone, every stored key among
// them (so no older segment is needed for any).
func (s *WALStore) replaySegment(seq uint64, newest bool) (keysOnly bool, err error) {
	path := filepath.Join(s.dir, walSegmentName(seq))
	data, err := os.ReadFile(path)
	if err != nil {
		return false, fmt.Errorf("raft: reading log segment %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0o600)
	if err != nil {
		return false, fmt.Errorf("raft: opening log segment %s: %w", path, err)
	}
	seg := &walSegment{seq: seq, f: f}
	s.segs = append(s.segs, seg)
	seed, start, err := s.readSegmentHeader(path, data)
	if err != nil {
		return false, err
	}
	seg.seed = seed
	keys := map[string]bool{} // nil once a record is not a stable key
	headerEnd := false        // the header-end marker was replayed
	off := int64(start)
	for off < int64(len(data)) {
		body, ok := walRecord(data[off:], seed)
		if !ok {
			break
		}
		if err := s.applyRecord(seg, off+walRecHeader, body, true); err != nil {
			return false, fmt.Errorf("raft: log segment %s at offset %d: %w", path, off, err)
		}
		if body[0] != walRecState {
			keys = nil
		} else if key := string(body[3 : 3+int(binary.LittleEndian.Uint16(body[1:]))]); key == walHeaderEnd {
			headerEnd = true
		} else if keys != nil {
			keys[key] = true
		}
		off += walRecHeader + int64(len(body))
	}
	seg.size = off
	// A salted segment's header, marker included, was written whole (see
	// newSegment): a record missing from it is damage, wherever the
	// segment is, whatever follows. (An unsalted one may predate the
	// marker: there tailIsTorn looks for it.)
	if seed != 0 && !headerEnd {
		return false, fmt.Errorf("raft: log segment %s is damaged at offset %d, inside its header (written whole, so this is not a torn write); %s", path, off, walRepairHint)
	}
	// Reused only if salted (the first format is only read), so with its
	// header-end marker (checked above), which tells damage inside its
	// header from a torn write.
	keysOnly = seed != 0 && keys != nil && len(keys) == len(s.kv)
	if off == int64(len(data)) {
		return keysOnly, nil
	}
	if !newest {
		return false, fmt.Errorf("raft: log segment %s is damaged at offset %d (a newer segment follows, so this is not a torn write); %s", path, off, walRepairHint)
	}
	if !s.tailIsTorn(data, int(off), seed, walTornScanBudget) {
		return false, fmt.Errorf("raft: log segment %s is damaged at offset %d (whole records written later follow, so this is not a torn write); %s", path, off, walRepairHint)
	}
	// A torn write: drop what follows the last whole record. The segment
	// is not reused (keysOnly false): writes go on in a new one.
	if err := f.Truncate(off); err != nil {
		return false, fmt.Errorf("raft: cutting the torn tail of %s: %w", path, err)
	}
	return false, f.Sync()
}

// readSegmentHeader reads the header of the segment at path (see
// walReadHeader), which replay has just appended to s.segs.
func (s *WALStore) readSegmentHeader(path string, data []byte) (seed uint32, start int, err error) {
	seed, start, err = walReadHeader(data)
	if err != nil {
		return 0, 0, fmt.Errorf("raft: log segment %s %w", path, err)
	}
	// An open writes on in a salted segment and never in one of the first
	// format, so a first-format segment after a salted one was never
	// written: its magic is damaged (a salted one's, two bits away).
	if prev := len(s.segs) - 2; seed == 0 && prev >= 0 && s.segs[prev].seed != 0 {
		return 0, 0, fmt.Errorf("raft: log segment %s starts with %q but follows %s, a salted segment (%q): no release writes in that order, so it is damaged; %s",
			path, walMagicV1, walSegmentName(s.segs[prev].seq), walMagic, walRepairHint)
	}
	return seed, start, nil
}

// applyRecord applies one record's body, which starts at offset off of seg,
// to the in-memory state. replay relaxes the check that new entries follow
// the stored ones (see the type's comment).
func (s *WALStore) applyRecord(seg *walSegment, off int64, body []byte, replay bool) error {
	switch body[0] {
	case walRecEntries, walRecEntriesWithState:
		return s.applyEntries(seg, off, body, replay)
	case walRecState:
		if len(body) < 3 {
			return errors.New("short stable-key record")
		}
		kl := int(binary.LittleEndian.Uint16(body[1:]))
		if 3+kl > len(body) {
			return errors.New("stable-key record shorter than its key")
		}
		if key := string(body[3 : 3+kl]); key != walHeaderEnd {
			s.kv[key] = append([]byte(nil), body[3+kl:]...)
		}
	case walRecTruncate, walRecCompact:
		if len(body) != 9 {
			return errors.New("bad delete record")
		}
		i := binary.LittleEndian.Uint64(body[1:])
		if body[0] == walRecTruncate {
			s.truncateFrom(i)
		} else {
			s.compactThrough(i)
		}
	default:
		return fmt.Errorf("unknown record kind %d (written by a newer release?)", body[0])
	}
	return nil
}

// applyEntries stores the entries of an entries record: count (4), then
// per entry index | term | type | length | data.
func (s *WALStore) applyEntries(seg *walSegment, off int64, body []byte, replay bool) error {
	if len(body) < 5 {
		return errors.New("short entries record")
	}
	count := binary.LittleEndian.Uint32(body[1:])
	p := 5
	for k := uint32(0); k < count; k++ {
		if p+walEntryHeader > len(body) {
			return errors.New("entries record shorter than its entries")
		}
		index := binary.LittleEndian.Uint64(body[p:])
		n := walEntryHeader + int(binary.LittleEndian.Uint32(body[p+17:]))
		if p+n > len(body) {
			return errors.New("entry longer than its record")
		}
		if err := s.place(index, walLoc{seg: seg, off: off + int64(p), n: uint32(n)}, replay); err != nil {
			return err
		}
		p += n
	}
	return nil
}

// place stores the entry at index, deleting every stored entry from index
// on first.
func (s *WALStore) place(index uint64, loc walLoc, replay bool) error {
	switch {
	case index == 0:
		return errors.New("entry with index 0")
	case s.last == 0:
		s.first = index
	case index == s.last+1:
	case index <= s.last && index >= s.first:
		s.truncateFrom(index)
		if s.last == 0 {
			s.first = index
		}
	case index < s.first || replay:
		// Replaying from a later segment: what preceded is gone.
		s.truncateFrom(0)
		s.first = index
	default:
		return fmt.Errorf("entry %d would leave a gap after the last stored entry %d", index, s.last)
	}
	s.locs = append(s.locs, loc)
	s.last = index
	loc.seg.live++
	return nil
}

// truncateFrom deletes the stored entries with index >= i.
func (s *WALStore) truncateFrom(i uint64) {
	if s.last == 0 || i > s.last {
		return
	}
	keep := 0
	if i > s.first {
		keep = int(i - s.first)
	}
	for _, l := range s.locs[keep:] {
		l.seg.live--
	}
	clear(s.locs[keep:])
	s.locs = s.locs[:keep]
	if keep == 0 {
		s.emptiedFrom, s.first, s.last = s.first, 0, 0
		return
	}
	s.last = i - 1
}

// compactThrough deletes the stored entries with index <= i.
func (s *WALStore) compactThrough(i uint64) {
	if s.last == 0 || i < s.first {
		return
	}
	if i >= s.last {
		s.truncateFrom(0)
		return
	}
	drop := int(i - s.first + 1)
	for _, l := range s.locs[:drop] {
		l.seg.live--
	}
	// Drop the prefix in place, and copy the rest out (freeing the
	// prefix) only once it holds as many places as are stored: a copy
	// per compaction made replaying many small ones quadratic.
	clear(s.locs[:drop])
	s.locs = s.locs[drop:]
	if s.locsDropped += drop; s.locsDropped > len(s.locs) {
		s.locs, s.locsDropped = slices.Clone(s.locs), 0
	}
	s.first = i + 1
}

// newSegment starts segment seq with its magic, a new salt and the stable
// keys, durably (file and directory entry), and makes it the one written
// to. The file is written and synced under a temporary name and then
// renamed, so a crash never leaves a segment whose header (salt, stable
// keys) is cut short: once older segments are deleted, such a header
// would have lost keys, and without its salt none of its records check.
func (s *WALStore) newSegment(seq uint64) error {
	path := filepath.Join(s.dir, walSegmentName(seq))
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("raft: creating log segment %s: %w", path, err)
	}
	b := append([]byte(walMagic), newWALSalt()...)
	seed := walSeed(b[len(walMagic):])
	keys := make([]string, 0, len(s.kv))
	for k := range s.kv {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		b = appendWALState(b, seed, []byte(k), s.kv[k])
	}
	b = appendWALState(b, seed, []byte(walHeaderEnd), binary.LittleEndian.AppendUint64(nil, uint64(len(b))))
	if _, err = f.Write(b); err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err == nil {
		err = syncDir(s.dir)
	}
	if err == nil {
		f, err = os.OpenFile(path, os.O_RDWR, 0o600)
	}
	if err != nil {
		os.Remove(tmp)
		os.Remove(path)
		return fmt.Errorf("raft: creating log segment %s: %w", path, err)
	}
	s.segs = append(s.segs, &walSegment{seq: seq, f: f, size: int64(len(b)), seed: seed})
	return nil
}

// writeSegment returns the segment the next write goes to, starting a new
// one first if the current one is full: the write's records are framed
// with its seed, so it is chosen before they are. Called with mu held.
func (s *WALStore) writeSegment() (*walSegment, error) {
	if s.closed {
		return nil, errors.New("raft: the log store is closed")
	}
	if s.failed != nil {
		return nil, s.failed
	}
	if seg := s.segs[len(s.segs)-1]; seg.size >= s.segBytes {
		if err := s.newSegment(seg.seq + 1); err != nil {
			return nil, err
		}
	}
	return s.segs[len(s.segs)-1], nil
}

// commit appends the records in s.buf, framed for seg (writeSegment's), to
// seg, makes them durable with one data sync and then applies them to the
// in-memory state. Called with mu held.
func (s *WALStore) commit(seg *walSegment) error {
	if _, err := seg.f.WriteAt(s.buf, seg.size); err != nil {
		s.failed = fmt.Errorf("raft: appending to the log failed; restart the server to replay it: %w", err)
		return s.failed
	}
	if err := fdatasync(seg.f); err != nil {
		s.failed = fmt.Errorf("raft: syncing the log failed; restart the server to replay it: %w", err)
		return s.failed
	}
	base := seg.size
	seg.size += int64(len(s.buf))
	for off := 0; off < len(s.buf); {
		body, _ := walRecord(s.buf[off:], seg.seed)
		if err := s.applyRecord(seg, base+int64(off+walRecHeader), body, false); err != nil {
			return err
		}
		off += walRecHeader + len(body)
	}
	if cap(s.buf) > 1<<20 {
		s.buf = nil // a large batch is over: do not keep its buffer
	}
	s.dropDeadSegments()
	return nil
}

// dropDeadSegments deletes the oldest segments while they hold no stored
// entry (never the one being written). Each delete is made durable before
// the next, so a crash leaves a contiguous run of segments (open refuses a
// gap as damage); a delete that does not survive a crash only leaves a
// segment whose entries replay and are deleted again. A failed delete is
// retried after the next write.
func (s *WALStore) dropDeadSegments() {
	for len(s.segs) > 1 && s.segs[0].live == 0 {
		seg := s.segs[0]
		if err := os.Remove(filepath.Join(s.dir, walSegmentName(seg.seq))); err != nil {
			return
		}
		seg.f.Close()
		s.segs[0] = nil
		s.segs = s.segs[1:]
		if syncDir(s.dir) != nil {
			return
		}
	}
}

// StoreLogsAndState writes entries (replacing any stored suffix from
// entries[0].Index) and, if key is non-nil, one stable key: one append and
// one data sync.
func (s *WALStore) StoreLogsAndState(entries []Entry, key, val []byte) error {
	if len(entries) == 0 && key == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if key != nil {
		if err := checkStableSize(key, val); err != nil {
			return err
		}
	}
	if len(entries) > 0 {
		if err := s.checkAppend(entries); err != nil {
			return err
		}
	}
	seg, err := s.writeSegment()
	if err != nil {
		return err
	}
	// The key goes first: a crash that tears this write keeps at most the
	// key (a raised term without the entries is a state the node could
	// have been in), never entries above the stored term, which NewCore
	// refuses as corruption. The entries record is marked as belonging to
	// this write so that replay can tell the two cases apart.
	s.buf = s.buf[:0]
	kind := walRecEntries
	if key != nil {
		s.buf = appendWALState(s.buf, seg.seed, key, val)
		kind = walRecEntriesWithState
	}
	if len(entries) > 0 {
		s.buf = appendWALEntries(s.buf, seg.seed, kind, entries)
	}
	return s.commit(seg)
}

// checkAppend refuses entries that are not consecutive or would leave a
// gap after the stored log, before anything is written.
func (s *WALStore) checkAppend(entries []Entry) error {
	for i := 1; i < len(entries); i++ {
		if entries[i].Index != entries[i-1].Index+1 {
			return fmt.Errorf("raft: storing entries %d and then %d: indexes must be consecutive", entries[i-1].Index, entries[i].Index)
		}
	}
	if i := entries[0].Index; i == 0 || (s.last != 0 && i > s.last+1) {
		return fmt.Errorf("raft: storing entry %d after the last stored entry %d would leave a gap", i, s.last)
	}
	return nil
}

func (s *WALStore) StoreLogs(entries []Entry) error {
	return s.StoreLogsAndState(entries, nil, nil)
}

// DeleteRange removes the entries in [lo, hi]: a prefix (compaction) or a
// suffix (everything from lo on); a range in the middle is refused.
func (s *WALStore) DeleteRange(lo, hi uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	kind, index := walRecTruncate, lo
	switch {
	case s.last == 0 || hi < s.first || lo > s.last || lo > hi:
		return nil
	case hi >= s.last:
	case lo <= s.first:
		kind, index = walRecCompact, hi
	default:
		return fmt.Errorf("raft: deleting entries %d..%d from the middle of the log %d..%d is not supported", lo, hi, s.first, s.last)
	}
	seg, err := s.writeSegment()
	if err != nil {
		return err
	}
	s.buf = appendWALDelete(s.buf[:0], seg.seed, kind, index)
	return s.commit(seg)
}

func (s *WALStore) FirstIndex() (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.first, nil
}

func (s *WALStore) LastIndex() (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last, nil
}

// GetLog reads the entry at index from its segment.
func (s *WALStore) GetLog(index uint64) (Entry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.last == 0 || index < s.first || index > s.last {
		return Entry{}, ErrLogNotFound
	}
	l := s.locs[index-s.first]
	b := make([]byte, l.n)
	if _, err := l.seg.f.ReadAt(b, l.off); err != nil {
		return Entry{}, fmt.Errorf("raft: reading log entry %d: %w", index, err)
	}
	if got := binary.LittleEndian.Uint64(b); got != index {
		return Entry{}, fmt.Errorf("raft: log entry %d is stored as %d; the log is corrupt", index, got)
	}
	return Entry{Index: index, Term: binary.LittleEndian.Uint64(b[8:]), Type: EntryType(b[16]), Data: b[walEntryHeader:]}, nil
}

func (s *WALStore) Set(key, val []byte) error {
	if err := checkStableSize(key, val); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	seg, err := s.writeSegment()
	if err != nil {
		return err
	}
	s.buf = appendWALState(s.buf[:0], seg.seed, key, val)
	return s.commit(seg)
}

// Get returns nil, nil for an absent key.
func (s *WALStore) Get(key []byte) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.kv[string(key)]
	if !ok {
		return nil, nil
	}
	return append([]byte(nil), v...), nil
}

// Close releases the files.
func (s *WALStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	return s.closeFiles()
}

func (s *WALStore) closeFiles() error {
	var errs []error
	for _, seg := range s.segs {
		if err := seg.f.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// String names the store for log lines.
func (s *WALStore) String() string { return "wal:" + strings.TrimSuffix(s.dir, "/") }

// checkStableSize refuses a stable key and value whose record body would
// exceed walMaxStateBody (or whose key length does not fit its field).
func checkStableSize(key, val []byte) error {
	if string(key) == walHeaderEnd {
		return fmt.Errorf("raft: stable key %q is reserved for the log's own use", key)
	}
	if len(key) > 1<<16-1 {
		return fmt.Errorf("raft: stable key of %d bytes is too long (max 65535)", len(key))
	}
	if n := 3 + len(key) + len(val); n > walMaxStateBody {
		return fmt.Errorf("raft: stable key %q with a %d-byte value is too large (at most %d bytes in all)", key, len(val), walMaxStateBody)
	}
	return nil
}
