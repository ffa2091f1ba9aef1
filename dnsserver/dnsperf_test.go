package dnsserver

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// BenchmarkDNSPerf drives the server over real UDP with dnsperf (Debian
// package dnsperf; skipped when it is not installed) for random services
// of the 1,000 × 3 catalog, and reports its queries per second, lost
// percentage and latencies (average, max, and the p50 and p99 of every
// answered query). dnsperf shares the machine's CPUs with the
// server, as in the target (≥ 31,000 qps for A on 2 cores).
// ROSTER_DNSPERF_SECS sets the run length (default 10).
func BenchmarkDNSPerf(b *testing.B) {
	bin, err := exec.LookPath("dnsperf")
	if err != nil {
		b.Skip("dnsperf not installed (apt-get install dnsperf)")
	}
	secs := 10
	if v, err := strconv.Atoi(os.Getenv("ROSTER_DNSPERF_SECS")); err == nil && v > 0 {
		secs = v
	}
	view := benchCatalog(b)
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	s, err := New(DefaultConfig(), Deps{View: view})
	if err != nil {
		b.Fatal(err)
	}
	if err := s.Serve(pc, nil); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	port := pc.LocalAddr().(*net.UDPAddr).Port
	for _, qt := range []uint16{dns.TypeA, dns.TypeSRV} {
		b.Run(dns.TypeToString[qt], func(b *testing.B) {
			file := writeQueryFile(b, qt)
			for b.Loop() {
				// -v: dnsperf prints every answered query with its
				// latency; the percentiles come from those lines.
				cmd := exec.Command(bin, "-s", "127.0.0.1", "-p", strconv.Itoa(port), "-d", file,
					"-l", strconv.Itoa(secs), "-c", "4", "-T", "1", "-q", "200", "-t", "2", "-v")
				out, serverCPU := runDNSPerf(b, cmd)
				if queries := reportDNSPerf(b, out); queries > 0 {
					// CPU per query, robust to other load on the machine.
					b.ReportMetric(float64(serverCPU.Microseconds())/queries, "server-cpu-µs/q")
					perf := cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
					b.ReportMetric(float64(perf.Microseconds())/queries, "dnsperf-cpu-µs/q")
				}
			}
		})
	}
}

func writeQueryFile(b *testing.B, qtype uint16) string {
	rng := rand.New(rand.NewPCG(3, 3))
	var sb strings.Builder
	for range 20000 {
		fmt.Fprintf(&sb, "svc-%04d.service.consul %s\n", rng.IntN(benchServices), dns.TypeToString[qtype])
	}
	file := filepath.Join(b.TempDir(), "queries.txt")
	if err := os.WriteFile(file, []byte(sb.String()), 0o600); err != nil {
		b.Fatal(err)
	}
	return file
}

var (
	perfQPS     = regexp.MustCompile(`Queries per second:\s+([0-9.]+)`)
	perfLost    = regexp.MustCompile(`Queries lost:\s+\d+ \(([0-9.]+)%\)`)
	perfLatency = regexp.MustCompile(`Average Latency \(s\):\s+([0-9.]+) \(min ([0-9.]+), max ([0-9.]+)\)`)
)

// runDNSPerf runs cmd with its (long, verbose) output going to a file,
// so that reading it costs the server's process nothing during the run,
// and returns that output and the CPU time this process (the server) used
// meanwhile.
func runDNSPerf(b *testing.B, cmd *exec.Cmd) (string, time.Duration) {
	f, err := os.Create(filepath.Join(b.TempDir(), "dnsperf.out"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	var stderr strings.Builder
	cmd.Stdout, cmd.Stderr = f, &stderr
	before := cpuTime(b)
	err = cmd.Run()
	used := cpuTime(b) - before
	out, rerr := os.ReadFile(f.Name())
	if err != nil || rerr != nil {
		b.Fatalf("dnsperf: %v %v\n%s", err, rerr, stderr.String())
	}
	return string(out), used
}

// reportDNSPerf reports dnsperf's figures and returns how many queries
// were answered.
func reportDNSPerf(b *testing.B, out string) float64 {
	m := perfQPS.FindStringSubmatch(out)
	if m == nil {
		b.Fatalf("no qps in dnsperf output:\n%s", out[max(len(out)-2000, 0):])
	}
	qps, _ := strconv.ParseFloat(m[1], 64)
	b.ReportMetric(qps, "qps")
	if m := perfLost.FindStringSubmatch(out); m != nil {
		lost, _ := strconv.ParseFloat(m[1], 64)
		b.ReportMetric(lost, "lost-%")
	}
	if m := perfLatency.FindStringSubmatch(out); m != nil {
		avg, _ := strconv.ParseFloat(m[1], 64)
		maxLat, _ := strconv.ParseFloat(m[3], 64)
		b.ReportMetric(avg*1e6, "avg-µs")
		b.ReportMetric(maxLat*1e6, "max-µs")
	}
	lat := perfLatencies(out)
	if len(lat) > 0 {
		slices.Sort(lat)
		b.ReportMetric(lat[len(lat)/2]*1e6, "p50-µs")
		b.ReportMetric(lat[len(lat)*99/100]*1e6, "p99-µs")
	}
	return float64(len(lat))
}

// perfLatencies reads the latency (seconds) of each answered query from
// dnsperf's verbose lines: "> NOERROR svc-0001.service.consul A 0.000123".
// Lost queries ("> T ...") carry none.
func perfLatencies(out string) []float64 {
	var lat []float64
	for line := range strings.Lines(out) {
		if !strings.HasPrefix(line, "> ") || strings.HasPrefix(line, "> T ") {
			continue
		}
		fields := strings.Fields(line)
		if v, err := strconv.ParseFloat(fields[len(fields)-1], 64); err == nil {
			lat = append(lat, v)
		}
	}
	return lat
}
