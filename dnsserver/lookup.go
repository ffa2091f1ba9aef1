package dnsserver

import (
	"net"
	"net/netip"
	"slices"
	"strings"

	"github.com/miekg/dns"

	"roster/catalog"
)

// addressRR is the record for addr under name, for a question of qtype:
// A for an IPv4 address (if qtype is A or ANY), AAAA for IPv6 (AAAA or
// ANY), a CNAME for a hostname (any address qtype). nil when the address
// has no record of that type, or is empty.
func addressRR(name, addr string, ttl uint32, qtype uint16) dns.RR {
	if addr == "" {
		return nil
	}
	ip, err := netip.ParseAddr(addr)
	if err != nil {
		if _, ok := dns.IsDomainName(addr); !ok {
			return nil
		}
		return &dns.CNAME{Hdr: hdr(name, dns.TypeCNAME, ttl), Target: dns.Fqdn(addr)}
	}
	return ipRR(name, ip, ttl, qtype)
}

// aRecord and aaaaRecord carry the address bytes with the record, so one
// allocation builds both.
type aRecord struct {
	rr  dns.A
	buf [4]byte
}

type aaaaRecord struct {
	rr  dns.AAAA
	buf [16]byte
}

// ipRR is the A or AAAA record of ip, or nil when qtype asks for the other
// family.
func ipRR(name string, ip netip.Addr, ttl uint32, qtype uint16) dns.RR {
	ip = ip.Unmap()
	if ip.Is4() {
		if qtype != dns.TypeA && qtype != dns.TypeANY {
			return nil
		}
		r := &aRecord{buf: ip.As4()}
		r.rr.Hdr, r.rr.A = hdr(name, dns.TypeA, ttl), net.IP(r.buf[:])
		return &r.rr
	}
	if qtype != dns.TypeAAAA && qtype != dns.TypeANY {
		return nil
	}
	r := &aaaaRecord{buf: ip.As16()}
	r.rr.Hdr, r.rr.AAAA = hdr(name, dns.TypeAAAA, ttl), net.IP(r.buf[:])
	return &r.rr
}

// isAddressType reports whether qtype asks for addresses.
func isAddressType(qtype uint16) bool {
	return qtype == dns.TypeA || qtype == dns.TypeAAAA || qtype == dns.TypeANY
}

// node answers <node>.node[.<dc>]: A/AAAA (CNAME for a hostname) and TXT
// from the node's meta (section 8.3).
func (q *question) node() {
	node := q.cache.node(q.view, q.name.node)
	if node == nil && hasUpper(q.name.node) {
		node = q.cache.node(q.view, strings.ToLower(q.name.node))
	}
	if node == nil {
		q.nameError()
		return
	}
	ttl := q.p.nodeTTL
	if isAddressType(q.qtype) {
		if rr := addressRR(q.qname, node.Address, ttl, q.qtype); rr != nil {
			q.reply.Answer = append(q.reply.Answer, rr)
		}
	}
	switch q.qtype {
	case dns.TypeTXT, dns.TypeANY:
		q.reply.Answer = appendMetaTXT(q.reply.Answer, q.qname, node.Meta, ttl)
	case dns.TypeA, dns.TypeAAAA:
		if len(q.reply.Answer) > 0 {
			q.reply.Extra = appendMetaTXT(q.reply.Extra, q.qname, node.Meta, ttl)
		}
	}
	if len(q.reply.Answer) == 0 {
		q.noData()
	}
}

// appendMetaTXT appends one TXT record per meta pair, sorted by key, in RFC
// 1464 form "key=value"; keys prefixed "rfc1035-" give the bare value.
func appendMetaTXT(rrs []dns.RR, name string, meta map[string]string, ttl uint32) []dns.RR {
	if len(meta) == 0 {
		return rrs
	}
	keys := make([]string, 0, len(meta))
	for k := range meta {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		txt := k + "=" + meta[k]
		if strings.HasPrefix(k, "rfc1035-") {
			txt = meta[k]
		}
		rrs = append(rrs, &dns.TXT{Hdr: hdr(name, dns.TypeTXT, ttl), Txt: txtStrings(txt)})
	}
	return rrs
}

// maxTXTString is the longest character-string of a TXT record (RFC 1035
// §3.3: one length byte).
const maxTXTString = 255

// txtStrings splits s into TXT character-strings of at most 255 bytes and
// escapes backslashes, which miekg/dns reads as presentation-format
// escapes when packing.
func txtStrings(s string) []string {
	var out []string
	for len(s) > maxTXTString {
		out = append(out, strings.ReplaceAll(s[:maxTXTString], `\`, `\\`))
		s = s[maxTXTString:]
	}
	return append(out, strings.ReplaceAll(s, `\`, `\\`))
}

// addr answers <hex>.addr[.<dc>]: the address encoded in the name. A
// record of another type than asked goes to Extra (section 8.2).
func (q *question) addr() {
	ip, ok := parseHexAddr(q.name.addr)
	if !ok {
		q.nameError()
		return
	}
	rr := ipRR(q.qname, ip, q.p.nodeTTL, dns.TypeANY)
	if rr.Header().Rrtype == q.qtype || q.qtype == dns.TypeANY {
		q.reply.Answer = append(q.reply.Answer, rr)
		return
	}
	q.reply.Extra = append(q.reply.Extra, rr)
	q.noData()
}

// reverse answers PTR questions under in-addr.arpa / ip6.arpa: a node with
// that address, else a service instance with it (section 8.2). Unknown
// addresses go to the recursors, or get NXDOMAIN without them.
func (q *question) reverse() outcome {
	q.dc = q.p.cfg.Datacenter
	q.name.domain = q.p.domain
	ip, ok := parseReverse(q.qname)
	if ok {
		if target := q.reverseTarget(ip); validName(target) {
			q.reply.Authoritative = true
			q.reply.Answer = append(q.reply.Answer, &dns.PTR{Hdr: hdr(q.qname, dns.TypePTR, q.p.nodeTTL), Ptr: target})
			return outcome{reply: q.reply}
		}
	}
	if len(q.p.recursors) > 0 {
		q.reply.Rcode = dns.RcodeServerFailure
		return outcome{reply: q.reply, next: nextRecurse}
	}
	q.reply.Rcode = dns.RcodeNameError
	return outcome{reply: q.reply}
}

// reverseTarget names ip: its node, else a service instance with that
// address.
func (q *question) reverseTarget(ip netip.Addr) string {
	node, service := q.cache.reverse(q.view, ip)
	switch {
	case node != "":
		return q.nodeName(node)
	case service != "":
		return service + ".service." + q.dc + "." + q.name.domain
	}
	return ""
}

// validName reports whether name packs as a DNS name (non-empty labels of
// at most 63 bytes, at most 255 in all).
func validName(name string) bool {
	_, ok := dns.IsDomainName(name)
	return ok && name != ""
}

func hasUpper(s string) bool {
	return strings.IndexFunc(s, func(r rune) bool { return r >= 'A' && r <= 'Z' }) >= 0
}

// healthy filters entries in place (section 8.3): with onlyPassing every
// check must pass (the catalog already did that); otherwise an instance
// is dropped when any of its checks — its own or its node's, such as
// serfHealth (section 10.2) — is critical.
func healthy(entries []catalog.ServiceEntry, onlyPassing bool) []catalog.ServiceEntry {
	if onlyPassing {
		return entries
	}
	return slices.DeleteFunc(entries, func(e catalog.ServiceEntry) bool {
		return slices.ContainsFunc(e.Checks, func(c catalog.HealthCheck) bool {
			return c.Status == catalog.HealthCritical || c.Status == catalog.HealthMaintenance
		})
	})
}
