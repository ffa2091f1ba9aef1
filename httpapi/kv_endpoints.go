package httpapi

import (
	"net/http"
	"strings"

	"roster/catalog"
	"roster/rpc"
)

// /v1/kv/<key>: GET (single, ?recurse, ?keys[&separator], ?raw), PUT (value
// in the body; ?flags, ?cas, ?acquire, ?release) and DELETE (?recurse,
// ?cas), with Consul's answers: a missing key is 404 with an empty body
// (the Go client maps it to a nil pair), writes answer true or false.

const kvLimitDoc = "https://developer.hashicorp.com/consul/docs/agent/config/config-files#kv_max_value_size"

func (s *Server) kv(w http.ResponseWriter, r *http.Request, key string) (any, error) {
	switch r.Method {
	case http.MethodPut:
		return s.kvPut(r, key)
	case http.MethodDelete:
		return s.kvDelete(r, key)
	}
	q := queryOf(r)
	switch {
	case has(q, "keys"):
		return s.kvKeys(w, r, key)
	case has(q, "recurse"):
		return s.kvList(w, r, key)
	}
	return s.kvGet(w, r, key)
}

// The KV reads are blocking reads answered by cachedRead: on a server
// they wait on the key's (or prefix's) local watch, and every client woken
// by one change shares one encoded answer.

func (s *Server) kvGet(w http.ResponseWriter, r *http.Request, key string) (any, error) {
	opts, err := s.queryOptionsFor(r, key, "key")
	if err != nil {
		return nil, err
	}
	raw := has(queryOf(r), "raw")
	args := rpc.KeyRequest{QueryOptions: opts, Key: key}
	return cachedRead(s, w, r, &args.QueryOptions, catalog.WatchKVKey(key), s.cacheKey(r), "KVS.Get", &args,
		func(reply *rpc.IndexedDirEntries) (*rpc.QueryMeta, any) {
			switch {
			case len(reply.Entries) == 0:
				return &reply.QueryMeta, &rawBody{status: http.StatusNotFound}
			case raw:
				return &reply.QueryMeta, &rawBody{status: http.StatusOK, contentType: "text/plain",
					body: reply.Entries[0].Value, sandboxed: true}
			}
			return &reply.QueryMeta, s.kvEntryBody(r, reply.Entries[:1])
		})
}

func (s *Server) kvList(w http.ResponseWriter, r *http.Request, prefix string) (any, error) {
	opts, err := s.parseQueryOptions(r)
	if err != nil {
		return nil, err
	}
	args := rpc.KeyRequest{QueryOptions: opts, Key: prefix}
	return cachedRead(s, w, r, &args.QueryOptions, catalog.WatchKV(prefix), s.cacheKey(r), "KVS.List", &args,
		func(reply *rpc.IndexedDirEntries) (*rpc.QueryMeta, any) {
			if len(reply.Entries) == 0 {
				return &reply.QueryMeta, &rawBody{status: http.StatusNotFound}
			}
			return &reply.QueryMeta, reply.Entries
		})
}

func (s *Server) kvKeys(w http.ResponseWriter, r *http.Request, prefix string) (any, error) {
	opts, err := s.parseQueryOptions(r)
	if err != nil {
		return nil, err
	}
	q := queryOf(r)
	sep := q.Get("separator")
	if sep == "" {
		sep = q.Get("seperator") // Consul's legacy spelling
	}
	args := rpc.KeyListRequest{QueryOptions: opts, Prefix: prefix, Separator: sep}
	return cachedRead(s, w, r, &args.QueryOptions, catalog.WatchKV(prefix), s.cacheKey(r), "KVS.ListKeys", &args,
		func(reply *rpc.IndexedKeyList) (*rpc.QueryMeta, any) {
			switch {
			case len(reply.Keys) > 0:
				return &reply.QueryMeta, reply.Keys
			case prefix != "":
				return &reply.QueryMeta, &rawBody{status: http.StatusNotFound}
			}
			return &reply.QueryMeta, []string{}
		})
}

// kvPutOp turns PUT's parameters into a KV operation. At most one of cas,
// acquire and release may be given.
func kvPutOp(r *http.Request, key string) (catalog.KVRequest, error) {
	q := queryOf(r)
	op := catalog.KVRequest{Verb: catalog.KVSet, Key: key}
	if err := conflicting(r, "cas", "acquire", "release"); err != nil {
		return op, err
	}
	flags, _, err := parseUintParam(q, "flags")
	if err != nil {
		return op, err
	}
	op.Flags = flags
	cas, hasCAS, err := parseUintParam(q, "cas")
	switch {
	case err != nil:
		return op, err
	case hasCAS:
		op.Verb, op.Index = catalog.KVCAS, cas
	case has(q, "acquire"):
		op.Verb, op.Session = catalog.KVLock, q.Get("acquire")
	case has(q, "release"):
		op.Verb, op.Session = catalog.KVUnlock, q.Get("release")
	}
	return op, nil
}

// conflicting answers Consul's 400 when more than one of names is present.
func conflicting(r *http.Request, names ...string) error {
	n := 0
	for _, name := range names {
		if has(queryOf(r), name) {
			n++
		}
	}
	if n > 1 {
		return errorf(http.StatusBadRequest, "Conflicting flags: %s", r.URL.RawQuery)
	}
	return nil
}

func (s *Server) kvPut(r *http.Request, key string) (any, error) {
	if err := mustArg(key, "key"); err != nil {
		return nil, err
	}
	op, err := kvPutOp(r, key)
	if err != nil {
		return nil, err
	}
	if op.Value, err = readBody(r, s.cfg.MaxKVValueBytes, kvLimitDoc); err != nil {
		return nil, err
	}
	return s.kvApply(r, op)
}

func (s *Server) kvDelete(r *http.Request, key string) (any, error) {
	if err := conflicting(r, "recurse", "cas"); err != nil {
		return nil, err
	}
	q := queryOf(r)
	op := catalog.KVRequest{Verb: catalog.KVDelete, Key: key}
	cas, hasCAS, err := parseUintParam(q, "cas")
	switch {
	case err != nil:
		return nil, err
	case has(q, "recurse"):
		op.Verb = catalog.KVDeleteTree
	case key == "":
		return nil, errorf(http.StatusBadRequest, "Missing key name")
	case hasCAS:
		op.Verb, op.Index = catalog.KVDeleteCAS, cas
	}
	return s.kvApply(r, op)
}

func (s *Server) kvApply(r *http.Request, op catalog.KVRequest) (any, error) {
	args := rpc.KVSRequest{WriteRequest: s.parseWriteRequest(r), Op: op}
	var ok bool
	if err := s.rpc(r, "KVS.Apply", &args, &ok); err != nil {
		return nil, kvApplyError(err)
	}
	if !s.pretty(r) {
		return kvBoolBody(ok), nil
	}
	return ok, nil
}

// kvApplyError keeps Consul's statuses for KV writes: a value the servers
// find too large is 413; everything else is the RPC mapping.
func kvApplyError(err error) error {
	if strings.Contains(err.Error(), "too large") {
		return &Error{Code: http.StatusRequestEntityTooLarge, Msg: err.Error()}
	}
	return err
}

// kvEntryBody is the JSON answer for entries: encoded by hand (no
// reflection) unless ?pretty asks for indentation, which the generic
// encoder does.
func (s *Server) kvEntryBody(r *http.Request, entries []catalog.KVPair) any {
	if !s.pretty(r) {
		if b, ok := appendKVPairsJSON(make([]byte, 0, 128+len(entries[0].Value)*4/3), entries); ok {
			return &rawBody{status: http.StatusOK, contentType: "application/json", body: b}
		}
	}
	return entries
}
