package rpc

import (
	"errors"
	"fmt"
	"sync"

	"roster/catalog"
)

// KVS is the "KVS" endpoint (Consul's KVS.*): the key/value store.
type KVS struct {
	c *endpointCore
}

// Apply performs one KV write; reply is false when a conditional verb
// (cas, lock, unlock, delete-cas) did not apply.
func (e *KVS) Apply(args *KVSRequest, reply *bool) error {
	return e.c.write("KVS.Apply", args, reply, func() error {
		wait, err := e.c.startKVApply(args)
		if wait == nil {
			*reply = false
			return err
		}
		res, err := wait()
		*reply = err == nil && res.OK
		return err
	})
}

// startKVApply is a KV write's leader part up to Raft: kvPreApply, then
// the proposal, whose outcome the returned func waits for. wait is nil
// when nothing was proposed: the answer is then false, with err if any.
func (c *endpointCore) startKVApply(args *KVSRequest) (wait func() (catalog.Result, error), err error) {
	if ok, err := c.kvPreApply(&args.Op); err != nil || !ok {
		return nil, err
	}
	return c.proposeAsync(&args.WriteRequest, &args.Op), nil
}

// kvPreApply is Consul's kvsPreApply on the leader: validation, and the
// lock-delay refusal. Lock delay is measured on the leader's wall clock
// and never enters the log (see catalog/session.go), so it is decided
// here, before proposing: ok=false means "answer false, propose nothing".
func (c *endpointCore) kvPreApply(op *catalog.KVRequest) (ok bool, err error) {
	if op.Key == "" && op.Verb != catalog.KVDeleteTree {
		return false, errors.New("Must provide key")
	}
	switch op.Verb {
	case catalog.KVLock:
		if op.Session == "" {
			return false, errors.New("Missing session")
		}
		if s, _ := c.d.Store.Session(op.Session); s == nil {
			return false, fmt.Errorf("Invalid session %q", op.Session)
		}
		if until, delayed := c.d.Store.LockDelayed(op.Key); delayed {
			c.d.Logger.Warn("rpc: refusing lock of key inside its lock-delay window",
				"key", op.Key, "until", until)
			return false, nil
		}
	case catalog.KVUnlock:
		if op.Session == "" {
			return false, errors.New("Missing session")
		}
	}
	return true, nil
}

// Get returns one key (Entries empty if it does not exist).
func (e *KVS) Get(args *KeyRequest, reply *IndexedDirEntries) error {
	if done, err := e.c.d.Forwarder.Forward(e.c.d.Ctx, "KVS.Get", args, args, reply); done {
		return err
	}
	store := e.c.d.Store
	return e.c.read(&args.QueryOptions, &reply.QueryMeta, catalog.WatchKVKey(args.Key), func() (uint64, error) {
		p, idx := store.KVGet(args.Key)
		reply.Entries = nil
		if p != nil {
			reply.Entries = []catalog.KVPair{*p}
		}
		return idx, nil
	})
}

// List returns every key under a prefix.
func (e *KVS) List(args *KeyRequest, reply *IndexedDirEntries) error {
	if done, err := e.c.d.Forwarder.Forward(e.c.d.Ctx, "KVS.List", args, args, reply); done {
		return err
	}
	f, err := compileFilter(args.Filter, catalog.KVPair{})
	if err != nil {
		return err
	}
	store := e.c.d.Store
	return e.c.read(&args.QueryOptions, &reply.QueryMeta, catalog.WatchKV(args.Key), func() (uint64, error) {
		pairs, idx := store.KVList(args.Key)
		if pairs, err = applyFilter(f, pairs); err != nil {
			return 0, err
		}
		reply.Entries = pairs
		return idx, nil
	})
}

// ListKeys returns the key names under a prefix, rolled up at Separator.
func (e *KVS) ListKeys(args *KeyListRequest, reply *IndexedKeyList) error {
	if done, err := e.c.d.Forwarder.Forward(e.c.d.Ctx, "KVS.ListKeys", args, args, reply); done {
		return err
	}
	store := e.c.d.Store
	return e.c.read(&args.QueryOptions, &reply.QueryMeta, catalog.WatchKV(args.Prefix), func() (uint64, error) {
		keys, idx := store.KVKeys(args.Prefix, args.Separator)
		reply.Keys = keys
		return idx, nil
	})
}

// ApplyBatch performs KV writes a follower forwarded together
// (forward_batch.go) and answers one outcome per write, in order. The
// call itself fails only when the batch is malformed. On the leader every
// write is proposed before any is waited for, so they share Raft's group
// commit; elsewhere (leadership moved, or writes for another datacenter)
// each takes KVS.Apply's own path, forwarding included.
func (e *KVS) ApplyBatch(args *KVSBatchRequest, reply *KVSBatchReply) error {
	reqs, err := decodeKVSBatch(args.Data)
	if err != nil {
		return err
	}
	res := make([]kvsResult, len(reqs))
	if e.c.d.Cluster.IsLeader() && allLocal(reqs, e.c.d.Datacenter) {
		e.applyProposed(reqs, res)
	} else {
		e.applyEach(reqs, res)
	}
	reply.Data = encodeKVSResults(res)
	return nil
}

func allLocal(reqs []KVSRequest, dc string) bool {
	for i := range reqs {
		if d := reqs[i].Datacenter; d != "" && d != dc {
			return false
		}
	}
	return true
}

// applyProposed is KVS.Apply's leader part for every write of a batch,
// with the proposals made first and waited for afterwards. A write that
// lost the leadership is answered ErrNoLeader, which the follower retries
// with the same RequestID, as it would a single forwarded write.
func (e *KVS) applyProposed(reqs []KVSRequest, res []kvsResult) {
	waits := make([]func() (catalog.Result, error), len(reqs))
	for i := range reqs {
		r := &reqs[i]
		stampRequestID(r)
		if err := checkRequestID(r); err != nil {
			res[i].err = err.Error()
			continue
		}
		wait, err := e.c.startKVApply(r)
		if wait == nil {
			res[i].err = errText(err)
			continue
		}
		waits[i] = wait
	}
	for i, wait := range waits {
		if wait == nil {
			continue
		}
		out, err := wait()
		if errors.Is(err, errLeaderMoved) {
			err = ErrNoLeader
		}
		res[i] = kvsResult{ok: err == nil && out.OK, err: errText(err)}
	}
}

// applyEach runs KVS.Apply for every write of a batch, concurrently.
func (e *KVS) applyEach(reqs []KVSRequest, res []kvsResult) {
	var wg sync.WaitGroup
	for i := range reqs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var ok bool
			err := e.Apply(&reqs[i], &ok)
			res[i] = kvsResult{ok: err == nil && ok, err: errText(err)}
		}()
	}
	wg.Wait()
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
