package rpc

import (
	"cmp"
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/rpc"
	"sync"
	"time"

	"roster/internal/fanout"
)

// Cluster is what forwarding and blocking reads need from the local Raft
// node. The raft package's Node satisfies it through a small adapter in
// the agent; tests use a fake.
type Cluster interface {
	// IsLeader reports whether this server is the Raft leader now.
	IsLeader() bool
	// LeaderAddr is the RPC address of the leader this server knows of, or
	// "" while there is none (an election is running).
	LeaderAddr() string
	// LastContact is how long ago this server last heard from the leader;
	// 0 on the leader. Reported as X-Consul-LastContact on stale reads.
	LastContact() time.Duration
	// ConsistentRead implements Raft's ReadIndex (thesis §6.4): the leader
	// records its commit index, confirms with a heartbeat round to a
	// majority that it is still leader, then waits until its FSM has
	// applied up to that index. A nil return makes a local read
	// linearizable. Called on the leader only; if leadership was lost
	// meanwhile it returns ErrNoLeader, which the forwarding server
	// retries with its refreshed leader view.
	ConsistentRead(ctx context.Context) error
	// Peers lists the addresses of the voting servers in the Raft
	// configuration (Status.Peers).
	Peers() ([]string, error)
}

// Router knows the servers of every datacenter. The LAN part comes from
// the local SWIM pool, other datacenters from the WAN pool later.
type Router interface {
	// Servers returns the RPC addresses of the known servers of dc, nil if
	// dc is unknown. The caller does not modify the slice.
	Servers(dc string) []string
}

// Caller makes one RPC to one server; *Pool is the real one.
type Caller interface {
	Call(ctx context.Context, addr, method string, args, reply any) error
}

var _ Caller = (*Pool)(nil)

// ForwardConfig configures a Forwarder.
type ForwardConfig struct {
	// Datacenter is this server's datacenter. Required.
	Datacenter string
	// Cluster is the local Raft view. Required.
	Cluster Cluster
	// Router finds servers of other datacenters. Optional: without it every
	// other datacenter is "No path to datacenter".
	Router Router
	// Caller sends forwarded requests. Required.
	Caller Caller
	// HoldTimeout is how long a request waits and retries while there is no
	// leader or the leader is unreachable (Consul's rpc_hold_timeout).
	// Default 7s.
	HoldTimeout time.Duration
	// MinBackoff is the first retry delay; it doubles per retry up to
	// HoldTimeout/16, each delay jittered to [d/2, d]. Default 10ms.
	MinBackoff time.Duration
	// CallTimeout bounds one forwarded non-blocking call. Blocking reads get
	// their wait plus jitter plus HoldTimeout on top. Default 60s.
	CallTimeout time.Duration
	// Seed seeds the jitter and server choice; 0 picks a random seed.
	Seed uint64
	// DisableFollowerReads forwards every ?consistent read to the leader
	// even when Cluster implements ReadIndexCluster (follower_read.go).
	DisableFollowerReads bool
	// WriteBatchesInFlight bounds the KVS.ApplyBatch calls in flight to one
	// server; KV writes forwarded beyond it wait and leave together in the
	// next batch (forward_batch.go). Default 2; negative sends every KV
	// write as its own KVS.Apply call.
	WriteBatchesInFlight int
	// Logger receives retry lines. Default slog.Default().
	Logger *slog.Logger
	// Events, if set, receives an Event for every retry.
	Events *fanout.Hub[Event]
}

// Validate names the first bad field.
func (c ForwardConfig) Validate() error {
	switch {
	case c.Datacenter == "":
		return errors.New("rpc: ForwardConfig.Datacenter is required (the server's own datacenter)")
	case c.Cluster == nil:
		return errors.New("rpc: ForwardConfig.Cluster is required (the local raft view)")
	case c.Caller == nil:
		return errors.New("rpc: ForwardConfig.Caller is required (use a *Pool)")
	case c.HoldTimeout < 0:
		return fmt.Errorf("rpc: ForwardConfig.HoldTimeout must be >= 0 (0 = 7s), got %v", c.HoldTimeout)
	case c.MinBackoff < 0:
		return fmt.Errorf("rpc: ForwardConfig.MinBackoff must be >= 0 (0 = 10ms), got %v", c.MinBackoff)
	case c.CallTimeout < 0:
		return fmt.Errorf("rpc: ForwardConfig.CallTimeout must be >= 0 (0 = 60s), got %v", c.CallTimeout)
	}
	return nil
}

func (c ForwardConfig) withDefaults() ForwardConfig {
	if c.HoldTimeout == 0 {
		c.HoldTimeout = 7 * time.Second
	}
	if c.MinBackoff == 0 {
		c.MinBackoff = 10 * time.Millisecond
	}
	if c.CallTimeout == 0 {
		c.CallTimeout = 60 * time.Second
	}
	if c.Seed == 0 {
		var b [8]byte
		crand.Read(b[:])
		c.Seed = binary.LittleEndian.Uint64(b[:])
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Forwarder decides, for each endpoint call, whether this server answers
// it or forwards it, and does the forwarding with retries.
type Forwarder struct {
	cfg ForwardConfig

	// reads batches follower reads' read-index calls (follower_read.go);
	// nil when the Cluster cannot serve them.
	reads *readBatcher
	// writes batches forwarded KV writes (forward_batch.go); nil when
	// WriteBatchesInFlight turned it off.
	writes *kvsBatcher

	// mu guards rnd (jitter and server choice).
	mu  sync.Mutex
	rnd *rand.Rand
}

// NewForwarder validates cfg.
func NewForwarder(cfg ForwardConfig) (*Forwarder, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	f := &Forwarder{cfg: cfg, rnd: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15))}
	if rc, ok := cfg.Cluster.(ReadIndexCluster); ok && !cfg.DisableFollowerReads {
		f.reads = &readBatcher{fetch: f.fetchReadIndex, applied: rc.WaitApplied, ctx: context.Background()}
	}
	if cfg.WriteBatchesInFlight >= 0 {
		f.writes = newKVSBatcher(cfg.Caller, cmp.Or(cfg.WriteBatchesInFlight, 2))
	}
	return f, nil
}

// bindLifetime makes ctx (the rpc.Server's life, see RegisterEndpoints)
// bound the follower-read rounds, as Blocker.bindLifetime does for the
// leader's.
func (f *Forwarder) bindLifetime(ctx context.Context) { f.reads.bindLifetime(ctx) }

// route is where a request is served.
type route int

const (
	routeLocal      route = iota // this server answers
	routeLeader                  // the local datacenter's leader answers
	routeDatacenter              // a server of another datacenter answers
)

// routeFor is the pure forwarding decision, the table of doc.go:
// another datacenter → that datacenter; a stale read (fresh enough, when
// ?max_stale bounds it) → local; anything else → the leader, which may be
// this server.
func routeFor(localDC string, info Info, isLeader bool, lastContact time.Duration) route {
	if dc := info.RequestDatacenter(); dc != "" && dc != localDC {
		return routeDatacenter
	}
	if info.IsRead() && info.AllowStaleRead() {
		q, ok := info.(interface{ queryOptions() *QueryOptions })
		if !ok || q.queryOptions().MaxStaleDuration == 0 || isLeader ||
			lastContact <= q.queryOptions().MaxStaleDuration {
			return routeLocal
		}
	}
	if isLeader {
		return routeLocal
	}
	return routeLeader
}

// MaxForwardHops bounds how many servers a request may pass through.
// The longest legitimate path is three hops (agent's server → a server of
// the other datacenter → its leader, plus one hop on a stale leader view
// during an election). During an election two servers can each believe the
// other is leader; without a bound they would bounce a request between
// them until its deadline, pinning a goroutine and a pool slot per hop.
const MaxForwardHops = 4

// Forward is called first by every endpoint method. It returns handled =
// false when this server must answer the request itself; otherwise the
// request was forwarded and reply/err hold the remote outcome. Writes get
// a RequestID here if they have none, before the first attempt, so every
// retry and hop carries the same one.
func (f *Forwarder) Forward(ctx context.Context, method string, info Info, args, reply any) (handled bool, err error) {
	stampRequestID(info)
	if err := checkRequestID(info); err != nil {
		return true, err
	}
	c := f.cfg.Cluster
	r := routeFor(f.cfg.Datacenter, info, c.IsLeader(), c.LastContact())
	if r == routeLocal || (r == routeLeader && f.followerRead(ctx, method, info)) {
		return false, nil
	}
	if h, ok := info.(interface{ forwardHops() *uint8 }); ok {
		hops := h.forwardHops()
		if *hops >= MaxForwardHops {
			// Our leader view disagrees with the sender's: answer "no
			// leader", which the sender retries after re-reading its view.
			return true, ErrNoLeader
		}
		*hops++
	}
	switch r {
	case routeDatacenter:
		dc := info.RequestDatacenter()
		return true, f.retry(ctx, method, info, args, reply, func() (string, bool, error) {
			return f.pickServer(dc)
		})
	default:
		return f.forwardLeader(ctx, method, info, args, reply)
	}
}

// forwardLeader sends the request to the leader, retrying while there is
// none. If leadership moves to this server meanwhile, it is served here.
func (f *Forwarder) forwardLeader(ctx context.Context, method string, info Info, args, reply any) (bool, error) {
	local := false
	err := f.retry(ctx, method, info, args, reply, func() (string, bool, error) {
		if f.cfg.Cluster.IsLeader() {
			local = true
			return "", true, nil
		}
		if addr := f.cfg.Cluster.LeaderAddr(); addr != "" {
			return addr, false, nil
		}
		return "", false, ErrNoLeader
	})
	if local {
		return false, nil
	}
	return true, err
}

func (f *Forwarder) pickServer(dc string) (string, bool, error) {
	// Consul's body is exactly "No path to datacenter", so the sentinel is
	// returned unwrapped.
	if f.cfg.Router == nil {
		return "", false, ErrNoDCPath
	}
	servers := f.cfg.Router.Servers(dc)
	if len(servers) == 0 {
		return "", false, ErrNoDCPath
	}
	f.mu.Lock()
	i := f.rnd.IntN(len(servers))
	f.mu.Unlock()
	return servers[i], false, nil
}

// retry calls pick for a target and sends the request there until it
// succeeds, pick says local, or a non-retryable error or the hold timeout
// ends it. Bounded: each round sleeps at least MinBackoff/2 and rounds
// stop once the next sleep would pass the hold deadline.
func (f *Forwarder) retry(ctx context.Context, method string, info Info, args, reply any,
	pick func() (addr string, local bool, err error)) error {
	holdDeadline := time.Now().Add(f.cfg.HoldTimeout)
	for attempt := 0; ; attempt++ {
		addr, local, err := pick()
		if local {
			return nil
		}
		if err == nil {
			cctx, cancel := context.WithTimeout(ctx, f.callTimeout(info))
			err = f.send(cctx, addr, method, args, reply)
			cancel()
			if err == nil {
				return nil
			}
		}
		err = canonical(err)
		if !retryable(err) || ctx.Err() != nil {
			return err
		}
		delay := f.backoff(attempt)
		if time.Now().Add(delay).After(holdDeadline) {
			return err
		}
		f.cfg.Logger.Debug("rpc: retrying forwarded request", slog.String("method", method),
			slog.String("peer", addr), slog.Int("attempt", attempt+1), slog.String("error", err.Error()))
		publish(f.cfg.Events, Event{Kind: EventForwardRetry, Peer: addr, Method: method, Attempt: attempt + 1, Err: err.Error()})
		if !sleepCtx(ctx, delay) {
			return err
		}
	}
}

// send makes one attempt of a forwarded call: KV writes through the
// batcher, everything else as a call of its own.
func (f *Forwarder) send(ctx context.Context, addr, method string, args, reply any) error {
	if method == "KVS.Apply" && f.writes != nil {
		a, okA := args.(*KVSRequest)
		r, okR := reply.(*bool)
		if okA && okR {
			return f.writes.call(ctx, addr, a, r)
		}
	}
	return f.cfg.Caller.Call(ctx, addr, method, args, reply)
}

func (f *Forwarder) backoff(attempt int) time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return backoffDelay(attempt, f.cfg.MinBackoff, f.cfg.HoldTimeout/16, f.rnd)
}

// callTimeout is one attempt's deadline: blocking reads may legitimately
// take their whole wait (plus the server's jitter) before answering.
func (f *Forwarder) callTimeout(info Info) time.Duration {
	if q, ok := info.(interface{ queryOptions() *QueryOptions }); ok {
		if d := BlockingCallTimeout(q.queryOptions(), f.cfg.HoldTimeout); d > 0 {
			return d
		}
	}
	return f.cfg.CallTimeout
}

// backoffDelay is min(minDelay·2^attempt, maxDelay) jittered to [d/2, d]
// so servers retrying after the same leader loss do not stampede.
func backoffDelay(attempt int, minDelay, maxDelay time.Duration, rnd *rand.Rand) time.Duration {
	d := maxDelay
	if attempt < 30 && minDelay<<attempt < maxDelay {
		d = minDelay << attempt
	}
	d = max(d, time.Millisecond)
	return d/2 + time.Duration(rnd.Int64N(int64(d/2)+1))
}

// retryable: no leader yet, or the request may not have reached (or been
// answered by) the server. Both are safe to retry for reads, and for
// writes because the FSM applies one RequestID at most once.
func retryable(err error) bool {
	var te *TransportError
	return errors.Is(err, ErrNoLeader) || errors.As(err, &te)
}

// canonical maps Consul's error strings that crossed a connection (as
// rpc.ServerError) back to the sentinels, so errors.Is works end to end.
func canonical(err error) error {
	var se rpc.ServerError
	if !errors.As(err, &se) {
		return err
	}
	switch string(se) {
	case ErrNoLeader.Error():
		return ErrNoLeader
	case ErrNoDCPath.Error():
		return ErrNoDCPath
	}
	return err
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// stampRequestID gives a write request without a RequestID a new one; it
// leaves reads and writes that already carry an ID alone.
func stampRequestID(args any) {
	if w, ok := args.(interface{ writeRequest() *WriteRequest }); ok && w.writeRequest().RequestID == "" {
		w.writeRequest().RequestID = NewRequestID()
	}
}

// checkRequestID rejects a caller-supplied RequestID that every replica's
// DecodeCommand would refuse: such a write would be committed to the log
// and then skipped as malformed on every server, answered with a
// confusing error after costing a full Raft round.
func checkRequestID(args any) error {
	if w, ok := args.(interface{ writeRequest() *WriteRequest }); ok && len(w.writeRequest().RequestID) > maxRequestIDBytes {
		return fmt.Errorf("rpc: RequestID is %d bytes, the limit is %d; leave it empty to get a generated one",
			len(w.writeRequest().RequestID), maxRequestIDBytes)
	}
	return nil
}

// NewRequestID returns a random 128-bit ID in UUID text form (version 4),
// built in one allocation: every write gets one.
func NewRequestID() string {
	var b [16]byte
	crand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	t := uuidText(b)
	return string(t[:])
}
