package dnsserver

import (
	"math/rand/v2"
	"strings"

	"github.com/miekg/dns"

	"roster/catalog"
)

// Transport is how a question arrived; it decides the reply size limit.
type Transport uint8

const (
	UDP Transport = iota
	TCP
)

func (t Transport) String() string {
	if t == TCP {
		return "tcp"
	}
	return "udp"
}

// next is what the shell must do with an outcome.
type next uint8

const (
	nextReply   next = iota // send reply as it is
	nextForward             // ask datacenter dc (Forwarder); reply is the SERVFAIL fallback
	nextRecurse             // ask the recursors; reply is the REFUSED/NXDOMAIN fallback
)

// outcome is the result of answer: a reply, and whether the shell must do
// I/O (forwarding or recursion) instead of sending it.
type outcome struct {
	reply *dns.Msg
	next  next
	dc    string // nextForward: the datacenter asked
}

// question is one DNS question being answered: the inputs of answer and the
// reply being built. It lives for one call.
type question struct {
	req    *dns.Msg
	reply  *dns.Msg
	view   catalog.Reader
	cache  *lookupCache // nil: read through
	p      *policy
	rng    *rand.Rand
	sc     *scratch // nil: records are allocated
	serial uint32   // SOA serial: the caller's clock, in Unix seconds

	qname string
	qtype uint16
	name  parsedName
	dc    string // datacenter for the names we build (never "")

	seen map[rrKey]struct{} // dedup set for large answers, built lazily
}

// answer computes the reply to req from the catalog view (through cache,
// which is transparent; nil reads through). It is pure: no
// sockets, no clock (serial is the SOA serial, Unix seconds of the
// caller's clock), randomness only from rng. Questions that need I/O
// (another datacenter, names outside the domain) come back with next set
// and a fallback reply for when that I/O is impossible. The reply already
// fits the transport's size limit (section 8.5).
func answer(req *dns.Msg, view catalog.Reader, cache *lookupCache, p *policy, rng *rand.Rand, tr Transport, serial uint32) outcome {
	return answerInto(new(dns.Msg), nil, req, view, cache, p, rng, tr, serial)
}

// answerInto is answer building the reply in reply (whatever it held
// before is dropped, its sections' storage reused) with records from sc
// (nil: allocated), so that a caller answering question after question
// allocates almost nothing. The reply and its records are valid until the
// next call with the same reply or scratch.
func answerInto(reply *dns.Msg, sc *scratch, req *dns.Msg, view catalog.Reader, cache *lookupCache, p *policy,
	rng *rand.Rand, tr Transport, serial uint32) outcome {
	initReply(reply, req)
	reply.Compress = true
	reply.RecursionAvailable = len(p.recursors) > 0
	if rcode, ok := checkRequest(req); !ok {
		reply.Rcode = rcode
		echoEDNS(reply, req, sc)
		return outcome{reply: reply}
	}
	q := question{req: req, reply: reply, view: view, cache: cache, p: p, rng: rng, sc: sc, serial: serial,
		qname: req.Question[0].Name, qtype: req.Question[0].Qtype, seen: sc.seenSet(0)}
	out := q.dispatch()
	echoEDNS(reply, req, sc)
	fit(reply, req, p, tr)
	return out
}

// initReply makes reply an empty reply to req, as dns.Msg.SetReply does
// for a new message, but keeping the storage of reply's sections.
func initReply(reply, req *dns.Msg) {
	qs, an, ns, ex := reply.Question[:0], reply.Answer[:0], reply.Ns[:0], reply.Extra[:0]
	*reply = dns.Msg{Question: qs, Answer: an, Ns: ns, Extra: ex}
	reply.Id, reply.Response, reply.Opcode = req.Id, true, req.Opcode
	if req.Opcode == dns.OpcodeQuery {
		reply.RecursionDesired, reply.CheckingDisabled = req.RecursionDesired, req.CheckingDisabled
	}
	if len(req.Question) > 0 {
		reply.Question = append(reply.Question, req.Question[0])
	}
}

// scratch is memory that one caller of answerInto reuses from question to
// question: the records of a reply are built in its blocks and stay valid
// until the next question. Each block is handed out at most once per
// question. A nil scratch allocates every block.
type scratch struct {
	a    []aRecord
	srv  []dns.SRV
	opt  dns.OPT
	seen [2]map[rrKey]struct{} // dedup sets: answers, extra
}

// seenSet is dedup set i, empty (nil without scratch: built on demand).
func (sc *scratch) seenSet(i int) map[rrKey]struct{} {
	if sc == nil {
		return nil
	}
	if sc.seen[i] == nil {
		sc.seen[i] = map[rrKey]struct{}{}
	}
	clear(sc.seen[i])
	return sc.seen[i]
}

// aRecords is an empty block for n A records.
func (sc *scratch) aRecords(n int) []aRecord {
	if sc == nil {
		return make([]aRecord, 0, n)
	}
	if cap(sc.a) < n {
		sc.a = make([]aRecord, 0, max(n, 2*cap(sc.a)))
	}
	return sc.a[:0]
}

// srvRecords is an empty block for n SRV records.
func (sc *scratch) srvRecords(n int) []dns.SRV {
	if sc == nil {
		return make([]dns.SRV, 0, n)
	}
	if cap(sc.srv) < n {
		sc.srv = make([]dns.SRV, 0, max(n, 2*cap(sc.srv)))
	}
	return sc.srv[:0]
}

// newOPT is an empty OPT record.
func (sc *scratch) newOPT() *dns.OPT {
	if sc == nil {
		return new(dns.OPT)
	}
	sc.opt = dns.OPT{Option: sc.opt.Option[:0]}
	return &sc.opt
}

// checkRequest rejects what is not a plain query with one question
// (RFC 1035 §4.1.1, RFC 6891 §6.1.3 for EDNS versions).
func checkRequest(req *dns.Msg) (rcode int, ok bool) {
	switch {
	case req.Response || len(req.Question) != 1:
		return dns.RcodeFormatError, false
	case req.Opcode != dns.OpcodeQuery:
		return dns.RcodeNotImplemented, false
	case req.Question[0].Qclass != dns.ClassINET && req.Question[0].Qclass != dns.ClassANY:
		return dns.RcodeNotImplemented, false
	}
	if opt := req.IsEdns0(); opt != nil && opt.Version() != 0 {
		return dns.RcodeBadVers, false
	}
	return dns.RcodeSuccess, true
}

// dispatch routes the question by name (spec section 8.2).
func (q *question) dispatch() outcome {
	rest, domain, ok := q.p.matchDomain(q.qname)
	if !ok {
		if isReverse(q.qname) && (q.qtype == dns.TypePTR || q.qtype == dns.TypeANY) {
			return q.reverse()
		}
		return q.outside()
	}
	q.reply.Authoritative = true
	q.name = parseName(rest, domain)
	q.dc = q.p.cfg.Datacenter
	// addr names encode their answer: any datacenter's is answered here.
	if q.name.dc != "" && !strings.EqualFold(q.name.dc, q.p.cfg.Datacenter) && q.name.kind != kindAddr {
		q.reply.Rcode = dns.RcodeServerFailure
		return outcome{reply: q.reply, next: nextForward, dc: q.name.dc}
	}
	if q.qtype == dns.TypeAXFR || q.qtype == dns.TypeIXFR {
		q.reply.Rcode = dns.RcodeNotImplemented
		return outcome{reply: q.reply}
	}
	switch q.name.kind {
	case kindApex:
		q.apex()
	case kindNode:
		q.node()
	case kindService:
		q.service()
	case kindAddr:
		q.addr()
	default: // invalid names and prepared queries (not supported)
		q.nameError()
	}
	return outcome{reply: q.reply}
}

// outside answers a name outside the domain: the recursors if any, else
// REFUSED (what miekg/dns's ServeMux answers in Consul, section 8.6).
func (q *question) outside() outcome {
	q.reply.Rcode = dns.RcodeRefused
	if len(q.p.recursors) > 0 {
		q.reply.Rcode = dns.RcodeServerFailure
		return outcome{reply: q.reply, next: nextRecurse}
	}
	return outcome{reply: q.reply}
}

// nameError is NXDOMAIN with the SOA in the authority section (RFC 2308 §3).
func (q *question) nameError() {
	q.reply.Rcode = dns.RcodeNameError
	q.reply.Ns = append(q.reply.Ns, q.soa())
}

// noData is NOERROR, no answer, SOA in authority (RFC 2308 §2.2).
func (q *question) noData() {
	q.reply.Ns = append(q.reply.Ns, q.soa())
}

// soa is the zone's SOA (section 8.4), named as the question spells the
// domain.
func (q *question) soa() dns.RR {
	d, c := q.name.domain, q.p.cfg.SOA
	if d == "" {
		d = q.p.domain
	}
	return &dns.SOA{
		Hdr:     dns.RR_Header{Name: d, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: c.MinTTLSecs},
		Ns:      "ns." + d,
		Mbox:    "hostmaster." + d,
		Serial:  q.serial,
		Refresh: c.RefreshSecs,
		Retry:   c.RetrySecs,
		Expire:  c.ExpireSecs,
		Minttl:  c.MinTTLSecs,
	}
}

// nodeName is "<node>.node.<dc>.<domain>", the SRV/NS/PTR target of a node.
func (q *question) nodeName(node string) string {
	return node + ".node." + q.dc + "." + q.name.domain
}

// apex answers the domain itself: SOA and NS (section 8.1).
func (q *question) apex() {
	switch q.qtype {
	case dns.TypeSOA:
		q.reply.Answer = append(q.reply.Answer, q.soa())
		q.reply.Ns = q.nameServers(q.reply.Ns)
	case dns.TypeNS:
		q.reply.Answer = q.nameServers(q.reply.Answer)
	case dns.TypeANY:
		q.reply.Answer = append(q.reply.Answer, q.soa())
		q.reply.Answer = q.nameServers(q.reply.Answer)
	default:
		q.noData()
	}
}

// maxNameServers is how many NS records the apex lists (Consul: 3).
const maxNameServers = 3

// nameServers appends NS records for up to three healthy servers (the
// instances of the "consul" service) to section, with A/AAAA glue in Extra.
// Without servers it names ns.<domain>, the SOA's MNAME.
func (q *question) nameServers(section []dns.RR) []dns.RR {
	servers := q.cache.instances(q.view, q.p, "consul", "")
	ttl := q.p.nodeTTL
	added := 0
	for i := range servers {
		if added == maxNameServers {
			break
		}
		target := q.nodeName(servers[i].node)
		glue := addressRR(target, servers[i].nodeAddr, ttl, dns.TypeANY)
		if _, ok := dns.IsDomainName(target); !ok || glue == nil {
			continue
		}
		section = append(section, &dns.NS{Hdr: hdr(q.name.domain, dns.TypeNS, ttl), Ns: target})
		q.reply.Extra = append(q.reply.Extra, glue)
		added++
	}
	if added == 0 {
		section = append(section, &dns.NS{Hdr: hdr(q.name.domain, dns.TypeNS, ttl), Ns: "ns." + q.name.domain})
	}
	return section
}

// hdr is a record header of class IN.
func hdr(name string, rrtype uint16, ttl uint32) dns.RR_Header {
	return dns.RR_Header{Name: name, Rrtype: rrtype, Class: dns.ClassINET, Ttl: ttl}
}
