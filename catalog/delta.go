package catalog

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
)

// The delta log: a fixed-capacity ring of the registry changes committed
// most recently, each stamped with its raft index. A client that holds the
// registry as of index N asks Since(N) and receives only what changed after
// N, with the range (From, To] the answer covers and the hashcode of the
// whole registry at To. Ranges chain: the next request asks Since(To), so a
// client sees a gap (From != its index) before it even checks the hash.
//
// The ring is not replicated and not in snapshots: it is rebuilt from the
// commands each server applies. After a restart or a snapshot restore it
// starts empty at the restored index, so a client older than that gets
// ErrTruncated and pulls the full registry once.

// ChangeKind says what happened to the registry.
type ChangeKind uint8

// Kinds of registry changes.
const (
	InstanceAdded ChangeKind = iota + 1
	InstanceUpdated
	InstanceRemoved
	// HealthChanged is an update in which only the instance's Health moved.
	HealthChanged
	NodeAdded
	NodeRemoved
)

var changeKindNames = [...]string{
	InstanceAdded:   "instance-added",
	InstanceUpdated: "instance-updated",
	InstanceRemoved: "instance-removed",
	HealthChanged:   "health-changed",
	NodeAdded:       "node-added",
	NodeRemoved:     "node-removed",
}

func (k ChangeKind) String() string {
	if int(k) < len(changeKindNames) && changeKindNames[k] != "" {
		return changeKindNames[k]
	}
	return fmt.Sprintf("change(%d)", uint8(k))
}

// MarshalText writes the kind's name, so JSON deltas read well.
func (k ChangeKind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// UnmarshalText parses a kind's name.
func (k *ChangeKind) UnmarshalText(b []byte) error {
	for i, name := range changeKindNames {
		if name != "" && name == string(b) {
			*k = ChangeKind(i)
			return nil
		}
	}
	return fmt.Errorf("unknown change kind %q", b)
}

// Change is one registry change. InstanceAdded carries the instance's full
// content, InstanceRemoved its last content, node changes only Node.
// HealthChanged carries Node, ID, Service and the new Health.
//
// A command's node changes are net: NodeAdded for a node it made present,
// NodeRemoved for one it made absent, none for a node it removed and
// re-added. They come before (added) and after (removed) the command's
// instance changes, so replaying a delta never meets an instance of an
// unknown node.
//
// InstanceUpdated is a patch: Instance holds Node, ID and Service (so a
// client can route it without a lookup) plus the fields named in Fields,
// with their new values; a field named in Fields but empty in Instance was
// cleared. Fields empty means Instance is the full content (as a server
// without patches sends it). Sending only what moved is what keeps a delta
// of re-registrations small next to a full pull (BenchmarkDeltaVsFull).
type Change struct {
	Index    uint64
	Kind     ChangeKind
	Node     string    `json:",omitempty"`
	Instance *Instance `json:",omitempty"`
	Fields   []string  `json:",omitempty"`
}

// The names a patch uses in Change.Fields: Instance's field names, less the
// key (Node, ID), which never changes.
const (
	fieldNodeAddress = "NodeAddress"
	fieldDatacenter  = "Datacenter"
	fieldService     = "Service"
	fieldTags        = "Tags"
	fieldAddress     = "Address"
	fieldPort        = "Port"
	fieldMeta        = "Meta"
	fieldHealth      = "Health"
)

// fieldSet is a set of patchable fields; bit i stands for fieldNames[i].
type fieldSet uint16

const (
	setNodeAddress fieldSet = 1 << iota
	setDatacenter
	setService
	setTags
	setAddress
	setPort
	setMeta
	setHealth
)

var fieldNames = [...]string{fieldNodeAddress, fieldDatacenter, fieldService, fieldTags,
	fieldAddress, fieldPort, fieldMeta, fieldHealth}

// names lists the set's fields in fieldNames order.
func (fs fieldSet) names() []string {
	var out []string
	for i, name := range fieldNames {
		if fs&(1<<i) != 0 {
			out = append(out, name)
		}
	}
	return out
}

// changedFields returns the set of fields that differ between a and b
// (same key; 0 if none differ). The patch an update carries is patchOf(b,
// changedFields(a, b)).
func changedFields(a, b *Instance) (fs fieldSet) {
	if a.NodeAddress != b.NodeAddress {
		fs |= setNodeAddress
	}
	if a.Datacenter != b.Datacenter {
		fs |= setDatacenter
	}
	if a.Service != b.Service {
		fs |= setService
	}
	if !slices.Equal(a.Tags, b.Tags) {
		fs |= setTags
	}
	if a.Address != b.Address {
		fs |= setAddress
	}
	if a.Port != b.Port {
		fs |= setPort
	}
	if !strMapsEqual(a.Meta, b.Meta) {
		fs |= setMeta
	}
	if a.Health != b.Health {
		fs |= setHealth
	}
	return fs
}

// applyPatch copies the named fields of patch into dst. It reports false
// if a name is not a patchable field (dst is then partly patched).
func applyPatch(dst, patch *Instance, fields []string) bool {
	for _, f := range fields {
		switch f {
		case fieldNodeAddress:
			dst.NodeAddress = patch.NodeAddress
		case fieldDatacenter:
			dst.Datacenter = patch.Datacenter
		case fieldService:
			dst.Service = patch.Service
		case fieldTags:
			dst.Tags = slices.Clone(patch.Tags)
		case fieldAddress:
			dst.Address = patch.Address
		case fieldPort:
			dst.Port = patch.Port
		case fieldMeta:
			dst.Meta = maps.Clone(patch.Meta)
		case fieldHealth:
			dst.Health = patch.Health
		default:
			return false
		}
	}
	return true
}

// Delta is the answer to Since: the changes in (From, To] and the registry
// hashcode at To. HashScheme is the scheme Hash was computed with (always
// HashScheme from a Store; 0 from a server older than the field): a Mirror
// refuses a delta of another scheme rather than report a hash mismatch.
type Delta struct {
	From       uint64
	To         uint64
	Hash       string
	HashScheme int
	Changes    []Change
}

// Registry is a full copy of the registry at Index, sorted by service name,
// node and ID, with its hashcode and the scheme of that hashcode (see Delta).
type Registry struct {
	Index      uint64
	Hash       string
	HashScheme int
	Instances  []Instance
}

// ErrTruncated reports that the delta log no longer covers the requested
// index (or never did, after a restart): pull the full registry instead.
var ErrTruncated = errors.New("catalog: delta log does not cover the requested index; pull the full registry")

// DefaultDeltaCapacity is the number of changes the ring keeps by default.
const DefaultDeltaCapacity = 4096

// deltaRing holds the last len(buf) changes in index order.
type deltaRing struct {
	buf   []ringEntry
	start int // position of the oldest change
	count int
	// floor is the highest index some change of which has been evicted (or
	// the index the ring started at). The ring holds every change with an
	// index above floor, so it can answer Since(n) exactly when n >= floor.
	floor uint64
	// pushed counts every change ever appended (for events and metrics).
	pushed uint64
}

// ringEntry is a Change as the ring keeps it: an instance change as the
// node and service records its content was built from (records never
// change, see instSlot) with its health, the patched fields as a set, so
// appending a change allocates nothing and an entry is 48 bytes, not the
// 190 of an Instance by value: the ring's 4,096 entries then stay in the
// CPU caches while registrations stream in. since turns entries into
// Changes (copies) for the caller.
type ringEntry struct {
	index  uint64
	n      *Node        // instance changes: the node record
	svc    *NodeService // instance changes: the service record
	node   string       // node changes
	kind   ChangeKind
	fields fieldSet // InstanceUpdated: the fields of the patch
	health uint8    // instance changes: the health (a statusCode)
}

// instEntry returns the ring entry of an instance change of kind at idx,
// whose content is n, svc and health.
func instEntry(idx uint64, kind ChangeKind, n *Node, svc *NodeService, health uint8, fields fieldSet) ringEntry {
	return ringEntry{index: idx, kind: kind, n: n, svc: svc, health: health, fields: fields}
}

// instance returns the entry's instance as its Change carries it: the
// whole content for an addition or removal, the key, name and health for
// a health change, the key, name and patched fields for an update
// (changedFields, patchOf). It shares the records' slices and maps.
func (e *ringEntry) instance() Instance {
	in := buildInstance(e.n, e.svc, e.health)
	switch e.kind {
	case InstanceAdded, InstanceRemoved:
		return in
	case HealthChanged:
		return Instance{Node: in.Node, ID: in.ID, Service: in.Service, Health: in.Health}
	}
	return patchOf(&in, e.fields)
}

// patchOf is the patch of an update to content in whose changed fields
// are fs: in's identity and those fields.
func patchOf(in *Instance, fs fieldSet) Instance {
	p := Instance{Node: in.Node, ID: in.ID, Service: in.Service}
	if fs&setNodeAddress != 0 {
		p.NodeAddress = in.NodeAddress
	}
	if fs&setDatacenter != 0 {
		p.Datacenter = in.Datacenter
	}
	if fs&setTags != 0 {
		p.Tags = in.Tags
	}
	if fs&setAddress != 0 {
		p.Address = in.Address
	}
	if fs&setPort != 0 {
		p.Port = in.Port
	}
	if fs&setMeta != 0 {
		p.Meta = in.Meta
	}
	if fs&setHealth != 0 {
		p.Health = in.Health
	}
	return p
}

// change returns the entry as a Change the caller owns.
func (e *ringEntry) change() Change {
	c := Change{Index: e.index, Kind: e.kind, Node: e.node}
	switch e.kind {
	case InstanceAdded, InstanceUpdated, InstanceRemoved, HealthChanged:
		in := e.instance().Clone()
		c.Instance = &in
	}
	if e.kind == InstanceUpdated {
		c.Fields = e.fields.names()
	}
	return c
}

func newDeltaRing(capacity int, floor uint64) deltaRing {
	return deltaRing{buf: make([]ringEntry, capacity), floor: floor}
}

func (r *deltaRing) at(i int) *ringEntry { return &r.buf[(r.start+i)%len(r.buf)] }

// push appends e, evicting the oldest change when full. e is written in
// one assignment: the entry holds pointers, so every separate write of it
// would pay the GC's write barrier again.
func (r *deltaRing) push(e *ringEntry) {
	if r.count == len(r.buf) {
		old := r.at(0)
		r.floor = max(r.floor, old.index)
		r.start = (r.start + 1) % len(r.buf)
		r.count--
	}
	*r.at(r.count) = *e
	r.count++
	r.pushed++
}

// since copies the changes with Index > n; ok is false if the ring cannot
// answer for n.
func (r *deltaRing) since(n uint64) ([]Change, bool) {
	if n < r.floor {
		return nil, false
	}
	first := sort.Search(r.count, func(i int) bool { return r.at(i).index > n })
	out := make([]Change, 0, r.count-first)
	for i := first; i < r.count; i++ {
		out = append(out, r.at(i).change())
	}
	return out, true
}
