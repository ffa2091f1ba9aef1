package catalog

import (
	"maps"
	"slices"
	"time"
)

// The types in this file are what the HTTP API serializes. Their Go field
// names are Consul's JSON field names, so encoding/json produces Consul's
// wire shapes without tags (see the Consul API notes, sections 2, 3, 5, 6.3).
// Every value the store hands out is a deep copy: callers may modify it.

// Health statuses of a check. Maintenance is accepted on input and treated
// as critical, as Consul stores maintenance mode as a critical check.
const (
	HealthPassing     = "passing"
	HealthWarning     = "warning"
	HealthCritical    = "critical"
	HealthMaintenance = "maintenance"
	// HealthAny selects every check in ChecksInState.
	HealthAny = "any"
)

// Session behaviors: what happens to the keys a session holds when it is
// invalidated.
const (
	SessionRelease = "release"
	SessionDelete  = "delete"
)

// Node is a machine in the catalog (Consul's Node JSON).
type Node struct {
	ID              string
	Node            string
	Address         string
	Datacenter      string
	TaggedAddresses map[string]string
	Meta            map[string]string
	CreateIndex     uint64
	ModifyIndex     uint64
}

// Clone returns a deep copy.
func (n Node) Clone() Node {
	n.TaggedAddresses = maps.Clone(n.TaggedAddresses)
	n.Meta = maps.Clone(n.Meta)
	return n
}

// Weights are the DNS SRV weights of a service by health.
type Weights struct {
	Passing int
	Warning int
}

// ServiceAddress is one tagged address of a service.
type ServiceAddress struct {
	Address string
	Port    int
}

// NodeService is one service instance on a node (Consul's AgentService JSON;
// the name field is Service).
type NodeService struct {
	Kind              string `json:",omitempty"`
	ID                string
	Service           string
	Tags              []string
	Address           string
	TaggedAddresses   map[string]ServiceAddress `json:",omitempty"`
	Meta              map[string]string
	Port              int
	Weights           Weights
	EnableTagOverride bool
	CreateIndex       uint64
	ModifyIndex       uint64
}

// Clone returns a deep copy.
func (s NodeService) Clone() NodeService {
	s.Tags = slices.Clone(s.Tags)
	s.TaggedAddresses = maps.Clone(s.TaggedAddresses)
	s.Meta = maps.Clone(s.Meta)
	return s
}

// ServiceNode is a service instance joined with its node (Consul's
// CatalogService JSON, the elements of /v1/catalog/service/<name>).
type ServiceNode struct {
	ID                       string
	Node                     string
	Address                  string
	Datacenter               string
	TaggedAddresses          map[string]string
	NodeMeta                 map[string]string
	ServiceKind              string
	ServiceID                string
	ServiceName              string
	ServiceTags              []string
	ServiceAddress           string
	ServiceTaggedAddresses   map[string]ServiceAddress `json:",omitempty"`
	ServiceWeights           Weights
	ServiceMeta              map[string]string
	ServicePort              int
	ServiceEnableTagOverride bool
	CreateIndex              uint64
	ModifyIndex              uint64
}

// HealthCheckDefinition is how a check is run. Durations are Go duration
// strings ("10s"), as Consul serializes them.
type HealthCheckDefinition struct {
	HTTP                           string              `json:",omitempty"`
	Header                         map[string][]string `json:",omitempty"`
	Method                         string              `json:",omitempty"`
	Body                           string              `json:",omitempty"`
	TLSServerName                  string              `json:",omitempty"`
	TLSSkipVerify                  bool                `json:",omitempty"`
	TCP                            string              `json:",omitempty"`
	TCPUseTLS                      bool                `json:",omitempty"`
	UDP                            string              `json:",omitempty"`
	GRPC                           string              `json:",omitempty"`
	GRPCUseTLS                     bool                `json:",omitempty"`
	OSService                      string              `json:",omitempty"`
	Interval                       string              `json:",omitempty"`
	Timeout                        string              `json:",omitempty"`
	DeregisterCriticalServiceAfter string              `json:",omitempty"`
}

// HealthCheck is a node-level (ServiceID "") or service-level check
// (Consul's HealthCheck JSON).
type HealthCheck struct {
	Node        string
	CheckID     string
	Name        string
	Status      string
	Notes       string
	Output      string
	ServiceID   string
	ServiceName string
	ServiceTags []string
	Type        string
	Interval    string
	Timeout     string
	ExposedPort int
	Definition  HealthCheckDefinition
	CreateIndex uint64
	ModifyIndex uint64
}

// Clone returns a deep copy.
func (c HealthCheck) Clone() HealthCheck {
	c.ServiceTags = slices.Clone(c.ServiceTags)
	if c.Definition.Header != nil {
		h := make(map[string][]string, len(c.Definition.Header))
		for k, v := range c.Definition.Header {
			h[k] = slices.Clone(v)
		}
		c.Definition.Header = h
	}
	return c
}

// ServiceEntry is an instance with its node and every check that applies to
// it: the node-level checks and its own (Consul's /v1/health/service shape).
type ServiceEntry struct {
	Node    Node
	Service NodeService
	Checks  []HealthCheck
}

// NodeServices is a node with its services (/v1/catalog/node/<node>).
type NodeServices struct {
	Node     Node
	Services []NodeService
}

// KVPair is one key (Consul's KVPair JSON). Value is base64 in JSON.
type KVPair struct {
	LockIndex   uint64
	Key         string
	Flags       uint64
	Value       []byte
	Session     string `json:",omitempty"`
	CreateIndex uint64
	ModifyIndex uint64
}

// Clone returns a deep copy.
func (p KVPair) Clone() KVPair {
	p.Value = slices.Clone(p.Value)
	return p
}

// ServiceCheck names a service-level check a session is bound to.
type ServiceCheck struct {
	ID        string
	Namespace string
}

// SessionEntry is a session (Consul's SessionEntry JSON). LockDelay is a
// time.Duration, which encoding/json writes as integer nanoseconds, exactly
// what Consul's clients expect.
type SessionEntry struct {
	ID            string
	Name          string
	Node          string
	LockDelay     time.Duration
	Behavior      string
	TTL           string
	NodeChecks    []string
	ServiceChecks []ServiceCheck
	CreateIndex   uint64
	ModifyIndex   uint64
}

// Clone returns a deep copy.
func (s SessionEntry) Clone() SessionEntry {
	s.NodeChecks = slices.Clone(s.NodeChecks)
	s.ServiceChecks = slices.Clone(s.ServiceChecks)
	return s
}

// Coordinate is a network coordinate (Vivaldi) of a node.
type Coordinate struct {
	Vec        []float64
	Error      float64
	Adjustment float64
	Height     float64
}

// CoordinateEntry is a node's coordinate (Consul's CoordinateEntry JSON).
type CoordinateEntry struct {
	Node    string
	Segment string
	Coord   Coordinate
}

// Clone returns a deep copy.
func (c CoordinateEntry) Clone() CoordinateEntry {
	c.Coord.Vec = slices.Clone(c.Coord.Vec)
	return c
}
