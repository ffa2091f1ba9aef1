package rpc

import (
	"fmt"

	"roster/catalog"
)

// Txn is the "Txn" endpoint (Consul's Txn.*): all-or-nothing transactions.
type Txn struct {
	c *endpointCore
}

// maxTxnOps is Consul's limit on operations in one transaction.
const maxTxnOps = 128

// Apply applies a transaction through Raft. Ops that fail the leader's
// pre-checks (validation, lock delay) are reported as TxnErrors without
// proposing, as Consul does.
func (e *Txn) Apply(args *TxnRequest, reply *TxnResponse) error {
	return e.c.write("Txn.Apply", args, reply, func() error {
		if len(args.Ops) > maxTxnOps {
			return fmt.Errorf("Transaction contains too many operations (%d > %d)", len(args.Ops), maxTxnOps)
		}
		if errs := e.preCheck(args.Ops); len(errs) > 0 {
			reply.TxnResponse = catalog.TxnResponse{Errors: errs}
			return nil
		}
		res, err := e.c.propose(&args.WriteRequest, &catalog.TxnRequest{Ops: args.Ops})
		if err != nil {
			return err
		}
		reply.Index = res.Index
		if res.Txn != nil {
			reply.TxnResponse = *res.Txn
		}
		return nil
	})
}

func (e *Txn) preCheck(ops []catalog.TxnOp) []catalog.TxnError {
	var errs []catalog.TxnError
	for i, op := range ops {
		if op.KV == nil || isKVRead(op.KV.Verb) {
			continue
		}
		ok, err := e.c.kvPreApply(op.KV)
		switch {
		case err != nil:
			errs = append(errs, catalog.TxnError{OpIndex: i, What: err.Error()})
		case !ok:
			errs = append(errs, catalog.TxnError{OpIndex: i,
				What: fmt.Sprintf("failed to lock key %q due to lock delay", op.KV.Key)})
		}
	}
	return errs
}

func isKVRead(verb string) bool {
	switch verb {
	case catalog.KVGet, catalog.KVGetOrEmpty, catalog.KVGetTree,
		catalog.KVCheckIndex, catalog.KVCheckSession, catalog.KVCheckNotExists:
		return true
	}
	return false
}

// Read runs a transaction of reads only against local state, with the
// request's consistency mode (no Raft write).
func (e *Txn) Read(args *TxnReadRequest, reply *TxnResponse) error {
	if done, err := e.c.d.Forwarder.Forward(e.c.d.Ctx, "Txn.Read", args, args, reply); done {
		return err
	}
	if len(args.Ops) > maxTxnOps {
		return fmt.Errorf("Transaction contains too many operations (%d > %d)", len(args.Ops), maxTxnOps)
	}
	for i, op := range args.Ops {
		if !isReadOp(op) {
			return fmt.Errorf("Txn.Read: operation %d writes; send write transactions to Txn.Apply", i)
		}
	}
	store := e.c.d.Store
	return e.c.read(&args.QueryOptions, &reply.QueryMeta, catalog.WatchTable(catalog.TableKV), func() (uint64, error) {
		reply.TxnResponse = readTxn(store, args.Ops)
		return store.LastIndex(), nil
	})
}

func isReadOp(op catalog.TxnOp) bool {
	switch {
	case op.KV != nil:
		return isKVRead(op.KV.Verb)
	case op.Node != nil:
		return op.Node.Verb == catalog.OpGet
	case op.Service != nil:
		return op.Service.Verb == catalog.OpGet
	case op.Check != nil:
		return op.Check.Verb == catalog.OpGet
	}
	return false
}

// readTxn evaluates read-only ops against the store, with the semantics of
// the catalog's transaction reads: get fails on a missing key, the checks
// fail when their condition does not hold, and any failure leaves only
// the errors. Each op reads a consistent copy; on the leader after a
// ReadIndex round (?consistent) all of them see every acknowledged write.
func readTxn(store *catalog.Store, ops []catalog.TxnOp) catalog.TxnResponse {
	var resp catalog.TxnResponse
	for i, op := range ops {
		results, err := readTxnOp(store, op)
		if err != nil {
			resp.Errors = append(resp.Errors, catalog.TxnError{OpIndex: i, What: err.Error()})
			continue
		}
		resp.Results = append(resp.Results, results...)
	}
	if len(resp.Errors) > 0 {
		resp.Results = nil
	}
	return resp
}

func readTxnOp(store *catalog.Store, op catalog.TxnOp) ([]catalog.TxnResult, error) {
	switch {
	case op.KV != nil:
		return readTxnKV(store, op.KV)
	case op.Node != nil:
		ns, _ := store.NodeServices(op.Node.Node.Node)
		if ns == nil {
			return nil, fmt.Errorf("node %q doesn't exist", op.Node.Node.Node)
		}
		return []catalog.TxnResult{{Node: &ns.Node}}, nil
	case op.Service != nil:
		ns, _ := store.NodeServices(op.Service.Node)
		if ns != nil {
			for i := range ns.Services {
				if ns.Services[i].ID == op.Service.Service.ID {
					return []catalog.TxnResult{{Service: &ns.Services[i]}}, nil
				}
			}
		}
		return nil, fmt.Errorf("service %q on node %q doesn't exist", op.Service.Service.ID, op.Service.Node)
	case op.Check != nil:
		checks, _ := store.NodeChecks(op.Check.Check.Node)
		for i := range checks {
			if checks[i].CheckID == op.Check.Check.CheckID {
				return []catalog.TxnResult{{Check: &checks[i]}}, nil
			}
		}
		return nil, fmt.Errorf("check %q on node %q doesn't exist", op.Check.Check.CheckID, op.Check.Check.Node)
	}
	return nil, fmt.Errorf("operation names no KV, Node, Service or Check")
}

func readTxnKV(store *catalog.Store, r *catalog.KVRequest) ([]catalog.TxnResult, error) {
	if r.Verb == catalog.KVGetTree {
		pairs, _ := store.KVList(r.Key)
		out := make([]catalog.TxnResult, len(pairs))
		for i := range pairs {
			out[i] = catalog.TxnResult{KV: &pairs[i]}
		}
		return out, nil
	}
	p, _ := store.KVGet(r.Key)
	switch r.Verb {
	case catalog.KVGet:
		if p == nil {
			return nil, fmt.Errorf("key %q doesn't exist", r.Key)
		}
	case catalog.KVGetOrEmpty:
		if p == nil {
			return nil, nil
		}
	case catalog.KVCheckIndex:
		if p == nil || p.ModifyIndex != r.Index {
			return nil, fmt.Errorf("current modify index for key %q does not match %d", r.Key, r.Index)
		}
	case catalog.KVCheckSession:
		if p == nil || p.Session != r.Session {
			return nil, fmt.Errorf("key %q is not locked by session %q", r.Key, r.Session)
		}
	case catalog.KVCheckNotExists:
		if p != nil {
			return nil, fmt.Errorf("key %q exists", r.Key)
		}
		return nil, nil
	}
	if r.Verb != catalog.KVGet && r.Verb != catalog.KVGetOrEmpty {
		p.Value = nil // checks return the pair without its value, as writes do
	}
	return []catalog.TxnResult{{KV: p}}, nil
}
