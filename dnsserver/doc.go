// Package dnsserver is roster's DNS interface (port 8600, UDP and TCP),
// compatible with Consul's: `dig @127.0.0.1 -p 8600 web.service.consul SRV`
// finds the healthy instances of web, with no client library at all.
//
// # Reading order
//
//  1. name.go — how a question name is understood. Labels are read right
//     to left; the first keyword (service, node, addr, query) splits the
//     name from its locality: web.service.dc2.consul asks datacenter dc2
//     for service web. Also the RFC 2782 forms (_web._tcp.service.consul,
//     and _web._tcp.consul for SRV), hex addr labels and reverse names
//     under in-addr.arpa / ip6.arpa. Parsing allocates nothing.
//  2. answer.go — the core: answer(question, catalog, cache, policy, rng,
//     transport, serial) → reply. It is a pure function: no sockets, no
//     clock (the SOA serial comes in), randomness from a seeded rand.Rand.
//     It checks the request (FORMERR, NOTIMP, BADVERS), routes by name,
//     and answers the apex (SOA, NS). Questions that need I/O — another
//     datacenter, a name outside the domain — come back as an outcome
//     telling the shell what to do, with a fallback reply.
//  3. lookup.go and service.go — the record logic of Consul's section 8.3:
//     node A/AAAA/TXT (node meta in RFC 1464 form), service A/AAAA and SRV
//     (the service's Address overrides the node's; an own IP becomes an
//     <hex>.addr target, a hostname a CNAME), health filtering (a critical
//     check, including the node-level serfHealth, removes the instance;
//     warnings stay unless OnlyPassing), shuffling, TTLs, PTR. NXDOMAIN
//     carries the SOA in the authority section (RFC 2308 §3), and so does
//     NOERROR for a known name without records of the asked type (§2.2).
//  4. truncate.go — fitting a reply to the client: 512 bytes and at most 3
//     answers over UDP without EDNS0, the advertised size with it, 64K over
//     TCP; Extra kept in sync with the remaining SRV targets; TC only with
//     EnableTruncate, as Consul does by default (clients silently get fewer
//     records). EDNS0 is echoed (RFC 6891 §6.1.1), client subnet with scope
//     0 (RFC 7871 §7.2.1).
//  5. cache.go — why answers are fast. The catalog hands out deep copies;
//     copying three instances with their checks was 17 of 25 allocations
//     per answer. The cache keeps, per (service, tag), the compact healthy
//     instances read at the service's catalog index; the catalog bumps that
//     index on any change that can alter the answer (instances, their
//     checks, their nodes, the nodes' checks), so a hit is exact. PTR
//     questions use a reverse index (address → node, else service) rebuilt
//     only when the node or service table index moves.
//  6. config.go — Config (Consul's dns_config: domain, alt_domain, TTLs with
//     "*" wildcards, only_passing, enable_truncate, udp_answer_limit,
//     a_record_limit, recursors, allow_stale/max_stale, SOA timers),
//     defaults and Validate, compiled once into a policy for the hot path.
//  7. server.go — the shell: Serve on pre-bound sockets, the stale-read
//     bound, forwarding to other datacenters through the Forwarder,
//     recursion (sequential, per-recursor timeout; the next recursor on
//     anything but NOERROR/NXDOMAIN, SERVFAIL when all fail). TCP, and UDP
//     sockets bound to a wildcard address (whose replies must leave from
//     the address asked, which miekg/dns reads from each packet's control
//     message), are served by miekg/dns, one goroutine per question.
//     stats.go counts questions by type and rcode and a latency histogram,
//     lock-free; events.go publishes what an operator should see
//     (serving, stale reads, failed forwards and recursions) through a
//     fanout.Hub.
//  8. udp.go — why the UDP path allocates almost nothing: a few reader
//     goroutines per socket, each owning a read buffer, a request and a
//     reply dns.Msg, scratch record blocks (answerInto's scratch) and a
//     pack buffer, reused question after question. miekg/dns still parses
//     and packs. A question that needs I/O (another datacenter, the
//     recursors, a too-stale catalog) leaves the loop as a copy, so a slow
//     recursor never stalls the socket. What is left per A or SRV question
//     is miekg/dns's: the question slice and name when parsing, the
//     compression map when packing (4 allocations; 7 with EDNS0).
//     Unreadable headers and responses are dropped (no reply can amplify
//     an attack); what miekg/dns would reject gets FORMERR or NOTIMP. At
//     most 512 questions per socket wait on I/O; beyond, SERVFAIL at once.
//  9. batch_linux.go — on Linux a reader takes up to 32 questions per
//     recvmmsg(2) and sends their replies with one sendmmsg(2), to the
//     sockaddrs the kernel filled in: under load a system call per packet
//     was most of the server's CPU (about a quarter less per query in
//     BenchmarkDNSPerf). Elsewhere, one packet per read.
//
// # Measuring
//
// BenchmarkUDPPacket is the UDP handler alone; BenchmarkServerUDP the
// whole path over a real socket with clients that allocate nothing, so
// its allocs/op are the server's; BenchmarkDNSPerf drives it with dnsperf
// (1,000 services × 3 instances, A and SRV of random services) and
// reports qps, lost %, p50/p99 from dnsperf's per-query latencies, and the
// CPU time per query of the server and of dnsperf, which other load on
// the machine distorts far less than qps. FuzzUDPPacket feeds random
// packets to the UDP handler, FuzzReply random messages to Reply.
//
// # Seams
//
// The server reads a catalog.Reader (the local catalog: reads are stale by
// default, as Consul's allow_stale). Two small interfaces are defined here
// for the agent to implement: Forwarder (ask another datacenter, over rpc;
// without one, such questions get SERVFAIL) and Staleness (time since the
// leader was last heard from; without one, the local catalog is always
// fresh enough). When the local catalog is staler than MaxStale (or stale
// reads are off and this server is not the leader) the question goes to
// the Forwarder for the local datacenter, i.e. to its leader.
//
// # Not supported
//
// Prepared queries (<name>.query.consul) answer NXDOMAIN; connect, ingress,
// virtual, peer and namespace forms are not recognised; CNAME targets are
// not resolved further; there is no node-meta TXT in SRV replies' Extra.
package dnsserver
