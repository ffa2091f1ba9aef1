package dnsserver

import (
	"fmt"
	"testing"

	"github.com/miekg/dns"

	"roster/catalog"
)

// bigFixture registers service "big" on n nodes with long names, so SRV
// replies outgrow any UDP limit quickly.
func bigFixture(t testing.TB, n int) *fixture {
	f := newFixture(t)
	for i := range n {
		name := fmt.Sprintf("a-rather-long-node-name-to-fill-packets-%03d", i)
		f.node(name, fmt.Sprintf("10.1.%d.%d", i/250, i%250+1), nil)
		f.service(name, catalogService("big", 8000+i), "")
	}
	return f
}

func TestFit_SizesAndTruncation(t *testing.T) {
	f := bigFixture(t, 200)
	for _, tc := range []struct {
		name        string
		qtype       uint16
		edns        uint16
		tr          Transport
		cfg         func(*Config)
		wantAnswers int // -1: trimmed to fit, fewer than all
		wantTC      bool
		maxBytes    int
	}{
		{name: "UDP no EDNS caps at 3 answers", qtype: dns.TypeA, wantAnswers: 3, maxBytes: 512},
		{name: "UDP no EDNS TC with EnableTruncate", qtype: dns.TypeA, wantAnswers: 3, wantTC: true, maxBytes: 512,
			cfg: func(c *Config) { c.EnableTruncate = true }},
		{name: "UDPAnswerLimit above 8 is capped at 8", qtype: dns.TypeA, wantAnswers: 8, maxBytes: 512,
			cfg: func(c *Config) { c.UDPAnswerLimit = 20 }},
		{name: "UDP no EDNS SRV", qtype: dns.TypeSRV, wantAnswers: 3, maxBytes: 512},
		{name: "EDNS 1232 A: no answer cap, size bound", qtype: dns.TypeA, edns: 1232, wantAnswers: -1, maxBytes: 1232},
		{name: "EDNS 512 SRV trimmed to size", qtype: dns.TypeSRV, edns: 512, wantAnswers: -1, maxBytes: 512,
			cfg: func(c *Config) { c.EnableTruncate = true }, wantTC: true},
		{name: "EDNS below 512 counts as 512", qtype: dns.TypeA, edns: 100, wantAnswers: -1, maxBytes: 512},
		{name: "EDNS 65000 A gets all", qtype: dns.TypeA, edns: 65000, wantAnswers: 200, maxBytes: 65000},
		{name: "TCP SRV gets all", qtype: dns.TypeSRV, tr: TCP, wantAnswers: 200, maxBytes: 65535},
		{name: "ARecordLimit on TCP", qtype: dns.TypeA, tr: TCP, wantAnswers: 2, maxBytes: 65535,
			cfg: func(c *Config) { c.ARecordLimit = 2 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			out := ask(t, f.s, mustPolicy(t, cfg), query("big.service.consul.", tc.qtype, tc.edns), tc.tr)
			r := out.reply
			wire, err := r.Pack()
			if err != nil {
				t.Fatal(err)
			}
			if len(wire) > tc.maxBytes {
				t.Errorf("reply is %d bytes, limit %d", len(wire), tc.maxBytes)
			}
			switch {
			case tc.wantAnswers >= 0 && len(r.Answer) != tc.wantAnswers:
				t.Errorf("%d answers, want %d", len(r.Answer), tc.wantAnswers)
			case tc.wantAnswers < 0 && (len(r.Answer) == 0 || len(r.Answer) >= 200):
				t.Errorf("%d answers, want some but not all 200", len(r.Answer))
			}
			if r.Truncated != tc.wantTC {
				t.Errorf("TC=%v, want %v", r.Truncated, tc.wantTC)
			}
			if (tc.edns > 0) != (r.IsEdns0() != nil) {
				t.Errorf("OPT in reply: %v, want it iff the request had one", r.IsEdns0() != nil)
			}
			checkExtraMatchesTargets(t, r)
		})
	}
}

// checkExtraMatchesTargets: after trimming, every SRV target has its
// address in Extra and Extra has nothing else (but the OPT).
func checkExtraMatchesTargets(t *testing.T, r *dns.Msg) {
	t.Helper()
	targets := map[string]bool{}
	for _, rr := range r.Answer {
		if srv, ok := rr.(*dns.SRV); ok {
			targets[srv.Target] = true
		}
	}
	seen := map[string]bool{}
	for _, rr := range r.Extra {
		if rr.Header().Rrtype == dns.TypeOPT {
			continue
		}
		if !targets[rr.Header().Name] {
			t.Errorf("extra %v resolves no remaining answer", rr)
		}
		seen[rr.Header().Name] = true
	}
	for target := range targets {
		if !seen[target] {
			t.Errorf("SRV target %s has no address in Extra", target)
		}
	}
}

func TestFit_EDNSEchoesSubnetAndSize(t *testing.T) {
	f := standardFixture(t)
	req := query("web.service.consul.", dns.TypeA, 4096)
	opt := req.IsEdns0()
	opt.Option = append(opt.Option, &dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: 1, SourceNetmask: 24,
		SourceScope: 0, Address: []byte{192, 0, 2, 0}})
	r := ask(t, f.s, mustPolicy(t, DefaultConfig()), req, UDP).reply
	got := r.IsEdns0()
	if got == nil || got.UDPSize() != 4096 {
		t.Fatalf("reply OPT %v, want one advertising 4096", got)
	}
	if len(got.Option) != 1 || got.Option[0].(*dns.EDNS0_SUBNET).SourceNetmask != 24 {
		t.Errorf("client subnet option not echoed: %v", got)
	}
}

// TestAnswer_Deduplicates: two instances on one node give one A record and
// one Extra address but two SRV records (different ports), for small
// answers (scanned) and large ones (set-based).
func TestAnswer_Deduplicates(t *testing.T) {
	for _, nodes := range []int{2, 40} {
		f := newFixture(t)
		for i := range nodes {
			name := fmt.Sprintf("n%02d", i)
			f.node(name, fmt.Sprintf("10.3.0.%d", i+1), nil)
			f.service(name, catalog.NodeService{ID: "dup-1", Service: "dup", Port: 1}, "")
			f.service(name, catalog.NodeService{ID: "dup-2", Service: "dup", Port: 2}, "")
		}
		p := mustPolicy(t, DefaultConfig())
		a := ask(t, f.s, p, query("dup.service.consul.", dns.TypeA, 0), TCP).reply
		srv := ask(t, f.s, p, query("dup.service.consul.", dns.TypeSRV, 0), TCP).reply
		if len(a.Answer) != nodes || len(srv.Answer) != 2*nodes || len(srv.Extra) != nodes {
			t.Errorf("%d nodes: %d A, %d SRV, %d extra; want %d, %d, %d", nodes, len(a.Answer), len(srv.Answer),
				len(srv.Extra), nodes, 2*nodes, nodes)
		}
	}
}

// TestFit_TCPCapsAt64K: an SRV answer for 2,000 instances is far above 64K;
// over TCP it is trimmed to the largest prefix that fits one message.
func TestFit_TCPCapsAt64K(t *testing.T) {
	f := bigFixture(t, 2000)
	r := ask(t, f.s, mustPolicy(t, DefaultConfig()), query("big.service.consul.", dns.TypeSRV, 0), TCP).reply
	wire, err := r.Pack()
	if err != nil {
		t.Fatal(err)
	}
	if len(wire) > maxTCPSize || len(r.Answer) < 500 || len(r.Answer) >= 2000 {
		t.Fatalf("%d bytes with %d answers; want ≤ %d bytes and several hundred answers", len(wire), len(r.Answer), maxTCPSize)
	}
	checkExtraMatchesTargets(t, r)
}
