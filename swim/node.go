package swim

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"time"

	"roster/internal/fanout"
)

// ErrShutdown is returned by calls on a node that has been shut down.
var ErrShutdown = errors.New("swim: node is shut down")

// Node is the shell around a Core: one goroutine owns the core and runs
// it against a real (or in-memory) transport and a ticker; the methods
// below are safe for concurrent use and hand out copies.
type Node struct {
	cfg Config
	tr  Transport
	log *slog.Logger
	hub fanout.Hub[Event]

	reqs      chan func(*Core) // work run on the owner goroutine
	done      chan struct{}    // closed by Shutdown
	stopped   chan struct{}    // closed when the owner goroutine exits
	leaveSent chan struct{}    // closed once the leave announcement went out
	leaveOnce sync.Once
	stopOnce  sync.Once
	streams   sync.WaitGroup // push-pull goroutines
	inbound   chan struct{}  // semaphore bounding concurrent inbound syncs
}

// maxInboundStreams bounds concurrent push-pulls served, so a burst of
// joins (or a flood) cannot pin unbounded goroutines and memory.
const maxInboundStreams = 32

// New starts a member on transport t (a NetTransport over pre-bound
// sockets, or a MemTransport in tests). The node owns t and closes it on
// Shutdown.
func New(cfg Config, t Transport) (*Node, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	addr := cfg.AdvertiseAddr
	if !addr.IsValid() {
		addr = t.LocalAddr()
	}
	if addr.Addr().IsUnspecified() {
		return nil, fmt.Errorf("swim: Config.AdvertiseAddr is unset and the transport listens on %v; set an address other members can reach", addr)
	}
	seed := cfg.Seed
	if seed == 0 {
		var b [8]byte
		_, _ = rand.Read(b[:])
		seed = binary.LittleEndian.Uint64(b[:])
	}
	core, err := NewCore(cfg, addr, mrand.New(mrand.NewPCG(seed, seed^0x243f6a8885a308d3)), rand.Reader)
	if err != nil {
		return nil, err
	}
	n := &Node{
		cfg:       cfg,
		tr:        t,
		log:       cfg.Logger.With("node", cfg.Name),
		reqs:      make(chan func(*Core)),
		done:      make(chan struct{}),
		stopped:   make(chan struct{}),
		leaveSent: make(chan struct{}),
		inbound:   make(chan struct{}, maxInboundStreams),
	}
	go n.run(core)
	return n, nil
}

// NewUDP starts a member on pre-bound sockets: conn a UDP socket and ln a
// TCP listener on the same port number (e.g. both on :8301). The node owns
// both and closes them on Shutdown (also when NewUDP fails).
func NewUDP(cfg Config, conn net.PacketConn, ln net.Listener) (*Node, error) {
	tr, err := NewNetTransport(conn, ln)
	if err != nil {
		conn.Close()
		ln.Close()
		return nil, err
	}
	n, err := New(cfg, tr)
	if err != nil {
		tr.Close()
		return nil, err
	}
	return n, nil
}

// run is the owner goroutine: every access to the core happens here.
func (n *Node) run(core *Core) {
	defer close(n.stopped)
	ticker := time.NewTicker(n.cfg.TickInterval)
	defer ticker.Stop()
	packets, streams := n.tr.Packets(), n.tr.Streams()
	for {
		select {
		case <-n.done:
			return
		case <-ticker.C:
			core.Tick()
		case p, ok := <-packets:
			if !ok {
				packets = nil
				continue
			}
			core.Step(p.From, p.Data)
		case c, ok := <-streams:
			if !ok {
				streams = nil
				continue
			}
			select {
			case n.inbound <- struct{}{}:
				n.streams.Add(1)
				go n.serveStream(c)
			default:
				c.Close() // too many concurrent syncs: the peer retries later
			}
		case f := <-n.reqs:
			f(core)
		}
		n.flush(core)
	}
}

// flush carries out what the core asked for.
func (n *Node) flush(core *Core) {
	r := core.Ready()
	for _, p := range r.Packets {
		if err := n.tr.WriteTo(p.Data, p.To); err != nil {
			n.log.Debug("send failed", "peer", p.To.String(), "err", err)
		}
	}
	for _, req := range r.PushPulls {
		n.streams.Add(1)
		go func() {
			defer n.streams.Done()
			if reply, err := n.exchange(req); err == nil {
				_ = n.do(func(c *Core) { _ = c.MergePushPull(reply, req.Join) })
			}
		}()
	}
	now := time.Now()
	for _, e := range r.Events {
		e.Time = now
		n.hub.Publish(e)
	}
	if core.LeaveSent() {
		n.leaveOnce.Do(func() { close(n.leaveSent) })
	}
}

// do runs f on the owner goroutine and waits for it.
func (n *Node) do(f func(*Core)) error {
	finished := make(chan struct{})
	select {
	case n.reqs <- func(c *Core) { f(c); close(finished) }:
	case <-n.stopped:
		return ErrShutdown
	}
	select {
	case <-finished:
		return nil
	case <-n.stopped:
		return ErrShutdown
	}
}

// exchange runs one push-pull as the initiator and returns the reply.
func (n *Node) exchange(req PushPullRequest) ([]byte, error) {
	conn, err := n.tr.DialStream(req.To, n.cfg.StreamTimeout)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(n.cfg.StreamTimeout))
	if err := writeFrame(conn, req.Frame); err != nil {
		return nil, fmt.Errorf("swim: push-pull to %v: %w", req.To, err)
	}
	reply, err := readFrame(conn)
	if err != nil {
		return nil, fmt.Errorf("swim: push-pull reply from %v: %w", req.To, err)
	}
	return reply, nil
}

// serveStream answers a push-pull opened by a peer.
func (n *Node) serveStream(conn net.Conn) {
	defer n.streams.Done()
	defer func() { <-n.inbound }()
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(n.cfg.StreamTimeout))
	frame, err := readFrame(conn)
	if err != nil {
		n.log.Debug("push-pull read failed", "peer", conn.RemoteAddr().String(), "err", err)
		return
	}
	var reply []byte
	var herr error
	if err := n.do(func(c *Core) { reply, herr = c.HandlePushPull(frame) }); err != nil {
		return
	}
	if herr != nil {
		n.log.Debug("push-pull rejected", "peer", conn.RemoteAddr().String(), "err", herr)
		return
	}
	_ = writeFrame(conn, reply)
}

// Join contacts each address ("host:port" of a member's gossip port) with a
// full state exchange and returns how many answered. It fails only if none
// did, with every error.
func (n *Node) Join(addrs []string) (int, error) {
	var targets []netip.AddrPort
	var errs []error
	for _, a := range addrs {
		ap, err := resolve(a)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		targets = append(targets, ap)
	}
	var reqs []PushPullRequest
	if err := n.do(func(c *Core) { reqs = c.JoinRequests(targets) }); err != nil {
		return 0, err
	}
	joined := 0
	for _, req := range reqs {
		reply, err := n.exchange(req)
		if err == nil {
			err = n.doErr(func(c *Core) error { return c.MergePushPull(reply, true) })
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("swim: join %v: %w", req.To, err))
			continue
		}
		joined++
	}
	if joined == 0 && len(addrs) > 0 {
		return 0, errors.Join(append([]error{errors.New("swim: join reached no member; check the addresses, ports, label and key")}, errs...)...)
	}
	return joined, nil
}

func (n *Node) doErr(f func(*Core) error) error {
	var ferr error
	if err := n.do(func(c *Core) { ferr = f(c) }); err != nil {
		return err
	}
	return ferr
}

func resolve(a string) (netip.AddrPort, error) {
	if ap, err := netip.ParseAddrPort(a); err == nil {
		return ap, nil
	}
	ua, err := net.ResolveUDPAddr("udp", a)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("swim: join address %q: %w (want host:port)", a, err)
	}
	ap := ua.AddrPort()
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
}

// Leave announces a graceful leave (the intent, then "left"; leave.go)
// and waits until the announcement has been sent or timeout passes. Call
// Shutdown afterwards.
func (n *Node) Leave(timeout time.Duration) error {
	if err := n.do(func(c *Core) { c.Leave() }); err != nil {
		return err
	}
	select {
	case <-n.leaveSent:
		return nil
	case <-time.After(timeout):
		return fmt.Errorf("swim: leave announcement not sent within %v; others will detect the departure as a failure", timeout)
	case <-n.stopped:
		return ErrShutdown
	}
}

// ForceLeave marks a failed (dead) member as left and tells the cluster,
// as `consul force-leave` does, so it can be deregistered instead of
// waiting for the reap interval. A live (alive or suspect) member is
// marked leaving: it refutes if it is alive, and is left once declared
// dead otherwise, as in Serf (Core.ForceLeave). It fails for an unknown
// name and for the local member.
func (n *Node) ForceLeave(name string) error {
	return n.doErr(func(c *Core) error { return c.ForceLeave(name) })
}

// ForceLeavePrune is ForceLeave with prune (`consul force-leave -prune`):
// every member that hears of it forgets the member, a failed one at once,
// a live one once the intent has spread unless it refuted; one pruned
// while alive rejoins (Core.ForceLeavePrune, prune.go).
func (n *Node) ForceLeavePrune(name string) error {
	return n.doErr(func(c *Core) error { return c.ForceLeavePrune(name) })
}

// Yielded reports whether this node gave up its name: a majority of the
// cluster holds the name for another address (EventConflict says which).
// Like Serf's agent, the caller should then shut down and fix the name.
func (n *Node) Yielded() bool {
	var y bool
	_ = n.do(func(c *Core) { y = c.Yielded() })
	return y
}

// Shutdown stops the node without announcing anything (use Leave first
// for a graceful exit), closes the transport and every observer.
func (n *Node) Shutdown() error {
	var err error
	n.stopOnce.Do(func() {
		close(n.done)
		<-n.stopped
		err = n.tr.Close()
		n.streams.Wait()
		n.hub.Close()
	})
	return err
}

// Members returns copies of all known members, self included.
func (n *Node) Members() []Member {
	var ms []Member
	_ = n.do(func(c *Core) { ms = c.Members() })
	return ms
}

// LocalMember returns a copy of the local member.
func (n *Node) LocalMember() Member {
	var m Member
	_ = n.do(func(c *Core) { m = c.LocalMember() })
	return m
}

// NumAlive is the number of members alive or suspect, self included.
func (n *Node) NumAlive() int {
	var k int
	_ = n.do(func(c *Core) { k = c.NumAlive() })
	return k
}

// SetTags replaces the local tags and gossips them.
func (n *Node) SetTags(tags map[string]string) error {
	return n.doErr(func(c *Core) error { return c.SetTags(tags) })
}

// UserEvent gossips a user event to every member.
func (n *Node) UserEvent(name string, payload []byte) error {
	return n.doErr(func(c *Core) error { return c.UserEvent(name, payload) })
}

// Stats returns a copy of the counters.
func (n *Node) Stats() Stats {
	var s Stats
	_ = n.do(func(c *Core) { s = c.Stats() })
	return s
}

// Subscribe returns an observer of every event from now on. A slow
// observer misses events (counted by Observer.Dropped) rather than
// slowing the protocol.
func (n *Node) Subscribe(buffer int) *fanout.Observer[Event] { return n.hub.Subscribe(buffer) }

// EventsDropped is the number of events observers missed.
func (n *Node) EventsDropped() uint64 { return n.hub.Dropped() }
