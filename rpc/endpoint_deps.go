package rpc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"roster/catalog"
	"roster/raft"
)

// The server endpoints (Catalog, Health, KVS, Session, Txn, Coordinate,
// Operator, Roster and Status.RaftStats) share one shape, the one
// status.go introduced:
//
//	forward first   Forwarder.Forward sends the call to another datacenter
//	                or to the leader, or says "answer it here";
//	write           validate with Consul's error texts, encode a catalog
//	                command, wrap it with the RequestID (dedup.go), Apply
//	                it through Raft and return the FSM's result;
//	read            Blocker.Query around a read of the local catalog with
//	                the matching catalog.Watch, so ?index= blocks until the
//	                result changes; ?filter=, node-meta, tag and ?near are
//	                applied to the result before it is returned.
//
// Everything an endpoint needs from the rest of the server arrives in
// EndpointDeps; RegisterEndpoints wires them all onto a Server.
//
// Reading order: this file (deps, the write and read steps), then
// endpoint_catalog.go (Catalog, Health), endpoint_kvs.go (KVS and the
// lock-delay rule), endpoint_txn.go (Txn), endpoint_session.go (Session),
// endpoint_misc.go (Coordinate, Roster's delta pulls), endpoint_operator.go
// (Operator, autopilot health, Status.RaftStats),
// endpoint_autopilot_state.go (autopilot's state),
// endpoint_autopilot_tracker.go (the leader's server health rounds the
// two answer from), endpoint_filter.go
// (?filter=, node-meta, ?near=) and endpoint_raft.go (the *raft.Node
// adapter). The tests run three real servers: endpoint_harness_test.go.
//
// Idempotency of writes is by request ID, not by construction (dedup.go):
// a write keeps the RequestID Forward gave it through every retry, hop and
// leadership change, and the FSM applies an ID once.

// RaftApplier proposes a command to the local Raft node and waits for its
// outcome: the index it committed at and what the FSM (a DedupFSM over the
// catalog) returned. A follower fails with an error wrapping
// raft.ErrNotLeader. RaftAdapter is the real one.
type RaftApplier interface {
	Apply(cmd []byte, timeout time.Duration) (index uint64, resp any, err error)
}

// RaftOperator is the membership and introspection side of the local Raft
// node, for the Operator endpoint and Status.RaftStats. RaftAdapter is the
// real one.
type RaftOperator interface {
	// Configuration is the configuration in force and its log index.
	Configuration() (raft.Configuration, uint64)
	// LocalID is this server's Raft ID.
	LocalID() string
	// LeaderID is the Raft ID of the leader this node knows ("" if none).
	LeaderID() string
	// RemoveServer removes a server from the configuration (leader only).
	RemoveServer(id string, timeout time.Duration) error
	// TransferLeadership hands leadership to voter id ("" = the most
	// up-to-date one) and returns once this node has stepped down.
	TransferLeadership(id string, timeout time.Duration) error
	// Stats is Consul's raft stat map (state, term, last_log_index,
	// last_contact, ...), a fresh copy.
	Stats() map[string]string
}

// SessionTimers are the leader's TTL clocks (owned by the agent). The
// Session endpoint arms one when a TTL session is created, re-arms it on
// renew and clears it on destroy. Calls must not block.
type SessionTimers interface {
	Reset(id string, ttl time.Duration)
	Clear(id string)
}

// EndpointDeps is everything the endpoints need. Required: Datacenter,
// Store, Raft, Operator, Cluster, Forwarder, Blocker. The rest have
// defaults.
type EndpointDeps struct {
	// Datacenter is this server's datacenter.
	Datacenter string
	// NodeName is this server's node name: the default Node of a session
	// created without one.
	NodeName string
	// Store is the local catalog, read by every read endpoint.
	Store *catalog.Store
	// Raft proposes writes; Operator answers the Operator endpoint.
	Raft     RaftApplier
	Operator RaftOperator
	// Cluster is the local Raft view (leadership, ReadIndex), the same one
	// Forwarder and Blocker use.
	Cluster   Cluster
	Forwarder *Forwarder
	Blocker   *Blocker
	// Caller reaches other servers (the autopilot tracker asks each for
	// Status.RaftStats). Optional: without it only this server is
	// probed and the others are reported unhealthy.
	Caller Caller
	// Datacenters lists every known datacenter for Catalog.ListDatacenters.
	// Optional: default is this one only.
	Datacenters func() []string
	// ServerName maps a Raft server ID to its node name (RaftServer.Node).
	// Optional: default is the ID itself.
	ServerName func(id string) string
	// SerfStatus reports a server's LAN membership status ("alive",
	// "failed", ...) by Raft ID. Optional: default "alive" for servers that
	// answered the health probe, "failed" for those that did not.
	SerfStatus func(id string) string
	// ServerVersion reports a server's build version by Raft ID (the
	// Version of autopilot's health and state, as Consul reports its
	// own). Optional: default the Raft protocol version the server's
	// stats carry.
	ServerVersion func(id string) string
	// Sessions are the leader's TTL clocks. Optional (nil: no TTL expiry).
	Sessions SessionTimers
	// AutopilotThresholds are the autopilot settings server health is
	// judged by (LastContactThreshold, MaxTrailingLogs), from the
	// replicated autopilot configuration. Optional: default Consul's 200ms
	// and 250.
	AutopilotThresholds func() (lastContact time.Duration, maxTrailingLogs uint64)
	// Autopilot tracks server health while this server leads; the owner
	// runs its Lead for each term of leadership, and Operator's autopilot
	// endpoints answer its state. Optional: default a tracker nobody
	// runs, whose state stays empty.
	Autopilot *AutopilotTracker
	// Clock is the wall clock, stamped on proposals (ProposedAt for the
	// dedup window) and used for autopilot's StableSince. Default time.Now.
	Clock func() time.Time
	// ApplyTimeout bounds handing a command to Raft. Default 10s.
	ApplyTimeout time.Duration
	// Logger receives the endpoints' log lines. Default slog.Default().
	Logger *slog.Logger
	// Ctx bounds forwarded calls and blocking reads; cancel it at
	// shutdown. Default context.Background().
	Ctx context.Context
}

// Validate names the first missing required field.
func (d EndpointDeps) Validate() error {
	switch {
	case d.Datacenter == "":
		return errors.New("rpc: EndpointDeps.Datacenter is required (the server's own datacenter)")
	case d.Store == nil:
		return errors.New("rpc: EndpointDeps.Store is required (the local catalog)")
	case d.Raft == nil:
		return errors.New("rpc: EndpointDeps.Raft is required (use NewRaftAdapter)")
	case d.Operator == nil:
		return errors.New("rpc: EndpointDeps.Operator is required (use NewRaftAdapter)")
	case d.Cluster == nil:
		return errors.New("rpc: EndpointDeps.Cluster is required (the local raft view)")
	case d.Forwarder == nil:
		return errors.New("rpc: EndpointDeps.Forwarder is required (NewForwarder)")
	case d.Blocker == nil:
		return errors.New("rpc: EndpointDeps.Blocker is required (NewBlocker)")
	case d.ApplyTimeout < 0:
		return fmt.Errorf("rpc: EndpointDeps.ApplyTimeout must be >= 0 (0 = 10s), got %v", d.ApplyTimeout)
	}
	return nil
}

func (d EndpointDeps) withDefaults() EndpointDeps {
	if d.Clock == nil {
		d.Clock = time.Now
	}
	if d.ApplyTimeout == 0 {
		d.ApplyTimeout = 10 * time.Second
	}
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	if d.Ctx == nil {
		d.Ctx = context.Background()
	}
	if d.Datacenters == nil {
		dc := d.Datacenter
		d.Datacenters = func() []string { return []string{dc} }
	}
	if d.ServerName == nil {
		d.ServerName = func(id string) string { return id }
	}
	if d.Autopilot == nil {
		d.Autopilot = NewAutopilotTracker(0)
	}
	return d
}

// RegisterEndpoints registers every endpoint on s: Status (Ping, Leader,
// Peers, RaftStats), Catalog, Health, KVS, Session, Txn, Coordinate,
// Operator and Roster. Do not also register Status yourself. The shared
// ReadIndex rounds of d.Blocker and d.Forwarder end with s (Server.Context).
func RegisterEndpoints(s *Server, d EndpointDeps) error {
	if err := d.Validate(); err != nil {
		return err
	}
	d = d.withDefaults()
	d.Blocker.bindLifetime(s.Context())
	d.Forwarder.bindLifetime(s.Context())
	c := &endpointCore{d: d}
	kvs, txn := &KVS{c: c}, &Txn{c: c}
	op := newOperator(c, d.Autopilot)
	if !d.Autopilot.op.CompareAndSwap(nil, op) {
		return errors.New("rpc: EndpointDeps.Autopilot is already registered with another server")
	}
	endpoints := []struct {
		name string
		rcvr any
	}{
		{"Status", &statusEndpoint{Status: NewStatus(d.Ctx, d.Cluster, d.Forwarder), c: c}},
		{"Catalog", &Catalog{c: c}},
		{"Health", &Health{c: c}},
		{"KVS", kvs},
		{"Session", &Session{c: c}},
		{"Txn", txn},
		{"Coordinate", &Coordinate{c: c}},
		{"Operator", op},
		{"Roster", &Roster{c: c}},
	}
	for _, e := range endpoints {
		if err := s.Register(e.name, e.rcvr); err != nil {
			return err
		}
	}
	s.registerDirect(map[string]directMethod{
		"KVS.Apply":    direct(kvs.Apply),
		"KVS.Get":      direct(kvs.Get),
		"KVS.List":     direct(kvs.List),
		"KVS.ListKeys": direct(kvs.ListKeys),
		"Txn.Apply":    direct(txn.Apply),
	})
	return nil
}

// endpointCore holds the dependencies and the write and read steps every
// endpoint shares.
type endpointCore struct {
	d EndpointDeps
}

// write runs the forward → apply pattern for one write method. apply runs
// on the leader; if it reports a lost leadership or a leadership transfer
// in progress (errLeaderMoved), the request is routed again after a
// backoff, within the forwarder's hold timeout, as a forwarded request
// would be. The RequestID Forward stamped stays the same across these
// rounds, so a command that did commit under the old leader is not
// applied twice.
func (c *endpointCore) write(method string, args Info, reply any, apply func() error) error {
	fwd := c.d.Forwarder
	holdDeadline := time.Now().Add(fwd.cfg.HoldTimeout)
	// Bounded: each round sleeps at least MinBackoff/2 and rounds stop
	// once the next sleep would pass the hold deadline.
	for attempt := 0; ; attempt++ {
		if done, err := fwd.Forward(c.d.Ctx, method, args, args, reply); done {
			return err
		}
		err := apply()
		if !errors.Is(err, errLeaderMoved) {
			return err
		}
		delay := fwd.backoff(attempt)
		if time.Now().Add(delay).After(holdDeadline) || !sleepCtx(c.d.Ctx, delay) {
			c.d.Logger.Warn("rpc: giving up a write after losing leadership", "method", method, "error", err)
			return ErrNoLeader
		}
	}
}

// errLeaderMoved marks a proposal refused or abandoned because this node
// stopped being the leader; write routes the request again.
var errLeaderMoved = errors.New("rpc: leadership moved during the write")

// propose applies cmd through Raft under the request's ID and returns the
// catalog's result. A command the FSM refused (Result.Err) is returned as
// the error, unwrapped of nothing: its text is what the client sees.
func (c *endpointCore) propose(w *WriteRequest, cmd catalog.Command) (catalog.Result, error) {
	return c.proposeAsync(w, cmd)()
}

// AsyncApplier is a RaftApplier that can also propose without waiting;
// the returned func waits for the outcome. RaftAdapter is one. Endpoints
// that propose several commands at once (KVS.ApplyBatch) use it so the
// commands enter Raft together; with a plain RaftApplier they are
// proposed one after the other.
type AsyncApplier interface {
	ApplyAsync(cmd []byte, timeout time.Duration) func() (index uint64, resp any, err error)
}

// proposeAsync is propose split in two: the command is handed to Raft
// now, the returned func waits for its result.
func (c *endpointCore) proposeAsync(w *WriteRequest, cmd catalog.Command) func() (catalog.Result, error) {
	data := EncodeCommand(w.RequestID, c.d.Clock(), catalog.EncodeCommand(cmd))
	if a, ok := c.d.Raft.(AsyncApplier); ok {
		wait := a.ApplyAsync(data, c.d.ApplyTimeout)
		return func() (catalog.Result, error) {
			_, resp, err := wait()
			return proposalResult(resp, err)
		}
	}
	_, resp, err := c.d.Raft.Apply(data, c.d.ApplyTimeout)
	return func() (catalog.Result, error) { return proposalResult(resp, err) }
}

// proposalResult turns what Raft and the FSM answered into the catalog's
// result and the error the endpoint returns.
func proposalResult(resp any, err error) (catalog.Result, error) {
	if err != nil {
		return catalog.Result{}, raftError(err)
	}
	switch r := resp.(type) {
	case catalog.Result:
		return r, r.Err
	case Duplicate:
		if res, ok := r.Result.(catalog.Result); ok && r.ResultKnown {
			return res, res.Err
		}
		// Restored from a snapshot: the write took effect at r.Index, its
		// outcome is unknown; report plain success.
		return catalog.Result{Index: r.Index, OK: true}, nil
	case error:
		return catalog.Result{}, r
	case nil:
		return catalog.Result{}, errors.New("rpc: the state machine returned no result for the command")
	}
	return catalog.Result{}, fmt.Errorf("rpc: unexpected state machine result %T", resp)
}

// raftError maps Raft's refusals to what the caller can act on: losing
// leadership becomes errLeaderMoved (retried through Forward), anything
// else keeps its text.
func raftError(err error) error {
	switch {
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipLost),
		errors.Is(err, raft.ErrLeadershipTransferInProgress):
		return fmt.Errorf("%w: %v", errLeaderMoved, err)
	}
	return err
}

// read runs one read method's local part under the Blocker: run fills the
// reply and returns its index; watch names what the result depends on, so
// a blocking query wakes on exactly those changes.
func (c *endpointCore) read(opts *QueryOptions, meta *QueryMeta, watch catalog.Watch, run func() (uint64, error)) error {
	ctx := c.d.Ctx
	if opts.MinQueryIndex > 0 {
		// Only a blocking read starts watcher goroutines to end; the others
		// skip registering a child context with the server's, a lock and
		// map insert and delete per read.
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		defer cancel() // ends the watcher goroutine of the last round
	}
	return c.d.Blocker.Query(ctx, opts, meta, func() (uint64, <-chan struct{}, error) {
		idx, err := run()
		if err != nil {
			return 0, nil, err
		}
		if opts.MinQueryIndex == 0 || max(idx, 1) > opts.MinQueryIndex {
			return idx, nil, nil // answered now: nothing to watch
		}
		return idx, c.changed(ctx, watch, idx), nil
	})
}

// changed returns a channel closed once watch's index passes idx (or ctx
// ends). catalog.Store.Wait blocks; this turns it into the channel shape
// Blocker wants, with one goroutine per blocked round that ends with ctx.
func (c *endpointCore) changed(ctx context.Context, watch catalog.Watch, idx uint64) <-chan struct{} {
	ch := make(chan struct{})
	go func() {
		// On ctx's end the channel stays open: Blocker sees ctx.Done itself
		// and must not mistake the shutdown for a change.
		if _, err := c.d.Store.Wait(ctx, watch, idx); err == nil {
			close(ch)
		}
	}()
	return ch
}
