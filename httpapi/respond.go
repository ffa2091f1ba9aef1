package httpapi

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"

	"roster/rpc"
)

// Error is an error with the HTTP status Consul would answer for it. Its
// message becomes the plain-text response body.
type Error struct {
	Code int
	Msg  string
}

func (e *Error) Error() string { return e.Msg }

// errorf builds an *Error with a formatted message.
func errorf(code int, format string, args ...any) *Error {
	return &Error{Code: code, Msg: fmt.Sprintf(format, args...)}
}

// rawBody is a handler result written as is: raw KV values, empty 404s,
// 304s, 410s.
type rawBody struct {
	status      int
	contentType string
	body        []byte
	sandboxed   bool // a raw KV value (encodedJSON.sandboxed)
}

// jsonStatus is a JSON result with a status other than 200 (txn's 409,
// autopilot's 429).
type jsonStatus struct {
	status int
	v      any
}

// encodedJSON is a response already encoded (and maybe gzipped) by the
// response cache; writing it costs a copy, not an encode. Fields are set
// before the value is shared and never change afterwards.
type encodedJSON struct {
	plain []byte
	gz    func() []byte // lazily compressed, shared by every request
	// etag, when set, is sent as the ETag header (the roster endpoints'
	// hashcode), so a cached answer carries it too.
	etag string
	// lean bodies (the compact delta) go out with no Content-Type and no
	// X-Consul-* headers: the client asked for the form by name, and a
	// delta's headers would otherwise outweigh its body.
	lean bool
	// status, when set, replaces 200 (a cached 404 for a missing key).
	status int
	// contentType is sent as Content-Type; "" sends none (an empty 404).
	// newEncodedJSON sets application/json.
	contentType string
	// sandboxed is a raw KV value: served with nosniff and a sandbox CSP,
	// as Consul does, so a browser never runs a stored value as a page.
	sandboxed bool
}

// gzipMinBytes: smaller bodies are sent as they are; compressing them
// costs more than it saves (the threshold of Consul's gzip handler).
const gzipMinBytes = 1400

// writeResult encodes a handler's outcome. A nil value with a nil error is
// Consul's empty 200 (agent register, leave, ...).
func (s *Server) writeResult(w http.ResponseWriter, r *http.Request, v any, err error) {
	if err != nil {
		s.writeError(w, err)
		return
	}
	switch v := v.(type) {
	case nil:
		w.WriteHeader(http.StatusOK)
	case *rawBody:
		e := encodedJSON{contentType: v.contentType, sandboxed: v.sandboxed}
		e.setHeaders(w.Header())
		s.writeBody(w, r, v.status, v.body, nil)
	case *encodedJSON:
		v.setHeaders(w.Header())
		s.writeBody(w, r, cmpOr(v.status, http.StatusOK), v.plain, v.gz)
	case *jsonStatus:
		s.writeJSON(w, r, v.status, v.v)
	default:
		s.writeJSON(w, r, http.StatusOK, v)
	}
}

func (e *encodedJSON) setHeaders(h http.Header) {
	if e.lean {
		stripMeta(h)
		h["Content-Type"] = nil // present but empty: net/http does not sniff one
		return
	}
	if e.contentType != "" {
		h.Set("Content-Type", e.contentType)
	}
	if e.etag != "" {
		h.Set("ETag", e.etag)
	}
	if e.sandboxed {
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Content-Security-Policy", "sandbox")
	}
}

// stripMeta removes the X-Consul-* headers a read sets (lean answers carry
// their index in the body).
func stripMeta(h http.Header) {
	for k := range h {
		if strings.HasPrefix(k, "X-Consul-") {
			delete(h, k)
		}
	}
}

func (s *Server) writeJSON(w http.ResponseWriter, r *http.Request, status int, v any) {
	body, err := s.encode(r, v)
	if err != nil {
		s.writeError(w, fmt.Errorf("encoding response: %w", err))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	s.writeBody(w, r, status, body, nil)
}

// writeBody sends body, gzipped when the client accepts it and the body is
// worth compressing. gz, when set, supplies a precompressed copy.
func (s *Server) writeBody(w http.ResponseWriter, r *http.Request, status int, body []byte, gz func() []byte) {
	if len(body) >= gzipMinBytes && acceptsGzip(r) {
		w.Header().Set("Content-Encoding", "gzip")
		w.Header().Add("Vary", "Accept-Encoding")
		if gz != nil {
			body = gz()
		} else {
			body = gzipBytes(body)
		}
	}
	w.WriteHeader(status)
	w.Write(body)
}

func acceptsGzip(r *http.Request) bool {
	for _, v := range r.Header.Values("Accept-Encoding") {
		for _, enc := range strings.Split(v, ",") {
			enc, q, _ := strings.Cut(strings.TrimSpace(enc), ";")
			if strings.EqualFold(strings.TrimSpace(enc), "gzip") && strings.TrimSpace(q) != "q=0" {
				return true
			}
		}
	}
	return false
}

var gzipWriters = sync.Pool{New: func() any {
	w, _ := gzip.NewWriterLevel(nil, gzip.BestSpeed)
	return w
}}

// gzipBytes compresses b at BestSpeed: the API's bodies are JSON, which
// compresses well even at the fastest level, and CPU is the bottleneck.
func gzipBytes(b []byte) []byte {
	var buf bytes.Buffer
	buf.Grow(len(b) / 4)
	zw := gzipWriters.Get().(*gzip.Writer)
	zw.Reset(&buf)
	zw.Write(b)
	zw.Close()
	gzipWriters.Put(zw)
	return buf.Bytes()
}

// encode marshals v compactly, or indented plus a newline with ?pretty (or
// always in dev mode), exactly as Consul does.
func (s *Server) encode(r *http.Request, v any) ([]byte, error) {
	if s.pretty(r) {
		b, err := json.MarshalIndent(v, "", "    ")
		return append(b, '\n'), err
	}
	return json.Marshal(v)
}

func (s *Server) pretty(r *http.Request) bool {
	return s.cfg.Pretty || has(queryOf(r), "pretty")
}

// writeError sends a plain-text error body. Errors without a status are
// RPC failures: mapRPCError picks Consul's status for them.
func (s *Server) writeError(w http.ResponseWriter, err error) {
	he := mapRPCError(err)
	if he.Code >= 500 {
		s.cfg.Logger.Warn("http request failed", slog.Int("status", he.Code), slog.String("error", he.Msg))
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(he.Code)
	fmt.Fprint(w, he.Msg)
}

// mapRPCError gives an error Consul's status: *Error keeps its own; the
// validation failures endpoints report (bad filter, conflicting
// consistency, bad wait) are 400; ACL denials 403; rate limits 429;
// everything else, including "No cluster leader" and "No path to
// datacenter", is 500 with the error text, which clients match on.
func mapRPCError(err error) *Error {
	var he *Error
	if errors.As(err, &he) {
		return he
	}
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "rpc error: ")
	switch {
	case rpc.IsNoLeader(err):
		return &Error{Code: http.StatusInternalServerError, Msg: rpc.ErrNoLeader.Error()}
	case strings.Contains(msg, "Failed to create boolean expression evaluator"),
		strings.Contains(msg, "Cannot specify ?stale with ?consistent"),
		strings.Contains(msg, "Invalid wait time"):
		return &Error{Code: http.StatusBadRequest, Msg: msg}
	case strings.Contains(msg, "Permission denied"), strings.Contains(msg, "ACL not found"):
		return &Error{Code: http.StatusForbidden, Msg: msg}
	case strings.Contains(msg, "rate limit exceeded"):
		return &Error{Code: http.StatusTooManyRequests, Msg: msg}
	}
	return &Error{Code: http.StatusInternalServerError, Msg: msg}
}
