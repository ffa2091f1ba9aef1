package rpc

import "net/rpc"

// Direct in-process calls. Server.Call runs net/rpc's dispatch so every
// endpoint works in-process without a line of glue, but that dispatch is
// reflective: a method lookup, reflect.New for arguments and reply, and a
// reflect.Value.Call whose frame layout lookup and deep stack made every
// call of a fresh goroutine copy its stack. Profiles of the cluster KV
// benchmarks put that at 5-8% of a server's CPU. The hottest methods (the
// KV verbs an HTTP request maps to one-to-one) are therefore also
// registered here as typed functions; Server.Call takes them when the
// caller's argument and reply types match, and falls back to net/rpc
// otherwise, with the same observable behaviour: the endpoint gets its own
// shallow copy of the arguments, reply is written only on success, and
// errors come back as rpc.ServerError.

// directMethod runs one endpoint method for Server.Call. ok is false when
// args or reply are not the method's types; the caller then uses net/rpc's
// dispatch, which reports the mismatch.
type directMethod func(args, reply any) (ok bool, err error)

// direct wraps an endpoint method of the usual net/rpc shape.
func direct[A, R any](m func(*A, *R) error) directMethod {
	return func(args, reply any) (bool, error) {
		a, okA := args.(*A)
		r, okR := reply.(*R)
		if !okA || !okR || a == nil || r == nil {
			return false, nil
		}
		argsCopy := *a
		var out R
		if err := m(&argsCopy, &out); err != nil {
			return true, rpc.ServerError(err.Error())
		}
		*r = out
		return true, nil
	}
}

// registerDirect adds typed entries for methods already registered with
// Register (their names must match the net/rpc ones).
func (s *Server) registerDirect(methods map[string]directMethod) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.direct == nil {
		s.direct = make(map[string]directMethod, len(methods))
	}
	for name, m := range methods {
		s.direct[name] = m
	}
}
