package dnsserver

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"roster/catalog"
)

// fixture is a catalog.Store filled by applying catalog commands directly,
// as raft would.
type fixture struct {
	t   testing.TB
	s   *catalog.Store
	idx uint64
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	s, err := catalog.New(catalog.Config{})
	if err != nil {
		t.Fatalf("catalog.New: %v", err)
	}
	return &fixture{t: t, s: s}
}

func (f *fixture) apply(cmd catalog.Command) {
	f.t.Helper()
	f.idx++
	if res := f.s.ApplyCommand(f.idx, cmd); res.Err != nil {
		f.t.Fatalf("apply %T: %v", cmd, res.Err)
	}
}

// node registers a node with a passing serfHealth check, as the leader does
// for a live member (spec section 10.2).
func (f *fixture) node(name, addr string, meta map[string]string) {
	f.t.Helper()
	f.apply(&catalog.RegisterRequest{
		Node:   catalog.Node{Node: name, Address: addr, Datacenter: "dc1", Meta: meta},
		Checks: []catalog.HealthCheck{{CheckID: "serfHealth", Name: "Serf Health Status", Status: catalog.HealthPassing}},
	})
}

// nodeStatus sets the node's serfHealth check.
func (f *fixture) nodeStatus(name, status string) {
	f.t.Helper()
	f.apply(&catalog.RegisterRequest{Node: catalog.Node{Node: name}, SkipNodeUpdate: true,
		Checks: []catalog.HealthCheck{{CheckID: "serfHealth", Name: "Serf Health Status", Status: status}}})
}

// service registers an instance on an existing node, with one service
// check in status (none if status is "").
func (f *fixture) service(node string, svc catalog.NodeService, status string) {
	f.t.Helper()
	req := &catalog.RegisterRequest{Node: catalog.Node{Node: node}, SkipNodeUpdate: true, Service: &svc}
	if svc.ID == "" {
		svc.ID = svc.Service
	}
	if status != "" {
		req.Checks = []catalog.HealthCheck{{CheckID: "service:" + svc.ID, ServiceID: svc.ID, Status: status}}
	}
	f.apply(req)
}

// standardFixture is the catalog most table tests use:
//
//	n1 10.0.0.1 meta rack=r1, rfc1035-raw=hello   web(80, primary,v1) db(5432 @10.1.1.1) consul(8300)
//	n2 10.0.0.2                                    web(81, v1, warning) api(443 @api.example.com) crit(1, critical)
//	n3 10.0.0.3 serfHealth critical                web(82, primary)
//	n6 2001:db8::6                                 web6(86)
//	h1 host1.example.com                           hosted(90)
func standardFixture(t testing.TB) *fixture {
	f := newFixture(t)
	f.node("n1", "10.0.0.1", map[string]string{"rack": "r1", "rfc1035-raw": "hello"})
	f.node("n2", "10.0.0.2", nil)
	f.node("n3", "10.0.0.3", nil)
	f.node("n6", "2001:db8::6", nil)
	f.node("h1", "host1.example.com", nil)
	f.service("n1", catalog.NodeService{Service: "web", Port: 80, Tags: []string{"primary", "v1"}, Weights: catalog.Weights{Passing: 10, Warning: 2}}, catalog.HealthPassing)
	f.service("n2", catalog.NodeService{Service: "web", Port: 81, Tags: []string{"v1"}, Weights: catalog.Weights{Passing: 10, Warning: 2}}, catalog.HealthWarning)
	f.service("n3", catalog.NodeService{Service: "web", Port: 82, Tags: []string{"primary"}}, catalog.HealthPassing)
	f.nodeStatus("n3", catalog.HealthCritical)
	f.service("n1", catalog.NodeService{Service: "db", Port: 5432, Address: "10.1.1.1"}, "")
	f.service("n1", catalog.NodeService{Service: "consul", Port: 8300}, "")
	f.service("n2", catalog.NodeService{Service: "api", Port: 443, Address: "api.example.com"}, catalog.HealthPassing)
	f.service("n2", catalog.NodeService{Service: "crit", Port: 1}, catalog.HealthCritical)
	f.service("n6", catalog.NodeService{Service: "web6", Port: 86}, "")
	f.service("h1", catalog.NodeService{Service: "hosted", Port: 90}, "")
	return f
}

// mustPolicy compiles cfg (on top of DefaultConfig's stale setting).
func mustPolicy(t testing.TB, cfg Config) *policy {
	t.Helper()
	p, err := compile(cfg)
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	return p
}

// query builds a question; edns > 0 adds an OPT with that payload size.
func query(name string, qtype uint16, edns uint16) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.Id = 4242
	if edns > 0 {
		m.SetEdns0(edns, false)
	}
	return m
}

const testSerial = 1_700_000_000

// ask runs the pure function with a fixed seed.
func ask(t testing.TB, view catalog.Reader, p *policy, req *dns.Msg, tr Transport) outcome {
	t.Helper()
	out := answer(req, view, nil, p, rand.New(rand.NewPCG(1, 2)), tr, testSerial)
	if out.reply == nil {
		t.Fatalf("answer returned no reply")
	}
	if _, err := out.reply.Pack(); err != nil {
		t.Fatalf("reply does not pack: %v\n%v", err, out.reply)
	}
	return out
}

// rrStrings renders records without the header's TTL variations, sorted
// as they come: "A 10.0.0.1", "SRV 1 10 80 n1.node.dc1.consul.".
func rrStrings(rrs []dns.RR) []string {
	var out []string
	for _, rr := range rrs {
		if rr.Header().Rrtype == dns.TypeOPT {
			continue
		}
		h := rr.Header()
		full := rr.String()
		prefix := h.String()
		out = append(out, fmt.Sprintf("%s %s", dns.TypeToString[h.Rrtype], strings.TrimPrefix(full, prefix)))
	}
	return out
}

func catalogService(name string, port int) catalog.NodeService {
	return catalog.NodeService{Service: name, Port: port}
}

func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)) }
