package main

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"roster/internal/testkit"
)

// BenchmarkCompare_Etcd runs the same load against roster and etcd, side by
// side in one run: three `roster agent -server -bootstrap-expect 3`
// processes and three etcd members (Debian's etcd-server, default tuning,
// fsync on), all on 127.0.0.1 with their data dirs on the same disk; the
// same HTTP keep-alive client with 64 concurrent requests spread over the
// three servers, 100-byte values. Writes are roster `PUT /v1/kv/..` and
// etcd `POST /v3/kv/put` (the v3 JSON gateway); reads are linearizable:
// roster `GET /v1/kv/..?consistent` and etcd `POST /v3/kv/range` (its
// default, serializable=false). Each sub-benchmark alternates the two
// systems for compareRounds windows and reports the medians and the
// roster/etcd ratios.
func BenchmarkCompare_Etcd(b *testing.B) {
	bin := os.Getenv("ETCD_BIN")
	if bin == "" {
		var err error
		if bin, err = exec.LookPath("etcd"); err != nil {
			b.Skip("etcd is not installed (Debian package etcd-server; `make bench` installs it): skipping the roster/etcd comparison")
		}
	}
	etcd := startEtcdCluster(b, bin, 3)
	roster := startServerProcsTB(b, 3)
	b.Cleanup(func() { stopProcs(roster) })
	if err := testkit.Poll(20*time.Second, func() error { _, err := agreedLeader(roster); return err }); err != nil {
		b.Fatalf("roster cluster: %v", err)
	}
	var rosterBases []string
	for _, p := range roster {
		rosterBases = append(rosterBases, p.base())
	}
	systems := []compareSystem{
		{name: "roster", bases: rosterBases, put: rosterPut, get: rosterGetConsistent},
		{name: "etcd", bases: etcd.bases(), put: etcdPut, get: etcdRange},
	}
	hc := benchHTTPClient(compareClients)
	for _, s := range systems {
		for i := range compareReadKeys { // the keys the read phase reads
			if err := s.put(hc, s.bases[0], i); err != nil {
				b.Fatalf("%s: preloading: %v", s.name, err)
			}
		}
	}
	b.Run("writes", func(b *testing.B) {
		compareLoad(b, hc, systems, func(s compareSystem) compareOp { return s.put })
	})
	b.Run("linearizable-reads", func(b *testing.B) {
		compareLoad(b, hc, systems, func(s compareSystem) compareOp { return s.get })
	})
}

const (
	compareClients  = 64
	compareRounds   = 5
	compareWarmup   = 500 * time.Millisecond
	compareWindow   = 2 * time.Second
	compareReadKeys = 100
	compareKeys     = 10000
)

// compareOp performs request i against the server at base.
type compareOp func(c *http.Client, base string, i int) error

type compareSystem struct {
	name     string
	bases    []string
	put, get compareOp
}

// compareLoad measures op on each system compareRounds times, alternating
// which system goes first, and reports the medians. The ratios are the
// medians of each round's ratio: a round's two windows are adjacent in
// time, so load from elsewhere on the machine hits both alike.
func compareLoad(b *testing.B, hc *http.Client, systems []compareSystem, op func(compareSystem) compareOp) {
	for _, s := range systems { // one window each to warm caches and connections
		if _, err := runLoad(hc, s.bases, compareClients, op(s)); err != nil {
			b.Fatalf("%s: warm-up: %v", s.name, err)
		}
	}
	results := map[string][]loadResult{}
	var speedup, p99gain []float64
	for range b.N {
		for round := range compareRounds {
			got := map[string]loadResult{}
			for k := range systems {
				s := systems[(k+round)%len(systems)]
				r, err := runLoad(hc, s.bases, compareClients, op(s))
				if err != nil {
					b.Fatalf("%s: %v", s.name, err)
				}
				got[s.name] = r
				results[s.name] = append(results[s.name], r)
			}
			ro, et := got["roster"], got["etcd"]
			speedup = append(speedup, ro.opsPerSec/et.opsPerSec)
			p99gain = append(p99gain, durMs(et.p99)/durMs(ro.p99))
			b.Logf("round %d: roster %5.0f ops/s p50 %5.1f p99 %5.1f ms | etcd %5.0f ops/s p50 %5.1f p99 %5.1f ms | x%.2f",
				round+1, ro.opsPerSec, durMs(ro.p50), durMs(ro.p99), et.opsPerSec, durMs(et.p50), durMs(et.p99), speedup[len(speedup)-1])
		}
	}
	for name, rs := range results {
		med := medianResult(rs)
		b.ReportMetric(med.opsPerSec, name+"-ops/s")
		b.ReportMetric(durMs(med.p50), name+"-p50-ms")
		b.ReportMetric(durMs(med.p99), name+"-p99-ms")
	}
	b.ReportMetric(compareMedian(speedup), "roster/etcd-throughput")
	b.ReportMetric(compareMedian(p99gain), "etcd/roster-p99")
}

func compareMedian(v []float64) float64 {
	v = slices.Clone(v)
	slices.Sort(v)
	return v[len(v)/2]
}

func durMs(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

type loadResult struct {
	opsPerSec float64
	p50, p99  time.Duration
}

// medianResult takes each figure's median over the rounds.
func medianResult(rs []loadResult) loadResult {
	var ops, p50, p99 []float64
	for _, r := range rs {
		ops, p50, p99 = append(ops, r.opsPerSec), append(p50, float64(r.p50)), append(p99, float64(r.p99))
	}
	return loadResult{opsPerSec: compareMedian(ops), p50: time.Duration(compareMedian(p50)), p99: time.Duration(compareMedian(p99))}
}

func benchHTTPClient(clients int) *http.Client {
	tr := &http.Transport{MaxIdleConns: 4 * clients, MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients}
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// runLoad keeps clients requests in flight, client c talking to
// bases[c%len(bases)], for compareWarmup (not counted) and then
// compareWindow; requests started in the window count. Any failed request
// fails the measurement: a system must not look fast by failing.
func runLoad(hc *http.Client, bases []string, clients int, op compareOp) (loadResult, error) {
	var next atomic.Int64
	var firstErr atomic.Value
	lat := make([][]time.Duration, clients)
	lastDone := make([]time.Time, clients)
	start := time.Now().Add(compareWarmup)
	end := start.Add(compareWindow)
	var wg sync.WaitGroup
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			base := bases[c%len(bases)]
			for n := 0; n < 1_000_000; n++ {
				t0 := time.Now()
				if !t0.Before(end) || firstErr.Load() != nil {
					return
				}
				if err := op(hc, base, int(next.Add(1))); err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				if !t0.Before(start) {
					now := time.Now()
					lat[c] = append(lat[c], now.Sub(t0))
					lastDone[c] = now
				}
			}
		}()
	}
	wg.Wait()
	if err, ok := firstErr.Load().(error); ok {
		return loadResult{}, err
	}
	var all []time.Duration
	finish := end
	for c := range clients {
		all = append(all, lat[c]...)
		if lastDone[c].After(finish) {
			finish = lastDone[c]
		}
	}
	if len(all) == 0 {
		return loadResult{}, errors.New("no request completed in the window")
	}
	slices.Sort(all)
	return loadResult{opsPerSec: float64(len(all)) / finish.Sub(start).Seconds(),
		p50: all[len(all)/2], p99: all[len(all)*99/100]}, nil
}

// compareValue is the 100-byte value every write stores.
var compareValue = strings.Repeat("v", 100)

func rosterPut(c *http.Client, base string, i int) error {
	req, _ := http.NewRequest("PUT", fmt.Sprintf("%s/v1/kv/bench/%d", base, i%compareKeys), strings.NewReader(compareValue))
	_, err := compareDo(c, req)
	return err
}

func rosterGetConsistent(c *http.Client, base string, i int) error {
	req, _ := http.NewRequest("GET", fmt.Sprintf("%s/v1/kv/bench/%d?consistent", base, i%compareReadKeys), nil)
	_, err := compareDo(c, req)
	return err
}

// etcdPut writes the key and value rosterPut does, through etcd's gateway.
func etcdPut(c *http.Client, base string, i int) error {
	key := fmt.Sprintf("bench/%d", i%compareKeys)
	body := fmt.Sprintf(`{"key":%q,"value":%q}`, b64(key), b64(compareValue))
	_, err := etcdPost(c, base+"/v3/kv/put", body)
	return err
}

// etcdRange reads one preloaded key linearizably (serializable=false is
// etcd's default) and checks it was found.
func etcdRange(c *http.Client, base string, i int) error {
	key := fmt.Sprintf("bench/%d", i%compareReadKeys)
	resp, err := etcdPost(c, base+"/v3/kv/range", fmt.Sprintf(`{"key":%q}`, b64(key)))
	if err == nil && !bytes.Contains(resp, []byte(`"kvs"`)) {
		err = fmt.Errorf("etcd range %s: key not found: %s", key, resp)
	}
	return err
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func etcdPost(c *http.Client, url, body string) ([]byte, error) {
	req, _ := http.NewRequest("POST", url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	return compareDo(c, req)
}

// compareDo sends req and returns the body of a 200 answer; the body is read
// to the end so the connection is reused.
func compareDo(c *http.Client, req *http.Request) ([]byte, error) {
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	out, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("%s %s: %s %s", req.Method, req.URL, resp.Status, out)
	}
	return out, nil
}

// etcdMember is one etcd process; its data dir and log live in dir.
type etcdMember struct {
	name         string
	client, peer int
	dir          string
	cmd          *exec.Cmd
	done         chan error
}

type etcdCluster []*etcdMember

func (c etcdCluster) bases() []string {
	var out []string
	for _, m := range c {
		out = append(out, fmt.Sprintf("http://127.0.0.1:%d", m.client))
	}
	return out
}

// startEtcdCluster starts n members on loopback with data dirs under the
// system temp dir (the disk roster's benchmark servers use), waits until
// every member answers a linearizable read, and stops them at cleanup.
func startEtcdCluster(b *testing.B, bin string, n int) etcdCluster {
	// Named ports, unlike the roster agents' port 0: every member must be
	// told all peers' URLs (--initial-cluster) before any of them starts.
	ports := testkit.FreePorts(b, 2*n)
	var c etcdCluster
	var initial []string
	for i := range n {
		m := &etcdMember{name: fmt.Sprintf("etcd%d", i+1), client: ports[2*i], peer: ports[2*i+1], done: make(chan error, 1)}
		c = append(c, m)
		initial = append(initial, fmt.Sprintf("%s=http://127.0.0.1:%d", m.name, m.peer))
	}
	b.Cleanup(func() { c.stop(b) })
	for _, m := range c {
		if err := m.start(bin, strings.Join(initial, ",")); err != nil {
			b.Fatalf("starting %s: %v", m.name, err)
		}
	}
	hc := &http.Client{Timeout: 2 * time.Second}
	err := testkit.Poll(30*time.Second, func() error {
		for i, base := range c.bases() {
			if _, err := etcdPost(hc, base+"/v3/kv/range", `{"key":"AA=="}`); err != nil {
				return fmt.Errorf("%s: %v", c[i].name, err)
			}
		}
		return nil
	})
	if err != nil {
		b.Fatalf("etcd cluster not serving: %v\n%s", err, c.logs())
	}
	return c
}

func (m *etcdMember) start(bin, initial string) error {
	dir, err := os.MkdirTemp("", "roster-etcd-bench-")
	if err != nil {
		return err
	}
	m.dir = dir
	log, err := os.Create(filepath.Join(dir, "etcd.log"))
	if err != nil {
		return err
	}
	defer log.Close()
	client, peer := fmt.Sprintf("http://127.0.0.1:%d", m.client), fmt.Sprintf("http://127.0.0.1:%d", m.peer)
	m.cmd = exec.Command(bin, "--name", m.name, "--data-dir", filepath.Join(dir, "data"),
		"--listen-client-urls", client, "--advertise-client-urls", client,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
		"--initial-cluster", initial, "--initial-cluster-state", "new",
		"--initial-cluster-token", "roster-bench", "--logger", "zap", "--log-level", "warn")
	m.cmd.Stdout, m.cmd.Stderr = log, log
	dieWithParent(m.cmd)
	if err := m.cmd.Start(); err != nil {
		return err
	}
	go func() { m.done <- m.cmd.Wait() }()
	return nil
}

// stop kills every member, logging the tail of each log if the benchmark
// failed, and removes the data dirs.
func (c etcdCluster) stop(b *testing.B) {
	for _, m := range c {
		if m.cmd == nil {
			continue
		}
		m.cmd.Process.Kill()
		<-m.done
	}
	if b.Failed() {
		b.Log(c.logs())
	}
	for _, m := range c {
		if m.dir != "" {
			os.RemoveAll(m.dir)
		}
	}
}

// logs returns the last lines of every member's log.
func (c etcdCluster) logs() string {
	var sb strings.Builder
	for _, m := range c {
		raw, _ := os.ReadFile(filepath.Join(m.dir, "etcd.log"))
		lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
		fmt.Fprintf(&sb, "--- %s log (last lines) ---\n%s\n", m.name, strings.Join(lines[max(0, len(lines)-20):], "\n"))
	}
	return sb.String()
}
