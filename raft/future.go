package raft

import (
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

var (
	// ErrNotLeader is matched (errors.Is) by every *NotLeaderError.
	ErrNotLeader = errors.New("raft: not the leader")
	// ErrLeadershipLost: the node stopped leading before the command
	// committed. It may still commit under the next leader; retry only if
	// the command is idempotent or carries its own ID.
	ErrLeadershipLost = errors.New("raft: leadership lost before the command committed; its outcome is unknown")
	// ErrShutdown: the node is shut down.
	ErrShutdown = errors.New("raft: node is shut down")
	// ErrEnqueueTimeout: the node did not accept the command within the
	// timeout; it is overloaded or stuck. Retry later.
	ErrEnqueueTimeout = errors.New("raft: timed out handing the command to the raft loop; the node is overloaded")
)

// NotLeaderError says who the leader is, so the caller can forward.
type NotLeaderError struct {
	LeaderID      string // "" if no leader is known
	LeaderAddress string
}

func (e *NotLeaderError) Error() string {
	if e.LeaderID == "" {
		return "raft: not the leader, and no leader is known right now; retry shortly"
	}
	return fmt.Sprintf("raft: not the leader; forward to leader %s at %s", e.LeaderID, e.LeaderAddress)
}

// Unwrap makes errors.Is(err, ErrNotLeader) true.
func (e *NotLeaderError) Unwrap() error { return ErrNotLeader }

// Future is the outcome of an asynchronous request.
type Future interface {
	// Error blocks until the request is done and returns its error.
	Error() error
}

// ApplyFuture is the outcome of Node.Apply.
type ApplyFuture interface {
	Future
	// Index blocks and returns the log index the command got (0 on error).
	Index() uint64
	// Response blocks and returns what FSM.Apply returned.
	Response() any
}

// applyFuture is both the request travelling to the raft loop and its
// result. index and term are written by the raft loop before the future is
// handed to the applier; resp and err are written once before done closes.
type applyFuture struct {
	typ   EntryType
	data  []byte
	index uint64
	term  uint64
	resp  any
	err   error
	done  chan struct{}
	once  sync.Once
	start time.Time // when Apply was called, for Stats' apply latency
}

func newApplyFuture(typ EntryType, data []byte) *applyFuture {
	return &applyFuture{typ: typ, data: data, done: make(chan struct{}), start: time.Now()}
}

func (f *applyFuture) finish(resp any, err error) {
	f.once.Do(func() {
		f.resp, f.err = resp, err
		if err != nil {
			f.index = 0
		}
		close(f.done)
	})
}

func (f *applyFuture) Error() error  { <-f.done; return f.err }
func (f *applyFuture) Index() uint64 { <-f.done; return f.index }
func (f *applyFuture) Response() any { <-f.done; return f.resp }

// ewma is a moving average of durations (weight 1/8 for the newest),
// written by one goroutine and read by any.
type ewma struct{ micros atomic.Uint64 }

func (e *ewma) add(d time.Duration) {
	us := uint64(max(d, 0) / time.Microsecond)
	old := e.micros.Load()
	if old == 0 {
		e.micros.Store(max(us, 1))
		return
	}
	e.micros.Store(max((old*7+us)/8, 1))
}

func (e *ewma) String() string { return strconv.FormatUint(e.micros.Load(), 10) }

// errorFuture is an already-failed future.
type errorFuture struct{ err error }

func (f errorFuture) Error() error  { return f.err }
func (f errorFuture) Index() uint64 { return 0 }
func (f errorFuture) Response() any { return nil }

// commitBatch is committed entries on their way to the FSM, with the
// futures of the ones proposed here (parallel slice, nil where none).
type commitBatch struct {
	entries []Entry
	futures []*applyFuture
	matched int           // non-nil futures
	restore *SnapshotMeta // instead of entries: restore the FSM from this stored snapshot
}

// applier feeds committed entries to the FSM on its own goroutine, in
// commit order, so that a slow FSM never delays heartbeats. The queue is
// unbounded (it can only hold committed log entries).
type applier struct {
	fsm  FSM
	snap *snapshotter // nil: snapshots disabled
	// mu guards queue.
	mu      sync.Mutex
	queue   []commitBatch
	pending atomic.Int64 // entries queued, for Stats' fsm_pending
	signal  chan struct{}
	stop    chan struct{}
	done    chan struct{}
	applied atomic.Uint64
	// latency is a moving average of Apply-to-applied times of commands
	// proposed here, for Stats.
	latency ewma
	// waitMu guards waiters: ReadIndex callers waiting for an index.
	waitMu  sync.Mutex
	waiters []appliedWaiter
}

type appliedWaiter struct {
	index uint64
	ch    chan struct{}
}

// closedCh is already closed: what waitApplied returns for an index
// already applied, without allocating.
var closedCh = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// waitApplied returns a channel closed once index has been applied.
func (a *applier) waitApplied(index uint64) <-chan struct{} {
	if a.applied.Load() >= index {
		return closedCh
	}
	ch := make(chan struct{})
	a.waitMu.Lock()
	defer a.waitMu.Unlock()
	if a.applied.Load() >= index {
		close(ch)
		return ch
	}
	a.waiters = append(a.waiters, appliedWaiter{index: index, ch: ch})
	return ch
}

// wake releases the waiters whose index is applied.
func (a *applier) wake() {
	applied := a.applied.Load()
	a.waitMu.Lock()
	defer a.waitMu.Unlock()
	kept := a.waiters[:0]
	for _, w := range a.waiters {
		if w.index <= applied {
			close(w.ch)
		} else {
			kept = append(kept, w)
		}
	}
	a.waiters = kept
}

// readRequest is one ReadIndex caller waiting for the raft loop.
type readRequest struct {
	index uint64
	err   error
	done  chan struct{}
}

func (r *readRequest) finish(index uint64, err error) {
	r.index, r.err = index, err
	close(r.done)
}

// newApplier starts the applier for an FSM whose state already includes
// the entries up to applied (a restored snapshot).
func newApplier(fsm FSM, snap *snapshotter, applied uint64) *applier {
	a := &applier{fsm: fsm, snap: snap, signal: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	a.applied.Store(applied)
	if snap != nil {
		snap.poke = a.kick
	}
	go a.run()
	return a
}

func (a *applier) enqueue(b commitBatch) {
	a.mu.Lock()
	a.queue = append(a.queue, b)
	a.mu.Unlock()
	a.pending.Add(int64(len(b.entries)))
	a.kick()
}

// kick wakes the applier's loop.
func (a *applier) kick() {
	select {
	case a.signal <- struct{}{}:
	default:
	}
}

func (a *applier) run() {
	defer close(a.done)
	for {
		select {
		case <-a.stop:
			a.failQueued()
			return
		case <-a.signal:
		}
		a.mu.Lock()
		q := a.queue
		a.queue = nil
		a.mu.Unlock()
		for _, b := range q {
			a.applyBatch(b)
		}
		if a.snap != nil {
			a.snap.maybeTake(a.applied.Load())
		}
		a.wake()
	}
}

func (a *applier) applyBatch(b commitBatch) {
	if b.restore != nil {
		if err := a.snap.restore(*b.restore); err != nil {
			a.snap.log.Error("raft: restoring the FSM from an installed snapshot failed; this server's state is wrong until it restarts", "err", err)
		}
		a.applied.Store(b.restore.Index)
		return
	}
	for i, e := range b.entries {
		if a.snap != nil {
			a.snap.observe(e)
		}
		var resp any
		if e.Type == EntryCommand {
			resp = a.fsm.Apply(e)
		}
		a.applied.Store(e.Index)
		a.pending.Add(-1)
		if f := b.futures[i]; f != nil {
			a.latency.add(time.Since(f.start))
			f.finish(resp, nil)
		}
	}
}

func (a *applier) failQueued() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, b := range a.queue {
		for _, f := range b.futures {
			if f != nil {
				f.finish(nil, ErrShutdown)
			}
		}
	}
	a.queue = nil
}

func (a *applier) close() {
	close(a.stop)
	<-a.done
}
