package raft

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/rpc"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// The throughput benchmarks measure the production stack (3 servers on
// 127.0.0.1, the WAL on disk with fsync, net/rpc) against what the machine
// allows. Group commit makes the bound appliers/(F+R): every applier has
// one command in flight, and a command needs at least one fsync (F, the
// leader's and a follower's run in parallel) and one round trip (R).
//
// Each b.N iteration is one measurement window of ROSTER_RAFT_BENCH_SECS
// seconds (default 2), so `make bench` (-benchtime 1x) measures one window
// per concurrency level.

// machineLimits is the disk's fsync latency and the loopback round trip.
type machineLimits struct{ fsync, rtt time.Duration }

// measureLimits measures F as the median of 100 one-entry writes of a
// 100-byte command to the store the cluster runs on (openDiskStore: the
// WALStore's one append and data sync, or a bbolt transaction, which
// syncs data and then meta pages) in dir, after 20 to warm up; and R as the median of
// 500 net/rpc calls carrying a 100-byte Message on loopback. Measured
// again before each run: the disk's latency drifts with whatever else the
// machine is doing.
func measureLimits(b *testing.B, dir string) machineLimits {
	return machineLimits{fsync: measureFsync(b, dir), rtt: measureRTT(b)}
}

func measureFsync(b *testing.B, dir string) time.Duration {
	store, err := openDiskStore(filepath.Join(dir, "fsync-probe"))
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	data := make([]byte, 100)
	var ds []time.Duration
	for i := range 120 {
		t0 := time.Now()
		if err := store.StoreLogs([]Entry{{Index: uint64(i + 1), Term: 1, Data: data}}); err != nil {
			b.Fatal(err)
		}
		if i >= 20 {
			ds = append(ds, time.Since(t0))
		}
	}
	return median(ds)
}

// echoService answers every call with its argument.
type echoService struct{}

func (echoService) Echo(req *Message, resp *Message) error { *resp = *req; return nil }

func measureRTT(b *testing.B) time.Duration {
	srv := rpc.NewServer()
	if err := srv.RegisterName("Echo", echoService{}); err != nil {
		b.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	go func() {
		if conn, err := l.Accept(); err == nil {
			srv.ServeConn(conn)
		}
	}()
	c, err := rpc.Dial("tcp", l.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	m := Message{Type: MsgApp, From: "s1", To: "s2", Term: 1, Entries: []Entry{{Index: 1, Term: 1, Data: make([]byte, 100)}}}
	var ds []time.Duration
	for range 500 {
		var resp Message
		t0 := time.Now()
		if err := c.Call("Echo.Echo", &m, &resp); err != nil {
			b.Fatal(err)
		}
		ds = append(ds, time.Since(t0))
	}
	return median(ds)
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func benchWindow() time.Duration {
	if s, err := strconv.ParseFloat(os.Getenv("ROSTER_RAFT_BENCH_SECS"), 64); err == nil && s > 0 {
		return time.Duration(s * float64(time.Second))
	}
	return 2 * time.Second
}

// loadResult is one window of closed-loop load.
type loadResult struct {
	ops     int
	elapsed time.Duration
	lat     []time.Duration // sorted
	cpu     time.Duration   // CPU time the whole process used (3 servers and clients)
}

// cpuPerOp is process CPU time per operation in µs: unlike ops/s it barely
// moves when other work competes for the machine's cores.
func (r loadResult) cpuPerOp() float64 {
	if r.ops == 0 {
		return 0
	}
	return float64(r.cpu) / float64(time.Microsecond) / float64(r.ops)
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func (r loadResult) rate() float64 { return float64(r.ops) / r.elapsed.Seconds() }
func (r loadResult) pct(p int) time.Duration {
	if len(r.lat) == 0 {
		return 0
	}
	return r.lat[min(len(r.lat)-1, len(r.lat)*p/100)]
}

// runLoad runs workers goroutines that each call op back to back for the
// window and records every call's latency.
func runLoad(b *testing.B, workers int, window time.Duration, op func() error) loadResult {
	var mu sync.Mutex
	var all []time.Duration
	var failed atomic.Bool
	var wg sync.WaitGroup
	cpu0 := processCPU()
	start := time.Now()
	deadline := start.Add(window)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			for t0 := time.Now(); t0.Before(deadline) && !failed.Load(); t0 = time.Now() {
				if err := op(); err != nil {
					failed.Store(true)
					b.Error(err)
					return
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			all = append(all, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	slices.Sort(all)
	return loadResult{ops: len(all), elapsed: elapsed, lat: all, cpu: processCPU() - cpu0}
}

// BenchmarkThroughput_Loopback is the acceptance benchmark for write and
// read throughput: F and R first, then for 1, 64 and 256 concurrent
// clients a window of 100-byte Applies and a window of ReadIndex reads on
// the leader, each against the limit appliers/(F+R).
func BenchmarkThroughput_Loopback(b *testing.B) {
	for _, clients := range []int{1, 64, 256} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
			benchThroughput(b, clients, Config{})
		})
	}
}

func benchThroughput(b *testing.B, clients int, cfg Config) {
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	c := newSocketCluster(b, 3, cfg)
	lim := measureLimits(b, c.dir)
	b.Logf("fsync F = %v, loopback RTT R = %v, limit = clients / (F+R) = %d x %.0f ops/s",
		lim.fsync, lim.rtt, clients, 1/(lim.fsync+lim.rtt).Seconds())
	node := c.nodes[c.leader()]
	waitStable(b, c)
	cmd := make([]byte, 100)
	write := func() error { return c.applyRetry(node, cmd) }
	read := func() error { return c.readRetry(node) }
	runLoad(b, clients, 300*time.Millisecond, write) // warm up connections and caches
	fr := lim.fsync + lim.rtt
	limit := float64(clients) / fr.Seconds()
	var w, r loadResult
	var groups, entries uint64
	for b.Loop() {
		g0, e0 := node.diskGroups.Load(), node.diskEntries.Load()
		w = runLoad(b, clients, benchWindow(), write)
		groups, entries = node.diskGroups.Load()-g0, node.diskEntries.Load()-e0
		r = runLoad(b, clients, benchWindow(), read)
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(ms(lim.fsync), "F-ms")
	b.ReportMetric(ms(lim.rtt), "R-ms")
	b.ReportMetric(limit, "limit-ops/s")
	b.ReportMetric(w.rate(), "write-ops/s")
	b.ReportMetric(100*w.rate()/limit, "%-of-limit")
	b.ReportMetric(ms(w.pct(50)), "p50-ms")
	b.ReportMetric(ms(w.pct(99)), "p99-ms")
	b.ReportMetric(float64(w.pct(50))/float64(fr), "p50/(F+R)")
	b.ReportMetric(float64(w.pct(99))/float64(fr), "p99/(F+R)")
	if groups > 0 {
		b.ReportMetric(float64(entries)/float64(groups), "entries/fsync")
	}
	b.ReportMetric(w.cpuPerOp(), "cpu-µs/write")
	b.ReportMetric(r.rate(), "read-ops/s")
	b.ReportMetric(r.cpuPerOp(), "cpu-µs/read")
	b.ReportMetric(ms(r.pct(99)), "read-p99-ms")
	if w.ops > 0 {
		b.ReportMetric(r.rate()/w.rate(), "read/write")
	}
	b.ReportMetric(0, "ns/op")
}

// BenchmarkPipeline_Loopback shows what pipelining AppendEntries buys: 64
// clients of 100-byte Applies on the production stack with at most depth
// AppendEntries in flight per follower (Config.MaxInflight). Throughput
// must not drop as depth grows.
func BenchmarkPipeline_Loopback(b *testing.B) {
	for _, depth := range []int{1, 2, 4, 8} {
		b.Run(fmt.Sprintf("depth=%d", depth), func(b *testing.B) {
			benchPipeline(b, depth)
		})
	}
}

func benchPipeline(b *testing.B, depth int) {
	const clients = 64
	c := newSocketCluster(b, 3, Config{MaxInflight: depth, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	node := c.nodes[c.leader()]
	waitStable(b, c)
	cmd := make([]byte, 100)
	write := func() error { return c.applyRetry(node, cmd) }
	runLoad(b, clients, 300*time.Millisecond, write)
	var w loadResult
	for b.Loop() {
		w = runLoad(b, clients, benchWindow(), write)
	}
	b.ReportMetric(w.rate(), "write-ops/s")
	b.ReportMetric(float64(w.pct(50))/1e6, "p50-ms")
	b.ReportMetric(float64(w.pct(99))/1e6, "p99-ms")
	b.ReportMetric(w.cpuPerOp(), "cpu-µs/write")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkStore_StoreLogs measures one group-commit write to each disk
// store: 1 or 32 100-byte entries made durable together, as the disk
// writer does for a lone client and under load. ns/op is the write's
// latency (WAL: one append and fdatasync; bbolt: a transaction, two);
// cpu-µs/write is the CPU it costs beside the syncs.
func BenchmarkStore_StoreLogs(b *testing.B) {
	open := map[string]func(dir string) (diskStore, error){
		"wal":  func(dir string) (diskStore, error) { return OpenWALStore(filepath.Join(dir, "wal")) },
		"bolt": func(dir string) (diskStore, error) { return OpenBoltStore(filepath.Join(dir, "raft.db")) },
	}
	for _, name := range []string{"wal", "bolt"} {
		for _, batch := range []int{1, 32} {
			b.Run(fmt.Sprintf("%s/entries=%d", name, batch), func(b *testing.B) {
				store, err := open[name](b.TempDir())
				if err != nil {
					b.Fatal(err)
				}
				defer store.Close()
				benchStoreLogs(b, store, batch)
			})
		}
	}
}

func benchStoreLogs(b *testing.B, store LogStore, batch int) {
	es := make([]Entry, batch)
	data := make([]byte, 100)
	next := uint64(1)
	b.ReportAllocs()
	cpu0 := processCPU()
	for b.Loop() {
		for i := range es {
			es[i] = Entry{Index: next, Term: 1, Type: EntryCommand, Data: data}
			next++
		}
		if err := store.StoreLogs(es); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(processCPU()-cpu0)/float64(time.Microsecond)/float64(b.N), "cpu-µs/write")
}
