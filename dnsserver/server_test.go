package dnsserver

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"roster/catalog"
)

// startServer serves view on fresh 127.0.0.1 sockets and returns the
// address (the same port number is not guaranteed for UDP and TCP, so both
// are returned).
func startServer(t testing.TB, cfg Config, deps Deps) (s *Server, udpAddr, tcpAddr string) {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s, err = New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Serve(pc, ln); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s, pc.LocalAddr().String(), ln.Addr().String()
}

func exchange(t testing.TB, network, addr string, req *dns.Msg) *dns.Msg {
	t.Helper()
	c := &dns.Client{Net: network, Timeout: 5 * time.Second}
	r, _, err := c.Exchange(req, addr)
	if err != nil {
		t.Fatalf("%s exchange %s: %v", network, req.Question[0].Name, err)
	}
	return r
}

func TestServer_AnswersOverUDPAndTCP(t *testing.T) {
	f := bigFixture(t, 50)
	f.node("n1", "10.0.0.1", map[string]string{"rack": "r1"})
	f.service("n1", catalogService("web", 80), "passing")
	_, udp, tcp := startServer(t, DefaultConfig(), Deps{View: f.s})

	for _, net := range []string{"udp", "tcp"} {
		addr := map[string]string{"udp": udp, "tcp": tcp}[net]
		r := exchange(t, net, addr, query("web.service.consul.", dns.TypeSRV, 0))
		sameSet(t, net+" SRV", rrStrings(r.Answer), []string{"SRV 1 1 80 n1.node.dc1.consul."})
		sameSet(t, net+" SRV extra", rrStrings(r.Extra), []string{"A 10.0.0.1"})
		if !r.Authoritative {
			t.Errorf("%s: AA not set", net)
		}
		r = exchange(t, net, addr, query("n1.node.consul.", dns.TypeANY, 0))
		sameSet(t, net+" node ANY", rrStrings(r.Answer), []string{"A 10.0.0.1", `TXT "rack=r1"`})
		r = exchange(t, net, addr, query("nosuch.service.consul.", dns.TypeA, 0))
		if r.Rcode != dns.RcodeNameError || len(r.Ns) != 1 {
			t.Errorf("%s: unknown service rcode %s, %d authority records", net, dns.RcodeToString[r.Rcode], len(r.Ns))
		}
	}
	// Without EDNS, UDP gets 3 answers and TCP all 50.
	if r := exchange(t, "udp", udp, query("big.service.consul.", dns.TypeSRV, 0)); len(r.Answer) != 3 {
		t.Errorf("UDP SRV: %d answers, want 3", len(r.Answer))
	}
	if r := exchange(t, "tcp", tcp, query("big.service.consul.", dns.TypeSRV, 0)); len(r.Answer) != 50 {
		t.Errorf("TCP SRV: %d answers, want 50", len(r.Answer))
	}
	if r := exchange(t, "udp", udp, query("big.service.consul.", dns.TypeA, 4096)); len(r.Answer) != 50 {
		t.Errorf("UDP EDNS 4096 A: %d answers, want 50", len(r.Answer))
	}
}

// fakeRecursor answers every question with rcode and, for NOERROR, count A
// records from 192.0.2.<last> on.
func fakeRecursor(t testing.TB, rcode int, last byte, count int) (addr string, asked *atomic.Int64) {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	asked = new(atomic.Int64)
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		asked.Add(1)
		m := new(dns.Msg).SetRcode(req, rcode)
		for i := range count {
			if rcode == dns.RcodeSuccess {
				m.Answer = append(m.Answer, &dns.A{Hdr: hdr(req.Question[0].Name, dns.TypeA, 60), A: net.IPv4(192, 0, 2, last+byte(i))})
			}
		}
		_ = w.WriteMsg(m)
	})}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go func() { _ = srv.ActivateAndServe() }()
	<-started
	t.Cleanup(func() { _ = srv.Shutdown() })
	return pc.LocalAddr().String(), asked
}

func TestServer_RecursorsAnswerOutsideTheDomain(t *testing.T) {
	f := standardFixture(t)
	refusing, refusedCount := fakeRecursor(t, dns.RcodeRefused, 0, 0)
	good, goodCount := fakeRecursor(t, dns.RcodeSuccess, 7, 1)
	cfg := DefaultConfig()
	cfg.Recursors = []string{refusing, good}
	s, udp, _ := startServer(t, cfg, Deps{View: f.s})

	r := exchange(t, "udp", udp, query("example.com.", dns.TypeA, 0))
	sameSet(t, "recursed", rrStrings(r.Answer), []string{"A 192.0.2.7"})
	if !r.RecursionAvailable || r.Authoritative || r.Id != 4242 {
		t.Errorf("recursed reply RA=%v AA=%v id=%d, want RA, not AA, id 4242", r.RecursionAvailable, r.Authoritative, r.Id)
	}
	if refusedCount.Load() != 1 || goodCount.Load() != 1 {
		t.Errorf("recursors asked %d and %d times, want 1 and 1 (sequential, next on REFUSED)", refusedCount.Load(), goodCount.Load())
	}
	// Unknown PTR goes to the recursors too.
	r = exchange(t, "udp", udp, query("9.9.9.9.in-addr.arpa.", dns.TypePTR, 0))
	if r.Rcode != dns.RcodeSuccess || goodCount.Load() != 2 {
		t.Errorf("PTR recursion: rcode %s, good recursor asked %d times", dns.RcodeToString[r.Rcode], goodCount.Load())
	}
	if st := s.Stats(); st.Recursed != 2 || st.RecursorErrors != 0 {
		t.Errorf("stats recursed %d errors %d, want 2 and 0", st.Recursed, st.RecursorErrors)
	}
}

// TestServer_RecursedRepliesAreNotCappedAtThreeAnswers: the 3-answer cap
// is for the domain's own answers; a recursor's 6 A records fit in 512
// bytes and all reach a client without EDNS.
func TestServer_RecursedRepliesAreNotCappedAtThreeAnswers(t *testing.T) {
	f := standardFixture(t)
	six, _ := fakeRecursor(t, dns.RcodeSuccess, 10, 6)
	cfg := DefaultConfig()
	cfg.Recursors = []string{six}
	_, udp, _ := startServer(t, cfg, Deps{View: f.s})
	if r := exchange(t, "udp", udp, query("example.com.", dns.TypeA, 0)); len(r.Answer) != 6 || r.Truncated {
		t.Fatalf("%d answers (TC %v), want all 6", len(r.Answer), r.Truncated)
	}
}

func TestServer_RecursorTimeoutGivesServfail(t *testing.T) {
	f := standardFixture(t)
	silent, err := net.ListenPacket("udp", "127.0.0.1:0") // reads nothing, answers nothing
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	cfg := DefaultConfig()
	cfg.Recursors = []string{silent.LocalAddr().String()}
	cfg.RecursorTimeout = 100 * time.Millisecond
	s, udp, _ := startServer(t, cfg, Deps{View: f.s})
	obs := s.Subscribe(16)
	r := exchange(t, "udp", udp, query("example.com.", dns.TypeA, 0))
	if e := nextEvent(t, obs.C); e.Kind != EventRecursionFailed || e.Question != "example.com." || e.Detail == "" {
		t.Errorf("event %+v, want recursion-failed for example.com. with the error", e)
	}
	if r.Rcode != dns.RcodeServerFailure || !r.RecursionAvailable {
		t.Fatalf("rcode %s RA %v, want SERVFAIL with RA", dns.RcodeToString[r.Rcode], r.RecursionAvailable)
	}
	if st := s.Stats(); st.RecursorErrors != 1 {
		t.Errorf("RecursorErrors %d, want 1", st.RecursorErrors)
	}
}

// fakeForwarder answers every forwarded question with one A record and
// remembers the datacenter.
type fakeForwarder struct {
	dcs  chan string
	fail atomic.Bool
}

func (f *fakeForwarder) ForwardDNS(ctx context.Context, dc string, req *dns.Msg) (*dns.Msg, error) {
	f.dcs <- dc
	if f.fail.Load() {
		return nil, errors.New("no route to datacenter")
	}
	m := new(dns.Msg).SetReply(req)
	m.Id = 1 // the server must restore the client's ID
	m.Answer = append(m.Answer, &dns.A{Hdr: hdr(req.Question[0].Name, dns.TypeA, 0), A: net.IPv4(10, 9, 9, 9)})
	return m, nil
}

func TestServer_OtherDatacenterGoesThroughTheForwarder(t *testing.T) {
	f := standardFixture(t)
	fwd := &fakeForwarder{dcs: make(chan string, 4)}
	_, udp, _ := startServer(t, DefaultConfig(), Deps{View: f.s, Forwarder: fwd})
	r := exchange(t, "udp", udp, query("web.service.dc2.consul.", dns.TypeA, 0))
	sameSet(t, "forwarded", rrStrings(r.Answer), []string{"A 10.9.9.9"})
	if dc := <-fwd.dcs; dc != "dc2" || r.Id != 4242 {
		t.Errorf("forwarded to %q with reply id %d, want dc2 and 4242", dc, r.Id)
	}
	fwd.fail.Store(true)
	if r := exchange(t, "udp", udp, query("web.service.dc2.consul.", dns.TypeA, 0)); r.Rcode != dns.RcodeServerFailure {
		t.Errorf("failed forward: rcode %s, want SERVFAIL", dns.RcodeToString[r.Rcode])
	}

	// Without a Forwarder: SERVFAIL.
	_, udp2, _ := startServer(t, DefaultConfig(), Deps{View: f.s})
	if r := exchange(t, "udp", udp2, query("web.service.dc2.consul.", dns.TypeA, 0)); r.Rcode != dns.RcodeServerFailure {
		t.Errorf("no forwarder: rcode %s, want SERVFAIL", dns.RcodeToString[r.Rcode])
	}
}

type fixedStaleness time.Duration

func (f fixedStaleness) LastLeaderContact() time.Duration { return time.Duration(f) }

func TestServer_MaxStaleBoundsLocalReads(t *testing.T) {
	f := standardFixture(t)
	cfg := DefaultConfig()
	cfg.MaxStale = 10 * time.Second
	req := query("web.service.consul.", dns.TypeA, 0)

	// Within the bound: the local catalog answers.
	s, err := New(cfg, Deps{View: f.s, Staleness: fixedStaleness(5 * time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	if r := s.Reply(context.Background(), req, UDP); len(r.Answer) != 2 {
		t.Fatalf("within MaxStale: %d answers, want 2\n%v", len(r.Answer), r)
	}
	// Beyond it: the leader is asked through the Forwarder, for the local dc.
	fwd := &fakeForwarder{dcs: make(chan string, 1)}
	s, _ = New(cfg, Deps{View: f.s, Staleness: fixedStaleness(time.Minute), Forwarder: fwd})
	obs := s.Subscribe(16)
	if r := s.Reply(context.Background(), req, UDP); len(r.Answer) != 1 || <-fwd.dcs != "dc1" {
		t.Fatalf("beyond MaxStale: want the forwarder's answer for dc1, got %v", r)
	}
	if e := nextEvent(t, obs.C); e.Kind != EventStale || e.Lag != time.Minute || e.Datacenter != "dc1" {
		t.Errorf("event %+v, want stale for dc1 with lag 1m", e)
	}
	if s.Stats().Stale != 1 {
		t.Errorf("Stale counter %d, want 1", s.Stats().Stale)
	}
	// Beyond it without a Forwarder: SERVFAIL. AllowStale off: only the
	// leader (lag 0) answers locally.
	s, _ = New(cfg, Deps{View: f.s, Staleness: fixedStaleness(time.Minute)})
	if r := s.Reply(context.Background(), req, UDP); r.Rcode != dns.RcodeServerFailure {
		t.Errorf("beyond MaxStale without forwarder: rcode %s, want SERVFAIL", dns.RcodeToString[r.Rcode])
	}
	cfg.AllowStale = false
	s, _ = New(cfg, Deps{View: f.s, Staleness: fixedStaleness(0)})
	if r := s.Reply(context.Background(), req, UDP); len(r.Answer) != 2 {
		t.Errorf("leader without AllowStale: %d answers, want 2", len(r.Answer))
	}
}

func TestServer_StatsCountTypesAndRcodes(t *testing.T) {
	f := standardFixture(t)
	s, udp, tcp := startServer(t, DefaultConfig(), Deps{View: f.s})
	exchange(t, "udp", udp, query("web.service.consul.", dns.TypeA, 0))
	exchange(t, "tcp", tcp, query("web.service.consul.", dns.TypeSRV, 0))
	exchange(t, "udp", udp, query("nosuch.service.consul.", dns.TypeA, 0))
	exchange(t, "udp", udp, query("example.com.", dns.TypeMX, 0))
	st := s.Stats()
	if st.Queries != 4 || st.ByType["A"] != 2 || st.ByType["SRV"] != 1 || st.ByType["other"] != 1 {
		t.Errorf("by type %v (queries %d), want A 2, SRV 1, other 1", st.ByType, st.Queries)
	}
	if st.ByRcode["NOERROR"] != 2 || st.ByRcode["NXDOMAIN"] != 1 || st.ByRcode["REFUSED"] != 1 {
		t.Errorf("by rcode %v, want NOERROR 2, NXDOMAIN 1, REFUSED 1", st.ByRcode)
	}
	var counted uint64
	for _, b := range st.Latency {
		counted += b.Count
	}
	if counted != 4 {
		t.Errorf("latency histogram holds %d, want 4", counted)
	}
}

func TestServer_MalformedWireGetsFormErrAndIsCounted(t *testing.T) {
	f := standardFixture(t)
	s, udp, _ := startServer(t, DefaultConfig(), Deps{View: f.s})
	conn, err := net.Dial("udp", udp)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// A header announcing one question, followed by a truncated name.
	bad := []byte{0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 5, 'a', 'b'}
	if _, err := conn.Write(bad); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 512)
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatalf("no reply to a malformed query: %v", err)
	}
	var r dns.Msg
	if err := r.Unpack(buf[:n]); err != nil || r.Rcode != dns.RcodeFormatError || r.Id != 0x1234 {
		t.Fatalf("reply rcode %s id %x (%v), want FORMERR for id 1234", dns.RcodeToString[r.Rcode], r.Id, err)
	}
	if s.Stats().Malformed != 1 {
		t.Errorf("Malformed %d, want 1", s.Stats().Malformed)
	}
}

func TestNew_RejectsMissingViewAndBadConfig(t *testing.T) {
	if _, err := New(DefaultConfig(), Deps{}); err == nil {
		t.Error("New without a View succeeded")
	}
	var view catalog.Reader = newFixture(t).s
	if _, err := New(Config{UDPAnswerLimit: -1}, Deps{View: view}); err == nil {
		t.Error("New with a bad Config succeeded")
	}
}

// nextEvent waits (bounded) for the next event.
func nextEvent(t *testing.T, c <-chan Event) Event {
	t.Helper()
	select {
	case e := <-c:
		return e
	case <-time.After(5 * time.Second):
		t.Fatal("no event within 5s")
		return Event{}
	}
}

func TestServer_PublishesServingAndStopped(t *testing.T) {
	f := standardFixture(t)
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(DefaultConfig(), Deps{View: f.s})
	if err != nil {
		t.Fatal(err)
	}
	obs := s.Subscribe(4)
	if err := s.Serve(pc, nil); err != nil {
		t.Fatal(err)
	}
	if e := nextEvent(t, obs.C); e.Kind != EventServing || !strings.Contains(e.Detail, pc.LocalAddr().String()) {
		t.Errorf("event %+v, want serving on %s", e, pc.LocalAddr())
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if e := nextEvent(t, obs.C); e.Kind != EventStopped {
		t.Errorf("event %+v, want stopped", e)
	}
	if _, open := <-obs.C; open {
		t.Error("observer channel still open after Close")
	}
}

// forwardAll records forwarded questions and answers each with one A record.
type forwardAll struct {
	mu  sync.Mutex
	dcs []string
}

func (f *forwardAll) ForwardDNS(_ context.Context, dc string, req *dns.Msg) (*dns.Msg, error) {
	f.mu.Lock()
	f.dcs = append(f.dcs, dc)
	f.mu.Unlock()
	r := new(dns.Msg).SetReply(req)
	rr, _ := dns.NewRR(req.Question[0].Name + " 0 IN A 10.1.2.3")
	r.Answer = append(r.Answer, rr)
	return r, nil
}

func TestServer_WithoutViewForwardsEveryQuestionToLocalDatacenter(t *testing.T) {
	fwd := &forwardAll{}
	cfg := DefaultConfig()
	cfg.Datacenter = "dc7"
	srv, err := New(cfg, Deps{Forwarder: fwd})
	if err != nil {
		t.Fatal(err)
	}
	req := new(dns.Msg).SetQuestion("web.service.consul.", dns.TypeA)
	reply := srv.Reply(context.Background(), req, UDP)
	if reply.Rcode != dns.RcodeSuccess || len(reply.Answer) != 1 {
		t.Fatalf("forwarded reply %v", reply)
	}
	if len(fwd.dcs) != 1 || fwd.dcs[0] != "dc7" {
		t.Fatalf("forwarded to %v, want [dc7]", fwd.dcs)
	}
	bad := new(dns.Msg).SetQuestion("web.service.consul.", dns.TypeA)
	bad.Response = true
	if r := srv.Reply(context.Background(), bad, UDP); r.Rcode != dns.RcodeFormatError || len(fwd.dcs) != 1 {
		t.Fatalf("malformed query: rcode %d, forwards %v", r.Rcode, fwd.dcs)
	}
	if _, err := New(cfg, Deps{}); err == nil {
		t.Fatal("New accepted neither View nor Forwarder")
	}
}
