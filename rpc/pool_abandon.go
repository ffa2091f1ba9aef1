package rpc

import (
	"errors"
	"fmt"
	"net/rpc"
	"reflect"
	"time"
)

// Timeouts without collateral damage.
//
// All callers to a server share one connection, so closing it because one
// call ran out of time would fail every other call in flight on it: a
// 100ms Status.Ping timing out behind a slow ConsistentRead would kill the
// agent's five-minute blocking queries with it. Instead a timed-out call
// is abandoned: the caller gets its TransportError at once, and net/rpc
// keeps the call in its pending table until the late reply arrives, which
// then lands in a private reply value nobody reads (see roundTrip).
//
// Abandoning alone would keep using a connection to a server that died
// without a FIN or RST (power loss, partition). So each abandonment sends
// one liveness probe down the same connection; any answer, even an error
// for the probe's deliberately unknown method, proves the peer is still
// reading and answering, and an unanswered probe evicts the connection
// after ProbeTimeout. A server that answers probes but never finishes
// some calls would grow net/rpc's pending table without bound, so a
// connection carrying more than maxAbandonedPerConn unanswered abandoned
// calls is evicted too.

// probeMethod can never be served: net/rpc publishes only exported
// methods, so the server answers "can't find service/method" at once,
// which is all a probe needs.
const probeMethod = "rpc.probe"

// maxAbandonedPerConn bounds abandoned calls still unanswered on one
// connection before it is evicted.
const maxAbandonedPerConn = 64

// abandon records that call timed out and checks the connection is alive.
func (p *Pool) abandon(s *slot, pc *poolConn, addr string, call *rpc.Call) {
	p.abandoned.Add(1)
	s.mu.Lock()
	live := pc.abandoned[:0]
	for _, c := range pc.abandoned {
		if len(c.Done) == 0 { // still unanswered
			live = append(live, c)
		}
	}
	pc.abandoned = append(live, call)
	unanswered := len(pc.abandoned)
	probe := !pc.probing && s.conn == pc && unanswered <= maxAbandonedPerConn
	if probe {
		pc.probing = true
	}
	s.mu.Unlock()
	if unanswered > maxAbandonedPerConn {
		p.evict(s, pc, addr, fmt.Sprintf("%d timed-out calls still unanswered", unanswered))
		return
	}
	if !probe {
		return
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.wg.Add(1)
	p.mu.Unlock()
	go p.probe(s, pc, addr)
}

// probe sends one probe call on pc and evicts pc unless the server answers
// within ProbeTimeout. The timer is armed before Go, which can itself
// block on a stuck write; eviction closes the client, so Go and the wait
// below always end.
func (p *Pool) probe(s *slot, pc *poolConn, addr string) {
	defer p.wg.Done()
	timer := time.AfterFunc(p.cfg.ProbeTimeout, func() {
		p.evict(s, pc, addr, fmt.Sprintf("liveness probe unanswered for %v after a call timed out", p.cfg.ProbeTimeout))
	})
	defer timer.Stop()
	call := pc.client.Go(probeMethod, struct{}{}, &struct{}{}, make(chan *rpc.Call, 1))
	<-call.Done
	var se rpc.ServerError
	if call.Error != nil && !errors.As(call.Error, &se) {
		p.evict(s, pc, addr, "liveness probe failed: "+call.Error.Error())
	}
	s.mu.Lock()
	pc.probing = false
	s.mu.Unlock()
}

// privateReply returns a fresh zero value of reply's type for net/rpc to
// decode into, or reply itself if it is not a non-nil pointer (net/rpc
// then reports the error).
func privateReply(reply any) any {
	v := reflect.ValueOf(reply)
	if v.Kind() != reflect.Pointer || v.IsNil() {
		return reply
	}
	return reflect.New(v.Type().Elem()).Interface()
}

// adoptReply copies a completed private reply into the caller's.
func adoptReply(reply, target any) {
	if reply != target {
		reflect.ValueOf(reply).Elem().Set(reflect.ValueOf(target).Elem())
	}
}

// IsBlockingQuery reports whether args is a blocking read (MinQueryIndex >
// 0, passed as a pointer), which may take its whole wait and so has its
// own in-flight limit.
func IsBlockingQuery(args any) bool {
	q, ok := args.(interface{ queryOptions() *QueryOptions })
	return ok && q.queryOptions().MinQueryIndex > 0
}

// BlockingCallTimeout is the deadline a caller should give Pool.Call for
// the read q: 0 if q is not a blocking query (use your usual timeout),
// otherwise the longest the server may hold it (the wait clamped as
// Blocker does with the package defaults, plus the maximum jitter) plus
// margin for the network and forwarding (the Forwarder uses its
// HoldTimeout).
func BlockingCallTimeout(q *QueryOptions, margin time.Duration) time.Duration {
	if q == nil || q.MinQueryIndex == 0 {
		return 0
	}
	wait := clampWait(q.MaxQueryTime, DefaultQueryTime, MaxQueryTime)
	return wait + wait/JitterFraction + margin
}
