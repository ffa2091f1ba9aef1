package catalog

import (
	"cmp"
	"crypto/sha256"
	"slices"
	"time"
)

// tx is the write path of one command. Every mutation goes through it, and
// it does three things around the raw setters of state.go:
//
//   - journals the record it replaces, so a failed transaction (or any
//     command that fails half-way) rolls back to exactly the state before;
//   - remembers what was touched (tables, services, nodes, KV keys, and
//     which instances may have changed content), so commit can stamp the
//     indexes, append to the delta log and wake only the affected watchers;
//   - defers everything that is not replicated state (the delta log, lock
//     delays, wake-ups) to commit, so a rollback has nothing to undo there.
//
// One tx is reused by every Apply; begin clears it.
type tx struct {
	st       *state
	index    uint64
	commitOK bool // false: roll back though the command result is not an error

	journal []undoRec

	tables   [numTables]bool
	services touchSet
	nodes    touchSet
	kvKeys   []string
	// dirty lists the instances whose content may have changed, with
	// repeats (commit sorts and compacts it): appending beats hashing two
	// strings into a set, and a command touches a handful of keys.
	dirty      []dirtyKey
	nodeEvents []Change
	lockDelays []lockDelayRec
	// lastTouched is the instance touchService marked last: a
	// registration touches its service three times (old record, new
	// record, its check) and the repeats need no set insertions.
	lastTouched struct{ node, id, service string }

	// lent says that the registration being applied is Apply's reused
	// one: its strings are the raft entry's and its service and check
	// live in a reused buffer, so ensureService and ensureCheck store
	// copies (pack.go).
	lent bool

	looks    []checkLookup // a registration's checks as validated (validateRegister)
	svcLook  slotLookup    // its service's slot as validated
	scratch  []byte        // canonical-encoding buffer for digests
	releases []string      // sorted keys of an invalidated session
}

type lockDelayRec struct {
	key   string
	delay time.Duration
}

type undoKind uint8

const (
	undoNode undoKind = iota + 1
	undoService
	undoCheck
	undoKV
	undoSession
	undoCoord
)

// undoRec restores one record: a is the node / key / session ID, b the
// service or check ID, old the previous record (nil: there was none), tomb
// the key's previous tombstone index.
type undoRec struct {
	kind undoKind
	a, b string
	old  any
	tomb uint64
}

// touchSet is the set of service or node names a command touched. A
// command touches a handful, so appending (dropping an immediate repeat)
// and sorting once at commit beats hashing each name into a map.
type touchSet struct{ names []string }

func (s *touchSet) add(name string) {
	if n := len(s.names); n > 0 && s.names[n-1] == name {
		return
	}
	s.names = append(s.names, name)
}

// list returns the names sorted, without repeats.
func (s *touchSet) list() []string {
	if len(s.names) > 1 {
		slices.Sort(s.names)
		s.names = slices.Compact(s.names)
	}
	return s.names
}

func (s *touchSet) reset() {
	clear(s.names) // drop references to old names
	s.names = s.names[:0]
}

func (t *tx) begin(st *state, idx uint64) {
	t.st, t.index, t.commitOK = st, idx, true
	clear(t.journal) // drop references to old records
	t.journal = t.journal[:0]
	t.tables = [numTables]bool{}
	t.services.reset()
	t.nodes.reset()
	clear(t.dirty) // drop references to old keys' strings
	t.dirty = t.dirty[:0]
	t.kvKeys = t.kvKeys[:0]
	t.nodeEvents = t.nodeEvents[:0]
	t.lockDelays = t.lockDelays[:0]
	t.lastTouched.node, t.lastTouched.id, t.lastTouched.service = "", "", ""
	t.svcLook = slotLookup{}
}

// rollback undoes the journal, newest first.
func (t *tx) rollback() {
	st := t.st
	for i := len(t.journal) - 1; i >= 0; i-- {
		u := &t.journal[i]
		switch u.kind {
		case undoNode:
			if old, _ := u.old.(*Node); old != nil {
				st.putNode(old)
			} else {
				st.delNode(u.a)
			}
		case undoService:
			if old, _ := u.old.(*NodeService); old != nil {
				st.putService(u.a, old, nil)
			} else {
				st.delService(u.a, u.b)
			}
		case undoCheck:
			if old, _ := u.old.(*checkRec); old != nil {
				st.putCheck(u.a, old)
			} else {
				st.delCheck(u.a, u.b)
			}
		case undoKV:
			if old, _ := u.old.(*KVPair); old != nil {
				st.putKV(old)
			} else {
				st.delKV(u.a, u.tomb)
			}
		case undoSession:
			if old, _ := u.old.(*SessionEntry); old != nil {
				st.putSession(old)
			} else {
				st.delSession(u.a)
			}
		case undoCoord:
			if old, _ := u.old.(*CoordinateEntry); old != nil {
				st.coords[u.a] = old
			} else {
				delete(st.coords, u.a)
			}
		}
	}
	t.begin(st, t.index)
}

// What a touch may have changed of an instance: its content (the node or
// service record moved) or only its health (a check moved).
const (
	checksOnly = false
	contentToo = true
)

// dirtyKey is an instance that may have changed; content is false when
// only its checks did, so commit can recompute just its health. slot, if
// set, is where the instance's slot was during the transaction: a hint
// that saves looking it up again, checked before use.
type dirtyKey struct {
	InstanceKey
	content bool
	// slot and gen are k's slot, if known, and its generation then: the
	// slot is trusted only while its generation is unchanged.
	slot *instSlot
	gen  uint32
}

// touchNode marks a node and every instance on it as changed.
func (t *tx) touchNode(name string, content bool) {
	t.nodes.add(name)
	for id, slot := range t.st.slots[name] {
		if slot.svc != nil {
			t.services.add(slot.svc.Service)
			t.markDirty(InstanceKey{Node: name, ID: id}, content)
		}
	}
}

// touchService marks instance id of service on node as changed.
func (t *tx) touchService(node, id, service string, content bool) {
	last := &t.lastTouched
	if last.node == node && last.id == id && last.service == service && node != "" {
		if content {
			t.markDirty(InstanceKey{Node: node, ID: id}, content)
		}
		return
	}
	last.node, last.id, last.service = node, id, service
	t.nodes.add(node)
	t.services.add(service)
	t.markDirty(InstanceKey{Node: node, ID: id}, content)
}

// markDirty records that instance k may have changed. An immediate repeat
// (a service and its check in one registration) is merged here; others
// at commit.
func (t *tx) markDirty(k InstanceKey, content bool) {
	if n := len(t.dirty); n > 0 && t.dirty[n-1].InstanceKey == k {
		t.dirty[n-1].content = t.dirty[n-1].content || content
		return
	}
	t.dirty = append(t.dirty, dirtyKey{InstanceKey: k, content: content})
}

// hintSlot records slot as k's, if k was marked dirty last.
func (t *tx) hintSlot(k InstanceKey, slot *instSlot) {
	if n := len(t.dirty); n > 0 && t.dirty[n-1].InstanceKey == k {
		t.dirty[n-1].slot, t.dirty[n-1].gen = slot, slot.gen
	}
}

// dirtyKeys returns the dirty instances sorted by key, each once (content
// set if any of its touches set it).
func (t *tx) dirtyKeys() []dirtyKey {
	keys := t.dirty
	if len(keys) < 2 {
		return keys
	}
	slices.SortFunc(keys, func(a, b dirtyKey) int {
		return cmp.Or(cmp.Compare(a.Node, b.Node), cmp.Compare(a.ID, b.ID))
	})
	out := keys[:1]
	for _, k := range keys[1:] {
		if last := &out[len(out)-1]; last.InstanceKey == k.InstanceKey {
			last.content = last.content || k.content
			if last.slot == nil {
				last.slot, last.gen = k.slot, k.gen
			}
		} else {
			out = append(out, k)
		}
	}
	return out
}

// touchCheck marks what a check's status feeds: its service instance, or
// for a node-level check every instance on the node.
func (t *tx) touchCheck(node, serviceID string) {
	if serviceID == "" {
		t.touchNode(node, checksOnly)
		return
	}
	t.nodes.add(node)
	if svc := t.st.service(node, serviceID); svc != nil {
		t.touchService(node, svc.ID, svc.Service, checksOnly)
	}
}

func (t *tx) setNode(n *Node) {
	old := t.st.nodes[n.Node]
	t.journal = append(t.journal, undoRec{kind: undoNode, a: n.Node, old: old})
	t.st.putNode(n)
	t.tables[TableNodes] = true
	t.touchNode(n.Node, contentToo)
	if old == nil {
		t.nodeEvents = append(t.nodeEvents, Change{Index: t.index, Kind: NodeAdded, Node: n.Node})
	}
}

func (t *tx) removeNode(name string) {
	old := t.st.nodes[name]
	if old == nil {
		return
	}
	t.journal = append(t.journal, undoRec{kind: undoNode, a: name, old: old})
	t.touchNode(name, contentToo)
	t.st.delNode(name)
	t.tables[TableNodes] = true
	t.nodeEvents = append(t.nodeEvents, Change{Index: t.index, Kind: NodeRemoved, Node: name})
}

// setService installs svc; old is the record it replaces (nil if none) and
// slot svc's slot, if the caller has it. It returns svc's slot.
func (t *tx) setService(node string, svc, old *NodeService, slot *instSlot) *instSlot {
	t.journal = append(t.journal, undoRec{kind: undoService, a: node, b: svc.ID, old: old})
	if old != nil {
		t.touchService(node, old.ID, old.Service, contentToo) // the old name's watchers, if it is renamed
	}
	slot = t.st.putService(node, svc, slot)
	t.tables[TableServices] = true
	t.touchService(node, svc.ID, svc.Service, contentToo)
	t.hintSlot(InstanceKey{Node: node, ID: svc.ID}, slot)
	return slot
}

func (t *tx) removeService(node, id string) {
	old := t.st.service(node, id)
	if old == nil {
		return
	}
	t.journal = append(t.journal, undoRec{kind: undoService, a: node, b: id, old: old})
	t.touchService(node, old.ID, old.Service, contentToo)
	t.st.delService(node, id)
	t.tables[TableServices] = true
}

// setCheck installs c on node (the stored name); look is the current
// lookup of c (its cell the one c replaces, zero if none) and target the
// slot c goes into, if the caller knows it.
func (t *tx) setCheck(node string, c *checkRec, look *checkLookup, target *instSlot) {
	old := look.cell
	serviceID := c.serviceID()
	t.journal = append(t.journal, undoRec{kind: undoCheck, a: node, b: c.checkID(), old: old.rec})
	if old.rec != nil {
		// Moved to another instance (or node level)? With the target
		// known, comparing slots decides it without the old record.
		moved := old.slot != target
		if target == nil {
			moved = old.rec.serviceID() != serviceID
		}
		if moved {
			t.touchCheck(node, old.rec.serviceID())
		}
	}
	slot := t.st.putCheckIn(node, c, look, target)
	t.tables[TableChecks] = true
	if serviceID == "" {
		t.touchCheck(node, "")
		return
	}
	t.touchService(node, serviceID, c.serviceName(), checksOnly)
	t.hintSlot(InstanceKey{Node: node, ID: serviceID}, slot)
}

func (t *tx) removeCheck(node, id string) {
	old := t.st.check(node, id)
	if old == nil {
		return
	}
	t.journal = append(t.journal, undoRec{kind: undoCheck, a: node, b: id, old: old})
	t.touchCheck(node, old.serviceID())
	t.st.delCheck(node, id)
	t.tables[TableChecks] = true
}

func (t *tx) setKV(p *KVPair) {
	t.journal = append(t.journal, undoRec{kind: undoKV, a: p.Key, old: t.st.kv[p.Key], tomb: t.st.tombstones[p.Key]})
	t.st.putKV(p)
	t.tables[TableKV] = true
	t.kvKeys = append(t.kvKeys, p.Key)
}

// removeKV deletes key, leaving a tombstone at this index.
func (t *tx) removeKV(key string) {
	old := t.st.kv[key]
	if old == nil {
		return
	}
	t.journal = append(t.journal, undoRec{kind: undoKV, a: key, old: old, tomb: t.st.tombstones[key]})
	t.st.delKV(key, t.index)
	t.tables[TableKV] = true
	t.kvKeys = append(t.kvKeys, key)
}

func (t *tx) setSession(s *SessionEntry) {
	t.journal = append(t.journal, undoRec{kind: undoSession, a: s.ID, old: t.st.sessions[s.ID]})
	t.st.putSession(s)
	t.tables[TableSessions] = true
}

func (t *tx) removeSession(id string) {
	old := t.st.sessions[id]
	if old == nil {
		return
	}
	t.journal = append(t.journal, undoRec{kind: undoSession, a: id, old: old})
	t.st.delSession(id)
	t.tables[TableSessions] = true
}

func (t *tx) setCoordinate(c *CoordinateEntry) {
	t.journal = append(t.journal, undoRec{kind: undoCoord, a: c.Node, old: t.st.coords[c.Node]})
	t.st.coords[c.Node] = c
	t.tables[TableCoordinates] = true
}

func (t *tx) removeCoordinate(node string) {
	old := t.st.coords[node]
	if old == nil {
		return
	}
	t.journal = append(t.journal, undoRec{kind: undoCoord, a: node, old: old})
	delete(t.st.coords, node)
	t.tables[TableCoordinates] = true
}

// updateCoordinates stores a batch; coordinates of unknown nodes are
// ignored, as Consul does (the node may have been deregistered meanwhile).
// A node is found under any case of its name (nodename.go).
func (t *tx) updateCoordinates(r *CoordinateBatchRequest) {
	for i := range r.Updates {
		c := &r.Updates[i]
		c.Node = t.st.nodeName(c.Node)
		if t.st.nodes[c.Node] != nil {
			t.setCoordinate(c)
		}
	}
}

// reapTombstones forgets tombstones at or below idx. It bumps no index:
// nothing visible changed.
func (t *tx) reapTombstones(idx uint64) {
	for _, key := range sortedKeys(t.st.tombstones) {
		if tomb := t.st.tombstones[key]; tomb <= idx {
			t.journal = append(t.journal, undoRec{kind: undoKV, a: key, tomb: tomb})
			t.st.delTombstone(key)
		}
	}
}

// appendRegistryChanges recomputes the content of every instance the
// transaction may have changed, updates the hashcode by the difference and
// appends the changes to the ring. Keys are visited in sorted order so every
// server appends the same changes in the same order. It reports whether
// anything was appended.
//
// Node events are the command's net ones (netNodeEvents): the nodes it
// added come first, so a consumer knows a node before its instances, and
// the nodes it removed last, after their instances.
func (t *tx) appendRegistryChanges(ring *deltaRing) bool {
	before := ring.pushed
	events := t.netNodeEvents()
	for _, ev := range events {
		if ev.Kind == NodeAdded {
			ring.push(&ringEntry{index: ev.Index, kind: ev.Kind, node: ev.Node})
		}
	}
	for _, k := range t.dirtyKeys() {
		t.refresh(k, ring)
	}
	for _, ev := range events {
		if ev.Kind == NodeRemoved {
			ring.push(&ringEntry{index: ev.Index, kind: ev.Kind, node: ev.Node})
		}
	}
	return ring.pushed != before
}

// netNodeEvents reduces the command's node events to one per name whose
// presence the command changed, sorted by name: added if the node is
// present now and was not before, removed for the reverse, nothing if
// both or neither. A command may remove and re-add a name (a node delete
// then a set of it in one transaction, or two renames that come back to
// the first case; nodename.go), and the delta log promises that replaying
// a command's node events on the node set before it gives the one after.
//
// A name's events alternate (setNode records an addition only of an absent
// node, removeNode a removal only of a present one), so its first event
// says whether it was present before the command.
func (t *tx) netNodeEvents() []Change {
	evs := t.nodeEvents
	if len(evs) == 0 {
		return evs
	}
	slices.SortStableFunc(evs, func(a, b Change) int { return cmp.Compare(a.Node, b.Node) })
	out := evs[:0] // in place: at most one event per name, written behind the reads
	for i := 0; i < len(evs); {
		ev := evs[i]
		i++
		for i < len(evs) && evs[i].Node == ev.Node {
			i++
		}
		was, is := ev.Kind == NodeRemoved, t.st.nodes[ev.Node] != nil
		switch {
		case is && !was:
			ev.Kind = NodeAdded
		case was && !is:
			ev.Kind = NodeRemoved
		default:
			continue
		}
		out = append(out, ev)
	}
	return out
}

// hintedSlot returns k's slot, trusting hint if it still is k's: a slot
// released since (and perhaps reused for another key) has a newer
// generation than gen, the one it had when it was k's.
func (st *state) hintedSlot(k InstanceKey, hint *instSlot, gen uint32) *instSlot {
	if hint != nil && hint.gen == gen {
		return hint
	}
	return st.slot(k)
}

// refresh brings the cached instance k and the hashcode up to date and
// appends the change to ring, if its content changed.
//
// A health change is by far the most frequent: an instance whose node
// and service records are those its content was built from needs neither
// a diff nor (unless its health moved) a digest, and if only its checks
// were touched (k.content false), its node record is the cached one and
// needs no lookup either.
func (t *tx) refresh(k dirtyKey, ring *deltaRing) {
	st := t.st
	slot := st.hintedSlot(k.InstanceKey, k.slot, k.gen)
	var n *Node
	var svc *NodeService
	if slot != nil && slot.svc != nil {
		svc = slot.svc
		if !k.content && slot.instSvc == svc {
			n = slot.instNode
		} else {
			n = st.nodes[k.Node]
		}
	}
	if svc == nil || n == nil {
		t.removeInstance(k.InstanceKey, slot, ring)
		return
	}
	health := st.instanceHealth(k.InstanceKey, slot)
	if slot.instSvc == svc && slot.instNode == n {
		if health != slot.health {
			t.changeHealth(slot, health, ring)
		}
		return
	}
	in := buildInstance(n, svc, health)
	var content, digest [sha256.Size]byte
	content, digest, t.scratch = digestInstance(t.scratch, &in)
	if slot.hasInst() && slot.digest == digest {
		slot.instNode, slot.instSvc = n, svc // equal content, newer records
		return
	}
	st.hash.add(&digest)
	h := instHash{health: health, content: content, digest: digest}
	if !slot.hasInst() {
		slot.instNode, slot.instSvc, slot.instHash = n, svc, h
		st.numInstances++
		e := instEntry(t.index, InstanceAdded, n, svc, health, 0)
		ring.push(&e)
		return
	}
	st.hash.sub(&slot.digest)
	// An update carries only what moved (delta.go): the most frequent one
	// by far, a health flip, is a kind of its own that names no fields.
	old := slot.cachedInstance()
	fields := changedFields(&old, &in)
	slot.instNode, slot.instSvc, slot.instHash = n, svc, h
	kind := InstanceUpdated
	if fields == setHealth {
		kind = HealthChanged
	}
	e := instEntry(t.index, kind, n, svc, health, fields)
	ring.push(&e)
}

// changeHealth moves the slot's cached instance, whose records are
// current, to health. The hashcode's part reads the slot's digests only
// (moveHealth); the records are the ring entry's, read when a delta is
// served.
func (t *tx) changeHealth(slot *instSlot, health uint8, ring *deltaRing) {
	if t.st.skipHash {
		slot.health = health
	} else {
		t.st.hash.moveHealth(&slot.instHash, health)
	}
	e := instEntry(t.index, HealthChanged, slot.instNode, slot.instSvc, health, 0)
	ring.push(&e)
}

// removeInstance drops k's cached instance, if it had one: its service or
// node is gone.
func (t *tx) removeInstance(k InstanceKey, slot *instSlot, ring *deltaRing) {
	if slot == nil || !slot.hasInst() {
		return
	}
	t.st.hash.sub(&slot.digest)
	e := instEntry(t.index, InstanceRemoved, slot.instNode, slot.instSvc, slot.health, 0)
	ring.push(&e)
	slot.clearInst()
	t.st.numInstances--
	t.st.dropIfEmpty(k, slot)
}

// instanceHealth aggregates the node-level checks and the instance's own
// (a statusCode): any critical → critical, else any warning → warning,
// else passing. No checks counts as passing, as in Consul.
func (st *state) instanceHealth(k InstanceKey, slot *instSlot) uint8 {
	health := uint8(codePassing)
	var own []*checkRec
	if slot != nil {
		own = slot.checks
	}
	for _, set := range [2][]*checkRec{st.checksFor(InstanceKey{Node: k.Node}), own} {
		for _, c := range set {
			switch c.status {
			case codeCritical:
				return codeCritical
			case codeWarning:
				health = codeWarning
			}
		}
	}
	return health
}
