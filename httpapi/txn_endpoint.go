package httpapi

import (
	"encoding/json"
	"net/http"

	"roster/catalog"
	"roster/rpc"
)

// PUT /v1/txn: up to maxTxnOps operations applied all-or-nothing. The body
// is Consul's: a JSON array whose elements each carry exactly one of KV,
// Node, Service, Check or Session, with Consul's field names (which the
// catalog's TxnOp shares). 200 with Results when applied; 409 with Errors
// when rolled back (the Go client turns that into ok=false).

const txnLimitDoc = "https://developer.hashicorp.com/consul/docs/agent/config/config-files#txn_max_req_len"

// maxTxnOps is Consul's limit on operations per transaction.
const maxTxnOps = 128

func (s *Server) txn(w http.ResponseWriter, r *http.Request, _ string) (any, error) {
	ops, err := s.decodeTxn(r)
	if err != nil {
		return nil, err
	}
	var reply rpc.TxnResponse
	if txnReadOnly(ops) {
		opts, err := s.parseQueryOptions(r)
		if err != nil {
			return nil, err
		}
		args := rpc.TxnReadRequest{QueryOptions: opts, Ops: ops}
		if err := s.blockingRead(w, r, &args.QueryOptions, catalog.WatchTable(catalog.TableKV), "Txn.Read", &args, &reply, &reply.QueryMeta); err != nil {
			return nil, err
		}
	} else {
		args := rpc.TxnRequest{WriteRequest: s.parseWriteRequest(r), Ops: ops}
		if err := s.rpc(r, "Txn.Apply", &args, &reply); err != nil {
			return nil, err
		}
	}
	if len(reply.Errors) > 0 {
		return &jsonStatus{status: http.StatusConflict, v: catalog.TxnResponse{Errors: reply.Errors}}, nil
	}
	return reply.TxnResponse, nil
}

func (s *Server) decodeTxn(r *http.Request) ([]catalog.TxnOp, error) {
	body, err := readBody(r, s.cfg.MaxTxnBytes, txnLimitDoc)
	if err != nil {
		return nil, err
	}
	var ops []catalog.TxnOp
	if err := json.Unmarshal(body, &ops); err != nil {
		return nil, decodeError(err)
	}
	if len(ops) > maxTxnOps {
		return nil, errorf(http.StatusRequestEntityTooLarge,
			"Transaction contains too many operations (%d > %d); split it into several transactions", len(ops), maxTxnOps)
	}
	for i := range ops {
		if err := validateTxnOp(i, &ops[i]); err != nil {
			return nil, err
		}
	}
	return ops, nil
}

// validateTxnOp requires exactly one operation per element.
func validateTxnOp(i int, op *catalog.TxnOp) error {
	n := 0
	for _, set := range []bool{op.KV != nil, op.Node != nil, op.Service != nil, op.Check != nil, op.Session != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		return errorf(http.StatusBadRequest, "Request decode failed: operation %d must have exactly one of KV, Node, Service, Check or Session (has %d)", i, n)
	}
	return nil
}

// txnReadOnly reports whether every op only reads: such a transaction is a
// query (consistency options and X-Consul-* headers apply), as in Consul.
func txnReadOnly(ops []catalog.TxnOp) bool {
	for _, op := range ops {
		switch {
		case op.KV != nil:
			switch op.KV.Verb {
			case catalog.KVGet, catalog.KVGetOrEmpty, catalog.KVGetTree, catalog.KVCheckIndex,
				catalog.KVCheckSession, catalog.KVCheckNotExists:
			default:
				return false
			}
		case op.Node != nil && op.Node.Verb == catalog.OpGet,
			op.Service != nil && op.Service.Verb == catalog.OpGet,
			op.Check != nil && op.Check.Verb == catalog.OpGet:
		default:
			return false
		}
	}
	return len(ops) > 0
}
