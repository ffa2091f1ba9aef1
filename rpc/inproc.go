package rpc

import (
	"context"
	"errors"
	"io"
	"net/rpc"
	"reflect"
)

// In-process calls. A server's own HTTP API, DNS forwarding and agent
// code call its endpoints through Server.Call instead of the connection
// pool: same endpoints, same net/rpc dispatch (method lookup, error
// strings), same forwarding to the leader, consistency modes and blocking,
// but no gob encoding, no loopback TCP round trip and no pool slot. Before
// it, every HTTP request a server received took a pool slot towards its
// own :8300, so one server's HTTP clients competed with its forwarded
// calls for the same in-flight limit, and ten thousand parked blocking
// queries exhausted the blocking slots (4096) of the pool's own address.
//
// What differs from a call over the network, on purpose:
//
//   - Arguments and replies are copied shallowly (the top-level struct),
//     not encoded: slices and maps inside them are shared with the
//     caller. Endpoints never keep arguments, and fill replies from the
//     catalog's copies (catalog hands out copies, never live state).
//   - ctx is honoured before the call starts only. Once dispatched, the
//     call is bounded by the endpoint's own limits, as one arriving over
//     the network is: the forwarder's hold timeout and call timeout, the
//     Raft apply timeout, a blocking query's wait; Shutdown ends them all
//     through Server.Context. A caller that must return sooner (an HTTP
//     client hanging up on a blocking query) runs Call on a goroutine.

// errInProcServerClosed is the transport failure of a call made after
// Shutdown began, as a refused connection would be over the network.
var errInProcServerClosed = errors.New("rpc: server is shutting down")

// InProcAddr is the address TransportErrors of in-process calls carry.
const InProcAddr = "in-process"

// Call invokes method on this server's endpoints in-process. reply is
// written only when Call returns nil. Endpoint errors come back as
// rpc.ServerError, exactly as over a connection, so errors.Is and the
// IsNoLeader family behave the same; a call after Shutdown fails with a
// *TransportError. A write without a RequestID gets one in the caller's
// args first, as Pool.Call does, so a caller's retries share it.
func (s *Server) Call(ctx context.Context, method string, args, reply any) error {
	stampRequestID(args)
	if err := ctx.Err(); err != nil {
		return &TransportError{Addr: InProcAddr, Method: method, Err: err}
	}
	m, ok := s.trackCall(method)
	if !ok {
		return &TransportError{Addr: InProcAddr, Method: method, Err: errInProcServerClosed}
	}
	defer s.wg.Done()
	s.inProcCalls.Add(1)
	if m != nil {
		if ok, err := m(args, reply); ok {
			return err
		}
	}
	c := inprocCodec{method: method, args: args}
	if err := s.rpcSrv.ServeRequest(&c); err != nil && !c.answered {
		// No response was produced (net/rpc could not even read the
		// header): a bug in this file, reported, not hidden.
		return &TransportError{Addr: InProcAddr, Method: method, Err: err}
	}
	if c.errMsg != "" {
		return rpc.ServerError(c.errMsg)
	}
	return c.adopt(reply)
}

// trackCall counts an in-process call as a running handler, so Shutdown
// waits for it; it reports false once the server is closed. It also
// returns method's typed entry (nil if it has none), under the same lock.
func (s *Server) trackCall(method string) (directMethod, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, false
	}
	s.wg.Add(1)
	return s.direct[method], true
}

// inprocCodec is a net/rpc ServerCodec for one request whose arguments
// and reply are Go values: net/rpc's own dispatch (service and method
// lookup, the reflective call, error strings) runs unchanged on it.
type inprocCodec struct {
	method string
	args   any
	read   bool // the header was handed out

	answered bool
	errMsg   string
	body     any // the endpoint's reply, set by WriteResponse
}

func (c *inprocCodec) ReadRequestHeader(r *rpc.Request) error {
	if c.read {
		return io.EOF
	}
	c.read = true
	r.ServiceMethod, r.Seq = c.method, 0
	return nil
}

// ReadRequestBody copies the caller's arguments into the value net/rpc
// allocated for the method (body is nil when net/rpc discards the body of
// a request for an unknown method).
func (c *inprocCodec) ReadRequestBody(body any) error {
	if body == nil {
		return nil
	}
	return assign(body, c.args)
}

func (c *inprocCodec) WriteResponse(r *rpc.Response, body any) error {
	c.answered, c.errMsg = true, r.Error
	if r.Error == "" {
		c.body = body
	}
	return nil
}

func (c *inprocCodec) Close() error { return nil }

// adopt copies the endpoint's reply into the caller's.
func (c *inprocCodec) adopt(reply any) error {
	if reply == nil || c.body == nil {
		return nil
	}
	return assign(reply, c.body)
}

// assign sets *dst to src's value. src may be a pointer to dst's element
// type or a value of it; anything else is a caller bug that gob would
// have reported as a type mismatch, and is reported the same way.
func assign(dst, src any) error {
	dv := reflect.ValueOf(dst)
	if dv.Kind() != reflect.Pointer || dv.IsNil() {
		return errors.New("rpc: in-process call needs a non-nil pointer to receive into")
	}
	sv := reflect.ValueOf(src)
	if sv.Kind() == reflect.Pointer && sv.Type().Elem() == dv.Type().Elem() {
		if sv.IsNil() {
			return errors.New("rpc: in-process call with nil arguments")
		}
		sv = sv.Elem()
	}
	if !sv.IsValid() || sv.Type() != dv.Type().Elem() {
		return &typeMismatchError{want: dv.Type().Elem(), got: reflect.TypeOf(src)}
	}
	dv.Elem().Set(sv)
	return nil
}

type typeMismatchError struct{ want, got reflect.Type }

func (e *typeMismatchError) Error() string {
	return "rpc: in-process call: the endpoint takes " + e.want.String() + ", the caller passed " + typeName(e.got)
}

func typeName(t reflect.Type) string {
	if t == nil {
		return "nil"
	}
	return t.String()
}
