package httpapi

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"roster/catalog"
	"roster/rpc"
)

// /v1/session/*: sessions, the liveness leases behind KV locks.

// Consul's session defaults, applied before the body is read so that a
// body can override each of them (an explicit "LockDelay": 0 included).
const (
	defaultLockDelay  = 15 * time.Second
	serfHealthCheckID = "serfHealth"
)

// sessionCreateBody is Consul's create body. LockDelay is a duration
// string ("15s") or a number of nanoseconds; the Go client sends "<N>ms".
type sessionCreateBody struct {
	Name          string
	Node          string
	LockDelay     json.RawMessage
	Behavior      string
	TTL           string
	NodeChecks    []string
	ServiceChecks []catalog.ServiceCheck
	Checks        []string
}

func (s *Server) sessionCreate(_ http.ResponseWriter, r *http.Request, _ string) (any, error) {
	entry, err := s.decodeSessionCreate(r)
	if err != nil {
		return nil, err
	}
	args := rpc.SessionRequest{WriteRequest: s.parseWriteRequest(r),
		Op: catalog.SessionRequest{Verb: catalog.SessionCreate, Session: entry}}
	var id string
	if err := s.rpc(r, "Session.Apply", &args, &id); err != nil {
		return nil, err
	}
	return struct{ ID string }{id}, nil
}

// decodeSessionCreate reads the body over Consul's defaults: the agent's
// node, 15s lock delay, release, and the serfHealth node check unless the
// body names any checks itself (an explicit empty list means none).
func (s *Server) decodeSessionCreate(r *http.Request) (catalog.SessionEntry, error) {
	entry := catalog.SessionEntry{ID: rpc.NewRequestID(), Node: s.localNode(),
		LockDelay: defaultLockDelay, Behavior: catalog.SessionRelease}
	body, err := s.agentBody(r)
	if err != nil {
		return entry, err
	}
	var in sessionCreateBody
	var keys map[string]json.RawMessage
	if len(body) > 0 {
		if err := json.Unmarshal(body, &keys); err != nil {
			return entry, decodeError(err)
		}
		if err := json.Unmarshal(body, &in); err != nil {
			return entry, decodeError(err)
		}
	}
	namesChecks := false
	for k := range keys {
		namesChecks = namesChecks || isCheckField(k)
	}
	entry.Name = in.Name
	entry.Node = cmpOr(in.Node, entry.Node)
	entry.Behavior = cmpOr(in.Behavior, entry.Behavior)
	entry.TTL = in.TTL
	if len(in.LockDelay) > 0 && string(in.LockDelay) != "null" {
		if entry.LockDelay, err = parseLockDelay(in.LockDelay); err != nil {
			return entry, err
		}
	}
	entry.NodeChecks = []string{serfHealthCheckID}
	if namesChecks {
		entry.NodeChecks = append(append([]string{}, in.NodeChecks...), in.Checks...)
		entry.ServiceChecks = in.ServiceChecks
	}
	return entry, nil
}

func isCheckField(k string) bool {
	switch strings.ToLower(k) {
	case "checks", "nodechecks", "servicechecks":
		return true
	}
	return false
}

// parseLockDelay accepts "15s" or a number of nanoseconds; a bare number
// below a millisecond is taken as seconds, as Consul does for old clients.
func parseLockDelay(raw json.RawMessage) (time.Duration, error) {
	var str string
	if err := json.Unmarshal(raw, &str); err == nil {
		d, err := time.ParseDuration(str)
		if err != nil {
			return 0, errorf(http.StatusBadRequest, "Request decode failed: LockDelay %q is not a duration like \"15s\"", str)
		}
		return d, nil
	}
	n, err := strconv.ParseFloat(string(raw), 64)
	if err != nil {
		return 0, errorf(http.StatusBadRequest, "Request decode failed: LockDelay must be a duration string or a number of nanoseconds, got %s", raw)
	}
	d := time.Duration(n)
	if d > 0 && d < time.Millisecond {
		d *= time.Second
	}
	return d, nil
}

func (s *Server) sessionDestroy(_ http.ResponseWriter, r *http.Request, id string) (any, error) {
	if err := mustArg(id, "session"); err != nil {
		return nil, err
	}
	args := rpc.SessionRequest{WriteRequest: s.parseWriteRequest(r),
		Op: catalog.SessionRequest{Verb: catalog.SessionDestroy, Session: catalog.SessionEntry{ID: id}}}
	var out string
	if err := s.rpc(r, "Session.Apply", &args, &out); err != nil {
		return nil, err
	}
	return true, nil
}

// sessionRenew answers 404 for a session that is gone: the Go client maps
// it to "expired" and RenewPeriodic stops.
func (s *Server) sessionRenew(w http.ResponseWriter, r *http.Request, id string) (any, error) {
	reply, err := s.sessionRead(w, r, "Session.Renew", id)
	if err != nil {
		return nil, err
	}
	if len(reply) == 0 {
		return nil, errorf(http.StatusNotFound, "Session id '%s' not found", id)
	}
	return reply, nil
}

func (s *Server) sessionInfo(w http.ResponseWriter, r *http.Request, id string) (any, error) {
	return s.sessionRead(w, r, "Session.Get", id)
}

func (s *Server) sessionRead(w http.ResponseWriter, r *http.Request, method, id string) ([]catalog.SessionEntry, error) {
	opts, err := s.queryOptionsFor(r, id, "session")
	if err != nil {
		return nil, err
	}
	args := rpc.SessionSpecificRequest{QueryOptions: opts, SessionID: id}
	watch := catalog.WatchTable(catalog.TableSessions)
	if method == "Session.Renew" {
		watch = catalog.Watch{} // a write in a read's envelope: never waits
	}
	return s.sessionsRead(w, r, &args.QueryOptions, watch, method, &args)
}

// sessionsRead makes a blocking read of sessions and answers them with
// Consul's empty values.
func (s *Server) sessionsRead(w http.ResponseWriter, r *http.Request, opts *rpc.QueryOptions, watch catalog.Watch,
	method string, args any) ([]catalog.SessionEntry, error) {
	var reply rpc.IndexedSessions
	if err := s.blockingRead(w, r, opts, watch, method, args, &reply, &reply.QueryMeta); err != nil {
		return nil, err
	}
	return sessionsOut(reply.Sessions), nil
}

func (s *Server) sessionNode(w http.ResponseWriter, r *http.Request, node string) (any, error) {
	args, err := s.nodeRequest(r, node)
	if err != nil {
		return nil, err
	}
	return s.sessionsRead(w, r, &args.QueryOptions, catalog.WatchTable(catalog.TableSessions), "Session.NodeSessions", &args)
}

func (s *Server) sessionList(w http.ResponseWriter, r *http.Request, _ string) (any, error) {
	opts, err := s.parseQueryOptions(r)
	if err != nil {
		return nil, err
	}
	args := rpc.DCSpecificRequest{QueryOptions: opts}
	return s.sessionsRead(w, r, &args.QueryOptions, catalog.WatchTable(catalog.TableSessions), "Session.List", &args)
}

// sessionsOut gives sessions Consul's empty values ([] not null).
func sessionsOut(ss []catalog.SessionEntry) []catalog.SessionEntry {
	for i := range ss {
		ss[i].NodeChecks = nonNil(ss[i].NodeChecks)
	}
	return nonNil(ss)
}
