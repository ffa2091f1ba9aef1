package raft

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"roster/internal/fanout"
)

// Apply proposes cmd. The future resolves once the command is committed and
// applied to the FSM on this node, with the FSM's response and the entry's
// index. timeout bounds only the hand-off to the raft loop (0: no bound);
// on a follower the future fails with a *NotLeaderError naming the leader.
// cmd is kept by reference: do not modify it afterwards.
func (n *Node) Apply(cmd []byte, timeout time.Duration) ApplyFuture {
	return n.enqueue(newApplyFuture(EntryCommand, cmd), timeout)
}

// Barrier resolves once every entry committed before it has been applied to
// the FSM on this node (the leader uses it after winning an election,
// before serving reads from its FSM).
func (n *Node) Barrier(timeout time.Duration) Future {
	return n.enqueue(newApplyFuture(EntryBarrier, nil), timeout)
}

func (n *Node) enqueue(f *applyFuture, timeout time.Duration) ApplyFuture {
	if err := n.stopped(); err != nil {
		return errorFuture{err}
	}
	select {
	case n.applyCh <- f: // room in the queue: no timer needed
		return f
	default:
	}
	var timer <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		timer = t.C
	}
	select {
	case n.applyCh <- f:
		return f
	case <-timer:
		return errorFuture{ErrEnqueueTimeout}
	case <-n.doneCh:
		if err := n.stopped(); err != nil {
			return errorFuture{err}
		}
		return errorFuture{ErrShutdown}
	}
}

// stopped returns why the node is not running, or nil.
func (n *Node) stopped() error {
	n.mu.Lock()
	fatal := n.status.fatal
	n.mu.Unlock()
	if fatal != nil {
		return fatal
	}
	select {
	case <-n.doneCh:
		return ErrShutdown
	default:
		return nil
	}
}

// ErrReadTimeout: a ReadIndex was not confirmed (or not applied) within
// its timeout; the node may have lost contact with a majority.
var ErrReadTimeout = errors.New("raft: read index not confirmed in time; the leader may be partitioned from the majority")

// ReadIndex returns a linearizable read point (thesis §6.4): once it
// returns, this node's FSM has applied every write acknowledged before the
// call began, so reading the FSM is as fresh as a write through the log,
// without a log write. Concurrent calls share one heartbeat round. Only a
// leader can answer; followers fail with *NotLeaderError. timeout bounds the
// whole call (0: no bound).
func (n *Node) ReadIndex(timeout time.Duration) (uint64, error) {
	if err := n.stopped(); err != nil {
		return 0, err
	}
	var timer <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		timer = t.C
	}
	r := &readRequest{done: make(chan struct{})}
	select {
	case n.readCh <- r:
	case <-timer:
		return 0, ErrEnqueueTimeout
	case <-n.doneCh:
		return 0, ErrShutdown
	}
	select {
	case <-r.done:
	case <-timer:
		return 0, ErrReadTimeout
	case <-n.doneCh:
		return 0, ErrShutdown
	}
	if r.err != nil {
		return 0, r.err
	}
	select {
	case <-n.applier.waitApplied(r.index):
		return r.index, nil
	case <-timer:
		return 0, ErrReadTimeout
	case <-n.doneCh:
		return 0, ErrShutdown
	}
}

// BootstrapCluster founds a new cluster with servers as its first
// configuration. It succeeds only on a server without any raft state and
// returns ErrCantBootstrap otherwise, so calling it on every start (as
// -bootstrap-expect and -dev do) is safe. A one-voter cluster elects itself
// at once.
func (n *Node) BootstrapCluster(servers []Server) error {
	req := bootstrapRequest{conf: Configuration{Servers: append([]Server(nil), servers...)}, err: make(chan error, 1)}
	select {
	case n.bootstrapCh <- req:
		return <-req.err
	case <-n.doneCh:
		return ErrShutdown
	}
}

// HasExistingState reports whether this server has a term or log entries
// from an earlier run (then it must not bootstrap).
func (n *Node) HasExistingState() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.status.term > 0 || n.status.lastIndex > 0
}

// Leader returns the address and ID of the leader as this node knows it
// ("" if unknown).
func (n *Node) Leader() (addr, id string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.status.leaderAddr, n.status.leaderID
}

// State returns this node's role.
func (n *Node) State() State {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.status.state
}

// Term returns the current term.
func (n *Node) Term() uint64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.status.term
}

// LastContact is when a follower last heard from its leader (zero if never),
// the basis of X-Consul-LastContact. A leader reports time.Now(): Consul
// shows 0 for the leader.
func (n *Node) LastContact() time.Time {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.status.state == Leader {
		return time.Now()
	}
	return n.status.lastContact
}

// AppliedIndex is the index of the last entry applied to the FSM.
func (n *Node) AppliedIndex() uint64 { return n.applier.applied.Load() }

// WaitApplied returns once the FSM has applied index: what a follower
// serving a read at a leader-confirmed read index (§6.4) waits for. It
// is woken by the applier, the same wake-up ReadIndex uses, not by
// polling.
func (n *Node) WaitApplied(ctx context.Context, index uint64) error {
	select {
	case <-n.applier.waitApplied(index):
		return nil
	case <-n.applier.done:
		return ErrShutdown
	case <-ctx.Done():
		return ctx.Err()
	}
}

// CommitIndex is the highest index known committed.
func (n *Node) CommitIndex() uint64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.status.commit
}

// Configuration returns a copy of the configuration in force and the index
// of the entry that carried it.
func (n *Node) Configuration() (Configuration, uint64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.status.conf.Clone(), n.status.confIndex
}

// Stats returns a fresh map with Consul's raft stat keys.
func (n *Node) Stats() map[string]string {
	n.mu.Lock()
	s := n.status
	s.conf = s.conf.Clone()
	n.mu.Unlock()
	lastContact := "never"
	switch {
	case s.state == Leader:
		lastContact = "0"
	case !s.lastContact.IsZero():
		lastContact = time.Since(s.lastContact).String()
	}
	peers := 0
	for _, srv := range s.conf.Servers {
		if srv.ID != n.cfg.ID && srv.Suffrage == Voter {
			peers++
		}
	}
	u := func(v uint64) string { return strconv.FormatUint(v, 10) }
	return map[string]string{
		"state":                      s.state.String(),
		"term":                       u(s.term),
		"last_log_index":             u(s.lastIndex),
		"last_log_term":              u(s.lastTerm),
		"commit_index":               u(s.commit),
		"applied_index":              u(n.applier.applied.Load()),
		"fsm_pending":                strconv.FormatInt(n.applier.pending.Load(), 10),
		"last_snapshot_index":        u(n.snapshotIndex()),
		"last_snapshot_term":         u(n.snapshotTerm()),
		"latest_configuration":       formatServers(s.conf.Servers),
		"latest_configuration_index": u(s.confIndex),
		"num_peers":                  strconv.Itoa(peers),
		"last_contact":               lastContact,
		"protocol_version":           "3",
		"protocol_version_min":       "3",
		"protocol_version_max":       "3",
		"snapshot_version_min":       "1",
		"snapshot_version_max":       "1",
		"dropped_messages":           u(n.droppedMsgs.Load()),
		"dropped_sends":              u(n.droppedSends.Load()),
		// Where a write's time goes (moving averages, µs): making the
		// log durable on this server, and Apply to applied here.
		"disk_write_us":    n.diskWriteMicros.String(),
		"apply_latency_us": n.applier.latency.String(),
	}
}

// Subscribe returns an observer of this node's events (see EventType).
// A slow observer loses events (counted), never slows the node.
func (n *Node) Subscribe(buffer int) *fanout.Observer[Event] { return n.hub.Subscribe(buffer) }

// Shutdown stops the node and its FSM applier; pending futures fail with
// ErrShutdown. It does not close the stores or the transport. Idempotent.
func (n *Node) Shutdown() {
	n.shutOnce.Do(func() {
		close(n.shutdownCh)
		<-n.doneCh
		n.disk.close()
		n.applier.close()
		n.snapShell.close()
		if n.snaps != nil {
			n.snaps.close()
		}
		n.mu.Lock()
		n.status.state = Shutdown
		n.mu.Unlock()
		n.hub.Close()
	})
}

// formatServers renders a configuration the way Consul's raft stats do:
// [{Suffrage:Voter ID:n1 Address:10.0.0.1:8300} ...].
func formatServers(servers []Server) string {
	parts := make([]string, len(servers))
	for i, s := range servers {
		parts[i] = fmt.Sprintf("{Suffrage:%s ID:%s Address:%s}", s.Suffrage, s.ID, s.Address)
	}
	return "[" + strings.Join(parts, " ") + "]"
}
