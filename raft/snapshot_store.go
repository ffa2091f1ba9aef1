package raft

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// SnapshotMeta describes one stored snapshot: the log position it replaces
// (Raft §7: "last included index" and "last included term") and the
// configuration in force at that position, which the log no longer holds
// once it is compacted.
type SnapshotMeta struct {
	ID                 string
	Index              uint64
	Term               uint64
	Configuration      Configuration
	ConfigurationIndex uint64
	Size               int64  // bytes of FSM state
	SHA256             string // hex checksum of the FSM state
}

// ErrSnapshotCorrupt is matched (errors.Is) by the error Open returns for a
// snapshot whose content does not match its checksum.
var ErrSnapshotCorrupt = errors.New("raft: snapshot is corrupt (checksum mismatch)")

// SnapshotSink receives the FSM state of a snapshot being created. Close
// makes it durable and visible atomically; Cancel (or a failed Close)
// leaves no trace, so the previous snapshot stays the newest.
type SnapshotSink interface {
	io.Writer
	ID() string
	Close() error
	Cancel() error
}

// SnapshotStore keeps snapshots. Implementations: FileSnapshotStore
// (production) and MemSnapshotStore (tests, -dev).
type SnapshotStore interface {
	// Create starts a snapshot of the state up to (index, term).
	Create(index, term uint64, conf Configuration, confIndex uint64) (SnapshotSink, error)
	// List returns the stored snapshots, newest (highest index) first.
	List() ([]SnapshotMeta, error)
	// Open returns the snapshot's state after verifying its checksum; the
	// caller closes the reader. A corrupt snapshot yields ErrSnapshotCorrupt.
	Open(id string) (SnapshotMeta, io.ReadCloser, error)
}

// sortNewestFirst orders by index, then term, then ID (creation order).
func sortNewestFirst(ms []SnapshotMeta) {
	slices.SortFunc(ms, func(a, b SnapshotMeta) int {
		switch {
		case a.Index != b.Index:
			return cmpU64(b.Index, a.Index)
		case a.Term != b.Term:
			return cmpU64(b.Term, a.Term)
		}
		return strings.Compare(b.ID, a.ID)
	})
}

func cmpU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// snapshotID sorts by creation time within one index: the index and term in
// fixed-width hex, then the creation time in milliseconds.
func snapshotID(index, term uint64, now time.Time) string {
	return fmt.Sprintf("%016x-%016x-%013d", index, term, now.UnixMilli())
}

// FileSnapshotStore keeps each snapshot in its own directory under dir:
// meta.json and state.bin. A snapshot is written into "<id>.tmp", synced,
// and renamed into place, so a crash mid-write leaves only a .tmp directory
// that the next Open of the store removes; the previous snapshot is
// untouched. Only the newest Retain snapshots are kept.
type FileSnapshotStore struct {
	dir    string
	retain int
	// mu serialises Create's ID choice and reaping.
	mu     sync.Mutex
	lastMs int64
}

var _ SnapshotStore = (*FileSnapshotStore)(nil)

const (
	snapMetaFile  = "meta.json"
	snapStateFile = "state.bin"
	snapTmpSuffix = ".tmp"
)

// NewFileSnapshotStore opens (creating) dir, e.g. <data-dir>/raft/snapshots,
// keeping the newest retain snapshots (retain < 1 means 2). Leftovers of
// an interrupted write are removed.
func NewFileSnapshotStore(dir string, retain int) (*FileSnapshotStore, error) {
	if retain < 1 {
		retain = 2
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("raft: creating snapshot dir %s: %w", dir, err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("raft: reading snapshot dir %s: %w", dir, err)
	}
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), snapTmpSuffix) {
			if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
				return nil, fmt.Errorf("raft: removing interrupted snapshot %s: %w", e.Name(), err)
			}
		}
	}
	return &FileSnapshotStore{dir: dir, retain: retain}, nil
}

// Create implements SnapshotStore.
func (s *FileSnapshotStore) Create(index, term uint64, conf Configuration, confIndex uint64) (SnapshotSink, error) {
	s.mu.Lock()
	ms := max(time.Now().UnixMilli(), s.lastMs+1) // unique and increasing IDs
	s.lastMs = ms
	s.mu.Unlock()
	id := snapshotID(index, term, time.UnixMilli(ms))
	tmp := filepath.Join(s.dir, id+snapTmpSuffix)
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return nil, fmt.Errorf("raft: creating snapshot %s: %w", tmp, err)
	}
	f, err := os.Create(filepath.Join(tmp, snapStateFile))
	if err != nil {
		os.RemoveAll(tmp)
		return nil, fmt.Errorf("raft: creating snapshot %s: %w", tmp, err)
	}
	meta := SnapshotMeta{ID: id, Index: index, Term: term, Configuration: conf.Clone(), ConfigurationIndex: confIndex}
	return &fileSink{store: s, tmp: tmp, f: f, h: sha256.New(), meta: meta}, nil
}

type fileSink struct {
	store *FileSnapshotStore
	tmp   string
	f     *os.File
	h     hash.Hash
	meta  SnapshotMeta
	done  bool
}

func (k *fileSink) ID() string { return k.meta.ID }

func (k *fileSink) Write(p []byte) (int, error) {
	n, err := k.f.Write(p)
	k.h.Write(p[:n])
	k.meta.Size += int64(n)
	return n, err
}

func (k *fileSink) Cancel() error {
	if k.done {
		return nil
	}
	k.done = true
	k.f.Close()
	return os.RemoveAll(k.tmp)
}

// Close syncs the state and the meta, then renames the directory into
// place (the commit point) and syncs the parent so the rename is durable.
func (k *fileSink) Close() error {
	if k.done {
		return nil
	}
	if err := k.finish(); err != nil {
		k.Cancel()
		return fmt.Errorf("raft: writing snapshot %s: %w", k.meta.ID, err)
	}
	k.done = true
	return k.store.reap()
}

func (k *fileSink) finish() error {
	if err := k.f.Sync(); err != nil {
		return err
	}
	if err := k.f.Close(); err != nil {
		return err
	}
	k.meta.SHA256 = hex.EncodeToString(k.h.Sum(nil))
	b, err := json.Marshal(k.meta)
	if err != nil {
		return err
	}
	if err := writeFileSync(filepath.Join(k.tmp, snapMetaFile), b); err != nil {
		return err
	}
	final := filepath.Join(k.store.dir, k.meta.ID)
	if err := os.Rename(k.tmp, final); err != nil {
		return err
	}
	return syncDir(k.store.dir)
}

func writeFileSync(path string, b []byte) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// reap removes all but the newest retain snapshots.
func (s *FileSnapshotStore) reap() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ms, err := s.List()
	if err != nil {
		return err
	}
	for _, m := range ms[min(len(ms), s.retain):] {
		if err := os.RemoveAll(filepath.Join(s.dir, m.ID)); err != nil {
			return fmt.Errorf("raft: removing old snapshot %s: %w", m.ID, err)
		}
	}
	return nil
}

// List implements SnapshotStore. A directory whose meta cannot be read is
// skipped (it is not a complete snapshot).
func (s *FileSnapshotStore) List() ([]SnapshotMeta, error) {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("raft: listing snapshots in %s: %w", s.dir, err)
	}
	var ms []SnapshotMeta
	for _, e := range ents {
		if !e.IsDir() || strings.HasSuffix(e.Name(), snapTmpSuffix) {
			continue
		}
		m, err := s.readMeta(e.Name())
		if err != nil {
			continue
		}
		ms = append(ms, m)
	}
	sortNewestFirst(ms)
	return ms, nil
}

func (s *FileSnapshotStore) readMeta(id string) (SnapshotMeta, error) {
	b, err := os.ReadFile(filepath.Join(s.dir, id, snapMetaFile))
	if err != nil {
		return SnapshotMeta{}, err
	}
	var m SnapshotMeta
	if err := json.Unmarshal(b, &m); err != nil {
		return SnapshotMeta{}, fmt.Errorf("%w: %s/%s: %v", ErrSnapshotCorrupt, id, snapMetaFile, err)
	}
	if m.ID != id {
		return SnapshotMeta{}, fmt.Errorf("%w: %s/%s names snapshot %q", ErrSnapshotCorrupt, id, snapMetaFile, m.ID)
	}
	return m, nil
}

// Open implements SnapshotStore: it hashes the whole state file before
// handing it out, so a restore never starts on bytes that will turn out bad.
func (s *FileSnapshotStore) Open(id string) (SnapshotMeta, io.ReadCloser, error) {
	m, err := s.readMeta(id)
	if err != nil {
		return SnapshotMeta{}, nil, fmt.Errorf("raft: opening snapshot %s: %w", id, err)
	}
	f, err := os.Open(filepath.Join(s.dir, id, snapStateFile))
	if err != nil {
		return SnapshotMeta{}, nil, fmt.Errorf("raft: opening snapshot %s: %w", id, err)
	}
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err == nil && (n != m.Size || hex.EncodeToString(h.Sum(nil)) != m.SHA256) {
		err = fmt.Errorf("%w: %s has %d bytes hashing to %x, meta says %d bytes %s",
			ErrSnapshotCorrupt, id, n, h.Sum(nil), m.Size, m.SHA256)
	}
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		f.Close()
		return SnapshotMeta{}, nil, fmt.Errorf("raft: opening snapshot %s: %w", id, err)
	}
	return m, f, nil
}

// MemSnapshotStore keeps snapshots in memory (tests, -dev). Corrupt lets a
// test flip a byte of a stored snapshot.
type MemSnapshotStore struct {
	retain int
	// mu guards snaps and seq.
	mu    sync.Mutex
	snaps map[string]memSnap
	seq   uint64
}

type memSnap struct {
	meta SnapshotMeta
	data []byte
}

var _ SnapshotStore = (*MemSnapshotStore)(nil)

// NewMemSnapshotStore keeps the newest retain snapshots (retain < 1: 2).
func NewMemSnapshotStore(retain int) *MemSnapshotStore {
	if retain < 1 {
		retain = 2
	}
	return &MemSnapshotStore{retain: retain, snaps: map[string]memSnap{}}
}

// Create implements SnapshotStore.
func (s *MemSnapshotStore) Create(index, term uint64, conf Configuration, confIndex uint64) (SnapshotSink, error) {
	s.mu.Lock()
	s.seq++
	id := fmt.Sprintf("%016x-%016x-%013d", index, term, s.seq)
	s.mu.Unlock()
	return &memSink{store: s, meta: SnapshotMeta{ID: id, Index: index, Term: term,
		Configuration: conf.Clone(), ConfigurationIndex: confIndex}}, nil
}

type memSink struct {
	store *MemSnapshotStore
	meta  SnapshotMeta
	buf   bytes.Buffer
	done  bool
}

func (k *memSink) ID() string                  { return k.meta.ID }
func (k *memSink) Write(p []byte) (int, error) { return k.buf.Write(p) }
func (k *memSink) Cancel() error               { k.done = true; return nil }

func (k *memSink) Close() error {
	if k.done {
		return nil
	}
	k.done = true
	data := bytes.Clone(k.buf.Bytes())
	sum := sha256.Sum256(data)
	k.meta.Size, k.meta.SHA256 = int64(len(data)), hex.EncodeToString(sum[:])
	s := k.store
	s.mu.Lock()
	defer s.mu.Unlock()
	s.snaps[k.meta.ID] = memSnap{meta: k.meta, data: data}
	ms := s.listLocked()
	for _, m := range ms[min(len(ms), s.retain):] {
		delete(s.snaps, m.ID)
	}
	return nil
}

func (s *MemSnapshotStore) listLocked() []SnapshotMeta {
	ms := make([]SnapshotMeta, 0, len(s.snaps))
	for _, sn := range s.snaps {
		m := sn.meta
		m.Configuration = m.Configuration.Clone()
		ms = append(ms, m)
	}
	sortNewestFirst(ms)
	return ms
}

// List implements SnapshotStore.
func (s *MemSnapshotStore) List() ([]SnapshotMeta, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.listLocked(), nil
}

// Open implements SnapshotStore.
func (s *MemSnapshotStore) Open(id string) (SnapshotMeta, io.ReadCloser, error) {
	s.mu.Lock()
	sn, ok := s.snaps[id]
	s.mu.Unlock()
	if !ok {
		return SnapshotMeta{}, nil, fmt.Errorf("raft: snapshot %s not found", id)
	}
	sum := sha256.Sum256(sn.data)
	if hex.EncodeToString(sum[:]) != sn.meta.SHA256 {
		return SnapshotMeta{}, nil, fmt.Errorf("raft: opening snapshot %s: %w", id, ErrSnapshotCorrupt)
	}
	m := sn.meta
	m.Configuration = m.Configuration.Clone()
	return m, io.NopCloser(bytes.NewReader(sn.data)), nil
}

// Corrupt flips one byte of snapshot id's state (tests).
func (s *MemSnapshotStore) Corrupt(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sn, ok := s.snaps[id]; ok && len(sn.data) > 0 {
		sn.data = bytes.Clone(sn.data)
		sn.data[len(sn.data)/2] ^= 0xff
		s.snaps[id] = sn
	}
}

// Clone returns an independent copy (a crashed server's disk).
func (s *MemSnapshotStore) Clone() *MemSnapshotStore {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := &MemSnapshotStore{retain: s.retain, snaps: map[string]memSnap{}, seq: s.seq}
	for id, sn := range s.snaps {
		c.snaps[id] = sn
	}
	return c
}
