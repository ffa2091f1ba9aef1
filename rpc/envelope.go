package rpc

import (
	"errors"
	"strings"
	"time"
)

// This file holds the request and response envelopes every roster endpoint
// embeds. They carry exactly what Consul's HTTP layer turns into query
// parameters (?dc, ?stale, ?consistent, ?index, ?wait, ?token, ?filter) and
// X-Consul-* response headers (Index, KnownLeader, LastContact,
// Effective-Consistency), so httpapi can translate both ways without
// knowing any endpoint.

// Consul's error strings. The HTTP layer answers them with status 500 and
// the string as the body, and Consul clients match on the text, so they are
// reproduced verbatim. Errors that crossed a connection arrive as
// rpc.ServerError strings; IsNoLeader and IsNoPathToDatacenter match both
// forms.
var (
	// ErrNoLeader: no server of the datacenter currently knows a leader
	// (an election is running, or the cluster lost its quorum).
	ErrNoLeader = errors.New("No cluster leader")
	// ErrNoDCPath: the request named a datacenter no known server serves.
	ErrNoDCPath = errors.New("No path to datacenter")
)

// IsNoLeader reports whether err is, or carries the text of, ErrNoLeader.
func IsNoLeader(err error) bool { return matches(err, ErrNoLeader) }

// IsNoPathToDatacenter reports whether err is, or carries the text of,
// ErrNoDCPath.
func IsNoPathToDatacenter(err error) bool { return matches(err, ErrNoDCPath) }

func matches(err, target error) bool {
	if err == nil {
		return false
	}
	return errors.Is(err, target) || strings.Contains(err.Error(), target.Error())
}

// Info is what the forwarding logic needs to know about any request; the
// envelopes below implement it, and endpoint argument types get it by
// embedding one of them.
type Info interface {
	// RequestDatacenter is the datacenter the request is for ("" = local).
	RequestDatacenter() string
	// IsRead is true for reads (QueryOptions), false for writes.
	IsRead() bool
	// AllowStaleRead is true when any server may answer from its own state.
	AllowStaleRead() bool
}

// Effective consistency modes, reported as X-Consul-Effective-Consistency.
const (
	ConsistencyLeader     = "leader"
	ConsistencyStale      = "stale"
	ConsistencyConsistent = "consistent"
)

// QueryOptions is embedded by every read request.
type QueryOptions struct {
	// Datacenter to answer from ("" = the receiving server's own).
	Datacenter string
	// Token is the ACL secret (X-Consul-Token); ignored while ACLs are off.
	Token string

	// MinQueryIndex > 0 makes the read blocking: it returns once the result's
	// index exceeds MinQueryIndex or MaxQueryTime passes (?index=).
	MinQueryIndex uint64
	// MaxQueryTime bounds a blocking read (?wait=); 0 means the server
	// default (5m), values above the maximum (10m) are clamped.
	MaxQueryTime time.Duration

	// AllowStale lets any server answer from its local state (?stale).
	AllowStale bool
	// RequireConsistent makes the leader confirm its leadership with a
	// quorum (ReadIndex) before reading (?consistent).
	RequireConsistent bool
	// MaxStaleDuration bounds how far behind the leader a stale read may be
	// (?max_stale=); 0 means no bound. A follower further behind forwards
	// the read to the leader instead.
	MaxStaleDuration time.Duration

	// Filter is a ?filter= expression applied to the result by the endpoint.
	Filter string

	// ForwardHops counts server-to-server forwards of this request; see
	// MaxForwardHops. Set by Forwarder; callers leave it 0.
	ForwardHops uint8

	// readIndexed is set by Forwarder on the server that answers a
	// ?consistent read after a follower read round (follower_read.go): the
	// ReadIndex is done, Blocker must not run another. Never sent (gob
	// skips unexported fields).
	readIndexed bool
}

// RequestDatacenter implements Info.
func (q *QueryOptions) RequestDatacenter() string { return q.Datacenter }

// IsRead implements Info.
func (q *QueryOptions) IsRead() bool { return true }

// AllowStaleRead implements Info.
func (q *QueryOptions) AllowStaleRead() bool { return q.AllowStale }

// Validate rejects the one combination Consul answers with 400.
func (q *QueryOptions) Validate() error {
	if q.AllowStale && q.RequireConsistent {
		return errors.New("Cannot specify ?stale with ?consistent, conflicting semantics.")
	}
	if q.MaxQueryTime < 0 {
		return errors.New("Invalid wait time")
	}
	return nil
}

// Consistency is the mode the request asked for, as Consul reports it.
func (q *QueryOptions) Consistency() string {
	switch {
	case q.AllowStale:
		return ConsistencyStale
	case q.RequireConsistent:
		return ConsistencyConsistent
	default:
		return ConsistencyLeader
	}
}

// QueryMeta is embedded by every read response: the X-Consul-* headers.
type QueryMeta struct {
	// Index is the raft index of the data (X-Consul-Index). Never 0 on the
	// wire: Blocking rewrites 0 to 1 so ?index=0 clients do not spin.
	Index uint64
	// KnownLeader is whether the answering server knew a leader.
	KnownLeader bool
	// LastContact is how long ago the answering server heard from the
	// leader; 0 on the leader itself.
	LastContact time.Duration
	// Consistency is the effective consistency mode of the answer.
	Consistency string
}

// WriteRequest is embedded by every write request.
type WriteRequest struct {
	// Datacenter to apply the write in ("" = the receiving server's own).
	Datacenter string
	// Token is the ACL secret; ignored while ACLs are off.
	Token string
	// RequestID names this write across retries. The first server that
	// handles the write (Forwarder.Forward) fills it in if empty; retries and
	// forwarded copies keep it, and the FSM applies a given ID at most once
	// (see Dedup). Writes are therefore safe to retry on any error,
	// including a connection lost after the old leader appended the entry.
	RequestID string

	// ForwardHops counts server-to-server forwards of this request; see
	// MaxForwardHops. Set by Forwarder; callers leave it 0.
	ForwardHops uint8
}

// RequestDatacenter implements Info.
func (w *WriteRequest) RequestDatacenter() string { return w.Datacenter }

// IsRead implements Info.
func (w *WriteRequest) IsRead() bool { return false }

// AllowStaleRead implements Info: writes always go to the leader.
func (w *WriteRequest) AllowStaleRead() bool { return false }

// writeRequest lets Forward reach the embedded envelope of any write
// argument type to stamp its RequestID.
func (w *WriteRequest) writeRequest() *WriteRequest { return w }

// WriteMeta is embedded by write responses.
type WriteMeta struct {
	// Index is the raft index at which the write was applied.
	Index uint64
}

// queryOptions lets the forwarding and blocking code reach the embedded
// envelope of any read argument type.
func (q *QueryOptions) queryOptions() *QueryOptions { return q }

// forwardHops lets Forward count hops on any envelope.
func (q *QueryOptions) forwardHops() *uint8 { return &q.ForwardHops }
func (w *WriteRequest) forwardHops() *uint8 { return &w.ForwardHops }
