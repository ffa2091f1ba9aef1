// Package httpapi serves roster's HTTP API on :8500: Consul's /v1 paths,
// JSON shapes, status codes and X-Consul-* headers, so that the official Go
// client, the consul CLI and curl scripts work unchanged, plus roster's
// own delta pulls under /v1/roster/.
//
// A tour, in reading order:
//
//   - server.go: Server takes a pre-bound net.Listener (DESIGN.md rule 8)
//     and serves until Shutdown. Config names what the agent plugs in: the
//     Agent (/v1/agent/self, members), an RPC to reach the servers (every
//     catalog, health, KV, session, txn, status, operator, coordinate and
//     roster read or write is one call of the rpc/structs.go contract),
//     optionally Membership (join/leave), a MetricsSource and a LocalIndex
//     (the hot-read short cut, below). The route table is there too: it
//     reads as an index of the API.
//   - router.go: exact paths, then the longest prefix ending in "/" (whose
//     remainder is the argument, like Consul's /v1/kv/<key>). It answers
//     what Consul answers for everything else: 404 "Invalid URL path", 405
//     with Allow, 200 with Allow for OPTIONS, and 429 past the per-client
//     rate (ratelimit.go, a token bucket per IP, off by default).
//   - params.go: query parameters and headers into rpc.QueryOptions and
//     rpc.WriteRequest. Flags are tested by presence (the Go client sends
//     ?stale=), numbers and durations that do not parse are 400s, the
//     token comes from ?token, X-Consul-Token or Authorization: Bearer, in
//     that order. setMeta writes X-Consul-Index (never 0), KnownLeader,
//     LastContact and Effective-Consistency from the reply's QueryMeta.
//   - respond.go: one place turns a handler's result into bytes: compact
//     JSON (indented with ?pretty), raw bodies, gzip when accepted, and
//     plain-text errors with Consul's statuses (mapRPCError: validation
//     400, ACL 403, rate 429, everything else 500 with the RPC's text,
//     "No cluster leader" included).
//   - the endpoints, one file per family: kv_endpoints.go, txn_endpoint.go,
//     catalog_endpoints.go, health_endpoints.go, session_endpoints.go,
//     status_endpoints.go (status, operator, coordinates),
//     autopilot_endpoint.go (the replicated autopilot configuration, GET
//     and PUT with ?cas=; GET /v1/operator/autopilot/state, Consul's
//     api.AutopilotState, the leader's tracked state, ?stale or not),
//     agent_endpoints.go, metrics.go (/v1/agent/metrics: Consul's JSON or
//     Prometheus text), agent_local.go (the agent's own services and
//     checks: register, TTL updates, maintenance, agent health; no RPC,
//     served from LocalState), agent_host.go and roster_endpoints.go (delta pulls: full registry,
//     changes since N or 410 Gone, ETag/If-None-Match on the hashcode;
//     see below).
//   - blocking.go: blocking reads (?index=&wait=) on a server that answers
//     them from its own catalog wait on the catalog watch of their topic in
//     the request's goroutine (no RPC, no goroutine or timer of the rpc
//     layer per parked client), then read without blocking; the reads whose
//     answer is cached (KV, /v1/catalog/service, /v1/health/service) share
//     one RPC and one encode per change among everyone it woke.
//   - cache.go: a read's answer only changes when its index moves, so the
//     encoded (and gzipped) bytes of hot reads (/v1/health/service, the
//     roster endpoints) are kept per query and index and shared by every
//     request that asks the same question. On a leading server with a
//     LocalIndex, a repeated read whose index has not moved is answered
//     from there without any RPC at all, and a herd of such reads that
//     all miss (right after a change) is coalesced: one fills the entry,
//     the rest wait for it.
//
// Delta pulls on the wire (roster_endpoints.go, client/compact.go):
//
//	GET /v1/roster/registry                     {Index, Hash, HashScheme, Instances}, ETag "hash"
//	GET /v1/roster/registry/delta?since=N       {From, To, Hash, HashScheme, Changes}, ETag "hash"
//	    &format=compact                         the same delta in binary, lean headers
//	    &wait=5m                                block until a change after N
//	    If-None-Match: "hash"                   304 when nothing changed
//	                                            410 Gone when N left the delta ring
//
// The compact form (layout in client/compact.go) is what the Go client
// uses: a health flip costs ~7 bytes, front-coded names, the raw SHA-256
// hash, and its 200 carries only Date and Content-Length (no X-Consul-*,
// ETag or Content-Type; the index and hash are in the body), so ten
// changes are ~165 bytes on the wire against ~212 KB for a gzipped full
// pull of 10,000 instances (BenchmarkDeltaVsFull). Blocking pulls on a
// server wait on the local catalog (no RPC per waiter); when a change
// wakes them, each is held back a random delay in [0, min(100 ms, 10 µs
// × waiters)), so 10,000 watchers come back spread over ~100 ms instead
// of in one millisecond, while a lone watcher waits microseconds.
// Timeouts get Consul's wait/16 jitter.
//   - client/: the Go package that keeps a registry mirror current with
//     delta pulls (what `roster watch` runs), and the compact delta form.
//   - bench_test.go and agent_bench_test.go: the performance targets
//     (make bench); the agent_ ones drive 10,000 TCP clients against a
//     real dev agent (ROSTER_BIN).
//
// Blocking (?index=&wait=) is done by the server endpoints (rpc.Blocker)
// where the read goes to another server (a client agent, a follower
// without ?stale, ?consistent, ?dc=, ?max_stale), and locally otherwise
// (blocking.go); either way the wait follows the request's context, so a
// client that hangs up abandons it.
//
// The package never imports raft or swim (DESIGN.md import rules): what it
// needs from the agent it asks through the small interfaces defined here,
// so tests can fake them (backend_test.go runs the handlers against a real
// catalog.Store behind a test RPC).
package httpapi
