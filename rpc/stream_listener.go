package rpc

import (
	"net"
	"sync"
)

// StreamListener turns one protocol of the shared :8300 listener back
// into a net.Listener, so a package that serves connections the usual way
// (Raft's transport: Accept in a loop) can sit behind the protocol byte
// without knowing about it, like Consul's RaftLayer:
//
//	l := rpc.NewStreamListener(srv.Addr())
//	srv.Handle(rpc.ProtoRaft, l.Handoff)
//	transport := raft.NewRPCTransport(l, dial) // dial uses rpc.DialProtocol(..., rpc.ProtoRaft)
//
// Connections are handed over unbuffered: Handoff blocks until Accept
// takes the connection (or the listener closes), then until the consumer
// closes it, because Server closes a connection once its handler returns.
type StreamListener struct {
	addr    net.Addr
	conns   chan net.Conn
	done    chan struct{}
	closeMu sync.Once
}

var _ net.Listener = (*StreamListener)(nil)

// NewStreamListener returns a listener reporting addr as its address.
func NewStreamListener(addr net.Addr) *StreamListener {
	return &StreamListener{addr: addr, conns: make(chan net.Conn), done: make(chan struct{})}
}

// Handoff is the Server.Handle handler: it passes conn to Accept and
// returns once the consumer has closed it or the listener is closed.
func (l *StreamListener) Handoff(conn net.Conn) {
	hc := &handedConn{Conn: conn, closed: make(chan struct{})}
	select {
	case l.conns <- hc:
	case <-l.done:
		return
	}
	select {
	case <-hc.closed:
	case <-l.done:
	}
}

// Accept waits for the next connection of this protocol.
func (l *StreamListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close makes Accept return net.ErrClosed and lets pending Handoffs
// return, so the server closes their connections. Idempotent.
func (l *StreamListener) Close() error {
	l.closeMu.Do(func() { close(l.done) })
	return nil
}

// Addr is the shared listener's address.
func (l *StreamListener) Addr() net.Addr { return l.addr }

// handedConn tells Handoff when the consumer is done with the connection.
type handedConn struct {
	net.Conn
	once   sync.Once
	closed chan struct{}
}

func (c *handedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { close(c.closed) })
	return err
}
