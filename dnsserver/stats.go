package dnsserver

import (
	"math"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// countedTypes are the qtypes counted on their own; others count as
// "other". Fixed so that counting is an atomic add, no map, no lock.
var countedTypes = [...]uint16{dns.TypeA, dns.TypeAAAA, dns.TypeSRV, dns.TypeTXT, dns.TypePTR,
	dns.TypeANY, dns.TypeSOA, dns.TypeNS, dns.TypeCNAME}

// latencyBounds are the upper bounds of the latency histogram buckets; the
// last bucket is unbounded.
var latencyBounds = [...]time.Duration{100 * time.Microsecond, time.Millisecond,
	10 * time.Millisecond, 100 * time.Millisecond, time.Second, math.MaxInt64}

// maxCountedRcode: rcodes above it (there are none in use) count as the last.
const maxCountedRcode = 23

// counters are the live metrics; every field is updated atomically by the
// concurrent handlers.
type counters struct {
	queries        atomic.Uint64
	byType         [len(countedTypes) + 1]atomic.Uint64 // last: other
	byRcode        [maxCountedRcode + 1]atomic.Uint64
	latency        [len(latencyBounds)]atomic.Uint64
	latencySumNs   atomic.Uint64
	forwarded      atomic.Uint64
	forwardErrors  atomic.Uint64
	recursed       atomic.Uint64
	recursorErrors atomic.Uint64
	stale          atomic.Uint64
	malformed      atomic.Uint64
	writeErrors    atomic.Uint64
	readErrors     atomic.Uint64
	packErrors     atomic.Uint64
	overloaded     atomic.Uint64
	panics         atomic.Uint64
}

// observe counts one answered question.
func (c *counters) observe(req, reply *dns.Msg, took time.Duration) {
	c.queries.Add(1)
	typeIdx := len(countedTypes)
	if len(req.Question) > 0 {
		for i, t := range countedTypes {
			if t == req.Question[0].Qtype {
				typeIdx = i
				break
			}
		}
	}
	c.byType[typeIdx].Add(1)
	c.byRcode[min(max(reply.Rcode, 0), maxCountedRcode)].Add(1)
	for i, bound := range latencyBounds {
		if took <= bound {
			c.latency[i].Add(1)
			break
		}
	}
	c.latencySumNs.Add(uint64(max(took, 0)))
}

// LatencyBucket counts the questions answered within UpTo (and above the
// previous bucket's bound).
type LatencyBucket struct {
	UpTo  time.Duration // math.MaxInt64 for the last bucket
	Count uint64
}

// Stats is a snapshot of the server's metrics.
type Stats struct {
	Queries uint64
	// ByType counts questions by qtype name ("A", "SRV", ..., "other").
	ByType map[string]uint64
	// ByRcode counts replies by rcode name ("NOERROR", "NXDOMAIN", ...).
	ByRcode map[string]uint64
	// Latency is a histogram of the time to answer (including forwarding
	// and recursion); LatencySum their total.
	Latency    []LatencyBucket
	LatencySum time.Duration
	// Forwarded counts questions sent to the Forwarder (other datacenters
	// and too-stale local reads); ForwardErrors those it failed.
	Forwarded, ForwardErrors uint64
	// Recursed counts questions sent to recursors; RecursorErrors those
	// all recursors failed.
	Recursed, RecursorErrors uint64
	// Stale counts questions the local catalog was too stale for.
	Stale uint64
	// Malformed counts messages that could not be parsed (answered with
	// FORMERR when the header was readable, else dropped).
	Malformed uint64
	// WriteErrors counts replies that could not be sent; ReadErrors
	// failed reads of the UDP socket (other than its closing).
	WriteErrors, ReadErrors uint64
	// PackErrors counts replies that could not be packed (a bug: the
	// client got SERVFAIL).
	PackErrors uint64
	// Overloaded counts UDP questions that needed forwarding or
	// recursion while too many others were waiting on it: they got
	// SERVFAIL at once.
	Overloaded uint64
	// Panics counts questions whose answering panicked (a bug: the
	// question got SERVFAIL, the server kept serving).
	Panics uint64
}

// Stats returns a snapshot of the metrics.
func (s *Server) Stats() Stats {
	c := &s.stats
	out := Stats{
		Queries: c.queries.Load(), ByType: map[string]uint64{}, ByRcode: map[string]uint64{},
		LatencySum: time.Duration(c.latencySumNs.Load()),
		Forwarded:  c.forwarded.Load(), ForwardErrors: c.forwardErrors.Load(),
		Recursed: c.recursed.Load(), RecursorErrors: c.recursorErrors.Load(),
		Stale: c.stale.Load(), Malformed: c.malformed.Load(), WriteErrors: c.writeErrors.Load(),
		ReadErrors: c.readErrors.Load(), PackErrors: c.packErrors.Load(),
		Overloaded: c.overloaded.Load(),
		Panics:     c.panics.Load(),
	}
	for i := range c.byType {
		name := "other"
		if i < len(countedTypes) {
			name = dns.TypeToString[countedTypes[i]]
		}
		if n := c.byType[i].Load(); n > 0 {
			out.ByType[name] = n
		}
	}
	for rcode := range c.byRcode {
		if n := c.byRcode[rcode].Load(); n > 0 {
			name, ok := dns.RcodeToString[rcode]
			if !ok {
				name = "RCODE" + strconv.Itoa(rcode)
			}
			out.ByRcode[name] = n
		}
	}
	for i, bound := range latencyBounds {
		out.Latency = append(out.Latency, LatencyBucket{UpTo: bound, Count: c.latency[i].Load()})
	}
	return out
}
