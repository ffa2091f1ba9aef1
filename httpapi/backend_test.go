package httpapi

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"time"

	"roster/catalog"
	"roster/rpc"
)

// storeRPC is a test RPC backend: a single in-process "server" over a real
// catalog.Store, answering the rpc contract's methods the way the endpoints
// do (blocking on the store's watches, QueryMeta filled as a leader would).
// It lets handler tests exercise real catalog semantics without raft.
type storeRPC struct {
	store *catalog.Store

	// mu guards idx, calls, minIndex, fail and count.
	mu    sync.Mutex
	idx   uint64
	calls map[string]any // last args per method
	// minIndex is the last call's MinQueryIndex per method, read when the
	// call was made: the caller may change its args while the call runs.
	minIndex map[string]uint64
	fail     map[string]error
	count    map[string]int
}

func newStoreRPC() *storeRPC { return newStoreRPCWith(catalog.Config{}) }

func newStoreRPCWith(cfg catalog.Config) *storeRPC {
	st, err := catalog.New(cfg)
	if err != nil {
		panic(err)
	}
	return &storeRPC{store: st, calls: map[string]any{}, minIndex: map[string]uint64{}, fail: map[string]error{}, count: map[string]int{}}
}

func (b *storeRPC) lastArgs(method string) any {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.calls[method]
}

// lastMinIndex is the MinQueryIndex the last call of method carried when
// it was made (false: no call, or args without QueryOptions).
func (b *storeRPC) lastMinIndex(method string) (uint64, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	idx, ok := b.minIndex[method]
	return idx, ok
}

// queryOptionsOf returns args' embedded rpc.QueryOptions, if it has one.
func queryOptionsOf(args any) *rpc.QueryOptions {
	v := reflect.ValueOf(args)
	if v.Kind() != reflect.Pointer || v.IsNil() || v.Elem().Kind() != reflect.Struct {
		return nil
	}
	f := v.Elem().FieldByName("QueryOptions")
	if !f.IsValid() || !f.CanAddr() {
		return nil
	}
	q, _ := f.Addr().Interface().(*rpc.QueryOptions)
	return q
}

func (b *storeRPC) callCount(method string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.count[method]
}

func (b *storeRPC) failWith(method string, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.fail[method] = err
}

// apply runs a command at the next index.
func (b *storeRPC) apply(cmd catalog.Command) catalog.Result {
	b.mu.Lock()
	b.idx++
	idx := b.idx
	b.mu.Unlock()
	return b.store.ApplyCommand(idx, cmd)
}

func resultErr(res catalog.Result) error {
	if res.Err != nil {
		return errors.New(res.Err.Error()) // as it arrives over net/rpc: text only
	}
	return nil
}

// query runs read until its index passes MinQueryIndex (blocking on w) and
// fills meta as a leader does.
func (b *storeRPC) query(ctx context.Context, opts *rpc.QueryOptions, meta *rpc.QueryMeta, w catalog.Watch, read func() uint64) error {
	if err := opts.Validate(); err != nil {
		return err
	}
	if opts.MinQueryIndex > 0 {
		wait := opts.MaxQueryTime
		if wait <= 0 || wait > 10*time.Second {
			wait = 10 * time.Second
		}
		wctx, cancel := context.WithTimeout(ctx, wait)
		b.store.Wait(wctx, w, opts.MinQueryIndex)
		cancel()
	}
	idx := read()
	*meta = rpc.QueryMeta{Index: max(idx, 1), KnownLeader: true, Consistency: opts.Consistency()}
	if opts.Filter != "" {
		if _, err := catalog.CompileFilter(opts.Filter); err != nil {
			return fmt.Errorf("Failed to create boolean expression evaluator: %v", err)
		}
	}
	return nil
}

func (b *storeRPC) RPC(ctx context.Context, method string, args, reply any) error {
	b.mu.Lock()
	b.calls[method] = args
	if q := queryOptionsOf(args); q != nil {
		b.minIndex[method] = q.MinQueryIndex
	} else {
		delete(b.minIndex, method)
	}
	b.count[method]++
	err := b.fail[method]
	b.mu.Unlock()
	if err != nil {
		return err
	}
	switch a := args.(type) {
	case *rpc.KVSRequest:
		res := b.apply(&a.Op)
		*reply.(*bool) = res.OK
		return resultErr(res)
	case *rpc.RegisterRequest:
		return resultErr(b.apply(&a.Register))
	case *rpc.DeregisterRequest:
		return resultErr(b.apply(&a.Deregister))
	case *rpc.SessionRequest:
		return b.session(a, reply.(*string))
	case *rpc.TxnRequest:
		res := b.apply(&catalog.TxnRequest{Ops: a.Ops})
		if res.Txn != nil {
			reply.(*rpc.TxnResponse).TxnResponse = *res.Txn
		}
		return resultErr(res)
	case *rpc.TxnReadRequest:
		res := b.apply(&catalog.TxnRequest{Ops: a.Ops})
		r := reply.(*rpc.TxnResponse)
		if res.Txn != nil {
			r.TxnResponse = *res.Txn
		}
		r.QueryMeta = rpc.QueryMeta{Index: res.Index, KnownLeader: true, Consistency: a.Consistency()}
		return resultErr(res)
	}
	return b.read(ctx, method, args, reply)
}

func (b *storeRPC) session(a *rpc.SessionRequest, id *string) error {
	res := b.apply(&a.Op)
	if res.Session != nil {
		*id = res.Session.ID
	}
	return resultErr(res)
}

// storeLocal is a LocalIndex over the backend's store.
type storeLocal struct {
	*catalog.Store
	leader bool
}

func (l storeLocal) IsLeader() bool             { return l.leader }
func (l storeLocal) LeaderAddr() string         { return "127.0.0.1:8300" }
func (l storeLocal) LastContact() time.Duration { return 42 * time.Millisecond }
