package rpc

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"roster/catalog"
	"roster/internal/testkit"
)

func TestBlockingWait_ClampAndJitterBounds(t *testing.T) {
	rnd := testkit.Rand(t)
	for _, c := range []struct{ requested, base time.Duration }{
		{0, DefaultQueryTime},
		{-time.Second, DefaultQueryTime},
		{time.Minute, time.Minute},
		{20 * time.Minute, MaxQueryTime},
		{time.Nanosecond, time.Nanosecond}, // too short to jitter
	} {
		seen := map[time.Duration]bool{}
		for range 1000 {
			w := blockingWait(c.requested, DefaultQueryTime, MaxQueryTime, rnd)
			if w < c.base || w >= c.base+max(c.base/JitterFraction, 1) {
				t.Fatalf("requested %v: wait %v outside [%v, %v)", c.requested, w, c.base, c.base+c.base/JitterFraction)
			}
			seen[w] = true
		}
		if c.base >= time.Second && len(seen) < 100 {
			t.Fatalf("requested %v: only %d distinct waits in 1000 draws; jitter missing", c.requested, len(seen))
		}
	}
}

// versioned is a watched value: set bumps the index and closes the
// channel handed out by the previous read.
type versioned struct {
	mu    sync.Mutex // guards index, ch, reads
	index uint64
	ch    chan struct{}
	reads int
}

func (v *versioned) run() (uint64, <-chan struct{}, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.reads++
	return v.index, v.ch, nil
}

func (v *versioned) set(index uint64) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.index = index
	close(v.ch)
	v.ch = make(chan struct{})
}

func (v *versioned) readCount() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.reads
}

func newBlocker(t *testing.T, c Cluster, defaultWait time.Duration) *Blocker {
	t.Helper()
	b, err := NewBlocker(BlockingConfig{Cluster: c, DefaultQueryTime: defaultWait, Seed: testkit.Seed(t)})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func leaderNode() *fakeNode {
	return &fakeNode{w: &world{leader: 0, addrs: []string{"127.0.0.1:8300"}}}
}

func TestBlocker_NonBlockingAndAheadReturnAtOnce(t *testing.T) {
	b := newBlocker(t, leaderNode(), MaxQueryTime)
	v := &versioned{index: 0, ch: make(chan struct{})}
	var meta QueryMeta
	if err := b.Query(context.Background(), &QueryOptions{}, &meta, v.run); err != nil {
		t.Fatal(err)
	}
	if meta.Index != 1 || !meta.KnownLeader || meta.LastContact != 0 || meta.Consistency != ConsistencyLeader {
		t.Fatalf("meta %+v: want index rewritten 0 -> 1 and the leader's view", meta)
	}
	v.set(7)
	if err := b.Query(context.Background(), &QueryOptions{MinQueryIndex: 6}, &meta, v.run); err != nil || meta.Index != 7 {
		t.Fatalf("meta %+v, %v: want index 7 at once", meta, err)
	}
}

func TestBlocker_WakesOnChange(t *testing.T) {
	b := newBlocker(t, leaderNode(), MaxQueryTime)
	v := &versioned{index: 5, ch: make(chan struct{})}
	done := make(chan error, 1)
	var meta QueryMeta
	go func() { done <- b.Query(context.Background(), &QueryOptions{MinQueryIndex: 5}, &meta, v.run) }()
	testkit.WaitFor(t, 5*time.Second, "the query to block", func() error {
		if v.readCount() != 1 {
			return errors.New("not read yet")
		}
		return nil
	})
	v.set(6)
	select {
	case err := <-done:
		if err != nil || meta.Index != 6 || v.readCount() != 2 {
			t.Fatalf("meta %+v, err %v, reads %d: want woken with index 6 after 2 reads", meta, err, v.readCount())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("blocking query did not wake on change (its wait is an hour)")
	}
}

// A change that does not move the index past MinQueryIndex (another key
// in the same table) re-runs the query and keeps blocking.
func TestBlocker_IgnoresChangesAtOrBelowMinIndex(t *testing.T) {
	b := newBlocker(t, leaderNode(), MaxQueryTime)
	v := &versioned{index: 5, ch: make(chan struct{})}
	done := make(chan error, 1)
	var meta QueryMeta
	go func() { done <- b.Query(context.Background(), &QueryOptions{MinQueryIndex: 9}, &meta, v.run) }()
	testkit.WaitFor(t, 5*time.Second, "first read", func() error {
		if v.readCount() < 1 {
			return errors.New("not read yet")
		}
		return nil
	})
	v.set(9)
	testkit.WaitFor(t, 5*time.Second, "re-read after the change", func() error {
		if v.readCount() < 2 {
			return errors.New("not re-read yet")
		}
		return nil
	})
	select {
	case <-done:
		t.Fatal("returned although the index did not pass MinQueryIndex")
	default:
	}
	v.set(10)
	if err := <-done; err != nil || meta.Index != 10 {
		t.Fatalf("meta %+v, %v", meta, err)
	}
}

func TestBlocker_TimesOutWithUnchangedResult(t *testing.T) {
	const wait = 100 * time.Millisecond
	b := newBlocker(t, leaderNode(), wait)
	v := &versioned{index: 3, ch: make(chan struct{})}
	var meta QueryMeta
	start := time.Now()
	if err := b.Query(context.Background(), &QueryOptions{MinQueryIndex: 3}, &meta, v.run); err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	if elapsed < wait {
		t.Fatalf("returned after %v, before the %v wait", elapsed, wait)
	}
	if elapsed > 10*time.Second {
		t.Fatalf("returned after %v; the wait is %v plus at most %v jitter", elapsed, wait, wait/JitterFraction)
	}
	if meta.Index != 3 {
		t.Fatalf("meta %+v: a timed-out query returns the unchanged result", meta)
	}
}

func TestBlocker_ConsistentReadEveryRound(t *testing.T) {
	node := leaderNode()
	b := newBlocker(t, node, MaxQueryTime)
	v := &versioned{index: 1, ch: make(chan struct{})}
	done := make(chan error, 1)
	var meta QueryMeta
	go func() {
		done <- b.Query(context.Background(), &QueryOptions{MinQueryIndex: 1, RequireConsistent: true}, &meta, v.run)
	}()
	testkit.WaitFor(t, 5*time.Second, "first read", func() error {
		if v.readCount() < 1 {
			return errors.New("not read yet")
		}
		return nil
	})
	v.set(2)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := node.consistentReads.Load(); n != 2 || meta.Consistency != ConsistencyConsistent {
		t.Fatalf("%d ReadIndex rounds, meta %+v; want one per read (2)", n, meta)
	}
	// A server that lost leadership cannot serve a consistent read.
	node.w.setLeader(-1)
	if err := b.Query(context.Background(), &QueryOptions{RequireConsistent: true}, &meta, v.run); err == nil {
		t.Fatal("consistent read served without leadership")
	}
}

func TestBlocker_FollowerMetaAndCancel(t *testing.T) {
	node := &fakeNode{w: &world{leader: 1, addrs: []string{"a", "b"}}, id: 0, lastContact: 42 * time.Millisecond}
	b := newBlocker(t, node, MaxQueryTime)
	v := &versioned{index: 4, ch: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var meta QueryMeta
	go func() { done <- b.Query(ctx, &QueryOptions{MinQueryIndex: 4, AllowStale: true}, &meta, v.run) }()
	testkit.WaitFor(t, 5*time.Second, "first read", func() error {
		if v.readCount() < 1 {
			return errors.New("not read yet")
		}
		return nil
	})
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want the cancellation", err)
	}
	if !meta.KnownLeader || meta.LastContact != 42*time.Millisecond || meta.Consistency != ConsistencyStale {
		t.Fatalf("meta %+v: want the follower's view", meta)
	}
}

// stuckReadIndex is a leader whose ReadIndex rounds never reach a quorum:
// ConsistentRead returns only when its context ends.
type stuckReadIndex struct{ *fakeNode }

func (s stuckReadIndex) ConsistentRead(ctx context.Context) error {
	<-ctx.Done()
	return ctx.Err()
}

// A ?consistent blocking query whose ReadIndex round cannot finish still
// ends with its wait, not whenever the server shuts down.
func TestBlocker_ConsistentRoundBoundedByWait(t *testing.T) {
	b := newBlocker(t, stuckReadIndex{leaderNode()}, MaxQueryTime)
	v := &versioned{index: 1, ch: make(chan struct{})}
	done := make(chan error, 1)
	go func() {
		var meta QueryMeta
		done <- b.Query(context.Background(), &QueryOptions{MinQueryIndex: 1, MaxQueryTime: 100 * time.Millisecond,
			RequireConsistent: true}, &meta, v.run)
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("a consistent read was served without a ReadIndex round")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("blocking query with a 100ms wait still parked in ReadIndex after 10s")
	}
}

func TestBlockingConfig_ValidateNamesField(t *testing.T) {
	node := leaderNode()
	for field, cfg := range map[string]BlockingConfig{
		"Cluster":           {},
		"DefaultQueryTime":  {Cluster: node, DefaultQueryTime: -1},
		"MaxQueryTime":      {Cluster: node, MaxQueryTime: MaxQueryTime + time.Second},
		"DefaultQueryTime ": {Cluster: node, MaxQueryTime: time.Minute, DefaultQueryTime: 2 * time.Minute},
	} {
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), strings.TrimSpace(field)) {
			t.Errorf("Validate = %v, want it to name %s", err, field)
		}
	}
}

// gatedReadIndex is a leader whose ConsistentRead rounds wait for gate and
// are counted.
type gatedReadIndex struct {
	*fakeNode
	gate   chan struct{}
	rounds atomic.Int32
}

func (g *gatedReadIndex) ConsistentRead(ctx context.Context) error {
	g.rounds.Add(1)
	select {
	case <-g.gate:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ?consistent reads that arrive while a ReadIndex round runs share the
// next one: a few rounds for many reads, each read after a round that
// began after it arrived (the first wave's round never serves the second).
func TestBlocker_ConcurrentConsistentReadsShareRounds(t *testing.T) {
	g := &gatedReadIndex{fakeNode: leaderNode(), gate: make(chan struct{})}
	b := newBlocker(t, g, MaxQueryTime)
	v := &versioned{index: 3, ch: make(chan struct{})}
	first := make(chan error, 1)
	go func() {
		var meta QueryMeta
		first <- b.Query(context.Background(), &QueryOptions{RequireConsistent: true}, &meta, v.run)
	}()
	testkit.WaitFor(t, 10*time.Second, "the first round", func() error {
		if g.rounds.Load() != 1 {
			return errors.New("not started")
		}
		return nil
	})
	const later = 20
	errs := make(chan error, later)
	for range later {
		go func() {
			var meta QueryMeta
			errs <- b.Query(context.Background(), &QueryOptions{RequireConsistent: true}, &meta, v.run)
		}()
	}
	testkit.WaitFor(t, 10*time.Second, "the later reads queued", func() error {
		b.reads.mu.Lock()
		defer b.reads.mu.Unlock()
		if b.reads.next == nil || b.reads.next.joined != later {
			return errors.New("not all queued")
		}
		return nil
	})
	close(g.gate)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	for range later {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if n := g.rounds.Load(); n != 2 {
		t.Fatalf("%d ReadIndex rounds for %d reads arriving in two waves, want 2", n, later+1)
	}
}

// endedReadIndex is a leader whose ReadIndex rounds never reach a quorum
// and that records when a round gave up.
type endedReadIndex struct {
	*fakeNode
	ended chan error
}

func (s endedReadIndex) ConsistentRead(ctx context.Context) error {
	<-ctx.Done()
	s.ended <- ctx.Err()
	return ctx.Err()
}

// A shared ReadIndex round ends with the server that runs it, not up to
// consistentRoundTimeout later.
func TestBlocker_ConsistentRoundEndsAtServerShutdown(t *testing.T) {
	node := endedReadIndex{leaderNode(), make(chan error, 1)}
	b := newBlocker(t, node, MaxQueryTime)
	srv, err := NewServer(Config{})
	if err != nil {
		t.Fatal(err)
	}
	deps := EndpointDeps{Datacenter: "dc1", Store: &catalog.Store{}, Raft: &fakeOperator{}, Operator: &fakeOperator{},
		Cluster: node, Forwarder: &Forwarder{}, Blocker: b}
	if err := RegisterEndpoints(srv, deps); err != nil {
		t.Fatal(err)
	}
	// The read gives up at once; the round it started runs on.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var meta QueryMeta
	v := &versioned{index: 1, ch: make(chan struct{})}
	if err := b.Query(ctx, &QueryOptions{RequireConsistent: true}, &meta, v.run); err == nil {
		t.Fatal("a consistent read was served without a ReadIndex round")
	}
	sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer scancel()
	if err := srv.Shutdown(sctx); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-node.ended:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("the round ended with %v, want the server's cancellation", err)
		}
	case <-time.After(consistentRoundTimeout / 2):
		t.Fatal("the ReadIndex round outlived server shutdown")
	}
}

// The follower-read rounds a Forwarder starts end with the server too.
func TestRegisterEndpoints_FollowerReadRoundsEndWithTheServer(t *testing.T) {
	node := leaderNode()
	srv, err := NewServer(Config{})
	if err != nil {
		t.Fatal(err)
	}
	f := &Forwarder{reads: &readBatcher{ctx: context.Background()}}
	deps := EndpointDeps{Datacenter: "dc1", Store: &catalog.Store{}, Raft: &fakeOperator{}, Operator: &fakeOperator{},
		Cluster: node, Forwarder: f, Blocker: newBlocker(t, node, MaxQueryTime)}
	if err := RegisterEndpoints(srv, deps); err != nil {
		t.Fatal(err)
	}
	sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer scancel()
	if err := srv.Shutdown(sctx); err != nil {
		t.Fatal(err)
	}
	f.reads.mu.Lock()
	defer f.reads.mu.Unlock()
	if f.reads.ctx.Err() == nil {
		t.Fatal("follower-read rounds still run under a context that outlives the server")
	}
}
