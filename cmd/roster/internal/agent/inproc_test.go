package agent

import (
	"fmt"
	"testing"
	"time"
)

// A server's own requests (HTTP API, anti-entropy, DNS forwarding) reach
// its endpoints in-process: none of them is a pool call to its own
// address, so they never take the pool's per-server slots. A follower
// still forwards writes to the leader through the pool, and answers
// ?consistent reads itself after a read-index call.
func TestCluster_ServerCallsItsOwnEndpointsInProcess(t *testing.T) {
	tc := newTestCluster(t, 3)
	tc.startAll()
	leader := tc.leader(10 * time.Second)
	f := tc.agents[(leader+1)%3]
	poolBefore, inprocBefore := f.pool.Stats().Calls, f.srv.rpcSrv.Stats().InProcCalls
	const n = 20
	for i := range n {
		key := fmt.Sprintf("inproc/%d", i)
		if err := putKV(f, key, "v"); err != nil {
			t.Fatal(err)
		}
		if got, err := getKV(f, key, "consistent"); err != nil || got != "v" {
			t.Fatalf("consistent read of %s on a follower: %q, %v", key, got, err)
		}
	}
	inproc := f.srv.rpcSrv.Stats().InProcCalls - inprocBefore
	pool := f.pool.Stats().Calls - poolBefore
	if inproc < 2*n {
		t.Fatalf("%d in-process calls for %d writes and %d reads", inproc, n, n)
	}
	// n forwarded writes, at most n read-index calls and a few background
	// calls. Through the pool to itself it would be 4n: every write and
	// read to its own address, then forwarded.
	if pool >= 3*n {
		t.Fatalf("%d pool calls for %d writes and %d reads: the server called itself through the pool", pool, n, n)
	}
	if st := tc.agents[leader].srv.rpcSrv.Stats(); st.InProcCalls == 0 && pool == 0 {
		t.Fatalf("no call reached the leader: %+v", st)
	}
}
