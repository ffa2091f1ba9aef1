package agent

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/miekg/dns"

	"roster/catalog"
	"roster/internal/testkit"
	"roster/rpc"
)

// httpRegister registers node with one "web" instance through the HTTP
// API (PUT /v1/catalog/register), with a service check in status.
func httpRegister(t *testing.T, a *Agent, node, addr, status string) {
	t.Helper()
	body := fmt.Sprintf(`{"Node":%q,"Address":%q,"Service":{"Service":"web","Port":8080,"Tags":["v1"]},
		"Check":{"CheckID":"web-check","Name":"web","Status":%q,"ServiceID":"web"}}`, node, addr, status)
	req, _ := http.NewRequest("PUT", "http://"+a.HTTPAddrs()[0]+"/v1/catalog/register", bytes.NewBufferString(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("register %s: %s", node, resp.Status)
	}
}

func exchange(t *testing.T, net, addr, name string, qtype uint16) *dns.Msg {
	t.Helper()
	c := &dns.Client{Net: net, Timeout: 5 * time.Second}
	r, _, err := c.Exchange(new(dns.Msg).SetQuestion(name, qtype), addr)
	if err != nil {
		t.Fatalf("%s %s %s: %v", net, name, dns.TypeToString[qtype], err)
	}
	return r
}

// The integration check: services registered over HTTP are
// answered over real UDP and TCP the way dig sees them.
func TestAgent_DNSAnswersServicesRegisteredThroughHTTPOverUDPAndTCP(t *testing.T) {
	a := startAgent(t, testConfig(t))
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(a.Ports().DNS))
	for i := 1; i <= 5; i++ {
		httpRegister(t, a, fmt.Sprintf("web%d", i), fmt.Sprintf("10.0.0.%d", i), catalog.HealthPassing)
	}
	httpRegister(t, a, "sick", "10.0.0.99", catalog.HealthCritical)

	// UDP without EDNS: Consul's 3-answer cap, healthy instances only.
	r := exchange(t, "udp", addr, "web.service.consul.", dns.TypeA)
	if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 3 || !r.Authoritative {
		t.Fatalf("UDP A: rcode %d, %d answers, aa=%v", r.Rcode, len(r.Answer), r.Authoritative)
	}
	// TCP: every healthy instance, never the critical one.
	r = exchange(t, "tcp", addr, "web.service.consul.", dns.TypeA)
	if len(r.Answer) != 5 {
		t.Fatalf("TCP A: %d answers, want 5: %v", len(r.Answer), r.Answer)
	}
	for _, rr := range r.Answer {
		if rr.(*dns.A).A.String() == "10.0.0.99" {
			t.Fatal("a critical instance was answered")
		}
	}
	// SRV names the node and carries its address in the additional section.
	r = exchange(t, "tcp", addr, "_web._v1.service.consul.", dns.TypeSRV)
	if len(r.Answer) != 5 || len(r.Extra) < 5 || r.Answer[0].(*dns.SRV).Port != 8080 {
		t.Fatalf("SRV: %v / extra %v", r.Answer, r.Extra)
	}
	// Unknown names: NXDOMAIN with the SOA in the authority section.
	r = exchange(t, "udp", addr, "nosuch.service.consul.", dns.TypeA)
	if r.Rcode != dns.RcodeNameError || len(r.Ns) != 1 || r.Ns[0].Header().Rrtype != dns.TypeSOA {
		t.Fatalf("unknown service: rcode %d, authority %v", r.Rcode, r.Ns)
	}
}

// A client agent holds no catalog: its DNS port asks a server over RPC,
// and a name in another datacenter travels on to a server there.
func TestCluster_ClientAndOtherDatacenterDNSQuestionsAreForwarded(t *testing.T) {
	tc := newTestCluster(t, 2)
	for i := range tc.cfgs {
		tc.cfgs[i].BootstrapExpect, tc.cfgs[i].Bootstrap, tc.cfgs[i].RetryJoin = 0, true, nil
	}
	tc.cfgs[1].Datacenter = "dc2"
	tc.cfgs[1].StartJoinWAN = []string{wanOf(0)}
	tc.cfgs[1].Ports.DNS = 0 // served, on the kernel's pick
	tc.startAll()
	dc2 := tc.agents[1]
	reg := &rpc.RegisterRequest{Register: catalog.RegisterRequest{
		Node:    catalog.Node{Node: "far", Address: "10.9.9.9"},
		Service: &catalog.NodeService{ID: "db", Service: "db", Port: 5432},
	}}
	testkit.WaitFor(t, 10*time.Second, "dc2 to take a registration", func() error {
		var out struct{}
		return dc2.RPC(context.Background(), "Catalog.Register", reg, &out)
	})

	ccfg := tc.clientConfig("c1")
	ccfg.Ports.DNS = 0
	c := tc.add(ccfg)
	caddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(tc.cfgs[c].Ports.DNS))
	testkit.WaitFor(t, 10*time.Second, "the client to answer consul.service.consul via its server", func() error {
		r := exchange(t, "udp", caddr, "consul.service.consul.", dns.TypeA)
		if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != "127.0.0.1" {
			return fmt.Errorf("rcode %d answers %v", r.Rcode, r.Answer)
		}
		return nil
	})
	testkit.WaitFor(t, 10*time.Second, "db.service.dc2.consul through dc1", func() error {
		r := exchange(t, "udp", caddr, "db.service.dc2.consul.", dns.TypeA)
		if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != "10.9.9.9" {
			return fmt.Errorf("rcode %d answers %v", r.Rcode, r.Answer)
		}
		return nil
	})
	if r := exchange(t, "udp", caddr, "db.service.dc9.consul.", dns.TypeA); r.Rcode != dns.RcodeServerFailure {
		t.Fatalf("unknown datacenter: rcode %d, want SERVFAIL", r.Rcode)
	}
}
