package httpapi

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
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

// Benchmarks against a real `roster agent -dev` process over TCP (the
// binary named by ROSTER_BIN, as make bench sets it): 10,000 clients with
// a connection each. The agent runs in its own process so that its
// sockets and this process's do not share one fd limit, and its RSS is
// the agent's own.

// agentProcess is a running dev agent.
type agentProcess struct {
	base  string
	pid   int
	pprof string // its profiling address, "" when off
}

// startAgentProcess starts ROSTER_BIN agent -dev, or skips the benchmark
// saying why it cannot run.
func startAgentProcess(b *testing.B) *agentProcess {
	bin := os.Getenv("ROSTER_BIN")
	if bin == "" {
		b.Skip("needs a roster binary: run via make bench, or set ROSTER_BIN=path/to/roster")
	}
	// Port 0 everywhere: the agent binds the kernel's picks and logs them,
	// where this reads them (a port picked free here and released could
	// be taken by another process before the agent bound it).
	cmd := exec.Command(bin, "agent", "-dev", "-node", "bench", "-http-port", "0", "-dns-port", "0",
		"-server-port", "0", "-serf-lan-port", "0", "-serf-wan-port", "0")
	pprof := os.Getenv("ROSTER_BENCH_PPROF") != ""
	if pprof {
		cmd.Env = append(os.Environ(), "ROSTER_PPROF_ADDR=127.0.0.1:0")
	}
	stderr := &tailBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		b.Fatalf("starting %s: %v", bin, err)
	}
	b.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if b.Failed() {
			b.Logf("agent log tail:\n%s", stderr.String())
		}
	})
	a := &agentProcess{pid: cmd.Process.Pid}
	err := testkit.Poll(20*time.Second, func() error {
		head := stderr.Head()
		m := httpServingLine.FindStringSubmatch(head)
		if m == nil {
			return errors.New("the agent has not logged its HTTP address")
		}
		a.base = "http://" + m[1]
		if pprof {
			if m = pprofServingLine.FindStringSubmatch(head); m == nil {
				return errors.New("the agent has not logged its profiling address")
			}
			a.pprof = m[1]
		}
		return nil
	})
	if err != nil {
		b.Fatalf("dev agent did not serve: %v", err)
	}
	if err := testkit.Poll(20*time.Second, func() error { return getOK(a.base + "/v1/status/leader") }); err != nil {
		b.Fatalf("dev agent did not serve: %v", err)
	}
	return a
}

// profile starts a CPU profile of the agent for the next d when
// ROSTER_BENCH_PPROF names a directory (the agent then serves
// /debug/pprof); the returned func waits for it and writes it there as
// <benchmark>-<round>.pprof. Merge the rounds with
// go tool pprof -proto dir/*.pprof.
func (a *agentProcess) profile(b *testing.B, round int, d time.Duration) (wait func()) {
	dir := os.Getenv("ROSTER_BENCH_PPROF")
	if a.pprof == "" || dir == "" {
		return func() {}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	url := fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", a.pprof, max(1, int(d/time.Second)))
	name := filepath.Join(dir, fmt.Sprintf("%s-%d.pprof", strings.ReplaceAll(b.Name(), "/", "_"), round))
	done := make(chan error, 1)
	go func() {
		resp, err := http.Get(url)
		if err != nil {
			done <- err
			return
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err == nil {
			err = os.WriteFile(name, body, 0o644)
		}
		done <- err
	}()
	// The round starts once the agent profiles (or the request has already
	// failed, which wait reports). A profile that does not start in time
	// is still written, missing the round's start: a diagnostic, not a
	// measurement.
	if err := testkit.Poll(10*time.Second, func() error {
		if len(done) > 0 {
			return nil
		}
		return a.profiling()
	}); err != nil {
		b.Logf("profile %s: %v", name, err)
	}
	return func() {
		if err := <-done; err != nil {
			b.Logf("profile %s: %v", name, err)
		}
	}
}

// profiling says whether the agent's CPU profile is running: its
// runtime/pprof.profileWriter goroutine exists from StartCPUProfile until
// the profile is written.
func (a *agentProcess) profiling() error {
	resp, err := http.Get("http://" + a.pprof + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if !bytes.Contains(body, []byte("runtime/pprof.profileWriter")) {
		return errors.New("the agent's CPU profile has not started")
	}
	return nil
}

// The agent's log lines for its HTTP listener and its profiling one.
var (
	httpServingLine  = regexp.MustCompile(`msg=serving .*component=http addr=(\S+)`)
	pprofServingLine = regexp.MustCompile(`msg="serving profiling endpoints" addr=(\S+)`)
)

// tailBuffer keeps the last 4 KB written to it, and the first 16 KB,
// where the agent logs the addresses it serves on.
type tailBuffer struct {
	mu   sync.Mutex
	head []byte
	buf  []byte
}

// Head returns the first 16 KB written.
func (t *tailBuffer) Head() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.head)
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if room := 16<<10 - len(t.head); room > 0 {
		t.head = append(t.head, p[:min(room, len(p))]...)
	}
	t.buf = append(t.buf, p...)
	if len(t.buf) > 4096 {
		t.buf = t.buf[len(t.buf)-4096:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}

func getOK(url string) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || strings.Trim(strings.TrimSpace(string(body)), `"`) == "" {
		return fmt.Errorf("%s: %s %q", url, resp.Status, body)
	}
	return nil
}

// raiseFDLimit lifts this process's open-file limit to need, or skips.
func raiseFDLimit(b *testing.B, need uint64) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		b.Skipf("cannot read the open-file limit: %v", err)
	}
	if lim.Cur >= need {
		return
	}
	lim.Cur = min(need, lim.Max)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil || lim.Cur < need {
		b.Skipf("needs %d open files, the hard limit allows %d (raise it with ulimit -Hn): %v", need, lim.Max, err)
	}
}

// put sends a PUT and fails the benchmark unless it is answered 200.
func (a *agentProcess) put(b *testing.B, path string, body []byte) {
	req, _ := http.NewRequest("PUT", a.base+path, bytes.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		b.Fatalf("PUT %s: %s %s", path, resp.Status, msg)
	}
}

// gauge reads one gauge of /v1/agent/metrics.
func (a *agentProcess) gauge(name string) (float64, error) {
	resp, err := http.Get(a.base + "/v1/agent/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var m struct {
		Gauges []struct {
			Name  string
			Value float64
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		return 0, err
	}
	for _, g := range m.Gauges {
		if g.Name == name {
			return g.Value, nil
		}
	}
	return 0, fmt.Errorf("no gauge %s", name)
}

// cpuOf is a process's CPU time so far (user + system, /proc/pid/stat).
func cpuOf(pid int) time.Duration {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(fields) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(fields[11], 10, 64)
	st, _ := strconv.ParseInt(fields[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond // USER_HZ is 100 on Linux
}

// rssMBOf is a process's resident set in MB.
func rssMBOf(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
			return kb / 1024
		}
	}
	return 0
}

// minWakeRounds is the fewest wake rounds BenchmarkAgentBlockingWake runs.
const minWakeRounds = 5

// BenchmarkAgentBlockingWake: 10,000 clients, each on its own TCP
// connection, block on one key of a dev agent (?index=&wait=60s); one PUT
// changes it; all-woken-ms is from sending the PUT until every client has
// its response. Reports, as medians over the rounds, the agent's RSS with
// the 10,000 parked (and per client), the agent's CPU time for the wake
// (and per woken client) and the clients' own.
func BenchmarkAgentBlockingWake(b *testing.B) {
	const clients = 10000
	raiseFDLimit(b, clients+1000)
	a := startAgentProcess(b)
	conns := make([]*benchConn, clients) // kept alive across rounds
	for k := range conns {
		conns[k] = newBenchConn(a.base)
	}
	b.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	var wakeMs, rss, agentCPU, benchCPU []float64
	// At least minWakeRounds rounds, so that the medians reported are of
	// several wakes even at make bench's -benchtime 1x: one round's figure
	// swings with whatever else the two cores run.
	for i := 0; i < max(b.N, minWakeRounds); i++ {
		a.put(b, "/v1/kv/hot", []byte("x"))
		idx := kvIndex(b, a.base+"/v1/kv/hot")
		path := fmt.Sprintf("/v1/kv/hot?index=%d&wait=60s", idx)
		var wg sync.WaitGroup
		done := make([]time.Time, clients)
		for k, c := range conns {
			wg.Go(func() {
				resp, body, err := c.get(path)
				done[k] = time.Now()
				if err := mustOK(path, resp, body, err); err != nil {
					b.Error(err)
				}
			})
		}
		if err := testkit.Poll(2*time.Minute, func() error {
			if n, err := a.gauge("roster.catalog.waiters"); err != nil || n < clients {
				return fmt.Errorf("%v of %d clients parked (%v)", n, clients, err)
			}
			return nil
		}); err != nil {
			b.Fatal(err)
		}
		rss = append(rss, rssMBOf(a.pid))
		profiled := a.profile(b, i, 2*time.Second)
		cpuA, cpuB := cpuOf(a.pid), cpuTime()
		start := time.Now()
		a.put(b, "/v1/kv/hot", []byte("y"))
		wg.Wait()
		agentCPU = append(agentCPU, float64((cpuOf(a.pid) - cpuA).Milliseconds()))
		benchCPU = append(benchCPU, float64((cpuTime() - cpuB).Milliseconds()))
		profiled()
		last := start
		for _, t := range done {
			last = later(last, t)
		}
		wakeMs = append(wakeMs, float64(last.Sub(start).Microseconds())/1000)
	}
	b.ReportMetric(median(wakeMs), "all-woken-ms")
	b.ReportMetric(median(agentCPU), "agent-cpu-ms")
	b.ReportMetric(median(agentCPU)*1000/clients, "agent-cpu-µs/woken")
	b.ReportMetric(median(benchCPU), "clients-cpu-ms")
	b.ReportMetric(median(rss), "agent-rss-MB")
	b.ReportMetric(median(rss)*1024/clients, "agent-KB/client")
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func kvIndex(b *testing.B, url string) uint64 {
	resp, err := http.Get(url)
	if err != nil {
		b.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	idx, err := strconv.ParseUint(resp.Header.Get("X-Consul-Index"), 10, 64)
	if err != nil {
		b.Fatalf("X-Consul-Index %q: %v", resp.Header.Get("X-Consul-Index"), err)
	}
	return idx
}

// registerOnAgent registers n passing instances of web, 10 per node, with
// 16 writers.
func registerOnAgent(b *testing.B, a *agentProcess, n int) {
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Go(func() {
			for i := w; i < n; i += 16 {
				a.put(b, "/v1/catalog/register", webRegistration(i, "passing"))
			}
		})
	}
	wg.Wait()
}

func webRegistration(i int, status string) []byte {
	body, _ := json.Marshal(map[string]any{"Node": fmt.Sprintf("node-%04d", i/10), "Address": fmt.Sprintf("10.0.%d.%d", i/256, i%256),
		"Service": map[string]any{"ID": fmt.Sprintf("web-%d", i), "Service": "web", "Port": 8000 + i, "Tags": []string{"v1"}},
		"Check":   map[string]any{"CheckID": fmt.Sprintf("service:web-%d", i), "Name": "web", "Status": status, "ServiceID": fmt.Sprintf("web-%d", i)}})
	return body
}

// lightWatcher follows the registry as the Go client does (compact
// blocking delta pulls, a full pull on 410 or a gap) without keeping a
// mirror, so that 10,000 of them fit in one process. It records when it
// reached each index.
type lightWatcher struct {
	index   atomic.Uint64
	mu      sync.Mutex
	reached []reach
	pulls   int
	fulls   int
	errors  int
}

type reach struct {
	to uint64
	at time.Time
}

func (lw *lightWatcher) run(ctx context.Context, c *benchConn) {
	defer c.closeWith(ctx)()
	var path []byte
	for ctx.Err() == nil {
		since := lw.index.Load()
		path = fmt.Appendf(path[:0], "/v1/roster/registry/delta?format=compact&wait=60s&since=%d", since)
		resp, body, err := c.get(string(path))
		if err != nil {
			lw.mu.Lock()
			lw.errors++
			lw.mu.Unlock()
			// As the Go client: back off 50-100 ms before asking again.
			sleepCtx(ctx, 50*time.Millisecond+time.Duration(rand.Int64N(int64(50*time.Millisecond))))
			continue
		}
		now := time.Now()
		lw.mu.Lock()
		lw.pulls++
		lw.mu.Unlock()
		switch resp.StatusCode {
		case http.StatusOK:
			from, to, ok := compactRange(body)
			if !ok || from != since {
				lw.fullPull(c)
				continue
			}
			lw.mu.Lock()
			lw.reached = append(lw.reached, reach{to, now})
			lw.mu.Unlock()
			lw.index.Store(to)
		case http.StatusGone:
			lw.fullPull(c)
		}
	}
}

func (lw *lightWatcher) fullPull(c *benchConn) {
	resp, body, err := c.get("/v1/roster/registry")
	if err != nil || resp.StatusCode != http.StatusOK {
		return
	}
	var r io.Reader = bytes.NewReader(body)
	if resp.Header.Get("Content-Encoding") == "gzip" {
		if r, err = gzip.NewReader(r); err != nil {
			return
		}
	}
	var reg struct{ Index uint64 }
	if json.NewDecoder(r).Decode(&reg) != nil {
		return
	}
	lw.mu.Lock()
	lw.fulls++
	lw.mu.Unlock()
	lw.index.Store(reg.Index)
}

// firstPast is when the watcher first reached an index above idx.
func (lw *lightWatcher) firstPast(idx uint64) (time.Time, bool) {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	for _, r := range lw.reached {
		if r.to > idx {
			return r.at, true
		}
	}
	return time.Time{}, false
}

// BenchmarkAgentDeltaHerd: 10,000 delta watchers on a dev agent with
// 1,000 instances, one TCP connection each. "herd": all connect at once
// and ask for the changes since the same index (a reconnect storm after a
// restart). Then 20 changes, one at a time, each waking all 10,000
// blocked pulls. Every latency is client-observed, end to end, taken by
// the watcher when it has read its answer (see herdLegend); none is a
// server-side handling time. fallback-% is full pulls per pull over the
// run. CPU: herd-agent-cpu-µs/watcher is the agent's CPU time for the
// herd alone (each watcher's connect, its first answer and its next pull
// parked), herd-clients-cpu-µs/watcher the same for this process (the
// 10,000 watchers share the agent's two cores); agent-cpu-ms covers the
// herd and the 20 wakes. Each round starts once the previous round's
// watchers are gone, so that their teardown is not counted as the herd's.
func BenchmarkAgentDeltaHerd(b *testing.B) {
	const watchers, changes = 10000, 20
	raiseFDLimit(b, watchers+1000)
	a := startAgentProcess(b)
	registerOnAgent(b, a, 1000)
	var herd, herdCPU, clientCPU, p50, p99, spread, fallback, agentCPU, failed []float64
	for i := 0; i < b.N; i++ {
		status := [2]string{"warning", "passing"}
		if i%2 == 1 {
			status = [2]string{"passing", "warning"}
		}
		a.waitWaiters(b, "the previous round's watchers to leave", func(n float64) bool { return n == 0 })
		since := kvIndex(b, a.base+"/v1/roster/registry")
		a.put(b, "/v1/catalog/register", webRegistration(0, status[0]))
		profiled := a.profile(b, i, 5*time.Second)
		cpu0, self0 := cpuOf(a.pid), cpuTime()
		burst := time.Now()
		ws, stop := startLightWatchers(a.base, watchers, since)
		lat := waitAllPast(b, ws, since, burst)
		herd = append(herd, pct(lat, 99))
		a.waitWaiters(b, "every watcher's next pull to park", func(n float64) bool { return n >= watchers })
		herdCPU = append(herdCPU, float64((cpuOf(a.pid) - cpu0).Microseconds()))
		clientCPU = append(clientCPU, float64((cpuTime() - self0).Microseconds()))
		profiled()
		var wake, spreads []float64
		for c := range changes {
			prev := minIndex(ws)
			t0 := time.Now()
			a.put(b, "/v1/catalog/register", webRegistration(1+c, status[c%2]))
			lat := waitAllPast(b, ws, prev, t0)
			wake = append(wake, lat...)
			spreads = append(spreads, pct(lat, 99)-pct(lat, 1))
		}
		agentCPU = append(agentCPU, float64((cpuOf(a.pid) - cpu0).Milliseconds()))
		pulls, fulls, errs := stop()
		failed = append(failed, float64(errs))
		p50, p99 = append(p50, pct(wake, 50)), append(p99, pct(wake, 99))
		spread = append(spread, median(spreads))
		fallback = append(fallback, 100*float64(fulls)/float64(pulls))
	}
	herdLegendOnce.Do(func() { b.Log(herdLegend) })
	b.ReportMetric(median(herd), "herd-client-p99-ms")
	b.ReportMetric(median(herdCPU)/watchers, "herd-agent-cpu-µs/watcher")
	b.ReportMetric(median(clientCPU)/watchers, "herd-clients-cpu-µs/watcher")
	b.ReportMetric(median(p50), "wake-client-p50-ms")
	b.ReportMetric(median(p99), "wake-client-p99-ms")
	b.ReportMetric(median(spread), "wake-spread-ms")
	b.ReportMetric(median(fallback), "fallback-%")
	b.ReportMetric(median(agentCPU), "agent-cpu-ms")
	b.ReportMetric(median(failed), "failed-requests")
}

// herdLegendOnce prints herdLegend once per process, not once per b.N.
var herdLegendOnce sync.Once

// herdLegend defines BenchmarkAgentDeltaHerd's latencies in its output.
const herdLegend = `latencies are client-observed, end to end (medians over rounds):
  herd-client-p99-ms  from the burst (10,000 watchers dial at once, each on a new TCP
                      connection) to the 99th percentile watcher having read its first
                      answer: dial, accept queue, the agent's scheduling and handling
  wake-client-pNN-ms  from sending a change's PUT to each watcher having read the delta
                      that carries it (wake-up jitter included)
  wake-spread-ms      p1 to p99 of one change's wake-ups: the jitter spreading them`

// waitWaiters polls the agent's count of parked blocking reads until ok,
// every 50 ms: each poll is a metrics request the agent's CPU figures
// count.
func (a *agentProcess) waitWaiters(b *testing.B, what string, ok func(n float64) bool) {
	err := testkit.PollEvery(50*time.Millisecond, 2*time.Minute, func() error {
		n, err := a.gauge("roster.catalog.waiters")
		if err != nil || !ok(n) {
			return fmt.Errorf("%v reads parked (%v)", n, err)
		}
		return nil
	})
	if err != nil {
		b.Fatalf("waiting for %s: %v", what, err)
	}
}

// startLightWatchers starts n watchers at index since, all at once; stop
// ends them and returns their pulls, full pulls and failed requests.
func startLightWatchers(base string, n int, since uint64) ([]*lightWatcher, func() (pulls, fulls, errs int)) {
	ctx, cancel := context.WithCancel(context.Background())
	ws := make([]*lightWatcher, n)
	var wg sync.WaitGroup
	for k := range ws {
		ws[k] = &lightWatcher{}
		ws[k].index.Store(since)
	}
	for _, w := range ws {
		wg.Go(func() { w.run(ctx, newBenchConn(base)) })
	}
	return ws, func() (pulls, fulls, errs int) {
		cancel()
		wg.Wait()
		for _, w := range ws {
			pulls, fulls, errs = pulls+w.pulls, fulls+w.fulls, errs+w.errors
		}
		return pulls, fulls, errs - n // each watcher's last pull ends with ctx
	}
}

// waitAllPast waits until every watcher is past idx and returns each
// one's latency in ms from t0.
func waitAllPast(b *testing.B, ws []*lightWatcher, idx uint64, t0 time.Time) []float64 {
	err := testkit.Poll(2*time.Minute, func() error {
		if m := minIndex(ws); m <= idx {
			return fmt.Errorf("a watcher is still at index %d, not past %d", m, idx)
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	lat := make([]float64, 0, len(ws))
	for _, w := range ws {
		if at, ok := w.firstPast(idx); ok {
			lat = append(lat, float64(at.Sub(t0).Microseconds())/1000)
		}
	}
	return lat
}

func minIndex(ws []*lightWatcher) uint64 {
	m := uint64(1<<64 - 1)
	for _, w := range ws {
		m = min(m, w.index.Load())
	}
	return m
}

// pct is the p-th percentile of xs.
func pct(xs []float64, p int) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*p/100)]
}
