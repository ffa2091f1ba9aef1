package agent

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkInProcess_KVPut64Clients is the cluster PUT benchmark with all
// three servers in this process, so one CPU profile covers HTTP, RPC,
// Raft and the catalog together (go test -cpuprofile). Each client talks
// to server i%3 over HTTP keep-alive.
func BenchmarkInProcess_KVPut64Clients(b *testing.B) {
	tc := newTestCluster(b, 3)
	tc.startAll()
	tc.leader(10 * time.Second)
	const clients = 64
	tr := &http.Transport{MaxIdleConnsPerHost: clients}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	var next atomic.Int64
	var failed atomic.Value
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			base := "http://" + tc.agents[c%3].HTTPAddrs()[0]
			for i := int(next.Add(1)) - 1; i < b.N; i = int(next.Add(1)) - 1 {
				if err := benchPut(hc, base, i); err != nil {
					failed.Store(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "ops/s")
	if err, ok := failed.Load().(error); ok {
		b.Fatal(err)
	}
}

func benchPut(hc *http.Client, base string, i int) error {
	req, _ := http.NewRequest("PUT", fmt.Sprintf("%s/v1/kv/bench/%d", base, i%10000), strings.NewReader(strings.Repeat("v", 100)))
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("status %s", resp.Status)
	}
	return nil
}
