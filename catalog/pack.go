package catalog

import (
	"slices"
	"strings"
	"unsafe"
)

// Apply decodes a registration with every string borrowed from the raft
// entry (lendingDecoder), and its service and check into a reused buffer:
// the entry may only be read during the call (raft.FSM), so whatever the
// store keeps must be copied, and only that is: ensureNode, ensureService
// and ensureCheck copy a record when they store it (ownNodeStrings and
// ownService here, newCheckRec in checkrec.go), each record's strings in
// one allocation. Copying
// the whole entry would keep its node section, map encodings, varints and
// status bytes alive with every new instance, and re-registering an
// unchanged instance (an agent's anti-entropy sync) now allocates nothing.

// maxPacked bounds the strings one packer gathers without allocating
// (ownNodeStrings, ownService); a record with more (a service with many
// tags) has the rest cloned one by one.
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

// finishInto copies the gathered strings into one buffer, each distinct
// value once, and repoints them there. The buffer is room, which lives in
// the same allocation as the record being packed, when the strings fit
// there (a record and its strings then cost one allocation instead of
// two), else a new one.
func (p *packer) finishInto(room []byte) {
	if p.n == 0 {
		return
	}
	buf := room[:0]
	if p.total > cap(room) {
		buf = make([]byte, 0, p.total)
	}
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

// ownedSvcRoom is the room for a stored service's strings inside its
// record: 40 bytes take the usual ID, name and a few tags, and keep the
// record in the 224-byte size class.
const ownedSvcRoom = 40

// ownedSvc is a stored service record with room for its strings.
type ownedSvc struct {
	registerSvc
	strs [ownedSvcRoom]byte
}

// ownService returns a copy of the lent service svc to store, its
// strings in one allocation of their own.
func ownService(svc *NodeService) *NodeService {
	b := &ownedSvc{registerSvc: registerSvc{svc: *svc}}
	s := &b.svc
	if n := len(s.Tags); n > 0 && n <= len(b.tags) {
		copy(b.tags[:], s.Tags)
		s.Tags = b.tags[:n:n]
	} else if n > 0 {
		s.Tags = slices.Clone(s.Tags)
	}
	var p packer
	p.add(&s.Kind)
	p.add(&s.ID)
	p.add(&s.Service)
	for i := range s.Tags {
		p.add(&s.Tags[i])
	}
	p.add(&s.Address)
	p.finishInto(b.strs[:])
	if len(s.TaggedAddresses) > 0 {
		m := make(map[string]ServiceAddress, len(s.TaggedAddresses))
		for k, v := range s.TaggedAddresses {
			v.Address = strings.Clone(v.Address)
			m[strings.Clone(k)] = v
		}
		s.TaggedAddresses = m
	}
	return s
}
