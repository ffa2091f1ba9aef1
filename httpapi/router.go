package httpapi

import (
	"net/http"
	"runtime/debug"
	"sort"
	"strings"
	"time"
)

// handlerFunc serves one route. arg is the part of the path after a prefix
// route (empty for exact routes). It may set headers on w (X-Consul-*) but
// never writes the body: it returns a value to encode as JSON, nil for an
// empty 200, a *rawBody, *jsonStatus or *encodedJSON for the special
// cases, or an error (an *Error carries its status; others are mapped by
// mapRPCError).
type handlerFunc func(w http.ResponseWriter, r *http.Request, arg string) (any, error)

// route is one entry of the table.
type route struct {
	path    string // exact path, or a prefix when it ends in "/"
	methods []string
	handle  handlerFunc
}

// router matches exact paths first, then the longest prefix route.
type router struct {
	exact    map[string]*route
	prefixes []*route // sorted longest first
}

func newRouter(routes []route) *router {
	rt := &router{exact: map[string]*route{}}
	for i := range routes {
		r := &routes[i]
		if strings.HasSuffix(r.path, "/") {
			rt.prefixes = append(rt.prefixes, r)
		} else {
			rt.exact[r.path] = r
		}
	}
	sort.Slice(rt.prefixes, func(i, j int) bool { return len(rt.prefixes[i].path) > len(rt.prefixes[j].path) })
	return rt
}

// lookup returns the route for path and the argument after its prefix.
func (rt *router) lookup(path string) (*route, string) {
	if r, ok := rt.exact[path]; ok {
		return r, ""
	}
	for _, r := range rt.prefixes {
		if strings.HasPrefix(path, r.path) {
			return r, path[len(r.path):]
		}
	}
	return nil, ""
}

// allowHeader is Consul's Allow value: OPTIONS first, then the methods.
func (r *route) allowHeader() string {
	return strings.Join(append([]string{http.MethodOptions}, r.methods...), ",")
}

func (r *route) allows(method string) bool {
	for _, m := range r.methods {
		if m == method {
			return true
		}
	}
	return false
}

// ServeHTTP dispatches a request, answering 404, 405, 429 and OPTIONS
// itself, and records the request's status and latency.
func (s *Server) ServeHTTP(rw http.ResponseWriter, req *http.Request) {
	s.requests.Add(1)
	start := time.Now()
	w := &statusWriter{ResponseWriter: rw, status: http.StatusOK}
	defer func() { s.stats.observe(w.status, time.Since(start)) }()
	if !s.limiter.allow(clientIP(req), start) {
		s.writeError(w, errorf(http.StatusTooManyRequests, "rate limit exceeded: more than %g requests per second from this client; slow down and retry", s.cfg.RateLimit))
		return
	}
	if req.Form == nil {
		req.Form = req.URL.Query() // queryOf
	}
	rt, arg := s.router.lookup(req.URL.Path)
	switch {
	case rt == nil && req.URL.Path == "/":
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("roster agent: the UI is not available in this build; the HTTP API is under /v1/\n"))
	case rt == nil:
		s.writeError(w, errorf(http.StatusNotFound, "Invalid URL path: not a recognized HTTP API endpoint"))
	case req.Method == http.MethodOptions:
		w.Header().Set("Allow", rt.allowHeader())
		w.WriteHeader(http.StatusOK)
	case !rt.allows(req.Method):
		w.Header().Set("Allow", rt.allowHeader())
		s.writeError(w, errorf(http.StatusMethodNotAllowed, "method %s not allowed", req.Method))
	default:
		v, err := s.call(rt, w, req, arg)
		if req.Context().Err() != nil {
			// The client hung up first (a watcher gone mid-wait; net/http
			// ends a request's context when its connection closes): nobody
			// reads an answer, and a 500 and a logged warning for each of
			// thousands of watchers leaving at once would only flood the
			// log. ErrAbortHandler closes the connection without the empty
			// 200 net/http would otherwise write to the dead socket.
			w.status = statusClientClosed
			panic(http.ErrAbortHandler)
		}
		s.writeResult(w, req, v, err)
	}
}

// statusClientClosed is the status recorded (never sent) for a request
// whose client left before its answer: nginx's 499 Client Closed Request.
const statusClientClosed = 499

// call runs a handler, turning a panic into a 500 so that one bad request
// can never take the agent down; the panic is logged with its stack.
func (s *Server) call(rt *route, w http.ResponseWriter, req *http.Request, arg string) (v any, err error) {
	defer func() {
		if p := recover(); p != nil {
			s.panics.Add(1)
			s.cfg.Logger.Error("http handler panicked", "path", req.URL.Path, "panic", p, "stack", string(debug.Stack()))
			v, err = nil, errorf(http.StatusInternalServerError, "internal error while serving %s; the agent log has details", req.URL.Path)
		}
	}()
	return rt.handle(w, req, arg)
}

// statusWriter remembers the status written, for the request metrics.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
