package rpc

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// benchKV answers a KV-shaped read with a 100-byte value, the size the
// performance targets use.
type benchKV struct{ value string }

func (k *benchKV) Get(args *GetRequest, reply *GetResponse) error {
	reply.Value = k.value
	reply.Index, reply.KnownLeader = 42, true
	return nil
}

// BenchmarkRoundTrip measures one call through the pool to a server on
// loopback: encode, write, server decode + dispatch + encode, read,
// decode. ns/op is wall time per call across all callers; calls/s is the
// throughput; p50/p99 are per-call latencies.
func BenchmarkRoundTrip(b *testing.B) {
	for _, callers := range []int{1, 64} {
		b.Run(fmt.Sprintf("callers=%d", callers), func(b *testing.B) {
			srv := startServer(b, Config{}, func(s *Server) {
				s.Register("KV", &benchKV{value: strings.Repeat("v", 100)})
			})
			pool, err := NewPool(PoolConfig{Logger: quietLogger()})
			if err != nil {
				b.Fatal(err)
			}
			defer pool.Shutdown()
			addr := srv.Addr().String()
			args := &GetRequest{QueryOptions: QueryOptions{Datacenter: "dc1"}, Key: "service/web/config"}
			if err := pool.Call(context.Background(), addr, "KV.Get", args, &GetResponse{}); err != nil {
				b.Fatal(err)
			}
			lat := runCallers(b, callers, func(ctx context.Context) error {
				var reply GetResponse
				return pool.Call(ctx, addr, "KV.Get", args, &reply)
			})
			reportLatency(b, lat)
		})
	}
}

// runCallers splits b.N calls over callers goroutines and returns every
// call's latency.
func runCallers(b *testing.B, callers int, call func(context.Context) error) []time.Duration {
	b.ReportAllocs()
	var next atomic.Int64
	lats := make([][]time.Duration, callers)
	var wg sync.WaitGroup
	var failed atomic.Value
	b.ResetTimer()
	start := time.Now()
	for c := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			for next.Add(1) <= int64(b.N) {
				t := time.Now()
				if err := call(ctx); err != nil {
					failed.Store(err)
					return
				}
				lats[c] = append(lats[c], time.Since(t))
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "calls/s")
	return slices.Concat(lats...)
}

func reportLatency(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}
