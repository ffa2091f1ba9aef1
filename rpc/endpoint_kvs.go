package rpc

import (
	"errors"
	"fmt"

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
		ok, err := e.c.kvPreApply(&args.Op)
		if err != nil || !ok {
			*reply = false
			return err
		}
		res, err := e.c.propose(&args.WriteRequest, &args.Op)
		*reply = err == nil && res.OK
		return err
	})
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
