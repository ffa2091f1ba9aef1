package httpapi

import (
	"net/http"

	"net/url"
	"roster/catalog"
	"roster/rpc"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
)

// responseCache keeps encoded responses of hot reads, keyed by the query
// and the index of its answer. A result only changes when its index moves,
// so while the index stands, every client asking the same question can be
// sent the same bytes: the JSON encode (and gzip) of a 1,000-instance
// /v1/health/service answer, about 1.5 MB, is done once per index instead
// of once per request.
//
// Bounded: at most capacity entries; the oldest inserted goes first. An
// entry for an older index of the same query is replaced, not kept.
type responseCache struct {
	capacity int
	hits     atomic.Uint64

	// mu guards entries and order.
	mu      sync.Mutex
	entries map[string]*cacheEntry
	order   []string // insertion order, for eviction
}

type cacheEntry struct {
	index uint64
	resp  *encodedJSON
}

func newResponseCache(capacity int) *responseCache {
	return &responseCache{capacity: capacity, entries: map[string]*cacheEntry{}}
}

// get returns the response cached for key at index, if any.
func (c *responseCache) get(key string, index uint64) *encodedJSON {
	if c.capacity <= 0 {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entries[key]
	if e == nil || e.index != index {
		return nil
	}
	c.hits.Add(1)
	return e.resp
}

// put stores body for key at index and returns the shared response.
func (c *responseCache) put(key string, index uint64, body []byte) *encodedJSON {
	return c.putResp(key, index, newEncodedJSON(body))
}

// putResp stores resp for key at index and returns it.
func (c *responseCache) putResp(key string, index uint64, resp *encodedJSON) *encodedJSON {
	if c.capacity <= 0 {
		return resp
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.entries[key]; e != nil {
		if e.index > index {
			return resp // a slower request must not replace a newer answer
		}
		e.index, e.resp = index, resp
		return resp
	}
	for len(c.order) >= c.capacity {
		delete(c.entries, c.order[0])
		c.order = c.order[1:]
	}
	c.entries[key] = &cacheEntry{index: index, resp: resp}
	c.order = append(c.order, key)
	return resp
}

// newEncodedJSON wraps body with a gzip copy computed on first use and
// shared afterwards.
func newEncodedJSON(body []byte) *encodedJSON {
	return &encodedJSON{plain: body, gz: sync.OnceValue(func() []byte { return gzipBytes(body) }), contentType: "application/json"}
}

// uncachedParams do not change a result at a given index: blocking and
// consistency only decide when and where it is read.
var uncachedParams = map[string]bool{"index": true, "wait": true, "stale": true, "consistent": true,
	"cached": true, "leader": true, "max_stale": true}

// cacheKey names the question a request asks: its path and the query
// parameters that shape the result, sorted, plus the token (results will
// depend on it once ACLs filter them) and whether the output is pretty.
func (s *Server) cacheKey(r *http.Request) string {
	q := queryOf(r)
	names := make([]string, 0, len(q))
	for k := range q {
		if !uncachedParams[k] && k != "token" {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString(r.URL.Path)
	for _, k := range names {
		vs := append([]string(nil), q[k]...)
		sort.Strings(vs)
		b.WriteString("&" + url.QueryEscape(k) + "=" + url.QueryEscape(strings.Join(vs, "\x00")))
	}
	b.WriteString("#" + requestToken(r))
	if s.pretty(r) {
		b.WriteString("#pretty")
	}
	return b.String()
}

// cachedJSON returns the cached encoding of the answer at index, or
// encodes v (from the RPC reply) and caches it.
func (s *Server) cachedJSON(r *http.Request, key string, index uint64, v any) (any, error) {
	if resp := s.cache.get(key, index); resp != nil {
		return resp, nil
	}
	body, err := s.encode(r, v)
	if err != nil {
		return nil, err
	}
	return s.cache.put(key, index, body), nil
}

// hotRead answers a read from the cache without an RPC when that gives
// exactly what the RPC would: this server would answer it from its own
// state (it leads, or the read is ?stale and within ?max_stale), the read
// is not ?consistent (which needs a quorum round) nor for another
// datacenter, it would not block (the index is already past
// MinQueryIndex), and the cached answer is at the local catalog's current
// index for w.
//
// A miss that could have been a hit is coalesced: a herd arriving after
// a change (10,000 delta watchers reconnecting) would otherwise all miss
// together and all make the RPC and the encode. The first request for key
// gets a non-nil done, reads and caches as usual and then calls done; the
// others wait for it and take its cached answer (or, if it did not cache
// one, read for themselves). A request that misses just as a fill ends
// finds the fill's answer when it looks again after joining.
func (s *Server) hotRead(w http.ResponseWriter, r *http.Request, opts *rpc.QueryOptions, key string, watch catalog.Watch) (resp *encodedJSON, done func()) {
	resp, eligible := s.hotLookup(w, opts, key, watch)
	if resp != nil || !eligible {
		return resp, nil
	}
	wait, done := s.flights.join(key)
	if wait == nil {
		// A fill may have ended between the miss above and the join:
		// look again before making the RPC it already made.
		if resp, _ = s.hotLookup(w, opts, key, watch); resp != nil {
			done()
			return resp, nil
		}
		return nil, done
	}
	select {
	case <-wait:
	case <-r.Context().Done():
		return nil, nil
	}
	resp, _ = s.hotLookup(w, opts, key, watch)
	return resp, nil
}

// hotLookup is hotRead's cache lookup; eligible reports whether the read
// could have been answered from the cache at all.
func (s *Server) hotLookup(w http.ResponseWriter, opts *rpc.QueryOptions, key string, watch catalog.Watch) (resp *encodedJSON, eligible bool) {
	if key == "" || !s.answersLocally(opts) {
		return nil, false
	}
	local := s.cfg.Local
	meta := rpc.QueryMeta{KnownLeader: true, Consistency: opts.Consistency()}
	if !local.IsLeader() {
		meta.KnownLeader, meta.LastContact = local.LeaderAddr() != "", local.LastContact()
		if opts.MaxStaleDuration > 0 && meta.LastContact > opts.MaxStaleDuration {
			return nil, false // too far behind: the RPC goes to the leader
		}
	}
	meta.Index = local.Index(watch)
	if meta.Index == 0 || opts.MinQueryIndex >= meta.Index {
		return nil, false
	}
	resp = s.cache.get(key, meta.Index)
	if resp != nil && !resp.lean {
		// (A lean answer, the compact delta, goes out without X-Consul-*
		// headers: setting four only for writeResult to strip them again
		// was a cost every woken watcher paid.)
		setMeta(w, &meta)
	}
	return resp, true
}

// answersLocally reports whether this server answers a read from its own
// catalog: it has one, the read is for this datacenter and not
// ?consistent (which needs a quorum round), and this server leads or the
// read is ?stale. (?max_stale bounds are the callers' to check.)
func (s *Server) answersLocally(opts *rpc.QueryOptions) bool {
	local := s.cfg.Local
	return local != nil && !opts.RequireConsistent && opts.Datacenter == "" &&
		(opts.AllowStale || local.IsLeader())
}

// flights tracks the cache fills in progress, one per key (hotRead).
type flights struct {
	// mu guards m.
	mu sync.Mutex
	m  map[string]chan struct{}
}

// join returns the channel closed when key's fill in progress ends, or,
// when none is, registers the caller's and returns the func ending it.
func (f *flights) join(key string) (wait <-chan struct{}, done func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if ch, ok := f.m[key]; ok {
		return ch, nil
	}
	if f.m == nil {
		f.m = map[string]chan struct{}{}
	}
	ch := make(chan struct{})
	f.m[key] = ch
	return nil, func() {
		f.mu.Lock()
		delete(f.m, key)
		f.mu.Unlock()
		close(ch)
	}
}

// cacheable reports whether a read's answer is fixed by its index: ?near
// sorts by coordinates, which move without moving the index.
func cacheable(near string) bool { return near == "" }

// cachedServiceRead serves a per-service hot read (/v1/catalog/service,
// /v1/health/service) by cachedRead, on the service's watch. Reads with
// ?near= are sorted for one caller and are never cached.
func cachedServiceRead[R any](s *Server, w http.ResponseWriter, r *http.Request, args *rpc.ServiceSpecificRequest,
	method string, answer func(reply *R) (*rpc.QueryMeta, any)) (any, error) {
	key := s.cacheKey(r)
	if !cacheable(args.Near) {
		key = ""
	}
	return cachedRead(s, w, r, &args.QueryOptions, catalog.WatchService(args.ServiceName), key, method, args, answer)
}
