package catalog

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Registration and deregistration of nodes, services and checks, with
// Consul's rules (Catalog.Register / Catalog.Deregister): a registration is
// validated whole before anything changes, then upserts the node, the
// service and the checks; writing a record identical to the stored one
// changes nothing (no index moves, no watcher wakes), which keeps the agents'
// periodic anti-entropy syncs free.

// ErrNotFound is wrapped by errors about missing nodes, services, checks or
// sessions.
var ErrNotFound = errors.New("not found")

func (t *tx) register(r *RegisterRequest) error {
	asked := r.Node.Node
	if r.SkipNodeUpdate {
		r.Node.Node = t.st.nodeName(asked) // the node is not written
	} else if _, err := t.claimNodeName(&r.Node); err != nil {
		return fmt.Errorf("catalog: register: %w", err)
	}
	for i := range r.Checks {
		if c := &r.Checks[i]; c.Node != r.Node.Node && strings.EqualFold(c.Node, asked) {
			c.Node = r.Node.Node // checks name their node in any case, as in Consul
		}
	}
	if err := t.validateRegister(r); err != nil {
		return err
	}
	// From here on the node's name is the stored node's string, as it is
	// in the keys of the maps: a lookup whose key shares the stored key's
	// bytes compares them without reading them (one cache miss fewer per
	// lookup in a large registry).
	name := r.Node.Node
	if r.SkipNodeUpdate {
		name = t.st.nodes[name].Node
	} else {
		name = t.ensureNode(&r.Node).Node
	}
	for i := range r.Checks {
		r.Checks[i].Node = name
	}
	// pending is the service as stored after this request, with its slot:
	// its checks need them, and handing them over saves lookups.
	var pending *NodeService
	var pendingSlot *instSlot
	if r.Service != nil {
		pending, pendingSlot = t.ensureService(name, r.Service)
	}
	for i := range r.Checks {
		t.ensureCheck(&r.Checks[i], pending, pendingSlot)
	}
	return nil
}

// validateRegister checks r and fills Consul's defaults (service ID from its
// name, check node and status) in place.
func (t *tx) validateRegister(r *RegisterRequest) error {
	name := r.Node.Node
	if name == "" {
		return errors.New("catalog: register: Must provide node (the Node field is empty)")
	}
	if r.SkipNodeUpdate {
		if t.st.nodes[name] == nil {
			return fmt.Errorf("catalog: register: node %q is %w; register it with an address before using SkipNodeUpdate", name, ErrNotFound)
		}
	} else if r.Node.Address == "" {
		return fmt.Errorf("catalog: register: Must provide address for node %q", name)
	}
	if svc := r.Service; svc != nil {
		if svc.Service == "" {
			return fmt.Errorf("catalog: register: service on node %q has no name (Service field)", name)
		}
		if svc.ID == "" {
			svc.ID = svc.Service
		}
	}
	for i := range r.Checks {
		c := &r.Checks[i]
		if c.Node == "" {
			c.Node = name
		}
		if err := t.validateCheck(c, r.Service); err != nil {
			return fmt.Errorf("catalog: register: %w", err)
		}
		if c.Node != name {
			return fmt.Errorf("catalog: register: check %q is for node %q, not %q", c.CheckID, c.Node, name)
		}
	}
	return nil
}

// validateCheck checks c (Node already set) and defaults its status. pending
// is a service registered in the same request, which c may refer to.
func (t *tx) validateCheck(c *HealthCheck, pending *NodeService) error {
	if c.CheckID == "" {
		return fmt.Errorf("check on node %q has no CheckID", c.Node)
	}
	switch c.Status {
	case "", HealthMaintenance:
		// Consul stores maintenance as critical, and a check registered
		// without a status starts critical until it has run.
		c.Status = HealthCritical
	// The stored status is the constant, not the command's bytes: a
	// status comparison then reads no cold memory.
	case HealthPassing:
		c.Status = HealthPassing
	case HealthWarning:
		c.Status = HealthWarning
	case HealthCritical:
		c.Status = HealthCritical
	default:
		return fmt.Errorf("check %q has status %q; use passing, warning or critical", c.CheckID, c.Status)
	}
	if c.ServiceID != "" && (pending == nil || pending.ID != c.ServiceID) &&
		t.st.serviceSlot(c.Node, c.CheckID, c.ServiceID) == nil {
		return fmt.Errorf("check %q: Missing service registration: service %q is %w on node %q",
			c.CheckID, c.ServiceID, ErrNotFound, c.Node)
	}
	return nil
}

// ensureNode upserts n unless the stored node already equals it, and
// returns the record stored afterwards.
func (t *tx) ensureNode(n *Node) *Node {
	old := t.st.nodes[n.Node]
	if old != nil && nodeContentEqual(old, n) {
		return old
	}
	// A copy: the request may be Apply's reused one. Nodes change rarely,
	// so the allocation is off the hot path.
	rec := new(Node)
	*rec = *n
	ownNodeStrings(rec)
	rec.CreateIndex, rec.ModifyIndex = t.index, t.index
	if old != nil {
		rec.CreateIndex = old.CreateIndex
	}
	t.setNode(rec)
	return rec
}

// ownNodeStrings gives n's strings one backing allocation of their own:
// Apply's decoder lends them from the raft entry (decodeRegister). Its
// maps need none: the decoder never lends those.
func ownNodeStrings(n *Node) {
	var p packer
	p.add(&n.ID)
	p.add(&n.Node)
	p.add(&n.Address)
	p.add(&n.Datacenter)
	p.finish()
}

// ensureService upserts svc on node unless the stored one equals it, and
// returns the record stored afterwards and its slot.
func (t *tx) ensureService(node string, svc *NodeService) (*NodeService, *instSlot) {
	slot := t.st.slots[InstanceKey{Node: node, ID: svc.ID}]
	var old *NodeService
	if slot != nil {
		old = slot.svc
	}
	if old != nil && serviceContentEqual(old, svc) {
		return old, slot
	}
	rec := svc // the store owns the command (see ApplyCommand)
	if t.lent {
		rec = ownService(svc)
	}
	rec.CreateIndex, rec.ModifyIndex = t.index, t.index
	if old != nil {
		rec.CreateIndex = old.CreateIndex
	}
	return rec, t.setService(node, rec, old)
}

// ensureCheck upserts c (validated) unless the stored one equals it. A
// service check takes its service's name and tags, as in Consul. A check
// that turns critical invalidates the sessions bound to it. pending is the
// stored service registered by the same request, if any, and pendingSlot
// its slot.
//
// A status update of an existing check is the most frequent write of all,
// and in a large registry every record it could read is cold in the CPU
// caches. So it reads the old check's status and create index from its
// cell, and the service's name and tags from the instance's slot: neither
// the old check record nor the service record is touched.
func (t *tx) ensureCheck(c *HealthCheck, pending *NodeService, pendingSlot *instSlot) {
	rec := c // the store owns the command (see ApplyCommand)
	rec.ServiceName, rec.ServiceTags = "", nil
	var target *instSlot // the slot c goes into, if known
	if c.ServiceID != "" {
		if svc := pending; svc != nil && svc.ID == c.ServiceID {
			rec.ServiceName, rec.ServiceTags = svc.Service, svc.Tags
			target = pendingSlot
		} else {
			target = t.st.serviceSlot(c.Node, c.CheckID, c.ServiceID) // validated: it exists
			rec.ServiceName, rec.ServiceTags = target.serviceNameTags()
		}
	}
	old := t.st.checks[c.Node][c.CheckID]
	status := statusCode(rec.Status)
	if old.rec != nil && old.status == status && checkContentEqual(old.rec, rec) {
		return
	}
	if t.lent {
		rec = ownCheck(rec, pending)
	}
	rec.CreateIndex, rec.ModifyIndex = t.index, t.index
	if old.rec != nil {
		rec.CreateIndex = old.createIndex
	}
	t.setCheck(rec, old, target)
	critical := rec.Status == HealthCritical || rec.Status == HealthMaintenance
	if critical && (old.rec == nil || old.status != status) {
		t.invalidateCheckSessions(rec.Node, rec.CheckID)
	}
}

func (t *tx) deregister(r *DeregisterRequest) error {
	if r.Node == "" {
		return errors.New("catalog: deregister: Must provide node (the Node field is empty)")
	}
	r.Node = t.st.nodeName(r.Node) // node names ignore case (nodename.go)
	switch {
	case r.CheckID != "":
		t.deleteCheck(r.Node, r.CheckID)
	case r.ServiceID != "":
		t.deleteService(r.Node, r.ServiceID)
	default:
		t.deleteNode(r.Node)
	}
	return nil
}

// deleteCheck removes a check and invalidates the sessions bound to it.
func (t *tx) deleteCheck(node, id string) {
	if t.st.check(node, id) == nil {
		return
	}
	t.invalidateCheckSessions(node, id)
	t.removeCheck(node, id)
}

// deleteService removes a service and its checks.
func (t *tx) deleteService(node, id string) {
	if t.st.services[node][id] == nil {
		return
	}
	var ids []string
	for _, c := range t.st.checksFor(InstanceKey{Node: node, ID: id}) {
		ids = append(ids, c.CheckID)
	}
	slices.Sort(ids)
	for _, checkID := range ids {
		t.deleteCheck(node, checkID)
	}
	t.removeService(node, id)
}

// deleteNode removes a node with its sessions, services, checks and
// coordinate. Sorted iteration keeps the journal and delta log identical on
// every server.
func (t *tx) deleteNode(name string) {
	if t.st.nodes[name] == nil {
		return
	}
	for _, id := range sortedKeys(t.st.sessionsByNode[name]) {
		t.invalidateSession(id)
	}
	for _, id := range sortedKeys(t.st.services[name]) {
		t.deleteService(name, id)
	}
	for _, id := range sortedKeys(t.st.checks[name]) {
		t.deleteCheck(name, id)
	}
	t.removeCoordinate(name)
	t.removeNode(name)
}

// The content comparisons ignore CreateIndex and ModifyIndex.

func nodeContentEqual(a, b *Node) bool {
	return a.ID == b.ID && a.Node == b.Node && a.Address == b.Address && a.Datacenter == b.Datacenter &&
		strMapsEqual(a.TaggedAddresses, b.TaggedAddresses) && strMapsEqual(a.Meta, b.Meta)
}

func serviceContentEqual(a, b *NodeService) bool {
	return a.Kind == b.Kind && a.ID == b.ID && a.Service == b.Service && slices.Equal(a.Tags, b.Tags) &&
		a.Address == b.Address && maps.Equal(a.TaggedAddresses, b.TaggedAddresses) &&
		strMapsEqual(a.Meta, b.Meta) && a.Port == b.Port && a.Weights == b.Weights &&
		a.EnableTagOverride == b.EnableTagOverride
}

// checkContentEqual compares Status first: a status change is the common
// update, and deciding it early leaves the rest of a cold record unread.
func checkContentEqual(a, b *HealthCheck) bool {
	return a.Status == b.Status && a.Node == b.Node && a.CheckID == b.CheckID && a.Name == b.Name &&
		a.Notes == b.Notes && a.Output == b.Output && a.ServiceID == b.ServiceID &&
		a.ServiceName == b.ServiceName && slices.Equal(a.ServiceTags, b.ServiceTags) &&
		a.Type == b.Type && a.Interval == b.Interval && a.Timeout == b.Timeout &&
		a.ExposedPort == b.ExposedPort && definitionEqual(&a.Definition, &b.Definition)
}

func definitionEqual(a, b *HealthCheckDefinition) bool {
	if !maps.EqualFunc(a.Header, b.Header, slices.Equal[[]string]) {
		return false
	}
	return a.HTTP == b.HTTP && a.Method == b.Method && a.Body == b.Body &&
		a.TLSServerName == b.TLSServerName && a.TLSSkipVerify == b.TLSSkipVerify &&
		a.TCP == b.TCP && a.TCPUseTLS == b.TCPUseTLS && a.UDP == b.UDP && a.GRPC == b.GRPC &&
		a.GRPCUseTLS == b.GRPCUseTLS && a.OSService == b.OSService && a.Interval == b.Interval &&
		a.Timeout == b.Timeout && a.DeregisterCriticalServiceAfter == b.DeregisterCriticalServiceAfter
}
