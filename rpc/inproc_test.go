package rpc

import (
	"context"
	"errors"
	"net/rpc"
	"strings"
	"testing"
	"time"

	"roster/catalog"
)

// inproc calls s's endpoints in-process with a test deadline.
func (c *epCluster) inproc(s *epServer, method string, args, reply any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return s.srv.Call(ctx, method, args, reply)
}

func TestInProc_WriteOnFollowerIsForwardedOnceAndReadBackInEveryMode(t *testing.T) {
	c := startEPCluster(t, 3, epOpts{})
	f := c.follower()
	args := KVSRequest{Op: catalog.KVRequest{Verb: catalog.KVSet, Key: "k", Value: []byte("v1")}}
	var ok bool
	if err := c.inproc(f, "KVS.Apply", &args, &ok); err != nil || !ok {
		t.Fatalf("KVS.Apply in-process on a follower: ok=%v err=%v", ok, err)
	}
	if args.RequestID == "" {
		t.Fatal("the write's RequestID was not stamped in the caller's args, so a caller's retry would get a new one")
	}
	proposals := 0
	for _, s := range c.servers {
		proposals += s.applies.count()
	}
	if proposals != 1 {
		t.Fatalf("%d proposals for one write, want 1", proposals)
	}
	// Retrying with the same args (same RequestID) is applied once.
	if err := c.inproc(f, "KVS.Apply", &args, &ok); err != nil || !ok {
		t.Fatalf("retry: ok=%v err=%v", ok, err)
	}
	for _, mode := range []struct {
		opts QueryOptions
		want string
	}{
		{QueryOptions{}, ConsistencyLeader},
		{QueryOptions{RequireConsistent: true}, ConsistencyConsistent},
	} {
		var reply IndexedDirEntries
		if err := c.inproc(f, "KVS.Get", &KeyRequest{QueryOptions: mode.opts, Key: "k"}, &reply); err != nil {
			t.Fatal(err)
		}
		if len(reply.Entries) != 1 || string(reply.Entries[0].Value) != "v1" || reply.Consistency != mode.want || !reply.KnownLeader {
			t.Fatalf("%s read in-process on a follower: %+v", mode.want, reply)
		}
		// The leader's store: another follower may not have applied it yet.
		if p, _ := c.waitLeader().store.KVGet("k"); p == nil || p.ModifyIndex != reply.Entries[0].ModifyIndex {
			t.Fatalf("the retry was applied again: stored %+v, read %+v", p, reply.Entries[0])
		}
	}
}

func TestInProc_BlockingReadWakesOnWrite(t *testing.T) {
	c := startEPCluster(t, 3, epOpts{})
	f := c.follower()
	var first IndexedDirEntries
	if err := c.inproc(f, "KVS.Get", &KeyRequest{Key: "b"}, &first); err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	var reply IndexedDirEntries
	go func() {
		q := QueryOptions{MinQueryIndex: first.Index, MaxQueryTime: 10 * time.Second}
		got <- c.inproc(f, "KVS.Get", &KeyRequest{QueryOptions: q, Key: "b"}, &reply)
	}()
	var ok bool
	put := KVSRequest{Op: catalog.KVRequest{Verb: catalog.KVSet, Key: "b", Value: []byte("x")}}
	if err := c.inproc(c.waitLeader(), "KVS.Apply", &put, &ok); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-got:
		if err != nil || len(reply.Entries) != 1 || reply.Index <= first.Index {
			t.Fatalf("blocking read: err=%v reply=%+v (started at index %d)", err, reply, first.Index)
		}
	case <-time.After(8 * time.Second):
		t.Fatal("the blocking read did not wake on the write")
	}
}

func TestInProc_ErrorsMatchTheNetworkPath(t *testing.T) {
	c := startEPCluster(t, 1, epOpts{})
	s := c.servers[0]
	for _, tc := range []struct {
		method string
		args   any
	}{
		{"KVS.Apply", &KVSRequest{Op: catalog.KVRequest{Verb: catalog.KVSet}}}, // no key
		{"KVS.NoSuchMethod", &KeyRequest{}},
		{"NoSuchService.Get", &KeyRequest{}},
		{"KVS.Get", &KVSRequest{}}, // wrong argument type
	} {
		reply := true
		inErr := c.inproc(s, tc.method, tc.args, &reply)
		var se rpc.ServerError
		if !errors.As(inErr, &se) {
			t.Fatalf("%s in-process: %v (%T), want an rpc.ServerError", tc.method, inErr, inErr)
		}
		if !reply {
			t.Fatalf("%s: the reply was written on error", tc.method)
		}
		if tc.method == "KVS.Get" {
			if !strings.Contains(inErr.Error(), "KeyRequest") {
				t.Fatalf("type mismatch error does not name the expected type: %v", inErr)
			}
			continue
		}
		netErr := c.call(s, tc.method, tc.args, &reply)
		if netErr == nil || netErr.Error() != inErr.Error() {
			t.Fatalf("%s: in-process error %q, over the network %q", tc.method, inErr, netErr)
		}
	}
}

func TestInProc_AfterShutdownFailsAsTransportError(t *testing.T) {
	c := startEPCluster(t, 1, epOpts{})
	s := c.servers[0]
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	var reply IndexedDirEntries
	err := s.srv.Call(ctx, "KVS.Get", &KeyRequest{Key: "k"}, &reply)
	var te *TransportError
	if !errors.As(err, &te) {
		t.Fatalf("call after Shutdown: %v, want a TransportError", err)
	}
	cancelled, cancelNow := context.WithCancel(context.Background())
	cancelNow()
	if err := c.servers[0].srv.Call(cancelled, "Status.Ping", struct{}{}, new(struct{})); !errors.As(err, &te) {
		t.Fatalf("call with a cancelled context: %v, want a TransportError", err)
	}
	if st := s.srv.Stats(); st.InProcCalls != 0 {
		t.Fatalf("refused calls were counted as made: %d", st.InProcCalls)
	}
}

// The typed in-process entries (inproc_direct.go) must behave as the
// net/rpc dispatch they shortcut: endpoint errors as rpc.ServerError with
// the reply untouched, arguments copied (the endpoint's own changes stay
// invisible), and arguments of another shape still served by net/rpc.
func TestInProc_DirectMethodsBehaveAsNetRPCDispatch(t *testing.T) {
	c := startEPCluster(t, 1, epOpts{})
	s := c.servers[0]
	ok := true
	err := c.inproc(s, "KVS.Apply", &KVSRequest{Op: catalog.KVRequest{Verb: catalog.KVSet}}, &ok)
	var se rpc.ServerError
	if !errors.As(err, &se) || !strings.Contains(err.Error(), "Must provide key") || !ok {
		t.Fatalf("empty key: err=%v (%T), reply %v; want a ServerError and the reply untouched", err, err, ok)
	}
	args := KeyRequest{Key: "k", QueryOptions: QueryOptions{RequireConsistent: true}}
	var reply IndexedDirEntries
	if err := c.inproc(s, "KVS.Get", &args, &reply); err != nil {
		t.Fatal(err)
	}
	if args.readIndexed || args.ForwardHops != 0 {
		t.Fatalf("the endpoint's changes to its arguments leaked into the caller's: %+v", args)
	}
	// A value instead of a pointer is not the direct entry's shape; the
	// net/rpc dispatch accepts it as before.
	if err := c.inproc(s, "KVS.Apply", KVSRequest{Op: catalog.KVRequest{Verb: catalog.KVSet, Key: "v"}}, &ok); err != nil || !ok {
		t.Fatalf("arguments by value: ok=%v err=%v", ok, err)
	}
}
