package httpapi

import (
	"net/http"
	"strconv"
	"strings"

	"roster/rpc"
)

// Delta pulls, roster's own endpoints (DESIGN.md "Beyond Consul"):
//
//	GET /v1/roster/registry               the full registry: {Index, Hash, Instances}
//	GET /v1/roster/registry/delta?since=N the changes in (N, To]: {From, To, Hash, Changes},
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
	if err := s.blockingRead(w, r, "Roster.Registry", &args, &reply, &reply.QueryMeta); err != nil {
		return nil, err
	}
	w.Header().Set("ETag", etag(reply.Registry.Hash))
	if etagMatches(r, reply.Registry.Hash) {
		return &rawBody{status: http.StatusNotModified}, nil
	}
	reply.Registry.Instances = nonNil(reply.Registry.Instances)
	return s.cachedJSON(r, s.cacheKey(r), reply.Registry.Index, reply.Registry)
}

func (s *Server) rosterDelta(w http.ResponseWriter, r *http.Request, _ string) (any, error) {
	opts, err := s.parseQueryOptions(r)
	if err != nil {
		return nil, err
	}
	q := r.URL.Query()
	since, err := strconv.ParseUint(q.Get("since"), 10, 64)
	if err != nil {
		return nil, errorf(http.StatusBadRequest, "Invalid since: %q must be the index of the registry you hold (an unsigned integer); pull /v1/roster/registry first", q.Get("since"))
	}
	if opts.MinQueryIndex == 0 && has(q, "wait") {
		opts.MinQueryIndex = since
	}
	args := rpc.DeltaRequest{QueryOptions: opts, Since: since}
	var reply rpc.DeltaResponse
	if err := s.blockingRead(w, r, "Roster.Delta", &args, &reply, &reply.QueryMeta); err != nil {
		return nil, err
	}
	if reply.Truncated {
		return nil, errorf(http.StatusGone, "the delta log no longer covers index %d; pull /v1/roster/registry", since)
	}
	w.Header().Set("ETag", etag(reply.Delta.Hash))
	// 304 only when the client is exactly current: an empty delta that
	// moves To (writes outside the registry) still tells it where it is.
	if len(reply.Delta.Changes) == 0 && reply.Delta.To == since && etagMatches(r, reply.Delta.Hash) {
		return &rawBody{status: http.StatusNotModified}, nil
	}
	reply.Delta.Changes = nonNil(reply.Delta.Changes)
	return s.cachedJSON(r, s.cacheKey(r), reply.Delta.To, reply.Delta)
}
