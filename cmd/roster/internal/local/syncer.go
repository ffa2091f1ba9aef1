package local

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"roster/catalog"
	"roster/rpc"
)

// RPC is what the syncer needs from the agent's RPC client: a call to a
// server endpoint (forwarded to the leader as needed). Method names and
// argument types are those of rpc/structs.go.
type RPC interface {
	RPC(ctx context.Context, method string, args, reply any) error
}

// SyncConfig configures a Syncer. Zero values take the documented defaults.
type SyncConfig struct {
	// Interval is the base full-sync interval (Consul's ae_interval, 1m),
	// scaled up for clusters larger than 128 nodes and staggered randomly.
	Interval time.Duration
	// RetryInterval is the wait after a failed sync (default 15s, plus
	// stagger).
	RetryInterval time.Duration
	// PartialSyncMinGap rate-limits partial syncs: changes arriving within
	// this gap of the previous partial sync are coalesced (default 200ms).
	PartialSyncMinGap time.Duration
	// RPCTimeout bounds each catalog read or write (default 30s).
	RPCTimeout time.Duration
	// ClusterSize returns the number of LAN members (default: 1).
	ClusterSize func() int
	// Rand drives the stagger; default a generator seeded from the clock.
	Rand *rand.Rand
	// Logger receives sync failures (default slog.Default()).
	Logger *slog.Logger
}

// Defaults of SyncConfig.
const (
	DefaultSyncInterval      = time.Minute
	DefaultSyncRetryInterval = 15 * time.Second
	DefaultPartialSyncMinGap = 200 * time.Millisecond
	DefaultSyncRPCTimeout    = 30 * time.Second
)

func (c SyncConfig) withDefaults() SyncConfig {
	if c.Interval == 0 {
		c.Interval = DefaultSyncInterval
	}
	if c.RetryInterval == 0 {
		c.RetryInterval = DefaultSyncRetryInterval
	}
	if c.PartialSyncMinGap == 0 {
		c.PartialSyncMinGap = DefaultPartialSyncMinGap
	}
	if c.RPCTimeout == 0 {
		c.RPCTimeout = DefaultSyncRPCTimeout
	}
	if c.ClusterSize == nil {
		c.ClusterSize = func() int { return 1 }
	}
	if c.Rand == nil {
		c.Rand = rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 0))
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Validate names the first bad field.
func (c SyncConfig) Validate() error {
	switch {
	case c.Interval < 0:
		return errors.New("local.SyncConfig.Interval is negative")
	case c.RetryInterval < 0:
		return errors.New("local.SyncConfig.RetryInterval is negative")
	case c.PartialSyncMinGap < 0:
		return errors.New("local.SyncConfig.PartialSyncMinGap is negative")
	case c.RPCTimeout < 0:
		return errors.New("local.SyncConfig.RPCTimeout is negative")
	}
	return nil
}

// scaleFactor is Consul's ae scaling: 1 up to 128 nodes, then
// ceil(log2(n) - log2(128) + 1), so the catalog write load of all agents'
// full syncs grows only logarithmically with the cluster.
func scaleFactor(nodes int) int {
	const threshold = 128
	if nodes <= threshold {
		return 1
	}
	return int(math.Ceil(math.Log2(float64(nodes)) - math.Log2(threshold) + 1))
}

// fullSyncDelay is the wait before the next full sync: the interval plus a
// random stagger in [0, scale×interval), so agents restarted together do
// not sync in lock step.
func fullSyncDelay(interval time.Duration, nodes int, rng *rand.Rand) time.Duration {
	span := time.Duration(scaleFactor(nodes)) * interval
	if span <= 0 {
		return interval
	}
	return interval + time.Duration(rng.Int64N(int64(span)))
}

// SyncStats counts the syncer's work.
type SyncStats struct {
	FullSyncs    uint64
	PartialSyncs uint64
	Failures     uint64
	Writes       uint64
}

// Syncer is anti-entropy's shell: one goroutine (Run) that keeps the
// catalog's view of this node equal to State, with a full sync on a
// staggered interval and a partial sync right after each local change.
type Syncer struct {
	state *State
	rpc   RPC
	cfg   SyncConfig

	triggerFull chan struct{}

	// mu serializes syncs (Run and direct SyncFull/SyncChanges calls) and
	// guards cfg.Rand.
	mu sync.Mutex

	fullSyncs, partialSyncs, failures, writes atomic.Uint64
}

// NewSyncer builds a Syncer for state over rpc.
func NewSyncer(state *State, client RPC, cfg SyncConfig) (*Syncer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if state == nil || client == nil {
		return nil, errors.New("local.NewSyncer needs a State and an RPC client")
	}
	return &Syncer{state: state, rpc: client, cfg: cfg.withDefaults(), triggerFull: make(chan struct{}, 1)}, nil
}

// Stats returns the syncer's counters.
func (s *Syncer) Stats() SyncStats {
	return SyncStats{FullSyncs: s.fullSyncs.Load(), PartialSyncs: s.partialSyncs.Load(), Failures: s.failures.Load(), Writes: s.writes.Load()}
}

// TriggerFullSync asks Run for a full sync now: call it when servers
// become reachable, after a (re)join, or on SIGHUP. Never blocks.
func (s *Syncer) TriggerFullSync() {
	select {
	case s.triggerFull <- struct{}{}:
	default:
	}
}

// Run syncs until ctx ends: a full sync at once, then full syncs on the
// staggered interval, partial syncs on change (at most one per
// PartialSyncMinGap), and a retry after RetryInterval when a sync fails.
func (s *Syncer) Run(ctx context.Context) {
	fullTimer := time.NewTimer(0)
	defer fullTimer.Stop()
	partialTimer := time.NewTimer(time.Hour)
	partialTimer.Stop()
	defer partialTimer.Stop()
	deferTimer := time.NewTimer(time.Hour)
	defer deferTimer.Stop()
	var lastPartial time.Time
	partialArmed := false
	// changed is replaced only after it fires: a change made while a sync
	// is in flight closes the channel held here and is not missed.
	changed := s.state.Changed()
	for {
		now := s.state.cfg.Clock()
		if next := s.state.flushDeferred(now); !next.IsZero() {
			deferTimer.Reset(next.Sub(now))
		}
		select {
		case <-ctx.Done():
			return
		case <-s.triggerFull:
			fullTimer.Reset(0)
		case <-fullTimer.C:
			fullTimer.Reset(s.afterSync(s.SyncFull(ctx), true))
		case <-changed:
			changed = s.state.Changed()
			if !partialArmed {
				partialArmed = true
				partialTimer.Reset(max(0, s.cfg.PartialSyncMinGap-time.Since(lastPartial)))
			}
		case <-partialTimer.C:
			partialArmed, lastPartial = false, time.Now()
			if err := s.SyncChanges(ctx); err != nil {
				s.afterSync(err, false)
				fullTimer.Reset(s.retryDelay())
			}
		case <-deferTimer.C:
		}
	}
}

// afterSync logs a failure and returns the delay before the next full sync.
func (s *Syncer) afterSync(err error, full bool) time.Duration {
	if err == nil {
		s.mu.Lock()
		defer s.mu.Unlock()
		return fullSyncDelay(s.cfg.Interval, s.cfg.ClusterSize(), s.cfg.Rand)
	}
	if !errors.Is(err, context.Canceled) {
		s.cfg.Logger.Warn("anti-entropy sync failed; will retry", "node", s.state.cfg.NodeName, "full", full, "err", err)
	}
	return s.retryDelay()
}

func (s *Syncer) retryDelay() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return fullSyncDelay(s.cfg.RetryInterval, 1, s.cfg.Rand)
}

// SyncFull reads this node's entries from the catalog, marks every
// difference (§10.1 steps 1–4) and writes the fixes.
func (s *Syncer) SyncFull(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fullSyncs.Add(1)
	rv, err := s.readRemote(ctx)
	if err != nil {
		s.failures.Add(1)
		s.state.emit(Event{Kind: EventSyncFailed, Full: true, Err: err.Error()})
		return err
	}
	s.state.updateSyncState(rv)
	return s.syncChangesLocked(ctx, true)
}

// SyncChanges writes the entries that are out of sync (a partial sync).
func (s *Syncer) SyncChanges(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.partialSyncs.Add(1)
	return s.syncChangesLocked(ctx, false)
}

func (s *Syncer) readRemote(ctx context.Context) (remoteView, error) {
	q := rpc.NodeSpecificRequest{QueryOptions: rpc.QueryOptions{Datacenter: s.state.cfg.Datacenter}, Node: s.state.cfg.NodeName}
	var ns rpc.IndexedNodeServices
	if err := s.call(ctx, "Catalog.NodeServices", &q, &ns); err != nil {
		return remoteView{}, err
	}
	var hc rpc.IndexedHealthChecks
	if err := s.call(ctx, "Health.NodeChecks", &q, &hc); err != nil {
		return remoteView{}, err
	}
	rv := remoteView{checks: hc.HealthChecks}
	if ns.NodeServices != nil {
		rv.node = &ns.NodeServices.Node
		rv.services = ns.NodeServices.Services
	}
	return rv, nil
}

func (s *Syncer) syncChangesLocked(ctx context.Context, full bool) error {
	writes := 0
	for _, op := range s.state.pendingOps() {
		if op.kind == opRegisterNode && s.state.skipNodeUpdate() {
			continue // a service or check write already carried the node
		}
		if err := s.send(ctx, op); err != nil {
			s.failures.Add(1)
			s.state.emit(Event{Kind: EventSyncFailed, Full: full, Writes: writes, Err: err.Error()})
			return err
		}
		writes++
		s.writes.Add(1)
		s.state.markSynced(op)
	}
	if full || writes > 0 {
		// A partial sync woken by an output-only change writes nothing;
		// it is not worth an event.
		s.state.emit(Event{Kind: EventSynced, Full: full, Writes: writes})
	}
	return nil
}

func (s *Syncer) send(ctx context.Context, op syncOp) error {
	dc := s.state.cfg.Datacenter
	node := s.state.cfg.NodeName
	switch op.kind {
	case opDeregisterService, opDeregisterCheck:
		req := rpc.DeregisterRequest{WriteRequest: rpc.WriteRequest{Datacenter: dc}, Deregister: catalog.DeregisterRequest{Node: node}}
		if op.kind == opDeregisterService {
			req.Deregister.ServiceID = op.id
		} else {
			req.Deregister.CheckID = op.id
		}
		return s.call(ctx, "Catalog.Deregister", &req, &struct{}{})
	default:
		req := rpc.RegisterRequest{WriteRequest: rpc.WriteRequest{Datacenter: dc}, Register: op.register}
		if op.kind != opRegisterNode {
			req.Register.SkipNodeUpdate = s.state.skipNodeUpdate()
		}
		return s.call(ctx, "Catalog.Register", &req, &struct{}{})
	}
}

func (s *Syncer) call(ctx context.Context, method string, args, reply any) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.RPCTimeout)
	defer cancel()
	if err := s.rpc.RPC(ctx, method, args, reply); err != nil {
		return fmt.Errorf("%s: %w", method, err)
	}
	return nil
}
