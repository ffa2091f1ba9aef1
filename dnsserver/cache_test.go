package dnsserver

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"roster/catalog"
	"roster/internal/testkit"
)

// TestCache_MatchesUncachedAnswersUnderRandomChanges applies random catalog
// changes (registrations, address moves, service and node health flips,
// deregistrations) and after each one asks every question both through the
// cache and straight from the catalog: the answers must be the same sets.
func TestCache_MatchesUncachedAnswersUnderRandomChanges(t *testing.T) {
	rng := testkit.Rand(t)
	f := newFixture(t)
	nodes := []string{"a", "b", "c", "d"}
	for i, n := range nodes {
		f.node(n, fmt.Sprintf("10.0.0.%d", i+1), nil)
	}
	p := mustPolicy(t, DefaultConfig())
	cache := newLookupCache()
	questions := []string{"web.service.consul.", "db.service.consul.", "v1.web.service.consul.", "_db._tcp.service.consul.",
		"1.1.0.10.in-addr.arpa.", "2.0.9.10.in-addr.arpa.", "a.node.consul.", "D.node.consul."}
	steps := testkit.ChaosRuns(300)
	var trace []string
	for step := range steps {
		trace = append(trace, randomChange(f, rng, nodes))
		for _, qname := range questions {
			qtypes := []uint16{dns.TypeA, dns.TypeSRV}
			switch {
			case isReverse(qname):
				qtypes = []uint16{dns.TypePTR}
			case strings.Contains(qname, ".node."):
				qtypes = []uint16{dns.TypeA, dns.TypeANY}
			}
			for _, qtype := range qtypes {
				req := query(qname, qtype, 4096)
				cached := answer(req, f.s, cache, p, newRand(1), TCP, testSerial).reply
				fresh := answer(req, f.s, nil, p, newRand(1), TCP, testSerial).reply
				if !sameAnswer(cached, fresh) {
					t.Fatalf("step %d %s %s: cached\n%v\nfresh\n%v\ntrace: %q", step, qname,
						dns.TypeToString[qtype], cached, fresh, trace)
				}
			}
		}
	}
}

// randomChange applies one random catalog change and describes it.
func randomChange(f *fixture, rng *rand.Rand, nodes []string) string {
	node := nodes[rng.IntN(len(nodes))]
	svc := []string{"web", "db"}[rng.IntN(2)]
	statuses := []string{catalog.HealthPassing, catalog.HealthWarning, catalog.HealthCritical}
	status := statuses[rng.IntN(len(statuses))]
	switch rng.IntN(5) {
	case 0:
		tags := []string{"v1"}
		if rng.IntN(2) == 0 {
			tags = nil
		}
		f.service(node, catalog.NodeService{Service: svc, Port: 1000 + rng.IntN(3), Tags: tags}, status)
		return fmt.Sprintf("register %s on %s %s tags %v", svc, node, status, tags)
	case 1:
		addr := fmt.Sprintf("10.9.0.%d", rng.IntN(3))
		f.service(node, catalog.NodeService{Service: svc, Port: 2000, Address: addr}, "")
		return fmt.Sprintf("register %s on %s at %s", svc, node, addr)
	case 2:
		f.nodeStatus(node, status)
		return fmt.Sprintf("serfHealth %s %s", node, status)
	case 3:
		f.apply(&catalog.DeregisterRequest{Node: node, ServiceID: svc})
		return fmt.Sprintf("deregister %s on %s", svc, node)
	default:
		addr := fmt.Sprintf("10.0.1.%d", rng.IntN(5))
		meta := map[string]string{"zone": fmt.Sprint(rng.IntN(3))}
		f.apply(&catalog.RegisterRequest{Node: catalog.Node{Node: node, Address: addr, Meta: meta}})
		return fmt.Sprintf("move %s to %s meta %v", node, addr, meta)
	}
}

func sameAnswer(a, b *dns.Msg) bool {
	set := func(m *dns.Msg) []string {
		out := append(rrStrings(m.Answer), rrStrings(m.Extra)...)
		out = append(out, rrStrings(m.Ns)...)
		slices.Sort(out)
		return out
	}
	return a.Rcode == b.Rcode && slices.Equal(set(a), set(b))
}

func TestCache_SerfHealthFlipIsSeenAtOnce(t *testing.T) {
	f := standardFixture(t)
	p := mustPolicy(t, DefaultConfig())
	cache := newLookupCache()
	ask := func() []string {
		return rrStrings(answer(query("web.service.consul.", dns.TypeA, 0), f.s, cache, p, newRand(1), UDP, testSerial).reply.Answer)
	}
	sameSet(t, "before", ask(), []string{"A 10.0.0.1", "A 10.0.0.2"})
	f.nodeStatus("n1", catalog.HealthCritical)
	sameSet(t, "n1 failed", ask(), []string{"A 10.0.0.2"})
	f.nodeStatus("n3", catalog.HealthPassing)
	sameSet(t, "n3 back", ask(), []string{"A 10.0.0.2", "A 10.0.0.3"})
}
