package rpc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/rpc"
	"sync"
	"sync/atomic"
	"time"

	"roster/internal/fanout"
)

// PoolConfig configures a Pool. Zero fields take their documented default.
type PoolConfig struct {
	// MaxInFlightPerServer bounds concurrent calls to one server; further
	// callers wait for a slot, no longer than their own deadline. Default 128.
	// Blocking queries do not count here (see MaxBlockingPerServer).
	MaxInFlightPerServer int
	// MaxBlockingPerServer bounds concurrent blocking queries (reads with
	// MinQueryIndex > 0, passed as a pointer) to one server. They are kept
	// apart from MaxInFlightPerServer because each may legitimately take
	// minutes: an agent with more watches than in-flight slots would
	// otherwise starve every write and ordinary read. Default 4096.
	MaxBlockingPerServer int
	// ProbeTimeout bounds the liveness probe sent on a connection after a
	// call on it timed out; an unanswered probe evicts the connection.
	// Default 5s.
	ProbeTimeout time.Duration
	// IdleTimeout closes a connection unused for this long. Default 2m
	// (Consul's pool keeps connections for the same time).
	IdleTimeout time.Duration
	// DialTimeout bounds connecting to a server. Default 10s.
	DialTimeout time.Duration
	// DefaultCallTimeout is the deadline of a call whose context has none.
	// Default 60s.
	DefaultCallTimeout time.Duration
	// MaxFrameBytes caps one response message. Default DefaultMaxFrameBytes.
	MaxFrameBytes int
	// Dial opens connections; default a net.Dialer. Tests inject failures.
	Dial DialFunc
	// Logger receives eviction lines. Default slog.Default().
	Logger *slog.Logger
	// Events, if set, receives an Event for every eviction.
	Events *fanout.Hub[Event]
}

// Validate names the first bad field.
func (c PoolConfig) Validate() error {
	switch {
	case c.MaxInFlightPerServer < 0:
		return fmt.Errorf("rpc: PoolConfig.MaxInFlightPerServer must be >= 0 (0 = 128), got %d", c.MaxInFlightPerServer)
	case c.MaxBlockingPerServer < 0:
		return fmt.Errorf("rpc: PoolConfig.MaxBlockingPerServer must be >= 0 (0 = 4096), got %d", c.MaxBlockingPerServer)
	case c.ProbeTimeout < 0:
		return fmt.Errorf("rpc: PoolConfig.ProbeTimeout must be >= 0 (0 = 5s), got %v", c.ProbeTimeout)
	case c.IdleTimeout < 0:
		return fmt.Errorf("rpc: PoolConfig.IdleTimeout must be >= 0 (0 = 2m), got %v", c.IdleTimeout)
	case c.DialTimeout < 0:
		return fmt.Errorf("rpc: PoolConfig.DialTimeout must be >= 0 (0 = 10s), got %v", c.DialTimeout)
	case c.DefaultCallTimeout < 0:
		return fmt.Errorf("rpc: PoolConfig.DefaultCallTimeout must be >= 0 (0 = 60s), got %v", c.DefaultCallTimeout)
	case c.MaxFrameBytes < 0:
		return fmt.Errorf("rpc: PoolConfig.MaxFrameBytes must be >= 0 (0 = %d), got %d", DefaultMaxFrameBytes, c.MaxFrameBytes)
	}
	return nil
}

func (c PoolConfig) withDefaults() PoolConfig {
	if c.MaxInFlightPerServer == 0 {
		c.MaxInFlightPerServer = 128
	}
	if c.MaxBlockingPerServer == 0 {
		c.MaxBlockingPerServer = 4096
	}
	if c.ProbeTimeout == 0 {
		c.ProbeTimeout = 5 * time.Second
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = 2 * time.Minute
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = 10 * time.Second
	}
	if c.DefaultCallTimeout == 0 {
		c.DefaultCallTimeout = 60 * time.Second
	}
	if c.MaxFrameBytes == 0 {
		c.MaxFrameBytes = DefaultMaxFrameBytes
	}
	if c.Dial == nil {
		var d net.Dialer
		c.Dial = d.DialContext
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// ErrPoolShutdown is returned by calls on a pool after Shutdown.
var ErrPoolShutdown = errors.New("rpc: connection pool is shut down")

// TransportError is a call that failed below the endpoint: dial, write,
// read, deadline, or a connection closed under it. The request may or may
// not have reached the server; retrying is safe for reads, and for writes
// because of request IDs (see Dedup). Endpoint errors (rpc.ServerError)
// are returned unwrapped.
type TransportError struct {
	Addr   string
	Method string
	Err    error
}

func (e *TransportError) Error() string {
	return fmt.Sprintf("rpc: %s to %s: %v", e.Method, e.Addr, e.Err)
}

func (e *TransportError) Unwrap() error { return e.Err }

// PoolStats are the pool's counters since it was created.
type PoolStats struct {
	Calls            uint64 // calls started
	EndpointErrors   uint64 // calls answered with an endpoint error
	TransportErrs    uint64 // calls failed in transport (includes timeouts)
	Timeouts         uint64 // calls that hit their deadline, waiting or in flight
	Dials            uint64 // connections opened
	DialErrors       uint64
	Evictions        uint64 // connections closed because of an error or timeout
	Abandoned        uint64 // timed-out calls left to finish on a live connection
	MalformedReplies uint64 // undecodable or oversized replies (connection evicted)
	IdleReaped       uint64 // connections closed for idleness
	Conns            int    // open connections now
}

// Pool is the client side of roster's RPC: one multiplexed net/rpc
// connection per server, reused by all callers, with per-server limits
// on in-flight calls, deadlines enforced here (net/rpc has no context),
// eviction of any connection that errs or stops answering, and idle
// reaping. A call that times out is abandoned, not its connection: see
// pool_abandon.go.
type Pool struct {
	cfg  PoolConfig
	log  *slog.Logger
	stop chan struct{}
	wg   sync.WaitGroup

	// mu guards slots and closed (and orders wg.Add for probes before
	// Shutdown's wg.Wait). A slot, once created, lives until Shutdown so
	// its semaphores keep bounding that server.
	mu     sync.Mutex
	slots  map[string]*slot
	closed bool

	calls, endpointErrs, transportErrs, timeouts atomic.Uint64
	dials, dialErrs, evictions, idleReaped       atomic.Uint64
	abandoned, malformed                         atomic.Uint64
}

// slot is the pool's state for one server address.
type slot struct {
	sem         chan struct{} // one token per in-flight ordinary call
	blockingSem chan struct{} // one token per in-flight blocking query

	// mu guards conn, dialing and closed, and conn's inFlight, lastUsed,
	// abandoned and probing.
	mu      sync.Mutex
	conn    *poolConn
	dialing *dialAttempt // the dial in progress, if any
	closed  bool
}

// dialAttempt lets callers wait for another caller's dial. err is written
// before done is closed and read only after.
type dialAttempt struct {
	done chan struct{}
	err  error
}

type poolConn struct {
	client   *rpc.Client
	inFlight int
	lastUsed time.Time
	// abandoned are timed-out calls whose reply has not come yet; probing
	// is true while a liveness probe runs (see pool_abandon.go).
	abandoned []*rpc.Call
	probing   bool
}

// NewPool validates cfg and starts the idle reaper.
func NewPool(cfg PoolConfig) (*Pool, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	p := &Pool{cfg: cfg, log: cfg.Logger, stop: make(chan struct{}), slots: make(map[string]*slot)}
	p.wg.Add(1)
	go p.reapLoop()
	return p, nil
}

// Call invokes method on the server at addr. It returns when the reply
// arrives or ctx's deadline (DefaultCallTimeout if none) passes, whichever
// is first. reply is written only when Call returns nil. A blocking
// query's ctx must allow its wait plus jitter (see BlockingCallTimeout),
// or DefaultCallTimeout cuts it short.
//
// A write (args embedding WriteRequest, passed as a pointer) without a
// RequestID gets one here, in the caller's args, before the first attempt:
// a caller that retries with the same args after a TransportError then
// carries the same ID, and the server's DedupFSM applies the write once.
// Stamped only on the server (by Forward), each client-side retry arrived
// with an empty ID and was given a fresh one, so a write whose reply was
// lost was applied twice.
func (p *Pool) Call(ctx context.Context, addr, method string, args, reply any) error {
	p.calls.Add(1)
	stampRequestID(args)
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, p.cfg.DefaultCallTimeout)
		defer cancel()
	}
	s, err := p.slot(addr)
	if err != nil {
		return err
	}
	sem := s.sem
	if IsBlockingQuery(args) {
		sem = s.blockingSem
	}
	select {
	case sem <- struct{}{}:
	case <-ctx.Done():
		return p.timedOut(addr, method, fmt.Errorf("waiting for one of %d call slots: %w", cap(sem), ctx.Err()))
	}
	defer func() { <-sem }()

	pc, err := p.conn(ctx, addr, s)
	if err != nil {
		if ctx.Err() != nil {
			return p.timedOut(addr, method, fmt.Errorf("connecting: %w", ctx.Err()))
		}
		p.transportErrs.Add(1)
		return &TransportError{Addr: addr, Method: method, Err: err}
	}
	defer p.release(s, pc)
	return p.roundTrip(ctx, addr, method, args, reply, s, pc)
}

// roundTrip sends the call and waits for it or the deadline. The reply
// is decoded into a private value and copied to reply only on success, so
// a late reply to an abandoned call cannot write into memory the caller
// has taken back. The AfterFunc evicts the connection if the deadline
// passes while Go itself is still blocked writing to a server that stopped
// reading: that stream is stuck for every caller anyway.
func (p *Pool) roundTrip(ctx context.Context, addr, method string, args, reply any, s *slot, pc *poolConn) error {
	target := privateReply(reply)
	var sent atomic.Bool
	stop := context.AfterFunc(ctx, func() {
		if !sent.Load() {
			p.evict(s, pc, addr, "call deadline passed while sending")
		}
	})
	defer stop()
	call := pc.client.Go(method, args, target, make(chan *rpc.Call, 1))
	sent.Store(true)
	select {
	case <-call.Done:
	case <-ctx.Done():
		p.abandon(s, pc, addr, call)
		return p.timedOut(addr, method, ctx.Err())
	}
	var se rpc.ServerError
	switch {
	case call.Error == nil:
		adoptReply(reply, target)
		return nil
	case errors.As(call.Error, &se):
		p.endpointErrs.Add(1)
		return se
	case ctx.Err() != nil:
		return p.timedOut(addr, method, ctx.Err())
	}
	p.evict(s, pc, addr, call.Error.Error())
	p.transportErrs.Add(1)
	return &TransportError{Addr: addr, Method: method, Err: call.Error}
}

func (p *Pool) timedOut(addr, method string, err error) error {
	p.timeouts.Add(1)
	p.transportErrs.Add(1)
	return &TransportError{Addr: addr, Method: method, Err: err}
}

func (p *Pool) slot(addr string) (*slot, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, ErrPoolShutdown
	}
	s := p.slots[addr]
	if s == nil {
		s = &slot{sem: make(chan struct{}, p.cfg.MaxInFlightPerServer),
			blockingSem: make(chan struct{}, p.cfg.MaxBlockingPerServer)}
		p.slots[addr] = s
	}
	return s, nil
}

// conn returns the slot's connection, dialing it if needed. Only one
// caller dials at a time; the others wait for that dial or their own
// deadline. A waiter shares the dialer's error unless the dial merely ran
// out of the dialer's (shorter) deadline; then it tries itself. Each round
// blocks until a dial ends, so ctx bounds the loop; maxDialRounds is a
// backstop.
func (p *Pool) conn(ctx context.Context, addr string, s *slot) (*poolConn, error) {
	const maxDialRounds = 64
	for range maxDialRounds {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return nil, ErrPoolShutdown
		}
		if pc := s.conn; pc != nil {
			pc.inFlight++
			s.mu.Unlock()
			return pc, nil
		}
		if d := s.dialing; d != nil {
			s.mu.Unlock()
			select {
			case <-d.done:
				if d.err != nil && !errors.Is(d.err, context.DeadlineExceeded) && !errors.Is(d.err, context.Canceled) {
					return nil, d.err
				}
				continue
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		d := &dialAttempt{done: make(chan struct{})}
		s.dialing = d
		s.mu.Unlock()
		pc, err := p.dial(ctx, addr)
		s.mu.Lock()
		s.dialing = nil
		if err == nil && s.closed {
			pc.client.Close()
			err = ErrPoolShutdown
		}
		d.err = err
		close(d.done)
		if err != nil {
			s.mu.Unlock()
			return nil, err
		}
		s.conn = pc
		pc.inFlight++
		s.mu.Unlock()
		return pc, nil
	}
	return nil, fmt.Errorf("rpc: no connection to %s after %d dial rounds", addr, maxDialRounds)
}

func (p *Pool) dial(ctx context.Context, addr string) (*poolConn, error) {
	dctx, cancel := context.WithTimeout(ctx, p.cfg.DialTimeout)
	defer cancel()
	conn, err := DialProtocol(dctx, p.cfg.Dial, addr, ProtoRPC)
	if err != nil {
		p.dialErrs.Add(1)
		return nil, err
	}
	p.dials.Add(1)
	client := rpc.NewClientWithCodec(newClientCodec(conn, p.cfg.MaxFrameBytes, func(err error) {
		p.malformed.Add(1)
		p.log.Warn("rpc: malformed reply, closing connection", slog.String("peer", addr), slog.String("error", err.Error()))
		publish(p.cfg.Events, Event{Kind: EventMalformedFrame, Peer: addr, Err: err.Error()})
	}))
	return &poolConn{client: client, lastUsed: time.Now()}, nil
}

func (p *Pool) release(s *slot, pc *poolConn) {
	now := time.Now()
	s.mu.Lock()
	pc.inFlight--
	pc.lastUsed = now
	s.mu.Unlock()
}

// evict closes pc and forgets it if it is still the slot's connection.
// Idempotent: concurrent failures on one connection evict it once. Other
// calls in flight on it fail with a TransportError and may retry.
func (p *Pool) evict(s *slot, pc *poolConn, addr, reason string) {
	s.mu.Lock()
	current := s.conn == pc
	if current {
		s.conn = nil
	}
	s.mu.Unlock()
	if !current {
		return
	}
	p.evictions.Add(1)
	p.log.Debug("rpc: evicting connection", slog.String("peer", addr), slog.String("reason", reason))
	publish(p.cfg.Events, Event{Kind: EventConnEvicted, Peer: addr, Err: reason})
	pc.client.Close()
}

func (p *Pool) reapLoop() {
	defer p.wg.Done()
	ticker := time.NewTicker(max(p.cfg.IdleTimeout/2, 10*time.Millisecond))
	defer ticker.Stop()
	for {
		select {
		case <-p.stop:
			return
		case now := <-ticker.C:
			p.reapIdle(now)
		}
	}
}

// reapIdle closes connections with no call in flight that were last used
// more than IdleTimeout before now, and reports how many it closed.
func (p *Pool) reapIdle(now time.Time) int {
	p.mu.Lock()
	slots := make([]*slot, 0, len(p.slots))
	for _, s := range p.slots {
		slots = append(slots, s)
	}
	p.mu.Unlock()
	reaped := 0
	for _, s := range slots {
		s.mu.Lock()
		pc := s.conn
		if pc != nil && pc.inFlight == 0 && now.Sub(pc.lastUsed) > p.cfg.IdleTimeout {
			s.conn = nil
		} else {
			pc = nil
		}
		s.mu.Unlock()
		if pc != nil {
			pc.client.Close()
			reaped++
		}
	}
	p.idleReaped.Add(uint64(reaped))
	return reaped
}

// Stats returns a copy of the counters.
func (p *Pool) Stats() PoolStats {
	st := PoolStats{
		Calls: p.calls.Load(), EndpointErrors: p.endpointErrs.Load(), TransportErrs: p.transportErrs.Load(),
		Timeouts: p.timeouts.Load(), Dials: p.dials.Load(), DialErrors: p.dialErrs.Load(),
		Evictions: p.evictions.Load(), IdleReaped: p.idleReaped.Load(), Abandoned: p.abandoned.Load(),
		MalformedReplies: p.malformed.Load(),
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, s := range p.slots {
		s.mu.Lock()
		if s.conn != nil {
			st.Conns++
		}
		s.mu.Unlock()
	}
	return st
}

// Shutdown closes every connection (in-flight calls fail with a
// TransportError), then waits for the reaper and any liveness probe,
// which end once their connection is closed. Later calls get
// ErrPoolShutdown.
func (p *Pool) Shutdown() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	slots := p.slots
	p.mu.Unlock()
	close(p.stop)
	for _, s := range slots {
		s.mu.Lock()
		pc := s.conn
		s.conn, s.closed = nil, true
		s.mu.Unlock()
		if pc != nil {
			pc.client.Close()
		}
	}
	p.wg.Wait()
}
