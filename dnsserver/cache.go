package dnsserver

import (
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/miekg/dns"

	"roster/catalog"
)

// instance is what a DNS answer needs of one healthy service instance,
// extracted once from the catalog's ServiceEntry.
type instance struct {
	node     string
	nodeAddr string
	svcAddr  string // "" when the instance uses the node's address
	port     uint16
	weight   uint16 // SRV weight for the instance's aggregated health
	// localTarget is "<node>.node.<dc>.<domain>" for the local datacenter
	// and the primary domain, precomputed for the common SRV question.
	localTarget string
	// targetOK: the node's name makes a valid DNS name (labels ≤ 63
	// bytes, name ≤ 255); if not, the instance gets no SRV record, since
	// one bad name would make the whole reply unpackable.
	targetOK bool
}

// readInstances reads the healthy instances of service carrying tag from
// view (section 8.3 filtering), with the index they are as of.
func readInstances(view catalog.Reader, p *policy, service, tag string) ([]instance, uint64) {
	var tags []string
	if tag != "" {
		tags = []string{tag}
	}
	entries, idx := view.CheckServiceNodes(service, tags, p.cfg.OnlyPassing)
	entries = healthy(entries, p.cfg.OnlyPassing)
	out := make([]instance, len(entries))
	for i := range entries {
		e := &entries[i]
		out[i] = instance{
			node: e.Node.Node, nodeAddr: e.Node.Address, port: uint16(e.Service.Port), weight: srvWeight(e),
			localTarget: e.Node.Node + ".node." + p.cfg.Datacenter + "." + p.domain,
		}
		_, out[i].targetOK = dns.IsDomainName(out[i].localTarget)
		if e.Service.Address != e.Node.Address {
			out[i].svcAddr = e.Service.Address
		}
	}
	return out, idx
}

// maxCachedLookups bounds the cache; when full it is emptied (a rare, cheap
// reset: entries are rebuilt from the catalog on demand).
const maxCachedLookups = 16384

// lookupCache memoizes readInstances per (service, tag). An entry is valid
// while the catalog's index for the service (catalog.WatchService) is the
// one it was read at: the catalog bumps that index on every change to the
// service's instances, their checks, their nodes and the nodes' checks
// (serfHealth), so a hit is exactly what a fresh read would return. Hits
// cost one index read and no copy; the catalog copies every entry it hands
// out, which is what dominates an uncached answer.
type lookupCache struct {
	mu      sync.RWMutex // guards entries and nodes
	entries map[lookupKey]cachedLookup
	nodes   map[string]cachedNode // by node name, valid at catalog.WatchNode's index

	reverseIdx atomic.Pointer[reverseIndex] // immutable once stored
}

type lookupKey struct{ service, tag string }

type cachedLookup struct {
	index     uint64
	instances []instance // shared by readers: never modified after insert
}

func newLookupCache() *lookupCache {
	return &lookupCache{entries: map[lookupKey]cachedLookup{}, nodes: map[string]cachedNode{}}
}

// instances returns the healthy instances for (service, tag); the slice is
// shared and must not be modified. A nil cache reads through.
func (c *lookupCache) instances(view catalog.Reader, p *policy, service, tag string) []instance {
	if c == nil {
		out, _ := readInstances(view, p, service, tag)
		return out
	}
	key := lookupKey{service, tag}
	current := view.Index(catalog.WatchService(service))
	c.mu.RLock()
	hit, ok := c.entries[key]
	c.mu.RUnlock()
	if ok && hit.index == current {
		return hit.instances
	}
	out, idx := readInstances(view, p, service, tag)
	c.mu.Lock()
	if len(c.entries) >= maxCachedLookups {
		clear(c.entries)
	}
	// Keep the newest read if another handler raced us.
	if old, ok := c.entries[key]; !ok || old.index <= idx {
		c.entries[lookupKey{strings.Clone(service), strings.Clone(tag)}] = cachedLookup{index: idx, instances: slices.Clip(out)}
	}
	c.mu.Unlock()
	return out
}

type cachedNode struct {
	index uint64
	node  *catalog.Node // nil: no such node; shared, never modified
}

// readNode reads a node (nil if unknown) with the index it is as of.
func readNode(view catalog.Reader, name string) (*catalog.Node, uint64) {
	ns, idx := view.NodeServices(name)
	if ns == nil {
		return nil, idx
	}
	return &ns.Node, idx
}

// node returns the node called name, or nil; the node is shared and must
// not be modified. The catalog bumps a node's index (catalog.WatchNode)
// whenever the node, its services or its checks change.
func (c *lookupCache) node(view catalog.Reader, name string) *catalog.Node {
	if c == nil {
		n, _ := readNode(view, name)
		return n
	}
	current := view.Index(catalog.WatchNode(name))
	c.mu.RLock()
	hit, ok := c.nodes[name]
	c.mu.RUnlock()
	if ok && hit.index == current {
		return hit.node
	}
	n, idx := readNode(view, name)
	c.mu.Lock()
	if len(c.nodes) >= maxCachedLookups {
		clear(c.nodes)
	}
	if old, ok := c.nodes[name]; !ok || old.index <= idx {
		c.nodes[strings.Clone(name)] = cachedNode{index: idx, node: n}
	}
	c.mu.Unlock()
	return n
}

// reverseIndex maps addresses to the node (or service) that has them, for
// PTR questions. The catalog has no index by address, so building one
// copies every node and instance; it is rebuilt only when the node or
// service table index moves.
type reverseIndex struct {
	nodesIndex, servicesIndex uint64
	nodes                     map[netip.Addr]string // address → node name (first by name)
	services                  map[netip.Addr]string // address → service name
}

func tableIndexes(view catalog.Reader) (nodes, services uint64) {
	return view.Index(catalog.WatchTable(catalog.TableNodes)), view.Index(catalog.WatchTable(catalog.TableServices))
}

func buildReverseIndex(view catalog.Reader) *reverseIndex {
	ri := &reverseIndex{nodes: map[netip.Addr]string{}, services: map[netip.Addr]string{}}
	// Indexes first: a change racing the copy makes the next lookup rebuild.
	ri.nodesIndex, ri.servicesIndex = tableIndexes(view)
	nodes, _ := view.Nodes() // sorted by name: the first node with an address wins
	for i := range nodes {
		if ip, err := netip.ParseAddr(nodes[i].Address); err == nil {
			if _, dup := ri.nodes[ip.Unmap()]; !dup {
				ri.nodes[ip.Unmap()] = nodes[i].Node
			}
		}
	}
	reg := view.Registry() // sorted by service name
	for i := range reg.Instances {
		if ip, err := netip.ParseAddr(reg.Instances[i].Address); err == nil {
			if _, dup := ri.services[ip.Unmap()]; !dup {
				ri.services[ip.Unmap()] = reg.Instances[i].Service
			}
		}
	}
	return ri
}

// reverse returns the node, else the service, with address ip. A nil
// cache builds the index for this one question.
func (c *lookupCache) reverse(view catalog.Reader, ip netip.Addr) (node, service string) {
	var ri *reverseIndex
	if c == nil {
		ri = buildReverseIndex(view)
	} else {
		ri = c.reverseIdx.Load()
		if n, s := tableIndexes(view); ri == nil || ri.nodesIndex != n || ri.servicesIndex != s {
			ri = buildReverseIndex(view)
			c.reverseIdx.Store(ri)
		}
	}
	ip = ip.Unmap()
	return ri.nodes[ip], ri.services[ip]
}
