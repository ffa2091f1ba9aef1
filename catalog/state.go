package catalog

import (
	"slices"
	"strings"
	"unsafe"
)

// state is the replicated part of the store plus the indexes derived from
// it. Everything here is a pure function of the applied command sequence, so
// two servers that applied the same log hold equal states.
//
// Invariant (copy-on-write): a record reachable from these maps is never
// modified in place. A change installs a new record. That is what makes a
// snapshot a cheap copy of the maps and lets reads copy records out without
// worrying about a concurrent writer half-way through one.
type state struct {
	// index is the raft index of the last applied entry.
	index uint64
	// tableIndex is the last index that changed each table.
	tableIndex [numTables]uint64
	// serviceIndex and nodeIndex are the last index that changed anything a
	// query for that service (its instances, their nodes and checks) or that
	// node (the node, its services and checks) returns. An entry is dropped
	// when its service or node disappears; readers then fall back to the
	// table index, which is never lower.
	serviceIndex map[string]uint64
	nodeIndex    map[string]uint64

	nodes  map[string]*Node
	checks map[string]map[string]checkCell // node → check ID
	// slots holds the derived data of each instance key (see instSlot),
	// by node and service ID: an instance's own checks and its cached
	// registry content. A check's cell points at its slot, so a check
	// update and the refresh it causes reach it without a lookup; a
	// node's slots are also what its reads, updates and deletion iterate
	// (those holding a service, svc). Per node, because a map by the key
	// pair cost a registration twice the bytes in growth, and a second
	// index of the node's services on top.
	slots map[string]map[string]*instSlot
	// nodeSlots holds the node-level slots ({Node, ""}) apart: every
	// instance refresh reads its node's, and a map with one entry per node
	// stays in cache.
	nodeSlots map[string]*instSlot
	slab      slotSlab // where slots live
	// byService maps a service name to its instances (derived): node →
	// the slots of the service's instances on it. Keyed by node rather
	// than by instance, so registering an instance hashes one string into
	// a map of at most one entry per node instead of a key pair into a map
	// of every instance (the most expensive step of a registration).
	byService map[string]serviceSet
	// serviceFold maps a lower-cased service name to the names in
	// byService that fold to it (derived). Consul's catalog indexes service
	// names lower-cased (memdb Lowercase: true), so a lookup of "WEB"
	// finds the instances registered as "web" or "Web"; the stored names
	// keep their case.
	serviceFold map[string][]string
	// nodeFold maps a lower-cased node name to the names in nodes that
	// fold to it (derived), for Consul's case-insensitive node lookups.
	nodeFold map[string][]string

	kv map[string]*KVPair
	// tombstones remember the index at which a key was deleted, so a
	// blocking query on a prefix whose keys were all deleted still sees its
	// index move forward. Reaped by TombstoneReapRequest.
	tombstones map[string]uint64
	// kvOrder holds every key of kv and tombstones in order, so prefix
	// queries visit only the keys under the prefix (keytree.go).
	kvOrder keyTree

	sessions map[string]*SessionEntry
	// Derived session indexes: by node, by check and the keys each holds.
	sessionsByNode  map[string]map[string]struct{}
	sessionsByCheck map[checkRef]map[string]struct{}
	locks           map[string]map[string]struct{} // session ID → keys

	coords map[string]*CoordinateEntry // node → its coordinate

	// numInstances counts the slots with a cached instance; hash is the
	// sum of their digests (hash.go).
	numInstances int
	hash         sum256
	// skipHash leaves the hashcode out of health flips (changeHealth),
	// which makes it wrong: it is BenchmarkHashUpdate's control, the
	// same updates without the hashcode's part, and nothing else sets it.
	skipHash bool

	// writes counts the check writes and slot releases, which make a
	// checkLookup stale; slotsMade counts the slots created, which (with
	// writes) make a slotLookup stale.
	writes    uint64
	slotsMade uint64
}

// instSlot is the derived data of one key. Unlike records it changes in
// place: it is never handed out and never part of a snapshot. A slot with
// no checks and no instance is deleted (and its memory reused, see
// slotSlab).
//
// Everything an update of the instance reads or writes besides the records
// themselves is here, in one contiguous record: the check pointers, the
// service pointer, the cached content and its digest. At 100k instances
// every instance is cold in the CPU caches, so what keeps an update's cost
// down is how few separate places it touches (BenchmarkHashUpdate).
type instSlot struct {
	// checks apply to the key: node-level checks for {Node, ""}, the
	// instance's own checks otherwise. Health of an instance is its node's
	// checks plus its own, without scanning every check on a busy node.
	checks []*checkRec
	// checkBuf holds checks while there are at most two (the usual case).
	checkBuf [2]*checkRec
	// svc is the instance's service record (nil for a node-level slot).
	// The slot is where the service table keeps it, so that a check
	// update and the refresh it causes reach the service through the slot
	// they need anyway, not through a second map of every instance.
	svc *NodeService
	// instNode and instSvc are the records the instance's content was
	// built from as of the last commit (nil: no such instance), and
	// health (in instHash) its health then (a statusCode). Records never
	// change, so they are the content (cachedInstance) without a copy of
	// it: a slot's size is a registration's largest share of the bytes
	// it allocates.
	instNode *Node
	instSvc  *NodeService
	// gen counts the slot's releases, which lets a remembered slot
	// pointer be checked before it is trusted (hintedSlot).
	gen uint32
	// instHash is the instance's health and digests, together: a health
	// flip's hash work reads these 65 bytes and nothing else
	// (moveHealth), at most two cache lines wherever the slot lies. The
	// content digest costs a slot 32 bytes (136 on amd64).
	instHash
}

// hasInst reports whether the slot holds an instance's content.
func (slot *instSlot) hasInst() bool { return slot.instSvc != nil }

// cachedInstance returns the instance's content as of the last commit
// (the slot must hold one). It shares the records' slices and maps.
func (slot *instSlot) cachedInstance() Instance {
	return buildInstance(slot.instNode, slot.instSvc, slot.health)
}

// buildInstance is the registry content of service svc on node n with
// health (a statusCode). It shares the records' slices and maps.
func buildInstance(n *Node, svc *NodeService, health uint8) Instance {
	return Instance{
		Node:        n.Node,
		NodeAddress: n.Address,
		Datacenter:  n.Datacenter,
		ID:          svc.ID,
		Service:     svc.Service,
		Tags:        svc.Tags,
		Address:     svc.Address,
		Port:        svc.Port,
		Meta:        svc.Meta,
		Health:      statusName(health),
	}
}

// clearInst forgets the slot's instance.
func (slot *instSlot) clearInst() {
	slot.instNode, slot.instSvc, slot.instHash = nil, nil, instHash{}
}

// slotSlab hands out slots from chunks of slabChunk, so that slots are
// contiguous and a registration allocates none; a deleted slot is cleared
// and reused. Slots never move, so pointers to them stay valid.
type slotSlab struct {
	free  []*instSlot
	chunk []instSlot // the unused rest of the newest chunk
}

// slabChunk fills 64 KiB: a chunk is a large object, rounded up to whole
// 8 KiB pages, so a chunk of a round number of slots would leave the
// rest of its last page allocated and unused.
const slabChunk = 64 << 10 / unsafe.Sizeof(instSlot{})

func (sl *slotSlab) alloc() *instSlot {
	if n := len(sl.free); n > 0 {
		slot := sl.free[n-1]
		sl.free = sl.free[:n-1]
		return slot
	}
	if len(sl.chunk) == 0 {
		sl.chunk = make([]instSlot, slabChunk)
	}
	slot := &sl.chunk[0]
	sl.chunk = sl.chunk[1:]
	return slot
}

func (sl *slotSlab) release(slot *instSlot) {
	*slot = instSlot{gen: slot.gen + 1}
	sl.free = append(sl.free, slot)
}

// slot returns k's slot, or nil.
func (st *state) slot(k InstanceKey) *instSlot {
	if k.ID == "" {
		return st.nodeSlots[k.Node]
	}
	return st.slots[k.Node][k.ID]
}

// service returns the service id on node, or nil.
func (st *state) service(node, id string) *NodeService {
	if slot := st.slots[node][id]; slot != nil {
		return slot.svc
	}
	return nil
}

// checkLookup is what looking a check up found: the node's checks table
// (nil if it has none), the check's cell there and, once serviceSlot has
// found it, the slot of the check's service. Validating a check looks it
// up, and writing it uses the same lookup rather than repeating it, as
// long as it is current.
type checkLookup struct {
	node   string
	m      map[string]checkCell
	cell   checkCell
	target *instSlot
	// writes is the state's writes when the lookup was made.
	writes uint64
}

func (st *state) lookupCheck(node, checkID string) checkLookup {
	m := st.checks[node]
	return checkLookup{node: node, m: m, cell: m[checkID], writes: st.writes}
}

// current reports whether the lookup is of node and still holds: no check
// was written and no slot released since.
func (look *checkLookup) current(st *state, node string) bool {
	return look.writes == st.writes && look.node == node
}

// serviceSlot returns the slot of service id on the check's node, or nil
// if there is no such service. It first tries the slot of the check:
// when the check already belongs to that instance (a status update), this
// needs no lookup of its own.
func (look *checkLookup) serviceSlot(st *state, id string) *instSlot {
	if look.target != nil {
		return look.target
	}
	if slot := look.cell.slot; slot != nil && slot.svc != nil && slot.svc.ID == id {
		look.target = slot
	} else if slot := st.slots[look.node][id]; slot != nil && slot.svc != nil {
		look.target = slot
	}
	return look.target
}

// checksFor returns the checks that apply to k.
func (st *state) checksFor(k InstanceKey) []*checkRec {
	if slot := st.slot(k); slot != nil {
		return slot.checks
	}
	return nil
}

// slotFor returns k's slot, creating it.
func (st *state) slotFor(k InstanceKey) *instSlot {
	if slot := st.slot(k); slot != nil {
		return slot
	}
	return st.newSlot(k, nil)
}

// slotLookup is the result of looking up an instance's slot (nil: none)
// in its node's slots (nil: the node has none), current as long as no
// slot is created or released (and no check written) since.
type slotLookup struct {
	node, id  string
	slots     map[string]*instSlot
	slot      *instSlot
	writes    uint64
	slotsMade uint64
}

func (st *state) lookupSlot(node, id string) slotLookup {
	slots := st.slots[node]
	return slotLookup{node: node, id: id, slots: slots, slot: slots[id], writes: st.writes, slotsMade: st.slotsMade}
}

// current reports whether the lookup is of node's id and still holds.
func (l *slotLookup) current(st *state, node, id string) bool {
	return l.writes == st.writes && l.slotsMade == st.slotsMade && l.node == node && l.id == id
}

// newSlot creates k's slot; k has none. slots is k.Node's slots, if the
// caller has them (nil: looked up here).
func (st *state) newSlot(k InstanceKey, slots map[string]*instSlot) *instSlot {
	st.slotsMade++
	slot := st.slab.alloc()
	if k.ID == "" {
		st.nodeSlots[k.Node] = slot
		return slot
	}
	m := slots
	if m == nil {
		m = st.slots[k.Node]
	}
	if m == nil {
		m = map[string]*instSlot{}
		st.slots[k.Node] = m
	}
	m[k.ID] = slot
	return slot
}

// dropIfEmpty deletes k's slot once it holds nothing.
func (st *state) dropIfEmpty(k InstanceKey, slot *instSlot) {
	if len(slot.checks) == 0 && !slot.hasInst() && slot.svc == nil {
		if k.ID == "" {
			delete(st.nodeSlots, k.Node)
		} else {
			delNested(st.slots, k.Node, k.ID)
		}
		st.slab.release(slot)
		st.writes++
	}
}

// checkRef names a check on a node (check IDs are unique per node).
type checkRef struct{ node, checkID string }

func newState() *state {
	return &state{
		serviceIndex:    map[string]uint64{},
		nodeIndex:       map[string]uint64{},
		nodes:           map[string]*Node{},
		checks:          map[string]map[string]checkCell{},
		slots:           map[string]map[string]*instSlot{},
		nodeSlots:       map[string]*instSlot{},
		byService:       map[string]serviceSet{},
		serviceFold:     map[string][]string{},
		nodeFold:        map[string][]string{},
		kv:              map[string]*KVPair{},
		tombstones:      map[string]uint64{},
		sessions:        map[string]*SessionEntry{},
		sessionsByNode:  map[string]map[string]struct{}{},
		sessionsByCheck: map[checkRef]map[string]struct{}{},
		locks:           map[string]map[string]struct{}{},
		coords:          map[string]*CoordinateEntry{},
	}
}

// The raw setters below install or remove one record and keep the derived
// indexes in step. They know nothing of raft indexes, watches or undo; the
// transaction (tx.go) wraps them with all three.

func (st *state) putNode(n *Node) {
	if st.nodes[n.Node] == nil {
		fold := foldName(n.Node)
		st.nodeFold[fold] = append(st.nodeFold[fold], n.Node)
	}
	st.nodes[n.Node] = n
}

func (st *state) delNode(name string) {
	if st.nodes[name] == nil {
		return
	}
	delete(st.nodes, name)
	unfold(st.nodeFold, name)
}

// unfold removes name from its entry of a fold index.
func unfold(index map[string][]string, name string) {
	fold := foldName(name)
	names := slices.DeleteFunc(index[fold], func(n string) bool { return n == name })
	if len(names) == 0 {
		delete(index, fold)
	} else {
		index[fold] = names
	}
}

// nodeName resolves a node name as asked in a lookup to the stored one:
// the exact name if such a node exists, else the smallest stored name that
// equals it ignoring case, else name itself.
func (st *state) nodeName(name string) string {
	if n := st.findNode(name); n != nil {
		return n.Node
	}
	return name
}

// findNode returns the stored node that name resolves to (nodeName), or
// nil if there is none. A write that goes on to use the record takes it
// from here rather than looking its name up again.
func (st *state) findNode(name string) *Node {
	if n := st.nodes[name]; n != nil {
		return n
	}
	if names := st.nodeFold[foldName(name)]; len(names) > 0 {
		return st.nodes[slices.Min(names)]
	}
	return nil
}

// putService installs s on node and returns its slot. slot is that slot,
// if the caller has it.
func (st *state) putService(node string, s *NodeService, slot *instSlot) *instSlot {
	if slot == nil {
		slot = st.slotFor(InstanceKey{Node: node, ID: s.ID})
	}
	old := slot.svc
	slot.svc = s
	if old != nil {
		if old.Service == s.Service {
			return slot // same name: byService already holds it
		}
		st.unindexService(node, old.Service, slot)
	}
	set := st.byService[s.Service]
	if set == nil {
		set = serviceSet{}
		st.byService[s.Service] = set
		fold := foldName(s.Service)
		st.serviceFold[fold] = append(st.serviceFold[fold], s.Service)
	}
	set[node] = append(set[node], slot)
	return slot
}

// nodeServiceIDs returns the IDs of node's services, sorted.
func (st *state) nodeServiceIDs(node string) []string {
	var ids []string
	for id, slot := range st.slots[node] {
		if slot.svc != nil {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// serviceSet is one service's instances: node → the slots of the
// instances on it (their svc is the service record), in no particular
// order, never empty. Derived and never handed out.
type serviceSet map[string][]*instSlot

func (set serviceSet) remove(node string, slot *instSlot) {
	slots := set[node]
	if i := slices.Index(slots, slot); i >= 0 {
		slots[i] = slots[len(slots)-1]
		slots[len(slots)-1] = nil
		slots = slots[:len(slots)-1]
	}
	if len(slots) == 0 {
		delete(set, node)
	} else {
		set[node] = slots
	}
}

func (st *state) delService(node, id string) {
	slot := st.slots[node][id]
	if slot == nil || slot.svc == nil {
		return
	}
	st.unindexService(node, slot.svc.Service, slot)
	slot.svc = nil
	st.dropIfEmpty(InstanceKey{Node: node, ID: id}, slot)
}

// unindexService removes the instance in slot from service's on node.
func (st *state) unindexService(node, service string, slot *instSlot) {
	set := st.byService[service]
	set.remove(node, slot)
	if len(set) == 0 {
		delete(st.byService, service)
		unfold(st.serviceFold, service)
	}
}

// foldName is the case-insensitive key of a service name. strings.ToLower
// returns an already lower-case ASCII name without allocating.
func foldName(name string) string { return strings.ToLower(name) }

// checkCell is a check's entry in the checks table: the record and the
// slot it is listed in (its instance's, or its node's for a node-level
// check). Keeping the slot here means a check update finds everything it
// changes with the one lookup of the check, however large the registry.
type checkCell struct {
	rec  *checkRec
	slot *instSlot
	// meta is the record's create index and status code (statusCode) in
	// one word, create index above the low byte: a status update decides
	// and stamps with them without reading the old record. One word
	// keeps a cell at 24 bytes; one is stored per check. A create index
	// too large to fit (2^56 and above) is read from the record instead
	// (meta is then cellMetaInRec).
	meta uint64
}

const cellMetaInRec = ^uint64(0)

func newCheckCell(rec *checkRec, slot *instSlot) checkCell {
	meta := rec.createIndex<<8 | uint64(rec.status)
	if rec.createIndex >= 1<<56 {
		meta = cellMetaInRec
	}
	return checkCell{rec: rec, slot: slot, meta: meta}
}

// status is the check's status code (0 if there is no check).
func (c checkCell) status() uint8 {
	if c.meta == cellMetaInRec {
		return c.rec.status
	}
	return uint8(c.meta)
}

func (c checkCell) createIndex() uint64 {
	if c.meta == cellMetaInRec {
		return c.rec.createIndex
	}
	return c.meta >> 8
}

// statusCode is a check status as stored in a cell and a record:
// HealthPassing, HealthWarning and HealthCritical each have their own
// code, anything else shares 0 (stored checks have one of the three).
func statusCode(status string) uint8 {
	switch status {
	case HealthPassing:
		return codePassing
	case HealthWarning:
		return codeWarning
	case HealthCritical:
		return codeCritical
	}
	return 0
}

// Status codes (statusCode).
const (
	codePassing = 1 + iota
	codeWarning
	codeCritical
)

// check returns check id on node, or nil.
func (st *state) check(node, id string) *checkRec { return st.checks[node][id].rec }

// putCheck installs c on node.
func (st *state) putCheck(node string, c *checkRec) {
	look := st.lookupCheck(node, c.checkID())
	st.putCheckIn(node, c, &look, nil)
}

// putCheckIn installs c on node (the stored node's name) and returns the
// slot it is listed in. look is the current lookup of c, and target, if
// set, the slot c goes into (the caller found it already).
//
// target, when set, must be a slot holding a service (c's): moving c out
// of its old slot (unindexCheck) drops and releases that slot to the slab
// if it is left empty, and only a slot with a service is never empty, so
// only then is target certain to still be a live slot when c is appended
// to it. A caller with a check of no service passes nil and the slot is
// looked up after the removal.
func (st *state) putCheckIn(node string, c *checkRec, look *checkLookup, target *instSlot) *instSlot {
	st.writes++
	m := look.m
	if m == nil {
		m = map[string]checkCell{}
		st.checks[node] = m
	}
	checkID := c.checkID()
	old := look.cell
	cell := newCheckCell(c, nil)
	if old.rec != nil && (old.slot == target || target == nil && old.rec.serviceID() == c.serviceID()) {
		// Replace in place: the common status update costs one lookup.
		if i := slices.Index(old.slot.checks, old.rec); i >= 0 {
			old.slot.checks[i] = c
			cell.slot = old.slot
			m[checkID] = cell
			return old.slot
		}
	}
	if old.rec != nil {
		st.unindexCheck(node, old)
	}
	slot := target
	if slot == nil {
		slot = st.slotFor(InstanceKey{Node: node, ID: c.serviceID()})
	}
	if slot.checks == nil {
		slot.checks = slot.checkBuf[:0]
	}
	slot.checks = append(slot.checks, c)
	cell.slot = slot
	m[checkID] = cell
	return slot
}

func (st *state) delCheck(node, id string) {
	old := st.checks[node][id]
	if old.rec == nil {
		return
	}
	st.writes++
	delNested(st.checks, node, id)
	st.unindexCheck(node, old)
}

// unindexCheck removes a check from its slot. Slots are derived and never
// handed out, so their slices may change in place.
func (st *state) unindexCheck(node string, old checkCell) {
	slot := old.slot
	if i := slices.Index(slot.checks, old.rec); i >= 0 {
		slot.checks = slices.Delete(slot.checks, i, i+1)
	}
	st.dropIfEmpty(InstanceKey{Node: node, ID: old.rec.serviceID()}, slot)
}

func delNested[K comparable, V any](m map[K]map[string]V, k K, id string) {
	inner := m[k]
	delete(inner, id)
	if len(inner) == 0 {
		delete(m, k)
	}
}

func (st *state) putKV(p *KVPair) {
	if old := st.kv[p.Key]; old != nil && old.Session != "" && old.Session != p.Session {
		st.unlockKey(old.Session, p.Key)
	}
	st.kv[p.Key] = p
	delete(st.tombstones, p.Key)
	st.kvOrder.insert(p.Key)
	if p.Session != "" {
		keys := st.locks[p.Session]
		if keys == nil {
			keys = map[string]struct{}{}
			st.locks[p.Session] = keys
		}
		keys[p.Key] = struct{}{}
	}
}

// delKV removes key; tombstoneIndex > 0 leaves a tombstone at that index.
func (st *state) delKV(key string, tombstoneIndex uint64) {
	if old := st.kv[key]; old != nil && old.Session != "" {
		st.unlockKey(old.Session, key)
	}
	delete(st.kv, key)
	if tombstoneIndex > 0 {
		st.putTombstone(key, tombstoneIndex)
	} else {
		st.delTombstone(key)
	}
}

// putTombstone records that key (not live) was deleted at idx.
func (st *state) putTombstone(key string, idx uint64) {
	st.tombstones[key] = idx
	st.kvOrder.insert(key)
}

// delTombstone forgets key's tombstone, and the key too unless it is live.
func (st *state) delTombstone(key string) {
	delete(st.tombstones, key)
	if st.kv[key] == nil {
		st.kvOrder.remove(key)
	}
}

func (st *state) unlockKey(session, key string) {
	delete(st.locks[session], key)
	if len(st.locks[session]) == 0 {
		delete(st.locks, session)
	}
}

// sessionChecks lists the checks whose going critical invalidates s.
func sessionChecks(s *SessionEntry) []checkRef {
	refs := make([]checkRef, 0, len(s.NodeChecks)+len(s.ServiceChecks))
	for _, id := range s.NodeChecks {
		refs = append(refs, checkRef{s.Node, id})
	}
	for _, c := range s.ServiceChecks {
		refs = append(refs, checkRef{s.Node, c.ID})
	}
	return refs
}

func (st *state) putSession(s *SessionEntry) {
	if old := st.sessions[s.ID]; old != nil {
		st.unindexSession(old)
	}
	st.sessions[s.ID] = s
	addToSet(st.sessionsByNode, s.Node, s.ID)
	for _, ref := range sessionChecks(s) {
		addToSet(st.sessionsByCheck, ref, s.ID)
	}
}

func (st *state) delSession(id string) {
	if old := st.sessions[id]; old != nil {
		st.unindexSession(old)
		delete(st.sessions, id)
	}
}

func (st *state) unindexSession(s *SessionEntry) {
	removeFromSet(st.sessionsByNode, s.Node, s.ID)
	for _, ref := range sessionChecks(s) {
		removeFromSet(st.sessionsByCheck, ref, s.ID)
	}
}

func addToSet[K comparable](m map[K]map[string]struct{}, k K, v string) {
	set := m[k]
	if set == nil {
		set = map[string]struct{}{}
		m[k] = set
	}
	set[v] = struct{}{}
}

func removeFromSet[K comparable](m map[K]map[string]struct{}, k K, v string) {
	set := m[k]
	delete(set, v)
	if len(set) == 0 {
		delete(m, k)
	}
}
