package dnsserver

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"

	"roster/catalog"
	"roster/internal/fanout"
)

// Forwarder asks another datacenter (or the local datacenter's leader, when
// the local catalog is too stale) to answer a DNS question. The agent
// implements it over rpc. It returns the remote reply; the server fixes the
// ID and trims it to the client's size limit.
type Forwarder interface {
	ForwardDNS(ctx context.Context, datacenter string, req *dns.Msg) (*dns.Msg, error)
}

// Staleness tells how long ago this server last heard from the leader: 0
// on the leader itself. It bounds stale reads (Config.MaxStale).
type Staleness interface {
	LastLeaderContact() time.Duration
}

// Deps are the server's collaborators. View or Forwarder is required.
// Without a View (a client agent, which holds no catalog) every question is
// answered by a server of the local datacenter through the Forwarder.
// Without a Forwarder, questions for other datacenters (and questions the
// local catalog is too stale for) get SERVFAIL; without Staleness the
// local catalog is always fresh enough.
type Deps struct {
	View      catalog.Reader
	Forwarder Forwarder
	Staleness Staleness
	// Clock gives the SOA serial's time. Default time.Now.
	Clock func() time.Time
	// Seed seeds the answer shuffling. Default: random.
	Seed uint64
}

// Server is the DNS interface over UDP and TCP. Handlers run concurrently
// (one goroutine per question, miekg/dns); they share only the read-only
// policy, the catalog view (safe for concurrent use) and atomic counters.
type Server struct {
	p     *policy
	deps  Deps
	cache *lookupCache
	stats counters
	rngs  sync.Pool // *rand.Rand; rand.Rand is not safe for concurrent use
	seeds atomic.Uint64

	events fanout.Hub[Event]

	// ctx is cancelled by Close: slow-path UDP answers (udp.go) stop.
	ctx    context.Context
	cancel context.CancelFunc

	mu      sync.Mutex // guards servers and loops
	servers []*dns.Server
	loops   []*udpLoop
}

// New checks cfg and returns a server that is not yet serving.
func New(cfg Config, deps Deps) (*Server, error) {
	if deps.View == nil && deps.Forwarder == nil {
		return nil, errors.New("dnsserver: Deps.View and Deps.Forwarder are both nil; pass the local catalog, or a Forwarder to the servers")
	}
	p, err := compile(cfg)
	if err != nil {
		return nil, err
	}
	if deps.Clock == nil {
		deps.Clock = time.Now
	}
	if deps.Seed == 0 {
		deps.Seed = rand.Uint64()
	}
	s := &Server{p: p, deps: deps, cache: newLookupCache()}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.rngs.New = func() any { return rand.New(rand.NewPCG(deps.Seed, s.seeds.Add(1))) }
	return s, nil
}

// Serve starts answering on the given sockets (either may be nil, not
// both) and returns once both are serving. Close stops them. UDP goes
// through roster's own read loop (udp.go) unless the socket is bound to a
// wildcard address; TCP, and such UDP sockets, through miekg/dns.
func (s *Server) Serve(udp net.PacketConn, tcp net.Listener) error {
	if udp == nil && tcp == nil {
		return errors.New("dnsserver: Serve needs a PacketConn or a Listener (or both)")
	}
	var own packetSocket
	if udp != nil {
		if own = ownLoopSocket(udp); own != nil {
			udp = nil
		}
	}
	started := make(chan struct{}, 2)
	errs := make(chan error, 2)
	count := 0
	for _, srv := range []*dns.Server{s.newDNSServer(udp, nil), s.newDNSServer(nil, tcp)} {
		if srv == nil {
			continue
		}
		count++
		srv.NotifyStartedFunc = func() { started <- struct{}{} }
		s.mu.Lock()
		s.servers = append(s.servers, srv)
		s.mu.Unlock()
		go func() { errs <- srv.ActivateAndServe() }()
	}
	for range count {
		select {
		case <-started:
		case err := <-errs:
			if own != nil {
				_ = own.close()
			}
			_ = s.Close()
			return fmt.Errorf("dnsserver: serve: %w", err)
		}
	}
	if own != nil {
		s.mu.Lock()
		s.loops = append(s.loops, s.startUDPLoop(s.ctx, own))
		s.mu.Unlock()
	}
	s.publish(Event{Kind: EventServing, Detail: socketsDetail(udp, tcp, own)})
	return nil
}

func socketsDetail(udp net.PacketConn, tcp net.Listener, own packetSocket) string {
	var parts []string
	switch sock := own.(type) {
	case udpSocket:
		udp = sock.c
	case genericSocket:
		udp = sock.c
	}
	if udp != nil {
		parts = append(parts, "udp "+udp.LocalAddr().String())
	}
	if tcp != nil {
		parts = append(parts, "tcp "+tcp.Addr().String())
	}
	return strings.Join(parts, ", ")
}

func (s *Server) newDNSServer(udp net.PacketConn, tcp net.Listener) *dns.Server {
	if udp == nil && tcp == nil {
		return nil
	}
	return &dns.Server{
		PacketConn: udp, Listener: tcp,
		Handler: dns.HandlerFunc(s.ServeDNS),
		// Read buffer for UDP questions: EDNS clients may send up to their
		// advertised size.
		UDPSize:        dns.MaxMsgSize,
		MsgInvalidFunc: func([]byte, error) { s.stats.malformed.Add(1) },
		ReadTimeout:    5 * time.Second,
		WriteTimeout:   5 * time.Second,
	}
}

// Close stops serving and closes the sockets.
func (s *Server) Close() error {
	s.mu.Lock()
	servers, loops := s.servers, s.loops
	s.servers, s.loops = nil, nil
	s.mu.Unlock()
	s.cancel()
	var errs []error
	for _, srv := range servers {
		if err := srv.Shutdown(); err != nil {
			errs = append(errs, err)
		}
	}
	for _, l := range loops {
		if err := l.sock.close(); err != nil {
			errs = append(errs, err)
		}
		l.wg.Wait()
	}
	if len(servers)+len(loops) > 0 {
		s.publish(Event{Kind: EventStopped})
		s.events.Close() // observers' channels close: the server is done
	}
	return errors.Join(errs...)
}

// ServeDNS answers one question (dns.Handler). A panic while answering
// would be a bug; it is contained to this question (SERVFAIL), counted in
// Stats.Panics, and never takes the server down.
func (s *Server) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	defer func() {
		if r := recover(); r != nil {
			s.stats.panics.Add(1)
			s.publish(Event{Kind: EventPanic, Question: questionName(req), Detail: fmt.Sprint(r)})
			_ = w.WriteMsg(new(dns.Msg).SetRcode(req, dns.RcodeServerFailure))
		}
	}()
	tr := UDP
	if _, ok := w.RemoteAddr().(*net.TCPAddr); ok {
		tr = TCP
	}
	reply := s.Reply(context.Background(), req, tr)
	if err := w.WriteMsg(reply); err != nil {
		s.stats.writeErrors.Add(1)
	}
}

// Reply computes the reply to req as received over tr, including the
// forwarding and recursion I/O, and counts it.
func (s *Server) Reply(ctx context.Context, req *dns.Msg, tr Transport) *dns.Msg {
	start := s.deps.Clock()
	var out outcome
	_, valid := checkRequest(req)
	switch {
	case valid && s.deps.View == nil:
		// No local catalog: a server of our datacenter answers.
		out = outcome{next: nextForward, dc: s.p.cfg.Datacenter}
		out.reply = new(dns.Msg).SetRcode(req, dns.RcodeServerFailure)
	case valid && !s.fresh():
		s.stats.stale.Add(1)
		s.publish(Event{Kind: EventStale, Question: questionName(req), Datacenter: s.p.cfg.Datacenter,
			Lag: s.deps.Staleness.LastLeaderContact()})
		out = outcome{next: nextForward, dc: s.p.cfg.Datacenter}
		out.reply = new(dns.Msg).SetRcode(req, dns.RcodeServerFailure)
	case s.deps.View == nil:
		// Malformed: answer locally, the catalog is not consulted.
		out = answer(req, nil, s.cache, s.p, nil, tr, uint32(start.Unix())) // rejected before any read
	default:
		rng := s.rngs.Get().(*rand.Rand)
		out = answer(req, s.deps.View, s.cache, s.p, rng, tr, uint32(start.Unix()))
		s.rngs.Put(rng)
	}
	reply := out.reply
	switch out.next {
	case nextForward:
		reply = s.forward(ctx, req, tr, out)
	case nextRecurse:
		reply = s.recurse(ctx, req, tr, out.reply)
	}
	s.stats.observe(req, reply, s.deps.Clock().Sub(start))
	return reply
}

// fresh reports whether the local catalog may answer (section 8.1):
// always without a Staleness source or on the leader; otherwise only with
// AllowStale and within MaxStale.
func (s *Server) fresh() bool {
	if s.deps.Staleness == nil {
		return true
	}
	lag := s.deps.Staleness.LastLeaderContact()
	return lag == 0 || (s.p.cfg.AllowStale && lag <= s.p.cfg.MaxStale)
}

// forward asks out.dc through the Forwarder; SERVFAIL without one or when
// it fails.
func (s *Server) forward(ctx context.Context, req *dns.Msg, tr Transport, out outcome) *dns.Msg {
	if s.deps.Forwarder == nil || len(req.Question) != 1 {
		return out.reply
	}
	s.stats.forwarded.Add(1)
	ctx, cancel := context.WithTimeout(ctx, s.p.cfg.RecursorTimeout)
	defer cancel()
	remote, err := s.deps.Forwarder.ForwardDNS(ctx, out.dc, req)
	if err != nil || remote == nil {
		s.stats.forwardErrors.Add(1)
		s.publish(Event{Kind: EventForwardFailed, Question: questionName(req), Datacenter: out.dc, Detail: fmt.Sprint(err)})
		return out.reply
	}
	remote.Id = req.Id
	remote.Response = true
	fit(remote, req, s.p, tr)
	return remote
}

// recurse asks the recursors in order (section 8.6): the first NOERROR or
// NXDOMAIN reply wins; if all fail, SERVFAIL with RA set.
func (s *Server) recurse(ctx context.Context, req *dns.Msg, tr Transport, fallback *dns.Msg) *dns.Msg {
	s.stats.recursed.Add(1)
	client := &dns.Client{Net: tr.String(), Timeout: s.p.cfg.RecursorTimeout}
	if tr == UDP {
		client.UDPSize = dns.MaxMsgSize
	}
	lastErr := ""
	for _, addr := range s.p.recursors {
		remote, _, err := client.ExchangeContext(ctx, req, addr)
		if err != nil || remote == nil {
			lastErr = fmt.Sprintf("recursor %s: %v", addr, err)
			continue
		}
		if remote.Rcode != dns.RcodeSuccess && remote.Rcode != dns.RcodeNameError {
			lastErr = fmt.Sprintf("recursor %s answered %s", addr, dns.RcodeToString[remote.Rcode])
			continue
		}
		remote.Id = req.Id
		remote.RecursionAvailable = true
		remote.Authoritative = false
		fitRecursed(remote, req, tr)
		return remote
	}
	s.stats.recursorErrors.Add(1)
	s.publish(Event{Kind: EventRecursionFailed, Question: questionName(req), Detail: lastErr})
	fallback.Rcode = dns.RcodeServerFailure
	fallback.RecursionAvailable = true
	return fallback
}

func questionName(req *dns.Msg) string {
	if len(req.Question) == 0 {
		return ""
	}
	return req.Question[0].Name
}
