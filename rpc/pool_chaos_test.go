package rpc

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"roster/internal/testkit"
)

// EchoArgs asks echo to answer Seq after DelayMs, or only at release if
// Hang.
type EchoArgs struct {
	Seq     int
	DelayMs int
	Hang    bool
}

type echo struct{ release chan struct{} }

func (e *echo) Echo(args EchoArgs, reply *int) error {
	if args.Hang {
		<-e.release
	} else {
		// Simulated work inside the endpoint, not a test waiting.
		time.Sleep(time.Duration(args.DelayMs) * time.Millisecond)
	}
	*reply = args.Seq
	return nil
}

// patientDeadline is far beyond any echo delay: calls with it must succeed.
const patientDeadline = 10 * time.Second

// Many callers with random deadlines share one connection to a server
// that is sometimes slow and sometimes hangs. Invariants: no call outlives
// its deadline by more than scheduling slack, a successful call gets its
// own answer (never a neighbour's or an abandoned call's), a failed call
// leaves its reply untouched, and calls that fit their deadline succeed
// even while neighbours time out around them.
func TestPool_RandomDeadlinesAgainstSlowAndHungCalls(t *testing.T) {
	rnd := testkit.Rand(t)
	for run := range testkit.ChaosRuns(1) {
		e := &echo{release: make(chan struct{})}
		srv := startServer(t, Config{}, func(s *Server) { s.Register("Echo", e) })
		pool := newClient(t, PoolConfig{ProbeTimeout: time.Second})
		const callers, callsEach = 16, 8
		type plan struct {
			args     EchoArgs
			deadline time.Duration
		}
		plans := make([][]plan, callers)
		for c := range plans {
			for i := range callsEach {
				p := plan{args: EchoArgs{Seq: c*1000 + i, DelayMs: rnd.IntN(150)},
					deadline: time.Duration(20+rnd.IntN(280)) * time.Millisecond}
				switch rnd.IntN(3) {
				case 0: // must succeed: ample time, whatever its neighbours do
					p.deadline = patientDeadline
				case 1:
					p.args.Hang = rnd.IntN(4) == 0
				}
				plans[c] = append(plans[c], p)
			}
		}
		var mu sync.Mutex // guards trace
		var trace []string
		var wg sync.WaitGroup
		for c := range callers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for _, p := range plans[c] {
					reply := -1
					start := time.Now()
					ctx, cancel := context.WithTimeout(context.Background(), p.deadline)
					err := pool.Call(ctx, srv.Addr().String(), "Echo.Echo", p.args, &reply)
					cancel()
					took := time.Since(start)
					line := fmt.Sprintf("run %d seq %d delay %dms hang %v deadline %v: took %v reply %d err %v",
						run, p.args.Seq, p.args.DelayMs, p.args.Hang, p.deadline, took.Round(time.Millisecond), reply, err)
					mu.Lock()
					trace = append(trace, line)
					mu.Unlock()
					switch {
					case took > p.deadline+3*time.Second:
						t.Errorf("outlived its deadline: %s", line)
					case err == nil && reply != p.args.Seq:
						t.Errorf("got someone else's answer: %s", line)
					case err != nil && reply != -1:
						t.Errorf("failed call's reply was written: %s", line)
					case err != nil && !errors.Is(err, context.DeadlineExceeded):
						t.Errorf("failed other than by its deadline: %s", line)
					case err != nil && p.deadline == patientDeadline:
						// A failure here is collateral damage from a
						// neighbour's timeout, not this call's own.
						t.Errorf("failed although it had ample time: %s", line)
					}
				}
			}()
		}
		wg.Wait()
		close(e.release)
		if t.Failed() {
			t.Logf("trace:\n  %s", strings.Join(trace, "\n  "))
			return
		}
	}
}
