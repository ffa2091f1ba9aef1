package httpapi

import (
	"context"
	"net/http"
	"reflect"
	"sync/atomic"

	"roster/catalog"
	"roster/rpc"
)

// Blocking reads on a server that answers them itself.
//
// A blocking query (?index=N&wait=) parked as an RPC costs, per waiter, a
// goroutine for the call, one inside the endpoint watching the catalog
// and a timer, and, when one change wakes them all, a reflective net/rpc
// dispatch, a catalog read and a JSON encode each: 10,000 clients parked
// on one key pay all of that 10,000 times over for the same answer. So
// where the server would answer the read from its own catalog (it leads,
// or the read is ?stale), the HTTP handler waits on the catalog's watch
// for the read's topic itself, in the request's own goroutine, and only
// then reads, as a non-blocking read: the response cache (cache.go) has
// the answer once the first woken request has made the one RPC and the
// one encode for the new index (hotRead coalesces the rest behind it).
//
// The watch is the very topic whose index the endpoint reports
// (rpc/endpoint_*.go: KVS.Get reports WatchKVKey's, Catalog.ServiceNodes
// WatchService's, ...), so that "the watch moved past N" and "the answer's
// X-Consul-Index is past N" are the same statement; blockingRead still
// checks it, and blocks in the RPC should they ever differ.

// waitLocally does a blocking read's wait on the local catalog when this
// server would answer the read from it (hotLookup's conditions, less the
// index; ?max_stale reads go the RPC way, which checks the staleness). It
// waits the request's ?wait (default 5m, at most 10m) plus Consul's
// wait/16 jitter, like rpc.Blocker. It reports whether it waited and, if
// so, whether the watch moved (false: the wait timed out or the client
// left); opts then no longer blocks, so the read that follows answers at
// once with the state as it is. waiting, when not nil, counts the
// requests in this wait (the delta pulls' wake-up jitter reads it); peak
// is the most it counted while this request waited.
func (s *Server) waitLocally(r *http.Request, opts *rpc.QueryOptions, watch catalog.Watch, waiting *atomic.Int64) (waited, changed bool, peak int64) {
	local := s.cfg.Local
	if opts.MinQueryIndex == 0 || opts.MaxStaleDuration > 0 || !s.answersLocally(opts) ||
		local.Index(watch) > opts.MinQueryIndex {
		return false, false, 0
	}
	ctx, cancel := context.WithTimeout(r.Context(), rpc.QueryWait(opts.MaxQueryTime))
	if waiting != nil {
		peak = waiting.Add(1)
	}
	_, err := local.Wait(ctx, watch, opts.MinQueryIndex)
	if waiting != nil {
		peak = max(peak, waiting.Add(-1)+1)
	}
	cancel()
	opts.MinQueryIndex, opts.MaxQueryTime = 0, 0
	return true, err == nil, peak
}

// cachedRead serves a blocking read whose answer is fixed by its index
// (cachedServiceRead, the KV reads): it waits locally when it can
// (waitLocally), then answers from the cache without an RPC when hotRead
// can, else by one RPC of method, whose reply answer turns into the meta
// and the body (a value to encode as JSON, or a *rawBody); that body is
// encoded once and cached per query and index. key "" (a read sorted for
// one caller, ?near) is neither cached nor looked up.
func cachedRead[R any](s *Server, w http.ResponseWriter, r *http.Request, opts *rpc.QueryOptions, watch catalog.Watch,
	key, method string, args any, answer func(reply *R) (*rpc.QueryMeta, any)) (any, error) {
	orig := *opts
	_, changed, _ := s.waitLocally(r, opts, watch, nil)
	if err := r.Context().Err(); err != nil {
		return nil, err // the client left while it waited
	}
	resp, done := s.hotRead(w, r, opts, key, watch)
	if resp != nil {
		return resp, nil
	}
	if done != nil {
		defer done()
	}
	var reply R
	if err := s.rpc(r, method, args, &reply); err != nil {
		return nil, err
	}
	meta, body := answer(&reply)
	if changed && meta.Index <= orig.MinQueryIndex {
		// As in blockingRead: the watch moved, the answer did not (a new
		// leader that has not applied what this server has, say).
		*opts, reply = orig, *new(R)
		if err := s.rpc(r, method, args, &reply); err != nil {
			return nil, err
		}
		meta, body = answer(&reply)
	}
	setMeta(w, meta)
	if key == "" {
		return body, nil
	}
	return s.cachedAnswer(r, key, meta.Index, body)
}

// cachedAnswer returns the cached encoding of the answer at index, or
// encodes body (a value for JSON, or a *rawBody written as it is) and
// caches it.
func (s *Server) cachedAnswer(r *http.Request, key string, index uint64, body any) (any, error) {
	raw, ok := body.(*rawBody)
	if !ok {
		return s.cachedJSON(r, key, index, body)
	}
	if resp := s.cache.get(key, index); resp != nil {
		return resp, nil
	}
	resp := newEncodedJSON(raw.body)
	resp.status, resp.contentType, resp.sandboxed = raw.status, raw.contentType, raw.sandboxed
	return s.cache.putResp(key, index, resp), nil
}

// blockingRead makes the RPC of a blocking read whose answer is encoded
// per request, and sets the X-Consul-* headers from meta, the reply's
// QueryMeta. opts are the options inside args. On a server it first waits
// on watch locally (waitLocally; the zero Watch never does: Session.Renew
// goes through here but is no read to wait for), so the RPC does not
// block. Should the answer then still be at the index the client holds
// (the watch moved and the read's own index did not, were the topic ever
// coarser than the read), it blocks in the RPC after all: a client is
// never answered before its index moves or its wait ends.
func (s *Server) blockingRead(w http.ResponseWriter, r *http.Request, opts *rpc.QueryOptions, watch catalog.Watch,
	method string, args, reply any, meta *rpc.QueryMeta) error {
	orig := *opts
	changed := false
	if watch != (catalog.Watch{}) {
		_, changed, _ = s.waitLocally(r, opts, watch, nil)
		if err := r.Context().Err(); err != nil {
			return err // the client left while it waited
		}
	}
	if err := s.rpc(r, method, args, reply); err != nil {
		return err
	}
	if changed && meta.Index <= orig.MinQueryIndex {
		*opts = orig
		reflect.ValueOf(reply).Elem().SetZero()
		if err := s.rpc(r, method, args, reply); err != nil {
			return err
		}
	}
	setMeta(w, meta)
	return nil
}
