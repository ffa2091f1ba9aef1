package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"roster/internal/testkit"
)

// BenchmarkFootprint_Dev measures what a newcomer feels when running
// `roster agent -dev`: binary size, time from exec to a serving HTTP API
// (and to an elected leader once /v1/status/leader reports one), idle RSS
// and time to exit after SIGINT. `make bench` passes the release binary in
// ROSTER_BIN; otherwise the test binary built by TestMain is measured.
//
// Targets: binary <= 30 MB, idle RSS <= 30 MB, start to HTTP and leader
// <= 100 ms.
func BenchmarkFootprint_Dev(b *testing.B) {
	bin := rosterBin
	if env := os.Getenv("ROSTER_BIN"); env != "" {
		bin = env
	}
	st, err := os.Stat(bin)
	if err != nil {
		b.Fatal(err)
	}
	var startMs, leaderMs, stopMs, rssMB []float64
	for i := 0; i < b.N; i++ {
		s, l, st, rss := footprintRun(b, bin, i == 0)
		startMs, stopMs = append(startMs, s), append(stopMs, st)
		if l >= 0 {
			leaderMs = append(leaderMs, l)
		}
		if rss > 0 {
			rssMB = append(rssMB, rss)
		}
	}
	b.ReportMetric(float64(st.Size())/1e6, "binary_MB")
	b.ReportMetric(median(startMs), "start_to_http_ms")
	if len(leaderMs) > 0 {
		b.ReportMetric(median(leaderMs), "start_to_leader_ms")
	}
	if len(rssMB) > 0 {
		b.ReportMetric(median(rssMB), "idle_rss_MB")
	}
	b.ReportMetric(median(stopMs), "sigint_to_exit_ms")
}

// footprintRun starts one dev agent and measures it. RSS is sampled only on
// the first run, after two idle seconds (a measurement, not a wait).
func footprintRun(b *testing.B, bin string, sampleRSS bool) (startMs, leaderMs, stopMs, rssMB float64) {
	// Port 0: the agent logs the HTTP port it got (ports_proc_test.go),
	// read at the HTTP poll's own 1 ms resolution.
	cmd := exec.Command(bin, devArgs(nil)...)
	log := new(testkit.LockedBuffer)
	cmd.Stderr = log
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer cmd.Process.Kill()
	var base string
	mustPoll(b, func() error {
		p, err := loggedPorts(log.String())
		if err == nil {
			base = fmt.Sprintf("http://127.0.0.1:%d", p[0])
		}
		return err
	})
	fast := &http.Client{Timeout: time.Second}
	mustPoll(b, func() error { return httpOK(fast, base+"/v1/agent/self") })
	startMs = msSince(t0)
	leaderMs = -1
	if resp, err := fast.Get(base + "/v1/status/leader"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			mustPoll(b, func() error { return leaderKnown(fast, base) })
			leaderMs = msSince(t0)
		}
	}
	if sampleRSS {
		rssMB = settledRSSMB(b, cmd.Process.Pid)
	}
	t1 := time.Now()
	cmd.Process.Signal(syscall.SIGINT)
	if err := cmd.Wait(); err != nil {
		b.Fatalf("agent exit after SIGINT: %v", err)
	}
	return startMs, leaderMs, msSince(t1), rssMB
}

// settledRSSMB samples the agent's RSS until start-up has settled: two
// samples 250 ms apart within 0.5 MB of each other (at most 10 s; then the
// last sample, with a log line).
func settledRSSMB(b *testing.B, pid int) float64 {
	last := -1.0
	err := testkit.PollEvery(250*time.Millisecond, 10*time.Second, func() error {
		cur := vmRSSMB(pid)
		prev := last
		last = cur
		if prev < 0 || cur-prev > 0.5 || prev-cur > 0.5 {
			return fmt.Errorf("RSS %.1f MB, was %.1f MB", cur, prev)
		}
		return nil
	})
	if err != nil {
		b.Logf("RSS did not settle: %v", err)
	}
	return last
}

// mustPoll polls every millisecond: the startup figures are in ms.
func mustPoll(b *testing.B, cond func() error) {
	if err := testkit.PollEvery(time.Millisecond, 10*time.Second, cond); err != nil {
		b.Fatal(err)
	}
}

func httpOK(c *http.Client, url string) error {
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	return nil
}

func leaderKnown(c *http.Client, base string) error {
	resp, err := c.Get(base + "/v1/status/leader")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if strings.Trim(strings.TrimSpace(string(body)), `"`) == "" {
		return fmt.Errorf("no leader yet")
	}
	return nil
}

func vmRSSMB(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}

func msSince(t time.Time) float64 { return float64(time.Since(t).Microseconds()) / 1000 }

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return s[len(s)/2]
}
