package catalog

import (
	"errors"
	"fmt"
)

// Transactions (Consul's Txn.Apply): a list of KV, node, service, check and
// session operations applied all-or-nothing. Every op runs against the
// state left by the ops before it; every failing op is reported with its
// position; if any failed, the journal rolls everything back and the result
// carries only the errors (HTTP 409).

// TxnResult is one op's result; at most one field is set.
type TxnResult struct {
	KV      *KVPair      `json:",omitempty"`
	Node    *Node        `json:",omitempty"`
	Service *NodeService `json:",omitempty"`
	Check   *HealthCheck `json:",omitempty"`
}

// TxnError is the failure of the op at OpIndex.
type TxnError struct {
	OpIndex int
	What    string
}

// TxnResponse is a transaction's outcome: Results if it applied, Errors if
// it was rolled back.
type TxnResponse struct {
	Results []TxnResult
	Errors  []TxnError
}

func (t *tx) applyTxn(r *TxnRequest, maxValueBytes int) Result {
	if len(r.Ops) > maxTxnOps {
		return Result{Err: fmt.Errorf("catalog: txn has %d operations, the limit is %d; split it", len(r.Ops), maxTxnOps)}
	}
	resp := &TxnResponse{}
	for i := range r.Ops {
		results, err := t.txnOp(&r.Ops[i], maxValueBytes)
		if err != nil {
			resp.Errors = append(resp.Errors, TxnError{OpIndex: i, What: err.Error()})
			continue
		}
		resp.Results = append(resp.Results, results...)
	}
	if len(resp.Errors) > 0 {
		resp.Results = nil
		t.commitOK = false
		return Result{OK: false, Txn: resp}
	}
	return Result{OK: true, Txn: resp}
}

func (t *tx) txnOp(op *TxnOp, maxValueBytes int) ([]TxnResult, error) {
	switch {
	case op.KV != nil:
		return t.txnKV(op.KV, maxValueBytes)
	case op.Node != nil:
		return t.txnNode(op.Node)
	case op.Service != nil:
		return t.txnService(op.Service)
	case op.Check != nil:
		return t.txnCheck(op.Check)
	case op.Session != nil:
		if op.Session.Verb != OpDelete {
			return nil, fmt.Errorf("session verb %q is not supported in a transaction; use delete", op.Session.Verb)
		}
		t.invalidateSession(op.Session.Session.ID)
		return nil, nil
	}
	return nil, errors.New("empty operation: set one of KV, Node, Service, Check, Session")
}

// kvResult is what a KV op returns: the pair without its value, except for
// reads.
func kvResult(p *KVPair, withValue bool) []TxnResult {
	if p == nil {
		return nil
	}
	c := p.Clone()
	if !withValue {
		c.Value = nil
	}
	return []TxnResult{{KV: &c}}
}

func (t *tx) txnKV(r *KVRequest, maxValueBytes int) ([]TxnResult, error) {
	st := t.st
	p := st.kv[r.Key]
	switch r.Verb {
	case KVGet:
		if p == nil {
			return nil, fmt.Errorf("key %q doesn't exist", r.Key)
		}
		return kvResult(p, true), nil
	case KVGetOrEmpty:
		return kvResult(p, true), nil
	case KVGetTree:
		var out []TxnResult
		for _, k := range st.kvKeysWithPrefix(r.Key) {
			out = append(out, kvResult(st.kv[k], true)...)
		}
		return out, nil
	case KVCheckIndex:
		if p == nil || p.ModifyIndex != r.Index {
			return nil, fmt.Errorf("current modify index for key %q does not match %d", r.Key, r.Index)
		}
		return kvResult(p, false), nil
	case KVCheckSession:
		if p == nil || p.Session != r.Session {
			return nil, fmt.Errorf("key %q is not locked by session %q", r.Key, r.Session)
		}
		return kvResult(p, false), nil
	case KVCheckNotExists:
		if p != nil {
			return nil, fmt.Errorf("key %q exists", r.Key)
		}
		return nil, nil
	}
	ok, err := t.applyKV(r, maxValueBytes)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("failed to %s key %q: index or lock is stale", r.Verb, r.Key)
	}
	if r.Verb == KVDelete || r.Verb == KVDeleteCAS || r.Verb == KVDeleteTree {
		return nil, nil
	}
	return kvResult(st.kv[r.Key], false), nil
}

func (t *tx) txnNode(op *TxnNodeOp) ([]TxnResult, error) {
	// Node names ignore case (nodename.go); only a write can be refused.
	asked := op.Node.Node
	var old *Node // the stored node the name resolves to, if any
	if op.Verb == OpSet || op.Verb == OpCAS {
		var err error
		if old, err = t.claimNodeName(&op.Node); err != nil {
			return nil, err
		}
	} else if old = t.st.findNode(asked); old != nil {
		op.Node.Node = old.Node
	}
	name := op.Node.Node
	switch op.Verb {
	case OpGet:
		if old == nil {
			return nil, fmt.Errorf("node %q doesn't exist", name)
		}
	case OpSet, OpCAS:
		if op.Verb == OpCAS && !indexMatches(old != nil, oldIndex(old), op.Node.ModifyIndex) {
			return nil, fmt.Errorf("failed to set node %q: index is stale", name)
		}
		if name == "" || op.Node.Address == "" {
			return nil, fmt.Errorf("node %q: a node needs a name and an address", name)
		}
		name = t.ensureNode(&op.Node, old, asked).Node
	case OpDelete, OpDeleteCAS:
		if op.Verb == OpDeleteCAS && (old == nil || old.ModifyIndex != op.Node.ModifyIndex) {
			return nil, fmt.Errorf("failed to delete node %q: index is stale", name)
		}
		t.deleteNode(name)
		return nil, nil
	default:
		return nil, fmt.Errorf("node verb %q is unknown", op.Verb)
	}
	n := t.st.nodes[name].Clone()
	return []TxnResult{{Node: &n}}, nil
}

func (t *tx) txnService(op *TxnServiceOp) ([]TxnResult, error) {
	op.Node = t.st.nodeName(op.Node) // node names are case-insensitive (nodename.go)
	svc := &op.Service
	old := t.st.service(op.Node, svc.ID)
	switch op.Verb {
	case OpGet:
		if old == nil {
			return nil, fmt.Errorf("service %q on node %q doesn't exist", svc.ID, op.Node)
		}
	case OpSet, OpCAS:
		if op.Verb == OpCAS && !indexMatches(old != nil, oldIndex(old), svc.ModifyIndex) {
			return nil, fmt.Errorf("failed to set service %q on node %q: index is stale", svc.ID, op.Node)
		}
		if t.st.nodes[op.Node] == nil {
			return nil, fmt.Errorf("Missing node registration: node %q is %w", op.Node, ErrNotFound)
		}
		if svc.Service == "" {
			return nil, fmt.Errorf("service on node %q has no name", op.Node)
		}
		if svc.ID == "" {
			svc.ID = svc.Service
		}
		t.ensureService(op.Node, svc)
	case OpDelete, OpDeleteCAS:
		if op.Verb == OpDeleteCAS && (old == nil || old.ModifyIndex != svc.ModifyIndex) {
			return nil, fmt.Errorf("failed to delete service %q on node %q: index is stale", svc.ID, op.Node)
		}
		t.deleteService(op.Node, svc.ID)
		return nil, nil
	default:
		return nil, fmt.Errorf("service verb %q is unknown", op.Verb)
	}
	s := t.st.service(op.Node, svc.ID).Clone()
	return []TxnResult{{Service: &s}}, nil
}

func (t *tx) txnCheck(op *TxnCheckOp) ([]TxnResult, error) {
	c := &op.Check
	c.Node = t.st.nodeName(c.Node) // node names are case-insensitive (nodename.go)
	old := t.st.check(c.Node, c.CheckID)
	switch op.Verb {
	case OpGet:
		if old == nil {
			return nil, fmt.Errorf("check %q on node %q doesn't exist", c.CheckID, c.Node)
		}
	case OpSet, OpCAS:
		if op.Verb == OpCAS && !indexMatches(old != nil, oldIndex(old), c.ModifyIndex) {
			return nil, fmt.Errorf("failed to set check %q on node %q: index is stale", c.CheckID, c.Node)
		}
		if t.st.nodes[c.Node] == nil {
			return nil, fmt.Errorf("Missing node registration: node %q is %w", c.Node, ErrNotFound)
		}
		var look checkLookup
		if err := t.validateCheck(c, nil, &look); err != nil {
			return nil, err
		}
		t.ensureCheck(c, nil, nil, &look)
	case OpDelete, OpDeleteCAS:
		if op.Verb == OpDeleteCAS && (old == nil || old.modifyIndex != c.ModifyIndex) {
			return nil, fmt.Errorf("failed to delete check %q on node %q: index is stale", c.CheckID, c.Node)
		}
		t.deleteCheck(c.Node, c.CheckID)
		return nil, nil
	default:
		return nil, fmt.Errorf("check verb %q is unknown", op.Verb)
	}
	out := t.st.check(c.Node, c.CheckID).check(c.Node)
	return []TxnResult{{Check: &out}}, nil
}

// indexMatches is the CAS rule for records: index 0 means "only if absent".
func indexMatches(exists bool, current, want uint64) bool {
	if want == 0 {
		return !exists
	}
	return exists && current == want
}

type indexed interface {
	*Node | *NodeService | *checkRec
}

func oldIndex[P indexed](p P) uint64 {
	switch v := any(p).(type) {
	case *Node:
		if v != nil {
			return v.ModifyIndex
		}
	case *NodeService:
		if v != nil {
			return v.ModifyIndex
		}
	case *checkRec:
		if v != nil {
			return v.modifyIndex
		}
	}
	return 0
}
