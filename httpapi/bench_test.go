package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"roster/catalog"
	"roster/httpapi/client"
	"roster/internal/testkit"
)

// registerInstances adds n passing instances of service, 10 per node.
func registerInstances(b *storeRPC, service string, n int) {
	for i := range n {
		node := fmt.Sprintf("node-%04d", i/10)
		b.apply(&catalog.RegisterRequest{
			Node: catalog.Node{Node: node, Address: fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255),
				TaggedAddresses: map[string]string{"lan": "10.0.0.1", "wan": "10.0.0.1"}, Meta: map[string]string{"rack": "r1"}},
			Service: &catalog.NodeService{ID: fmt.Sprintf("%s-%d", service, i), Service: service, Port: 8000 + i%1000,
				Tags: []string{"v1", "primary"}, Meta: map[string]string{"version": "1.2.3", "instance": fmt.Sprintf("%016x", uint64(i)*0x9e3779b97f4a7c15)}, Weights: catalog.Weights{Passing: 1, Warning: 1}},
			Checks: []catalog.HealthCheck{{CheckID: fmt.Sprintf("service:%s-%d", service, i), Name: "Service check", Status: "passing",
				ServiceID: fmt.Sprintf("%s-%d", service, i), ServiceName: service, Output: "HTTP GET http://localhost/health: 200 OK", Type: "http"}},
		})
	}
}

func benchAPI(b *testing.B, rpcb *storeRPC) string {
	return benchAPIWith(b, Config{Agent: testAgent(), RPC: rpcb, Local: storeLocal{Store: rpcb.store, leader: true}})
}

func benchAPIWith(b *testing.B, cfg Config) string {
	s, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(s)
	b.Cleanup(srv.Close)
	return srv.URL
}

// BenchmarkHealthServicePassing is the hot path: GET
// /v1/health/service/web?passing with 1,000 instances, from 64 concurrent
// keep-alive connections. The RPC backend is in-process (store reads, no
// network). "leader-local" is a server agent that leads (hot reads served
// from the encoded-response cache without an RPC while the index stands);
// "via-rpc" makes the RPC (a full catalog read) every time and only reuses
// the encoding.
func BenchmarkHealthServicePassing(b *testing.B) {
	rpcb := newStoreRPC()
	registerInstances(rpcb, "web", 1000)
	b.Run("leader-local", func(b *testing.B) { benchHealthService(b, benchAPI(b, rpcb), 600) })
	b.Run("via-rpc", func(b *testing.B) { benchHealthService(b, benchAPIWith(b, Config{Agent: testAgent(), RPC: rpcb}), 100) })
}

// benchHealthService: one benchmark op is reqsPerOp requests, so that
// even -benchtime 1x (make bench) measures a rate over seconds, not one
// request.
func benchHealthService(b *testing.B, base string, reqsPerOp int64) {
	const conns = 64
	tr := &http.Transport{MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns, DisableCompression: true}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}
	var bytesPerResp atomic.Int64
	get := func() {
		resp, err := hc.Get(base + "/v1/health/service/web?passing")
		if err != nil {
			b.Error(err)
			return
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		bytesPerResp.Store(n)
	}
	get() // the first answer is read and encoded; the rest reuse it
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		var next atomic.Int64
		var wg sync.WaitGroup
		for range conns {
			wg.Go(func() {
				for next.Add(1) <= reqsPerOp {
					get()
				}
			})
		}
		wg.Wait()
	}
	b.ReportMetric(float64(int64(b.N)*reqsPerOp)/time.Since(start).Seconds(), "req/s")
	b.ReportMetric(float64(bytesPerResp.Load()), "bytes/resp")
}

// BenchmarkDeltaVsFull compares what a watcher of 10,000 instances
// receives for a full registry pull and for a delta pull covering 10
// changes, both as the Go client asks for them (Accept-Encoding: gzip; the
// server compresses what is worth it: the full registry, not the ~120-byte
// compact delta). "wire" is whole HTTP responses as read off the
// connection: status line, headers, chunk framing and body; "body" is
// the body as sent. The 10 changes are health flips of 10 instances of one
// node ("seq", what the ratio target is about) and of 10 instances on 10
// scattered nodes ("spread", whose names share less); bytes/change is one
// flip's whole response.
func BenchmarkDeltaVsFull(b *testing.B) {
	rpcb := newStoreRPC()
	registerInstances(rpcb, "web", 10000)
	base := benchAPI(b, rpcb)
	var full, seq, spread, one client.Metrics
	for i := 0; i < b.N; i++ {
		w, err := client.New(client.Config{Address: base, Wait: time.Millisecond})
		if err != nil {
			b.Fatal(err)
		}
		full = syncDiff(b, w, func() {})
		seq = syncDiff(b, w, func() {
			for j := range 10 {
				flipHealth(rpcb, (i*10+j)%10000)
			}
		})
		spread = syncDiff(b, w, func() {
			for j := range 10 {
				flipHealth(rpcb, (i*10+j*997+500)%10000)
			}
		})
		one = syncDiff(b, w, func() { setHealth(rpcb, 9999, []string{"warning", "passing"}[i%2]) })
		if w.Hash() != rpcb.store.Registry().Hash {
			b.Fatal("mirror diverged")
		}
	}
	b.ReportMetric(float64(full.WireBytes), "full-wire-bytes")
	b.ReportMetric(float64(seq.DeltaWireBytes), "delta10-wire-bytes")
	b.ReportMetric(float64(full.WireBytes)/float64(seq.DeltaWireBytes), "full/delta-wire")
	b.ReportMetric(float64(full.Bytes)/float64(seq.DeltaBytes), "full/delta-body")
	b.ReportMetric(float64(full.WireBytes)/float64(spread.DeltaWireBytes), "full/delta-wire-spread")
	b.ReportMetric(float64(one.DeltaWireBytes), "wire-bytes/change")
}

// syncDiff runs change, then one Sync, and returns what that Sync cost.
func syncDiff(b *testing.B, w *client.Watcher, change func()) client.Metrics {
	change()
	before := w.Metrics()
	if _, err := w.Sync(context.Background()); err != nil {
		b.Fatal(err)
	}
	m := w.Metrics()
	if m.Fallbacks != before.Fallbacks {
		b.Fatalf("a delta pull fell back to a full pull: %+v", m)
	}
	return client.Metrics{Bytes: m.Bytes - before.Bytes, DeltaBytes: m.DeltaBytes - before.DeltaBytes,
		WireBytes: m.WireBytes - before.WireBytes, DeltaWireBytes: m.DeltaWireBytes - before.DeltaWireBytes}
}

// flipHealth sets instance i's check to warning (even i) or passing.
func flipHealth(b *storeRPC, i int) {
	setHealth(b, i, []string{"warning", "passing"}[i%2])
}

func setHealth(b *storeRPC, i int, status string) {
	b.apply(&catalog.RegisterRequest{Node: catalog.Node{Node: fmt.Sprintf("node-%04d", i/10)}, SkipNodeUpdate: true,
		Checks: []catalog.HealthCheck{{CheckID: fmt.Sprintf("service:web-%d", i), Name: "Service check", Status: status,
			ServiceID: fmt.Sprintf("web-%d", i), ServiceName: "web", Output: "HTTP GET http://localhost/health: 200 OK", Type: "http"}}})
}

// BenchmarkBlockingWake parks 10,000 blocking reads of one key in the
// server (in-process requests: no sockets, so the fd limit does not cap
// the count), makes one change and measures until every one has answered.
func BenchmarkBlockingWake(b *testing.B) {
	const clients = 10000
	rpcb := newStoreRPC()
	s, err := New(Config{Agent: testAgent(), RPC: rpcb})
	if err != nil {
		b.Fatal(err)
	}
	var wakeMs []float64
	for i := 0; i < b.N; i++ {
		res := rpcb.apply(&catalog.KVRequest{Verb: catalog.KVSet, Key: "hot", Value: []byte("x")})
		path := "/v1/kv/hot?wait=60s&index=" + strconv.FormatUint(res.Index, 10)
		var wg sync.WaitGroup
		for range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", path, nil))
			}()
		}
		if err := testkit.Poll(time.Minute, func() error {
			if n := rpcb.store.Stats().Waiters; n < clients {
				return fmt.Errorf("%d of %d clients parked in Wait", n, clients)
			}
			return nil
		}); err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		rpcb.apply(&catalog.KVRequest{Verb: catalog.KVSet, Key: "hot", Value: []byte("y")})
		wg.Wait()
		wakeMs = append(wakeMs, float64(time.Since(start).Microseconds())/1000)
	}
	b.ReportMetric(slices.Max(wakeMs), "all-woken-ms")
	b.ReportMetric(rssMB(), "rss-MB")
}

// BenchmarkDeltaLatency measures how long a change takes to reach a
// watching delta client over loopback HTTP (p50 and p99).
func BenchmarkDeltaLatency(b *testing.B) {
	rpcb := newStoreRPC()
	registerInstances(rpcb, "web", 1000)
	benchDeltaLatency(b, benchAPI(b, rpcb), func(i int) uint64 {
		return rpcb.apply(flipCommand(i)).Index
	})
}

// latencySamplesPerOp: one op is this many changes, so that -benchtime 1x
// still gives a p99 over 200 samples.
const latencySamplesPerOp = 200

// benchDeltaLatency times change(i) (which returns the index it wrote)
// until a delta client watching base has seen that index, 200 times per
// op, and reports p50 and p99 in milliseconds.
func benchDeltaLatency(b *testing.B, base string, change func(i int) (index uint64)) {
	w, err := client.New(client.Config{Address: base, Wait: time.Minute})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	seen := make(chan uint64, 1024)
	go w.Watch(ctx, func(u client.Update) { seen <- u.Index })
	<-seen
	lat := make([]float64, 0, b.N*latencySamplesPerOp)
	b.ResetTimer()
	for i := 0; i < b.N*latencySamplesPerOp; i++ {
		start := time.Now()
		want := change(i)
		for idx := range seen {
			if idx >= want {
				break
			}
		}
		lat = append(lat, float64(time.Since(start).Microseconds())/1000)
	}
	slices.Sort(lat)
	b.ReportMetric(lat[len(lat)/2], "p50-ms")
	b.ReportMetric(lat[len(lat)*99/100], "p99-ms")
}

func flipCommand(i int) catalog.Command {
	status := []string{"warning", "passing"}[i%2]
	return &catalog.RegisterRequest{Node: catalog.Node{Node: "node-0000"}, SkipNodeUpdate: true,
		Checks: []catalog.HealthCheck{{CheckID: "service:web-0", Name: "Service check", Status: status, ServiceID: "web-0"}}}
}

// rssMB is this process's resident set in MB.
func rssMB() float64 { return rssMBOf(os.Getpid()) }

// cpuTime is the process's CPU time so far (user + system): what a run
// costs whatever else the machine is doing, unlike wall time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

func runtimeProcs() int { return runtime.GOMAXPROCS(0) }

// BenchmarkDeltaHerd: 10,000 delta watchers reconnect at once, all asking
// for the changes since the same index, as the Go client does
// (?format=compact&wait=…, gzip accepted), with in-process requests (no
// sockets; BenchmarkAgentDeltaHerd does it over TCP). Reports the p99 time
// to answer and the share answered from the encoded-response cache.
// "leader-local" is a leading server (cached answers need no RPC),
// "via-rpc" an agent that asks its servers every time.
func BenchmarkDeltaHerd(b *testing.B) {
	rpcb := newStoreRPC()
	registerInstances(rpcb, "web", 1000)
	b.Run("leader-local", func(b *testing.B) {
		benchDeltaHerd(b, rpcb, Config{Agent: testAgent(), RPC: rpcb, Local: storeLocal{Store: rpcb.store, leader: true}})
	})
	b.Run("via-rpc", func(b *testing.B) { benchDeltaHerd(b, rpcb, Config{Agent: testAgent(), RPC: rpcb}) })
}

// herdRounds counts herd rounds across sub-benchmarks sharing one store.
var herdRounds atomic.Int64

func benchDeltaHerd(b *testing.B, rpcb *storeRPC, cfg Config) {
	const watchers = 10000
	s, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	var p99, cpu []float64
	for i := 0; i < b.N; i++ {
		since := rpcb.store.LastIndex()
		status := []string{"passing", "warning"}[herdRounds.Add(1)%2] // round 1 warns: a real change in every round
		for j := range 10 {
			setHealth(rpcb, j, status)
		}
		lat := make([]float64, watchers)
		var wg sync.WaitGroup
		path := "/v1/roster/registry/delta?format=compact&wait=300000ms&since=" + strconv.FormatUint(since, 10)
		cpu0 := cpuTime()
		start := time.Now()
		for k := range watchers {
			wg.Go(func() {
				req := httptest.NewRequest("GET", path, nil)
				req.Header.Set("Accept-Encoding", "gzip")
				rec := httptest.NewRecorder()
				s.ServeHTTP(rec, req)
				if rec.Code != 200 {
					b.Errorf("status %d", rec.Code)
				}
				lat[k] = float64(time.Since(start).Microseconds()) / 1000
			})
		}
		wg.Wait()
		cpu = append(cpu, float64((cpuTime()-cpu0).Microseconds())/1000)
		slices.Sort(lat)
		p99 = append(p99, lat[watchers*99/100])
	}
	b.ReportMetric(median(p99), "p99-ms")
	b.ReportMetric(median(cpu), "cpu-ms")
	b.ReportMetric(float64(s.cache.hits.Load())/float64(b.N*watchers), "cache-hit-ratio")
}

// BenchmarkStackHealthServicePassing is the hot path on the real stack
// (raft, dedup FSM, catalog, rpc endpoints over net/rpc and gob through
// the pool), as on a dev agent: 1,000 instances, 64 connections.
// "leader-local" is what a server agent that leads serves with Local set;
// "via-rpc" is any agent without it (or a follower): an RPC per request.
func BenchmarkStackHealthServicePassing(b *testing.B) {
	st := startStack(b)
	for i := range 1000 {
		reg := map[string]any{"Node": fmt.Sprintf("node-%04d", i/10), "Address": fmt.Sprintf("10.0.%d.%d", i/256, i%256),
			"TaggedAddresses": map[string]string{"lan": "10.0.0.1", "wan": "10.0.0.1"},
			"Service": map[string]any{"ID": fmt.Sprintf("web-%d", i), "Service": "web", "Port": 8000 + i, "Tags": []string{"v1", "primary"},
				"Meta": map[string]string{"version": "1.2.3", "instance": fmt.Sprintf("%016x", uint64(i)*0x9e3779b97f4a7c15)}},
			"Check": map[string]any{"CheckID": fmt.Sprintf("service:web-%d", i), "Name": "Service check", "Status": "passing",
				"ServiceID": fmt.Sprintf("web-%d", i), "Output": "HTTP GET http://localhost/health: 200 OK", "Type": "http"}}
		body, _ := json.Marshal(reg)
		req, _ := http.NewRequest("PUT", st.base+"/v1/catalog/register", bytes.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 200 {
			b.Fatalf("register %d: %v %v", i, err, resp)
		}
		resp.Body.Close()
	}
	b.Run("leader-local", func(b *testing.B) { benchHealthService(b, st.base, 600) })
	b.Run("via-rpc", func(b *testing.B) {
		benchHealthService(b, benchAPIWith(b, Config{Agent: testAgent(), RPC: st.rpc, Logger: quiet()}), 100)
	})
}

// BenchmarkStackDeltaLatency: a change written over HTTP (through Raft) to
// a watching delta client, on the real stack over loopback; p50 and p99.
func BenchmarkStackDeltaLatency(b *testing.B) {
	st := startStack(b)
	put := func(status string) {
		body := `{"Node":"n1","Address":"10.0.0.1","Service":{"ID":"web","Service":"web","Port":80},` +
			`"Check":{"CheckID":"web","Name":"web","Status":"` + status + `","ServiceID":"web"}}`
		req, _ := http.NewRequest("PUT", st.base+"/v1/catalog/register", strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
	}
	put("passing")
	benchDeltaLatency(b, st.base, func(i int) uint64 {
		put([]string{"warning", "passing"}[i%2])
		return st.store.LastIndex()
	})
}
