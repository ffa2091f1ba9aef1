package rpc

import (
	"cmp"
	"context"
	"errors"
	"sync"
	"time"
)

// Follower reads (Raft thesis §6.4, last paragraphs): a ?consistent read
// arriving at a follower need not travel to the leader. The follower asks
// the leader for a read index (the leader's commit index, confirmed by a
// heartbeat round to a majority, step 1-3 of §6.4), waits until its own
// state machine has applied that index (step 4), and reads locally (step
// 5). The answer is as linearizable as one from the leader: every write
// acknowledged before the read began is at or below the read index.
//
// What it saves: before, every ?consistent read on a follower was a full
// forwarded call (request and reply encoded, sent, decoded, dispatched on
// the leader). Now a follower sends one small Status.ReadIndex call for
// all the reads that arrive while the previous one is in flight, and the
// leader's Raft shares one heartbeat round among all followers' calls and
// its own reads. Reads are served where they arrive, so the leader's CPU
// goes to writes.
//
// Batching keeps linearizability: a read joins a round that starts after
// it arrived, never one already in flight (whose read index may predate a
// write acknowledged just before the read).
//
// Only non-blocking reads take this path; a blocking ?consistent read
// (rare) and any read whose follower round fails are forwarded to the
// leader as before, with the forwarder's retries, so an election or a
// partition behaves exactly as it did.

// ReadIndexCluster is implemented by a Cluster that can serve consistent
// reads on followers. Forwarder uses it when the Cluster has it.
type ReadIndexCluster interface {
	// ReadIndex, on the leader, runs a ReadIndex round and returns the
	// confirmed read index once the leader applied it. Elsewhere it fails
	// with ErrNoLeader.
	ReadIndex(ctx context.Context) (uint64, error)
	// WaitApplied returns once this server's state machine has applied
	// index, or fails when ctx ends.
	WaitApplied(ctx context.Context, index uint64) error
}

// ReadIndexRequest asks the leader for a read index (Status.ReadIndex).
type ReadIndexRequest struct {
	// ForwardHops is unused: Status.ReadIndex is never forwarded. It keeps
	// the request a struct gob can send (gob refuses empty structs as
	// top-level values).
	ForwardHops uint8
}

// ReadIndexResponse is the leader's confirmed read index.
type ReadIndexResponse struct {
	Index uint64
}

// ReadIndex answers the leader's confirmed read index (follower reads). A
// non-leader answers ErrNoLeader; the follower then forwards its reads.
func (s *Status) ReadIndex(args *ReadIndexRequest, reply *ReadIndexResponse) error {
	rc, ok := s.cluster.(ReadIndexCluster)
	if !ok || !s.cluster.IsLeader() {
		return ErrNoLeader
	}
	ctx, cancel := context.WithTimeout(s.ctx, followerReadTimeout)
	defer cancel()
	idx, err := rc.ReadIndex(ctx)
	if err != nil {
		return err
	}
	reply.Index = idx
	return nil
}

// followerReadTimeout bounds one follower round (the leader's ReadIndex
// and the local apply). A healthy leader confirms within a heartbeat
// round trip; one that cannot within this bound is likely cut off from
// its majority, or from us, and the reads are forwarded instead (so a
// read on a partitioned follower fails after this plus the hold timeout).
const followerReadTimeout = time.Second

// readRound is one Status.ReadIndex call shared by the reads that joined
// it. index and err are written before done is closed.
type readRound struct {
	done  chan struct{}
	index uint64
	err   error
	// joined counts the reads waiting on the round (guarded by the
	// batcher's mu; tests watch it).
	joined int
}

// readBatcher runs at most one round at a time; reads arriving meanwhile
// wait together for the next one. A round is the leader's read index
// (fetch) and then, if set, the wait until this server applied it
// (applied): every read of a round needs the same index applied, so one
// wait serves them all instead of a wait, a timer and a context each.
type readBatcher struct {
	fetch   func(ctx context.Context) (uint64, error)
	applied func(ctx context.Context, index uint64) error
	// timeout bounds one round; 0 means followerReadTimeout.
	timeout time.Duration

	// mu guards ctx, running and next.
	mu      sync.Mutex
	ctx     context.Context // bounds rounds (the server's life)
	running bool
	next    *readRound
}

// readIndex returns a read index from a round that started after the call.
func (b *readBatcher) readIndex(ctx context.Context) (uint64, error) {
	b.mu.Lock()
	r := b.next
	if r == nil {
		r = &readRound{done: make(chan struct{})}
		b.next = r
	}
	r.joined++
	if !b.running {
		b.running, b.next = true, nil
		go b.run(r, b.ctx)
	}
	b.mu.Unlock()
	select {
	case <-r.done:
		return r.index, r.err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// run completes r, then the round that gathered meanwhile, if any. Each
// iteration is one bounded call, and a round is queued only by a reader
// that arrived while another ran, so run ends once reads stop.
func (b *readBatcher) run(r *readRound, life context.Context) {
	for r != nil {
		ctx, cancel := context.WithTimeout(life, cmp.Or(b.timeout, followerReadTimeout))
		r.index, r.err = b.fetch(ctx)
		if r.err == nil && b.applied != nil {
			r.err = b.applied(ctx, r.index)
		}
		cancel()
		close(r.done)
		b.mu.Lock()
		r, b.next = b.next, nil
		b.running = r != nil
		b.mu.Unlock()
	}
}

// followerReadable lists the reads that only read the replicated catalog,
// so a follower that applied the read index answers them as the leader
// would. The others stay on the leader: Session.Renew re-arms the leader's
// TTL clock, Operator reads the leader's Raft progress, Roster's delta
// log is per server.
var followerReadable = map[string]bool{
	"KVS.Get": true, "KVS.List": true, "KVS.ListKeys": true,
	"Catalog.ListNodes": true, "Catalog.ListServices": true, "Catalog.NodeServices": true, "Catalog.ServiceNodes": true,
	"Health.ChecksInState": true, "Health.NodeChecks": true, "Health.ServiceChecks": true, "Health.ServiceNodes": true,
	"Session.Get": true, "Session.List": true, "Session.NodeSessions": true,
	"Coordinate.ListNodes": true, "Txn.Read": true,
}

// followerRead tries to make a ?consistent read servable here, on a
// follower: true when the local state machine has applied a read index
// obtained after the read arrived. false sends the read to the leader.
func (f *Forwarder) followerRead(ctx context.Context, method string, info Info) bool {
	q, isQuery := info.(interface{ queryOptions() *QueryOptions })
	if !isQuery || f.reads == nil || !followerReadable[method] {
		return false
	}
	opts := q.queryOptions()
	if !opts.RequireConsistent || opts.MinQueryIndex > 0 || opts.AllowStale ||
		(opts.Datacenter != "" && opts.Datacenter != f.cfg.Datacenter) {
		return false
	}
	// The round includes waiting until this server applied the index.
	if _, err := f.reads.readIndex(ctx); err != nil {
		if !errors.Is(err, context.Canceled) {
			f.cfg.Logger.Debug("rpc: follower read failed; forwarding the read to the leader", "error", err.Error())
		}
		return false
	}
	opts.readIndexed = true
	return true
}

// fetchReadIndex asks the known leader for its read index.
func (f *Forwarder) fetchReadIndex(ctx context.Context) (uint64, error) {
	addr := f.cfg.Cluster.LeaderAddr()
	if addr == "" {
		return 0, ErrNoLeader
	}
	var reply ReadIndexResponse
	if err := f.cfg.Caller.Call(ctx, addr, "Status.ReadIndex", &ReadIndexRequest{}, &reply); err != nil {
		return 0, canonical(err)
	}
	return reply.Index, nil
}
