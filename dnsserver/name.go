package dnsserver

import (
	"encoding/hex"
	"net/netip"
	"strings"
)

// kind is what a name under the domain asks for (spec section 8.2).
type kind uint8

const (
	kindInvalid kind = iota // under the domain but not a known form: NXDOMAIN
	kindApex                // the domain itself: SOA, NS
	kindNode                // <node>.node[.<dc>]
	kindService             // [<tag>.]<service>.service[.<dc>] and RFC 2782 forms
	kindAddr                // <hex>.addr[.<dc>]
	kindQuery               // <query>.query[.<dc>]: prepared queries, not supported
)

// parsedName is a question name under the domain, split into its parts.
// Every string is a substring of the question name: parsing allocates
// nothing.
type parsedName struct {
	kind    kind
	domain  string // the domain suffix as spelled in the question (with dot)
	dc      string // "" for the local datacenter
	node    string // kindNode: the node name (may contain dots)
	service string // kindService
	tag     string // kindService: "" for no tag filter
	addr    string // kindAddr: the hex label
}

// matchDomain returns the suffix of qname that is the domain or the alt
// domain (case-insensitive), and the labels before it (without the dot).
func (p *policy) matchDomain(qname string) (rest, domain string, ok bool) {
	for _, d := range [2]string{p.domain, p.altDomain} {
		if d == "" || len(qname) < len(d) {
			continue
		}
		suffix := qname[len(qname)-len(d):]
		if !strings.EqualFold(suffix, d) {
			continue
		}
		if len(qname) == len(d) {
			return "", suffix, true
		}
		if qname[len(qname)-len(d)-1] == '.' {
			return qname[:len(qname)-len(d)-1], suffix, true
		}
	}
	return "", "", false
}

// maxLabels bounds the labels of a name (a DNS name has at most 127).
const maxLabels = 128

// labels indexes the labels of a relative name without allocating.
type labels struct {
	rest   string
	starts [maxLabels]int // start offset of each label
	n      int
}

func (ls *labels) split(rest string) {
	ls.rest, ls.n = rest, 0
	for i := 0; i <= len(rest) && ls.n < maxLabels; {
		ls.starts[ls.n] = i
		ls.n++
		j := strings.IndexByte(rest[i:], '.')
		if j < 0 {
			break
		}
		i += j + 1
	}
}

// label returns label i.
func (ls *labels) label(i int) string {
	end := len(ls.rest)
	if i+1 < ls.n {
		end = ls.starts[i+1] - 1
	}
	return ls.rest[ls.starts[i]:end]
}

// before returns the text of labels 0..i-1.
func (ls *labels) before(i int) string {
	if i >= ls.n {
		return ls.rest
	}
	return ls.rest[:ls.starts[i]-1]
}

// parseName splits the labels before the domain. As in Consul, labels are
// read right to left and the first keyword found (service, node, addr,
// query) splits the name (to its left) from the locality (to its right:
// nothing, "<dc>" or "<dc>.dc").
func parseName(rest, domain string) parsedName {
	out := parsedName{domain: domain}
	if rest == "" {
		out.kind = kindApex
		return out
	}
	var lbls labels
	ls := &lbls
	ls.split(rest)
	for i := ls.n - 1; i >= 0; i-- {
		var k kind
		switch l := ls.label(i); {
		case strings.EqualFold(l, "service"):
			k = kindService
		case strings.EqualFold(l, "node"):
			k = kindNode
		case strings.EqualFold(l, "addr"):
			k = kindAddr
		case strings.EqualFold(l, "query"):
			k = kindQuery
		default:
			continue
		}
		if i == 0 {
			return out // keyword with no name: invalid
		}
		dc, ok := ls.locality(i + 1)
		if !ok {
			return out
		}
		out.dc = dc
		out.fill(k, ls, i)
		return out
	}
	return rfc2782WithoutService(out, ls)
}

// locality reads the labels from index from on: none, "<dc>" or
// "<dc>.dc".
func (ls *labels) locality(from int) (string, bool) {
	switch ls.n - from {
	case 0:
		return "", true
	case 1:
		return ls.label(from), true
	case 2:
		if strings.EqualFold(ls.label(from+1), "dc") {
			return ls.label(from), true
		}
	}
	return "", false
}

// fill sets the parts of a name of kind k whose name part is the labels
// 0..nLeft-1.
func (out *parsedName) fill(k kind, ls *labels, nLeft int) {
	left := ls.before(nLeft)
	switch k {
	case kindNode:
		out.kind, out.node = kindNode, left
	case kindAddr:
		if nLeft == 1 {
			out.kind, out.addr = kindAddr, left
		}
	case kindQuery:
		out.kind = kindQuery
	case kindService:
		// RFC 2782: _<service>._<proto|tag>; "_tcp" means no tag filter.
		if nLeft == 2 && strings.HasPrefix(left, "_") && strings.HasPrefix(ls.label(1), "_") {
			out.kind, out.service, out.tag = kindService, ls.label(0)[1:], ls.label(1)[1:]
			if strings.EqualFold(out.tag, "tcp") {
				out.tag = ""
			}
		} else {
			last := ls.label(nLeft - 1)
			out.kind, out.service = kindService, last
			if nLeft > 1 {
				out.tag = left[:len(left)-len(last)-1]
			}
		}
		if out.service == "" {
			out.kind = kindInvalid
		}
	}
}

// rfc2782WithoutService handles "_<service>._<tag|tcp>[.<dc>]": the
// "service" label is optional when the labels start with underscores.
func rfc2782WithoutService(out parsedName, ls *labels) parsedName {
	if (ls.n != 2 && ls.n != 3) || !strings.HasPrefix(ls.label(0), "_") || !strings.HasPrefix(ls.label(1), "_") {
		return out
	}
	if ls.n == 3 {
		out.dc = ls.label(2)
	}
	out.fill(kindService, ls, 2)
	return out
}

// parseHexAddr decodes the label of an addr name: 8 hex digits are an IPv4
// address, 32 an IPv6 one.
func parseHexAddr(s string) (netip.Addr, bool) {
	var buf [16]byte
	switch len(s) {
	case 8, 32:
	default:
		return netip.Addr{}, false
	}
	if _, err := hex.Decode(buf[:len(s)/2], []byte(s)); err != nil {
		return netip.Addr{}, false
	}
	if len(s) == 8 {
		return netip.AddrFrom4([4]byte(buf[:4])), true
	}
	return netip.AddrFrom16(buf), true
}

// hexAddr is the label of an addr name for ip (the inverse of parseHexAddr).
func hexAddr(ip netip.Addr) string {
	if ip.Is4() {
		b := ip.As4()
		return hex.EncodeToString(b[:])
	}
	b := ip.As16()
	return hex.EncodeToString(b[:])
}

// parseReverse turns a name under in-addr.arpa or ip6.arpa into the
// address it asks about.
func parseReverse(qname string) (netip.Addr, bool) {
	lower := strings.ToLower(strings.TrimSuffix(qname, "."))
	if v4, ok := strings.CutSuffix(lower, ".in-addr.arpa"); ok {
		parts := strings.Split(v4, ".")
		if len(parts) != 4 {
			return netip.Addr{}, false
		}
		var b [4]byte
		for i, p := range parts {
			v, err := parseOctet(p)
			if err != nil {
				return netip.Addr{}, false
			}
			b[3-i] = v
		}
		return netip.AddrFrom4(b), true
	}
	if v6, ok := strings.CutSuffix(lower, ".ip6.arpa"); ok {
		nibbles := strings.Split(v6, ".")
		if len(nibbles) != 32 {
			return netip.Addr{}, false
		}
		var hexDigits [32]byte
		for i, nb := range nibbles {
			if len(nb) != 1 {
				return netip.Addr{}, false
			}
			hexDigits[31-i] = nb[0]
		}
		return parseHexAddr(string(hexDigits[:]))
	}
	return netip.Addr{}, false
}

func parseOctet(s string) (byte, error) {
	if s == "" || len(s) > 3 || (len(s) > 1 && s[0] == '0') {
		return 0, errBadOctet
	}
	v := 0
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, errBadOctet
		}
		v = v*10 + int(c-'0')
	}
	if v > 255 {
		return 0, errBadOctet
	}
	return byte(v), nil
}

var errBadOctet = errorString("not a decimal octet")

type errorString string

func (e errorString) Error() string { return string(e) }

// isReverse reports whether qname is under in-addr.arpa. or ip6.arpa.
func isReverse(qname string) bool {
	return hasSuffixFold(qname, ".in-addr.arpa.") || hasSuffixFold(qname, ".ip6.arpa.")
}

func hasSuffixFold(s, suffix string) bool {
	return len(s) >= len(suffix) && strings.EqualFold(s[len(s)-len(suffix):], suffix)
}
