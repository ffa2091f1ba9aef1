package raft

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
)

// NetTransportConfig configures a NetTransport.
type NetTransportConfig struct {
	// LocalAddr is the address peers dial to reach this server (required
	// unless the transport is built by ListenNetTransport).
	LocalAddr string
	// Dial opens a connection to a peer. The rpc package injects one that
	// writes its protocol byte first, so raft shares Consul's :8300
	// listener. Default: a TCP dial.
	Dial func(ctx context.Context, addr string) (net.Conn, error)
	// Timeout bounds every call end to end (net/rpc has no deadline of its
	// own: a call that misses it closes the connection, failing the calls
	// on it, and the next send redials). Default 1s.
	Timeout time.Duration
	// DialTimeout bounds connection setup. Default 500ms.
	DialTimeout time.Duration
	// QueueLen is the per-peer send queue; when full, messages are dropped
	// (Raft retries). Default 1024.
	QueueLen int
	// Logger for connection trouble. Default slog.Default().
	Logger *slog.Logger
}

func (c *NetTransportConfig) setDefaults() {
	if c.Dial == nil {
		d := &net.Dialer{}
		c.Dial = func(ctx context.Context, addr string) (net.Conn, error) { return d.DialContext(ctx, "tcp", addr) }
	}
	if c.Timeout == 0 {
		c.Timeout = time.Second
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = 500 * time.Millisecond
	}
	if c.QueueLen == 0 {
		c.QueueLen = 1024
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Validate names the first bad field.
func (c NetTransportConfig) Validate() error {
	switch {
	case c.LocalAddr == "":
		return errors.New("raft: NetTransportConfig.LocalAddr is empty; set the address peers dial")
	case c.Timeout < 0 || c.DialTimeout < 0 || c.QueueLen < 0:
		return errors.New("raft: NetTransportConfig.Timeout, DialTimeout and QueueLen must not be negative")
	}
	return nil
}

// rpcServiceName is the net/rpc service raft registers: Raft.AppendEntries,
// Raft.RequestVote, Raft.TimeoutNow, Raft.InstallSnapshot (chunked, Raft §7).
const rpcServiceName = "Raft"

// NetTransport is the production Transport: net/rpc over TCP with a
// compact binary codec for Raft's messages (wire.go, rpc_codec.go), one
// reused connection per peer (net/rpc multiplexes concurrent calls on it),
// a bounded send queue per peer whose bursts go out in one write, and
// per-call deadlines. Requests reach the node in the order the peer sent
// them, and answers leave as soon as the node gives them.
//
// Register puts the same service on a caller's rpc.Server with that
// server's codec (gob); requests arriving that way are served unordered,
// one goroutine each waiting for the node's answer.
type NetTransport struct {
	cfg      NetTransportConfig
	consumer chan RPC
	server   *rpc.Server
	closed   chan struct{}

	// mu guards peers, conns and listeners.
	mu        sync.Mutex
	peers     map[string]*netPeer
	conns     map[net.Conn]struct{}
	listeners []net.Listener

	dropped   atomic.Uint64 // sends lost to a full queue, a failed dial or a timeout
	malformed atomic.Uint64 // frames or messages off the wire that did not decode
}

var _ Transport = (*NetTransport)(nil)

// NewNetTransport builds a transport that serves connections handed to it
// (ServeConn) or through a shared *rpc.Server (Register).
func NewNetTransport(cfg NetTransportConfig) (*NetTransport, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	t := &NetTransport{cfg: cfg, consumer: make(chan RPC, 1024), server: rpc.NewServer(),
		closed: make(chan struct{}), peers: map[string]*netPeer{}, conns: map[net.Conn]struct{}{}}
	if err := t.Register(t.server); err != nil {
		return nil, err
	}
	return t, nil
}

// ListenNetTransport is the standalone form: it serves every connection
// accepted on l. cfg.LocalAddr defaults to l's address.
func ListenNetTransport(l net.Listener, cfg NetTransportConfig) (*NetTransport, error) {
	if cfg.LocalAddr == "" {
		cfg.LocalAddr = l.Addr().String()
	}
	t, err := NewNetTransport(cfg)
	if err != nil {
		return nil, err
	}
	t.mu.Lock()
	t.listeners = append(t.listeners, l)
	t.mu.Unlock()
	go t.acceptLoop(l)
	return t, nil
}

func (t *NetTransport) acceptLoop(l net.Listener) {
	for {
		conn, err := l.Accept()
		if err != nil {
			select {
			case <-t.closed:
			default:
				t.cfg.Logger.Warn("raft transport stopped accepting", "err", err)
			}
			return
		}
		go t.ServeConn(conn)
	}
}

// Register adds the Raft service to s (for a server shared with other
// services). Register it on at most one server per transport.
func (t *NetTransport) Register(s *rpc.Server) error {
	return s.RegisterName(rpcServiceName, &rpcService{t: t})
}

// ServeConn serves raft calls on conn until it closes (blocking, like
// rpc.Server.ServeConn). The caller has already consumed any protocol byte.
func (t *NetTransport) ServeConn(conn net.Conn) {
	t.mu.Lock()
	select {
	case <-t.closed:
		t.mu.Unlock()
		conn.Close()
		return
	default:
	}
	t.conns[conn] = struct{}{}
	t.mu.Unlock()
	t.server.ServeCodec(newWireServerCodec(t, conn))
	t.mu.Lock()
	delete(t.conns, conn)
	t.mu.Unlock()
}

func (t *NetTransport) LocalAddr() string    { return t.cfg.LocalAddr }
func (t *NetTransport) Consumer() <-chan RPC { return t.consumer }

// Dropped is how many outbound messages were lost.
func (t *NetTransport) Dropped() uint64 { return t.dropped.Load() }

// Malformed is how many inbound frames or messages were dropped because
// they did not decode (corrupt, or from a peer on another wire version).
func (t *NetTransport) Malformed() uint64 { return t.malformed.Load() }

// Send queues m for addr; a full queue drops it.
func (t *NetTransport) Send(addr string, m Message) {
	if methodFor(m.Type) == "" {
		t.dropped.Add(1) // responses travel as replies, never as calls
		return
	}
	p := t.peer(addr)
	if p == nil {
		return
	}
	select {
	case p.queue <- m:
	default:
		t.dropped.Add(1)
	}
}

func (t *NetTransport) peer(addr string) *netPeer {
	t.mu.Lock()
	defer t.mu.Unlock()
	select {
	case <-t.closed:
		return nil
	default:
	}
	p := t.peers[addr]
	if p == nil {
		p = &netPeer{t: t, addr: addr, queue: make(chan Message, t.cfg.QueueLen)}
		t.peers[addr] = p
		go p.run()
	}
	return p
}

// Close stops serving and sending. Idempotent.
func (t *NetTransport) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	select {
	case <-t.closed:
		return nil
	default:
	}
	close(t.closed)
	for _, l := range t.listeners {
		l.Close()
	}
	for c := range t.conns {
		c.Close()
	}
	for _, p := range t.peers {
		p.closeClient(nil)
	}
	return nil
}

// methodFor is the net/rpc service method that carries a message of type
// typ ("" if none does).
func methodFor(typ MessageType) string { return wireMethodNames[wireMethodOf(typ)] }

// netPeer owns the connection to one peer; its goroutine drains the queue
// and watches deadlines. Replies reach the node straight from the
// connection's reading goroutine (wireClientCodec), in order, with no
// goroutine or timer per call.
type netPeer struct {
	t     *NetTransport
	addr  string
	queue chan Message
	// arg is the argument of the call being sent; only run uses it (net/rpc
	// is done with a call's argument once WriteRequest has encoded it).
	arg Message
	// mu guards client and codec: the watchdog may close them.
	mu     sync.Mutex
	client *rpc.Client
	codec  *wireClientCodec
	// Watchdog state, owned by run: the codec last checked, how many
	// answers it had then, and since when it has had calls in flight
	// without answering any.
	watched    *wireClientCodec
	answered   uint64
	quietSince time.Time
}

// discardDone receives net/rpc's per-call completions, which nobody reads:
// wireClientCodec has already delivered each reply. net/rpc drops a completion
// when the channel is full, which it always is after the first.
var discardDone = make(chan *rpc.Call, 1)

func (p *netPeer) run() {
	watchdog := time.NewTicker(max(p.t.cfg.Timeout/4, time.Millisecond))
	defer watchdog.Stop()
	for {
		select {
		case <-p.t.closed:
			return
		case m := <-p.queue:
			p.sendBurst(m)
		case <-watchdog.C:
			p.checkDeadlines()
		}
	}
}

// maxSendBurst bounds how many queued messages one write carries.
const maxSendBurst = 256

// sendBurst sends m and whatever else is already queued for the peer,
// then writes them all at once: under load the node sends several
// messages per peer between two writes, and one syscall carries them.
func (p *netPeer) sendBurst(m Message) {
	codec := p.call(m, nil)
more:
	for range maxSendBurst - 1 {
		select {
		case m = <-p.queue:
			codec = p.call(m, codec)
		default:
			break more
		}
	}
	if codec != nil && codec.flush() != nil {
		p.closeClient(p.clientOf(codec))
	}
}

// call encodes m onto the peer's connection without writing it. If the
// connection changes mid-burst, the old one's buffer is written first.
func (p *netPeer) call(m Message, prev *wireClientCodec) *wireClientCodec {
	c, codec, err := p.connect()
	if err != nil {
		p.t.dropped.Add(1)
		return prev
	}
	if prev != nil && prev != codec {
		prev.flush()
	}
	p.arg = m
	c.Go(methodFor(m.Type), &p.arg, asyncReply, discardDone)
	p.arg = Message{} // keep no references to the entries
	return codec
}

// checkDeadlines drops a connection that has had calls in flight for
// about the timeout without answering any of them: a peer that stopped
// answering gets a fresh connection (and the calls on the old one are
// lost, which Raft tolerates). It counts answers instead of timing each
// call, which keeps the clock off the per-message path.
func (p *netPeer) checkDeadlines() {
	p.mu.Lock()
	codec := p.codec
	p.mu.Unlock()
	now := time.Now()
	if codec == nil {
		p.watched = nil
		return
	}
	n, answered := codec.inflight.Load(), codec.answered.Load()
	if codec != p.watched || n <= 0 || answered != p.answered {
		p.watched, p.answered, p.quietSince = codec, answered, now
		return
	}
	if now.Sub(p.quietSince) > p.t.cfg.Timeout {
		p.t.dropped.Add(uint64(n))
		p.closeClient(p.clientOf(codec))
		p.watched = nil
	}
}

func (p *netPeer) clientOf(codec *wireClientCodec) *rpc.Client {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.codec != codec {
		return nil
	}
	return p.client
}

func isNetErr(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, net.ErrClosed)
}

func (p *netPeer) connect() (*rpc.Client, *wireClientCodec, error) {
	p.mu.Lock()
	c, codec := p.client, p.codec
	p.mu.Unlock()
	if c != nil && !codec.broken.Load() {
		return c, codec, nil
	}
	if c != nil {
		p.closeClient(c) // the connection failed: redial
	}
	ctx, cancel := context.WithTimeout(context.Background(), p.t.cfg.DialTimeout)
	defer cancel()
	conn, err := p.t.cfg.Dial(ctx, p.addr)
	if err != nil {
		return nil, nil, fmt.Errorf("raft: dialing %s: %w", p.addr, err)
	}
	codec = newWireClientCodec(p.t, p.addr, conn)
	c = rpc.NewClientWithCodec(codec)
	p.mu.Lock()
	p.client, p.codec = c, codec
	p.mu.Unlock()
	return c, codec, nil
}

// closeClient drops the connection if it is still c (nil: whatever it is).
func (p *netPeer) closeClient(c *rpc.Client) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.client != nil && (c == nil || p.client == c) {
		p.client.Close()
		p.client, p.codec = nil, nil
	}
}

// rpcService is the net/rpc receiver. It has only the RPC methods so that
// net/rpc registers it without complaint.
type rpcService struct{ t *NetTransport }

func (s *rpcService) AppendEntries(req *Message, resp *Message) error { return s.t.handle(req, resp) }
func (s *rpcService) RequestVote(req *Message, resp *Message) error   { return s.t.handle(req, resp) }
func (s *rpcService) TimeoutNow(req *Message, resp *Message) error    { return s.t.handle(req, resp) }

// InstallSnapshot carries one chunk of a snapshot (Raft §7).
func (s *rpcService) InstallSnapshot(req *Message, resp *Message) error { return s.t.handle(req, resp) }

var errNoAnswer = errors.New("raft: the node did not answer in time (busy, stalled or shut down)")

// handle is net/rpc's method body. A request that came through this
// transport's own codec was delivered, in order, as it was decoded, and
// the codec sends the node's answer itself (msgAnswered): nothing is left
// to do. A request that arrives through a shared rpc.Server is delivered
// here instead, unordered, and waited for within the deadline.
func (t *NetTransport) handle(req *Message, resp *Message) error {
	if req.Type == msgAnswered {
		resp.Type = msgAnswered
		return nil
	}
	if !req.Type.IsRequest() {
		return fmt.Errorf("raft: %s is not a request", req.Type)
	}
	ch := make(chan Message, 1)
	if !t.deliver(*req, func(m Message) {
		select {
		case ch <- m:
		default:
		}
	}) {
		return errNoAnswer
	}
	timer := time.NewTimer(t.cfg.Timeout)
	defer timer.Stop()
	select {
	case m := <-ch:
		if m.Type == MsgNone {
			return errNoAnswer
		}
		*resp = m
		return nil
	case <-timer.C:
		return errNoAnswer
	case <-t.closed:
		return ErrShutdown
	}
}

var _ SnapshotTransport = (*NetTransport)(nil)

// CallSnapshot implements SnapshotTransport: one synchronous
// Raft.InstallSnapshot call on the peer's connection, bounded by ctx and by
// the transport's Timeout.
func (t *NetTransport) CallSnapshot(ctx context.Context, addr string, m Message) (Message, error) {
	p := t.peer(addr)
	if p == nil {
		return Message{}, ErrShutdown
	}
	c, codec, err := p.connect()
	if err != nil {
		return Message{}, err
	}
	reply := new(Message)
	call := c.Go(methodFor(MsgSnap), &m, reply, make(chan *rpc.Call, 1))
	if err := codec.flush(); err != nil {
		p.closeClient(c)
		return Message{}, fmt.Errorf("raft: snapshot chunk to %s: %w", addr, err)
	}
	timer := time.NewTimer(t.cfg.Timeout)
	defer timer.Stop()
	select {
	case <-call.Done:
		if call.Error != nil {
			if errors.Is(call.Error, rpc.ErrShutdown) || isNetErr(call.Error) {
				p.closeClient(c)
			}
			return Message{}, fmt.Errorf("raft: snapshot chunk to %s: %w", addr, call.Error)
		}
		return *reply, nil
	case <-timer.C:
		p.closeClient(c)
		return Message{}, fmt.Errorf("raft: snapshot chunk to %s: no answer within %v", addr, t.cfg.Timeout)
	case <-ctx.Done():
		return Message{}, ctx.Err()
	case <-t.closed:
		return Message{}, ErrShutdown
	}
}
