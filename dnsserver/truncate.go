package dnsserver

import (
	"sort"

	"github.com/miekg/dns"
)

// echoEDNS adds an OPT record to reply when req had one (RFC 6891 §6.1.1:
// a responder that understands EDNS answers with OPT), advertising the
// client's own payload size and echoing its client-subnet option (RFC 7871
// §7.2.1, scope 0: the answer does not depend on the subnet).
func echoEDNS(reply, req *dns.Msg, sc *scratch) {
	opt := req.IsEdns0()
	if opt == nil {
		return
	}
	out := sc.newOPT()
	out.Hdr = dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}
	out.SetUDPSize(max(opt.UDPSize(), dns.MinMsgSize))
	out.SetDo(opt.Do())
	if reply.Rcode > 0xF {
		// Extended rcodes (BADVERS) live partly in the OPT (RFC 6891 §6.1.3).
		out.SetExtendedRcode(uint16(reply.Rcode))
	}
	for _, o := range opt.Option {
		if ecs, ok := o.(*dns.EDNS0_SUBNET); ok {
			c := *ecs
			c.SourceScope = 0
			out.Option = append(out.Option, &c)
		}
	}
	reply.Extra = append(reply.Extra, out)
}

// sizeLimit is the largest reply the client accepts (section 8.5): 512
// bytes over UDP without EDNS, the advertised size (capped) with it, 64K
// over TCP.
func sizeLimit(req *dns.Msg, tr Transport) int {
	if tr == TCP {
		return maxTCPSize
	}
	if opt := req.IsEdns0(); opt != nil {
		return min(max(int(opt.UDPSize()), dns.MinMsgSize), maxEDNSSize)
	}
	return dns.MinMsgSize
}

// fit trims reply to what the client accepts (section 8.5). UDP clients
// without EDNS get at most min(8, UDPAnswerLimit) answers. Then, if the
// reply is still too big, the authority section goes first, then answers
// (binary search on how many stay), with Extra kept to the records that
// resolve the remaining answers. The TC bit is set only with
// EnableTruncate: by default (Consul's) clients silently get fewer records.
func fit(reply, req *dns.Msg, p *policy, tr Transport) {
	limit := sizeLimit(req, tr)
	trimmed := false
	if tr == UDP && req.IsEdns0() == nil {
		maxAnswers := min(maxUDPAnswersNoEDNS, p.cfg.UDPAnswerLimit)
		if len(reply.Answer) > maxAnswers {
			reply.Answer = reply.Answer[:maxAnswers]
			syncExtra(reply)
			trimmed = true
		}
	}
	if !fits(reply, limit) {
		trimmed = true
		if len(reply.Answer) > 0 {
			reply.Ns = nil
		}
		shrinkAnswers(reply, limit)
	}
	if trimmed && p.cfg.EnableTruncate {
		reply.Truncated = true
	}
}

// fitRecursed trims a recursor's reply only if it exceeds the client's size
// limit (no answer cap: that is for the domain's own answers), and then
// sets TC so the client retries over TCP (RFC 1035 §4.2.1).
func fitRecursed(reply, req *dns.Msg, tr Transport) {
	limit := sizeLimit(req, tr)
	if fits(reply, limit) {
		return
	}
	reply.Ns = nil
	shrinkAnswers(reply, limit)
	reply.Truncated = true
}

// fits reports whether reply packs within limit bytes. The uncompressed
// size bounds the compressed one and is cheap, so the compression map is
// only built for replies near the limit.
func fits(reply *dns.Msg, limit int) bool {
	reply.Compress = false
	n := reply.Len()
	reply.Compress = true
	if n <= limit {
		return true
	}
	return reply.Len() <= limit
}

// shrinkAnswers keeps the largest prefix of the answers that fits, then
// drops Extra records (but the OPT) if even that does not fit.
func shrinkAnswers(reply *dns.Msg, limit int) {
	all := reply.Answer
	allExtra := reply.Extra
	keep := sort.Search(len(all)+1, func(n int) bool {
		reply.Answer, reply.Extra = all[:n], allExtra
		syncExtra(reply)
		return !fits(reply, limit)
	}) - 1
	reply.Answer, reply.Extra = all[:max(keep, 0)], allExtra
	syncExtra(reply)
	if !fits(reply, limit) {
		reply.Extra = onlyOPT(reply.Extra)
	}
	if !fits(reply, limit) {
		reply.Answer, reply.Ns = nil, nil
	}
}

// syncExtra keeps the Extra records that belong to a remaining answer (by
// owner name or SRV target) and the OPT.
func syncExtra(reply *dns.Msg) {
	kept := make([]dns.RR, 0, len(reply.Extra))
	for _, rr := range reply.Extra {
		if rr.Header().Rrtype == dns.TypeOPT || belongsToAnswer(reply.Answer, rr.Header().Name) {
			kept = append(kept, rr)
		}
	}
	reply.Extra = kept
}

func belongsToAnswer(answers []dns.RR, name string) bool {
	for _, a := range answers {
		if a.Header().Name == name {
			return true
		}
		if srv, ok := a.(*dns.SRV); ok && srv.Target == name {
			return true
		}
		if ns, ok := a.(*dns.NS); ok && ns.Ns == name {
			return true
		}
	}
	return false
}

func onlyOPT(extra []dns.RR) []dns.RR {
	var out []dns.RR
	for _, rr := range extra {
		if rr.Header().Rrtype == dns.TypeOPT {
			out = append(out, rr)
		}
	}
	return out
}
