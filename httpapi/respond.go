package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
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

// writeResult encodes a handler's outcome. A nil value with a nil error is
// Consul's empty 200 (agent register, leave, ...).
func (s *Server) writeResult(w http.ResponseWriter, r *http.Request, v any, err error) {
	if err != nil {
		s.writeError(w, err)
		return
	}
	if v == nil {
		w.WriteHeader(http.StatusOK)
		return
	}
	body, err := s.encode(r, v)
	if err != nil {
		s.writeError(w, fmt.Errorf("encoding response: %w", err))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	w.Write(body)
}

// encode marshals v compactly, or indented plus a newline with ?pretty (or
// always in dev mode), exactly as Consul does.
func (s *Server) encode(r *http.Request, v any) ([]byte, error) {
	if _, pretty := r.URL.Query()["pretty"]; pretty || s.cfg.Pretty {
		b, err := json.MarshalIndent(v, "", "    ")
		return append(b, '\n'), err
	}
	return json.Marshal(v)
}

// writeError sends a plain-text error body. Errors without a status are
// internal (500), as Consul reports RPC failures.
func (s *Server) writeError(w http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	var he *Error
	if errors.As(err, &he) {
		code = he.Code
	}
	if code >= 500 {
		s.cfg.Logger.Warn("http request failed", slog.Int("status", code), slog.String("error", err.Error()))
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(code)
	fmt.Fprint(w, err.Error())
}
