package raft

import "io"

// EntryType says what a log entry carries.
type EntryType uint8

const (
	// EntryCommand carries an opaque command for the FSM (Apply's payload).
	EntryCommand EntryType = iota + 1
	// EntryNoop is appended by every new leader so it can commit entries of
	// earlier terms (Raft §5.4.2, §8); it never reaches the FSM.
	EntryNoop
	// EntryConfiguration carries a cluster membership configuration.
	EntryConfiguration
	// EntryBarrier is a no-op used by Barrier to wait for the FSM to catch up.
	EntryBarrier
)

// Entry is one slot of the replicated log.
type Entry struct {
	Index uint64
	Term  uint64
	Type  EntryType
	Data  []byte
}

// FSM is the replicated state machine that committed commands are applied
// to. The catalog implements it. Raft calls Apply from one goroutine, in
// log order, exactly once per committed EntryCommand on each server.
type FSM interface {
	// Apply applies a committed command. The returned value is handed back
	// to the caller of Node.Apply on the server that proposed it. The entry's
	// Index is the "raft index" that Consul reports as X-Consul-Index.
	// e.Data is shared with the log: read it, copy it, never modify it.
	Apply(e Entry) any

	// Snapshot returns a point-in-time copy of the state. It must be cheap:
	// the expensive work happens in FSMSnapshot.Persist, which may run
	// concurrently with further Apply calls.
	Snapshot() (FSMSnapshot, error)

	// Restore replaces the whole state with a snapshot produced by Persist.
	Restore(r io.Reader) error
}

// FSMSnapshot is a frozen state taken by FSM.Snapshot.
type FSMSnapshot interface {
	// Persist writes the snapshot to w.
	Persist(w io.Writer) error
	// Release frees the snapshot's resources; called when raft is done.
	Release()
}
