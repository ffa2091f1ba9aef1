package dnsserver

import (
	"context"
	"testing"
	"time"

	"github.com/miekg/dns"

	"roster/catalog"
)

// FuzzReply feeds random wire messages to the whole handler (Server.Reply,
// on both transports, with alt domain, TTLs and truncation enabled): it must
// never panic and must always produce a well-formed reply to the question
// asked. Messages miekg/dns cannot unpack never reach the handler (the
// server answers FORMERR or drops them), so they are skipped here.
func FuzzReply(f *testing.F) {
	for _, wire := range fuzzSeeds(f) {
		f.Add(wire, false)
	}
	s := fuzzServer(f)
	f.Fuzz(func(t *testing.T, wire []byte, tcp bool) {
		req := new(dns.Msg)
		if err := req.Unpack(wire); err != nil {
			return
		}
		tr := UDP
		if tcp {
			tr = TCP
		}
		reply := s.Reply(context.Background(), req, tr)
		checkWellFormed(t, req, reply, tr)
	})
}

// fuzzSeeds are the packed questions both wire fuzzers start from.
func fuzzSeeds(f *testing.F) [][]byte {
	var out [][]byte
	for _, q := range []struct {
		name  string
		qtype uint16
		edns  uint16
	}{
		{"web.service.consul.", dns.TypeA, 0},
		{"_web._tcp.service.dc1.consul.", dns.TypeSRV, 1232},
		{"v1.web.service.alt.", dns.TypeANY, 0},
		{"n1.node.dc2.dc.consul.", dns.TypeTXT, 4096},
		{"0a000001.addr.consul.", dns.TypeAAAA, 0},
		{"1.0.0.10.in-addr.arpa.", dns.TypePTR, 0},
		{"consul.", dns.TypeSOA, 512},
		{"example.com.", dns.TypeA, 0},
		{"big.service.consul.", dns.TypeSRV, 600},
	} {
		wire, err := query(q.name, q.qtype, q.edns).Pack()
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, wire)
	}
	return out
}

// fuzzServer answers from the standard catalog plus a 20-instance
// service, with alt domain, TTLs and truncation enabled.
func fuzzServer(f *testing.F) *Server {
	fx := standardFixture(f)
	for i := range 20 {
		name := "big" + string(rune('a'+i))
		fx.node(name, "10.2.0."+string(rune('1'+i%9)), nil)
		fx.service(name, catalogService("big", 9000+i), "")
	}
	cfg := DefaultConfig()
	cfg.AltDomain = "alt."
	cfg.EnableTruncate = true
	cfg.ServiceTTL = map[string]time.Duration{"*": time.Second}
	s, err := New(cfg, Deps{View: fx.s, Seed: 1})
	if err != nil {
		f.Fatal(err)
	}
	return s
}

// FuzzUDPPacket feeds random packets to the UDP handler itself
// (udpReader.answerPacket, what the read loop calls with each packet),
// one reader for all inputs as on a live socket. It must never panic;
// each packet is either dropped (an unreadable header, counted as
// malformed, or a response), or answered with a well-formed reply to its
// ID within the client's size limit (FORMERR/NOTIMP for what cannot be
// parsed or accepted), or handed to the slow path, whose reply must be
// well-formed too.
func FuzzUDPPacket(f *testing.F) {
	for _, wire := range fuzzSeeds(f) {
		f.Add(wire)
	}
	f.Add([]byte{0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 5, 'a', 'b'})
	f.Add([]byte{0x12, 0x34})
	s := fuzzServer(f)
	r := s.newUDPReader()
	f.Fuzz(func(t *testing.T, pkt []byte) {
		malformed := s.Stats().Malformed
		wire, slow := r.answerPacket(pkt)
		dh, headerOK := readHeader(pkt)
		switch {
		case !headerOK:
			if wire != nil || slow != nil || s.Stats().Malformed != malformed+1 {
				t.Fatalf("short packet not dropped and counted: reply %x, slow %v", wire, slow)
			}
		case dh.Bits&0x8000 != 0:
			if wire != nil || slow != nil {
				t.Fatalf("a response was answered")
			}
		case slow != nil:
			checkWellFormed(t, slow, s.Reply(context.Background(), slow, UDP), UDP)
		case wire == nil:
			t.Fatalf("query %x dropped", pkt)
		default:
			checkWire(t, pkt, dh, wire)
		}
	})
}

// checkWire checks a packed UDP reply to pkt: it unpacks, answers dh's ID
// as a response, and, when the request parses and is accepted, is a
// well-formed reply within the client's limit; otherwise it is FORMERR or
// NOTIMP.
func checkWire(t *testing.T, pkt []byte, dh dns.Header, wire []byte) {
	t.Helper()
	var reply dns.Msg
	if err := reply.Unpack(wire); err != nil {
		t.Fatalf("reply does not unpack: %v", err)
	}
	if !reply.Response || reply.Id != dh.Id {
		t.Fatalf("reply is not a response to id %d: %v", dh.Id, &reply)
	}
	var req dns.Msg
	if req.Unpack(pkt) != nil || dns.DefaultMsgAcceptFunc(dh) != dns.MsgAccept {
		if reply.Rcode != dns.RcodeFormatError && reply.Rcode != dns.RcodeNotImplemented {
			t.Fatalf("rejected request got rcode %s", dns.RcodeToString[reply.Rcode])
		}
		return
	}
	if len(wire) > sizeLimit(&req, UDP) {
		t.Fatalf("reply %d bytes, limit %d", len(wire), sizeLimit(&req, UDP))
	}
	if _, known := dns.RcodeToString[reply.Rcode]; !known {
		t.Fatalf("unknown rcode %d", reply.Rcode)
	}
	if len(req.Question) == 1 && (len(reply.Question) != 1 || reply.Question[0] != req.Question[0]) {
		t.Fatalf("question not echoed: %v vs %v", reply.Question, req.Question)
	}
}

// checkWellFormed: the reply packs within the transport's limit, answers
// the request's ID as a response, carries a known rcode and echoes the
// question when there was exactly one.
func checkWellFormed(t *testing.T, req, reply *dns.Msg, tr Transport) {
	t.Helper()
	out, err := reply.Pack()
	if err != nil {
		t.Fatalf("reply does not pack: %v\nrequest %v\nreply %v", err, req, reply)
	}
	if len(out) > sizeLimit(req, tr) && req.Opcode == dns.OpcodeQuery && len(req.Question) == 1 {
		t.Fatalf("reply %d bytes, limit %d", len(out), sizeLimit(req, tr))
	}
	if !reply.Response || reply.Id != req.Id {
		t.Fatalf("reply is not a response to id %d: %v", req.Id, reply)
	}
	if _, known := dns.RcodeToString[reply.Rcode]; !known {
		t.Fatalf("unknown rcode %d", reply.Rcode)
	}
	if len(req.Question) == 1 && (len(reply.Question) != 1 || reply.Question[0] != req.Question[0]) {
		t.Fatalf("question not echoed: %v vs %v", reply.Question, req.Question)
	}
	var back dns.Msg
	if err := back.Unpack(out); err != nil {
		t.Fatalf("packed reply does not unpack: %v", err)
	}
}

// FuzzCatalogData registers a node and a service from fuzzed names,
// addresses, tags and meta, then asks every question form about them: any
// catalog content must give replies that pack (a reply that cannot be
// packed reaches no client).
func FuzzCatalogData(f *testing.F) {
	f.Add("n1", "10.0.0.1", "web", "v1", "", "rack", "r1", uint16(80))
	f.Add("host.with.dots", "2001:db8::1", "api", "a.b", "api.example.com", "rfc1035-x", `back\slash`, uint16(443))
	f.Add("n", "not an address", "s", "", "10.1.1.1", "k", "v", uint16(0))
	f.Fuzz(func(t *testing.T, node, addr, service, tag, svcAddr, metaKey, metaValue string, port uint16) {
		fx := newFixture(t)
		res := fx.s.ApplyCommand(1, &catalog.RegisterRequest{
			Node:    catalog.Node{Node: node, Address: addr, Meta: map[string]string{metaKey: metaValue}},
			Service: &catalog.NodeService{Service: service, Tags: []string{tag}, Address: svcAddr, Port: int(port)},
		})
		if res.Err != nil {
			return // the catalog refused it
		}
		s, err := New(DefaultConfig(), Deps{View: fx.s, Seed: 1})
		if err != nil {
			t.Fatal(err)
		}
		for _, qname := range []string{node + ".node.consul.", service + ".service.consul.",
			tag + "." + service + ".service.consul.", "_" + service + "._tcp.service.consul.", "consul.",
			"1.0.0.10.in-addr.arpa."} {
			if _, ok := dns.IsDomainName(qname); !ok {
				continue
			}
			for _, qtype := range []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeSRV, dns.TypeTXT, dns.TypeANY, dns.TypeSOA} {
				for _, tr := range []Transport{UDP, TCP} {
					req := query(dns.Fqdn(qname), qtype, 0)
					checkWellFormed(t, req, s.Reply(context.Background(), req, tr), tr)
				}
			}
		}
	})
}
