package dnsserver

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"runtime"
	"sync"

	"github.com/miekg/dns"
)

// The UDP fast path. miekg/dns's server allocates per packet a goroutine,
// a response writer, a request message and a packed reply (about 35
// allocations with the answer); here each socket has a few reader
// goroutines that own all of that and reuse it. A reader reads a packet,
// parses it into its own dns.Msg, answers into its own reply (records in
// its own scratch blocks), packs into its own buffer and writes, before it
// reads the next: nothing of one question outlives it, so nothing needs a
// lock or a pool. Questions whose answer needs I/O (another datacenter,
// the recursors, a too-stale catalog) leave the loop: a copy of the
// request goes to a goroutine, so one slow recursor never stalls the
// socket. miekg/dns still parses and packs every message, and still serves
// TCP.

// maxUDPReaders bounds the reader goroutines of one socket. Reads on one
// socket are serialized by the runtime anyway; more readers only let
// answering overlap with reading.
const maxUDPReaders = 4

// maxSlowInFlight bounds the questions of one socket waiting on I/O
// (forwarding, recursion): beyond it a question gets SERVFAIL at once,
// counted in Stats.Overloaded, so a flood of such questions cannot pile
// up goroutines.
const maxSlowInFlight = 512

// maxConsecutiveReadErrors: a socket that fails this many reads in a row
// (other than being closed) is given up, with an EventReadFailed.
const maxConsecutiveReadErrors = 1000

// packetSocket is a UDP socket as the readers use it. *net.UDPConn reads
// and writes netip.AddrPort without allocating; other PacketConns go
// through net.Addr.
type packetSocket interface {
	read(buf []byte) (int, peer, error)
	write(buf []byte, to peer) error
	close() error
}

// peer is where a question came from: ap for *net.UDPConn, addr otherwise.
type peer struct {
	ap   netip.AddrPort
	addr net.Addr
}

type udpSocket struct{ c *net.UDPConn }

func (u udpSocket) read(buf []byte) (int, peer, error) {
	n, ap, err := u.c.ReadFromUDPAddrPort(buf)
	return n, peer{ap: ap}, err
}

func (u udpSocket) write(buf []byte, to peer) error {
	_, err := u.c.WriteToUDPAddrPort(buf, to.ap)
	return err
}

func (u udpSocket) close() error { return u.c.Close() }

type genericSocket struct{ c net.PacketConn }

func (g genericSocket) read(buf []byte) (int, peer, error) {
	n, addr, err := g.c.ReadFrom(buf)
	return n, peer{addr: addr}, err
}

func (g genericSocket) write(buf []byte, to peer) error {
	_, err := g.c.WriteTo(buf, to.addr)
	return err
}

func (g genericSocket) close() error { return g.c.Close() }

// ownLoopSocket returns the socket for the fast path, or nil when pc must
// stay on miekg/dns: a *net.UDPConn bound to a wildcard address, where
// the reply must leave from the address the question was sent to, which
// miekg/dns learns from each packet's control message.
func ownLoopSocket(pc net.PacketConn) packetSocket {
	c, ok := pc.(*net.UDPConn)
	if !ok {
		return genericSocket{pc}
	}
	if addr, ok := c.LocalAddr().(*net.UDPAddr); ok && addr.IP != nil && !addr.IP.IsUnspecified() {
		return udpSocket{c}
	}
	return nil
}

// udpLoop is one socket's readers.
type udpLoop struct {
	sock packetSocket
	wg   sync.WaitGroup // the readers and their slow-path goroutines
	slow chan struct{}  // a token per slow-path goroutine running
}

// startUDPLoop starts the readers of sock. They stop when Close closes
// the socket; slow-path goroutines see ctx cancelled.
func (s *Server) startUDPLoop(ctx context.Context, sock packetSocket) *udpLoop {
	l := &udpLoop{sock: sock, slow: make(chan struct{}, maxSlowInFlight)}
	n := min(max(runtime.GOMAXPROCS(0), 1), maxUDPReaders)
	for range n {
		r := s.newUDPReader()
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			if sock, ok := sock.(udpSocket); ok && r.runBatched(ctx, l, sock) {
				return
			}
			r.run(ctx, l)
		}()
	}
	return l
}

// udpReader is one reader goroutine's reusable state. Everything here is
// owned by that goroutine.
type udpReader struct {
	s     *Server
	in    []byte // the packet read
	out   []byte // the packed reply
	req   dns.Msg
	reply dns.Msg
	rng   *rand.Rand
	sc    scratch
}

func (s *Server) newUDPReader() *udpReader {
	return &udpReader{
		s:   s,
		in:  make([]byte, dns.MaxMsgSize), // EDNS clients may send up to their advertised size
		out: make([]byte, dns.MaxMsgSize),
		rng: rand.New(rand.NewPCG(s.deps.Seed, s.seeds.Add(1))),
	}
}

// run reads and answers until the socket is closed.
func (r *udpReader) run(ctx context.Context, l *udpLoop) {
	failures := 0
	for {
		n, from, err := l.sock.read(r.in)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			r.s.stats.readErrors.Add(1)
			if failures++; failures >= maxConsecutiveReadErrors {
				r.s.publish(Event{Kind: EventReadFailed, Detail: err.Error()})
				return
			}
			continue
		}
		failures = 0
		wire, slow := r.answerPacket(r.in[:n])
		if slow != nil {
			wire = r.goSlow(ctx, l, slow, from)
		}
		if wire != nil {
			if err := l.sock.write(wire, from); err != nil {
				r.s.stats.writeErrors.Add(1)
			}
		}
	}
}

// goSlow starts answering req off the loop, or, with maxSlowInFlight
// already waiting, returns a SERVFAIL to send at once.
func (r *udpReader) goSlow(ctx context.Context, l *udpLoop, req *dns.Msg, from peer) []byte {
	select {
	case l.slow <- struct{}{}:
	default:
		r.s.stats.overloaded.Add(1)
		return r.pack(serverFailure(req))
	}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		defer func() { <-l.slow }()
		r.s.answerSlow(ctx, l.sock, req, from)
	}()
	return nil
}

// answerSlow answers a question that needs I/O, off the reader loop.
func (s *Server) answerSlow(ctx context.Context, sock packetSocket, req *dns.Msg, to peer) {
	reply := s.Reply(ctx, req, UDP)
	wire, err := reply.Pack()
	if err != nil {
		s.stats.packErrors.Add(1)
		if wire, err = serverFailure(req).Pack(); err != nil {
			return
		}
	}
	if err := sock.write(wire, to); err != nil {
		s.stats.writeErrors.Add(1)
	}
}

// readHeader reads the 12-byte DNS header (RFC 1035 §4.1.1).
func readHeader(pkt []byte) (dns.Header, bool) {
	if len(pkt) < 12 {
		return dns.Header{}, false
	}
	be := binary.BigEndian
	return dns.Header{Id: be.Uint16(pkt), Bits: be.Uint16(pkt[2:]), Qdcount: be.Uint16(pkt[4:]),
		Ancount: be.Uint16(pkt[6:]), Nscount: be.Uint16(pkt[8:]), Arcount: be.Uint16(pkt[10:])}, true
}

// answerPacket answers one UDP packet. It returns the packed reply (in the
// reader's buffer, valid until the next call), or nil to send nothing (an
// unreadable header or a response: any reply could amplify an attack), or
// a copy of the request when answering needs I/O (see answerSlow). It
// never panics: a panic while answering (a bug) gives SERVFAIL and is
// counted. This is the whole UDP handler; FuzzUDPPacket drives it.
func (r *udpReader) answerPacket(pkt []byte) (wire []byte, slow *dns.Msg) {
	defer func() {
		if p := recover(); p != nil {
			wire, slow = r.s.panicked(&r.req, p, r.out), nil
		}
	}()
	dh, ok := readHeader(pkt)
	if !ok {
		r.s.stats.malformed.Add(1)
		return nil, nil
	}
	// The same acceptance rules as the miekg/dns server on TCP.
	action := dns.DefaultMsgAcceptFunc(dh)
	if action == dns.MsgIgnore {
		return nil, nil
	}
	if action != dns.MsgAccept {
		_ = r.req.Unpack(pkt[:12]) // the header alone always unpacks
		return r.pack(rejection(&r.reply, &r.req, action == dns.MsgRejectNotImplemented)), nil
	}
	if err := r.req.Unpack(pkt); err != nil {
		r.s.stats.malformed.Add(1)
		return r.pack(rejection(&r.reply, &r.req, false)), nil
	}
	return r.answer()
}

// answer answers the parsed request r.req into r.reply, or hands it to the
// slow path.
func (r *udpReader) answer() (wire []byte, slow *dns.Msg) {
	s := r.s
	start := s.deps.Clock()
	_, valid := checkRequest(&r.req)
	if valid && (s.deps.View == nil || !s.fresh()) {
		return nil, r.req.Copy() // a server of the local datacenter answers: Reply forwards
	}
	out := answerInto(&r.reply, &r.sc, &r.req, s.deps.View, s.cache, s.p, r.rng, UDP, uint32(start.Unix()))
	if out.next != nextReply {
		return nil, r.req.Copy()
	}
	wire = r.pack(out.reply)
	s.stats.observe(&r.req, out.reply, s.deps.Clock().Sub(start))
	return wire, nil
}

// pack packs reply into the reader's buffer; a reply that does not pack
// (a bug) becomes SERVFAIL.
func (r *udpReader) pack(reply *dns.Msg) []byte {
	wire, err := reply.PackBuffer(r.out)
	if err == nil {
		return wire
	}
	r.s.stats.packErrors.Add(1)
	wire, err = serverFailure(&r.req).PackBuffer(r.out)
	if err != nil {
		return nil
	}
	return wire
}

// rejection is miekg/dns's reply to a request it rejects (FORMERR, or
// NOTIMP for an opcode other than QUERY and NOTIFY): the request's header
// and question (if it got that far), no records. It reuses reply.
func rejection(reply, req *dns.Msg, notImplemented bool) *dns.Msg {
	initReply(reply, req)
	reply.Rcode = dns.RcodeFormatError
	if notImplemented {
		reply.Rcode = dns.RcodeNotImplemented
	}
	return reply
}

// serverFailure is a bare SERVFAIL to req.
func serverFailure(req *dns.Msg) *dns.Msg {
	reply := new(dns.Msg)
	initReply(reply, req)
	reply.Rcode = dns.RcodeServerFailure
	return reply
}

// panicked counts and reports a panic while answering req, and packs a
// SERVFAIL into buf (nil if even that fails).
func (s *Server) panicked(req *dns.Msg, p any, buf []byte) []byte {
	s.stats.panics.Add(1)
	s.publish(Event{Kind: EventPanic, Question: questionName(req), Detail: fmt.Sprint(p)})
	wire, err := serverFailure(req).PackBuffer(buf)
	if err != nil {
		return nil
	}
	return wire
}
