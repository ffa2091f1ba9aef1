package rpc

import (
	"time"

	"roster/catalog"
)

// This file is the contract between the HTTP (and DNS, CLI) side and the
// server endpoints: one argument and one reply type per endpoint method,
// named after Consul's so a reader of Consul's agent/structs finds their
// way. Reads embed QueryOptions/QueryMeta, writes WriteRequest; the
// endpoint method names are listed next to each type.
//
// Endpoints apply QueryOptions.Filter (a ?filter= expression, see
// catalog.CompileFilter) to their result before replying, as Consul's do,
// and report a bad expression as an error whose text starts with
// "Failed to create boolean expression evaluator" (HTTP 400).

// ---- Catalog --------------------------------------------------------------

// RegisterRequest is Catalog.Register's argument (reply: *struct{}).
type RegisterRequest struct {
	WriteRequest
	Register catalog.RegisterRequest
}

// DeregisterRequest is Catalog.Deregister's argument (reply: *struct{}).
type DeregisterRequest struct {
	WriteRequest
	Deregister catalog.DeregisterRequest
}

// NodesRequest lists nodes or services of a datacenter: Catalog.ListNodes
// (reply *IndexedNodes) and Catalog.ListServices (reply *IndexedServices).
type NodesRequest struct {
	QueryOptions
	// NodeMetaFilters keeps only nodes whose Meta has every pair (?node-meta=k:v).
	NodeMetaFilters map[string]string
	// Near sorts by estimated round-trip time from this node (?near=); "" keeps name order.
	Near string
}

// ServiceSpecificRequest selects the instances of one service:
// Catalog.ServiceNodes (reply *IndexedServiceNodes), Health.ServiceNodes
// (reply *IndexedCheckServiceNodes), Health.ServiceChecks (reply
// *IndexedHealthChecks).
type ServiceSpecificRequest struct {
	QueryOptions
	ServiceName string
	// ServiceTags must all be present on an instance (?tag=, repeatable).
	ServiceTags []string
	// PassingOnly drops instances with any non-passing check (?passing).
	PassingOnly     bool
	NodeMetaFilters map[string]string
	Near            string
}

// NodeSpecificRequest names one node: Catalog.NodeServices (reply
// *IndexedNodeServices), Health.NodeChecks (reply *IndexedHealthChecks),
// Session.NodeSessions (reply *IndexedSessions).
type NodeSpecificRequest struct {
	QueryOptions
	Node string
}

// ChecksInStateRequest is Health.ChecksInState's argument (reply
// *IndexedHealthChecks). State is any, passing, warning or critical.
type ChecksInStateRequest struct {
	QueryOptions
	State           string
	NodeMetaFilters map[string]string
	Near            string
}

// IndexedNodes is Catalog.ListNodes' reply.
type IndexedNodes struct {
	QueryMeta
	Nodes []catalog.Node
}

// IndexedServices is Catalog.ListServices' reply: name -> union of tags.
type IndexedServices struct {
	QueryMeta
	Services map[string][]string
}

// IndexedServiceNodes is Catalog.ServiceNodes' reply.
type IndexedServiceNodes struct {
	QueryMeta
	ServiceNodes []catalog.ServiceNode
}

// IndexedNodeServices is Catalog.NodeServices' reply; nil when the node is
// unknown (Consul answers `null` with 200).
type IndexedNodeServices struct {
	QueryMeta
	NodeServices *catalog.NodeServices
}

// ---- Health ---------------------------------------------------------------

// IndexedHealthChecks is the reply of Health.NodeChecks, ServiceChecks and
// ChecksInState.
type IndexedHealthChecks struct {
	QueryMeta
	HealthChecks []catalog.HealthCheck
}

// IndexedCheckServiceNodes is Health.ServiceNodes' reply.
type IndexedCheckServiceNodes struct {
	QueryMeta
	Nodes []catalog.ServiceEntry
}

// ---- KV -------------------------------------------------------------------

// KVSRequest is KVS.Apply's argument; the reply (*bool) is Consul's
// true/false answer (false: a CAS, lock or unlock did not apply).
type KVSRequest struct {
	WriteRequest
	Op catalog.KVRequest
}

// KeyRequest names a key (KVS.Get) or a prefix (KVS.List); reply
// *IndexedDirEntries.
type KeyRequest struct {
	QueryOptions
	Key string
}

// KeyListRequest is KVS.ListKeys' argument (reply *IndexedKeyList).
type KeyListRequest struct {
	QueryOptions
	Prefix    string
	Separator string
}

// IndexedDirEntries is the reply of KVS.Get and KVS.List; Entries is empty
// when nothing matched (HTTP 404).
type IndexedDirEntries struct {
	QueryMeta
	Entries []catalog.KVPair
}

// IndexedKeyList is KVS.ListKeys' reply.
type IndexedKeyList struct {
	QueryMeta
	Keys []string
}

// ---- Sessions -------------------------------------------------------------

// SessionRequest is Session.Apply's argument (create or destroy; reply
// *string: the session ID). The endpoint fills defaults (Node = the
// agent's node, LockDelay 15s, Behavior release, NodeChecks [serfHealth])
// and validates as Consul does before proposing.
type SessionRequest struct {
	WriteRequest
	Op catalog.SessionRequest
}

// SessionSpecificRequest names a session: Session.Get and Session.Renew
// (reply *IndexedSessions; empty when the session does not exist, which
// renew reports as HTTP 404).
type SessionSpecificRequest struct {
	QueryOptions
	SessionID string
}

// IndexedSessions is the reply of the Session read endpoints and
// Session.List (argument *DCSpecificRequest).
type IndexedSessions struct {
	QueryMeta
	Sessions []catalog.SessionEntry
}

// ---- Transactions ---------------------------------------------------------

// TxnRequest is Txn.Apply's argument (reply *TxnResponse).
type TxnRequest struct {
	WriteRequest
	Ops []catalog.TxnOp
}

// TxnReadRequest is Txn.Read's argument for transactions of reads only
// (reply *TxnResponse); consistency options apply.
type TxnReadRequest struct {
	QueryOptions
	Ops []catalog.TxnOp
}

// TxnResponse carries Results on success, Errors on rollback (HTTP 409).
type TxnResponse struct {
	QueryMeta
	catalog.TxnResponse
}

// ---- Coordinates ----------------------------------------------------------

// CoordinateUpdateRequest is Coordinate.Update's argument (reply *struct{}).
type CoordinateUpdateRequest struct {
	WriteRequest
	Updates []catalog.CoordinateEntry
}

// IndexedCoordinates is Coordinate.ListNodes' reply (argument
// *DCSpecificRequest).
type IndexedCoordinates struct {
	QueryMeta
	Coordinates []catalog.CoordinateEntry
}

// ---- Operator -------------------------------------------------------------

// RaftServer is one server of the Raft configuration, in Consul's shape
// (/v1/operator/raft/configuration).
type RaftServer struct {
	ID              string
	Node            string
	Address         string
	Leader          bool
	ProtocolVersion string
	Voter           bool
	LastIndex       uint64
}

// RaftConfigurationResponse is Operator.RaftGetConfiguration's reply
// (argument *DCSpecificRequest).
type RaftConfigurationResponse struct {
	Servers []RaftServer
	Index   uint64
}

// RaftRemovePeerRequest is the argument of Operator.RaftRemovePeerByID and
// Operator.RaftRemovePeerByAddress (reply *struct{}); exactly one of ID and
// Address is set.
type RaftRemovePeerRequest struct {
	WriteRequest
	ID      string
	Address string
}

// RaftTransferLeaderRequest is Operator.RaftTransferLeader's argument
// (reply *bool); ID "" lets the leader pick the most up-to-date voter.
type RaftTransferLeaderRequest struct {
	WriteRequest
	ID string
}

// ServerHealth is one server in Operator.AutopilotServerHealth's reply.
type ServerHealth struct {
	ID          string
	Name        string
	Address     string
	SerfStatus  string
	Version     string
	Leader      bool
	LastContact string // a Go duration string, e.g. "12ms"
	LastTerm    uint64
	LastIndex   uint64
	Healthy     bool
	Voter       bool
	StableSince string // RFC 3339
}

// OperatorHealthReply is Operator.AutopilotServerHealth's reply (argument
// *DCSpecificRequest); HTTP answers 200 when Healthy, else 429.
type OperatorHealthReply struct {
	Healthy          bool
	FailureTolerance int
	Servers          []ServerHealth
}

// AutopilotStateReply is Operator.AutopilotState's reply (argument
// *DCSpecificRequest) in the JSON shape of Consul's api.AutopilotState
// (GET /v1/operator/autopilot/state). Consul's community edition leaves
// out ReadReplicas, RedundancyZones and Upgrade (enterprise features), and
// so does roster: the fields are absent, as they are from Consul's JSON.
type AutopilotStateReply struct {
	Healthy          bool
	FailureTolerance int
	// OptimisticFailureTolerance equals FailureTolerance without
	// redundancy zones (Consul's community edition sets it so).
	OptimisticFailureTolerance int
	Servers                    map[string]AutopilotServer // by Raft ID
	Leader                     string
	// Voters are the voting servers' IDs in raft-autopilot's order (the
	// leader first, then healthy before unhealthy; sortVoters).
	Voters []string
}

// AutopilotServer is one server of AutopilotStateReply (Consul's
// api.AutopilotServer).
type AutopilotServer struct {
	ID         string
	Name       string
	Address    string
	NodeStatus string // alive, failed, left or unknown, from gossip
	Version    string // the server's build version
	// LastContact is a Go duration string: time since the server last
	// heard from the leader ("0s" for the leader, and for a server that
	// never did or did not answer the probe).
	LastContact string
	LastTerm    uint64
	LastIndex   uint64
	Healthy     bool
	StableSince time.Time // when Healthy last changed
	ReadReplica bool
	Status      string            // leader, voter or non-voter
	Meta        map[string]string // the server node's catalog meta
	NodeType    string            // "voter": every server may vote
}

// ---- Delta pulls (roster's own) -------------------------------------------

// RegistryResponse is Roster.Registry's reply (argument *DCSpecificRequest):
// the full registry with its index and hashcode.
type RegistryResponse struct {
	QueryMeta
	Registry catalog.Registry
}

// DeltaRequest is Roster.Delta's argument: changes after Since. Blocking
// works as for every read: MinQueryIndex = Since waits for the next change.
type DeltaRequest struct {
	QueryOptions
	Since uint64
}

// DeltaResponse is Roster.Delta's reply. Truncated means Since fell out of
// the delta ring (HTTP 410 Gone): pull the full registry.
type DeltaResponse struct {
	QueryMeta
	Delta     catalog.Delta
	Truncated bool
}
