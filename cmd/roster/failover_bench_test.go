package main

import (
	"errors"
	"fmt"
	"syscall"
	"testing"
	"time"

	"roster/internal/testkit"
)

// BenchmarkFailover_SIGKILLLeader measures, with real processes and the
// shipped defaults, the time from SIGKILL of the leader until both
// survivors name the same new leader at /v1/status/leader. Each iteration
// starts a fresh three-server cluster (-bootstrap-expect 3).
func BenchmarkFailover_SIGKILLLeader(b *testing.B) {
	var ms []float64
	for range b.N {
		ms = append(ms, failoverTrial(b))
	}
	b.ReportMetric(median(ms), "failover_median_ms")
	b.ReportMetric(maxOf(ms), "failover_max_ms")
}

func maxOf(xs []float64) float64 {
	m := 0.0
	for _, x := range xs {
		m = max(m, x)
	}
	return m
}

func failoverTrial(b *testing.B) float64 {
	procs := startServerProcsTB(b, 3)
	defer stopProcs(procs)
	var leader string
	if err := testkit.Poll(15*time.Second, func() error {
		var err error
		leader, err = agreedLeader(procs)
		return err
	}); err != nil {
		b.Fatal(err)
	}
	var victim int
	for i, p := range procs {
		if fmt.Sprintf("127.0.0.1:%d", p.ports[2]) == leader {
			victim = i
		}
	}
	killed := time.Now()
	procs[victim].cmd.Process.Signal(syscall.SIGKILL)
	var rest []*serverProc
	for i, p := range procs {
		if i != victim {
			rest = append(rest, p)
		}
	}
	if err := testkit.Poll(15*time.Second, func() error {
		l, err := agreedLeader(rest)
		if err == nil && l == leader {
			return errors.New("survivors still name the killed leader")
		}
		return err
	}); err != nil {
		b.Fatal(err)
	}
	return msSince(killed)
}

// agreedLeader returns the leader every process names, or an error.
func agreedLeader(procs []*serverProc) (string, error) {
	var first string
	for i, p := range procs {
		l, err := statusLeader(p.base())
		if err != nil {
			return "", err
		}
		if l == "" {
			return "", fmt.Errorf("%s knows no leader", p.name)
		}
		if i == 0 {
			first = l
		} else if l != first {
			return "", fmt.Errorf("%s names %s, %s names %s", procs[0].name, first, p.name, l)
		}
	}
	return first, nil
}
