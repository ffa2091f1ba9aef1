package raft

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"roster/internal/faults"
)

// MemNetwork is an in-memory network for tests. Every message's fate
// (lost, late, duplicated, overtaken) is decided by a faults.Plan, so a test
// speaks the shared fault vocabulary: Partition, Isolate, Heal, Drop,
// Delay, Duplicate, Reorder, Seed. Node names in the plan are transport
// addresses.
type MemNetwork struct {
	*faults.Plan

	// mu guards nodes.
	mu    sync.Mutex
	nodes map[string]*MemTransport

	// ReorderJitter is the extra latency given to a message the plan
	// marks as overtakable.
	ReorderJitter time.Duration

	delivered, dropped atomic.Uint64
}

// NewMemNetwork returns a healthy network whose random choices follow seed.
func NewMemNetwork(seed uint64) *MemNetwork {
	return &MemNetwork{Plan: faults.New(seed), nodes: map[string]*MemTransport{},
		ReorderJitter: 5 * time.Millisecond}
}

// Transport attaches a new endpoint at addr, replacing (and closing) any
// previous one: that is how a test restarts a crashed server.
func (n *MemNetwork) Transport(addr string) *MemTransport {
	t := &MemTransport{net: n, addr: addr, ch: make(chan RPC, 4096), done: make(chan struct{})}
	n.mu.Lock()
	old := n.nodes[addr]
	n.nodes[addr] = t
	n.mu.Unlock()
	if old != nil {
		old.Close()
	}
	return t
}

// Stats returns how many messages were delivered and dropped so far.
func (n *MemNetwork) Stats() (delivered, dropped uint64) {
	return n.delivered.Load(), n.dropped.Load()
}

// route carries one RPC from -> to under the plan's verdict.
func (n *MemNetwork) route(from, to string, r RPC) {
	fate := n.Decide(from, to)
	if !fate.Deliver {
		n.dropped.Add(1)
		return
	}
	delay := fate.Delay
	if fate.Reorder && n.ReorderJitter > 0 {
		delay += time.Duration(n.Float64() * float64(n.ReorderJitter))
	}
	for range fate.Copies {
		if delay <= 0 {
			n.deliver(to, r)
			continue
		}
		time.AfterFunc(delay, func() { n.deliver(to, r) })
	}
}

func (n *MemNetwork) deliver(to string, r RPC) {
	n.mu.Lock()
	t := n.nodes[to]
	n.mu.Unlock()
	if t == nil {
		n.dropped.Add(1)
		return
	}
	select {
	case <-t.done:
		n.dropped.Add(1)
	case t.ch <- r:
		n.delivered.Add(1)
	default:
		n.dropped.Add(1) // receiver overwhelmed: a lost message, as on a real net
	}
}

// MemTransport is one server's endpoint on a MemNetwork.
type MemTransport struct {
	net  *MemNetwork
	addr string
	ch   chan RPC
	done chan struct{}
	once sync.Once
}

var _ Transport = (*MemTransport)(nil)

func (t *MemTransport) LocalAddr() string    { return t.addr }
func (t *MemTransport) Consumer() <-chan RPC { return t.ch }

// Send routes m to addr. A request's response travels back through the
// network under the plan too, so a lossy link loses answers as well.
func (t *MemTransport) Send(addr string, m Message) {
	select {
	case <-t.done:
		return // a crashed server sends nothing
	default:
	}
	m.Entries = append([]Entry(nil), m.Entries...) // no sharing between servers
	r := RPC{Message: m}
	if m.Type.IsRequest() {
		from := t.addr
		r.respond = func(resp Message) {
			if resp.Type == MsgNone {
				return
			}
			select {
			case <-t.done:
			default:
				t.net.route(addr, from, RPC{Message: resp})
			}
		}
	}
	t.net.route(t.addr, addr, r)
}

// Close disconnects the endpoint (a crash): nothing more is sent or
// delivered through it.
func (t *MemTransport) Close() error {
	t.once.Do(func() { close(t.done) })
	return nil
}

var _ SnapshotTransport = (*MemTransport)(nil)

// CallSnapshot implements SnapshotTransport: the chunk goes through the
// network's fault plan like any request, and so does its answer.
func (t *MemTransport) CallSnapshot(ctx context.Context, addr string, m Message) (Message, error) {
	select {
	case <-t.done:
		return Message{}, ErrShutdown
	default:
	}
	m.Chunk = bytes.Clone(m.Chunk) // no sharing between servers
	ch := make(chan Message, 1)
	from := t.addr
	r := RPC{Message: m, respond: func(resp Message) {
		if resp.Type == MsgNone || !t.net.Decide(addr, from).Deliver {
			return
		}
		select {
		case ch <- resp:
		default:
		}
	}}
	t.net.route(t.addr, addr, r)
	select {
	case resp := <-ch:
		return resp, nil
	case <-ctx.Done():
		return Message{}, fmt.Errorf("raft: snapshot chunk to %s: %w", addr, ctx.Err())
	case <-t.done:
		return Message{}, ErrShutdown
	}
}
