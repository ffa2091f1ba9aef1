package swim

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"roster/internal/faults"
)

// MemNetwork is an in-memory network for shells in tests, steered by the
// shared fault vocabulary. Endpoints are named by their address string
// ("10.0.0.1:8301") in the fault verbs.
type MemNetwork struct {
	plan *faults.Plan
	// mu guards endpoints.
	mu        sync.Mutex
	endpoints map[netip.AddrPort]*MemTransport
}

// NewMemNetwork returns a healthy network whose random fates follow seed.
func NewMemNetwork(seed uint64) *MemNetwork {
	return &MemNetwork{plan: faults.New(seed), endpoints: map[netip.AddrPort]*MemTransport{}}
}

// The fault verbs (see internal/faults), by endpoint address string.
func (n *MemNetwork) Partition(groups ...[]string)           { n.plan.Partition(groups...) }
func (n *MemNetwork) Isolate(id string)                      { n.plan.Isolate(id) }
func (n *MemNetwork) Heal()                                  { n.plan.Heal() }
func (n *MemNetwork) Drop(from, to string, prob float64)     { n.plan.Drop(from, to, prob) }
func (n *MemNetwork) Delay(from, to string, d time.Duration) { n.plan.Delay(from, to, d) }
func (n *MemNetwork) Seed(seed uint64)                       { n.plan.Seed(seed) }

// Transport attaches a new endpoint at addr.
func (n *MemNetwork) Transport(addr netip.AddrPort) (*MemTransport, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, ok := n.endpoints[addr]; ok {
		return nil, fmt.Errorf("swim: memory network address %v already in use", addr)
	}
	t := &MemTransport{
		net:     n,
		addr:    addr,
		packets: make(chan InPacket, inboxPackets),
		streams: make(chan net.Conn, 16),
		done:    make(chan struct{}),
	}
	n.endpoints[addr] = t
	return t, nil
}

func (n *MemNetwork) endpoint(addr netip.AddrPort) *MemTransport {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.endpoints[addr]
}

func (n *MemNetwork) remove(t *MemTransport) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.endpoints[t.addr] == t {
		delete(n.endpoints, t.addr)
	}
}

// MemTransport is one endpoint of a MemNetwork.
type MemTransport struct {
	net  *MemNetwork
	addr netip.AddrPort
	// mu guards closed and the closing of packets/streams against
	// concurrent deliveries.
	mu      sync.Mutex
	closed  bool
	packets chan InPacket
	streams chan net.Conn
	done    chan struct{}
}

func (t *MemTransport) LocalAddr() netip.AddrPort { return t.addr }
func (t *MemTransport) Packets() <-chan InPacket  { return t.packets }
func (t *MemTransport) Streams() <-chan net.Conn  { return t.streams }

// WriteTo delivers a copy of b according to the fault plan: lost, late
// (after the planned delay) or duplicated.
func (t *MemTransport) WriteTo(b []byte, to netip.AddrPort) error {
	dst := t.net.endpoint(to)
	if dst == nil {
		return nil // like UDP to a closed port: silently lost
	}
	fate := t.net.plan.Decide(t.addr.String(), to.String())
	if !fate.Deliver {
		return nil
	}
	p := InPacket{From: t.addr, Data: append([]byte(nil), b...)}
	for range fate.Copies {
		if fate.Delay > 0 {
			time.AfterFunc(fate.Delay, func() { dst.deliver(p) })
		} else {
			dst.deliver(p)
		}
	}
	return nil
}

func (t *MemTransport) deliver(p InPacket) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return
	}
	select {
	case t.packets <- p:
	default: // inbox full: dropped, as by a full socket buffer
	}
}

// DialStream connects to the endpoint at to if the fault plan lets both
// directions through.
func (t *MemTransport) DialStream(to netip.AddrPort, timeout time.Duration) (net.Conn, error) {
	dst := t.net.endpoint(to)
	if dst == nil || !t.net.plan.Connected(t.addr.String(), to.String()) || !t.net.plan.Connected(to.String(), t.addr.String()) {
		return nil, fmt.Errorf("swim: dial %v: connection refused (memory network)", to)
	}
	local, remote := net.Pipe()
	dst.mu.Lock()
	defer dst.mu.Unlock()
	if dst.closed {
		local.Close()
		remote.Close()
		return nil, errors.New("swim: dial: endpoint closed")
	}
	select {
	case dst.streams <- remote:
		return local, nil
	case <-time.After(timeout):
		local.Close()
		remote.Close()
		return nil, fmt.Errorf("swim: dial %v: timed out", to)
	}
}

// Close detaches the endpoint.
func (t *MemTransport) Close() error {
	t.net.remove(t)
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.closed {
		t.closed = true
		close(t.done)
		close(t.packets)
		close(t.streams)
	}
	return nil
}
