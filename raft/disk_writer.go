package raft

import (
	"fmt"
	"sync"
)

// diskWriter is the shell's disk: one goroutine that makes log entries and
// hard state durable in the background, so that the raft loop keeps
// stepping messages, sending AppendEntries and taking new proposals while
// an fsync is in flight (thesis §10.2.1: the leader writes its own log in
// parallel with replicating it).
//
// Group commit: each time it finishes a write, the writer takes every
// write queued since it started the last one and makes them durable
// together, in one store transaction and one fsync. Under load the queue
// refills during each fsync, so the number of fsyncs per second stays
// about 1/F however many entries arrive, and each fsync carries all of
// them.
//
// Writes are applied in submission order, and the writer reports each
// group's highest sequence number back to the raft loop, which releases
// the responses and votes it held for those writes (Raft Figure 2:
// respond only after updating stable storage).
type diskWriter struct {
	logs   LogStore
	stable StableStore

	// mu guards queue.
	mu     sync.Mutex
	queue  []diskWrite
	signal chan struct{} // buffered 1: the queue is non-empty
	done   chan diskDone // to the raft loop, in order
	stop   chan struct{}
	exited chan struct{}
}

// diskWrite is one Ready's worth of state to make durable.
type diskWrite struct {
	seq     uint64
	entries []Entry // replaces every stored entry from entries[0].Index on
	hs      HardState
	hsSet   bool
}

// diskDone reports that every write with a sequence number <= seq is
// durable; lastIndex/lastTerm name the last entry written (0 if the group
// wrote none).
type diskDone struct {
	seq                 uint64
	lastIndex, lastTerm uint64
	writes, entries     int // for Stats: writes coalesced, entries written
	err                 error
}

func newDiskWriter(logs LogStore, stable StableStore) *diskWriter {
	w := &diskWriter{logs: logs, stable: stable, signal: make(chan struct{}, 1),
		done: make(chan diskDone, 16), stop: make(chan struct{}), exited: make(chan struct{})}
	go w.run()
	return w
}

// submit queues a write; it never blocks on the disk.
func (w *diskWriter) submit(d diskWrite) {
	w.mu.Lock()
	w.queue = append(w.queue, d)
	w.mu.Unlock()
	select {
	case w.signal <- struct{}{}:
	default:
	}
}

// close stops the writer after the write in progress (queued writes are
// dropped: nothing that depended on them was sent) and waits for it, so
// that the caller may close the stores afterwards.
func (w *diskWriter) close() {
	close(w.stop)
	<-w.exited
}

func (w *diskWriter) run() {
	defer close(w.exited)
	for {
		select {
		case <-w.stop:
			return
		case <-w.signal:
		}
		w.mu.Lock()
		group := w.queue
		w.queue = nil
		w.mu.Unlock()
		if len(group) == 0 {
			continue
		}
		d := w.write(group)
		select {
		case w.done <- d:
		case <-w.stop:
			return
		}
		if d.err != nil {
			return // the node stops; nothing more may be written
		}
	}
}

// write makes a group of writes durable in one transaction.
func (w *diskWriter) write(group []diskWrite) diskDone {
	var entries []Entry
	var hs HardState
	hsSet := false
	for _, g := range group {
		entries = mergeEntries(entries, g.entries)
		if g.hsSet {
			hs, hsSet = g.hs, true
		}
	}
	d := diskDone{seq: group[len(group)-1].seq, writes: len(group), entries: len(entries)}
	if len(entries) > 0 {
		last := entries[len(entries)-1]
		d.lastIndex, d.lastTerm = last.Index, last.Term
	}
	d.err = persistState(w.logs, w.stable, entries, hs, hsSet)
	return d
}

// mergeEntries appends es to a pending run of entries with StoreLogs'
// semantics: es replaces everything from es[0].Index on, so writing the
// merged run once equals writing both in turn.
func mergeEntries(run, es []Entry) []Entry {
	switch {
	case len(es) == 0:
		return run
	case len(run) == 0 || es[0].Index <= run[0].Index:
		return es
	case es[0].Index <= run[len(run)-1].Index:
		run = run[: es[0].Index-run[0].Index : es[0].Index-run[0].Index]
	}
	return append(run, es...)
}

// persistState writes entries and hard state in one store call when the
// store supports it (one fsync), else in two.
func persistState(logs LogStore, stable StableStore, entries []Entry, hs HardState, hsSet bool) error {
	if len(entries) == 0 && !hsSet {
		return nil
	}
	var key, val []byte
	if hsSet {
		key, val = keyHardState, encodeHardState(hs)
	}
	if w, ok := logs.(hardStateWriter); ok && (key == nil || any(logs) == any(stable)) {
		if err := w.StoreLogsAndState(entries, key, val); err != nil {
			return fmt.Errorf("raft: persisting %d entries and hard state: %w", len(entries), err)
		}
		return nil
	}
	if len(entries) > 0 {
		if err := logs.StoreLogs(entries); err != nil {
			return fmt.Errorf("raft: persisting %d entries: %w", len(entries), err)
		}
	}
	if key != nil {
		if err := stable.Set(key, val); err != nil {
			return fmt.Errorf("raft: persisting hard state: %w", err)
		}
	}
	return nil
}
