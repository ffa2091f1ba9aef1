package rpc

import (
	"errors"
	"fmt"
	"time"

	"roster/catalog"
)

// Session is the "Session" endpoint (Consul's Session.*): the leases
// behind KV locks.
//
// Defaults. The HTTP layer fills Consul's create defaults (LockDelay 15s,
// NodeChecks [serfHealth]) before decoding the body, because only it can
// tell "field absent" from "field set to zero": gob, which carries these
// requests, sends neither zero values nor empty slices, so an explicit
// "LockDelay": 0 or "NodeChecks": [] (api.Session.CreateNoChecks) would be
// indistinguishable from an unset field here. This endpoint fills what is
// unambiguous: the ID, the Node (this server's) and the Behavior
// (release), and caps LockDelay at 60s.
type Session struct {
	c *endpointCore
}

// Apply creates or destroys a session; the reply is its ID.
func (e *Session) Apply(args *SessionRequest, reply *string) error {
	// The ID is chosen before forwarding, so every retry and hop of one
	// create carries the same ID and the same RequestID.
	if args.Op.Verb == catalog.SessionCreate && args.Op.Session.ID == "" {
		args.Op.Session.ID = NewRequestID()
	}
	if args.Op.Verb == catalog.SessionCreate && args.Op.Session.Node == "" {
		args.Op.Session.Node = e.c.d.NodeName
	}
	return e.c.write("Session.Apply", args, reply, func() error {
		ttl, err := e.validate(&args.Op)
		if err != nil {
			return err
		}
		res, err := e.c.propose(&args.WriteRequest, &args.Op)
		if err != nil {
			return err
		}
		*reply = args.Op.Session.ID
		if res.Session != nil {
			*reply = res.Session.ID
		}
		e.afterApply(&args.Op, ttl)
		return nil
	})
}

// validate is Consul's Session.Apply argument check, with its texts, plus
// the leader-side checks of the state store (node registered, checks not
// critical) so that a doomed create never reaches the log. It returns the
// parsed TTL.
func (e *Session) validate(op *catalog.SessionRequest) (time.Duration, error) {
	s := &op.Session
	switch op.Verb {
	case catalog.SessionDestroy:
		if s.ID == "" {
			return 0, errors.New("Must provide ID")
		}
		return 0, nil
	case catalog.SessionCreate:
	default:
		return 0, fmt.Errorf("Invalid session operation %q; use create or destroy", op.Verb)
	}
	if s.Node == "" {
		return 0, errors.New("Must provide Node")
	}
	switch s.Behavior {
	case "":
		s.Behavior = catalog.SessionRelease
	case catalog.SessionRelease, catalog.SessionDelete:
	default:
		return 0, fmt.Errorf("Invalid Behavior setting '%s'", s.Behavior)
	}
	s.LockDelay = min(max(s.LockDelay, 0), catalog.MaxLockDelay)
	var ttl time.Duration
	if s.TTL != "" {
		var err error
		if ttl, err = time.ParseDuration(s.TTL); err != nil {
			return 0, fmt.Errorf("Session TTL '%s' invalid: %v", s.TTL, err)
		}
		if ttl != 0 && (ttl < catalog.SessionTTLMin || ttl > catalog.SessionTTLMax) {
			return 0, fmt.Errorf("Invalid Session TTL '%d', must be between [%v=%v]",
				ttl, catalog.SessionTTLMin, catalog.SessionTTLMax)
		}
	}
	return ttl, e.checkNodeAndChecks(s)
}

// checkNodeAndChecks: the session's node must be registered and every
// check it is bound to must exist and not be critical (Consul's state
// store refuses otherwise; the FSM re-checks at apply time).
func (e *Session) checkNodeAndChecks(s *catalog.SessionEntry) error {
	ns, _ := e.c.d.Store.NodeServices(s.Node)
	if ns == nil {
		return fmt.Errorf("Missing node registration: node %q is not in the catalog", s.Node)
	}
	checks, _ := e.c.d.Store.NodeChecks(s.Node)
	byID := make(map[string]catalog.HealthCheck, len(checks))
	for _, c := range checks {
		byID[c.CheckID] = c
	}
	ids := append([]string(nil), s.NodeChecks...)
	for _, sc := range s.ServiceChecks {
		ids = append(ids, sc.ID)
	}
	for _, id := range ids {
		c, ok := byID[id]
		if !ok {
			return fmt.Errorf("Missing check '%s' registration", id)
		}
		if c.Status == catalog.HealthCritical || c.Status == catalog.HealthMaintenance {
			return fmt.Errorf("Check '%s' is in %s state", id, c.Status)
		}
	}
	return nil
}

// afterApply arms or clears the leader's TTL clock.
func (e *Session) afterApply(op *catalog.SessionRequest, ttl time.Duration) {
	timers := e.c.d.Sessions
	if timers == nil {
		return
	}
	switch {
	case op.Verb == catalog.SessionCreate && ttl > 0:
		timers.Reset(op.Session.ID, ttl)
	case op.Verb == catalog.SessionDestroy:
		timers.Clear(op.Session.ID)
	}
}

// Get returns one session (empty if it does not exist).
func (e *Session) Get(args *SessionSpecificRequest, reply *IndexedSessions) error {
	if done, err := e.c.d.Forwarder.Forward(e.c.d.Ctx, "Session.Get", args, args, reply); done {
		return err
	}
	store := e.c.d.Store
	return e.c.read(&args.QueryOptions, &reply.QueryMeta, catalog.WatchTable(catalog.TableSessions), func() (uint64, error) {
		s, idx := store.Session(args.SessionID)
		reply.Sessions = []catalog.SessionEntry{}
		if s != nil {
			reply.Sessions = append(reply.Sessions, *s)
		}
		return idx, nil
	})
}

// List returns every session.
func (e *Session) List(args *DCSpecificRequest, reply *IndexedSessions) error {
	if done, err := e.c.d.Forwarder.Forward(e.c.d.Ctx, "Session.List", args, args, reply); done {
		return err
	}
	return e.list(&args.QueryOptions, reply, func() ([]catalog.SessionEntry, uint64) { return e.c.d.Store.Sessions() })
}

// NodeSessions returns the sessions of one node.
func (e *Session) NodeSessions(args *NodeSpecificRequest, reply *IndexedSessions) error {
	if done, err := e.c.d.Forwarder.Forward(e.c.d.Ctx, "Session.NodeSessions", args, args, reply); done {
		return err
	}
	if args.Node == "" {
		return errors.New("Must provide node")
	}
	return e.list(&args.QueryOptions, reply, func() ([]catalog.SessionEntry, uint64) {
		return e.c.d.Store.NodeSessions(args.Node)
	})
}

func (e *Session) list(opts *QueryOptions, reply *IndexedSessions, get func() ([]catalog.SessionEntry, uint64)) error {
	f, err := compileFilter(opts.Filter, catalog.SessionEntry{})
	if err != nil {
		return err
	}
	return e.c.read(opts, &reply.QueryMeta, catalog.WatchTable(catalog.TableSessions), func() (uint64, error) {
		sessions, idx := get()
		if sessions, err = applyFilter(f, sessions); err != nil {
			return 0, err
		}
		reply.Sessions = sessions
		return idx, nil
	})
}

// Renew restarts a session's TTL clock on the leader (the clocks live
// there) and returns the session, or an empty list if it is gone (HTTP
// 404, which stops the Go client's RenewPeriodic). Renewal is not written
// to the log: as in Consul, only the leader's timer cares.
func (e *Session) Renew(args *SessionSpecificRequest, reply *IndexedSessions) error {
	args.AllowStale, args.MinQueryIndex = false, 0
	if done, err := e.c.d.Forwarder.Forward(e.c.d.Ctx, "Session.Renew", args, args, reply); done {
		return err
	}
	if args.SessionID == "" {
		return errors.New("Must provide ID")
	}
	store := e.c.d.Store
	return e.c.read(&args.QueryOptions, &reply.QueryMeta, catalog.WatchTable(catalog.TableSessions), func() (uint64, error) {
		s, idx := store.Session(args.SessionID)
		reply.Sessions = []catalog.SessionEntry{}
		if s == nil {
			return idx, nil
		}
		reply.Sessions = append(reply.Sessions, *s)
		if ttl, err := time.ParseDuration(s.TTL); err == nil && ttl > 0 && e.c.d.Sessions != nil {
			e.c.d.Sessions.Reset(s.ID, ttl)
		}
		return idx, nil
	})
}
