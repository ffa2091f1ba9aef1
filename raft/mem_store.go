package raft

import (
	"maps"
	"sync"
)

// MemStore is an in-memory LogStore and StableStore for tests and -dev.
// Stall lets a test freeze its writes to model a disk that hangs.
type MemStore struct {
	// mu guards logs, first, last, kv and stall.
	mu          sync.Mutex
	logs        map[uint64]Entry
	first, last uint64
	kv          map[string][]byte
	stall       chan struct{} // non-nil: writes wait until it is closed
}

var (
	_ LogStore        = (*MemStore)(nil)
	_ StableStore     = (*MemStore)(nil)
	_ hardStateWriter = (*MemStore)(nil)
)

// NewMemStore returns an empty store.
func NewMemStore() *MemStore {
	return &MemStore{logs: map[uint64]Entry{}, kv: map[string][]byte{}}
}

// Stall makes every later write block until the returned function is
// called (a disk that hangs).
func (s *MemStore) Stall() (resume func()) {
	ch := make(chan struct{})
	s.mu.Lock()
	s.stall = ch
	s.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			s.stall = nil
			s.mu.Unlock()
			close(ch)
		})
	}
}

func (s *MemStore) waitStall() {
	s.mu.Lock()
	ch := s.stall
	s.mu.Unlock()
	if ch != nil {
		<-ch
	}
}

func (s *MemStore) FirstIndex() (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.first, nil
}

func (s *MemStore) LastIndex() (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last, nil
}

func (s *MemStore) GetLog(index uint64) (Entry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.logs[index]
	if !ok {
		return Entry{}, ErrLogNotFound
	}
	e.Data = append([]byte(nil), e.Data...)
	return e, nil
}

func (s *MemStore) StoreLogs(entries []Entry) error {
	s.waitStall()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.storeLogs(entries)
	return nil
}

func (s *MemStore) storeLogs(entries []Entry) {
	if len(entries) == 0 {
		return
	}
	for i := entries[0].Index; i <= s.last && i != 0; i++ {
		delete(s.logs, i)
	}
	for _, e := range entries {
		e.Data = append([]byte(nil), e.Data...)
		s.logs[e.Index] = e
	}
	if s.first == 0 || entries[0].Index < s.first {
		s.first = entries[0].Index
	}
	s.last = entries[len(entries)-1].Index
}

func (s *MemStore) DeleteRange(lo, hi uint64) error {
	s.waitStall()
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := lo; i <= hi; i++ {
		delete(s.logs, i)
	}
	s.first, s.last = 0, 0
	for i := range s.logs {
		if s.first == 0 || i < s.first {
			s.first = i
		}
		s.last = max(s.last, i)
	}
	return nil
}

func (s *MemStore) Set(key, val []byte) error {
	s.waitStall()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.kv[string(key)] = append([]byte(nil), val...)
	return nil
}

func (s *MemStore) Get(key []byte) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.kv[string(key)]
	if !ok {
		return nil, nil
	}
	return append([]byte(nil), v...), nil
}

// StoreLogsAndState writes entries and one key together.
func (s *MemStore) StoreLogsAndState(entries []Entry, key, val []byte) error {
	s.waitStall()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.storeLogs(entries)
	if key != nil {
		s.kv[string(key)] = append([]byte(nil), val...)
	}
	return nil
}

// Clone returns an independent copy (a crashed server's disk, reused by
// its restarted incarnation in tests).
func (s *MemStore) Clone() *MemStore {
	s.mu.Lock()
	defer s.mu.Unlock()
	return &MemStore{logs: maps.Clone(s.logs), first: s.first, last: s.last, kv: maps.Clone(s.kv)}
}
