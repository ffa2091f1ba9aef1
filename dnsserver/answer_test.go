package dnsserver

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// answerCase is one question to the pure function and what it must give.
// Answer and Extra are compared as sets (answers are shuffled).
type answerCase struct {
	name   string
	qname  string
	qtype  uint16
	cfg    func(*Config)
	rcode  int
	answer []string
	extra  []string
	ns     []string // types of the authority records, in order
	next   next
	dc     string
}

func TestAnswer_NameFormsAndRecordTypes(t *testing.T) {
	f := standardFixture(t)
	cases := []answerCase{
		// Nodes.
		{name: "node A", qname: "n1.node.consul.", qtype: dns.TypeA,
			answer: []string{"A 10.0.0.1"}, extra: []string{`TXT "rack=r1"`, `TXT "hello"`}},
		{name: "node A with dc", qname: "n1.node.dc1.consul.", qtype: dns.TypeA, answer: []string{"A 10.0.0.1"},
			extra: []string{`TXT "rack=r1"`, `TXT "hello"`}},
		{name: "node A with dc.dc", qname: "n1.node.dc1.dc.consul.", qtype: dns.TypeA, answer: []string{"A 10.0.0.1"},
			extra: []string{`TXT "rack=r1"`, `TXT "hello"`}},
		{name: "node name case-insensitive", qname: "N1.NODE.Consul.", qtype: dns.TypeA, answer: []string{"A 10.0.0.1"},
			extra: []string{`TXT "rack=r1"`, `TXT "hello"`}},
		{name: "node TXT from meta", qname: "n1.node.consul.", qtype: dns.TypeTXT,
			answer: []string{`TXT "rack=r1"`, `TXT "hello"`}},
		{name: "node ANY", qname: "n1.node.consul.", qtype: dns.TypeANY,
			answer: []string{"A 10.0.0.1", `TXT "rack=r1"`, `TXT "hello"`}},
		{name: "node AAAA on IPv4 node is NODATA", qname: "n1.node.consul.", qtype: dns.TypeAAAA, ns: []string{"SOA"}},
		{name: "node AAAA", qname: "n6.node.consul.", qtype: dns.TypeAAAA, answer: []string{"AAAA 2001:db8::6"}},
		{name: "node hostname is CNAME", qname: "h1.node.consul.", qtype: dns.TypeA,
			answer: []string{"CNAME host1.example.com."}},
		{name: "node MX is NODATA", qname: "n1.node.consul.", qtype: dns.TypeMX, ns: []string{"SOA"}},
		{name: "unknown node", qname: "nosuch.node.consul.", qtype: dns.TypeA, rcode: dns.RcodeNameError, ns: []string{"SOA"}},

		// Services: health filtering — n3's serfHealth is critical so its web
		// is gone; n2's warning web stays.
		{name: "service A", qname: "web.service.consul.", qtype: dns.TypeA,
			answer: []string{"A 10.0.0.1", "A 10.0.0.2"}},
		{name: "service A only passing", qname: "web.service.consul.", qtype: dns.TypeA,
			cfg: func(c *Config) { c.OnlyPassing = true }, answer: []string{"A 10.0.0.1"}},
		{name: "service tag", qname: "primary.web.service.consul.", qtype: dns.TypeA, answer: []string{"A 10.0.0.1"}},
		{name: "service SRV", qname: "web.service.consul.", qtype: dns.TypeSRV,
			answer: []string{"SRV 1 10 80 n1.node.dc1.consul.", "SRV 1 2 81 n2.node.dc1.consul."},
			extra:  []string{"A 10.0.0.1", "A 10.0.0.2"}},
		{name: "RFC 2782 _tcp means no tag", qname: "_web._tcp.service.consul.", qtype: dns.TypeSRV,
			answer: []string{"SRV 1 10 80 n1.node.dc1.consul.", "SRV 1 2 81 n2.node.dc1.consul."},
			extra:  []string{"A 10.0.0.1", "A 10.0.0.2"}},
		{name: "RFC 2782 tag", qname: "_web._primary.service.consul.", qtype: dns.TypeSRV,
			answer: []string{"SRV 1 10 80 n1.node.dc1.consul."}, extra: []string{"A 10.0.0.1"}},
		{name: "RFC 2782 without service label", qname: "_web._tcp.consul.", qtype: dns.TypeSRV,
			answer: []string{"SRV 1 10 80 n1.node.dc1.consul.", "SRV 1 2 81 n2.node.dc1.consul."},
			extra:  []string{"A 10.0.0.1", "A 10.0.0.2"}},
		{name: "service address overrides node", qname: "db.service.consul.", qtype: dns.TypeA, answer: []string{"A 10.1.1.1"}},
		{name: "service own IP gives addr target", qname: "db.service.consul.", qtype: dns.TypeSRV,
			answer: []string{"SRV 1 1 5432 0a010101.addr.dc1.consul."}, extra: []string{"A 10.1.1.1"}},
		{name: "service hostname is CNAME", qname: "api.service.consul.", qtype: dns.TypeA,
			answer: []string{"CNAME api.example.com."}},
		{name: "service hostname SRV target", qname: "api.service.consul.", qtype: dns.TypeSRV,
			answer: []string{"SRV 1 1 443 api.example.com."}},
		{name: "service on IPv6 node", qname: "web6.service.consul.", qtype: dns.TypeAAAA, answer: []string{"AAAA 2001:db8::6"}},
		{name: "service A on IPv6-only is NODATA", qname: "web6.service.consul.", qtype: dns.TypeA, ns: []string{"SOA"}},
		{name: "service TXT is NODATA", qname: "web.service.consul.", qtype: dns.TypeTXT, ns: []string{"SOA"}},
		{name: "servers", qname: "consul.service.consul.", qtype: dns.TypeA, answer: []string{"A 10.0.0.1"}},
		{name: "all instances critical", qname: "crit.service.consul.", qtype: dns.TypeA, rcode: dns.RcodeNameError, ns: []string{"SOA"}},
		{name: "unknown service", qname: "nosuch.service.consul.", qtype: dns.TypeA, rcode: dns.RcodeNameError, ns: []string{"SOA"}},
		{name: "unknown tag", qname: "nosuch.web.service.consul.", qtype: dns.TypeA, rcode: dns.RcodeNameError, ns: []string{"SOA"}},

		// addr.
		{name: "addr A", qname: "0a000001.addr.dc1.consul.", qtype: dns.TypeA, answer: []string{"A 10.0.0.1"}},
		{name: "addr AAAA", qname: "20010db8000000000000000000000006.addr.dc1.consul.", qtype: dns.TypeAAAA,
			answer: []string{"AAAA 2001:db8::6"}},
		{name: "addr other type goes to extra", qname: "0a000001.addr.consul.", qtype: dns.TypeAAAA,
			extra: []string{"A 10.0.0.1"}, ns: []string{"SOA"}},
		{name: "addr of another dc answered here", qname: "0a000001.addr.dc2.consul.", qtype: dns.TypeA, answer: []string{"A 10.0.0.1"}},
		{name: "addr bad hex", qname: "zz000001.addr.consul.", qtype: dns.TypeA, rcode: dns.RcodeNameError, ns: []string{"SOA"}},

		// Apex.
		{name: "apex SOA", qname: "consul.", qtype: dns.TypeSOA,
			answer: []string{"SOA ns.consul. hostmaster.consul. 1700000000 3600 600 86400 0"},
			ns:     []string{"NS"}, extra: []string{"A 10.0.0.1"}},
		{name: "apex NS", qname: "consul.", qtype: dns.TypeNS,
			answer: []string{"NS n1.node.dc1.consul."}, extra: []string{"A 10.0.0.1"}},
		{name: "apex A is NODATA", qname: "consul.", qtype: dns.TypeA, ns: []string{"SOA"}},

		// Alt domain: answers named as asked.
		{name: "alt domain SRV", qname: "web.service.example.", qtype: dns.TypeSRV,
			cfg:    func(c *Config) { c.AltDomain = "example." },
			answer: []string{"SRV 1 10 80 n1.node.dc1.example.", "SRV 1 2 81 n2.node.dc1.example."},
			extra:  []string{"A 10.0.0.1", "A 10.0.0.2"}},
		{name: "custom domain", qname: "n2.node.roster.", qtype: dns.TypeA,
			cfg: func(c *Config) { c.Domain = "roster" }, answer: []string{"A 10.0.0.2"}},

		// Unknown and unsupported names.
		{name: "invalid form", qname: "foo.bar.consul.", qtype: dns.TypeA, rcode: dns.RcodeNameError, ns: []string{"SOA"}},
		{name: "keyword without name", qname: "service.consul.", qtype: dns.TypeA, rcode: dns.RcodeNameError, ns: []string{"SOA"}},
		{name: "too many locality labels", qname: "web.service.a.b.consul.", qtype: dns.TypeA, rcode: dns.RcodeNameError, ns: []string{"SOA"}},
		{name: "prepared queries unsupported", qname: "q.query.consul.", qtype: dns.TypeA, rcode: dns.RcodeNameError, ns: []string{"SOA"}},
		{name: "AXFR not implemented", qname: "consul.", qtype: dns.TypeAXFR, rcode: dns.RcodeNotImplemented},

		// Outside the domain and other datacenters.
		{name: "outside refused", qname: "example.com.", qtype: dns.TypeA, rcode: dns.RcodeRefused},
		{name: "outside with recursors", qname: "example.com.", qtype: dns.TypeA,
			cfg: func(c *Config) { c.Recursors = []string{"127.0.0.1"} }, rcode: dns.RcodeServerFailure, next: nextRecurse},
		{name: "other dc forwarded", qname: "web.service.dc2.consul.", qtype: dns.TypeA,
			rcode: dns.RcodeServerFailure, next: nextForward, dc: "dc2"},
		{name: "other dc node forwarded", qname: "n9.node.dc2.dc.consul.", qtype: dns.TypeA,
			rcode: dns.RcodeServerFailure, next: nextForward, dc: "dc2"},

		// Reverse.
		{name: "PTR node", qname: "1.0.0.10.in-addr.arpa.", qtype: dns.TypePTR, answer: []string{"PTR n1.node.dc1.consul."}},
		{name: "PTR service address", qname: "1.1.1.10.in-addr.arpa.", qtype: dns.TypePTR, answer: []string{"PTR db.service.dc1.consul."}},
		{name: "PTR IPv6 node", qname: "6.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa.", qtype: dns.TypePTR,
			answer: []string{"PTR n6.node.dc1.consul."}},
		{name: "PTR unknown", qname: "9.9.9.9.in-addr.arpa.", qtype: dns.TypePTR, rcode: dns.RcodeNameError},
		{name: "PTR unknown with recursors", qname: "9.9.9.9.in-addr.arpa.", qtype: dns.TypePTR,
			cfg: func(c *Config) { c.Recursors = []string{"127.0.0.1:5353"} }, rcode: dns.RcodeServerFailure, next: nextRecurse},
		{name: "PTR malformed", qname: "300.0.0.10.in-addr.arpa.", qtype: dns.TypePTR, rcode: dns.RcodeNameError},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			out := ask(t, f.s, mustPolicy(t, cfg), query(tc.qname, tc.qtype, 0), UDP)
			checkCase(t, tc, out)
		})
	}
}

func checkCase(t *testing.T, tc answerCase, out outcome) {
	t.Helper()
	r := out.reply
	if r.Rcode != tc.rcode || out.next != tc.next || out.dc != tc.dc {
		t.Fatalf("rcode %s next %d dc %q, want %s next %d dc %q\n%v", dns.RcodeToString[r.Rcode], out.next, out.dc,
			dns.RcodeToString[tc.rcode], tc.next, tc.dc, r)
	}
	if !r.Response || r.Id != 4242 || len(r.Question) != 1 || r.Question[0].Name != tc.qname {
		t.Fatalf("reply header/question not echoed: %v", r)
	}
	sameSet(t, "answer", rrStrings(r.Answer), tc.answer)
	sameSet(t, "extra", rrStrings(r.Extra), tc.extra)
	var nsTypes []string
	for _, rr := range r.Ns {
		nsTypes = append(nsTypes, dns.TypeToString[rr.Header().Rrtype])
	}
	if !slices.Equal(nsTypes, tc.ns) {
		t.Errorf("authority %v, want %v\n%v", nsTypes, tc.ns, r)
	}
	for _, rr := range r.Answer {
		if rr.Header().Name != tc.qname && rr.Header().Rrtype != dns.TypeSOA && rr.Header().Rrtype != dns.TypeNS {
			t.Errorf("answer %v is not named as the question %q", rr, tc.qname)
		}
	}
}

func sameSet(t *testing.T, what string, got, want []string) {
	t.Helper()
	got, want = slices.Clone(got), slices.Clone(want)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("%s:\n got %q\nwant %q", what, got, want)
	}
}

func TestAnswer_SerfHealthCriticalExcludesEveryServiceOfTheNode(t *testing.T) {
	f := newFixture(t)
	f.node("a", "10.0.0.1", nil)
	f.node("b", "10.0.0.2", nil)
	for _, n := range []string{"a", "b"} {
		f.service(n, catalogService("web", 80), "passing")
		f.service(n, catalogService("cache", 6379), "")
	}
	p := mustPolicy(t, DefaultConfig())
	f.nodeStatus("a", "critical")
	for _, svc := range []string{"web", "cache"} {
		out := ask(t, f.s, p, query(svc+".service.consul.", dns.TypeA, 0), UDP)
		sameSet(t, svc, rrStrings(out.reply.Answer), []string{"A 10.0.0.2"})
	}
	f.nodeStatus("b", "critical")
	out := ask(t, f.s, p, query("web.service.consul.", dns.TypeA, 0), UDP)
	if out.reply.Rcode != dns.RcodeNameError {
		t.Fatalf("all nodes failed: rcode %s, want NXDOMAIN", dns.RcodeToString[out.reply.Rcode])
	}
	f.nodeStatus("a", "passing")
	out = ask(t, f.s, p, query("cache.service.consul.", dns.TypeA, 0), UDP)
	sameSet(t, "recovered", rrStrings(out.reply.Answer), []string{"A 10.0.0.1"})
}

func TestAnswer_TTLs(t *testing.T) {
	f := standardFixture(t)
	cfg := DefaultConfig()
	cfg.NodeTTL = 7 * time.Second
	cfg.ServiceTTL = map[string]time.Duration{"*": 5 * time.Second, "we*": 20 * time.Second, "web": 30 * time.Second, "d*": 11 * time.Second}
	p := mustPolicy(t, cfg)
	for _, tc := range []struct {
		qname string
		qtype uint16
		ttl   uint32
	}{
		{"web.service.consul.", dns.TypeSRV, 30},
		{"web6.service.consul.", dns.TypeAAAA, 20},
		{"db.service.consul.", dns.TypeA, 11},
		{"api.service.consul.", dns.TypeA, 5},
		{"n1.node.consul.", dns.TypeA, 7},
		{"0a000001.addr.consul.", dns.TypeA, 7},
	} {
		out := ask(t, f.s, p, query(tc.qname, tc.qtype, 0), UDP)
		if len(out.reply.Answer) == 0 {
			t.Fatalf("%s: no answer", tc.qname)
		}
		for _, rr := range append(out.reply.Answer, out.reply.Extra...) {
			if rr.Header().Ttl != tc.ttl {
				t.Errorf("%s: %v has TTL %d, want %d", tc.qname, rr, rr.Header().Ttl, tc.ttl)
			}
		}
	}
	out := ask(t, f.s, mustPolicy(t, DefaultConfig()), query("web.service.consul.", dns.TypeA, 0), UDP)
	if ttl := out.reply.Answer[0].Header().Ttl; ttl != 0 {
		t.Errorf("default service TTL %d, want 0", ttl)
	}
}

func TestAnswer_HeaderFlags(t *testing.T) {
	f := standardFixture(t)
	out := ask(t, f.s, mustPolicy(t, DefaultConfig()), query("web.service.consul.", dns.TypeA, 0), UDP)
	if !out.reply.Authoritative || out.reply.RecursionAvailable {
		t.Errorf("AA %v RA %v, want AA without recursors and no RA", out.reply.Authoritative, out.reply.RecursionAvailable)
	}
	cfg := DefaultConfig()
	cfg.Recursors = []string{"127.0.0.1"}
	out = ask(t, f.s, mustPolicy(t, cfg), query("web.service.consul.", dns.TypeA, 0), UDP)
	if !out.reply.RecursionAvailable {
		t.Errorf("RA not set with recursors")
	}
}

func TestAnswer_ShufflesInstances(t *testing.T) {
	f := newFixture(t)
	for i := range 5 {
		name := "n" + string(rune('a'+i))
		f.node(name, "10.0.1."+string(rune('1'+i)), nil)
		f.service(name, catalogService("web", 80), "")
	}
	p := mustPolicy(t, DefaultConfig())
	firsts := map[string]bool{}
	for seed := range uint64(50) {
		out := answer(query("web.service.consul.", dns.TypeA, 1232), f.s, nil, p, newRand(seed), UDP, testSerial)
		if len(out.reply.Answer) != 5 {
			t.Fatalf("got %d answers, want 5", len(out.reply.Answer))
		}
		firsts[out.reply.Answer[0].String()] = true
	}
	if len(firsts) < 3 {
		t.Errorf("50 seeds put only %d distinct addresses first; answers are not shuffled", len(firsts))
	}
}

func TestAnswer_MalformedQueries(t *testing.T) {
	f := standardFixture(t)
	p := mustPolicy(t, DefaultConfig())
	noQuestion := query("web.service.consul.", dns.TypeA, 0)
	noQuestion.Question = nil
	twoQuestions := query("web.service.consul.", dns.TypeA, 0)
	twoQuestions.Question = append(twoQuestions.Question, twoQuestions.Question[0])
	isResponse := query("web.service.consul.", dns.TypeA, 0)
	isResponse.Response = true
	update := query("web.service.consul.", dns.TypeA, 0)
	update.Opcode = dns.OpcodeUpdate
	chaos := query("web.service.consul.", dns.TypeA, 0)
	chaos.Question[0].Qclass = dns.ClassCHAOS
	ednsV1 := query("web.service.consul.", dns.TypeA, 1232)
	ednsV1.IsEdns0().SetVersion(1)
	for _, tc := range []struct {
		name  string
		req   *dns.Msg
		rcode int
	}{
		{"no question", noQuestion, dns.RcodeFormatError},
		{"two questions", twoQuestions, dns.RcodeFormatError},
		{"response bit", isResponse, dns.RcodeFormatError},
		{"update opcode", update, dns.RcodeNotImplemented},
		{"chaos class", chaos, dns.RcodeNotImplemented},
		{"EDNS version 1", ednsV1, dns.RcodeBadVers},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := ask(t, f.s, p, tc.req, UDP)
			if out.reply.Rcode != tc.rcode || len(out.reply.Answer) != 0 {
				t.Fatalf("rcode %s with %d answers, want %s and none", dns.RcodeToString[out.reply.Rcode],
					len(out.reply.Answer), dns.RcodeToString[tc.rcode])
			}
			wire, _ := out.reply.Pack()
			var back dns.Msg
			if err := back.Unpack(wire); err != nil || back.Rcode != tc.rcode {
				t.Fatalf("packed reply decodes to rcode %s (%v)", dns.RcodeToString[back.Rcode], err)
			}
		})
	}
}

func TestParseName_Forms(t *testing.T) {
	for _, tc := range []struct {
		rest string
		want parsedName
	}{
		{"web.service", parsedName{kind: kindService, service: "web"}},
		{"a.b.web.service.dc2", parsedName{kind: kindService, service: "web", tag: "a.b", dc: "dc2"}},
		{"_web._tcp.service", parsedName{kind: kindService, service: "web"}},
		{"_web._v1.service.dc1.dc", parsedName{kind: kindService, service: "web", tag: "v1", dc: "dc1"}},
		{"_web._tcp", parsedName{kind: kindService, service: "web"}},
		{"_web._tcp.dc3", parsedName{kind: kindService, service: "web", dc: "dc3"}},
		{"my.host.node", parsedName{kind: kindNode, node: "my.host"}},
		{"foo.service.node", parsedName{kind: kindNode, node: "foo.service"}},
		{"0a000001.addr.dc1", parsedName{kind: kindAddr, addr: "0a000001", dc: "dc1"}},
		{"x.0a000001.addr", parsedName{kind: kindInvalid}},
		{"", parsedName{kind: kindApex}},
		{"node", parsedName{kind: kindInvalid}},
		{"web.service.dc1.xx", parsedName{kind: kindInvalid}},
		{"_web", parsedName{kind: kindInvalid}},
	} {
		got := parseName(tc.rest, "consul.")
		tc.want.domain = "consul."
		if tc.want.kind == kindInvalid {
			tc.want = parsedName{domain: "consul."}
		}
		if got != tc.want {
			t.Errorf("parseName(%q) = %+v, want %+v", tc.rest, got, tc.want)
		}
	}
}

func TestConfig_ValidateNamesTheBadField(t *testing.T) {
	for _, tc := range []struct {
		field string
		cfg   Config
	}{
		{"Domain", Config{Domain: "bad domain..x"}},
		{"Datacenter", Config{Datacenter: "dc.1"}},
		{"NodeTTL", Config{NodeTTL: -1}},
		{"ServiceTTL", Config{ServiceTTL: map[string]time.Duration{"web": -time.Second}}},
		{"UDPAnswerLimit", Config{UDPAnswerLimit: -1}},
		{"Recursors", Config{Recursors: []string{"1.2.3.4:x:y"}}},
	} {
		err := tc.cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("Validate(%+v) = %v, want an error naming %s", tc.cfg, err, tc.field)
		}
	}
	if err := DefaultConfig().Validate(); err != nil {
		t.Errorf("DefaultConfig invalid: %v", err)
	}
}

// TestAnswer_LongAndEscapedNodeMeta: meta values may be longer than a TXT
// character-string (255 bytes) and may hold backslashes; the TXT record
// carries them exactly.
func TestAnswer_LongAndEscapedNodeMeta(t *testing.T) {
	f := newFixture(t)
	long := strings.Repeat("x", 400) + `\end`
	f.node("m", "10.0.0.9", map[string]string{"k": long})
	out := ask(t, f.s, mustPolicy(t, DefaultConfig()), query("m.node.consul.", dns.TypeTXT, 4096), UDP)
	wire, err := out.reply.Pack()
	if err != nil {
		t.Fatal(err)
	}
	var back dns.Msg
	if err := back.Unpack(wire); err != nil || len(back.Answer) != 1 {
		t.Fatalf("unpack: %v, %d answers", err, len(back.Answer))
	}
	txt := back.Answer[0].(*dns.TXT)
	var raw []byte
	for _, part := range txt.Txt {
		// Unpacking escapes backslashes again (presentation format).
		raw = append(raw, strings.ReplaceAll(part, `\\`, `\`)...)
	}
	if string(raw) != "k="+long {
		t.Errorf("TXT carries %q, want %q", raw, "k="+long)
	}
}

// TestAnswer_NodeNamesThatAreNotDNSNamesAreSkipped: a node name with a
// 70-byte label cannot be an SRV target; its instance is left out of SRV
// answers (A answers still list its address) instead of making the whole
// reply unpackable.
func TestAnswer_NodeNamesThatAreNotDNSNamesAreSkipped(t *testing.T) {
	f := newFixture(t)
	long := strings.Repeat("n", 70)
	f.node(long, "10.0.0.7", nil)
	f.node("ok", "10.0.0.8", nil)
	f.service(long, catalogService("web", 80), "")
	f.service("ok", catalogService("web", 80), "")
	p := mustPolicy(t, DefaultConfig())
	srv := ask(t, f.s, p, query("web.service.consul.", dns.TypeSRV, 0), UDP).reply
	sameSet(t, "SRV", rrStrings(srv.Answer), []string{"SRV 1 1 80 ok.node.dc1.consul."})
	a := ask(t, f.s, p, query("web.service.consul.", dns.TypeA, 0), UDP).reply
	sameSet(t, "A", rrStrings(a.Answer), []string{"A 10.0.0.7", "A 10.0.0.8"})
	ptr := ask(t, f.s, p, query("7.0.0.10.in-addr.arpa.", dns.TypePTR, 0), UDP).reply
	if len(ptr.Answer) != 0 {
		t.Errorf("PTR to an invalid name: %v", ptr.Answer)
	}
}
