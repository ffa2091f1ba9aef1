package rpc

import (
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"
)

// Blocking queries (Consul's ?index=&wait=): a read with MinQueryIndex > 0
// returns as soon as its result's index exceeds MinQueryIndex, or after
// its wait with the unchanged result. The server adds up to wait/16 of
// random jitter so the thousands of watchers started together do not all
// come back in the same instant.
const (
	// DefaultQueryTime is the wait when a request gives none.
	DefaultQueryTime = 5 * time.Minute
	// MaxQueryTime is the longest wait a request may ask for.
	MaxQueryTime = 10 * time.Minute
	// JitterFraction: jitter is uniform in [0, wait/JitterFraction).
	JitterFraction = 16
)

// QueryFunc runs a read once against local state. It fills the caller's
// reply and returns the result's index and a channel that is closed when
// anything the result depends on changes (the catalog's watch channels
// have this shape; a query over several tables merges theirs). A nil
// channel means the result cannot be watched: only the wait ends the block.
type QueryFunc func() (index uint64, changed <-chan struct{}, err error)

// BlockingConfig configures a Blocker.
type BlockingConfig struct {
	// Cluster supplies leadership for QueryMeta and ConsistentRead for
	// ?consistent reads. Required.
	Cluster Cluster
	// DefaultQueryTime and MaxQueryTime override the package defaults
	// (5m and 10m) when positive; tests shorten them. Neither may exceed
	// the package MaxQueryTime, which callers' deadlines assume.
	DefaultQueryTime, MaxQueryTime time.Duration
	// Seed seeds the jitter; 0 picks a random seed.
	Seed uint64
}

// Validate names the first bad field.
func (c BlockingConfig) Validate() error {
	switch {
	case c.Cluster == nil:
		return errors.New("rpc: BlockingConfig.Cluster is required")
	case c.DefaultQueryTime < 0:
		return fmt.Errorf("rpc: BlockingConfig.DefaultQueryTime must be >= 0 (0 = %v), got %v", DefaultQueryTime, c.DefaultQueryTime)
	case c.MaxQueryTime < 0:
		return fmt.Errorf("rpc: BlockingConfig.MaxQueryTime must be >= 0 (0 = %v), got %v", MaxQueryTime, c.MaxQueryTime)
	// Callers size their deadlines from the package constants
	// (BlockingCallTimeout); a server holding queries longer would see
	// them cut off and retried by every forwarder and client.
	case c.MaxQueryTime > MaxQueryTime:
		return fmt.Errorf("rpc: BlockingConfig.MaxQueryTime must be at most %v (callers' deadlines assume it), got %v", MaxQueryTime, c.MaxQueryTime)
	case c.DefaultQueryTime > max(c.MaxQueryTime, MaxQueryTime) || (c.MaxQueryTime > 0 && c.DefaultQueryTime > c.MaxQueryTime):
		return fmt.Errorf("rpc: BlockingConfig.DefaultQueryTime must not exceed MaxQueryTime, got %v", c.DefaultQueryTime)
	}
	return nil
}

// consistentRoundTimeout bounds one shared ConsistentRead round. A read
// whose own context ends sooner stops waiting for it then; the round
// itself is bounded by the Cluster too (the agent's: 5s).
const consistentRoundTimeout = 10 * time.Second

// Blocker runs endpoint reads with Consul's blocking and consistency
// semantics and fills their QueryMeta.
type Blocker struct {
	cfg BlockingConfig

	// reads shares ReadIndex rounds among ?consistent reads on this
	// server (follower_read.go's batcher, here around ConsistentRead):
	// every read still gets a round that began after it arrived, but the
	// Raft loop runs one per batch instead of one per read.
	reads *readBatcher

	// mu guards rnd.
	mu  sync.Mutex
	rnd *rand.Rand
}

// NewBlocker validates cfg.
func NewBlocker(cfg BlockingConfig) (*Blocker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.DefaultQueryTime == 0 {
		cfg.DefaultQueryTime = DefaultQueryTime
	}
	if cfg.MaxQueryTime == 0 {
		cfg.MaxQueryTime = MaxQueryTime
	}
	if cfg.Seed == 0 {
		var b [8]byte
		crand.Read(b[:])
		cfg.Seed = binary.LittleEndian.Uint64(b[:])
	}
	b := &Blocker{cfg: cfg, rnd: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15))}
	b.reads = &readBatcher{ctx: context.Background(), timeout: consistentRoundTimeout,
		fetch: func(ctx context.Context) (uint64, error) { return 0, cfg.Cluster.ConsistentRead(ctx) }}
	return b, nil
}

// bindLifetime makes ctx (the rpc.Server's life, see RegisterEndpoints)
// bound the shared ReadIndex rounds: under context.Background() a round
// could outlive server shutdown by up to consistentRoundTimeout.
func (b *Blocker) bindLifetime(ctx context.Context) { b.reads.bindLifetime(ctx) }

// bindLifetime makes ctx bound the rounds this batcher starts from now on.
func (r *readBatcher) bindLifetime(ctx context.Context) {
	if r == nil {
		return
	}
	r.mu.Lock()
	r.ctx = ctx
	r.mu.Unlock()
}

// Query runs run until its index passes opts.MinQueryIndex or the wait
// ends, then fills meta. A ?consistent read does a ReadIndex round before
// every run, so each answer is linearizable. ctx ends the block early
// (server shutdown) with an error so the client retries elsewhere.
func (b *Blocker) Query(ctx context.Context, opts *QueryOptions, meta *QueryMeta, run QueryFunc) error {
	if err := opts.Validate(); err != nil {
		return err
	}
	var timeout <-chan time.Time
	roundCtx := ctx // bounds each ReadIndex round
	if opts.MinQueryIndex > 0 {
		wait := b.wait(opts.MaxQueryTime)
		t := time.NewTimer(wait)
		defer t.Stop()
		timeout = t.C
		// A ReadIndex round that cannot finish (a leader cut off from its
		// quorum keeps trying) must not hold the query past its wait: the
		// caller's deadline is the wait plus jitter plus a margin, and a
		// server goroutine parked beyond it serves nobody.
		var cancel context.CancelFunc
		roundCtx, cancel = context.WithTimeout(ctx, wait)
		defer cancel()
	}
	// A follower read's first round was confirmed by the leader already.
	confirmed := opts.readIndexed
	// Bounded by the timer: each round either returns or waits on it.
	for {
		if opts.RequireConsistent && !confirmed {
			if _, err := b.reads.readIndex(roundCtx); err != nil {
				return err
			}
		}
		confirmed = false
		index, changed, err := run()
		if err != nil {
			return err
		}
		b.fillMeta(opts, meta, index)
		if opts.MinQueryIndex == 0 || meta.Index > opts.MinQueryIndex {
			return nil
		}
		select {
		case <-changed:
		case <-timeout:
			return nil
		case <-ctx.Done():
			return fmt.Errorf("rpc: blocking query abandoned: %w", ctx.Err())
		}
	}
}

// wait draws this query's wait: the requested time clamped, plus jitter.
func (b *Blocker) wait(requested time.Duration) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	return blockingWait(requested, b.cfg.DefaultQueryTime, b.cfg.MaxQueryTime, b.rnd)
}

// blockingWait is clampWait plus jitter uniform in [0, wait/JitterFraction).
func blockingWait(requested, defaultWait, maxWait time.Duration, rnd *rand.Rand) time.Duration {
	return addJitter(clampWait(requested, defaultWait, maxWait), rnd.Int64N)
}

// QueryWait is the wait of a blocking query that asked for requested, as
// a Blocker with the package defaults draws it: DefaultQueryTime for 0, at
// most MaxQueryTime, plus Consul's jitter. It is for waits done outside a
// Blocker (the HTTP server's local waits) and is safe for concurrent use.
func QueryWait(requested time.Duration) time.Duration {
	return addJitter(clampWait(requested, DefaultQueryTime, MaxQueryTime), rand.Int64N)
}

// addJitter adds jitter uniform in [0, wait/JitterFraction), drawn by int64N.
func addJitter(wait time.Duration, int64N func(int64) int64) time.Duration {
	if j := int64(wait / JitterFraction); j > 0 {
		wait += time.Duration(int64N(j))
	}
	return wait
}

// clampWait applies the default to 0 and the maximum to larger requests.
func clampWait(requested, defaultWait, maxWait time.Duration) time.Duration {
	switch {
	case requested <= 0:
		return defaultWait
	case requested > maxWait:
		return maxWait
	}
	return requested
}

// fillMeta sets the X-Consul-* data. The index is never 0 (a client
// sending ?index=0 would otherwise spin).
func (b *Blocker) fillMeta(opts *QueryOptions, meta *QueryMeta, index uint64) {
	c := b.cfg.Cluster
	meta.Index = max(index, 1)
	meta.Consistency = opts.Consistency()
	// A follower read heard from the leader just now, for this very read.
	if c.IsLeader() || opts.readIndexed {
		meta.KnownLeader, meta.LastContact = true, 0
		return
	}
	meta.KnownLeader = c.LeaderAddr() != ""
	meta.LastContact = c.LastContact()
}
