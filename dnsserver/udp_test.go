package dnsserver

import (
	"context"
	"fmt"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/miekg/dns"

	"roster/internal/testkit"
)

// udpQuestions mixes every kind of reply: big answers trimmed to the
// client's size, small ones, EDNS and none, errors; asked in a random
// order, they catch a reader whose reused reply or records leak from one
// question into the next.
func udpQuestions() []*dns.Msg {
	qs := []*dns.Msg{
		query("big.service.consul.", dns.TypeSRV, 0),
		query("big.service.consul.", dns.TypeSRV, 4096),
		query("big.service.consul.", dns.TypeA, 0),
		query("big.service.consul.", dns.TypeA, 1232),
		query("web.service.consul.", dns.TypeA, 0),
		query("web.service.consul.", dns.TypeSRV, 512),
		query("db.service.consul.", dns.TypeSRV, 0),
		query("api.service.consul.", dns.TypeA, 0),
		query("n1.node.consul.", dns.TypeANY, 0),
		query("nope.service.consul.", dns.TypeA, 1232),
		query("consul.", dns.TypeSOA, 0),
		query("example.com.", dns.TypeA, 0),
		query("0a000001.addr.consul.", dns.TypeAAAA, 0),
	}
	bad := query("web.service.consul.", dns.TypeA, 0)
	bad.Opcode = dns.OpcodeStatus
	return append(qs, bad)
}

// udpFixture is the standard catalog plus a service with 40 instances.
func udpFixture(t testing.TB) *fixture {
	f := standardFixture(t)
	for i := range 40 {
		name := fmt.Sprintf("big-%02d", i)
		f.node(name, fmt.Sprintf("10.3.0.%d", i+1), nil)
		f.service(name, catalogService("big", 9000+i), "")
	}
	return f
}

func TestUDPPacket_RepliesMatchTheHandlerQuestionAfterQuestion(t *testing.T) {
	f := udpFixture(t)
	cfg := DefaultConfig()
	cfg.EnableTruncate = true
	// A fixed clock: the SOA serial is the clock's second, and two
	// replies straddling a second boundary would differ in it.
	at := time.Unix(1_700_000_000, 0)
	s, err := New(cfg, Deps{View: f.s, Seed: 1, Clock: func() time.Time { return at }})
	if err != nil {
		t.Fatal(err)
	}
	r := s.newUDPReader()
	qs := udpQuestions()
	rng := testkit.Rand(t)
	for range 300 {
		req := qs[rng.IntN(len(qs))]
		wire, err := req.Pack()
		if err != nil {
			t.Fatal(err)
		}
		out, slow := r.answerPacket(wire)
		if slow != nil || out == nil {
			t.Fatalf("%v: no direct reply (slow %v)", req.Question[0], slow)
		}
		var got dns.Msg
		if err := got.Unpack(out); err != nil {
			t.Fatalf("%v: reply does not unpack: %v", req.Question[0], err)
		}
		want := s.Reply(t.Context(), req, UDP)
		if msg := sameReply(&got, want); msg != "" {
			t.Fatalf("%v (EDNS %v): %s\ngot  %v\nwant %v", req.Question[0], req.IsEdns0() != nil, msg, &got, want)
		}
	}
}

// sameReply compares two replies to one question up to the shuffled order
// of records: same header and section sizes, same records when nothing
// was trimmed.
func sameReply(got, want *dns.Msg) string {
	if got.MsgHdr != want.MsgHdr {
		return fmt.Sprintf("header %+v, want %+v", got.MsgHdr, want.MsgHdr)
	}
	if len(got.Answer) != len(want.Answer) || len(got.Ns) != len(want.Ns) || len(got.Extra) != len(want.Extra) {
		return "section sizes differ"
	}
	if got.Truncated {
		return ""
	}
	for _, pair := range [][2][]dns.RR{{got.Answer, want.Answer}, {got.Ns, want.Ns}, {got.Extra, want.Extra}} {
		g, w := sortedStrings(pair[0]), sortedStrings(pair[1])
		if !slices.Equal(g, w) {
			return fmt.Sprintf("records %v, want %v", g, w)
		}
	}
	return ""
}

func sortedStrings(rrs []dns.RR) []string {
	out := make([]string, len(rrs))
	for i, rr := range rrs {
		out[i] = rr.String()
	}
	slices.Sort(out)
	return out
}

func TestUDPPacket_RejectsLikeMiekgAndDropsWhatCannotBeAnswered(t *testing.T) {
	s, err := New(DefaultConfig(), Deps{View: standardFixture(t).s, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	r := s.newUDPReader()
	good, _ := query("web.service.consul.", dns.TypeA, 0).Pack()
	response := slices.Clone(good)
	response[2] |= 0x80 // QR
	twoQuestions := slices.Clone(good)
	twoQuestions[5] = 2
	update := slices.Clone(good)
	update[2] = dns.OpcodeUpdate << 3
	for _, tc := range []struct {
		name      string
		pkt       []byte
		rcode     int // -1: dropped
		malformed uint64
	}{
		{"short header", good[:11], -1, 1},
		{"a response", response, -1, 0},
		{"two questions", twoQuestions, dns.RcodeFormatError, 0},
		{"update", update, dns.RcodeNotImplemented, 0},
		{"truncated name", good[:15], dns.RcodeFormatError, 1},
	} {
		before := s.Stats().Malformed
		wire, slow := r.answerPacket(tc.pkt)
		if slow != nil {
			t.Fatalf("%s: sent to the slow path", tc.name)
		}
		if got := s.Stats().Malformed - before; got != tc.malformed {
			t.Errorf("%s: counted %d malformed, want %d", tc.name, got, tc.malformed)
		}
		if tc.rcode < 0 {
			if wire != nil {
				t.Errorf("%s: replied, want dropped", tc.name)
			}
			continue
		}
		var reply dns.Msg
		if err := reply.Unpack(wire); err != nil || reply.Rcode != tc.rcode || reply.Id != 4242 || !reply.Response {
			t.Errorf("%s: reply %v (%v), want rcode %s for id 4242", tc.name, &reply, err, dns.RcodeToString[tc.rcode])
		}
	}
}

// maxAllocsPerQuery is the bound for the whole UDP path, for
// services with a few instances. Replies with dozens of records allocate
// more: miekg/dns's compression map grows with the names packed.
const (
	maxAllocsPerQuery    = 10
	maxAllocsPerBigReply = 20
)

func TestUDPPacket_AllocatesAtMostTenPerQuery(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector changes allocation counts")
	}
	s, err := New(DefaultConfig(), Deps{View: udpFixture(t).s, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	r := s.newUDPReader()
	for _, tc := range []struct {
		req   *dns.Msg
		bound float64
	}{
		{query("web.service.consul.", dns.TypeA, 0), maxAllocsPerQuery},
		{query("web.service.consul.", dns.TypeSRV, 0), maxAllocsPerQuery},
		{query("web.service.consul.", dns.TypeA, 1232), maxAllocsPerQuery},
		{query("web.service.consul.", dns.TypeSRV, 1232), maxAllocsPerQuery},
		{query("big.service.consul.", dns.TypeA, 1232), maxAllocsPerBigReply},
		{query("big.service.consul.", dns.TypeSRV, 4096), maxAllocsPerBigReply},
	} {
		wire, err := tc.req.Pack()
		if err != nil {
			t.Fatal(err)
		}
		allocs := testing.AllocsPerRun(200, func() {
			if out, _ := r.answerPacket(wire); out == nil {
				t.Fatal("no reply")
			}
		})
		q, edns := tc.req.Question[0], tc.req.IsEdns0() != nil
		t.Logf("%s %s EDNS %v: %.1f allocations", q.Name, dns.TypeToString[q.Qtype], edns, allocs)
		if allocs > tc.bound {
			t.Errorf("%s %s EDNS %v: %.1f allocations per query, want ≤ %.0f", q.Name, dns.TypeToString[q.Qtype], edns, allocs, tc.bound)
		}
	}
}

func TestServer_UDPQuestionsNeedingIOLeaveTheReadLoop(t *testing.T) {
	// The forwarder blocks until released: if it ran on the only reader,
	// the local question after it would never be answered.
	release := make(chan struct{})
	fwd := &blockingForwarder{release: release}
	f := standardFixture(t)
	s, udp, _ := startServer(t, DefaultConfig(), Deps{View: f.s, Forwarder: fwd})
	conn, err := net.Dial("udp", udp)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	const slowQuestions = 2 * maxUDPReaders // more than there are readers
	for i := range slowQuestions {
		req := query("web.service.dc2.consul.", dns.TypeA, 0)
		req.Id = uint16(i)
		wire, _ := req.Pack()
		if _, err := conn.Write(wire); err != nil {
			t.Fatal(err)
		}
	}
	local := exchange(t, "udp", udp, query("web.service.consul.", dns.TypeA, 0))
	if local.Rcode != dns.RcodeSuccess || len(local.Answer) == 0 {
		t.Fatalf("local question while forwards are pending: %v", local)
	}
	close(release)
	buf := make([]byte, 512)
	for range slowQuestions {
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("forwarded question not answered: %v", err)
		}
		var r dns.Msg
		if err := r.Unpack(buf[:n]); err != nil || r.Rcode != dns.RcodeSuccess {
			t.Fatalf("forwarded reply %v: %v", &r, err)
		}
	}
	if got := s.Stats().Forwarded; got != slowQuestions {
		t.Errorf("forwarded %d, want %d", got, slowQuestions)
	}
}

type blockingForwarder struct{ release chan struct{} }

func (f *blockingForwarder) ForwardDNS(ctx context.Context, _ string, req *dns.Msg) (*dns.Msg, error) {
	select {
	case <-f.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	reply := new(dns.Msg).SetReply(req)
	reply.Answer = append(reply.Answer, &dns.A{Hdr: hdr(req.Question[0].Name, dns.TypeA, 0), A: net.IPv4(10, 9, 9, 9)})
	return reply, nil
}

func TestUDPPacket_SlowQuestionsBeyondTheBoundGetServfailAtOnce(t *testing.T) {
	s, err := New(DefaultConfig(), Deps{View: standardFixture(t).s, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	r := s.newUDPReader()
	l := &udpLoop{slow: make(chan struct{}, 1)}
	l.slow <- struct{}{} // the one slot is taken
	req := query("web.service.dc2.consul.", dns.TypeA, 0)
	wire := r.goSlow(t.Context(), l, req, peer{})
	var reply dns.Msg
	if err := reply.Unpack(wire); err != nil || reply.Rcode != dns.RcodeServerFailure || reply.Id != req.Id {
		t.Fatalf("reply %v (%v), want SERVFAIL at once", &reply, err)
	}
	if got := s.Stats().Overloaded; got != 1 {
		t.Errorf("Overloaded %d, want 1", got)
	}
}

// wrappedConn hides *net.UDPConn, as a PacketConn from elsewhere would.
type wrappedConn struct{ net.PacketConn }

func TestServer_UDPLoopChoosesItsSocketPath(t *testing.T) {
	bound, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer bound.Close()
	wildcard, err := net.ListenPacket("udp", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer wildcard.Close()
	if _, ok := ownLoopSocket(bound).(udpSocket); !ok {
		t.Errorf("a bound *net.UDPConn should use the AddrPort path")
	}
	if ownLoopSocket(wildcard) != nil {
		t.Errorf("a wildcard-bound socket must stay on miekg/dns (reply from the address asked)")
	}
	if _, ok := ownLoopSocket(wrappedConn{bound}).(genericSocket); !ok {
		t.Errorf("another PacketConn should use the net.Addr path")
	}
}

func TestServer_AnswersOnAnyPacketConn(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(DefaultConfig(), Deps{View: standardFixture(t).s})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Serve(wrappedConn{pc}, nil); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	r := exchange(t, "udp", pc.LocalAddr().String(), query("web.service.consul.", dns.TypeA, 0))
	if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 2 {
		t.Fatalf("reply %v, want the two healthy web instances", r)
	}
}
