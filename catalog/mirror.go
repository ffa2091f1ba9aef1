package catalog

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
)

// Mirror is a client's local copy of the registry, kept current by deltas
// (the HTTP client package drives it: full pull → Load, then Since → Apply in
// a loop). It checks two things on every delta and reports either failure,
// after which the caller pulls the full registry once and Loads it:
//
//  1. contiguity: a delta must start where the mirror is (From == Index), so
//     a lost or reordered response is caught before looking at content;
//  2. content: after applying, the mirror's own hashcode — the same sum of
//     SHA-256 digests the server keeps — must equal the delta's Hash.
//
// A Mirror is not safe for concurrent use; one goroutine owns it.
type Mirror struct {
	index     uint64
	instances map[InstanceKey]*instanceRec
	sum       sum256
	scratch   []byte
}

// Errors a Mirror reports. ErrGap and ErrHashMismatch mean "pull the full
// registry"; ErrHashScheme means a full pull would not help either.
var (
	ErrGap          = errors.New("catalog mirror: delta does not start at the mirror's index")
	ErrHashMismatch = errors.New("catalog mirror: hashcode differs from the server's after applying")
	ErrHashScheme   = errors.New("catalog mirror: the server computes the registry hashcode with another scheme")
)

// checkScheme refuses a response whose hashcode scheme is not this code's.
func checkScheme(scheme int) error {
	if scheme == HashScheme {
		return nil
	}
	server := fmt.Sprintf("scheme %d", scheme)
	if scheme == 0 {
		server = "an older scheme (the response names none: the server predates hashcode schemes)"
	}
	return fmt.Errorf("%w: the server uses %s, this client uses scheme %d; "+
		"upgrade the older side so that client and server run the same scheme", ErrHashScheme, server, HashScheme)
}

// NewMirror returns an empty mirror at index 0.
func NewMirror() *Mirror {
	return &Mirror{instances: map[InstanceKey]*instanceRec{}}
}

// Load replaces the mirror's content with a full registry and checks its
// hashcode. On ErrHashScheme nothing changed.
func (m *Mirror) Load(r Registry) error {
	if err := checkScheme(r.HashScheme); err != nil {
		return err
	}
	clear(m.instances)
	m.sum = sum256{}
	for i := range r.Instances {
		m.put(r.Instances[i].Clone())
	}
	m.index = r.Index
	if got := m.sum.String(); got != r.Hash {
		return fmt.Errorf("%w: full registry at index %d hashes to %s, server says %s", ErrHashMismatch, r.Index, got, r.Hash)
	}
	return nil
}

// Apply applies a delta. On ErrHashScheme or ErrGap nothing changed; on
// ErrHashMismatch the mirror holds the (wrong) result and must be reloaded.
func (m *Mirror) Apply(d Delta) error {
	if err := checkScheme(d.HashScheme); err != nil {
		return err
	}
	if d.From != m.index {
		return fmt.Errorf("%w: delta covers (%d, %d], mirror is at %d", ErrGap, d.From, d.To, m.index)
	}
	for i := range d.Changes {
		c := &d.Changes[i]
		switch c.Kind {
		case InstanceAdded:
			if c.Instance != nil {
				m.put(c.Instance.Clone())
			}
		case InstanceUpdated, HealthChanged:
			if err := m.patch(c); err != nil {
				m.index = d.To
				return err
			}
		case InstanceRemoved:
			if c.Instance != nil {
				m.remove(c.Instance.Key())
			}
		}
	}
	m.index = d.To
	if got := m.sum.String(); got != d.Hash {
		return fmt.Errorf("%w: at index %d the mirror hashes to %s, server says %s", ErrHashMismatch, d.To, got, d.Hash)
	}
	return nil
}

// patch applies an update. A patch to an instance the mirror lacks is
// skipped: the instance stays missing and the hash check reports it.
func (m *Mirror) patch(c *Change) error {
	if c.Instance == nil {
		return nil
	}
	if c.Kind == InstanceUpdated && len(c.Fields) == 0 {
		m.put(c.Instance.Clone()) // full content
		return nil
	}
	rec := m.instances[c.Instance.Key()]
	if rec == nil {
		return nil
	}
	if c.Kind == HealthChanged {
		m.moveHealth(rec, c.Instance.Health)
		return nil
	}
	in := rec.inst
	if !applyPatch(&in, c.Instance, c.Fields) {
		return fmt.Errorf("%w: change at index %d patches unknown fields %q", ErrHashMismatch, c.Index, c.Fields)
	}
	m.put(in)
	return nil
}

// moveHealth gives rec the health, as the server's moveHealth does: its
// content digest stands, only the instance level is digested again.
func (m *Mirror) moveHealth(rec *instanceRec, health string) {
	digest := healthDigest(&rec.content, health)
	m.sum.sub(&rec.digest)
	m.sum.add(&digest)
	rec.inst.Health, rec.digest = health, digest
}

func (m *Mirror) put(in Instance) {
	k := in.Key()
	m.remove(k)
	rec := &instanceRec{inst: in}
	rec.content, rec.digest, m.scratch = digestInstance(m.scratch, &rec.inst)
	m.instances[k] = rec
	m.sum.add(&rec.digest)
}

func (m *Mirror) remove(k InstanceKey) {
	if old := m.instances[k]; old != nil {
		m.sum.sub(&old.digest)
		delete(m.instances, k)
	}
}

// Index is the index the mirror is current as of.
func (m *Mirror) Index() uint64 { return m.index }

// Hash is the mirror's hashcode.
func (m *Mirror) Hash() string { return m.sum.String() }

// Len is the number of instances.
func (m *Mirror) Len() int { return len(m.instances) }

// Instances returns copies of the instances of service (all if ""), sorted
// by service, node and ID.
func (m *Mirror) Instances(service string) []Instance {
	var out []Instance
	for _, rec := range m.instances {
		if service == "" || rec.inst.Service == service {
			out = append(out, rec.inst.Clone())
		}
	}
	slices.SortFunc(out, func(a, b Instance) int {
		return cmp.Or(cmp.Compare(a.Service, b.Service), cmp.Compare(a.Node, b.Node), cmp.Compare(a.ID, b.ID))
	})
	return out
}
