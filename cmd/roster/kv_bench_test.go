package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"roster/internal/testkit"
)

// Benchmarks of the whole system: three `roster agent -server` processes
// on loopback (bbolt with fsync), HTTP keep-alive clients spread over the
// three servers, 100-byte values. One cluster serves every benchmark of a
// run; TestMain stops it.
//
// Each measurement runs b.N requests or benchDuration, whichever is more,
// after a short warm-up, so `make bench` (-benchtime 1x) still measures
// seconds of load, not one request. Reported: ops/s, p50_ms, p99_ms;
// fsync_ms, the median fsync of a 4 KiB append on the disk holding the
// data directories, the floor under any write's latency; and
// srv_cpu_us/op, the CPU time (user + system) the three server processes
// spent per request (client_cpu_us/op: the HTTP clients'). On a machine shared with other work throughput and
// latency swing with the neighbours' load, while CPU per request barely
// moves: it is the figure to compare across changes.
//
// Environment:
//
//	ROSTER_BIN             the server binary to run (default: built by TestMain)
//	ROSTER_BENCH_DURATION  minimum measured time per benchmark (default 5s)
//	ROSTER_BENCH_PPROF     a directory: CPU profiles of every server process
//	                       during each measurement are written there as
//	                       <benchmark>-<node>.pprof (the processes serve
//	                       /debug/pprof through ROSTER_PPROF_ADDR)

var (
	benchOnce  sync.Once
	benchProcs []*serverProc
	benchErr   error
	// benchPprof[i] is server i's profiling address ("" when off).
	benchPprof []string
)

// serverProcEnv, if set, adds environment variables to server process i
// (startServerProcsTB); the benchmarks use it to turn on profiling.
var serverProcEnv func(i int) []string

const warmup = time.Second

func benchDuration(b *testing.B) time.Duration {
	s := os.Getenv("ROSTER_BENCH_DURATION")
	if s == "" {
		return 5 * time.Second
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		b.Fatalf("ROSTER_BENCH_DURATION=%q: want a positive duration such as 10s", s)
	}
	return d
}

// loggedPprofAddrs reads each server's profiling address from its log.
// The line comes before the agent starts, so it is there once the
// servers have logged their ports.
func loggedPprofAddrs(procs []*serverProc) ([]string, error) {
	var addrs []string
	for _, p := range procs {
		m := pprofServingLine.FindStringSubmatch(p.stderr.String())
		if m == nil {
			return nil, fmt.Errorf("%s logged no profiling address:\n%s", p.name, p.stderr)
		}
		addrs = append(addrs, m[1])
	}
	return addrs, nil
}

func benchCluster(b *testing.B) []*serverProc {
	benchOnce.Do(func() {
		pprof := os.Getenv("ROSTER_BENCH_PPROF") != ""
		if pprof { // on port 0: each server logs the address it got
			serverProcEnv = func(int) []string { return []string{pprofAddrEnv + "=127.0.0.1:0"} }
			defer func() { serverProcEnv = nil }()
		}
		if env := os.Getenv("ROSTER_BIN"); env != "" {
			defer func(built string) { rosterBin = built }(rosterBin)
			rosterBin = env
		}
		benchProcs = startServerProcsTB(b, 3)
		afterAll = append(afterAll, func() { stopProcs(benchProcs) })
		if pprof {
			if benchPprof, benchErr = loggedPprofAddrs(benchProcs); benchErr != nil {
				return
			}
		}
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

// load is one run of clients goroutines against the cluster.
type load struct {
	procs   []*serverProc
	conns   []*keepAlive // one per client, kept across runs
	clients int
	request func(c *keepAlive, i int) error
}

// run sends requests until at least n are done and d has passed, and
// returns every successful request's latency, the elapsed time and the
// failures. Client c talks to server c%3; request numbers are global, so
// keys spread evenly. A failed request is counted and the client goes
// on: an election on an overloaded machine (heartbeats late past the
// election timeout) fails a few requests with "No cluster leader", which
// a benchmark should report, not die of. More than 1% failed is an error.
func (l *load) run(n int, d time.Duration) ([]time.Duration, time.Duration, *loadErrors, error) {
	var next atomic.Int64
	lat := make([][]time.Duration, l.clients)
	errs := &loadErrors{}
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(d)
	for c := range l.clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn := l.conns[c]
			for {
				i := int(next.Add(1)) - 1
				t0 := time.Now()
				if i >= n && t0.After(deadline) {
					return
				}
				if err := l.request(conn, i); err != nil {
					errs.add(err)
					continue
				}
				lat[c] = append(lat[c], time.Since(t0))
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	slices.Sort(all)
	if errs.n > 0 && (len(all) == 0 || errs.n*100 > len(all)) {
		return nil, 0, errs, fmt.Errorf("%d of %d requests failed; the first: %v", errs.n, errs.n+len(all), errs.first)
	}
	return all, elapsed, errs, nil
}

// loadErrors counts failed requests and keeps the first.
type loadErrors struct {
	mu    sync.Mutex // guards n and first
	n     int
	first error
}

func (e *loadErrors) add(err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.n == 0 {
		e.first = err
	}
	e.n++
}

// runClients warms up, then measures clients concurrent request loops
// and reports throughput, latency percentiles and the disk's fsync time.
func runClients(b *testing.B, clients int, request func(c *keepAlive, i int) error) {
	runClientsOn(b, benchCluster(b), clients, request)
}

// runClientsOn is runClients with client c talking to targets[c%len(targets)]
// (the CPU figures still cover all three servers).
func runClientsOn(b *testing.B, targets []*serverProc, clients int, request func(c *keepAlive, i int) error) {
	procs := benchCluster(b)
	fsync := fsyncLatency(b)
	dur := benchDuration(b)
	l := &load{procs: procs, clients: clients, request: request}
	for c := range clients {
		l.conns = append(l.conns, &keepAlive{addr: strings.TrimPrefix(targets[c%len(targets)].base(), "http://")})
	}
	defer func() {
		for _, c := range l.conns {
			c.close()
		}
	}()
	if _, _, _, err := l.run(0, warmup); err != nil {
		b.Fatal(err)
	}
	profiled := profileServers(b, dur)
	cpu0, client0 := serversCPU(b, procs), selfCPU(b)
	b.ResetTimer()
	all, elapsed, errs, err := l.run(b.N, dur)
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	if errs.n > 0 {
		b.Logf("%d requests failed (not counted in the latencies); the first: %v", errs.n, errs.first)
	}
	b.ReportMetric(float64(errs.n), "errors")
	cpu, clientCPU := serversCPU(b, procs)-cpu0, selfCPU(b)-client0
	if err := profiled(); err != nil {
		b.Logf("profiling: %v", err)
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	p50, p99 := all[len(all)/2], all[len(all)*99/100]
	b.ReportMetric(float64(elapsed.Nanoseconds())/float64(len(all)), "ns/op")
	b.ReportMetric(float64(len(all))/elapsed.Seconds(), "ops/s")
	b.ReportMetric(ms(p50), "p50_ms")
	b.ReportMetric(ms(p99), "p99_ms")
	b.ReportMetric(ms(fsync), "fsync_ms")
	cpuPerOp := float64(cpu.Microseconds()) / float64(len(all))
	b.ReportMetric(cpuPerOp, "srv_cpu_us/op")
	b.ReportMetric(float64(clientCPU.Microseconds())/float64(len(all)), "client_cpu_us/op")
	b.Logf("%d clients: %d requests in %v, %.0f ops/s, p50 %.2f ms, p99 %.2f ms, servers' CPU %.0f µs/request; fsync on this disk %.2f ms",
		clients, len(all), elapsed.Round(time.Millisecond), float64(len(all))/elapsed.Seconds(), ms(p50), ms(p99), cpuPerOp, ms(fsync))
}

// serversCPU is the CPU time (user + system) the server processes have
// used so far, from /proc/<pid>/stat.
func serversCPU(b *testing.B, procs []*serverProc) time.Duration {
	var total time.Duration
	for _, p := range procs {
		d, err := procCPU(p.cmd.Process.Pid)
		if err != nil {
			b.Fatalf("reading the CPU time of %s: %v", p.name, err)
		}
		total += d
	}
	return total
}

// selfCPU is the CPU time this process (the HTTP clients) has used: on a
// 2-core machine the clients' share is CPU the servers do not get.
func selfCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// procCPU reads utime + stime of pid. They are in clock ticks, which are
// 1/100 s on every Linux configuration Go supports (USER_HZ).
func procCPU(pid int) (time.Duration, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces; fields resume after ')'.
	rest := string(raw[strings.LastIndexByte(string(raw), ')')+1:])
	f := strings.Fields(rest)
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat has %d fields after the name", pid, len(f))
	}
	var utime, stime int64
	if _, err := fmt.Sscan(f[11], &utime); err != nil {
		return 0, err
	}
	if _, err := fmt.Sscan(f[12], &stime); err != nil {
		return 0, err
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond, nil
}

// profileServers starts a CPU profile of every server process covering
// the next d, when ROSTER_BENCH_PPROF names a directory; the returned
// func waits for the profiles and writes them there.
func profileServers(b *testing.B, d time.Duration) func() error {
	dir := os.Getenv("ROSTER_BENCH_PPROF")
	if dir == "" || len(benchPprof) == 0 {
		return func() error { return nil }
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	secs := int((d + time.Second - 1) / time.Second)
	errs := make(chan error, len(benchPprof))
	for i, addr := range benchPprof {
		name := filepath.Join(dir, fmt.Sprintf("%s-%s.pprof", strings.ReplaceAll(b.Name(), "/", "_"), benchProcs[i].name))
		go func() {
			errs <- fetchProfile(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", addr, secs), name)
		}()
	}
	return func() error {
		var all []error
		for range benchPprof {
			if err := <-errs; err != nil {
				all = append(all, err)
			}
		}
		if len(all) == 0 {
			b.Logf("CPU profiles of the servers written to %s", dir)
		}
		return errors.Join(all...)
	}
}

func fetchProfile(url, path string) error {
	resp, err := (&http.Client{Timeout: 5 * time.Minute}).Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

var (
	fsyncOnce sync.Once
	fsyncMed  time.Duration
	fsyncErr  error
)

// fsyncLatency is the median time to append 4 KiB and fsync it, on the
// file system holding the servers' data directories (os.TempDir), measured
// once per run. A Raft commit needs at least one such fsync on the leader
// and one on a follower, so it bounds from below what one client can see.
func fsyncLatency(b *testing.B) time.Duration {
	fsyncOnce.Do(func() {
		f, err := os.CreateTemp("", "roster-fsync-")
		if err != nil {
			fsyncErr = err
			return
		}
		defer os.Remove(f.Name())
		defer f.Close()
		page := make([]byte, 4096)
		var ds []time.Duration
		for range 200 {
			t0 := time.Now()
			if _, err := f.Write(page); err != nil {
				fsyncErr = err
				return
			}
			if err := f.Sync(); err != nil {
				fsyncErr = err
				return
			}
			ds = append(ds, time.Since(t0))
		}
		slices.Sort(ds)
		fsyncMed = ds[len(ds)/2]
	})
	if fsyncErr != nil {
		b.Fatalf("measuring fsync in %s: %v", os.TempDir(), fsyncErr)
	}
	return fsyncMed
}

var value100 = []byte(strings.Repeat("v", 100))

func kvPut(c *keepAlive, i int) error {
	return c.expect200("PUT", "/v1/kv/bench/"+strconv.Itoa(i%10000), value100)
}

func kvGetConsistent(c *keepAlive, i int) error {
	return c.expect200("GET", "/v1/kv/bench/"+strconv.Itoa(i%100)+"?consistent", nil)
}

// keepAlive is one HTTP/1.1 keep-alive connection driven by hand: write a
// request, read the status line, headers and Content-Length body. The
// benchmarks measure the servers; net/http's client spent about 100 µs of
// CPU per request here (two goroutines per connection, a request and
// response object per call), CPU a 2-core machine then takes from the
// servers. This client spends a fraction of that. It is not a general
// client: chunked responses are refused, as the API's small answers
// always carry a Content-Length.
type keepAlive struct {
	addr string
	conn net.Conn
	r    *bufio.Reader
	buf  []byte
}

const keepAliveTimeout = 30 * time.Second

func (k *keepAlive) expect200(method, path string, body []byte) error {
	status, resp, err := k.do(method, path, body)
	if err != nil {
		k.close()
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if status != 200 {
		return fmt.Errorf("%s %s: status %d: %s", method, path, status, resp)
	}
	return nil
}

func (k *keepAlive) do(method, path string, body []byte) (int, []byte, error) {
	if k.conn == nil {
		c, err := net.DialTimeout("tcp", k.addr, keepAliveTimeout)
		if err != nil {
			return 0, nil, err
		}
		k.conn, k.r = c, bufio.NewReader(c)
	}
	k.conn.SetDeadline(time.Now().Add(keepAliveTimeout))
	b := append(k.buf[:0], method...)
	b = append(b, ' ')
	b = append(b, path...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, k.addr...)
	b = append(b, "\r\nContent-Length: "...)
	b = strconv.AppendInt(b, int64(len(body)), 10)
	b = append(b, "\r\n\r\n"...)
	b = append(b, body...)
	k.buf = b
	if _, err := k.conn.Write(b); err != nil {
		return 0, nil, err
	}
	return k.readResponse()
}

// readResponse parses "HTTP/1.1 200 OK", the headers up to the blank
// line, then Content-Length bytes of body.
func (k *keepAlive) readResponse() (int, []byte, error) {
	line, err := k.r.ReadSlice('\n')
	if err != nil {
		return 0, nil, err
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return 0, nil, fmt.Errorf("malformed status line %q", line)
	}
	status, err := strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, nil, fmt.Errorf("malformed status line %q", line)
	}
	length := -1
	for range 100 { // bounded: the API sends a handful of headers
		h, err := k.r.ReadSlice('\n')
		if err != nil {
			return 0, nil, err
		}
		h = bytes.TrimRight(h, "\r\n")
		if len(h) == 0 {
			if length < 0 {
				return 0, nil, errors.New("response without Content-Length (chunked?); this client reads only sized bodies")
			}
			resp := make([]byte, length)
			_, err := io.ReadFull(k.r, resp)
			return status, resp, err
		}
		name, value, _ := bytes.Cut(h, []byte(":"))
		if bytes.EqualFold(name, []byte("Content-Length")) {
			if length, err = strconv.Atoi(string(bytes.TrimSpace(value))); err != nil || length < 0 {
				return 0, nil, fmt.Errorf("bad Content-Length %q", value)
			}
		}
	}
	return 0, nil, errors.New("more than 100 response headers")
}

func (k *keepAlive) close() {
	if k.conn != nil {
		k.conn.Close()
		k.conn = nil
	}
}

func BenchmarkCluster_KVPut64Clients(b *testing.B) { runClients(b, 64, kvPut) }

func BenchmarkCluster_KVPut1Client(b *testing.B) { runClients(b, 1, kvPut) }

// BenchmarkCluster_KVPut1ClientLeader and ..Follower split the one-client
// figure by where the client is connected: KVPut1Client talks to the first
// server, which is the leader in one run out of three, so its latency
// swings between runs by a forwarding hop.
func BenchmarkCluster_KVPut1ClientLeader(b *testing.B) {
	runClientsOn(b, []*serverProc{benchRole(b, true)}, 1, kvPut)
}

func BenchmarkCluster_KVPut1ClientFollower(b *testing.B) {
	runClientsOn(b, []*serverProc{benchRole(b, false)}, 1, kvPut)
}

// benchRole is the bench cluster's leader, or one of its followers.
func benchRole(b *testing.B, leader bool) *serverProc {
	procs := benchCluster(b)
	addr, err := agreedLeader(procs)
	if err != nil {
		b.Fatal(err)
	}
	for _, p := range procs {
		if (addr == fmt.Sprintf("127.0.0.1:%d", p.ports[2])) == leader {
			return p
		}
	}
	b.Fatalf("no server matches the leader address %s", addr)
	return nil
}

func BenchmarkCluster_KVGetConsistent64Clients(b *testing.B) {
	procs := benchCluster(b)
	c := &keepAlive{addr: strings.TrimPrefix(procs[0].base(), "http://")}
	defer c.close()
	for i := range 100 {
		if err := kvPut(c, i); err != nil {
			b.Fatal(err)
		}
	}
	runClients(b, 64, kvGetConsistent)
}
