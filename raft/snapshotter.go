package raft

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
)

// snapshotter is the shell's half of snapshots on the FSM side. It lives
// on the applier goroutine, which is the only place that knows a
// point-in-time FSM state matches an exact log index: after applying a
// batch it asks the FSM for a snapshot when enough was applied since the
// last one, and hands the (slow) Persist to a goroutine of its own so that
// neither the raft loop nor further applies wait for the disk. When the
// snapshot is durable the raft loop learns of it (taken) and compacts the
// log.
type snapshotter struct {
	store          SnapshotStore
	fsm            FSM
	log            *slog.Logger
	thresholdIndex uint64 // entries applied since the last snapshot
	thresholdBytes uint64 // command bytes applied since the last snapshot
	taken          chan SnapshotMeta
	stop           chan struct{}
	wg             sync.WaitGroup

	// Owned by the applier goroutine.
	lastIndex  uint64 // newest snapshot taken or restored
	lastTerm   uint64 // term of the last applied entry
	conf       Configuration
	confIndex  uint64
	bytesSince uint64

	// poke wakes the applier so that a threshold crossed while a Persist
	// was running is acted on even if no further entries arrive.
	poke   func()
	busy   atomic.Bool   // a Persist is running
	latest atomic.Uint64 // index of the newest durable snapshot (Stats)
	term   atomic.Uint64 // its term
}

func newSnapshotter(cfg Config, fsm FSM, log *slog.Logger, from SnapshotMeta) *snapshotter {
	s := &snapshotter{store: cfg.Snapshots, fsm: fsm, log: log,
		thresholdIndex: cfg.SnapshotThreshold, thresholdBytes: cfg.SnapshotThresholdBytes,
		taken: make(chan SnapshotMeta, 1), stop: make(chan struct{})}
	s.reset(from)
	return s
}

func (s *snapshotter) reset(m SnapshotMeta) {
	s.lastIndex, s.lastTerm, s.bytesSince = m.Index, m.Term, 0
	s.conf, s.confIndex = m.Configuration.Clone(), m.ConfigurationIndex
	s.latest.Store(m.Index)
	s.term.Store(m.Term)
}

// observe follows every applied entry: the snapshot's term and
// configuration are those of the last entry it includes.
func (s *snapshotter) observe(e Entry) {
	s.lastTerm = e.Term
	s.bytesSince += uint64(len(e.Data))
	if e.Type == EntryConfiguration {
		if conf, err := decodeConfiguration(e.Data); err == nil {
			s.conf, s.confIndex = conf, e.Index
		}
	}
}

// maybeTake starts a snapshot of the state after applied if a threshold is
// crossed and none is being written.
func (s *snapshotter) maybeTake(applied uint64) {
	if applied <= s.lastIndex || s.busy.Load() {
		return
	}
	if applied-s.lastIndex < s.thresholdIndex && s.bytesSince < s.thresholdBytes {
		return
	}
	fsmSnap, err := s.fsm.Snapshot()
	if err != nil {
		s.log.Error("raft: FSM refused a snapshot; the log keeps growing until one succeeds", "index", applied, "err", err)
		s.lastIndex, s.bytesSince = applied, 0 // retry after another threshold, not on every batch
		return
	}
	meta := SnapshotMeta{Index: applied, Term: s.lastTerm, Configuration: s.conf.Clone(), ConfigurationIndex: s.confIndex}
	s.lastIndex, s.bytesSince = applied, 0
	s.busy.Store(true)
	s.wg.Add(1)
	go s.persist(fsmSnap, meta)
}

// persist writes the snapshot and reports it to the raft loop. A failure
// leaves the previous snapshot the newest (the sink is cancelled).
func (s *snapshotter) persist(fsmSnap FSMSnapshot, meta SnapshotMeta) {
	defer s.wg.Done()
	defer func() {
		s.busy.Store(false)
		s.poke()
	}()
	defer fsmSnap.Release()
	id, err := writeSnapshot(s.store, meta, func(w SnapshotSink) error { return fsmSnap.Persist(w) })
	if err != nil {
		s.log.Error("raft: writing snapshot failed; the previous snapshot stays in use", "index", meta.Index, "err", err)
		return
	}
	meta.ID = id
	s.latest.Store(meta.Index)
	s.term.Store(meta.Term)
	select {
	case s.taken <- meta:
	case <-s.stop:
	}
}

// writeSnapshot creates a snapshot in store and fills it with write.
func writeSnapshot(store SnapshotStore, meta SnapshotMeta, write func(SnapshotSink) error) (string, error) {
	sink, err := store.Create(meta.Index, meta.Term, meta.Configuration, meta.ConfigurationIndex)
	if err != nil {
		return "", err
	}
	if err := write(sink); err != nil {
		sink.Cancel()
		return "", err
	}
	if err := sink.Close(); err != nil {
		return "", err
	}
	return sink.ID(), nil
}

// restore replaces the FSM's state by stored snapshot id (an installed
// snapshot, on the applier goroutine, in log order).
func (s *snapshotter) restore(meta SnapshotMeta) error {
	m, rc, err := s.store.Open(meta.ID)
	if err != nil {
		return err
	}
	defer rc.Close()
	if err := s.fsm.Restore(rc); err != nil {
		return fmt.Errorf("raft: FSM failed to restore snapshot %s: %w", m.ID, err)
	}
	s.reset(m)
	return nil
}

func (s *snapshotter) close() {
	close(s.stop)
	s.wg.Wait()
}

// restoreNewest restores fsm from the newest snapshot in store that reads
// back intact; a corrupt one is skipped with an error log naming it (an
// older one, plus the log, still rebuilds the state). It returns the meta
// of the snapshot used (zero: none).
func restoreNewest(store SnapshotStore, fsm FSM, log *slog.Logger) (SnapshotMeta, error) {
	metas, err := store.List()
	if err != nil {
		return SnapshotMeta{}, err
	}
	for _, want := range metas {
		m, rc, err := store.Open(want.ID)
		if err != nil {
			if errors.Is(err, ErrSnapshotCorrupt) {
				log.Error("raft: skipping corrupt snapshot; trying an older one", "snapshot", want.ID, "index", want.Index, "err", err)
			} else {
				log.Error("raft: skipping unreadable snapshot; trying an older one", "snapshot", want.ID, "err", err)
			}
			continue
		}
		err = fsm.Restore(rc)
		rc.Close()
		if err != nil {
			return SnapshotMeta{}, fmt.Errorf("raft: restoring the FSM from snapshot %s: %w; the FSM may be half-restored, fix or remove the snapshot and restart", m.ID, err)
		}
		log.Info("raft: restored FSM from snapshot", "snapshot", m.ID, "index", m.Index, "term", m.Term)
		return m, nil
	}
	return SnapshotMeta{}, nil
}
