package rpc

import (
	"context"
	"errors"
	"net/rpc"
	"strings"
	"sync"
	"time"
)

// Batched forwarding of KV writes. Under load most writes reach a follower
// (two servers out of three) and travel on to the leader. Sent one by one
// over net/rpc each paid a gob encode and decode of the request, a
// reflective dispatch and a goroutine on the leader, and a gob round of
// the reply: about a tenth of the servers' CPU per write in the cluster
// benchmarks. Here a follower sends the KVS.Apply calls that arrive while
// its earlier ones are in flight as one KVS.ApplyBatch call, in the
// compact encoding of forward_batch_codec.go, and the leader proposes the
// whole batch to Raft before waiting for any of it, so the entries join
// the same group commit.
//
// Latency: a write is sent at once while fewer than WriteBatchesInFlight
// batches are on their way to that server; only beyond that does it wait,
// for the first of them to come back, and then leaves with everything
// that queued meanwhile (up to maxKVSBatch writes, maxKVSBatchBytes).
// One client alone never waits.
//
// Nothing changes for retries and idempotency: every entry keeps the
// RequestID Forward gave it, each entry's outcome (or the batch's
// transport error) goes back through Forwarder.retry exactly as a single
// call's would, and the FSM applies an ID once. A server without
// KVS.ApplyBatch (an older version during an upgrade) answers "can't find
// method"; the follower then sends that server single KVS.Apply calls.

// KVSBatchRequest is KVS.ApplyBatch's argument: KVSRequests in the compact
// encoding (forward_batch_codec.go).
type KVSBatchRequest struct {
	Data []byte
}

// KVSBatchReply is KVS.ApplyBatch's reply: one outcome per request, in order.
type KVSBatchReply struct {
	Data []byte
}

// errBatchUnsupported: the server has no KVS.ApplyBatch.
var errBatchUnsupported = errors.New("rpc: server does not accept batched KV writes")

// kvsBatcher is a Forwarder's batching of KVS.Apply per target server.
type kvsBatcher struct {
	caller      Caller
	maxInFlight int

	// mu guards queues and every queue's fields.
	mu     sync.Mutex
	queues map[string]*kvsQueue
}

// kvsQueue is the state for one target server. A goroutine that holds one
// of the maxInFlight slots sends; the others wait in pending.
type kvsQueue struct {
	inFlight    int
	pending     []*kvsCall
	unsupported bool
}

// kvsCall is one write waiting for its outcome. done receives true once
// ok and err are set, or false when the call is handed a slot: it must
// then send (or release the slot). A call gets at most one slot (hasSlot,
// guarded by the batcher's mu), so done never holds more than a false and
// a true.
type kvsCall struct {
	args *KVSRequest
	// deadline is the caller's (zero: none); size its encoded bytes, about.
	deadline time.Time
	size     int
	ok       bool
	err      error
	hasSlot  bool
	done     chan bool
}

func newKVSBatcher(caller Caller, maxInFlight int) *kvsBatcher {
	return &kvsBatcher{caller: caller, maxInFlight: maxInFlight, queues: make(map[string]*kvsQueue)}
}

// call sends one KVS.Apply to addr, batched with others, and writes reply
// on success; errors are what Caller.Call would return for a single call.
func (b *kvsBatcher) call(ctx context.Context, addr string, args *KVSRequest, reply *bool) error {
	c := &kvsCall{args: args, size: kvsRequestSize(args), done: make(chan bool, 2)}
	c.deadline, _ = ctx.Deadline()
	b.mu.Lock()
	q := b.queues[addr]
	if q == nil {
		q = &kvsQueue{}
		b.queues[addr] = q
	}
	if q.unsupported {
		b.mu.Unlock()
		return b.caller.Call(ctx, addr, "KVS.Apply", args, reply)
	}
	q.pending = append(q.pending, c)
	mine := q.inFlight < b.maxInFlight
	if mine {
		q.inFlight++
		c.hasSlot = true
	}
	b.mu.Unlock()
	// Bounded: each false received means this call is in pending and the
	// next send takes it out of there, after which only true can come.
	// The batch goes out on a goroutine of its own so that this call,
	// like every other in the batch, stops waiting at its own deadline.
	for {
		if mine {
			go b.send(ctx, addr, q)
		}
		select {
		case finished := <-c.done:
			if !finished {
				mine = true
				continue
			}
		case <-ctx.Done():
			if !b.abandon(q, c) {
				return &TransportError{Addr: addr, Method: "KVS.Apply", Err: ctx.Err()}
			}
		}
		if errors.Is(c.err, errBatchUnsupported) {
			return b.caller.Call(ctx, addr, "KVS.Apply", args, reply)
		}
		if c.err == nil {
			*reply = c.ok
		}
		return c.err
	}
}

// send takes what is pending for addr (up to maxKVSBatch entries and
// about maxKVSBatchBytes), sends it as one call, hands out the outcomes
// and gives the slot to the next waiter.
//
// The call runs under a context detached from the slot holder's (ctx
// gives only its values): the holder is the oldest waiter and so has the
// earliest deadline, and under it every later write in the batch failed
// with "deadline exceeded" while it still had seconds left. The batch
// takes the latest deadline among its writes instead; each write still
// stops waiting at its own (abandon).
func (b *kvsBatcher) send(ctx context.Context, addr string, q *kvsQueue) {
	b.mu.Lock()
	n, bytes := 0, 0
	for n < len(q.pending) && n < maxKVSBatch && (n == 0 || bytes+q.pending[n].size <= maxKVSBatchBytes) {
		bytes += q.pending[n].size
		n++
	}
	batch := q.pending[:n:n]
	q.pending = q.pending[n:]
	if len(q.pending) == 0 {
		q.pending = nil
	}
	b.mu.Unlock()
	if n > 0 {
		bctx, cancel := batchContext(ctx, batch)
		b.roundTrip(bctx, addr, batch)
		cancel()
	}
	b.mu.Lock()
	b.releaseLocked(q)
	b.mu.Unlock()
	for _, c := range batch {
		c.done <- true
	}
}

// batchContext is ctx without its cancellation and with the latest of the
// batch's deadlines (none if a write has none; the Caller then applies
// its default).
func batchContext(ctx context.Context, batch []*kvsCall) (context.Context, context.CancelFunc) {
	ctx = context.WithoutCancel(ctx)
	var latest time.Time
	for _, c := range batch {
		if c.deadline.IsZero() {
			return ctx, func() {}
		}
		if c.deadline.After(latest) {
			latest = c.deadline
		}
	}
	return context.WithDeadline(ctx, latest)
}

// releaseLocked returns a slot; if a write without one is waiting, it
// gets the slot at once. Caller holds mu.
func (b *kvsBatcher) releaseLocked(q *kvsQueue) {
	for _, c := range q.pending {
		if !c.hasSlot {
			c.hasSlot = true
			c.done <- false
			return
		}
	}
	q.inFlight--
}

// roundTrip makes the KVS.ApplyBatch call and sets every call's outcome.
func (b *kvsBatcher) roundTrip(ctx context.Context, addr string, batch []*kvsCall) {
	reqs := make([]*KVSRequest, len(batch))
	for i, c := range batch {
		reqs[i] = c.args
	}
	var reply KVSBatchReply
	err := b.caller.Call(ctx, addr, "KVS.ApplyBatch", &KVSBatchRequest{Data: encodeKVSBatch(reqs)}, &reply)
	var res []kvsResult
	if err == nil {
		if res, err = decodeKVSResults(reply.Data); err == nil && len(res) != len(batch) {
			err = errKVSBatchMalformed
		}
		if err != nil {
			err = &TransportError{Addr: addr, Method: "KVS.ApplyBatch", Err: err}
		}
	}
	var se rpc.ServerError
	if errors.As(err, &se) && strings.Contains(string(se), "can't find") {
		err = errBatchUnsupported
		b.mu.Lock()
		b.queues[addr].unsupported = true
		b.mu.Unlock()
	}
	for i, c := range batch {
		switch {
		case err != nil:
			c.err = err
		case res[i].err != "":
			c.err = rpc.ServerError(res[i].err)
		default:
			c.ok = res[i].ok
		}
	}
}

// abandon ends a call whose context ended and reports whether its outcome
// is in after all. Still queued: it leaves the queue. Handed a slot
// meanwhile: it passes the slot on. Already sent: its outcome is dropped
// when it comes.
func (b *kvsBatcher) abandon(q *kvsQueue, c *kvsCall) (finished bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i, p := range q.pending {
		if p == c {
			q.pending = append(q.pending[:i:i], q.pending[i+1:]...)
			break
		}
	}
	for {
		select {
		case f := <-c.done:
			if f {
				return true
			}
			b.releaseLocked(q)
		default:
			return false
		}
	}
}
