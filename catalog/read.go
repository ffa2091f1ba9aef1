package catalog

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
)

// Reader is the read side of the catalog, what the HTTP API, DNS and RPC
// endpoints use. Every method returns deep copies and the index to report
// as X-Consul-Index — the same index Wait uses for the matching Watch, so a
// blocking query is: read → Wait(ctx, watch, index) → read again. (The HTTP
// layer reports at least 1, as Consul does; an empty store's index is 0.)
// *Store implements it. A consumer that needs less asks for one of the
// smaller interfaces it is made of, so its fakes stay small (DNS needs only
// HealthReader).
type Reader interface {
	Watcher
	CatalogReader
	HealthReader
	KVReader
	SessionReader
	DeltaReader
	Coordinates() ([]CoordinateEntry, uint64)
}

// Watcher is the blocking-query primitive.
type Watcher interface {
	LastIndex() uint64
	Index(w Watch) uint64
	Wait(ctx context.Context, w Watch, minIndex uint64) (uint64, error)
}

// CatalogReader serves /v1/catalog.
type CatalogReader interface {
	Nodes() ([]Node, uint64)
	NodeServices(node string) (*NodeServices, uint64)
	Services() (map[string][]string, uint64)
	ServiceNodes(service string, tags []string) ([]ServiceNode, uint64)
}

// HealthReader serves /v1/health and DNS.
type HealthReader interface {
	CheckServiceNodes(service string, tags []string, passingOnly bool) ([]ServiceEntry, uint64)
	NodeChecks(node string) ([]HealthCheck, uint64)
	ServiceChecks(service string) ([]HealthCheck, uint64)
	ChecksInState(status string) ([]HealthCheck, uint64, error)
}

// KVReader serves /v1/kv reads.
type KVReader interface {
	KVGet(key string) (*KVPair, uint64)
	KVList(prefix string) ([]KVPair, uint64)
	KVKeys(prefix, separator string) ([]string, uint64)
}

// SessionReader serves /v1/session reads.
type SessionReader interface {
	Session(id string) (*SessionEntry, uint64)
	Sessions() ([]SessionEntry, uint64)
	NodeSessions(node string) ([]SessionEntry, uint64)
}

// DeltaReader serves roster's delta pulls: a full Registry, then Since
// (blocking on WatchRegistry) from its Index onwards.
type DeltaReader interface {
	Registry() Registry
	Since(index uint64) (Delta, error)
	Hash() string
}

var _ Reader = (*Store)(nil)

// LastIndex is the raft index of the last applied entry.
func (s *Store) LastIndex() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.st.index
}

// Nodes lists all nodes sorted by name.
func (s *Store) Nodes() ([]Node, uint64) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]Node, 0, len(s.st.nodes))
	for _, n := range s.st.nodes {
		out = append(out, n.Clone())
	}
	slices.SortFunc(out, func(a, b Node) int { return cmp.Compare(a.Node, b.Node) })
	return out, s.st.tableIndex[TableNodes]
}

// NodeServices returns a node and its services sorted by ID, or nil if the
// node is unknown (Consul answers null with 200).
func (s *Store) NodeServices(node string) (*NodeServices, uint64) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	idx := s.indexOf(WatchNode(node))
	node = s.st.nodeName(node)
	n := s.st.nodes[node]
	if n == nil {
		return nil, idx
	}
	out := &NodeServices{Node: n.Clone()}
	for _, id := range s.st.nodeServiceIDs(node) {
		out.Services = append(out.Services, s.st.service(node, id).Clone())
	}
	return out, idx
}

// Services maps each service name to the union of its instances' tags,
// sorted (/v1/catalog/services).
func (s *Store) Services() (map[string][]string, uint64) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make(map[string][]string, len(s.st.byService))
	for name, set := range s.st.byService {
		var tags []string
		for _, slots := range set {
			for _, slot := range slots {
				for _, tag := range slot.svc.Tags {
					if !slices.Contains(tags, tag) {
						tags = append(tags, tag)
					}
				}
			}
		}
		slices.Sort(tags)
		if tags == nil {
			tags = []string{}
		}
		out[name] = tags
	}
	return out, s.st.tableIndex[TableServices]
}

// hasTags reports whether svc carries every tag (case-insensitively, as
// Consul's tag filter).
func hasTags(svc *NodeService, tags []string) bool {
	for _, want := range tags {
		if !slices.ContainsFunc(svc.Tags, func(t string) bool { return strings.EqualFold(t, want) }) {
			return false
		}
	}
	return true
}

// instancesOf returns the keys of service's instances carrying tags, sorted
// by node and ID. Caller holds s.mu.
func (s *Store) instancesOf(service string, tags []string) []InstanceKey {
	var keys []InstanceKey
	for _, name := range s.st.serviceFold[foldName(service)] {
		for node, slots := range s.st.byService[name] {
			for _, slot := range slots {
				if hasTags(slot.svc, tags) {
					keys = append(keys, InstanceKey{Node: node, ID: slot.svc.ID})
				}
			}
		}
	}
	slices.SortFunc(keys, func(a, b InstanceKey) int {
		return cmp.Or(cmp.Compare(a.Node, b.Node), cmp.Compare(a.ID, b.ID))
	})
	return keys
}

// ServiceNodes lists service's instances having all tags, joined with their
// nodes (/v1/catalog/service/<name>), sorted by node name.
func (s *Store) ServiceNodes(service string, tags []string) ([]ServiceNode, uint64) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	keys := s.instancesOf(service, tags)
	out := make([]ServiceNode, 0, len(keys))
	for _, k := range keys {
		out = append(out, serviceNode(s.st.nodes[k.Node], s.st.service(k.Node, k.ID)))
	}
	return out, s.indexOf(WatchService(service))
}

func serviceNode(n *Node, svc *NodeService) ServiceNode {
	nc, sc := n.Clone(), svc.Clone()
	return ServiceNode{
		ID: nc.ID, Node: nc.Node, Address: nc.Address, Datacenter: nc.Datacenter,
		TaggedAddresses: nc.TaggedAddresses, NodeMeta: nc.Meta,
		ServiceKind: sc.Kind, ServiceID: sc.ID, ServiceName: sc.Service, ServiceTags: sc.Tags,
		ServiceAddress: sc.Address, ServiceTaggedAddresses: sc.TaggedAddresses,
		ServiceWeights: sc.Weights, ServiceMeta: sc.Meta, ServicePort: sc.Port,
		ServiceEnableTagOverride: sc.EnableTagOverride,
		CreateIndex:              sc.CreateIndex, ModifyIndex: sc.ModifyIndex,
	}
}

// CheckServiceNodes lists service's instances having all tags with their
// node and every check that applies (node-level and their own), sorted by
// node name (/v1/health/service/<name>). passingOnly drops an instance if
// any of its checks is not passing.
func (s *Store) CheckServiceNodes(service string, tags []string, passingOnly bool) ([]ServiceEntry, uint64) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	keys := s.instancesOf(service, tags)
	out := make([]ServiceEntry, 0, len(keys))
	for _, k := range keys {
		checks := s.instanceChecks(k)
		if passingOnly && slices.ContainsFunc(checks, func(c HealthCheck) bool { return c.Status != HealthPassing }) {
			continue
		}
		out = append(out, ServiceEntry{
			Node:    s.st.nodes[k.Node].Clone(),
			Service: s.st.service(k.Node, k.ID).Clone(),
			Checks:  checks,
		})
	}
	return out, s.indexOf(WatchService(service))
}

// instanceChecks copies the checks of instance k, sorted by check ID.
func (s *Store) instanceChecks(k InstanceKey) []HealthCheck {
	checks := make([]HealthCheck, 0, len(s.st.checks[k.Node]))
	for _, id := range sortedKeys(s.st.checks[k.Node]) {
		c := s.st.checks[k.Node][id].rec
		if sid := c.serviceID(); sid == "" || sid == k.ID {
			checks = append(checks, c.check(k.Node))
		}
	}
	return checks
}

// NodeChecks lists a node's checks, node-level and service-level, by ID.
func (s *Store) NodeChecks(node string) ([]HealthCheck, uint64) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := []HealthCheck{}
	node = s.st.nodeName(node)
	for _, id := range sortedKeys(s.st.checks[node]) {
		out = append(out, s.st.checks[node][id].rec.check(node))
	}
	return out, s.indexOf(WatchNode(node))
}

// ServiceChecks lists the checks of every instance of service (its own
// checks, not the node-level ones), sorted by node and check ID.
func (s *Store) ServiceChecks(service string) ([]HealthCheck, uint64) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := []HealthCheck{}
	for _, k := range s.instancesOf(service, nil) {
		for _, id := range sortedKeys(s.st.checks[k.Node]) {
			if c := s.st.checks[k.Node][id].rec; c.serviceID() == k.ID {
				out = append(out, c.check(k.Node))
			}
		}
	}
	return out, s.indexOf(WatchService(service))
}

// ChecksInState lists the checks with status (or all, for HealthAny),
// sorted by node and check ID.
func (s *Store) ChecksInState(status string) ([]HealthCheck, uint64, error) {
	switch status {
	case HealthAny, HealthPassing, HealthWarning, HealthCritical:
	default:
		return nil, 0, fmt.Errorf("catalog: Invalid state %q; use any, passing, warning or critical", status)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := []HealthCheck{}
	for _, node := range sortedKeys(s.st.checks) {
		for _, id := range sortedKeys(s.st.checks[node]) {
			if c := s.st.checks[node][id].rec; status == HealthAny || statusName(c.status) == status {
				out = append(out, c.check(node))
			}
		}
	}
	return out, s.st.tableIndex[TableChecks], nil
}

// KVGet returns a key's pair, or nil, with the key's index.
func (s *Store) KVGet(key string) (*KVPair, uint64) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	idx := s.indexOf(WatchKVKey(key))
	p := s.st.kv[key]
	if p == nil {
		return nil, idx
	}
	c := p.Clone()
	return &c, idx
}

// KVList returns the pairs under prefix sorted by key, with the prefix's
// index (tombstones included).
func (s *Store) KVList(prefix string) ([]KVPair, uint64) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	keys := s.st.kvKeysWithPrefix(prefix)
	out := make([]KVPair, 0, len(keys))
	for _, k := range keys {
		out = append(out, s.st.kv[k].Clone())
	}
	return out, s.st.kvPrefixIndex(prefix)
}

// KVKeys lists the keys under prefix; with a separator, keys are rolled up
// to the first separator after the prefix ("dir/"), as `ls` would.
func (s *Store) KVKeys(prefix, separator string) ([]string, uint64) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := s.st.kvKeysRolledUp(prefix, separator)
	return out, s.st.kvPrefixIndex(prefix)
}

// Session returns a session, or nil.
func (s *Store) Session(id string) (*SessionEntry, uint64) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	idx := s.st.tableIndex[TableSessions]
	if sess := s.st.sessions[id]; sess != nil {
		c := sess.Clone()
		return &c, idx
	}
	return nil, idx
}

// Sessions lists all sessions sorted by ID.
func (s *Store) Sessions() ([]SessionEntry, uint64) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := []SessionEntry{}
	for _, id := range sortedKeys(s.st.sessions) {
		out = append(out, s.st.sessions[id].Clone())
	}
	return out, s.st.tableIndex[TableSessions]
}

// NodeSessions lists a node's sessions sorted by ID.
func (s *Store) NodeSessions(node string) ([]SessionEntry, uint64) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := []SessionEntry{}
	node = s.st.nodeName(node)
	for _, id := range sortedKeys(s.st.sessionsByNode[node]) {
		out = append(out, s.st.sessions[id].Clone())
	}
	return out, s.st.tableIndex[TableSessions]
}

// Coordinates lists node coordinates sorted by node.
func (s *Store) Coordinates() ([]CoordinateEntry, uint64) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := []CoordinateEntry{}
	for _, node := range sortedKeys(s.st.coords) {
		out = append(out, s.st.coords[node].Clone())
	}
	return out, s.st.tableIndex[TableCoordinates]
}

// Registry returns the full registry: every instance, its content hashcode
// and the index it is as of (the applied index; a delta client continues
// with Since(Index)).
func (s *Store) Registry() Registry {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := Registry{Index: s.st.index, Hash: s.st.hash.String(), HashScheme: HashScheme,
		Instances: make([]Instance, 0, s.st.numInstances)}
	for _, m := range s.st.slots {
		for _, slot := range m {
			if slot.hasInst() {
				out.Instances = append(out.Instances, slot.cachedInstance().Clone())
			}
		}
	}
	slices.SortFunc(out.Instances, func(a, b Instance) int {
		return cmp.Or(cmp.Compare(a.Service, b.Service), cmp.Compare(a.Node, b.Node), cmp.Compare(a.ID, b.ID))
	})
	return out
}

// Hash returns the current registry hashcode.
func (s *Store) Hash() string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.st.hash.String()
}

// Since returns the registry changes after index, covering (index, To]
// where To is the applied index, with the hashcode at To. It returns
// ErrTruncated when the delta log no longer reaches back to index (or index
// is ahead of this server): the client must pull Registry.
func (s *Store) Since(index uint64) (Delta, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if index > s.st.index {
		return Delta{}, fmt.Errorf("%w (index %d is ahead of this server's %d)", ErrTruncated, index, s.st.index)
	}
	changes, ok := s.ring.since(index)
	if !ok {
		return Delta{}, fmt.Errorf("%w (index %d is older than the log's start %d)", ErrTruncated, index, s.ring.floor)
	}
	return Delta{From: index, To: s.st.index, Hash: s.st.hash.String(), HashScheme: HashScheme, Changes: changes}, nil
}
