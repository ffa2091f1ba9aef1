package rpc

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"roster/catalog"
	"roster/internal/testkit"
)

func TestFollowerRead_ConsistentReadSeesEveryAcknowledgedWriteWithoutForwarding(t *testing.T) {
	c := startEPCluster(t, 3, epOpts{followerReads: true})
	leader, f := c.waitLeader(), c.follower()
	for i := range 30 {
		var ok bool
		put := KVSRequest{Op: catalog.KVRequest{Verb: catalog.KVSet, Key: "lin", Value: fmt.Appendf(nil, "v%d", i)}}
		if err := c.inproc(leader, "KVS.Apply", &put, &ok); err != nil || !ok {
			t.Fatalf("write %d: ok=%v err=%v", i, ok, err)
		}
		// Acknowledged by the leader: a consistent read anywhere must see it,
		// although the follower may not have applied it yet.
		var reply IndexedDirEntries
		if err := c.inproc(f, "KVS.Get", &KeyRequest{QueryOptions: QueryOptions{RequireConsistent: true}, Key: "lin"}, &reply); err != nil {
			t.Fatal(err)
		}
		if len(reply.Entries) != 1 || string(reply.Entries[0].Value) != fmt.Sprintf("v%d", i) {
			t.Fatalf("consistent read on the follower after write %d returned %+v", i, reply.Entries)
		}
		if reply.Consistency != ConsistencyConsistent || !reply.KnownLeader || reply.LastContact != 0 {
			t.Fatalf("meta of a follower read: %+v", reply.QueryMeta)
		}
	}
	if n := f.calls.get("KVS.Get"); n != 0 {
		t.Fatalf("the follower forwarded %d consistent reads to the leader, want 0", n)
	}
	if n := f.calls.get("Status.ReadIndex"); n == 0 || n > 30 {
		t.Fatalf("the follower made %d read-index calls for 30 reads, want 1..30", n)
	}
}

func TestFollowerRead_ConcurrentReadsShareReadIndexCalls(t *testing.T) {
	c := startEPCluster(t, 3, epOpts{followerReads: true})
	f := c.follower()
	const readers, rounds = 32, 10
	var wg sync.WaitGroup
	errs := make(chan error, readers)
	for range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range rounds {
				var reply IndexedDirEntries
				if err := c.inproc(f, "KVS.Get", &KeyRequest{QueryOptions: QueryOptions{RequireConsistent: true}, Key: "k"}, &reply); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := f.calls.get("Status.ReadIndex"); n >= readers*rounds {
		t.Fatalf("%d read-index calls for %d reads: concurrent reads did not share them", n, readers*rounds)
	}
	t.Logf("%d reads, %d read-index calls", readers*rounds, f.calls.get("Status.ReadIndex"))
}

func TestFollowerRead_CutOffFollowerForwardsAndBlockingAndOperatorReadsStayOnTheLeader(t *testing.T) {
	c := startEPCluster(t, 3, epOpts{followerReads: true, holdTimeout: 500 * time.Millisecond})
	leader, f := c.waitLeader(), c.follower()
	// Operator reads and blocking consistent reads are forwarded as before.
	var conf RaftConfigurationResponse
	if err := c.inproc(f, "Operator.RaftGetConfiguration", &DCSpecificRequest{QueryOptions: QueryOptions{RequireConsistent: true}}, &conf); err != nil {
		t.Fatal(err)
	}
	var reply IndexedDirEntries
	q := QueryOptions{RequireConsistent: true, MinQueryIndex: 1, MaxQueryTime: 50 * time.Millisecond}
	if err := c.inproc(f, "KVS.Get", &KeyRequest{QueryOptions: q, Key: "k"}, &reply); err != nil {
		t.Fatal(err)
	}
	if f.calls.get("Operator.RaftGetConfiguration") != 1 || f.calls.get("KVS.Get") != 1 || f.calls.get("Status.ReadIndex") != 0 {
		t.Fatalf("calls sent by the follower: %v", f.calls.n)
	}
	// Cut the follower's RPC link to the leader: its read round fails and
	// the read is forwarded, which fails too, with Consul's error.
	c.net.Plan.Partition([]string{f.addr}, []string{leader.addr})
	defer c.net.Plan.Heal()
	err := c.inproc(f, "KVS.Get", &KeyRequest{QueryOptions: QueryOptions{RequireConsistent: true}, Key: "k"}, &reply)
	if !containsErr(err, "link cut") && !IsNoLeader(err) {
		t.Fatalf("consistent read on a follower cut off from the leader: %v, want the cut link's or a no-leader error", err)
	}
	if f.calls.get("Status.ReadIndex") == 0 || f.calls.get("KVS.Get") < 2 {
		t.Fatalf("the cut-off follower did not try a read round and then forward: %v", f.calls.n)
	}
}

func TestFollowerRead_BatcherNeverHandsOutARoundStartedBeforeTheCall(t *testing.T) {
	var mu sync.Mutex
	started := 0 // rounds started so far
	release := make(chan struct{})
	b := &readBatcher{ctx: context.Background(), fetch: func(ctx context.Context) (uint64, error) {
		mu.Lock()
		started++
		n := started
		mu.Unlock()
		<-release
		return uint64(n), nil
	}}
	ctx := context.Background()
	first := make(chan uint64, 1)
	go func() { idx, _ := b.readIndex(ctx); first <- idx }()
	waitStarted := func(n int) {
		testkit.WaitFor(t, 5*time.Second, fmt.Sprintf("round %d to start", n), func() error {
			mu.Lock()
			defer mu.Unlock()
			if started < n {
				return fmt.Errorf("%d rounds started", started)
			}
			return nil
		})
	}
	waitStarted(1)
	// Round 1 is in flight; a read arriving now must get round 2.
	second := make(chan uint64, 1)
	go func() { idx, _ := b.readIndex(ctx); second <- idx }()
	testkit.WaitFor(t, 5*time.Second, "the second read to queue for the next round", func() error {
		b.mu.Lock()
		defer b.mu.Unlock()
		if b.next == nil {
			return errors.New("not queued yet")
		}
		return nil
	})
	release <- struct{}{}
	if got := <-first; got != 1 {
		t.Fatalf("first read got round %d", got)
	}
	waitStarted(2)
	release <- struct{}{}
	if got := <-second; got != 2 {
		t.Fatalf("a read that arrived during round 1 got round %d's index, want round 2's", got)
	}
}
