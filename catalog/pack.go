package catalog

import (
	"strings"
	"unsafe"
)

// Apply decodes a registration with every string borrowed from the raft
// entry (lendingDecoder): the entry may only be read during the call
// (raft.FSM), so whatever the store keeps must be copied. Copying the
// whole entry would keep its node section, map encodings, varints and
// status bytes alive with every new instance; packRegister instead copies
// just the strings a new instance keeps into one allocation, and repeated
// values (a check's ServiceID is its service's ID) once. The node's strings
// are copied by ensureNode when it stores a node, which an unchanged
// re-registration does not.

// maxPacked bounds the fields packRegister gathers without allocating;
// a registration with more (many checks) packs the rest one by one.
const maxPacked = 48

// packer gathers pointers to borrowed strings, then repoints them into
// one shared copy.
type packer struct {
	ptrs  [maxPacked]*string
	n     int
	total int
}

func (p *packer) add(s *string) {
	if *s == "" {
		return
	}
	if p.n == len(p.ptrs) {
		*s = strings.Clone(*s)
		return
	}
	p.ptrs[p.n] = s
	p.n++
	p.total += len(*s)
}

// finish copies the gathered strings into one buffer, each distinct value
// once, and repoints them there.
func (p *packer) finish() {
	if p.n == 0 {
		return
	}
	buf := make([]byte, 0, p.total)
	ptrs := p.ptrs[:p.n]
	for i, s := range ptrs {
		if j := indexEqual(ptrs[:i], *s); j >= 0 {
			*s = *ptrs[j] // already copied: share it
			continue
		}
		start := len(buf)
		buf = append(buf, *s...)
		*s = unsafe.String(unsafe.SliceData(buf[start:]), len(*s))
	}
}

// indexEqual returns the index of the first of ptrs whose string is s, or -1.
func indexEqual(ptrs []*string, s string) int {
	for j, q := range ptrs {
		if *q == s {
			return j
		}
	}
	return -1
}

// packRegister gives r's service and check strings storage of their own
// (see above). The node's are left borrowed (ensureNode copies them), and
// so are the fields the store never keeps from the command: a check's Node
// and ServiceName/ServiceTags are replaced with stored values, and its
// Status with a constant, before it is stored (register.go).
func packRegister(r *RegisterRequest) {
	var p packer
	if s := r.Service; s != nil {
		p.add(&s.Kind)
		p.add(&s.ID)
		p.add(&s.Service)
		for i := range s.Tags {
			p.add(&s.Tags[i])
		}
		p.add(&s.Address)
		if len(s.TaggedAddresses) > 0 {
			m := make(map[string]ServiceAddress, len(s.TaggedAddresses))
			for k, v := range s.TaggedAddresses {
				v.Address = strings.Clone(v.Address)
				m[strings.Clone(k)] = v
			}
			s.TaggedAddresses = m
		}
	}
	for i := range r.Checks {
		c := &r.Checks[i]
		for _, f := range [...]*string{&c.CheckID, &c.Name, &c.Notes, &c.Output, &c.ServiceID,
			&c.Type, &c.Interval, &c.Timeout} {
			p.add(f)
		}
		packDefinition(&p, &c.Definition)
	}
	p.finish()
}

func packDefinition(p *packer, def *HealthCheckDefinition) {
	for _, f := range [...]*string{&def.HTTP, &def.Method, &def.Body, &def.TLSServerName,
		&def.TCP, &def.UDP, &def.GRPC, &def.OSService, &def.Interval, &def.Timeout,
		&def.DeregisterCriticalServiceAfter} {
		p.add(f)
	}
	if len(def.Header) > 0 {
		h := make(map[string][]string, len(def.Header))
		for k, vs := range def.Header {
			own := make([]string, len(vs))
			for i, v := range vs {
				own[i] = strings.Clone(v)
			}
			h[strings.Clone(k)] = own
		}
		def.Header = h
	}
}
