package httpapi

import (
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"roster/rpc"
)

// Request parsing: query parameters and headers into the rpc envelopes.
//
// Consul's Go client sends boolean flags as presence (`?stale=`,
// `?recurse=`), so flags are tested with has(), never by value. Numbers and
// durations that do not parse are the client's fault: 400 with Consul's
// message, never a silent default.

// has reports whether the query has the parameter, whatever its value.
func has(q url.Values, name string) bool {
	_, ok := q[name]
	return ok
}

// queryOptionsFor checks that the path argument arg (a what, such as
// "node") is present, then reads the query options: the opening of every
// blocking read on one named thing.
func (s *Server) queryOptionsFor(r *http.Request, arg, what string) (rpc.QueryOptions, error) {
	if err := mustArg(arg, what); err != nil {
		return rpc.QueryOptions{}, err
	}
	return s.parseQueryOptions(r)
}

// nodeRequest reads the parameters of the per-node reads.
func (s *Server) nodeRequest(r *http.Request, node string) (rpc.NodeSpecificRequest, error) {
	opts, err := s.queryOptionsFor(r, node, "node")
	return rpc.NodeSpecificRequest{QueryOptions: opts, Node: node}, err
}

// queryOf is the request's query parameters, parsed once per request:
// ServeHTTP stores them in r.Form (no handler reads a form body), and
// every blocking read would otherwise re-parse the query three or four
// times (options, cache key, ?pretty, the handler's own parameters), a
// cost a herd of 10,000 woken watchers pays 10,000 times over. Callers
// must not modify the result.
func queryOf(r *http.Request) url.Values {
	if r.Form != nil {
		return r.Form
	}
	return r.URL.Query()
}

// parseQueryOptions reads the parameters every blocking read accepts.
func (s *Server) parseQueryOptions(r *http.Request) (rpc.QueryOptions, error) {
	q := queryOf(r)
	opts := rpc.QueryOptions{
		Datacenter:        q.Get("dc"),
		Token:             requestToken(r),
		AllowStale:        has(q, "stale"),
		RequireConsistent: has(q, "consistent"),
		Filter:            q.Get("filter"),
	}
	if v := q.Get("index"); v != "" {
		idx, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return opts, errorf(http.StatusBadRequest, "Invalid index: %q is not an unsigned integer", v)
		}
		opts.MinQueryIndex = idx
	}
	if v := q.Get("wait"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return opts, errorf(http.StatusBadRequest, "Invalid wait time: %q is not a duration like \"30s\" or \"500ms\"", v)
		}
		opts.MaxQueryTime = d
	}
	if v := q.Get("max_stale"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return opts, errorf(http.StatusBadRequest, "Invalid max_stale value: %q is not a duration", v)
		}
		opts.MaxStaleDuration = d
	}
	if err := opts.Validate(); err != nil {
		return opts, &Error{Code: http.StatusBadRequest, Msg: err.Error()}
	}
	if opts.Datacenter == s.localDC() {
		opts.Datacenter = ""
	}
	return opts, nil
}

// parseWriteRequest reads the parameters every write accepts.
func (s *Server) parseWriteRequest(r *http.Request) rpc.WriteRequest {
	w := rpc.WriteRequest{Datacenter: queryOf(r).Get("dc"), Token: requestToken(r)}
	if w.Datacenter == s.localDC() {
		w.Datacenter = ""
	}
	return w
}

// requestToken finds the ACL token in Consul's order of precedence:
// ?token=, then X-Consul-Token, then "Authorization: Bearer <token>" (the
// scheme is case-insensitive; only the first word after it counts).
func requestToken(r *http.Request) string {
	if t := queryOf(r).Get("token"); t != "" {
		return t
	}
	if t := r.Header.Get("X-Consul-Token"); t != "" {
		return t
	}
	if auth := r.Header.Get("Authorization"); auth != "" {
		fields := strings.Fields(auth)
		if len(fields) >= 2 && strings.EqualFold(fields[0], "bearer") {
			return fields[1]
		}
	}
	return ""
}

// parseNodeMeta reads repeatable ?node-meta=key:value pairs. A pair
// without a colon filters on the key with an empty value, as Consul does.
func parseNodeMeta(q url.Values) map[string]string {
	pairs := q["node-meta"]
	if len(pairs) == 0 {
		return nil
	}
	out := make(map[string]string, len(pairs))
	for _, p := range pairs {
		k, v, _ := strings.Cut(p, ":")
		out[k] = v
	}
	return out
}

// near resolves ?near=, where "_agent" means this agent's node.
func (s *Server) near(q url.Values) string {
	n := q.Get("near")
	if n == "_agent" {
		return s.localNode()
	}
	return n
}

// setMeta writes the X-Consul-* headers of a read. The index is never 0:
// a client that sends ?index=0 would otherwise spin.
func setMeta(w http.ResponseWriter, m *rpc.QueryMeta) {
	h := w.Header()
	h.Set("X-Consul-Index", strconv.FormatUint(max(m.Index, 1), 10))
	h.Set("X-Consul-KnownLeader", strconv.FormatBool(m.KnownLeader))
	h.Set("X-Consul-LastContact", strconv.FormatInt(m.LastContact.Milliseconds(), 10))
	consistency := m.Consistency
	if consistency == "" {
		consistency = rpc.ConsistencyLeader
	}
	h.Set("X-Consul-Effective-Consistency", consistency)
}

// readBody reads a request body of at most limit bytes. Oversized bodies
// are 413 with Consul's wording, naming the limit so the caller can split
// or shrink the value.
func readBody(r *http.Request, limit int64, what string) ([]byte, error) {
	if r.Body == nil {
		return nil, nil
	}
	if r.ContentLength > limit {
		return nil, tooLarge(r.ContentLength, limit, what)
	}
	if r.ContentLength > 0 {
		// The usual case, a sized body: one allocation of the right size
		// (net/http's body reader stops at Content-Length).
		body := make([]byte, r.ContentLength)
		if _, err := io.ReadFull(r.Body, body); err != nil {
			return nil, errorf(http.StatusBadRequest, "Request body could not be read: %v", err)
		}
		return body, nil
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return nil, errorf(http.StatusBadRequest, "Request body could not be read: %v", err)
	}
	if int64(len(body)) > limit {
		return nil, tooLarge(int64(len(body)), limit, what)
	}
	return body, nil
}

func tooLarge(n, limit int64, what string) *Error {
	return errorf(http.StatusRequestEntityTooLarge,
		"Request body(%d bytes) too large, max size: %d bytes. See %s.", n, limit, what)
}

// decodeError wraps a JSON decode failure as Consul does.
func decodeError(err error) *Error {
	return errorf(http.StatusBadRequest, "Request decode failed: %v", err)
}

// parseUintParam parses an optional unsigned parameter.
func parseUintParam(q url.Values, name string) (uint64, bool, error) {
	v, ok := q[name]
	if !ok {
		return 0, false, nil
	}
	if len(v) == 0 || v[0] == "" {
		return 0, true, errorf(http.StatusBadRequest, "Invalid %s: missing value", name)
	}
	n, err := strconv.ParseUint(v[0], 10, 64)
	if err != nil {
		return 0, true, errorf(http.StatusBadRequest, "Invalid %s: %q is not an unsigned integer", name, v[0])
	}
	return n, true, nil
}

func (s *Server) localDC() string   { return s.cfg.Datacenter }
func (s *Server) localNode() string { return s.cfg.NodeName }

// mustArg rejects an empty path argument with Consul's "Missing ... name".
func mustArg(arg, what string) error {
	if arg == "" {
		return errorf(http.StatusBadRequest, "Missing %s name", what)
	}
	return nil
}
