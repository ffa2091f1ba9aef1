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
	entries := q.instances()
	if len(entries) == 0 {
		q.nameError() // unknown service or no healthy instance: NXDOMAIN
		return
	}
	q.rng.Shuffle(len(entries), func(i, j int) { entries[i], entries[j] = entries[j], entries[i] })
	ttl := q.p.serviceTTL(q.name.service)
	switch {
	case q.qtype == dns.TypeSRV:
		q.serviceSRV(entries, ttl)
	case isAddressType(q.qtype):
		q.serviceAddresses(entries, ttl)
	}
	if len(q.reply.Answer) == 0 {
		q.noData()
	}
}

// instances reads the healthy instances of the service, retrying in lower
// case when the question has capitals (DNS names are case-insensitive,
// the catalog's service names are not).
func (q *question) instances() []catalog.ServiceEntry {
	var tags []string
	if q.name.tag != "" {
		tags = []string{q.name.tag}
	}
	entries, _ := q.view.CheckServiceNodes(q.name.service, tags, q.p.cfg.OnlyPassing)
	if len(entries) == 0 && hasUpper(q.name.service) {
		q.name.service = strings.ToLower(q.name.service)
		entries, _ = q.view.CheckServiceNodes(q.name.service, tags, q.p.cfg.OnlyPassing)
	}
	return healthy(entries, q.p.cfg.OnlyPassing)
}

// instanceAddress is where an instance is reached: the service's Address
// overrides the node's.
func instanceAddress(e *catalog.ServiceEntry) string {
	if e.Service.Address != "" {
		return e.Service.Address
	}
	return e.Node.Address
}

// serviceAddresses appends one A/AAAA/CNAME per distinct instance address,
// up to ARecordLimit.
func (q *question) serviceAddresses(entries []catalog.ServiceEntry, ttl uint32) {
	limit := q.p.cfg.ARecordLimit
	for i := range entries {
		if limit > 0 && len(q.reply.Answer) >= limit {
			return
		}
		rr := addressRR(q.qname, instanceAddress(&entries[i]), ttl, q.qtype)
		if rr == nil || containsRR(q.reply.Answer, rr) {
			continue
		}
		q.reply.Answer = append(q.reply.Answer, rr)
	}
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
// it has its own IP, and the hostname itself when its address is one.
func (q *question) serviceSRV(entries []catalog.ServiceEntry, ttl uint32) {
	for i := range entries {
		e := &entries[i]
		target, extra := q.srvTarget(e, ttl)
		if target == "" {
			continue
		}
		srv := &dns.SRV{Hdr: hdr(q.qname, dns.TypeSRV, ttl), Priority: 1,
			Weight: srvWeight(e), Port: uint16(e.Service.Port), Target: target}
		if containsRR(q.reply.Answer, srv) {
			continue
		}
		q.reply.Answer = append(q.reply.Answer, srv)
		if extra != nil && !containsRR(q.reply.Extra, extra) {
			q.reply.Extra = append(q.reply.Extra, extra)
		}
	}
}

// srvTarget names the SRV target of e and the record that resolves it.
func (q *question) srvTarget(e *catalog.ServiceEntry, ttl uint32) (string, dns.RR) {
	nodeAddr := e.Node.Address
	svcAddr := e.Service.Address
	if svcAddr != "" && svcAddr != nodeAddr {
		ip, err := netip.ParseAddr(svcAddr)
		if err != nil {
			if _, ok := dns.IsDomainName(svcAddr); !ok {
				return "", nil
			}
			return dns.Fqdn(svcAddr), nil
		}
		target := hexAddr(ip.Unmap()) + ".addr." + q.dc + "." + q.name.domain
		return target, ipRR(target, ip, ttl, dns.TypeANY)
	}
	target := q.nodeName(e.Node.Node)
	return target, addressRR(target, nodeAddr, ttl, dns.TypeANY)
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
