package dnsserver

import (
	"cmp"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Defaults of Config (Consul's dns_config defaults, spec section 8).
const (
	DefaultDomain          = "consul."
	DefaultDatacenter      = "dc1"
	DefaultUDPAnswerLimit  = 3
	DefaultRecursorTimeout = 2 * time.Second
	DefaultMaxStale        = 87600 * time.Hour
	DefaultSOARefreshSecs  = 3600
	DefaultSOARetrySecs    = 600
	DefaultSOAExpireSecs   = 86400

	// maxUDPAnswersNoEDNS caps UDPAnswerLimit for clients without EDNS0:
	// Consul never puts more than 8 records in a 512-byte reply.
	maxUDPAnswersNoEDNS = 8
	// maxEDNSSize caps what a client may advertise (Consul's 65467:
	// 65535 minus IP and UDP headers).
	maxEDNSSize = 65467
	// maxTCPSize is the largest reply over TCP (two-byte length prefix).
	maxTCPSize = 65535
)

// SOAConfig are the timers of the SOA record (seconds, as in the record).
// Zero means the default.
type SOAConfig struct {
	RefreshSecs uint32 // default 3600
	RetrySecs   uint32 // default 600
	ExpireSecs  uint32 // default 86400
	MinTTLSecs  uint32 // default 0; also the TTL of the SOA record itself
}

// Config configures the DNS interface. Start from DefaultConfig(); the zero
// value is valid too and differs only in AllowStale (false).
type Config struct {
	// Domain is the zone answered authoritatively. Default "consul.".
	// Matching is case-insensitive; replies use the spelling of the question.
	Domain string
	// AltDomain is a second zone with the same content (Consul's
	// alt_domain). Default none.
	AltDomain string
	// Datacenter is the local datacenter; names for other datacenters go to
	// the Forwarder. Default "dc1".
	Datacenter string

	// NodeTTL is the TTL of node, addr, PTR and NS records. Default 0.
	NodeTTL time.Duration
	// ServiceTTL maps a service name to its records' TTL. A key ending in
	// "*" matches every service with that prefix ("*" alone matches all);
	// an exact key wins, then the longest prefix. Default 0 for all.
	ServiceTTL map[string]time.Duration

	// OnlyPassing keeps only instances whose checks all pass; by default
	// instances with a warning are kept and only critical ones dropped.
	OnlyPassing bool
	// EnableTruncate sets the TC bit when records were dropped to fit a UDP
	// reply. Default false: clients silently get fewer records (Consul).
	EnableTruncate bool
	// UDPAnswerLimit caps the answers of a UDP reply to a client without
	// EDNS0 (further capped at 8). Default 3.
	UDPAnswerLimit int
	// ARecordLimit caps A/AAAA answers of service lookups on every
	// transport. Default 0: unlimited.
	ARecordLimit int

	// Recursors are upstream resolvers ("host" or "host:port", port 53 by
	// default) asked, in order, for names outside the domain. Default none:
	// such names are REFUSED.
	Recursors []string
	// RecursorTimeout bounds each recursor exchange. Default 2s.
	RecursorTimeout time.Duration

	// AllowStale lets the local (possibly stale) catalog answer as long as
	// the last contact with the leader is within MaxStale. Without it, or
	// beyond MaxStale, the question is forwarded to the local datacenter's
	// leader through the Forwarder (SERVFAIL when there is none).
	AllowStale bool
	// MaxStale bounds the staleness AllowStale accepts. Default 87600h.
	MaxStale time.Duration

	SOA SOAConfig
}

// DefaultConfig returns Consul's defaults: domain consul., dc1, stale reads
// allowed.
func DefaultConfig() Config {
	return Config{AllowStale: true}.withDefaults()
}

func (c Config) withDefaults() Config {
	c.Domain = cmp.Or(c.Domain, DefaultDomain)
	c.Datacenter = cmp.Or(c.Datacenter, DefaultDatacenter)
	c.UDPAnswerLimit = cmp.Or(c.UDPAnswerLimit, DefaultUDPAnswerLimit)
	c.RecursorTimeout = cmp.Or(c.RecursorTimeout, DefaultRecursorTimeout)
	c.MaxStale = cmp.Or(c.MaxStale, DefaultMaxStale)
	c.SOA.RefreshSecs = cmp.Or(c.SOA.RefreshSecs, DefaultSOARefreshSecs)
	c.SOA.RetrySecs = cmp.Or(c.SOA.RetrySecs, DefaultSOARetrySecs)
	c.SOA.ExpireSecs = cmp.Or(c.SOA.ExpireSecs, DefaultSOAExpireSecs)
	return c
}

// Validate reports the first bad field.
func (c Config) Validate() error {
	for _, d := range []struct{ field, v string }{{"Domain", c.Domain}, {"AltDomain", c.AltDomain}} {
		if d.v == "" {
			continue
		}
		if _, ok := dns.IsDomainName(d.v); !ok || d.v == "." {
			return fmt.Errorf("dnsserver: Config.%s %q is not a domain name; use e.g. \"consul.\"", d.field, d.v)
		}
	}
	if c.Datacenter != "" && strings.ContainsAny(c.Datacenter, ". ") {
		return fmt.Errorf("dnsserver: Config.Datacenter %q must be one DNS label (no dots or spaces)", c.Datacenter)
	}
	for field, d := range map[string]time.Duration{"NodeTTL": c.NodeTTL, "RecursorTimeout": c.RecursorTimeout, "MaxStale": c.MaxStale} {
		if d < 0 {
			return fmt.Errorf("dnsserver: Config.%s is %v; use 0 for the default or a positive duration", field, d)
		}
	}
	for name, d := range c.ServiceTTL {
		if d < 0 || name == "" {
			return fmt.Errorf("dnsserver: Config.ServiceTTL[%q] is %v; keys must be non-empty and TTLs non-negative", name, d)
		}
	}
	if c.UDPAnswerLimit < 0 || c.ARecordLimit < 0 {
		return fmt.Errorf("dnsserver: Config.UDPAnswerLimit (%d) and Config.ARecordLimit (%d) must not be negative",
			c.UDPAnswerLimit, c.ARecordLimit)
	}
	for i, r := range c.Recursors {
		if !validRecursor(r) {
			return fmt.Errorf("dnsserver: Config.Recursors[%d] %q is not an IP address or IP:port (e.g. 8.8.8.8 or [::1]:53)", i, r)
		}
	}
	return nil
}

// validRecursor reports whether r is an IP address with an optional port.
func validRecursor(r string) bool {
	host, port, err := net.SplitHostPort(withDefaultPort(r))
	if err != nil {
		return false
	}
	if _, err := netip.ParseAddr(host); err != nil {
		return false
	}
	_, err = strconv.ParseUint(port, 10, 16)
	return err == nil
}

// withDefaultPort appends :53 to a recursor given without a port.
func withDefaultPort(addr string) string {
	if _, _, err := net.SplitHostPort(addr); err == nil {
		return addr
	}
	return net.JoinHostPort(strings.Trim(addr, "[]"), "53")
}

// policy is a Config compiled once for the hot path: canonical domains,
// TTLs in seconds, wildcard TTLs sorted longest prefix first.
type policy struct {
	cfg        Config
	domain     string // lower-case, fully qualified
	altDomain  string // lower-case, fully qualified, or ""
	nodeTTL    uint32
	exactTTL   map[string]uint32
	prefixTTLs []prefixTTL // longest prefix first
	recursors  []string    // host:port
}

type prefixTTL struct {
	prefix string
	ttl    uint32
}

// compile validates cfg, fills defaults and precomputes the policy.
func compile(cfg Config) (*policy, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	p := &policy{
		cfg:      cfg,
		domain:   strings.ToLower(dns.Fqdn(cfg.Domain)),
		nodeTTL:  seconds(cfg.NodeTTL),
		exactTTL: map[string]uint32{},
	}
	if cfg.AltDomain != "" {
		p.altDomain = strings.ToLower(dns.Fqdn(cfg.AltDomain))
	}
	for name, d := range cfg.ServiceTTL {
		if prefix, ok := strings.CutSuffix(name, "*"); ok {
			p.prefixTTLs = append(p.prefixTTLs, prefixTTL{prefix, seconds(d)})
		} else {
			p.exactTTL[name] = seconds(d)
		}
	}
	slices.SortFunc(p.prefixTTLs, func(a, b prefixTTL) int { return cmp.Compare(len(b.prefix), len(a.prefix)) })
	for _, r := range cfg.Recursors {
		p.recursors = append(p.recursors, withDefaultPort(r))
	}
	return p, nil
}

// serviceTTL is the TTL of a service's records: exact name, then the
// longest matching wildcard prefix, then 0.
func (p *policy) serviceTTL(service string) uint32 {
	if ttl, ok := p.exactTTL[service]; ok {
		return ttl
	}
	for _, w := range p.prefixTTLs {
		if strings.HasPrefix(service, w.prefix) {
			return w.ttl
		}
	}
	return 0
}

func seconds(d time.Duration) uint32 {
	s := d / time.Second
	if s > 1<<31-1 { // RFC 2181 §8: TTLs are 31-bit
		s = 1<<31 - 1
	}
	return uint32(s)
}
