package dnsserver

import (
	"net/netip"
	"slices"
	"strings"

	"github.com/miekg/dns"

	"roster/catalog"
)

// service answers [<tag>.]<service>.service[.<dc>] and the RFC 2782 forms:
// A/AAAA (or CNAME) per healthy instance, or SRV with the targets'
// addresses in Extra (section 8.3). Instances are shuffled so that clients
// taking the first record spread their load.
func (q *question) service() {
	insts := q.instances()
	if len(insts) == 0 {
		q.nameError() // unknown service or no healthy instance: NXDOMAIN
		return
	}
	// The instances may be shared (cache): shuffle a permutation instead.
	var orderBuf [64]int32
	order := orderBuf[:0]
	if len(insts) > len(orderBuf) {
		order = make([]int32, 0, len(insts))
	}
	for i := range insts {
		order = append(order, int32(i))
	}
	q.rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	ttl := q.p.serviceTTL(q.name.service)
	switch {
	case q.qtype == dns.TypeSRV:
		q.serviceSRV(insts, order, ttl)
	case isAddressType(q.qtype):
		q.serviceAddresses(insts, order, ttl)
	}
	if len(q.reply.Answer) == 0 {
		q.noData()
	}
}

// instances reads the healthy instances of the service, retrying in lower
// case when the question has capitals (DNS names are case-insensitive,
// the catalog's service names are not).
func (q *question) instances() []instance {
	insts := q.cache.instances(q.view, q.p, q.name.service, q.name.tag)
	if len(insts) == 0 && hasUpper(q.name.service) {
		q.name.service = strings.ToLower(q.name.service)
		insts = q.cache.instances(q.view, q.p, q.name.service, q.name.tag)
	}
	return insts
}

// address is where an instance is reached: the service's Address
// overrides the node's.
func (in *instance) address() string {
	if in.svcAddr != "" {
		return in.svcAddr
	}
	return in.nodeAddr
}

// serviceAddresses appends one A/AAAA/CNAME per distinct instance address,
// up to ARecordLimit. IPv4 records share one allocation.
func (q *question) serviceAddresses(insts []instance, order []int32, ttl uint32) {
	limit := q.p.cfg.ARecordLimit
	if limit == 0 {
		limit = len(insts)
	}
	q.reply.Answer = slices.Grow(q.reply.Answer, min(limit, len(insts)))
	block := q.sc.aRecords(min(limit, len(insts)))
	for _, i := range order {
		if len(q.reply.Answer) >= limit {
			return
		}
		addr := insts[i].address()
		var rr dns.RR
		if ip, err := netip.ParseAddr(addr); err == nil && ip.Unmap().Is4() {
			if q.qtype == dns.TypeAAAA {
				continue
			}
			block = append(block, aRecord{buf: ip.Unmap().As4()})
			r := &block[len(block)-1]
			r.rr.Hdr, r.rr.A = hdr(q.qname, dns.TypeA, ttl), r.buf[:]
			rr = &r.rr
		} else if rr = addressRR(q.qname, addr, ttl, q.qtype); rr == nil {
			continue
		}
		if duplicate(q.reply.Answer, rr, &q.seen) {
			continue
		}
		q.reply.Answer = append(q.reply.Answer, rr)
	}
}

// dedupScanLimit: below it duplicates are found by scanning (no
// allocation); above, a set is built.
const dedupScanLimit = 16

// duplicate reports whether rrs already holds a record with rr's data.
// Small sections are scanned; from dedupScanLimit records on, a set of the
// records' keys is built in seen (when empty) and kept up to date.
func duplicate(rrs []dns.RR, rr dns.RR, seen *map[rrKey]struct{}) bool {
	if len(rrs) < dedupScanLimit {
		return containsRR(rrs, rr)
	}
	if len(*seen) == 0 {
		if *seen == nil {
			*seen = make(map[rrKey]struct{}, 2*len(rrs))
		}
		for _, have := range rrs {
			(*seen)[keyOf(have)] = struct{}{}
		}
	}
	key := keyOf(rr)
	if _, dup := (*seen)[key]; dup {
		return true
	}
	(*seen)[key] = struct{}{}
	return false
}

// rrKey identifies a record by owner, type and data (not TTL), like
// dns.IsDuplicate, for the types answers are made of; other types are
// keyed by their text.
type rrKey struct {
	owner  string
	rrtype uint16
	addr   netip.Addr // A, AAAA
	target string     // CNAME, SRV; other types: the record's text
	port   uint16     // SRV
	weight uint16     // SRV
	prio   uint16     // SRV
}

func keyOf(rr dns.RR) rrKey {
	h := rr.Header()
	k := rrKey{owner: h.Name, rrtype: h.Rrtype}
	switch r := rr.(type) {
	case *dns.A:
		k.addr, _ = netip.AddrFromSlice(r.A.To4())
	case *dns.AAAA:
		k.addr, _ = netip.AddrFromSlice(r.AAAA.To16())
	case *dns.CNAME:
		k.target = r.Target
	case *dns.SRV:
		k.target, k.port, k.weight, k.prio = r.Target, r.Port, r.Weight, r.Priority
	default:
		k.target = strings.TrimPrefix(rr.String(), h.String())
	}
	return k
}

// containsRR reports whether rrs holds a record with the same data as rr.
func containsRR(rrs []dns.RR, rr dns.RR) bool {
	for _, have := range rrs {
		if dns.IsDuplicate(have, rr) {
			return true
		}
	}
	return false
}

// serviceSRV appends one SRV per instance (deduplicated on target and
// port) with the target's address in Extra. The target is the node's name
// when the instance uses the node's address, <hex>.addr.<dc>.<domain> when
// it has its own IP, and the hostname itself when its address is one. SRV
// and IPv4 records are allocated in blocks, one allocation each.
func (q *question) serviceSRV(insts []instance, order []int32, ttl uint32) {
	q.reply.Answer = slices.Grow(q.reply.Answer, len(insts))
	q.reply.Extra = slices.Grow(q.reply.Extra, len(insts)+1) // +1: the OPT echo
	block := q.sc.srvRecords(len(insts))
	aBlock := q.sc.aRecords(len(insts))
	seenExtra := q.sc.seenSet(1)
	for _, i := range order {
		in := &insts[i]
		target, addr := q.srvTarget(in)
		if target == "" {
			continue
		}
		block = append(block, dns.SRV{Hdr: hdr(q.qname, dns.TypeSRV, ttl), Priority: 1,
			Weight: in.weight, Port: in.port, Target: target})
		srv := &block[len(block)-1]
		if duplicate(q.reply.Answer, srv, &q.seen) {
			continue
		}
		q.reply.Answer = append(q.reply.Answer, srv)
		var extra dns.RR
		if ip, err := netip.ParseAddr(addr); err == nil && ip.Unmap().Is4() {
			aBlock = append(aBlock, aRecord{buf: ip.Unmap().As4()})
			r := &aBlock[len(aBlock)-1]
			r.rr.Hdr, r.rr.A = hdr(target, dns.TypeA, ttl), r.buf[:]
			extra = &r.rr
		} else {
			extra = addressRR(target, addr, ttl, dns.TypeANY)
		}
		if extra != nil && !duplicate(q.reply.Extra, extra, &seenExtra) {
			q.reply.Extra = append(q.reply.Extra, extra)
		}
	}
}

// srvTarget names the SRV target of in and the address that resolves it
// ("" when the target is a hostname, resolved elsewhere).
func (q *question) srvTarget(in *instance) (target, addr string) {
	if in.svcAddr != "" {
		ip, err := netip.ParseAddr(in.svcAddr)
		if err != nil {
			if _, ok := dns.IsDomainName(in.svcAddr); !ok {
				return "", ""
			}
			return dns.Fqdn(in.svcAddr), ""
		}
		return hexAddr(ip.Unmap()) + ".addr." + q.dc + "." + q.name.domain, in.svcAddr
	}
	target = in.localTarget
	if q.name.domain != q.p.domain || q.dc != q.p.cfg.Datacenter {
		target = q.nodeName(in.node)
		if _, ok := dns.IsDomainName(target); !ok {
			return "", ""
		}
	} else if !in.targetOK {
		return "", ""
	}
	return target, in.nodeAddr
}

// srvWeight is the instance's weight for its aggregated health: the
// warning weight if any check warns, else the passing weight. An instance
// registered without weights (both zero) weighs 1, Consul's default.
func srvWeight(e *catalog.ServiceEntry) uint16 {
	w := e.Service.Weights
	if w.Passing == 0 && w.Warning == 0 {
		return 1
	}
	weight := w.Passing
	if slices.ContainsFunc(e.Checks, func(c catalog.HealthCheck) bool { return c.Status == catalog.HealthWarning }) {
		weight = w.Warning
	}
	return uint16(min(max(weight, 0), 65535))
}
