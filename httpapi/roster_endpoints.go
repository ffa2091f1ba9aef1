package httpapi

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"

	"roster/catalog"
	"roster/httpapi/client"
	"roster/rpc"
)

// Delta pulls, roster's own endpoints (DESIGN.md "Beyond Consul"):
//
//	GET /v1/roster/registry               the full registry: {Index, Hash, HashScheme, Instances}
//	GET /v1/roster/registry/delta?since=N the changes in (N, To]: {From, To, Hash, HashScheme, Changes},
//	                                      or 410 Gone when N fell out of the delta ring
//
// Both block like any Consul read: the registry with ?index=, the delta
// with ?wait= (it then waits for a change after since; ?index= overrides
// the index it waits past). Both carry the registry hashcode as an ETag: a
// client sending If-None-Match with the hash it holds gets 304 Not
// Modified when it is already current (nothing to apply, index unmoved). Bodies are gzipped for clients that accept it
// and cached per (query, index), so a herd of watchers woken by one change
// costs one encode.

// etag quotes a hashcode as an HTTP entity tag.
func etag(hash string) string { return `"` + hash + `"` }

// etagMatches reports whether If-None-Match names hash (or is "*").
func etagMatches(r *http.Request, hash string) bool {
	inm := r.Header.Get("If-None-Match")
	if inm == "" || hash == "" {
		return false
	}
	for _, tag := range strings.Split(inm, ",") {
		tag = strings.TrimPrefix(strings.TrimSpace(tag), "W/")
		if tag == "*" || strings.Trim(tag, `"`) == hash {
			return true
		}
	}
	return false
}

func (s *Server) rosterRegistry(w http.ResponseWriter, r *http.Request, _ string) (any, error) {
	args, err := s.dcRequest(r)
	if err != nil {
		return nil, err
	}
	var reply rpc.RegistryResponse
	if err := s.blockingRead(w, r, &args.QueryOptions, catalog.WatchRegistry(), "Roster.Registry", &args, &reply, &reply.QueryMeta); err != nil {
		return nil, err
	}
	w.Header().Set("ETag", etag(reply.Registry.Hash))
	if etagMatches(r, reply.Registry.Hash) {
		return &rawBody{status: http.StatusNotModified}, nil
	}
	reply.Registry.Instances = nonNil(reply.Registry.Instances)
	return s.cachedJSON(r, s.cacheKey(r), reply.Registry.Index, reply.Registry)
}

// Delta forms (?format=): the JSON form, and the compact binary form
// (client/compact.go) that the Go client asks for.
const (
	formatJSON    = "json"
	formatCompact = "compact"
)

func (s *Server) rosterDelta(w http.ResponseWriter, r *http.Request, _ string) (any, error) {
	opts, err := s.parseQueryOptions(r)
	if err != nil {
		return nil, err
	}
	q := queryOf(r)
	since, err := strconv.ParseUint(q.Get("since"), 10, 64)
	if err != nil {
		return nil, errorf(http.StatusBadRequest, "Invalid since: %q must be the index of the registry you hold (an unsigned integer); pull /v1/roster/registry first", q.Get("since"))
	}
	format := cmpOr(q.Get("format"), formatJSON)
	if format != formatJSON && format != formatCompact {
		return nil, errorf(http.StatusBadRequest, "Invalid format: %q; use %q (the default) or %q", format, formatJSON, formatCompact)
	}
	blocking := has(q, "wait")
	if opts.MinQueryIndex == 0 && blocking {
		opts.MinQueryIndex = since
	}
	key := s.cacheKey(r)
	if blocking {
		// On a server answering from its own catalog, wait here: the
		// RPC, the copy of the changes and the encode then happen once per
		// change (hotRead coalesces them) rather than once per waiter.
		if waited, changed, peak := s.waitLocally(r, &opts, catalog.WatchRegistry(), &s.deltaWaiters); waited {
			if err := r.Context().Err(); err != nil {
				return nil, err // the client left: no read for nobody
			}
			blocking = false // the change is here (or the wait is over): read it as a plain pull
			if changed {
				sleepCtx(r.Context(), wakeJitter(peak))
			}
		}
	}
	resp, done := s.hotRead(w, r, &opts, key, catalog.WatchRegistry())
	if resp != nil {
		return resp, nil // a herd asking since the same index: no RPC, no encode
	}
	if done != nil {
		defer done()
	}
	args := rpc.DeltaRequest{QueryOptions: opts, Since: since}
	var reply rpc.DeltaResponse
	if err := s.blockingDelta(w, r, blocking, &args, &reply); err != nil {
		return nil, err
	}
	if reply.Truncated {
		return nil, errorf(http.StatusGone, "the delta log no longer covers index %d; pull /v1/roster/registry", since)
	}
	// 304 only when the client is exactly current: an empty delta that
	// moves To (writes outside the registry) still tells it where it is.
	if len(reply.Delta.Changes) == 0 && reply.Delta.To == since && etagMatches(r, reply.Delta.Hash) {
		if format == formatCompact {
			stripMeta(w.Header())
		} else {
			w.Header().Set("ETag", etag(reply.Delta.Hash))
		}
		return &rawBody{status: http.StatusNotModified}, nil
	}
	reply.Delta.Changes = nonNil(reply.Delta.Changes)
	return s.cachedDelta(r, key, reply.Index, &reply.Delta, format == formatCompact)
}

// cachedDelta returns the cached encoding of a delta answer, or encodes
// and caches it. It is keyed by the registry index the answer was read at
// (not Delta.To, which moves with every raft write), which is what hotRead
// looks up: any answer read at that registry index is a correct one.
func (s *Server) cachedDelta(r *http.Request, key string, index uint64, d *catalog.Delta, compact bool) (any, error) {
	if resp := s.cache.get(key, index); resp != nil {
		return resp, nil
	}
	var body []byte
	var err error
	if compact {
		body, err = client.AppendCompactDelta(nil, d)
	} else {
		body, err = s.encode(r, d)
	}
	if err != nil {
		return nil, fmt.Errorf("encoding the delta: %w", err)
	}
	resp := newEncodedJSON(body)
	resp.lean = compact
	if !compact {
		resp.etag = etag(d.Hash)
	}
	return s.cache.putResp(key, index, resp), nil
}

// Wake-up jitter. One registry change wakes every watcher blocked on a
// delta pull at once; answered in the same millisecond, they would all
// come back in the same millisecond too, and a server with 10,000
// watchers would see 10,000 requests arrive as one spike after every
// change. So a blocking pull (?wait) that returns changes is held back a
// random delay, uniform in [0, min(maxWakeJitter, wakeJitterPerWaiter ×
// the blocking pulls in flight)): a lone watcher waits microseconds, a
// herd of 10,000 is spread over ~100 ms. Nothing is lost by waiting: the
// answer is read after the delay, so it covers every change up to then.
// (Timeouts are spread separately: rpc adds Consul's wait/16 jitter.)
const (
	wakeJitterPerWaiter = 10 * time.Microsecond
	maxWakeJitter       = 100 * time.Millisecond
)

// blockingDelta makes the Roster.Delta RPC and sets the meta headers;
// when blocking it counts the request among the waiters and, if the pull
// returns changes, jitters its wake-up (see above).
func (s *Server) blockingDelta(w http.ResponseWriter, r *http.Request, blocking bool, args *rpc.DeltaRequest, reply *rpc.DeltaResponse) error {
	if !blocking {
		if err := s.rpc(r, "Roster.Delta", args, reply); err != nil {
			return err
		}
		setMeta(w, &reply.QueryMeta)
		return nil
	}
	waiters := s.deltaWaiters.Add(1)
	err := s.rpc(r, "Roster.Delta", args, reply)
	waiters = max(waiters, s.deltaWaiters.Add(-1)+1)
	if err != nil {
		return err
	}
	if !reply.Truncated && len(reply.Delta.Changes) > 0 {
		sleepCtx(r.Context(), wakeJitter(waiters))
	}
	setMeta(w, &reply.QueryMeta)
	return nil
}

// wakeJitter draws the delay for a pull woken among waiters others.
func wakeJitter(waiters int64) time.Duration {
	window := min(maxWakeJitter, time.Duration(waiters)*wakeJitterPerWaiter)
	if window <= 0 {
		return 0
	}
	return rand.N(window)
}

// sleepCtx sleeps for d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
