package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"roster/internal/faults"
)

// NetFaults cuts an agent's network links as a faults.Plan says, so that
// partition tests run the whole server stack on real sockets. Node names
// are the plan's IDs; Names maps a peer address (gossip ip:port or RPC
// ip:port) to its node name, "" for unknown addresses, which stay
// connected. Names is called from many goroutines, and may learn an
// address later (a test harness whose agents bind port 0 learns each
// port as that agent starts).
//
// What it covers: gossip packets (UDP) both ways, and every TCP
// connection this agent dials (Raft, RPC forwarding): a dial across a cut
// fails, and an open connection is closed as soon as its link is cut.
// Inbound gossip streams (push-pull) cannot be told apart by peer on
// loopback, so an agent refuses all of them while any of its links to
// Nodes is cut; gossip over the links still up carries on by UDP.
type NetFaults struct {
	Plan  *faults.Plan
	Names func(addr string) string
	Nodes []string // every node name in the plan
}

// cutOff reports whether any of self's links is cut.
func (f *NetFaults) cutOff(self string) bool {
	for _, n := range f.Nodes {
		if !f.connected(self, n) || !f.connected(n, self) {
			return true
		}
	}
	return false
}

// faultListener refuses inbound streams while its agent is cut off from
// anyone (see NetFaults).
type faultListener struct {
	net.Listener
	self string
	f    *NetFaults
}

func (l *faultListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil || !l.f.cutOff(l.self) {
			return c, err
		}
		c.Close()
	}
}

func (f *NetFaults) connected(from, to string) bool {
	return from == "" || to == "" || f.Plan.Connected(from, to)
}

// faultPacketConn drops datagrams to or from cut-off peers.
type faultPacketConn struct {
	net.PacketConn
	self string
	f    *NetFaults
}

func (c *faultPacketConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	if !c.f.connected(c.self, c.f.Names(addr.String())) {
		return len(b), nil // lost on the wire
	}
	return c.PacketConn.WriteTo(b, addr)
}

func (c *faultPacketConn) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		n, from, err := c.PacketConn.ReadFrom(b)
		if err != nil || c.f.connected(c.f.Names(from.String()), c.self) {
			return n, from, err
		}
	}
}

// errLinkCut is what a dial or a connection across a cut link reports.
var errLinkCut = errors.New("network link cut by the fault plan")

// faultDial wraps dial so that connections respect the plan.
func (f *NetFaults) faultDial(self string, dial func(ctx context.Context, network, addr string) (net.Conn, error)) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		peer := f.Names(addr)
		if !f.connected(self, peer) {
			return nil, fmt.Errorf("dial %s: %w", addr, errLinkCut)
		}
		conn, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		fc := &faultConn{Conn: conn, done: make(chan struct{})}
		go fc.watch(func() bool {
			// Asked again each poll: a book that learns the agents'
			// ports as they start may name the peer only after the dial.
			peer := f.Names(addr)
			return f.connected(self, peer) && f.connected(peer, self)
		})
		return fc, nil
	}
}

// faultConn is closed by its watcher once its link is cut.
type faultConn struct {
	net.Conn
	once sync.Once
	done chan struct{}
}

// faultPoll is how often an open connection re-checks its link.
const faultPoll = 10 * time.Millisecond

func (c *faultConn) watch(linked func() bool) {
	t := time.NewTicker(faultPoll)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-t.C:
			if !linked() {
				c.Close()
				return
			}
		}
	}
}

func (c *faultConn) Close() error {
	c.once.Do(func() { close(c.done) })
	return c.Conn.Close()
}
