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
	// stored is the node the request names, under any case of its name
	// (nodename.go); nil if there is none yet.
	var stored *Node
	if r.SkipNodeUpdate {
		if stored = t.st.findNode(asked); stored != nil {
			r.Node.Node = stored.Node // the node is not written
		}
	} else {
		var err error
		if stored, err = t.claimNodeName(&r.Node); err != nil {
			return fmt.Errorf("catalog: register: %w", err)
		}
	}
	for i := range r.Checks {
		if c := &r.Checks[i]; c.Node != r.Node.Node && strings.EqualFold(c.Node, asked) {
			c.Node = r.Node.Node // checks name their node in any case, as in Consul
		}
	}
	if err := t.validateRegister(r, stored); err != nil {
		return err
	}
	// From here on the node's name is the stored node's string, as it is
	// in the keys of the maps: a lookup whose key shares the stored key's
	// bytes compares them without reading them (one cache miss fewer per
	// lookup in a large registry).
	var name string
	if r.SkipNodeUpdate {
		name = stored.Node // validated: there is one
	} else {
		name = t.ensureNode(&r.Node, stored, asked).Node
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
	t.svcLook = slotLookup{} // it may hold the entry's strings (tx.lent)
	for i := range r.Checks {
		t.ensureCheck(&r.Checks[i], pending, pendingSlot, &t.looks[i])
	}
	clear(t.looks) // they may hold the entry's strings (tx.lent)
	return nil
}

// validateRegister checks r and fills Consul's defaults (service ID from its
// name, check node and status) in place. stored is the node r names (nil:
// none yet).
func (t *tx) validateRegister(r *RegisterRequest, stored *Node) error {
	name := r.Node.Node
	if name == "" {
		return errors.New("catalog: register: Must provide node (the Node field is empty)")
	}
	if r.SkipNodeUpdate {
		if stored == nil {
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
		// Looked up here, next to the checks' lookups, so that the
		// processor overlaps their cache misses; ensureService uses it.
		t.svcLook = t.st.lookupSlot(name, svc.ID)
	}
	t.looks = slices.Grow(t.looks[:0], len(r.Checks))[:len(r.Checks)]
	for i := range r.Checks {
		c := &r.Checks[i]
		if c.Node == "" {
			c.Node = name
		}
		if err := t.validateCheck(c, r.Service, &t.looks[i]); err != nil {
			return fmt.Errorf("catalog: register: %w", err)
		}
		if c.Node != name {
			return fmt.Errorf("catalog: register: check %q is for node %q, not %q", c.CheckID, c.Node, name)
		}
	}
	return nil
}

// validateCheck checks c (Node already set) and defaults its status. pending
// is a service registered in the same request, which c may refer to. It
// records in look what it found of the check, for ensureCheck.
func (t *tx) validateCheck(c *HealthCheck, pending *NodeService, look *checkLookup) error {
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
	*look = t.st.lookupCheck(c.Node, c.CheckID)
	if c.ServiceID != "" && (pending == nil || pending.ID != c.ServiceID) &&
		look.serviceSlot(t.st, c.ServiceID) == nil {
		return fmt.Errorf("check %q: Missing service registration: service %q is %w on node %q",
			c.CheckID, c.ServiceID, ErrNotFound, c.Node)
	}
	return nil
}

// ensureNode upserts n unless the stored node old (nil if none; its name is
// n.Node) already equals it, and returns the record stored afterwards.
// asked is the name as the request spelled it: if it differs from the
// stored one in case and the write changes the node, the node takes it, as
// in Consul (nodename.go); a change of case alone changes nothing.
func (t *tx) ensureNode(n, old *Node, asked string) *Node {
	if old != nil && nodeContentEqual(old, n) {
		return old
	}
	rename := old != nil && asked != old.Node
	if rename {
		n.Node = asked
	}
	// A copy: the request may be Apply's reused one. Nodes change rarely,
	// so the allocation is off the hot path.
	b := &ownedNode{Node: *n}
	rec := &b.Node
	ownNodeStrings(rec, b.strs[:])
	rec.CreateIndex, rec.ModifyIndex = t.index, t.index
	if old != nil {
		rec.CreateIndex = old.CreateIndex
	}
	if rename {
		t.renameNode(old, rec)
	} else {
		t.setNode(rec)
	}
	return rec
}

// ownedNodeRoom is the room for a stored node's strings inside its
// record. An agent's node (a UUID, a name, an address, the datacenter)
// fits, and the record then fills the 176-byte size class, as the record
// and a separate allocation of those strings did.
const ownedNodeRoom = 80

// ownedNode is a stored node record with room for its strings. Every
// registration compares its node with the stored one (ensureNode) after
// finding it by name (findNode): with the strings next to the fields, both
// read one place rather than two, which in a large registry is one cache
// miss fewer.
type ownedNode struct {
	Node
	strs [ownedNodeRoom]byte
}

// ownNodeStrings gives n's strings one backing allocation of their own,
// room if they fit there: Apply's decoder lends them from the raft entry
// (decodeRegister). Its maps need none: the decoder never lends those.
func ownNodeStrings(n *Node, room []byte) {
	var p packer
	p.add(&n.ID)
	p.add(&n.Node)
	p.add(&n.Address)
	p.add(&n.Datacenter)
	p.finishInto(room)
}

// ensureService upserts svc on node unless the stored one equals it, and
// returns the record stored afterwards and its slot.
func (t *tx) ensureService(node string, svc *NodeService) (*NodeService, *instSlot) {
	look := &t.svcLook
	if !look.current(t.st, node, svc.ID) {
		*look = t.st.lookupSlot(node, svc.ID)
	}
	slot := look.slot
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
	if slot == nil { // known absent: no second lookup to find that out
		slot = t.st.newSlot(InstanceKey{Node: node, ID: rec.ID}, look.slots)
	}
	return rec, t.setService(node, rec, old, slot)
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
// cell, not from the old record, and finds the service through the slot
// the cell points at. look is what validating c found (validateCheck),
// used if it is still current.
func (t *tx) ensureCheck(c *HealthCheck, pending *NodeService, pendingSlot *instSlot, look *checkLookup) {
	if !look.current(t.st, c.Node) {
		*look = t.st.lookupCheck(c.Node, c.CheckID)
	}
	var svc *NodeService // c's service, if it is a service check
	var target *instSlot // the slot c goes into, if known
	if c.ServiceID != "" {
		if pending != nil && pending.ID == c.ServiceID {
			svc, target = pending, pendingSlot
		} else {
			target = look.serviceSlot(t.st, c.ServiceID) // validated: it exists
			svc = target.svc
		}
	}
	old := look.cell
	status := statusCode(c.Status)
	if old.rec != nil && old.status() == status && old.rec.sameContent(c, svc) {
		return
	}
	c.CreateIndex, c.ModifyIndex = t.index, t.index
	if old.rec != nil {
		c.CreateIndex = old.createIndex()
	}
	rec := newCheckRec(c, svc, t.lent)
	t.setCheck(c.Node, rec, look, target)
	if status == codeCritical && (old.rec == nil || old.status() != status) {
		t.invalidateCheckSessions(c.Node, rec.checkID())
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
	if t.st.service(node, id) == nil {
		return
	}
	var ids []string
	for _, c := range t.st.checksFor(InstanceKey{Node: node, ID: id}) {
		ids = append(ids, c.checkID())
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
	for _, id := range t.st.nodeServiceIDs(name) {
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
