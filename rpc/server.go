package rpc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/rpc"
	"sync"
	"sync/atomic"
	"time"

	"roster/internal/fanout"
)

// Config configures a Server. The zero value of every field means its
// documented default.
type Config struct {
	// HandshakeTimeout is how long an accepted connection may take to send
	// its protocol byte before it is closed. Default 5s.
	HandshakeTimeout time.Duration
	// MaxFrameBytes caps one gob message read from a peer. Default
	// DefaultMaxFrameBytes (64 MiB).
	MaxFrameBytes int
	// Logger receives the server's log lines. Default slog.Default().
	Logger *slog.Logger
	// Events, if set, receives an Event for every dropped connection.
	Events *fanout.Hub[Event]
}

// Validate names the first bad field.
func (c Config) Validate() error {
	if c.HandshakeTimeout < 0 {
		return fmt.Errorf("rpc: Config.HandshakeTimeout must be >= 0 (0 = 5s), got %v", c.HandshakeTimeout)
	}
	if c.MaxFrameBytes < 0 {
		return fmt.Errorf("rpc: Config.MaxFrameBytes must be >= 0 (0 = %d), got %d", DefaultMaxFrameBytes, c.MaxFrameBytes)
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.HandshakeTimeout == 0 {
		c.HandshakeTimeout = 5 * time.Second
	}
	if c.MaxFrameBytes == 0 {
		c.MaxFrameBytes = DefaultMaxFrameBytes
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// ServerStats are the server's counters since it started.
type ServerStats struct {
	Accepted          uint64 // connections accepted
	Active            int64  // connections open now
	ByProtocol        map[Protocol]uint64
	UnknownProtocol   uint64 // connections dropped for an unknown first byte
	HandshakeTimeouts uint64 // connections closed before sending a byte
	MalformedFrames   uint64 // undecodable or oversized gob messages
	InProcCalls       uint64 // calls made through Server.Call
}

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = errors.New("rpc: server closed")

// Server owns the :8300 listener. It reads each connection's first byte
// and hands the connection to the handler registered for that protocol;
// ProtoRPC connections it serves itself with net/rpc.
type Server struct {
	cfg    Config
	log    *slog.Logger
	rpcSrv *rpc.Server
	wg     sync.WaitGroup
	ready  chan struct{}
	// readyOnce closes ready from Serve, or from Shutdown if Serve never
	// ran, so nobody waits on Ready forever.
	readyOnce sync.Once
	// ctx is cancelled first thing in Shutdown; see Context.
	ctx    context.Context
	cancel context.CancelFunc

	// mu guards handlers, direct, conns, ln and closed.
	mu       sync.Mutex
	handlers map[Protocol]func(net.Conn)
	direct   map[string]directMethod // inproc_direct.go
	conns    map[net.Conn]struct{}
	ln       net.Listener
	closed   bool

	accepted, unknownProto, handshakeTimeouts, malformed atomic.Uint64
	inProcCalls                                          atomic.Uint64
	active                                               atomic.Int64
	byProto                                              [256]atomic.Uint64
}

// NewServer returns a server ready for Register, Handle and Serve.
func NewServer(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	return &Server{
		ctx:      ctx,
		cancel:   cancel,
		cfg:      cfg,
		log:      cfg.Logger,
		rpcSrv:   rpc.NewServer(),
		ready:    make(chan struct{}),
		handlers: make(map[Protocol]func(net.Conn)),
		conns:    make(map[net.Conn]struct{}),
	}, nil
}

// Register publishes rcvr's exported methods as net/rpc endpoints under
// name ("Status", "Catalog", ...).
func (s *Server) Register(name string, rcvr any) error {
	if err := s.rpcSrv.RegisterName(name, rcvr); err != nil {
		return fmt.Errorf("rpc: registering endpoint %q: %w", name, err)
	}
	return nil
}

// Handle routes connections that start with byte p to h. h runs on the
// connection's own goroutine and owns the connection until it returns;
// the server closes it then, and on Shutdown. ProtoRPC is the server's own.
func (s *Server) Handle(p Protocol, h func(net.Conn)) error {
	if p == ProtoRPC {
		return errors.New("rpc: protocol byte 0x01 is served by Server itself; register endpoints with Register")
	}
	if h == nil {
		return fmt.Errorf("rpc: nil handler for protocol %s", p)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.handlers[p]; dup {
		return fmt.Errorf("rpc: protocol %s already has a handler", p)
	}
	s.handlers[p] = h
	return nil
}

// Ready is closed once Serve has taken its listener, or by Shutdown if
// Serve never did (Addr is then nil).
func (s *Server) Ready() <-chan struct{} { return s.ready }

// Context is cancelled when Shutdown begins. Endpoints must use it (or a
// context derived from it) for blocking queries, forwarding and anything
// else that waits: net/rpc's ServeCodec waits for every running handler
// before it returns, so a handler parked on a longer-lived context would
// hold Shutdown for up to a blocking query's ten minutes.
func (s *Server) Context() context.Context { return s.ctx }

// Addr is the listener's address, or nil before Serve.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// Serve accepts connections on l until Shutdown (then it returns
// ErrServerClosed) or a permanent accept error. l is closed on return.
func (s *Server) Serve(l net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		l.Close()
		return ErrServerClosed
	}
	if s.ln != nil {
		s.mu.Unlock()
		l.Close()
		return fmt.Errorf("rpc: Serve called twice; the server is already serving on %s", s.ln.Addr())
	}
	s.ln = l
	s.mu.Unlock()
	s.readyOnce.Do(func() { close(s.ready) })
	defer l.Close()

	var backoff time.Duration
	for {
		conn, err := l.Accept()
		if err != nil {
			if s.isClosed() {
				return ErrServerClosed
			}
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("rpc: listener closed under the server: %w", err)
			}
			// Anything else (EMFILE, ECONNABORTED, ...) is transient: back
			// off, as net/http does, instead of spinning or giving up.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.log.Warn("rpc: accept failed, retrying", slog.String("error", err.Error()), slog.Duration("backoff", backoff))
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		if !s.track(conn) {
			conn.Close()
			return ErrServerClosed
		}
		s.accepted.Add(1)
		go s.serveConn(conn)
	}
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// track records conn so Shutdown can close it; false once closed.
func (s *Server) track(conn net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[conn] = struct{}{}
	s.wg.Add(1)
	s.active.Add(1)
	return true
}

func (s *Server) untrack(conn net.Conn) {
	s.mu.Lock()
	delete(s.conns, conn)
	s.mu.Unlock()
	s.active.Add(-1)
	s.wg.Done()
}

// serveConn reads the protocol byte under the handshake deadline and
// dispatches. Every path closes conn.
func (s *Server) serveConn(conn net.Conn) {
	defer s.untrack(conn)
	defer conn.Close()
	p, err := s.readProtocol(conn)
	if err != nil {
		return
	}
	s.byProto[p].Add(1)
	if p == ProtoRPC {
		s.rpcSrv.ServeCodec(newServerCodec(conn, s.cfg.MaxFrameBytes, s.noteMalformed(conn)))
		return
	}
	s.mu.Lock()
	h := s.handlers[p]
	s.mu.Unlock()
	if h == nil {
		s.unknownProto.Add(1)
		s.log.Warn("rpc: dropping connection with unknown protocol byte",
			slog.String("peer", conn.RemoteAddr().String()), slog.String("protocol", p.String()))
		publish(s.cfg.Events, Event{Kind: EventUnknownProtocol, Peer: conn.RemoteAddr().String(), Protocol: p})
		return
	}
	h(conn)
}

func (s *Server) readProtocol(conn net.Conn) (Protocol, error) {
	conn.SetReadDeadline(time.Now().Add(s.cfg.HandshakeTimeout))
	var b [1]byte
	if _, err := io.ReadFull(conn, b[:]); err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			s.handshakeTimeouts.Add(1)
			publish(s.cfg.Events, Event{Kind: EventHandshakeTimeout, Peer: conn.RemoteAddr().String()})
			s.log.Debug("rpc: closing connection that sent no protocol byte",
				slog.String("peer", conn.RemoteAddr().String()), slog.Duration("timeout", s.cfg.HandshakeTimeout))
		}
		return 0, err
	}
	conn.SetReadDeadline(time.Time{})
	return Protocol(b[0]), nil
}

func (s *Server) noteMalformed(conn net.Conn) func(error) {
	return func(err error) {
		s.malformed.Add(1)
		publish(s.cfg.Events, Event{Kind: EventMalformedFrame, Peer: conn.RemoteAddr().String(), Err: err.Error()})
		s.log.Warn("rpc: malformed request, closing connection",
			slog.String("peer", conn.RemoteAddr().String()), slog.String("error", err.Error()))
	}
}

// Stats returns a copy of the counters.
func (s *Server) Stats() ServerStats {
	st := ServerStats{
		Accepted:          s.accepted.Load(),
		Active:            s.active.Load(),
		ByProtocol:        make(map[Protocol]uint64),
		UnknownProtocol:   s.unknownProto.Load(),
		HandshakeTimeouts: s.handshakeTimeouts.Load(),
		MalformedFrames:   s.malformed.Load(),
		InProcCalls:       s.inProcCalls.Load(),
	}
	for i := range s.byProto {
		if n := s.byProto[i].Load(); n > 0 {
			st.ByProtocol[Protocol(i)] = n
		}
	}
	return st
}

// Shutdown cancels Context (so handlers that honour it return), stops
// accepting, closes every open connection (in-flight calls fail on the
// client side, which retries elsewhere) and waits for the connection
// goroutines, handlers included, until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	s.cancel()
	s.readyOnce.Do(func() { close(s.ready) })
	s.mu.Lock()
	s.closed = true
	if s.ln != nil {
		s.ln.Close()
	}
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("rpc: shutdown: connection handlers still running: %w", ctx.Err())
	}
}

// isNetworkError reports errors from the connection itself (closed,
// reset, timed out) rather than from the bytes received on it.
func isNetworkError(err error) bool {
	var ne net.Error
	return errors.Is(err, net.ErrClosed) || errors.Is(err, io.ErrClosedPipe) || errors.As(err, &ne)
}
