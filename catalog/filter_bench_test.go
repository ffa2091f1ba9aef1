package catalog

import (
	"fmt"
	"testing"
)

// filterBenchEntry is shaped like a /v1/health/service result row.
type filterBenchEntry struct {
	Node    filterBenchNode
	Service filterBenchService
	Checks  []filterTestCheck
}

type filterBenchNode struct {
	ID, Node, Address, Datacenter string
	Meta                          map[string]string
	TaggedAddresses               map[string]string
}

type filterBenchService struct {
	ID, Service, Address string
	Tags                 []string
	Meta                 map[string]string
	Port                 int
	EnableTagOverride    bool
}

func filterBenchEntries(n int) []filterBenchEntry {
	envs := []string{"prod", "staging", "dev"}
	statuses := []string{"passing", "passing", "warning", "critical"}
	out := make([]filterBenchEntry, n)
	for i := range out {
		out[i] = filterBenchEntry{
			Node: filterBenchNode{
				ID: fmt.Sprintf("id-%d", i), Node: fmt.Sprintf("node-%d", i),
				Address: fmt.Sprintf("10.0.%d.%d", i/256, i%256), Datacenter: "dc1",
				Meta: map[string]string{"env": envs[i%3], "rack": fmt.Sprintf("r%d", i%20)},
			},
			Service: filterBenchService{
				ID: fmt.Sprintf("web-%d", i), Service: []string{"web", "api", "db"}[i%3],
				Tags: []string{"v1", []string{"primary", "secondary"}[i%2]},
				Meta: map[string]string{"version": "1.2"}, Port: 8000 + i%10,
			},
			Checks: []filterTestCheck{
				{CheckID: "serfHealth", Status: "passing"},
				{CheckID: "service:web", Status: statuses[i%4]},
			},
		}
	}
	return out
}

const filterBenchExpr = `Service.Service == web and Service.Tags contains primary and ` +
	`Node.Meta.env == prod and not Checks.Status == critical and Service.Port != 8005`

// BenchmarkFilterSlice_1000ServiceEntries measures evaluation only: the
// filter is compiled and planned once, as for one request.
func BenchmarkFilterSlice_1000ServiceEntries(b *testing.B) {
	const n = 1000
	entries := filterBenchEntries(n)
	f, err := CompileFilter(filterBenchExpr)
	if err != nil {
		b.Fatal(err)
	}
	kept := 0
	b.ReportAllocs()
	for b.Loop() {
		out, err := FilterSlice(f, entries)
		if err != nil {
			b.Fatal(err)
		}
		kept = len(out)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/item")
	b.ReportMetric(float64(kept), "kept")
}

// BenchmarkFilterRequest_1000ServiceEntries is what one HTTP request pays:
// compile, validate against the type, filter 1,000 entries.
func BenchmarkFilterRequest_1000ServiceEntries(b *testing.B) {
	const n = 1000
	entries := filterBenchEntries(n)
	b.ReportAllocs()
	for b.Loop() {
		f, err := CompileFilter(filterBenchExpr)
		if err != nil {
			b.Fatal(err)
		}
		if err := f.Validate(filterBenchEntry{}); err != nil {
			b.Fatal(err)
		}
		if _, err := FilterSlice(f, entries); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/item")
}

func BenchmarkCompileFilter(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := CompileFilter(filterBenchExpr); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFilterMatch_Boxed measures Match on an interface value, the
// path a caller without FilterSlice takes.
func BenchmarkFilterMatch_Boxed(b *testing.B) {
	entries := filterBenchEntries(1)
	f, err := CompileFilter(filterBenchExpr)
	if err != nil {
		b.Fatal(err)
	}
	v := any(&entries[0])
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.Match(v); err != nil {
			b.Fatal(err)
		}
	}
}
