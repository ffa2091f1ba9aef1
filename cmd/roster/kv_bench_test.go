package main

import (
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"roster/internal/testkit"
)

// Benchmarks of the whole system: three `roster agent -server` processes
// on loopback (bbolt with fsync), HTTP keep-alive clients spread over the
// three servers, 100-byte values. One cluster serves every benchmark of a
// run; TestMain stops it.

var (
	benchOnce  sync.Once
	benchProcs []*serverProc
	benchErr   error
)

func benchCluster(b *testing.B) []*serverProc {
	benchOnce.Do(func() {
		benchProcs = startServerProcsTB(b, 3)
		afterAll = append(afterAll, func() { stopProcs(benchProcs) })
		benchErr = testkit.Poll(15*time.Second, func() error {
			_, err := agreedLeader(benchProcs)
			return err
		})
	})
	if benchErr != nil {
		b.Fatal(benchErr)
	}
	return benchProcs
}

// runClients runs b.N requests over clients goroutines, client i talking
// to server i%3, and reports throughput and latency percentiles.
func runClients(b *testing.B, clients int, request func(c *http.Client, base string, i int) error) {
	procs := benchCluster(b)
	tr := &http.Transport{MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	var next atomic.Int64
	lat := make([][]time.Duration, clients)
	var failed atomic.Value
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			base := procs[c%len(procs)].base()
			for {
				i := int(next.Add(1)) - 1
				if i >= b.N {
					return
				}
				t0 := time.Now()
				if err := request(hc, base, i); err != nil {
					failed.Store(err)
					return
				}
				lat[c] = append(lat[c], time.Since(t0))
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if err, ok := failed.Load().(error); ok {
		b.Fatal(err)
	}
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	slices.Sort(all)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "ops/s")
	b.ReportMetric(float64(all[len(all)/2].Microseconds())/1000, "p50_ms")
	b.ReportMetric(float64(all[len(all)*99/100].Microseconds())/1000, "p99_ms")
}

var value100 = strings.Repeat("v", 100)

func kvPut(c *http.Client, base string, i int) error {
	req, _ := http.NewRequest("PUT", fmt.Sprintf("%s/v1/kv/bench/%d", base, i%10000), strings.NewReader(value100))
	return doOK(c, req)
}

func kvGetConsistent(c *http.Client, base string, i int) error {
	req, _ := http.NewRequest("GET", fmt.Sprintf("%s/v1/kv/bench/%d?consistent", base, i%100), nil)
	return doOK(c, req)
}

func doOK(c *http.Client, req *http.Request) error {
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("%s %s: %s %s", req.Method, req.URL, resp.Status, body)
	}
	return nil
}

func BenchmarkCluster_KVPut64Clients(b *testing.B) { runClients(b, 64, kvPut) }

func BenchmarkCluster_KVPut1Client(b *testing.B) { runClients(b, 1, kvPut) }

func BenchmarkCluster_KVGetConsistent64Clients(b *testing.B) {
	procs := benchCluster(b)
	c := &http.Client{Timeout: 10 * time.Second}
	for i := range 100 {
		if err := kvPut(c, procs[0].base(), i); err != nil {
			b.Fatal(err)
		}
	}
	runClients(b, 64, kvGetConsistent)
}
