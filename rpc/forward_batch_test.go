package rpc

import (
	"context"
	"errors"
	"fmt"
	"net/rpc"
	"reflect"
	"sync"
	"testing"
	"time"

	"roster/catalog"
	"roster/internal/testkit"
)

func TestKVSBatchCodec_RoundTripsAndRefusesEveryTruncation(t *testing.T) {
	rnd := testkit.Rand(t)
	str := func() string {
		b := make([]byte, rnd.IntN(40))
		for i := range b {
			b[i] = byte(rnd.IntN(256))
		}
		return string(b)
	}
	var in []*KVSRequest
	for range 1 + rnd.IntN(20) {
		r := &KVSRequest{WriteRequest: WriteRequest{Datacenter: str(), Token: str(), RequestID: str(), ForwardHops: uint8(rnd.IntN(5))},
			Op: catalog.KVRequest{Verb: str(), Key: str(), Flags: rnd.Uint64(), Index: rnd.Uint64(), Session: str()}}
		if v := str(); v != "" {
			r.Op.Value = []byte(v)
		}
		in = append(in, r)
	}
	data := encodeKVSBatch(in)
	out, err := decodeKVSBatch(data)
	if err != nil {
		t.Fatal(err)
	}
	for i := range in {
		if !reflect.DeepEqual(*in[i], out[i]) {
			t.Fatalf("entry %d: sent %+v, decoded %+v", i, *in[i], out[i])
		}
	}
	for n := range len(data) {
		if _, err := decodeKVSBatch(data[:n]); err == nil {
			t.Fatalf("a batch cut to %d of %d bytes decoded without error", n, len(data))
		}
	}
	if _, err := decodeKVSBatch([]byte{0xff, 0xff, 0xff, 0xff, 0x0f}); err == nil {
		t.Fatal("a batch announcing 4 billion entries decoded without error")
	}
	empty, err := decodeKVSBatch(encodeKVSBatch([]*KVSRequest{{}}))
	if err != nil || len(empty) != 1 || !reflect.DeepEqual(empty[0], KVSRequest{}) {
		t.Fatalf("a batch of one empty request: decoded %+v (%v)", empty, err)
	}
	res := []kvsResult{{ok: true}, {err: "No cluster leader"}, {}}
	got, err := decodeKVSResults(encodeKVSResults(res))
	if err != nil || !reflect.DeepEqual(got, res) {
		t.Fatalf("results: sent %+v, decoded %+v (%v)", res, got, err)
	}
}

// batchCaller answers KVS.ApplyBatch by key: ok for keys ending in "y",
// an error for keys ending in "e". gate, when set, holds every call until
// it is closed.
type batchCaller struct {
	gate  chan struct{}
	mu    sync.Mutex // guards sizes, bytes, singles
	sizes []int
	bytes []int // encoded size of each batch
	// singles counts KVS.Apply calls; unsupported makes ApplyBatch unknown.
	singles     int
	unsupported bool
}

func (c *batchCaller) Call(ctx context.Context, addr, method string, args, reply any) error {
	if c.gate != nil {
		select {
		case <-c.gate:
		case <-ctx.Done():
			return &TransportError{Addr: addr, Method: method, Err: ctx.Err()}
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if method == "KVS.Apply" {
		c.singles++
		*reply.(*bool) = true
		return nil
	}
	if c.unsupported {
		return rpc.ServerError("rpc: can't find method " + method)
	}
	reqs, err := decodeKVSBatch(args.(*KVSBatchRequest).Data)
	if err != nil {
		return err
	}
	c.sizes = append(c.sizes, len(reqs))
	c.bytes = append(c.bytes, len(args.(*KVSBatchRequest).Data))
	res := make([]kvsResult, len(reqs))
	for i, r := range reqs {
		switch r.Op.Key[len(r.Op.Key)-1] {
		case 'y':
			res[i].ok = true
		case 'e':
			res[i].err = "failed " + r.Op.Key
		}
	}
	reply.(*KVSBatchReply).Data = encodeKVSResults(res)
	return nil
}

// Writes that arrive while the in-flight limit is reached leave together,
// and each gets its own outcome back.
func TestKVSBatcher_QueuedWritesShareOneCallAndKeepTheirOutcomes(t *testing.T) {
	caller := &batchCaller{gate: make(chan struct{})}
	b := newKVSBatcher(caller, 1)
	ctx := ctxTimeout(t, 10*time.Second)
	const writes = 30
	type outcome struct {
		ok  bool
		err error
	}
	results := make([]outcome, writes)
	var wg sync.WaitGroup
	write := func(i int) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := fmt.Sprintf("k%d%c", i, "yne"[i%3])
			var ok bool
			err := b.call(ctx, "leader", &KVSRequest{Op: catalog.KVRequest{Verb: catalog.KVSet, Key: key}}, &ok)
			results[i] = outcome{ok, err}
		}()
	}
	// The first write alone takes the one slot and is held at the gate...
	write(0)
	testkit.WaitFor(t, 10*time.Second, "the first write in flight", func() error {
		b.mu.Lock()
		defer b.mu.Unlock()
		if q := b.queues["leader"]; q == nil || q.inFlight != 1 || len(q.pending) != 0 {
			return errors.New("not yet")
		}
		return nil
	})
	// ...the others queue behind it, then all are released.
	for i := 1; i < writes; i++ {
		write(i)
	}
	testkit.WaitFor(t, 10*time.Second, "the writes queued behind the first", func() error {
		b.mu.Lock()
		defer b.mu.Unlock()
		if q := b.queues["leader"]; q == nil || len(q.pending) != writes-1 {
			return errors.New("not yet")
		}
		return nil
	})
	close(caller.gate)
	wg.Wait()
	for i, r := range results {
		var se rpc.ServerError
		switch i % 3 {
		case 0:
			if !r.ok || r.err != nil {
				t.Errorf("write %d: ok=%v err=%v, want ok", i, r.ok, r.err)
			}
		case 1:
			if r.ok || r.err != nil {
				t.Errorf("write %d: ok=%v err=%v, want false", i, r.ok, r.err)
			}
		case 2:
			if !errors.As(r.err, &se) || string(se) != fmt.Sprintf("failed k%de", i) {
				t.Errorf("write %d: err=%v, want its own ServerError", i, r.err)
			}
		}
	}
	if len(caller.sizes) != 2 || caller.sizes[0] != 1 || caller.sizes[1] != writes-1 {
		t.Fatalf("batch sizes %v, want [1 %d]", caller.sizes, writes-1)
	}
	if q := b.queues["leader"]; q.inFlight != 0 || len(q.pending) != 0 {
		t.Fatalf("after the writes: %d slots held, %d pending", q.inFlight, len(q.pending))
	}
}

// A write whose context ends while it waits leaves the queue (and passes
// on a slot it was handed), so later writes still go out.
func TestKVSBatcher_AbandonedWriteLeavesTheQueueUsable(t *testing.T) {
	caller := &batchCaller{gate: make(chan struct{})}
	b := newKVSBatcher(caller, 1)
	long := ctxTimeout(t, 10*time.Second)
	first := make(chan error, 1)
	go func() {
		var ok bool
		first <- b.call(long, "leader", &KVSRequest{Op: catalog.KVRequest{Key: "ay"}}, &ok)
	}()
	testkit.WaitFor(t, 10*time.Second, "the first write in flight", func() error {
		b.mu.Lock()
		defer b.mu.Unlock()
		if q := b.queues["leader"]; q == nil || q.inFlight != 1 {
			return errors.New("not yet")
		}
		return nil
	})
	short, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	var ok bool
	var te *TransportError
	if err := b.call(short, "leader", &KVSRequest{Op: catalog.KVRequest{Key: "by"}}, &ok); !errors.As(err, &te) {
		t.Fatalf("queued write past its deadline: %v, want a TransportError", err)
	}
	close(caller.gate)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if err := b.call(long, "leader", &KVSRequest{Op: catalog.KVRequest{Key: "cy"}}, &ok); err != nil || !ok {
		t.Fatalf("write after the abandoned one: ok=%v err=%v", ok, err)
	}
}

func TestKVSBatcher_ServerWithoutBatchesGetsSingleWrites(t *testing.T) {
	caller := &batchCaller{unsupported: true}
	b := newKVSBatcher(caller, 2)
	ctx := ctxTimeout(t, 5*time.Second)
	for i := range 3 {
		var ok bool
		if err := b.call(ctx, "old", &KVSRequest{Op: catalog.KVRequest{Key: fmt.Sprint(i)}}, &ok); err != nil || !ok {
			t.Fatalf("write %d: ok=%v err=%v", i, ok, err)
		}
	}
	if caller.singles != 3 {
		t.Fatalf("%d single KVS.Apply calls, want 3", caller.singles)
	}
}

// Concurrent writes on a follower travel as KVS.ApplyBatch calls and each
// is applied exactly once, with the outcome of its own verb.
func TestForward_ConcurrentFollowerWritesAreBatchedAndAppliedOnce(t *testing.T) {
	c := startEPCluster(t, 3, epOpts{})
	f := c.follower()
	const writes = 40
	errs := make(chan error, writes)
	var wg sync.WaitGroup
	for i := range writes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			op := catalog.KVRequest{Verb: catalog.KVSet, Key: fmt.Sprintf("k%d", i), Value: []byte("v")}
			want := true
			if i%4 == 3 {
				op = catalog.KVRequest{Verb: catalog.KVCAS, Key: "absent", Index: 99, Value: []byte("x")}
				want = false
			}
			var ok bool
			if err := c.inproc(f, "KVS.Apply", &KVSRequest{Op: op}, &ok); err != nil || ok != want {
				errs <- fmt.Errorf("write %d: ok=%v err=%v, want ok=%v", i, ok, err, want)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	proposals := 0
	for _, s := range c.servers {
		proposals += s.applies.count()
	}
	if proposals != writes {
		t.Fatalf("%d proposals for %d writes", proposals, writes)
	}
	if n := f.calls.get("KVS.ApplyBatch"); n == 0 || f.calls.get("KVS.Apply") != 0 {
		t.Fatalf("the follower sent %d KVS.ApplyBatch and %d KVS.Apply calls", n, f.calls.get("KVS.Apply"))
	}
	leader := c.waitLeader()
	for i := range writes {
		if p, _ := leader.store.KVGet(fmt.Sprintf("k%d", i)); (p != nil) != (i%4 != 3) {
			t.Fatalf("key k%d: %+v", i, p)
		}
	}
}

// delayCaller answers every batch after a random delay, all ok.
type delayCaller struct {
	mu  sync.Mutex // guards rnd
	rnd interface{ IntN(int) int }
}

func (c *delayCaller) Call(ctx context.Context, addr, method string, args, reply any) error {
	c.mu.Lock()
	d := time.Duration(c.rnd.IntN(3000)) * time.Microsecond
	c.mu.Unlock()
	select {
	case <-time.After(d):
	case <-ctx.Done():
		return &TransportError{Addr: addr, Method: method, Err: ctx.Err()}
	}
	reqs, err := decodeKVSBatch(args.(*KVSBatchRequest).Data)
	if err != nil {
		return err
	}
	res := make([]kvsResult, len(reqs))
	for i := range res {
		res[i].ok = true
	}
	reply.(*KVSBatchReply).Data = encodeKVSResults(res)
	return nil
}

// Writes with random deadlines against a server with random delays: every
// call returns, and afterwards no slot is held and nothing is queued (a
// lost hand-off would leave writes waiting for a sender that never comes).
func TestKVSBatcher_RandomDeadlinesLeaveNoSlotBehind(t *testing.T) {
	rnd := testkit.Rand(t)
	b := newKVSBatcher(&delayCaller{rnd: rnd}, 2)
	deadlines := make([]time.Duration, 400)
	for i := range deadlines {
		deadlines[i] = time.Duration(rnd.IntN(4000)) * time.Microsecond
	}
	var wg sync.WaitGroup
	for _, d := range deadlines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), d)
			defer cancel()
			var ok bool
			b.call(ctx, "leader", &KVSRequest{Op: catalog.KVRequest{Key: "k"}}, &ok)
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("writes still waiting 20s after their deadlines")
	}
	// A batch may still be on its way when its writes have given up (it
	// runs to the latest of their deadlines), so the slots come back soon
	// after, not at once.
	testkit.WaitFor(t, 5*time.Second, "every slot returned after the writes", func() error {
		b.mu.Lock()
		defer b.mu.Unlock()
		if q := b.queues["leader"]; q.inFlight != 0 || len(q.pending) != 0 {
			return fmt.Errorf("%d slots held, %d queued", q.inFlight, len(q.pending))
		}
		return nil
	})
}

// stagedCaller holds its i-th call until gates[i] is closed (or the
// call's context ends), then answers like inner.
type stagedCaller struct {
	inner *batchCaller
	gates []chan struct{}
	mu    sync.Mutex // guards n
	n     int
}

func (c *stagedCaller) Call(ctx context.Context, addr, method string, args, reply any) error {
	c.mu.Lock()
	gate := c.gates[min(c.n, len(c.gates)-1)]
	c.n++
	c.mu.Unlock()
	select {
	case <-gate:
	case <-ctx.Done():
		return &TransportError{Addr: addr, Method: method, Err: ctx.Err()}
	}
	return c.inner.Call(ctx, addr, method, args, reply)
}

func waitPending(t *testing.T, b *kvsBatcher, inFlight, pending int) {
	t.Helper()
	testkit.WaitFor(t, 5*time.Second, fmt.Sprintf("%d in flight, %d pending", inFlight, pending), func() error {
		b.mu.Lock()
		defer b.mu.Unlock()
		if q := b.queues["leader"]; q == nil || q.inFlight != inFlight || len(q.pending) != pending {
			return errors.New("not yet")
		}
		return nil
	})
}

// The batch [B, C] sent by B, the oldest waiter with the earliest
// deadline, is not cut short by B's deadline: C, with seconds left,
// gets its outcome, and B alone gives up at its own deadline.
func TestKVSBatcher_BatchOutlivesTheSlotHoldersDeadline(t *testing.T) {
	caller := &stagedCaller{inner: &batchCaller{}, gates: []chan struct{}{make(chan struct{}), make(chan struct{})}}
	b := newKVSBatcher(caller, 1)
	long := ctxTimeout(t, 10*time.Second)
	write := func(ctx context.Context, key string) chan error {
		ch := make(chan error, 1)
		go func() {
			var ok bool
			err := b.call(ctx, "leader", &KVSRequest{Op: catalog.KVRequest{Key: key}}, &ok)
			if err == nil && !ok {
				err = errors.New("write " + key + " not ok")
			}
			ch <- err
		}()
		return ch
	}
	a := write(long, "ay")
	waitPending(t, b, 1, 0)
	short, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	bErr := write(short, "by")
	waitPending(t, b, 1, 1)
	c := write(long, "cy")
	waitPending(t, b, 1, 2)
	close(caller.gates[0]) // A returns; B takes the slot and sends [B, C]
	if err := <-a; err != nil {
		t.Fatal(err)
	}
	var te *TransportError
	if err := <-bErr; !errors.As(err, &te) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("B past its deadline: %v, want a deadline TransportError", err)
	}
	close(caller.gates[1])
	if err := <-c; err != nil {
		t.Fatalf("C, with seconds left, failed with its batch: %v", err)
	}
	if got := caller.inner.sizes; !reflect.DeepEqual(got, []int{1, 2}) {
		t.Fatalf("batch sizes %v, want [1 2]", got)
	}
}

// A batch stops at maxKVSBatchBytes (a single larger write still goes).
func TestKVSBatcher_BatchesAreCappedInBytes(t *testing.T) {
	caller := &batchCaller{gate: make(chan struct{})}
	b := newKVSBatcher(caller, 1)
	ctx := ctxTimeout(t, 10*time.Second)
	value := make([]byte, 1<<20)
	const writes = 10
	errs := make(chan error, writes)
	for i := range writes {
		go func() {
			var ok bool
			errs <- b.call(ctx, "leader", &KVSRequest{Op: catalog.KVRequest{Key: fmt.Sprintf("k%dy", i), Value: value}}, &ok)
		}()
		waitPending(t, b, 1, i)
	}
	close(caller.gate)
	for range writes {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	total := 0
	for i, n := range caller.sizes {
		total += n
		if n > 1 && caller.bytes[i] > maxKVSBatchBytes {
			t.Errorf("batch %d: %d writes in %d bytes, over the cap of %d", i, n, caller.bytes[i], maxKVSBatchBytes)
		}
	}
	if total != writes || len(caller.sizes) < 4 {
		t.Fatalf("batch sizes %v for %d writes of 1 MiB", caller.sizes, writes)
	}
}
